// RFC 9329 framing: hand-made byte fixtures, every split point, every failure and drop reason, the encoder, zero copy.

import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  encodeFrame,
  frameEsp,
  frameHeader,
  frameIke,
  keepaliveFrame,
  streamPrefix,
  MAX_FRAME_LENGTH,
  type TcpFrame,
} from '../../src/tcp/framing';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

// An IKE_SA_INIT-shaped header (28 octets: SPIi, SPIr zero, next payload, version 2.0, exchange 34, flags I, msgid 0,
// length 28), framed by hand: Length 0x0022 = 2 + 4 + 28, then the non-ESP marker.
const IKE_MSG = hex('0102030405060708 0000000000000000 00 20 22 08 00000000 0000001c');
const IKE_FRAME = Buffer.concat([hex('0022 00000000'), IKE_MSG]);
// An ESP packet: SPI 0x0000c0de, sequence 1, 4 octets of ciphertext; Length 0x000e = 2 + 12.
const ESP_PKT = hex('0000c0de 00000001 deadbeef');
const ESP_FRAME = Buffer.concat([hex('000e'), ESP_PKT]);
const KEEPALIVE = hex('0003 ff');
const PREFIX = hex('49 4b 45 54 43 50'); // "IKETCP"

type Plain = { kind: string; bytes?: string };
const plain = (fs: readonly TcpFrame[]): Plain[] =>
  fs.map((f) => (f.kind === 'ike' ? { kind: 'ike', bytes: Buffer.from(f.payload).toString('hex') } : f.kind === 'esp' ? { kind: 'esp', bytes: Buffer.from(f.packet).toString('hex') } : { kind: 'keepalive' }));

function decodeAll(chunks: Uint8Array[], expectPrefix: boolean, maxFrameLength?: number) {
  const d = new FrameDecoder({ expectPrefix, ...(maxFrameLength ? { maxFrameLength } : {}) });
  const frames: TcpFrame[] = [];
  for (const c of chunks) frames.push(...d.push(c));
  const failure = d.end();
  return { frames: plain(frames), failure, stats: d.stats() };
}

const STREAM = Buffer.concat([PREFIX, IKE_FRAME, ESP_FRAME, KEEPALIVE, ESP_FRAME]);
const EXPECTED: Plain[] = [
  { kind: 'ike', bytes: IKE_MSG.toString('hex') },
  { kind: 'esp', bytes: ESP_PKT.toString('hex') },
  { kind: 'keepalive' },
  { kind: 'esp', bytes: ESP_PKT.toString('hex') },
];

describe('decoding hand-made fixtures', () => {
  it('the prefix, then IKE, ESP, keepalive and ESP in one chunk', () => {
    const r = decodeAll([STREAM], true);
    expect(r.frames).toEqual(EXPECTED);
    expect(r.failure).toBeNull();
    expect(r.stats).toMatchObject({ ike: 1, esp: 2, keepalive: 1, failed: null, bytes: STREAM.length, ignored: 0, buffered: 0 });
  });

  it('the originator side: no prefix expected', () => {
    expect(decodeAll([STREAM.subarray(6)], false).frames).toEqual(EXPECTED);
  });

  it('split at every octet boundary gives the same frames', () => {
    for (let p = 0; p <= STREAM.length; p++) {
      const r = decodeAll([STREAM.subarray(0, p), STREAM.subarray(p)], true);
      expect(r.frames, `split at ${p}`).toEqual(EXPECTED);
      expect(r.failure).toBeNull();
    }
  });

  it('split at every pair of boundaries, and one octet at a time', () => {
    for (let p = 0; p <= STREAM.length; p++) {
      for (let q = p; q <= STREAM.length; q++) {
        const r = decodeAll([STREAM.subarray(0, p), STREAM.subarray(p, q), STREAM.subarray(q)], true);
        expect(r.frames, `split at ${p}, ${q}`).toEqual(EXPECTED);
      }
    }
    const bytes = [...STREAM].map((b) => Buffer.from([b]));
    expect(decodeAll(bytes, true).frames).toEqual(EXPECTED);
  });

  it('a frame of the largest Length (65535) across many chunks, and the limit itself is accepted', () => {
    const body = Buffer.alloc(MAX_FRAME_LENGTH - 2, 7);
    body.writeUInt32BE(0x11223344, 0);
    const frame = Buffer.concat([hex('ffff'), body]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < frame.length; i += 1000) chunks.push(frame.subarray(i, i + 1000));
    const r = decodeAll(chunks, false);
    expect(r.frames).toEqual([{ kind: 'esp', bytes: body.toString('hex') }]);
    expect(decodeAll([hex('0064'), Buffer.alloc(98, 1)], false, 100).frames).toHaveLength(1);
  });
});

