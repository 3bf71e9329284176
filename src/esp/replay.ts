// Anti-replay for one inbound SA (RFC 4303 §3.4.3, Appendix A2): a sliding bitmap window with ESN high-bit inference.

import { rangeError, typeError } from '../errors';
import { readOptions } from '../core/options';

/** `check()` result: the sequence number lies below the window (or is 0, which no sender uses). */
export const REPLAY_TOO_OLD = -1;
/** `check()` result: the sequence number was already accepted. */
export const REPLAY_REPLAYED = -2;

/** Largest window this implementation accepts (RFC 4303 asks for at least 32; Linux XFRM allows 4096 and more). */
export const MAX_REPLAY_WINDOW = 65536;

const TWO32 = 0x1_0000_0000;

export interface ReplayWindowOptions {
  /** Window size in packets: 0 turns replay checking off (ESN high bits are still inferred). Default 64. */
  size?: number;
  /** Extended (64-bit) sequence numbers: only the low 32 bits travel, the high bits are inferred. */
  esn?: boolean;
}

/**
 * The receiver's window. Use it in two steps, as RFC 4303 §3.4.3 requires: `check(seqLow)` before the ICV is
 * verified (it says whether the packet could be new and, with ESN, which high 32 bits to put in the ICV input),
 * then `commit(seqLow, seqHigh)` only after the ICV passed. `check` never changes the window.
 *
 * The bitmap is a ring of 32-bit words, a power of two at least one word larger than the window, indexed by the
 * low bits of the sequence number (the Linux xfrm_replay_esn layout), so advancing clears whole words only.
 */
export class ReplayWindow {
  readonly size: number;
  readonly esn: boolean;
  readonly #bits: Uint32Array;
  readonly #mask: number;
  /** Width used to infer the ESN high bits: the window, or half the 32-bit space when checking is off. */
  readonly #inferWidth: number;
  #th = 0; // highest accepted sequence number, high 32 bits
  #tl = 0; // and low 32 bits

  constructor(options: ReplayWindowOptions = {}) {
    if (options === null || typeof options !== 'object') throw typeError('replayWindow', 'an object', options);
    const opts = readOptions(options, ['size', 'esn'] as const);
    const size = opts.size ?? 64;
    if (typeof size !== 'number' || !Number.isInteger(size)) throw typeError('replayWindow', 'an integer', size);
    if (size < 0 || size > MAX_REPLAY_WINDOW) throw rangeError('replayWindow', `0..${MAX_REPLAY_WINDOW}`, size);
    if (opts.esn !== undefined && typeof opts.esn !== 'boolean') throw typeError('esn', 'true or false', opts.esn);
    this.size = size;
    this.esn = opts.esn === true;
    let words = 2;
    while (words * 32 < size + 32) words *= 2;
    this.#bits = new Uint32Array(words);
    this.#mask = words - 1;
    this.#inferWidth = size > 0 ? size : 0x8000_0000;
  }

