// Differential test: random packets through the native and the node:crypto cipher, per suite; bytes equal, tampering refused.
//
// How many: NATT_FUZZ_RUNS packets per suite (npm run fuzz: 10^6 per suite); by default 10^6 in total spread over
// the 33 suites (npm test). NATT_FUZZ_SUITES=name,name narrows the suites; NATT_FUZZ_SEED changes the seed.

import { randomFillSync } from 'node:crypto';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { EspBatch, ESP_DESC_WORDS } from '../../src/esp';
import { NodeEspCipher, ESP_CIPHER_OK, ESP_CIPHER_AUTH_FAILED, type EspCipher } from '../../src/esp/cipher';
import { NativeEspCipher, createEspTransform, nativeCipherStatus } from '../../src/fastpath';
import { loadNative } from '../../src/native/binding';
import { ALL_SUITES, specFor } from './suites';
import { rng } from '../lib/rng';
import { reportFuzz } from '../lib/fuzz-report';

const status = nativeCipherStatus();
const skipWhy = status.available ? '' : ` (skipped: native cipher not available: ${status.reason})`;
const only = process.env.NATT_FUZZ_SUITES ? process.env.NATT_FUZZ_SUITES.split(',') : null;
const SUITES = ALL_SUITES.filter(([n]) => !only || only.includes(n));
const TOTAL = 1_000_000;
const PER_SUITE = process.env.NATT_FUZZ_RUNS ? Number(process.env.NATT_FUZZ_RUNS) : Math.ceil(TOTAL / ALL_SUITES.length);
const SEED = Number(process.env.NATT_FUZZ_SEED ?? 0x5eed);
const BATCH = 32;
/** Share of each suite's packets that go through the batch calls instead of single ones. */
const BATCH_SHARE = 0.25;

/** ESN high bits: mostly small, often at the edges of the 32-bit range (the boundary the AAD/HMAC input carries). */
const pickHi = (rand: (n: number) => number) => [0, 1, 0xffff_ffff, 0xffff_fffe, 0x8000_0000, rand(0x1_0000_0000)][rand(6)];

/** Plaintext lengths: every small size, MTU-sized ones, and anything between (CBC rounds up to whole blocks). */
function pickPt(rand: (n: number) => number, cbc: boolean): number {
  const r = rand(8);
  const n = r < 3 ? rand(70) : r < 5 ? 1380 + rand(60) : rand(1500);
  return cbc ? n - (n % 16) : n;
}

function geometry(c: ReturnType<typeof specFor>) {
  const ivLen = c.encryption.ivLength;
  const icvLen = c.encryption.icvLength + (c.integrity ? c.integrity.icvLength : 0);
  return { ivLen, icvLen, ptOff: 8 + ivLen };
}

/** CSPRNG bytes drawn once; packets copy from a random offset (a randomFillSync per packet costs more than the ciphers). */
const POOL = randomFillSync(Buffer.alloc(1 << 20));
const fill = (rand: (n: number) => number, dst: Buffer, off: number, len: number) => {
  const from = rand(POOL.length - len);
  POOL.copy(dst, off, from, from + len);
};

const fail = (what: string, suite: string, i: number, pkt: Buffer) => {
  throw new Error(`${suite} packet ${i}: ${what}; packet ${pkt.toString('hex')}`);
};

