// Property tests: every message type with every extension of each dialect survives encode → decode → encode.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decode, type PfKeyExtension, type PfKeyMessage, type Sockaddr } from '../../src/pfkey/codec';
import { pfkeyEncode as encode } from '../lib/encoders';
import { assertRuns, fuzzRuns, fuzzTimeout } from '../lib/hostile';
import { reportFuzz } from '../lib/fuzz-report';
import { DIALECTS, COMMON_EXTENSIONS, type Dialect, type DialectName } from '../../src/pfkey/dialects';
import { bytesToAddress } from '../../src/ip/address';

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
/** A reserved field: absent (decodes as absent) or non-zero. */
const rsv = (max: number) => fc.option(fc.integer({ min: 1, max }), { nil: undefined });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const padded = (maxWords: number) => fc.integer({ min: 0, max: maxWords }).chain((n) => bytes(n * 8, n * 8));

const sockaddr: fc.Arbitrary<Sockaddr> = fc.oneof(
  fc.record({ family: fc.constant('inet' as const), address: bytes(4, 4).map((b) => bytesToAddress(b, 0, 4)), port: u16 }),
  fc.record(
    {
      family: fc.constant('inet6' as const),
      address: bytes(16, 16).map((b) => bytesToAddress(b, 0, 16)),
      port: u16,
      flowinfo: fc.integer({ min: 1, max: 0xffffffff }),
      scopeId: fc.integer({ min: 1, max: 0xffffffff }),
    },
    { requiredKeys: ['family', 'address', 'port'] },
  ),
);
const prefixFor = (a: Sockaddr) => fc.integer({ min: 0, max: a.family === 'inet' ? 32 : 128 });
const withReserved = <T extends object>(arb: fc.Arbitrary<T>, max: number) =>
  fc.tuple(arb, rsv(max)).map(([o, r]) => (r === undefined ? o : { ...o, reserved: r }));

function extArb(name: string, d: Dialect): fc.Arbitrary<PfKeyExtension> {
  switch (name) {
    case 'sa':
      return fc.record({ name: fc.constant(name), spi: u32, replay: u8, state: u8, auth: u8, encrypt: u8, flags: u32 });
    case 'lifetimeCurrent':
    case 'lifetimeHard':
    case 'lifetimeSoft':
    case 'lifetimeSwOffload':
    case 'lifetimeHwOffload':
      return fc.record({ name: fc.constant(name as 'lifetimeHard'), allocations: u32, bytes: u64, addtime: u64, usetime: u64 });
    case 'src':
    case 'dst':
    case 'proxy':
    case 'nattOa':
    case 'nattOai':
    case 'nattOar':
    case 'newAddressSrc':
    case 'newAddressDst':
      return withReserved(
        sockaddr.chain((addr) => fc.record({ name: fc.constant(name as 'src'), proto: u8, prefixlen: prefixFor(addr), addr: fc.constant(addr) })),
        0xffff,
      );
    case 'keyAuth':
    case 'keyEncrypt':
      return withReserved(
        bytes(0, 64).chain((key) =>
          fc.record({ name: fc.constant(name as 'keyAuth'), bits: fc.integer({ min: Math.max(0, key.length * 8 - 7), max: key.length * 8 }), key: fc.constant(key) }),
        ),
        0xffff,
      );
    case 'identitySrc':
    case 'identityDst':
      return withReserved(fc.record({ name: fc.constant(name as 'identitySrc'), idtype: u16, id: u64, data: padded(4) }), 0xffff);
    case 'sensitivity':
      return withReserved(
        fc.record({ name: fc.constant(name), dpd: u32, sensLevel: u8, integLevel: u8, sens: padded(3), integ: padded(3) }),
        0xffffffff,
      );
    case 'proposal': {
      const comb = withReserved(
        fc.record({
          auth: u8,
          encrypt: u8,
          flags: u16,
          authMinbits: u16,
          authMaxbits: u16,
          encryptMinbits: u16,
          encryptMaxbits: u16,
          softAllocations: u32,
          hardAllocations: u32,
          softBytes: u64,
          hardBytes: u64,
          softAddtime: u64,
          hardAddtime: u64,
          softUsetime: u64,
          hardUsetime: u64,
        }),
        0xffffffff,
      );
      return withReserved(fc.record({ name: fc.constant(name), replay: u8, combs: fc.array(comb, { maxLength: 3 }) }), 0xffffff);
    }
    case 'supportedAuth':
    case 'supportedEncrypt': {
      const alg = withReserved(fc.record({ id: u8, ivlen: u8, minbits: u16, maxbits: u16 }), 0xffff);
      return withReserved(fc.record({ name: fc.constant(name as 'supportedAuth'), algs: fc.array(alg, { maxLength: 6 }) }), 0xffffffff);
    }
    case 'spirange':
      return withReserved(fc.record({ name: fc.constant(name), min: u32, max: u32 }), 0xffffffff);
    case 'kmprivate':
      return withReserved(fc.record({ name: fc.constant(name), data: padded(4) }), 0xffffffff);
    case 'policy': {
      const linux = d.ipsecRequestSize === 16;
      const req = fc.record(
        {
          proto: u16,
          mode: u8,
          level: u8,
          reqid: linux ? u32 : u16,
          ...(linux && { reserved1: fc.integer({ min: 1, max: 0xffff }), reserved2: fc.integer({ min: 1, max: 0xffffffff }) }),
          // Both endpoints of a tunnel share a family (the encoder refuses a mix).
          tunnel: sockaddr.chain((src) => sockaddr.filter((dst) => dst.family === src.family).map((dst) => ({ src, dst }))),
        },
        { requiredKeys: ['proto', 'mode', 'level', 'reqid'] },
      );
      return withReserved(fc.record({ name: fc.constant(name), policyType: u16, dir: u8, id: u32, priority: u32, requests: fc.array(req, { maxLength: 3 }) }), 0xff);
    }
    case 'sa2':
      return fc.record(
        { name: fc.constant(name), mode: u8, reserved1: fc.integer({ min: 1, max: 0xff }), reserved2: fc.integer({ min: 1, max: 0xffff }), sequence: u32, reqid: u32 },
        { requiredKeys: ['name', 'mode', 'sequence', 'reqid'] },
      );
    case 'nattType':
      return withReserved(fc.record({ name: fc.constant(name), type: u8 }), 0xffffff);
    case 'nattSport':
    case 'nattDport':
      return withReserved(fc.record({ name: fc.constant(name as 'nattSport'), port: u16 }), 0xffff);
    case 'nattFrag':
      return withReserved(fc.record({ name: fc.constant(name), fraglen: u16 }), 0xffff);
    case 'secCtx':
      return fc.record({ name: fc.constant(name), alg: u8, doi: u8, ctx: bytes(0, 40) });
    case 'kmaddress':
      return withReserved(fc.record({ name: fc.constant(name), local: sockaddr, remote: sockaddr }), 0xffffffff);
    case 'filter':
      return fc.record({ name: fc.constant(name), saddr: bytes(16, 16), daddr: bytes(16, 16), family: u16, splen: u8, dplen: u8 });
    case 'saReplay':
      return fc.record({ name: fc.constant(name), replay: u32 });
    case 'ifHwOffload':
      return fc.record({ name: fc.constant('raw' as const), type: fc.constant(31), data: fc.integer({ min: 0, max: 5 }).chain((n) => bytes(4 + 8 * n, 4 + 8 * n)) });
    default:
      throw new Error(`no arbitrary for ${name}`);
  }
}

