// Test helper: one EspTransform configuration per suite the issue names (every key size, every HMAC).

import type { EspTransformOptions } from '../../src/esp';

/** n key bytes counting up from base (recognisable, never secret). */
export const k = (n: number, base = 0x11) => Buffer.from(Array.from({ length: n }, (_, i) => (base + i) & 0xff));

/** One entry per suite the issue names (every key size, every HMAC). */
export const SUITES: Array<[string, Omit<EspTransformOptions, 'spi'>]> = [
  ['aes-gcm-16/128', { encryption: { algorithm: 'aes-gcm-16', key: k(20) } }],
  ['aes-gcm-16/192', { encryption: { algorithm: 'aes-gcm-16', key: k(28) } }],
  ['aes-gcm-16/256', { encryption: { algorithm: 'aes-gcm-16', key: k(36) } }],
  ['aes-gcm-12/128', { encryption: { algorithm: 'aes-gcm-12', key: k(20) } }],
  ['aes-gcm-8/256', { encryption: { algorithm: 'aes-gcm-8', key: k(36) } }],
  ['aes-gmac/128', { encryption: { algorithm: 'aes-gmac', key: k(20) } }],
  ['aes-gmac/256', { encryption: { algorithm: 'aes-gmac', key: k(36) } }],
  ['chacha20-poly1305', { encryption: { algorithm: 'chacha20-poly1305', key: k(36) } }],
  ['aes-cbc/128+hmac-sha1-96', { encryption: { algorithm: 'aes-cbc', key: k(16) }, integrity: { algorithm: 'hmac-sha1-96', key: k(20, 0x80) } }],
  ['aes-cbc/192+hmac-sha2-256-128', { encryption: { algorithm: 'aes-cbc', key: k(24) }, integrity: { algorithm: 'hmac-sha2-256-128', key: k(32, 0x80) } }],
  ['aes-cbc/256+hmac-sha2-384-192', { encryption: { algorithm: 'aes-cbc', key: k(32) }, integrity: { algorithm: 'hmac-sha2-384-192', key: k(48, 0x80) } }],
  ['aes-cbc/256+hmac-sha2-512-256', { encryption: { algorithm: 'aes-cbc', key: k(32) }, integrity: { algorithm: 'hmac-sha2-512-256', key: k(64, 0x80) } }],
  ['aes-cbc/128+hmac-sha2-256-96', { encryption: { algorithm: 'aes-cbc', key: k(16) }, integrity: { algorithm: 'hmac-sha2-256-96', key: k(32, 0x80) } }],
  ['null+hmac-sha1-96', { encryption: { algorithm: 'null', key: Buffer.alloc(0) }, integrity: { algorithm: 'hmac-sha1-96', key: k(20, 0x80) } }],
  ['null+hmac-sha2-256-128', { encryption: { algorithm: 'null', key: Buffer.alloc(0) }, integrity: { algorithm: 'hmac-sha2-256-128', key: k(32, 0x80) } }],
];

