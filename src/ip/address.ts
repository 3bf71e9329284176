// IP addresses and prefixes as bytes: text ↔ bytes, prefix parsing and matching for SPD selectors.

import { isIPv4, isIPv6 } from 'node:net';
import { rangeError, typeError } from '../errors';

/** An address in wire form: 4 bytes (IPv4) or 16 bytes (IPv6). */
export type AddressBytes = Uint8Array;

/** A parsed prefix: the network's bytes and its length in bits. */
export interface Prefix {
  family: 4 | 6;
  bytes: Uint8Array;
  bits: number;
}

/** Text address → bytes. Throws a TypeError naming `option` when it is not an IPv4/IPv6 address. */
export function addressToBytes(text: string, option = 'address'): AddressBytes {
  if (typeof text !== 'string') throw typeError(option, 'an IPv4 or IPv6 address string', text);
  if (isIPv4(text)) {
    const out = new Uint8Array(4);
    const parts = text.split('.');
    for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
    return out;
  }
  const zone = text.indexOf('%');
  const t = zone >= 0 ? text.slice(0, zone) : text;
  if (!isIPv6(t)) throw typeError(option, 'an IPv4 or IPv6 address string', text);
  return ipv6ToBytes(t);
}

function ipv6ToBytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let head = text;
  let tail = '';
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    head = text.slice(0, dbl);
    tail = text.slice(dbl + 2);
  }
  const groups = (s: string): number[] => {
    if (s === '') return [];
    const res: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map(Number);
        res.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else res.push(parseInt(g, 16));
    }
    return res;
  };
  const h = groups(head);
  const t = groups(tail);
  for (let i = 0; i < h.length; i++) {
    out[2 * i] = h[i] >> 8;
    out[2 * i + 1] = h[i] & 0xff;
  }
  for (let i = 0; i < t.length; i++) {
    const j = 8 - t.length + i;
    out[2 * j] = t[i] >> 8;
    out[2 * j + 1] = t[i] & 0xff;
  }
  return out;
}

/** Bytes (4 or 16, read at `offset`) → the canonical text form (`'10.0.0.1'`, `'2001:db8::1'`). */
export function bytesToAddress(buf: Uint8Array, offset = 0, length: 4 | 16 = 4): string {
  if (length === 4) return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((buf[offset + 2 * i] << 8) | buf[offset + 2 * i + 1]);
  // Longest run of zero groups (length ≥ 2) becomes '::' (RFC 5952).
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(g);
  return `${hex(g.slice(0, bestAt))}::${hex(g.slice(bestAt + bestLen))}`;
}

/** Parse `'10.0.0.0/24'` or a bare address (a host prefix). `option` names the caller's field in errors. */
export function parsePrefix(text: string, option = 'selector'): Prefix {
  if (typeof text !== 'string') throw typeError(option, 'an address or prefix string', text);
  const slash = text.indexOf('/');
  const bytes = addressToBytes(slash >= 0 ? text.slice(0, slash) : text, option);
  const max = bytes.length * 8;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    bits = /^\d{1,3}$/.test(b) ? Number(b) : NaN;
    if (!(bits >= 0 && bits <= max)) throw rangeError(option, `a prefix length 0..${max}`, text);
  }
  // Clear host bits so two spellings of one prefix compare equal.
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return { family: bytes.length === 4 ? 4 : 6, bytes, bits };
}

/** The prefix in text: `'10.0.0.0/24'`. */
export function formatPrefix(p: Prefix): string {
  return `${bytesToAddress(p.bytes, 0, p.family === 4 ? 4 : 16)}/${p.bits}`;
}

/** Does the address at `buf[offset..]` (of the prefix's family) fall inside `p`? No allocation. */
export function prefixMatches(p: Prefix, buf: Uint8Array, offset: number): boolean {
  let bits = p.bits;
  const pb = p.bytes;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    if (bits >= 8) {
      if (pb[i] !== buf[offset + i]) return false;
    } else {
      const mask = (0xff << (8 - bits)) & 0xff;
      if ((buf[offset + i] & mask) !== pb[i]) return false;
    }
  }
  return true;
}

/** Same address? (text forms may differ: '::ffff:…' is not folded; IPv6 text is compared as bytes). */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    const x = addressToBytes(a);
    const y = addressToBytes(b);
    return x.length === y.length && x.every((v, i) => v === y[i]);
  } catch {
    return false;
  }
}

/** 4 or 6 for a text address, 0 when it is neither. */
export function addressFamily(text: string): 0 | 4 | 6 {
  return isIPv4(text) ? 4 : isIPv6(text.split('%')[0]) ? 6 : 0;
}
