// The RFC 9329 connection layer on loopback: the bytes on the wire, events, drops and backpressure, limits, reconnection.

import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { listenNattTcp, type NattTcpListener } from '../../src/tcp/listener';
import { connectNattTcp, type NattTcpClient } from '../../src/tcp/client';
import type { NattTcpConnection } from '../../src/tcp/connection';
import { encodeFrame, streamPrefix } from '../../src/tcp/framing';
import { closeAll, loopbackPair, sleep, until } from './helpers';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

const LO = '127.0.0.1';
const ike = (n: number, fill = 0x21): Buffer => Buffer.alloc(n, fill);
const esp = (n: number, spi = 0x1234): Buffer => {
  const b = Buffer.alloc(n, 0xee);
  b.writeUInt32BE(spi, 0);
  return b;
};

async function pair(lopts = {}, copts = {}) {
  const p = await loopbackPair(lopts, copts);
  cleanup.push(() => closeAll(p.client, p.listener));
  const conn = (await new Promise<NattTcpConnection>((res) => {
    const cs = p.listener.connections();
    if (cs.length) res(cs[0]);
    else p.listener.once('connection', res);
  })) as NattTcpConnection;
  return { ...p, conn };
}

/** Resolves on the emitter's next `event` (unlike events.once, an 'error' meanwhile does not reject it). */
function next(e: { once(ev: string, f: (...a: unknown[]) => void): unknown }, event: string): Promise<unknown[]> {
  return new Promise((res) => e.once(event, (...a: unknown[]) => res(a)));
}

/** A socket's close, even if it already happened. */
function closedSocket(s: net.Socket): Promise<void> {
  return s.destroyed && s.closed ? Promise.resolve() : new Promise((res) => s.once('close', () => res()));
}

/** A raw TCP socket to the listener (what a hostile or broken peer would be). */
async function raw(listener: NattTcpListener): Promise<net.Socket> {
  const s = net.connect({ host: LO, port: listener.address().port });
  s.on('error', () => {});
  await once(s, 'connect');
  cleanup.push(() => s.destroy());
  return s;
}

/** A raw TCP server, to see what an initiator writes. */
async function rawServer(): Promise<{ server: net.Server; port: number; bytes: () => Buffer; socket: () => net.Socket | null }> {
  const chunks: Buffer[] = [];
  let sock: net.Socket | null = null;
  const server = net.createServer((s) => {
    sock = s;
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, LO, () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())), () => (sock as net.Socket | null)?.destroy());
  return { server, port: (server.address() as net.AddressInfo).port, bytes: () => Buffer.concat(chunks), socket: () => sock };
}

describe('the wire (RFC 9329 §3, §4)', () => {
  it('the initiator opens with "IKETCP" once, then Length-framed IKE (non-ESP marker) and ESP', async () => {
    const rs = await rawServer();
    const c = await connectNattTcp({ host: LO, port: rs.port, reconnect: false });
    cleanup.push(() => closeAll(c));
    c.sendIke(Buffer.from('ike-1'), rs.port, LO);
    c.sendEsp(esp(9), rs.port, LO);
    c.sendIke(Buffer.from('ike-2'), rs.port, LO);
    await until(() => rs.bytes().length === 6 + 11 + 11 + 11, 3000, 'the bytes');
    expect(rs.bytes().toString('hex')).toBe(
      Buffer.concat([Buffer.from('IKETCP'), encodeFrame('ike', Buffer.from('ike-1')), encodeFrame('esp', esp(9)), encodeFrame('ike', Buffer.from('ike-2'))]).toString('hex'),
    );
    expect(c.stats()).toMatchObject({ sentIke: 2, sentEsp: 1, bytesOut: 39, connected: true, connects: 1 });
  });

  it('the responder parses them, emits ike/esp with the peer as RemoteInfo, drops keepalives silently, and replies', async () => {
    const { listener, client, conn } = await pair();
    const got: Array<[string, string, number, string]> = [];
    listener.on('ike', (p, r) => got.push(['ike', p.toString(), r.port, r.address]));
    listener.on('esp', (p, r) => got.push(['esp', p.toString('hex'), r.port, r.address]));
    const cport = client.address().port;
    const s = conn; // the same bytes, written raw by the client's connection too: IKE, keepalive, ESP
    client.sendIke(Buffer.from('hello'), listener.address().port, LO);
    client.connection!.sendEsp(esp(12), listener.address().port, LO);
    await until(() => got.length === 2, 3000, 'two frames');
    expect(got).toEqual([
      ['ike', 'hello', cport, LO],
      ['esp', esp(12).toString('hex'), cport, LO],
    ]);
    const back: string[] = [];
    client.on('ike', (p, r) => back.push(`${p.toString()}@${r.address}:${r.port}`));
    listener.sendIke(Buffer.from('reply'), cport, LO);
    s.sendIke(Buffer.from('direct'), cport, LO);
    await until(() => back.length === 2, 3000, 'the replies');
    expect(back).toEqual([`reply@${LO}:${listener.address().port}`, `direct@${LO}:${listener.address().port}`]);
    expect(conn.role).toBe('responder');
    expect(client.connection!.role).toBe('originator');
    expect(conn.encap).toBe('espintcp');
  });

  it('a NAT-keepalive frame (00 03 ff) is dropped silently and counted; sendKeepalive sends nothing (§6.6)', async () => {
    const { listener } = await pair();
    const s = await raw(listener);
    let events = 0;
    listener.on('ike', () => events++);
    listener.on('esp', () => events++);
    s.write(Buffer.concat([streamPrefix(), encodeFrame('keepalive'), encodeFrame('keepalive'), encodeFrame('ike', ike(30))]));
    await until(() => events === 1, 3000, 'the IKE frame');
    expect(listener.stats().keepalive).toBe(2);
    const conn = listener.connections().find((c) => c.remotePort === s.localPort)!;
    const before = conn.stats().bytesOut;
    let ok: unknown = 'unset';
    conn.sendKeepalive(s.localPort!, LO, (e) => (ok = e));
    await sleep(20);
    expect(ok).toBe(null);
    expect(conn.stats()).toMatchObject({ keepalivesNotSent: 1, bytesOut: before });
  });
});

