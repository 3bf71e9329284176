// Byte layouts of the XFRM uapi structures (linux/xfrm.h) as x86-64 lays them out: read and write, bounds checked.
//
// Every size and offset here is the x86-64 (LP64, u64 aligned to 8) one: xfrm_usersa_info is 224 bytes,
// xfrm_userpolicy_info 168. A 32-bit process talking to a 64-bit kernel would need the kernel's compat layer
// and different offsets; natt does not support that. Multi-byte fields are host order (little-endian here)
// except the ones the uapi marks __be16/__be32 (ports, SPI), which are network order.
// Padding and reserved bytes inside a structure are written as zero, and decode refuses a structure whose padding
// is not zero (the kernel zeroes it too), so that every buffer decode accepts re-encodes to the same bytes.
// Every field a writer puts goes through the checked cursor (src/core/cursor.ts): a value that does not fit its field
// is a RangeError naming it, one of the wrong type (or a structure that is not an object) a TypeError naming it.

import { AF_INET, SIZE } from './constants';
import { addressToBytes, bytesToAddress } from '../ip/address';
import { checkedObject, type ByteReader, type ByteWriter } from '../core/cursor';

// ---- xfrm_address_t (16 bytes): the codec's one piece of address knowledge; the cursor moves bytes only ----

/** xfrm_address_t at `o`: IPv4 text when the family says so and bytes 4..15 are zero, else IPv6 text. */
export function readAddress(r: ByteReader, o: number, family: number): string {
  if (family === AF_INET || family === 0) {
    const b = r.buf;
    let tailZero = true;
    for (let i = 4; i < 16; i++) if (b[o + i] !== 0) tailZero = false;
    if (tailZero && (family === AF_INET || b[o] !== 0 || b[o + 1] !== 0 || b[o + 2] !== 0 || b[o + 3] !== 0)) return bytesToAddress(b, o, 4);
  }
  return bytesToAddress(r.buf, o, 16);
}

