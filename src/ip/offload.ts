// Userland segmentation offload for a TUN with IFF_VNET_HDR: the virtio_net_hdr, TSO/USO superpackets split into plain IP packets (Segmenter), TCP segments coalesced into GSO writes (Coalescer).

import { endianness } from 'node:os';
import { IPPROTO_TCP, IPPROTO_UDP, foldSum, onesSum, wordSum } from './packet';

// ---------------------------------------------------------------------------------------------------------------
// struct virtio_net_hdr (10 bytes, no num_buffers): u8 flags, u8 gso_type, u16 hdr_len, u16 gso_size,
// u16 csum_start, u16 csum_offset; the u16 fields in the host's byte order (a TUN without TUNSETVNETBE/LE).
// ---------------------------------------------------------------------------------------------------------------

export const VNET_HDR_LEN = 10;
/** flags: the L4 checksum is partial (CHECKSUM_PARTIAL): complete it from csum_start to the end. */
export const VNET_HDR_F_NEEDS_CSUM = 1;
/** flags: the checksum was already verified (CHECKSUM_UNNECESSARY). */
export const VNET_HDR_F_DATA_VALID = 2;
export const VNET_HDR_GSO_NONE = 0;
export const VNET_HDR_GSO_TCPV4 = 1;
/** UFO: IP fragmentation of a big UDP datagram (legacy; not supported here). */
export const VNET_HDR_GSO_UDP = 3;
export const VNET_HDR_GSO_TCPV6 = 4;
/** USO: UDP segmentation (one datagram per gso_size bytes of payload). */
export const VNET_HDR_GSO_UDP_L4 = 5;
/** Or-ed into gso_type: the TCP stream uses ECN (CWR only on the first segment). */
export const VNET_HDR_GSO_ECN = 0x80;

const HOST_LE = endianness() === 'LE';

/** The fields of one virtio_net_hdr, filled in place by readVnetHeader. */
export class VnetHeader {
  flags = 0;
  gsoType = 0;
  hdrLen = 0;
  gsoSize = 0;
  csumStart = 0;
  csumOffset = 0;
}

function rd16(b: Uint8Array, at: number): number {
  return HOST_LE ? b[at] | (b[at + 1] << 8) : (b[at] << 8) | b[at + 1];
}

function wr16(b: Uint8Array, at: number, v: number): void {
  if (HOST_LE) {
    b[at] = v & 0xff;
    b[at + 1] = (v >>> 8) & 0xff;
  } else {
    b[at] = (v >>> 8) & 0xff;
    b[at + 1] = v & 0xff;
  }
}

/** Read the virtio_net_hdr at `buf[off..off+10)` into `out`. False (and `out` untouched) when the bytes are not there. */
export function readVnetHeader(buf: Uint8Array, off: number, out: VnetHeader): boolean {
  if (!(off >= 0) || off + VNET_HDR_LEN > buf.length) return false;
  out.flags = buf[off];
  out.gsoType = buf[off + 1];
  out.hdrLen = rd16(buf, off + 2);
  out.gsoSize = rd16(buf, off + 4);
  out.csumStart = rd16(buf, off + 6);
  out.csumOffset = rd16(buf, off + 8);
  return true;
}

/** Write a virtio_net_hdr at `buf[off..off+10)` (all zero: a plain packet, nothing to do). */
export function writeVnetHeader(
  buf: Uint8Array,
  off: number,
  flags = 0,
  gsoType = 0,
  hdrLen = 0,
  gsoSize = 0,
  csumStart = 0,
  csumOffset = 0,
): void {
  buf[off] = flags;
  buf[off + 1] = gsoType;
  wr16(buf, off + 2, hdrLen);
  wr16(buf, off + 4, gsoSize);
  wr16(buf, off + 6, csumStart);
  wr16(buf, off + 8, csumOffset);
}

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers: big-endian fields, the copy that sums, the pseudo-header.
// ---------------------------------------------------------------------------------------------------------------

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const TCP_CWR = 0x80;

/** IPv6 extension headers (hop-by-hop, routing, fragment, dest-opts, AH, mobility, HIP, shim6). */
function isIpv6Extension(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 60 || nh === 51 || nh === 135 || nh === 139 || nh === 140;
}

function be16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function be32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** Buffer's copy (a memcpy, no object made) works on any Uint8Array. */
const copyBytes = Buffer.prototype.copy as (this: Uint8Array, target: Uint8Array, targetStart: number, sourceStart: number, sourceEnd: number) => number;

