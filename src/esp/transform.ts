// EspTransform: ESP (RFC 4303) seal/open for one SA: AEAD, GMAC, CBC+HMAC and NULL+HMAC, ESN, padding, anti-replay.

import { EventEmitter } from 'node:events';
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomFillSync,
  timingSafeEqual,
  type CipherGCM,
  type DecipherGCM,
  type KeyObject,
} from 'node:crypto';
import { inspect } from 'node:util';
import type { EncryptionParams, IntegrityParams } from '../sadb/types';
import { NattError, rangeError, typeError } from '../errors';
import { readOptions } from '../core/options';
import { encryptionSuite, hmacDigest, integritySuite, type EncryptionSuite, type IntegritySuite } from './suites';
import { REPLAY_REPLAYED, REPLAY_TOO_OLD, ReplayWindow } from './replay';

const TWO32 = 0x1_0000_0000;
/** ESP header: SPI (4) + sequence number (4). */
const HDR = 8;

/** Why `open()` refused a packet. Each has its own counter in `stats().drops`. */
export type EspDropReason =
  /** Shorter than header + IV + trailer + ICV. */
  | 'truncated'
  /** The encrypted part is not a whole number of cipher blocks (CBC). */
  | 'bad-length'
  /** The SPI field is not this SA's. */
  | 'spi-mismatch'
  /** Below the anti-replay window (or sequence number 0). */
  | 'too-old'
  /** Inside the window and already received. */
  | 'replayed'
  /** The ICV did not verify (tampered, wrong key, or wrong inferred ESN high bits). */
  | 'auth-failed'
  /** Pad Length too large, or padding bytes not 1, 2, 3, ... (RFC 4303 §2.4). */
  | 'bad-padding';

/** Every drop reason, in a stable order (for counters and tables). */
export const ESP_DROP_REASONS: readonly EspDropReason[] = [
  'truncated',
  'bad-length',
  'spi-mismatch',
  'too-old',
  'replayed',
  'auth-failed',
  'bad-padding',
];

/**
 * What `open()` returns: never throws for bad packets. `seq` is the full sequence number (64-bit with ESN): a
 * number while it is below 2^53, a bigint above. `payload` is a view, not a copy: into the decrypted buffer (owned by
 * the caller from then on), or for GMAC and NULL, which do not encrypt, into the packet given to open().
 * Next Header 59 marks a dummy packet (RFC 4303 §2.6) that the caller should discard silently.
 */
export type EspOpenResult =
  | {
      ok: true;
      payload: Buffer;
      nextHeader: number;
      seq: number | bigint;
      /** The packet's number is the highest seen so far on this SA (only such a packet may move a NAT-T peer). */
      advanced: boolean;
    }
  | { ok: false; reason: EspDropReason };

export interface EspTransformOptions {
  /** The SA's SPI (1..2^32-1; 1-255 are reserved by RFC 4303 but accepted). */
  spi: number;
  /** Encryption transform; AEADs take KEYMAT (key ‖ 4-byte salt). */
  encryption: EncryptionParams;
  /** Integrity transform for CBC and NULL; absent or 'none' for AEADs. */
  integrity?: IntegrityParams;
  /** Extended sequence numbers (RFC 4303 §2.2.1). */
  esn?: boolean;
  /** Anti-replay window in packets (0 = off, default 64, up to 65536). */
  replayWindow?: number;
  /** The last outbound sequence number already used (default 0: the first packet is 1). For SA migration. */
  outboundSeq?: number | bigint;
  /** Permit a CBC cipher with no integrity (confidentiality only; forgeable). Default false. */
  allowNoIntegrity?: boolean;
}

const TRANSFORM_OPTIONS = ['spi', 'encryption', 'integrity', 'esn', 'replayWindow', 'outboundSeq', 'allowNoIntegrity'] as const;

