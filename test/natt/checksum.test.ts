// RFC 3948 §2.1 on the wire: a userland IPv4 NattSocket sends UDP with checksum 0 (SO_NO_CHECK), seen by tshark on lo.

import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { captureLo } from '../lib/tshark-capture';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { getNoCheck, loadNative } from '../../src/native/binding';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const why = process.platform !== 'linux'
  ? 'SO_NO_CHECK is Linux only'
  : !loadNative()
    ? 'the native addon is not built'
    : !hasTshark
      ? 'tshark not installed (apt-get install tshark)'
      : process.getuid?.() !== 0
        ? 'not root: capturing on lo needs CAP_NET_RAW'
        : '';

/** Capture `count` UDP datagrams to `port` on lo and give their checksum fields; resolves once tshark is listening. */
async function capture(port: number, count: number): Promise<{ done: Promise<number[]> }> {
  const cap = await captureLo(`udp dst port ${port}`, count, ['udp.checksum']);
  return { done: cap.done.then((lines) => lines.map((h) => Number.parseInt(h, 16))) };
}

function send(s: NattSocket, what: 'esp' | 'ike' | 'keepalive', port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (e: Error | null) => (e ? reject(e) : resolve());
    if (what === 'esp') s.sendEsp(Buffer.from('0000100100000001deadbeefdeadbeef', 'hex'), port, '127.0.0.1', cb);
    else if (what === 'ike') s.sendIke(Buffer.from('an IKE message'), port, '127.0.0.1', cb);
    else s.sendKeepalive(port, '127.0.0.1', cb);
  });
}

describe.skipIf(!!why)(`outer UDP checksum on the wire${why ? ` (skipped: ${why})` : ''}`, () => {
  const open: NattSocket[] = [];
  afterAll(() => Promise.all(open.map((s) => new Promise<void>((r) => s.close(() => r())))));
  const make = async (o: Parameters<typeof createNattSocket>[0]) => {
    const s = await createNattSocket({ backend: 'userland', address: '127.0.0.1', port: 0, ...o });
    open.push(s);
    return s;
  };

  it('a userland IPv4 socket sends ESP, IKE and keepalives with checksum 0, and getsockopt reads SO_NO_CHECK back', async () => {
    const tx = await make({});
    const rx = await make({ zeroChecksum: false });
    expect(tx.zeroChecksum).toBe(true);
    const port = rx.address().port;
    const cap = await capture(port, 3);
    for (const what of ['esp', 'ike', 'keepalive'] as const) await send(tx, what, port);
    expect(await cap.done).toEqual([0, 0, 0]);
    expect(rx.stats()).toMatchObject({ esp: 1, ike: 1, keepalive: 1 }); // the receiver accepts checksum 0
  });

  it('zeroChecksum: false keeps the kernel checksum (non-zero on the wire)', async () => {
    const tx = await make({ zeroChecksum: false });
    const rx = await make({});
    expect(tx.zeroChecksum).toBe(false);
    const cap = await capture(rx.address().port, 2);
    await send(tx, 'esp', rx.address().port);
    await send(tx, 'ike', rx.address().port);
    const sums = await cap.done;
    expect(sums).toHaveLength(2);
    for (const c of sums) expect(c).not.toBe(0);
  });

  it('IPv6 never sends checksum 0 (RFC 8200 forbids it): zeroChecksum stays false', async () => {
    const s = await make({ family: 6, address: '::1' });
    expect(s.zeroChecksum).toBe(false);
  });
});

describe('SO_NO_CHECK read-back', () => {
  it.skipIf(process.platform !== 'linux' || !loadNative())('getNoCheck on a kernel-made socket is false; on a zeroChecksum one true', async () => {
    const { openEncapSocket } = await import('../../src/native/binding');
    const plain = openEncapSocket(4, '127.0.0.1', 0, 0, false);
    const nocheck = openEncapSocket(4, '127.0.0.1', 0, 0, true);
    try {
      expect(getNoCheck(plain)).toBe(false);
      expect(getNoCheck(nocheck)).toBe(true);
    } finally {
      loadNative()!.closeFd(plain);
      loadNative()!.closeFd(nocheck);
    }
  });

  it('zeroChecksum must be a boolean', () => {
    expect(() => createNattSocket({ zeroChecksum: 'yes' as never })).toThrow(/zeroChecksum/);
  });
});
