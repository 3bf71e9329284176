// The ESP algorithm table: key, salt, IV, block and ICV sizes of every supported transform, and their validation.

import { createHmac, type KeyObject } from 'node:crypto';
import type { EncryptionAlgorithm, IntegrityAlgorithm } from '../sadb/types';
import { checkKey } from '../sadb/algorithms';
import { NattUnsupportedError, rangeError, typeError } from '../errors';

/** How a transform protects the payload: an AEAD, GMAC (auth only, AEAD-shaped), CBC (+ HMAC), or NULL (+ HMAC). */
export type CipherKind = 'aead' | 'gmac' | 'cbc' | 'null';

/** Everything seal/open need to know about one encryption transform with one key length. */
export interface EncryptionSuite {
  algorithm: EncryptionAlgorithm;
  kind: CipherKind;
  /** node:crypto cipher name, or '' for NULL. */
  cipher: string;
  /** Key bytes without the salt. */
  keyLength: number;
  /** Salt bytes at the end of the KEYMAT (AEADs: 4). */
  saltLength: number;
  /** Explicit IV carried in each packet. */
  ivLength: number;
  /** The encrypted part (payload ‖ padding ‖ pad length ‖ next header) is a multiple of this. */
  align: number;
  /** ICV bytes the cipher itself produces (AEAD/GMAC), 0 otherwise. */
  icvLength: number;
}

/** Everything seal/open need to know about one integrity transform. */
export interface IntegritySuite {
  algorithm: IntegrityAlgorithm;
  /** node:crypto hash name for the HMAC. */
  hash: string;
  /** ICV bytes: the truncated MAC. */
  icvLength: number;
}

/** Resolve and validate an encryption transform and its key (KEYMAT for AEADs). Throws RangeError/TypeError. */
export function encryptionSuite(algorithm: unknown, key: unknown): EncryptionSuite {
  if (typeof algorithm !== 'string') throw typeError('encryption.algorithm', 'a string', algorithm);
  if (!(key instanceof Uint8Array)) throw typeError('encryption.key', 'a Uint8Array', key);
  // Key lengths come from the one table all backends share; the unimplemented ones are refused below whatever the key.
  if (algorithm !== 'aes-ctr' && algorithm !== '3des-cbc') checkKey({ algorithm, key }, 'encryption');
  const len = key.length;
  switch (algorithm) {
    case 'aes-gcm-8':
    case 'aes-gcm-12':
    case 'aes-gcm-16':
    case 'aes-gmac': {
      const k = len - 4;
      const icv = algorithm === 'aes-gcm-8' ? 8 : algorithm === 'aes-gcm-12' ? 12 : 16;
      return {
        algorithm,
        kind: algorithm === 'aes-gmac' ? 'gmac' : 'aead',
        cipher: `aes-${k * 8}-gcm`,
        keyLength: k,
        saltLength: 4,
        ivLength: 8,
        align: 4,
        icvLength: icv,
      };
    }
    case 'chacha20-poly1305':
      return { algorithm, kind: 'aead', cipher: 'chacha20-poly1305', keyLength: 32, saltLength: 4, ivLength: 8, align: 4, icvLength: 16 };
    case 'aes-cbc':
      return { algorithm, kind: 'cbc', cipher: `aes-${len * 8}-cbc`, keyLength: len, saltLength: 0, ivLength: 16, align: 16, icvLength: 0 };
    case 'null':
      return { algorithm, kind: 'null', cipher: '', keyLength: 0, saltLength: 0, ivLength: 0, align: 4, icvLength: 0 };
    case 'aes-ctr':
    case '3des-cbc':
      throw new NattUnsupportedError(`encryption.algorithm '${algorithm}' is not implemented by the userland ESP engine`);
    default:
      throw rangeError('encryption.algorithm', "'aes-gcm-16', 'aes-gmac', 'chacha20-poly1305', 'aes-cbc' or 'null'", algorithm);
  }
}

const INTEGRITY: Record<string, Omit<IntegritySuite, 'algorithm'>> = {
  'hmac-sha1-96': { hash: 'sha1', icvLength: 12 },
  'hmac-sha2-256-128': { hash: 'sha256', icvLength: 16 },
  'hmac-sha2-256-96': { hash: 'sha256', icvLength: 12 },
  'hmac-sha2-384-192': { hash: 'sha384', icvLength: 24 },
  'hmac-sha2-512-256': { hash: 'sha512', icvLength: 32 },
};

/** Resolve and validate an integrity transform and its key; `null` for `'none'`. Throws RangeError/TypeError. */
export function integritySuite(algorithm: unknown, key: unknown): IntegritySuite | null {
  if (algorithm === 'none') return null;
  if (typeof algorithm !== 'string') throw typeError('integrity.algorithm', 'a string', algorithm);
  const info = Object.prototype.hasOwnProperty.call(INTEGRITY, algorithm) ? INTEGRITY[algorithm] : undefined;
  if (!info) {
    if (algorithm === 'hmac-md5-96' || algorithm === 'aes-xcbc-96') {
      throw new NattUnsupportedError(`integrity.algorithm '${algorithm}' is not implemented by the userland ESP engine`);
    }
    throw rangeError(
      'integrity.algorithm',
      "'hmac-sha1-96', 'hmac-sha2-256-128', 'hmac-sha2-384-192', 'hmac-sha2-512-256', 'hmac-sha2-256-96' or 'none'",
      algorithm,
    );
  }
  checkKey({ algorithm, key }, 'integrity');
  return { algorithm: algorithm as IntegrityAlgorithm, ...info };
}

/**
 * The full HMAC of part1 ‖ part2 (callers keep the first icvLength bytes: RFC 2404 / RFC 4868 truncation). The one
 * place an ICV is computed for CBC and NULL suites; `key` may be any length here (the MAC known-answer tests use
 * RFC 2202's keys). A KeyObject per SA is the fastest form node offers: precomputing the inner/outer hash states
 * and cloning them (hash.copy()) per packet was measured slower than createHmac.
 */
export function hmacDigest(hash: string, key: KeyObject | Uint8Array, part1: Uint8Array, part2?: Uint8Array): Buffer {
  const h = createHmac(hash, key);
  h.update(part1);
  if (part2) h.update(part2);
  return h.digest();
}
