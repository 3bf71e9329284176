// Malformed input to the public XFRM codec: nesting depth, wrong types in every field, arbitrary values; the encode shape.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { xfrm, XfrmDecodeError, type XfrmAttribute, type XfrmMessage } from '../../src/xfrm';
import { NLA_MAX_NEST_DEPTH } from '../../src/xfrm/codec';
import { XFRM_INF, type XfrmSelectorStruct, type XfrmUserpolicyInfo, type XfrmUsersaInfo, type XfrmUserTmpl } from '../../src/xfrm/structs';
import {
  ABSENT,
  KEY_BYTE,
  KEY_LOOKALIKES,
  WRONG_VALUES,
  anyValue,
  callerBuffer,
  decodeInput,
  fieldPaths,
  assertRuns,
  fuzzRuns,
  fuzzTimeout,
  isKeyPath,
  mutated,
  outcome,
  withField,
  type Outcome,
} from '../lib/hostile';
import { CountingSet, reportFuzz } from '../lib/fuzz-report';

const NESTED = 0x8000;
const FLUSHPOLICY = 29;

/** FLUSHPOLICY carrying a chain of `depth` NLA_F_NESTED attributes, each holding the next; the innermost empty. */
function nestedBytes(depth: number): Buffer {
  const b = Buffer.alloc(16 + 4 * depth);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(FLUSHPOLICY, 4);
  for (let i = 0; i < depth; i++) {
    b.writeUInt16LE(4 * (depth - i), 16 + 4 * i);
    b.writeUInt16LE(NESTED | 1, 18 + 4 * i);
  }
  return b;
}

/** The same chain as objects. */
function nestedMessage(depth: number): XfrmMessage {
  let attrs: XfrmAttribute[] = [];
  for (let i = 0; i < depth; i++) attrs = [{ kind: 'nested', type: NESTED | 1, attrs }];
  return { type: 'flushpolicy', attrs };
}

describe('XFRM: nested attributes are bounded (NLA_MAX_NEST_DEPTH), not a stack overflow', () => {
  it('the bound is 32, far above what the kernel nests', () => {
    expect(NLA_MAX_NEST_DEPTH).toBe(32);
  });

  it('decode: a 5,000-deep nest is an XfrmDecodeError at the attribute that nests too deep, naming the rule', () => {
    let err: unknown;
    try {
      xfrm.decode(nestedBytes(5000));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(XfrmDecodeError);
    expect((err as XfrmDecodeError).offset).toBe(16 + 4 * NLA_MAX_NEST_DEPTH);
    expect((err as XfrmDecodeError).rule).toBe(`NLA_F_NESTED attribute ${NESTED | 1} nests deeper than ${NLA_MAX_NEST_DEPTH} levels`);
  });

  it('encode and encodingLength: a 5,000-deep nest, and a list that contains itself, are RangeErrors naming nested.attrs', () => {
    const rule = new RegExp(`^option "nested\\.attrs" must be nested at most ${NLA_MAX_NEST_DEPTH} levels deep`);
    expect(() => xfrm.encode(nestedMessage(5000))).toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringMatching(rule) }));
    expect(() => xfrm.encodingLength(nestedMessage(5000))).toThrow(rule);
    const loop: XfrmAttribute = { kind: 'nested', type: NESTED | 1, attrs: [] };
    (loop.attrs as XfrmAttribute[]).push(loop);
    expect(() => xfrm.encode({ type: 'flushpolicy', attrs: [loop] })).toThrow(rule);
  });

  it('exactly the bound round-trips; one more is refused both ways', () => {
    const b = nestedBytes(NLA_MAX_NEST_DEPTH);
    const [m] = xfrm.decode(b);
    expect(xfrm.encode(m).equals(b)).toBe(true);
    expect(xfrm.encode(nestedMessage(NLA_MAX_NEST_DEPTH)).equals(b)).toBe(true);
    expect(() => xfrm.decode(nestedBytes(NLA_MAX_NEST_DEPTH + 1))).toThrow(XfrmDecodeError);
    expect(() => xfrm.encode(nestedMessage(NLA_MAX_NEST_DEPTH + 1))).toThrow(RangeError);
  });
});

