// Key lengths each algorithm of the shared model takes (AEAD/CTR: KEYMAT = key + 4-byte salt); one table for all backends.

import { rangeError, typeError } from '../errors';
import type { EncryptionAlgorithm, IntegrityAlgorithm } from './types';

/** Allowed key (KEYMAT) lengths in bytes per encryption algorithm. */
export const ENCRYPTION_KEY_BYTES: Readonly<Record<EncryptionAlgorithm, readonly number[]>> = {
  'aes-cbc': [16, 24, 32],
  'aes-ctr': [20, 28, 36],
  'aes-gcm-8': [20, 28, 36],
  'aes-gcm-12': [20, 28, 36],
  'aes-gcm-16': [20, 28, 36],
  'aes-gmac': [20, 28, 36],
  'chacha20-poly1305': [36],
  '3des-cbc': [24],
  null: [0],
};

/** Allowed key lengths in bytes per integrity algorithm. */
export const INTEGRITY_KEY_BYTES: Readonly<Record<Exclude<IntegrityAlgorithm, 'none'>, readonly number[]>> = {
  'hmac-md5-96': [16],
  'hmac-sha1-96': [20],
  'hmac-sha2-256-128': [32],
  'hmac-sha2-256-96': [32],
  'hmac-sha2-384-192': [48],
  'hmac-sha2-512-256': [64],
  'aes-xcbc-96': [16],
};

/**
 * Checks `params.key` against the table for its algorithm and returns it (an absent key is an empty one).
 * Algorithms outside the table (a dialect's own, such as a BSD's blowfish) pass with any length: their kernel decides.
 */
export function checkKey(params: { algorithm?: unknown; key?: unknown } | undefined, option: 'encryption' | 'integrity'): Uint8Array {
  const key = params?.key ?? new Uint8Array(0);
  if (!(key instanceof Uint8Array)) throw typeError(`${option}.key`, 'a Uint8Array', key);
  const table: Record<string, readonly number[]> = option === 'encryption' ? ENCRYPTION_KEY_BYTES : INTEGRITY_KEY_BYTES;
  const alg = String(params?.algorithm);
  const allowed = Object.prototype.hasOwnProperty.call(table, alg) ? table[alg] : undefined;
  if (allowed && !allowed.includes(key.length)) {
    const salt = /gcm|gmac|chacha|ctr/.test(alg) ? ' (KEYMAT: key then 4-byte salt)' : '';
    throw rangeError(`${option}.key`, `${allowed.join(' or ')} bytes for ${alg}${salt}`, key);
  }
  return key;
}
