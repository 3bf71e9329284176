// The netlink + XFRM codec: nlmsghdr framing, NLMSG_ERROR/DONE, XFRM messages and their attributes, strict and lossless.
//
// decode(buffer) → XfrmMessage[] (a datagram may carry several messages, e.g. a multipart dump);
// encode(message | message[], buf?, offset?) → Buffer and encodingLength(message | message[]), in dns-packet's shape.
// Every decode failure of a byte array is an XfrmDecodeError naming the byte offset and the rule; an unknown message
// type or attribute is kept as raw bytes (nested attributes, flagged NLA_F_NESTED, are decoded recursively, at most
// NLA_MAX_NEST_DEPTH deep). Padding inside fixed structures must be zero and a known attribute may appear once per
// container, so every buffer decode accepts gives encode(decode(b)) = b, byte for byte. encode reads every field
// through the checked cursor (src/core/cursor.ts): a TypeError or RangeError naming it, never a wrapped value or an
// internal error. Layouts are x86-64 (structs.ts).

import { XfrmDecodeError } from './errors';
import { rangeError, typeError } from '../errors';
import { readingCallerValue } from '../core/options';
import { hideKey } from '../sadb/keys';
import { ByteReader, ByteWriter, checkedArray, checkedBytes, checkedInt, checkedObject, isRecord } from '../core/cursor';
import { NLMSG, NLM_F, SIZE, XFRMA, XFRMA_SAD, XFRM_MSG } from './constants';
import {
  readAddress,
  readLifetimeCur,
  readUserAcquire,
  readUserMapping,
  readUserTmpl,
  readUserpolicyId,
  readUserpolicyInfo,
  readUsersaId,
  readUsersaInfo,
  writeAddress,
  writeLifetimeCur,
  writeUserAcquire,
  writeUserMapping,
  writeUserTmpl,
  writeUserpolicyId,
  writeUserpolicyInfo,
  writeUsersaId,
  writeUsersaInfo,
  type XfrmLifetimeCur,
  type XfrmUserAcquire,
  type XfrmUserMapping,
  type XfrmUserTmpl,
  type XfrmUserpolicyId,
  type XfrmUserpolicyInfo,
  type XfrmUsersaId,
  type XfrmUsersaInfo,
} from './structs';

const NLA_F_NESTED = 0x8000;
const NLA_F_NET_BYTEORDER = 0x4000;
const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/**
 * How deep NLA_F_NESTED attributes may nest (the message's own attributes are level 0). The kernel sends XFRM
 * attributes flat and validates nested policies at most 10 deep (MAX_POLICY_RECURSION_DEPTH); the bound keeps a
 * hostile buffer or a cyclic attribute list from overflowing the stack. decode and encode share it.
 */
export const NLA_MAX_NEST_DEPTH = 32;

const fail = (offset: number, rule: string): Error => new XfrmDecodeError(offset, rule);

// ---- attributes ----

/** A decoded algorithm attribute's key sits in a key holder: readable as `key`, never printed (src/sadb/keys.ts). */
interface AlgBase {
  name: string;
  /** Key length in bits, as the kernel counts it (may be less than key.length * 8 only if the kernel says so). */
  keyBits: number;
  key: Uint8Array;
}

export type XfrmAttribute =
  | ({ kind: 'algAuth' } & AlgBase)
  | ({ kind: 'algCrypt' } & AlgBase)
  | ({ kind: 'algComp' } & AlgBase)
  | ({ kind: 'algAead'; icvBits: number } & AlgBase)
  | ({ kind: 'algAuthTrunc'; truncBits: number } & AlgBase)
  | { kind: 'encap'; encapType: number; sport: number; dport: number; oa: string }
  | { kind: 'tmpl'; templates: XfrmUserTmpl[] }
  | { kind: 'sa'; sa: XfrmUsersaInfo }
  | { kind: 'policy'; policy: XfrmUserpolicyInfo }
  | { kind: 'secCtx'; exttype: number; alg: number; doi: number; ctx: Uint8Array }
  | { kind: 'ltimeVal'; cur: XfrmLifetimeCur }
  | { kind: 'replayVal'; oseq: number; seq: number; bitmap: number }
  | {
      kind: 'replayEsnVal';
      oseq: number;
      seq: number;
      oseqHi: number;
      seqHi: number;
      replayWindow: number;
      bmp: number[];
    }
  | {
      kind:
        | 'replayThresh'
        | 'etimerThresh'
        | 'saExtraFlags'
        | 'ifId'
        | 'mtimerThresh'
        | 'natKeepaliveInterval'
        | 'tfcpad'
        | 'setMark'
        | 'setMarkMask'
        | 'sadCnt';
      value: number;
    }
  | { kind: 'proto' | 'saDir'; value: number }
  | { kind: 'srcaddr' | 'coaddr'; address: string }
  | { kind: 'lastused'; value: bigint }
  | { kind: 'policyType'; ptype: number }
  | { kind: 'mark'; value: number; mask: number }
  | { kind: 'offloadDev'; ifindex: number; flags: number }
  | { kind: 'sadHinfo'; count: number; max: number }
  /** Any other attribute, kept as its bytes. `type` includes the NLA_F_* flag bits. */
  | { kind: 'raw'; type: number; data: Uint8Array }
  /** An attribute flagged NLA_F_NESTED that natt does not know: its inner attributes. `type` includes the flag. */
  | { kind: 'nested'; type: number; attrs: XfrmAttribute[] };

export type XfrmAttributeKind = XfrmAttribute['kind'];

/** Attribute number spaces: the XFRMA_* one, and XFRMA_SAD_* used by NEWSADINFO. */
type AttrSpace = 'xfrm' | 'sad' | 'unknown';