export interface EspSealOptions {
  /** Explicit IV bytes (8 for AEAD/GMAC, 16 for CBC). Default: the 64-bit sequence number for AEAD/GMAC
   *  (unique per key, RFC 4106 §3.1), random for CBC (RFC 3602 §2.1). Give it only for test vectors. */
  iv?: Uint8Array;
  /** Sequence number for this packet (a number, or a bigint with all 64 bits under ESN) instead of the SA's
   *  own counter, which it does not advance. Only for test vectors and replay tests: an AEAD's default IV is the
   *  sequence number, so sealing two different payloads with the same `seq` and no `iv` reuses a GCM/ChaCha nonce. */
  seq?: number | bigint;
  /** Pad Length to use (default the minimum). Must keep the alignment and be ≤ 255 (for vectors, TFC). */
  padLength?: number;
  /**
   * Write the packet into this buffer at `offset` (default 0) instead of a new one, and return a view of it: for
   * a caller that recycles send buffers, or puts a header (the non-IKE marker) in front. It must have room for
   * `sealedLength(payload.length)` bytes, and must not be reused before a send that uses it has completed.
   */
  into?: Buffer;
  offset?: number;
}

/** The hard expire raised when the outbound sequence number reaches its end. */
export interface EspExpireEvent {
  kind: 'hard';
  reason: 'seq-exhausted';
  spi: number;
}

export interface EspTransformEvents {
  expire: [EspExpireEvent];
}

/** Counters of one transform. `drops` has one entry per EspDropReason. */
export interface EspStats {
  sealed: number;
  opened: number;
  drops: Record<EspDropReason, number>;
}

/** Thrown by seal() once every sequence number has been used: the SA must be replaced (rekeyed). */
export class EspSequenceExhaustedError extends NattError {
  constructor(spi: number, esn: boolean) {
    super(
      'ERR_NATT_SEQ_EXHAUSTED',
      `ESP SA 0x${spi.toString(16).padStart(8, '0')} has used its last ${esn ? '64' : '32'}-bit sequence number: ` +
        'RFC 4303 forbids wrapping; install a new SA (rekey) to keep sending',
    );
  }
}

/** A KeyObject holding a copy of `bytes`; the temporary Buffer is wiped so no stray copy of the key stays on the heap. */
function secretKey(bytes: Uint8Array): KeyObject {
  const tmp = Buffer.from(bytes);
  try {
    return createSecretKey(tmp);
  } finally {
    tmp.fill(0);
  }
}

// A CSPRNG pool for CBC IVs: one randomFillSync per 4 KiB instead of one per packet.
const ivPool = Buffer.alloc(4096);
let ivPoolOffset = ivPool.length;
function takeRandom(out: Buffer, offset: number, n: number): void {
  if (ivPoolOffset + n > ivPool.length) {
    randomFillSync(ivPool);
    ivPoolOffset = 0;
  }
  ivPool.copy(out, offset, ivPoolOffset, ivPoolOffset + n);
  ivPool.fill(0, ivPoolOffset, ivPoolOffset + n); // an IV handed out is not kept around
  ivPoolOffset += n;
}

/** ESP for one SA: `seal()` builds packets from SPI to ICV, `open()` checks and decrypts them. */
export class EspTransform extends EventEmitter<EspTransformEvents> {
  readonly spi: number;
  readonly esn: boolean;
  readonly encryptionAlgorithm: EncryptionParams['algorithm'];
  readonly integrityAlgorithm: IntegrityParams['algorithm'];
  /** The inbound anti-replay window (read its `highest`; `reset()` it when migrating an SA). */
  readonly replay: ReplayWindow;
  /** Bytes of overhead around a payload before padding: header + IV + trailer (2) + ICV. */
  readonly overhead: number;

  readonly #enc: EncryptionSuite;
  readonly #integ: IntegritySuite | null;
  readonly #cipherKey: KeyObject | null;
  readonly #authKey: KeyObject | null;
  readonly #salt: Buffer;
  readonly #icvLength: number;
  readonly #nonce: Buffer; // salt ‖ IV, rewritten per packet (AEAD/GMAC)
  readonly #tagOpts: { authTagLength: number };
  readonly #aad: Buffer; // SPI ‖ [seq high] ‖ seq low (AEAD)
  readonly #seqHi = Buffer.alloc(4); // appended to the HMAC input under ESN
  #outHi = 0;
  #outLo = 0;
  #exhausted = false;
  #expired = false;
  #sealed = 0;
  #opened = 0;
  readonly #drops: Record<EspDropReason, number>;

