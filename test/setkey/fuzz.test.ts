// Bounded fuzz: random strings, setkey-like token soups and mutated corpus files → parseSetkey returns operations or
// throws SetkeyParseError / NattUnsupportedError, nothing else; what parses applies to a UserlandSadb without a throw.

import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NattUnsupportedError } from '../../src/errors';
import { prng } from '../userland/helpers';
import { UserlandSadb } from '../../src/userland';
import { SETKEY_PLATFORMS, SetkeyParseError, applySetkey, formatSadDump, formatSpdDump, parseSetkey, toSetkey, type SetkeyOp } from '../../src/setkey';

/** Parse; anything thrown but the two setkey errors fails the fuzz. Errors must be one line with a position. */
function tryParse(text: string, platform: (typeof SETKEY_PLATFORMS)[number] = 'any', semantics?: 'kernel'): SetkeyOp[] | null {
  try {
    return parseSetkey(text, { file: 'fuzz', platform, ...(semantics && { semantics }) });
  } catch (e) {
    if (!(e instanceof SetkeyParseError) && !(e instanceof NattUnsupportedError)) throw e;
    expect((e as Error).message).toMatch(/^fuzz:\d+:\d+: /);
    expect((e as Error).message).not.toMatch(/\n/);
    return null;
  }
}

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
  it('random strings (fast-check, 15,000 runs): only setkey errors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120, unit: 'binary' }), fc.constantFrom(...SETKEY_PLATFORMS), (s, platform) => {
        tryParse(s, platform);
      }),
      { numRuns: 15_000, seed: 0x5e7c },
    );
  });

  it('setkey-like token soups (fast-check, 30,000 runs): only setkey errors; what parses formats and writes back', () => {
    const soup = fc.array(fc.constantFrom(...WORDS), { maxLength: 40 }).map((ws) => ws.join(' '));
    let parsed = 0;
    fc.assert(
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
      { numRuns: 30_000, seed: 0x5e7d },
    );
    expect(parsed).toBeGreaterThan(100); // the soups do reach whole statements
  });

  it('mutated corpus files (20,000: deletions, duplications, insertions, byte flips): only setkey errors', () => {
    const r = prng(0x5e7ce);
    let ok = 0;
    for (let i = 0; i < 20_000; i++) {
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
    expect(ok).toBeGreaterThan(500);
  });

  it('what parses for the userland backend applies to a real UserlandSadb without a throw (2,000 mutated files)', async () => {
    const r = prng(0x5e7cf);
    let applied = 0;
    for (let i = 0; i < 2000; i++) {
      let t = corpus[r() % corpus.length];
      const at = r() % Math.max(1, t.length);
      t = t.slice(0, at) + WORDS[r() % WORDS.length] + ' ' + t.slice(at);
      const ops = tryParse(t, 'userland');
      if (!ops) continue;
      const res = await applySetkey(ops, new UserlandSadb());
      for (const f of res.failed) expect(f.message).toMatch(/^fuzz:\d+:\d+: /);
      applied++;
    }
    expect(applied).toBeGreaterThan(100);
  });
});