describe.skipIf(!status.available)(`native vs node:crypto cipher, ${PER_SUITE} packets per suite${skipWhy}`, () => {
  const ctor = loadNative()?.EspCipher;
  // One summary line for npm run fuzz: packets per path over every suite (an input is a packet, tampered ones among them).
  const totals: Record<string, number> = { single: 0, batched: 0 };
  const extra = { tampered: 0, esnBoundary: 0, suites: 0 };
  afterAll(() => reportFuzz('fastpath differential (native vs node:crypto)', totals, { ...extra, runs: totals.single + totals.batched }));

  it.each(SUITES.map(([n, o], si) => [n, o, si] as const))('%s', async (name, opts, si) => {
    const rand = rng(SEED + si * 7919);
    const counts = { single: 0, batched: 0, tampered: 0, esnBoundary: 0 };
    for (const esn of [false, true]) {
      const spec = specFor(opts, esn);
      const native: EspCipher = new NativeEspCipher(ctor!, spec);
      const node: EspCipher = new NodeEspCipher(spec);
      const { ivLen, icvLen, ptOff } = geometry(spec);
      const cbc = spec.encryption.kind === 'cbc';
      const encrypts = spec.encryption.kind === 'aead' || cbc;
      const runs = Math.ceil(PER_SUITE / 2);
      const batchRuns = Math.floor(runs * BATCH_SHARE);
      const a = Buffer.alloc(16 + 8 + 16 + 1500 + 64);
      const b = Buffer.alloc(a.length);
      const orig = Buffer.alloc(a.length);
      const sealed = Buffer.alloc(a.length);
      const t = Buffer.alloc(a.length);
      const out = Buffer.alloc(1600);

      // Single packets.
      for (let i = 0; i < runs - batchRuns; i++) {
        if (i % 4096 === 4095) await tick(); // let the test runner's messages through
        const off = rand(16);
        const ptLen = pickPt(rand, cbc);
        const len = ptOff + ptLen + icvLen;
        const hi = esn ? pickHi(rand) : 0;
        if (esn && (hi === 0xffff_ffff || hi === 0)) counts.esnBoundary++;
        fill(rand, a, off, len);
        a.copy(orig, 0, off, off + len);
        a.copy(b, off, off, off + len);
        native.seal(a, off, len, hi);
        node.seal(b, off, len, hi);
        if (a.compare(b, off, off + len, off, off + len) !== 0) fail('native and node seal differ', name, i, a.subarray(off, off + len));
        if (a.compare(orig, 0, ptOff, off, off + ptOff) !== 0) fail('seal changed the header or IV', name, i, a.subarray(off, off + len));
        a.copy(sealed, 0, off, off + len);
        // Each opens the other's packet (equal bytes, so: native opens node's in place, node opens native's out of place).
        if (!native.open(b, off, len, hi, b, off + ptOff)) fail('native refused node:crypto\'s packet', name, i, sealed.subarray(0, len));
        if (!node.open(a, off, len, hi, out, 0)) fail('node:crypto refused the native packet', name, i, sealed.subarray(0, len));
        if (b.compare(orig, ptOff, ptOff + ptLen, off + ptOff, off + ptOff + ptLen) !== 0) fail('native open gave other bytes', name, i, sealed);
        if (encrypts && out.compare(orig, ptOff, ptOff + ptLen, 0, ptLen) !== 0) fail('node open gave other bytes', name, i, sealed);
        counts.single++;
        if (i % 3 === 0) {
          // One flipped bit in the SPI, sequence number, IV, ciphertext or ICV, or the wrong ESN high bits: both refuse,
          // and the refused packet is left as it was (the native in-place open puts the ciphertext back).
          const regions: Array<[number, number]> = [[0, 4], [4, 8]];
          if (ivLen) regions.push([8, ptOff]);
          if (ptLen) regions.push([ptOff, ptOff + ptLen]);
          if (icvLen) regions.push([ptOff + ptLen, len]);
          const pick = esn ? rand(regions.length + 1) : rand(regions.length);
          sealed.copy(t, 0, 0, len);
          let badHi = hi;
          if (pick === regions.length) badHi = (hi + 1 + rand(3)) >>> 0;
          else {
            const [s, e] = regions[pick];
            t[s + rand(e - s)] ^= 1 << rand(8);
          }
          const tampered = Buffer.from(t.subarray(0, len));
          if (native.open(t, 0, len, badHi, t, ptOff)) fail(`native accepted a tampered packet (region ${pick})`, name, i, tampered);
          if (!t.subarray(0, len).equals(tampered)) fail('a refused in-place open changed the packet', name, i, tampered);
          if (node.open(tampered, 0, len, badHi, out, 0)) fail(`node:crypto accepted a tampered packet (region ${pick})`, name, i, tampered);
          counts.tampered++;
        }
      }

      // Batches of BATCH packets in one slab: native sealBatch vs node's, then openBatch with some tampered.
      const slabA = Buffer.alloc(BATCH * 1600);
      const slabB = Buffer.alloc(slabA.length);
      const desc = new Uint32Array(BATCH * ESP_DESC_WORDS);
      const stA = new Uint8Array(BATCH);
      const stB = new Uint8Array(BATCH);
      for (let done = 0; done < batchRuns; done += BATCH) {
        const n = Math.min(BATCH, batchRuns - done);
        let at = 0;
        for (let j = 0; j < n; j++) {
          const ptLen = pickPt(rand, cbc);
          const len = ptOff + ptLen + icvLen;
          const w = j * ESP_DESC_WORDS;
          desc[w] = at + rand(8);
          desc[w + 1] = len;
          desc[w + 2] = esn ? pickHi(rand) : 0;
          at = desc[w] + len;
        }
        fill(rand, slabA, 0, at);
        slabA.copy(slabB, 0, 0, at);
        const plain = Buffer.from(slabA.subarray(0, at));
        stA.fill(0);
        stB.fill(0);
        expect(native.sealBatch(slabA, desc, n, stA)).toBe(n);
        expect(node.sealBatch(slabB, desc, n, stB)).toBe(n);
        if (slabA.compare(slabB, 0, at, 0, at) !== 0) throw new Error(`${name}: sealBatch differs (esn ${esn}, batch at ${done})`);
        const tamperedAt = new Set<number>();
        for (let j = 0; j < n; j++) {
          if (rand(4) !== 0) continue;
          const w = j * ESP_DESC_WORDS;
          const p = desc[w] + rand(desc[w + 1]);
          slabA[p] ^= 1 << rand(8);
          slabB[p] = slabA[p];
          tamperedAt.add(j);
        }
        const before = Buffer.from(slabA.subarray(0, at));
        stA.fill(0);
        stB.fill(0);
        const okA = native.openBatch(slabA, desc, n, stA);
        const okB = node.openBatch(slabB, desc, n, stB);
        expect(okA).toBe(n - tamperedAt.size);
        expect(okB).toBe(okA);
        for (let j = 0; j < n; j++) {
          const w = j * ESP_DESC_WORDS;
          const [s, e] = [desc[w], desc[w] + desc[w + 1]];
          expect(stA[j]).toBe(tamperedAt.has(j) ? ESP_CIPHER_AUTH_FAILED : ESP_CIPHER_OK);
          expect(stB[j]).toBe(stA[j]);
          const ref = tamperedAt.has(j) ? before : plain;
          const from = tamperedAt.has(j) ? s : s + ptOff;
          const to = tamperedAt.has(j) ? e : e - icvLen;
          if (slabA.compare(ref, from, to, from, to) !== 0) throw new Error(`${name}: native openBatch bytes of packet ${j} wrong`);
          if (encrypts && slabB.compare(ref, from, to, from, to) !== 0) throw new Error(`${name}: node openBatch bytes of packet ${j} wrong`);
        }
        counts.batched += n;
        counts.tampered += tamperedAt.size;
      }
      native.dispose();
    }
    totals.single += counts.single;
    totals.batched += counts.batched;
    extra.tampered += counts.tampered;
    extra.esnBoundary += counts.esnBoundary;
    extra.suites++;
    expect(counts.single + counts.batched).toBeGreaterThanOrEqual(PER_SUITE);
    expect(counts.tampered).toBeGreaterThan(0);
    expect(counts.esnBoundary).toBeGreaterThan(0);
  }, Math.max(600_000, PER_SUITE * 2));
});

