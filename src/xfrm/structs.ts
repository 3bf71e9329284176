// Byte layouts of the XFRM uapi structures (linux/xfrm.h) as x86-64 lays them out: read and write, bounds checked.
//
// Every size and offset here is the x86-64 (LP64, u64 aligned to 8) one: xfrm_usersa_info is 224 bytes,
// xfrm_userpolicy_info 168. A 32-bit process talking to a 64-bit kernel would need the kernel's compat layer
// and different offsets; natt does not support that. Multi-byte fields are host order (little-endian here)
// except the ones the uapi marks __be16/__be32 (ports, SPI), which are network order.
// Padding inside a structure is written as zero and not kept on decode: a structure with non-zero padding
// decodes to the same object as one with zero padding.

import { XfrmDecodeError } from './errors';
import { AF_INET, SIZE } from './constants';
import { addressToBytes, bytesToAddress } from '../ip/address';

/** A bounds-checked reader over one buffer; offsets are absolute (from the start of the decoded buffer). */
export class Reader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  /** Throws XfrmDecodeError unless [off, off+len) lies inside [0, end). */
  need(off: number, len: number, end: number, what: string): void {
    if (off + len > end) throw new XfrmDecodeError(off, `${what} needs ${len} bytes, only ${Math.max(0, end - off)} left`);
  }
  u8(o: number): number {
    return this.buf[o];
  }
  u16(o: number): number {
    return this.view.getUint16(o, true);
  }
  be16(o: number): number {
    return this.view.getUint16(o, false);
  }
  u32(o: number): number {
    return this.view.getUint32(o, true);
  }
  i32(o: number): number {
    return this.view.getInt32(o, true);
  }
  be32(o: number): number {
    return this.view.getUint32(o, false);
  }
  u64(o: number): bigint {
    return this.view.getBigUint64(o, true);
  }
  /** A copy, as a plain Uint8Array (never a view into the received buffer). */
  bytes(o: number, len: number): Uint8Array {
    return new Uint8Array(this.buf.subarray(o, o + len));
  }
  /** xfrm_address_t (16 bytes): IPv4 text when the family says so and bytes 4..15 are zero, else IPv6 text. */
  address(o: number, family: number): string {
    if (family === AF_INET || family === 0) {
      let tailZero = true;
      for (let i = 4; i < 16; i++) if (this.buf[o + i] !== 0) tailZero = false;
      if (tailZero && (family === AF_INET || allZero(this.buf, o, 4) === false)) return bytesToAddress(this.buf, o, 4);
    }
    return bytesToAddress(this.buf, o, 16);
  }
  /** A NUL-terminated name in a fixed field of `len` bytes (the NUL must be inside the field). */
  cstring(o: number, len: number, what: string): string {
    const end = this.buf.indexOf(0, o);
    if (end < 0 || end >= o + len) throw new XfrmDecodeError(o, `${what} is not NUL-terminated within ${len} bytes`);
    for (let i = end; i < o + len; i++) {
      if (this.buf[i] !== 0) throw new XfrmDecodeError(i, `${what} has bytes after its NUL terminator`);
    }
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + o, end - o).toString('latin1');
  }
}

function allZero(b: Uint8Array, o: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[o + i] !== 0) return false;
  return true;
}

