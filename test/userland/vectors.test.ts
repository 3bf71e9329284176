// Interop: scapy's ESP-in-UDP vectors (test/fixtures/vectors/scapy-natt.json) through UserlandEngine.receive, checked against scapy's inner packets.

import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { IpView, l4ChecksumOk, readIpHeader } from '../../src/ip/packet';
import type { EncryptionAlgorithm, IntegrityAlgorithm } from '../../src/sadb/types';
import type { NattSocket } from '../../src/natt/socket';
import { closeSocket, openSocket } from './helpers';

const FILE = join(__dirname, '..', 'fixtures', 'vectors', 'scapy-natt.json');

interface Vector {
  id: string;
  algorithms: { encr: { name: string }; integ: { name: string } | null };
  key: { encKeymat: string | null; authKey: string };
  spi: string;
  seq: number;
  esnHigh: number | null;
  mode: 'tunnel' | 'transport';
  espPacket: string;
  innerPacket: string;
  natt: { ipVersion: 4 | 6; outerSrc: string; outerDst: string; udpSrcPort: number; udpDstPort: number };
}

const vectors: Vector[] = JSON.parse(readFileSync(FILE, 'utf8'));

describe('scapy ESP-in-UDP vectors into the engine', () => {
  let sock: NattSocket;
  afterAll(async () => {
    if (sock) await closeSocket(sock);
  });

  it.each(vectors.map((v) => [v.id, v] as const))('%s', async (_id, v) => {
    sock ??= await openSocket(4);
    const n = v.natt;
    const db = new UserlandSadb();
    await db.add({
      src: n.outerSrc,
      dst: n.outerDst,
      spi: parseInt(v.spi, 16),
      mode: v.mode,
      esn: v.esnHigh !== null,
      encryption: { algorithm: v.algorithms.encr.name.toLowerCase() as EncryptionAlgorithm, key: Buffer.from(v.key.encKeymat ?? '', 'hex') },
      integrity: v.algorithms.integ
        ? { algorithm: v.algorithms.integ.name.toLowerCase() as IntegrityAlgorithm, key: Buffer.from(v.key.authKey, 'hex') }
        : undefined,
      natt: { type: 'espinudp', sport: n.udpSrcPort, dport: n.udpDstPort },
    });
    const any = n.ipVersion === 4 ? '0.0.0.0/0' : '::/0';
    if (v.mode === 'tunnel') {
      await db.spdAdd({
        selector: { src: any, dst: any },
        direction: 'in',
        action: 'ipsec',
        templates: [{ protocol: 'esp', mode: 'tunnel', src: n.outerSrc, dst: n.outerDst }],
      });
    }
    const entry = db.bySpi(parseInt(v.spi, 16))![0];
    if (v.esnHigh !== null) entry.transform!.replay.reset(BigInt(v.esnHigh) * 2n ** 32n + BigInt(v.seq) - 1n);
    const engine = new UserlandEngine({ socket: sock, sadb: db, keepaliveSeconds: 0 });
    const got: Buffer[] = [];
    engine.on('packet', (p) => got.push(Buffer.from(p)));
    const ok = engine.receive(Buffer.from(v.espPacket, 'hex'), { address: n.outerSrc, port: n.udpSrcPort });
    engine.close();
    expect(engine.stats()).toEqual(Object.fromEntries(Object.keys(engine.stats()).map((k) => [k, 0])));
    expect(ok).toBe(true);
    expect(engine.traffic().newMappings).toBe(0);
    const inner = Buffer.from(v.innerPacket, 'hex');
    if (v.mode === 'tunnel') {
      expect(got[0]).toEqual(inner);
    } else {
      // Rebuilt IP header (ours) around scapy's upper-layer bytes: same addresses, protocol, segment; checksum valid.
      const a = new IpView();
      const b = new IpView();
      readIpHeader(got[0], a);
      readIpHeader(inner, b);
      expect(a.proto).toBe(b.proto);
      expect(got[0].subarray(a.srcOffset, a.srcOffset + a.addrLength)).toEqual(inner.subarray(b.srcOffset, b.srcOffset + b.addrLength));
      expect(got[0].subarray(a.dstOffset, a.dstOffset + a.addrLength)).toEqual(inner.subarray(b.dstOffset, b.dstOffset + b.addrLength));
      expect(got[0].subarray(a.l4Offset, a.totalLength)).toEqual(inner.subarray(b.l4Offset, b.totalLength));
      expect(l4ChecksumOk(got[0])).toBe(true);
    }
  });
});
