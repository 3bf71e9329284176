// PF_KEY v2 wire codec: every message and extension as typed objects ⇄ bytes, strict and lossless, per dialect.

import { NattError, rangeError, typeError } from '../errors';
import { bytesToAddress, addressToBytes } from '../ip/address';
import { PF_KEY_V2, extensionName, extensionNumber, resolveDialect, type Dialect, type DialectName, type ExtensionName } from './dialects';

/** A buffer that is not a valid PF_KEY message: names the byte offset and the rule it breaks. */
export class PfKeyDecodeError extends NattError {
  offset: number;
  rule: string;
  constructor(offset: number, rule: string) {
    super('ERR_PFKEY_DECODE', `bad PF_KEY message at byte ${offset}: ${rule}`);
    this.offset = offset;
    this.rule = rule;
  }
}

/** A socket address inside an extension. An address extension with an unknown family keeps its bytes. */
export type Sockaddr =
  | { family: 'inet'; address: string; port: number }
  | { family: 'inet6'; address: string; port: number; flowinfo?: number; scopeId?: number }
  | { family: 'raw'; bytes: Uint8Array };

export interface SaExt { name: 'sa'; spi: number; replay: number; state: number; auth: number; encrypt: number; flags: number }
export interface LifetimeExt {
  name: 'lifetimeCurrent' | 'lifetimeHard' | 'lifetimeSoft' | 'lifetimeSwOffload' | 'lifetimeHwOffload';
  allocations: number;
  bytes: bigint;
  addtime: bigint;
  usetime: bigint;
}
export interface AddressExt {
  name: 'src' | 'dst' | 'proxy' | 'nattOa' | 'nattOai' | 'nattOar' | 'newAddressSrc' | 'newAddressDst';
  /** Upper-layer protocol (255 = any). */
  proto: number;
  prefixlen: number;
  reserved?: number;
  addr: Sockaddr;
}
export interface KeyExt { name: 'keyAuth' | 'keyEncrypt'; bits: number; reserved?: number; key: Uint8Array }
/** Identity: the bytes after the header (a NUL-terminated string, padded) are kept as they are. */
export interface IdentityExt { name: 'identitySrc' | 'identityDst'; idtype: number; reserved?: number; id: bigint; data: Uint8Array }
export interface SensitivityExt {
  name: 'sensitivity';
  dpd: number;
  sensLevel: number;
  integLevel: number;
  reserved?: number;
  /** sens_len × 8 bytes of bitmap. */
  sens: Uint8Array;
  integ: Uint8Array;
}
export interface Comb {
  auth: number;
  encrypt: number;
  flags: number;
  authMinbits: number;
  authMaxbits: number;
  encryptMinbits: number;
  encryptMaxbits: number;
  reserved?: number;
  softAllocations: number;
  hardAllocations: number;
  softBytes: bigint;
  hardBytes: bigint;
  softAddtime: bigint;
  hardAddtime: bigint;
  softUsetime: bigint;
  hardUsetime: bigint;
}
export interface ProposalExt { name: 'proposal'; replay: number; reserved?: number; combs: Comb[] }
export interface Alg { id: number; ivlen: number; minbits: number; maxbits: number; reserved?: number }
export interface SupportedExt { name: 'supportedAuth' | 'supportedEncrypt'; reserved?: number; algs: Alg[] }
export interface SpirangeExt { name: 'spirange'; min: number; max: number; reserved?: number }
export interface KmprivateExt { name: 'kmprivate'; reserved?: number; data: Uint8Array }
export interface IpsecRequest {
  /** IPPROTO_ESP 50, AH 51, COMP 108. */
  proto: number;
  mode: number;
  level: number;
  /** 32 bits on Linux, 16 on the BSDs. */
  reqid: number;
  /** Linux only: reserved1 (u16) and reserved2 (u32). */
  reserved1?: number;
  reserved2?: number;
  /** Tunnel endpoints (tunnel mode). */
  tunnel?: { src: Sockaddr; dst: Sockaddr };
}
export interface PolicyExt {
  name: 'policy';
  policyType: number;
  dir: number;
  /** FreeBSD: scope. */
  reserved?: number;
  id: number;
  /** Linux/FreeBSD priority; NetBSD reserved2. */
  priority: number;
  requests: IpsecRequest[];
}
export interface Sa2Ext { name: 'sa2'; mode: number; reserved1?: number; reserved2?: number; sequence: number; reqid: number }
export interface NattTypeExt { name: 'nattType'; type: number; reserved?: number }
/** `port` in host terms (the codec writes it in network order). */
export interface NattPortExt { name: 'nattSport' | 'nattDport'; port: number; reserved?: number }
export interface NattFragExt { name: 'nattFrag'; fraglen: number; reserved?: number }
/** sadb_x_sec_ctx: alg u8 @4, doi u8 @5, ctx_len u16 @6, then the context. */
export interface SecCtxExt { name: 'secCtx'; alg: number; doi: number; ctx: Uint8Array }
export interface KmaddressExt { name: 'kmaddress'; reserved?: number; local: Sockaddr; remote: Sockaddr }
/** Linux X_FILTER: the 16-byte address fields are kept as bytes (IPv4 uses the first 4). */
export interface FilterExt { name: 'filter'; saddr: Uint8Array; daddr: Uint8Array; family: number; splen: number; dplen: number }
export interface SaReplayExt { name: 'saReplay'; replay: number }
/** An extension the dialect has no layout for (or a number above its SADB_EXT_MAX): the bytes after the 4-byte header. */
export interface RawExt { name: 'raw'; type: number; data: Uint8Array }

