// EspTransform per suite: round-trips, tampered fields refused by reason, options validated, keys hidden, no seq wrap.

import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { createCipheriv, randomBytes } from 'node:crypto';
import { EspTransform, EspSequenceExhaustedError, ESP_DROP_REASONS, type EspTransformOptions } from '../../src/esp';
import { SUITES, k } from './suites';

const pair = (o: Omit<EspTransformOptions, 'spi'>, extra: Partial<EspTransformOptions> = {}) => ({
  tx: new EspTransform({ spi: 0xabcdef01, ...o, ...extra }),
  rx: new EspTransform({ spi: 0xabcdef01, ...o, ...extra }),
});

describe.each(SUITES)('%s', (_name, opts) => {
  it('round-trips payloads of 0..70 bytes with aligned padding, with and without ESN', () => {
    for (const esn of [false, true]) {
      const { tx, rx } = pair(opts, { esn });
      const ivLen = opts.encryption.algorithm === 'aes-cbc' ? 16 : opts.encryption.algorithm === 'null' ? 0 : 8;
      const align = opts.encryption.algorithm === 'aes-cbc' ? 16 : 4;
      for (let len = 0; len <= 70; len++) {
        const p = randomBytes(len);
        const pkt = tx.seal(p, 17);
        expect((pkt.length - 8 - ivLen - tx.overhead + 8 + ivLen + 2) % align).toBe(0);
        const r = rx.open(pkt);
        expect(r).toEqual({ ok: true, payload: p, nextHeader: 17, seq: len + 1, advanced: true });
      }
      expect(tx.stats().sealed).toBe(71);
      expect(rx.stats().opened).toBe(71);
    }
  });

  it('refuses a flipped bit in SPI, seq, IV, ciphertext and ICV, each with its reason; the original still opens', () => {
    const { tx, rx } = pair(opts);
    const pkt = tx.seal(Buffer.from('a payload of some length, 33 b.'), 4);
    const ivLen = opts.encryption.algorithm === 'aes-cbc' ? 16 : opts.encryption.algorithm === 'null' ? 0 : 8;
    const fields: Array<[string, number, string]> = [
      ['spi', 0, 'spi-mismatch'],
      ['seq', 7, 'auth-failed'],
      ['ciphertext', 8 + ivLen, 'auth-failed'],
      ['icv', pkt.length - 1, 'auth-failed'],
    ];
    if (ivLen > 0) fields.push(['iv', 8, 'auth-failed']);
    for (const [, at, reason] of fields) {
      const bad = Buffer.from(pkt);
      bad[at] ^= 0x02; // seq 1 → 3: still inside the window, so only the ICV can catch it
      expect(rx.open(bad)).toEqual({ ok: false, reason });
    }
    expect(rx.open(pkt.subarray(0, 8 + ivLen + 1))).toEqual({ ok: false, reason: 'truncated' });
    expect(rx.open(pkt).ok).toBe(true);
    expect(rx.open(pkt)).toEqual({ ok: false, reason: 'replayed' });
    const s = rx.stats();
    expect(s.drops['auth-failed']).toBe(fields.length - 1);
    expect(s.drops['spi-mismatch']).toBe(1);
    expect(s.drops.replayed).toBe(1);
    expect(s.opened).toBe(1);
  });

  it('util.inspect and JSON show neither key', () => {
    const t = new EspTransform({ spi: 1000, ...opts });
    const shown = inspect(t, { showHidden: true, depth: 10 }) + JSON.stringify(t) + String(t);
    const keys = [opts.encryption.key, opts.integrity?.key].filter((x): x is Buffer => !!x && x.length > 0);
    for (const key of keys) {
      expect(shown).not.toContain(Buffer.from(key).toString('hex'));
      expect(shown).not.toContain(Array.from(key).slice(0, 6).join(', '));
      expect(shown).not.toContain(Buffer.from(key).toString('base64').slice(0, 12));
    }
    expect(shown).toContain(opts.encryption.algorithm);
  });
});

