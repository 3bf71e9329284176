// The cipher step of ESP behind one interface (EspCipher: in-place seal/open of laid-out packets), and its node:crypto form.

import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  timingSafeEqual,
  type CipherGCM,
  type DecipherGCM,
  type KeyObject,
} from 'node:crypto';
import { inspect } from 'node:util';
import { hmacDigest, type EncryptionSuite, type IntegritySuite } from './suites';

/**
 * Words per packet in a batch's descriptor array (a Uint32Array): [packet offset in the slab, packet length (SPI to
 * the end of the ICV), ESN high bits (0 without ESN), reserved (0)]. The layout the native contexts read too.
 */
export const ESP_DESC_WORDS = 4;

/** Batch status in: process this packet. Any status other than ESP_CIPHER_PENDING is left as it is. */
export const ESP_CIPHER_PENDING = 0;
/** Batch status out: sealed, or authenticated (and decrypted in place). */
export const ESP_CIPHER_OK = 1;
/** Batch status out: the ICV did not verify; the packet's bytes are as they were. */
export const ESP_CIPHER_AUTH_FAILED = 2;
/** Batch status out: offset/length outside the slab, or not a possible packet of this suite (a caller bug). */
export const ESP_CIPHER_BAD_LAYOUT = 3;
/** Batch status out: the crypto library refused to seal (not expected). */
export const ESP_CIPHER_FAILED = 4;

/** Which implementation runs the cipher step. */
export type EspCipherPath = 'native' | 'node';

/**
 * What a cipher is built from: the suites and the key bytes, already validated by EspTransform. The key views are
 * only valid during the factory call: an implementation copies what it needs and keeps no reference to them.
 */
export interface EspCipherSpec {
  encryption: EncryptionSuite;
  integrity: IntegritySuite | null;
  /** The cipher key without the salt (empty for NULL). */
  key: Uint8Array;
  /** The 4-byte salt of AEAD/GMAC KEYMAT (empty otherwise). */
  salt: Uint8Array;
  /** The HMAC key (CBC and NULL), or null. */
  authKey: Uint8Array | null;
  esn: boolean;
}

/**
 * The cipher step of ESP for one SA, and nothing else: no sequence numbers, replay, padding or IV choice (those stay
 * in EspTransform). A packet is `len` bytes at `off` in `buf`, laid out as
 * [SPI(4) | seq low(4) | IV(ivLength) | plaintext … padding | pad length | next header | ICV room(icvLength)],
 * with the sizes of `spec.encryption` / `spec.integrity`. `seqHi` is the ESN high 32 bits (0 without ESN): in the
 * AAD for AEAD and GMAC (RFC 4106 §5, RFC 4543 §3.3), after the HMAC input for CBC and NULL (RFC 4303 §2.2.1).
 */
export interface EspCipher {
  readonly path: EspCipherPath;
  /** Encrypt the plaintext in place (AEAD, CBC) and write the ICV. The header and IV must already be in place. */
  seal(buf: Uint8Array, off: number, len: number, seqHi: number): void;
  /**
   * Verify the ICV and, for AEAD and CBC, decrypt the ciphertext into `out` at `outOff`: either exactly over the
   * ciphertext (`out` = `buf`, `outOff` = `off` + 8 + ivLength: in place) or a region that does not touch the packet.
   * GMAC and NULL decrypt nothing: `out` is not written and the plaintext is the packet's own bytes. Returns false
   * when the ICV fails; the packet's bytes are then as they were (`out` may hold garbage).
   */
  open(buf: Uint8Array, off: number, len: number, seqHi: number, out: Uint8Array, outOff: number): boolean;
  /**
   * Optional, for implementations whose library hands out fresh buffers anyway (node:crypto's update()): verify and
   * decrypt (AEAD, CBC) into a new buffer of exactly the plaintext, leaving the packet as it was; null when the ICV
   * fails. EspTransform.open() uses it when present instead of allocating `out` itself, which saves a copy.
   */
  openCopy?(buf: Uint8Array, off: number, len: number, seqHi: number): Buffer | null;
  /**
   * Seal every packet of a batch whose status is ESP_CIPHER_PENDING, in place: `desc` holds ESP_DESC_WORDS per
   * packet; each status becomes ESP_CIPHER_OK (or BAD_LAYOUT / FAILED). Returns how many were sealed.
   */
  sealBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number;
  /** Open (verify, and decrypt in place) every pending packet of a batch: ESP_CIPHER_OK or ESP_CIPHER_AUTH_FAILED each. */
  openBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number;
  /** Release what the cipher holds (native memory, key schedules) now, instead of when it is collected. */
  dispose(): void;
}

