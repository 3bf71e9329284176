// UserlandEngine on loopback: two endpoints in tunnel and transport mode, IPv4 and IPv6, policy outcomes, NAT mapping.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NattSocket } from '../../src/natt/socket';
import { UserlandEngine, type RemoteInfo } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket, l4ChecksumOk, IpView, readIpHeader } from '../../src/ip/packet';
import type { AcquireEvent, NewMappingEvent } from '../../src/sadb/types';
import { GCM_KEY_AB, GCM_KEY_BA, openSocket, closeSocket, installPair, until, type Endpoint } from './helpers';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function endpoint(family: 4 | 6): Promise<{ sock: NattSocket; db: UserlandSadb; engine: UserlandEngine; got: Buffer[] }> {
  const sock = await openSocket(family);
  const db = new UserlandSadb();
  const engine = new UserlandEngine({ socket: sock, sadb: db });
  const got: Buffer[] = [];
  engine.on('packet', (p) => got.push(Buffer.from(p)));
  cleanup.push(() => closeSocket(sock), () => engine.close());
  return { sock, db, engine, got };
}

async function pair(family: 4 | 6, mode: 'tunnel' | 'transport', extra = {}) {
  const a = await endpoint(family);
  const b = await endpoint(family);
  const lo = family === 4 ? '127.0.0.1' : '::1';
  const A: Endpoint = { address: lo, port: a.sock.address().port, net: family === 4 ? '10.1.0.0/16' : 'fd00:1::/64' };
  const B: Endpoint = { address: lo, port: b.sock.address().port, net: family === 4 ? '10.2.0.0/16' : 'fd00:2::/64' };
  await installPair(a.db, mode, A, B, { out: 0x1001, in: 0x2002 }, { out: GCM_KEY_AB, in: GCM_KEY_BA }, extra);
  await installPair(b.db, mode, B, A, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB }, extra);
  return { a, b, A, B, lo };
}

describe.each([4, 6] as const)('two engines on loopback, IPv%i', (family) => {
  it('tunnel mode: inner packets both ways, byte-exact', async () => {
    const { a, b } = await pair(family, 'tunnel');
    const [hA, hB] = family === 4 ? ['10.1.0.5', '10.2.0.7'] : ['fd00:1::5', 'fd00:2::7'];
    const ab = buildUdpPacket(hA, 1111, hB, 2222, Buffer.from('hello from A'));
    const ba = buildUdpPacket(hB, 2222, hA, 1111, Buffer.from('hello from B'));
    for (let i = 0; i < 5; i++) expect(a.engine.send(ab)).toBe('sent');
    await until(() => b.got.length === 5, 5000, 'B to receive');
    expect(b.engine.send(ba)).toBe('sent');
    await until(() => a.got.length === 1, 5000, 'A to receive');
    expect(b.got[4]).toEqual(ab);
    expect(a.got[0]).toEqual(ba);
    expect(a.engine.traffic()).toMatchObject({ outPackets: 5, inPackets: 1 });
    expect(Object.values(b.engine.stats()).every((n) => n === 0)).toBe(true);
  });

  it('transport mode: the IP packet rebuilt with the outer addresses, checksum valid', async () => {
    const { a, b, lo } = await pair(family, 'transport');
    const ab = buildUdpPacket(lo, 5000, lo, 6000, Buffer.from('transport payload'));
    expect(a.engine.send(ab)).toBe('sent');
    await until(() => b.got.length === 1, 5000, 'B to receive');
    const v = new IpView();
    expect(readIpHeader(b.got[0], v)).toBe(true);
    expect(v.proto).toBe(17);
    expect([v.sport, v.dport]).toEqual([5000, 6000]);
    expect(b.got[0].subarray(v.l4Offset + 8).toString()).toBe('transport payload');
    expect(l4ChecksumOk(b.got[0])).toBe(true);
  });
});