describe('bad input closes that connection only, counted by reason', () => {
  const cases: Array<[string, string, Buffer]> = [
    ['a stream without the prefix', 'badPrefix', encodeFrame('ike', ike(30))],
    ['a Length of 1', 'lengthBelowMinimum', Buffer.concat([streamPrefix(), Buffer.from([0, 1])])],
    ['a Length over maxFrameLength', 'lengthOverLimit', Buffer.concat([streamPrefix(), Buffer.from([0x10, 0x00])])],
    ['a FIN inside a frame', 'truncated', Buffer.concat([streamPrefix(), Buffer.from([0, 40, 0, 0])])],
    ['a FIN between frames', 'peerEnd', Buffer.concat([streamPrefix(), encodeFrame('esp', esp(20))])],
  ];
  it.each(cases)('%s → %s; a good connection beside it is not affected', async (_name, reason, bytes) => {
    const { listener, client } = await pair({ maxFrameLength: 4000 });
    const s = await raw(listener);
    s.end(bytes);
    await until(() => listener.stats().closed[reason as 'badPrefix'] === 1, 3000, `a ${reason} close`);
    const st = listener.stats();
    expect(st.connections).toBe(1);
    let got = 0;
    listener.on('esp', () => got++);
    client.sendEsp(esp(20), listener.address().port, LO);
    await until(() => got === 1, 3000, 'the good connection to carry ESP');
  });

  it('well-framed non-messages (empty, short, marker only) are dropped, counted, and the stream goes on', async () => {
    const { listener } = await pair();
    const s = await raw(listener);
    let got = 0;
    listener.on('esp', () => got++);
    s.write(Buffer.concat([streamPrefix(), Buffer.from([0, 2]), Buffer.from([0, 4, 1, 2]), Buffer.from([0, 6, 0, 0, 0, 0]), encodeFrame('esp', esp(10))]));
    await until(() => got === 1, 3000, 'the ESP frame after the drops');
    expect(listener.stats().dropped).toMatchObject({ empty: 1, short: 1, markerOnly: 1 });
  });
});

