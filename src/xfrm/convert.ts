// The shared SA model (src/sadb/types.ts) ↔ XFRM structures and attributes: SAs, ids, selectors, policies, lifetimes.

import { checkKey } from '../sadb/algorithms';
import type {
  IpsecProtocol,
  Lifetime,
  LifetimeCurrent,
  PolicyTemplate,
  SaId,
  SaNattType,
  SecurityAssociation,
  SecurityPolicy,
  TrafficSelector,
} from '../sadb/types';
import { hideSaKeys } from '../sadb/keys';
import { rangeError, typeError } from '../errors';
import { addressFamily, formatPrefix, parsePrefix } from '../ip/address';
import {
  AF_INET,
  AF_INET6,
  IPPROTO_AH,
  IPPROTO_COMP,
  IPPROTO_ESP,
  TCP_ENCAP_ESPINTCP,
  UDP_ENCAP_ESPINUDP,
  UDP_ENCAP_ESPINUDP_NON_IKE,
  XFRM_MODE,
  XFRM_POLICY_ACTION,
  XFRM_POLICY_DIR,
  XFRM_SA_DIR,
  XFRM_SHARE,
  XFRM_STATE,
} from './constants';
import {
  XFRM_INF,
  type XfrmLifetimeCfg,
  type XfrmLifetimeCur,
  type XfrmSelectorStruct,
  type XfrmUserTmpl,
  type XfrmUserpolicyInfo,
  type XfrmUsersaId,
  type XfrmUsersaInfo,
} from './structs';
import { findAttr, type XfrmAttribute } from './codec';
import { ENCRYPTION, INTEGRITY, encryptionFromKernel, integrityFromKernel } from './algorithms';

export function protoNumber(p: IpsecProtocol | undefined, option = 'protocol'): number {
  switch (p ?? 'esp') {
    case 'esp':
      return IPPROTO_ESP;
    case 'ah':
      return IPPROTO_AH;
    case 'ipcomp':
      return IPPROTO_COMP;
    default:
      throw typeError(option, "'esp', 'ah' or 'ipcomp'", p);
  }
}

export function protoName(n: number): IpsecProtocol {
  return n === IPPROTO_AH ? 'ah' : n === IPPROTO_COMP ? 'ipcomp' : 'esp';
}

export function familyOf(address: string, option: string): number {
  const f = addressFamily(address);
  if (f === 0) throw typeError(option, 'an IPv4 or IPv6 address string', address);
  return f === 4 ? AF_INET : AF_INET6;
}

function u32(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(option, 'an integer', v);
  if (v < 0 || v > 0xffffffff) throw rangeError(option, 'an integer 0..2^32-1', v);
  return v;
}

function port(v: unknown, option: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(option, 'an integer', v);
  if (v < 0 || v > 0xffff) throw rangeError(option, 'a port 0..65535', v);
  return v;
}

// ---- selectors ----

const emptySelector = (family: number): XfrmSelectorStruct => ({
  daddr: '',
  saddr: '',
  dport: 0,
  dportMask: 0,
  sport: 0,
  sportMask: 0,
  family,
  prefixlenD: 0,
  prefixlenS: 0,
  proto: 0,
  ifindex: 0,
  user: 0,
});

export function selectorToStruct(s: TrafficSelector | undefined, option: string, fallbackFamily = 0): XfrmSelectorStruct {
  if (s === undefined) return emptySelector(fallbackFamily);
  if (s === null || typeof s !== 'object') throw typeError(option, 'a traffic selector object', s);
  const src = parsePrefix(s.src, `${option}.src`);
  const dst = parsePrefix(s.dst, `${option}.dst`);
  if (src.family !== dst.family) throw typeError(`${option}.dst`, `an address of the same family as ${option}.src`, s.dst);
  const proto = s.proto === undefined || s.proto === 255 ? 0 : s.proto;
  if (!Number.isInteger(proto) || proto < 0 || proto > 255) throw rangeError(`${option}.proto`, 'a protocol number 0..255', s.proto);
  const sport = port(s.sport ?? 0, `${option}.sport`);
  const dport = port(s.dport ?? 0, `${option}.dport`);
  return {
    daddr: formatPrefix(dst).split('/')[0],
    saddr: formatPrefix(src).split('/')[0],
    dport,
    dportMask: dport ? 0xffff : 0,
    sport,
    sportMask: sport ? 0xffff : 0,
    family: src.family === 4 ? AF_INET : AF_INET6,
    prefixlenD: dst.bits,
    prefixlenS: src.bits,
    proto,
    ifindex: 0,
    user: 0,
  };
}

