// Bounded fuzz: NATT_FUZZ_RUNS per dialect (default 34,000: ~10^5 in all) random and mutated buffers → decode throws only
// PfKeyDecodeError, and what decodes re-encodes identically.
import { describe, expect, it } from 'vitest';
import { decode, PfKeyDecodeError, type PfKeyMessage } from '../../src/pfkey/codec';
import { pfkeyEncode as encode } from '../lib/encoders';
import type { DialectName } from '../../src/pfkey/dialects';
import { breathe, fuzzRuns, fuzzTimeout } from '../lib/hostile';
import { reportFuzz } from '../lib/fuzz-report';

/** Buffers per dialect: 30/34 mutated valid messages, 4/34 noise. */
const PER_DIALECT = fuzzRuns(34_000);
const MUTATED = Math.round((PER_DIALECT * 30) / 34);
const NOISE = PER_DIALECT - MUTATED;

/** xorshift32: the fuzz is reproducible from its seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const v4 = (address: string, port = 0) => ({ family: 'inet' as const, address, port });
const v6 = (address: string) => ({ family: 'inet6' as const, address, port: 500 });

/** Well-formed seeds covering every layout (mutations of valid messages reach deep into the decoder). */
function seeds(d: DialectName): Buffer[] {
  const msgs: PfKeyMessage[] = [
    {
      type: 3,
      satype: 3,
      seq: 1,
      pid: 7,
      extensions: [
        { name: 'sa', spi: 0x1234, replay: 32, state: 1, auth: 3, encrypt: 12, flags: 0 },
        { name: 'sa2', mode: 2, sequence: 0, reqid: 9 },
        { name: 'lifetimeHard', allocations: 1, bytes: 2n, addtime: 3n, usetime: 4n },
        { name: 'src', proto: 255, prefixlen: 32, addr: v4('192.0.2.1') },
        { name: 'dst', proto: 255, prefixlen: 128, addr: v6('2001:db8::7') },
        { name: 'keyAuth', bits: 160, key: new Uint8Array(20).fill(3) },
        { name: 'keyEncrypt', bits: 128, key: new Uint8Array(16).fill(4) },
        { name: 'nattType', type: 2 },
        { name: 'nattSport', port: 4500 },
        { name: 'nattDport', port: 4500 },
        { name: 'raw', type: 40, data: new Uint8Array(12) },
      ],
    },
    {
      type: 14,
      extensions: [
        { name: 'src', proto: 17, prefixlen: 24, addr: v4('10.0.0.0') },
        { name: 'dst', proto: 17, prefixlen: 24, addr: v4('10.1.0.0', 53) },
        {
          name: 'policy',
          policyType: 2,
          dir: 2,
          id: 5,
          priority: 9,
          requests: [
            { proto: 50, mode: 2, level: 2, reqid: 1, tunnel: { src: v6('2001:db8::1'), dst: v6('2001:db8::2') } },
            { proto: 51, mode: 1, level: 1, reqid: 2 },
          ],
        },
      ],
    },
    {
      type: 6,
      extensions: [
        { name: 'identitySrc', idtype: 1, id: 1n, data: new Uint8Array(8).fill(0x41) },
        { name: 'sensitivity', dpd: 1, sensLevel: 2, integLevel: 3, sens: new Uint8Array(8), integ: new Uint8Array(16) },
        {
          name: 'proposal',
          replay: 32,
          combs: [
            {
              auth: 3, encrypt: 12, flags: 0, authMinbits: 160, authMaxbits: 160, encryptMinbits: 128, encryptMaxbits: 256,
              softAllocations: 0, hardAllocations: 0, softBytes: 0n, hardBytes: 0n, softAddtime: 0n, hardAddtime: 0n, softUsetime: 0n, hardUsetime: 0n,
            },
          ],
        },
        { name: 'supportedAuth', algs: [{ id: 3, ivlen: 0, minbits: 160, maxbits: 160 }] },
        { name: 'spirange', min: 256, max: 0xffff },
        { name: 'kmprivate', data: new Uint8Array(8) },
      ],
    },
  ];
  if (d === 'linux')
    msgs.push({
      type: 24,
      extensions: [
        { name: 'secCtx', alg: 1, doi: 1, ctx: new Uint8Array(5).fill(0x61) },
        { name: 'kmaddress', local: v4('10.0.0.1'), remote: v6('2001:db8::9') },
        { name: 'filter', saddr: new Uint8Array(16), daddr: new Uint8Array(16), family: 2, splen: 8, dplen: 8 },
        { name: 'nattOa', proto: 0, prefixlen: 32, addr: v4('10.9.9.9') },
      ],
    });
  else
    msgs.push({
      type: 3,
      extensions: [
        { name: 'nattOai', proto: 0, prefixlen: 32, addr: v4('10.9.9.9') },
        { name: 'nattOar', proto: 0, prefixlen: 128, addr: v6('2001:db8::5') },
        { name: 'nattFrag', fraglen: 1400 },
        ...(d === 'freebsd'
          ? ([
              { name: 'saReplay', replay: 128 },
              { name: 'newAddressSrc', proto: 0, prefixlen: 32, addr: v4('10.0.0.3') },
              { name: 'lifetimeHwOffload', allocations: 1, bytes: 1n, addtime: 1n, usetime: 1n },
            ] as const)
          : []),
      ],
    });
  return msgs.map((m) => encode(m, d));
}

