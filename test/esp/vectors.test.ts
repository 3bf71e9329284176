// Every shared ESP vector through EspTransform.seal (byte-exact with the vector's IV, seq and padding) and open.

import { describe, expect, it } from 'vitest';
import { createCipheriv, createHmac } from 'node:crypto';
import { EspTransform } from '../../src/esp';
import { hmacDigest } from '../../src/esp/suites';
import { hex, loadVectors, transformOptions, vectorSeq, type Vector } from './vectors';

const espVectors = [...loadVectors('rfc3602.json'), ...loadVectors('scapy-natt.json')].filter((v) => v.kind === 'esp-packet');

function openFresh(v: Vector) {
  const t = new EspTransform(transformOptions(v));
  const seq = vectorSeq(v);
  if (typeof seq === 'bigint') t.replay.reset(seq - 1n); // start the ESN window just below the vector
  return t.open(hex(v.espPacket));
}

describe('ESP packet vectors', () => {
  it('has the vectors the README lists', () => {
    expect(espVectors.length).toBe(4 + 22);
  });

  it.each(espVectors.map((v) => [v.id, v] as const))('%s: seal reproduces the packet byte for byte', (_id, v) => {
    const t = new EspTransform(transformOptions(v));
    const out = t.seal(hex(v.payload), v.nextHeader!, { iv: hex(v.iv), seq: vectorSeq(v), padLength: v.padLength! });
    expect(out.toString('hex')).toBe(v.espPacket);
  });

  it.each(espVectors.map((v) => [v.id, v] as const))('%s: seal with minimal padding gives the same bytes', (_id, v) => {
    const t = new EspTransform(transformOptions(v));
    const out = t.seal(hex(v.payload), v.nextHeader!, { iv: hex(v.iv), seq: vectorSeq(v) });
    expect(out.toString('hex')).toBe(v.espPacket);
  });

  it.each(espVectors.map((v) => [v.id, v] as const))('%s: open gives payload, next header and seq', (_id, v) => {
    const r = openFresh(v);
    expect(r).toEqual({ ok: true, payload: hex(v.payload), nextHeader: v.nextHeader, seq: Number(vectorSeq(v)), advanced: true });
  });

  it('an ESN vector opened with a window on the wrong side of 2^32 fails authentication, not silently', () => {
    const v = espVectors.find((x) => x.esnHigh !== null)!;
    const t = new EspTransform(transformOptions(v));
    t.replay.reset((BigInt(v.esnHigh! + 1) << 32n) + 1000n); // window one epoch later: infers the wrong high bits
    const r = t.open(hex(v.espPacket));
    expect(r.ok).toBe(false);
  });
});

describe('RFC 3602 AES-CBC known answers through seal/open', () => {
  const kats = loadVectors('rfc3602.json').filter((v) => v.kind === 'cipher-kat');
  it('has 4 cipher KATs', () => expect(kats.length).toBe(4));
  it.each(kats.map((v) => [v.id, v] as const))('%s', (_id, v) => {
    // The ESP plaintext begins with the payload, so the first blocks of the ciphertext are the raw CBC answer.
    const t = new EspTransform({ spi: 0x1234, encryption: { algorithm: 'aes-cbc', key: hex(v.key.encKey) }, allowNoIntegrity: true });
    const p = hex(v.payload);
    const pkt = t.seal(p, 59, { iv: hex(v.iv), seq: 1 });
    expect(pkt.subarray(8 + 16, 8 + 16 + p.length).toString('hex')).toBe(v.ciphertext);
    const r = t.open(pkt);
    expect(r.ok && r.payload.equals(p)).toBe(true);
  });
});