const u32Kinds: Record<number, XfrmAttributeKind> = {
  [XFRMA.REPLAY_THRESH]: 'replayThresh',
  [XFRMA.ETIMER_THRESH]: 'etimerThresh',
  [XFRMA.SA_EXTRA_FLAGS]: 'saExtraFlags',
  [XFRMA.IF_ID]: 'ifId',
  [XFRMA.MTIMER_THRESH]: 'mtimerThresh',
  [XFRMA.NAT_KEEPALIVE_INTERVAL]: 'natKeepaliveInterval',
  [XFRMA.TFCPAD]: 'tfcpad',
  [XFRMA.SET_MARK]: 'setMark',
  [XFRMA.SET_MARK_MASK]: 'setMarkMask',
};

const kindNumbers: Record<string, number> = {
  algAuth: XFRMA.ALG_AUTH,
  algCrypt: XFRMA.ALG_CRYPT,
  algComp: XFRMA.ALG_COMP,
  algAead: XFRMA.ALG_AEAD,
  algAuthTrunc: XFRMA.ALG_AUTH_TRUNC,
  encap: XFRMA.ENCAP,
  tmpl: XFRMA.TMPL,
  sa: XFRMA.SA,
  policy: XFRMA.POLICY,
  secCtx: XFRMA.SEC_CTX,
  ltimeVal: XFRMA.LTIME_VAL,
  replayVal: XFRMA.REPLAY_VAL,
  replayEsnVal: XFRMA.REPLAY_ESN_VAL,
  proto: XFRMA.PROTO,
  saDir: XFRMA.SA_DIR,
  srcaddr: XFRMA.SRCADDR,
  coaddr: XFRMA.COADDR,
  lastused: XFRMA.LASTUSED,
  policyType: XFRMA.POLICY_TYPE,
  mark: XFRMA.MARK,
  offloadDev: XFRMA.OFFLOAD_DEV,
  sadCnt: XFRMA_SAD.CNT,
  sadHinfo: XFRMA_SAD.HINFO,
};
for (const [t, k] of Object.entries(u32Kinds)) kindNumbers[k] = Number(t);
/** Attribute kind → number; a Map, so that no inherited name ('constructor', 'toString') is taken for a kind. */
const kindToType = new Map(Object.entries(kindNumbers));

/** A decoded algorithm attribute is a key holder: `a.key` reads the bytes, nothing prints them (src/sadb/keys.ts). */
function hideAlgKey<T extends { key: Uint8Array }>(a: T): T {
  return hideKey(a);
}

/**
 * Decode the attributes in [start, end) of `r`. `family` is the address family hint for xfrm_address_t; `depth` is
 * how many NLA_F_NESTED containers hold them (0 for a message's own).
 */
function decodeAttrs(r: ByteReader, start: number, end: number, family: number, space: AttrSpace, depth = 0): XfrmAttribute[] {
  const out: XfrmAttribute[] = [];
  const seen = new Set<number>();
  let o = start;
  while (o < end) {
    r.need(o, SIZE.nlattr, end, 'attribute header');
    const len = r.u16(o);
    const rawType = r.u16(o + 2);
    if (len < SIZE.nlattr) r.fail(o, `nla_len ${len} is shorter than the 4-byte attribute header`);
    if (o + len > end) r.fail(o, `nla_len ${len} runs past the end of its container (${end - o} bytes left)`);
    const padded = (len + 3) & ~3;
    if (o + padded > end) r.fail(o + len, 'attribute padding runs past the end of its container');
    for (let i = o + len; i < o + padded; i++) {
      if (r.buf[i] !== 0) r.fail(i, 'attribute alignment padding is not zero');
    }
    if (rawType & NLA_F_NESTED && depth >= NLA_MAX_NEST_DEPTH) {
      r.fail(o, `NLA_F_NESTED attribute ${rawType} nests deeper than ${NLA_MAX_NEST_DEPTH} levels`);
    }
    const a = decodeAttr(r, o + 4, len - 4, rawType, family, space, depth);
    if (a.kind !== 'raw' && a.kind !== 'nested') {
      // The kernel keeps one of each (nla_parse: the last wins); two would be lost in the model, so refuse them.
      if (seen.has(rawType)) r.fail(o, `attribute ${rawType} (${a.kind}) appears twice in one container`);
      seen.add(rawType);
    }
    out.push(a);
    o += padded;
  }
  return out;
}

function exact(o: number, len: number, want: number, what: string): void {
  if (len !== want) throw new XfrmDecodeError(o, `${what} must be ${want} bytes, is ${len}`);
}