/** Makes the cipher for one SA, or returns null when it cannot serve this suite (EspTransform then uses node:crypto). */
export type EspCipherFactory = (spec: EspCipherSpec) => EspCipher | null;

const HDR = 8;

/** A KeyObject holding a copy of `bytes`; the temporary Buffer is wiped so no stray copy of the key stays on the heap. */
function secretKey(bytes: Uint8Array): KeyObject {
  const tmp = Buffer.from(bytes);
  try {
    return createSecretKey(tmp);
  } finally {
    tmp.fill(0);
  }
}

/** The packet as a Buffer of its own length (no new view when it already is one). */
function packetView(u: Uint8Array, off: number, len: number): Buffer {
  const b = Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return off === 0 && len === b.length ? b : b.subarray(off, off + len);
}

/**
 * The cipher step on node:crypto, the default: a cipher object per packet (createCipheriv), as node offers nothing
 * else. Byte for byte what EspTransform has always produced. Used where the native fast path is absent or refused.
 */
export class NodeEspCipher implements EspCipher {
  readonly path = 'node' as const;
  readonly #enc: EncryptionSuite;
  readonly #integ: IntegritySuite | null;
  readonly #esn: boolean;
  readonly #cipherKey: KeyObject | null;
  readonly #authKey: KeyObject | null;
  readonly #icvLength: number;
  readonly #nonce: Buffer; // salt ‖ IV, rewritten per packet (AEAD/GMAC)
  readonly #tagOpts: { authTagLength: number };
  readonly #aad: Buffer; // SPI ‖ [seq high] ‖ seq low (AEAD)
  readonly #seqHi = Buffer.alloc(4); // appended to the HMAC input under ESN

