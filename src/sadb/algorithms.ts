// The one algorithm table of the shared model: key lengths, sizes and which backends implement each algorithm.
//
// Everything else is derived from it: key checks on every backend (checkKey), the userland register() answer, XFRM's
// register() answer, the ESP suites' sizes, and the README's algorithm list (scripts/algorithms.js; a test compares).

import { rangeError, typeError } from '../errors';
import type { EncryptionAlgorithm, IntegrityAlgorithm, SupportedAlgorithms } from './types';

/** How an encryption transform protects the payload. */
export type CipherKind = 'aead' | 'gmac' | 'cbc' | 'ctr' | 'null';

export interface EncryptionInfo {
  kind: CipherKind;
  /** Allowed KEYMAT lengths in bytes (AEAD/GMAC/CTR: key then a 4-byte salt). */
  keyBytes: readonly number[];
  /** Salt bytes at the end of the KEYMAT. */
  saltBytes: number;
  /** Explicit IV bytes carried in each packet. */
  ivBytes: number;
  /** The encrypted part is a multiple of this (RFC 4303 §2.4: at least 4). */
  blockBytes: number;
  /** ICV bytes the transform itself produces (AEAD/GMAC), 0 otherwise. */
  icvBytes: number;
  /** Implemented by the userland ESP engine (src/esp/). */
  userland: boolean;
  /** What the RFC is. */
  rfc: string;
}

export interface IntegrityInfo {
  /** Key bytes. */
  keyBytes: readonly number[];
  /** ICV bytes (the truncated MAC). */
  icvBytes: number;
  /** node:crypto / OpenSSL hash of the HMAC ('' for non-HMAC transforms). */
  hash: string;
  userland: boolean;
  rfc: string;
}

/** Encryption transforms (IKEv2 names). */
export const ENCRYPTION: Readonly<Record<EncryptionAlgorithm, Readonly<EncryptionInfo>>> = Object.freeze({
  'aes-gcm-16': { kind: 'aead', keyBytes: [20, 28, 36], saltBytes: 4, ivBytes: 8, blockBytes: 4, icvBytes: 16, userland: true, rfc: 'RFC 4106' },
  'aes-gcm-12': { kind: 'aead', keyBytes: [20, 28, 36], saltBytes: 4, ivBytes: 8, blockBytes: 4, icvBytes: 12, userland: true, rfc: 'RFC 4106' },
  'aes-gcm-8': { kind: 'aead', keyBytes: [20, 28, 36], saltBytes: 4, ivBytes: 8, blockBytes: 4, icvBytes: 8, userland: true, rfc: 'RFC 4106' },
  'aes-gmac': { kind: 'gmac', keyBytes: [20, 28, 36], saltBytes: 4, ivBytes: 8, blockBytes: 4, icvBytes: 16, userland: true, rfc: 'RFC 4543' },
  'chacha20-poly1305': { kind: 'aead', keyBytes: [36], saltBytes: 4, ivBytes: 8, blockBytes: 4, icvBytes: 16, userland: true, rfc: 'RFC 7634' },
  'aes-cbc': { kind: 'cbc', keyBytes: [16, 24, 32], saltBytes: 0, ivBytes: 16, blockBytes: 16, icvBytes: 0, userland: true, rfc: 'RFC 3602' },
  'aes-ctr': { kind: 'ctr', keyBytes: [20, 28, 36], saltBytes: 4, ivBytes: 8, blockBytes: 4, icvBytes: 0, userland: false, rfc: 'RFC 3686' },
  '3des-cbc': { kind: 'cbc', keyBytes: [24], saltBytes: 0, ivBytes: 8, blockBytes: 8, icvBytes: 0, userland: false, rfc: 'RFC 2451' },
  null: { kind: 'null', keyBytes: [0], saltBytes: 0, ivBytes: 0, blockBytes: 4, icvBytes: 0, userland: true, rfc: 'RFC 2410' },
});

/** Integrity transforms (IKEv2 names; hmac-sha2-256-96 is Linux PF_KEY's truncation of SHA2-256). */
export const INTEGRITY: Readonly<Record<Exclude<IntegrityAlgorithm, 'none'>, Readonly<IntegrityInfo>>> = Object.freeze({
  'hmac-sha1-96': { keyBytes: [20], icvBytes: 12, hash: 'sha1', userland: true, rfc: 'RFC 2404' },
  'hmac-sha2-256-128': { keyBytes: [32], icvBytes: 16, hash: 'sha256', userland: true, rfc: 'RFC 4868' },
  'hmac-sha2-256-96': { keyBytes: [32], icvBytes: 12, hash: 'sha256', userland: true, rfc: 'draft-ietf-ipsec-ciph-sha-256-00 (Linux PF_KEY)' },
  'hmac-sha2-384-192': { keyBytes: [48], icvBytes: 24, hash: 'sha384', userland: true, rfc: 'RFC 4868' },
  'hmac-sha2-512-256': { keyBytes: [64], icvBytes: 32, hash: 'sha512', userland: true, rfc: 'RFC 4868' },
  'hmac-md5-96': { keyBytes: [16], icvBytes: 12, hash: 'md5', userland: false, rfc: 'RFC 2403' },
  'aes-xcbc-96': { keyBytes: [16], icvBytes: 12, hash: '', userland: false, rfc: 'RFC 3566' },
});