describe('padding and trailer checks', () => {
  const gcm = SUITES.find(([n]) => n === 'aes-gcm-16/128')![1];
  it('uses Pad Length 1, 2, 3, ... bytes and honours an explicit longer padLength', () => {
    const t = new EspTransform({ spi: 5, ...gcm });
    const r = new EspTransform({ spi: 5, ...gcm });
    const pkt = t.seal(Buffer.alloc(3), 4, { padLength: 7 });
    expect(pkt.length).toBe(8 + 8 + 3 + 7 + 2 + 16);
    expect(r.open(pkt)).toMatchObject({ ok: true, nextHeader: 4 });
    expect(() => t.seal(Buffer.alloc(3), 4, { padLength: 2 })).toThrow(RangeError);
    expect(() => t.seal(Buffer.alloc(3), 4, { padLength: 259 })).toThrow(/padLength/);
  });

  it('an authenticated packet with wrong padding bytes or an impossible Pad Length is a bad-padding drop', () => {
    // Built by hand with node:crypto so the ICV is valid and only the trailer is wrong.
    const key = gcm.encryption.key;
    const make = (plain: Buffer, seq: number) => {
      const hdr = Buffer.alloc(16);
      hdr.writeUInt32BE(5, 0);
      hdr.writeUInt32BE(seq, 4);
      hdr.writeUInt32BE(seq, 12);
      const c = createCipheriv('aes-128-gcm', key.subarray(0, 16), Buffer.concat([key.subarray(16), hdr.subarray(8)]));
      c.setAAD(hdr.subarray(0, 8));
      const ct = c.update(plain);
      c.final();
      return Buffer.concat([hdr, ct, c.getAuthTag()]);
    };
    const r = new EspTransform({ spi: 5, ...gcm });
    expect(r.open(make(Buffer.from([0xaa, 0xbb, 1, 9, 2, 4]), 1))).toEqual({ ok: false, reason: 'bad-padding' });
    expect(r.open(make(Buffer.from([0xaa, 0xbb, 1, 2, 200, 4]), 2))).toEqual({ ok: false, reason: 'bad-padding' });
    expect(r.open(make(Buffer.from([0xaa, 0xbb, 1, 2, 2, 4]), 3))).toMatchObject({ ok: true, payload: Buffer.from([0xaa, 0xbb]) });
    expect(r.stats().drops['bad-padding']).toBe(2);
  });

  it('CBC ciphertext that is not whole blocks is a bad-length drop', () => {
    const cbc = SUITES.find(([n]) => n === 'aes-cbc/128+hmac-sha1-96')![1];
    const t = new EspTransform({ spi: 5, ...cbc });
    const pkt = t.seal(Buffer.alloc(20), 4);
    const cut = Buffer.concat([pkt.subarray(0, 8 + 16 + 15), pkt.subarray(pkt.length - 12)]);
    expect(new EspTransform({ spi: 5, ...cbc }).open(cut)).toEqual({ ok: false, reason: 'bad-length' });
  });

  it('every drop reason has a counter, starting at 0', () => {
    const s = new EspTransform({ spi: 5, ...gcm }).stats();
    expect(Object.keys(s.drops).sort()).toEqual([...ESP_DROP_REASONS].sort());
    expect(Object.values(s.drops).every((n) => n === 0)).toBe(true);
  });
});