export type PfKeyExtension =
  | SaExt
  | LifetimeExt
  | AddressExt
  | KeyExt
  | IdentityExt
  | SensitivityExt
  | ProposalExt
  | SupportedExt
  | SpirangeExt
  | KmprivateExt
  | PolicyExt
  | Sa2Ext
  | NattTypeExt
  | NattPortExt
  | NattFragExt
  | SecCtxExt
  | KmaddressExt
  | FilterExt
  | SaReplayExt
  | RawExt;

/** One PF_KEY message: the sadb_msg header and its extensions in wire order. */
export interface PfKeyMessage {
  /** Default 2. */
  version?: number;
  type: number;
  errno?: number;
  satype?: number;
  /** Must be 0 on input to Linux; Linux SPD output puts the policy refcount here. */
  reserved?: number;
  seq?: number;
  pid?: number;
  extensions: PfKeyExtension[];
}

/** The extension type whose `name` can be N. */
export type ExtOf<N> = PfKeyExtension extends infer E ? (E extends { name: infer M } ? (N extends M ? E : never) : never) : never;

/** The first extension called `name`, typed. */
export function findExt<N extends PfKeyExtension['name']>(msg: PfKeyMessage, name: N): ExtOf<N> | undefined {
  for (const e of msg.extensions) if (e.name === name) return e as ExtOf<N>;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Sizes (header layouts from kernel-interfaces.md §2.6). Multi-byte fields are host order (little-endian hosts),
// except the SPI, sockaddr ports/addresses/flowinfo and the NAT-T ports, which are network order.

const MSG_LEN = 16;
const COMB_LEN = 72;
const AF_INET = 2;

const align8 = (n: number): number => (n + 7) & ~7;

function sockaddrSize(sa: Sockaddr): number {
  return sa.family === 'inet' ? 16 : sa.family === 'inet6' ? 28 : sa.bytes.length;
}

function extBodySize(e: PfKeyExtension, d: Dialect): number {
  switch (e.name) {
    case 'sa':
    case 'spirange':
    case 'sa2':
      return 16;
    case 'lifetimeCurrent':
    case 'lifetimeHard':
    case 'lifetimeSoft':
    case 'lifetimeSwOffload':
    case 'lifetimeHwOffload':
      return 32;
    case 'src':
    case 'dst':
    case 'proxy':
    case 'nattOa':
    case 'nattOai':
    case 'nattOar':
    case 'newAddressSrc':
    case 'newAddressDst':
      return align8(8 + sockaddrSize(e.addr));
    case 'keyAuth':
    case 'keyEncrypt':
      return align8(8 + e.key.length);
    case 'identitySrc':
    case 'identityDst':
      return 16 + align8(e.data.length);
    case 'sensitivity':
      return 16 + e.sens.length + e.integ.length;
    case 'proposal':
      return 8 + COMB_LEN * e.combs.length;
    case 'supportedAuth':
    case 'supportedEncrypt':
      return 8 + 8 * e.algs.length;
    case 'kmprivate':
      return 8 + align8(e.data.length);
    case 'policy': {
      let n = 16;
      for (const r of e.requests) n += requestSize(r, d);
      return n;
    }
    case 'nattType':
    case 'nattSport':
    case 'nattDport':
    case 'nattFrag':
    case 'saReplay':
      return 8;
    case 'secCtx':
      return align8(8 + e.ctx.length);
    case 'kmaddress':
      return align8(8 + sockaddrSize(e.local) + sockaddrSize(e.remote));
    case 'filter':
      return 40;
    case 'raw':
      return 4 + e.data.length;
  }
}

function requestSize(r: IpsecRequest, d: Dialect): number {
  return d.ipsecRequestSize + (r.tunnel ? sockaddrSize(r.tunnel.src) + sockaddrSize(r.tunnel.dst) : 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

function int(v: unknown, max: number, field: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(field, 'an integer', v);
  if (v < 0 || v > max) throw rangeError(field, `an integer 0..${max}`, v);
  return v;
}
function big(v: unknown, field: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v !== 'bigint') throw typeError(field, 'a bigint', v);
  if (v < 0n || v > 0xffffffffffffffffn) throw rangeError(field, 'a 64-bit unsigned bigint', v);
  return v;
}
function bytes(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw typeError(field, 'a Uint8Array', v);
  return v;
}

class Writer {
  constructor(
    readonly buf: Buffer,
    readonly d: Dialect,
  ) {}
  u8(o: number, v: unknown, f: string): void {
    this.buf[o] = int(v, 0xff, f);
  }
  u16(o: number, v: unknown, f: string): void {
    this.buf.writeUInt16LE(int(v, 0xffff, f), o);
  }
  u16be(o: number, v: unknown, f: string): void {
    this.buf.writeUInt16BE(int(v, 0xffff, f), o);
  }
  u24(o: number, v: unknown, f: string): void {
    const x = int(v, 0xffffff, f);
    this.buf[o] = x & 0xff;
    this.buf[o + 1] = (x >>> 8) & 0xff;
    this.buf[o + 2] = x >>> 16;
  }
  u32(o: number, v: unknown, f: string): void {
    this.buf.writeUInt32LE(int(v, 0xffffffff, f), o);
  }
  u32be(o: number, v: unknown, f: string): void {
    this.buf.writeUInt32BE(int(v, 0xffffffff, f), o);
  }
  u64(o: number, v: unknown, f: string): void {
    this.buf.writeBigUInt64LE(big(v, f), o);
  }
  bytes(o: number, v: unknown, f: string): void {
    this.buf.set(bytes(v, f), o);
  }

  sockaddr(o: number, sa: Sockaddr, f: string): void {
    if (sa === null || typeof sa !== 'object') throw typeError(f, 'a sockaddr object', sa);
    if (sa.family === 'raw') return this.bytes(o, sa.bytes, `${f}.bytes`);
    const v6 = sa.family === 'inet6';
    if (!v6 && sa.family !== 'inet') throw typeError(`${f}.family`, "'inet', 'inet6' or 'raw'", (sa as { family: unknown }).family);
    const addr = addressToBytes(sa.address, `${f}.address`);
    if (addr.length !== (v6 ? 16 : 4)) throw typeError(`${f}.address`, `an IPv${v6 ? 6 : 4} address`, sa.address);
    const fam = v6 ? this.d.afInet6 : AF_INET;
    if (this.d.sockaddr === 'bsd') {
      this.buf[o] = v6 ? 28 : 16;
      this.buf[o + 1] = fam;
    } else this.buf.writeUInt16LE(fam, o);
    this.u16be(o + 2, sa.port, `${f}.port`);
    if (v6) {
      this.u32be(o + 4, sa.flowinfo, `${f}.flowinfo`);
      this.buf.set(addr, o + 8);
      this.u32(o + 24, sa.scopeId, `${f}.scopeId`);
    } else this.buf.set(addr, o + 4);
  }

  ext(o: number, e: PfKeyExtension, size: number): void {
    const d = this.d;
    const f = e.name;
    const type = e.name === 'raw' ? int(e.type, 0xffff, 'raw.type') : extensionNumber(d, e.name);
    if (type === undefined) throw rangeError('extensions', `an extension the ${d.name} dialect has`, e.name);
    if (size / 8 > 0xffff) throw rangeError(f, 'an extension shorter than 512 KiB', size);
    const b = this.buf;
    b.writeUInt16LE(size / 8, o);
    b.writeUInt16LE(type, o + 2);
    switch (e.name) {
      case 'sa':
        this.u32be(o + 4, e.spi, 'sa.spi');
        this.u8(o + 8, e.replay, 'sa.replay');
        this.u8(o + 9, e.state, 'sa.state');
        this.u8(o + 10, e.auth, 'sa.auth');
        this.u8(o + 11, e.encrypt, 'sa.encrypt');
        this.u32(o + 12, e.flags, 'sa.flags');
        return;
      case 'lifetimeCurrent':
      case 'lifetimeHard':
      case 'lifetimeSoft':
      case 'lifetimeSwOffload':
      case 'lifetimeHwOffload':
        this.u32(o + 4, e.allocations, `${f}.allocations`);
        this.u64(o + 8, e.bytes, `${f}.bytes`);
        this.u64(o + 16, e.addtime, `${f}.addtime`);
        this.u64(o + 24, e.usetime, `${f}.usetime`);
        return;
      case 'src':
      case 'dst':
      case 'proxy':
      case 'nattOa':
      case 'nattOai':
      case 'nattOar':
      case 'newAddressSrc':
      case 'newAddressDst':
        this.u8(o + 4, e.proto, `${f}.proto`);
        this.u8(o + 5, e.prefixlen, `${f}.prefixlen`);
        this.u16(o + 6, e.reserved, `${f}.reserved`);
        this.sockaddr(o + 8, e.addr, `${f}.addr`);
        return;
      case 'keyAuth':
      case 'keyEncrypt': {
        const k = bytes(e.key, `${f}.key`);
        const bits = e.bits ?? k.length * 8;
        this.u16(o + 4, bits, `${f}.bits`);
        if (Math.ceil(bits / 8) !== k.length) throw rangeError(`${f}.bits`, `${k.length * 8 - 7}..${k.length * 8} for a key of ${k.length} bytes`, bits);
        this.u16(o + 6, e.reserved, `${f}.reserved`);
        b.set(k, o + 8);
        return;
      }
      case 'identitySrc':
      case 'identityDst':
        this.u16(o + 4, e.idtype, `${f}.idtype`);
        this.u16(o + 6, e.reserved, `${f}.reserved`);
        this.u64(o + 8, e.id, `${f}.id`);
        this.bytes(o + 16, e.data, `${f}.data`);
        return;
      case 'sensitivity': {
        this.u32(o + 4, e.dpd, 'sensitivity.dpd');
        this.u8(o + 8, e.sensLevel, 'sensitivity.sensLevel');
        const s = bytes(e.sens, 'sensitivity.sens');
        const i = bytes(e.integ, 'sensitivity.integ');
        if (s.length % 8 || i.length % 8) throw rangeError('sensitivity.sens', 'bitmaps whose lengths are multiples of 8 bytes', s.length);
        this.u8(o + 9, s.length / 8, 'sensitivity.sens (length/8)');
        this.u8(o + 10, e.integLevel, 'sensitivity.integLevel');
        this.u8(o + 11, i.length / 8, 'sensitivity.integ (length/8)');
        this.u32(o + 12, e.reserved, 'sensitivity.reserved');
        b.set(s, o + 16);
        b.set(i, o + 16 + s.length);
        return;
      }
      case 'proposal': {
        this.u8(o + 4, e.replay, 'proposal.replay');
        this.u24(o + 5, e.reserved, 'proposal.reserved');
        let p = o + 8;
        for (const c of e.combs) {
          this.u8(p, c.auth, 'comb.auth');
          this.u8(p + 1, c.encrypt, 'comb.encrypt');
          this.u16(p + 2, c.flags, 'comb.flags');
          this.u16(p + 4, c.authMinbits, 'comb.authMinbits');
          this.u16(p + 6, c.authMaxbits, 'comb.authMaxbits');
          this.u16(p + 8, c.encryptMinbits, 'comb.encryptMinbits');
          this.u16(p + 10, c.encryptMaxbits, 'comb.encryptMaxbits');
          this.u32(p + 12, c.reserved, 'comb.reserved');
          this.u32(p + 16, c.softAllocations, 'comb.softAllocations');
          this.u32(p + 20, c.hardAllocations, 'comb.hardAllocations');
          this.u64(p + 24, c.softBytes, 'comb.softBytes');
          this.u64(p + 32, c.hardBytes, 'comb.hardBytes');
          this.u64(p + 40, c.softAddtime, 'comb.softAddtime');
          this.u64(p + 48, c.hardAddtime, 'comb.hardAddtime');
          this.u64(p + 56, c.softUsetime, 'comb.softUsetime');
          this.u64(p + 64, c.hardUsetime, 'comb.hardUsetime');
          p += COMB_LEN;
        }
        return;
      }
      case 'supportedAuth':
      case 'supportedEncrypt': {
        this.u32(o + 4, e.reserved, `${f}.reserved`);
        let p = o + 8;
        for (const a of e.algs) {
          this.u8(p, a.id, 'alg.id');
          this.u8(p + 1, a.ivlen, 'alg.ivlen');
          this.u16(p + 2, a.minbits, 'alg.minbits');
          this.u16(p + 4, a.maxbits, 'alg.maxbits');
          this.u16(p + 6, a.reserved, 'alg.reserved');
          p += 8;
        }
        return;
      }
      case 'spirange':
        this.u32(o + 4, e.min, 'spirange.min');
        this.u32(o + 8, e.max, 'spirange.max');
        this.u32(o + 12, e.reserved, 'spirange.reserved');
        return;
      case 'kmprivate':
        this.u32(o + 4, e.reserved, 'kmprivate.reserved');
        this.bytes(o + 8, e.data, 'kmprivate.data');
        return;
      case 'policy': {
        this.u16(o + 4, e.policyType, 'policy.policyType');
        this.u8(o + 6, e.dir, 'policy.dir');
        this.u8(o + 7, e.reserved, 'policy.reserved');
        this.u32(o + 8, e.id, 'policy.id');
        this.u32(o + 12, e.priority, 'policy.priority');
        let p = o + 16;
        for (const r of e.requests) {
          const n = requestSize(r, d);
          b.writeUInt16LE(n, p);
          this.u16(p + 2, r.proto, 'request.proto');
          this.u8(p + 4, r.mode, 'request.mode');
          this.u8(p + 5, r.level, 'request.level');
          if (d.ipsecRequestSize === 16) {
            this.u16(p + 6, r.reserved1, 'request.reserved1');
            this.u32(p + 8, r.reqid, 'request.reqid');
            this.u32(p + 12, r.reserved2, 'request.reqid');
          } else this.u16(p + 6, r.reqid, 'request.reqid (16 bits on the BSDs)');
          if (r.tunnel) {
            if (r.tunnel.src?.family !== r.tunnel.dst?.family)
              throw rangeError('request.tunnel.dst', 'the same address family as request.tunnel.src', r.tunnel.dst?.family);
            const q = p + d.ipsecRequestSize;
            this.sockaddr(q, r.tunnel.src, 'request.tunnel.src');
            this.sockaddr(q + sockaddrSize(r.tunnel.src), r.tunnel.dst, 'request.tunnel.dst');
          }
          p += n;
        }
        return;
      }
      case 'sa2':
        this.u8(o + 4, e.mode, 'sa2.mode');
        this.u8(o + 5, e.reserved1, 'sa2.reserved1');
        this.u16(o + 6, e.reserved2, 'sa2.reserved2');
        this.u32(o + 8, e.sequence, 'sa2.sequence');
        this.u32(o + 12, e.reqid, 'sa2.reqid');
        return;
      case 'nattType':
        this.u8(o + 4, e.type, 'nattType.type');
        this.u24(o + 5, e.reserved, 'nattType.reserved');
        return;
      case 'nattSport':
      case 'nattDport':
        this.u16be(o + 4, e.port, `${f}.port`);
        this.u16(o + 6, e.reserved, `${f}.reserved`);
        return;
      case 'nattFrag':
        this.u16(o + 4, e.fraglen, 'nattFrag.fraglen');
        this.u16(o + 6, e.reserved, 'nattFrag.reserved');
        return;
      case 'secCtx': {
        this.u8(o + 4, e.alg, 'secCtx.alg');
        this.u8(o + 5, e.doi, 'secCtx.doi');
        const c = bytes(e.ctx, 'secCtx.ctx');
        this.u16(o + 6, c.length, 'secCtx.ctx (length)');
        b.set(c, o + 8);
        return;
      }
      case 'kmaddress':
        this.u32(o + 4, e.reserved, 'kmaddress.reserved');
        this.sockaddr(o + 8, e.local, 'kmaddress.local');
        this.sockaddr(o + 8 + sockaddrSize(e.local), e.remote, 'kmaddress.remote');
        return;
      case 'filter':
        if (bytes(e.saddr, 'filter.saddr').length !== 16 || bytes(e.daddr, 'filter.daddr').length !== 16)
          throw rangeError('filter.saddr', '16 bytes each (saddr, daddr)', e.saddr.length);
        b.set(e.saddr, o + 4);
        b.set(e.daddr, o + 20);
        this.u16(o + 36, e.family, 'filter.family');
        this.u8(o + 38, e.splen, 'filter.splen');
        this.u8(o + 39, e.dplen, 'filter.dplen');
        return;
      case 'saReplay':
        this.u32(o + 4, e.replay, 'saReplay.replay');
        return;
      case 'raw':
        this.bytes(o + 4, e.data, 'raw.data');
        return;
    }
  }
}

/** Encode a message. Wrong or out-of-range fields give TypeError/RangeError naming the field. */
export function encode(msg: PfKeyMessage, dialect?: DialectName | Dialect): Buffer {
  const d = resolveDialect(dialect);
  if (msg === null || typeof msg !== 'object') throw typeError('message', 'a PF_KEY message object', msg);
  if (!Array.isArray(msg.extensions)) throw typeError('message.extensions', 'an array', msg.extensions);
  const sizes = new Array<number>(msg.extensions.length);
  let total = MSG_LEN;
  for (let i = 0; i < msg.extensions.length; i++) {
    const e = msg.extensions[i];
    if (e === null || typeof e !== 'object') throw typeError(`extensions[${i}]`, 'an extension object', e);
    const s = extBodySize(e, d);
    if (s === undefined) throw typeError(`extensions[${i}].name`, 'a known extension name', (e as { name: unknown }).name);
    if (e.name === 'raw' && s % 8) throw rangeError('raw.data', 'a length of 4 + a multiple of 8 bytes', e.data.length);
    sizes[i] = s;
    total += s;
  }
  if (total / 8 > 0xffff) throw rangeError('message', 'shorter than 512 KiB', total);
  const buf = Buffer.alloc(total);
  const w = new Writer(buf, d);
  w.u8(0, msg.version ?? PF_KEY_V2, 'version');
  w.u8(1, msg.type, 'type');
  w.u8(2, msg.errno, 'errno');
  w.u8(3, msg.satype, 'satype');
  buf.writeUInt16LE(total / 8, 4);
  w.u16(6, msg.reserved, 'reserved');
  w.u32(8, msg.seq, 'seq');
  w.u32(12, msg.pid, 'pid');
  let o = MSG_LEN;
  for (let i = 0; i < msg.extensions.length; i++) {
    w.ext(o, msg.extensions[i], sizes[i]);
    o += sizes[i];
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding: every length is checked before the bytes it covers are read.

const fail = (offset: number, rule: string): never => {
  throw new PfKeyDecodeError(offset, rule);
};

function zeros(b: Buffer, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++) if (b[i] !== 0) fail(i, `${what} must be zero`);
}

function copy(b: Buffer, from: number, to: number): Uint8Array {
  return new Uint8Array(b.subarray(from, to));
}

/** Read one sockaddr at `o`, bounded by `end`; returns it and its size. `rawOk`: an unknown family keeps the rest. */
function readSockaddr(b: Buffer, o: number, end: number, d: Dialect, what: string, rawOk: boolean): [Sockaddr, number] {
  if (end - o < 2) fail(o, `${what}: truncated sockaddr header`);
  let fam: number;
  let saLen = -1;
  if (d.sockaddr === 'bsd') {
    saLen = b[o];
    fam = b[o + 1];
  } else fam = b.readUInt16LE(o);
  if (fam === AF_INET || fam === d.afInet6) {
    const v6 = fam !== AF_INET;
    const size = v6 ? 28 : 16;
    if (saLen !== -1 && saLen !== size) fail(o, `${what}: sa_len ${saLen} must be ${size} for AF_INET${v6 ? '6' : ''}`);
    if (end - o < size) fail(o, `${what}: sockaddr_in${v6 ? '6' : ''} needs ${size} bytes, ${end - o} left`);
    const port = b.readUInt16BE(o + 2);
    if (!v6) {
      zeros(b, o + 8, o + 16, `${what}: sin_zero`);
      return [{ family: 'inet', address: bytesToAddress(b, o + 4, 4), port }, size];
    }
    const sa: Sockaddr = { family: 'inet6', address: bytesToAddress(b, o + 8, 16), port };
    const flow = b.readUInt32BE(o + 4);
    const scope = b.readUInt32LE(o + 24);
    if (flow) sa.flowinfo = flow;
    if (scope) sa.scopeId = scope;
    return [sa, size];
  }
  if (!rawOk) fail(o, `${what}: unknown address family ${fam}`);
  return [{ family: 'raw', bytes: copy(b, o, end) }, end - o];
}

function opt(v: number): number | undefined {
  return v === 0 ? undefined : v;
}

function fixed(len: number, want: number, o: number, name: string): void {
  if (len !== want) fail(o, `${name} extension must be ${want} bytes, is ${len}`);
}

function decodeExt(b: Buffer, o: number, len: number, type: number, name: ExtensionName | undefined, d: Dialect): PfKeyExtension {
  const end = o + len;
  if (name === undefined || name === 'ifHwOffload') return { name: 'raw', type, data: copy(b, o + 4, end) };
  switch (name) {
    case 'sa':
      fixed(len, 16, o, name);
      return { name, spi: b.readUInt32BE(o + 4), replay: b[o + 8], state: b[o + 9], auth: b[o + 10], encrypt: b[o + 11], flags: b.readUInt32LE(o + 12) };
    case 'lifetimeCurrent':
    case 'lifetimeHard':
    case 'lifetimeSoft':
    case 'lifetimeSwOffload':
    case 'lifetimeHwOffload':
      fixed(len, 32, o, name);
      return { name, allocations: b.readUInt32LE(o + 4), bytes: b.readBigUInt64LE(o + 8), addtime: b.readBigUInt64LE(o + 16), usetime: b.readBigUInt64LE(o + 24) };
    case 'src':
    case 'dst':
    case 'proxy':
    case 'nattOa':
    case 'nattOai':
    case 'nattOar':
    case 'newAddressSrc':
    case 'newAddressDst': {
      if (len < 16) fail(o, `${name} extension must hold a sockaddr (≥ 16 bytes), is ${len}`);
      const [addr, n] = readSockaddr(b, o + 8, end, d, name, true);
      if (addr.family !== 'raw') {
        if (len !== align8(8 + n)) fail(o, `${name} extension must be ${align8(8 + n)} bytes for its sockaddr, is ${len}`);
        zeros(b, o + 8 + n, end, `${name} padding`);
        const max = addr.family === 'inet' ? 32 : 128;
        if (b[o + 5] > max) fail(o + 5, `${name} prefixlen ${b[o + 5]} exceeds ${max}`);
      }
      const e: AddressExt = { name, proto: b[o + 4], prefixlen: b[o + 5], addr };
      const r = b.readUInt16LE(o + 6);
      if (r) e.reserved = r;
      return e;
    }
    case 'keyAuth':
    case 'keyEncrypt': {
      if (len < 8) fail(o, `${name} extension must be ≥ 8 bytes`);
      const bits = b.readUInt16LE(o + 4);
      const n = Math.ceil(bits / 8);
      if (len !== align8(8 + n)) fail(o + 4, `${name}: ${bits} bits need a ${align8(8 + n)}-byte extension, it is ${len}`);
      zeros(b, o + 8 + n, end, `${name} padding`);
      const e = { name, bits } as KeyExt;
      const r = b.readUInt16LE(o + 6);
      if (r) e.reserved = r;
      // Key bytes stay readable as e.key but out of util.inspect / JSON / console.log.
      Object.defineProperty(e, 'key', { value: copy(b, o + 8, o + 8 + n), enumerable: false, writable: true, configurable: true });
      return e;
    }
    case 'identitySrc':
    case 'identityDst': {
      if (len < 16) fail(o, `${name} extension must be ≥ 16 bytes`);
      const e: IdentityExt = { name, idtype: b.readUInt16LE(o + 4), id: b.readBigUInt64LE(o + 8), data: copy(b, o + 16, end) };
      const r = b.readUInt16LE(o + 6);
      if (r) e.reserved = r;
      return e;
    }
    case 'sensitivity': {
      if (len < 16) fail(o, 'sensitivity extension must be ≥ 16 bytes');
      const sl = b[o + 9] * 8;
      const il = b[o + 11] * 8;
      if (len !== 16 + sl + il) fail(o, `sensitivity: sens_len and integ_len say ${16 + sl + il} bytes, extension is ${len}`);
      const e: SensitivityExt = {
        name,
        dpd: b.readUInt32LE(o + 4),
        sensLevel: b[o + 8],
        integLevel: b[o + 10],
        sens: copy(b, o + 16, o + 16 + sl),
        integ: copy(b, o + 16 + sl, end),
      };
      const r = b.readUInt32LE(o + 12);
      if (r) e.reserved = r;
      return e;
    }
    case 'proposal': {
      if (len < 8 || (len - 8) % COMB_LEN) fail(o, `proposal extension must be 8 + 72·n bytes, is ${len}`);
      const e: ProposalExt = { name, replay: b[o + 4], combs: [] };
      const r = b[o + 5] | (b[o + 6] << 8) | (b[o + 7] << 16);
      if (r) e.reserved = r;
      for (let p = o + 8; p < end; p += COMB_LEN) {
        const c: Comb = {
          auth: b[p],
          encrypt: b[p + 1],
          flags: b.readUInt16LE(p + 2),
          authMinbits: b.readUInt16LE(p + 4),
          authMaxbits: b.readUInt16LE(p + 6),
          encryptMinbits: b.readUInt16LE(p + 8),
          encryptMaxbits: b.readUInt16LE(p + 10),
          softAllocations: b.readUInt32LE(p + 16),
          hardAllocations: b.readUInt32LE(p + 20),
          softBytes: b.readBigUInt64LE(p + 24),
          hardBytes: b.readBigUInt64LE(p + 32),
          softAddtime: b.readBigUInt64LE(p + 40),
          hardAddtime: b.readBigUInt64LE(p + 48),
          softUsetime: b.readBigUInt64LE(p + 56),
          hardUsetime: b.readBigUInt64LE(p + 64),
        };
        const cr = b.readUInt32LE(p + 12);
        if (cr) c.reserved = cr;
        e.combs.push(c);
      }
      return e;
    }
    case 'supportedAuth':
    case 'supportedEncrypt': {
      if (len < 8) fail(o, `${name} extension must be ≥ 8 bytes`);
      const e: SupportedExt = { name, algs: [] };
      const r = b.readUInt32LE(o + 4);
      if (r) e.reserved = r;
      for (let p = o + 8; p < end; p += 8) {
        const a: Alg = { id: b[p], ivlen: b[p + 1], minbits: b.readUInt16LE(p + 2), maxbits: b.readUInt16LE(p + 4) };
        const ar = b.readUInt16LE(p + 6);
        if (ar) a.reserved = ar;
        e.algs.push(a);
      }
      return e;
    }
    case 'spirange': {
      fixed(len, 16, o, name);
      const e: SpirangeExt = { name, min: b.readUInt32LE(o + 4), max: b.readUInt32LE(o + 8) };
      const r = b.readUInt32LE(o + 12);
      if (r) e.reserved = r;
      return e;
    }
    case 'kmprivate': {
      if (len < 8) fail(o, 'kmprivate extension must be ≥ 8 bytes');
      const e: KmprivateExt = { name, data: copy(b, o + 8, end) };
      const r = b.readUInt32LE(o + 4);
      if (r) e.reserved = r;
      return e;
    }
    case 'policy': {
      if (len < 16) fail(o, `policy extension must be ≥ 16 bytes, is ${len}`);
      const e: PolicyExt = { name, policyType: b.readUInt16LE(o + 4), dir: b[o + 6], id: b.readUInt32LE(o + 8), priority: b.readUInt32LE(o + 12), requests: [] };
      if (b[o + 7]) e.reserved = b[o + 7];
      const hs = d.ipsecRequestSize;
      for (let p = o + 16; p < end; ) {
        if (end - p < hs) fail(p, `ipsecrequest header needs ${hs} bytes, ${end - p} left in the policy`);
        const rl = b.readUInt16LE(p);
        if (rl < hs) fail(p, `ipsecrequest len ${rl} (bytes) is below its ${hs}-byte header`);
        if (rl > end - p) fail(p, `ipsecrequest len ${rl} runs past the policy extension`);
        const r: IpsecRequest = { proto: b.readUInt16LE(p + 2), mode: b[p + 4], level: b[p + 5], reqid: 0 };
        if (hs === 16) {
          if (b.readUInt16LE(p + 6)) r.reserved1 = b.readUInt16LE(p + 6);
          r.reqid = b.readUInt32LE(p + 8);
          if (b.readUInt32LE(p + 12)) r.reserved2 = b.readUInt32LE(p + 12);
        } else r.reqid = b.readUInt16LE(p + 6);
        if (rl > hs) {
          const [src, n1] = readSockaddr(b, p + hs, p + rl, d, 'ipsecrequest tunnel src', false);
          const [dst, n2] = readSockaddr(b, p + hs + n1, p + rl, d, 'ipsecrequest tunnel dst', false);
          if (hs + n1 + n2 !== rl) fail(p, `ipsecrequest len ${rl} does not match its header and two sockaddrs (${hs + n1 + n2})`);
          r.tunnel = { src, dst };
        }
        e.requests.push(r);
        p += rl;
      }
      return e;
    }
    case 'sa2': {
      fixed(len, 16, o, name);
      const e: Sa2Ext = { name, mode: b[o + 4], sequence: b.readUInt32LE(o + 8), reqid: b.readUInt32LE(o + 12) };
      if (b[o + 5]) e.reserved1 = b[o + 5];
      if (b.readUInt16LE(o + 6)) e.reserved2 = b.readUInt16LE(o + 6);
      return e;
    }
    case 'nattType': {
      fixed(len, 8, o, name);
      const e: NattTypeExt = { name, type: b[o + 4] };
      const r = b[o + 5] | (b[o + 6] << 8) | (b[o + 7] << 16);
      if (r) e.reserved = r;
      return e;
    }
    case 'nattSport':
    case 'nattDport':
    case 'nattFrag': {
      fixed(len, 8, o, name);
      const v = name === 'nattFrag' ? b.readUInt16LE(o + 4) : b.readUInt16BE(o + 4);
      const e: NattPortExt | NattFragExt = name === 'nattFrag' ? { name, fraglen: v } : { name, port: v };
      const r = opt(b.readUInt16LE(o + 6));
      if (r) e.reserved = r;
      return e;
    }
    case 'secCtx': {
      if (len < 8) fail(o, 'secCtx extension must be ≥ 8 bytes');
      const n = b.readUInt16LE(o + 6);
      if (len !== align8(8 + n)) fail(o + 6, `secCtx: ctx_len ${n} needs a ${align8(8 + n)}-byte extension, it is ${len}`);
      zeros(b, o + 8 + n, end, 'secCtx padding');
      return { name, alg: b[o + 4], doi: b[o + 5], ctx: copy(b, o + 8, o + 8 + n) };
    }
    case 'kmaddress': {
      if (len < 8) fail(o, 'kmaddress extension must be ≥ 8 bytes');
      const [local, n1] = readSockaddr(b, o + 8, end, d, 'kmaddress local', false);
      const [remote, n2] = readSockaddr(b, o + 8 + n1, end, d, 'kmaddress remote', false);
      if (len !== align8(8 + n1 + n2)) fail(o, `kmaddress extension must be ${align8(8 + n1 + n2)} bytes for its sockaddrs, is ${len}`);
      zeros(b, o + 8 + n1 + n2, end, 'kmaddress padding');
      const e: KmaddressExt = { name, local, remote };
      const r = b.readUInt32LE(o + 4);
      if (r) e.reserved = r;
      return e;
    }
    case 'filter':
      fixed(len, 40, o, name);
      return { name, saddr: copy(b, o + 4, o + 20), daddr: copy(b, o + 20, o + 36), family: b.readUInt16LE(o + 36), splen: b[o + 38], dplen: b[o + 39] };
    case 'saReplay':
      fixed(len, 8, o, name);
      return { name, replay: b.readUInt32LE(o + 4) };
  }
}

/**
 * Decode one PF_KEY message. Strict: the lengths must add up, no extension type 0 or repeated, every field fits.
 * Unknown extension numbers are kept as `{ name: 'raw' }`, so encode(decode(b)) gives b back.
 * Any bad buffer throws PfKeyDecodeError (offset + rule) and nothing else.
 */
export function decode(buf: Uint8Array, dialect?: DialectName | Dialect): PfKeyMessage {
  const d = resolveDialect(dialect);
  if (!(buf instanceof Uint8Array)) throw typeError('buffer', 'a Buffer or Uint8Array', buf);
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < MSG_LEN) fail(0, `a message needs a 16-byte sadb_msg header, got ${b.length} bytes`);
  if (b[0] !== PF_KEY_V2) fail(0, `sadb_msg_version must be 2, is ${b[0]}`);
  const len = b.readUInt16LE(4) * 8;
  if (len !== b.length) fail(4, `sadb_msg_len says ${len} bytes, the buffer holds ${b.length}`);
  const msg: PfKeyMessage = {
    version: b[0],
    type: b[1],
    errno: b[2],
    satype: b[3],
    reserved: b.readUInt16LE(6),
    seq: b.readUInt32LE(8),
    pid: b.readUInt32LE(12),
    extensions: [],
  };
  const seen = new Set<number>();
  for (let o = MSG_LEN; o < len; ) {
    if (len - o < 4) fail(o, 'truncated extension header');
    const elen = b.readUInt16LE(o) * 8;
    const type = b.readUInt16LE(o + 2);
    if (elen === 0) fail(o, 'extension len must be at least 1 (64-bit word)');
    if (elen > len - o) fail(o, `extension of ${elen} bytes runs past the message end (${len - o} bytes left)`);
    if (type === 0) fail(o + 2, 'extension type 0 (SADB_EXT_RESERVED) is not allowed');
    if (seen.has(type)) fail(o + 2, `extension type ${type} appears twice`);
    seen.add(type);
    msg.extensions.push(decodeExt(b, o, elen, type, extensionName(d, type), d));
    o += elen;
  }
  return msg;
}