// ---- valid examples of every message type and attribute kind, the starting points of the mutations ----

const key = (n: number) => new Uint8Array(n).fill(KEY_BYTE);
const sel: XfrmSelectorStruct = {
  daddr: '10.2.0.0', saddr: '10.1.0.0', dport: 53, dportMask: 0xffff, sport: 0, sportMask: 0, family: 2, prefixlenD: 16, prefixlenS: 16, proto: 17, ifindex: 0, user: 0,
};
const lft = {
  softByteLimit: XFRM_INF, hardByteLimit: XFRM_INF, softPacketLimit: XFRM_INF, hardPacketLimit: XFRM_INF,
  softAddExpiresSeconds: 0n, hardAddExpiresSeconds: 3600n, softUseExpiresSeconds: 0n, hardUseExpiresSeconds: 0n,
};
const cur = { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n };
const sa: XfrmUsersaInfo = {
  sel, id: { daddr: '192.0.2.2', spi: 0x1234, proto: 50 }, saddr: '192.0.2.1', lft, curlft: cur, stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
  seq: 0, reqid: 1, family: 2, mode: 1, replayWindow: 32, flags: 0,
};
const policy: XfrmUserpolicyInfo = { sel, lft, curlft: cur, priority: 100, index: 8, dir: 1, action: 0, flags: 0, share: 0 };
const tmpl: XfrmUserTmpl = {
  id: { daddr: '192.0.2.2', spi: 0, proto: 50 }, family: 2, saddr: '192.0.2.1', reqid: 7, mode: 1, share: 0, optional: 0, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff,
};

const ATTRS: XfrmAttribute[] = [
  { kind: 'algAuth', name: 'hmac(sha1)', keyBits: 160, key: key(20) },
  { kind: 'algCrypt', name: 'cbc(aes)', keyBits: 128, key: key(16) },
  { kind: 'algComp', name: 'deflate', keyBits: 0, key: new Uint8Array(0) },
  { kind: 'algAead', name: 'rfc4106(gcm(aes))', keyBits: 160, icvBits: 128, key: key(20) },
  { kind: 'algAuthTrunc', name: 'hmac(sha256)', keyBits: 256, truncBits: 128, key: key(32) },
  { kind: 'encap', encapType: 2, sport: 4500, dport: 4500, oa: '10.9.9.9' },
  { kind: 'tmpl', templates: [tmpl, tmpl] },
  { kind: 'sa', sa },
  { kind: 'policy', policy },
  { kind: 'secCtx', exttype: 8, alg: 1, doi: 1, ctx: new Uint8Array(5) },
  { kind: 'ltimeVal', cur },
  { kind: 'replayVal', oseq: 1, seq: 2, bitmap: 3 },
  { kind: 'replayEsnVal', oseq: 1, seq: 2, oseqHi: 0, seqHi: 0, replayWindow: 64, bmp: [1, 2] },
  { kind: 'replayThresh', value: 1 },
  { kind: 'natKeepaliveInterval', value: 20 },
  { kind: 'proto', value: 50 },
  { kind: 'saDir', value: 1 },
  { kind: 'srcaddr', address: '192.0.2.9' },
  { kind: 'coaddr', address: '2001:db8::1' },
  { kind: 'lastused', value: 5n },
  { kind: 'policyType', ptype: 0 },
  { kind: 'mark', value: 1, mask: 0xffffffff },
  { kind: 'offloadDev', ifindex: 3, flags: 1 },
  { kind: 'raw', type: 99, data: new Uint8Array(6) },
  { kind: 'nested', type: NESTED | 40, attrs: [{ kind: 'raw', type: 1, data: new Uint8Array(4) }] },
];