describe('outbound sequence numbers never wrap', () => {
  const gcm = SUITES.find(([n]) => n === 'aes-gcm-16/128')![1];
  it('32-bit: 2^32-1 is the last one sent; then seal throws and a hard expire is raised once', async () => {
    const t = new EspTransform({ spi: 9, ...gcm, outboundSeq: 0xfffffffe });
    const events: unknown[] = [];
    t.on('expire', (e) => events.push(e));
    const last = t.seal(Buffer.alloc(4), 4);
    expect(last.readUInt32BE(4)).toBe(0xffffffff);
    expect(() => t.seal(Buffer.alloc(4), 4)).toThrow(EspSequenceExhaustedError);
    try {
      t.seal(Buffer.alloc(4), 4);
    } catch (e) {
      expect((e as EspSequenceExhaustedError).code).toBe('ERR_NATT_SEQ_EXHAUSTED');
    }
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual([{ kind: 'hard', reason: 'seq-exhausted', spi: 9 }]);
    expect(t.outboundSeq).toBe(0xffffffffn);
  });

  it('ESN: the counter crosses 2^32 (low bits 0 on the wire, high bits in the ICV) and stops at 2^64-1', async () => {
    const t = new EspTransform({ spi: 9, ...gcm, esn: true, outboundSeq: 0xfffffffen });
    const r = new EspTransform({ spi: 9, ...gcm, esn: true });
    r.replay.reset(0xfffffff0n);
    const seqs = [0, 1, 2].map(() => t.seal(Buffer.alloc(4), 4)).map((p) => r.open(p));
    expect(seqs.map((x) => x.ok && x.seq)).toEqual([0xffffffff, 2 ** 32, 2 ** 32 + 1]);
    const end = new EspTransform({ spi: 9, ...gcm, esn: true, outboundSeq: 0xffff_ffff_ffff_fffen });
    let expired = 0;
    end.on('expire', () => expired++);
    end.seal(Buffer.alloc(1), 4);
    expect(() => end.seal(Buffer.alloc(1), 4)).toThrow(/rekey/);
    await new Promise((res) => setImmediate(res));
    expect(expired).toBe(1);
  });

  it('a transform constructed at the end of its space refuses at once, expires once, and never wraps to 0', async () => {
    for (const [esn, last] of [[false, 0xffffffff], [true, 0xffff_ffff_ffff_ffffn]] as const) {
      const t = new EspTransform({ spi: 9, ...gcm, esn, outboundSeq: last });
      let expired = 0;
      t.on('expire', () => expired++);
      expect(() => t.seal(Buffer.alloc(1), 4)).toThrow(EspSequenceExhaustedError);
      expect(() => t.seal(Buffer.alloc(1), 4)).toThrow(EspSequenceExhaustedError);
      await new Promise((res) => setImmediate(res));
      expect(expired).toBe(1);
    }
  });

  it('an open() of a sequence number above 2^53 reports it as a bigint', () => {
    const t = new EspTransform({ spi: 9, ...gcm, esn: true });
    const r = new EspTransform({ spi: 9, ...gcm, esn: true });
    const big = (0x300000n << 32n) | 5n;
    r.replay.reset(big - 1n);
    expect(r.open(t.seal(Buffer.alloc(1), 4, { seq: big }))).toMatchObject({ ok: true, seq: big });
  });
});