describe('drops: well framed, not a message; the stream goes on', () => {
  const cases: [string, string, 'empty' | 'short' | 'markerOnly'][] = [
    ['Length 2 (empty)', '0002', 'empty'],
    ['one octet other than 0xFF', '0003 00', 'short'],
    ['two octets', '0004 0102', 'short'],
    ['three octets', '0005 000000', 'short'],
    ['the marker alone', '0006 00000000', 'markerOnly'],
    ['ESP of 5 octets', '0007 0000c0de01', 'short'],
    ['ESP of 8 octets (header only)', '000a 0000c0de00000001', 'short'],
  ];
  for (const [name, bytes, reason] of cases) {
    it(name, () => {
      const r = decodeAll([Buffer.concat([hex(bytes), ESP_FRAME])], false);
      expect(r.frames).toEqual([{ kind: 'esp', bytes: ESP_PKT.toString('hex') }]);
      expect(r.stats.dropped).toEqual({ empty: 0, short: 0, markerOnly: 0, [reason]: 1 });
      expect(r.failure).toBeNull();
    });
  }
  it('the smallest frames kept: a 1-octet IKE message, a 9-octet ESP packet', () => {
    expect(decodeAll([hex('0007 00000000 aa 000b 00000001 00000002 bb')], false).frames).toEqual([
      { kind: 'ike', bytes: 'aa' },
      { kind: 'esp', bytes: '000000010000000' + '2bb' },
    ]);
  });
});