const hdr = { flags: 5, seq: 7, pid: 0 };
const MESSAGES: XfrmMessage[] = [
  { type: 'error', ...hdr, error: -1, request: { len: 16, type: 16, flags: 5, seq: 7, pid: 0 }, data: new Uint8Array(4) },
  { type: 'done', ...hdr, data: new Uint8Array(4) },
  { type: 'newsa', ...hdr, sa, attrs: [ATTRS[1], ATTRS[5]] },
  { type: 'delsa', ...hdr, id: { daddr: '192.0.2.2', spi: 1, family: 2, proto: 50 }, attrs: [] },
  { type: 'getsaDump', ...hdr, attrs: [ATTRS[15]] },
  { type: 'allocspi', ...hdr, sa, min: 256, max: 0xffff, attrs: [] },
  { type: 'flushsa', ...hdr, proto: 50, attrs: [] },
  { type: 'newpolicy', ...hdr, policy, attrs: [ATTRS[6]] },
  { type: 'getpolicy', ...hdr, id: { sel, index: 1, dir: 0 }, attrs: [] },
  { type: 'getsadinfo', ...hdr, sadFlags: 0xffffffff },
  { type: 'newsadinfo', ...hdr, sadFlags: 0, attrs: [{ kind: 'sadCnt', value: 3 }, { kind: 'sadHinfo', count: 8, max: 1024 }] },
  { type: 'acquire', ...hdr, acquire: { id: { daddr: '192.0.2.2', spi: 0, proto: 50 }, saddr: '192.0.2.1', sel, policy, aalgos: 0, ealgos: 0, calgos: 0, seq: 7 }, attrs: [] },
  { type: 'expire', ...hdr, sa, hard: true, attrs: [] },
  { type: 'polexpire', ...hdr, policy, hard: false, attrs: [] },
  {
    type: 'mapping', ...hdr,
    mapping: { id: { daddr: '192.0.2.1', spi: 9, family: 2, proto: 50 }, reqid: 9, oldSaddr: '198.51.100.7', newSaddr: '198.51.100.8', oldSport: 4500, newSport: 31000 },
    attrs: [],
  },
  { type: 99, ...hdr, data: new Uint8Array(8) },
  // Every attribute kind, in its own container.
  ...ATTRS.map((a): XfrmMessage => ({ type: 'flushpolicy', ...hdr, attrs: [a] })),
];