/**
 * Copy `n` bytes from `sv` at `sp` to `dv` at `dp` (absolute offsets in the two ArrayBuffers; `su`/`du` are byte
 * views over the whole of each) and return their one's-complement sum as big-endian 16-bit words counted from `sp`,
 * folded to 16 bits. The copy is a memcpy; the sum is `wordSum` over the source.
 */
function copySum(su: Uint8Array, sv: DataView, sp: number, du: Uint8Array, dp: number, n: number): number {
  copyBytes.call(su, du, dp, sp, sp + n);
  return wordSum(sv, sp, n);
}

/** Unfolded sum of the addresses of the IP header at `b[ip..]` and the protocol (the pseudo-header less its length). */
function addressSum(b: Uint8Array, ip: number, v6: boolean, proto: number): number {
  return (v6 ? onesSum(b, ip + 8, ip + 40) : onesSum(b, ip + 12, ip + 20)) + proto;
}

/** The IPv4 header checksum of `b[ip..ip+ihl)` rewritten. */
function fixIpv4HeaderChecksum(b: Uint8Array, ip: number, ihl: number): void {
  b[ip + 10] = 0;
  b[ip + 11] = 0;
  put16(b, ip + 10, ~foldSum(onesSum(b, ip, ip + ihl)) & 0xffff);
}

let emptyView: DataView | null = null;
function placeholderView(): DataView {
  if (emptyView === null) emptyView = new DataView(new ArrayBuffer(0));
  return emptyView;
}

// ---------------------------------------------------------------------------------------------------------------
// Segmenter: one read (virtio_net_hdr + packet) → plain IP packets.
// ---------------------------------------------------------------------------------------------------------------

/** The read is shorter than the virtio_net_hdr, or its packet shorter than the IP or L4 header it announces. */
export const SEGMENT_DROP_SHORT = -1;
/** The virtio_net_hdr itself: unknown flags or gso_type, gso_size 0, hdr_len that does not fit the headers. */
export const SEGMENT_DROP_BAD_HEADER = -2;
/** The packet of a GSO read: IP version or L4 protocol not the gso_type's, lengths not the IP header's, a fragment. */
export const SEGMENT_DROP_BAD_PACKET = -3;
/** UFO (gso_type UDP), or IPv6 extension headers in a GSO packet. */
export const SEGMENT_DROP_UNSUPPORTED = -4;
/** NEEDS_CSUM with csum_start/csum_offset outside the packet, odd, or (GSO) not at the TCP/UDP checksum. */
export const SEGMENT_DROP_BAD_CHECKSUM_RANGE = -5;
/** A packet (or one of its segments) longer than the Segmenter's maxPacket. */
export const SEGMENT_DROP_TOO_BIG = -6;

/** Names of the drop codes, indexed by minus the code: SEGMENT_DROP_REASONS[-code]. Index 0 is unused (''). */
export const SEGMENT_DROP_REASONS: readonly string[] = Object.freeze([
  '',
  'short',
  'badHeader',
  'badPacket',
  'unsupported',
  'badChecksumRange',
  'tooBig',
]);

const MODE_PLAIN = 0;
const MODE_CSUM = 1;
const MODE_TCP = 2;
const MODE_UDP = 3;

/**
 * Splits what a TUN with IFF_VNET_HDR and TUN_F_CSUM|TSO4|TSO6|USO4|USO6 reads into plain IP packets with complete
 * checksums, as the kernel's tcp_gso_segment / __udp_gso_segment would. Reused for every read; allocates nothing
 * per packet (a DataView when the source or destination ArrayBuffer changes, i.e. once per slab).
 *
 * `begin()` checks one read and says how many packets it yields; `emit()` writes them into fixed-size slots,
 * as many as fit per call, resuming where it stopped. The source bytes must stay untouched until the last emit.
 */
export class Segmenter {
  /** The largest packet this Segmenter writes: begin() refuses ('tooBig') a read with a longer packet or segment. */
  readonly maxPacket: number;
  /** Packets the current read yields (0 before begin() and after a drop). */
  count = 0;
  /** Packets of the current read already emitted. */
  emitted = 0;
  /** The longest packet of the current read (emit() needs slots at least this long). */
  largest = 0;
  /** True when the current read is one plain packet to take as it is: src[packetOffset, +packetLength), no copy needed. */
  plain = false;
  /** Where the IP packet of the current read starts in its source (after the virtio_net_hdr), and its length. */
  packetOffset = 0;
  packetLength = 0;

