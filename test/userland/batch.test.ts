// The engine's batched path on loopback: sendBatch (sealed in place, one transport call) and the batched receive.

import { afterEach, describe, expect, it } from 'vitest';
import * as dgram from 'node:dgram';
import type { NattSocket } from '../../src/natt/socket';
import { BATCH_BYPASS, BATCH_SENT, SEAL_HEADROOM, SEAL_TAILROOM, UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative } from '../../src/native/binding';
import { GCM_KEY_AB, GCM_KEY_BA, openSocket, closeSocket, installPair, until, type Endpoint } from './helpers';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

const native = loadNative() !== null;

async function endpoint(family: 4 | 6, batched: boolean) {
  const sock = await openSocket(family);
  const db = new UserlandSadb();
  const engine = new UserlandEngine({ socket: sock, sadb: db });
  const got: Buffer[] = [];
  const sinkCalls: number[] = [];
  engine.on('packet', (p) => got.push(Buffer.from(p)));
  const on = batched
    ? engine.onPackets((slab, offsets, lengths, count) => {
        sinkCalls.push(count);
        for (let i = 0; i < count; i++) got.push(Buffer.from(slab.subarray(offsets[i], offsets[i] + lengths[i])));
      })
    : false;
  cleanup.push(() => closeSocket(sock), () => engine.close());
  return { sock, db, engine, got, on, sinkCalls };
}

async function pair(family: 4 | 6, batchedA: boolean, batchedB: boolean) {
  const a = await endpoint(family, batchedA);
  const b = await endpoint(family, batchedB);
  const lo = family === 4 ? '127.0.0.1' : '::1';
  const A: Endpoint = { address: lo, port: a.sock.address().port, net: family === 4 ? '10.1.0.0/16' : 'fd00:1::/64' };
  const B: Endpoint = { address: lo, port: b.sock.address().port, net: family === 4 ? '10.2.0.0/16' : 'fd00:2::/64' };
  await installPair(a.db, 'tunnel', A, B, { out: 0x1001, in: 0x2002 }, { out: GCM_KEY_AB, in: GCM_KEY_BA }, { replayWindow: 1024 });
  await installPair(b.db, 'tunnel', B, A, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB }, { replayWindow: 1024 });
  return { a, b };
}

/** A read slab laid out as the Tun's: `headroom` bytes in front, packet i at i * slot, room behind each. */
function slabOf(packets: Buffer[], slot: number, headroom = SEAL_HEADROOM) {
  const whole = Buffer.alloc(headroom + packets.length * slot);
  const slab = whole.subarray(headroom);
  const lengths = new Uint32Array(packets.length);
  packets.forEach((p, i) => {
    p.copy(slab, i * slot);
    lengths[i] = p.length;
  });
  return { slab, lengths };
}

