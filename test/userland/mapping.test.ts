// Mapping changes, one behaviour everywhere: openSadb({ mapping: 'follow' | 'notify' }) on the userland backend, and
// the shared follow (src/sadb/mapping.ts) that the kernel backends run, here over a real UserlandSadb through the
// Sadb interface only. (XFRM and PF_KEY in the VM: test/kernel/mapping.test.ts.)

import { afterEach, describe, expect, it } from 'vitest';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { openSadb } from '../../src/open';
import { buildUdpPacket } from '../../src/ip/packet';
import { followMapping, handleMapping, MappingGate, MAX_MAPPING_ENTRIES, MAPPING_HOLD_MS } from '../../src/sadb/mapping';
import type { NewMappingEvent, SecurityAssociation } from '../../src/sadb/types';
import { memoryPair } from '../lib/memory-transport';
import { GCM_KEY_AB, GCM_KEY_BA, installPair, type Endpoint } from './helpers';

const engines: UserlandEngine[] = [];
afterEach(() => {
  for (const e of engines.splice(0)) e.close();
});

async function rig(mapping?: 'follow' | 'notify') {
  const A: Endpoint = { address: '192.0.2.1', port: 4500, net: '10.1.0.0/16' };
  const B: Endpoint = { address: '198.51.100.1', port: 4501, net: '10.2.0.0/16' };
  const [ta, tb] = memoryPair(A, B);
  const dbA = new UserlandSadb();
  const dbB = (await openSadb({ backend: 'userland', mapping })) as UserlandSadb;
  await installPair(dbA, 'tunnel', A, B, { out: 0x1001, in: 0x2002 }, { out: GCM_KEY_AB, in: GCM_KEY_BA });
  await installPair(dbB, 'tunnel', B, A, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
  const a = new UserlandEngine({ socket: ta, sadb: dbA, keepaliveSeconds: 0 });
  const b = new UserlandEngine({ socket: tb, sadb: dbB, keepaliveSeconds: 0 });
  engines.push(a, b);
  const seen: NewMappingEvent[] = [];
  const dbSeen: NewMappingEvent[] = [];
  b.on('newMapping', (e) => seen.push(e));
  dbB.on('newMapping', (e) => dbSeen.push(e));
  const ab = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('x'));
  const ba = buildUdpPacket('10.2.0.7', 2, '10.1.0.5', 1, Buffer.from('y'));
  return { A, B, ta, tb, dbB, a, b, seen, dbSeen, ab, ba };
}

describe("mapping 'follow' (the default) on the userland backend", () => {
  it('re-points the SA and its outbound twin at once, and says so (followed: true, the SA dst and reqid)', async () => {
    const r = await rig();
    r.ta.natAs('203.0.113.9', 40001);
    r.a.send(r.ab);
    expect(r.seen).toEqual([
      {
        sa: { src: r.A.address, dst: r.B.address, spi: 0x1001, protocol: 'esp' },
        reqid: 2,
        old: { address: r.A.address, port: 4500 },
        new: { address: '203.0.113.9', port: 40001 },
        followed: true,
      },
    ]);
    expect(r.dbSeen).toEqual(r.seen);
    r.b.send(r.ba);
    expect(r.tb.sent.at(-1)).toMatchObject({ kind: 'esp', address: '203.0.113.9', port: 40001 });
    const out = await r.dbB.get({ src: r.B.address, dst: r.A.address, spi: 0x2002 });
    expect(out.natt).toMatchObject({ dport: 40001 });
  });
});

describe("mapping 'notify' on the userland backend", () => {
  it('only emits (followed: false), once per new mapping; replies stay with the old peer until the daemon moves them', async () => {
    const r = await rig('notify');
    r.ta.natAs('203.0.113.9', 40001);
    for (let i = 0; i < 4; i++) r.a.send(r.ab);
    expect(r.seen).toHaveLength(1);
    expect(r.seen[0]).toMatchObject({ new: { address: '203.0.113.9', port: 40001 }, followed: false });
    expect(r.b.traffic()).toMatchObject({ inPackets: 4, newMappings: 1 });
    r.b.send(r.ba);
    expect(r.tb.sent.at(-1)).toMatchObject({ kind: 'esp', address: r.A.address, port: r.A.port });
    // A different mapping is news again.
    r.ta.natAs('203.0.113.9', 40002);
    r.a.send(r.ab);
    expect(r.seen.map((e) => e.new.port)).toEqual([40001, 40002]);
  });

  it('the guard holds in notify mode too: a held-back genuine packet re-sent from elsewhere reports nothing', async () => {
    const r = await rig('notify');
    r.ta.dropAll = true;
    r.a.send(r.ab); // #1, held back by an attacker
    r.ta.dropAll = false;
    const held = r.ta.sent.at(-1)!.bytes;
    for (let i = 0; i < 3; i++) r.a.send(r.ab);
    r.tb.inject(held, { address: '203.0.113.66', port: 6666 }); // authentic, inside the window, not the newest
    expect(r.seen).toHaveLength(0);
    expect(r.b.traffic().inPackets).toBe(4);
  });

  it('the option is checked by openSadb and by UserlandSadb, naming it', async () => {
    await expect(openSadb({ backend: 'userland', mapping: 'folow' as never })).rejects.toThrow(/option "mapping"/);
    expect(() => new UserlandSadb({ mapping: 1 as never })).toThrow(/option "mapping"/);
  });
});

