// The control protocol without sockets: framing, the strict message readers, the model's JSON form and errors on the wire.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import {
  ControlFrameError,
  ControlProtocolError,
  FrameDecoder,
  encodeFrame,
  parseClientMessage,
  parseServerMessage,
  pickVersion,
} from '../../src/control/protocol';
import { EVENT_DATA, POLICY, SA, errorFromWire, errorToWire, fromWire, saFromWire, saKeysFromHex, toWire } from '../../src/control/wire';
import { KernelReplyError, NattError, NattSystemError, NattTimeoutError, NattUnsupportedError, rangeError, typeError } from '../../src/errors';
import { checkSa } from '../../src/sadb/validate';
import type { SecurityAssociation } from '../../src/sadb/types';
import { hideSaKeys } from '../../src/sadb/keys';
import { assertRuns, fuzzRuns } from '../lib/hostile';
import { OutcomeCounts, reportFuzz } from '../lib/fuzz-report';
import { frame } from './raw';

const json = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

describe('framing', () => {
  it('a frame is a 4-byte big-endian length and the UTF-8 JSON', () => {
    const f = encodeFrame({ type: 'hello', id: 1, versions: [1], client: 'ü' });
    expect(f.readUInt32BE(0)).toBe(f.length - 4);
    expect(JSON.parse(f.subarray(4).toString('utf8'))).toEqual({ type: 'hello', id: 1, versions: [1], client: 'ü' });
  });

  it('frames arrive whole however the stream is cut: one byte at a time, several in one chunk', () => {
    const msgs = [{ a: 1 }, { b: 'x'.repeat(5000) }, { c: [1, 2, 3] }];
    const stream = Buffer.concat(msgs.map((m) => encodeFrame(m)));
    const one = new FrameDecoder();
    const got: unknown[] = [];
    for (let i = 0; i < stream.length; i++) for (const f of one.push(stream.subarray(i, i + 1))) got.push(JSON.parse(f.toString()));
    expect(got).toEqual(msgs);
    expect(one.buffered).toBe(0);
    const all = new FrameDecoder();
    expect(all.push(stream).map((f) => JSON.parse(f.toString()))).toEqual(msgs);
  });

  it('a length over the limit is refused from the header alone (the body is never waited for)', () => {
    const d = new FrameDecoder(4096);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(4097, 0);
    expect(() => d.push(h)).toThrow(ControlFrameError);
    expect(d.buffered).toBe(0);
    expect(() => encodeFrame({ x: 'y'.repeat(5000) }, 4096)).toThrow(/larger than the limit of 4096 bytes/);
    h.writeUInt32BE(0xffffffff, 0);
    expect(() => new FrameDecoder().push(h)).toThrow(/4294967295 bytes received is larger than the limit of 1048576/);
  });

  it('a zero length is a protocol error', () => {
    expect(() => new FrameDecoder().push(Buffer.alloc(4))).toThrow(ControlProtocolError);
  });
});

