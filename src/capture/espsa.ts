// Wireshark's ESP SA table (the `esp_sa` UAT file) from natt SAs: what lets Wireshark and tshark decrypt a capture. Holds keys.
//
// One line per ESP SA, eight quoted fields: protocol ("IPv4"/"IPv6"), source, destination, SPI, encryption
// algorithm, encryption key, authentication algorithm, authentication key — the algorithms by the names Wireshark's
// ESP dissector lists (4.0 and later). An AEAD's key is its KEYMAT (key and salt), as Wireshark wants it. A suite
// Wireshark cannot decrypt (AES-GMAC, ChaCha20-Poly1305 before Wireshark 4.2) gets a comment line instead, naming
// the SPI and why. Only ever written when the operator asks for it (natt capture --esp-sa FILE, mode 0600).

import * as fs from 'node:fs';
import { NattError, typeError, rangeError } from '../errors';
import { readingCallerValue, stringOption } from '../core/options';
import { checkAddress, checkSpi } from '../sadb/validate';
import type { EncryptionAlgorithm, IntegrityAlgorithm, SecurityAssociation } from '../sadb/types';

const ENCRYPTION: Partial<Record<EncryptionAlgorithm, string>> = {
  'aes-cbc': 'AES-CBC [RFC3602]',
  'aes-ctr': 'AES-CTR [RFC3686]',
  'aes-gcm-8': 'AES-GCM with 8 octet ICV [RFC4106]',
  'aes-gcm-12': 'AES-GCM with 12 octet ICV [RFC4106]',
  'aes-gcm-16': 'AES-GCM with 16 octet ICV [RFC4106]',
  '3des-cbc': 'TripleDES-CBC [RFC2451]',
  null: 'NULL',
};

const INTEGRITY: Record<IntegrityAlgorithm, string> = {
  'hmac-md5-96': 'HMAC-MD5-96 [RFC2403]',
  'hmac-sha1-96': 'HMAC-SHA-1-96 [RFC2404]',
  'hmac-sha2-256-128': 'HMAC-SHA-256-128 [RFC4868]',
  'hmac-sha2-256-96': 'HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]',
  'hmac-sha2-384-192': 'HMAC-SHA-384-192 [RFC4868]',
  'hmac-sha2-512-256': 'HMAC-SHA-512-256 [RFC4868]',
  'aes-xcbc-96': 'ANY 96 bit authentication [no checking]',
  none: 'NULL',
};

/** What espSaTable() made: the file's text and, per SA it could not describe, why. */
export interface EspSaTable {
  text: string;
  /** SAs in the table. */
  entries: number;
  /** SAs left out (as comment lines), with the reason: `SPI 0x... (src -> dst): ...`. */
  skipped: string[];
}

/** The fields the table reads of one SA (an SA read back from a dump carries more: they are ignored). */
interface TableSa {
  protocol: string;
  src: string;
  dst: string;
  spi: number;
  encryption?: { algorithm: EncryptionAlgorithm; key?: Uint8Array };
  integrity?: { algorithm: IntegrityAlgorithm; key?: Uint8Array };
}

/** One algorithm field ({ algorithm, key? }) of an SA, checked; an integrity algorithm must be one the table knows. */
function checkAlgorithm(v: unknown, field: string, known?: object): { algorithm: string; key?: Uint8Array } | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object') throw typeError(field, 'an object { algorithm, key }', v);
  const { algorithm, key } = v as { algorithm?: unknown; key?: unknown };
  if (typeof algorithm !== 'string') throw typeError(`${field}.algorithm`, 'an algorithm name', algorithm);
  if (known && !Object.hasOwn(known, algorithm)) throw rangeError(`${field}.algorithm`, `one of ${Object.keys(known).join(', ')}`, algorithm);
  if (key !== undefined && !(key instanceof Uint8Array)) throw typeError(`${field}.key`, 'a Uint8Array', key);
  return { algorithm, key };
}