const key = (n: number) => Buffer.alloc(20, n);
const sa = (src: string, dst: string, spi: number, sport: number, dport: number, reqid?: number): SecurityAssociation => ({
  src,
  dst,
  spi,
  reqid,
  mode: 'transport',
  encryption: { algorithm: 'aes-gcm-16', key: key(spi & 0xff) },
  natt: { type: 'espinudp', sport, dport },
});

describe('followMapping: what the kernel backends do, through the Sadb interface', () => {
  const ME = '192.0.2.10';
  const PEER = '198.51.100.20';
  async function db(): Promise<UserlandSadb> {
    const d = new UserlandSadb();
    await d.add(sa(PEER, ME, 0x100, 4500, 4500, 7)); // inbound
    await d.add(sa(ME, PEER, 0x200, 4500, 4500, 7)); // its outbound twin
    await d.add(sa(ME, PEER, 0x201, 4500, 4500, 8)); // another one to the same peer (rekeyed)
    await d.add(sa(ME, '198.51.100.99', 0x300, 4500, 4500)); // someone else: untouched
    return d;
  }
  const ev = (newAddress: string, newPort: number): NewMappingEvent => ({
    sa: { src: PEER, dst: ME, spi: 0x100, protocol: 'esp' },
    old: { address: PEER, port: 4500 },
    new: { address: newAddress, port: newPort },
  });

  it('a new port: the inbound SA gets the new source port, every SA to the old peer the new destination port', async () => {
    const d = await db();
    const r = await followMapping(d, ev(PEER, 31000));
    expect(r.outbound.map((s) => s.spi)).toEqual([0x200, 0x201]);
    expect((await d.get({ src: PEER, dst: ME, spi: 0x100 })).natt).toMatchObject({ sport: 31000, dport: 4500 });
    expect((await d.get({ src: ME, dst: PEER, spi: 0x200 })).natt).toMatchObject({ sport: 4500, dport: 31000 });
    expect((await d.get({ src: ME, dst: PEER, spi: 0x201 })).natt).toMatchObject({ dport: 31000 });
    expect((await d.get({ src: ME, dst: '198.51.100.99', spi: 0x300 })).natt).toMatchObject({ dport: 4500 });
    // keys survived the round trip through dump and update
    expect(Buffer.from((await d.get({ src: ME, dst: PEER, spi: 0x200 })).encryption!.key!).equals(key(0x00))).toBe(true);
  });

  it('a new address: the inbound SA comes from it, the outbound ones go to it (added anew, the old ones gone)', async () => {
    const d = await db();
    await followMapping(d, ev('203.0.113.5', 31001));
    expect(await d.get({ src: '203.0.113.5', dst: ME, spi: 0x100 })).toMatchObject({ src: '203.0.113.5', natt: { sport: 31001 } });
    expect(await d.get({ src: ME, dst: '203.0.113.5', spi: 0x200 })).toMatchObject({ reqid: 7, natt: { dport: 31001 } });
    await expect(d.get({ src: ME, dst: PEER, spi: 0x200 })).rejects.toMatchObject({ code: 'ESRCH' });
    const spis: number[] = [];
    for await (const s of d.dump('esp')) spis.push(s.spi);
    expect(spis.sort()).toEqual([0x100, 0x200, 0x201, 0x300]);
  });

  it('handleMapping: repeats are held back; a missing SA is reported as not followed, with the error; notify changes nothing', async () => {
    const d = await db();
    const gate = new MappingGate();
    const first = await handleMapping(d, ev(PEER, 32000), 'follow', gate);
    expect(first).toMatchObject({ ev: { followed: true } });
    expect(first!.error).toBeUndefined();
    expect(await handleMapping(d, ev(PEER, 32000), 'follow', gate)).toBeNull(); // the kernel's per-packet repeat
    expect(gate.repeats).toBe(1);
    const gone = await handleMapping(d, { ...ev(PEER, 1), sa: { src: PEER, dst: ME, spi: 0xdead, protocol: 'esp' } }, 'follow', gate);
    expect(gone).toMatchObject({ ev: { followed: false } });
    expect(gone!.error?.message).toMatch(/not in the database/);
    const told = await handleMapping(d, ev(PEER, 33000), 'notify', new MappingGate());
    expect(told).toEqual({ ev: { ...ev(PEER, 33000), followed: false } });
    expect((await d.get({ src: PEER, dst: ME, spi: 0x100 })).natt!.sport).toBe(32000);
  });

  it(`MappingGate: the same mapping again after ${MAPPING_HOLD_MS} ms is news; at most ${MAX_MAPPING_ENTRIES} SAs are remembered`, () => {
    const g = new MappingGate();
    const e = ev(PEER, 1234);
    expect(g.admit(e, 0)).toBe(true);
    expect(g.admit(e, MAPPING_HOLD_MS - 1)).toBe(false);
    expect(g.admit(e, MAPPING_HOLD_MS + 1)).toBe(true);
    for (let i = 0; i < MAX_MAPPING_ENTRIES + 10; i++) g.admit({ ...e, sa: { ...e.sa, spi: 0x10000 + i } }, 5);
    // the oldest (our first SA) was forgotten: its mapping is news at once
    expect(g.admit(e, MAPPING_HOLD_MS + 2)).toBe(true);
  });
});