describe('client messages are read strictly', () => {
  const ok = (o: unknown) => parseClientMessage(json(o));
  it('reads each type', () => {
    expect(ok({ type: 'hello', id: 1, versions: [1, 2], client: 'swanctl' })).toEqual({ type: 'hello', id: 1, versions: [1, 2], client: 'swanctl' });
    expect(ok({ type: 'request', id: 7, method: 'get', params: { id: {} }, timeout: 100, revealKeys: true })).toEqual({
      type: 'request',
      id: 7,
      method: 'get',
      params: { id: {} },
      timeout: 100,
      revealKeys: true,
    });
    expect(ok({ type: 'cancel', id: 8, target: 7 })).toEqual({ type: 'cancel', id: 8, target: 7 });
    expect(ok({ type: 'subscribe', id: 9, events: ['add'] })).toEqual({ type: 'subscribe', id: 9, events: ['add'], revealKeys: false });
  });

  it.each([
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), /not UTF-8/],
    ['not JSON', Buffer.from('{"type":'), /not JSON/],
    ['an array', json([1]), /not a JSON object/],
    ['a string', json('hello'), /not a JSON object/],
    ['no type', json({ id: 1 }), /"type"/],
    ['an unknown type', json({ type: 'shutdown', id: 1 }), /"type"/],
    ['an unknown field', json({ type: 'hello', id: 1, versions: [1], admin: true }), /unknown option "hello.admin"/],
    ['a field of another type', json({ type: 'cancel', id: 1, target: 1, versions: [1] }), /unknown option "cancel.versions"/],
    ['__proto__ as a field', Buffer.from('{"type":"hello","id":1,"versions":[1],"__proto__":{"x":1}}'), /unknown option "hello.__proto__"/],
    ['id 0', json({ type: 'hello', id: 0, versions: [1] }), /"id"/],
    ['id 2^32', json({ type: 'hello', id: 2 ** 32, versions: [1] }), /"id"/],
    ['a string id', json({ type: 'hello', id: '1', versions: [1] }), /"id"/],
    ['no versions', json({ type: 'hello', id: 1 }), /"versions"/],
    ['a client label with a line break (log forgery)', json({ type: 'hello', id: 1, versions: [1], client: 'x\ncontrol: refused uid 0' }), /"client"/],
    ['a method name with spaces', json({ type: 'request', id: 1, method: 'rm -rf' }), /"method"/],
    ['a negative timeout', json({ type: 'request', id: 1, method: 'get', timeout: -1 }), /"timeout"/],
    ['revealKeys as a string', json({ type: 'request', id: 1, method: 'get', revealKeys: 'yes' }), /"revealKeys"/],
    ['an empty event list', json({ type: 'subscribe', id: 1, events: [] }), /"events"/],
    ['an event name that is a number', json({ type: 'subscribe', id: 1, events: [1] }), /"events\[0\]"/],
  ])('refuses %s (ControlProtocolError naming the field)', (_w, buf, re) => {
    let err: unknown;
    try {
      parseClientMessage(buf);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ControlProtocolError);
    expect((err as Error).message).toMatch(re);
  });

  it('server messages too: an unknown field or a bad hello is refused', () => {
    expect(() => parseServerMessage(json({ type: 'reply', id: 1, result: 1, extra: 2 }))).toThrow(ControlProtocolError);
    expect(() => parseServerMessage(json({ type: 'hello', id: 1, version: 1, server: 'charon', backend: 'x', methods: [], events: [], maxFrame: 4096, revealKeys: false }))).toThrow(
      /"server"/,
    );
    expect(parseServerMessage(json({ type: 'error', id: 0, error: { name: 'NattError', code: 'X', message: 'm' } }))).toMatchObject({ type: 'error', id: 0 });
    expect(() => parseServerMessage(json({ type: 'error', id: 3, error: { name: 'E', message: 'm', stack: 's' } }))).toThrow(/error.stack/);
  });

  it('the version chosen is the highest both speak', () => {
    expect(pickVersion([1, 2, 3], [1, 2])).toBe(2);
    expect(pickVersion([3], [1, 2])).toBeUndefined();
  });

  it(`fuzz: ${fuzzRuns(3000)} random and mutated byte streams only ever give frames or the protocol's own errors`, async () => {
    const outcomes = new OutcomeCounts();
    const seeds = [
      frame({ type: 'hello', id: 1, versions: [1] }),
      frame({ type: 'request', id: 2, method: 'add', params: { sa: { src: '192.0.2.1', dst: '192.0.2.2', spi: 1 } } }),
      frame({ type: 'subscribe', id: 3, events: ['add', 'expire'], revealKeys: true }),
    ];
    await assertRuns(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.tuple(fc.constantFrom(...seeds), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([s, i, b]) => {
        const c = Buffer.from(s);
        c[i % c.length] = b;
        return c;
      })), (bytes) => {
        const d = new FrameDecoder(1024);
        try {
          for (const f of d.push(Buffer.from(bytes))) {
            try {
              parseClientMessage(f);
              outcomes.add('message');
            } catch (e) {
              if (!(e instanceof ControlProtocolError)) throw e;
              outcomes.add('ControlProtocolError');
            }
          }
          outcomes.add('stream');
        } catch (e) {
          if (!(e instanceof ControlFrameError || e instanceof ControlProtocolError)) throw e;
          outcomes.add(e.constructor.name);
        }
      }),
      fuzzRuns(3000),
    );
    reportFuzz('control protocol decoder (byte streams)', outcomes.counts, { runs: fuzzRuns(3000) });
  });
});

