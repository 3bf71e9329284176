// Fuzz at the connection level: NATT_TCP_FUZZ_RUNS (default 10^4 in npm test; npm run fuzz: 10^5 and more) byte streams, each on its own real TCP connection
// to a real listener, random, valid and mutated, written in random chunks, ended by FIN or RST. No exception
// escapes; every connection's close is counted once, by reason; for every FIN-ended stream the connection's frame
// counts and close reason are exactly what the decoder says of the whole stream; the listener still serves after.

import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { listenNattTcp } from '../../src/tcp/listener';
import { connectNattTcp } from '../../src/tcp/client';
import { FrameDecoder, encodeFrame, streamPrefix } from '../../src/tcp/framing';
import type { NattTcpConnection, TcpCloseReason } from '../../src/tcp/connection';
import { closeAll, until } from './helpers';
import { prng } from '../userland/helpers';
import { reportFuzz } from '../lib/fuzz-report';

// The 10^5 streams of the issue go through the decoder itself in test/tcp/fuzz.test.ts; here each stream costs a real
// TCP connection (~0.5 ms), so npm test runs 10^4 and `npm run fuzz` the larger count (NATT_FUZZ_RUNS).
const RUNS = Number(process.env.NATT_TCP_FUZZ_RUNS ?? (process.env.NATT_FUZZ_RUNS ? Math.min(Number(process.env.NATT_FUZZ_RUNS), 1_000_000) : 10_000));
const SEED = Number(process.env.NATT_FUZZ_SEED ?? 0x9329);
const PARALLEL = 48;
/** Below 65535, so a mutated Length can pass the limit (lengthOverLimit) as well as fall below 2. */
const MAX_FRAME = 2048;
const LO = '127.0.0.1';

/** A seeded draw in [0, n), so a failing run replays from NATT_FUZZ_SEED. */
function rng(seed: number): (n: number) => number {
  const next = prng(seed);
  return (n: number) => next() % n;
}

/** One stream: random bytes; a valid one; a valid one with one octet changed, cut short, or with junk appended. */
function stream(r: (n: number) => number): Buffer {
  const kind = r(10);
  if (kind === 0) return Buffer.from(Array.from({ length: r(64) }, () => r(256)));
  const parts: Buffer[] = r(20) === 0 ? [] : [streamPrefix()];
  for (let i = 0, n = r(6); i < n; i++) {
    const t = r(5);
    if (t === 0) parts.push(encodeFrame('keepalive'));
    else if (t === 1) parts.push(encodeFrame('ike', Buffer.alloc(1 + r(300), r(256))));
    else {
      const p = Buffer.alloc(9 + r(1400), r(256));
      p.writeUInt32BE(1 + r(0xffff), 0);
      parts.push(encodeFrame('esp', p));
    }
  }
  let s = Buffer.concat(parts);
  if (kind >= 7 && s.length > 0) {
    if (kind === 7) s[r(s.length)] ^= 1 + r(255);
    else if (kind === 8) s = s.subarray(0, r(s.length));
    else s = Buffer.concat([s, Buffer.from(Array.from({ length: 1 + r(8) }, () => r(256)))]);
  }
  return s;
}

/** What the decoder says of the whole stream: frames kept and how it ends. */
function expected(s: Buffer): { ike: number; esp: number; reason: TcpCloseReason } {
  const d = new FrameDecoder({ expectPrefix: true, maxFrameLength: MAX_FRAME });
  d.push(s);
  const f = d.end();
  const st = d.stats();
  return { ike: st.ike, esp: st.esp, reason: f ? f.reason : 'peerEnd' };
}

describe('connection-level fuzz', () => {
  it(`${RUNS} fuzzed streams, one real TCP connection each: nothing escapes, every close counted, FIN streams exact`, async () => {
    const listener = await listenNattTcp({ address: LO, port: 0, maxConnections: 4 * PARALLEL, handshakeTimeout: 5000, frameTimeout: 5000, maxFrameLength: MAX_FRAME });
    const port = listener.address().port;
    const r = rng(SEED);
    const byPort = new Map<number, NattTcpConnection>();
    const closedBy: Record<string, number> = {};
    let mismatches: string[] = [];
    const expectations = new Map<number, ReturnType<typeof expected>>();
    listener.on('connection', (c) => {
      byPort.set(c.remotePort, c);
      c.on('close', (reason) => {
        closedBy[reason] = (closedBy[reason] ?? 0) + 1;
        const e = expectations.get(c.remotePort);
        if (e) {
          const s = c.stats();
          if (s.ike !== e.ike || s.esp !== e.esp || reason !== e.reason) {
            if (mismatches.length < 5) mismatches.push(`port ${c.remotePort}: got ${s.ike}/${s.esp}/${reason}, want ${e.ike}/${e.esp}/${e.reason}`);
          }
          expectations.delete(c.remotePort);
        }
        byPort.delete(c.remotePort);
      });
    });
    let finStreams = 0;
    let rstStreams = 0;
    const one = (): Promise<void> =>
      new Promise((resolve) => {
        const s = stream(r);
        const rst = r(10) === 0;
        const chunks: Buffer[] = [];
        for (let at = 0; at < s.length; ) {
          const n = 1 + r(Math.max(1, s.length - at));
          chunks.push(s.subarray(at, at + n));
          at += n;
        }
        const sock = net.connect({ host: LO, port });
        sock.on('error', () => {});
        sock.on('close', () => resolve());
        sock.on('data', () => {});
        sock.on('connect', () => {
          if (rst) rstStreams++;
          else {
            finStreams++;
            expectations.set(sock.localPort!, expected(s));
          }
          for (const c of chunks) sock.write(c);
          if (rst) sock.resetAndDestroy();
          else sock.end();
        });
      });
    const t0 = Date.now();
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started < RUNS) {
        started++;
        await one();
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    await until(() => listener.stats().accepted === RUNS && listener.stats().connections === 0, 30_000, 'every connection closed');
    const st = listener.stats();
    const total = Object.values(st.closed).reduce((a, b) => a + b, 0);
    console.log(`connection fuzz: ${RUNS} streams (${finStreams} FIN, ${rstStreams} RST) in ${Date.now() - t0} ms; closed by reason ${JSON.stringify(Object.fromEntries(Object.entries(listener.stats().closed).filter(([, n]) => n > 0)))}`);
    expect(total).toBe(RUNS); // each close counted once, by reason
    // Every connection the listener announced closed once (a peer gone before its accept completed is counted but
    // not announced: it never carried a byte).
    const announced = Object.values(closedBy).reduce((a, b) => a + b, 0);
    expect(announced).toBeGreaterThanOrEqual(finStreams);
    expect(announced).toBeLessThanOrEqual(RUNS);
    expect(mismatches).toEqual([]);
    reportFuzz('tcp connection fuzz (real connections, by close reason)', closedBy, { runs: RUNS });
    expect(expectations.size).toBe(0);
    expect(st.closed.badPrefix).toBeGreaterThan(0);
    expect(st.closed.peerEnd).toBeGreaterThan(0);
    expect(st.closed.truncated).toBeGreaterThan(0);
    expect(st.closed.lengthOverLimit).toBeGreaterThan(0);
    // The listener still serves a real initiator.
    const client = await connectNattTcp({ host: LO, port, reconnect: false });
    let got = 0;
    listener.on('ike', () => got++);
    client.sendIke(Buffer.from('still here'), port, LO);
    await until(() => got === 1, 3000, 'a real IKE message after the fuzz');
    await closeAll(client, listener);
    mismatches = [];
  }, 600_000);
});