describe('option validation names the option', () => {
  const gcm = SUITES.find(([n]) => n === 'aes-gcm-16/128')![1];
  const cases: Array<[string, unknown, RegExp, ErrorConstructor]> = [
    ['no options', undefined, /options/, TypeError],
    ['spi 0', { spi: 0, ...gcm }, /"spi"/, RangeError],
    ['spi 2^32', { spi: 2 ** 32, ...gcm }, /"spi"/, RangeError],
    ['spi string', { spi: '1', ...gcm }, /"spi"/, TypeError],
    ['gcm key 16', { spi: 1, encryption: { algorithm: 'aes-gcm-16', key: k(16) } }, /"encryption.key"/, RangeError],
    ['chacha key 32', { spi: 1, encryption: { algorithm: 'chacha20-poly1305', key: k(32) } }, /"encryption.key"/, RangeError],
    ['cbc key 20', { spi: 1, encryption: { algorithm: 'aes-cbc', key: k(20) } }, /"encryption.key"/, RangeError],
    ['null with a key', { spi: 1, encryption: { algorithm: 'null', key: k(4) }, integrity: { algorithm: 'hmac-sha1-96', key: k(20) } }, /"encryption.key"/, RangeError],
    ['unknown cipher', { spi: 1, encryption: { algorithm: 'rot13', key: k(4) } }, /"encryption.algorithm"/, RangeError],
    ['key not bytes', { spi: 1, encryption: { algorithm: 'aes-cbc', key: 'secret' } }, /"encryption.key"/, TypeError],
    ['sha1 key 16', { spi: 1, encryption: { algorithm: 'aes-cbc', key: k(16) }, integrity: { algorithm: 'hmac-sha1-96', key: k(16) } }, /"integrity.key"/, RangeError],
    ['sha256 key 20', { spi: 1, encryption: { algorithm: 'aes-cbc', key: k(16) }, integrity: { algorithm: 'hmac-sha2-256-128', key: k(20) } }, /"integrity.key"/, RangeError],
    ['unknown integ', { spi: 1, encryption: { algorithm: 'aes-cbc', key: k(16) }, integrity: { algorithm: 'crc32', key: k(4) } }, /"integrity.algorithm"/, RangeError],
    ['AEAD with HMAC', { spi: 1, ...gcm, integrity: { algorithm: 'hmac-sha1-96', key: k(20) } }, /"integrity.algorithm"/, RangeError],
    ['NULL without integrity', { spi: 1, encryption: { algorithm: 'null', key: Buffer.alloc(0) } }, /"integrity.algorithm"/, RangeError],
    ['window too big', { spi: 1, ...gcm, replayWindow: 70000 }, /"replayWindow"/, RangeError],
    ['window negative', { spi: 1, ...gcm, replayWindow: -1 }, /"replayWindow"/, RangeError],
    ['outboundSeq > 2^32 without ESN', { spi: 1, ...gcm, outboundSeq: 2 ** 32 }, /"outboundSeq"/, RangeError],
  ];
  it.each(cases)('%s', (_n, o, msg, cls) => {
    expect(() => new EspTransform(o as EspTransformOptions)).toThrow(cls);
    expect(() => new EspTransform(o as EspTransformOptions)).toThrow(msg);
  });

  it('a key never appears in an error message', () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff0011', 'hex');
    try {
      new EspTransform({ spi: 1, encryption: { algorithm: 'aes-gcm-16', key } });
    } catch (e) {
      expect(String((e as Error).message)).not.toMatch(/0011|00 11|17, 34/);
      expect((e as Error).message).toMatch(/18 bytes/);
    }
  });

  it('seal and open check their arguments', () => {
    const t = new EspTransform({ spi: 1, ...gcm });
    expect(() => t.seal('x' as unknown as Buffer, 4)).toThrow(/"payload"/);
    expect(() => t.seal(Buffer.alloc(1), 256)).toThrow(/"nextHeader"/);
    expect(() => t.seal(Buffer.alloc(1), 4, { iv: Buffer.alloc(16) })).toThrow(/"iv"/);
    expect(() => t.seal(Buffer.alloc(1), 4, { seq: 0 })).toThrow(/"seq"/);
    expect(() => t.seal(Buffer.alloc(1), 4, { seq: 2n ** 32n })).toThrow(/"seq"/);
    expect(() => t.seal(Buffer.alloc(1), 4, { padLength: 2 })).toThrow(/"padLength"/); // minimum 1, then 5, 9, ...
    expect(t.seal(Buffer.alloc(1), 4).readUInt32BE(4)).toBe(1); // refused calls consumed no sequence number
    expect(() => t.open(null as unknown as Buffer)).toThrow(/"packet"/);
    expect(t.open(new Uint8Array(3))).toEqual({ ok: false, reason: 'truncated' });
  });

  it('seal into a caller\'s buffer at an offset (e.g. behind a non-IKE marker); a short buffer is a RangeError', () => {
    const t = new EspTransform({ spi: 1, ...gcm });
    const r = new EspTransform({ spi: 1, ...gcm });
    const buf = Buffer.alloc(100, 0xee);
    const view = t.seal(Buffer.from('abc'), 4, { into: buf, offset: 8 });
    expect(view.length).toBe(t.sealedLength(3));
    expect(view.buffer).toBe(buf.buffer);
    expect(buf.subarray(0, 8)).toEqual(Buffer.alloc(8, 0xee));
    expect(r.open(buf.subarray(8, 8 + view.length))).toMatchObject({ ok: true, payload: Buffer.from('abc') });
    expect(() => t.seal(Buffer.alloc(60), 4, { into: buf, offset: 20 })).toThrow(/"offset"/);
    for (const [, x] of SUITES) {
      const o = new EspTransform({ spi: 1, ...x });
      for (let len = 0; len < 40; len++) expect(o.seal(Buffer.alloc(len), 4).length).toBe(o.sealedLength(len));
    }
  });

  it('accepts a plain Uint8Array packet', () => {
    const t = new EspTransform({ spi: 1, ...gcm });
    const r = new EspTransform({ spi: 1, ...gcm });
    const pkt = t.seal(new Uint8Array([1, 2, 3]), 4);
    expect(r.open(new Uint8Array(pkt))).toMatchObject({ ok: true, payload: Buffer.from([1, 2, 3]) });
  });
});