function mutate(b: Buffer, r: () => number): Buffer {
  const out = Buffer.from(b);
  const kind = r() % 6;
  const at = out.length ? r() % out.length : 0;
  switch (kind) {
    case 0: // flip a few bytes
      for (let i = 0, n = 1 + (r() % 4); i < n && out.length; i++) out[r() % out.length] = r() & 0xff;
      return out;
    case 1: // truncate (keeping or fixing sadb_msg_len)
      return (() => {
        const t = out.subarray(0, at & ~7);
        if (t.length >= 6 && r() & 1) t.writeUInt16LE(t.length / 8, 4);
        return Buffer.from(t);
      })();
    case 2: // set a 16-bit length-like field at an 8-aligned offset to something small or large
      if (out.length >= 2) out.writeUInt16LE([0, 1, 2, 3, 5, 0xffff, r() & 0xffff][r() % 7], (at & ~7) % (out.length - 1));
      return out;
    case 3: // extension type field
      if (out.length >= 4) out.writeUInt16LE(r() % 34, Math.min((at & ~7) + 2, out.length - 2));
      return out;
    case 4: // append garbage words and fix the length
      return (() => {
        const extra = Buffer.alloc(8 * (1 + (r() % 3)));
        for (let i = 0; i < extra.length; i++) extra[i] = r() & 0xff;
        const t = Buffer.concat([out, extra]);
        if (t.length >= 6) t.writeUInt16LE((t.length / 8) & 0xffff, 4);
        return t;
      })();
    default: // splice in a block of another position
      if (out.length > 16) {
        const from = r() % out.length;
        const len = Math.min(8, out.length - Math.max(from, at));
        out.copy(out, at, from, from + len);
      }
      return out;
  }
}

function check(b: Buffer, d: DialectName, stats: { ok: number; rejected: number }): void {
  let m: PfKeyMessage;
  try {
    m = decode(b, d);
  } catch (e) {
    if (!(e instanceof PfKeyDecodeError)) throw new Error(`non-PfKeyDecodeError for ${b.toString('hex')}: ${(e as Error).stack}`);
    stats.rejected++;
    return;
  }
  stats.ok++;
  const again = encode(m, d);
  if (!again.equals(b)) throw new Error(`lossy: ${b.toString('hex')} → ${again.toString('hex')}`);
}

describe.each(['linux', 'netbsd', 'freebsd'] as DialectName[])('fuzz (%s dialect)', (d) => {
  it(`${PER_DIALECT} mutated and random buffers: only PfKeyDecodeError; every accepted buffer re-encodes byte for byte`, async () => {
    const r = rng(0x5eed + d.length);
    const base = seeds(d);
    const stats = { ok: 0, rejected: 0 };
    for (let i = 0; i < MUTATED; i++) {
      if ((i & 0x3fff) === 0x3fff) await breathe();
      let b = base[r() % base.length];
      for (let k = 0, n = 1 + (r() % 3); k < n; k++) b = mutate(b, r);
      check(b, d, stats);
    }
    // Pure noise, with a plausible header half the time.
    for (let i = 0; i < NOISE; i++) {
      if ((i & 0x3fff) === 0x3fff) await breathe();
      const b = Buffer.alloc(r() % 96);
      for (let j = 0; j < b.length; j++) b[j] = r() & 0xff;
      if (b.length >= 16 && r() & 1) {
        b[0] = 2;
        b.writeUInt16LE((b.length >> 3) & 0xffff, 4);
      }
      check(b, d, stats);
    }
    expect(stats.ok + stats.rejected).toBe(PER_DIALECT);
    // Both outcomes are exercised: the fuzz reaches past the header checks.
    expect(stats.ok).toBeGreaterThan(PER_DIALECT / 34);
    expect(stats.rejected).toBeGreaterThan(PER_DIALECT / 34);
    reportFuzz(`pfkey decode, ${d} (test/pfkey/fuzz)`, { 'decoded+re-encoded': stats.ok, PfKeyDecodeError: stats.rejected });
  }, fuzzTimeout(30_000));
});
