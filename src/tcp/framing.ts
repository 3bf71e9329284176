// RFC 9329 stream framing: the "IKETCP" prefix, length-prefixed IKE and ESP frames, an encoder and a strict streaming decoder.
//
// The wire (RFC 9329 §3, §4), for one TCP connection:
//
//   TCP originator → responder, once, first:  "IKETCP" (49 4b 45 54 43 50)                      §4
//   every message, both directions:           Length (2 octets, network order, counts itself)   §3
//     IKE  (§3.1):  Length | 00 00 00 00 (non-ESP marker) | IKE message
//     ESP  (§3.2):  Length | ESP packet (SPI first, never zero, so never a marker)
//     NAT-keepalive (§6.6): 00 03 ff — SHOULD NOT be sent over TCP, MUST be silently dropped on receipt
//
// The 16-bit Length bounds a frame at 65535 octets, itself included. TLS (Appendix A) wraps the whole stream, prefix
// included, so this codec runs unchanged on the TLS plaintext. Reconnection (§6.1) is the originator's job and starts a
// new stream with a new prefix: one FrameDecoder per connection.

import { NattError, rangeError, typeError } from '../errors';
import { boolOption, intOption, readOptions } from '../core/options';

/** The 6-octet stream prefix "IKETCP" (RFC 9329 §4). */
const PREFIX = Buffer.from('IKETCP', 'latin1');
/** Octets in the stream prefix. */
export const STREAM_PREFIX_LENGTH = 6;
/** The longest frame the 16-bit Length field can describe, the field included (RFC 9329 §3). */
export const MAX_FRAME_LENGTH = 0xffff;
/** The shortest Length value that frames anything: the field counts itself, so 0 and 1 cannot be framed at all. */
export const MIN_FRAME_LENGTH = 2;
/** Header in front of an IKE message: Length and the 4-octet non-ESP marker (RFC 9329 §3.1). */
export const IKE_FRAME_HEADER_LENGTH = 6;
/** Header in front of an ESP packet: Length only (RFC 9329 §3.2). */
export const ESP_FRAME_HEADER_LENGTH = 2;
/** The smallest `maxFrameLength` a decoder accepts: a frame that holds an IKE header (Length, marker, 28-octet IKE header). */
export const MIN_MAX_FRAME_LENGTH = IKE_FRAME_HEADER_LENGTH + 28;
/** An ESP packet must be longer than its 8-octet header (SPI, sequence number), as on UDP (src/natt/demux.ts). */
const ESP_HEADER = 8;
const KEEPALIVE_BYTE = 0xff;

/** What a frame carries. */
export type FrameKind = 'ike' | 'esp' | 'keepalive';

/** A decoded frame. `payload` / `packet` are views (no copy) into the pushed chunk, or into the decoder's own buffer
 * when the frame straddled chunks. */
export type TcpFrame =
  /** An IKE message (marker removed). */
  | { readonly kind: 'ike'; readonly payload: Uint8Array }
  /** An ESP packet, SPI first. */
  | { readonly kind: 'esp'; readonly packet: Uint8Array }
  /** The 1-octet 0xFF NAT-keepalive (RFC 9329 §6.6: to be dropped silently; the decoder reports it so it can be counted). */
  | { readonly kind: 'keepalive' };

/**
 * Why a well-framed frame was dropped (the stream stays in step; the decoder goes on): `'empty'` Length 2;
 * `'markerOnly'` a non-ESP marker and no IKE message; `'short'` anything else too short to be IKE, ESP or a keepalive
 * (1 octet other than 0xFF, 2–3 octets, an ESP packet of 8 octets or fewer). Linux's espintcp drops these too.
 */
export type FrameDropReason = 'empty' | 'short' | 'markerOnly';

/**
 * Why a stream failed (the decoder stops; the caller closes that connection): `'badPrefix'` the responder's stream did
 * not start with "IKETCP"; `'lengthBelowMinimum'` a Length of 0 or 1 (cannot be framed: the field counts itself);
 * `'lengthOverLimit'` a Length over the decoder's `maxFrameLength`; `'truncated'` end() came inside the prefix or a frame.
 */
export type FrameFailReason = 'badPrefix' | 'lengthBelowMinimum' | 'lengthOverLimit' | 'truncated';