/** undefined for a selector that matches everything (all prefixes 0, any protocol, any port). */
export function structToSelector(s: XfrmSelectorStruct): TrafficSelector | undefined {
  if (s.prefixlenD === 0 && s.prefixlenS === 0 && s.proto === 0 && s.sport === 0 && s.dport === 0) return undefined;
  const out: TrafficSelector = { src: `${s.saddr}/${s.prefixlenS}`, dst: `${s.daddr}/${s.prefixlenD}` };
  if (s.proto) out.proto = s.proto;
  if (s.sport) out.sport = s.sport;
  if (s.dport) out.dport = s.dport;
  return out;
}

// ---- lifetimes ----

function limit(v: number | undefined, option: string): bigint {
  if (v === undefined || v === 0) return XFRM_INF;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw rangeError(option, 'a non-negative integer', v);
  return BigInt(v);
}

function seconds(v: number | undefined, option: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw rangeError(option, 'a non-negative integer', v);
  return BigInt(v);
}

export function lifetimeToCfg(l: { soft?: Lifetime; hard?: Lifetime } | undefined): XfrmLifetimeCfg {
  const soft = l?.soft ?? {};
  const hard = l?.hard ?? {};
  return {
    softByteLimit: limit(soft.bytes, 'lifetime.soft.bytes'),
    hardByteLimit: limit(hard.bytes, 'lifetime.hard.bytes'),
    softPacketLimit: limit(soft.packets, 'lifetime.soft.packets'),
    hardPacketLimit: limit(hard.packets, 'lifetime.hard.packets'),
    softAddExpiresSeconds: seconds(soft.addSeconds, 'lifetime.soft.addSeconds'),
    hardAddExpiresSeconds: seconds(hard.addSeconds, 'lifetime.hard.addSeconds'),
    softUseExpiresSeconds: seconds(soft.useSeconds, 'lifetime.soft.useSeconds'),
    hardUseExpiresSeconds: seconds(hard.useSeconds, 'lifetime.hard.useSeconds'),
  };
}

function fromLimit(v: bigint): number | undefined {
  return v === XFRM_INF || v === 0n ? undefined : Number(v);
}

function cfgToLifetime(c: XfrmLifetimeCfg): { soft?: Lifetime; hard?: Lifetime } | undefined {
  const pick = (bytes: bigint, packets: bigint, add: bigint, use: bigint): Lifetime | undefined => {
    const l: Lifetime = {};
    const b = fromLimit(bytes);
    const p = fromLimit(packets);
    if (b !== undefined) l.bytes = b;
    if (p !== undefined) l.packets = p;
    if (add) l.addSeconds = Number(add);
    if (use) l.useSeconds = Number(use);
    return Object.keys(l).length ? l : undefined;
  };
  const soft = pick(c.softByteLimit, c.softPacketLimit, c.softAddExpiresSeconds, c.softUseExpiresSeconds);
  const hard = pick(c.hardByteLimit, c.hardPacketLimit, c.hardAddExpiresSeconds, c.hardUseExpiresSeconds);
  if (!soft && !hard) return undefined;
  const out: { soft?: Lifetime; hard?: Lifetime } = {};
  if (soft) out.soft = soft;
  if (hard) out.hard = hard;
  return out;
}

export const zeroCur: XfrmLifetimeCur = { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n };

function curToModel(c: XfrmLifetimeCur): LifetimeCurrent {
  return { bytes: Number(c.bytes), packets: Number(c.packets), addTime: Number(c.addTime), useTime: Number(c.useTime) };
}