/** Allowed key (KEYMAT) lengths in bytes per encryption algorithm (derived from ENCRYPTION). */
export const ENCRYPTION_KEY_BYTES: Readonly<Record<EncryptionAlgorithm, readonly number[]>> = Object.freeze(
  Object.fromEntries(Object.entries(ENCRYPTION).map(([k, v]) => [k, v.keyBytes])) as Record<EncryptionAlgorithm, readonly number[]>,
);

/** Allowed key lengths in bytes per integrity algorithm (derived from INTEGRITY). */
export const INTEGRITY_KEY_BYTES: Readonly<Record<Exclude<IntegrityAlgorithm, 'none'>, readonly number[]>> = Object.freeze(
  Object.fromEntries(Object.entries(INTEGRITY).map(([k, v]) => [k, v.keyBytes])) as Record<Exclude<IntegrityAlgorithm, 'none'>, readonly number[]>,
);

const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** The table's facts for an encryption algorithm, or undefined for a name outside the model. */
export function encryptionInfo(algorithm: unknown): Readonly<EncryptionInfo> | undefined {
  return typeof algorithm === 'string' && own(ENCRYPTION, algorithm) ? ENCRYPTION[algorithm as EncryptionAlgorithm] : undefined;
}

/** The table's facts for an integrity algorithm ('none' and names outside the model: undefined). */
export function integrityInfo(algorithm: unknown): Readonly<IntegrityInfo> | undefined {
  return typeof algorithm === 'string' && own(INTEGRITY, algorithm) ? INTEGRITY[algorithm as Exclude<IntegrityAlgorithm, 'none'>] : undefined;
}

/**
 * Checks `params.key` against the table for its algorithm and returns it (an absent key is an empty one).
 * Algorithms outside the table (a dialect's own, such as a BSD's blowfish) pass with any length: their kernel decides.
 */
export function checkKey(params: { algorithm?: unknown; key?: unknown } | undefined, option: 'encryption' | 'integrity'): Uint8Array {
  const key = params?.key ?? new Uint8Array(0);
  if (!(key instanceof Uint8Array)) throw typeError(`${option}.key`, 'a Uint8Array', key);
  const info = option === 'encryption' ? encryptionInfo(params?.algorithm) : integrityInfo(params?.algorithm);
  if (info && !info.keyBytes.includes(key.length)) {
    const salt = 'saltBytes' in info && info.saltBytes ? ` (KEYMAT: key then ${info.saltBytes}-byte salt)` : '';
    throw rangeError(`${option}.key`, `${info.keyBytes.join(' or ')} bytes for ${String(params?.algorithm)}${salt}`, key);
  }
  return key;
}

/** Key sizes in bits without the salt, as SADB_REGISTER reports them. */
function bits(info: EncryptionInfo): { minBits: number; maxBits: number } {
  const b = info.keyBytes.map((n) => (n - info.saltBytes) * 8);
  return { minBits: Math.min(...b), maxBits: Math.max(...b) };
}

/**
 * What a backend supports for `protocol`, from the table: `which` picks the algorithms (the userland engine's, or
 * every algorithm a kernel backend can install).
 */
export function supportedFromTable(protocol: SupportedAlgorithms['protocol'], which: 'userland' | 'all'): SupportedAlgorithms {
  const encryption: SupportedAlgorithms['encryption'] = [];
  const integrity: SupportedAlgorithms['integrity'] = [];
  if (protocol === 'esp') {
    for (const [algorithm, info] of Object.entries(ENCRYPTION)) {
      if (which === 'userland' && !info.userland) continue;
      encryption.push({ algorithm, ...bits(info), ivBits: info.ivBytes * 8 });
    }
  }
  if (protocol === 'esp' || (protocol === 'ah' && which === 'all')) {
    for (const [algorithm, info] of Object.entries(INTEGRITY)) {
      if (which === 'userland' && !info.userland) continue;
      integrity.push({ algorithm, minBits: info.keyBytes[0] * 8, maxBits: info.keyBytes[info.keyBytes.length - 1] * 8 });
    }
  }
  return { protocol, encryption, integrity };
}
