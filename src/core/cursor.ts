// The one checked byte cursor of natt's wire codecs: a bounds-checked reader and a range-checked writer over one buffer.
//
// Offsets are absolute (from the start of the buffer being decoded or encoded), so error messages name the byte where a
// rule broke. "Host order" is little-endian: natt's kernel codecs (PF_KEY, netlink) run on little-endian hosts only,
// and say so where they are used; network-order fields have their own `be` methods.

import { rangeError, typeError } from '../errors';

/** Makes the codec's own decode error (PfKeyDecodeError, XfrmDecodeError, ...) for a rule broken at `offset`. */
export type DecodeFailure = (offset: number, rule: string) => Error;

/** A bounds-checked reader: every read is inside the buffer; `need` and `zeros` throw the codec's own error. */
export class ByteReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  readonly #fail: DecodeFailure;

  constructor(buf: Uint8Array, fail: DecodeFailure) {
    if (!(buf instanceof Uint8Array)) throw typeError('buffer', 'a Buffer or Uint8Array', buf);
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#fail = fail;
  }

  get length(): number {
    return this.buf.length;
  }

  /** Throw the codec's error for `rule` at `offset`. */
  fail(offset: number, rule: string): never {
    throw this.#fail(offset, rule);
  }

  /** Throws unless [off, off+len) lies inside [0, end) (end defaults to the buffer's length). */
  need(off: number, len: number, end: number, what: string): void {
    if (off < 0 || len < 0 || off + len > Math.min(end, this.buf.length)) {
      this.fail(off, `${what} needs ${len} bytes, only ${Math.max(0, Math.min(end, this.buf.length) - off)} left`);
    }
  }

  /** Throws at the first non-zero byte of [o, o+n): padding and reserved bytes must be zero. */
  zeros(o: number, n: number, what: string): void {
    for (let i = o; i < o + n; i++) {
      if (this.buf[i] !== 0) this.fail(i, `${what} must be zero, is 0x${this.buf[i].toString(16).padStart(2, '0')}`);
    }
  }

  u8(o: number): number {
    return this.buf[o];
  }
  /** Host order (little-endian). */
  u16(o: number): number {
    return this.view.getUint16(o, true);
  }
  be16(o: number): number {
    return this.view.getUint16(o, false);
  }
  /** Host order (little-endian). */
  u32(o: number): number {
    return this.view.getUint32(o, true);
  }
  /** Host order (little-endian), signed. */
  i32(o: number): number {
    return this.view.getInt32(o, true);
  }
  be32(o: number): number {
    return this.view.getUint32(o, false);
  }
  /** Host order (little-endian). */
  u64(o: number): bigint {
    return this.view.getBigUint64(o, true);
  }
  /** A copy, as a plain Uint8Array (never a view into the received buffer). */
  bytes(o: number, len: number): Uint8Array {
    return new Uint8Array(this.buf.subarray(o, o + len));
  }
  /** A view (no copy): only for data the caller consumes before the buffer is reused. */
  view8(o: number, len: number): Uint8Array {
    return this.buf.subarray(o, o + len);
  }
}

/** `v` if it is an integer in [min, max]; else a TypeError or RangeError naming `field`. */
export function checkedInt(v: unknown, min: number, max: number, field: string): number {
  const expected = `an integer from ${min} to ${max}`;
  if (typeof v !== 'number') throw typeError(field, expected, v);
  if (!Number.isInteger(v) || v < min || v > max) throw rangeError(field, expected, v);
  return v;
}

/** `v` if it is a bigint in [0, 2^64−1]; else a TypeError or RangeError naming `field`. */
export function checkedU64(v: unknown, field: string): bigint {
  if (typeof v !== 'bigint') throw typeError(field, 'a bigint', v);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw rangeError(field, 'a bigint from 0 to 2^64-1', v);
  return v;
}

/**
 * A writer whose every numeric field is range-checked (RangeError naming the field: a value never silently wraps).
 * Growable by default; given `{ into, offset }` it writes into the caller's buffer and refuses to outgrow it.
 */