export const FRAME_DROP_REASONS: readonly FrameDropReason[] = Object.freeze(['empty', 'short', 'markerOnly']);
export const FRAME_FAIL_REASONS: readonly FrameFailReason[] = Object.freeze(['badPrefix', 'lengthBelowMinimum', 'lengthOverLimit', 'truncated']);

/** How and where a stream failed. */
export interface FrameDecoderFailure {
  readonly reason: FrameFailReason;
  /** Offset in the stream (from its first octet, the prefix included) of the octet or frame that broke the rule. */
  readonly offset: number;
  readonly message: string;
}

export interface FrameDecoderOptions {
  /**
   * Required. `true` on the TCP responder (the accepting side): the stream must open with "IKETCP" (RFC 9329 §4; the
   * responder "MUST wait for the entire stream prefix" before parsing, §6.1). `false` on the TCP originator, which
   * sends the prefix and never receives one.
   */
  expectPrefix: boolean;
  /**
   * The longest frame accepted, its Length value (header included): MIN_MAX_FRAME_LENGTH..65535, default 65535. A
   * longer one fails the stream with `'lengthOverLimit'`. A partial frame is held in one buffer of exactly its length,
   * so this bounds what one connection buffers.
   */
  maxFrameLength?: number;
}

export interface FrameDecoderStats {
  /** Octets of whole frames (and the prefix) parsed; after a failure, the octets before the failure's offset. */
  bytes: number;
  /** After a failure: the octets pushed from the failure's offset on, not used. */
  ignored: number;
  /** Frames returned, by kind. */
  ike: number;
  esp: number;
  keepalive: number;
  /** Well-framed frames dropped, by reason. */
  dropped: Record<FrameDropReason, number>;
  /** The failure reason, or null while the stream is sound. */
  failed: FrameFailReason | null;
  /** Octets of a partial frame held right now (at most maxFrameLength − 1). */
  buffered: number;
}

const EMPTY: readonly TcpFrame[] = Object.freeze([]);
const KEEPALIVE_FRAME: TcpFrame = Object.freeze({ kind: 'keepalive' });

/**
 * A strict streaming decoder for one RFC 9329 connection. Feed it the TCP stream in chunks of any size with push();
 * each call returns the frames completed by that chunk. Bad input never throws: a bad prefix or Length puts the
 * decoder into a failed state (`failure`, counted in stats()), frames completed before the bad octet are still
 * returned, and later input is ignored; the caller closes that one connection. Frames inside one chunk are returned
 * as views of it (no copy); only a frame that straddles chunks is copied, into a buffer of exactly its length.
 */
export class FrameDecoder {
  readonly expectPrefix: boolean;
  readonly maxFrameLength: number;
  /** Octets of the prefix matched so far (6 when done or not expected). */
  #prefixAt: number;
  /** Stream offset of the next octet pushed. */
  #offset = 0;
  /** The first octet of a Length field split across chunks, or -1. */
  #hi = -1;
  /** Stream offset of the current frame's Length field. */
  #frameStart = 0;
  /** The body (after Length) of a frame straddling chunks, and how much of it has arrived. */
  #body: Buffer | null = null;
  #fill = 0;
  #failure: FrameDecoderFailure | null = null;
  #ended = false;
  /** Octets pushed in all (parsed, held or ignored). */
  #pushed = 0;
  #ike = 0;
  #esp = 0;
  #keepalive = 0;
  #dropped: Record<FrameDropReason, number> = { empty: 0, short: 0, markerOnly: 0 };

  /** Options are checked at once (own properties only, unknown names refused; TypeError / RangeError naming the field). */
  constructor(options: FrameDecoderOptions) {
    if (options === undefined) throw typeError('options', 'an object with expectPrefix', options);
    const o = readOptions(options, ['expectPrefix', 'maxFrameLength'] as const);
    this.expectPrefix = boolOption(o.expectPrefix, 'expectPrefix');
    this.maxFrameLength = intOption(o.maxFrameLength, 'maxFrameLength', MIN_MAX_FRAME_LENGTH, MAX_FRAME_LENGTH, MAX_FRAME_LENGTH);
    this.#prefixAt = this.expectPrefix ? 0 : STREAM_PREFIX_LENGTH;
  }

