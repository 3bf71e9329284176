import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../src/core/cursor';

class TestDecodeError extends Error {
  constructor(
    readonly offset: number,
    readonly rule: string,
  ) {
    super(`at ${offset}: ${rule}`);
  }
}
const fail = (o: number, r: string): Error => new TestDecodeError(o, r);

describe('ByteReader', () => {
  it('reads host (little-endian) and network order, and copies bytes', () => {
    const r = new ByteReader(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]), fail);
    expect(r.u16(0)).toBe(0x0201);
    expect(r.be16(0)).toBe(0x0102);
    expect(r.u32(0)).toBe(0x04030201);
    expect(r.be32(0)).toBe(0x01020304);
    expect(r.u64(0)).toBe(0x0807060504030201n);
    const b = r.bytes(1, 2);
    b[0] = 99;
    expect(r.u8(1)).toBe(2);
  });
  it('need() and zeros() throw the codec error with the offset', () => {
    const r = new ByteReader(Uint8Array.from([0, 0, 7, 0]), fail);
    expect(() => r.need(2, 4, 4, 'thing')).toThrow(expect.objectContaining({ offset: 2, rule: 'thing needs 4 bytes, only 2 left' }));
    expect(() => r.need(0, 8, 100, 'thing')).toThrow(TestDecodeError); // end past the buffer is clamped to it
    expect(() => r.zeros(0, 4, 'pad')).toThrow(expect.objectContaining({ offset: 2, rule: 'pad must be zero, is 0x07' }));
    expect(() => new ByteReader('abc' as unknown as Uint8Array, fail)).toThrow(TypeError);
  });
});

describe('ByteWriter', () => {
  it('grows, zero-fills reserved bytes, and range-checks every field naming it', () => {
    const w = new ByteWriter(2);
    const o = w.reserve(8);
    w.u16(o, 0x0102, 'a');
    w.be16(o + 2, 0x0102, 'b');
    w.u32(o + 4, 0xffffffff, 'c');
    expect([...w.result()]).toEqual([2, 1, 1, 2, 255, 255, 255, 255]);
    expect(() => w.u8(o, 300, 'proto')).toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringMatching(/"proto"/) }));
    expect(() => w.u16(o, -1, 'port')).toThrow(RangeError);
    expect(() => w.u32(o, '5', 'spi')).toThrow(TypeError);
    expect(() => w.u64(o, 5, 'bytes')).toThrow(TypeError);
    expect(() => w.bytes(o, 5, 'key')).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/"key"/) }));
  });
  it('writes into a caller buffer at an offset, zeroing old bytes, and refuses to outgrow it', () => {
    const into = Buffer.alloc(10, 0xee);
    const w = new ByteWriter({ into, offset: 4 });
    const o = w.reserve(4);
    expect(o).toBe(4);
    w.u8(o, 1, 'x');
    expect([...w.result()]).toEqual([1, 0, 0, 0]);
    expect(into[3]).toBe(0xee);
    expect(() => w.reserve(3)).toThrow(RangeError);
    expect(() => new ByteWriter({ into, offset: 11 })).toThrow(RangeError);
  });
  it('align pads to a multiple, counted from the start offset', () => {
    const w = new ByteWriter({ into: Buffer.alloc(32), offset: 3 });
    w.reserve(5);
    w.align(8);
    expect(w.len).toBe(8);
    w.cstring(3, 'ab', 4, 'name');
    expect(() => w.cstring(3, 'abcd', 4, 'name')).toThrow(RangeError);
  });
});