  private mode = MODE_PLAIN;
  private src: Uint8Array = new Uint8Array(0);
  private srcBuffer: ArrayBufferLike | null = null;
  private srcView: DataView = placeholderView();
  private dstBuffer: ArrayBufferLike | null = null;
  // Byte views over the whole source and destination ArrayBuffers (for the memcpy), made with the DataViews.
  private srcBytes: Uint8Array = new Uint8Array(0);
  private dstBytes: Uint8Array = new Uint8Array(0);
  private dstView: DataView = placeholderView();
  private v6 = false;
  private ipLen = 0; // IP header length
  private hdrLen = 0; // IP + L4 header length
  private gsoSize = 0;
  private payload = 0; // L4 payload bytes of the whole read
  private csumStart = 0;
  private csumOffset = 0;
  private seq0 = 0;
  private id0 = 0;
  private tcpFlags = 0;
  private pseudo = 0; // addresses + protocol

  constructor(maxPacket = 65535) {
    if (!Number.isInteger(maxPacket) || maxPacket < 1 || maxPacket > 65535 + 40) {
      throw new RangeError(`Segmenter: maxPacket must be an integer from 1 to 65575, not ${maxPacket}`);
    }
    this.maxPacket = maxPacket;
  }

  /** Packets of the current read not yet emitted. */
  get remaining(): number {
    return this.count - this.emitted;
  }

  private drop(code: number): number {
    this.count = 0;
    this.emitted = 0;
    this.largest = 0;
    this.plain = false;
    return code;
  }