function decodeAttr(r: ByteReader, o: number, len: number, rawType: number, family: number, space: AttrSpace, depth: number): XfrmAttribute {
  if (rawType & NLA_F_NESTED) {
    // The inner attributes of a container natt does not know have no known meaning: kept raw (or nested).
    return { kind: 'nested', type: rawType, attrs: decodeAttrs(r, o, o + len, family, 'unknown', depth + 1) };
  }
  if (space === 'unknown') return { kind: 'raw', type: rawType, data: r.bytes(o, len) };
  if (rawType & NLA_F_NET_BYTEORDER) return { kind: 'raw', type: rawType, data: r.bytes(o, len) };
  const type = rawType & NLA_TYPE_MASK;
  if (space === 'sad') {
    if (type === XFRMA_SAD.CNT) {
      exact(o, len, 4, 'XFRMA_SAD_CNT');
      return { kind: 'sadCnt', value: r.u32(o) };
    }
    if (type === XFRMA_SAD.HINFO) {
      exact(o, len, 8, 'XFRMA_SAD_HINFO');
      return { kind: 'sadHinfo', count: r.u32(o), max: r.u32(o + 4) };
    }
    return { kind: 'raw', type: rawType, data: r.bytes(o, len) };
  }
  const u32kind = u32Kinds[type];
  if (u32kind) {
    exact(o, len, 4, u32kind);
    return { kind: u32kind, value: r.u32(o) } as XfrmAttribute;
  }
  switch (type) {
    case XFRMA.ALG_AUTH:
    case XFRMA.ALG_CRYPT:
    case XFRMA.ALG_COMP: {
      const kind: 'algAuth' | 'algCrypt' | 'algComp' =
        type === XFRMA.ALG_AUTH ? 'algAuth' : type === XFRMA.ALG_CRYPT ? 'algCrypt' : 'algComp';
      r.need(o, SIZE.algo, o + len, 'struct xfrm_algo');
      const name = r.cstring(o, 64, 'alg_name');
      const keyBits = r.u32(o + 64);
      const keyLen = (keyBits + 7) >>> 3;
      exact(o, len, SIZE.algo + keyLen, `xfrm_algo with alg_key_len ${keyBits} bits`);
      return hideAlgKey({ kind, name, keyBits, key: r.bytes(o + SIZE.algo, keyLen) });
    }
    case XFRMA.ALG_AEAD:
    case XFRMA.ALG_AUTH_TRUNC: {
      const what = type === XFRMA.ALG_AEAD ? 'struct xfrm_algo_aead' : 'struct xfrm_algo_auth';
      r.need(o, SIZE.algoAead, o + len, what);
      const name = r.cstring(o, 64, 'alg_name');
      const keyBits = r.u32(o + 64);
      const third = r.u32(o + 68);
      const keyLen = (keyBits + 7) >>> 3;
      exact(o, len, SIZE.algoAead + keyLen, `${what} with alg_key_len ${keyBits} bits`);
      const key = r.bytes(o + SIZE.algoAead, keyLen);
      return type === XFRMA.ALG_AEAD
        ? hideAlgKey({ kind: 'algAead' as const, name, keyBits, icvBits: third, key })
        : hideAlgKey({ kind: 'algAuthTrunc' as const, name, keyBits, truncBits: third, key });
    }
    case XFRMA.ENCAP:
      exact(o, len, SIZE.encapTmpl, 'XFRMA_ENCAP (struct xfrm_encap_tmpl)');
      r.zeros(o + 6, 2, 'xfrm_encap_tmpl padding (bytes 6-7)');
      return { kind: 'encap', encapType: r.u16(o), sport: r.be16(o + 2), dport: r.be16(o + 4), oa: readAddress(r, o + 8, family) };
    case XFRMA.TMPL: {
      if (len % SIZE.userTmpl !== 0) r.fail(o, `XFRMA_TMPL length ${len} is not a multiple of 64 (struct xfrm_user_tmpl)`);
      const templates: XfrmUserTmpl[] = [];
      for (let i = 0; i < len; i += SIZE.userTmpl) templates.push(readUserTmpl(r, o + i));
      return { kind: 'tmpl', templates };
    }
    case XFRMA.SA:
      exact(o, len, SIZE.usersaInfo, 'XFRMA_SA (struct xfrm_usersa_info)');
      return { kind: 'sa', sa: readUsersaInfo(r, o) };
    case XFRMA.POLICY:
      exact(o, len, SIZE.userpolicyInfo, 'XFRMA_POLICY (struct xfrm_userpolicy_info)');
      return { kind: 'policy', policy: readUserpolicyInfo(r, o) };
    case XFRMA.SEC_CTX: {
      r.need(o, SIZE.secCtx, o + len, 'struct xfrm_user_sec_ctx');
      const ctxLen = r.u16(o + 6);
      const total = r.u16(o);
      exact(o, len, SIZE.secCtx + ctxLen, `struct xfrm_user_sec_ctx with ctx_len ${ctxLen}`);
      if (total !== len) r.fail(o, `xfrm_user_sec_ctx.len ${total} differs from the attribute's ${len}`);
      return { kind: 'secCtx', exttype: r.u16(o + 2), alg: r.u8(o + 4), doi: r.u8(o + 5), ctx: r.bytes(o + 8, ctxLen) };
    }
    case XFRMA.LTIME_VAL:
      exact(o, len, SIZE.lifetimeCur, 'XFRMA_LTIME_VAL (struct xfrm_lifetime_cur)');
      return { kind: 'ltimeVal', cur: readLifetimeCur(r, o) };
    case XFRMA.REPLAY_VAL:
      exact(o, len, SIZE.replayState, 'XFRMA_REPLAY_VAL (struct xfrm_replay_state)');
      return { kind: 'replayVal', oseq: r.u32(o), seq: r.u32(o + 4), bitmap: r.u32(o + 8) };
    case XFRMA.REPLAY_ESN_VAL: {
      r.need(o, SIZE.replayStateEsn, o + len, 'struct xfrm_replay_state_esn');
      const bmpLen = r.u32(o);
      if (bmpLen > 0x10000) r.fail(o, `bmp_len ${bmpLen} is larger than any replay window`);
      exact(o, len, SIZE.replayStateEsn + 4 * bmpLen, `struct xfrm_replay_state_esn with bmp_len ${bmpLen}`);
      const bmp: number[] = [];
      for (let i = 0; i < bmpLen; i++) bmp.push(r.u32(o + 24 + 4 * i));
      return {
        kind: 'replayEsnVal',
        oseq: r.u32(o + 4),
        seq: r.u32(o + 8),
        oseqHi: r.u32(o + 12),
        seqHi: r.u32(o + 16),
        replayWindow: r.u32(o + 20),
        bmp,
      };
    }
    case XFRMA.PROTO:
      exact(o, len, 1, 'XFRMA_PROTO');
      return { kind: 'proto', value: r.u8(o) };
    case XFRMA.SA_DIR:
      exact(o, len, 1, 'XFRMA_SA_DIR');
      return { kind: 'saDir', value: r.u8(o) };
    case XFRMA.SRCADDR:
    case XFRMA.COADDR:
      exact(o, len, 16, 'xfrm_address_t');
      return { kind: type === XFRMA.SRCADDR ? 'srcaddr' : 'coaddr', address: readAddress(r, o, family) };
    case XFRMA.LASTUSED:
      exact(o, len, 8, 'XFRMA_LASTUSED');
      return { kind: 'lastused', value: r.u64(o) };
    case XFRMA.POLICY_TYPE:
      exact(o, len, SIZE.userpolicyType, 'XFRMA_POLICY_TYPE (struct xfrm_userpolicy_type)');
      r.zeros(o + 1, 5, 'xfrm_userpolicy_type padding and reserved1/reserved2 (bytes 1-5)');
      return { kind: 'policyType', ptype: r.u8(o) };
    case XFRMA.MARK:
      exact(o, len, SIZE.mark, 'XFRMA_MARK (struct xfrm_mark)');
      return { kind: 'mark', value: r.u32(o), mask: r.u32(o + 4) };
    case XFRMA.OFFLOAD_DEV:
      exact(o, len, SIZE.userOffload, 'XFRMA_OFFLOAD_DEV (struct xfrm_user_offload)');
      r.zeros(o + 5, 3, 'xfrm_user_offload padding (bytes 5-7)');
      return { kind: 'offloadDev', ifindex: r.i32(o), flags: r.u8(o + 4) };
    default:
      return { kind: 'raw', type: rawType, data: r.bytes(o, len) };
  }
}