// ---- SAs ----

function modeNumber(m: SecurityAssociation['mode'], option: string): number {
  switch (m ?? 'transport') {
    case 'transport':
    case 'any':
      return XFRM_MODE.TRANSPORT;
    case 'tunnel':
      return XFRM_MODE.TUNNEL;
    default:
      throw typeError(option, "'transport' or 'tunnel'", m);
  }
}

/** The usersa_id + XFRMA_SRCADDR that name one SA (GETSA, DELSA). */
export function saIdToStruct(id: SaId): { id: XfrmUsersaId; attrs: XfrmAttribute[] } {
  if (id === null || typeof id !== 'object') throw typeError('id', 'an SA id object', id);
  const family = familyOf(id.dst, 'dst');
  const attrs: XfrmAttribute[] = [];
  if (id.src !== undefined) {
    if (familyOf(id.src, 'src') !== family) throw typeError('src', 'an address of the same family as dst', id.src);
    attrs.push({ kind: 'srcaddr', address: id.src });
  }
  return { id: { daddr: id.dst, spi: u32(id.spi, 'spi'), family, proto: protoNumber(id.protocol) }, attrs };
}

/** natt.type → xfrm_encap_tmpl.encap_type. */
const ENCAP_TYPES: Readonly<Record<SaNattType, number>> = {
  espinudp: UDP_ENCAP_ESPINUDP,
  'espinudp-non-ike': UDP_ENCAP_ESPINUDP_NON_IKE,
  espintcp: TCP_ENCAP_ESPINTCP,
};

/**
 * xfrm_encap_tmpl.encap_type → natt.type. A type natt has no name for comes back as `'encap-<n>'` (as unknown
 * algorithm names come back raw), never silently as another encapsulation.
 */
export function encapTypeName(t: number): SaNattType {
  if (t === UDP_ENCAP_ESPINUDP) return 'espinudp';
  if (t === UDP_ENCAP_ESPINUDP_NON_IKE) return 'espinudp-non-ike';
  if (t === TCP_ENCAP_ESPINTCP) return 'espintcp';
  return `encap-${t}` as SaNattType;
}

