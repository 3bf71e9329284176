// Userland segmentation offload: virtio_net_hdr, TSO/USO segmentation, TCP coalescing, and the 32-bit checksum path.

import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzzRuns } from '../lib/hostile';
import { OutcomeCounts, reportFuzz } from '../lib/fuzz-report';
import {
  Coalescer,
  SEGMENT_DROP_BAD_CHECKSUM_RANGE,
  SEGMENT_DROP_BAD_HEADER,
  SEGMENT_DROP_BAD_PACKET,
  SEGMENT_DROP_REASONS,
  SEGMENT_DROP_SHORT,
  SEGMENT_DROP_TOO_BIG,
  SEGMENT_DROP_UNSUPPORTED,
  Segmenter,
  VNET_HDR_F_DATA_VALID,
  VNET_HDR_F_NEEDS_CSUM,
  VNET_HDR_GSO_ECN,
  VNET_HDR_GSO_NONE,
  VNET_HDR_GSO_TCPV4,
  VNET_HDR_GSO_TCPV6,
  VNET_HDR_GSO_UDP,
  VNET_HDR_GSO_UDP_L4,
  VNET_HDR_LEN,
  VnetHeader,
  readVnetHeader,
  writeVnetHeader,
} from '../../src/ip/offload';
import { foldSum, internetChecksum, l4ChecksumOk, onesSum } from '../../src/ip/packet';

// ------------------------------------------------------------------------------------------------------------
// Reference arithmetic, written here independently of src/ip (byte at a time, as RFC 1071 states it).
// ------------------------------------------------------------------------------------------------------------

function refSum(b: Uint8Array, s: number, e: number): number {
  let x = 0;
  for (let i = s; i < e; i += 2) x += (b[i] << 8) | (i + 1 < e ? b[i + 1] : 0);
  return x;
}
function refFold(x: number): number {
  while (x > 0xffff) x = (x % 0x10000) + Math.floor(x / 0x10000);
  return x;
}
const be16 = (b: Uint8Array, at: number): number => (b[at] << 8) | b[at + 1];
const be32 = (b: Uint8Array, at: number): number => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const put16 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
};
const put32 = (b: Uint8Array, at: number, v: number): void => {
  put16(b, at, (v >>> 16) & 0xffff);
  put16(b, at + 2, v & 0xffff);
};
const ipLenOf = (p: Uint8Array): number => (p[0] >> 4 === 6 ? 40 : (p[0] & 15) * 4);
function pseudoRef(p: Uint8Array): number {
  const ipl = ipLenOf(p);
  const v6 = p[0] >> 4 === 6;
  const proto = v6 ? p[6] : p[9];
  return (v6 ? refSum(p, 8, 40) : refSum(p, 12, 20)) + proto + (p.length - ipl);
}
/** L4 checksum offset in the packet. */
const l4CsumAt = (p: Uint8Array): number => ipLenOf(p) + ((p[0] >> 4 === 6 ? p[6] : p[9]) === 6 ? 16 : 6);
/** True when the packet's IPv4 header checksum (if any) and TCP/UDP checksum add up, by the reference arithmetic. */
function refValid(p: Uint8Array): boolean {
  const ipl = ipLenOf(p);
  if (p[0] >> 4 === 4 && refFold(refSum(p, 0, ipl)) !== 0xffff) return false;
  return refFold(pseudoRef(p) + refSum(p, ipl, p.length)) === 0xffff;
}
function fillL4Checksum(p: Uint8Array): void {
  const at = l4CsumAt(p);
  p[at] = p[at + 1] = 0;
  let c = ~refFold(pseudoRef(p) + refSum(p, ipLenOf(p), p.length)) & 0xffff;
  if (c === 0 && at - ipLenOf(p) === 6) c = 0xffff;
  put16(p, at, c);
}
function fillIpv4Checksum(p: Uint8Array): void {
  if (p[0] >> 4 !== 4) return;
  p[10] = p[11] = 0;
  put16(p, 10, ~refFold(refSum(p, 0, ipLenOf(p))) & 0xffff);
}
/** The same packet in CHECKSUM_PARTIAL form: the L4 checksum field holds the folded pseudo-header sum. */
function toPartial(p: Uint8Array): Uint8Array {
  const q = Uint8Array.from(p);
  put16(q, l4CsumAt(q), refFold(pseudoRef(q)));
  return q;
}

// ------------------------------------------------------------------------------------------------------------
// Packet builders.
// ------------------------------------------------------------------------------------------------------------

interface Ip {
  v6?: boolean;
  src?: number[];
  dst?: number[];
  id?: number;
  tos?: number;
  ttl?: number;
  df?: boolean;
  ipOptions?: number[];
  tc?: number;
  flow?: number;
  hop?: number;
}
interface Tcp extends Ip {
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  win?: number;
  options?: number[];
  payload: Uint8Array;
}
const SRC4 = [10, 0, 0, 1];
const DST4 = [10, 0, 0, 2];
const SRC6 = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const DST6 = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

function ipHeader(o: Ip, proto: number, l4Len: number): Uint8Array {
  if (o.v6) {
    const h = new Uint8Array(40);
    const tc = o.tc ?? 0;
    const flow = o.flow ?? 0x12345;
    h[0] = 0x60 | (tc >> 4);
    h[1] = ((tc & 15) << 4) | ((flow >> 16) & 15);
    put16(h, 2, flow & 0xffff);
    put16(h, 4, l4Len);
    h[6] = proto;
    h[7] = o.hop ?? 64;
    h.set(o.src ?? SRC6, 8);
    h.set(o.dst ?? DST6, 24);
    return h;
  }
  const opt = o.ipOptions ?? [];
  const ihl = 20 + opt.length;
  const h = new Uint8Array(ihl);
  h[0] = 0x40 | (ihl / 4);
  h[1] = o.tos ?? 0;
  put16(h, 2, ihl + l4Len);
  put16(h, 4, o.id ?? 0x1234);
  h[6] = o.df === false ? 0 : 0x40;
  h[8] = o.ttl ?? 64;
  h[9] = proto;
  h.set(o.src ?? SRC4, 12);
  h.set(o.dst ?? DST4, 16);
  h.set(opt, 20);
  fillIpv4Checksum(h);
  return h;
}