/** The caller's SAs, each checked and copied (what a getter or a Proxy throws on the way is named). */
function checkedSas(sas: unknown): TableSa[] {
  if (sas === null || typeof sas !== 'object' || typeof (sas as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw typeError('sas', 'an iterable of SAs', sas);
  }
  return readingCallerValue('sas', () => {
    const out: TableSa[] = [];
    let i = 0;
    for (const v of sas as Iterable<unknown>) {
      const name = `sas[${i++}]`;
      if (v === null || typeof v !== 'object') throw typeError(name, 'an SA { src, dst, spi, ... }', v);
      const o = v as Record<string, unknown>;
      const protocol = o.protocol ?? 'esp';
      if (typeof protocol !== 'string') throw typeError(`${name}.protocol`, "'esp', 'ah' or 'ipcomp'", protocol);
      out.push({
        protocol,
        src: checkAddress(o.src, `${name}.src`),
        dst: checkAddress(o.dst, `${name}.dst`),
        spi: checkSpi(o.spi, `${name}.spi`),
        encryption: checkAlgorithm(o.encryption, `${name}.encryption`) as TableSa['encryption'],
        integrity: checkAlgorithm(o.integrity, `${name}.integrity`, INTEGRITY) as TableSa['integrity'],
      });
    }
    return out;
  });
}

const hex = (b: Uint8Array): string => `0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`;
const spiText = (spi: number): string => `0x${(spi >>> 0).toString(16).padStart(8, '0')}`;

/**
 * The esp_sa table for `sas` (ESP SAs with their keys: read from an SA database opened with `revealKeys: true`). An
 * SA without its key bytes is an error (ERR_NATT_KEYS_HIDDEN): a table without keys decrypts nothing.
 */
export function espSaTable(sas: Iterable<SecurityAssociation>): EspSaTable {
  let text =
    '# Wireshark ESP SAs written by natt capture: THIS FILE HOLDS KEYS, keep it private (mode 0600).\n' +
    '# Copy it to a Wireshark profile as esp_sa (~/.config/wireshark/esp_sa), and set esp.enable_encryption_decode:TRUE.\n';
  let entries = 0;
  const skipped: string[] = [];
  for (const sa of checkedSas(sas)) {
    if (sa.protocol !== 'esp') continue;
    const who = `SPI ${spiText(sa.spi)} (${sa.src} -> ${sa.dst})`;
    const enc = sa.encryption?.algorithm ?? 'null';
    const encName = Object.hasOwn(ENCRYPTION, enc) ? ENCRYPTION[enc] : undefined;
    const integ = sa.integrity?.algorithm ?? 'none';
    if (encName === undefined) {
      const why = `${who}: Wireshark's ESP dissector cannot decrypt ${enc}`;
      skipped.push(why);
      text += `# ${why}\n`;
      continue;
    }
    const encKey = sa.encryption?.key ?? new Uint8Array(0);
    const authKey = sa.integrity?.key ?? new Uint8Array(0);
    if ((enc !== 'null' && encKey.length === 0) || (integ !== 'none' && authKey.length === 0)) {
      throw new NattError('ERR_NATT_KEYS_HIDDEN', `${who}: its keys are hidden (open the SA database with revealKeys: true to write an esp_sa table)`);
    }
    const family = sa.dst.includes(':') ? 'IPv6' : 'IPv4';
    const fields = [family, sa.src, sa.dst, spiText(sa.spi), encName, enc === 'null' ? '' : hex(encKey), INTEGRITY[integ], integ === 'none' ? '' : hex(authKey)];
    text += `${fields.map((f) => `"${f}"`).join(',')}\n`;
    entries++;
  }
  return { text, entries, skipped };
}

/**
 * Write the esp_sa table to `file` with mode 0600 (an existing file is replaced by a new one, so its old mode never
 * applies). Returns what espSaTable() made, without the text.
 */
export function writeEspSaFile(file: string, sas: Iterable<SecurityAssociation>): Omit<EspSaTable, 'text'> {
  stringOption(file, 'file');
  const t = espSaTable(sas);
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, t.text);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  return { entries: t.entries, skipped: t.skipped };
}