/** A model SA → usersa_info and its attributes (algorithms, encap, ESN replay state). Validates every field. */
export function saToStruct(sa: SecurityAssociation): { sa: XfrmUsersaInfo; attrs: XfrmAttribute[] } {
  if (sa === null || typeof sa !== 'object') throw typeError('sa', 'an SA object', sa);
  const family = familyOf(sa.dst, 'dst');
  if (familyOf(sa.src, 'src') !== family) throw typeError('src', 'an address of the same family as dst', sa.src);
  const proto = protoNumber(sa.protocol);
  // An SA that sends NAT keepalives is outbound: Linux >= 6.10 takes the interval only on an SA marked so
  // (XFRMA_SA_DIR out), and refuses a replay window on one. Older kernels ignore both attributes.
  const keepalive = sa.natt?.keepaliveInterval;
  const outbound = typeof keepalive === 'number' && keepalive > 0;
  const replayWindow = sa.replayWindow ?? (outbound ? 0 : 32);
  if (!Number.isInteger(replayWindow) || replayWindow < 0 || replayWindow > (sa.esn ? 4096 : 255)) {
    throw rangeError('replayWindow', sa.esn ? 'an integer 0..4096' : 'an integer 0..255 (more needs esn)', replayWindow);
  }
  if (outbound && replayWindow !== 0) {
    throw rangeError('replayWindow', '0 with natt.keepaliveInterval (an outbound SA: the kernel refuses a replay window there)', replayWindow);
  }
  const attrs: XfrmAttribute[] = [];
  if (sa.encryption) {
    const t = ENCRYPTION[sa.encryption.algorithm];
    if (!t) throw typeError('encryption.algorithm', `one of ${Object.keys(ENCRYPTION).join(', ')}`, sa.encryption.algorithm);
    const key = checkKey(sa.encryption, 'encryption');
    if (t.attr === 'algAead') {
      if (sa.integrity && sa.integrity.algorithm !== 'none') {
        throw typeError('integrity', `absent with the AEAD ${sa.encryption.algorithm}`, sa.integrity.algorithm);
      }
      attrs.push({ kind: 'algAead', name: t.name, keyBits: key.length * 8, icvBits: t.icvBits ?? 128, key });
    } else {
      attrs.push({ kind: 'algCrypt', name: t.name, keyBits: key.length * 8, key });
    }
  }
  if (sa.integrity && sa.integrity.algorithm !== 'none') {
    const t = INTEGRITY[sa.integrity.algorithm as keyof typeof INTEGRITY];
    if (!t) throw typeError('integrity.algorithm', `one of ${Object.keys(INTEGRITY).join(', ')}, none`, sa.integrity.algorithm);
    const key = checkKey(sa.integrity, 'integrity');
    attrs.push({ kind: 'algAuthTrunc', name: t.name, keyBits: key.length * 8, truncBits: t.truncBits, key });
  }
  if (sa.compression) attrs.push({ kind: 'algComp', name: sa.compression.algorithm, keyBits: 0, key: new Uint8Array(0) });
  if (sa.natt) {
    const n = sa.natt;
    if (n === null || typeof n !== 'object') throw typeError('natt', 'an object', n);
    const encapType = ENCAP_TYPES[n.type as SaNattType] ?? -1;
    if (encapType < 0) throw typeError('natt.type', "'espinudp', 'espinudp-non-ike' or 'espintcp'", n.type);
    const oa = n.oa?.initiator ?? n.oa?.responder ?? '';
    if (oa) familyOf(oa, 'natt.oa');
    attrs.push({ kind: 'encap', encapType, sport: port(n.sport, 'natt.sport'), dport: port(n.dport, 'natt.dport'), oa });
    if (n.keepaliveInterval !== undefined) {
      attrs.push({ kind: 'natKeepaliveInterval', value: u32(n.keepaliveInterval, 'natt.keepaliveInterval') });
      if (outbound) attrs.push({ kind: 'saDir', value: XFRM_SA_DIR.OUT });
    }
  }
  let flags = 0;
  // A window past the legacy 32-bit bitmap goes in XFRMA_REPLAY_ESN_VAL, as iproute2 sends it: without the ESN flag
  // the kernel keeps a plain bitmap of that size (xfrm_replay_bmp); usersa_info's own field, which the kernel caps at
  // 32 without a word, is then 0 (the kernel refuses both).
  const bitmapOnly = !sa.esn && !outbound && replayWindow > 32 && (proto === IPPROTO_ESP || proto === IPPROTO_AH);
  if (sa.esn || bitmapOnly) {
    if (sa.esn) flags |= XFRM_STATE.ESN;
    const words = outbound ? 0 : Math.max(1, Math.ceil(replayWindow / 32)); // an outbound SA: no bitmap
    attrs.push({
      kind: 'replayEsnVal',
      oseq: 0,
      seq: 0,
      oseqHi: 0,
      seqHi: 0,
      replayWindow,
      bmp: new Array<number>(words).fill(0),
    });
  }
  const reqid = u32(sa.reqid ?? 0, 'reqid');
  return {
    sa: {
      sel: selectorToStruct(sa.selector, 'selector', 0),
      id: { daddr: sa.dst, spi: u32(sa.spi, 'spi'), proto },
      saddr: sa.src,
      lft: lifetimeToCfg(sa.lifetime),
      curlft: zeroCur,
      stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
      seq: u32(sa.seq ?? 0, 'seq'),
      reqid,
      family,
      mode: modeNumber(sa.mode, 'mode'),
      replayWindow: sa.esn || bitmapOnly ? 0 : replayWindow,
      flags,
    },
    attrs,
  };
}