  constructor(spec: EspCipherSpec) {
    const enc = spec.encryption;
    this.#enc = enc;
    this.#integ = spec.integrity;
    this.#esn = spec.esn;
    this.#cipherKey = enc.keyLength > 0 ? secretKey(spec.key) : null;
    this.#authKey = spec.integrity && spec.authKey ? secretKey(spec.authKey) : null;
    this.#icvLength = enc.icvLength + (spec.integrity ? spec.integrity.icvLength : 0);
    this.#nonce = Buffer.alloc(12);
    Buffer.from(spec.salt.buffer, spec.salt.byteOffset, spec.salt.byteLength).copy(this.#nonce, 0);
    this.#tagOpts = { authTagLength: enc.icvLength || 16 };
    this.#aad = Buffer.alloc(spec.esn ? 12 : 8);
  }

  seal(buf: Uint8Array, off: number, len: number, seqHi: number): void {
    const out = packetView(buf, off, len);
    const enc = this.#enc;
    const ptOff = HDR + enc.ivLength;
    const ptEnd = len - this.#icvLength;
    switch (enc.kind) {
      case 'aead': {
        const aad = this.#setAad(out, seqHi);
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
        if (this.#esn) c.setAAD(this.#gmacAad(out, seqHi, ptEnd));
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
        if (this.#integ) this.#mac(out, ptEnd, seqHi).copy(out, ptEnd, 0, this.#integ.icvLength);
        break;
      }
      case 'null':
        this.#mac(out, ptEnd, seqHi).copy(out, ptEnd, 0, this.#integ!.icvLength);
        break;
    }
  }

  open(buf: Uint8Array, off: number, len: number, seqHi: number, out: Uint8Array, outOff: number): boolean {
    const kind = this.#enc.kind;
    if (kind === 'gmac' || kind === 'null') return this.#verify(packetView(buf, off, len), seqHi);
    const plain = this.openCopy(buf, off, len, seqHi);
    if (plain === null) return false;
    out.set(plain, outOff); // only once authenticated: a refused packet is left as it was
    return true;
  }

  openCopy(buf: Uint8Array, off: number, len: number, seqHi: number): Buffer | null {
    const pkt = packetView(buf, off, len);
    const enc = this.#enc;
    const ptOff = HDR + enc.ivLength;
    const ptEnd = len - this.#icvLength;
    if (enc.kind === 'aead') {
      const aad = this.#setAad(pkt, seqHi);
      const d = createDecipheriv(enc.cipher as 'aes-128-gcm', this.#cipherKey!, this.#setNonce(pkt), this.#tagOpts) as DecipherGCM;
      d.setAAD(aad);
      d.setAuthTag(pkt.subarray(ptEnd));
      const plain = d.update(pkt.subarray(ptOff, ptEnd));
      try {
        d.final();
      } catch {
        return null;
      }
      return plain;
    }
    if (enc.kind === 'cbc') {
      if (this.#integ && !this.#icvMatches(pkt, ptEnd, seqHi)) return null;
      const d = createDecipheriv(enc.cipher, this.#cipherKey!, pkt.subarray(HDR, HDR + 16));
      d.setAutoPadding(false);
      const plain = d.update(pkt.subarray(ptOff, ptEnd));
      d.final();
      return plain;
    }
    return this.#verify(pkt, seqHi) ? pkt.subarray(ptOff, ptEnd) : null; // GMAC, NULL: nothing to decrypt
  }

  /** GMAC and NULL: the ICV over the cleartext packet. */
  #verify(pkt: Buffer, seqHi: number): boolean {
    const enc = this.#enc;
    const ptEnd = pkt.length - this.#icvLength;
    if (enc.kind === 'null') return this.#icvMatches(pkt, ptEnd, seqHi);
    const d = createDecipheriv(enc.cipher as 'aes-128-gcm', this.#cipherKey!, this.#setNonce(pkt), this.#tagOpts);
    if (this.#esn) d.setAAD(this.#gmacAad(pkt, seqHi, ptEnd));
    else d.setAAD(pkt.subarray(0, ptEnd));
    d.setAuthTag(pkt.subarray(ptEnd));
    try {
      d.final();
    } catch {
      return false;
    }
    return true;
  }

  sealBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number {
    return this.#batch(slab, desc, count, status, true);
  }

  openBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number {
    return this.#batch(slab, desc, count, status, false);
  }

  dispose(): void {
    // KeyObjects are freed with their JS objects; nothing is held outside the heap.
  }

  #batch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array, seal: boolean): number {
    const ptOff = HDR + this.#enc.ivLength;
    const min = ptOff + this.#icvLength;
    let done = 0;
    for (let i = 0; i < count; i++) {
      if (status[i] !== ESP_CIPHER_PENDING) continue;
      const w = i * ESP_DESC_WORDS;
      const off = desc[w];
      const len = desc[w + 1];
      if (off + len > slab.length || len < min || (this.#enc.kind === 'cbc' && (len - min) % 16 !== 0)) {
        status[i] = ESP_CIPHER_BAD_LAYOUT;
        continue;
      }
      let ok = true;
      if (seal) this.seal(slab, off, len, desc[w + 2]);
      else ok = this.open(slab, off, len, desc[w + 2], slab, off + ptOff);
      status[i] = ok ? ESP_CIPHER_OK : ESP_CIPHER_AUTH_FAILED;
      if (ok) done++;
    }
    return done;
  }

  /** The AEAD nonce: salt ‖ the packet's 8-byte IV (RFC 4106 §4, RFC 7634 §2). */
  #setNonce(pkt: Buffer): Buffer {
    const nonce = this.#nonce;
    for (let i = 0; i < 8; i++) nonce[4 + i] = pkt[HDR + i];
    return nonce;
  }

  /** SPI ‖ [seq high] ‖ seq low, from the packet's header. */
  #setAad(pkt: Buffer, hi: number): Buffer {
    const aad = this.#aad;
    for (let i = 0; i < 4; i++) aad[i] = pkt[i];
    if (this.#esn) {
      aad.writeUInt32BE(hi, 4);
      for (let i = 0; i < 4; i++) aad[8 + i] = pkt[4 + i];
    } else {
      for (let i = 0; i < 4; i++) aad[4 + i] = pkt[4 + i];
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
    if (!this.#esn) return hmacDigest(integ.hash, this.#authKey!, pkt.subarray(0, end));
    this.#seqHi.writeUInt32BE(hi, 0);
    return hmacDigest(integ.hash, this.#authKey!, pkt.subarray(0, end), this.#seqHi);
  }

  #icvMatches(pkt: Buffer, end: number, hi: number): boolean {
    const n = this.#integ!.icvLength;
    return timingSafeEqual(this.#mac(pkt, end, hi).subarray(0, n), pkt.subarray(end, end + n));
  }

  /** What util.inspect shows: the path and the suite, never a key. */
  [inspect.custom](): string {
    return `NodeEspCipher { encryption: '${this.#enc.algorithm}', integrity: '${this.#integ?.algorithm ?? 'none'}', esn: ${this.#esn} }`;
  }
}

/** The default factory: node:crypto for every suite. */
export const nodeEspCipherFactory: EspCipherFactory = (spec) => new NodeEspCipher(spec);
