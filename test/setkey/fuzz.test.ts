// Bounded fuzz: random strings, setkey-like token soups and mutated corpus files → parseSetkey returns operations or
// throws SetkeyParseError / NattUnsupportedError, nothing else; what parses applies to a UserlandSadb without a throw.

import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NattUnsupportedError } from '../../src/errors';
import { prng } from '../userland/helpers';
import { assertRuns, breathe, fuzzRuns, fuzzTimeout } from '../lib/hostile';
import { OutcomeCounts, reportFuzz } from '../lib/fuzz-report';
import { UserlandSadb } from '../../src/userland';
import { SETKEY_PLATFORMS, SetkeyParseError, applySetkey, formatSadDump, formatSpdDump, parseSetkey, toSetkey, type SetkeyOp } from '../../src/setkey';

/** Parse; anything thrown but the two setkey errors fails the fuzz. Errors must be one line with a position. */
function tryParse(text: string, platform: (typeof SETKEY_PLATFORMS)[number] = 'any', semantics?: 'kernel'): SetkeyOp[] | null {
  try {
    const ops = parseSetkey(text, { file: 'fuzz', platform, ...(semantics && { semantics }) });
    counts.add('parsed');
    return ops;
  } catch (e) {
    if (!(e instanceof SetkeyParseError) && !(e instanceof NattUnsupportedError)) throw e;
    counts.add(e.constructor.name);
    expect((e as Error).message).toMatch(/^fuzz:\d+:\d+: /);
    expect((e as Error).message).not.toMatch(/\n/);
    return null;
  }
}

/** How the parses of the current test ended (one summary line per test under npm run fuzz). */
let counts = new OutcomeCounts();
function report(test: string, runs?: number): void {
  reportFuzz(test, counts.counts, runs === undefined ? {} : { runs, unit: 'inputs; the outcomes count parses and operations' });
  counts = new OutcomeCounts();
}

const RANDOM = fuzzRuns(15_000);
const SOUPS = fuzzRuns(30_000);
const MUTATED = fuzzRuns(20_000);
const APPLIED = fuzzRuns(2_000);

const CORPUS_DIR = path.join(__dirname, '..', 'fixtures', 'setkey-corpus');
const corpus = fs.readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.conf')).sort().map((f) => fs.readFileSync(path.join(CORPUS_DIR, f), 'utf8'));

const WORDS = [
  'add', 'update', 'get', 'getspi', 'delete', 'deleteall', 'flush', 'dump', 'spdadd', 'spdupdate', 'spddelete', 'spdflush',
  'spddump', 'exit', 'tagged', 'esp', 'esp-udp', 'esp-old', 'ah', 'ah-old', 'ipcomp', 'tcp', 'udp', 'icmp6', 'any', 'gre',
  'transport', 'tunnel', '-m', '-r', '-u', '-f', '-lh', '-ls', '-bh', '-bs', '-ctx', '-E', '-A', '-C', '-R', '-P', '-4',
  '-6', '-n', 'rijndael-cbc', 'aes-gcm-16', 'null', 'hmac-sha256', 'hmac-sha1', 'des-cbc', 'deflate', 'zero-pad',
  'nocyclic-seq', 'in', 'out', 'fwd', 'ipsec', 'none', 'discard', 'bypass', 'prio', 'priority', 'def', 'high', 'low', '+',
  'esp/transport//require', 'esp/tunnel/10.0.0.1-10.0.0.2/unique:7', 'ah/transport//use', 'esp/tunnel/::1[4500]-::2[4500]/require',
  '10.0.0.1', '10.0.0.2', '0.0.0.0/0', '::1', 'fe80::1%eth0', '2001:db8::/64', 'host.example', '[4500]', '[any]', '[', ']',
  '/24', '/', '0x1000', '0x', '4294967296', '10000', '0', '135,0', '1.2.3.4', '"aaaaaaaaaaaaaaaa"', '"x"', '0x' + 'ab'.repeat(16),
  ';', ';', ';', '#c\n', '\n', '\t', '\r\n', '\\', '"', 'é', '\u0000',
];