/** usersa_info + attributes → a model SA, its keys in key holders (src/sadb/keys.ts). */
export function structToSa(info: XfrmUsersaInfo, attrs: readonly XfrmAttribute[]): SecurityAssociation {
  const sa: SecurityAssociation = {
    src: info.saddr,
    dst: info.id.daddr,
    spi: info.id.spi,
    protocol: protoName(info.id.proto),
    mode: info.mode === XFRM_MODE.TUNNEL ? 'tunnel' : 'transport',
    reqid: info.reqid,
    replayWindow: info.replayWindow,
  };
  const esn = findAttr(attrs, 'replayEsnVal');
  if (info.flags & XFRM_STATE.ESN) sa.esn = true;
  if (esn) sa.replayWindow = esn.replayWindow; // ESN, or a window past 32 without it
  const aead = findAttr(attrs, 'algAead');
  const crypt = findAttr(attrs, 'algCrypt');
  if (aead) sa.encryption = { algorithm: encryptionFromKernel(aead.name, aead.icvBits), key: aead.key };
  else if (crypt) sa.encryption = { algorithm: encryptionFromKernel(crypt.name), key: crypt.key };
  const trunc = findAttr(attrs, 'algAuthTrunc');
  const auth = findAttr(attrs, 'algAuth');
  if (trunc) sa.integrity = { algorithm: integrityFromKernel(trunc.name, trunc.truncBits), key: trunc.key };
  else if (auth) sa.integrity = { algorithm: integrityFromKernel(auth.name, 96), key: auth.key };
  const comp = findAttr(attrs, 'algComp');
  if (comp) sa.compression = { algorithm: comp.name as 'deflate' };
  const encap = findAttr(attrs, 'encap');
  if (encap) {
    sa.natt = {
      type: encapTypeName(encap.encapType),
      sport: encap.sport,
      dport: encap.dport,
    };
    if (encap.oa && encap.oa !== '0.0.0.0' && encap.oa !== '::') sa.natt.oa = { initiator: encap.oa };
    const keepalive = findAttr(attrs, 'natKeepaliveInterval');
    if (keepalive) sa.natt.keepaliveInterval = keepalive.value;
  }
  const lifetime = cfgToLifetime(info.lft);
  if (lifetime) sa.lifetime = lifetime;
  const selector = structToSelector(info.sel);
  if (selector) sa.selector = selector;
  const cur = findAttr(attrs, 'ltimeVal')?.cur ?? info.curlft;
  sa.current = curToModel(cur);
  sa.state = 'mature';
  if (info.seq) sa.seq = info.seq;
  return hideSaKeys(sa);
}

// ---- policies ----

const dirNumbers = { in: XFRM_POLICY_DIR.IN, out: XFRM_POLICY_DIR.OUT, fwd: XFRM_POLICY_DIR.FWD } as const;

export function dirNumber(d: unknown, option = 'direction'): number {
  const n = dirNumbers[d as keyof typeof dirNumbers];
  if (n === undefined) throw typeError(option, "'in', 'out' or 'fwd'", d);
  return n;
}

export function dirName(n: number): SecurityPolicy['direction'] {
  return n === XFRM_POLICY_DIR.IN ? 'in' : n === XFRM_POLICY_DIR.FWD ? 'fwd' : 'out';
}

function templateToStruct(t: PolicyTemplate, i: number, selFamily: number): XfrmUserTmpl {
  const opt = `templates[${i}]`;
  if (t === null || typeof t !== 'object') throw typeError(opt, 'a template object', t);
  const mode = t.mode === 'tunnel' ? XFRM_MODE.TUNNEL : t.mode === 'transport' ? XFRM_MODE.TRANSPORT : -1;
  if (mode < 0) throw typeError(`${opt}.mode`, "'transport' or 'tunnel'", t.mode);
  if (mode === XFRM_MODE.TUNNEL && (!t.src || !t.dst)) throw typeError(`${opt}.src`, 'tunnel endpoints src and dst', t.src);
  const family = t.dst ? familyOf(t.dst, `${opt}.dst`) : selFamily;
  const level = t.level ?? 'require';
  if (!['default', 'use', 'require', 'unique'].includes(level)) throw typeError(`${opt}.level`, "'default', 'use', 'require' or 'unique'", level);
  return {
    id: { daddr: t.dst ?? '', spi: 0, proto: protoNumber(t.protocol, `${opt}.protocol`) },
    family,
    saddr: t.src ?? '',
    reqid: u32(t.reqid ?? 0, `${opt}.reqid`),
    mode,
    share: level === 'unique' ? XFRM_SHARE.UNIQUE : XFRM_SHARE.ANY,
    optional: level === 'use' ? 1 : 0,
    aalgos: 0xffffffff,
    ealgos: 0xffffffff,
    calgos: 0xffffffff,
  };
}