function tcpPacket(o: Tcp): Uint8Array {
  const opt = o.options ?? [];
  const thl = 20 + opt.length;
  const ip = ipHeader(o, 6, thl + o.payload.length);
  const p = new Uint8Array(ip.length + thl + o.payload.length);
  p.set(ip);
  const t = ip.length;
  put16(p, t, o.sport ?? 40000);
  put16(p, t + 2, o.dport ?? 443);
  put32(p, t + 4, o.seq ?? 1000);
  put32(p, t + 8, o.ack ?? 777);
  p[t + 12] = (thl / 4) << 4;
  p[t + 13] = o.flags ?? 0x10;
  put16(p, t + 14, o.win ?? 512);
  p.set(opt, t + 20);
  p.set(o.payload, t + thl);
  fillL4Checksum(p);
  return p;
}

function udpPacket(o: Ip & { sport?: number; dport?: number; payload: Uint8Array }): Uint8Array {
  const ip = ipHeader(o, 17, 8 + o.payload.length);
  const p = new Uint8Array(ip.length + 8 + o.payload.length);
  p.set(ip);
  const u = ip.length;
  put16(p, u, o.sport ?? 5000);
  put16(p, u + 2, o.dport ?? 6000);
  put16(p, u + 4, 8 + o.payload.length);
  p.set(o.payload, u + 8);
  fillL4Checksum(p);
  return p;
}

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function hostOrder16(b: Uint8Array, at: number, v: number): void {
  if (endianness() === 'LE') {
    b[at] = v & 0xff;
    b[at + 1] = v >> 8;
  } else put16(b, at, v);
}

/** A TUN read: virtio_net_hdr (written by hand, host byte order) + packet, at offset `pad` of a bigger buffer. */
function read(
  pkt: Uint8Array,
  h: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number },
  pad = 0,
): { buf: Uint8Array; off: number; len: number } {
  const buf = new Uint8Array(pad + VNET_HDR_LEN + pkt.length + 3);
  buf[pad] = h.flags ?? 0;
  buf[pad + 1] = h.gsoType ?? 0;
  hostOrder16(buf, pad + 2, h.hdrLen ?? 0);
  hostOrder16(buf, pad + 4, h.gsoSize ?? 0);
  hostOrder16(buf, pad + 6, h.csumStart ?? 0);
  hostOrder16(buf, pad + 8, h.csumOffset ?? 0);
  buf.set(pkt, pad + VNET_HDR_LEN);
  return { buf, off: pad, len: VNET_HDR_LEN + pkt.length };
}

/** The read the kernel gives for a TSO/USO superpacket `full` (valid checksums) with segment size `gso`. */
function gsoRead(full: Uint8Array, gso: number, pad = 0, ecn = false) {
  const ipl = ipLenOf(full);
  const v6 = full[0] >> 4 === 6;
  const tcp = (v6 ? full[6] : full[9]) === 6;
  const l4 = tcp ? (full[ipl + 12] >> 4) * 4 : 8;
  const gsoType = (tcp ? (v6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4) : VNET_HDR_GSO_UDP_L4) | (ecn ? VNET_HDR_GSO_ECN : 0);
  return read(
    toPartial(full),
    { flags: VNET_HDR_F_NEEDS_CSUM, gsoType, hdrLen: ipl + l4, gsoSize: gso, csumStart: ipl, csumOffset: tcp ? 16 : 6 },
    pad,
  );
}

/** Segment one read completely, `step` packets per emit, into slots of `slot` bytes. Returns copies of the packets. */
function segment(s: Segmenter, r: { buf: Uint8Array; off: number; len: number }, step = 7, slot = 65535): Uint8Array[] | number {
  const n = s.begin(r.buf, r.off, r.len);
  if (n < 0) return n;
  const out: Uint8Array[] = [];
  const dst = new Uint8Array(slot * step + 5);
  const lens = new Uint32Array(step + 2);
  while (s.remaining > 0) {
    const got = s.emit(dst, 5, slot, lens, 2, step);
    expect(got).toBeGreaterThan(0);
    for (let k = 0; k < got; k++) out.push(dst.slice(5 + k * slot, 5 + k * slot + lens[2 + k]));
  }
  expect(out.length).toBe(n);
  return out;
}
const segs = (s: Segmenter, r: { buf: Uint8Array; off: number; len: number }, step?: number): Uint8Array[] => {
  const out = segment(s, r, step);
  if (typeof out === 'number') throw new Error(`dropped: ${SEGMENT_DROP_REASONS[-out]}`);
  return out;
};

/** Check the segments of TCP superpacket `full` cut at `gso`: every field the brief names, and the payload. */
function checkTcpSegments(full: Uint8Array, gso: number, out: Uint8Array[]): void {
  const ipl = ipLenOf(full);
  const thl = (full[ipl + 12] >> 4) * 4;
  const hl = ipl + thl;
  const payload = full.subarray(hl);
  const n = Math.max(1, Math.ceil(payload.length / gso));
  expect(out.length).toBe(n);
  const v6 = full[0] >> 4 === 6;
  const seq0 = be32(full, ipl + 4);
  const flags = full[ipl + 13];
  const joined: number[] = [];
  out.forEach((p, k) => {
    const chunk = k < n - 1 ? gso : payload.length - k * gso;
    expect(p.length).toBe(hl + chunk);
    expect(refValid(p)).toBe(true);
    expect(l4ChecksumOk(p)).toBe(true);
    if (v6) {
      expect(be16(p, 4)).toBe(p.length - 40);
      expect([...p.subarray(0, 4)]).toEqual([...full.subarray(0, 4)]);
      expect([...p.subarray(6, 40)]).toEqual([...full.subarray(6, 40)]);
    } else {
      expect(internetChecksum(p, 0, ipl)).toBe(0);
      expect(be16(p, 2)).toBe(p.length);
      expect(be16(p, 4)).toBe((be16(full, 4) + k) & 0xffff);
      expect([...p.subarray(6, 10)]).toEqual([...full.subarray(6, 10)]);
      expect([...p.subarray(12, ipl)]).toEqual([...full.subarray(12, ipl)]);
    }
    expect(be32(p, ipl + 4)).toBe((seq0 + k * gso) >>> 0);
    let f = flags;
    if (k < n - 1) f &= ~0x09;
    if (k > 0) f &= ~0x80;
    expect(p[ipl + 13]).toBe(f);
    expect([...p.subarray(ipl, ipl + 4)]).toEqual([...full.subarray(ipl, ipl + 4)]);
    expect([...p.subarray(ipl + 8, ipl + 13)]).toEqual([...full.subarray(ipl + 8, ipl + 13)]);
    expect([...p.subarray(ipl + 14, ipl + 16)]).toEqual([...full.subarray(ipl + 14, ipl + 16)]);
    expect([...p.subarray(ipl + 18, hl)]).toEqual([...full.subarray(ipl + 18, hl)]);
    for (const x of p.subarray(hl)) joined.push(x);
  });
  expect(Buffer.from(joined).equals(Buffer.from(payload))).toBe(true);
}

