// The shared byte cursor: bounds-checked reads, range-checked writes (growable, into a caller buffer, or measuring), field checks.
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, checkedArray, checkedBytes, checkedObject } from '../../src/core/cursor';

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

describe('ByteReader and ByteWriter: the pieces the kernel codecs share', () => {
  it('u24 and cstring read and write what the other wrote', () => {
    const w = new ByteWriter(0);
    const o = w.reserve(12);
    w.u24(o, 0x010203, 'r');
    w.cstring(o + 4, 'abc', 8, 'name');
    expect([...w.result()]).toEqual([3, 2, 1, 0, 0x61, 0x62, 0x63, 0, 0, 0, 0, 0]);
    const r = new ByteReader(w.result(), fail);
    expect(r.u24(0)).toBe(0x010203);
    expect(r.cstring(4, 8, 'name')).toBe('abc');
    expect(() => w.u24(o, 0x1000000, 'r')).toThrow(RangeError);
    expect(() => r.cstring(4, 3, 'name')).toThrow(expect.objectContaining({ offset: 4, rule: 'name is not NUL-terminated within 3 bytes' }));
    const junk = new ByteReader(Uint8Array.from([0x61, 0, 0x62, 0]), fail);
    expect(() => junk.cstring(0, 4, 'name')).toThrow(expect.objectContaining({ offset: 2, rule: 'name has bytes after its NUL terminator' }));
  });

  it('a write outside the reserved bytes is a RangeError naming the field, never a write into what follows', () => {
    const into = Buffer.alloc(16, 0xee);
    const w = new ByteWriter({ into, offset: 2 });
    const o = w.reserve(4);
    expect(() => w.u32(o + 2, 1, 'spill')).toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringMatching(/^option "spill"/) }));
    expect(() => w.u8(o - 1, 1, 'before')).toThrow(/"before"/);
    expect(() => w.bytes(o, new Uint8Array(5), 'data')).toThrow(/"data"/);
    expect(() => w.cstring(o, 'a', 8, 'name')).toThrow(/"name"/); // the whole fixed field must fit
    expect([...into.subarray(6, 16)]).toEqual(new Array(10).fill(0xee));
    const g = new ByteWriter(64); // growable: the buffer is larger than what was reserved, the rule is the same
    g.reserve(2);
    expect(() => g.u32(0, 1, 'x')).toThrow(RangeError);
  });

  it('measuring: reserves and checks like writing, stores nothing', () => {
    const m = new ByteWriter({ measure: true });
    const o = m.reserve(10);
    m.u32(o, 0xffffffff, 'a');
    m.bytes(o + 4, new Uint8Array(6), 'b');
    m.align(8);
    expect(m.len).toBe(16);
    expect(m.result().length).toBe(0);
    expect(() => m.u16(o, 70000, 'port')).toThrow(/"port"/);
    expect(() => m.u64(o, 1, 'bytes')).toThrow(TypeError);
    expect(() => m.u8(o + 16, 1, 'past')).toThrow(RangeError);
  });

  it('the caller-buffer form checks buf and offset', () => {
    expect(() => new ByteWriter({ into: 'x' as unknown as Uint8Array })).toThrow(/option "buf"/);
    expect(() => new ByteWriter({ into: Buffer.alloc(4), offset: '1' as unknown as number })).toThrow(TypeError);
    expect(() => new ByteWriter({ into: Buffer.alloc(4), offset: 1.5 })).toThrow(/option "offset"/);
    const plain = new Uint8Array(8);
    const w = new ByteWriter({ into: plain, offset: 4 });
    w.u16(w.reserve(2), 0x0102, 'x');
    expect([...plain]).toEqual([0, 0, 0, 0, 2, 1, 0, 0]);
  });

  it('errors say the 32-bit bounds by name', () => {
    const w = new ByteWriter(8);
    const o = w.reserve(8);
    expect(() => w.u32(o, -1, 'spi')).toThrow('option "spi" must be an integer 0..2^32-1, got -1');
    expect(() => w.i32(o, 2 ** 31, 'ifindex')).toThrow('option "ifindex" must be an integer -2^31..2^31-1, got 2147483648');
    expect(() => w.u8(o, 256, 'proto')).toThrow('option "proto" must be an integer 0..255, got 256');
    expect(() => w.u64(o, -1n, 'bytes')).toThrow('option "bytes" must be a bigint 0..2^64-1, got -1n');
  });
});

describe('checked field helpers', () => {
  it('checkedBytes, checkedArray and checkedObject pass the right shapes and name the field otherwise', () => {
    const b = new Uint8Array(2);
    expect(checkedBytes(b, 'k')).toBe(b);
    expect(checkedBytes(Buffer.alloc(1), 'k')).toBeInstanceOf(Buffer);
    expect(() => checkedBytes([1, 2], 'key')).toThrow('option "key" must be a Uint8Array, got an Array of 2 items');
    expect(() => checkedBytes(new Uint16Array(2), 'key')).toThrow(TypeError);
    expect(checkedArray([1], 'a')).toEqual([1]);
    expect(() => checkedArray({ length: 1 }, 'attrs')).toThrow(/option "attrs" must be an array/);
    const o = { a: 1 };
    expect(checkedObject(o, 'sa')).toBe(o);
    for (const bad of [null, undefined, 5, 'x', [], new Uint8Array(1), () => 1]) expect(() => checkedObject(bad, 'sa')).toThrow(/option "sa" must be an object/);
    expect(() => checkedObject(null, 'message', 'a PF_KEY message object')).toThrow(/must be a PF_KEY message object, got null/);
  });
});