  /** The failure, or null while the stream is sound. */
  get failure(): FrameDecoderFailure | null {
    return this.#failure;
  }

  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Octets of a partial frame held right now. */
  get buffered(): number {
    return (this.#hi >= 0 ? 1 : 0) + (this.#body !== null ? ESP_FRAME_HEADER_LENGTH + this.#fill : 0);
  }

  /**
   * Feed the next chunk of the stream; returns the frames it completed, in order (a frozen empty array when none).
   * Throws only for a caller's mistake: a chunk that is not a Uint8Array, or a push after end().
   */
  push(chunk: Uint8Array): readonly TcpFrame[] {
    if (!(chunk instanceof Uint8Array)) throw typeError('chunk', 'a Buffer or Uint8Array', chunk);
    if (this.#ended) throw new NattError('ERR_STREAM_WRITE_AFTER_END', 'push() after end(): the stream is over');
    this.#pushed += chunk.length;
    if (this.#failure !== null) return EMPTY;
    const n = chunk.length;
    const base = this.#offset;
    let out: TcpFrame[] | null = null;
    let i = 0;
    // RFC 9329 §4: the responder's stream opens with "IKETCP"; a wrong octet fails it at once (no need to wait for 6).
    while (this.#prefixAt < STREAM_PREFIX_LENGTH && i < n) {
      if (chunk[i] !== PREFIX[this.#prefixAt]) {
        const got = chunk[i].toString(16).padStart(2, '0');
        return this.#fail(out, 'badPrefix', base + i, `the stream does not open with the RFC 9329 prefix "IKETCP" (octet ${base + i} is 0x${got})`);
      }
      this.#prefixAt++;
      i++;
    }
    while (i < n) {
      if (this.#body !== null) {
        // The rest of a frame that straddles chunks: copy what this chunk holds of it.
        const body = this.#body;
        const take = Math.min(body.length - this.#fill, n - i);
        body.set(i === 0 && take === n ? chunk : chunk.subarray(i, i + take), this.#fill);
        this.#fill += take;
        i += take;
        if (this.#fill < body.length) break;
        this.#body = null;
        out = this.#frame(body, out);
        continue;
      }
      let len: number;
      if (this.#hi >= 0) {
        len = (this.#hi << 8) | chunk[i];
        i += 1;
        this.#hi = -1;
      } else if (n - i >= 2) {
        this.#frameStart = base + i;
        len = (chunk[i] << 8) | chunk[i + 1];
        i += 2;
      } else {
        this.#frameStart = base + i;
        this.#hi = chunk[i];
        i += 1;
        break;
      }
      if (len < MIN_FRAME_LENGTH) {
        return this.#fail(out, 'lengthBelowMinimum', this.#frameStart, `frame at octet ${this.#frameStart}: Length ${len} is below 2 (it counts itself)`);
      }
      if (len > this.maxFrameLength) {
        return this.#fail(out, 'lengthOverLimit', this.#frameStart, `frame at octet ${this.#frameStart}: Length ${len} is over the limit of ${this.maxFrameLength}`);
      }
      const bodyLength = len - ESP_FRAME_HEADER_LENGTH;
      if (n - i >= bodyLength) {
        out = this.#frame(chunk.subarray(i, i + bodyLength), out);
        i += bodyLength;
      } else {
        // Held at most to the frame's own length (≤ maxFrameLength): every octet is written before the frame is returned.
        const body = Buffer.allocUnsafe(bodyLength);
        body.set(chunk.subarray(i), 0);
        this.#body = body;
        this.#fill = n - i;
        i = n;
      }
    }
    this.#offset = base + n;
    return out ?? EMPTY;
  }

  /**
   * The stream ended (TCP FIN). Returns the failure, if any: a stream that ends inside the prefix or a frame fails
   * with `'truncated'`; one that ends between frames (or before any octet) is clean and returns null.
   */
  end(): FrameDecoderFailure | null {
    if (this.#ended) return this.#failure;
    this.#ended = true;
    if (this.#failure !== null) return this.#failure;
    if (this.#prefixAt > 0 && this.#prefixAt < STREAM_PREFIX_LENGTH) {
      this.#setFailure('truncated', 0, `the stream ended inside the prefix, after ${this.#prefixAt} of 6 octets`);
    } else if (this.#hi >= 0 || this.#body !== null) {
      this.#setFailure('truncated', this.#frameStart, `the stream ended inside the frame at octet ${this.#frameStart}`);
      this.#body = null;
      this.#hi = -1;
    }
    return this.#failure;
  }

  /** A snapshot of the counters. */
  stats(): FrameDecoderStats {
    const bytes = this.#failure !== null ? this.#failure.offset : this.#pushed - this.buffered;
    return {
      bytes,
      ignored: this.#failure !== null ? this.#pushed - bytes : 0,
      ike: this.#ike,
      esp: this.#esp,
      keepalive: this.#keepalive,
      dropped: { ...this.#dropped },
      failed: this.#failure?.reason ?? null,
      buffered: this.buffered,
    };
  }

  /** One frame's body (after Length): classify it like a NAT-T datagram (RFC 9329 §3 uses RFC 3948's first-4-octets rule). */
  #frame(body: Uint8Array, out: TcpFrame[] | null): TcpFrame[] | null {
    const len = body.length;
    let f: TcpFrame;
    if (len === 0) return this.#drop('empty', out);
    if (len === 1) {
      if (body[0] !== KEEPALIVE_BYTE) return this.#drop('short', out);
      this.#keepalive++;
      f = KEEPALIVE_FRAME;
    } else if (len < 4) {
      return this.#drop('short', out);
    } else if ((body[0] | body[1] | body[2] | body[3]) === 0) {
      if (len === 4) return this.#drop('markerOnly', out);
      this.#ike++;
      f = { kind: 'ike', payload: body.subarray(4) };
    } else {
      if (len <= ESP_HEADER) return this.#drop('short', out);
      this.#esp++;
      f = { kind: 'esp', packet: body };
    }
    if (out === null) return [f];
    out.push(f);
    return out;
  }

  #drop(reason: FrameDropReason, out: TcpFrame[] | null): TcpFrame[] | null {
    this.#dropped[reason]++;
    return out;
  }

  #fail(out: TcpFrame[] | null, reason: FrameFailReason, offset: number, message: string): readonly TcpFrame[] {
    this.#setFailure(reason, offset, message);
    this.#body = null;
    this.#hi = -1;
    return out ?? EMPTY;
  }

  #setFailure(reason: FrameFailReason, offset: number, message: string): void {
    this.#failure = Object.freeze({ reason, offset, message });
  }
}

function checkInto(buf: unknown, offset: unknown, need: number): { buf: Buffer; offset: number } {
  if (!(buf instanceof Uint8Array)) throw typeError('buf', 'a Buffer or Uint8Array', buf);
  const off = intOption(offset, 'offset', 0, buf.length, 0);
  if (buf.length - off < need) throw rangeError('buf', `room for ${need} bytes at offset ${off}`, buf);
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return { buf: b, offset: off };
}

function checkBody(kind: 'ike' | 'esp', body: unknown): Uint8Array {
  const field = kind === 'ike' ? 'payload' : 'packet';
  if (!(body instanceof Uint8Array)) throw typeError(field, 'a Buffer or Uint8Array', body);
  if (kind === 'ike') {
    if (body.length < 1 || body.length > MAX_FRAME_LENGTH - IKE_FRAME_HEADER_LENGTH) {
      throw rangeError(field, `an IKE message of 1 to ${MAX_FRAME_LENGTH - IKE_FRAME_HEADER_LENGTH} bytes`, body);
    }
  } else {
    if (body.length <= ESP_HEADER || body.length > MAX_FRAME_LENGTH - ESP_FRAME_HEADER_LENGTH) {
      throw rangeError(field, `an ESP packet of ${ESP_HEADER + 1} to ${MAX_FRAME_LENGTH - ESP_FRAME_HEADER_LENGTH} bytes`, body);
    }
    // SPI 0 is reserved (RFC 4303 §2.1), and the receiver would read 4 zero octets as the non-ESP marker.
    if ((body[0] | body[1] | body[2] | body[3]) === 0) throw rangeError(field, 'an ESP packet with a non-zero SPI', body);
  }
  return body;
}

function writeHeader(kind: 'ike' | 'esp', bodyLength: number, buf: Buffer, offset: number): number {
  const h = kind === 'ike' ? IKE_FRAME_HEADER_LENGTH : ESP_FRAME_HEADER_LENGTH;
  buf.writeUInt16BE(h + bodyLength, offset);
  if (kind === 'ike') buf.writeUInt32BE(0, offset + 2);
  return h;
}

/** A fresh copy of the 6-octet stream prefix "IKETCP", which the TCP originator sends once, first (RFC 9329 §4). */
export function streamPrefix(): Buffer {
  return Buffer.from(PREFIX);
}

/**
 * The header of one IKE or ESP frame for a body of `bodyLength` octets: 6 octets for IKE (Length, non-ESP marker), 2
 * for ESP (Length). Written into `buf` at `offset` when given (zero-copy: put the body right behind it in the same
 * slab), else into a new Buffer; returns the header's bytes (a view of `buf`).
 */
export function frameHeader(kind: 'ike' | 'esp', bodyLength: number, buf?: Uint8Array, offset?: number): Buffer {
  if (kind !== 'ike' && kind !== 'esp') throw rangeError('kind', "'ike' or 'esp'", kind);
  const h = kind === 'ike' ? IKE_FRAME_HEADER_LENGTH : ESP_FRAME_HEADER_LENGTH;
  const min = kind === 'ike' ? 1 : ESP_HEADER + 1;
  intOption(bodyLength, 'bodyLength', min, MAX_FRAME_LENGTH - h);
  const into = buf === undefined ? { buf: Buffer.allocUnsafe(h), offset: 0 } : checkInto(buf, offset, h);
  writeHeader(kind, bodyLength, into.buf, into.offset);
  return into.buf.subarray(into.offset, into.offset + h);
}

/**
 * One IKE message framed for a gathered write (`socket.cork(); write(h); write(p); socket.uncork()`, or writev):
 * `[header, payload]`, the payload itself (not copied) behind a new 6-octet header.
 */
export function frameIke(payload: Uint8Array): [Buffer, Uint8Array] {
  const body = checkBody('ike', payload);
  const h = Buffer.allocUnsafe(IKE_FRAME_HEADER_LENGTH);
  writeHeader('ike', body.length, h, 0);
  return [h, body];
}

/** One ESP packet (SPI first) framed for a gathered write: `[header, packet]`, the packet not copied. */
export function frameEsp(packet: Uint8Array): [Buffer, Uint8Array] {
  const body = checkBody('esp', packet);
  const h = Buffer.allocUnsafe(ESP_FRAME_HEADER_LENGTH);
  writeHeader('esp', body.length, h, 0);
  return [h, body];
}

/**
 * One whole frame, header and body, written into `buf` at `offset` (or into a new Buffer): returns the frame's bytes.
 * The body is copied; `'keepalive'` takes no payload and writes 00 03 ff (RFC 9329 §6.6: SHOULD NOT be sent over TCP;
 * it exists for tests and for peers that insist).
 */
export function encodeFrame(kind: FrameKind, payload?: Uint8Array, buf?: Uint8Array, offset?: number): Buffer {
  if (kind === 'keepalive') {
    if (payload !== undefined) throw typeError('payload', 'undefined for a keepalive', payload);
    const into = buf === undefined ? { buf: Buffer.allocUnsafe(3), offset: 0 } : checkInto(buf, offset, 3);
    into.buf.writeUInt16BE(3, into.offset);
    into.buf[into.offset + 2] = KEEPALIVE_BYTE;
    return into.buf.subarray(into.offset, into.offset + 3);
  }
  if (kind !== 'ike' && kind !== 'esp') throw rangeError('kind', "'ike', 'esp' or 'keepalive'", kind);
  const body = checkBody(kind, payload);
  const h = kind === 'ike' ? IKE_FRAME_HEADER_LENGTH : ESP_FRAME_HEADER_LENGTH;
  const total = h + body.length;
  const into = buf === undefined ? { buf: Buffer.allocUnsafe(total), offset: 0 } : checkInto(buf, offset, total);
  writeHeader(kind, body.length, into.buf, into.offset);
  into.buf.set(body, into.offset + h);
  return into.buf.subarray(into.offset, into.offset + total);
}

/** A fresh copy of the NAT-keepalive frame 00 03 ff (RFC 9329 §6.6; not to be sent over TCP unless a peer needs it). */
export function keepaliveFrame(): Buffer {
  return encodeFrame('keepalive');
}