export class ByteWriter {
  buf: Buffer;
  view: DataView;
  /** Bytes written so far, counted from `start`. */
  len = 0;
  readonly #start: number;
  readonly #fixed: boolean;

  constructor(init: number | { into: Uint8Array; offset?: number } = 512) {
    if (typeof init === 'number') {
      this.buf = Buffer.alloc(init);
      this.#start = 0;
      this.#fixed = false;
    } else {
      const into = init.into;
      if (!(into instanceof Uint8Array)) throw typeError('buf', 'a Buffer or Uint8Array', into);
      const offset = init.offset ?? 0;
      if (!Number.isInteger(offset) || offset < 0 || offset > into.length) throw rangeError('offset', `an integer from 0 to ${into.length}`, offset);
      this.buf = Buffer.isBuffer(into) ? into : Buffer.from(into.buffer, into.byteOffset, into.byteLength);
      this.#start = offset;
      this.#fixed = true;
    }
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Reserve `n` zeroed bytes; returns their absolute offset in `buf`. */
  reserve(n: number): number {
    const at = this.#start + this.len;
    if (at + n > this.buf.length) {
      if (this.#fixed) throw rangeError('buf', `room for ${this.len + n} bytes from the offset`, this.buf);
      const next = Buffer.alloc(Math.max(this.buf.length * 2, at + n));
      this.buf.copy(next, 0, 0, at);
      this.buf = next;
      this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    } else if (this.#fixed) {
      this.buf.fill(0, at, at + n); // a caller's buffer may hold old bytes: padding must come out zero
    }
    this.len += n;
    return at;
  }

  /** Pad with zero bytes to a multiple of `n` (counted from the start of the message). */
  align(n: number): void {
    const pad = (n - (this.len % n)) % n;
    if (pad) this.reserve(pad);
  }

  u8(o: number, v: unknown, field: string): void {
    this.buf[o] = checkedInt(v, 0, 0xff, field);
  }
  /** Host order (little-endian). */
  u16(o: number, v: unknown, field: string): void {
    this.view.setUint16(o, checkedInt(v, 0, 0xffff, field), true);
  }
  be16(o: number, v: unknown, field: string): void {
    this.view.setUint16(o, checkedInt(v, 0, 0xffff, field), false);
  }
  /** Host order (little-endian). */
  u32(o: number, v: unknown, field: string): void {
    this.view.setUint32(o, checkedInt(v, 0, 0xffff_ffff, field), true);
  }
  /** Host order (little-endian), signed. */
  i32(o: number, v: unknown, field: string): void {
    this.view.setInt32(o, checkedInt(v, -0x8000_0000, 0x7fff_ffff, field), true);
  }
  be32(o: number, v: unknown, field: string): void {
    this.view.setUint32(o, checkedInt(v, 0, 0xffff_ffff, field), false);
  }
  /** Host order (little-endian). */
  u64(o: number, v: unknown, field: string): void {
    this.view.setBigUint64(o, checkedU64(v, field), true);
  }
  /** Copy `b` (a Uint8Array, else a TypeError naming `field`) to `o`. */
  bytes(o: number, b: unknown, field: string): void {
    if (!(b instanceof Uint8Array)) throw typeError(field, 'a Uint8Array', b);
    if (o + b.length > this.buf.length) throw rangeError(field, `at most ${this.buf.length - o} bytes here`, b);
    this.buf.set(b, o);
  }
  /** A NUL-terminated latin1 string in a fixed field of `max` bytes. */
  cstring(o: number, text: unknown, max: number, field: string): void {
    if (typeof text !== 'string') throw typeError(field, 'a string', text);
    const b = Buffer.from(text, 'latin1');
    if (b.length >= max) throw rangeError(field, `a string shorter than ${max} bytes`, text);
    this.buf.set(b, o);
  }
  /** The bytes written: a view of `buf` from the start offset. */
  result(): Buffer {
    return this.buf.subarray(this.#start, this.#start + this.len);
  }
}