  /**
   * Take one read: `src[off, off+len)` is the virtio_net_hdr followed by the IP packet. Returns how many plain IP
   * packets it yields (≥ 1), or a negative SEGMENT_DROP_* code (name: SEGMENT_DROP_REASONS[-code]).
   */
  begin(src: Uint8Array, off: number, len: number): number {
    if (!(off >= 0) || !(len >= 0) || (off | 0) !== off || (len | 0) !== len || off + len > src.length) {
      return this.drop(SEGMENT_DROP_SHORT);
    }
    if (len <= VNET_HDR_LEN) return this.drop(SEGMENT_DROP_SHORT);
    const flags = src[off];
    const gsoType = src[off + 1];
    const hdrLenField = rd16(src, off + 2);
    const gsoSize = rd16(src, off + 4);
    const csumStart = rd16(src, off + 6);
    const csumOffset = rd16(src, off + 8);
    if ((flags & ~(VNET_HDR_F_NEEDS_CSUM | VNET_HDR_F_DATA_VALID)) !== 0) return this.drop(SEGMENT_DROP_BAD_HEADER);
    const needsCsum = (flags & VNET_HDR_F_NEEDS_CSUM) !== 0;
    const p = off + VNET_HDR_LEN;
    const plen = len - VNET_HDR_LEN;
    const gso = gsoType & ~VNET_HDR_GSO_ECN;

    if (src !== this.src) this.src = src;
    if (src.buffer !== this.srcBuffer) {
      this.srcBuffer = src.buffer;
      this.srcView = new DataView(src.buffer);
      this.srcBytes = new Uint8Array(src.buffer);
    }
    this.packetOffset = p;
    this.packetLength = plen;
    this.emitted = 0;

    if (gso === VNET_HDR_GSO_NONE) {
      if (gsoType !== VNET_HDR_GSO_NONE) return this.drop(SEGMENT_DROP_BAD_HEADER); // ECN without GSO
      if (plen > this.maxPacket) return this.drop(SEGMENT_DROP_TOO_BIG);
      if (needsCsum) {
        if (csumStart + csumOffset + 2 > plen || (csumOffset & 1) !== 0) {
          return this.drop(SEGMENT_DROP_BAD_CHECKSUM_RANGE);
        }
        this.mode = MODE_CSUM;
        this.csumStart = csumStart;
        this.csumOffset = csumOffset;
        this.plain = false;
      } else {
        this.mode = MODE_PLAIN;
        this.plain = true;
      }
      this.count = 1;
      this.largest = plen;
      return 1;
    }
    if (gso === VNET_HDR_GSO_UDP) return this.drop(SEGMENT_DROP_UNSUPPORTED);
    if (gso !== VNET_HDR_GSO_TCPV4 && gso !== VNET_HDR_GSO_TCPV6 && gso !== VNET_HDR_GSO_UDP_L4) {
      return this.drop(SEGMENT_DROP_BAD_HEADER);
    }
    const tcp = gso !== VNET_HDR_GSO_UDP_L4;
    if (!tcp && gsoType !== gso) return this.drop(SEGMENT_DROP_BAD_HEADER); // ECN is TCP's
    if (gsoSize === 0) return this.drop(SEGMENT_DROP_BAD_HEADER);

    // The IP header.
    const ver = src[p] >> 4;
    if ((gso === VNET_HDR_GSO_TCPV4 && ver !== 4) || (gso === VNET_HDR_GSO_TCPV6 && ver !== 6)) {
      return this.drop(SEGMENT_DROP_BAD_PACKET);
    }
    let ipLen: number;
    let proto: number;
    if (ver === 4) {
      if (plen < 20) return this.drop(SEGMENT_DROP_SHORT);
      ipLen = (src[p] & 0x0f) * 4;
      if (ipLen < 20) return this.drop(SEGMENT_DROP_BAD_PACKET);
      if (plen < ipLen) return this.drop(SEGMENT_DROP_SHORT);
      if (be16(src, p + 2) !== plen) return this.drop(SEGMENT_DROP_BAD_PACKET);
      if ((be16(src, p + 6) & 0x3fff) !== 0) return this.drop(SEGMENT_DROP_BAD_PACKET); // MF or an offset
      proto = src[p + 9];
    } else if (ver === 6) {
      if (plen < 40) return this.drop(SEGMENT_DROP_SHORT);
      ipLen = 40;
      if (40 + be16(src, p + 4) !== plen) return this.drop(SEGMENT_DROP_BAD_PACKET);
      proto = src[p + 6];
      if (isIpv6Extension(proto)) return this.drop(SEGMENT_DROP_UNSUPPORTED);
    } else {
      return this.drop(SEGMENT_DROP_BAD_PACKET);
    }
    if (proto !== (tcp ? IPPROTO_TCP : IPPROTO_UDP)) return this.drop(SEGMENT_DROP_BAD_PACKET);

    // The L4 header, from the packet itself (hdr_len is only checked against it).
    const l4 = p + ipLen;
    let l4Len: number;
    if (tcp) {
      if (plen < ipLen + 20) return this.drop(SEGMENT_DROP_SHORT);
      l4Len = (src[l4 + 12] >> 4) * 4;
      if (l4Len < 20) return this.drop(SEGMENT_DROP_BAD_PACKET);
      if (plen < ipLen + l4Len) return this.drop(SEGMENT_DROP_SHORT);
    } else {
      if (plen < ipLen + 8) return this.drop(SEGMENT_DROP_SHORT);
      l4Len = 8;
      if (be16(src, l4 + 4) !== plen - ipLen) return this.drop(SEGMENT_DROP_BAD_PACKET);
    }
    const hdrLen = ipLen + l4Len;
    // The kernel may say more than the headers (its linear part, up to the whole packet), never less.
    if (hdrLenField !== 0 && (hdrLenField < hdrLen || hdrLenField > plen)) return this.drop(SEGMENT_DROP_BAD_HEADER);
    if (needsCsum && (csumStart !== ipLen || csumOffset !== (tcp ? 16 : 6))) {
      return this.drop(SEGMENT_DROP_BAD_CHECKSUM_RANGE);
    }
    const payload = plen - hdrLen;
    const count = payload <= gsoSize ? 1 : Math.ceil(payload / gsoSize);
    const largest = hdrLen + (payload < gsoSize ? payload : gsoSize);
    if (largest > this.maxPacket) return this.drop(SEGMENT_DROP_TOO_BIG);

    this.mode = tcp ? MODE_TCP : MODE_UDP;
    this.plain = false;
    this.v6 = ver === 6;
    this.ipLen = ipLen;
    this.hdrLen = hdrLen;
    this.gsoSize = gsoSize;
    this.payload = payload;
    this.seq0 = tcp ? be32(src, l4 + 4) : 0;
    this.tcpFlags = tcp ? src[l4 + 13] : 0;
    this.id0 = ver === 4 ? be16(src, p + 4) : 0;
    this.pseudo = addressSum(src, p, ver === 6, proto);
    this.count = count;
    this.largest = largest;
    return count;
  }

  /**
   * Write the next packets of the current read, at most `max`: packet k at dst[dstOff + k*slotSize], its length in
   * lengths[lenStart + k]. Stops early when `dst` or `lengths` has no room for the next one. Returns how many it
   * wrote; call again (with fresh room) until `remaining` is 0. Throws RangeError when slotSize < `largest`.
   */
  emit(dst: Uint8Array, dstOff: number, slotSize: number, lengths: Uint32Array, lenStart: number, max: number): number {
    const left = this.count - this.emitted;
    if (left <= 0 || !(max >= 1)) return 0;
    if (!(slotSize >= this.largest)) {
      throw new RangeError(`Segmenter.emit: slots of ${slotSize} bytes cannot hold a ${this.largest}-byte packet`);
    }
    let n = max < left ? max : left;
    if (lengths.length - lenStart < n) n = lengths.length - lenStart;
    if (dst.buffer !== this.dstBuffer) {
      this.dstBuffer = dst.buffer;
      this.dstView = new DataView(dst.buffer);
      this.dstBytes = new Uint8Array(dst.buffer);
    }
    let done = 0;
    for (; done < n; done++) {
      const at = dstOff + done * slotSize;
      const k = this.emitted;
      const size = this.sizeOf(k);
      if (at < 0 || at + size > dst.length) break;
      this.writeOne(k, dst, at, size);
      lengths[lenStart + done] = size;
      this.emitted = k + 1;
    }
    return done;
  }

