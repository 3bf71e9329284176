// Algorithm names of the shared model (IKEv2 terms) ↔ Linux crypto templates in XFRM attributes, and what `register` reports.

import { supportedFromTable } from '../sadb/algorithms';
import type { EncryptionAlgorithm, IntegrityAlgorithm, SupportedAlgorithms, IpsecProtocol } from '../sadb/types';

export interface CryptTemplate {
  /** Which attribute carries it. */
  attr: 'algCrypt' | 'algAead';
  /** The kernel's crypto template name. */
  name: string;
  /** AEAD only: ICV length in bits. */
  icvBits?: number;
}

/**
 * Encryption → crypto template. AEADs go in XFRMA_ALG_AEAD with their ICV length; the rest in XFRMA_ALG_CRYPT.
 * The kernel itself wraps a CRYPT+AUTH pair into `authenc(hmac(sha256),cbc(aes))`, or `authencesn(...)` when the
 * SA has ESN: natt never names authenc itself.
 */
export const ENCRYPTION: Record<EncryptionAlgorithm, CryptTemplate> = {
  'aes-cbc': { attr: 'algCrypt', name: 'cbc(aes)' },
  'aes-ctr': { attr: 'algCrypt', name: 'rfc3686(ctr(aes))' },
  'aes-gcm-8': { attr: 'algAead', name: 'rfc4106(gcm(aes))', icvBits: 64 },
  'aes-gcm-12': { attr: 'algAead', name: 'rfc4106(gcm(aes))', icvBits: 96 },
  'aes-gcm-16': { attr: 'algAead', name: 'rfc4106(gcm(aes))', icvBits: 128 },
  'aes-gmac': { attr: 'algAead', name: 'rfc4543(gcm(aes))', icvBits: 128 },
  'chacha20-poly1305': { attr: 'algAead', name: 'rfc7539esp(chacha20,poly1305)', icvBits: 128 },
  '3des-cbc': { attr: 'algCrypt', name: 'cbc(des3_ede)' },
  null: { attr: 'algCrypt', name: 'ecb(cipher_null)' },
};

export interface AuthTemplate {
  name: string;
  truncBits: number;
}

/** Integrity → XFRMA_ALG_AUTH_TRUNC (name, truncation in bits). `none` sends no attribute. */
export const INTEGRITY: Record<Exclude<IntegrityAlgorithm, 'none'>, AuthTemplate> = {
  'hmac-md5-96': { name: 'hmac(md5)', truncBits: 96 },
  'hmac-sha1-96': { name: 'hmac(sha1)', truncBits: 96 },
  'hmac-sha2-256-128': { name: 'hmac(sha256)', truncBits: 128 },
  'hmac-sha2-256-96': { name: 'hmac(sha256)', truncBits: 96 },
  'hmac-sha2-384-192': { name: 'hmac(sha384)', truncBits: 192 },
  'hmac-sha2-512-256': { name: 'hmac(sha512)', truncBits: 256 },
  'aes-xcbc-96': { name: 'xcbc(aes)', truncBits: 96 },
};

/** Legacy kernel names (xfrm_algo.c's compat names) folded to the canonical template. */
const ALIASES: Record<string, string> = {
  aes: 'cbc(aes)',
  des3_ede: 'cbc(des3_ede)',
  cipher_null: 'ecb(cipher_null)',
  md5: 'hmac(md5)',
  sha1: 'hmac(sha1)',
  sha256: 'hmac(sha256)',
  sha384: 'hmac(sha384)',
  sha512: 'hmac(sha512)',
};

/** Kernel crypt/aead attribute → model name; unknown templates come back as the kernel's own name. */
export function encryptionFromKernel(name: string, icvBits?: number): EncryptionAlgorithm {
  const canon = ALIASES[name] ?? name;
  for (const [alg, t] of Object.entries(ENCRYPTION)) {
    if (t.name === canon && (t.icvBits === undefined || t.icvBits === icvBits)) return alg as EncryptionAlgorithm;
  }
  return name as EncryptionAlgorithm;
}

/** Kernel auth attribute → model name (by template and truncation); unknown ones come back as `name/bits`. */
export function integrityFromKernel(name: string, truncBits: number): IntegrityAlgorithm {
  const canon = ALIASES[name] ?? name;
  for (const [alg, t] of Object.entries(INTEGRITY)) {
    if (t.name === canon && t.truncBits === truncBits) return alg as IntegrityAlgorithm;
  }
  if (canon === 'digest_null') return 'none';
  return `${name}/${truncBits}` as IntegrityAlgorithm;
}

/**
 * What `register()` answers over XFRM. XFRM has no SADB_REGISTER: the kernel loads crypto modules on demand,
 * so /proc/crypto lists only what is loaded now, not what would work. The answer is therefore every algorithm of the
 * model's table (src/sadb/algorithms.ts), each of which maps to a template mainline kernels ship (bits = key sizes
 * without the salt).
 */
export function supportedAlgorithms(protocol: IpsecProtocol): SupportedAlgorithms {
  const s = supportedFromTable(protocol, 'all');
  // XFRM's answer has no IV sizes (the kernel's templates know them).
  return { protocol, encryption: s.encryption.map(({ ivBits: _iv, ...e }) => e), integrity: s.integrity };
}