/** alg_key_len (bits) must name exactly the key's bytes, as decode requires; the key itself is never printed. */
function checkedKey(a: AlgBase & { kind: string }): Uint8Array {
  const key = checkedBytes(a.key, `${a.kind}.key`);
  const n = key.length;
  const ok = Number.isInteger(a.keyBits) && a.keyBits >= 0 && (a.keyBits + 7) >>> 3 === n && a.keyBits <= 0xffffffff;
  if (!ok) throw rangeError(`${a.kind}.keyBits`, n ? `${n * 8 - 7}..${n * 8} for a ${n}-byte key` : '0 for an empty key', a.keyBits);
  return key;
}

/** Encode a container's attributes; `depth` counts the NLA_F_NESTED containers around them, as decode does. */
function encodeAttrs(w: ByteWriter, attrs: readonly XfrmAttribute[], field: string, depth: number): void {
  checkedArray(attrs, field);
  const seen = new Set<unknown>();
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i];
    if (!isRecord(a)) throw typeError(`${field}[${i}]`, 'an attribute object', a);
    // decode refuses a known attribute twice in one container, so encode does not write one.
    if (a.kind !== 'raw' && a.kind !== 'nested') {
      if (seen.has(a.kind)) {
        throw new TypeError(`option "${field}" holds two "${String(a.kind)}" attributes: a known attribute appears at most once per container`);
      }
      seen.add(a.kind);
    }
    encodeAttr(w, a, field, i, depth);
  }
}