describe('sends: bounded queue, counted drops, drain', () => {
  it('a peer that stops reading fills the queue to its bound: ESP beyond it is dropped and counted, needDrain, then drain', async () => {
    const rs = await rawServer();
    const c = await connectNattTcp({ host: LO, port: rs.port, reconnect: false, maxQueuedBytes: 256 * 1024 });
    cleanup.push(() => closeAll(c));
    await until(() => rs.socket() !== null, 3000, 'accept');
    rs.socket()!.pause(); // the slow peer
    const pkt = esp(1400);
    let drops = 0;
    let maxQueued = 0;
    let needDrainAtDrop: boolean | null = null;
    let drains = 0;
    c.on('drain', () => drains++);
    for (let round = 0; round < 400 && drops === 0; round++) {
      for (let i = 0; i < 200; i++) {
        c.sendEsp(pkt, rs.port, LO, (e) => {
          if (!e) return;
          drops++;
          needDrainAtDrop ??= c.needDrain;
        });
        maxQueued = Math.max(maxQueued, c.stats().queuedBytes);
      }
      await sleep(2);
    }
    await sleep(10);
    expect(drops).toBeGreaterThan(0);
    expect(needDrainAtDrop).toBe(true);
    const st = c.stats();
    expect(st.dropped.queueFull).toBe(drops);
    // Bounded: never more queued than the bound (the kernel's socket buffer holds the rest of what was accepted).
    expect(maxQueued).toBeLessThanOrEqual(256 * 1024);
    const drainsBefore = drains;
    rs.socket()!.resume();
    await until(() => drains > drainsBefore || (!c.needDrain && drains > 0), 10_000, 'drain');
    expect(c.needDrain).toBe(false);
    expect(c.stats().queuedBytes).toBe(0);
    // What was accepted all arrived: the kernel and the queue lost nothing.
    await until(() => rs.bytes().length === 6 + st.sentEsp * 1402, 10_000, 'every accepted frame');
  }, 30_000);

  it('a send to another peer is dropped (wrongPeer); after close, sends are dropped (closed); callbacks hear it', async () => {
    const { listener, client } = await pair();
    const errs: string[] = [];
    client.sendEsp(esp(20), listener.address().port + 1, LO, (e) => errs.push(String((e as { code?: string } | null)?.code)));
    client.sendEsp(esp(20), listener.address().port, '127.0.0.2', (e) => errs.push(String((e as { code?: string } | null)?.code)));
    listener.sendEsp(esp(20), 1, '192.0.2.99', (e) => errs.push(String((e as { code?: string } | null)?.code)));
    await sleep(10);
    expect(errs).toEqual(['ERR_NATT_TCP_WRONG_PEER', 'ERR_NATT_TCP_WRONG_PEER', 'ERR_NATT_TCP_NO_CONNECTION']);
    expect(client.stats().dropped.wrongPeer).toBe(2);
    expect(listener.stats().dropped.noConnection).toBe(1);
    await closeAll(client);
    client.sendEsp(esp(20), listener.address().port, LO, (e) => errs.push(String((e as { code?: string } | null)?.code)));
    await sleep(10);
    expect(errs[3]).toBe('ERR_NATT_TCP_CLOSED');
    expect(client.stats().dropped.closed).toBe(1);
    // Caller mistakes throw at once, naming the argument.
    expect(() => client.sendEsp(Buffer.alloc(8, 1), 4500, LO)).toThrow(/"packet"/);
    expect(() => client.sendEsp(Buffer.alloc(20), 4500, LO)).toThrow(/non-zero SPI/);
    expect(() => listener.sendIke(Buffer.alloc(0), 4500, LO)).toThrow(/"payload"/);
    expect(() => listener.sendEsp(esp(20), 70000, LO)).toThrow(/"port"/);
  });
});

