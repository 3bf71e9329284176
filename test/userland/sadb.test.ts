// UserlandSadb: the Sadb contract (kernel-shaped errors, events, dump, getSpi, SPD) and lifetimes under fake timers.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { inspect } from 'node:util';
import { chooseSadbBackend, openSadb } from '../../src/open';
import { UserlandSadb } from '../../src/userland/sadb';
import { UserlandEngine } from '../../src/userland/engine';
import { closeSocket, openSocket } from './helpers';
import type { ExpireEvent, SecurityAssociation } from '../../src/sadb/types';

const KEY = Buffer.alloc(20, 7); // AES-128-GCM KEYMAT: 16-byte key + 4-byte salt

function sa(over: Partial<SecurityAssociation> = {}): SecurityAssociation {
  return {
    src: '192.0.2.1',
    dst: '198.51.100.2',
    spi: 0x1000,
    mode: 'tunnel',
    encryption: { algorithm: 'aes-gcm-16', key: KEY },
    natt: { type: 'espinudp', sport: 4500, dport: 4500 },
    ...over,
  };
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('UserlandSadb: SAs', () => {
  it("openSadb({ backend: 'userland' }) gives a UserlandSadb", async () => {
    const db = await openSadb({ backend: 'userland' });
    expect(db).toBeInstanceOf(UserlandSadb);
    expect(db.backend).toBe('userland');
    await db.close();
  });

  const auto = chooseSadbBackend();
  it.runIf(auto.backend === 'userland')(`openSadb({ backend: 'auto' }) gives the userland database here (${auto.reason})`, async () => {
    const db = await openSadb({});
    expect(db).toBeInstanceOf(UserlandSadb);
    await db.add(sa());
    expect((await db.get(sa())).state).toBe('mature');
    await db.close();
  });

  it('add, get, update, delete with kernel-shaped errors', async () => {
    const db = new UserlandSadb();
    const added: SecurityAssociation[] = [];
    db.on('add', (s) => added.push(s));
    await db.add(sa());
    await expect(db.add(sa())).rejects.toMatchObject({ code: 'EEXIST', errno: -17, syscall: 'SADB_ADD' });
    const got = await db.get({ src: '192.0.2.1', dst: '198.51.100.2', spi: 0x1000 });
    expect(got).toMatchObject({ spi: 0x1000, mode: 'tunnel', state: 'mature', protocol: 'esp' });
    expect(Buffer.from(got.encryption!.key)).toEqual(KEY); // get() returns the keys, hidden from inspect
    expect(inspect(got, { depth: 5 })).not.toContain('7, 7, 7');
    expect(added[0].encryption!.key.length).toBe(0); // broadcasts carry no keys
    await expect(db.get({ src: '192.0.2.1', dst: '198.51.100.2', spi: 0x2000 })).rejects.toMatchObject({ code: 'ESRCH', errno: -3 });
    await expect(db.get({ src: '192.0.2.9', dst: '198.51.100.2', spi: 0x1000 })).rejects.toMatchObject({ code: 'ESRCH' });
    await expect(db.update(sa({ spi: 0x2000 }))).rejects.toMatchObject({ code: 'ESRCH', syscall: 'SADB_UPDATE' });
    await db.update(sa({ replayWindow: 128 }));
    expect((await db.get(sa())).replayWindow).toBe(128);
    await db.delete({ src: '192.0.2.1', dst: '198.51.100.2', spi: 0x1000 });
    await expect(db.delete({ src: '192.0.2.1', dst: '198.51.100.2', spi: 0x1000 })).rejects.toMatchObject({ code: 'ESRCH' });
  });

  it('key bytes never show in util.inspect of the database, its entries, events or errors', async () => {
    const key = Buffer.from('5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7', 'hex'); // 20 bytes, a recognisable pattern
    const db = new UserlandSadb({ revealKeys: true });
    const seen: unknown[] = [];
    db.on('add', (s) => seen.push(s));
    await db.add(sa({ encryption: { algorithm: 'aes-gcm-16', key } }));
    const err = await db.add(sa({ encryption: { algorithm: 'aes-gcm-16', key } })).catch((e: unknown) => e);
    const texts = [inspect(db, { depth: 10 }), inspect([...db.entries()], { depth: 10 }), inspect(seen, { depth: 10 }), inspect(err), String(err)];
    for (const t of texts) {
      expect(t).not.toMatch(/5ec7e7|5e c7 e7|94, 199, 231|0x5e, 0xc7/i);
    }
    expect(Buffer.from((seen[0] as SecurityAssociation).encryption!.key)).toEqual(key); // revealKeys: readable, not printed
  });

  it('names the option on caller mistakes', async () => {
    const db = new UserlandSadb();
    await expect(db.add(sa({ spi: 0 }))).rejects.toThrow(RangeError);
    await expect(db.add(sa({ spi: 0 }))).rejects.toThrow(/"spi"/);
    await expect(db.add(sa({ dst: 'nope' }))).rejects.toThrow(/"dst"/);
    await expect(db.add(sa({ dst: '2001:db8::1' }))).rejects.toThrow(TypeError);
    await expect(db.add(sa({ encryption: { algorithm: 'aes-gcm-16', key: Buffer.alloc(3) } }))).rejects.toThrow(/encryption.key/);
    await expect(db.add(sa({ natt: { type: 'espinudp', sport: 0, dport: 4500 } }))).rejects.toThrow(/natt.sport/);
    await expect(db.add(sa({ lifetime: { hard: { bytes: -1 } } }))).rejects.toThrow(/lifetime.hard.bytes/);
    await expect(db.add(sa({ natt: { type: 'espinudp', sport: 4500, dport: 4500, oa: { initiator: 'x' } } }))).rejects.toThrow(/natt.oa.initiator/);
  });

  it('update keeps the outbound sequence number (never an AEAD IV twice) and the replay window', async () => {
    const db = new UserlandSadb();
    await db.add(sa());
    const t1 = db.bySpi(0x1000)![0].transform!;
    t1.seal(Buffer.alloc(8), 4);
    t1.seal(Buffer.alloc(8), 4);
    await db.update(sa({ lifetime: { hard: { bytes: 1e9 } } })); // same keys: same transform
    expect(db.bySpi(0x1000)![0].transform).toBe(t1);
    await db.update(sa({ replayWindow: 256 })); // new parameters: a new transform that goes on counting
    const t2 = db.bySpi(0x1000)![0].transform!;
    expect(t2).not.toBe(t1);
    expect(t2.outboundSeq).toBe(2n);
    expect(t2.seal(Buffer.alloc(8), 4).readUInt32BE(4)).toBe(3);
  });

  it('dump, deleteAll, flush; IPv6 addresses in canonical form', async () => {
    const db = new UserlandSadb();
    await db.add(sa());
    await db.add(sa({ spi: 0x1001 }));
    await db.add(sa({ src: '2001:db8:0:0::1', dst: '2001:DB8::2', spi: 0x1002 }));
    const d = await all(db.dump());
    expect(d.map((s) => s.spi).sort()).toEqual([0x1000, 0x1001, 0x1002]);
    expect(d.find((s) => s.spi === 0x1002)).toMatchObject({ src: '2001:db8::1', dst: '2001:db8::2' });
    const deleted: number[] = [];
    db.on('delete', (id) => deleted.push(id.spi));
    await db.deleteAll({ src: '192.0.2.1', dst: '198.51.100.2' });
    expect(deleted.sort()).toEqual([0x1000, 0x1001]);
    await db.flush();
    expect(await all(db.dump())).toEqual([]);
  });

  it('getSpi makes a larval SA in range that update() completes', async () => {
    const db = new UserlandSadb();
    const spi = await db.getSpi({ src: '192.0.2.1', dst: '198.51.100.2', min: 0x5000, max: 0x5fff });
    expect(spi).toBeGreaterThanOrEqual(0x5000);
    expect(spi).toBeLessThanOrEqual(0x5fff);
    expect((await db.get({ src: '192.0.2.1', dst: '198.51.100.2', spi })).state).toBe('larval');
    await expect(db.add(sa({ spi }))).rejects.toMatchObject({ code: 'EEXIST' });
    await db.update(sa({ spi }));
    expect((await db.get(sa({ spi }))).state).toBe('mature');
    expect(await db.getSpi({ src: '192.0.2.1', dst: '198.51.100.2', min: 0x7777, max: 0x7777 })).toBe(0x7777);
    await expect(db.getSpi({ src: '192.0.2.1', dst: '198.51.100.2', min: 0x7777, max: 0x7777 })).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('register lists the algorithms the engine implements', async () => {
    const db = new UserlandSadb();
    const seen: unknown[] = [];
    db.on('register', (r) => seen.push(r));
    const r = await db.register('esp');
    expect(r.encryption.map((e) => e.algorithm)).toContain('aes-gcm-16');
    expect(r.integrity.map((e) => e.algorithm)).toContain('hmac-sha2-256-128');
    expect(seen).toHaveLength(1);
  });
});

describe('UserlandSadb: SPD', () => {
  const pol = {
    selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' },
    direction: 'out' as const,
    action: 'ipsec' as const,
    templates: [{ protocol: 'esp' as const, mode: 'tunnel' as const, src: '192.0.2.1', dst: '198.51.100.2' }],
  };

  it('spdAdd / spdGet / spdUpdate / spdDelete / spdDump / spdFlush', async () => {
    const db = new UserlandSadb();
    const p = await db.spdAdd(pol);
    expect(p.id! & 7).toBe(1); // Linux: index low bits = direction (out = 1)
    await expect(db.spdAdd({ ...pol, selector: { src: '10.1.255.255/16', dst: '10.2.0.0/16' } })).rejects.toMatchObject({
      code: 'EEXIST',
    });
    expect(await db.spdGet({ id: p.id! })).toMatchObject({ action: 'ipsec', direction: 'out' });
    await db.spdUpdate({ ...pol, action: 'discard', templates: undefined });
    expect((await db.spdGet({ selector: pol.selector, direction: 'out' })).action).toBe('discard');
    expect(await all(db.spdDump())).toHaveLength(1);
    await db.spdDelete({ id: p.id! });
    await expect(db.spdGet({ id: p.id! })).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(db.spdDelete({ id: p.id! })).rejects.toMatchObject({ code: 'ENOENT' });
    await db.spdAdd(pol);
    await db.spdFlush();
    expect(await all(db.spdDump())).toHaveLength(0);
  });

  it('rejects bad policies naming the field', async () => {
    const db = new UserlandSadb();
    await expect(db.spdAdd({ ...pol, selector: { src: '10.1.0.0/33', dst: '10.2.0.0/16' } })).rejects.toThrow(/"selector.src"/);
    await expect(db.spdAdd({ ...pol, templates: [] })).rejects.toThrow(/"templates"/);
    await expect(db.spdAdd({ ...pol, direction: 'up' as never })).rejects.toThrow(/"direction"/);
    await expect(db.spdAdd({ ...pol, selector: { ...pol.selector, dport: 70000 } })).rejects.toThrow(/dport/);
  });
});

describe('UserlandSadb: lifetimes (fake timers)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('add-time soft then hard: expire events, the SA dying then gone', async () => {
    vi.useFakeTimers();
    const db = new UserlandSadb();
    const ev: ExpireEvent[] = [];
    db.on('expire', (e) => ev.push(e));
    await db.add(sa({ lifetime: { soft: { addSeconds: 60 }, hard: { addSeconds: 90 } } }));
    vi.advanceTimersByTime(59_000);
    expect(ev).toHaveLength(0);
    vi.advanceTimersByTime(1_000);
    expect(ev.map((e) => e.kind)).toEqual(['soft']);
    expect(ev[0].sa.encryption!.key.length).toBe(0); // no keys in expire events
    expect((await db.get(sa())).state).toBe('dying');
    vi.advanceTimersByTime(30_000);
    expect(ev.map((e) => e.kind)).toEqual(['soft', 'hard']);
    await expect(db.get(sa())).rejects.toMatchObject({ code: 'ESRCH' });
  });

  it("the SA's EspTransform running out of sequence numbers raises a hard 'expire' and removes the SA", async () => {
    const db = new UserlandSadb();
    const ev: ExpireEvent[] = [];
    db.on('expire', (e) => ev.push(e));
    await db.add(sa({ spi: 7 }));
    const t = db.bySpi(7)![0].transform!;
    // What seal() emits when it hands out the last sequence number (test/esp/transform.test.ts drives that part).
    t.emit('expire', { kind: 'hard', reason: 'seq-exhausted', spi: 7 });
    expect(ev.map((e) => [e.kind, e.sa.spi])).toEqual([['hard', 7]]);
    await expect(db.get(sa({ spi: 7 }))).rejects.toMatchObject({ code: 'ESRCH' });
  });

  it('use-time counts from the first use; bytes and packets limits', async () => {
    vi.useFakeTimers();
    const db = new UserlandSadb();
    const ev: string[] = [];
    db.on('expire', (e) => ev.push(`${e.kind}:${e.sa.spi}`));
    await db.add(sa({ spi: 1, lifetime: { hard: { useSeconds: 10 } } }));
    await db.add(sa({ spi: 2, lifetime: { soft: { bytes: 1000 }, hard: { bytes: 2000 } } }));
    await db.add(sa({ spi: 3, lifetime: { soft: { packets: 2 }, hard: { packets: 3 } } }));
    vi.advanceTimersByTime(60_000);
    expect(ev).toEqual([]); // unused: the use-time clock has not started
    const e1 = db.bySpi(1)![0];
    e1.lifetime.use(100);
    vi.advanceTimersByTime(9_999);
    expect(ev).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ev).toEqual(['hard:1']);
    const e2 = db.bySpi(2)![0];
    e2.lifetime.use(999);
    expect(ev).toEqual(['hard:1']);
    e2.lifetime.use(1);
    expect(ev).toEqual(['hard:1', 'soft:2']);
    e2.lifetime.use(1000);
    expect(ev).toEqual(['hard:1', 'soft:2', 'hard:2']);
    const e3 = db.bySpi(3)![0];
    e3.lifetime.use(1);
    e3.lifetime.use(1);
    e3.lifetime.use(1);
    expect(ev).toEqual(['hard:1', 'soft:2', 'hard:2', 'soft:3', 'hard:3']);
    expect((await all(db.dump())).map((s) => s.spi)).toEqual([]);
  });

  it('lifetime and keepalive timers never keep the process alive (real timers)', async () => {
    const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const db = new UserlandSadb();
    await db.add(sa({ lifetime: { soft: { addSeconds: 3600, useSeconds: 60 }, hard: { addSeconds: 7200 } } }));
    db.bySpi(0x1000)![0].lifetime.use(1); // arms the use-time timer too
    const socket = await openSocket(4);
    const engine = new UserlandEngine({ socket, sadb: db }); // its 20 s keepalive interval
    expect(timeouts()).toBe(before);
    engine.close();
    await closeSocket(socket);
    await db.close();
  });

  it('timers stop on delete', async () => {
    vi.useFakeTimers();
    const db = new UserlandSadb();
    const ev: unknown[] = [];
    db.on('expire', (e) => ev.push(e));
    await db.add(sa({ lifetime: { hard: { addSeconds: 5 } } }));
    await db.delete(sa());
    vi.advanceTimersByTime(10_000);
    expect(ev).toEqual([]);
  });
});