/** Encode `a`, the `i`th of the container's attributes called `field` (named in errors only: built when thrown). */
function encodeAttr(w: ByteWriter, a: XfrmAttribute, field: string, i: number, depth: number): void {
  w.align(4);
  const at = w.reserve(4);
  const type = a.kind === 'raw' || a.kind === 'nested' ? a.type : kindToType.get(a.kind);
  if (type === undefined) throw typeError(`${field}[${i}].kind`, 'a known attribute kind', (a as { kind: unknown }).kind);
  if (!(Number.isInteger(type) && type >= 0 && type <= 0xffff)) checkedInt(type, 0, 0xffff, `${field}[${i}].type`);
  switch (a.kind) {
    case 'algAuth':
    case 'algCrypt':
    case 'algComp': {
      const key = checkedKey(a);
      const o = w.reserve(SIZE.algo + key.length);
      w.cstring(o, a.name, 64, `${a.kind}.name`);
      w.u32(o + 64, a.keyBits, `${a.kind}.keyBits`);
      w.bytes(o + SIZE.algo, key, `${a.kind}.key`);
      break;
    }
    case 'algAead':
    case 'algAuthTrunc': {
      const key = checkedKey(a);
      const o = w.reserve(SIZE.algoAead + key.length);
      w.cstring(o, a.name, 64, `${a.kind}.name`);
      w.u32(o + 64, a.keyBits, `${a.kind}.keyBits`);
      w.u32(o + 68, a.kind === 'algAead' ? a.icvBits : a.truncBits, a.kind === 'algAead' ? 'algAead.icvBits' : 'algAuthTrunc.truncBits');
      w.bytes(o + SIZE.algoAead, key, `${a.kind}.key`);
      break;
    }
    case 'encap': {
      const o = w.reserve(SIZE.encapTmpl);
      w.u16(o, a.encapType, 'encap.encapType');
      w.be16(o + 2, a.sport, 'encap.sport');
      w.be16(o + 4, a.dport, 'encap.dport');
      writeAddress(w, o + 8, a.oa, 'encap.oa');
      break;
    }
    case 'tmpl': {
      const templates = checkedArray(a.templates, 'tmpl.templates');
      for (let i = 0; i < templates.length; i++) writeUserTmpl(w, w.reserve(SIZE.userTmpl), templates[i], `tmpl.templates[${i}]`);
      break;
    }
    case 'sa':
      writeUsersaInfo(w, w.reserve(SIZE.usersaInfo), a.sa);
      break;
    case 'policy':
      writeUserpolicyInfo(w, w.reserve(SIZE.userpolicyInfo), a.policy);
      break;
    case 'secCtx': {
      const ctx = checkedBytes(a.ctx, 'secCtx.ctx');
      const o = w.reserve(SIZE.secCtx + ctx.length);
      w.u16(o, SIZE.secCtx + ctx.length, 'secCtx.ctx.length');
      w.u16(o + 2, a.exttype, 'secCtx.exttype');
      w.u8(o + 4, a.alg, 'secCtx.alg');
      w.u8(o + 5, a.doi, 'secCtx.doi');
      w.u16(o + 6, ctx.length, 'secCtx.ctx.length');
      w.bytes(o + 8, ctx, 'secCtx.ctx');
      break;
    }
    case 'ltimeVal':
      writeLifetimeCur(w, w.reserve(SIZE.lifetimeCur), a.cur, 'ltimeVal.cur');
      break;
    case 'replayVal': {
      const o = w.reserve(SIZE.replayState);
      w.u32(o, a.oseq, 'replayVal.oseq');
      w.u32(o + 4, a.seq, 'replayVal.seq');
      w.u32(o + 8, a.bitmap, 'replayVal.bitmap');
      break;
    }
    case 'replayEsnVal': {
      const bmp = checkedArray(a.bmp, 'replayEsnVal.bmp');
      const o = w.reserve(SIZE.replayStateEsn + 4 * bmp.length);
      w.u32(o, bmp.length, 'replayEsnVal.bmp.length');
      w.u32(o + 4, a.oseq, 'replayEsnVal.oseq');
      w.u32(o + 8, a.seq, 'replayEsnVal.seq');
      w.u32(o + 12, a.oseqHi, 'replayEsnVal.oseqHi');
      w.u32(o + 16, a.seqHi, 'replayEsnVal.seqHi');
      w.u32(o + 20, a.replayWindow, 'replayEsnVal.replayWindow');
      for (let i = 0; i < bmp.length; i++) w.u32(o + 24 + 4 * i, bmp[i], `replayEsnVal.bmp[${i}]`);
      break;
    }
    case 'proto':
    case 'saDir':
      w.u8(w.reserve(1), a.value, `${a.kind}.value`);
      break;
    case 'srcaddr':
    case 'coaddr':
      writeAddress(w, w.reserve(16), a.address, `${a.kind}.address`);
      break;
    case 'lastused':
      w.u64(w.reserve(8), a.value, 'lastused.value');
      break;
    case 'policyType':
      w.u8(w.reserve(SIZE.userpolicyType), a.ptype, 'policyType.ptype');
      break;
    case 'mark': {
      const o = w.reserve(8);
      w.u32(o, a.value, 'mark.value');
      w.u32(o + 4, a.mask, 'mark.mask');
      break;
    }
    case 'offloadDev': {
      const o = w.reserve(SIZE.userOffload);
      w.i32(o, a.ifindex, 'offloadDev.ifindex');
      w.u8(o + 4, a.flags, 'offloadDev.flags');
      break;
    }
    case 'sadHinfo': {
      const o = w.reserve(8);
      w.u32(o, a.count, 'sadHinfo.count');
      w.u32(o + 4, a.max, 'sadHinfo.max');
      break;
    }
    case 'raw': {
      const data = checkedBytes(a.data, 'raw.data');
      w.bytes(w.reserve(data.length), data, 'raw.data');
      break;
    }
    case 'nested':
      if (depth >= NLA_MAX_NEST_DEPTH) throw rangeError('nested.attrs', `nested at most ${NLA_MAX_NEST_DEPTH} levels deep (NLA_MAX_NEST_DEPTH)`, a.attrs);
      encodeAttrs(w, a.attrs, 'nested.attrs', depth + 1);
      break;
    default:
      w.u32(w.reserve(4), a.value, `${a.kind}.value`);
  }
  const len = w.len - (at - w.start);
  if (len > 0xffff) throw rangeError(`${field}[${i}]`, `an attribute of at most 65535 bytes (nla_len), not ${len}`, a);
  w.u16(at, len, 'nla_len');
  w.u16(at + 2, type, 'nla_type');
  w.align(4);
}

// ---- messages ----

/** Header fields every message has. On encode they default to 0. */
export interface NlHeaderFields {
  flags?: number;
  seq?: number;
  pid?: number;
}

export type XfrmMessage = NlHeaderFields &
  (
    | {
        type: 'error';
        /** 0 for an ACK, else a negative errno. */
        error: number;
        /** The header of the request this answers. */
        request: { len: number; type: number; flags: number; seq: number; pid: number };
        /** What follows: the request's payload, or extended-ACK attributes (kept raw). */
        data: Uint8Array;
      }
    | { type: 'done' | 'noop' | 'overrun'; data: Uint8Array }
    | { type: 'newsa' | 'updsa'; sa: XfrmUsersaInfo; attrs: XfrmAttribute[] }
    | { type: 'delsa' | 'getsa'; id: XfrmUsersaId; attrs: XfrmAttribute[] }
    /** A dump request (flags include NLM_F_DUMP): attributes only (XFRMA_PROTO, XFRMA_ADDRESS_FILTER). */
    | { type: 'getsaDump' | 'getpolicyDump'; attrs: XfrmAttribute[] }
    | { type: 'allocspi'; sa: XfrmUsersaInfo; min: number; max: number; attrs: XfrmAttribute[] }
    | { type: 'flushsa'; proto: number; attrs: XfrmAttribute[] }
    | { type: 'newpolicy' | 'updpolicy'; policy: XfrmUserpolicyInfo; attrs: XfrmAttribute[] }
    | { type: 'delpolicy' | 'getpolicy'; id: XfrmUserpolicyId; attrs: XfrmAttribute[] }
    | { type: 'flushpolicy'; attrs: XfrmAttribute[] }
    | { type: 'getsadinfo'; sadFlags: number }
    | { type: 'newsadinfo'; sadFlags: number; attrs: XfrmAttribute[] }
    | { type: 'acquire'; acquire: XfrmUserAcquire; attrs: XfrmAttribute[] }
    | { type: 'expire'; sa: XfrmUsersaInfo; hard: boolean; attrs: XfrmAttribute[] }
    | { type: 'polexpire'; policy: XfrmUserpolicyInfo; hard: boolean; attrs: XfrmAttribute[] }
    | { type: 'mapping'; mapping: XfrmUserMapping; attrs: XfrmAttribute[] }
    /** Any other nlmsg_type, kept as its payload bytes. */
    | { type: number; data: Uint8Array }
  );