describe('failures: the decoder stops, nothing escapes', () => {
  it('badPrefix at each octet of the prefix, found as soon as the octet arrives', () => {
    for (let k = 0; k < 6; k++) {
      const bad = Buffer.from(PREFIX);
      bad[k] ^= 0x20; // 'iketcp' in another case is not the prefix either
      const d = new FrameDecoder({ expectPrefix: true });
      expect(d.push(bad.subarray(0, k + 1))).toEqual([]);
      expect(d.failure).toMatchObject({ reason: 'badPrefix', offset: k });
      expect(d.failure!.message).toMatch(/IKETCP/);
      expect(d.push(STREAM)).toEqual([]);
      expect(d.stats()).toMatchObject({ failed: 'badPrefix', bytes: k, ignored: 1 + STREAM.length, ike: 0 });
    }
  });

  it('a stream from an originator that forgot the prefix fails at octet 0', () => {
    expect(decodeAll([STREAM.subarray(6)], true).failure).toMatchObject({ reason: 'badPrefix', offset: 0 });
  });

  it('lengthBelowMinimum: Length 0 and 1, after the good frames before it', () => {
    for (const len of ['0000', '0001']) {
      const d = new FrameDecoder({ expectPrefix: true });
      const frames = d.push(Buffer.concat([PREFIX, IKE_FRAME, hex(len), ESP_FRAME]));
      expect(plain(frames)).toEqual([EXPECTED[0]]);
      expect(d.failure).toMatchObject({ reason: 'lengthBelowMinimum', offset: 6 + IKE_FRAME.length });
      expect(d.stats().ignored).toBe(2 + ESP_FRAME.length);
    }
  });

  it('lengthOverLimit: one over maxFrameLength fails, split inside the Length too', () => {
    const d = new FrameDecoder({ expectPrefix: false, maxFrameLength: 100 });
    expect(d.push(Buffer.concat([ESP_FRAME, hex('00')]))).toHaveLength(1);
    expect(d.failed).toBe(false);
    expect(d.push(hex('65 ff'))).toEqual([]);
    expect(d.failure).toMatchObject({ reason: 'lengthOverLimit', offset: ESP_FRAME.length });
    expect(d.failure!.message).toMatch(/101 is over the limit of 100/);
  });

  it('truncated: the stream ends inside the prefix, a Length, or a body', () => {
    expect(decodeAll([PREFIX.subarray(0, 3)], true).failure).toMatchObject({ reason: 'truncated', offset: 0 });
    expect(decodeAll([Buffer.concat([PREFIX, IKE_FRAME.subarray(0, 1)])], true).failure).toMatchObject({ reason: 'truncated', offset: 6 });
    const r = decodeAll([Buffer.concat([PREFIX, IKE_FRAME, ESP_FRAME.subarray(0, 5)])], true);
    expect(r.failure).toMatchObject({ reason: 'truncated', offset: 6 + IKE_FRAME.length });
    expect(r.frames).toEqual([EXPECTED[0]]);
    expect(r.stats).toMatchObject({ buffered: 0, ignored: 5 });
  });

  it('a clean end: nothing sent at all, or between frames', () => {
    expect(decodeAll([], true).failure).toBeNull();
    expect(decodeAll([STREAM], true).failure).toBeNull();
  });

  it('caller mistakes throw: a chunk that is not bytes, a push after end()', () => {
    const d = new FrameDecoder({ expectPrefix: false });
    expect(() => d.push('abc' as never)).toThrow(/option "chunk"/);
    d.end();
    expect(() => d.push(ESP_FRAME)).toThrow(expect.objectContaining({ code: 'ERR_STREAM_WRITE_AFTER_END' }));
    expect(d.end()).toBeNull();
  });
});

describe('buffering and copies', () => {
  it('a frame inside one chunk is a view of it; a frame across chunks is a copy', () => {
    const chunk = Buffer.concat([IKE_FRAME, ESP_FRAME]);
    const d = new FrameDecoder({ expectPrefix: false });
    const [ike, esp] = d.push(chunk);
    expect(ike.kind === 'ike' && ike.payload.buffer === chunk.buffer && ike.payload.byteOffset === chunk.byteOffset + 6).toBe(true);
    expect(esp.kind === 'esp' && esp.packet.buffer === chunk.buffer).toBe(true);
    d.push(ESP_FRAME.subarray(0, 4));
    const [late] = d.push(ESP_FRAME.subarray(4));
    expect(late.kind === 'esp' && late.packet.buffer !== ESP_FRAME.buffer).toBe(true);
    expect(late.kind === 'esp' && Buffer.from(late.packet).equals(ESP_PKT)).toBe(true);
  });

  it('what is held never exceeds the frame limit, and is released when the frame completes', () => {
    const d = new FrameDecoder({ expectPrefix: false, maxFrameLength: 1000 });
    d.push(hex('03e8')); // Length 1000
    for (let i = 0; i < 997; i++) {
      d.push(Buffer.from([i === 0 ? 1 : 0]));
      expect(d.buffered).toBeLessThanOrEqual(999);
    }
    expect(d.buffered).toBe(999);
    expect(d.push(hex('00'))).toHaveLength(1);
    expect(d.buffered).toBe(0);
    expect(d.stats()).toMatchObject({ bytes: 1000, esp: 1 });
  });
});

describe('options', () => {
  it('expectPrefix is required and a boolean; maxFrameLength is bounded; unknown names are refused', () => {
    expect(() => new FrameDecoder(undefined as never)).toThrow(TypeError);
    expect(() => new FrameDecoder({} as never)).toThrow(/option "expectPrefix"/);
    expect(() => new FrameDecoder({ expectPrefix: 1 } as never)).toThrow(TypeError);
    expect(() => new FrameDecoder({ expectPrefix: true, maxFrameLength: 65536 })).toThrow(RangeError);
    expect(() => new FrameDecoder({ expectPrefix: true, maxFrameLength: 33 })).toThrow(/option "maxFrameLength"/);
    expect(() => new FrameDecoder({ expectPrefix: true, prefix: true } as never)).toThrow(/unknown option "prefix"/);
    expect(new FrameDecoder({ expectPrefix: true }).maxFrameLength).toBe(65535);
  });
});

