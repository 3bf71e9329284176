// EspTransform: ESP (RFC 4303) seal/open for one SA: AEAD, GMAC, CBC+HMAC and NULL+HMAC, ESN, padding, anti-replay.

import { EventEmitter } from 'node:events';
import { randomFillSync } from 'node:crypto';
import { inspect } from 'node:util';
import type { EncryptionParams, IntegrityParams } from '../sadb/types';
import { NattError, rangeError, typeError } from '../errors';
import { callbackOption, readOptions } from '../core/options';
import { encryptionSuite, integritySuite, type EncryptionSuite, type IntegritySuite } from './suites';
import { REPLAY_REPLAYED, REPLAY_TOO_OLD, ReplayWindow } from './replay';
import {
  ESP_CIPHER_AUTH_FAILED,
  ESP_CIPHER_OK,
  ESP_CIPHER_PENDING,
  ESP_DESC_WORDS,
  NodeEspCipher,
  type EspCipher,
  type EspCipherFactory,
  type EspCipherPath,
  type EspCipherSpec,
} from './cipher';
import { ESP_BATCH_DROP, ESP_BATCH_OK, ESP_BATCH_SEQ_EXHAUSTED, ESP_META_WORDS, EspBatch } from './batch';
import { ESP_DROP_REASONS, type EspDropReason } from './drops';

export { ESP_DROP_REASONS, type EspDropReason } from './drops';

const TWO32 = 0x1_0000_0000;
/** ESP header: SPI (4) + sequence number (4). */
const HDR = 8;

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
  /**
   * Makes the cipher step (src/esp/cipher.ts) for this SA; when absent, or when it returns null for this suite,
   * node:crypto does it. src/fastpath's createEspTransform() passes the native one here.
   */
  cipherFactory?: EspCipherFactory;
}

const TRANSFORM_OPTIONS = ['spi', 'encryption', 'integrity', 'esn', 'replayWindow', 'outboundSeq', 'allowNoIntegrity', 'cipherFactory'] as const;

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

/**
 * ESP for one SA: `seal()` builds packets from SPI to ICV, `open()` checks and decrypts them; `sealBatch()` and
 * `openBatch()` do the same for a whole EspBatch with one call of the cipher. The protocol (sequence numbers, IVs,
 * padding, the replay window, counters) is here; the cipher step is an EspCipher (node:crypto unless a factory
 * gives another: `cipherPath` says which runs).
 */
export class EspTransform extends EventEmitter<EspTransformEvents> {
  readonly spi: number;
  readonly esn: boolean;
  readonly encryptionAlgorithm: EncryptionParams['algorithm'];
  readonly integrityAlgorithm: IntegrityParams['algorithm'];
  /** The inbound anti-replay window (read its `highest`; `reset()` it when migrating an SA). */
  readonly replay: ReplayWindow;
  /** Bytes of overhead around a payload before padding: header + IV + trailer (2) + ICV. */
  readonly overhead: number;
  /** Bytes a batch payload needs in front of it in the slab: header + IV. */
  readonly headroom: number;
  /** Which implementation runs the cipher step: 'native' (reused OpenSSL contexts) or 'node' (node:crypto). */
  readonly cipherPath: EspCipherPath;

