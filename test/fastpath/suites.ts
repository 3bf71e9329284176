// Test helper: every suite the native cipher serves (each GCM ICV with each key size, each HMAC with CBC and NULL), and specs.

import type { EspTransformOptions } from '../../src/esp';
import type { EspCipherSpec } from '../../src/esp/cipher';
import { encryptionSuite, integritySuite } from '../../src/esp/suites';

/** n key bytes counting up from base (recognisable, never secret). */
export const k = (n: number, base = 0x11) => Buffer.from(Array.from({ length: n }, (_, i) => (base + i * 3) & 0xff));

type Suite = [string, Omit<EspTransformOptions, 'spi'>];

const HMACS: Array<[string, number]> = [
  ['hmac-sha1-96', 20],
  ['hmac-sha2-256-128', 32],
  ['hmac-sha2-384-192', 48],
  ['hmac-sha2-512-256', 64],
  ['hmac-sha2-256-96', 32],
];

/** The full matrix: 9 AES-GCM, 3 AES-GMAC, ChaCha20-Poly1305, 15 AES-CBC + HMAC, 5 NULL + HMAC. */
export const ALL_SUITES: Suite[] = [];
for (const icv of [16, 12, 8] as const) {
  for (const bits of [128, 192, 256]) {
    ALL_SUITES.push([`aes-gcm-${icv}/${bits}`, { encryption: { algorithm: `aes-gcm-${icv}`, key: k(bits / 8 + 4) } }]);
  }
}
for (const bits of [128, 192, 256]) ALL_SUITES.push([`aes-gmac/${bits}`, { encryption: { algorithm: 'aes-gmac', key: k(bits / 8 + 4, 0x21) } }]);
ALL_SUITES.push(['chacha20-poly1305', { encryption: { algorithm: 'chacha20-poly1305', key: k(36, 0x31) } }]);
for (const bits of [128, 192, 256]) {
  for (const [integ, len] of HMACS) {
    ALL_SUITES.push([
      `aes-cbc/${bits}+${integ}`,
      { encryption: { algorithm: 'aes-cbc', key: k(bits / 8, 0x41) }, integrity: { algorithm: integ as 'hmac-sha1-96', key: k(len, 0x80) } },
    ]);
  }
}
for (const [integ, len] of HMACS) {
  ALL_SUITES.push([
    `null+${integ}`,
    { encryption: { algorithm: 'null', key: Buffer.alloc(0) }, integrity: { algorithm: integ as 'hmac-sha1-96', key: k(len, 0x90) } },
  ]);
}

/** The cipher spec EspTransform would build for these options. */
export function specFor(o: Omit<EspTransformOptions, 'spi'>, esn: boolean): EspCipherSpec {
  const enc = encryptionSuite(o.encryption.algorithm, o.encryption.key);
  const integ = o.integrity ? integritySuite(o.integrity.algorithm, o.integrity.key) : null;
  return {
    encryption: enc,
    integrity: integ,
    key: o.encryption.key.subarray(0, enc.keyLength),
    salt: o.encryption.key.subarray(enc.keyLength),
    authKey: o.integrity ? o.integrity.key : null,
    esn,
  };
}
