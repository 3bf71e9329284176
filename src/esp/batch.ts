// EspBatch: a slab of packets with their descriptors and statuses, sealed or opened by EspTransform in one cipher call.

import { readOptions, intOption } from '../core/options';
import { rangeError, typeError } from '../errors';
import { ESP_DESC_WORDS, ESP_CIPHER_OK } from './cipher';
import { ESP_DROP_REASONS, type EspDropReason } from './drops';

/** Words per packet in `EspBatch.meta`: payload offset, payload length, next header, sequence number low bits. */
export const ESP_META_WORDS = 4;
/** Status of a packet sealed, or opened (authenticated, padding and replay checked). */
export const ESP_BATCH_OK = ESP_CIPHER_OK;
/** Status of a packet sealBatch() did not seal: the SA's sequence numbers are used up (rekey). */
export const ESP_BATCH_SEQ_EXHAUSTED = 8;
/** Status of a packet openBatch() refused: ESP_BATCH_DROP + the index of its reason in ESP_DROP_REASONS. */
export const ESP_BATCH_DROP = 16;
/** Largest batch (the native cipher walks it in one call; the kernel's recvmmsg/sendmmsg limit is 1024). */
export const MAX_ESP_BATCH = 1024;

export interface EspBatchOptions {
  /** Packets per batch, 1..1024 (default 32). */
  capacity?: number;
  /** Bytes of the slab (default capacity × 2048), when no `slab` is given. */
  slabSize?: number;
  /** A slab of your own (e.g. one the I/O layer reads into). */
  slab?: Buffer;
}

/**
 * Packets laid out in one JS-owned slab, for `EspTransform.sealBatch()` / `openBatch()`. Nothing is allocated per
 * packet: the transform reads and writes the typed arrays below, and the cipher runs once over the whole batch.
 *
 * To seal: write payload i anywhere in the slab with room in front (8 + IV bytes, `transform.headroom`) and behind
 * (`transform.tailroom(length)`), `setPayload(i, offset, length, nextHeader)` for i < n, set `count = n`, call
 * `sealBatch`; packet i is then `packet(i)` (`desc` words 0 and 1). To open: place packets in the slab,
 * `setPacket(i, offset, length)`, set `count`, call `openBatch`; then `ok(i)`, `payload(i)`, `nextHeader(i)`,
 * `seq(i)`, or `reason(i)`. Payloads of opened packets are decrypted where they lie (in place).
 */
export class EspBatch {
  readonly capacity: number;
  readonly slab: Buffer;
  /** The cipher's descriptors, ESP_DESC_WORDS per packet: packet offset, packet length, ESN high bits, 0. */
  readonly desc: Uint32Array;
  /** ESP_META_WORDS per packet: payload offset, payload length, next header, sequence number low bits. */
  readonly meta: Uint32Array;
  /** Per packet: ESP_BATCH_OK, ESP_BATCH_SEQ_EXHAUSTED or ESP_BATCH_DROP + reason index (after a seal/open call). */
  readonly status: Uint8Array;
  /** Per packet after openBatch(): 1 when it moved the replay window forward (newer than every one before), else 0. */
  readonly advanced: Uint8Array;
  /** Packets in the batch (0..capacity). */
  count = 0;

  constructor(opts?: EspBatchOptions) {
    const o = readOptions(opts, ['capacity', 'slabSize', 'slab'] as const);
    this.capacity = intOption(o.capacity, 'capacity', 1, MAX_ESP_BATCH, 32);
    if (o.slab !== undefined) {
      if (!Buffer.isBuffer(o.slab)) throw typeError('slab', 'a Buffer', o.slab);
      if (o.slabSize !== undefined) throw typeError('slabSize', 'absent when a slab is given', o.slabSize);
      this.slab = o.slab;
    } else {
      this.slab = Buffer.alloc(intOption(o.slabSize, 'slabSize', 1, 2 ** 31 - 1, this.capacity * 2048));
    }
    this.desc = new Uint32Array(this.capacity * ESP_DESC_WORDS);
    this.meta = new Uint32Array(this.capacity * ESP_META_WORDS);
    this.status = new Uint8Array(this.capacity);
    this.advanced = new Uint8Array(this.capacity);
  }

  /** Payload i (to seal) is `length` bytes at `offset` in the slab, with Next Header `nextHeader`. */
  setPayload(i: number, offset: number, length: number, nextHeader: number): void {
    this.#index(i);
    this.#range(offset, length);
    if (typeof nextHeader !== 'number' || !(nextHeader >= 0 && nextHeader <= 255 && (nextHeader | 0) === nextHeader)) throw rangeError('nextHeader', 'an integer in 0..255', nextHeader);
    const w = i * ESP_META_WORDS;
    this.meta[w] = offset;
    this.meta[w + 1] = length;
    this.meta[w + 2] = nextHeader;
  }

  /** Packet i (to open) is `length` bytes at `offset` in the slab, from the SPI to the end of the ICV. */
  setPacket(i: number, offset: number, length: number): void {
    this.#index(i);
    this.#range(offset, length);
    const w = i * ESP_DESC_WORDS;
    this.desc[w] = offset;
    this.desc[w + 1] = length;
  }

  /** Packet i as sealed (or as given to open): a view into the slab. */
  packet(i: number): Buffer {
    this.#index(i);
    const w = i * ESP_DESC_WORDS;
    return this.slab.subarray(this.desc[w], this.desc[w] + this.desc[w + 1]);
  }

  /** Whether packet i was sealed / opened. */
  ok(i: number): boolean {
    this.#index(i);
    return this.status[i] === ESP_BATCH_OK;
  }

  /** Why packet i was not sealed or opened, or null when it was. */
  reason(i: number): EspDropReason | 'seq-exhausted' | null {
    this.#index(i);
    const s = this.status[i];
    if (s === ESP_BATCH_OK) return null;
    if (s === ESP_BATCH_SEQ_EXHAUSTED) return 'seq-exhausted';
    return ESP_DROP_REASONS[s - ESP_BATCH_DROP] ?? null;
  }

  /** The payload of opened packet i: a view into the slab, decrypted in place. */
  payload(i: number): Buffer {
    this.#index(i);
    const w = i * ESP_META_WORDS;
    return this.slab.subarray(this.meta[w], this.meta[w] + this.meta[w + 1]);
  }

  /** The Next Header of opened packet i. */
  nextHeader(i: number): number {
    this.#index(i);
    return this.meta[i * ESP_META_WORDS + 2];
  }

  /** The full sequence number of packet i (sealed or opened): a number below 2^53, a bigint above. */
  seq(i: number): number | bigint {
    this.#index(i);
    const hi = this.desc[i * ESP_DESC_WORDS + 2];
    const lo = this.meta[i * ESP_META_WORDS + 3];
    return hi < 0x20_0000 ? hi * 0x1_0000_0000 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }

  #index(i: number): void {
    if (typeof i !== 'number' || !(i >= 0 && i < this.capacity && (i | 0) === i)) throw rangeError('index', `an integer in 0..${this.capacity - 1}`, i);
  }

  #range(offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset > this.slab.length) {
      throw rangeError('offset', `an integer in 0..${this.slab.length}`, offset);
    }
    if (!Number.isInteger(length) || length < 0 || offset + length > this.slab.length) {
      throw rangeError('length', `an integer with offset + length ≤ ${this.slab.length}`, length);
    }
  }
}
