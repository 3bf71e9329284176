// Starvation: 1,000 idle connections and slowloris peers do not keep a good initiator's transfer from completing.

import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import { listenNattTcp, type ListenNattTcpOptions, type NattTcpListener } from '../../src/tcp/listener';
import { connectNattTcp } from '../../src/tcp/client';
import { encodeFrame, streamPrefix } from '../../src/tcp/framing';
import { KEY_CS, KEY_SC, closeAll, installTunnel, until } from './helpers';
import { createTransfer } from './transfer.js';

const LO = '127.0.0.1';
const IDLE = 1000;
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/** `n` TCP connections that send nothing (kept open by the test until the end). */
async function idlers(port: number, n: number): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  cleanup.push(() => out.forEach((s) => s.destroy()));
  for (let i = 0; i < n; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, n - i) }, () => {
        const s = net.connect({ host: LO, port });
        s.on('error', () => {});
        out.push(s);
        return new Promise<void>((r) => {
          s.once('connect', () => r());
          s.once('close', () => r());
        });
      }),
    );
  }
  return out;
}

/** A slowloris: the prefix (and, when `proven`, one real frame), then a 64 KiB frame one octet a second. */
function slowloris(port: number, proven: boolean): net.Socket {
  const s = net.connect({ host: LO, port });
  s.on('error', () => {});
  s.once('connect', () => {
    s.write(Buffer.concat([streamPrefix(), proven ? encodeFrame('ike', Buffer.alloc(40, 1)) : Buffer.alloc(0), Buffer.from([0xff, 0xff])]));
    const t = setInterval(() => (s.writable ? s.write(Buffer.from([0x42])) : clearInterval(t)), 1000);
    cleanup.push(() => clearInterval(t));
  });
  cleanup.push(() => s.destroy());
  return s;
}

/** A good initiator and the listener's engine: 1000 packets of 1000 bytes each way; resolves with the time it took. */
async function goodTransfer(listener: NattTcpListener): Promise<{ ms: number; digestsOk: boolean; received: number[] }> {
  const client = await connectNattTcp({ host: LO, port: listener.address().port });
  cleanup.push(() => closeAll(client));
  const dbC = new UserlandSadb();
  const dbS = new UserlandSadb();
  const C = { address: LO, port: client.address().port, net: '10.10.0.0/16' };
  const S = { address: LO, port: listener.address().port, net: '10.20.0.0/16' };
  await installTunnel(dbC, C, S, { out: 0x71, in: 0x72 }, { out: KEY_CS, in: KEY_SC });
  await installTunnel(dbS, S, C, { out: 0x72, in: 0x71 }, { out: KEY_SC, in: KEY_CS });
  const ec = new UserlandEngine({ socket: client, sadb: dbC, keepaliveSeconds: 0 });
  const es = new UserlandEngine({ socket: listener, sadb: dbS, keepaliveSeconds: 0 });
  cleanup.push(() => ec.close(), () => es.close());
  const common = { build: buildUdpPacket, count: 1000, size: 1000, window: 64, rtoMs: 400 };
  const t0 = Date.now();
  const [a, b] = await Promise.all([
    createTransfer({ ...common, engine: ec, me: { host: '10.10.0.5' }, peer: { host: '10.20.0.7' }, id: 1, peerId: 2, seed: 1, peerSeed: 2 }).start(),
    createTransfer({ ...common, engine: es, me: { host: '10.20.0.7' }, peer: { host: '10.10.0.5' }, id: 2, peerId: 1, seed: 2, peerSeed: 1 }).start(),
  ]);
  return { ms: Date.now() - t0, digestsOk: a.digest === a.expected && b.digest === b.expected, received: [a.received, b.received] };
}

async function listen(o: ListenNattTcpOptions): Promise<NattTcpListener> {
  const l = await listenNattTcp({ address: LO, port: 0, ...o });
  cleanup.push(() => closeAll(l));
  return l;
}

describe(`starvation: ${IDLE} idle connections and slowloris peers`, () => {
  it(`with the default limits: ${IDLE} idle + 2 slowloris fit (maxConnections ${1024}); the good transfer completes in bounded time`, async () => {
    const listener = await listen({});
    const port = listener.address().port;
    await idlers(port, IDLE);
    slowloris(port, false);
    slowloris(port, true);
    await until(() => listener.stats().connections === IDLE + 2, 20_000, 'every idler accepted');
    const r = await goodTransfer(listener);
    expect(r.received).toEqual([1000, 1000]);
    expect(r.digestsOk).toBe(true);
    expect(r.ms).toBeLessThan(30_000); // a liveness bound, not a speed claim
    const s = listener.stats();
    expect(s.connections).toBe(IDLE + 3); // nobody was evicted: there was room
    expect(s.closed.evicted).toBe(0);
    console.log(`default limits: good transfer of 2 x 1000 packets took ${r.ms} ms beside ${IDLE} idle and 2 slowloris connections`);
  }, 120_000);

  it('with tight limits: idlers are evicted and timed out, slowloris peers cut (handshake, frame timeout), all counted; the good transfer completes', async () => {
    const listener = await listen({ maxConnections: 200, handshakeTimeout: 1500, frameTimeout: 2500 });
    const port = listener.address().port;
    const slow1 = slowloris(port, false); // never completes a frame: the handshake timeout
    const slow2 = slowloris(port, true); // one real frame, then one octet a second: the frame timeout
    await until(() => listener.stats().connections === 2, 5000, 'the slowloris peers');
    await idlers(port, IDLE);
    await until(() => listener.stats().accepted === IDLE + 2, 20_000, 'every idler accepted');
    const evicted = listener.stats().closed.evicted;
    expect(evicted).toBeGreaterThanOrEqual(IDLE + 2 - 200);
    const r = await goodTransfer(listener); // its connection is admitted (evicting an idler) and proves itself
    expect(r.received).toEqual([1000, 1000]);
    expect(r.digestsOk).toBe(true);
    expect(r.ms).toBeLessThan(30_000);
    await until(() => slow1.destroyed || slow1.closed, 10_000, 'the first slowloris to be cut');
    await until(() => slow2.destroyed || slow2.closed, 10_000, 'the second slowloris to be cut');
    await until(() => listener.stats().connections === 1, 10_000, 'only the good initiator left');
    const s = listener.stats();
    expect(s.closed.frameTimeout).toBe(1);
    expect(s.closed.evicted + s.closed.handshakeTimeout).toBe(IDLE + 1); // every idler and the unproven slowloris
    expect(s.accepted).toBe(IDLE + 3);
    console.log(`tight limits: good transfer took ${r.ms} ms; closed ${JSON.stringify(Object.fromEntries(Object.entries(s.closed).filter(([, n]) => n > 0)))}`);
  }, 120_000);
});