// ------------------------------------------------------------------------------------------------------------
// Coalescer helpers.
// ------------------------------------------------------------------------------------------------------------

interface Planned {
  header: VnetHeader;
  headerBytes: number[];
  bytes: Uint8Array; // the write less its virtio_net_hdr
  members: number[]; // input packet indices
}

/** Lay `pkts` in one slab (odd gaps, odd start), plan, and describe every write. */
function coalesce(pkts: Uint8Array[], c = new Coalescer(Math.max(1, pkts.length))): { writes: Planned[]; slab: Uint8Array } {
  let size = 3;
  for (const p of pkts) size += p.length + 5;
  const slab = new Uint8Array(size);
  const offsets = new Uint32Array(pkts.length);
  const lengths = new Uint32Array(pkts.length);
  let at = 3;
  pkts.forEach((p, i) => {
    slab.set(p, at);
    offsets[i] = at;
    lengths[i] = p.length;
    at += p.length + 5;
  });
  const nw = c.plan(slab, offsets, lengths, pkts.length);
  expect(nw).toBe(c.writes);
  const writes: Planned[] = [];
  let piece = 0;
  let total = 0;
  for (let w = 0; w < nw; w++) total += c.pieceCounts[w];
  expect(total).toBe(pkts.length);
  for (let w = 0; w < nw; w++) {
    const header = new VnetHeader();
    expect(readVnetHeader(c.headers, w * VNET_HDR_LEN, header)).toBe(true);
    const parts: number[] = [];
    const members: number[] = [];
    for (let j = 0; j < c.pieceCounts[w]; j++, piece++) {
      const o = c.pieceOffsets[piece];
      const l = c.pieceLengths[piece];
      for (let b = o; b < o + l; b++) parts.push(slab[b]);
      // Which packet is this piece from? The one whose slab range holds it.
      const i = [...offsets].findIndex((po, k) => o >= po && o + l <= po + lengths[k]);
      expect(i).toBeGreaterThanOrEqual(0);
      members.push(i);
    }
    writes.push({ header, headerBytes: [...c.headers.subarray(w * 10, w * 10 + 10)], bytes: Uint8Array.from(parts), members });
  }
  return { writes, slab };
}

/**
 * The invariants of any plan: every packet in exactly one write; lone writes are the packet untouched with a zero
 * header; a multi-packet write, segmented again by the Segmenter, gives back its members byte for byte; and within
 * a flow (addresses, ports) the packets come out in their input order.
 */
function checkPlan(pkts: Uint8Array[], writes: Planned[]): void {
  const seen = new Array(pkts.length).fill(0);
  const order: number[] = [];
  const seg = new Segmenter();
  for (const w of writes) {
    for (const i of w.members) {
      seen[i]++;
      order.push(i);
    }
    if (w.members.length === 1) {
      expect(w.headerBytes).toEqual(new Array(10).fill(0));
      expect(Buffer.from(w.bytes).equals(Buffer.from(pkts[w.members[0]]))).toBe(true);
      continue;
    }
    const first = pkts[w.members[0]];
    const ipl = ipLenOf(first);
    expect(w.header.flags).toBe(VNET_HDR_F_NEEDS_CSUM);
    expect(w.header.gsoType).toBe(first[0] >> 4 === 6 ? VNET_HDR_GSO_TCPV6 : VNET_HDR_GSO_TCPV4);
    expect(w.header.hdrLen).toBe(ipl + (first[ipl + 12] >> 4) * 4);
    expect(w.header.gsoSize).toBe(first.length - w.header.hdrLen);
    expect(w.header.csumStart).toBe(ipl);
    expect(w.header.csumOffset).toBe(16);
    expect(w.bytes.length).toBeLessThanOrEqual(65535);
    expect(w.members.length).toBeLessThanOrEqual(64);
    // The rewritten first packet: lengths, IPv4 header checksum, partial TCP checksum.
    if (ipl === 20) {
      expect(be16(w.bytes, 2)).toBe(w.bytes.length);
      expect(internetChecksum(w.bytes, 0, 20)).toBe(0);
    } else expect(be16(w.bytes, 4)).toBe(w.bytes.length - 40);
    expect(be16(w.bytes, ipl + 16)).toBe(refFold(pseudoRef(w.bytes)));
    const r = new Uint8Array(10 + w.bytes.length);
    r.set(w.headerBytes);
    r.set(w.bytes, 10);
    const back = segs(seg, { buf: r, off: 0, len: r.length });
    expect(back.length).toBe(w.members.length);
    back.forEach((b, k) => expect(Buffer.from(b).equals(Buffer.from(pkts[w.members[k]]))).toBe(true));
  }
  expect(seen.every((x) => x === 1)).toBe(true);
  // Order within a flow.
  const flowOf = (p: Uint8Array): string => {
    const ipl = ipLenOf(p);
    const v6 = p[0] >> 4 === 6;
    return `${[...p.subarray(v6 ? 8 : 12, v6 ? 40 : 20)]}|${[...p.subarray(ipl, ipl + 4)]}`;
  };
  const last = new Map<string, number>();
  for (const i of order) {
    const f = flowOf(pkts[i]);
    expect(i).toBeGreaterThan(last.get(f) ?? -1);
    last.set(f, i);
  }
}

// ------------------------------------------------------------------------------------------------------------