describe('limits against abuse (all options, all counted)', () => {
  it('handshakeTimeout: a peer that connects and sends nothing, or only part of the prefix, is closed', async () => {
    const { listener, client } = await pair({ handshakeTimeout: 300 });
    client.sendIke(ike(30), listener.address().port, LO); // the real initiator's first frame ends its handshake
    const a = await raw(listener);
    const b = await raw(listener);
    b.write('IKE');
    await until(() => listener.stats().closed.handshakeTimeout === 2, 3000, 'two handshake timeouts');
    await closedSocket(a);
    await closedSocket(b);
    await sleep(400);
    expect(listener.stats().closed.handshakeTimeout).toBe(2);
    expect(listener.stats().connections).toBe(1); // the initiator stays
  });

  it('frameTimeout: a frame that started and does not complete (slowloris) is closed; idleTimeout: silence after frames', async () => {
    const { listener } = await pair({ frameTimeout: 200, idleTimeout: 400, handshakeTimeout: 10_000 });
    const slow = await raw(listener);
    slow.write(Buffer.concat([streamPrefix(), encodeFrame('ike', ike(30)), Buffer.from([0x01, 0x00, 0x00])]));
    const quiet = await raw(listener);
    quiet.write(Buffer.concat([streamPrefix(), encodeFrame('ike', ike(30))]));
    const drip = setInterval(() => slow.writable && slow.write(Buffer.from([0])), 50); // bytes keep coming, the frame never ends
    cleanup.push(() => clearInterval(drip));
    await until(() => listener.stats().closed.frameTimeout === 1, 3000, 'the frame timeout');
    await until(() => listener.stats().closed.idleTimeout >= 1, 3000, 'the idle timeout');
  });

  it('maxConnections: a newcomer evicts the oldest connection that never sent a whole frame; proven ones stay', async () => {
    const { listener, client } = await pair({ maxConnections: 3 });
    client.sendIke(ike(30), listener.address().port, LO); // the initiator is proven
    await until(() => listener.stats().ike === 1, 3000, 'the IKE frame');
    const a = await raw(listener);
    await until(() => listener.stats().connections === 2, 3000, 'a');
    const b = await raw(listener);
    await until(() => listener.stats().connections === 3, 3000, 'b');
    const c = await raw(listener);
    await until(() => listener.stats().closed.evicted === 1, 3000, 'one eviction');
    await closedSocket(a);
    expect(b.destroyed).toBe(false);
    expect(c.destroyed).toBe(false);
    const s = listener.stats();
    expect(s.connections).toBe(3);
    expect(s.accepted).toBe(4);
    expect(listener.connections().some((x) => x.remotePort === client.address().port)).toBe(true);
  });
});