describe("the model's JSON form", () => {
  const key = new Uint8Array(16).fill(0xc7);
  const sa: SecurityAssociation = hideSaKeys({
    src: '192.0.2.1',
    dst: '192.0.2.2',
    spi: 0x1234,
    protocol: 'esp',
    mode: 'tunnel',
    reqid: 3,
    encryption: { algorithm: 'aes-cbc', key },
    integrity: { algorithm: 'hmac-sha1-96', key: new Uint8Array(20).fill(0xc7) },
    natt: { type: 'espinudp', sport: 4500, dport: 4501, oa: { initiator: '10.0.0.1' } },
    lifetime: { soft: { bytes: 100 }, hard: { addSeconds: 60 } },
    current: { bytes: 1, packets: 2, addTime: 3, useTime: 4 },
    state: 'mature',
  });

  it('keys travel as hex only when asked, else as empty strings; the SA comes back with hidden keys', () => {
    const plain = toWire(sa, SA, false) as Record<string, any>;
    expect(JSON.stringify(plain)).not.toMatch(/c7c7/);
    expect(plain.encryption).toEqual({ algorithm: 'aes-cbc', key: '' });
    const keyed = toWire(sa, SA, true) as Record<string, any>;
    expect(keyed.encryption.key).toBe('c7'.repeat(16));
    const back = saFromWire(JSON.parse(JSON.stringify(keyed)));
    expect(back).toMatchObject({ spi: 0x1234, natt: { dport: 4501, oa: { initiator: '10.0.0.1' } }, lifetime: { hard: { addSeconds: 60 } }, state: 'mature' });
    expect(Buffer.from(back.encryption!.key)).toEqual(Buffer.from(key));
    expect(inspect(back, { depth: 9 })).not.toMatch(/199|c7/);
  });

  it('toWire leaves out what the schema does not know (nothing extra leaks)', () => {
    const odd = { ...sa, secret: 'x', natt: { ...sa.natt!, cookie: 1 } } as unknown;
    const w = toWire(odd, SA, false) as Record<string, any>;
    expect(w.secret).toBeUndefined();
    expect(w.natt.cookie).toBeUndefined();
  });

  it('fromWire refuses unknown fields, wrong types and out-of-range numbers, naming the field without the value', () => {
    expect(() => fromWire({ src: 'a', dst: 'b', spi: 1, extra: 1 }, SA, 'the SA')).toThrow(/the SA.*extra/);
    expect(() => fromWire({ src: 'a', dst: 'b', spi: -1 }, SA, 'the SA')).toThrow(/the SA.spi/);
    expect(() => fromWire({ src: 'a', dst: 'b', spi: 1, encryption: { algorithm: 'aes-cbc', key: 'zz' } }, SA, 'the SA')).toThrow(
      /the SA.encryption.key that is not a hex key$/,
    );
    expect(() => fromWire({ selector: { src: 'a' }, direction: 'out', action: 'none' }, POLICY, 'p')).toThrow(/p.selector.dst/);
    expect(() => fromWire({ kind: 'medium', sa: { src: 'a', dst: 'b', spi: 1 } }, EVENT_DATA.expire, 'e')).toThrow(/e.kind/);
  });

  it('an SA in a request: hex keys become bytes, then the model check names fields as for a direct call', () => {
    const wire = JSON.parse(JSON.stringify(toWire(sa, SA, true)));
    delete wire.current;
    delete wire.state;
    expect(checkSa(saKeysFromHex(wire)).encryption!.key).toEqual(key);
    expect(() => saKeysFromHex({ ...wire, encryption: { algorithm: 'aes-cbc', key: 'c7c7c' } })).toThrow(/option "encryption.key" must be .*got a string of 5 characters/);
    expect(() => checkSa(saKeysFromHex({ ...wire, spi: 0 }))).toThrow(/option "spi"/);
  });
});

describe('errors on the wire', () => {
  const cases: Array<[string, Error]> = [
    ['KernelReplyError', new KernelReplyError(17, 'XFRM_MSG_NEWSA', 'an SA exists')],
    ['NattSystemError', new NattSystemError(3, 'SADB_GET', 'no such SA', { messageType: 'SADB_GET' })],
    ['NattTimeoutError', new NattTimeoutError('SADB_ADD', 5000)],
    ['NattUnsupportedError', new NattUnsupportedError('PF_KEY cannot carry AEAD: use xfrm')],
    ['NattError', new NattError('ERR_NATT_BUSY', 'busy')],
    ['TypeError', typeError('dst', 'an IPv4 or IPv6 address string', 'x')],
    ['RangeError', rangeError('encryption.key', '16 bytes', new Uint8Array(3))],
  ];
  it.each(cases)('%s comes back as the same class with the same fields', (name, e) => {
    const w = JSON.parse(JSON.stringify(errorToWire(e)));
    const back = errorFromWire(w) as Error & Record<string, unknown>;
    expect(back.constructor.name).toBe(name);
    expect(back).toBeInstanceOf(e.constructor);
    for (const f of ['message', 'code', 'errno', 'syscall', 'messageType']) expect(back[f]).toEqual((e as unknown as Record<string, unknown>)[f]);
  });

  it('an AbortError stays an AbortError; a thrown non-Error becomes an internal error', () => {
    const back = errorFromWire(errorToWire(new DOMException('aborted', 'AbortError')));
    expect(back.name).toBe('AbortError');
    expect(errorToWire('oops')).toMatchObject({ name: 'Error', code: 'ERR_NATT_CONTROL_INTERNAL' });
  });
});
