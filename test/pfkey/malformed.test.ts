// Malformed input to the public PF_KEY codec: wrong types in every field, arbitrary values, caller buffers; the encode shape.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pfkey, PfKeyDecodeError, type PfKeyExtension, type PfKeyMessage } from '../../src/pfkey';
import { COMMON_EXTENSIONS, DIALECTS, type Dialect, type DialectName } from '../../src/pfkey/dialects';
import {
  ABSENT,
  KEY_BYTE,
  KEY_LOOKALIKES,
  WRONG_VALUES,
  anyValue,
  callerBuffer,
  decodeInput,
  isKeyPath,
  fieldPaths,
  assertRuns,
  fuzzRuns,
  fuzzTimeout,
  mutated,
  outcome,
  withField,
  type Outcome,
} from '../lib/hostile';
import { CountingSet, reportFuzz } from '../lib/fuzz-report';

const v4 = (address: string, port = 0) => ({ family: 'inet' as const, address, port });
const v6 = (address: string, port = 500) => ({ family: 'inet6' as const, address, port, flowinfo: 1, scopeId: 2 });
const key = (n: number) => new Uint8Array(n).fill(KEY_BYTE);
const life = (name: 'lifetimeCurrent' | 'lifetimeHard' | 'lifetimeSoft' | 'lifetimeSwOffload' | 'lifetimeHwOffload'): PfKeyExtension => ({
  name,
  allocations: 1,
  bytes: 2n,
  addtime: 3n,
  usetime: 4n,
});
const addr = (name: 'src' | 'dst' | 'proxy' | 'nattOa' | 'nattOai' | 'nattOar' | 'newAddressSrc' | 'newAddressDst', v = false): PfKeyExtension => ({
  name,
  proto: 255,
  prefixlen: v ? 128 : 32,
  reserved: 1,
  addr: v ? v6('2001:db8::7') : v4('192.0.2.1', 4500),
});

/** One valid extension of every name natt encodes (keys filled with KEY_BYTE). */
const EXAMPLES: Record<string, PfKeyExtension> = {
  sa: { name: 'sa', spi: 0x1234, replay: 32, state: 1, auth: 3, encrypt: 12, flags: 0 },
  lifetimeCurrent: life('lifetimeCurrent'),
  lifetimeHard: life('lifetimeHard'),
  lifetimeSoft: life('lifetimeSoft'),
  src: addr('src'),
  dst: addr('dst', true),
  proxy: addr('proxy'),
  keyAuth: { name: 'keyAuth', bits: 160, reserved: 1, key: key(20) },
  keyEncrypt: { name: 'keyEncrypt', bits: 128, key: key(16) },
  identitySrc: { name: 'identitySrc', idtype: 1, reserved: 1, id: 1n, data: new Uint8Array(8).fill(0x41) },
  identityDst: { name: 'identityDst', idtype: 2, id: 2n, data: new Uint8Array(0) },
  sensitivity: { name: 'sensitivity', dpd: 1, sensLevel: 2, integLevel: 3, reserved: 1, sens: new Uint8Array(8), integ: new Uint8Array(16) },
  proposal: {
    name: 'proposal',
    replay: 32,
    reserved: 1,
    combs: [
      {
        auth: 3, encrypt: 12, flags: 0, authMinbits: 160, authMaxbits: 160, encryptMinbits: 128, encryptMaxbits: 256, reserved: 1,
        softAllocations: 0, hardAllocations: 0, softBytes: 0n, hardBytes: 0n, softAddtime: 0n, hardAddtime: 0n, softUsetime: 0n, hardUsetime: 0n,
      },
    ],
  },
  supportedAuth: { name: 'supportedAuth', reserved: 1, algs: [{ id: 3, ivlen: 0, minbits: 160, maxbits: 160, reserved: 1 }] },
  supportedEncrypt: { name: 'supportedEncrypt', algs: [{ id: 12, ivlen: 8, minbits: 128, maxbits: 256 }] },
  spirange: { name: 'spirange', min: 256, max: 0xffff, reserved: 1 },
  kmprivate: { name: 'kmprivate', reserved: 1, data: new Uint8Array(8) },
  policy: {
    name: 'policy',
    policyType: 2,
    dir: 2,
    reserved: 1,
    id: 5,
    priority: 9,
    requests: [
      { proto: 50, mode: 2, level: 2, reqid: 1, tunnel: { src: v4('192.0.2.1'), dst: v4('192.0.2.2') } },
      { proto: 51, mode: 1, level: 1, reqid: 2, tunnel: { src: v6('2001:db8::1'), dst: v6('2001:db8::2') } },
      { proto: 50, mode: 1, level: 2, reqid: 3 },
    ],
  },
  sa2: { name: 'sa2', mode: 2, reserved1: 1, reserved2: 2, sequence: 0, reqid: 9 },
  nattType: { name: 'nattType', type: 2, reserved: 1 },
  nattSport: { name: 'nattSport', port: 4500, reserved: 1 },
  nattDport: { name: 'nattDport', port: 4500 },
  nattOa: addr('nattOa'),
  secCtx: { name: 'secCtx', alg: 1, doi: 1, ctx: new Uint8Array(5).fill(0x61) },
  kmaddress: { name: 'kmaddress', reserved: 1, local: v4('10.0.0.1'), remote: v6('2001:db8::9') },
  filter: { name: 'filter', saddr: new Uint8Array(16), daddr: new Uint8Array(16), family: 2, splen: 8, dplen: 8 },
  nattOai: addr('nattOai'),
  nattOar: addr('nattOar', true),
  nattFrag: { name: 'nattFrag', fraglen: 1400, reserved: 1 },
  saReplay: { name: 'saReplay', replay: 128 },
  newAddressSrc: addr('newAddressSrc'),
  newAddressDst: addr('newAddressDst', true),
  lifetimeSwOffload: life('lifetimeSwOffload'),
  lifetimeHwOffload: life('lifetimeHwOffload'),
  raw: { name: 'raw', type: 200, data: new Uint8Array(12) },
};