describe.each([4, 6] as const)('the batched path, IPv%i', (family) => {
  const [hA, hB] = family === 4 ? ['10.1.0.5', '10.2.0.7'] : ['fd00:1::5', 'fd00:2::7'];
  const inner = (i: number, size: number) => buildUdpPacket(hA, 1000 + i, hB, 2222, Buffer.alloc(size, i & 0xff));

  for (const [batchedA, batchedB] of [
    [true, true],
    [false, true],
    [true, false],
  ] as const) {
    it(`sendBatch ${batchedA ? 'sealed in place' : 'vs send()'} → ${batchedB ? 'batched receive' : "'packet' events"}: byte-exact, in order, counted`, async () => {
      const { a, b } = await pair(family, false, batchedB);
      expect(b.on).toBe(batchedB && native);
      const packets = Array.from({ length: 40 }, (_, i) => inner(i, 17 + i * 31));
      // A bypass packet in the middle (no policy covers it) is reported and left alone.
      const stray = buildUdpPacket(family === 4 ? '10.9.0.1' : 'fd00:9::1', 1, hB, 2, Buffer.from('stray'));
      const all = [...packets.slice(0, 20), stray, ...packets.slice(20)];
      if (batchedA) {
        const slot = 2048;
        const { slab, lengths } = slabOf(all, slot);
        const results = new Uint8Array(all.length);
        expect(a.engine.sendBatch(slab, lengths, all.length, slot, results, SEAL_HEADROOM)).toBe(40);
        expect(results[20]).toBe(BATCH_BYPASS);
        expect([...results].filter((r) => r === BATCH_SENT)).toHaveLength(40);
        expect(slab.subarray(20 * slot, 20 * slot + stray.length)).toEqual(stray); // not sealed: as it was
      } else {
        for (const p of all) a.engine.send(p);
      }
      await until(() => b.got.length === 40, 5000, 'B to receive 40');
      expect(b.got).toEqual(packets);
      expect(a.engine.traffic()).toMatchObject({ outPackets: 40, outBypass: 1 });
      expect(b.engine.traffic()).toMatchObject({ inPackets: 40 });
      expect(Object.values(b.engine.stats()).every((n) => n === 0)).toBe(true);
      if (b.on) expect(b.sinkCalls.reduce((s, n) => s + n, 0)).toBe(40);
    });
  }

  it('a slab without room around its packets: each goes the one-packet way, still delivered', async () => {
    const { a, b } = await pair(family, false, true);
    const packets = Array.from({ length: 8 }, (_, i) => inner(i, 100));
    const slot = packets[0].length; // no room at all
    const { slab, lengths } = slabOf(packets, slot, 0);
    const results = new Uint8Array(8);
    expect(a.engine.sendBatch(slab, lengths, 8, slot, results)).toBe(8);
    await until(() => b.got.length === 8, 5000, 'B to receive 8');
    expect(b.got).toEqual(packets);
  });

  it.skipIf(!native)('replayed datagrams are refused on the batched receive (InStateSeqError), fresh ones pass', async () => {
    const { b } = await pair(family, false, true);
    // A plain socket plays A: it sends what A's engine sealed (captured) to B, twice.
    const lo = family === 4 ? '127.0.0.1' : '::1';
    const tap = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
    await new Promise<void>((r) => tap.bind(0, lo, () => r()));
    cleanup.push(() => new Promise<void>((r) => tap.close(() => r())));
    const seen: Buffer[] = [];
    tap.on('message', (m) => seen.push(m));
    // An engine whose peer is the tap: the SA's natt ports point there.
    const sock = await openSocket(family);
    cleanup.push(() => closeSocket(sock));
    const db = new UserlandSadb();
    const eng = new UserlandEngine({ socket: sock, sadb: db });
    cleanup.push(() => eng.close());
    const A: Endpoint = { address: lo, port: sock.address().port, net: family === 4 ? '10.1.0.0/16' : 'fd00:1::/64' };
    const T: Endpoint = { address: lo, port: tap.address().port, net: family === 4 ? '10.2.0.0/16' : 'fd00:2::/64' };
    await installPair(db, 'tunnel', A, T, { out: 0x1001, in: 0x2002 }, { out: GCM_KEY_AB, in: GCM_KEY_BA }, { replayWindow: 1024 });
    const packets = Array.from({ length: 10 }, (_, i) => inner(i, 200));
    const { slab, lengths } = slabOf(packets, 2048);
    expect(eng.sendBatch(slab, lengths, 10, 2048, new Uint8Array(10), SEAL_HEADROOM)).toBe(10);
    await until(() => seen.length === 10, 5000, 'the tap to capture 10');
    const bPort = b.sock.address().port;
    for (const d of [...seen, ...seen.slice(0, 4)]) tap.send(d, bPort, lo);
    await until(() => b.engine.stats().InStateSeqError === 4, 5000, '4 replays refused');
    expect(b.got).toEqual(packets);
  });
});

describe.skipIf(!native)('one batch consumer per socket', () => {
  it("other 'esp' listeners still get their copies (untouched by the in-place open); a second handler is refused", async () => {
    const { a, b } = await pair(4, false, true);
    const copies: Buffer[] = [];
    b.sock.on('esp', (p) => copies.push(p));
    const other = new UserlandEngine({ socket: b.sock, sadb: new UserlandSadb() });
    cleanup.push(() => other.close());
    expect(other.onPackets(() => {})).toBe(false); // the socket's batch belongs to b.engine
    const p = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('both'));
    expect(a.engine.send(p)).toBe('sent');
    await until(() => b.got.length === 1 && copies.length === 1, 5000, 'the batch and the listener');
    expect(b.got[0]).toEqual(p);
    expect(copies[0].readUInt32BE(0)).toBe(0x1001); // still ESP: the copy was taken before the open
    expect(other.stats().InNoStates).toBe(1); // the other engine saw it through 'esp', knew no SA
  });
});

describe('sendBatch checks its arguments at once', () => {
  it('bad slab, lengths, count, slot size and headroom are TypeError/RangeError naming them', async () => {
    const { a } = await pair(4, false, false);
    const slab = Buffer.alloc(4096);
    const lengths = new Uint32Array(2);
    const results = new Uint8Array(2);
    expect(() => a.engine.sendBatch('x' as never, lengths, 1, 2048, results)).toThrow(/slab/);
    expect(() => a.engine.sendBatch(slab, [1] as never, 1, 2048, results)).toThrow(/lengths/);
    expect(() => a.engine.sendBatch(slab, lengths, 3, 2048, results)).toThrow(/count/);
    expect(() => a.engine.sendBatch(slab, lengths, 1, 0, results)).toThrow(/slotSize/);
    expect(() => a.engine.sendBatch(slab, lengths, 1, 2048, results, 10)).toThrow(/headroom/);
    expect(SEAL_TAILROOM).toBeGreaterThan(0);
  });
});