describe('encoding', () => {
  it('frameIke / frameEsp: the header to write in front of the uncopied body', () => {
    const [h, p] = frameIke(IKE_MSG);
    expect(h).toEqual(hex('0022 00000000'));
    expect(p).toBe(IKE_MSG);
    const [he, pe] = frameEsp(ESP_PKT);
    expect(he).toEqual(hex('000e'));
    expect(pe).toBe(ESP_PKT);
    expect(Buffer.concat([streamPrefix(), h, p, he, pe, keepaliveFrame(), he, pe])).toEqual(STREAM);
  });

  it('encodeFrame writes whole frames into a slab at an offset', () => {
    const slab = Buffer.alloc(64, 0xee);
    const a = encodeFrame('ike', IKE_MSG, slab, 1);
    const b = encodeFrame('esp', ESP_PKT, slab, 1 + a.length);
    const c = encodeFrame('keepalive', undefined, slab, 1 + a.length + b.length);
    expect(slab[0]).toBe(0xee);
    expect(slab.subarray(1, 1 + a.length + b.length + c.length)).toEqual(Buffer.concat([IKE_FRAME, ESP_FRAME, KEEPALIVE]));
    expect(a.buffer).toBe(slab.buffer);
    expect(encodeFrame('esp', ESP_PKT)).toEqual(ESP_FRAME);
  });

  it('frameHeader into headroom: the ESP engine writes the packet at offset 2, the header goes in front, no copy', () => {
    const slab = new Uint8Array(2 + ESP_PKT.length);
    slab.set(ESP_PKT, 2);
    frameHeader('esp', ESP_PKT.length, slab, 0);
    expect(Buffer.from(slab)).toEqual(ESP_FRAME);
    expect(frameHeader('ike', IKE_MSG.length)).toEqual(hex('0022 00000000'));
  });

  it('refuses what a receiver could not read back', () => {
    expect(() => frameEsp(hex('00000000 00000001 aa'))).toThrow(/non-zero SPI/);
    expect(() => frameEsp(hex('0000c0de 00000001'))).toThrow(/option "packet" must be an ESP packet of 9 to 65533 bytes/);
    expect(() => frameEsp(Buffer.alloc(65534, 1))).toThrow(RangeError);
    expect(() => frameIke(Buffer.alloc(0))).toThrow(/option "payload"/);
    expect(() => frameIke(Buffer.alloc(65530))).toThrow(RangeError);
    expect(frameIke(Buffer.alloc(65529))[0].readUInt16BE(0)).toBe(65535);
    expect(() => frameIke('x' as never)).toThrow(TypeError);
    expect(() => encodeFrame('ike', IKE_MSG, Buffer.alloc(10))).toThrow(/option "buf" must be room for 34 bytes/);
    expect(() => encodeFrame('ike', IKE_MSG, Buffer.alloc(40), 7)).toThrow(RangeError);
    expect(() => encodeFrame('ike', IKE_MSG, Buffer.alloc(40), -1)).toThrow(/option "offset"/);
    expect(() => encodeFrame('udp' as never, IKE_MSG)).toThrow(/option "kind"/);
    expect(() => encodeFrame('keepalive', hex('ff'))).toThrow(TypeError);
    expect(() => frameHeader('esp', 8)).toThrow(/option "bodyLength"/);
  });

  it('the prefix and keepalive are fresh copies each time', () => {
    const p = streamPrefix();
    p[0] = 0;
    expect(streamPrefix().toString('latin1')).toBe('IKETCP');
    const k = keepaliveFrame();
    k[2] = 0;
    expect(keepaliveFrame()).toEqual(KEEPALIVE);
  });
});