function structToTemplate(t: XfrmUserTmpl): PolicyTemplate {
  const out: PolicyTemplate = {
    protocol: protoName(t.id.proto),
    mode: t.mode === XFRM_MODE.TUNNEL ? 'tunnel' : 'transport',
    level: t.optional ? 'use' : t.share === XFRM_SHARE.UNIQUE ? 'unique' : 'require',
  };
  // A tunnel rule's endpoints are read as the kernel holds them, 0.0.0.0 (a wildcard) included, as PF_KEY reports
  // them and setkey prints them (esp/tunnel/0.0.0.0-0.0.0.0/require); a transport rule's are the kernel's blanks.
  const blank = (a: string): boolean => a === '' || ((a === '0.0.0.0' || a === '::') && out.mode !== 'tunnel');
  if (!blank(t.saddr)) out.src = t.saddr;
  if (!blank(t.id.daddr)) out.dst = t.id.daddr;
  if (t.reqid) out.reqid = t.reqid;
  return out;
}

/** A model policy → userpolicy_info and XFRMA_TMPL. */
export function policyToStruct(p: SecurityPolicy): { policy: XfrmUserpolicyInfo; attrs: XfrmAttribute[] } {
  if (p === null || typeof p !== 'object') throw typeError('policy', 'a policy object', p);
  if (!p.selector) throw typeError('selector', 'a traffic selector', p.selector);
  const sel = selectorToStruct(p.selector, 'selector');
  const action = p.action ?? 'ipsec';
  if (!['ipsec', 'none', 'discard'].includes(action)) throw typeError('action', "'ipsec', 'none' or 'discard'", action);
  const attrs: XfrmAttribute[] = [];
  if (action === 'ipsec') {
    if (!Array.isArray(p.templates) || p.templates.length === 0) throw typeError('templates', 'a non-empty array for action ipsec', p.templates);
    attrs.push({ kind: 'tmpl', templates: p.templates.map((t, i) => templateToStruct(t, i, sel.family)) });
  }
  return {
    policy: {
      sel,
      lft: lifetimeToCfg(undefined),
      curlft: zeroCur,
      priority: u32(p.priority ?? 0, 'priority'),
      index: u32(p.id ?? 0, 'id'),
      dir: dirNumber(p.direction),
      action: action === 'discard' ? XFRM_POLICY_ACTION.BLOCK : XFRM_POLICY_ACTION.ALLOW,
      flags: 0,
      share: XFRM_SHARE.ANY,
    },
    attrs,
  };
}

export function structToPolicy(info: XfrmUserpolicyInfo, attrs: readonly XfrmAttribute[]): SecurityPolicy {
  const tmpl = findAttr(attrs, 'tmpl');
  const selector = structToSelector(info.sel) ?? {
    src: info.sel.family === AF_INET6 ? '::/0' : '0.0.0.0/0',
    dst: info.sel.family === AF_INET6 ? '::/0' : '0.0.0.0/0',
  };
  const out: SecurityPolicy = {
    selector,
    direction: dirName(info.dir),
    action: info.action === XFRM_POLICY_ACTION.BLOCK ? 'discard' : tmpl && tmpl.templates.length ? 'ipsec' : 'none',
    priority: info.priority,
    id: info.index,
    current: curToModel(info.curlft),
  };
  if (tmpl && tmpl.templates.length) out.templates = tmpl.templates.map(structToTemplate);
  return out;
}