export type XfrmMessageType = Exclude<XfrmMessage['type'], number>;

const typeNumbers: Record<XfrmMessageType, number> = {
  error: NLMSG.ERROR,
  done: NLMSG.DONE,
  noop: NLMSG.NOOP,
  overrun: NLMSG.OVERRUN,
  newsa: XFRM_MSG.NEWSA,
  updsa: XFRM_MSG.UPDSA,
  delsa: XFRM_MSG.DELSA,
  getsa: XFRM_MSG.GETSA,
  getsaDump: XFRM_MSG.GETSA,
  getpolicyDump: XFRM_MSG.GETPOLICY,
  allocspi: XFRM_MSG.ALLOCSPI,
  flushsa: XFRM_MSG.FLUSHSA,
  newpolicy: XFRM_MSG.NEWPOLICY,
  updpolicy: XFRM_MSG.UPDPOLICY,
  delpolicy: XFRM_MSG.DELPOLICY,
  getpolicy: XFRM_MSG.GETPOLICY,
  flushpolicy: XFRM_MSG.FLUSHPOLICY,
  getsadinfo: XFRM_MSG.GETSADINFO,
  newsadinfo: XFRM_MSG.NEWSADINFO,
  acquire: XFRM_MSG.ACQUIRE,
  expire: XFRM_MSG.EXPIRE,
  polexpire: XFRM_MSG.POLEXPIRE,
  mapping: XFRM_MSG.MAPPING,
};

/** The nlmsg_type number of a message (NaN for a type name natt does not know). */
export function messageTypeNumber(m: XfrmMessage): number {
  return typeof m.type === 'number' ? m.type : Object.hasOwn(typeNumbers, m.type) ? typeNumbers[m.type] : NaN;
}

/** Fixed part (bytes) and the family hint for attributes, per message type; a fixed part of 1 is padded to 4. */
function fixedSize(type: number, dump: boolean): number | undefined {
  switch (type) {
    case XFRM_MSG.NEWSA:
    case XFRM_MSG.UPDSA:
      return SIZE.usersaInfo;
    case XFRM_MSG.DELSA:
      return SIZE.usersaId;
    case XFRM_MSG.GETSA:
      return dump ? 0 : SIZE.usersaId;
    case XFRM_MSG.ALLOCSPI:
      return SIZE.userspiInfo;
    case XFRM_MSG.FLUSHSA:
      return 4;
    case XFRM_MSG.NEWPOLICY:
    case XFRM_MSG.UPDPOLICY:
      return SIZE.userpolicyInfo;
    case XFRM_MSG.DELPOLICY:
      return SIZE.userpolicyId;
    case XFRM_MSG.GETPOLICY:
      return dump ? 0 : SIZE.userpolicyId;
    case XFRM_MSG.FLUSHPOLICY:
      return 0;
    case XFRM_MSG.GETSADINFO:
    case XFRM_MSG.NEWSADINFO:
      return 4;
    case XFRM_MSG.ACQUIRE:
      return SIZE.userAcquire;
    case XFRM_MSG.EXPIRE:
      return SIZE.userExpire;
    case XFRM_MSG.POLEXPIRE:
      return SIZE.userPolexpire;
    case XFRM_MSG.MAPPING:
      return SIZE.userMapping;
    default:
      return undefined;
  }
}

function isDump(type: number, flags: number): boolean {
  return (type === XFRM_MSG.GETSA || type === XFRM_MSG.GETPOLICY) && (flags & NLM_F.DUMP) === NLM_F.DUMP;
}

/** The `hard` byte of xfrm_user_expire / xfrm_user_polexpire and the padding after it, up to `end`. */
function checkHardByte(r: ByteReader, o: number, end: number, what: string): boolean {
  const v = r.u8(o);
  if (v > 1) r.fail(o, `"hard" must be 0 or 1, is ${v}`);
  r.zeros(o + 1, end - o - 1, `${what} padding after "hard"`);
  return v === 1;
}

/**
 * Decode every netlink message in `buffer`. A byte array that breaks a rule throws XfrmDecodeError (offset + rule)
 * and nothing else; anything that is not a Uint8Array is a TypeError naming "buffer".
 */
export function decode(buffer: Uint8Array): XfrmMessage[] {
  const r = new ByteReader(buffer, fail);
  const out: XfrmMessage[] = [];
  let o = 0;
  const end = buffer.length;
  if (end === 0) r.fail(0, 'empty buffer: no nlmsghdr');
  while (o < end) {
    r.need(o, SIZE.nlmsghdr, end, 'nlmsghdr');
    const len = r.u32(o);
    if (len < SIZE.nlmsghdr) r.fail(o, `nlmsg_len ${len} is shorter than the 16-byte header`);
    if (len > end - o) r.fail(o, `nlmsg_len ${len} runs past the end of the buffer (${end - o} bytes left)`);
    if (len & 3) r.fail(o, `nlmsg_len ${len} is not a multiple of 4`);
    out.push(decodeMessage(r, o, len));
    o += len;
  }
  return out;
}