describe.skipIf(!status.available)(`EspTransform on both paths: same packets, each opens the other's${skipWhy}`, () => {
  it.each(SUITES.map(([n, o]) => [n, o] as const))('%s, with and without ESN, across 2^32', (name, opts) => {
    for (const esn of [false, true]) {
      const start = esn ? 0xffff_fff0 : 1000;
      const mk = (cipher: 'native' | 'node', extra = {}) => createEspTransform({ spi: 0x7001, ...opts, esn, cipher, ...extra });
      const txN = mk('native', { outboundSeq: start });
      const txJ = mk('node', { outboundSeq: start });
      const rxN = mk('native', { replayWindow: 128 });
      const rxJ = mk('node', { replayWindow: 128 });
      expect([txN.cipherPath, txJ.cipherPath, rxN.cipherPath, rxJ.cipherPath]).toEqual(['native', 'node', 'native', 'node']);
      rxN.replay.reset(start);
      rxJ.replay.reset(start);
      const ivLen = txN.headroom - 8;
      const isCbc = opts.encryption.algorithm === 'aes-cbc';
      for (let i = 0; i < 40; i++) {
        const payload = randomFillSync(Buffer.alloc((i * 37) % 300));
        const p1 = txN.seal(payload, 4);
        // CBC IVs are random: give node the same one so the bytes can be compared.
        const p2 = txJ.seal(payload, 4, isCbc ? { iv: p1.subarray(8, 8 + ivLen) } : undefined);
        expect(p1.toString('hex'), `${name} seal ${i}`).toBe(p2.toString('hex'));
        const seq = esn ? start + i + 1 : start + i + 1;
        const rN = rxN.open(p2);
        const rJ = rxJ.open(p1);
        expect(rN).toEqual({ ok: true, payload, nextHeader: 4, seq, advanced: true });
        expect(rJ).toEqual(rN);
        // The packet given to open() is untouched on the native path too (its plaintext went to a buffer of its own).
        expect(p2.toString('hex')).toBe(p1.toString('hex'));
        for (const at of [0, 6, 8, p1.length - 1, Math.min(p1.length - 1, 8 + ivLen + 1)]) {
          const bad = Buffer.from(p1);
          bad[at] ^= 0x10;
          const a = rxN.open(bad);
          const b = rxJ.open(bad);
          expect(a.ok).toBe(false);
          expect(b).toEqual(a);
        }
      }
      expect(rxN.stats()).toEqual(rxJ.stats());
      if (esn) expect(rxN.replay.highest).toBe(BigInt(start + 40));
    }
  });
});

