// UserlandEngine over the in-memory transport pair (test/lib/memory-transport.ts): the datapath's rules without sockets.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import type { NewMappingEvent } from '../../src/sadb/types';
import { memoryPair, type MemoryTransport } from '../lib/memory-transport';
import { GCM_KEY_AB, GCM_KEY_BA, installPair, type Endpoint } from './helpers';

const engines: UserlandEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
  vi.useRealTimers();
});

async function rig(opts: { keepaliveSeconds?: number } = {}) {
  const A: Endpoint = { address: '192.0.2.1', port: 4500, net: '10.1.0.0/16' };
  const B: Endpoint = { address: '198.51.100.1', port: 4501, net: '10.2.0.0/16' };
  const [ta, tb] = memoryPair(A, B);
  const dbA = new UserlandSadb();
  const dbB = new UserlandSadb();
  await installPair(dbA, 'tunnel', A, B, { out: 0x1001, in: 0x2002 }, { out: GCM_KEY_AB, in: GCM_KEY_BA });
  await installPair(dbB, 'tunnel', B, A, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
  const a = new UserlandEngine({ socket: ta, sadb: dbA, keepaliveSeconds: opts.keepaliveSeconds });
  const b = new UserlandEngine({ socket: tb, sadb: dbB, keepaliveSeconds: opts.keepaliveSeconds });
  engines.push(a, b);
  const gotA: Buffer[] = [];
  const gotB: Buffer[] = [];
  a.on('packet', (p) => gotA.push(Buffer.from(p)));
  b.on('packet', (p) => gotB.push(Buffer.from(p)));
  const ab = buildUdpPacket('10.1.0.5', 1111, '10.2.0.7', 2222, Buffer.from('from A'));
  const ba = buildUdpPacket('10.2.0.7', 2222, '10.1.0.5', 1111, Buffer.from('from B'));
  return { A, B, ta, tb, dbA, dbB, a, b, gotA, gotB, ab, ba };
}

const lastEsp = (t: MemoryTransport): Buffer => t.sent.filter((s) => s.kind === 'esp').at(-1)!.bytes;

describe('UserlandEngine over an in-memory transport', () => {
  it('carries tunnel-mode packets both ways, counts them, and owns its counters', async () => {
    const r = await rig();
    expect(r.a.send(r.ab)).toBe('sent');
    expect(r.b.send(r.ba)).toBe('sent');
    expect(r.gotB).toEqual([r.ab]);
    expect(r.gotA).toEqual([r.ba]);
    await Promise.resolve(); // a send counts once the transport completes it
    expect(r.a.traffic()).toMatchObject({ outPackets: 1, outBytes: r.ab.length, inPackets: 1 });
    r.b.receive(lastEsp(r.ta), { address: r.A.address, port: r.A.port }); // a replay
    expect(r.b.stats().InStateSeqError).toBe(1);
    expect(r.dbB.stats().InStateSeqError).toBe(1); // the database sums its engines
    expect(r.a.stats().InStateSeqError).toBe(0);
  });

  it('an authenticated packet from a new address/port moves the peer (newMapping); replies follow it', async () => {
    const r = await rig();
    const seen: NewMappingEvent[] = [];
    r.b.on('newMapping', (e) => seen.push(e));
    r.ta.natAs('203.0.113.9', 40001);
    r.a.send(r.ab);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ old: { address: '192.0.2.1', port: 4500 }, new: { address: '203.0.113.9', port: 40001 } });
    r.b.send(r.ba);
    expect(r.tb.sent.at(-1)).toMatchObject({ kind: 'esp', address: '203.0.113.9', port: 40001 });
  });

  it('an unauthenticated datagram from a new address does not move the peer', async () => {
    const r = await rig();
    const forged = Buffer.from(lastEspAfterSend(r));
    forged[forged.length - 1] ^= 1;
    r.tb.inject(forged, { address: '203.0.113.66', port: 6666 });
    expect(r.b.stats().InStateProtoError).toBe(1);
    r.b.send(r.ba);
    expect(r.tb.sent.at(-1)).toMatchObject({ address: r.A.address, port: r.A.port });
  });

  it('sends keepalives to a NAT-T peer while no ESP flows, not while it does', async () => {
    vi.useFakeTimers();
    const r = await rig({ keepaliveSeconds: 20 });
    vi.advanceTimersByTime(20_500);
    expect(r.ta.sent.filter((s) => s.kind === 'keepalive')).toHaveLength(1);
    for (let t = 0; t < 4; t++) {
      vi.advanceTimersByTime(5_000);
      r.a.send(r.ab);
    }
    vi.advanceTimersByTime(1_000);
    expect(r.ta.sent.filter((s) => s.kind === 'keepalive')).toHaveLength(1);
  });

  it('a send the transport reports failed is counted once as OutError', async () => {
    const r = await rig();
    r.ta.failWith = Object.assign(new Error('ENETUNREACH'), { code: 'ENETUNREACH' });
    expect(r.a.send(r.ab)).toBe('sent');
    await new Promise((res) => setImmediate(res));
    expect(r.a.stats().OutError).toBe(1);
  });
});

function lastEspAfterSend(r: Awaited<ReturnType<typeof rig>>): Buffer {
  r.ta.dropAll = true;
  r.a.send(r.ab);
  r.ta.dropAll = false;
  return lastEsp(r.ta);
}