describe('XFRM: malformed input gives a TypeError/RangeError naming the field, never an internal error', () => {
  it('a message, an attribute list or an attribute that is not one is a TypeError naming it', () => {
    for (const bad of [null, undefined, 5, 'newsa', new Uint8Array(16)]) {
      expect(() => xfrm.encode(bad as never)).toThrow(/^option "message" must be an XFRM message object/);
      expect(() => xfrm.encode([MESSAGES[1], bad] as never)).toThrow(/^option "messages\[1\]" must be an XFRM message object/);
    }
    expect(() => xfrm.encode({ type: 'flushpolicy', attrs: {} } as never)).toThrow(/^option "attrs" must be an array/);
    for (const bad of [null, 7, 'encap', [], new Uint8Array(8)]) {
      expect(() => xfrm.encode({ type: 'flushpolicy', attrs: [bad] } as never)).toThrow(/^option "attrs\[0\]" must be an attribute object/);
    }
    for (const kind of ['toString', 'constructor', 'bogus', 5, Symbol('k')]) {
      expect(() => xfrm.encode({ type: 'flushpolicy', attrs: [{ kind }] } as never)).toThrow(/^option "attrs\[0\]\.kind" must be a known attribute kind/);
    }
    for (const type of ['toString', 'bogus', -1, 1.5, 0x10000]) expect(() => xfrm.encode({ type, data: new Uint8Array(0) } as never)).toThrow(RangeError);
    expect(() => xfrm.encode({ type: null, data: new Uint8Array(0) } as never)).toThrow(/^option "type"/);
    expect(() => xfrm.encode({ type: 'newsa', sa: null, attrs: [] } as never)).toThrow(/^option "sa" must be an object/);
    expect(() => xfrm.encode({ type: 'newsa', sa: { ...sa, stats: 5 }, attrs: [] } as never)).toThrow(/^option "sa\.stats" must be an object/);
    expect(() => xfrm.encode({ type: 'done', data: 'x' } as never)).toThrow(/^option "data" must be a Uint8Array/);
    expect(() => xfrm.encode({ type: 'error', error: 0, request: null, data: new Uint8Array(0) } as never)).toThrow(/^option "request" must be an object/);
    expect(() => xfrm.encode({ type: 'flushpolicy', attrs: [{ kind: 'algAuth', name: 'x', keyBits: 8, key: 5 }] } as never)).toThrow(
      /^option "algAuth\.key" must be a Uint8Array, got a number$/,
    );
    expect(() => xfrm.encode({ type: 'flushpolicy', attrs: [{ kind: 'tmpl', templates: [5] }] } as never)).toThrow(/^option "tmpl\.templates\[0\]" must be an object/);
  });

  it('decode of anything but a byte array is a TypeError naming "buffer"', () => {
    for (const bad of [null, undefined, 'x', [16, 0, 0, 0], {}, new Uint16Array(8), new DataView(new ArrayBuffer(16))]) {
      expect(() => xfrm.decode(bad as never)).toThrow(/^option "buffer" must be a Buffer or Uint8Array/);
    }
  });

  it('every example encodes and round-trips, as the starting point of the mutations', () => {
    for (const m of MESSAGES) {
      const b = xfrm.encode(m);
      expect(xfrm.encode(xfrm.decode(b)).equals(b), String(m.type)).toBe(true);
    }
  });

  it(`every field of every message type and attribute kind, set to each of ${WRONG_VALUES.length} wrong values or deleted`, () => {
    const seen = new Set<Outcome>();
    for (const m of MESSAGES) {
      for (const p of fieldPaths(m)) {
        for (const x of [...WRONG_VALUES, ...(isKeyPath(p) ? KEY_LOOKALIKES : []), ABSENT]) {
          const bad = withField(m, p, x);
          let b: Buffer | undefined;
          try {
            seen.add(outcome(() => (b = xfrm.encode(bad))));
            seen.add(outcome(() => xfrm.encodingLength(bad)));
          } catch (e) {
            throw new Error(`${String(m.type)} ${p.join('.')} = ${typeof x === 'symbol' ? x.toString() : typeof x}: ${(e as Error).message}`);
          }
          if (b) expect(xfrm.encodingLength(bad)).toBe(b.length);
        }
      }
    }
    expect([...seen].sort()).toEqual(['RangeError', 'TypeError', 'ok']);
  });
});

