// One regression test per defect of the hardening sweep (issue 10): each fails on the code before its fix.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { EspTransform, ReplayWindow } from '../../src/esp';
import { UserlandSadb, MAX_ACQUIRE_ENTRIES } from '../../src/userland/sadb';
import { UserlandEngine } from '../../src/userland/engine';
import { classify } from '../../src/natt/demux';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { PfKey } from '../../src/pfkey/client';
import { Xfrm } from '../../src/xfrm/client';
import { RequestLayer } from '../../src/kernel/requests';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative, nativeStatus } from '../../src/native/binding';
import { memoryPair } from '../lib/memory-transport';
import { scriptedTransport } from '../lib/scripted-transport';
import { GCM_KEY_AB, GCM_KEY_BA, installPair, type Endpoint } from '../userland/helpers';
import type { NewMappingEvent, SecurityAssociation } from '../../src/sadb/types';

const CBC_KEY = Buffer.alloc(16, 7);
const HMAC_KEY = Buffer.alloc(20, 9);
const base: SecurityAssociation = { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1234, encryption: { algorithm: 'aes-gcm-16', key: Buffer.alloc(20, 1) } };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length) await cleanups.pop()!();
});

async function rig() {
  const A: Endpoint = { address: '192.0.2.1', port: 4500, net: '10.1.0.0/16' };
  const B: Endpoint = { address: '198.51.100.1', port: 4501, net: '10.2.0.0/16' };
  const [ta, tb] = memoryPair(A, B);
  const dbA = new UserlandSadb();
  const dbB = new UserlandSadb();
  await installPair(dbA, 'tunnel', A, B, { out: 0x1001, in: 0x2002 }, { out: GCM_KEY_AB, in: GCM_KEY_BA });
  await installPair(dbB, 'tunnel', B, A, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
  const a = new UserlandEngine({ socket: ta, sadb: dbA, keepaliveSeconds: 0 });
  const b = new UserlandEngine({ socket: tb, sadb: dbB, keepaliveSeconds: 0 });
  cleanups.push(() => a.close(), () => b.close());
  return { A, B, ta, tb, dbA, dbB, a, b, ab: buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('x')) };
}

