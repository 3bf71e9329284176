// Native cipher contexts live as long as their SA (freed on delete, expire, flush, close; kept across a same-key
// update), and the NAT-T socket's large buffers (FORCE where privileged), as the kernel reports them.

import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native/binding';
import { nativeCipherStatus } from '../../src/fastpath';
import { UserlandSadb } from '../../src/userland/sadb';
import { createNattSocket, LARGE_SOCKET_BUFFER } from '../../src/natt/socket';
import type { SecurityAssociation } from '../../src/sadb/types';

const addon = loadNative();
const available = nativeCipherStatus().available && typeof addon?.espCipherContexts === 'function';
const contexts = () => addon!.espCipherContexts!();

function sa(spi: number, extra: Partial<SecurityAssociation> = {}): SecurityAssociation {
  return {
    src: '192.0.2.1',
    dst: '192.0.2.2',
    spi,
    mode: 'tunnel',
    encryption: { algorithm: 'aes-gcm-16', key: Buffer.alloc(20, spi & 0xff) },
    ...extra,
  } as SecurityAssociation;
}

describe.skipIf(!available)(`native contexts follow their SAs${available ? '' : ' (skipped: the native cipher is not available here)'}`, () => {
  it('10^4 add/delete cycles leave no context behind; update with the same keys keeps it, new keys swap it', async () => {
    const db = new UserlandSadb();
    const base = contexts();
    for (let i = 0; i < 10_000; i++) {
      await db.add(sa(0x1000 + (i % 50)));
      if (i % 50 === 49) for (let k = 0; k < 50; k++) await db.delete({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1000 + k });
    }
    expect(contexts()).toBe(base);
    await db.add(sa(0x77));
    expect(contexts()).toBe(base + 1);
    await db.update(sa(0x77)); // same keys: the transform (and its context) goes on
    expect(contexts()).toBe(base + 1);
    await db.update(sa(0x77, { encryption: { algorithm: 'aes-gcm-16', key: Buffer.alloc(20, 0xee) } }));
    expect(contexts()).toBe(base + 1); // the old one freed, the new one made
    await db.deleteAll({ src: '192.0.2.1', dst: '192.0.2.2' });
    expect(contexts()).toBe(base);
    for (let i = 0; i < 20; i++) await db.add(sa(0x200 + i));
    await db.flush();
    expect(contexts()).toBe(base);
    for (let i = 0; i < 20; i++) await db.add(sa(0x300 + i));
    await db.close();
    expect(contexts()).toBe(base);
  });

  it('a hard expiry frees the context', async () => {
    const db = new UserlandSadb();
    const base = contexts();
    await db.add(sa(0x99, { lifetime: { hard: { addSeconds: 0.05 } } } as Partial<SecurityAssociation>));
    expect(contexts()).toBe(base + 1);
    await new Promise<void>((r) => db.once('expire', () => r()));
    expect(contexts()).toBe(base);
    await db.close();
  });
});

describe.skipIf(!addon)(`NAT-T socket buffers${addon ? '' : ' (skipped: the native addon is not loaded)'}`, () => {
  it('default: LARGE_SOCKET_BUFFER each way, forced past the sysctl limits when privileged, reported', async () => {
    const s = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
    try {
      const b = s.buffers;
      if (process.getuid?.() === 0) {
        expect(b.forced).toBe(true);
        expect(b.receive).toBeGreaterThanOrEqual(LARGE_SOCKET_BUFFER); // Linux reports twice what was set
        expect(b.send).toBeGreaterThanOrEqual(LARGE_SOCKET_BUFFER);
      } else {
        expect(b.forced).toBe(false);
        expect(b.reason).toMatch(/rmem_max/);
      }
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it('an explicit size is what is set (forced where allowed), read back', async () => {
    const s = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland', receiveBufferSize: 65536, sendBufferSize: 65536 });
    try {
      expect(s.buffers.receive).toBeGreaterThanOrEqual(65536);
      expect(s.buffers.receive).toBeLessThan(LARGE_SOCKET_BUFFER);
      expect(s.buffers.reason).toMatch(/asked/);
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
