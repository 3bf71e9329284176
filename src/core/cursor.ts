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
  /** Host order (little-endian), 3 bytes (PF_KEY's reserved tails). */
  u24(o: number): number {
    return this.buf[o] | (this.buf[o + 1] << 8) | (this.buf[o + 2] << 16);
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
  /** A NUL-terminated latin1 string in a fixed field of `len` bytes: the NUL inside the field, only NULs after it. */
  cstring(o: number, len: number, what: string): string {
    const end = this.buf.indexOf(0, o);
    if (end < 0 || end >= o + len) this.fail(o, `${what} is not NUL-terminated within ${len} bytes`);
    for (let i = end; i < o + len; i++) if (this.buf[i] !== 0) this.fail(i, `${what} has bytes after its NUL terminator`);
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + o, end - o).toString('latin1');
  }
}

/** A bound in words: the 32-bit limits by name (as the errors have always said them), anything else in decimal. */
function bound(n: number): string {
  return n === 0xffff_ffff ? '2^32-1' : n === 0x7fff_ffff ? '2^31-1' : n === -0x8000_0000 ? '-2^31' : String(n);
}

/** `v` if it is an integer in [min, max]; else a TypeError (not a number) or RangeError naming `field`. */
export function checkedInt(v: unknown, min: number, max: number, field: string): number {
  if (typeof v !== 'number') throw typeError(field, `an integer ${bound(min)}..${bound(max)}`, v);
  if (!Number.isInteger(v) || v < min || v > max) throw rangeError(field, `an integer ${bound(min)}..${bound(max)}`, v);
  return v;
}

/** `v` if it is a bigint in [0, 2^64−1]; else a TypeError or RangeError naming `field`. */
export function checkedU64(v: unknown, field: string): bigint {
  if (typeof v !== 'bigint') throw typeError(field, 'a bigint 0..2^64-1', v);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw rangeError(field, 'a bigint 0..2^64-1', v);
  return v;
}

/** `v` if it is a Uint8Array (a Buffer is one); else a TypeError naming `field` (described by shape only). */
export function checkedBytes(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw typeError(field, 'a Uint8Array', v);
  return v;
}

/** `v` if it is an Array; else a TypeError naming `field`. */
export function checkedArray<T>(v: readonly T[], field: string): readonly T[];
export function checkedArray(v: unknown, field: string): readonly unknown[];
export function checkedArray(v: unknown, field: string): readonly unknown[] {
  if (!Array.isArray(v)) throw typeError(field, 'an array', v);
  return v;
}

/**
 * `v` if it is a non-null object that is neither an array nor a byte array (a record of fields); else a TypeError
 * naming `field`. Typed as what the caller declared, since its fields are checked one by one as they are written.
 */
export function checkedObject<T>(v: T, field: string, expected = 'an object'): T {
  if (!isRecord(v)) throw typeError(field, expected, v);
  return v;
}