describe('crashes', () => {
  it.skipIf(!loadNative())('D1: a worker that alone loaded the addon exits with a message socket open: the process survives', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const code = "const a = require(require('node:worker_threads').workerData); globalThis.k = new a.MessageSocket(a.constants.AF_NETLINK, a.constants.SOCK_RAW, 0, () => {}, () => {}); require('node:worker_threads').parentPort.postMessage(1);";
      (async () => {
        for (let i = 0; i < 4; i++) {
          const w = new Worker(code, { eval: true, workerData: process.argv[1] });
          await new Promise((r) => w.once('message', r));
          await w.terminate();
        }
        console.log('survived');
      })();`;
    const r = spawnSync(process.execPath, ['-e', script, path.resolve(nativeStatus().path!)], { encoding: 'utf8', timeout: 30_000 });
    expect(r.signal).toBeNull();
    expect(r.stdout.trim()).toBe('survived');
    expect(r.status).toBe(0);
  });

  it('D2: a signal that is not an AbortSignal is a TypeError at once, and nothing stays armed or held', async () => {
    vi.useFakeTimers();
    const t = scriptedTransport();
    const p = new PfKey({ dialect: 'linux', transport: t.transport, timeout: 50 });
    const ac = new AbortController();
    for (const signal of [{}, ac]) {
      await expect(p.add(base, { signal } as never)).rejects.toThrow(/option "signal" must be an AbortSignal/);
      const dump = p.dump('esp', { signal } as never)[Symbol.asyncIterator]();
      await expect(dump.next()).rejects.toThrow(/option "signal"/);
    }
    expect(vi.getTimerCount()).toBe(0);
    expect(t.sent).toHaveLength(0);
    // The dump lock is free: a good dump is sent at once.
    const it = p.dump('esp')[Symbol.asyncIterator]();
    const first = it.next();
    await vi.advanceTimersByTimeAsync(1);
    expect(t.sent).toHaveLength(1);
    const timedOut = expect(first).rejects.toThrow(/got no reply/);
    await vi.advanceTimersByTimeAsync(100);
    await timedOut;
    await p.close();
  });

  it("D3: spdAdd refuses a template whose src/dst is not an address; the engine's listener never throws", async () => {
    const db = new UserlandSadb();
    await expect(
      db.spdAdd({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: 5 as never, dst: '192.0.2.2' }] }),
    ).rejects.toThrow(/option "templates\[0\].src"/);
    // The defect's own input: a string that is not an address (accepted before the fix, then thrown on by the first
    // matching packet inside the socket listener).
    for (const bad of ['not-an-address', '10.0.0.0/8', '', '192.0.2.300']) {
      for (const field of ['src', 'dst'] as const) {
        const t = { protocol: 'esp' as const, mode: 'tunnel' as const, src: '192.0.2.1', dst: '192.0.2.2', [field]: bad };
        await expect(
          db.spdAdd({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'out', action: 'ipsec', templates: [t] }),
        ).rejects.toThrow(new RegExp(`option "templates\\[0\\]\\.${field}"`));
      }
    }
    for await (const _ of db.spdDump()) throw new Error('a refused policy was stored');
    const r = await rig();
    const before = r.b.stats().InError;
    expect(() => r.tb.emit('esp', Buffer.alloc(20, 1), null)).not.toThrow();
    expect(r.b.stats().InError).toBe(before + 1);
  });

  it('D4: sendIke / sendKeepalive / sendEsp refuse a callback that is not a function', async () => {
    const s = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
    cleanups.push(() => new Promise<void>((res) => s.close(() => res())));
    expect(() => s.sendIke(Buffer.from('x'), 4500, '127.0.0.1', 'yes' as never)).toThrow(/option "callback" must be a function/);
    expect(() => s.sendKeepalive(4500, '127.0.0.1', 1 as never)).toThrow(TypeError);
    expect(() => s.sendEsp(Buffer.alloc(20, 1), 4500, '127.0.0.1', {} as never)).toThrow(TypeError);
  });
});

describe('weakened ESP', () => {
  it('D5: encryption without integrity is refused naming integrity, unless the SA says allowNoIntegrity', async () => {
    const cbc = { spi: 5, encryption: { algorithm: 'aes-cbc' as const, key: CBC_KEY } };
    expect(() => new EspTransform(cbc)).toThrow(/option "integrity"/);
    expect(() => new EspTransform({ ...cbc, integrity: { algorithm: 'none', key: Buffer.alloc(0) } })).toThrow(/option "integrity"/);
    expect(() => new EspTransform({ ...cbc, allowNoIntegrity: true })).not.toThrow();
    const sa: SecurityAssociation = { ...base, encryption: { algorithm: 'aes-cbc', key: CBC_KEY } };
    const db = new UserlandSadb();
    await expect(db.add(sa)).rejects.toThrow(/option "integrity"/);
    await expect(db.add({ ...sa, allowNoIntegrity: true })).resolves.toBeUndefined();
    await expect(db.add({ ...sa, spi: 77, integrity: { algorithm: 'hmac-sha1-96', key: HMAC_KEY } })).resolves.toBeUndefined();
    const t = scriptedTransport();
    const p = new PfKey({ dialect: 'linux', transport: t.transport });
    await expect(p.add(sa)).rejects.toThrow(/option "integrity"/);
    expect(t.sent).toHaveLength(0);
    await p.close();
    const x = await Xfrm.open({ transport: scriptedTransport().transport });
    await expect(x.add(sa)).rejects.toThrow(/option "integrity"/);
    await x.close();
  });

  it('D9: options are read from own properties only (a polluted Object.prototype changes nothing)', async () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.replayWindow = 0;
    proto.esn = true;
    proto.revealKeys = true;
    proto.transport = () => {
      throw new Error('the prototype transport was used');
    };
    try {
      const t = new EspTransform({ spi: 9, encryption: { algorithm: 'aes-gcm-16', key: Buffer.alloc(20, 3) } });
      expect(t.replay.size).toBe(64);
      expect(t.esn).toBe(false);
      const db = new UserlandSadb();
      const events: SecurityAssociation[] = [];
      db.on('add', (sa) => events.push(sa));
      await db.add({ ...base });
      expect(events[0].encryption!.key.length).toBe(0); // no keys in events: revealKeys came from the prototype
      const sa = await db.get(base);
      expect(Object.prototype.hasOwnProperty.call(sa, 'esn')).toBe(false); // (any plain object reads the polluted esn)
      const x = await Xfrm.open({ transport: scriptedTransport().transport });
      await x.close();
    } finally {
      delete proto.replayWindow;
      delete proto.esn;
      delete proto.revealKeys;
      delete proto.transport;
    }
  });

  it('D15: a held-back genuine packet re-sent from an attacker does not move the peer', async () => {
    const r = await rig();
    const seen: NewMappingEvent[] = [];
    r.b.on('newMapping', (e) => seen.push(e));
    r.ta.dropAll = true;
    r.a.send(r.ab); // #1 held back by the attacker
    r.ta.dropAll = false;
    const held = r.ta.sent.at(-1)!.bytes;
    for (let i = 0; i < 3; i++) r.a.send(r.ab); // #2..#4 arrive
    r.tb.inject(held, { address: '203.0.113.66', port: 6666 }); // authentic, inside the window, not the newest
    expect(seen).toHaveLength(0);
    const ba = buildUdpPacket('10.2.0.7', 2, '10.1.0.5', 1, Buffer.from('y'));
    for (let i = 0; i < 5; i++) r.b.send(ba);
    const replies = r.tb.sent.filter((s) => s.kind === 'esp');
    expect(replies).toHaveLength(5);
    for (const s of replies) expect(s).toMatchObject({ address: r.A.address, port: r.A.port });
  });

  it('D16: ReplayWindow.commit refuses numbers outside its space', () => {
    const w = new ReplayWindow({ size: 64 });
    expect(() => w.commit(1e10)).toThrow(RangeError);
    expect(() => w.commit(5, 1)).toThrow(/seqHigh/);
    expect(() => w.commit(-1)).toThrow(RangeError);
    expect(() => w.commit(1.5)).toThrow(RangeError);
    expect(w.highest).toBe(0n);
    expect(w.check(3)).toBe(0);
  });
});

describe('time and state', () => {
  it('D6: a 25-day lifetime does not expire in 4 ms; 30-day keepalives are one a month; timeouts past 2^31 ms work', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
    const db = new UserlandSadb();
    const expired: string[] = [];
    db.on('expire', (e) => expired.push(e.kind));
    await db.add({ ...base, lifetime: { hard: { addSeconds: 25 * 86400 } } });
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(25 * 86400_000);
    expect(expired).toEqual(['hard']);
    const [ta] = memoryPair({ address: '192.0.2.1', port: 4500 }, { address: '192.0.2.2', port: 4500 });
    const db2 = new UserlandSadb();
    await db2.add({ ...base, natt: { type: 'espinudp', sport: 4500, dport: 4500 } });
    const e = new UserlandEngine({ socket: ta, sadb: db2, keepaliveSeconds: 30 * 86400 });
    vi.advanceTimersByTime(1000);
    e.close();
    expect(ta.sent.filter((s) => s.kind === 'keepalive')).toHaveLength(0);
    const l = new RequestLayer({ transport: { send: () => true, onceWritable: () => {}, ref() {}, unref() {} }, closedError: () => new Error('x'), timeout: 10 });
    const pending = l.request({ what: 'R', key: 1, bytes: Uint8Array.of(1) }, { timeout: 2 ** 32 }, undefined);
    vi.advanceTimersByTime(10_000);
    expect(l.size).toBe(1);
    l.find(1)!.resolve('ok');
    await expect(pending).resolves.toBe('ok');
    await expect(l.request({ what: 'R', key: 2, bytes: Uint8Array.of(1) }, { timeout: NaN }, undefined)).rejects.toThrow(/"timeout"/);
    await expect(l.request({ what: 'R', key: 2, bytes: Uint8Array.of(1) }, { timeout: '30s' }, undefined)).rejects.toThrow(TypeError);
  });

  it('D14: the acquire rate limit is bounded; larval SAs expire after larvalSeconds', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const db = new UserlandSadb({ larvalSeconds: 30 });
    const pol = await db.spdAdd({ selector: { src: '10.0.0.0/8', dst: '0.0.0.0/0' }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'transport' }] });
    const entry = db.policies.find({ id: pol.id! })!;
    let acquires = 0;
    db.on('acquire', () => acquires++);
    for (let i = 0; i < 20_000; i++) db.acquire(entry, '10.0.0.1', `198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(acquires).toBe(20_000);
    expect(db.acquireEntries).toBeLessThanOrEqual(MAX_ACQUIRE_ENTRIES);
    const spi = await db.getSpi({ src: '192.0.2.9', dst: '192.0.2.1' });
    const expired: string[] = [];
    db.on('expire', (e) => expired.push(`${e.kind}:${e.sa.spi}:${e.sa.state}`));
    vi.advanceTimersByTime(29_000);
    expect((await db.get({ src: '192.0.2.9', dst: '192.0.2.1', spi })).state).toBe('larval');
    vi.advanceTimersByTime(2_000);
    expect(expired).toEqual([`hard:${spi}:dead`]);
    await expect(db.get({ src: '192.0.2.9', dst: '192.0.2.1', spi })).rejects.toMatchObject({ code: 'ESRCH' });
  });

  it('D12: an inner packet too big for an ESP-in-UDP datagram is refused up front and counted once', async () => {
    const r = await rig();
    const big = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.alloc(65_508 - 28));
    expect(r.a.send(big)).toBe('dropped');
    await Promise.resolve();
    expect(r.a.stats().OutStateModeError).toBe(1);
    expect(r.a.stats().OutError).toBe(0);
    expect(r.a.traffic().outPackets).toBe(0);
    expect(r.ta.sent).toHaveLength(0);
  });

  it('D13: the userland backend honours CallOptions as the kernel ones do', async () => {
    const db = new UserlandSadb();
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(db.add(base, { signal: ac.signal })).rejects.toThrow('stop');
    await expect(db.get(base)).rejects.toMatchObject({ code: 'ESRCH' }); // nothing was committed
    await expect(db.add(base, { signal: {} as never })).rejects.toThrow(/"signal"/);
    await expect(db.add(base, { timeout: -1 })).rejects.toThrow(/"timeout"/);
    await expect(db.add(base, { timeout: 10 })).resolves.toBeUndefined();
  });

  it('A18: a send that fails after the call returned is counted as a failure, never as sent', async () => {
    const r = await rig();
    r.ta.failWith = Object.assign(new Error('ENETUNREACH'), { code: 'ENETUNREACH' });
    expect(r.a.send(r.ab)).toBe('sent');
    await new Promise((res) => setImmediate(res));
    expect(r.a.stats().OutError).toBe(1);
    expect(r.a.traffic().outPackets).toBe(0);
    // The NAT-T socket: no callback, no 'error' listener: counted in sendErrors, not sent, no crash.
    const s: NattSocket = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
    cleanups.push(() => new Promise<void>((res) => s.close(() => res())));
    s.sendEsp(Buffer.alloc(70_000, 1), 9, '127.0.0.1'); // EMSGSIZE
    await new Promise((res) => setTimeout(res, 50));
    expect(s.stats()).toMatchObject({ sentEsp: 0, sendErrors: 1 });
  });
});