  private sizeOf(k: number): number {
    if (this.mode <= MODE_CSUM) return this.packetLength;
    if (k < this.count - 1) return this.hdrLen + this.gsoSize;
    return this.hdrLen + this.payload - k * this.gsoSize;
  }

  private writeOne(k: number, dst: Uint8Array, at: number, size: number): void {
    const sv = this.srcView;
    const su = this.srcBytes;
    const du = this.dstBytes;
    const sAbs = this.src.byteOffset + this.packetOffset;
    const dAbs = dst.byteOffset + at;
    const mode = this.mode;
    if (mode === MODE_PLAIN) {
      copyBytes.call(su, du, dAbs, sAbs, sAbs + size);
      return;
    }
    if (mode === MODE_CSUM) {
      const cs = this.csumStart;
      copyBytes.call(su, du, dAbs, sAbs, sAbs + cs);
      // The field holds the pseudo-header sum: summing it with the rest gives the whole checksum.
      let c = ~foldSum(copySum(su, sv, sAbs + cs, du, dAbs + cs, size - cs)) & 0xffff;
      if (c === 0) c = 0xffff; // as the kernel's skb_checksum_help (CSUM_MANGLED_0)
      put16(dst, at + cs + this.csumOffset, c);
      return;
    }
    const hdrLen = this.hdrLen;
    const ipLen = this.ipLen;
    const chunk = size - hdrLen;
    copyBytes.call(su, du, dAbs, sAbs, sAbs + hdrLen);
    const payloadSum = copySum(su, sv, sAbs + hdrLen + k * this.gsoSize, du, dAbs + hdrLen, chunk);
    if (this.v6) {
      put16(dst, at + 4, size - 40);
    } else {
      put16(dst, at + 2, size);
      put16(dst, at + 4, (this.id0 + k) & 0xffff);
      fixIpv4HeaderChecksum(dst, at, ipLen);
    }
    const l4 = at + ipLen;
    let c: number;
    if (mode === MODE_TCP) {
      put32(dst, l4 + 4, (this.seq0 + k * this.gsoSize) >>> 0);
      let f = this.tcpFlags;
      if (k !== this.count - 1) f &= ~(TCP_FIN | TCP_PSH);
      if (k !== 0) f &= ~TCP_CWR;
      dst[l4 + 13] = f;
      dst[l4 + 16] = 0;
      dst[l4 + 17] = 0;
      c = ~foldSum(onesSum(dst, l4, at + hdrLen, this.pseudo + (size - ipLen)) + payloadSum) & 0xffff;
      put16(dst, l4 + 16, c);
    } else {
      put16(dst, l4 + 4, size - ipLen);
      dst[l4 + 6] = 0;
      dst[l4 + 7] = 0;
      c = ~foldSum(onesSum(dst, l4, l4 + 8, this.pseudo + (size - ipLen)) + payloadSum) & 0xffff;
      if (c === 0) c = 0xffff; // UDP: 0 means "no checksum"
      put16(dst, l4 + 6, c);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Coalescer: a batch of plain IP packets → writes, consecutive TCP segments of a flow merged into one GSO write.
// ---------------------------------------------------------------------------------------------------------------

/** Linux's GRO limit on the segments of one merged packet. */
const MAX_MEMBERS = 64;
/** Groups open at once (flows interleaving in one batch). */
const OPEN_GROUPS = 8;
const MAX_IP_LENGTH = 65535;

/** classify(): not TCP, or too broken to name a flow. */
const KIND_OTHER = -1;
/** classify(): a TCP packet of a known flow that cannot be coalesced (flags, zero payload, bad checksum, …). */
const KIND_LONE = 0;
/** classify(): a TCP packet that may join or open a group. */
const KIND_MEMBER = 1;

/**
 * Plans the writes of a batch of decrypted inner IP packets to a TUN with IFF_VNET_HDR, merging consecutive TCP
 * segments of a flow into one GSO write as Linux's tcp_gro_receive would. Reused and bounded: built for at most
 * `maxBatch` packets; allocates nothing per call.
 *
 * After plan(), write w is: headers[w*10, +10) then pieceCounts[w] byte ranges of the slab, taken in order from
 * pieceOffsets/pieceLengths (the ranges of write 0 first, then those of write 1, …).
 */
export class Coalescer {
  readonly maxBatch: number;
  /** VNET_HDR_LEN bytes per planned write. */
  readonly headers: Uint8Array;
  /** Slab ranges of all writes, in write order. */
  readonly pieceOffsets: Uint32Array;
  readonly pieceLengths: Uint32Array;
  /** Ranges per write. */
  readonly pieceCounts: Uint32Array;
  /** Writes planned by the last plan(), and their ranges in all. */
  writes = 0;
  pieces = 0;
  /** Packets of the last plan() that went into a multi-packet write. */
  coalesced = 0;

  // Per packet.
  private readonly writeOf: Int32Array;
  private readonly headLen: Uint32Array; // IP + TCP header length of a member
  // Per write.
  private readonly wFirst: Uint32Array; // index of its first packet
  private readonly wMembers: Uint32Array;
  private readonly wPayload: Uint32Array; // payload bytes of all members
  private readonly wGso: Uint32Array; // payload of the first member
  private readonly wPsh: Uint8Array;
  private readonly wCursor: Uint32Array;
  // The open groups: write index, expected next seq, flow key.
  private readonly gWrite = new Int32Array(OPEN_GROUPS);
  private readonly gNextSeq = new Uint32Array(OPEN_GROUPS);
  private readonly gPorts = new Uint32Array(OPEN_GROUPS);
  private readonly gV6 = new Uint8Array(OPEN_GROUPS);
  private readonly gFirstOff = new Uint32Array(OPEN_GROUPS);
  private open = 0;

  // classify() results for the packet at hand.
  private cV6 = false;
  private cIpLen = 0;
  private cTcpLen = 0;
  private cPayload = 0;
  private cPorts = 0;
  private cSeq = 0;
  private cPsh = false;

  constructor(maxBatch: number) {
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1 << 20) {
      throw new RangeError(`Coalescer: maxBatch must be an integer from 1 to ${1 << 20}, not ${maxBatch}`);
    }
    this.maxBatch = maxBatch;
    this.headers = new Uint8Array(maxBatch * VNET_HDR_LEN);
    this.pieceOffsets = new Uint32Array(maxBatch);
    this.pieceLengths = new Uint32Array(maxBatch);
    this.pieceCounts = new Uint32Array(maxBatch);
    this.writeOf = new Int32Array(maxBatch);
    this.headLen = new Uint32Array(maxBatch);
    this.wFirst = new Uint32Array(maxBatch);
    this.wMembers = new Uint32Array(maxBatch);
    this.wPayload = new Uint32Array(maxBatch);
    this.wGso = new Uint32Array(maxBatch);
    this.wPsh = new Uint8Array(maxBatch);
    this.wCursor = new Uint32Array(maxBatch);
  }

  /**
   * Plan the writes for `count` IP packets, packet i at slab[offsets[i], +lengths[i]). Returns the number of writes.
   * The first packet of every multi-packet write has its IP and TCP headers rewritten in place in the slab.
   * Throws RangeError when count exceeds maxBatch or the offset/length arrays.
   */
  plan(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (!(count >= 0) || count > this.maxBatch || count > offsets.length || count > lengths.length) {
      throw new RangeError(`Coalescer.plan: ${count} packets, room for ${Math.min(this.maxBatch, offsets.length, lengths.length)}`);
    }
    this.open = 0;
    let writes = 0;
    for (let i = 0; i < count; i++) {
      const o = offsets[i];
      const kind = this.classify(slab, o, lengths[i]);
      if (kind === KIND_OTHER) {
        this.startWrite(writes, i, 0);
        this.writeOf[i] = writes++;
        continue;
      }
      const g = this.findGroup(slab, o);
      if (kind === KIND_LONE) {
        if (g >= 0) this.closeGroup(g);
        this.startWrite(writes, i, 0);
        this.writeOf[i] = writes++;
        continue;
      }
      const hl = this.cIpLen + this.cTcpLen;
      this.headLen[i] = hl;
      if (g >= 0) {
        const w = this.gWrite[g];
        if (this.canJoin(slab, g, w, o)) {
          this.writeOf[i] = w;
          const members = ++this.wMembers[w];
          this.wPayload[w] += this.cPayload;
          this.gNextSeq[g] = (this.cSeq + this.cPayload) >>> 0;
          if (this.cPsh) this.wPsh[w] = 1;
          if (this.cPsh || this.cPayload < this.wGso[w] || members >= MAX_MEMBERS) this.closeGroup(g);
          continue;
        }
        this.closeGroup(g);
      }
      // A new group with this packet as its first member.
      this.startWrite(writes, i, this.cPayload);
      this.writeOf[i] = writes;
      if (!this.cPsh) this.openGroup(writes, o);
      writes++;
    }
    this.writes = writes;
    this.pieces = count;
    this.finish(slab, offsets, lengths, count, writes);
    return writes;
  }

  private startWrite(w: number, first: number, payload: number): void {
    this.wFirst[w] = first;
    this.wMembers[w] = 1;
    this.wPayload[w] = payload;
    this.wGso[w] = payload;
    this.wPsh[w] = 0;
  }

  private openGroup(w: number, firstOff: number): void {
    let g = this.open;
    if (g === OPEN_GROUPS) {
      // Full: the group opened longest ago (the lowest write index) is closed to make room.
      let oldest = 0;
      for (let j = 1; j < OPEN_GROUPS; j++) if (this.gWrite[j] < this.gWrite[oldest]) oldest = j;
      this.closeGroup(oldest);
      g = this.open;
    }
    this.gWrite[g] = w;
    this.gNextSeq[g] = (this.cSeq + this.cPayload) >>> 0;
    this.gPorts[g] = this.cPorts;
    this.gV6[g] = this.cV6 ? 1 : 0;
    this.gFirstOff[g] = firstOff;
    this.open = g + 1;
  }

  private closeGroup(g: number): void {
    const last = --this.open;
    if (g !== last) {
      this.gWrite[g] = this.gWrite[last];
      this.gNextSeq[g] = this.gNextSeq[last];
      this.gPorts[g] = this.gPorts[last];
      this.gV6[g] = this.gV6[last];
      this.gFirstOff[g] = this.gFirstOff[last];
    }
  }

  /** The open group of the flow (addresses, ports) of the packet at slab[o..] just classified, or -1. */
  private findGroup(slab: Uint8Array, o: number): number {
    const v6 = this.cV6 ? 1 : 0;
    const ports = this.cPorts;
    const a = v6 ? 8 : 12;
    const aEnd = v6 ? 40 : 20;
    for (let g = 0; g < this.open; g++) {
      if (this.gPorts[g] !== ports || this.gV6[g] !== v6) continue;
      const f = this.gFirstOff[g];
      let same = true;
      for (let j = a; j < aEnd; j++) {
        if (slab[o + j] !== slab[f + j]) {
          same = false;
          break;
        }
      }
      if (same) return g;
    }
    return -1;
  }

  /** May the packet at slab[o..] (classified a member, same flow) follow the members of group g (write w)? */
  private canJoin(slab: Uint8Array, g: number, w: number, o: number): boolean {
    if (this.cSeq !== this.gNextSeq[g]) return false;
    if (this.cPayload > this.wGso[w]) return false;
    const f = this.gFirstOff[g];
    const ipLen = this.cIpLen;
    const tcpLen = this.cTcpLen;
    if (ipLen + tcpLen + this.wPayload[w] + this.cPayload > MAX_IP_LENGTH) return false;
    if (this.cV6) {
      // Version, traffic class, flow label; hop limit.
      if (slab[o] !== slab[f] || slab[o + 1] !== slab[f + 1] || slab[o + 2] !== slab[f + 2] || slab[o + 3] !== slab[f + 3]) {
        return false;
      }
      if (slab[o + 7] !== slab[f + 7]) return false;
    } else {
      // TOS, DF, TTL (no options and no fragment: classify checked).
      if (slab[o + 1] !== slab[f + 1] || (slab[o + 6] & 0x40) !== (slab[f + 6] & 0x40) || slab[o + 8] !== slab[f + 8]) {
        return false;
      }
    }
    const t = o + ipLen;
    const ft = f + ipLen;
    if (((slab[ft + 12] >> 4) * 4) !== tcpLen) return false;
    // Ack number (bytes 8..11) and window (14..15).
    for (let j = 8; j < 12; j++) if (slab[t + j] !== slab[ft + j]) return false;
    if (slab[t + 14] !== slab[ft + 14] || slab[t + 15] !== slab[ft + 15]) return false;
    // Options, byte for byte.
    for (let j = 20; j < tcpLen; j++) if (slab[t + j] !== slab[ft + j]) return false;
    return true;
  }

  /**
   * What the packet at slab[o, o+len) is (KIND_*); fills the c* fields. A member is TCP over IPv4 without options
   * and not a fragment, with a valid header checksum, or over IPv6 without extension headers; lengths exactly the
   * IP header's; flags ACK or ACK|PSH; some payload; a TCP checksum that adds up.
   */
  private classify(slab: Uint8Array, o: number, len: number): number {
    if (len < 20 || o + len > slab.length) return KIND_OTHER;
    const ver = slab[o] >> 4;
    let ipLen: number;
    let total: number;
    let member = true;
    if (ver === 4) {
      ipLen = (slab[o] & 0x0f) * 4;
      if (ipLen < 20 || slab[o + 9] !== IPPROTO_TCP) return KIND_OTHER;
      const frag = be16(slab, o + 6);
      if ((frag & 0x1fff) !== 0) return KIND_OTHER; // a later fragment: no TCP header here
      if (ipLen !== 20 || (frag & 0x2000) !== 0) member = false; // options, or the first of fragments
      total = be16(slab, o + 2);
      this.cV6 = false;
    } else if (ver === 6) {
      if (len < 40 || slab[o + 6] !== IPPROTO_TCP) return KIND_OTHER;
      ipLen = 40;
      total = 40 + be16(slab, o + 4);
      this.cV6 = true;
    } else {
      return KIND_OTHER;
    }
    if (ipLen + 20 > len) return KIND_OTHER;
    const t = o + ipLen;
    this.cIpLen = ipLen;
    this.cPorts = be32(slab, t);
    if (total !== len) return KIND_LONE;
    const tcpLen = (slab[t + 12] >> 4) * 4;
    if (tcpLen < 20 || ipLen + tcpLen > len) return KIND_LONE;
    const payload = len - ipLen - tcpLen;
    if (payload === 0 || !member) return KIND_LONE;
    if ((slab[t + 12] & 0x0f) !== 0) return KIND_LONE; // reserved bits and AE
    const flags = slab[t + 13];
    if (flags !== TCP_ACK && flags !== (TCP_ACK | TCP_PSH)) return KIND_LONE;
    if (ver === 4 && foldSum(onesSum(slab, o, o + 20)) !== 0xffff) return KIND_LONE;
    const l4len = len - ipLen;
    if (foldSum(onesSum(slab, t, o + len, addressSum(slab, o, ver === 6, IPPROTO_TCP) + l4len)) !== 0xffff) {
      return KIND_LONE;
    }
    this.cTcpLen = tcpLen;
    this.cPayload = payload;
    this.cSeq = be32(slab, t + 4);
    this.cPsh = flags !== TCP_ACK;
    return KIND_MEMBER;
  }

  /** Headers, in-place rewrites and the piece ranges, once every packet has its write. */
  private finish(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, writes: number): void {
    const headers = this.headers;
    let pieces = 0;
    let coalesced = 0;
    for (let w = 0; w < writes; w++) {
      const members = this.wMembers[w];
      this.pieceCounts[w] = members;
      this.wCursor[w] = pieces;
      pieces += members;
      const h = w * VNET_HDR_LEN;
      if (members < 2) {
        headers.fill(0, h, h + VNET_HDR_LEN);
        continue;
      }
      coalesced += members;
      const first = this.wFirst[w];
      const o = offsets[first];
      const v6 = slab[o] >> 4 === 6;
      const ipLen = v6 ? 40 : 20;
      const hl = this.headLen[first];
      const total = hl + this.wPayload[w];
      if (v6) {
        put16(slab, o + 4, total - 40);
      } else {
        put16(slab, o + 2, total);
        fixIpv4HeaderChecksum(slab, o, 20);
      }
      const t = o + ipLen;
      if (this.wPsh[w] !== 0) slab[t + 13] |= TCP_PSH;
      // CHECKSUM_PARTIAL: the pseudo-header sum over the new TCP length, folded, not complemented.
      put16(slab, t + 16, foldSum(addressSum(slab, o, v6, IPPROTO_TCP) + (total - ipLen)));
      writeVnetHeader(
        headers,
        h,
        VNET_HDR_F_NEEDS_CSUM,
        v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4,
        hl,
        this.wGso[w],
        ipLen,
        16,
      );
    }
    for (let i = 0; i < count; i++) {
      const w = this.writeOf[i];
      const at = this.wCursor[w]++;
      if (this.wMembers[w] < 2 || this.wFirst[w] === i) {
        this.pieceOffsets[at] = offsets[i];
        this.pieceLengths[at] = lengths[i];
      } else {
        const hl = this.headLen[i];
        this.pieceOffsets[at] = offsets[i] + hl;
        this.pieceLengths[at] = lengths[i] - hl;
      }
    }
    this.coalesced = coalesced;
  }
}