/** Whether `v` is what checkedObject accepts (for loops that name the field only when they must). */
export function isRecord(v: unknown): v is object {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * A writer whose every numeric field is range-checked (RangeError naming the field: a value never silently wraps),
 * and whose every write lies inside the bytes reserved so far (a field that would spill over is a RangeError naming it,
 * never a write into the next structure). Three modes:
 * - growable (the default, or an initial size): its own buffer, doubled as needed;
 * - `{ into, offset }`: writes into the caller's buffer from `offset`, zeroing what it reserves, refusing to outgrow it;
 * - `{ measure: true }`: reserves and checks exactly as the others but stores nothing, so an encoder run on it gives
 *   the encoded length (`len`) and throws what encoding would throw, without allocating.
 */
export class ByteWriter {
  buf: Buffer;
  view: DataView;
  /** Bytes written so far, counted from `start`. */
  len = 0;
  readonly #start: number;
  readonly #fixed: boolean;
  readonly #measure: boolean;

  constructor(init: number | { into: Uint8Array; offset?: number } | { measure: true } = 512) {
    this.#start = 0;
    this.#fixed = false;
    this.#measure = false;
    if (typeof init === 'number') {
      this.buf = Buffer.alloc(init);
    } else if ('measure' in init) {
      this.buf = Buffer.alloc(0);
      this.#measure = true;
    } else {
      const into = init.into;
      if (!(into instanceof Uint8Array)) throw typeError('buf', 'a Buffer or Uint8Array', into);
      this.#start = init.offset === undefined ? 0 : checkedInt(init.offset, 0, into.length, 'offset');
      this.buf = Buffer.isBuffer(into) ? into : Buffer.from(into.buffer, into.byteOffset, into.byteLength);
      this.#fixed = true;
    }
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Where the first byte goes: 0, or the caller's offset. */
  get start(): number {
    return this.#start;
  }

  /** Reserve `n` zeroed bytes; returns their absolute offset in `buf`. */
  reserve(n: number): number {
    const at = this.#start + this.len;
    if (this.#measure) {
      // nothing stored
    } else if (at + n > this.buf.length) {
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

  /** True when the `n` bytes at `o` lie inside what was reserved and are to be stored; else a RangeError for `field`. */
  #room(o: number, n: number, field: string, v: unknown): boolean {
    if (!(o >= this.#start && o + n <= this.#start + this.len)) {
      throw rangeError(field, `a value that fits the ${Math.max(0, this.#start + this.len - o)} bytes reserved for it`, v);
    }
    return !this.#measure;
  }

  u8(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, 0, 0xff, field);
    if (this.#room(o, 1, field, v)) this.buf[o] = x;
  }
  /** Host order (little-endian). */
  u16(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, 0, 0xffff, field);
    if (this.#room(o, 2, field, v)) this.view.setUint16(o, x, true);
  }
  be16(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, 0, 0xffff, field);
    if (this.#room(o, 2, field, v)) this.view.setUint16(o, x, false);
  }
  /** Host order (little-endian), 3 bytes (PF_KEY's reserved tails). */
  u24(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, 0, 0xff_ffff, field);
    if (this.#room(o, 3, field, v)) {
      this.buf[o] = x & 0xff;
      this.buf[o + 1] = (x >>> 8) & 0xff;
      this.buf[o + 2] = x >>> 16;
    }
  }
  /** Host order (little-endian). */
  u32(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, 0, 0xffff_ffff, field);
    if (this.#room(o, 4, field, v)) this.view.setUint32(o, x, true);
  }
  /** Host order (little-endian), signed. */
  i32(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, -0x8000_0000, 0x7fff_ffff, field);
    if (this.#room(o, 4, field, v)) this.view.setInt32(o, x, true);
  }
  be32(o: number, v: unknown, field: string): void {
    const x = checkedInt(v, 0, 0xffff_ffff, field);
    if (this.#room(o, 4, field, v)) this.view.setUint32(o, x, false);
  }
  /** Host order (little-endian). */
  u64(o: number, v: unknown, field: string): void {
    const x = checkedU64(v, field);
    if (this.#room(o, 8, field, v)) this.view.setBigUint64(o, x, true);
  }
  /** Copy `b` (a Uint8Array, else a TypeError naming `field`) to `o`. */
  bytes(o: number, b: unknown, field: string): void {
    const x = checkedBytes(b, field);
    if (this.#room(o, x.length, field, b)) this.buf.set(x, o);
  }
  /** A NUL-terminated latin1 string in a fixed field of `max` bytes. */
  cstring(o: number, text: unknown, max: number, field: string): void {
    if (typeof text !== 'string') throw typeError(field, 'a string', text);
    const b = Buffer.from(text, 'latin1');
    if (b.length >= max) throw rangeError(field, `a string shorter than ${max} bytes`, text);
    if (this.#room(o, max, field, text)) this.buf.set(b, o);
  }
  /** The bytes written: a view of `buf` from the start offset (empty when measuring: read `len`). */
  result(): Buffer {
    if (this.#start === 0 && this.len === this.buf.length) return this.buf; // sized exactly: no view to make
    return this.buf.subarray(this.#start, this.#start + this.len);
  }
}