function decodeMessage(r: ByteReader, o: number, len: number): XfrmMessage {
  const type = r.u16(o + 4);
  const hdr = { flags: r.u16(o + 6), seq: r.u32(o + 8), pid: r.u32(o + 12) };
  const p = o + SIZE.nlmsghdr;
  const end = o + len;
  const plen = len - SIZE.nlmsghdr;
  switch (type) {
    case NLMSG.ERROR: {
      r.need(p, SIZE.nlmsgerr, end, 'struct nlmsgerr');
      const error = r.i32(p);
      if (error > 0) r.fail(p, `nlmsgerr.error ${error} is positive (must be 0 or a negative errno)`);
      const q = p + 4;
      const request = { len: r.u32(q), type: r.u16(q + 4), flags: r.u16(q + 6), seq: r.u32(q + 8), pid: r.u32(q + 12) };
      return { type: 'error', ...hdr, error, request, data: r.bytes(p + SIZE.nlmsgerr, end - p - SIZE.nlmsgerr) };
    }
    case NLMSG.DONE:
      return { type: 'done', ...hdr, data: r.bytes(p, plen) };
    case NLMSG.NOOP:
      return { type: 'noop', ...hdr, data: r.bytes(p, plen) };
    case NLMSG.OVERRUN:
      return { type: 'overrun', ...hdr, data: r.bytes(p, plen) };
  }
  const dump = isDump(type, hdr.flags);
  const fixed = fixedSize(type, dump);
  if (fixed === undefined) return { type, ...hdr, data: r.bytes(p, plen) };
  r.need(p, fixed, end, `the fixed part of ${type === XFRM_MSG.GETSA ? 'XFRM_MSG_GETSA' : `message type ${type}`}`);
  const a = p + fixed;
  switch (type) {
    case XFRM_MSG.NEWSA:
    case XFRM_MSG.UPDSA: {
      const sa = readUsersaInfo(r, p);
      return { type: type === XFRM_MSG.NEWSA ? 'newsa' : 'updsa', ...hdr, sa, attrs: decodeAttrs(r, a, end, sa.family, 'xfrm') };
    }
    case XFRM_MSG.DELSA:
    case XFRM_MSG.GETSA: {
      if (dump) return { type: 'getsaDump', ...hdr, attrs: decodeAttrs(r, a, end, 0, 'xfrm') };
      const id = readUsersaId(r, p);
      return { type: type === XFRM_MSG.DELSA ? 'delsa' : 'getsa', ...hdr, id, attrs: decodeAttrs(r, a, end, id.family, 'xfrm') };
    }
    case XFRM_MSG.ALLOCSPI: {
      const sa = readUsersaInfo(r, p);
      return { type: 'allocspi', ...hdr, sa, min: r.u32(p + 224), max: r.u32(p + 228), attrs: decodeAttrs(r, a, end, sa.family, 'xfrm') };
    }
    case XFRM_MSG.FLUSHSA:
      for (let i = p + 1; i < p + 4; i++) if (r.u8(i) !== 0) r.fail(i, 'padding after xfrm_usersa_flush is not zero');
      return { type: 'flushsa', ...hdr, proto: r.u8(p), attrs: decodeAttrs(r, a, end, 0, 'xfrm') };
    case XFRM_MSG.NEWPOLICY:
    case XFRM_MSG.UPDPOLICY: {
      const policy = readUserpolicyInfo(r, p);
      const t = type === XFRM_MSG.NEWPOLICY ? 'newpolicy' : 'updpolicy';
      return { type: t, ...hdr, policy, attrs: decodeAttrs(r, a, end, policy.sel.family, 'xfrm') };
    }
    case XFRM_MSG.DELPOLICY:
    case XFRM_MSG.GETPOLICY: {
      if (dump) return { type: 'getpolicyDump', ...hdr, attrs: decodeAttrs(r, a, end, 0, 'xfrm') };
      const id = readUserpolicyId(r, p);
      const t = type === XFRM_MSG.DELPOLICY ? 'delpolicy' : 'getpolicy';
      return { type: t, ...hdr, id, attrs: decodeAttrs(r, a, end, id.sel.family, 'xfrm') };
    }
    case XFRM_MSG.FLUSHPOLICY:
      return { type: 'flushpolicy', ...hdr, attrs: decodeAttrs(r, a, end, 0, 'xfrm') };
    case XFRM_MSG.GETSADINFO:
      if (plen !== 4) r.fail(p, `XFRM_MSG_GETSADINFO carries exactly a u32, has ${plen} bytes`);
      return { type: 'getsadinfo', ...hdr, sadFlags: r.u32(p) };
    case XFRM_MSG.NEWSADINFO:
      return { type: 'newsadinfo', ...hdr, sadFlags: r.u32(p), attrs: decodeAttrs(r, a, end, 0, 'sad') };
    case XFRM_MSG.ACQUIRE: {
      const acquire = readUserAcquire(r, p);
      return { type: 'acquire', ...hdr, acquire, attrs: decodeAttrs(r, a, end, acquire.sel.family, 'xfrm') };
    }
    case XFRM_MSG.EXPIRE: {
      const sa = readUsersaInfo(r, p);
      const hard = checkHardByte(r, p + 224, p + SIZE.userExpire, 'xfrm_user_expire');
      return { type: 'expire', ...hdr, sa, hard, attrs: decodeAttrs(r, a, end, sa.family, 'xfrm') };
    }
    case XFRM_MSG.POLEXPIRE: {
      const policy = readUserpolicyInfo(r, p);
      const hard = checkHardByte(r, p + 168, p + SIZE.userPolexpire, 'xfrm_user_polexpire');
      return { type: 'polexpire', ...hdr, policy, hard, attrs: decodeAttrs(r, a, end, policy.sel.family, 'xfrm') };
    }
    default: {
      const mapping = readUserMapping(r, p);
      return { type: 'mapping', ...hdr, mapping, attrs: decodeAttrs(r, a, end, mapping.id.family, 'xfrm') };
    }
  }
}

/**
 * Encode one message or several (concatenated, each 4-byte aligned), in dns-packet's shape: without `buf`, into a new
 * Buffer; with it, into `buf` from `offset` (default 0), refusing to outgrow it (a RangeError naming "buf"). Returns
 * the bytes written (a view of `buf` when one was given) and sets `encode.bytes` to their number.
 */