/** A growable little-endian writer. */
export class Writer {
  buf: Buffer;
  view: DataView;
  len = 0;
  constructor(size = 512) {
    this.buf = Buffer.alloc(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }
  /** Reserve `n` zeroed bytes; returns their offset. */
  reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
      this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  align4(): void {
    const pad = (4 - (this.len & 3)) & 3;
    if (pad) this.reserve(pad);
  }
  u8(o: number, v: number): void {
    this.buf[o] = v;
  }
  u16(o: number, v: number): void {
    this.view.setUint16(o, v, true);
  }
  be16(o: number, v: number): void {
    this.view.setUint16(o, v, false);
  }
  u32(o: number, v: number): void {
    this.view.setUint32(o, v >>> 0, true);
  }
  i32(o: number, v: number): void {
    this.view.setInt32(o, v, true);
  }
  be32(o: number, v: number): void {
    this.view.setUint32(o, v >>> 0, false);
  }
  u64(o: number, v: bigint): void {
    this.view.setBigUint64(o, v, true);
  }
  bytes(o: number, b: Uint8Array): void {
    this.buf.set(b, o);
  }
  address(o: number, text: string | undefined, option: string): void {
    if (text === undefined || text === '') return;
    this.buf.set(addressToBytes(text, option), o);
  }
  cstring(o: number, text: string, max: number, option: string): void {
    const b = Buffer.from(text, 'latin1');
    if (b.length >= max) throw new RangeError(`option "${option}" must be shorter than ${max} bytes`);
    this.buf.set(b, o);
  }
  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

// ---- structure types (field names follow the uapi, camelCased) ----

/** struct xfrm_selector (56 bytes). */
export interface XfrmSelectorStruct {
  daddr: string;
  saddr: string;
  dport: number;
  dportMask: number;
  sport: number;
  sportMask: number;
  family: number;
  prefixlenD: number;
  prefixlenS: number;
  proto: number;
  ifindex: number;
  user: number;
}

/** struct xfrm_id (24 bytes). */
export interface XfrmIdStruct {
  daddr: string;
  spi: number;
  proto: number;
}

/** struct xfrm_lifetime_cfg (64 bytes); XFRM_INF (2^64-1) means no limit. */
export interface XfrmLifetimeCfg {
  softByteLimit: bigint;
  hardByteLimit: bigint;
  softPacketLimit: bigint;
  hardPacketLimit: bigint;
  softAddExpiresSeconds: bigint;
  hardAddExpiresSeconds: bigint;
  softUseExpiresSeconds: bigint;
  hardUseExpiresSeconds: bigint;
}

/** struct xfrm_lifetime_cur (32 bytes). */
export interface XfrmLifetimeCur {
  bytes: bigint;
  packets: bigint;
  addTime: bigint;
  useTime: bigint;
}

/** struct xfrm_stats (12 bytes). */
export interface XfrmStats {
  replayWindow: number;
  replay: number;
  integrityFailed: number;
}

/** struct xfrm_usersa_info (224 bytes). */
export interface XfrmUsersaInfo {
  sel: XfrmSelectorStruct;
  id: XfrmIdStruct;
  saddr: string;
  lft: XfrmLifetimeCfg;
  curlft: XfrmLifetimeCur;
  stats: XfrmStats;
  seq: number;
  reqid: number;
  family: number;
  mode: number;
  replayWindow: number;
  flags: number;
}

/** struct xfrm_usersa_id (24 bytes). */
export interface XfrmUsersaId {
  daddr: string;
  spi: number;
  family: number;
  proto: number;
}

/** struct xfrm_userpolicy_info (168 bytes). */
export interface XfrmUserpolicyInfo {
  sel: XfrmSelectorStruct;
  lft: XfrmLifetimeCfg;
  curlft: XfrmLifetimeCur;
  priority: number;
  index: number;
  dir: number;
  action: number;
  flags: number;
  share: number;
}

/** struct xfrm_userpolicy_id (64 bytes). */
export interface XfrmUserpolicyId {
  sel: XfrmSelectorStruct;
  index: number;
  dir: number;
}

/** struct xfrm_user_tmpl (64 bytes). */
export interface XfrmUserTmpl {
  id: XfrmIdStruct;
  family: number;
  saddr: string;
  reqid: number;
  mode: number;
  share: number;
  optional: number;
  aalgos: number;
  ealgos: number;
  calgos: number;
}

/** struct xfrm_user_acquire (280 bytes). */
export interface XfrmUserAcquire {
  id: XfrmIdStruct;
  saddr: string;
  sel: XfrmSelectorStruct;
  policy: XfrmUserpolicyInfo;
  aalgos: number;
  ealgos: number;
  calgos: number;
  seq: number;
}

/** struct xfrm_user_mapping (64 bytes). */
export interface XfrmUserMapping {
  id: XfrmUsersaId;
  reqid: number;
  oldSaddr: string;
  newSaddr: string;
  oldSport: number;
  newSport: number;
}

export const XFRM_INF = 0xffffffffffffffffn;

// ---- readers (the caller has checked that the whole structure is inside the buffer) ----

export function readSelector(r: Reader, o: number): XfrmSelectorStruct {
  const family = r.u16(o + 40);
  return {
    daddr: r.address(o, family),
    saddr: r.address(o + 16, family),
    dport: r.be16(o + 32),
    dportMask: r.be16(o + 34),
    sport: r.be16(o + 36),
    sportMask: r.be16(o + 38),
    family,
    prefixlenD: r.u8(o + 42),
    prefixlenS: r.u8(o + 43),
    proto: r.u8(o + 44),
    ifindex: r.i32(o + 48),
    user: r.u32(o + 52),
  };
}

export function writeSelector(w: Writer, o: number, s: XfrmSelectorStruct): void {
  w.address(o, s.daddr, 'sel.daddr');
  w.address(o + 16, s.saddr, 'sel.saddr');
  w.be16(o + 32, s.dport);
  w.be16(o + 34, s.dportMask);
  w.be16(o + 36, s.sport);
  w.be16(o + 38, s.sportMask);
  w.u16(o + 40, s.family);
  w.u8(o + 42, s.prefixlenD);
  w.u8(o + 43, s.prefixlenS);
  w.u8(o + 44, s.proto);
  w.i32(o + 48, s.ifindex);
  w.u32(o + 52, s.user);
}

export function readId(r: Reader, o: number, family: number): XfrmIdStruct {
  return { daddr: r.address(o, family), spi: r.be32(o + 16), proto: r.u8(o + 20) };
}

export function writeId(w: Writer, o: number, id: XfrmIdStruct): void {
  w.address(o, id.daddr, 'id.daddr');
  w.be32(o + 16, id.spi);
  w.u8(o + 20, id.proto);
}

export function readLifetimeCfg(r: Reader, o: number): XfrmLifetimeCfg {
  return {
    softByteLimit: r.u64(o),
    hardByteLimit: r.u64(o + 8),
    softPacketLimit: r.u64(o + 16),
    hardPacketLimit: r.u64(o + 24),
    softAddExpiresSeconds: r.u64(o + 32),
    hardAddExpiresSeconds: r.u64(o + 40),
    softUseExpiresSeconds: r.u64(o + 48),
    hardUseExpiresSeconds: r.u64(o + 56),
  };
}

export function writeLifetimeCfg(w: Writer, o: number, l: XfrmLifetimeCfg): void {
  w.u64(o, l.softByteLimit);
  w.u64(o + 8, l.hardByteLimit);
  w.u64(o + 16, l.softPacketLimit);
  w.u64(o + 24, l.hardPacketLimit);
  w.u64(o + 32, l.softAddExpiresSeconds);
  w.u64(o + 40, l.hardAddExpiresSeconds);
  w.u64(o + 48, l.softUseExpiresSeconds);
  w.u64(o + 56, l.hardUseExpiresSeconds);
}

export function readLifetimeCur(r: Reader, o: number): XfrmLifetimeCur {
  return { bytes: r.u64(o), packets: r.u64(o + 8), addTime: r.u64(o + 16), useTime: r.u64(o + 24) };
}

export function writeLifetimeCur(w: Writer, o: number, c: XfrmLifetimeCur): void {
  w.u64(o, c.bytes);
  w.u64(o + 8, c.packets);
  w.u64(o + 16, c.addTime);
  w.u64(o + 24, c.useTime);
}

export function readUsersaInfo(r: Reader, o: number): XfrmUsersaInfo {
  const family = r.u16(o + 212);
  return {
    sel: readSelector(r, o),
    id: readId(r, o + 56, family),
    saddr: r.address(o + 80, family),
    lft: readLifetimeCfg(r, o + 96),
    curlft: readLifetimeCur(r, o + 160),
    stats: { replayWindow: r.u32(o + 192), replay: r.u32(o + 196), integrityFailed: r.u32(o + 200) },
    seq: r.u32(o + 204),
    reqid: r.u32(o + 208),
    family,
    mode: r.u8(o + 214),
    replayWindow: r.u8(o + 215),
    flags: r.u8(o + 216),
  };
}

export function writeUsersaInfo(w: Writer, o: number, s: XfrmUsersaInfo): void {
  writeSelector(w, o, s.sel);
  writeId(w, o + 56, s.id);
  w.address(o + 80, s.saddr, 'saddr');
  writeLifetimeCfg(w, o + 96, s.lft);
  writeLifetimeCur(w, o + 160, s.curlft);
  w.u32(o + 192, s.stats.replayWindow);
  w.u32(o + 196, s.stats.replay);
  w.u32(o + 200, s.stats.integrityFailed);
  w.u32(o + 204, s.seq);
  w.u32(o + 208, s.reqid);
  w.u16(o + 212, s.family);
  w.u8(o + 214, s.mode);
  w.u8(o + 215, s.replayWindow);
  w.u8(o + 216, s.flags);
}

export function readUsersaId(r: Reader, o: number): XfrmUsersaId {
  const family = r.u16(o + 20);
  return { daddr: r.address(o, family), spi: r.be32(o + 16), family, proto: r.u8(o + 22) };
}

export function writeUsersaId(w: Writer, o: number, s: XfrmUsersaId): void {
  w.address(o, s.daddr, 'id.daddr');
  w.be32(o + 16, s.spi);
  w.u16(o + 20, s.family);
  w.u8(o + 22, s.proto);
}

export function readUserpolicyInfo(r: Reader, o: number): XfrmUserpolicyInfo {
  return {
    sel: readSelector(r, o),
    lft: readLifetimeCfg(r, o + 56),
    curlft: readLifetimeCur(r, o + 120),
    priority: r.u32(o + 152),
    index: r.u32(o + 156),
    dir: r.u8(o + 160),
    action: r.u8(o + 161),
    flags: r.u8(o + 162),
    share: r.u8(o + 163),
  };
}

export function writeUserpolicyInfo(w: Writer, o: number, p: XfrmUserpolicyInfo): void {
  writeSelector(w, o, p.sel);
  writeLifetimeCfg(w, o + 56, p.lft);
  writeLifetimeCur(w, o + 120, p.curlft);
  w.u32(o + 152, p.priority);
  w.u32(o + 156, p.index);
  w.u8(o + 160, p.dir);
  w.u8(o + 161, p.action);
  w.u8(o + 162, p.flags);
  w.u8(o + 163, p.share);
}

export function readUserpolicyId(r: Reader, o: number): XfrmUserpolicyId {
  return { sel: readSelector(r, o), index: r.u32(o + 56), dir: r.u8(o + 60) };
}

export function writeUserpolicyId(w: Writer, o: number, p: XfrmUserpolicyId): void {
  writeSelector(w, o, p.sel);
  w.u32(o + 56, p.index);
  w.u8(o + 60, p.dir);
}

export function readUserTmpl(r: Reader, o: number): XfrmUserTmpl {
  const family = r.u16(o + 24);
  return {
    id: readId(r, o, family),
    family,
    saddr: r.address(o + 28, family),
    reqid: r.u32(o + 44),
    mode: r.u8(o + 48),
    share: r.u8(o + 49),
    optional: r.u8(o + 50),
    aalgos: r.u32(o + 52),
    ealgos: r.u32(o + 56),
    calgos: r.u32(o + 60),
  };
}

export function writeUserTmpl(w: Writer, o: number, t: XfrmUserTmpl): void {
  writeId(w, o, t.id);
  w.u16(o + 24, t.family);
  w.address(o + 28, t.saddr, 'tmpl.saddr');
  w.u32(o + 44, t.reqid);
  w.u8(o + 48, t.mode);
  w.u8(o + 49, t.share);
  w.u8(o + 50, t.optional);
  w.u32(o + 52, t.aalgos);
  w.u32(o + 56, t.ealgos);
  w.u32(o + 60, t.calgos);
}

export function readUserAcquire(r: Reader, o: number): XfrmUserAcquire {
  const sel = readSelector(r, o + 40);
  return {
    id: readId(r, o, sel.family),
    saddr: r.address(o + 24, sel.family),
    sel,
    policy: readUserpolicyInfo(r, o + 96),
    aalgos: r.u32(o + 264),
    ealgos: r.u32(o + 268),
    calgos: r.u32(o + 272),
    seq: r.u32(o + 276),
  };
}

export function writeUserAcquire(w: Writer, o: number, a: XfrmUserAcquire): void {
  writeId(w, o, a.id);
  w.address(o + 24, a.saddr, 'saddr');
  writeSelector(w, o + 40, a.sel);
  writeUserpolicyInfo(w, o + 96, a.policy);
  w.u32(o + 264, a.aalgos);
  w.u32(o + 268, a.ealgos);
  w.u32(o + 272, a.calgos);
  w.u32(o + 276, a.seq);
}

export function readUserMapping(r: Reader, o: number): XfrmUserMapping {
  const id = readUsersaId(r, o);
  return {
    id,
    reqid: r.u32(o + 24),
    oldSaddr: r.address(o + 28, id.family),
    newSaddr: r.address(o + 44, id.family),
    oldSport: r.be16(o + 60),
    newSport: r.be16(o + 62),
  };
}

export function writeUserMapping(w: Writer, o: number, m: XfrmUserMapping): void {
  writeUsersaId(w, o, m.id);
  w.u32(o + 24, m.reqid);
  w.address(o + 28, m.oldSaddr, 'oldSaddr');
  w.address(o + 44, m.newSaddr, 'newSaddr');
  w.be16(o + 60, m.oldSport);
  w.be16(o + 62, m.newSport);
}

/** Sizes checked at load: a typo in an offset above would show here first. */
export const STRUCT_SIZES = SIZE;