describe('XFRM: property — arbitrary values at encode, encodingLength and decode', () => {
  const runs = fuzzRuns();
  const message: fc.Arbitrary<unknown> = fc.oneof(
    { weight: 1, arbitrary: anyValue },
    { weight: 4, arbitrary: mutated(MESSAGES) },
    {
      weight: 2,
      arbitrary: fc.record(
        {
          type: fc.oneof(fc.constantFrom(...MESSAGES.map((m) => m.type)), anyValue),
          flags: anyValue,
          seq: anyValue,
          attrs: fc.oneof(fc.array(fc.oneof(mutated(ATTRS), anyValue), { maxLength: 3 }), anyValue),
          data: anyValue,
          sa: fc.oneof(mutated([sa]), anyValue),
        },
        { requiredKeys: ['type'] },
      ),
    },
  );
  const messages = fc.oneof(message, fc.array(message, { maxLength: 3 }));

  it(`encode and encodingLength (${runs} runs each): success, or a TypeError/RangeError naming a field`, async () => {
    const seen = new CountingSet<Outcome>();
    await assertRuns(
      fc.property(messages, (m) => {
        let b: Buffer | undefined;
        seen.add(outcome(() => (b = xfrm.encode(m as XfrmMessage))));
        const n = outcome(() => xfrm.encodingLength(m as XfrmMessage));
        if (b) expect(n).toBe('ok');
        if (b) expect(xfrm.encodingLength(m as XfrmMessage)).toBe(b.length);
      }),
      runs,
    );
    expect([...seen].sort()).toEqual(['RangeError', 'TypeError', 'ok']);
    reportFuzz(`xfrm.encode (test/xfrm/malformed)`, seen.counts);
  }, fuzzTimeout(30_000));

  it(`encode into a caller's buffer (${runs} runs): any buf and offset`, async () => {
    const into = new CountingSet<Outcome>();
    await assertRuns(
      fc.property(fc.constantFrom(...MESSAGES), callerBuffer(400), (m, [b, o]) => {
        let view: Buffer | undefined;
        into.add(outcome(() => (view = xfrm.encode(m, b as Uint8Array, o as number))));
        if (view) expect(view.equals(xfrm.encode(m))).toBe(true);
      }),
      runs,
    );
    reportFuzz(`xfrm.encode into a caller's buffer (test/xfrm/malformed)`, into.counts);
  }, fuzzTimeout(30_000));

  it(`decode (${runs} runs): anything that is not a byte array is a TypeError; every byte array decodes or is an XfrmDecodeError`, async () => {
    const seen = new CountingSet<Outcome>();
    const valid = MESSAGES.map((m) => xfrm.encode(m));
    const bytes = decodeInput(valid, 300);
    await assertRuns(
      fc.property(bytes, (b) => {
        seen.add(outcome(() => xfrm.decode(b as Uint8Array), XfrmDecodeError));
      }),
      runs,
    );
    expect(seen.has('decode-error') && seen.has('TypeError') && seen.has('ok')).toBe(true);
    reportFuzz(`xfrm.decode (test/xfrm/malformed)`, seen.counts);
  }, fuzzTimeout(30_000));
});

describe('XFRM: encode and encodingLength in dns-packet’s shape', () => {
  const list = [MESSAGES[2], MESSAGES[9]];

  it('the call forms of before still work: one message, an array', () => {
    const one = xfrm.encode(MESSAGES[2]);
    const both = xfrm.encode(list);
    expect(both.subarray(0, one.length).equals(one)).toBe(true);
    expect(xfrm.encode.bytes).toBe(both.length);
    expect(xfrm.encodingLength(list)).toBe(both.length);
    expect(xfrm.encodingLength(MESSAGES[2])).toBe(one.length);
    expect(xfrm.encode([]).length).toBe(0);
  });

  it('into a caller buffer at an offset: returns the written view, sets encode.bytes, leaves the rest alone', () => {
    const expected = xfrm.encode(list);
    const buf = Buffer.alloc(expected.length + 20, 0xee);
    const view = xfrm.encode(list, buf, 9);
    expect(view.equals(expected)).toBe(true);
    expect(view.buffer).toBe(buf.buffer);
    expect(view.byteOffset - buf.byteOffset).toBe(9);
    expect(xfrm.encode.bytes).toBe(expected.length);
    expect(buf.subarray(0, 9).every((x) => x === 0xee) && buf.subarray(9 + expected.length).every((x) => x === 0xee)).toBe(true);
    expect(xfrm.decode(view)).toEqual(xfrm.decode(expected));
  });

  it('refuses a buffer too small, a bad offset, an offset without a buffer', () => {
    const n = xfrm.encodingLength(list);
    expect(() => xfrm.encode(list, Buffer.alloc(n + 3), 4)).toThrow(/^option "buf" must be room for/);
    expect(() => xfrm.encode(list, Buffer.alloc(n), n + 1)).toThrow(/option "offset"/);
    expect(() => xfrm.encode(list, 'buf' as never)).toThrow(/option "buf"/);
    expect(() => xfrm.encode(list, undefined, 0)).toThrow(/option "buf"/);
  });

  it('the namespace is frozen and carries encodingLength', () => {
    expect(Object.isFrozen(xfrm)).toBe(true);
    expect(typeof xfrm.encodingLength).toBe('function');
  });
});