describe('boundary', () => {
  it('D10: caller mistakes are TypeErrors/RangeErrors naming the field, never internal errors', async () => {
    expect(() => classify(null as never)).toThrow(/option "buf"/);
    expect(() => classify(Buffer.alloc(9, 1), 'ESPINUDP' as never)).toThrow(/option "encap"/);
    const db = new UserlandSadb();
    await expect(db.get({ src: '192.0.2.1', dst: null as never, spi: 1 })).rejects.toThrow(/option "dst"/);
    await expect(db.spdAdd({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'constructor' as never, action: 'none' })).rejects.toThrow(/option "direction"/);
    await expect(db.add({ ...base, src: Symbol('x') as never })).rejects.toThrow(/option "src"/);
    await expect(db.spdAdd({ selector: { src: Symbol('x') as never, dst: '10.0.0.0/8' }, direction: 'in', action: 'none' })).rejects.toThrow(/option "selector.src"/);
  });

  it('D11: silent accepts are refused: reqid, esn, keepaliveInterval, an empty peer address, an array of options, unknown names', async () => {
    const db = new UserlandSadb();
    for (const reqid of [-5, 'abc', NaN, 2 ** 40]) await expect(db.add({ ...base, reqid: reqid as never })).rejects.toThrow(/option "reqid"/);
    await expect(db.add({ ...base, esn: 1 as never })).rejects.toThrow(/option "esn"/);
    await expect(db.add({ ...base, natt: { type: 'espinudp', sport: 4500, dport: 4500, keepaliveInterval: -1 } })).rejects.toThrow(/natt.keepaliveInterval/);
    await expect(db.add({ ...base, spii: 3 } as never)).rejects.toThrow(/unknown option "spii"/);
    expect(() => createNattSocket([] as never)).toThrow(/option "options" must be an object/);
    expect(() => createNattSocket({ adress: '127.0.0.1' } as never)).toThrow(/unknown option "adress"/);
    const s = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
    cleanups.push(() => new Promise<void>((res) => s.close(() => res())));
    expect(() => s.sendIke(Buffer.from('x'), 4500, '')).toThrow(/option "address"/);
    expect(() => new UserlandSadb({ larvalSecond: 3 } as never)).toThrow(/unknown option "larvalSecond"/);
    expect(() => new UserlandEngine({ socket: s, keepalive: 3 } as never)).toThrow(/unknown option "keepalive"/);
  });
});
