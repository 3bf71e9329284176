// Test helper: loads the ESP vectors (test/fixtures/vectors, copied from the team's shared set) and maps them to EspTransform options.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { EspTransformOptions } from '../../src/esp';

const repoRoot = path.resolve(__dirname, '..', '..');
/** Where the vectors live: in the repo, so a fresh clone and CI run every one of them. */
export const vectorsDir = path.resolve(repoRoot, 'test', 'fixtures', 'vectors');

/** The fields of a vector that the tests use (see the vectors' README for the schema). */
export interface Vector {
  id: string;
  kind: 'esp-packet' | 'mac-kat' | 'cipher-kat';
  algorithms: { encr: { name: string; keyBits: number } | null; integ: { name: string; icvLength: number } | null };
  key: { encKey: string | null; salt: string | null; authKey: string | null; encKeymat: string | null };
  icvLength: number;
  spi: string | null;
  seq: number | null;
  esnHigh: number | null;
  iv: string | null;
  nextHeader: number | null;
  payload: string | null;
  padLength: number | null;
  ciphertext: string | null;
  icv: string | null;
  espPacket: string | null;
  mac: { data: string; fullMac: string; truncatedMac: string } | null;
}

/** The vectors of one file; a missing or empty file throws (the vectors are part of the repo). */
export function loadVectors(file: string): Vector[] {
  return JSON.parse(readFileSync(path.join(vectorsDir, file), 'utf8')) as Vector[];
}

export const hex = (s: string | null): Buffer => Buffer.from(s ?? '', 'hex');

const ENCR: Record<string, EspTransformOptions['encryption']['algorithm']> = {
  'AES-GCM-16': 'aes-gcm-16',
  'AES-GMAC': 'aes-gmac',
  'CHACHA20-POLY1305': 'chacha20-poly1305',
  'AES-CBC': 'aes-cbc',
  NULL: 'null',
};
export const INTEG: Record<string, NonNullable<EspTransformOptions['integrity']>['algorithm']> = {
  NONE: 'none',
  'HMAC-SHA1-96': 'hmac-sha1-96',
  'HMAC-SHA2-256-128': 'hmac-sha2-256-128',
  'HMAC-SHA2-384-192': 'hmac-sha2-384-192',
  'HMAC-SHA2-512-256': 'hmac-sha2-512-256',
};

/** EspTransform options for an `esp-packet` vector. */
export function transformOptions(v: Vector): EspTransformOptions {
  const integ = v.algorithms.integ;
  const o: EspTransformOptions = {
    spi: parseInt(v.spi!, 16),
    encryption: { algorithm: ENCR[v.algorithms.encr!.name], key: hex(v.key.encKeymat ?? v.key.encKey) },
    esn: v.esnHigh !== null,
  };
  if (integ && integ.name !== 'NONE') o.integrity = { algorithm: INTEG[integ.name], key: hex(v.key.authKey) };
  // RFC 3602's ESP cases are CBC with no integrity: the vectors are what they are (natt refuses that by default).
  else if (o.encryption.algorithm === 'aes-cbc') o.allowNoIntegrity = true;
  return o;
}

/** The vector's full sequence number: a bigint with the ESN high bits, else the 32-bit number. */
export function vectorSeq(v: Vector): number | bigint {
  return v.esnHigh !== null ? (BigInt(v.esnHigh) << 32n) | BigInt(v.seq!) : v.seq!;
}
