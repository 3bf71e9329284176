// Bounded fuzz: 10^5 mutated ESP-in-UDP datagrams into the engine; nothing escapes, every drop is counted.

import { afterAll, describe, expect, it } from 'vitest';
import { EspTransform } from '../../src/esp';
import type { NattSocket } from '../../src/natt/socket';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { inboundDrops } from '../../src/userland/counters';
import { buildUdpPacket } from '../../src/ip/packet';
import { GCM_KEY_AB, GCM_KEY_BA, openSocket, closeSocket, installPair, prng } from './helpers';

const N = 100_000;

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
    // The peer's sender for SA 0x1001 (same key), with a big replay window on our side (the SA's is 64).
    const sender = new EspTransform({ spi: 0x1001, encryption: { algorithm: 'aes-gcm-16', key: GCM_KEY_AB } });
    const inner = buildUdpPacket('10.1.0.1', 1000, '10.2.0.1', 2000, Buffer.from('fuzz payload'));
    const rnd = prng(0x5eed);
    const rinfo = { address: peer.address, port: peer.port };
    const history: Buffer[] = [];
    let accepted = 0;
    for (let i = 0; i < N; i++) {
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
  });
});
