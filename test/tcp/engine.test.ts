// Two UserlandEngines over ESP-in-TCP on loopback: a transfer both ways, the SA's natt.type matching its transport.

import { afterEach, describe, expect, it } from 'vitest';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { KEY_CS, KEY_SC, closeAll, installTunnel, loopbackPair, until } from './helpers';
import { createTransfer } from './transfer.js';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

const LO = '127.0.0.1';
const C_NET = '10.10.0.0/16';
const S_NET = '10.20.0.0/16';

async function tcpPair() {
  const { listener, client } = await loopbackPair();
  cleanup.push(() => closeAll(client, listener));
  const sPort = listener.address().port;
  const cPort = client.address().port;
  const dbC = new UserlandSadb();
  const dbS = new UserlandSadb();
  await installTunnel(dbC, { address: LO, port: cPort, net: C_NET }, { address: LO, port: sPort, net: S_NET }, { out: 0xc5, in: 0x5c }, { out: KEY_CS, in: KEY_SC });
  await installTunnel(dbS, { address: LO, port: sPort, net: S_NET }, { address: LO, port: cPort, net: C_NET }, { out: 0x5c, in: 0xc5 }, { out: KEY_SC, in: KEY_CS });
  const ec = new UserlandEngine({ socket: client, sadb: dbC, keepaliveSeconds: 0.05 });
  const es = new UserlandEngine({ socket: listener, sadb: dbS, keepaliveSeconds: 0.05 });
  cleanup.push(() => ec.close(), () => es.close());
  return { listener, client, ec, es };
}

describe('two engines over ESP in TCP (RFC 9329) on loopback', () => {
  it('a transfer both ways: 2000 packets of 1000 bytes each way, SHA-256 of the bytes equal, no drop', async () => {
    const { listener, client, ec, es } = await tcpPair();
    const n = 2000;
    // A retransmit timer far past any scheduling stall of a loaded host: it fires only if a packet was really lost.
    const common = { build: buildUdpPacket, count: n, size: 1000, window: 128, rtoMs: 5000 };
    const tc = createTransfer({
      ...common, engine: ec, me: { host: '10.10.0.5' }, peer: { host: '10.20.0.7' }, id: 1, peerId: 2, seed: 11, peerSeed: 22,
      blocked: () => client.needDrain, onUnblock: (f: () => void) => client.on('drain', f),
    });
    const ts = createTransfer({
      ...common, engine: es, me: { host: '10.20.0.7' }, peer: { host: '10.10.0.5' }, id: 2, peerId: 1, seed: 22, peerSeed: 11,
      blocked: () => listener.connectionTo(client.address().port, LO)?.needDrain ?? false, onUnblock: (f: () => void) => listener.on('drain', f),
    });
    const [rc, rs] = await Promise.all([tc.start(), ts.start()]);
    expect(rc.received).toBe(n);
    expect(rs.received).toBe(n);
    expect(rc.digest).toBe(rc.expected);
    expect(rs.digest).toBe(rs.expected);
    expect(rc.retransmits + rs.retransmits).toBe(0); // TCP lost nothing and no queue overflowed
    const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
    expect(sum(ec.stats())).toBe(0);
    expect(sum(es.stats())).toBe(0);
    const ls = listener.stats();
    expect(ls.connections).toBe(1);
    expect(ls.esp).toBe(es.traffic().inPackets);
    expect(ls.sentEsp).toBe(es.traffic().outPackets);
    expect(sum(ls.dropped)).toBe(0);
    const cs = client.stats();
    expect(cs.sentEsp).toBe(ec.traffic().outPackets);
    expect(cs.esp).toBe(ec.traffic().inPackets);
    // RFC 9329 §6.6: no NAT-keepalives over TCP, even with keepaliveSeconds set.
    expect(ec.traffic().keepalivesSent + es.traffic().keepalivesSent).toBe(0);
    expect(cs.keepalive + ls.keepalive).toBe(0);
  }, 60_000);

  it('an espintcp SA over a UDP socket, and an espinudp SA over TCP: refused at send (OutStateProtoError) and on receipt (InStateMismatch)', async () => {
    // UDP socket, SAs saying 'espintcp'.
    const a: NattSocket = await createNattSocket({ address: LO, port: 0, backend: 'userland' });
    const b: NattSocket = await createNattSocket({ address: LO, port: 0, backend: 'userland' });
    cleanup.push(() => closeAll(a, b));
    const dbA = new UserlandSadb();
    const dbB = new UserlandSadb();
    const A = { address: LO, port: a.address().port, net: C_NET };
    const B = { address: LO, port: b.address().port, net: S_NET };
    await installTunnel(dbA, A, B, { out: 0x11, in: 0x22 }, { out: KEY_CS, in: KEY_SC }, 'espintcp');
    await installTunnel(dbB, B, A, { out: 0x22, in: 0x11 }, { out: KEY_SC, in: KEY_CS }, 'espinudp');
    const ea = new UserlandEngine({ socket: a, sadb: dbA, keepaliveSeconds: 0 });
    const eb = new UserlandEngine({ socket: b, sadb: dbB, keepaliveSeconds: 0 });
    cleanup.push(() => ea.close(), () => eb.close());
    const pa = buildUdpPacket('10.10.0.5', 1, '10.20.0.7', 2, Buffer.from('a'));
    expect(ea.send(pa)).toBe('dropped');
    expect(ea.stats().OutStateProtoError).toBe(1);
    expect(a.stats().sentEsp).toBe(0);
    // B's SAs are espinudp, so B sends; A's inbound SA (0x22) says espintcp: dropped as a mismatch, before decryption.
    expect(eb.send(buildUdpPacket('10.20.0.7', 2, '10.10.0.5', 1, Buffer.from('b')))).toBe('sent');
    await until(() => a.stats().esp === 1, 3000, 'A to get the datagram');
    expect(ea.stats().InStateMismatch).toBe(1);
    expect(ea.traffic().inPackets).toBe(0);

    // TCP transports, SAs saying 'espinudp'.
    const { listener, client } = await loopbackPair();
    cleanup.push(() => closeAll(client, listener));
    const dbC = new UserlandSadb();
    const dbS = new UserlandSadb();
    const C = { address: LO, port: client.address().port, net: C_NET };
    const S = { address: LO, port: listener.address().port, net: S_NET };
    await installTunnel(dbC, C, S, { out: 0x33, in: 0x44 }, { out: KEY_CS, in: KEY_SC }, 'espinudp');
    await installTunnel(dbS, S, C, { out: 0x44, in: 0x33 }, { out: KEY_SC, in: KEY_CS }, 'espintcp');
    const ec = new UserlandEngine({ socket: client, sadb: dbC, keepaliveSeconds: 0 });
    const es = new UserlandEngine({ socket: listener, sadb: dbS, keepaliveSeconds: 0 });
    cleanup.push(() => ec.close(), () => es.close());
    expect(ec.send(pa)).toBe('dropped');
    expect(ec.stats().OutStateProtoError).toBe(1);
    expect(client.stats().sentEsp).toBe(0);
    expect(es.send(buildUdpPacket('10.20.0.7', 2, '10.10.0.5', 1, Buffer.from('s')))).toBe('sent');
    await until(() => client.stats().esp === 1, 3000, 'the client to get the frame');
    expect(ec.stats().InStateMismatch).toBe(1);
    // The same SA parameters with natt.type 'espintcp' on both sides carry traffic (the first test).
  });
});