const DIALECT_NAMES: DialectName[] = ['linux', 'netbsd', 'freebsd'];

/** The example of every extension the dialect encodes (ifHwOffload has no layout: it is raw). */
function examples(d: Dialect): PfKeyExtension[] {
  const names = [...Object.values(COMMON_EXTENSIONS), ...Object.values(d.extensions).filter((n) => n !== 'ifHwOffload'), 'raw'];
  return names.map((n) => {
    if (!EXAMPLES[n]) throw new Error(`no example for ${n}`);
    return EXAMPLES[n];
  });
}

const header = { version: 2, type: 3, errno: 0, satype: 3, reserved: 0, seq: 1, pid: 2 };
const messageWith = (...extensions: PfKeyExtension[]): PfKeyMessage => ({ ...header, extensions });

/** Every field of the message and its extension set to each wrong value (and deleted): each gives an allowed outcome. */
function everyFieldWrong(m: PfKeyMessage, d: DialectName, paths: readonly (readonly (string | number)[])[], seen: Set<Outcome>): void {
  for (const p of paths) {
    for (const x of [...WRONG_VALUES, ...(isKeyPath(p) ? KEY_LOOKALIKES : []), ABSENT]) {
      const bad = withField(m, p, x);
      const where = `${p.join('.')} = ${typeof x === 'symbol' ? x.toString() : typeof x}`;
      let b: Buffer | undefined;
      try {
        seen.add(outcome(() => (b = pfkey.encode(bad, d))));
        seen.add(outcome(() => pfkey.encodingLength(bad, d)));
      } catch (e) {
        throw new Error(`${d} ${where}: ${(e as Error).message}`);
      }
      if (b) expect(pfkey.encodingLength(bad, d), where).toBe(b.length);
    }
  }
}