export function encode(messages: XfrmMessage | readonly XfrmMessage[], buf?: Uint8Array, offset?: number): Buffer {
  if (buf === undefined && offset !== undefined) throw typeError('buf', 'a Buffer or Uint8Array when an offset is given', buf);
  const w = buf === undefined ? new ByteWriter() : new ByteWriter({ into: buf, offset });
  readingCallerValue('messages', () => encodeAll(w, messages));
  encode.bytes = w.len;
  return w.result();
}
/** How many bytes the last encode() wrote. */
encode.bytes = 0;

/** The bytes encode(messages) writes, checking every field as encode does, without writing any. */
export function encodingLength(messages: XfrmMessage | readonly XfrmMessage[]): number {
  const w = new ByteWriter({ measure: true });
  readingCallerValue('messages', () => encodeAll(w, messages));
  return w.len;
}

function encodeAll(w: ByteWriter, messages: XfrmMessage | readonly XfrmMessage[]): void {
  if (Array.isArray(messages)) for (let i = 0; i < messages.length; i++) encodeMessage(w, messages[i], `messages[${i}]`);
  else encodeMessage(w, messages as XfrmMessage, 'message');
}

function encodeMessage(w: ByteWriter, m: XfrmMessage, field: string): void {
  checkedObject(m, field, 'an XFRM message object');
  const at = w.reserve(SIZE.nlmsghdr);
  if (typeof m.type !== 'string' && typeof m.type !== 'number') throw typeError('type', 'an XFRM message type name or number', (m as { type: unknown }).type);
  const type = messageTypeNumber(m);
  if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw rangeError('type', 'an XFRM message type name or a number 0..65535', m.type);
  let flags = checkedInt(m.flags ?? 0, 0, 0xffff, 'flags');
  if (m.type === 'getsaDump' || m.type === 'getpolicyDump') flags |= NLM_F.DUMP;
  switch (m.type) {
    case 'error': {
      const o = w.reserve(SIZE.nlmsgerr);
      const q = checkedObject(m.request, 'request');
      w.i32(o, m.error, 'error');
      w.u32(o + 4, q.len, 'request.len');
      w.u16(o + 8, q.type, 'request.type');
      w.u16(o + 10, q.flags, 'request.flags');
      w.u32(o + 12, q.seq, 'request.seq');
      w.u32(o + 16, q.pid, 'request.pid');
      writeData(w, m.data);
      break;
    }
    case 'done':
    case 'noop':
    case 'overrun':
      writeData(w, m.data);
      break;
    case 'newsa':
    case 'updsa':
      writeUsersaInfo(w, w.reserve(SIZE.usersaInfo), m.sa);
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'delsa':
    case 'getsa':
      writeUsersaId(w, w.reserve(SIZE.usersaId), m.id);
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'getsaDump':
    case 'getpolicyDump':
    case 'flushpolicy':
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'allocspi': {
      const o = w.reserve(SIZE.userspiInfo);
      writeUsersaInfo(w, o, m.sa);
      w.u32(o + 224, m.min, 'min');
      w.u32(o + 228, m.max, 'max');
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    }
    case 'flushsa':
      w.u8(w.reserve(4), m.proto, 'proto');
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'newpolicy':
    case 'updpolicy':
      writeUserpolicyInfo(w, w.reserve(SIZE.userpolicyInfo), m.policy);
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'delpolicy':
    case 'getpolicy':
      writeUserpolicyId(w, w.reserve(SIZE.userpolicyId), m.id);
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'getsadinfo':
      w.u32(w.reserve(4), m.sadFlags, 'sadFlags');
      break;
    case 'newsadinfo':
      w.u32(w.reserve(4), m.sadFlags, 'sadFlags');
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'acquire':
      writeUserAcquire(w, w.reserve(SIZE.userAcquire), m.acquire);
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    case 'expire': {
      const o = w.reserve(SIZE.userExpire);
      writeUsersaInfo(w, o, m.sa);
      w.u8(o + 224, m.hard ? 1 : 0, 'hard');
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    }
    case 'polexpire': {
      const o = w.reserve(SIZE.userPolexpire);
      writeUserpolicyInfo(w, o, m.policy);
      w.u8(o + 168, m.hard ? 1 : 0, 'hard');
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    }
    case 'mapping':
      writeUserMapping(w, w.reserve(SIZE.userMapping), m.mapping);
      encodeAttrs(w, m.attrs, 'attrs', 0);
      break;
    default:
      writeData(w, m.data);
  }
  w.align(4);
  w.u32(at, w.len - (at - w.start), 'nlmsg_len');
  w.u16(at + 4, type, 'type');
  w.u16(at + 6, flags, 'flags');
  w.u32(at + 8, m.seq ?? 0, 'seq');
  w.u32(at + 12, m.pid ?? 0, 'pid');
}

/** A payload kept as bytes (NLMSG_DONE, NLMSG_ERROR's tail, an unknown type). */
function writeData(w: ByteWriter, data: Uint8Array): void {
  const d = checkedBytes(data, 'data');
  w.bytes(w.reserve(d.length), d, 'data');
}

/** The first attribute of a kind, typed. */
export function findAttr<K extends XfrmAttributeKind>(
  attrs: readonly XfrmAttribute[],
  kind: K,
): (XfrmAttribute & { kind: K }) | undefined {
  if (typeof kind !== 'string') throw typeError('kind', "an attribute kind such as 'encap'", kind);
  if (!Array.isArray(attrs)) throw typeError('attrs', 'an array of attributes (a message\'s attrs)', attrs);
  try {
    for (let i = 0; i < attrs.length; i++) {
      const a: unknown = attrs[i];
      if (isRecord(a) && (a as { kind?: unknown }).kind === kind) return a as XfrmAttribute & { kind: K };
    }
  } catch {
    throw typeError('attrs', 'an array whose items can be read', undefined);
  }
  return undefined;
}