  constructor(options: EspTransformOptions) {
    super();
    if (options === null || typeof options !== 'object') throw typeError('options', 'an object', options);
    // Own properties only, unknown names refused (a polluted Object.prototype.replayWindow must not turn replay off).
    const opts = readOptions(options, TRANSFORM_OPTIONS) as EspTransformOptions;
    const { spi } = opts;
    if (typeof spi !== 'number' || !Number.isInteger(spi)) throw typeError('spi', 'an integer', spi);
    if (spi < 1 || spi > 0xffff_ffff) throw rangeError('spi', '1..4294967295', spi);
    if (opts.encryption === null || typeof opts.encryption !== 'object') throw typeError('encryption', 'an object', opts.encryption);
    if (opts.integrity !== undefined && (opts.integrity === null || typeof opts.integrity !== 'object')) {
      throw typeError('integrity', 'an object', opts.integrity);
    }
    const encryption = readOptions(opts.encryption, ['algorithm', 'key'] as const, 'encryption') as EncryptionParams;
    const integrity = opts.integrity && (readOptions(opts.integrity, ['algorithm', 'key'] as const, 'integrity') as IntegrityParams);
    const allowNoIntegrity = opts.allowNoIntegrity === undefined ? false : opts.allowNoIntegrity;
    if (typeof allowNoIntegrity !== 'boolean') throw typeError('allowNoIntegrity', 'true or false', allowNoIntegrity);
    if (opts.esn !== undefined && typeof opts.esn !== 'boolean') throw typeError('esn', 'a boolean', opts.esn);
    const enc = encryptionSuite(encryption.algorithm, encryption.key);
    const integ = integrity ? integritySuite(integrity.algorithm, integrity.key) : null;
    if ((enc.kind === 'aead' || enc.kind === 'gmac') && integ) {
      throw rangeError('integrity.algorithm', `'none' (or absent) with the combined-mode ${enc.algorithm}`, integ.algorithm);
    }
    if (enc.kind === 'null' && !integ) {
      throw rangeError('integrity.algorithm', "an HMAC with NULL encryption (RFC 4303 forbids NULL and no integrity)", 'none');
    }
    if (enc.kind === 'cbc' && !integ && !allowNoIntegrity) {
      // A forged packet would be decrypted and accepted, and could move the window to its end (D5).
      throw typeError('integrity', `an HMAC with ${enc.algorithm} (encryption without integrity can be forged: allowNoIntegrity: true permits it)`, integrity);
    }
    this.spi = spi;
    this.esn = opts.esn === true;
    this.encryptionAlgorithm = enc.algorithm;
    this.integrityAlgorithm = integ ? integ.algorithm : 'none';
    this.#enc = enc;
    this.#integ = integ;
    const key = encryption.key;
    this.#cipherKey = enc.keyLength > 0 ? secretKey(key.subarray(0, enc.keyLength)) : null;
    this.#salt = Buffer.from(key.subarray(enc.keyLength, enc.keyLength + enc.saltLength));
    this.#authKey = integ && integrity ? secretKey(integrity.key) : null;
    this.#icvLength = enc.icvLength + (integ ? integ.icvLength : 0);
    this.overhead = HDR + enc.ivLength + 2 + this.#icvLength;
    this.#nonce = Buffer.alloc(12);
    this.#tagOpts = { authTagLength: enc.icvLength || 16 };
    this.#salt.copy(this.#nonce, 0);
    this.#aad = Buffer.alloc(this.esn ? 12 : 8);
    this.#aad.writeUInt32BE(spi, 0);
    this.replay = new ReplayWindow({ size: opts.replayWindow ?? 64, esn: this.esn });
    if (opts.outboundSeq !== undefined) {
      const [hi, lo] = this.#splitSeq(opts.outboundSeq, 'outboundSeq');
      this.#outHi = hi;
      this.#outLo = lo;
      this.#exhausted = lo === 0xffff_ffff && (!this.esn || hi === 0xffff_ffff);
    }
    const drops = {} as Record<EspDropReason, number>;
    for (const r of ESP_DROP_REASONS) drops[r] = 0;
    this.#drops = drops;
  }