describe('parseSetkey under fuzz', () => {
  it(`random strings (fast-check, ${RANDOM} runs): only setkey errors`, async () => {
    await assertRuns(
      fc.property(fc.string({ maxLength: 120, unit: 'binary' }), fc.constantFrom(...SETKEY_PLATFORMS), (s, platform) => {
        tryParse(s, platform);
      }),
      RANDOM,
      { seed: 0x5e7c },
    );
    report('parseSetkey, random strings (test/setkey/fuzz)');
  }, fuzzTimeout(30_000));

  it(`setkey-like token soups (fast-check, ${SOUPS} runs): only setkey errors; what parses formats and writes back`, async () => {
    const soup = fc.array(fc.constantFrom(...WORDS), { maxLength: 40 }).map((ws) => ws.join(' '));
    let parsed = 0;
    await assertRuns(
      fc.property(soup, fc.constantFrom(...SETKEY_PLATFORMS), (s, platform) => {
        const ops = tryParse(s, platform);
        if (!ops) return;
        parsed++;
        const sas = ops.flatMap((o) => (o.op === 'add' || o.op === 'update' ? [o.sa] : []));
        const pols = ops.flatMap((o) => (o.op === 'spdadd' || o.op === 'spdupdate' ? [o.policy] : []));
        formatSadDump(sas);
        formatSpdDump(pols);
        const again = tryParse(toSetkey(sas, pols, { revealKeys: true, platform }), platform, 'kernel');
        expect(again?.length ?? -1).toBe(sas.length + pols.length);
      }),
      SOUPS,
      { seed: 0x5e7d },
    );
    expect(parsed).toBeGreaterThan(SOUPS / 300); // the soups do reach whole statements
    report('parseSetkey, token soups, re-parsed (test/setkey/fuzz)', SOUPS);
  }, fuzzTimeout(30_000));

  it(`mutated corpus files (${MUTATED}: deletions, duplications, insertions, byte flips): only setkey errors`, async () => {
    const r = prng(0x5e7ce);
    let ok = 0;
    for (let i = 0; i < MUTATED; i++) {
      if ((i & 0xfff) === 0xfff) await breathe();
      let t = corpus[r() % corpus.length];
      const n = 1 + (r() % 4);
      for (let k = 0; k < n; k++) {
        const at = t.length ? r() % t.length : 0;
        switch (r() % 5) {
          case 0:
            t = t.slice(0, at) + t.slice(at + 1 + (r() % 12));
            break;
          case 1:
            t = t.slice(0, at) + t.slice(at, at + (r() % 40)) + t.slice(at);
            break;
          case 2:
            t = t.slice(0, at) + WORDS[r() % WORDS.length] + t.slice(at);
            break;
          case 3:
            t = t.slice(0, at) + String.fromCharCode(r() % 128) + t.slice(at + 1);
            break;
          default:
            t = t.slice(0, at) + ' ' + t.slice(at);
        }
      }
      if (tryParse(t, SETKEY_PLATFORMS[r() % SETKEY_PLATFORMS.length])) ok++;
    }
    expect(ok).toBeGreaterThan(MUTATED / 40);
    report('parseSetkey, mutated corpus files (test/setkey/fuzz)');
  }, fuzzTimeout(30_000));

  it(`what parses for the userland backend applies to a real UserlandSadb without a throw (${APPLIED} mutated files)`, async () => {
    const r = prng(0x5e7cf);
    let applied = 0;
    for (let i = 0; i < APPLIED; i++) {
      let t = corpus[r() % corpus.length];
      const at = r() % Math.max(1, t.length);
      t = t.slice(0, at) + WORDS[r() % WORDS.length] + ' ' + t.slice(at);
      const ops = tryParse(t, 'userland');
      if (!ops) continue;
      const res = await applySetkey(ops, new UserlandSadb());
      for (const f of res.failed) expect(f.message).toMatch(/^fuzz:\d+:\d+: /);
      counts.add('applied', res.applied);
      counts.add('refused by the database', res.failed.length);
      applied++;
    }
    expect(applied).toBeGreaterThan(APPLIED / 20);
    report('applySetkey of what parsed (test/setkey/fuzz)', APPLIED);
  }, fuzzTimeout(30_000));
});