describe.skipIf(!status.available)(`EspTransform.sealBatch / openBatch on both paths${skipWhy}`, () => {
  it.each(SUITES.map(([n, o]) => [n, o] as const))('%s', (name, opts) => {
    for (const esn of [false, true]) {
      const start = esn ? 0xffff_fff0 : 0;
      const mk = (cipher: 'native' | 'node', extra = {}) => createEspTransform({ spi: 0x7002, ...opts, esn, cipher, ...extra });
      const tx = mk('native', { outboundSeq: start });
      const ref = mk('node', { outboundSeq: start });
      const rxN = mk('native', { replayWindow: 256 });
      const rxJ = mk('node', { replayWindow: 256 });
      rxN.replay.reset(start);
      rxJ.replay.reset(start);
      const batch = new EspBatch({ capacity: 32 });
      const sizes = Array.from({ length: 32 }, (_, i) => (i * 53) % 1400);
      const payloads = sizes.map((n) => randomFillSync(Buffer.alloc(n)));
      for (let i = 0; i < 32; i++) {
        const off = i * 2048 + tx.headroom;
        payloads[i].copy(batch.slab, off);
        batch.setPayload(i, off, sizes[i], i % 2 ? 4 : 41);
      }
      batch.count = 32;
      expect(tx.sealBatch(batch)).toBe(32);
      const ivLen = tx.headroom - 8;
      for (let i = 0; i < 32; i++) {
        const pkt = batch.packet(i);
        const iv = ivLen ? pkt.subarray(8, 8 + ivLen) : undefined;
        expect(pkt.toString('hex'), `${name} batch ${i}`).toBe(ref.seal(payloads[i], i % 2 ? 4 : 41, iv ? { iv } : undefined).toString('hex'));
        expect(batch.seq(i)).toBe(start + i + 1);
      }
      // Open on both paths: a copy of the slab each; packet 3 tampered, packet 7 a duplicate of packet 6.
      const openWith = (rx: typeof rxN) => {
        const b = new EspBatch({ capacity: 32 });
        batch.slab.copy(b.slab);
        for (let i = 0; i < 32; i++) b.setPacket(i, batch.desc[i * ESP_DESC_WORDS], batch.desc[i * ESP_DESC_WORDS + 1]);
        b.slab[b.desc[3 * ESP_DESC_WORDS] + 9] ^= 1;
        const [o6, l6] = [b.desc[6 * ESP_DESC_WORDS], b.desc[6 * ESP_DESC_WORDS + 1]];
        b.slab.copy(b.slab, 7 * 2048, o6, o6 + l6); // a replayed copy of packet 6 (its own bytes: each is opened in place)
        b.setPacket(7, 7 * 2048, l6);
        b.count = 32;
        const opened = rx.openBatch(b);
        return { b, opened };
      };
      const n = openWith(rxN);
      const j = openWith(rxJ);
      expect(n.opened).toBe(30);
      expect(j.opened).toBe(30);
      expect(n.b.reason(3)).toBe('auth-failed');
      expect(n.b.reason(7)).toBe('replayed');
      for (let i = 0; i < 32; i++) {
        expect(n.b.status[i]).toBe(j.b.status[i]);
        if (i === 3 || i === 7) continue;
        expect(n.b.payload(i).equals(payloads[i]), `${name} payload ${i}`).toBe(true);
        expect(j.b.payload(i).equals(payloads[i])).toBe(true);
        expect(n.b.nextHeader(i)).toBe(i % 2 ? 4 : 41);
        expect(n.b.seq(i)).toBe(start + i + 1);
      }
      expect(rxN.stats()).toEqual(rxJ.stats());
      expect(rxN.stats().drops).toMatchObject({ 'auth-failed': 1, replayed: 1 });
    }
  });
});