  /** The highest sequence number accepted so far (0 before any), as a bigint carrying all 64 bits. */
  get highest(): bigint {
    return (BigInt(this.#th) << 32n) | BigInt(this.#tl);
  }

  /**
   * Forget everything and start from `highest` (default 0): numbers at or below it are treated as seen. For SA
   * migration (XFRM's replay state) and for tests that start an ESN SA near a 2^32 boundary.
   */
  reset(highest: number | bigint = 0): void {
    const v = typeof highest === 'bigint' ? highest : Number.isSafeInteger(highest) && highest >= 0 ? BigInt(highest) : -1n;
    const max = this.esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
    if (v < 0n || v > max) throw rangeError('highest', `an integer in 0..${max}`, highest);
    this.#th = Number(v >> 32n);
    this.#tl = Number(v & 0xffff_ffffn);
    this.#bits.fill(0);
    if (v === 0n) return;
    this.#bits.fill(0xffff_ffff); // everything at or below `highest` counts as seen ...
    const bit = this.#tl & 31; // ... but bits above it in its own word stay clear (the ring's invariant)
    this.#bits[(this.#tl >>> 5) & this.#mask] = bit === 31 ? 0xffff_ffff : 2 ** (bit + 1) - 1;
  }

  /**
   * May `seqLow` (the 32-bit field on the wire) be a new packet? Returns the inferred high 32 bits of the
   * sequence number (always 0 without ESN), or REPLAY_TOO_OLD / REPLAY_REPLAYED. Does not change the window.
   */
  check(seqLow: number): number {
    if (typeof seqLow !== 'number') throw typeError('seqLow', 'an integer from 0 to 2^32-1', seqLow);
    if (seqLow >>> 0 !== seqLow) throw rangeError('seqLow', 'an integer from 0 to 2^32-1', seqLow);
    const tl = this.#tl;
    let sh = 0;
    if (this.esn) {
      const th = this.#th;
      const w = this.#inferWidth;
      // RFC 4303 Appendix A2.2: place seqLow in the 2^32-wide range starting at the window's bottom.
      if (tl >= w - 1) {
        sh = seqLow >= tl - w + 1 ? th : th + 1;
      } else {
        sh = seqLow >= tl - w + 1 + TWO32 ? th - 1 : th;
      }
      if (sh < 0 || sh >= TWO32) return REPLAY_TOO_OLD;
      if (sh === 0 && seqLow === 0) return REPLAY_TOO_OLD;
      if (sh > th || (sh === th && seqLow > tl)) return sh;
    } else {
      if (seqLow === 0) return REPLAY_TOO_OLD;
      if (seqLow > tl) return 0;
    }
    if (this.size === 0) return sh;
    // At or below the highest: the inference guarantees the high bits differ by at most one.
    const diff = (this.#th - sh) * TWO32 + tl - seqLow;
    if (diff >= this.size) return REPLAY_TOO_OLD;
    const word = this.#bits[(seqLow >>> 5) & this.#mask];
    return (word >>> (seqLow & 31)) & 1 ? REPLAY_REPLAYED : sh;
  }

  /**
   * Record `seqHigh:seqLow` as received (call after the ICV verified; `seqHigh` is what check() returned). Returns true
   * when it is the highest number seen so far (the window moved). A number outside 32 bits, or a non-zero `seqHigh`
   * without ESN, is a RangeError: it would poison the window.
   */
  commit(seqLow: number, seqHigh = 0): boolean {
    if (typeof seqLow !== 'number') throw typeError('seqLow', 'an integer from 0 to 2^32-1', seqLow);
    if (typeof seqHigh !== 'number') throw typeError('seqHigh', 'an integer from 0 to 2^32-1', seqHigh);
    if (!(seqLow >= 0 && seqLow <= 0xffff_ffff && Math.floor(seqLow) === seqLow)) throw rangeError('seqLow', 'an integer from 0 to 2^32-1', seqLow);
    if (!(seqHigh >= 0 && seqHigh <= 0xffff_ffff && Math.floor(seqHigh) === seqHigh) || (seqHigh !== 0 && !this.esn)) {
      throw rangeError('seqHigh', this.esn ? 'an integer from 0 to 2^32-1' : '0 (the window has no ESN)', seqHigh);
    }
    const th = this.#th;
    const tl = this.#tl;
    const bits = this.#bits;
    const mask = this.#mask;
    if (seqHigh > th || (seqHigh === th && seqLow > tl)) {
      const diff = (seqHigh - th) * TWO32 + seqLow - tl;
      const crossed = Math.floor(((tl & 31) + diff) / 32); // word boundaries the top of the window passes
      if (crossed > mask) {
        bits.fill(0);
      } else {
        const first = tl >>> 5;
        for (let i = 1; i <= crossed; i++) bits[(first + i) & mask] = 0;
      }
      this.#th = seqHigh;
      this.#tl = seqLow;
      bits[(seqLow >>> 5) & mask] |= 1 << (seqLow & 31);
      return true;
    }
    bits[(seqLow >>> 5) & mask] |= 1 << (seqLow & 31);
    return false;
  }
}
