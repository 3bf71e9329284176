// IPv4/IPv6 packets: header parse and build, Internet checksums, transport-mode rebuild and the RFC 3948 §3.1.2 fix-up.

import { addressToBytes } from './address';

export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ESP = 50;

/**
 * What the datapath needs from an IP header, filled in place by readIpHeader (no allocation per packet).
 * Addresses stay in the packet: `srcOffset`/`dstOffset` point at them, `addrLength` is 4 or 16.
 */
export class IpView {
  version: 4 | 6 = 4;
  /** Bytes of the IP header (IPv6: the 40-byte base header; extension headers are part of the payload). */
  headerLength = 0;
  /** IPv4 total length / IPv6 40 + payload length, as the header says. */
  totalLength = 0;
  /** The protocol after the IP header(s): for IPv6, after walking the extension headers. */
  proto = 0;
  /** The Next Header / Protocol field of the base header itself. */
  nextHeader = 0;
  srcOffset = 0;
  dstOffset = 0;
  addrLength: 4 | 16 = 4;
  /** TCP/UDP/SCTP ports, 0 when the protocol has none or the packet is a non-first fragment. */
  sport = 0;
  dport = 0;
  /** Offset of the upper-layer header (after IPv6 extension headers). */
  l4Offset = 0;
}

const IPV6_EXT = new Set([0, 43, 60, 135, 139, 140]); // hop-by-hop, routing, dest-opts, mobility, HIP, shim6

/** Parse the IP header of `buf` into `v`. Returns false (and leaves `v` partial) when it is not a sane IP packet. */
export function readIpHeader(buf: Uint8Array, v: IpView): boolean {
  if (buf.length < 1) return false;
  const ver = buf[0] >> 4;
  let l4: number;
  let proto: number;
  let fragmentTail = false;
  if (ver === 4) {
    if (buf.length < 20) return false;
    const ihl = (buf[0] & 0x0f) * 4;
    const total = (buf[2] << 8) | buf[3];
    if (ihl < 20 || total < ihl || total > buf.length) return false;
    v.version = 4;
    v.headerLength = ihl;
    v.totalLength = total;
    v.nextHeader = proto = buf[9];
    v.srcOffset = 12;
    v.dstOffset = 16;
    v.addrLength = 4;
    fragmentTail = (((buf[6] & 0x1f) << 8) | buf[7]) !== 0;
    l4 = ihl;
  } else if (ver === 6) {
    if (buf.length < 40) return false;
    const total = 40 + ((buf[4] << 8) | buf[5]);
    if (total > buf.length) return false;
    v.version = 6;
    v.headerLength = 40;
    v.totalLength = total;
    v.nextHeader = proto = buf[6];
    v.srcOffset = 8;
    v.dstOffset = 24;
    v.addrLength = 16;
    l4 = 40;
    // Walk extension headers (bounded by the packet) to find the upper-layer protocol for selectors.
    for (let n = 0; n < 8; n++) {
      if (proto === 44) {
        if (l4 + 8 > total) return false;
        fragmentTail = (((buf[l4 + 2] << 8) | buf[l4 + 3]) & 0xfff8) !== 0;
        proto = buf[l4];
        l4 += 8;
      } else if (IPV6_EXT.has(proto)) {
        if (l4 + 8 > total) return false;
        const next = buf[l4];
        l4 += (buf[l4 + 1] + 1) * 8;
        proto = next;
      } else break;
    }
    if (l4 > total) return false;
  } else return false;
  v.proto = proto;
  v.l4Offset = l4;
  v.sport = 0;
  v.dport = 0;
  if (!fragmentTail && (proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === 132 || proto === 136)) {
    if (l4 + 4 <= v.totalLength) {
      v.sport = (buf[l4] << 8) | buf[l4 + 1];
      v.dport = (buf[l4 + 2] << 8) | buf[l4 + 3];
    }
  }
  return true;
}

/** Below this many bytes the plain 16-bit loop is as fast as setting up the 32-bit one. */
const WIDE_SUM_MIN = 64;

/** The DataView over the ArrayBuffer behind the last buffer summed (one per slab, not one per call). */
let wideBuffer: ArrayBufferLike | null = null;
let wideView: DataView | null = null;

/** One's-complement sum of `buf[start..end)` added to `sum` (not inverted; only its folded value is defined: foldSum). */
export function onesSum(buf: Uint8Array, start: number, end: number, sum = 0): number {
  if (end - start >= WIDE_SUM_MIN && start >= 0 && end <= buf.length && (start | 0) === start && (end | 0) === end) {
    return sum + wideSum(buf, start, end);
  }
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (i < end) sum += buf[i] << 8;
  return sum;
}