describe('transport mode behind a NAT: RFC 3948 §3.1.2 checksum fix-up', () => {
  // A pretends to be 10.0.0.2 behind a NAT: its packets' checksums cover 10.0.0.2, B sees them from 127.0.0.1.
  for (const withOa of [false, true]) {
    it(withOa ? 'incremental update with NAT-OA' : 'recomputation without NAT-OA', async () => {
      const a = await endpoint(4);
      const b = await endpoint(4);
      const A = { address: '10.0.0.2', port: a.sock.address().port, net: '' };
      const B = { address: '127.0.0.1', port: b.sock.address().port, net: '' };
      await installPair(a.db, 'transport', A, B, { out: 0x11, in: 0x22 }, { out: GCM_KEY_AB, in: GCM_KEY_BA });
      await installPair(b.db, 'transport', B, A, { out: 0x22, in: 0x11 }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
      if (withOa) {
        const sa = await b.db.get({ src: '10.0.0.2', dst: '127.0.0.1', spi: 0x11 });
        sa.natt!.oa = { initiator: '10.0.0.2', responder: '127.0.0.1' };
        await b.db.update(sa);
      }
      const maps: NewMappingEvent[] = [];
      b.engine.on('newMapping', (m) => maps.push(m));
      const pkt = buildUdpPacket('10.0.0.2', 4000, '127.0.0.1', 53, Buffer.from('query'));
      expect(a.engine.send(pkt)).toBe('sent');
      await until(() => b.got.length === 1, 5000, 'B to receive');
      const got = b.got[0];
      expect(got.subarray(12, 16)).toEqual(Buffer.from([127, 0, 0, 1])); // the outer source, not 10.0.0.2
      expect(l4ChecksumOk(got)).toBe(true);
      expect(maps).toHaveLength(1);
      expect(maps[0].old.address).toBe('10.0.0.2');
      expect(maps[0].new).toEqual({ address: '127.0.0.1', port: A.port });
      // Which path ran: a datagram sent with a checksum off by one stays off by one through the incremental
      // update (NAT-OA), while recomputation makes it valid. So only the NAT-OA path leaves it invalid.
      const bad = buildUdpPacket('10.0.0.2', 4000, '127.0.0.1', 53, Buffer.from('query 2'));
      const sumAt = ((bad[0] & 0x0f) << 2) + 6;
      const sum = bad.readUInt16BE(sumAt);
      bad.writeUInt16BE(sum === 1 ? 2 : sum - 1, sumAt);
      expect(a.engine.send(bad)).toBe('sent');
      await until(() => b.got.length === 2, 5000, 'B to receive the second datagram');
      expect(l4ChecksumOk(b.got[1])).toBe(!withOa);
    });
  }
});

describe('UserlandEngine options', () => {
  it('names the option on caller mistakes', async () => {
    const a = await endpoint(4);
    expect(() => new UserlandEngine({} as never)).toThrow(/"socket"/);
    expect(() => new UserlandEngine({ socket: a.sock, keepaliveSeconds: -1 })).toThrow(RangeError);
    expect(() => new UserlandEngine({ socket: a.sock, sadb: {} as never })).toThrow(/"sadb"/);
    expect(() => a.engine.send('x' as never)).toThrow(TypeError);
  });
});

describe('policy outcomes and counters', () => {
  it('no SA → acquire (once) and OutNoStates; discard → OutPolBlock; no policy → bypass', async () => {
    const a = await endpoint(4);
    const acq: AcquireEvent[] = [];
    a.db.on('acquire', (e) => acq.push(e));
    await a.db.spdAdd({
      selector: { src: '10.1.0.0/16', dst: '10.9.0.0/16', proto: 17 },
      direction: 'out',
      action: 'ipsec',
      templates: [{ protocol: 'esp', mode: 'tunnel', src: '127.0.0.1', dst: '127.0.0.2' }],
    });
    await a.db.spdAdd({ selector: { src: '10.1.0.0/16', dst: '10.8.0.0/16' }, direction: 'out', action: 'discard' });
    const p = buildUdpPacket('10.1.0.1', 1, '10.9.0.1', 2, Buffer.alloc(4));
    expect(a.engine.send(p)).toBe('acquire');
    expect(a.engine.send(p)).toBe('acquire');
    expect(acq).toHaveLength(1);
    expect(acq[0]).toMatchObject({ src: '10.1.0.1', dst: '10.9.0.1', protocol: 'esp', policy: { direction: 'out' } });
    expect(a.engine.send(buildUdpPacket('10.1.0.1', 1, '10.8.0.1', 2, Buffer.alloc(4)))).toBe('blocked');
    expect(a.engine.send(buildUdpPacket('10.3.0.1', 1, '10.9.0.1', 2, Buffer.alloc(4)))).toBe('bypass');
    expect(a.engine.send(Buffer.from([0x45, 0, 0]))).toBe('dropped');
    expect(a.engine.stats()).toMatchObject({ OutNoStates: 2, OutPolBlock: 1, OutPolError: 1 });
    // The IKE daemon answers the acquire with an SA: the next packet goes out.
    await a.db.add({
      src: '127.0.0.1',
      dst: '127.0.0.2',
      spi: 0x777,
      mode: 'tunnel',
      encryption: { algorithm: 'aes-gcm-16', key: GCM_KEY_AB },
      natt: { type: 'espinudp', sport: 4500, dport: 4500 },
    });
    expect(a.engine.send(p)).toBe('sent');
  });

  it('the lowest priority value wins among overlapping policies', async () => {
    const { a } = await pair(4, 'tunnel');
    const inner = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 53, Buffer.from('x'));
    expect(a.engine.send(inner)).toBe('sent');
    await a.db.spdAdd({ selector: { src: '10.1.0.0/24', dst: '10.2.0.7', proto: 17, dport: 53 }, direction: 'out', action: 'discard', priority: 10 });
    expect(a.engine.send(inner)).toBe('sent'); // the ipsec policy has priority 0
    await a.db.spdUpdate({ selector: { src: '10.1.0.0/24', dst: '10.2.0.7', proto: 17, dport: 53 }, direction: 'out', action: 'discard', priority: 0 });
    const p2 = await a.db.spdGet({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, direction: 'out' });
    await a.db.spdUpdate({ ...p2, priority: 5 });
    expect(a.engine.send(inner)).toBe('blocked');
    expect(a.engine.send(buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 54, Buffer.from('x')))).toBe('sent');
  });

  it('inbound: tunnel packet with no inbound policy → InNoPols; discard → InPolBlock; replay → InStateSeqError', async () => {
    const { a, b } = await pair(4, 'tunnel');
    const inner = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('x'));
    const seen: Buffer[] = [];
    b.sock.on('esp', (esp: Buffer) => seen.push(Buffer.from(esp)));
    a.engine.send(inner);
    await until(() => b.got.length === 1);
    const rinfo: RemoteInfo = { address: '127.0.0.1', port: a.sock.address().port, family: 'IPv4', size: seen[0].length };
    expect(b.engine.receive(seen[0], rinfo)).toBe(false); // replayed
    expect(b.engine.stats().InStateSeqError).toBe(1);
    await b.db.spdFlush();
    a.engine.send(inner);
    await until(() => b.engine.stats().InNoPols === 1, 5000, 'InNoPols');
    await b.db.spdAdd({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' }, direction: 'in', action: 'discard' });
    a.engine.send(inner);
    await until(() => b.engine.stats().InPolBlock === 1, 5000, 'InPolBlock');
    expect(b.got).toHaveLength(1);
  });

  it("the SA's own selector is checked inbound → InStateMismatch", async () => {
    const { a, b } = await pair(4, 'tunnel', { selector: { src: '10.1.0.5', dst: '10.2.0.0/16' } });
    a.engine.send(buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('in selector')));
    a.engine.send(buildUdpPacket('10.1.0.6', 1, '10.2.0.7', 2, Buffer.from('outside')));
    await until(() => b.got.length + b.engine.stats().InStateMismatch === 2);
    expect(b.got).toHaveLength(1);
    expect(b.engine.stats().InStateMismatch).toBe(1);
  });

  it('a send the socket refuses is counted, not thrown (IPv6 SA on an IPv4 socket)', async () => {
    const a = await endpoint(4);
    await a.db.add({
      src: '2001:db8::1',
      dst: '2001:db8::2',
      spi: 9,
      mode: 'transport',
      encryption: { algorithm: 'aes-gcm-16', key: GCM_KEY_AB },
      natt: { type: 'espinudp', sport: 4500, dport: 4500 },
    });
    await a.db.spdAdd({ selector: { src: '2001:db8::1', dst: '2001:db8::2' }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'transport' }] });
    expect(a.engine.send(buildUdpPacket('2001:db8::1', 1, '2001:db8::2', 2, Buffer.from('x')))).toBe('dropped');
    expect(a.engine.stats().OutError).toBe(1);
  });

  it('a hard packet limit stops the SA: expire, then OutNoStates', async () => {
    const { a } = await pair(4, 'tunnel', { lifetime: { hard: { packets: 2 } } });
    const kinds: string[] = [];
    a.db.on('expire', (e) => kinds.push(`${e.kind}:${e.sa.spi.toString(16)}`));
    const inner = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('x'));
    expect(a.engine.send(inner)).toBe('sent');
    expect(a.engine.send(inner)).toBe('sent');
    expect(kinds).toEqual(['hard:1001']);
    expect(a.engine.send(inner)).toBe('acquire');
  });
});