describe('onesSum (32-bit path)', () => {
  it('folds to what the 16-bit loop folds to, for any alignment, length and start sum', () => {
    const ab = new ArrayBuffer(5000);
    const all = new Uint8Array(ab);
    all.set(bytes(5000, 7));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 4000 }),
        fc.integer({ min: 0, max: 0xfffff }),
        (byteOffset, start, n, sum) => {
          const view = new Uint8Array(ab, byteOffset, 4900);
          expect(foldSum(onesSum(view, start, start + n, sum))).toBe(foldSum(sum + refSum(view, start, start + n)));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('all 0xff bytes (the largest partial sums) and a 64 KiB range', () => {
    const b = new Uint8Array(65536).fill(0xff);
    expect(foldSum(onesSum(b, 0, 65536))).toBe(foldSum(32768 * 0xffff));
    expect(foldSum(onesSum(b, 1, 65535))).toBe(foldSum(refSum(b, 1, 65535)));
    const r = bytes(65536, 3);
    expect(foldSum(onesSum(r, 3, 65533, 9))).toBe(foldSum(9 + refSum(r, 3, 65533)));
  });

  it('past the end reads nothing, as the 16-bit loop did', () => {
    const b = bytes(100, 5);
    expect(foldSum(onesSum(b, 10, 200))).toBe(foldSum(refSum(b, 10, 100)));
  });
});

describe('virtio_net_hdr', () => {
  it('is 10 bytes, u16 fields in host byte order', () => {
    const b = new Uint8Array(12);
    writeVnetHeader(b, 1, 1, 0x81, 0x0102, 0x0304, 0x0506, 0x0708);
    const le = endianness() === 'LE';
    expect([...b]).toEqual(
      le ? [0, 1, 0x81, 2, 1, 4, 3, 6, 5, 8, 7, 0] : [0, 1, 0x81, 1, 2, 3, 4, 5, 6, 7, 8, 0],
    );
    const h = new VnetHeader();
    expect(readVnetHeader(b, 1, h)).toBe(true);
    expect({ ...h }).toEqual({ flags: 1, gsoType: 0x81, hdrLen: 0x102, gsoSize: 0x304, csumStart: 0x506, csumOffset: 0x708 });
    expect(readVnetHeader(b, 3, h)).toBe(false);
    expect([VNET_HDR_GSO_NONE, VNET_HDR_GSO_TCPV4, VNET_HDR_GSO_UDP, VNET_HDR_GSO_TCPV6, VNET_HDR_GSO_UDP_L4]).toEqual([0, 1, 3, 4, 5]);
    expect([VNET_HDR_F_NEEDS_CSUM, VNET_HDR_F_DATA_VALID, VNET_HDR_GSO_ECN, VNET_HDR_LEN]).toEqual([1, 2, 0x80, 10]);
  });
});

describe('Segmenter', () => {
  it('the builders make valid packets (checked by src/ip/packet.ts too)', () => {
    for (const v6 of [false, true]) {
      const t = tcpPacket({ v6, payload: bytes(333) });
      const u = udpPacket({ v6, payload: bytes(77) });
      expect(l4ChecksumOk(t) && l4ChecksumOk(u) && refValid(t) && refValid(u)).toBe(true);
      t[t.length - 1] ^= 1;
      expect(l4ChecksumOk(t) || refValid(t)).toBe(false);
    }
  });

  it('TCPv4 with options: 3 segments, IDs +k, seq +k*gso, PSH|FIN only last, CWR only first, checksums in full', () => {
    const full = tcpPacket({ payload: bytes(3000, 2), flags: 0x10 | 0x08 | 0x01 | 0x80, options: [1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8], seq: 0xffffff00, id: 0xfffe, tos: 0x28 });
    const s = new Segmenter(1500);
    const out = segs(s, gsoRead(full, 1400, 3, true));
    checkTcpSegments(full, 1400, out);
    expect(out.map((p) => p.length)).toEqual([1452, 1452, 252]);
    expect(out.map((p) => be16(p, 4))).toEqual([0xfffe, 0xffff, 0]);
    expect(out.map((p) => be32(p, 24))).toEqual([0xffffff00, (0xffffff00 + 1400) >>> 0, (0xffffff00 + 2800) >>> 0]);
    expect(out.map((p) => p[33])).toEqual([0x90, 0x10, 0x19]);
  });

  it('TCPv6: payload length per segment, the last shorter', () => {
    const full = tcpPacket({ v6: true, payload: bytes(4001, 9), flags: 0x18 });
    const out = segs(new Segmenter(), gsoRead(full, 1000, 1));
    checkTcpSegments(full, 1000, out);
    expect(out.map((p) => be16(p, 4))).toEqual([1020, 1020, 1020, 1020, 21]);
  });

  it('UDP_L4 over IPv4 and IPv6: own UDP length and checksum, IPv4 ID/length/checksum per datagram', () => {
    for (const v6 of [false, true]) {
      const payload = bytes(2500, 4);
      const full = udpPacket({ v6, payload, id: 7 });
      const out = segs(new Segmenter(), gsoRead(full, 1000, 2));
      const ipl = v6 ? 40 : 20;
      expect(out.map((p) => p.length)).toEqual([ipl + 1008, ipl + 1008, ipl + 508]);
      out.forEach((p, k) => {
        expect(refValid(p) && l4ChecksumOk(p)).toBe(true);
        expect(be16(p, ipl + 4)).toBe(p.length - ipl);
        expect([...p.subarray(ipl, ipl + 4)]).toEqual([...full.subarray(ipl, ipl + 4)]);
        if (!v6) expect([be16(p, 2), be16(p, 4), internetChecksum(p, 0, 20)]).toEqual([p.length, 7 + k, 0]);
        else expect(be16(p, 4)).toBe(p.length - 40);
        expect(Buffer.from(p.subarray(ipl + 8)).equals(Buffer.from(payload.subarray(k * 1000, k * 1000 + 1000)))).toBe(true);
      });
    }
  });

  it('UDP: a computed checksum of 0 is sent as 0xffff', () => {
    // Choose the last two payload bytes so that the second datagram's checksum comes out 0.
    const payload = bytes(200, 11);
    const probe = udpPacket({ payload: payload.subarray(100) });
    probe[probe.length - 2] = probe[probe.length - 1] = 0;
    put16(probe, 26, 0);
    const s = refFold(pseudoRef(probe) + refSum(probe, 20, probe.length));
    put16(payload, 198, 0xffff - s);
    const out = segs(new Segmenter(), gsoRead(udpPacket({ payload }), 100));
    expect(be16(out[1], 26)).toBe(0xffff);
    expect(refValid(out[1])).toBe(true);
  });

  it('no GSO: as it is (plain, no copy needed); DATA_VALID too; NEEDS_CSUM completes the checksum', () => {
    const s = new Segmenter();
    const t = tcpPacket({ payload: bytes(1000) });
    const r = read(t, {}, 4);
    expect(s.begin(r.buf, r.off, r.len)).toBe(1);
    expect([s.plain, s.packetOffset, s.packetLength]).toEqual([true, 14, t.length]);
    expect(Buffer.from(segs(s, r)[0]).equals(Buffer.from(t))).toBe(true);
    expect(Buffer.from(segs(s, read(t, { flags: VNET_HDR_F_DATA_VALID }))[0]).equals(Buffer.from(t))).toBe(true);
    for (const p of [t, udpPacket({ v6: true, payload: bytes(333) }), tcpPacket({ v6: true, payload: bytes(1) })]) {
      const ipl = ipLenOf(p);
      const part = toPartial(p);
      const out = segs(s, read(part, { flags: VNET_HDR_F_NEEDS_CSUM, csumStart: ipl, csumOffset: l4CsumAt(p) - ipl }, 1));
      expect(s.plain).toBe(false);
      expect(Buffer.from(out[0]).equals(Buffer.from(p))).toBe(true);
    }
  });

  it('a GSO packet whose payload fits one segment (or is empty) goes out as one, checksum completed', () => {
    for (const n of [0, 1, 1400]) {
      const full = tcpPacket({ payload: bytes(n), flags: 0x19 });
      const out = segs(new Segmenter(), gsoRead(full, 1400));
      expect(out.length).toBe(1);
      expect(Buffer.from(out[0]).equals(Buffer.from(full))).toBe(true);
    }
  });

  it('hdr_len may be 0 or anything from the real headers up to the packet (the kernel sends its linear part)', () => {
    const full = tcpPacket({ payload: bytes(3000) });
    for (const hdrLen of [0, 40, 1000, full.length]) {
      const r = gsoRead(full, 1000);
      hostOrder16(r.buf, 2, hdrLen);
      checkTcpSegments(full, 1000, segs(new Segmenter(), r));
    }
    for (const hdrLen of [39, 20, full.length + 1]) {
      const r = gsoRead(full, 1000);
      hostOrder16(r.buf, 2, hdrLen);
      expect(new Segmenter().begin(r.buf, r.off, r.len)).toBe(SEGMENT_DROP_BAD_HEADER);
    }
  });

  it('emit resumes: one packet per call, a slab with room for two, a lengths array with room for one', () => {
    const full = tcpPacket({ v6: true, payload: bytes(10000) });
    const r = gsoRead(full, 1200);
    const s = new Segmenter(1300);
    expect(s.begin(r.buf, r.off, r.len)).toBe(9);
    const all: Uint8Array[] = [];
    const dst = new Uint8Array(2 * 1300);
    const lens = new Uint32Array(3);
    let calls = 0;
    while (s.remaining > 0) {
      const got = s.emit(dst, 0, 1300, lens, calls % 3, 1 + (calls % 4));
      expect(got).toBeLessThanOrEqual(Math.min(2, 3 - (calls % 3)));
      for (let k = 0; k < got; k++) all.push(dst.slice(k * 1300, k * 1300 + lens[(calls % 3) + k]));
      calls++;
    }
    expect(s.emit(dst, 0, 1300, lens, 0, 5)).toBe(0);
    checkTcpSegments(full, 1200, all);
    expect(() => s.begin(r.buf, r.off, r.len) && s.emit(dst, 0, 1259, lens, 0, 1)).toThrow(RangeError);
    expect(s.largest).toBe(1260);
  });

  it('every drop code is reachable, and names itself', () => {
    const s = new Segmenter(1500);
    const tcp4 = tcpPacket({ payload: bytes(3000) });
    const tcp6 = tcpPacket({ v6: true, payload: bytes(3000) });
    const udp4 = udpPacket({ payload: bytes(3000) });
    const code = (r: { buf: Uint8Array; off: number; len: number }): number => s.begin(r.buf, r.off, r.len);
    const edit = (r: { buf: Uint8Array; off: number; len: number }, f: (b: Uint8Array) => void) => (f(r.buf), r);
    const cases: [string, number, number][] = [];
    const add = (name: string, expected: number, got: number): void => void cases.push([name, expected, got]);

    add('empty', SEGMENT_DROP_SHORT, s.begin(new Uint8Array(5), 0, 5));
    add('header only', SEGMENT_DROP_SHORT, s.begin(new Uint8Array(10), 0, 10));
    add('len past the buffer', SEGMENT_DROP_SHORT, s.begin(new Uint8Array(50), 10, 41));
    add('IPv4 shorter than 20', SEGMENT_DROP_SHORT, code(gsoRead(tcp4, 1000)) && code({ ...gsoRead(tcp4, 1000), len: 25 }));
    add('IPv6 shorter than 40', SEGMENT_DROP_SHORT, code({ ...gsoRead(tcp6, 1000), len: 45 }));
    add('TCP header cut', SEGMENT_DROP_SHORT, code(edit(read(tcp4.subarray(0, 30), { gsoType: 1, gsoSize: 100 }), (b) => put16(b, 12, 30))));
    add('UDP header cut', SEGMENT_DROP_SHORT, code(edit(read(udp4.subarray(0, 24), { gsoType: 5, gsoSize: 100 }), (b) => put16(b, 12, 24))));
    add('unknown flag', SEGMENT_DROP_BAD_HEADER, code(edit(gsoRead(tcp4, 1000), (b) => (b[0] |= 4))));
    add('unknown gso type', SEGMENT_DROP_BAD_HEADER, code(edit(gsoRead(tcp4, 1000), (b) => (b[1] = 2))));
    add('ECN alone', SEGMENT_DROP_BAD_HEADER, code(read(tcp4, { gsoType: 0x80 })));
    add('ECN with UDP', SEGMENT_DROP_BAD_HEADER, code(edit(gsoRead(udp4, 1000), (b) => (b[1] |= 0x80))));
    add('gso_size 0', SEGMENT_DROP_BAD_HEADER, code(gsoRead(tcp4, 0)));
    add('UFO', SEGMENT_DROP_UNSUPPORTED, code(edit(gsoRead(udp4, 1000), (b) => (b[1] = VNET_HDR_GSO_UDP))));
    const ext = Uint8Array.from(tcp6);
    ext[6] = 0; // hop-by-hop
    add('IPv6 extension header', SEGMENT_DROP_UNSUPPORTED, code(read(ext, { gsoType: 4, gsoSize: 1000 })));
    add('TCPV4 on IPv6', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp6, 1000), (b) => (b[1] = 1))));
    add('TCPV6 on IPv4', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp4, 1000), (b) => (b[1] = 4))));
    add('UDP_L4 on TCP', SEGMENT_DROP_BAD_PACKET, code(read(tcp4, { gsoType: 5, gsoSize: 1000 })));
    add('TCPV4 on UDP', SEGMENT_DROP_BAD_PACKET, code(read(udp4, { gsoType: 1, gsoSize: 1000 })));
    add('IP version 5', SEGMENT_DROP_BAD_PACKET, code(edit(read(udp4, { gsoType: 5, gsoSize: 1000 }), (b) => (b[10] = 0x55))));
    add('IHL 4', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp4, 1000), (b) => (b[10] = 0x44))));
    add('IPv4 total length', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp4, 1000), (b) => put16(b, 12, tcp4.length - 1))));
    add('IPv6 payload length', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp6, 1000), (b) => put16(b, 14, 9))));
    add('fragment', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp4, 1000), (b) => (b[16] |= 0x20))));
    add('TCP data offset 4', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(tcp4, 1000), (b) => (b[42] = 0x40))));
    add('UDP length', SEGMENT_DROP_BAD_PACKET, code(edit(gsoRead(udp4, 1000), (b) => put16(b, 34, 9))));
    add('csum_start', SEGMENT_DROP_BAD_CHECKSUM_RANGE, code(edit(gsoRead(tcp4, 1000), (b) => hostOrder16(b, 6, 24))));
    add('csum_offset', SEGMENT_DROP_BAD_CHECKSUM_RANGE, code(edit(gsoRead(udp4, 1000), (b) => hostOrder16(b, 8, 16))));
    const small = tcpPacket({ payload: bytes(100) });
    add('no GSO, csum past the end', SEGMENT_DROP_BAD_CHECKSUM_RANGE, code(read(small, { flags: 1, csumStart: 20, csumOffset: small.length - 21 })));
    add('no GSO, odd csum_offset', SEGMENT_DROP_BAD_CHECKSUM_RANGE, code(read(small, { flags: 1, csumStart: 20, csumOffset: 15 })));
    expect(code(read(small, { flags: 1, csumStart: 20, csumOffset: small.length - 22 }))).toBe(1);
    add('segment over maxPacket', SEGMENT_DROP_TOO_BIG, code(gsoRead(tcp4, 1461)));
    add('plain packet over maxPacket', SEGMENT_DROP_TOO_BIG, code(read(tcp4, {})));
    for (const [name, expected, got] of cases) expect([name, got]).toEqual([name, expected]);
    expect(s.count).toBe(0);
    expect(new Set(cases.map((c) => c[1]))).toEqual(new Set([-1, -2, -3, -4, -5, -6]));
    expect(SEGMENT_DROP_REASONS.slice(1)).toEqual(['short', 'badHeader', 'badPacket', 'unsupported', 'badChecksumRange', 'tooBig']);
    expect(code(gsoRead(tcp4, 1460))).toBe(3); // 1500 exactly is allowed
  });

  it('property: any TCP/UDP superpacket, gso size and flags segments into valid packets that add up to it', () => {
    const s = new Segmenter();
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 12000 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.constantFrom(0x10, 0x18, 0x19, 0x11, 0x90, 0x98, 0x99, 0xd0),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 5 }),
        (v6, isTcp, n, gso, flags, optWords, seq, pad) => {
          if (n / gso > 300) gso = Math.ceil(n / 300);
          const payload = bytes(n, seq);
          const options = Array.from({ length: optWords * 4 }, (_, i) => (i * 7 + seq) & 0xff);
          const full = isTcp
            ? tcpPacket({ v6, payload, flags, options, seq, id: seq & 0xffff })
            : udpPacket({ v6, payload, id: seq & 0xffff });
          const out = segs(s, gsoRead(full, gso, pad, (flags & 0x80) !== 0 && isTcp), 1 + (seq % 9));
          if (isTcp) checkTcpSegments(full, gso, out);
          else {
            const ipl = v6 ? 40 : 20;
            expect(out.length).toBe(Math.max(1, Math.ceil(n / gso)));
            for (const p of out) expect(refValid(p) && be16(p, ipl + 4) === p.length - ipl).toBe(true);
            expect(Buffer.concat(out.map((p) => p.subarray(ipl + 8))).equals(Buffer.from(payload))).toBe(true);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('garbage never throws, and what it yields fits its slots', () => {
    const s = new Segmenter(2000);
    const dst = new Uint8Array(2000 * 4);
    const lens = new Uint32Array(4);
    const seen = new OutcomeCounts();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat({ max: 12 }), fc.nat({ max: 12 }), (b, off, cut) => {
        const len = Math.max(0, b.length - off - cut);
        const n = s.begin(b, off, len);
        if (n < 0) {
          expect(SEGMENT_DROP_REASONS[-n]).toBeTruthy();
          seen.add(SEGMENT_DROP_REASONS[-n]);
          return;
        }
        seen.add('packets');
        let total = 0;
        while (s.remaining > 0) {
          const got = s.emit(dst, 0, 2000, lens, 0, 4);
          expect(got).toBeGreaterThan(0);
          for (let k = 0; k < got; k++) expect(lens[k]).toBeLessThanOrEqual(2000);
          total += got;
        }
        expect(total).toBe(n);
      }),
      { numRuns: fuzzRuns(2000) },
    );
    // Random headers on real packets reach deeper.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 10, maxLength: 10 }), fc.boolean(), (h, v6) => {
        const p = tcpPacket({ v6, payload: bytes(3000) });
        const r = read(p, {});
        r.buf.set(h, 0);
        r.buf[1] &= 0x87;
        r.buf[0] &= 3;
        const n = s.begin(r.buf, r.off, r.len);
        seen.add(n < 0 ? `header:${SEGMENT_DROP_REASONS[-n]}` : 'header:packets');
        if (n > 0) while (s.remaining > 0) expect(s.emit(dst, 0, 2000, lens, 0, 4)).toBeGreaterThan(0);
      }),
      { numRuns: fuzzRuns(2000) },
    );
    reportFuzz('offload Segmenter: garbage reads and random virtio headers', seen.counts);
  });

  it('fuzz: valid TSO reads with a few bytes flipped never throw, never write past a slot, and say what they did', () => {
    const s = new Segmenter(2000);
    const dst = new Uint8Array(2000 * 8);
    const lens = new Uint32Array(8);
    const seen = new OutcomeCounts();
    const reads = [false, true].map((v6) => gsoRead(tcpPacket({ v6, payload: bytes(6000, v6 ? 9 : 4) }), 1200));
    fc.assert(
      fc.property(fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (v6, flips) => {
        const r = reads[v6 ? 1 : 0];
        const buf = Uint8Array.from(r.buf);
        for (const [at, x] of flips) buf[r.off + (at % Math.min(r.len, 120))] ^= x; // the header and the IP/TCP headers
        const n = s.begin(buf, r.off, r.len);
        if (n < 0) {
          seen.add(SEGMENT_DROP_REASONS[-n]);
          return;
        }
        seen.add(n > 1 ? 'segmented' : 'one packet');
        let total = 0;
        while (s.remaining > 0) {
          const got = s.emit(dst, 0, 2000, lens, 0, 8);
          expect(got).toBeGreaterThan(0);
          for (let k = 0; k < got; k++) expect(lens[k]).toBeLessThanOrEqual(2000);
          total += got;
        }
        expect(total).toBe(n);
      }),
      { numRuns: fuzzRuns(2000) },
    );
    reportFuzz('offload Segmenter: valid TSO reads, bytes flipped', seen.counts);
    expect(seen.counts.segmented ?? 0).toBeGreaterThan(0);
  });
});