describe('HMAC ICV known answers (RFC 2202, RFC 4868)', () => {
  const macs = loadVectors('hmac-icv.json');
  it('has 19 MAC KATs', () => expect(macs.length).toBe(19));
  const hashOf: Record<string, string> = {
    'HMAC-SHA1-96': 'sha1',
    'HMAC-SHA2-256-128': 'sha256',
    'HMAC-SHA2-384-192': 'sha384',
    'HMAC-SHA2-512-256': 'sha512',
  };
  it.each(macs.map((v) => [v.id, v] as const))('%s', (_id, v) => {
    const mac = hmacDigest(hashOf[v.algorithms.integ!.name], hex(v.key.authKey), hex(v.mac!.data));
    expect(mac.toString('hex')).toBe(v.mac!.fullMac);
    expect(mac.subarray(0, v.icvLength).toString('hex')).toBe(v.mac!.truncatedMac);
  });

  it('with an RFC-sized key, a NULL-encryption ESP packet carries the KAT key\'s truncated MAC of SPI..payload', () => {
    const espAlg = { sha1: 'hmac-sha1-96', sha256: 'hmac-sha2-256-128', sha384: 'hmac-sha2-384-192', sha512: 'hmac-sha2-512-256' } as const;
    const espKeyLen = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
    let checked = 0;
    for (const v of macs) {
      const hash = hashOf[v.algorithms.integ!.name] as keyof typeof espAlg;
      const key = hex(v.key.authKey);
      if (key.length !== espKeyLen[hash]) continue; // ESP requires this exact key length (RFC 2404, RFC 4868)
      const t = new EspTransform({ spi: 0x100, encryption: { algorithm: 'null', key: Buffer.alloc(0) }, integrity: { algorithm: espAlg[hash], key } });
      const pkt = t.seal(hex(v.mac!.data), 59, { seq: 7 });
      const body = pkt.subarray(0, pkt.length - v.icvLength);
      expect(pkt.subarray(body.length)).toEqual(createHmac(hash, key).update(body).digest().subarray(0, v.icvLength));
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });
});

// No ChaCha20-Poly1305 or GMAC vector is in the folder (RFC 7634 Appendix A's numbers could not be retrieved), so
// these suites are checked against a direct node:crypto construction of RFC 7634 / RFC 4543 written here.
describe('ChaCha20-Poly1305 (RFC 7634) and AES-GMAC (RFC 4543) against an independent construction', () => {
  const payload = Buffer.from('4500001c000000004011000001020304050607080800000000080000', 'hex');
  const keymat = Buffer.from(Array.from({ length: 36 }, (_, i) => 0x80 + i));
  const iv = Buffer.from('1011121314151617', 'hex');
  const trailerFor = (len: number) => {
    const pad = (4 - ((len + 2) % 4)) % 4;
    return Buffer.from([...Array.from({ length: pad }, (_, i) => i + 1), pad, 4]);
  };

  for (const esn of [false, true]) {
    it(`chacha20-poly1305${esn ? ' with ESN' : ''}: nonce = salt ‖ IV, AAD = SPI ‖ ${esn ? 'seq-hi ‖ ' : ''}seq-lo`, () => {
      const seq = esn ? (5n << 32n) | 9n : 9;
      const t = new EspTransform({ spi: 0x01020304, encryption: { algorithm: 'chacha20-poly1305', key: keymat }, esn });
      const pkt = t.seal(payload, 4, { iv, seq });
      const hdr = Buffer.from('0102030400000009', 'hex'); // SPI ‖ seq low (the high bits never travel)
      const aad = esn ? Buffer.from('010203040000000500000009', 'hex') : hdr;
      const c = createCipheriv('chacha20-poly1305', keymat.subarray(0, 32), Buffer.concat([keymat.subarray(32), iv]), {
        authTagLength: 16,
      });
      const plain = Buffer.concat([payload, trailerFor(payload.length)]);
      c.setAAD(aad, { plaintextLength: plain.length });
      const ct = Buffer.concat([c.update(plain), c.final()]);
      const expected = Buffer.concat([hdr, iv, ct, c.getAuthTag()]);
      expect(pkt.toString('hex')).toBe(expected.toString('hex'));
      const rx = new EspTransform({ spi: 0x01020304, encryption: { algorithm: 'chacha20-poly1305', key: keymat }, esn });
      if (esn) rx.replay.reset((5n << 32n) | 1n);
      expect(rx.open(pkt)).toEqual({ ok: true, payload, nextHeader: 4, seq: Number(seq), advanced: true });
    });
  }

  for (const esn of [false, true]) {
    it(`aes-gmac${esn ? ' with ESN' : ''}: cleartext payload, AAD = SPI ‖ ${esn ? 'seq-hi ‖ ' : ''}seq-lo ‖ IV ‖ payload ‖ trailer`, () => {
      const key = keymat.subarray(0, 20);
      const seq = esn ? (5n << 32n) | 9n : 9;
      const t = new EspTransform({ spi: 0x01020304, encryption: { algorithm: 'aes-gmac', key }, esn });
      const pkt = t.seal(payload, 4, { iv, seq });
      const body = Buffer.concat([Buffer.from('0102030400000009', 'hex'), iv, payload, trailerFor(payload.length)]);
      const aad = esn ? Buffer.concat([body.subarray(0, 4), Buffer.from('00000005', 'hex'), body.subarray(4)]) : body;
      const c = createCipheriv('aes-128-gcm', key.subarray(0, 16), Buffer.concat([key.subarray(16), iv]));
      c.setAAD(aad);
      c.final();
      expect(pkt.toString('hex')).toBe(Buffer.concat([body, c.getAuthTag()]).toString('hex'));
      const rx = new EspTransform({ spi: 0x01020304, encryption: { algorithm: 'aes-gmac', key }, esn });
      if (esn) rx.replay.reset((5n << 32n) | 1n);
      expect(rx.open(pkt)).toEqual({ ok: true, payload, nextHeader: 4, seq: Number(seq), advanced: true });
    });
  }

  it('HMAC with ESN: the ICV covers SPI ‖ seq-lo ‖ IV ‖ ciphertext ‖ seq-hi (RFC 4303 §2.2.1), for NULL and CBC', () => {
    const authKey = Buffer.alloc(32, 0x61);
    for (const encryption of [
      { algorithm: 'null' as const, key: Buffer.alloc(0) },
      { algorithm: 'aes-cbc' as const, key: Buffer.alloc(16, 0x33) },
    ]) {
      const opts = { spi: 0x0a0b0c0d, encryption, integrity: { algorithm: 'hmac-sha2-256-128' as const, key: authKey }, esn: true };
      const pkt = new EspTransform(opts).seal(payload, 4, { seq: (0x123456n << 32n) | 3n });
      const body = pkt.subarray(0, pkt.length - 16);
      expect(body.readUInt32BE(4)).toBe(3); // only the low half travels
      const mac = createHmac('sha256', authKey).update(body).update(Buffer.from('00123456', 'hex')).digest();
      expect(pkt.subarray(body.length).toString('hex')).toBe(mac.subarray(0, 16).toString('hex'));
      const rx = new EspTransform(opts);
      rx.replay.reset(0x123456n << 32n);
      expect(rx.open(pkt)).toMatchObject({ ok: true, payload, seq: 0x123456 * 2 ** 32 + 3 });
    }
  });

  it('AEAD IVs default to the 64-bit sequence number (unique per key)', () => {
    const t = new EspTransform({ spi: 7, encryption: { algorithm: 'aes-gcm-16', key: keymat.subarray(0, 20) }, esn: true });
    const pkt = t.seal(payload, 4, { seq: (3n << 32n) | 0xfffffffen });
    expect(pkt.subarray(8, 16).toString('hex')).toBe('00000003fffffffe');
  });
});
