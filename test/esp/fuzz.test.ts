// Bounded fuzz: NATT_FUZZ_RUNS (default 10^5) mutated ESP packets over every suite → open() never throws; each is opened or counted once.

import { breathe, fuzzRuns, fuzzTimeout } from '../lib/hostile';
import { reportFuzz } from '../lib/fuzz-report';
import { describe, expect, it } from 'vitest';
import { EspTransform } from '../../src/esp';
import { SUITES } from './suites';
import { rng } from '../lib/rng';

const TOTAL = fuzzRuns(100_000);

describe(`fuzz: ${TOTAL} mutated packets`, () => {
  it('open() never throws and counts every refusal', async () => {
    const n = Math.ceil(TOTAL / SUITES.length / 2); // per suite, per ESN setting
    let done = 0;
    const outcomes: Record<string, number> = {};
    for (const [si, [name, opts]] of SUITES.entries()) {
      const rand = rng(0x5eed + si);
      for (const esn of [false, true]) {
        const tx = new EspTransform({ spi: 0x4242, ...opts, esn });
        const rx = new EspTransform({ spi: 0x4242, ...opts, esn, replayWindow: 128 });
        const seeds = Array.from({ length: 16 }, (_, i) => tx.seal(Buffer.alloc(i * 9, i), 4));
        for (let i = 0; i < n; i++) {
          if ((i & 0x3fff) === 0x3fff) await breathe();
          const base = seeds[rand(seeds.length)];
          let pkt: Buffer;
          switch (rand(6)) {
            case 0: // flip 1..4 random bits
              pkt = Buffer.from(base);
              for (let j = rand(4); j >= 0; j--) pkt[rand(pkt.length)] ^= 1 << rand(8);
              break;
            case 1: // truncate
              pkt = base.subarray(0, rand(base.length + 1));
              break;
            case 2: // extend with junk
              pkt = Buffer.concat([base, Buffer.alloc(1 + rand(40), rand(256))]);
              break;
            case 3: // random bytes behind the right SPI
              pkt = Buffer.alloc(rand(120));
              for (let j = 0; j < pkt.length; j++) pkt[j] = rand(256);
              if (pkt.length >= 4) pkt.writeUInt32BE(0x4242, 0);
              break;
            case 4: // replay an intact packet
              pkt = base;
              break;
            default: // a valid fresh packet (keeps the window moving), sometimes with a mutated trailer byte
              pkt = tx.seal(Buffer.alloc(rand(60), 7), rand(256));
              if (rand(2)) pkt[pkt.length - 1 - rand(8)] ^= 0x80;
          }
          let r;
          try {
            r = rx.open(pkt);
          } catch (e) {
            throw new Error(`${name} esn=${esn} iteration ${i}: open threw ${String(e)} on ${pkt.toString('hex')}`);
          }
          expect(typeof r.ok).toBe('boolean');
        }
        const s = rx.stats();
        const dropped = Object.values(s.drops).reduce((a, b) => a + b, 0);
        expect(s.opened + dropped).toBe(n);
        done += n;
        outcomes.opened = (outcomes.opened ?? 0) + s.opened;
        for (const [reason, k] of Object.entries(s.drops)) outcomes[reason] = (outcomes[reason] ?? 0) + k;
      }
    }
    expect(done).toBeGreaterThanOrEqual(TOTAL);
    reportFuzz('esp open (test/esp/fuzz)', outcomes, { suites: SUITES.length });
  }, fuzzTimeout(120_000));
});