describe('Coalescer', () => {
  it('segments of one superpacket → one GSO write whose bytes are the superpacket (CHECKSUM_PARTIAL form)', () => {
    for (const v6 of [false, true]) {
      const full = tcpPacket({ v6, payload: bytes(5000, 3), flags: 0x18, options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] });
      const r = gsoRead(full, 1388);
      const pkts = segs(new Segmenter(), r);
      expect(pkts.length).toBe(4);
      const { writes } = coalesce(pkts);
      expect(writes.length).toBe(1);
      expect(Buffer.from(writes[0].bytes).equals(Buffer.from(r.buf.subarray(10, r.len)))).toBe(true);
      expect(writes[0].headerBytes).toEqual([...r.buf.subarray(0, 10)]);
      checkPlan(pkts, writes);
    }
  });

  it('the slab is rewritten in place only for the first member; lone packets keep their bytes', () => {
    const pkts = segs(new Segmenter(), gsoRead(tcpPacket({ payload: bytes(3000) }), 1000));
    const udp = udpPacket({ payload: bytes(100) });
    const c = new Coalescer(8);
    const { writes, slab } = coalesce([udp, ...pkts, udp], c);
    expect(writes.map((w) => w.members)).toEqual([[0], [1, 2, 3], [4]]);
    expect(c.coalesced).toBe(3);
    expect(Buffer.from(slab.subarray(3 + udp.length + 5 + pkts[0].length + 5, 3 + udp.length + 5 + pkts[0].length + 5 + pkts[1].length)).equals(Buffer.from(pkts[1]))).toBe(true);
    checkPlan([udp, ...pkts, udp], writes);
  });

  it('does not coalesce what Linux would not', () => {
    const base = (k: number, o: Partial<Tcp> = {}): Uint8Array =>
      tcpPacket({ payload: bytes(1000, k), seq: 1000 + k * 1000, id: 10 + k, ...o });
    const pairs: [string, Uint8Array[]][] = [
      ['TOS', [base(0), base(1, { tos: 4 })]],
      ['TTL', [base(0), base(1, { ttl: 3 })]],
      ['DF', [base(0), base(1, { df: false })]],
      ['IPv4 options', [base(0, { ipOptions: [1, 1, 1, 0] }), base(1, { ipOptions: [1, 1, 1, 0] })]],
      ['ack', [base(0), base(1, { ack: 778 })]],
      ['window', [base(0), base(1, { win: 513 })]],
      ['options', [base(0, { options: [1, 1, 1, 1] }), base(1, { options: [1, 1, 1, 0] })]],
      ['TCP header length', [base(0), base(1, { options: [1, 1, 1, 1] })]],
      ['seq gap', [base(0), base(1, { seq: 2001 })]],
      ['seq overlap', [base(0), base(1, { seq: 1999 })]],
      ['PSH on the first', [base(0, { flags: 0x18 }), base(1)]],
      ['SYN', [base(0, { flags: 0x12 }), base(1, { flags: 0x12 })]],
      ['FIN', [base(0), base(1, { flags: 0x11 })]],
      ['URG', [base(0), base(1, { flags: 0x30 })]],
      ['ECE', [base(0), base(1, { flags: 0x50 })]],
      ['CWR', [base(0), base(1, { flags: 0x90 })]],
      ['first shorter (gso_size 500)', [tcpPacket({ payload: bytes(500), seq: 1000, id: 10 }), base(0, { seq: 1500, id: 11 })]],
      ['second longer', [base(0), tcpPacket({ payload: bytes(1001), seq: 2000, id: 11 })]],
      ['zero payload', [base(0), tcpPacket({ payload: new Uint8Array(0), seq: 2000 })]],
      ['ports', [base(0), base(1, { sport: 40001 })]],
      ['address', [base(0), base(1, { dst: [10, 0, 0, 3] })]],
      ['IPv6 flow label', [base(0, { v6: true }), base(1, { v6: true, flow: 7 })]],
      ['IPv6 traffic class', [base(0, { v6: true }), base(1, { v6: true, tc: 0x20 })]],
      ['IPv6 hop limit', [base(0, { v6: true }), base(1, { v6: true, hop: 3 })]],
      ['IPv4 then IPv6', [base(0), base(1, { v6: true })]],
    ];
    const bad = (p: Uint8Array, f: (q: Uint8Array) => void): Uint8Array => {
      const q = Uint8Array.from(p);
      f(q);
      return q;
    };
    pairs.push(['bad TCP checksum', [base(0), bad(base(1), (q) => (q[q.length - 1] ^= 0x40))]]);
    pairs.push(['bad IPv4 header checksum', [base(0), bad(base(1), (q) => (q[10] ^= 1))]]);
    pairs.push(['fragment (MF)', [base(0), bad(base(1), (q) => ((q[6] |= 0x20), fillIpv4Checksum(q)))]]);
    pairs.push(['later fragment', [base(0), bad(base(1), (q) => ((q[7] = 1), fillIpv4Checksum(q)))]]);
    pairs.push(['reserved TCP bits', [base(0), bad(base(1), (q) => ((q[32] |= 1), fillL4Checksum(q)))]]);
    pairs.push(['trailing bytes after the IP length', [base(0), (() => {
      const q = new Uint8Array(base(1).length + 2);
      q.set(base(1));
      return q;
    })()]]);
    // Sanity: the unchanged pair does coalesce.
    const ok = coalesce([base(0), base(1)]);
    expect(ok.writes.length).toBe(1);
    checkPlan([base(0), base(1)], ok.writes);
    for (const [name, pkts] of pairs) {
      const { writes } = coalesce(pkts);
      expect([name, writes.map((w) => w.members)]).toEqual([name, [[0], [1]]]);
      checkPlan(pkts, writes);
    }
  });

  it('a shorter member closes its group; PSH closes it; 64 members at most; 65535 bytes at most', () => {
    const mk = (k: number, n: number, flags = 0x10, id = 0): Uint8Array =>
      tcpPacket({ payload: bytes(n, k), seq: 5000 + k * 1000, flags, id: id + k });
    let pkts = [mk(0, 1000), mk(1, 500), tcpPacket({ payload: bytes(1000), seq: 6500, id: 2 })];
    let w = coalesce(pkts).writes;
    expect(w.map((x) => x.members)).toEqual([[0, 1], [2]]);
    checkPlan(pkts, w);
    pkts = [mk(0, 1000), mk(1, 1000, 0x18), mk(2, 1000)];
    w = coalesce(pkts).writes;
    expect(w.map((x) => x.members)).toEqual([[0, 1], [2]]);
    checkPlan(pkts, w);
    pkts = Array.from({ length: 130 }, (_, k) => tcpPacket({ payload: bytes(100, k), seq: k * 100, id: k }));
    w = coalesce(pkts).writes;
    expect(w.map((x) => x.members.length)).toEqual([64, 64, 2]);
    checkPlan(pkts, w);
    pkts = Array.from({ length: 50 }, (_, k) => tcpPacket({ payload: bytes(1400, k), seq: k * 1400, id: k }));
    w = coalesce(pkts).writes;
    expect(w.map((x) => x.members.length)).toEqual([46, 4]);
    expect(w[0].bytes.length).toBe(40 + 46 * 1400);
    checkPlan(pkts, w);
  });

  it('interleaved flows: up to 8 groups open at once; a ninth evicts the oldest; order kept within each flow', () => {
    const flow = (f: number, k: number): Uint8Array =>
      tcpPacket({ v6: f % 2 === 1, sport: 1000 + f, payload: bytes(800, f * 100 + k), seq: f * 1e6 + k * 800, id: k });
    for (const flows of [8, 9]) {
      const pkts: Uint8Array[] = [];
      for (let k = 0; k < 3; k++) for (let f = 0; f < flows; f++) pkts.push(flow(f, k));
      const { writes } = coalesce(pkts);
      if (flows === 8) expect(writes.map((w) => w.members)).toEqual(Array.from({ length: 8 }, (_, f) => [f, f + 8, f + 16]));
      else expect(writes.length).toBeGreaterThan(9);
      checkPlan(pkts, writes);
    }
  });

  it('property: segmented superpackets of several flows, interleaved, come back as one write per flow', () => {
    const s = new Segmenter();
    const c = new Coalescer(512);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            v6: fc.boolean(),
            n: fc.integer({ min: 1, max: 20000 }),
            gso: fc.integer({ min: 200, max: 1500 }),
            psh: fc.boolean(),
            opt: fc.integer({ min: 0, max: 3 }),
            seq: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
        (flows, picks) => {
          const queues = flows.map((f, i) => {
            const full = tcpPacket({ v6: f.v6, sport: 2000 + i, payload: bytes(f.n, f.seq), flags: f.psh ? 0x18 : 0x10, seq: f.seq, options: Array(f.opt * 4).fill(1), id: f.seq & 0xffff });
            return { full, pkts: segs(s, gsoRead(full, f.gso)) };
          });
          // Interleave, keeping each flow's order.
          const pkts: Uint8Array[] = [];
          const heads = queues.map(() => 0);
          let pick = 0;
          while (pkts.length < queues.reduce((a, q) => a + q.pkts.length, 0)) {
            const live = queues.map((q, i) => i).filter((i) => heads[i] < queues[i].pkts.length);
            const i = live[picks[pick++ % picks.length] % live.length];
            pkts.push(queues[i].pkts[heads[i]++]);
          }
          const { writes } = coalesce(pkts, c);
          checkPlan(pkts, writes);
          const expected = queues.reduce((a, q) => a + Math.ceil(q.pkts.length / 64), 0);
          expect(writes.length).toBe(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('property: a corrupted member (checksum, seq gap, ack, options, flags) is never coalesced with another', () => {
    const s = new Segmenter();
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.integer({ min: 2, max: 12 }),
        fc.nat(),
        fc.constantFrom('checksum', 'gap', 'ack', 'options', 'flags', 'window'),
        (v6, n, at, how) => {
          const gso = 600;
          const full = tcpPacket({ v6, payload: bytes(n * gso, n), options: [1, 1, 1, 1], seq: 77 });
          const pkts = segs(s, gsoRead(full, gso));
          const j = at % n;
          const ipl = v6 ? 40 : 20;
          const change = (q: Uint8Array, f: (q: Uint8Array) => void): void => {
            f(q);
            fillL4Checksum(q);
          };
          if (how === 'checksum') pkts[j][ipl + 30] ^= 0x10;
          if (how === 'gap') for (let k = j; k < n; k++) change(pkts[k], (q) => put32(q, ipl + 4, (be32(q, ipl + 4) + 1) >>> 0));
          if (how === 'ack') change(pkts[j], (q) => (q[ipl + 11] ^= 1));
          if (how === 'window') change(pkts[j], (q) => (q[ipl + 15] ^= 1));
          if (how === 'options') change(pkts[j], (q) => (q[ipl + 23] = 0));
          if (how === 'flags') change(pkts[j], (q) => (q[ipl + 13] = 0x11));
          const { writes } = coalesce(pkts);
          checkPlan(pkts, writes);
          const groups = writes.map((w) => w.members);
          const runs = (a: number, b: number): number[][] => (b > a ? [Array.from({ length: b - a }, (_, k) => a + k)] : []);
          if (how === 'gap') expect(groups).toEqual([...runs(0, j), ...runs(j, n)]);
          else expect(groups).toEqual([...runs(0, j), [j], ...runs(j + 1, n)]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('garbage never throws; every packet lands in one write', () => {
    const c = new Coalescer(16);
    const seen = new OutcomeCounts();
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ minLength: 0, maxLength: 200 }), { maxLength: 16 }), fc.boolean(), (raw, tcpish) => {
        const pkts = raw.map((p) => {
          if (!tcpish || p.length < 40) return p;
          const q = Uint8Array.from(p);
          q[0] = 0x45;
          q[9] = 6;
          put16(q, 2, q.length);
          return q;
        });
        const { writes } = coalesce(pkts, c);
        expect(writes.reduce((a, w) => a + w.members.length, 0)).toBe(pkts.length);
        seen.add(writes.some((w) => w.members.length > 1) ? 'coalesced' : 'alone');
      }),
      { numRuns: fuzzRuns(500) },
    );
    reportFuzz('offload Coalescer: garbage batches', seen.counts);
    expect(() => c.plan(new Uint8Array(10), new Uint32Array(17), new Uint32Array(17), 17)).toThrow(RangeError);
    // Offsets past the slab: lone writes, no throw.
    expect(c.plan(new Uint8Array(10), Uint32Array.of(100, 5), Uint32Array.of(50, 60), 2)).toBe(2);
  });
});