describe('NAT-T peer learning and keepalives', () => {
  it('an authenticated packet from a new port → newMapping, replies follow it', async () => {
    const { a, b, A } = await pair(4, 'tunnel');
    const maps: NewMappingEvent[] = [];
    b.engine.on('newMapping', (m) => maps.push(m));
    const ab = buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('1'));
    const ba = buildUdpPacket('10.2.0.7', 2, '10.1.0.5', 1, Buffer.from('2'));
    a.engine.send(ab);
    await until(() => b.got.length === 1);
    expect(maps).toHaveLength(0);
    // A's "NAT mapping" changes: same SAs, new socket (new source port).
    a.engine.close();
    const sock2 = await openSocket(4);
    cleanup.push(() => closeSocket(sock2));
    const a2 = new UserlandEngine({ socket: sock2, sadb: a.db });
    cleanup.push(() => a2.close());
    const got2: Buffer[] = [];
    a2.on('packet', (p) => got2.push(Buffer.from(p)));
    a2.send(ab);
    await until(() => b.got.length === 2);
    expect(maps).toHaveLength(1);
    expect(maps[0].old).toEqual({ address: '127.0.0.1', port: A.port });
    expect(maps[0].new).toEqual({ address: '127.0.0.1', port: sock2.address().port });
    expect(b.engine.send(ba)).toBe('sent');
    await until(() => got2.length === 1, 5000, 'the reply at the new port');
    expect(got2[0]).toEqual(ba);
    expect(b.engine.traffic().newMappings).toBe(1);
  });

  it('unauthenticated datagrams from a new port do not move the peer', async () => {
    const { a, b } = await pair(4, 'tunnel');
    const maps: NewMappingEvent[] = [];
    b.engine.on('newMapping', (m) => maps.push(m));
    const bogus = Buffer.alloc(64, 1);
    bogus.writeUInt32BE(0x1001, 0);
    expect(b.engine.receive(bogus, { address: '127.0.0.9', port: 9 })).toBe(false);
    expect(maps).toHaveLength(0);
    expect(b.engine.stats().InStateProtoError).toBe(1);
    void a;
  });

  it('keepalives every 20 s by default (fake interval timers), not while ESP flows', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    try {
      const { a } = await pair(4, 'tunnel');
      vi.advanceTimersByTime(19_999);
      expect(a.engine.traffic().keepalivesSent).toBe(0);
      vi.advanceTimersByTime(1);
      expect(a.engine.traffic().keepalivesSent).toBe(1); // one peer (B), via the outbound SA
      a.engine.send(buildUdpPacket('10.1.0.5', 1, '10.2.0.7', 2, Buffer.from('x')));
      vi.advanceTimersByTime(20_000);
      expect(a.engine.traffic().keepalivesSent).toBe(1); // ESP went to B during the interval
      vi.advanceTimersByTime(20_000);
      expect(a.engine.traffic().keepalivesSent).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keepalives go to each NAT-T peer while no ESP flows', async () => {
    const a = await openSocket(4);
    const b = await openSocket(4);
    cleanup.push(() => closeSocket(a), () => closeSocket(b));
    const db = new UserlandSadb();
    const engine = new UserlandEngine({ socket: a, sadb: db, keepaliveSeconds: 0.05 });
    cleanup.push(() => engine.close());
    const A = { address: '127.0.0.1', port: a.address().port, net: '10.1.0.0/16' };
    const B = { address: '127.0.0.2', port: b.address().port, net: '10.2.0.0/16' };
    await installPair(db, 'tunnel', A, B, { out: 5, in: 6 }, { out: GCM_KEY_AB, in: GCM_KEY_BA });
    // B is bound to 127.0.0.1: point the outbound SA there (its dst is 127.0.0.2, a different "host").
    db.bySpi(5)![0].peer = { address: '127.0.0.1', port: B.port };
    let keepalives = 0;
    b.on('keepalive', () => keepalives++);
    await until(() => keepalives >= 2, 5000, 'two keepalives');
    expect(engine.traffic().keepalivesSent).toBeGreaterThanOrEqual(2);
  });
});