/** Text address → xfrm_address_t at `o` (IPv4 in the first 4 bytes); `undefined` or `''` leaves it zero. */
export function writeAddress(w: ByteWriter, o: number, text: string | undefined, field: string): void {
  if (text === undefined || text === '') return;
  w.bytes(o, addressToBytes(text, field), field);
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

// ---- readers (the caller has checked that the whole structure is inside the buffer) and writers ----
// A reader refuses non-zero padding, naming the structure and the bytes; a writer's `f` is the field-name prefix
// its RangeErrors use (e.g. "sa.sel.dport").

export function readSelector(r: ByteReader, o: number): XfrmSelectorStruct {
  const family = r.u16(o + 40);
  r.zeros(o + 45, 3, 'xfrm_selector padding (bytes 45-47)');
  return {
    daddr: readAddress(r, o, family),
    saddr: readAddress(r, o + 16, family),
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

export function writeSelector(w: ByteWriter, o: number, s: XfrmSelectorStruct, f = 'sel'): void {
  checkedObject(s, f);
  writeAddress(w, o, s.daddr, `${f}.daddr`);
  writeAddress(w, o + 16, s.saddr, `${f}.saddr`);
  w.be16(o + 32, s.dport, `${f}.dport`);
  w.be16(o + 34, s.dportMask, `${f}.dportMask`);
  w.be16(o + 36, s.sport, `${f}.sport`);
  w.be16(o + 38, s.sportMask, `${f}.sportMask`);
  w.u16(o + 40, s.family, `${f}.family`);
  w.u8(o + 42, s.prefixlenD, `${f}.prefixlenD`);
  w.u8(o + 43, s.prefixlenS, `${f}.prefixlenS`);
  w.u8(o + 44, s.proto, `${f}.proto`);
  w.i32(o + 48, s.ifindex, `${f}.ifindex`);
  w.u32(o + 52, s.user, `${f}.user`);
}

export function readId(r: ByteReader, o: number, family: number): XfrmIdStruct {
  r.zeros(o + 21, 3, 'xfrm_id padding (bytes 21-23)');
  return { daddr: readAddress(r, o, family), spi: r.be32(o + 16), proto: r.u8(o + 20) };
}

export function writeId(w: ByteWriter, o: number, id: XfrmIdStruct, f = 'id'): void {
  checkedObject(id, f);
  writeAddress(w, o, id.daddr, `${f}.daddr`);
  w.be32(o + 16, id.spi, `${f}.spi`);
  w.u8(o + 20, id.proto, `${f}.proto`);
}

export function readLifetimeCfg(r: ByteReader, o: number): XfrmLifetimeCfg {
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

export function writeLifetimeCfg(w: ByteWriter, o: number, l: XfrmLifetimeCfg, f = 'lft'): void {
  checkedObject(l, f);
  w.u64(o, l.softByteLimit, `${f}.softByteLimit`);
  w.u64(o + 8, l.hardByteLimit, `${f}.hardByteLimit`);
  w.u64(o + 16, l.softPacketLimit, `${f}.softPacketLimit`);
  w.u64(o + 24, l.hardPacketLimit, `${f}.hardPacketLimit`);
  w.u64(o + 32, l.softAddExpiresSeconds, `${f}.softAddExpiresSeconds`);
  w.u64(o + 40, l.hardAddExpiresSeconds, `${f}.hardAddExpiresSeconds`);
  w.u64(o + 48, l.softUseExpiresSeconds, `${f}.softUseExpiresSeconds`);
  w.u64(o + 56, l.hardUseExpiresSeconds, `${f}.hardUseExpiresSeconds`);
}

export function readLifetimeCur(r: ByteReader, o: number): XfrmLifetimeCur {
  return { bytes: r.u64(o), packets: r.u64(o + 8), addTime: r.u64(o + 16), useTime: r.u64(o + 24) };
}

export function writeLifetimeCur(w: ByteWriter, o: number, c: XfrmLifetimeCur, f = 'curlft'): void {
  checkedObject(c, f);
  w.u64(o, c.bytes, `${f}.bytes`);
  w.u64(o + 8, c.packets, `${f}.packets`);
  w.u64(o + 16, c.addTime, `${f}.addTime`);
  w.u64(o + 24, c.useTime, `${f}.useTime`);
}

export function readUsersaInfo(r: ByteReader, o: number): XfrmUsersaInfo {
  const family = r.u16(o + 212);
  r.zeros(o + 217, 7, 'xfrm_usersa_info padding (bytes 217-223)');
  return {
    sel: readSelector(r, o),
    id: readId(r, o + 56, family),
    saddr: readAddress(r, o + 80, family),
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

export function writeUsersaInfo(w: ByteWriter, o: number, s: XfrmUsersaInfo, f = 'sa'): void {
  checkedObject(s, f);
  writeSelector(w, o, s.sel, `${f}.sel`);
  writeId(w, o + 56, s.id, `${f}.id`);
  writeAddress(w, o + 80, s.saddr, `${f}.saddr`);
  writeLifetimeCfg(w, o + 96, s.lft, `${f}.lft`);
  writeLifetimeCur(w, o + 160, s.curlft, `${f}.curlft`);
  const stats = checkedObject(s.stats, `${f}.stats`);
  w.u32(o + 192, stats.replayWindow, `${f}.stats.replayWindow`);
  w.u32(o + 196, stats.replay, `${f}.stats.replay`);
  w.u32(o + 200, stats.integrityFailed, `${f}.stats.integrityFailed`);
  w.u32(o + 204, s.seq, `${f}.seq`);
  w.u32(o + 208, s.reqid, `${f}.reqid`);
  w.u16(o + 212, s.family, `${f}.family`);
  w.u8(o + 214, s.mode, `${f}.mode`);
  w.u8(o + 215, s.replayWindow, `${f}.replayWindow`);
  w.u8(o + 216, s.flags, `${f}.flags`);
}

export function readUsersaId(r: ByteReader, o: number): XfrmUsersaId {
  const family = r.u16(o + 20);
  r.zeros(o + 23, 1, 'xfrm_usersa_id padding (byte 23)');
  return { daddr: readAddress(r, o, family), spi: r.be32(o + 16), family, proto: r.u8(o + 22) };
}

export function writeUsersaId(w: ByteWriter, o: number, s: XfrmUsersaId, f = 'id'): void {
  checkedObject(s, f);
  writeAddress(w, o, s.daddr, `${f}.daddr`);
  w.be32(o + 16, s.spi, `${f}.spi`);
  w.u16(o + 20, s.family, `${f}.family`);
  w.u8(o + 22, s.proto, `${f}.proto`);
}

export function readUserpolicyInfo(r: ByteReader, o: number): XfrmUserpolicyInfo {
  r.zeros(o + 164, 4, 'xfrm_userpolicy_info padding (bytes 164-167)');
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

export function writeUserpolicyInfo(w: ByteWriter, o: number, p: XfrmUserpolicyInfo, f = 'policy'): void {
  checkedObject(p, f);
  writeSelector(w, o, p.sel, `${f}.sel`);
  writeLifetimeCfg(w, o + 56, p.lft, `${f}.lft`);
  writeLifetimeCur(w, o + 120, p.curlft, `${f}.curlft`);
  w.u32(o + 152, p.priority, `${f}.priority`);
  w.u32(o + 156, p.index, `${f}.index`);
  w.u8(o + 160, p.dir, `${f}.dir`);
  w.u8(o + 161, p.action, `${f}.action`);
  w.u8(o + 162, p.flags, `${f}.flags`);
  w.u8(o + 163, p.share, `${f}.share`);
}

export function readUserpolicyId(r: ByteReader, o: number): XfrmUserpolicyId {
  r.zeros(o + 61, 3, 'xfrm_userpolicy_id padding (bytes 61-63)');
  return { sel: readSelector(r, o), index: r.u32(o + 56), dir: r.u8(o + 60) };
}

export function writeUserpolicyId(w: ByteWriter, o: number, p: XfrmUserpolicyId, f = 'id'): void {
  checkedObject(p, f);
  writeSelector(w, o, p.sel, `${f}.sel`);
  w.u32(o + 56, p.index, `${f}.index`);
  w.u8(o + 60, p.dir, `${f}.dir`);
}

export function readUserTmpl(r: ByteReader, o: number): XfrmUserTmpl {
  const family = r.u16(o + 24);
  r.zeros(o + 26, 2, 'xfrm_user_tmpl padding (bytes 26-27)');
  r.zeros(o + 51, 1, 'xfrm_user_tmpl padding (byte 51)');
  return {
    id: readId(r, o, family),
    family,
    saddr: readAddress(r, o + 28, family),
    reqid: r.u32(o + 44),
    mode: r.u8(o + 48),
    share: r.u8(o + 49),
    optional: r.u8(o + 50),
    aalgos: r.u32(o + 52),
    ealgos: r.u32(o + 56),
    calgos: r.u32(o + 60),
  };
}

export function writeUserTmpl(w: ByteWriter, o: number, t: XfrmUserTmpl, f = 'tmpl'): void {
  checkedObject(t, f);
  writeId(w, o, t.id, `${f}.id`);
  w.u16(o + 24, t.family, `${f}.family`);
  writeAddress(w, o + 28, t.saddr, `${f}.saddr`);
  w.u32(o + 44, t.reqid, `${f}.reqid`);
  w.u8(o + 48, t.mode, `${f}.mode`);
  w.u8(o + 49, t.share, `${f}.share`);
  w.u8(o + 50, t.optional, `${f}.optional`);
  w.u32(o + 52, t.aalgos, `${f}.aalgos`);
  w.u32(o + 56, t.ealgos, `${f}.ealgos`);
  w.u32(o + 60, t.calgos, `${f}.calgos`);
}

export function readUserAcquire(r: ByteReader, o: number): XfrmUserAcquire {
  const sel = readSelector(r, o + 40);
  return {
    id: readId(r, o, sel.family),
    saddr: readAddress(r, o + 24, sel.family),
    sel,
    policy: readUserpolicyInfo(r, o + 96),
    aalgos: r.u32(o + 264),
    ealgos: r.u32(o + 268),
    calgos: r.u32(o + 272),
    seq: r.u32(o + 276),
  };
}

export function writeUserAcquire(w: ByteWriter, o: number, a: XfrmUserAcquire, f = 'acquire'): void {
  checkedObject(a, f);
  writeId(w, o, a.id, `${f}.id`);
  writeAddress(w, o + 24, a.saddr, `${f}.saddr`);
  writeSelector(w, o + 40, a.sel, `${f}.sel`);
  writeUserpolicyInfo(w, o + 96, a.policy, `${f}.policy`);
  w.u32(o + 264, a.aalgos, `${f}.aalgos`);
  w.u32(o + 268, a.ealgos, `${f}.ealgos`);
  w.u32(o + 272, a.calgos, `${f}.calgos`);
  w.u32(o + 276, a.seq, `${f}.seq`);
}

export function readUserMapping(r: ByteReader, o: number): XfrmUserMapping {
  const id = readUsersaId(r, o);
  return {
    id,
    reqid: r.u32(o + 24),
    oldSaddr: readAddress(r, o + 28, id.family),
    newSaddr: readAddress(r, o + 44, id.family),
    oldSport: r.be16(o + 60),
    newSport: r.be16(o + 62),
  };
}

export function writeUserMapping(w: ByteWriter, o: number, m: XfrmUserMapping, f = 'mapping'): void {
  checkedObject(m, f);
  writeUsersaId(w, o, m.id, `${f}.id`);
  w.u32(o + 24, m.reqid, `${f}.reqid`);
  writeAddress(w, o + 28, m.oldSaddr, `${f}.oldSaddr`);
  writeAddress(w, o + 44, m.newSaddr, `${f}.newSaddr`);
  w.be16(o + 60, m.oldSport, `${f}.oldSport`);
  w.be16(o + 62, m.newSport, `${f}.newSport`);
}

/** Sizes checked at load: a typo in an offset above would show here first. */
export const STRUCT_SIZES = SIZE;