describe('PF_KEY: malformed input gives a TypeError/RangeError naming the field, never an internal error', () => {
  it('the known instance: a key that is a number is a TypeError naming keyEncrypt.key, not an offset error', () => {
    const m = messageWith({ name: 'keyEncrypt', bits: 128, key: 5 as unknown as Uint8Array });
    expect(() => pfkey.encode(m, 'linux')).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: 'option "keyEncrypt.key" must be a Uint8Array, got a number' }),
    );
    expect(() => pfkey.encodingLength(m, 'linux')).toThrow(/option "keyEncrypt\.key"/);
  });

  it('a message, an extension list or an extension that is not one is a TypeError naming it', () => {
    for (const bad of [null, undefined, 5, 'x', [], new Uint8Array(16)]) {
      expect(() => pfkey.encode(bad as never, 'linux')).toThrow(/^option "message" must be a PF_KEY message object/);
    }
    expect(() => pfkey.encode({ type: 3, extensions: {} } as never, 'linux')).toThrow(/option "message\.extensions" must be an array/);
    for (const bad of [null, 7, 'sa', [], new Uint8Array(8)]) {
      expect(() => pfkey.encode(messageWith(bad as never), 'linux')).toThrow(/^option "extensions\[0\]" must be an extension object/);
    }
    for (const name of ['toString', 'constructor', '__proto__', 'ifHwOffload', 5]) {
      expect(() => pfkey.encode(messageWith({ name } as never), 'freebsd')).toThrow(/^option "extensions\[0\]\.name" must be a known extension name/);
    }
    expect(() => pfkey.encode(messageWith({ ...EXAMPLES.src, addr: null } as never), 'linux')).toThrow(/^option "src\.addr" must be a sockaddr object/);
    expect(() => pfkey.encode(messageWith({ ...EXAMPLES.policy, requests: [{ proto: 50, mode: 1, level: 2, reqid: 1, tunnel: 5 }] } as never), 'linux')).toThrow(
      /^option "request\.tunnel" must be an object/,
    );
  });

  it('decode of anything but a byte array is a TypeError naming "buffer"', () => {
    for (const bad of [null, undefined, 'x', [2, 3], {}, new Uint16Array(8), new DataView(new ArrayBuffer(16)), new ArrayBuffer(16)]) {
      expect(() => pfkey.decode(bad as never, 'linux')).toThrow(/^option "buffer" must be a Buffer or Uint8Array/);
    }
  });

  it('a caller’s Dialect object: the fields the codec reads are checked', () => {
    const m = messageWith(EXAMPLES.sa);
    expect(() => pfkey.encode(m, { ...DIALECTS.linux, ipsecRequestSize: 12 } as never)).toThrow(/option "dialect\.ipsecRequestSize"/);
    expect(() => pfkey.encode(m, { ...DIALECTS.linux, extensions: null } as never)).toThrow(/option "dialect\.extensions"/);
    expect(() => pfkey.decode(Buffer.alloc(16), { ...DIALECTS.linux, afInet6: 'x' } as never)).toThrow(/option "dialect\.afInet6"/);
    expect(() => pfkey.encode(m, 'toString' as never)).toThrow(/option "dialect"/);
  });

  for (const d of DIALECT_NAMES) {
    it(`${d}: every example encodes, and round-trips, as the starting point of the mutations`, () => {
      for (const e of examples(DIALECTS[d])) {
        const b = pfkey.encode(messageWith(e), d);
        expect(pfkey.encode(pfkey.decode(b, d), d).equals(b), e.name).toBe(true);
      }
    });

    it(`${d}: every field of every extension and of the header, set to each of ${WRONG_VALUES.length} wrong values or deleted`, () => {
      const seen = new Set<Outcome>();
      everyFieldWrong(messageWith(EXAMPLES.sa), d, fieldPaths(messageWith(EXAMPLES.sa)), seen);
      for (const e of examples(DIALECTS[d])) {
        everyFieldWrong(messageWith(e), d, fieldPaths(e).map((p) => ['extensions', 0, ...p]), seen);
      }
      expect([...seen].sort()).toEqual(['RangeError', 'TypeError', 'ok']);
    });
  }
});