  /** The last outbound sequence number used (0 before the first seal), all 64 bits under ESN. */
  get outboundSeq(): bigint {
    return (BigInt(this.#outHi) << 32n) | BigInt(this.#outLo);
  }

  /** How many bytes seal() produces for a payload of `payloadLength` bytes (minimal padding). */
  sealedLength(payloadLength: number): number {
    const align = this.#enc.align;
    const body = payloadLength + 2;
    return HDR + this.#enc.ivLength + body + ((align - (body % align)) % align) + this.#icvLength;
  }

  /** Counters: packets sealed, opened, and drops by reason (a fresh object each call). */
  stats(): EspStats {
    return { sealed: this.#sealed, opened: this.#opened, drops: { ...this.#drops } };
  }

  /**
   * Build the ESP packet (SPI to ICV) carrying `payload` with Next Header `nextHeader`. Uses the SA's next
   * sequence number unless `opts.seq` is given. Throws EspSequenceExhaustedError when the sequence space is used up.
   */
  seal(payload: Uint8Array, nextHeader: number, opts?: EspSealOptions): Buffer {
    if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Uint8Array', payload);
    if (!(nextHeader >= 0 && nextHeader <= 255 && (nextHeader | 0) === nextHeader)) {
      throw rangeError('nextHeader', 'an integer in 0..255', nextHeader);
    }
    const enc = this.#enc;
    const ivLen = enc.ivLength;
    const align = enc.align;
    const minPad = (align - ((payload.length + 2) % align)) % align;
    let pad = minPad;
    if (opts?.padLength !== undefined) {
      pad = opts.padLength;
      if (!Number.isInteger(pad) || pad < minPad || pad > 255 || (pad - minPad) % align !== 0) {
        throw rangeError('padLength', `${minPad} + a multiple of ${align}, at most 255`, pad);
      }
    }
    const ptOff = HDR + ivLen;
    const ptLen = payload.length + pad + 2;
    const ptEnd = ptOff + ptLen;
    if (opts?.iv !== undefined && (!(opts.iv instanceof Uint8Array) || opts.iv.length !== ivLen)) {
      throw rangeError('iv', `${ivLen} bytes for ${enc.algorithm}`, opts.iv);
    }
    const out = opts?.into === undefined ? Buffer.allocUnsafe(ptEnd + this.#icvLength) : this.#view(opts, ptEnd + this.#icvLength);

    // Every argument is checked by now: only a packet that will be built consumes a sequence number.
    let hi: number;
    let lo: number;
    if (opts?.seq !== undefined) {
      [hi, lo] = this.#splitSeq(opts.seq, 'seq');
      if (hi === 0 && lo === 0) throw rangeError('seq', 'at least 1', opts.seq);
    } else {
      if (this.#exhausted) {
        if (!this.#expired) this.#expire(); // constructed at the end already: say so on the first refusal
        throw new EspSequenceExhaustedError(this.spi, this.esn);
      }
      hi = this.#outHi;
      lo = this.#outLo + 1;
      if (lo === TWO32) {
        lo = 0;
        hi++;
      }
      this.#outHi = hi;
      this.#outLo = lo;
      if (lo === 0xffff_ffff && (!this.esn || hi === 0xffff_ffff)) {
        this.#exhausted = true; // this packet is the last one: say so now, so the SA gets replaced in time
        this.#expire();
      }
    }
    out.writeUInt32BE(this.spi, 0);
    out.writeUInt32BE(lo, 4);
    if (opts?.iv !== undefined) {
      out.set(opts.iv, HDR);
    } else if (enc.kind === 'cbc') {
      takeRandom(out, HDR, ivLen);
    } else if (ivLen === 8) {
      out.writeUInt32BE(hi, HDR);
      out.writeUInt32BE(lo, HDR + 4);
    }
    out.set(payload, ptOff);
    const trailer = ptOff + payload.length;
    for (let i = 0; i < pad; i++) out[trailer + i] = i + 1; // RFC 4303 §2.4 default padding: 1, 2, 3, ...
    out[ptEnd - 2] = pad;
    out[ptEnd - 1] = nextHeader;

    switch (enc.kind) {
      case 'aead': {
        const aad = this.#setAad(hi, lo);
        const c = createCipheriv(enc.cipher as 'aes-128-gcm', this.#cipherKey!, this.#setNonce(out), this.#tagOpts) as CipherGCM;
        c.setAAD(aad);
        out.set(c.update(out.subarray(ptOff, ptEnd)), ptOff);
        c.final();
        out.set(c.getAuthTag(), ptEnd);
        break;
      }
      case 'gmac': {
        // RFC 4543 §3.3: everything is authenticated data (SPI ‖ [seq high] ‖ seq low ‖ IV ‖ payload ‖ trailer).
        const c = createCipheriv(enc.cipher as 'aes-128-gcm', this.#cipherKey!, this.#setNonce(out), this.#tagOpts);
        if (this.esn) c.setAAD(this.#gmacAad(out, hi, ptEnd));
        else c.setAAD(out.subarray(0, ptEnd));
        c.final();
        out.set(c.getAuthTag(), ptEnd);
        break;
      }
      case 'cbc': {
        const c = createCipheriv(enc.cipher, this.#cipherKey!, out.subarray(HDR, HDR + 16));
        c.setAutoPadding(false);
        out.set(c.update(out.subarray(ptOff, ptEnd)), ptOff);
        c.final();
        if (this.#integ) this.#mac(out, ptEnd, hi).copy(out, ptEnd, 0, this.#integ.icvLength);
        break;
      }
      case 'null':
        this.#mac(out, ptEnd, hi).copy(out, ptEnd, 0, this.#integ!.icvLength);
        break;
    }
    this.#sealed++;
    return out;
  }

  /**
   * Verify and decrypt one ESP packet (SPI to ICV). The replay window is checked before the ICV and updated
   * only after it verified. Never throws for a bad packet: it returns `{ ok: false, reason }` and counts it.
   */
  open(packet: Uint8Array): EspOpenResult {
    if (!(packet instanceof Uint8Array)) throw typeError('packet', 'a Uint8Array', packet);
    const pkt = Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.length);
    const enc = this.#enc;
    const ivLen = enc.ivLength;
    const icvLen = this.#icvLength;
    const ptOff = HDR + ivLen;
    const ptEnd = pkt.length - icvLen;
    const ptLen = ptEnd - ptOff;
    if (ptLen < 2) return this.#drop('truncated');
    if (enc.kind === 'cbc' && ptLen % 16 !== 0) return this.#drop('bad-length');
    if (pkt.readUInt32BE(0) !== this.spi) return this.#drop('spi-mismatch');
    const lo = pkt.readUInt32BE(4);
    const hi = this.replay.check(lo);
    if (hi < 0) return this.#drop(hi === REPLAY_TOO_OLD ? 'too-old' : 'replayed');

    let plain: Buffer;
    switch (enc.kind) {
      case 'aead': {
        const aad = this.#setAad(hi, lo);
        const d = createDecipheriv(enc.cipher as 'aes-128-gcm', this.#cipherKey!, this.#setNonce(pkt), this.#tagOpts) as DecipherGCM;
        d.setAAD(aad);
        d.setAuthTag(pkt.subarray(ptEnd));
        plain = d.update(pkt.subarray(ptOff, ptEnd));
        try {
          d.final();
        } catch {
          return this.#drop('auth-failed');
        }
        break;
      }
      case 'gmac': {
        const d = createDecipheriv(enc.cipher as 'aes-128-gcm', this.#cipherKey!, this.#setNonce(pkt), this.#tagOpts);
        if (this.esn) d.setAAD(this.#gmacAad(pkt, hi, ptEnd));
        else d.setAAD(pkt.subarray(0, ptEnd));
        d.setAuthTag(pkt.subarray(ptEnd));
        try {
          d.final();
        } catch {
          return this.#drop('auth-failed');
        }
        plain = pkt.subarray(ptOff, ptEnd);
        break;
      }
      case 'cbc': {
        if (this.#integ && !this.#icvMatches(pkt, ptEnd, hi)) return this.#drop('auth-failed');
        const d = createDecipheriv(enc.cipher, this.#cipherKey!, pkt.subarray(HDR, HDR + 16));
        d.setAutoPadding(false);
        plain = d.update(pkt.subarray(ptOff, ptEnd));
        d.final();
        break;
      }
      default: {
        if (!this.#icvMatches(pkt, ptEnd, hi)) return this.#drop('auth-failed');
        plain = pkt.subarray(ptOff, ptEnd);
      }
    }

    const nextHeader = plain[ptLen - 1];
    const pad = plain[ptLen - 2];
    const payloadLen = ptLen - 2 - pad;
    if (payloadLen < 0) return this.#drop('bad-padding');
    for (let i = 0; i < pad; i++) if (plain[payloadLen + i] !== i + 1) return this.#drop('bad-padding');

    const advanced = this.replay.commit(lo, hi);
    this.#opened++;
    const seq = hi < 0x20_0000 ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
    return { ok: true, payload: plain.subarray(0, payloadLen), nextHeader, seq, advanced };
  }

  /** Raise the hard expire once, on the next tick (seal() has returned its packet by then). */
  #expire(): void {
    this.#expired = true;
    process.nextTick(() => this.emit('expire', { kind: 'hard', reason: 'seq-exhausted', spi: this.spi }));
  }

  #drop(reason: EspDropReason): EspOpenResult {
    this.#drops[reason]++;
    return { ok: false, reason };
  }

  /** The part of `opts.into` that seal writes: checked, so a short buffer is a RangeError, not corruption. */
  #view(opts: EspSealOptions, len: number): Buffer {
    const into = opts.into;
    const offset = opts.offset ?? 0;
    if (!Buffer.isBuffer(into)) throw typeError('into', 'a Buffer', into);
    if (!Number.isInteger(offset) || offset < 0 || offset + len > into.length) {
      throw rangeError('offset', `an integer with offset + ${len} ≤ into.length (${into.length})`, offset);
    }
    return into.subarray(offset, offset + len);
  }

  /** The AEAD nonce: salt ‖ the packet's 8-byte IV (RFC 4106 §4, RFC 7634 §2). */
  #setNonce(pkt: Buffer): Buffer {
    const nonce = this.#nonce;
    for (let i = 0; i < 8; i++) nonce[4 + i] = pkt[HDR + i];
    return nonce;
  }

  #setAad(hi: number, lo: number): Buffer {
    const aad = this.#aad;
    if (this.esn) {
      aad.writeUInt32BE(hi, 4);
      aad.writeUInt32BE(lo, 8);
    } else {
      aad.writeUInt32BE(lo, 4);
    }
    return aad;
  }

  /** GMAC with ESN: the AAD has the high bits between SPI and the low bits, so it is not a slice of the packet. */
  #gmacAad(pkt: Buffer, hi: number, ptEnd: number): Buffer {
    const aad = Buffer.allocUnsafe(ptEnd + 4);
    pkt.copy(aad, 0, 0, 4);
    aad.writeUInt32BE(hi, 4);
    pkt.copy(aad, 8, 4, ptEnd);
    return aad;
  }

  /** The full HMAC over SPI..end of ciphertext, then the ESN high bits (RFC 4303 §2.2.1); the ICV is its head. */
  #mac(pkt: Buffer, end: number, hi: number): Buffer {
    const integ = this.#integ!;
    if (!this.esn) return hmacDigest(integ.hash, this.#authKey!, pkt.subarray(0, end));
    this.#seqHi.writeUInt32BE(hi, 0);
    return hmacDigest(integ.hash, this.#authKey!, pkt.subarray(0, end), this.#seqHi);
  }

  #icvMatches(pkt: Buffer, end: number, hi: number): boolean {
    const n = this.#integ!.icvLength;
    return timingSafeEqual(this.#mac(pkt, end, hi).subarray(0, n), pkt.subarray(end, end + n));
  }

  #splitSeq(v: number | bigint, option: string): [number, number] {
    const max = this.esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
    if (typeof v === 'bigint') {
      if (v < 0n || v > max) throw rangeError(option, `an integer in 0..${max}`, v);
      return [Number(v >> 32n), Number(v & 0xffff_ffffn)];
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw typeError(option, 'an integer or a bigint', v);
    if (v < 0 || BigInt(v) > max) throw rangeError(option, `an integer in 0..${max}`, v);
    return [Math.floor(v / TWO32), v % TWO32];
  }

  /** What util.inspect shows: the SA's shape and counters, never its keys. */
  [inspect.custom](): string {
    return `EspTransform { spi: 0x${this.spi.toString(16).padStart(8, '0')}, encryption: '${this.encryptionAlgorithm}', integrity: '${this.integrityAlgorithm}', esn: ${this.esn}, replayWindow: ${this.replay.size}, sealed: ${this.#sealed}, opened: ${this.#opened} }`;
  }
}