/** onesSum's 32-bit path over the DataView of the buffer's ArrayBuffer (made once per buffer, not per call). */
function wideSum(buf: Uint8Array, start: number, end: number): number {
  if (buf.buffer !== wideBuffer || wideView === null) {
    wideBuffer = buf.buffer;
    wideView = new DataView(buf.buffer);
  }
  return wordSum(wideView, buf.byteOffset + start, end - start);
}

/**
 * The one's-complement sum of `n` bytes at absolute offset `p` of `dv`, as big-endian 16-bit words counted from `p`,
 * folded to 16 bits (the 16-bit loop's sum modulo 0xffff, so every folded checksum is the same). Whole little-endian
 * 32-bit words are added into a double (exact: 2^14 words of 2^32 stay far below 2^53), which is the byte-swapped
 * sum; it is folded and swapped back once at the end.
 */
export function wordSum(dv: DataView, p: number, n: number): number {
  let s = 0;
  let t = 0;
  const stop = p + (n & ~15);
  for (; p < stop; p += 16) {
    s += dv.getUint32(p, true) + dv.getUint32(p + 4, true);
    t += dv.getUint32(p + 8, true) + dv.getUint32(p + 12, true);
  }
  s += t;
  for (let left = (n & 15) >>> 2; left > 0; left--, p += 4) s += dv.getUint32(p, true);
  if ((n & 2) !== 0) {
    s += dv.getUint16(p, true);
    p += 2;
  }
  if ((n & 1) !== 0) s += dv.getUint8(p); // an even position from the start: the high byte of its word, low here
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return ((s & 0xff) << 8) | (s >>> 8);
}

/** Fold a 32-bit running sum to 16 bits (still not inverted). */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** The Internet checksum (RFC 1071) of `buf[start..end)`. */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length): number {
  return ~foldSum(onesSum(buf, start, end)) & 0xffff;
}

/** Pseudo-header sum for TCP/UDP over IPv4/IPv6 (RFC 768 / RFC 8200 §8.1), addresses taken from `addrs`. */
function pseudoSum(addrs: Uint8Array, srcOff: number, dstOff: number, alen: number, proto: number, l4len: number): number {
  let sum = onesSum(addrs, srcOff, srcOff + alen);
  sum = onesSum(addrs, dstOff, dstOff + alen, sum);
  return sum + proto + (l4len & 0xffff) + Math.floor(l4len / 0x10000);
}

/** Offset of the checksum field inside a TCP (16) or UDP (6) header, or -1. */
function checksumField(proto: number): number {
  return proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : -1;
}

/**
 * Recompute the TCP or UDP checksum of the packet in place (addresses from its own IP header).
 * An IPv4 UDP checksum of 0 ("none") is left alone. Returns false when there is nothing to fix.
 */
export function recomputeL4Checksum(pkt: Uint8Array, v: IpView): boolean {
  const f = checksumField(v.proto);
  if (f < 0 || v.l4Offset + f + 2 > v.totalLength) return false;
  const at = v.l4Offset + f;
  if (v.version === 4 && v.proto === IPPROTO_UDP && pkt[at] === 0 && pkt[at + 1] === 0) return false;
  pkt[at] = 0;
  pkt[at + 1] = 0;
  const l4len = v.totalLength - v.l4Offset;
  let sum = pseudoSum(pkt, v.srcOffset, v.dstOffset, v.addrLength, v.proto, l4len);
  sum = onesSum(pkt, v.l4Offset, v.totalLength, sum);
  let c = ~foldSum(sum) & 0xffff;
  if (c === 0 && v.proto === IPPROTO_UDP) c = 0xffff;
  pkt[at] = c >> 8;
  pkt[at + 1] = c & 0xff;
  return true;
}

/**
 * RFC 3948 §3.1.2 incremental fix-up (RFC 1624 arithmetic): the sender computed the TCP/UDP checksum with the
 * original addresses `oldSrc`/`oldDst` (NAT-OA); the packet now carries the addresses in its IP header.
 */
export function fixL4ChecksumForNat(pkt: Uint8Array, v: IpView, oldSrc: Uint8Array, oldDst: Uint8Array): boolean {
  const f = checksumField(v.proto);
  if (f < 0 || v.l4Offset + f + 2 > v.totalLength) return false;
  if (oldSrc.length !== v.addrLength || oldDst.length !== v.addrLength) return false;
  const at = v.l4Offset + f;
  const old = (pkt[at] << 8) | pkt[at + 1];
  if (v.version === 4 && v.proto === IPPROTO_UDP && old === 0) return false;
  // HC' = ~(~HC + ~m + m'), summed 16 bits at a time over each changed address word.
  let sum = ~old & 0xffff;
  for (let i = 0; i < v.addrLength; i += 2) {
    sum += ~((oldSrc[i] << 8) | oldSrc[i + 1]) & 0xffff;
    sum += (pkt[v.srcOffset + i] << 8) | pkt[v.srcOffset + i + 1];
    sum += ~((oldDst[i] << 8) | oldDst[i + 1]) & 0xffff;
    sum += (pkt[v.dstOffset + i] << 8) | pkt[v.dstOffset + i + 1];
  }
  let c = ~foldSum(sum) & 0xffff;
  if (c === 0 && v.proto === IPPROTO_UDP) c = 0xffff;
  pkt[at] = c >> 8;
  pkt[at + 1] = c & 0xff;
  return true;
}