describe('PF_KEY: property — arbitrary values at encode, encodingLength and decode', () => {
  const runs = fuzzRuns();
  const dialect: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...DIALECT_NAMES) },
    { weight: 1, arbitrary: anyValue },
    { weight: 1, arbitrary: mutated(DIALECT_NAMES.map((n) => DIALECTS[n])) },
  );
  const tagged = DIALECT_NAMES.flatMap((n) => examples(DIALECTS[n]).map((e) => [n, e] as const));
  const templates = tagged.map(([, e]) => e);
  const extension = fc.oneof({ weight: 4, arbitrary: mutated(templates) }, { weight: 1, arbitrary: fc.constantFrom(...templates) }, { weight: 1, arbitrary: anyValue });
  const message: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 1, arbitrary: anyValue },
    { weight: 3, arbitrary: mutated(templates.map((e) => messageWith(e))) },
    {
      weight: 3,
      arbitrary: fc.record(
        { version: anyValue, type: anyValue, errno: anyValue, satype: anyValue, seq: anyValue, extensions: fc.oneof(fc.array(extension, { maxLength: 4 }), anyValue) },
        { requiredKeys: ['extensions'] },
      ),
    },
  );

  it(`encode and encodingLength (${runs} runs each): success, or a TypeError/RangeError naming a field`, async () => {
    const seen = new CountingSet<Outcome>();
    await assertRuns(
      fc.property(message, dialect, (m, d) => {
        let b: Buffer | undefined;
        seen.add(outcome(() => (b = pfkey.encode(m as PfKeyMessage, d as DialectName))));
        const n = outcome(() => pfkey.encodingLength(m as PfKeyMessage, d as DialectName));
        if (b) expect(n).toBe('ok');
        if (b) expect(pfkey.encodingLength(m as PfKeyMessage, d as DialectName)).toBe(b.length);
      }),
      runs,
    );
    expect([...seen].sort()).toEqual(['RangeError', 'TypeError', 'ok']);
    reportFuzz(`pfkey.encode (test/pfkey/malformed)`, seen.counts);
  }, fuzzTimeout(30_000));

  it(`encode into a caller's buffer (${runs} runs): any buf and offset`, async () => {
    const into = new CountingSet<Outcome>();
    await assertRuns(
      fc.property(fc.constantFrom(...tagged), callerBuffer(200), ([d, e], [b, o]) => {
        const m = messageWith(e);
        let view: Buffer | undefined;
        into.add(outcome(() => (view = pfkey.encode(m, d, b as Uint8Array, o as number))));
        if (view) expect(view.equals(pfkey.encode(m, d))).toBe(true);
      }),
      runs,
    );
    reportFuzz(`pfkey.encode into a caller's buffer (test/pfkey/malformed)`, into.counts);
  }, fuzzTimeout(30_000));

  it(`decode (${runs} runs): anything that is not a byte array is a TypeError; every byte array decodes or is a PfKeyDecodeError`, async () => {
    const seen = new CountingSet<Outcome>();
    const valid = DIALECT_NAMES.flatMap((n) => examples(DIALECTS[n]).map((e) => pfkey.encode(messageWith(e), n)));
    const bytes = decodeInput(valid, 96);
    await assertRuns(
      fc.property(bytes, dialect, (b, d) => {
        seen.add(outcome(() => pfkey.decode(b as Uint8Array, d as DialectName), PfKeyDecodeError));
      }),
      runs,
    );
    expect(seen.has('decode-error') && seen.has('TypeError') && seen.has('ok')).toBe(true);
    reportFuzz(`pfkey.decode (test/pfkey/malformed)`, seen.counts);
  }, fuzzTimeout(30_000));
});

describe('PF_KEY: encode and encodingLength in dns-packet’s shape', () => {
  const m = messageWith(EXAMPLES.sa, EXAMPLES.keyEncrypt);

  it('the call forms of before still work: a dialect name, a Dialect object, none', () => {
    const b = pfkey.encode(m, 'freebsd');
    expect(pfkey.encode(m, DIALECTS.freebsd).equals(b)).toBe(true);
    expect(pfkey.encode(m).equals(pfkey.encode(m, pfkey.defaultDialect()))).toBe(true);
    expect(b.length).toBe(16 + 16 + 24);
    expect(pfkey.encodingLength(m, 'freebsd')).toBe(b.length);
    expect(pfkey.encode.bytes).toBe(b.length);
  });

  it('into a caller buffer at an offset: returns the written view, sets encode.bytes, leaves the rest alone', () => {
    const expected = pfkey.encode(m, 'linux');
    const buf = Buffer.alloc(100, 0xee);
    const view = pfkey.encode(m, 'linux', buf, 10);
    expect(view.equals(expected)).toBe(true);
    expect(view.byteOffset - buf.byteOffset).toBe(10);
    expect(view.buffer).toBe(buf.buffer);
    expect(pfkey.encode.bytes).toBe(expected.length);
    expect(buf.subarray(0, 10).every((x) => x === 0xee) && buf.subarray(10 + expected.length).every((x) => x === 0xee)).toBe(true);
    const plain = new Uint8Array(expected.length);
    expect(Buffer.from(pfkey.encode(m, 'linux', plain)).equals(expected)).toBe(true);
  });

  it('refuses a buffer too small, a bad offset, an offset without a buffer', () => {
    const n = pfkey.encodingLength(m, 'linux');
    expect(() => pfkey.encode(m, 'linux', Buffer.alloc(n + 3), 4)).toThrow(/^option "buf" must be room for/);
    expect(() => pfkey.encode(m, 'linux', Buffer.alloc(n), n + 1)).toThrow(RangeError);
    expect(() => pfkey.encode(m, 'linux', Buffer.alloc(n), -1)).toThrow(/option "offset"/);
    expect(() => pfkey.encode(m, 'linux', Buffer.alloc(n), '0' as never)).toThrow(TypeError);
    expect(() => pfkey.encode(m, 'linux', 'buf' as never)).toThrow(/option "buf"/);
    expect(() => pfkey.encode(m, 'linux', undefined, 0)).toThrow(/option "buf"/);
  });

  it('the namespace is frozen and carries encodingLength', () => {
    expect(Object.isFrozen(pfkey)).toBe(true);
    expect(typeof pfkey.encodingLength).toBe('function');
  });
});