  readonly #enc: EncryptionSuite;
  readonly #integ: IntegritySuite | null;
  readonly #cipher: EspCipher;
  readonly #icvLength: number;
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
    const o = readOptions(options, TRANSFORM_OPTIONS);
    const opts = o as EspTransformOptions;
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
    const factory = callbackOption<EspCipherFactory>(o.cipherFactory, 'cipherFactory');
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
    this.esn = o.esn === true;
    this.encryptionAlgorithm = enc.algorithm;
    this.integrityAlgorithm = integ ? integ.algorithm : 'none';
    this.#enc = enc;
    this.#integ = integ;
    this.#icvLength = enc.icvLength + (integ ? integ.icvLength : 0);
    this.overhead = HDR + enc.ivLength + 2 + this.#icvLength;
    this.headroom = HDR + enc.ivLength;
    const key = encryption.key;
    const spec: EspCipherSpec = {
      encryption: enc,
      integrity: integ,
      key: key.subarray(0, enc.keyLength),
      salt: key.subarray(enc.keyLength, enc.keyLength + enc.saltLength),
      authKey: integ && integrity ? integrity.key : null,
      esn: this.esn,
    };
    this.#cipher = (factory && factory(spec)) || new NodeEspCipher(spec);
    this.cipherPath = this.#cipher.path;
    this.replay = new ReplayWindow({ size: (o.replayWindow as number | undefined) ?? 64, esn: this.esn });
    if (o.outboundSeq !== undefined) {
      const [hi, lo] = this.#splitSeq(o.outboundSeq as number | bigint, 'outboundSeq');
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
    if (typeof payloadLength !== 'number' || !Number.isSafeInteger(payloadLength) || payloadLength < 0) {
      throw rangeError('payloadLength', 'a non-negative integer', payloadLength);
    }
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
      if (!this.#take()) throw new EspSequenceExhaustedError(this.spi, this.esn);
      hi = this.#outHi;
      lo = this.#outLo;
    }
    out.set(payload, ptOff);
    this.#frame(out, 0, payload.length, pad, nextHeader, hi, lo, opts?.iv);
    this.#cipher.seal(out, 0, out.length, hi);
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
    if (enc.kind === 'aead' || enc.kind === 'cbc') {
      // The packet stays as it was: the plaintext goes to a buffer of its own (the caller's from then on).
      const cipher = this.#cipher;
      if (cipher.openCopy) {
        const p = cipher.openCopy(pkt, 0, pkt.length, hi);
        if (p === null) return this.#drop('auth-failed');
        plain = p;
      } else {
        plain = Buffer.allocUnsafe(ptLen);
        if (!cipher.open(pkt, 0, pkt.length, hi, plain, 0)) return this.#drop('auth-failed');
      }
    } else {
      if (!this.#cipher.open(pkt, 0, pkt.length, hi, pkt, ptOff)) return this.#drop('auth-failed');
      plain = pkt.subarray(ptOff, ptEnd); // GMAC and NULL: the payload travels in clear
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

  /**
   * Seal every payload of `batch` (0..count-1, placed with `setPayload`) where it lies: header and IV are written in
   * front of it, padding, trailer and ICV behind it, then the cipher runs once over the whole batch. Each packet gets
   * the SA's next sequence number and minimal padding; `batch.packet(i)` is the result. Returns how many were sealed:
   * all of them, unless the sequence numbers run out (the rest get ESP_BATCH_SEQ_EXHAUSTED and 'expire' is raised).
   * A payload without room around it is a RangeError before any sequence number is used.
   */
  sealBatch(batch: EspBatch): number {
    const n = this.#count(batch);
    const { slab, desc, meta, status } = batch;
    const enc = this.#enc;
    const align = enc.align;
    const head = this.headroom;
    for (let i = 0; i < n; i++) {
      const m = i * ESP_META_WORDS;
      const off = meta[m];
      const len = meta[m + 1];
      const body = len + 2;
      const end = off + body + ((align - (body % align)) % align) + this.#icvLength;
      if (meta[m + 2] > 255) throw rangeError(`batch payload ${i} nextHeader`, 'an integer in 0..255', meta[m + 2]);
      if (off < head || end > slab.length) {
        throw rangeError(`batch payload ${i}`, `at an offset with ${head} bytes in front and ${end - off - len} behind it inside the slab`, off);
      }
    }
    for (let i = 0; i < n; i++) {
      const m = i * ESP_META_WORDS;
      const w = i * ESP_DESC_WORDS;
      if (!this.#take()) {
        status[i] = ESP_BATCH_SEQ_EXHAUSTED;
        continue;
      }
      const len = meta[m + 1];
      const pad = (align - ((len + 2) % align)) % align;
      const off = meta[m] - head;
      const pktLen = head + len + pad + 2 + this.#icvLength;
      this.#frame(slab, off, len, pad, meta[m + 2], this.#outHi, this.#outLo);
      desc[w] = off;
      desc[w + 1] = pktLen;
      desc[w + 2] = this.#outHi;
      desc[w + 3] = 0;
      meta[m + 3] = this.#outLo;
      status[i] = ESP_CIPHER_PENDING;
    }
    const sealed = this.#cipher.sealBatch(slab, desc, n, status);
    for (let i = 0; i < n; i++) {
      const st = status[i];
      if (st !== ESP_CIPHER_OK && st !== ESP_BATCH_SEQ_EXHAUSTED) throw new NattError('ERR_NATT_INTERNAL', `the ${this.cipherPath} cipher refused batch packet ${i} (status ${st})`);
    }
    this.#sealed += sealed;
    return sealed;
  }

  /**
   * Open every packet of `batch` (0..count-1, placed with `setPacket`) in place, with one cipher call for the batch.
   * Each packet gets the checks of open(), in the same order: lengths, SPI, the replay window (as it stood before
   * the batch) before the ICV; after it, the padding, and the window again, so that a duplicate inside the batch is
   * 'replayed' and the window moves only for authenticated packets. Statuses say ESP_BATCH_OK or
   * ESP_BATCH_DROP + reason (`batch.reason(i)`); each refusal is counted as open() counts it. A refused packet's
   * bytes are as they were. Returns how many were opened. Descriptors outside the slab are a RangeError.
   */
  openBatch(batch: EspBatch): number {
    const n = this.#count(batch);
    const { slab, desc, meta, status } = batch;
    const enc = this.#enc;
    const head = this.headroom;
    for (let i = 0; i < n; i++) {
      const w = i * ESP_DESC_WORDS;
      if (desc[w] + desc[w + 1] > slab.length) throw rangeError(`batch packet ${i}`, `inside the slab (${slab.length} bytes)`, desc[w]);
    }
    let pending = 0;
    for (let i = 0; i < n; i++) {
      const w = i * ESP_DESC_WORDS;
      const off = desc[w];
      const ptLen = desc[w + 1] - head - this.#icvLength;
      let reason: EspDropReason | null = null;
      let hi = 0;
      if (ptLen < 2) reason = 'truncated';
      else if (enc.kind === 'cbc' && ptLen % 16 !== 0) reason = 'bad-length';
      else if (slab.readUInt32BE(off) !== this.spi) reason = 'spi-mismatch';
      else {
        hi = this.replay.check(slab.readUInt32BE(off + 4));
        if (hi < 0) reason = hi === REPLAY_TOO_OLD ? 'too-old' : 'replayed';
      }
      if (reason !== null) {
        this.#dropAt(status, i, reason);
        continue;
      }
      desc[w + 2] = hi;
      desc[w + 3] = 0;
      status[i] = ESP_CIPHER_PENDING;
      pending++;
    }
    if (pending > 0) this.#cipher.openBatch(slab, desc, n, status);
    let opened = 0;
    for (let i = 0; i < n; i++) {
      const st = status[i];
      if (st >= ESP_BATCH_DROP) continue;
      if (st === ESP_CIPHER_AUTH_FAILED) {
        this.#dropAt(status, i, 'auth-failed');
        continue;
      }
      if (st !== ESP_CIPHER_OK) throw new NattError('ERR_NATT_INTERNAL', `the ${this.cipherPath} cipher refused batch packet ${i} (status ${st})`);
      const w = i * ESP_DESC_WORDS;
      const m = i * ESP_META_WORDS;
      const ptOff = desc[w] + head;
      const ptLen = desc[w + 1] - head - this.#icvLength;
      const nextHeader = slab[ptOff + ptLen - 1];
      const pad = slab[ptOff + ptLen - 2];
      const payloadLen = ptLen - 2 - pad;
      let padOk = payloadLen >= 0;
      for (let j = 0; padOk && j < pad; j++) if (slab[ptOff + payloadLen + j] !== j + 1) padOk = false;
      if (!padOk) {
        this.#dropAt(status, i, 'bad-padding');
        continue;
      }
      const lo = slab.readUInt32BE(desc[w] + 4);
      const hi = desc[w + 2];
      const again = this.replay.check(lo); // an earlier packet of this batch may have taken this number, or moved the window
      if (again < 0) {
        this.#dropAt(status, i, again === REPLAY_TOO_OLD ? 'too-old' : 'replayed');
        continue;
      }
      if (again !== hi) {
        this.#dropAt(status, i, 'auth-failed'); // one by one, this packet would have been checked with other high bits
        continue;
      }
      batch.advanced[i] = this.replay.commit(lo, hi) ? 1 : 0;
      meta[m] = ptOff;
      meta[m + 1] = payloadLen;
      meta[m + 2] = nextHeader;
      meta[m + 3] = lo;
      status[i] = ESP_BATCH_OK;
      opened++;
    }
    this.#opened += opened;
    return opened;
  }

  /** How many bytes a batch payload of `payloadLength` needs behind it in the slab: padding, trailer and ICV. */
  tailroom(payloadLength: number): number {
    return this.sealedLength(payloadLength) - this.headroom - payloadLength;
  }

  /**
   * Release the cipher's resources now (the native context and its key schedule, wiped) instead of when the
   * transform is collected. seal() and open() throw afterwards on the native path.
   */
  dispose(): void {
    this.#cipher.dispose();
  }

  /** Take the next outbound sequence number into #outHi/#outLo; false (and 'expire' once) when none is left. */
  #take(): boolean {
    if (this.#exhausted) {
      if (!this.#expired) this.#expire(); // constructed at the end already: say so on the first refusal
      return false;
    }
    let hi = this.#outHi;
    let lo = this.#outLo + 1;
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
    return true;
  }

  /**
   * Write everything around a payload already at `off` + headroom: SPI, sequence number, IV (the given one, the
   * 64-bit sequence number for AEAD/GMAC, CSPRNG bytes for CBC), the padding 1, 2, 3, ..., pad length, next header.
   */
  #frame(buf: Buffer, off: number, payloadLen: number, pad: number, nextHeader: number, hi: number, lo: number, iv?: Uint8Array): void {
    const enc = this.#enc;
    const ivLen = enc.ivLength;
    buf.writeUInt32BE(this.spi, off);
    buf.writeUInt32BE(lo, off + 4);
    if (iv !== undefined) {
      buf.set(iv, off + HDR);
    } else if (enc.kind === 'cbc') {
      takeRandom(buf, off + HDR, ivLen);
    } else if (ivLen === 8) {
      buf.writeUInt32BE(hi, off + HDR);
      buf.writeUInt32BE(lo, off + HDR + 4);
    }
    const trailer = off + HDR + ivLen + payloadLen;
    for (let i = 0; i < pad; i++) buf[trailer + i] = i + 1; // RFC 4303 §2.4 default padding: 1, 2, 3, ...
    buf[trailer + pad] = pad;
    buf[trailer + pad + 1] = nextHeader;
  }

  #count(batch: EspBatch): number {
    if (!(batch instanceof EspBatch)) throw typeError('batch', 'an EspBatch', batch);
    const n = batch.count;
    if (typeof n !== 'number' || !(n >= 0 && n <= batch.capacity && (n | 0) === n)) throw rangeError('batch.count', `an integer in 0..${batch.capacity}`, n);
    return n;
  }

  #dropAt(status: Uint8Array, i: number, reason: EspDropReason): void {
    this.#drops[reason]++;
    status[i] = ESP_BATCH_DROP + ESP_DROP_REASONS.indexOf(reason);
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
    return `EspTransform { spi: 0x${this.spi.toString(16).padStart(8, '0')}, encryption: '${this.encryptionAlgorithm}', integrity: '${this.integrityAlgorithm}', esn: ${this.esn}, cipher: '${this.cipherPath}', replayWindow: ${this.replay.size}, sealed: ${this.#sealed}, opened: ${this.#opened} }`;
  }
}