describe('the initiator reconnects (RFC 9329 §6.1), with bounded backoff', () => {
  it('a lost connection is re-established from a new source port; the client object and its listeners stay', async () => {
    const { listener, client, conn } = await pair({}, { reconnect: { minDelay: 20, maxDelay: 100, attempts: 5 } });
    const events: string[] = [];
    client.on('disconnect', (r) => events.push(`disconnect:${r}`));
    client.on('connect', (i) => events.push(`connect:${i.reconnected}`));
    const firstPort = client.address().port;
    conn.destroy(); // the responder's side goes away (RST)
    await until(() => client.connected && client.address().port !== firstPort, 5000, 'the reconnection');
    expect(events).toEqual(['disconnect:reset', 'connect:true']);
    let got = 0;
    listener.on('esp', (_p, r) => r.port === client.address().port && got++);
    client.sendEsp(esp(30), listener.address().port, LO);
    await until(() => got === 1, 3000, 'ESP over the new connection');
    expect(client.stats()).toMatchObject({ connects: 2, reconnects: 1, failedAttempts: 0 });
  });

  it('gives up after the bounded number of attempts: error (when listened), close', async () => {
    const { listener, client } = await pair({}, { reconnect: { minDelay: 10, maxDelay: 40, attempts: 3 } });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const closed = next(client, 'close');
    await closeAll(listener); // nothing listens any more: every attempt is refused
    await closed;
    expect(errors).toHaveLength(1);
    expect((errors[0] as { code?: string }).code).toBe('ERR_NATT_TCP_RECONNECT');
    expect(errors[0].message).toMatch(/after 3 failed attempts/);
    expect(client.stats()).toMatchObject({ connected: false, failedAttempts: 3, connects: 1 });
  });

  it('the first connection failing rejects with advice (ECONNREFUSED), and connectTimeout bounds a silent peer', async () => {
    const srv = net.createServer(() => {});
    await new Promise<void>((r) => srv.listen(0, LO, () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    await expect(connectNattTcp({ host: LO, port })).rejects.toMatchObject({ code: 'ECONNREFUSED', message: /listenNattTcp/ });
    // A server that accepts and never speaks TLS: the TLS handshake cannot finish.
    const socks: net.Socket[] = [];
    const mute = net.createServer((s) => {
      socks.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => mute.listen(0, LO, () => r()));
    cleanup.push(() => {
      for (const s of socks) s.destroy();
      return new Promise<void>((r) => mute.close(() => r()));
    });
    const t0 = Date.now();
    await expect(connectNattTcp({ host: LO, port: (mute.address() as net.AddressInfo).port, tls: true, connectTimeout: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe('options are checked at once, own properties only, unknown names refused', () => {
  it('listenNattTcp', () => {
    expect(() => listenNattTcp({ port: 70000 })).toThrow(RangeError);
    expect(() => listenNattTcp({ adress: '0.0.0.0' } as never)).toThrow(/unknown option "adress"/);
    expect(() => listenNattTcp({ idleTimeout: -1 })).toThrow(/"idleTimeout"/);
    expect(() => listenNattTcp({ handshakeTimeout: '10s' } as never)).toThrow(TypeError);
    expect(() => listenNattTcp({ maxConnections: 0 })).toThrow(/"maxConnections"/);
    expect(() => listenNattTcp({ maxQueuedBytes: 100 })).toThrow(/"maxQueuedBytes"/);
    expect(() => listenNattTcp({ maxFrameLength: 70000 })).toThrow(/"maxFrameLength"/);
    expect(() => listenNattTcp({ route: 'any' } as never)).toThrow(/"route"/);
    expect(() => listenNattTcp({ family: 6, address: '127.0.0.1' })).toThrow(/"address"/);
    expect(() => listenNattTcp({ tls: { cert: 'x' } } as never)).toThrow(/"tls.key"/);
    expect(() => listenNattTcp({ tls: { key: 7, cert: 'x' } } as never)).toThrow(/"tls.key" must be a PEM string, a Buffer, or an array of them, got a number/);
    expect(() => listenNattTcp({ tls: { key: 'nope', cert: 'nope' } })).toThrow(/could not make a TLS context/);
    const inherited = Object.create({ port: 1 });
    expect(() => listenNattTcp(inherited).then((l) => l.close())).not.toThrow();
    // A duration past 2^31 ms is a valid idle timeout (long timers), not an early fire.
    return listenNattTcp({ address: LO, port: 0, idleTimeout: 2 ** 33 }).then((l) => closeAll(l));
  });

  it('connectNattTcp', () => {
    expect(() => connectNattTcp(undefined as never)).toThrow(TypeError);
    expect(() => connectNattTcp({} as never)).toThrow(/"host"/);
    expect(() => connectNattTcp({ host: LO, port: 0 })).toThrow(/"port"/);
    expect(() => connectNattTcp({ host: LO, retry: true } as never)).toThrow(/unknown option "retry"/);
    expect(() => connectNattTcp({ host: LO, reconnect: { attempts: 0 } })).toThrow(/"reconnect.attempts"/);
    expect(() => connectNattTcp({ host: LO, reconnect: { minDelay: 500, maxDelay: 100 } })).toThrow(/"reconnect.maxDelay"/);
    expect(() => connectNattTcp({ host: LO, reconnect: { tries: 1 } } as never)).toThrow(/unknown option "reconnect.tries"/);
    expect(() => connectNattTcp({ host: LO, tls: { servername: 5 } } as never)).toThrow(/"tls.servername"/);
    expect(() => connectNattTcp({ host: LO, tls: { minVersion: 'TLSv1' } } as never)).toThrow(/"tls.minVersion"/);
    expect(() => connectNattTcp({ host: LO, handshakeTimeout: 5 } as never)).toThrow(/unknown option "handshakeTimeout"/);
    expect(() => connectNattTcp({ host: LO, connectTimeout: 0 })).toThrow(/"connectTimeout"/);
  });
});

describe('lifecycle', () => {
  it('close is idempotent and graceful: queued frames arrive before the FIN; close reasons; ref/unref chain', async () => {
    const { listener, client, conn } = await pair();
    let got = 0;
    listener.on('esp', () => got++);
    for (let i = 0; i < 50; i++) client.sendEsp(esp(500), listener.address().port, LO);
    const reasons: string[] = [];
    conn.on('close', (r) => reasons.push(r));
    client.close();
    client.close();
    await until(() => reasons.length === 1, 3000, 'the responder side to close');
    expect(got).toBe(50);
    expect(reasons).toEqual(['peerEnd']);
    expect(client.unref()).toBe(client);
    expect(listener.unref().ref()).toBe(listener);
    let closed = 0;
    listener.on('close', () => closed++);
    await closeAll(listener);
    listener.close();
    await sleep(10);
    expect(closed).toBe(1);
  });

  it('closing the listener closes its connections (listenerClosed) and the initiator reconnects until it gives up', async () => {
    const { listener, client }: { listener: NattTcpListener; client: NattTcpClient } = await pair({}, { reconnect: { minDelay: 10, maxDelay: 20, attempts: 2 } });
    const disc: string[] = [];
    client.on('disconnect', (r) => disc.push(r));
    const closed = next(client, 'close');
    await closeAll(listener);
    await closed;
    expect(disc).toEqual(['peerEnd']);
    expect(listener.stats().closed.listenerClosed).toBe(1);
  });
});