/** Bytes of the IP header writeIpHeader builds for `version`. */
export function ipHeaderLength(version: 4 | 6): number {
  return version === 4 ? 20 : 40;
}

/**
 * Write a minimal IP header at `out[0..]` for a payload of `payloadLength` bytes: IPv4 (IHL 5, TTL 64, checksum
 * filled) or IPv6 (hop limit 64). Addresses are 4 or 16 bytes matching `version`.
 */
export function writeIpHeader(
  out: Uint8Array,
  version: 4 | 6,
  proto: number,
  src: Uint8Array,
  dst: Uint8Array,
  payloadLength: number,
  ttl = 64,
): void {
  if (version === 4) {
    const total = 20 + payloadLength;
    out[0] = 0x45;
    out[1] = 0;
    out[2] = total >> 8;
    out[3] = total & 0xff;
    out[4] = out[5] = 0; // identification
    out[6] = 0x40; // DF
    out[7] = 0;
    out[8] = ttl;
    out[9] = proto;
    out[10] = out[11] = 0;
    out.set(src, 12);
    out.set(dst, 16);
    const c = internetChecksum(out, 0, 20);
    out[10] = c >> 8;
    out[11] = c & 0xff;
  } else {
    out[0] = 0x60;
    out[1] = out[2] = out[3] = 0;
    out[4] = payloadLength >> 8;
    out[5] = payloadLength & 0xff;
    out[6] = proto;
    out[7] = ttl;
    out.set(src, 8);
    out.set(dst, 24);
  }
}

/**
 * Transport mode, inbound: rebuild an IP packet around a decrypted ESP payload, with the outer addresses
 * (`src`, `dst`, as bytes) and `proto` = the ESP Next Header. One allocation: the returned packet.
 */
export function rebuildTransportPacket(payload: Uint8Array, proto: number, src: Uint8Array, dst: Uint8Array): Buffer {
  const version = src.length === 4 ? 4 : 6;
  const hl = ipHeaderLength(version);
  const out = Buffer.allocUnsafe(hl + payload.length);
  writeIpHeader(out, version, proto, src, dst, payload.length);
  out.set(payload, hl);
  return out;
}

/** Build a UDP datagram inside an IP packet (used by tests, the demo and the pcap writer). Checksum computed. */
export function buildUdpPacket(src: string, sport: number, dst: string, dport: number, data: Uint8Array): Buffer {
  const s = addressToBytes(src, 'src');
  const d = addressToBytes(dst, 'dst');
  const version = s.length === 4 ? 4 : 6;
  const hl = ipHeaderLength(version);
  const ulen = 8 + data.length;
  const out = Buffer.alloc(hl + ulen);
  writeIpHeader(out, version, IPPROTO_UDP, s, d, ulen);
  out.writeUInt16BE(sport, hl);
  out.writeUInt16BE(dport, hl + 2);
  out.writeUInt16BE(ulen, hl + 4);
  out.set(data, hl + 8);
  const v = new IpView();
  readIpHeader(out, v);
  out[hl + 6] = out[hl + 7] = 0xff; // any non-zero: recompute then overwrites it
  recomputeL4Checksum(out, v);
  return out;
}

/** Verify the TCP/UDP checksum of a whole IP packet (true when it adds up, or IPv4 UDP sent without one). */
export function l4ChecksumOk(pkt: Uint8Array): boolean {
  const v = new IpView();
  if (!readIpHeader(pkt, v)) return false;
  const f = checksumField(v.proto);
  if (f < 0) return true;
  const at = v.l4Offset + f;
  if (v.version === 4 && v.proto === IPPROTO_UDP && pkt[at] === 0 && pkt[at + 1] === 0) return true;
  const l4len = v.totalLength - v.l4Offset;
  let sum = pseudoSum(pkt, v.srcOffset, v.dstOffset, v.addrLength, v.proto, l4len);
  sum = onesSum(pkt, v.l4Offset, v.totalLength, sum);
  return foldSum(sum) === 0xffff;
}
