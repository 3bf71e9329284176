// Key hygiene: keys in objects natt hands out are non-enumerable, so util.inspect, console.log and JSON never show them.

import type { EncryptionParams, IntegrityParams, SecurityAssociation } from './types';

/** Make `params.key` non-enumerable (still readable as `params.key`). Returns the same object. */
export function hideKey<T extends EncryptionParams | IntegrityParams>(params: T): T {
  const key = params.key;
  Object.defineProperty(params, 'key', { value: key, enumerable: false, writable: true, configurable: true });
  return params;
}

/** Hide the keys of an SA in place (see hideKey). Returns the same object. */
export function hideSaKeys<T extends SecurityAssociation>(sa: T): T {
  if (sa.encryption) hideKey(sa.encryption);
  if (sa.integrity) hideKey(sa.integrity);
  return sa;
}

/** A copy of an SA with the key bytes removed entirely (for broadcasts and expire events). */
export function withoutKeys(sa: SecurityAssociation): SecurityAssociation {
  const out: SecurityAssociation = { ...sa };
  if (sa.encryption) out.encryption = { algorithm: sa.encryption.algorithm, key: new Uint8Array(0) };
  if (sa.integrity) out.integrity = { algorithm: sa.integrity.algorithm, key: new Uint8Array(0) };
  return out;
}