function namesOf(d: Dialect): string[] {
  return [...Object.values(COMMON_EXTENSIONS), ...Object.values(d.extensions)];
}

/** Any set of distinct extensions of the dialect plus unknown numbers above its max, in any order. */
function messageArb(d: Dialect): fc.Arbitrary<PfKeyMessage> {
  const exts = namesOf(d).map((n) => fc.option(extArb(n, d), { nil: undefined, freq: 3 }));
  const raw = fc.uniqueArray(fc.integer({ min: d.extMax + 1, max: 0xffff }), { maxLength: 2 }).chain((types) =>
    fc.tuple(...types.map((type) => fc.integer({ min: 0, max: 3 }).map((n) => ({ name: 'raw' as const, type, data: new Uint8Array(4 + 8 * n).fill(type & 0xff) })))),
  );
  return fc
    .record({
      type: fc.integer({ min: 1, max: d.msgMax }),
      errno: u8,
      satype: u8,
      reserved: u16,
      seq: u32,
      pid: u32,
      exts: fc.tuple(...exts),
      raw,
      order: fc.integer(),
    })
    .map(({ exts: e, raw: r, order, ...h }) => {
      const list = [...e.filter((x): x is PfKeyExtension => x !== undefined), ...r];
      // A deterministic shuffle: extension order is kept on the wire.
      const shuffled = list.map((x, i) => [((i + 1) * 2654435761 + order) >>> 0, x] as const).sort((a, b) => a[0] - b[0]).map((p) => p[1]);
      return { version: 2, ...h, extensions: shuffled };
    });
}

/** Decoded key extensions are key holders: make them visible for comparison. */
function plain(m: PfKeyMessage): PfKeyMessage {
  return { ...m, extensions: m.extensions.map((e) => (e.name === 'keyAuth' || e.name === 'keyEncrypt' ? { ...e, key: e.key } : e)) };
}

describe.each(['linux', 'netbsd', 'freebsd'] as DialectName[])('round-trip in the %s dialect', (name) => {
  const d = DIALECTS[name];

  it('every message type with any mix of extensions: decode(encode(m)) equals m, and re-encodes to the same bytes', async () => {
    let tripped = 0;
    await assertRuns(
      fc.property(messageArb(d), (m) => {
        const b = encode(m, name);
        expect(b.length % 8).toBe(0);
        expect(b.readUInt16LE(4) * 8).toBe(b.length);
        const back = decode(b, name);
        expect(plain(back)).toEqual(m);
        expect(encode(back, name).equals(b)).toBe(true);
        tripped++;
      }),
      fuzzRuns(600),
    );
    reportFuzz(`pfkey round trip, ${name} (test/pfkey/roundtrip)`, { 'round-tripped': tripped });
  }, fuzzTimeout(30_000));

  it('each message type 1..SADB_MAX and each extension of the dialect occurs in the runs above', async () => {
    // The generator's coverage, checked rather than assumed.
    const types = new Set<number>();
    const names = new Set<string>();
    await assertRuns(
      fc.property(messageArb(d), (m) => {
        types.add(m.type);
        for (const e of m.extensions) names.add(e.name === 'raw' && e.type === 31 ? 'ifHwOffload' : e.name);
      }),
      fuzzRuns(600),
    );
    expect(types.size).toBe(d.msgMax);
    for (const n of namesOf(d)) expect(names.has(n), n).toBe(true);
  }, fuzzTimeout(30_000));
});
