// PF_KEY v2 wire codec: every message and extension as typed objects ⇄ bytes, strict and lossless, per dialect.

import { NattError, rangeError, typeError } from '../errors';
import { readingCallerValue } from '../core/options';
import { ByteReader, ByteWriter, checkedArray, checkedBytes, checkedInt, checkedObject, isRecord, type DecodeFailure } from '../core/cursor';
import { bytesToAddress, addressToBytes } from '../ip/address';
import { hideKey } from '../sadb/keys';
import { PF_KEY_V2, extensionName, extensionNumber, resolveDialect, type Dialect, type DialectName } from './dialects';

/** A buffer that is not a valid PF_KEY message: names the byte offset and the rule it breaks. */
export class PfKeyDecodeError extends NattError {
  offset: number;
  rule: string;
  constructor(offset: number, rule: string) {
    if (typeof offset !== 'number') throw typeError('offset', 'a byte offset', offset);
    if (typeof rule !== 'string') throw typeError('rule', 'a string', rule);
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
/** A key extension. Decoded ones are key holders (src/sadb/keys.ts): `key` reads the bytes, no inspection prints them. */
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
  if (typeof name !== 'string') throw typeError('name', "an extension name such as 'sa'", name);
  let exts: unknown;
  try {
    exts = isRecord(msg) ? msg.extensions : undefined;
  } catch {
    exts = undefined; // a getter or a Proxy that throws
  }
  if (!Array.isArray(exts)) throw typeError('msg', 'a PfKeyMessage { extensions: [...] }', msg);
  try {
    for (let i = 0; i < exts.length; i++) {
      const e: unknown = exts[i];
      if (isRecord(e) && (e as { name?: unknown }).name === name) return e as ExtOf<N>;
    }
  } catch {
    throw typeError('msg.extensions', 'an array whose items can be read', undefined);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Layouts (kernel-interfaces.md §2.6). Multi-byte fields are host order (little-endian hosts), except the SPI,
// sockaddr ports/addresses/flowinfo and the NAT-T ports, which are network order. Offsets are absolute: `o` is where
// the extension's 4-byte header (sadb_ext_len in 64-bit words, sadb_ext_type) starts.

const MSG_LEN = 16;
const COMB_LEN = 72;
const AF_INET = 2;

const align8 = (n: number): number => (n + 7) & ~7;

const fail: DecodeFailure = (offset, rule) => new PfKeyDecodeError(offset, rule);

/** An absent (undefined) field encodes as 0, as PF_KEY messages have always been read; anything else is checked. */
const z = (v: unknown): unknown => (v === undefined ? 0 : v);
const zn = (v: unknown): unknown => (v === undefined ? 0n : v);

/** One extension's layout: its encoded size, how it is written after the header, how it is read back. */
interface ExtLayout<E extends PfKeyExtension> {
  /** Bytes of the whole extension, header included. Checks what the size depends on (TypeError/RangeError). */
  size(e: E, d: Dialect): number;
  /** Write the fields after the 4-byte header into the `size(e)` bytes reserved at `o` (zeroed). */
  encode(w: ByteWriter, o: number, e: E, d: Dialect): void;
  /** Read the extension of `len` bytes at `o` (inside the message); a broken rule is a PfKeyDecodeError. */
  decode(r: ByteReader, o: number, len: number, d: Dialect): E;
}

// ---- sockaddrs ----

/** A sockaddr to encode, checked (an object of a known family): its size in bytes. */
function sockaddrSize(sa: Sockaddr, f: string): number {
  checkedObject(sa, f, 'a sockaddr object');
  if (sa.family === 'inet') return 16;
  if (sa.family === 'inet6') return 28;
  if (sa.family === 'raw') return checkedBytes(sa.bytes, `${f}.bytes`).length;
  throw typeError(`${f}.family`, "'inet', 'inet6' or 'raw'", (sa as { family: unknown }).family);
}

function writeSockaddr(w: ByteWriter, o: number, sa: Sockaddr, d: Dialect, f: string): void {
  sockaddrSize(sa, f);
  if (sa.family === 'raw') return w.bytes(o, sa.bytes, `${f}.bytes`);
  const v6 = sa.family === 'inet6';
  const addr = addressToBytes(sa.address, `${f}.address`);
  if (addr.length !== (v6 ? 16 : 4)) throw typeError(`${f}.address`, `an IPv${v6 ? 6 : 4} address`, sa.address);
  const fam = v6 ? d.afInet6 : AF_INET;
  if (d.sockaddr === 'bsd') {
    w.u8(o, v6 ? 28 : 16, `${f} (sa_len)`);
    w.u8(o + 1, fam, 'dialect.afInet6');
  } else w.u16(o, fam, 'dialect.afInet6');
  w.be16(o + 2, z(sa.port), `${f}.port`);
  if (v6) {
    w.be32(o + 4, z(sa.flowinfo), `${f}.flowinfo`);
    w.bytes(o + 8, addr, `${f}.address`);
    w.u32(o + 24, z(sa.scopeId), `${f}.scopeId`);
  } else w.bytes(o + 4, addr, `${f}.address`);
}

/** Read one sockaddr at `o`, bounded by `end`; returns it and its size. `rawOk`: an unknown family keeps the rest. */
function readSockaddr(r: ByteReader, o: number, end: number, d: Dialect, what: string, rawOk: boolean): [Sockaddr, number] {
  if (end - o < 2) r.fail(o, `${what}: truncated sockaddr header`);
  let fam: number;
  let saLen = -1;
  if (d.sockaddr === 'bsd') {
    saLen = r.u8(o);
    fam = r.u8(o + 1);
  } else fam = r.u16(o);
  if (fam === AF_INET || fam === d.afInet6) {
    const v6 = fam !== AF_INET;
    const size = v6 ? 28 : 16;
    if (saLen !== -1 && saLen !== size) r.fail(o, `${what}: sa_len ${saLen} must be ${size} for AF_INET${v6 ? '6' : ''}`);
    if (end - o < size) r.fail(o, `${what}: sockaddr_in${v6 ? '6' : ''} needs ${size} bytes, ${end - o} left`);
    const port = r.be16(o + 2);
    if (!v6) {
      r.zeros(o + 8, 8, `${what}: sin_zero`);
      return [{ family: 'inet', address: bytesToAddress(r.buf, o + 4, 4), port }, size];
    }
    const sa: Sockaddr = { family: 'inet6', address: bytesToAddress(r.buf, o + 8, 16), port };
    const flow = r.be32(o + 4);
    const scope = r.u32(o + 24);
    if (flow) sa.flowinfo = flow;
    if (scope) sa.scopeId = scope;
    return [sa, size];
  }
  if (!rawOk) r.fail(o, `${what}: unknown address family ${fam}`);
  return [{ family: 'raw', bytes: r.bytes(o, end - o) }, end - o];
}

function fixed(r: ByteReader, len: number, want: number, o: number, name: string): void {
  if (len !== want) r.fail(o, `${name} extension must be ${want} bytes, is ${len}`);
}

// ---- fixed fields: one list per structure, read by decode and written by encode ----

/** The cursor method that moves a scalar field (host order unless `be`). */
type Scalar = 'u8' | 'u16' | 'be16' | 'u24' | 'u32' | 'be32' | 'u64';
/**
 * A field at a fixed offset from the structure's start, moved to and from the property of that name. An optional
 * one ('opt': reserved bytes) is read back only when non-zero, so an absent and a zero field decode alike.
 */
type Field = readonly [name: string, type: Scalar, at: number, optional?: 'opt'];

/** A Field made ready to move: its error label (`sa.spi`) built once, not per call. */
interface Named {
  readonly key: string;
  readonly type: Scalar;
  readonly at: number;
  readonly optional: boolean;
  readonly label: string;
}

/** `fields` of the structure whose errors are prefixed `prefix`. */
function named(prefix: string, fields: readonly Field[]): readonly Named[] {
  return fields.map(([key, type, at, optional]) => ({ key, type, at, optional: optional === 'opt', label: `${prefix}.${key}` }));
}

/** Write `fields` of `v` at `o` through the checked cursor (an absent field as 0). */
function writeFields(w: ByteWriter, o: number, v: object, fields: readonly Named[]): void {
  const rec = v as Record<string, unknown>;
  for (const f of fields) w[f.type](o + f.at, f.type === 'u64' ? zn(rec[f.key]) : z(rec[f.key]), f.label);
}

/** Read `fields` at `o` into `into` (which the caller has already given its other properties). */
function readFields<T extends object>(r: ByteReader, o: number, fields: readonly Named[], into: T): T {
  const rec = into as Record<string, unknown>;
  for (const f of fields) {
    const at = o + f.at;
    // A chain of tests, not r[f.type](at): the keyed method call makes decode a quarter slower.
    const x = f.type === 'u8' ? r.u8(at) : f.type === 'u16' ? r.u16(at) : f.type === 'be16' ? r.be16(at) : f.type === 'u24' ? r.u24(at)
      : f.type === 'u32' ? r.u32(at) : f.type === 'be32' ? r.be32(at) : r.u64(at);
    if (!f.optional || x) rec[f.key] = x;
  }
  return into;
}

const SA_FIELDS: readonly Field[] = [
  ['spi', 'be32', 4], ['replay', 'u8', 8], ['state', 'u8', 9], ['auth', 'u8', 10], ['encrypt', 'u8', 11], ['flags', 'u32', 12],
];
const LIFETIME_FIELDS: readonly Field[] = [['allocations', 'u32', 4], ['bytes', 'u64', 8], ['addtime', 'u64', 16], ['usetime', 'u64', 24]];
const ADDRESS_FIELDS: readonly Field[] = [['proto', 'u8', 4], ['prefixlen', 'u8', 5], ['reserved', 'u16', 6, 'opt']];
const IDENTITY_FIELDS: readonly Field[] = [['idtype', 'u16', 4], ['reserved', 'u16', 6, 'opt'], ['id', 'u64', 8]];
/** sens_len (@9) and integ_len (@11) follow from the bitmaps. */
const SENSITIVITY_FIELDS = named('sensitivity', [
  ['dpd', 'u32', 4], ['sensLevel', 'u8', 8], ['integLevel', 'u8', 10], ['reserved', 'u32', 12, 'opt'],
]);
const PROPOSAL_FIELDS = named('proposal', [['replay', 'u8', 4], ['reserved', 'u24', 5, 'opt']]);
/** sadb_comb, 72 bytes, from its own start. */
const COMB_FIELDS = named('comb', [
  ['auth', 'u8', 0], ['encrypt', 'u8', 1], ['flags', 'u16', 2], ['authMinbits', 'u16', 4], ['authMaxbits', 'u16', 6], ['encryptMinbits', 'u16', 8],
  ['encryptMaxbits', 'u16', 10], ['reserved', 'u32', 12, 'opt'], ['softAllocations', 'u32', 16], ['hardAllocations', 'u32', 20], ['softBytes', 'u64', 24],
  ['hardBytes', 'u64', 32], ['softAddtime', 'u64', 40], ['hardAddtime', 'u64', 48], ['softUsetime', 'u64', 56], ['hardUsetime', 'u64', 64],
]);
/** sadb_alg, 8 bytes, from its own start. */
const ALG_FIELDS = named('alg', [['id', 'u8', 0], ['ivlen', 'u8', 1], ['minbits', 'u16', 2], ['maxbits', 'u16', 4], ['reserved', 'u16', 6, 'opt']]);
const RESERVED32_FIELDS: readonly Field[] = [['reserved', 'u32', 4, 'opt']];
const KMPRIVATE_FIELDS = named('kmprivate', RESERVED32_FIELDS);
const KMADDRESS_FIELDS = named('kmaddress', RESERVED32_FIELDS);
const SPIRANGE_FIELDS: readonly Field[] = [['min', 'u32', 4], ['max', 'u32', 8], ['reserved', 'u32', 12, 'opt']];
const POLICY_FIELDS = named('policy', [
  ['policyType', 'u16', 4], ['dir', 'u8', 6], ['reserved', 'u8', 7, 'opt'], ['id', 'u32', 8], ['priority', 'u32', 12],
]);
/** sadb_x_ipsecrequest from its own start (len @0 follows from its tunnel): Linux's 16 bytes, the BSDs' 8 (u16 reqid). */
const REQUEST_FIELDS: Record<Dialect['ipsecRequestSize'], readonly Named[]> = {
  16: named('request', [
    ['proto', 'u16', 2], ['mode', 'u8', 4], ['level', 'u8', 5], ['reserved1', 'u16', 6, 'opt'], ['reqid', 'u32', 8], ['reserved2', 'u32', 12, 'opt'],
  ]),
  8: named('request', [['proto', 'u16', 2], ['mode', 'u8', 4], ['level', 'u8', 5], ['reqid', 'u16', 6]]),
};
const SA2_FIELDS: readonly Field[] = [
  ['mode', 'u8', 4], ['reserved1', 'u8', 5, 'opt'], ['reserved2', 'u16', 6, 'opt'], ['sequence', 'u32', 8], ['reqid', 'u32', 12],
];
const NATT_TYPE_FIELDS: readonly Field[] = [['type', 'u8', 4], ['reserved', 'u24', 5, 'opt']];
/** NAT-T ports are network order, as the kernel keeps them. */
const PORT_FIELDS: readonly Field[] = [['port', 'be16', 4], ['reserved', 'u16', 6, 'opt']];
const FRAG_FIELDS: readonly Field[] = [['fraglen', 'u16', 4], ['reserved', 'u16', 6, 'opt']];
const SEC_CTX_FIELDS = named('secCtx', [['alg', 'u8', 4], ['doi', 'u8', 5]]);
const FILTER_FIELDS = named('filter', [['family', 'u16', 36], ['splen', 'u8', 38], ['dplen', 'u8', 39]]);
const SA_REPLAY_FIELDS: readonly Field[] = [['replay', 'u32', 4]];

// ---- the layouts, one per extension name (shared shapes made by the functions below) ----

/** An extension of `size` bytes holding only fixed fields. */
function fixedLayout<E extends PfKeyExtension>(name: E['name'], size: number, list: readonly Field[]): ExtLayout<E> {
  const fields = named(name, list);
  return {
    size: () => size,
    encode: (w, o, e) => writeFields(w, o, e, fields),
    decode(r, o, len) {
      fixed(r, len, size, o, name);
      return readFields(r, o, fields, { name } as E);
    },
  };
}

function addressLayout(name: AddressExt['name']): ExtLayout<AddressExt> {
  const fields = named(name, ADDRESS_FIELDS);
  const addrField = `${name}.addr`;
  const padding = `${name} padding`;
  return {
    size: (e) => align8(8 + sockaddrSize(e.addr, addrField)),
    encode(w, o, e, d) {
      writeFields(w, o, e, fields);
      writeSockaddr(w, o + 8, e.addr, d, addrField);
    },
    decode(r, o, len, d) {
      if (len < 16) r.fail(o, `${name} extension must hold a sockaddr (≥ 16 bytes), is ${len}`);
      const end = o + len;
      const [addr, n] = readSockaddr(r, o + 8, end, d, name, true);
      if (addr.family !== 'raw') {
        if (len !== align8(8 + n)) r.fail(o, `${name} extension must be ${align8(8 + n)} bytes for its sockaddr, is ${len}`);
        r.zeros(o + 8 + n, end - o - 8 - n, padding);
        const max = addr.family === 'inet' ? 32 : 128;
        if (r.u8(o + 5) > max) r.fail(o + 5, `${name} prefixlen ${r.u8(o + 5)} exceeds ${max}`);
      }
      return readFields(r, o, fields, { name, addr } as AddressExt);
    },
  };
}

function keyLayout(name: KeyExt['name']): ExtLayout<KeyExt> {
  const keyField = `${name}.key`;
  const bitsField = `${name}.bits`;
  const reservedField = `${name}.reserved`;
  const padding = `${name} padding`;
  return {
    size: (e) => align8(8 + checkedBytes(e.key, keyField).length),
    encode(w, o, e) {
      const k = checkedBytes(e.key, keyField);
      const bits = e.bits ?? k.length * 8;
      w.u16(o + 4, bits, bitsField);
      if (Math.ceil(bits / 8) !== k.length) throw rangeError(bitsField, `${k.length * 8 - 7}..${k.length * 8} for a key of ${k.length} bytes`, bits);
      w.u16(o + 6, z(e.reserved), reservedField);
      w.bytes(o + 8, k, keyField);
    },
    decode(r, o, len) {
      if (len < 8) r.fail(o, `${name} extension must be ≥ 8 bytes`);
      const bits = r.u16(o + 4);
      const n = Math.ceil(bits / 8);
      if (len !== align8(8 + n)) r.fail(o + 4, `${name}: ${bits} bits need a ${align8(8 + n)}-byte extension, it is ${len}`);
      r.zeros(o + 8 + n, len - 8 - n, padding);
      const e = { name, bits } as KeyExt;
      const reserved = r.u16(o + 6);
      if (reserved) e.reserved = reserved;
      // A key holder: e.key reads the bytes, nothing prints them (src/sadb/keys.ts).
      e.key = r.bytes(o + 8, n);
      return hideKey(e);
    },
  };
}

function identityLayout(name: IdentityExt['name']): ExtLayout<IdentityExt> {
  const fields = named(name, IDENTITY_FIELDS);
  return {
    size: (e) => 16 + align8(checkedBytes(e.data, `${name}.data`).length),
    encode(w, o, e) {
      writeFields(w, o, e, fields);
      w.bytes(o + 16, e.data, `${name}.data`);
    },
    decode(r, o, len) {
      if (len < 16) r.fail(o, `${name} extension must be ≥ 16 bytes`);
      return readFields(r, o, fields, { name, data: r.bytes(o + 16, len - 16) } as IdentityExt);
    },
  };
}

function supportedLayout(name: SupportedExt['name']): ExtLayout<SupportedExt> {
  const fields = named(name, RESERVED32_FIELDS);
  return {
    size: (e) => 8 + 8 * checkedArray(e.algs, `${name}.algs`).length,
    encode(w, o, e) {
      writeFields(w, o, e, fields);
      let p = o + 8;
      for (const a of checkedArray(e.algs, `${name}.algs`)) {
        writeFields(w, p, checkedObject(a, 'alg'), ALG_FIELDS);
        p += 8;
      }
    },
    decode(r, o, len) {
      if (len < 8) r.fail(o, `${name} extension must be ≥ 8 bytes`);
      const e = readFields(r, o, fields, { name, algs: [] } as SupportedExt);
      for (let p = o + 8; p < o + len; p += 8) e.algs.push(readFields(r, p, ALG_FIELDS, {} as Alg));
      return e;
    },
  };
}

function requestSize(q: IpsecRequest, d: Dialect, f: string): number {
  checkedObject(q, f);
  if (!q.tunnel) return d.ipsecRequestSize;
  const t = checkedObject(q.tunnel, `${f}.tunnel`);
  return d.ipsecRequestSize + sockaddrSize(t.src, `${f}.tunnel.src`) + sockaddrSize(t.dst, `${f}.tunnel.dst`);
}

/**
 * Every extension natt can encode, by name: strongSwan's pfkey_msg_t.ext[] as one table. An extension number the
 * dialect has no layout for (or ifHwOffload, whose layout natt leaves alone) decodes with `raw`.
 */
const EXTENSIONS: { readonly [N in PfKeyExtension['name']]: ExtLayout<ExtOf<N>> } = {
  sa: fixedLayout('sa', 16, SA_FIELDS),
  lifetimeCurrent: fixedLayout('lifetimeCurrent', 32, LIFETIME_FIELDS),
  lifetimeHard: fixedLayout('lifetimeHard', 32, LIFETIME_FIELDS),
  lifetimeSoft: fixedLayout('lifetimeSoft', 32, LIFETIME_FIELDS),
  src: addressLayout('src'),
  dst: addressLayout('dst'),
  proxy: addressLayout('proxy'),
  keyAuth: keyLayout('keyAuth'),
  keyEncrypt: keyLayout('keyEncrypt'),
  identitySrc: identityLayout('identitySrc'),
  identityDst: identityLayout('identityDst'),
  sensitivity: {
    size(e) {
      const s = checkedBytes(e.sens, 'sensitivity.sens');
      const i = checkedBytes(e.integ, 'sensitivity.integ');
      if (s.length % 8 || i.length % 8) throw rangeError('sensitivity.sens', 'bitmaps whose lengths are multiples of 8 bytes', s.length);
      return 16 + s.length + i.length;
    },
    encode(w, o, e) {
      const s = checkedBytes(e.sens, 'sensitivity.sens');
      const i = checkedBytes(e.integ, 'sensitivity.integ');
      writeFields(w, o, e, SENSITIVITY_FIELDS);
      w.u8(o + 9, s.length / 8, 'sensitivity.sens (length/8)');
      w.u8(o + 11, i.length / 8, 'sensitivity.integ (length/8)');
      w.bytes(o + 16, s, 'sensitivity.sens');
      w.bytes(o + 16 + s.length, i, 'sensitivity.integ');
    },
    decode(r, o, len) {
      if (len < 16) r.fail(o, 'sensitivity extension must be ≥ 16 bytes');
      const sl = r.u8(o + 9) * 8;
      const il = r.u8(o + 11) * 8;
      if (len !== 16 + sl + il) r.fail(o, `sensitivity: sens_len and integ_len say ${16 + sl + il} bytes, extension is ${len}`);
      const e = { name: 'sensitivity', sens: r.bytes(o + 16, sl), integ: r.bytes(o + 16 + sl, il) } as SensitivityExt;
      return readFields(r, o, SENSITIVITY_FIELDS, e);
    },
  },
  proposal: {
    size: (e) => 8 + COMB_LEN * checkedArray(e.combs, 'proposal.combs').length,
    encode(w, o, e) {
      writeFields(w, o, e, PROPOSAL_FIELDS);
      let p = o + 8;
      for (const c of checkedArray(e.combs, 'proposal.combs')) {
        writeFields(w, p, checkedObject(c, 'comb'), COMB_FIELDS);
        p += COMB_LEN;
      }
    },
    decode(r, o, len) {
      if (len < 8 || (len - 8) % COMB_LEN) r.fail(o, `proposal extension must be 8 + 72·n bytes, is ${len}`);
      const e = readFields(r, o, PROPOSAL_FIELDS, { name: 'proposal', combs: [] } as unknown as ProposalExt);
      for (let p = o + 8; p < o + len; p += COMB_LEN) e.combs.push(readFields(r, p, COMB_FIELDS, {} as Comb));
      return e;
    },
  },
  supportedAuth: supportedLayout('supportedAuth'),
  supportedEncrypt: supportedLayout('supportedEncrypt'),
  spirange: fixedLayout('spirange', 16, SPIRANGE_FIELDS),
  kmprivate: {
    size: (e) => 8 + align8(checkedBytes(e.data, 'kmprivate.data').length),
    encode(w, o, e) {
      writeFields(w, o, e, KMPRIVATE_FIELDS);
      w.bytes(o + 8, e.data, 'kmprivate.data');
    },
    decode(r, o, len) {
      if (len < 8) r.fail(o, 'kmprivate extension must be ≥ 8 bytes');
      return readFields(r, o, KMPRIVATE_FIELDS, { name: 'kmprivate', data: r.bytes(o + 8, len - 8) } as KmprivateExt);
    },
  },
  policy: {
    size(e, d) {
      let n = 16;
      const requests = checkedArray(e.requests, 'policy.requests');
      for (let i = 0; i < requests.length; i++) n += requestSize(requests[i], d, 'request');
      return n;
    },
    encode(w, o, e, d) {
      writeFields(w, o, e, POLICY_FIELDS);
      let p = o + 16;
      for (const q of checkedArray(e.requests, 'policy.requests')) {
        const n = requestSize(q, d, 'request');
        w.u16(p, n, 'request (length)');
        writeFields(w, p, q, REQUEST_FIELDS[d.ipsecRequestSize]);
        if (q.tunnel) {
          const { src, dst } = q.tunnel;
          if (src.family !== dst.family) throw rangeError('request.tunnel.dst', 'the same address family as request.tunnel.src', dst.family);
          const t = p + d.ipsecRequestSize;
          writeSockaddr(w, t, src, d, 'request.tunnel.src');
          writeSockaddr(w, t + sockaddrSize(src, 'request.tunnel.src'), dst, d, 'request.tunnel.dst');
        }
        p += n;
      }
    },
    decode(r, o, len, d) {
      if (len < 16) r.fail(o, `policy extension must be ≥ 16 bytes, is ${len}`);
      const end = o + len;
      const e = readFields(r, o, POLICY_FIELDS, { name: 'policy', requests: [] } as unknown as PolicyExt);
      const hs = d.ipsecRequestSize;
      for (let p = o + 16; p < end; ) {
        if (end - p < hs) r.fail(p, `ipsecrequest header needs ${hs} bytes, ${end - p} left in the policy`);
        const rl = r.u16(p);
        if (rl < hs) r.fail(p, `ipsecrequest len ${rl} (bytes) is below its ${hs}-byte header`);
        if (rl > end - p) r.fail(p, `ipsecrequest len ${rl} runs past the policy extension`);
        const q = readFields(r, p, REQUEST_FIELDS[hs], {} as IpsecRequest);
        if (rl > hs) {
          const [src, n1] = readSockaddr(r, p + hs, p + rl, d, 'ipsecrequest tunnel src', false);
          const [dst, n2] = readSockaddr(r, p + hs + n1, p + rl, d, 'ipsecrequest tunnel dst', false);
          if (hs + n1 + n2 !== rl) r.fail(p, `ipsecrequest len ${rl} does not match its header and two sockaddrs (${hs + n1 + n2})`);
          q.tunnel = { src, dst };
        }
        e.requests.push(q);
        p += rl;
      }
      return e;
    },
  },
  sa2: fixedLayout('sa2', 16, SA2_FIELDS),
  nattType: fixedLayout('nattType', 8, NATT_TYPE_FIELDS),
  nattSport: fixedLayout('nattSport', 8, PORT_FIELDS),
  nattDport: fixedLayout('nattDport', 8, PORT_FIELDS),
  nattOa: addressLayout('nattOa'),
  nattOai: addressLayout('nattOai'),
  nattOar: addressLayout('nattOar'),
  nattFrag: fixedLayout('nattFrag', 8, FRAG_FIELDS),
  secCtx: {
    size: (e) => align8(8 + checkedBytes(e.ctx, 'secCtx.ctx').length),
    encode(w, o, e) {
      const c = checkedBytes(e.ctx, 'secCtx.ctx');
      writeFields(w, o, e, SEC_CTX_FIELDS);
      w.u16(o + 6, c.length, 'secCtx.ctx (length)');
      w.bytes(o + 8, c, 'secCtx.ctx');
    },
    decode(r, o, len) {
      if (len < 8) r.fail(o, 'secCtx extension must be ≥ 8 bytes');
      const n = r.u16(o + 6);
      if (len !== align8(8 + n)) r.fail(o + 6, `secCtx: ctx_len ${n} needs a ${align8(8 + n)}-byte extension, it is ${len}`);
      r.zeros(o + 8 + n, len - 8 - n, 'secCtx padding');
      return readFields(r, o, SEC_CTX_FIELDS, { name: 'secCtx', ctx: r.bytes(o + 8, n) } as SecCtxExt);
    },
  },
  kmaddress: {
    size: (e) => align8(8 + sockaddrSize(e.local, 'kmaddress.local') + sockaddrSize(e.remote, 'kmaddress.remote')),
    encode(w, o, e, d) {
      writeFields(w, o, e, KMADDRESS_FIELDS);
      writeSockaddr(w, o + 8, e.local, d, 'kmaddress.local');
      writeSockaddr(w, o + 8 + sockaddrSize(e.local, 'kmaddress.local'), e.remote, d, 'kmaddress.remote');
    },
    decode(r, o, len, d) {
      if (len < 8) r.fail(o, 'kmaddress extension must be ≥ 8 bytes');
      const end = o + len;
      const [local, n1] = readSockaddr(r, o + 8, end, d, 'kmaddress local', false);
      const [remote, n2] = readSockaddr(r, o + 8 + n1, end, d, 'kmaddress remote', false);
      if (len !== align8(8 + n1 + n2)) r.fail(o, `kmaddress extension must be ${align8(8 + n1 + n2)} bytes for its sockaddrs, is ${len}`);
      r.zeros(o + 8 + n1 + n2, len - 8 - n1 - n2, 'kmaddress padding');
      return readFields(r, o, KMADDRESS_FIELDS, { name: 'kmaddress', local, remote } as KmaddressExt);
    },
  },
  filter: {
    size: () => 40,
    encode(w, o, e) {
      const s = checkedBytes(e.saddr, 'filter.saddr');
      const t = checkedBytes(e.daddr, 'filter.daddr');
      if (s.length !== 16 || t.length !== 16) throw rangeError('filter.saddr', '16 bytes each (saddr, daddr)', s.length);
      w.bytes(o + 4, s, 'filter.saddr');
      w.bytes(o + 20, t, 'filter.daddr');
      writeFields(w, o, e, FILTER_FIELDS);
    },
    decode(r, o, len) {
      fixed(r, len, 40, o, 'filter');
      return readFields(r, o, FILTER_FIELDS, { name: 'filter', saddr: r.bytes(o + 4, 16), daddr: r.bytes(o + 20, 16) } as FilterExt);
    },
  },
  saReplay: fixedLayout('saReplay', 8, SA_REPLAY_FIELDS),
  newAddressSrc: addressLayout('newAddressSrc'),
  newAddressDst: addressLayout('newAddressDst'),
  lifetimeSwOffload: fixedLayout('lifetimeSwOffload', 32, LIFETIME_FIELDS),
  lifetimeHwOffload: fixedLayout('lifetimeHwOffload', 32, LIFETIME_FIELDS),
  raw: {
    size(e) {
      const n = 4 + checkedBytes(e.data, 'raw.data').length;
      if (n % 8) throw rangeError('raw.data', 'a length of 4 + a multiple of 8 bytes', e.data.length);
      return n;
    },
    encode(w, o, e) {
      w.bytes(o + 4, e.data, 'raw.data');
    },
    decode: (r, o, len) => ({ name: 'raw', type: r.u16(o + 2), data: r.bytes(o + 4, len - 4) }),
  },
};

/** The table as a Map: no inherited name ('toString', 'constructor') is ever taken for an extension. */
const LAYOUTS: ReadonlyMap<unknown, ExtLayout<PfKeyExtension>> = new Map(Object.entries(EXTENSIONS) as [string, ExtLayout<PfKeyExtension>][]);

/** The layout for an extension name, or undefined. */
function layoutOf(name: unknown): ExtLayout<PfKeyExtension> | undefined {
  return LAYOUTS.get(name);
}

// ---------------------------------------------------------------------------------------------------------------
// Messages

/** The extensions of `msg`, checked to be objects with a known name, with their sizes; and the message's size. */
function measure(msg: PfKeyMessage, d: Dialect): { sizes: number[]; total: number } {
  checkedObject(msg, 'message', 'a PF_KEY message object');
  const exts = checkedArray(msg.extensions, 'message.extensions');
  const sizes = new Array<number>(exts.length);
  let total = MSG_LEN;
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i];
    if (!isRecord(e)) throw typeError(`extensions[${i}]`, 'an extension object', e);
    const layout = layoutOf(e.name);
    if (!layout) throw typeError(`extensions[${i}].name`, 'a known extension name', e.name);
    const s = layout.size(e, d);
    if (s % 8) throw rangeError(e.name, 'an extension whose sockaddrs and data fill whole 64-bit words', s);
    sizes[i] = s;
    total += s;
  }
  if (total / 8 > 0xffff) throw rangeError('message', 'shorter than 512 KiB', total);
  return { sizes, total };
}

/** The bytes encode(msg, dialect) writes. Checks the message's shape (TypeError/RangeError naming the field). */
export function encodingLength(msg: PfKeyMessage, dialect?: DialectName | Dialect): number {
  const d = resolveDialect(dialect);
  return readingCallerValue('msg', () => measure(msg, d).total);
}

/**
 * Encode a message, in dns-packet's shape: without `buf`, into a new Buffer of exactly its length; with it, into `buf`
 * from `offset` (default 0), refusing to outgrow it (a RangeError naming "buf"). Returns the bytes written (a view of
 * `buf` when one was given) and sets `encode.bytes` to their number. Every field goes through the checked cursor:
 * a wrong or out-of-range one is a TypeError/RangeError naming it; an absent (undefined) number encodes as 0.
 */
export function encode(msg: PfKeyMessage, dialect?: DialectName | Dialect, buf?: Uint8Array, offset?: number): Buffer {
  const d = resolveDialect(dialect);
  return readingCallerValue('msg', () => encodeWith(msg, d, buf, offset));
}
/** How many bytes the last encode() wrote. */
encode.bytes = 0;

function encodeWith(msg: PfKeyMessage, d: Dialect, buf: Uint8Array | undefined, offset: number | undefined): Buffer {
  const { sizes, total } = measure(msg, d);
  if (buf === undefined && offset !== undefined) throw typeError('buf', 'a Buffer or Uint8Array when an offset is given', buf);
  const w = buf === undefined ? new ByteWriter(total) : new ByteWriter({ into: buf, offset });
  const h = w.reserve(MSG_LEN);
  w.u8(h, msg.version ?? PF_KEY_V2, 'version');
  w.u8(h + 1, z(msg.type), 'type');
  w.u8(h + 2, z(msg.errno), 'errno');
  w.u8(h + 3, z(msg.satype), 'satype');
  w.u16(h + 4, total / 8, 'message (length)');
  w.u16(h + 6, z(msg.reserved), 'reserved');
  w.u32(h + 8, z(msg.seq), 'seq');
  w.u32(h + 12, z(msg.pid), 'pid');
  for (let i = 0; i < sizes.length; i++) {
    const e = msg.extensions[i];
    const layout = layoutOf(e.name);
    if (!layout) throw typeError(`extensions[${i}].name`, 'a known extension name', e.name);
    const type = e.name === 'raw' ? checkedInt(z(e.type), 0, 0xffff, 'raw.type') : extensionNumber(d, e.name);
    if (type === undefined) throw rangeError('extensions', `an extension the ${d.name} dialect has`, e.name);
    if (sizes[i] / 8 > 0xffff) throw rangeError(e.name, 'an extension shorter than 512 KiB', sizes[i]);
    const o = w.reserve(sizes[i]);
    w.u16(o, sizes[i] / 8, 'extensions (sadb_ext_len)');
    w.u16(o + 2, type, 'extensions (sadb_ext_type)');
    layout.encode(w, o, e, d);
  }
  encode.bytes = w.len;
  return w.result();
}

/**
 * Decode one PF_KEY message. Strict: the lengths must add up, no extension type 0 or repeated, every field fits.
 * Unknown extension numbers are kept as `{ name: 'raw' }`, so encode(decode(b)) gives b back. A byte array that
 * breaks a rule throws PfKeyDecodeError (offset + rule) and nothing else; anything else is a TypeError naming "buffer".
 */
export function decode(buf: Uint8Array, dialect?: DialectName | Dialect): PfKeyMessage {
  const d = resolveDialect(dialect);
  const r = new ByteReader(buf, fail);
  const n = r.length;
  if (n < MSG_LEN) r.fail(0, `a message needs a 16-byte sadb_msg header, got ${n} bytes`);
  if (r.u8(0) !== PF_KEY_V2) r.fail(0, `sadb_msg_version must be 2, is ${r.u8(0)}`);
  const len = r.u16(4) * 8;
  if (len !== n) r.fail(4, `sadb_msg_len says ${len} bytes, the buffer holds ${n}`);
  const msg: PfKeyMessage = {
    version: r.u8(0),
    type: r.u8(1),
    errno: r.u8(2),
    satype: r.u8(3),
    reserved: r.u16(6),
    seq: r.u32(8),
    pid: r.u32(12),
    extensions: [],
  };
  const seen = new Set<number>();
  for (let o = MSG_LEN; o < len; ) {
    if (len - o < 4) r.fail(o, 'truncated extension header');
    const elen = r.u16(o) * 8;
    const type = r.u16(o + 2);
    if (elen === 0) r.fail(o, 'extension len must be at least 1 (64-bit word)');
    if (elen > len - o) r.fail(o, `extension of ${elen} bytes runs past the message end (${len - o} bytes left)`);
    if (type === 0) r.fail(o + 2, 'extension type 0 (SADB_EXT_RESERVED) is not allowed');
    if (seen.has(type)) r.fail(o + 2, `extension type ${type} appears twice`);
    seen.add(type);
    msg.extensions.push((layoutOf(extensionName(d, type)) ?? EXTENSIONS.raw).decode(r, o, elen, d));
    o += elen;
  }
  return msg;
}
