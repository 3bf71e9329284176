// Bounded fuzz: NATT_FUZZ_RUNS (default 10^5, and 20,000 through a real socket) mutated ESP-in-UDP datagrams into the
// engine; nothing escapes, every drop is counted.

import { afterAll, describe, expect, it } from 'vitest';
import { EspTransform } from '../../src/esp';
import type { NattSocket } from '../../src/natt/socket';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { inboundDrops } from '../../src/userland/counters';
import { buildUdpPacket } from '../../src/ip/packet';
import dgram from 'node:dgram';
import { GCM_KEY_AB, GCM_KEY_BA, openSocket, closeSocket, installPair, prng, until } from './helpers';
import { breathe, fuzzRuns, fuzzTimeout } from '../lib/hostile';
import { reportFuzz } from '../lib/fuzz-report';
import { XFRM_STAT_NAMES } from '../../src/userland/counters';

const N = fuzzRuns(100_000);
/** Through the real socket: batches of 200, each waited for (nothing lost on lo). */
const SOCKET_N = Math.max(200, Math.ceil(fuzzRuns(20_000) / 200) * 200);

/** The engine's counters that moved, and what it accepted: one summary line (npm run fuzz). */
function outcomes(s: Record<string, number>, accepted: number): Record<string, number> {
  const out: Record<string, number> = { accepted };
  for (const n of XFRM_STAT_NAMES) if (n.startsWith('In') && s[n] > 0) out[n] = s[n];
  return out;
}

/** Datagram maker: fresh, bit-flipped, truncated, extended, re-SPI'd, re-sequenced, replayed, random and bad-inner ESP. */
function mutator(sender: EspTransform, inner: Buffer, rnd: () => number): () => Buffer {
  const history: Buffer[] = [];
  return () => {
    const kind = rnd() % 9;
    let d: Buffer;
    if (kind === 6) {
      d = Buffer.alloc(rnd() % 100);
      for (let j = 0; j < d.length; j++) d[j] = rnd() & 0xff;
    } else if (kind === 5 && history.length > 0) {
      d = Buffer.from(history[rnd() % history.length]); // replayed
    } else {
      d = sender.seal(kind === 7 ? Buffer.from('not an ip packet') : inner, 4);
      if (history.length < 256) history.push(Buffer.from(d));
      switch (kind) {
        case 1:
          d[rnd() % d.length] ^= 1 << (rnd() % 8);
          break;
        case 2:
          d = d.subarray(0, rnd() % d.length);
          break;
        case 3:
          d = Buffer.concat([d, Buffer.alloc(1 + (rnd() % 32), rnd() & 0xff)]);
          break;
        case 4:
          d.writeUInt32BE(rnd() >>> 0, 0);
          break;
        case 8:
          d.writeUInt32BE(rnd() >>> 0, 4);
          break;
        default:
      }
    }
    return d;
  };
}

describe('fuzz: mutated ESP-in-UDP datagrams into UserlandEngine', () => {
  let sock: NattSocket;
  afterAll(async () => {
    if (sock) await closeSocket(sock);
  });

  it(`${N} datagrams: no exception, drops == sent − accepted, each reason counted`, async () => {
    sock = await openSocket(4);
    const db = new UserlandSadb();
    const engine = new UserlandEngine({ socket: sock, sadb: db, keepaliveSeconds: 0 });
    const me = { address: '127.0.0.1', port: sock.address().port, net: '10.2.0.0/16' };
    const peer = { address: '127.0.0.2', port: 4500, net: '10.1.0.0/16' };
    await installPair(db, 'tunnel', me, peer, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
    // The peer's sender for SA 0x1001 (same key).
    const sender = new EspTransform({ spi: 0x1001, encryption: { algorithm: 'aes-gcm-16', key: GCM_KEY_AB } });
    const inner = buildUdpPacket('10.1.0.1', 1000, '10.2.0.1', 2000, Buffer.from('fuzz payload'));
    const rnd = prng(0x5eed);
    const rinfo = { address: peer.address, port: peer.port };
    const mutate = mutator(sender, inner, rnd);
    let accepted = 0;
    for (let i = 0; i < N; i++) {
      if ((i & 0x3fff) === 0x3fff) await breathe();
      const d = mutate();
      if (engine.receive(d, rinfo)) accepted++;
    }
    const s = engine.stats();
    const t = engine.traffic();
    expect(t.inPackets).toBe(accepted);
    expect(accepted).toBeGreaterThan(N / 20); // the unmodified ones got through
    expect(inboundDrops(s)).toBe(N - accepted);
    for (const name of ['InHdrError', 'InNoStates', 'InStateProtoError', 'InStateSeqError', 'InStateModeError'] as const) {
      expect(s[name], name).toBeGreaterThan(0);
    }
    engine.close();
    reportFuzz('userland engine.receive (test/userland/fuzz)', outcomes(s, accepted));
  }, fuzzTimeout(30_000));

  it(`${SOCKET_N} datagrams through a real socket: socket + engine counters add up to what was sent`, async () => {
    const rx = await openSocket(4);
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((res) => tx.bind(0, '127.0.0.1', () => res()));
    try {
      const db = new UserlandSadb();
      const engine = new UserlandEngine({ socket: rx, sadb: db, keepaliveSeconds: 0 });
      const me = { address: '127.0.0.1', port: rx.address().port, net: '10.2.0.0/16' };
      const peer = { address: '127.0.0.1', port: tx.address().port, net: '10.1.0.0/16' };
      await installPair(db, 'tunnel', me, peer, { out: 0x2002, in: 0x1001 }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
      const sender = new EspTransform({ spi: 0x1001, encryption: { algorithm: 'aes-gcm-16', key: GCM_KEY_AB } });
      const inner = buildUdpPacket('10.1.0.1', 1000, '10.2.0.1', 2000, Buffer.from('fuzz payload'));
      const mutate = mutator(sender, inner, prng(0xfeed));
      const received = (): number => {
        const st = rx.stats();
        return st.esp + st.ike + st.keepalive + Object.values(st.dropped).reduce((a, b) => a + b, 0);
      };
      let sent = 0;
      for (let batch = 0; batch < SOCKET_N / 200; batch++) {
        for (let i = 0; i < 200; i++) {
          tx.send(mutate(), me.port, me.address);
          sent++;
        }
        await until(() => received() === sent, 10_000, `the socket to take batch ${batch}`); // paced: nothing lost in lo
      }
      const st = rx.stats();
      expect(received()).toBe(sent);
      expect(inboundDrops(engine.stats()) + engine.traffic().inPackets).toBe(st.esp);
      expect(engine.traffic().inPackets).toBeGreaterThan(0);
      engine.close();
      const socketDrops = Object.fromEntries(Object.entries(st.dropped).filter(([, n]) => n > 0).map(([k, n]) => [`socket:${k}`, n]));
      reportFuzz('userland over a real socket (test/userland/fuzz)', { ...outcomes(engine.stats(), engine.traffic().inPackets), ...socketDrops, ...(st.ike && { 'socket:ike': st.ike }), ...(st.keepalive && { 'socket:keepalive': st.keepalive }) });
    } finally {
      tx.close();
      await closeSocket(rx);
    }
  }, fuzzTimeout(30_000));
});
