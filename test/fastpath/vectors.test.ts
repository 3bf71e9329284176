// Every vector in test/fixtures/vectors through both cipher paths: ESP packets byte for byte, CBC and HMAC known answers.

import { describe, expect, it } from 'vitest';
import { createEspTransform, nativeCipherStatus, NativeEspCipher } from '../../src/fastpath';
import { NodeEspCipher, type EspCipher, type EspCipherSpec } from '../../src/esp/cipher';
import { loadNative } from '../../src/native/binding';
import { encryptionSuite } from '../../src/esp/suites';
import { hex, loadVectors, transformOptions, vectorSeq, type Vector } from '../esp/vectors';

const status = nativeCipherStatus();
const PATHS = status.available ? (['native', 'node'] as const) : (['node'] as const);
const note = status.available ? '' : ` (native path skipped: ${status.reason})`;
const espVectors = [...loadVectors('rfc3602.json'), ...loadVectors('scapy-natt.json')].filter((v) => v.kind === 'esp-packet');

describe.each(PATHS)(`ESP packet vectors on the %s path${note}`, (cipher) => {
  it('has the vectors the README lists', () => expect(espVectors.length).toBe(26));

  it.each(espVectors.map((v) => [v.id, v] as const))('%s: seal reproduces the packet, open gives it back', (_id, v: Vector) => {
    const t = createEspTransform({ ...transformOptions(v), cipher });
    expect(t.cipherPath).toBe(cipher);
    const out = t.seal(hex(v.payload), v.nextHeader!, { iv: hex(v.iv), seq: vectorSeq(v), padLength: v.padLength! });
    expect(out.toString('hex')).toBe(v.espPacket);
    const rx = createEspTransform({ ...transformOptions(v), cipher });
    const seq = vectorSeq(v);
    if (typeof seq === 'bigint') rx.replay.reset(seq - 1n);
    expect(rx.open(hex(v.espPacket))).toEqual({ ok: true, payload: hex(v.payload), nextHeader: v.nextHeader, seq: Number(seq), advanced: true });
    // Any one flipped bit is refused (RFC 3602's cases are CBC without integrity: nothing to catch it there).
    const pkt = hex(v.espPacket);
    const protectedPkt = !(v.algorithms.encr!.name === 'AES-CBC' && (!v.algorithms.integ || v.algorithms.integ.name === 'NONE'));
    for (const at of protectedPkt ? [0, 5, 9, pkt.length >> 1, pkt.length - 1] : []) {
      const bad = Buffer.from(pkt);
      bad[at] ^= 0x40;
      const r = createEspTransform({ ...transformOptions(v), cipher });
      if (typeof seq === 'bigint') r.replay.reset(seq - 1n);
      expect(r.open(bad).ok).toBe(false);
    }
  });

  it('RFC 3602 AES-CBC known answers', () => {
    const kats = loadVectors('rfc3602.json').filter((v) => v.kind === 'cipher-kat');
    expect(kats.length).toBe(4);
    for (const v of kats) {
      const t = createEspTransform({ spi: 0x1234, encryption: { algorithm: 'aes-cbc', key: hex(v.key.encKey) }, allowNoIntegrity: true, cipher });
      const p = hex(v.payload);
      const pkt = t.seal(p, 59, { iv: hex(v.iv), seq: 1 });
      expect(pkt.subarray(8 + 16, 8 + 16 + p.length).toString('hex')).toBe(v.ciphertext);
      const r = createEspTransform({ spi: 0x1234, encryption: { algorithm: 'aes-cbc', key: hex(v.key.encKey) }, allowNoIntegrity: true, cipher }).open(pkt);
      expect(r.ok && r.payload.equals(p)).toBe(true);
    }
  });
});

describe(`HMAC known answers (RFC 2202, RFC 4868) through each cipher's NULL + HMAC${note}`, () => {
  const macs = loadVectors('hmac-icv.json');
  const hashOf: Record<string, string> = {
    'HMAC-SHA1-96': 'sha1',
    'HMAC-SHA2-256-128': 'sha256',
    'HMAC-SHA2-384-192': 'sha384',
    'HMAC-SHA2-512-256': 'sha512',
  };
  const mdLen: Record<string, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
  it('has 19 MAC KATs', () => expect(macs.length).toBe(19));

  // The cipher layer takes any key length (RFC 2202's 80-byte keys are hashed first); with the ICV as long as the
  // hash, a NULL "packet" whose bytes are the KAT data carries the full MAC.
  const makers: Array<[string, (s: EspCipherSpec) => EspCipher]> = [['node', (s) => new NodeEspCipher(s)]];
  if (status.available) makers.unshift(['native', (s) => new NativeEspCipher(loadNative()!.EspCipher!, s)]);
  it.each(makers)('%s: every KAT, full and truncated', (_path, make) => {
    let checked = 0;
    for (const v of macs) {
      const hash = hashOf[v.algorithms.integ!.name];
      const data = hex(v.mac!.data);
      if (data.length < 8) continue; // shorter than an ESP header: not a packet
      const spec: EspCipherSpec = {
        encryption: encryptionSuite('null', Buffer.alloc(0)),
        integrity: { algorithm: 'hmac-sha1-96', hash, icvLength: mdLen[hash] },
        key: Buffer.alloc(0),
        salt: Buffer.alloc(0),
        authKey: hex(v.key.authKey),
        esn: false,
      };
      const c = make(spec);
      const pkt = Buffer.concat([data, Buffer.alloc(mdLen[hash])]);
      c.seal(pkt, 0, pkt.length, 0);
      expect(pkt.subarray(data.length).toString('hex'), v.id).toBe(v.mac!.fullMac);
      expect(pkt.subarray(data.length, data.length + v.icvLength).toString('hex')).toBe(v.mac!.truncatedMac);
      expect(c.open(pkt, 0, pkt.length, 0, pkt, 8)).toBe(true);
      pkt[pkt.length - 1] ^= 1;
      expect(c.open(pkt, 0, pkt.length, 0, pkt, 8)).toBe(false);
      c.dispose();
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });
});
