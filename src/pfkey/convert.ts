// The shared SA/policy model ⇄ PF_KEY messages, per dialect: algorithm names, NAT-T, lifetimes, selectors, events.

import { checkKey } from '../sadb/algorithms';
import { NattUnsupportedError, rangeError, typeError } from '../errors';
import { addressFamily, parsePrefix, bytesToAddress } from '../ip/address';
import type {
  AcquireEvent,
  Address,
  GetSpiRequest,
  IpsecMode,
  IpsecProtocol,
  Lifetime,
  LifetimeCurrent,
  NewMappingEvent,
  PolicyDirection,
  PolicyTemplate,
  SaId,
  SaState,
  SecurityAssociation,
  SecurityPolicy,
  SupportedAlgorithms,
  TrafficSelector,
} from '../sadb/types';
import { findExt, type AddressExt, type LifetimeExt, type PfKeyExtension, type PfKeyMessage, type Sockaddr } from './codec';
import { IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY, IPSEC_ULPROTO_ANY, SADB, SATYPE, type Dialect } from './dialects';

const AEADS = new Set(['aes-gcm-8', 'aes-gcm-12', 'aes-gcm-16', 'aes-gmac', 'chacha20-poly1305', 'aes-ccm-8', 'aes-ccm-12', 'aes-ccm-16']);
const XFRM_ADVICE = "open the SA database with openSadb({ backend: 'xfrm' }) (Linux XFRM netlink) instead";

// ---------------------------------------------------------------------------------------------------------------
// Protocols, modes, algorithms

const SATYPE_OF: Record<IpsecProtocol, number> = { esp: SATYPE.ESP, ah: SATYPE.AH, ipcomp: SATYPE.X_IPCOMP };
const IPPROTO_OF: Record<IpsecProtocol, number> = { esp: 50, ah: 51, ipcomp: 108 };

export function satypeOf(p: IpsecProtocol | undefined, option = 'protocol'): number {
  if (p === undefined) return SATYPE.UNSPEC;
  const t = SATYPE_OF[p];
  if (t === undefined) throw rangeError(option, "'esp', 'ah' or 'ipcomp'", p);
  return t;
}

export function protocolOfSatype(t: number): IpsecProtocol | undefined {
  return t === SATYPE.ESP ? 'esp' : t === SATYPE.AH ? 'ah' : t === SATYPE.X_IPCOMP ? 'ipcomp' : undefined;
}

function protocolOfIpproto(p: number): IpsecProtocol {
  return p === 51 ? 'ah' : p === 108 ? 'ipcomp' : 'esp';
}

function modeNumber(m: IpsecMode | undefined, option: string): number {
  if (m === undefined || m === 'transport') return IPSEC_MODE.TRANSPORT;
  if (m === 'tunnel') return IPSEC_MODE.TUNNEL;
  if (m === 'any') return IPSEC_MODE.ANY;
  throw rangeError(option, "'transport', 'tunnel' or 'any'", m);
}

function modeName(n: number): IpsecMode {
  return n === IPSEC_MODE.TUNNEL ? 'tunnel' : n === IPSEC_MODE.ANY ? 'any' : 'transport';
}

function reverse(table: Record<string, number>, id: number): string | undefined {
  for (const k in table) if (table[k] === id) return k;
  return undefined;
}

/** sadb_sa_encrypt for an encryption algorithm name; errors with advice where this OS's PF_KEY cannot do it. */
export function encryptId(d: Dialect, name: string): number {
  if (AEADS.has(name) && !d.aead)
    throw new NattUnsupportedError(`${d.name} PF_KEY cannot install AEAD SAs (${name}: the kernel answers ENOSYS or has no id): ${XFRM_ADVICE}`);
  const id = d.algorithms.encrypt[name];
  if (id === undefined) throw rangeError('encryption.algorithm', `one ${d.name} PF_KEY knows (${Object.keys(d.algorithms.encrypt).join(', ')})`, name);
  return id;
}

/** sadb_sa_auth for an integrity algorithm name; errors with advice for the SHA-256 truncation trap. */
export function authId(d: Dialect, name: string): number {
  if (name === 'hmac-sha2-256-128' && d.name === 'linux')
    throw new NattUnsupportedError(
      "Linux PF_KEY installs HMAC-SHA2-256 with 96-bit truncation, not RFC 4868's 128 bits, so it would not interoperate: " +
        `${XFRM_ADVICE}, or ask for 'hmac-sha2-256-96' if the peer really truncates to 96 bits`,
    );
  if (name === 'hmac-sha2-256-96' && d.name !== 'linux')
    throw rangeError('integrity.algorithm', `'hmac-sha2-256-128' (${d.name} truncates HMAC-SHA2-256 to 128 bits)`, name);
  const id = d.algorithms.auth[name];
  if (id === undefined) throw rangeError('integrity.algorithm', `one ${d.name} PF_KEY knows (${Object.keys(d.algorithms.auth).join(', ')})`, name);
  return id;
}

/** sadb_sa_auth to send beside an AEAD (FreeBSD pairs GCM/GMAC with the GMAC id of the key size). */
function aeadAuthId(d: Dialect, name: string, keymatBytes: number): number {
  if (d.algorithms.aeadAuth === 'none') return 0;
  if (name === 'chacha20-poly1305') return d.algorithms.auth['chacha20-poly1305'] ?? 0;
  const gmac = { 20: 'aes-128-gmac', 28: 'aes-192-gmac', 36: 'aes-256-gmac' }[keymatBytes];
  if (!gmac) throw rangeError('encryption.key', `KEYMAT of 20, 28 or 36 bytes (AES key + 4-byte salt) for ${name}`, keymatBytes);
  return d.algorithms.auth[gmac];
}

function encryptName(d: Dialect, id: number): string {
  return reverse(d.algorithms.encrypt, id) ?? `encrypt-${id}`;
}
function authName(d: Dialect, id: number): string {
  return reverse(d.algorithms.auth, id) ?? `auth-${id}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Addresses

function sockaddr(address: Address, port: number, option: string): Sockaddr {
  const fam = addressFamily(address);
  if (fam === 0) throw typeError(option, 'an IPv4 or IPv6 address', address);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw rangeError(`${option} port`, 'an integer 0..65535', port);
  return fam === 4 ? { family: 'inet', address, port } : { family: 'inet6', address: address.split('%')[0], port };
}

function addressExt(name: AddressExt['name'], address: Address, option: string, port = 0, proto = IPSEC_ULPROTO_ANY, prefixlen?: number): AddressExt {
  const addr = sockaddr(address, port, option);
  return { name, proto, prefixlen: prefixlen ?? (addr.family === 'inet' ? 32 : 128), addr };
}

function addressOf(e: AddressExt | undefined): { address: Address; port: number } | undefined {
  if (!e || e.addr.family === 'raw') return undefined;
  return { address: e.addr.address, port: e.addr.port };
}

function need<T>(v: T | undefined, what: string, msg: PfKeyMessage): T {
  if (v === undefined) throw new NattUnsupportedError(`the kernel's ${what} is missing from a PF_KEY message of type ${msg.type}`);
  return v;
}

// ---------------------------------------------------------------------------------------------------------------
// Lifetimes

function lifetimeExt(name: 'lifetimeHard' | 'lifetimeSoft', l: Lifetime, option: string): LifetimeExt {
  const n = (v: number | undefined, f: string): bigint => {
    if (v === undefined) return 0n;
    if (!Number.isSafeInteger(v) || v < 0) throw rangeError(`${option}.${f}`, 'a non-negative integer', v);
    return BigInt(v);
  };
  const packets = l.packets ?? 0;
  if (!Number.isInteger(packets) || packets < 0 || packets > 0xffffffff) throw rangeError(`${option}.packets`, 'an integer 0..2^32-1', packets);
  return { name, allocations: packets, bytes: n(l.bytes, 'bytes'), addtime: n(l.addSeconds, 'addSeconds'), usetime: n(l.useSeconds, 'useSeconds') };
}

function lifetimeOf(e: LifetimeExt): Lifetime {
  const out: Lifetime = {};
  if (e.allocations) out.packets = e.allocations;
  if (e.bytes) out.bytes = Number(e.bytes);
  if (e.addtime) out.addSeconds = Number(e.addtime);
  if (e.usetime) out.useSeconds = Number(e.usetime);
  return out;
}

function currentOf(e: LifetimeExt): LifetimeCurrent {
  return { bytes: Number(e.bytes), packets: e.allocations, addTime: Number(e.addtime), useTime: Number(e.usetime) };
}

// ---------------------------------------------------------------------------------------------------------------
// SAs

const NATT_TYPE = { espinudp: 2, 'espinudp-non-ike': 1 } as const;

/** The message that adds/updates `sa` (type SADB_ADD or SADB_UPDATE). Refuses, with advice, what this OS cannot do. */
export function saToMessage(sa: SecurityAssociation, type: number, d: Dialect, seq: number, pid: number): PfKeyMessage {
  if (sa === null || typeof sa !== 'object') throw typeError('sa', 'a SecurityAssociation object', sa);
  const protocol = sa.protocol ?? 'esp';
  const satype = satypeOf(protocol);
  if (!Number.isInteger(sa.spi) || sa.spi < 0 || sa.spi > 0xffffffff) throw rangeError('spi', 'an integer 0..2^32-1', sa.spi);
  const replay = sa.replayWindow ?? 32;
  if (!Number.isInteger(replay) || replay < 0 || replay > 255) throw rangeError('replayWindow', 'an integer 0..255 (PF_KEY carries 8 bits)', replay);
  let auth = 0;
  let encrypt = 0;
  const exts: PfKeyExtension[] = [];
  const keys: PfKeyExtension[] = [];
  if (protocol === 'ipcomp') {
    const c = sa.compression?.algorithm;
    encrypt = c === undefined ? 0 : d.algorithms.compress[c];
    if (encrypt === undefined) throw rangeError('compression.algorithm', Object.keys(d.algorithms.compress).join(', '), c);
  } else {
    if (sa.encryption) {
      if (protocol === 'ah') throw typeError('encryption', 'absent for an AH SA', sa.encryption.algorithm);
      const { algorithm } = sa.encryption;
      const key = checkKey(sa.encryption, 'encryption');
      encrypt = encryptId(d, algorithm);
      if (AEADS.has(algorithm)) {
        if (sa.integrity && sa.integrity.algorithm !== 'none') throw typeError('integrity', `absent with the AEAD ${algorithm}`, sa.integrity.algorithm);
        auth = aeadAuthId(d, algorithm, key.length);
      }
      // An empty key goes too (NULL encryption): setkey always sends SADB_EXT_KEY_ENCRYPT for ESP, and Linux's af_key
      // refuses an ESP SA without one (EINVAL), 0 bits included.
      keys.push({ name: 'keyEncrypt', bits: key.length * 8, key });
    } else if (protocol === 'esp') {
      encrypt = d.algorithms.encrypt.null;
      keys.push({ name: 'keyEncrypt', bits: 0, key: new Uint8Array(0) });
    }
    if (sa.integrity && sa.integrity.algorithm !== 'none') {
      const { algorithm } = sa.integrity;
      const key = checkKey(sa.integrity, 'integrity');
      auth = authId(d, algorithm);
      keys.unshift({ name: 'keyAuth', bits: key.length * 8, key });
    }
  }
  let flags = 0;
  if (sa.esn) {
    if (!d.esnFlag) throw new NattUnsupportedError(`${d.name} PF_KEY has no extended-sequence-number flag: ${d.name === 'linux' ? XFRM_ADVICE : 'leave esn off'}`);
    flags |= d.esnFlag;
  }
  exts.push({ name: 'sa', spi: sa.spi, replay, state: 0, auth, encrypt, flags });
  const reqid = sa.reqid ?? 0;
  if (!Number.isInteger(reqid) || reqid < 0 || reqid > 0xffffffff) throw rangeError('reqid', 'an integer 0..2^32-1', reqid);
  exts.push({ name: 'sa2', mode: modeNumber(sa.mode, 'mode'), sequence: 0, reqid });
  const lt = sa.lifetime;
  if (lt?.hard || lt?.soft) {
    // Linux af_key takes LIFETIME_HARD and LIFETIME_SOFT together or neither (EINVAL otherwise): the one not given
    // goes as all zeros, which means no limit on every OS.
    exts.push(lifetimeExt('lifetimeHard', lt.hard ?? {}, 'lifetime.hard'), lifetimeExt('lifetimeSoft', lt.soft ?? {}, 'lifetime.soft'));
  }
  exts.push(addressExt('src', sa.src, 'src'), addressExt('dst', sa.dst, 'dst'));
  exts.push(...keys);
  if (sa.natt) {
    const n = sa.natt;
    if (n.keepaliveInterval) {
      throw new NattUnsupportedError(
        'PF_KEY has no NAT keepalive interval (natt.keepaliveInterval): send keepalives from the NattSocket ' +
          "(sendKeepalive, or UserlandEngine's keepaliveSeconds), or use backend 'xfrm' on Linux >= 6.10",
      );
    }
    if (protocol !== 'esp') throw typeError('natt', 'absent unless protocol is esp', n);
    if (n.type === 'espintcp') {
      throw new NattUnsupportedError(
        "PF_KEY has no ESP-in-TCP encapsulation (natt.type 'espintcp', RFC 9329): on Linux use backend 'xfrm' " +
          '(TCP_ENCAP_ESPINTCP, where the kernel has CONFIG_INET_ESPINTCP), elsewhere the userland engine over connectNattTcp / listenNattTcp',
      );
    }
    const t = NATT_TYPE[n.type as keyof typeof NATT_TYPE];
    if (t === undefined) throw rangeError('natt.type', "'espinudp' or 'espinudp-non-ike'", n.type);
    exts.push({ name: 'nattType', type: t });
    for (const [name, port] of [['nattSport', n.sport], ['nattDport', n.dport]] as const) {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw rangeError(`natt.${name === 'nattSport' ? 'sport' : 'dport'}`, 'a port 1..65535', port);
      exts.push({ name, port });
    }
    if (n.oa?.initiator !== undefined || n.oa?.responder !== undefined) {
      if (d.extensions[23] === 'nattOa') {
        // Linux has one NAT-OA extension (and ignores it when building the SA).
        exts.push(addressExt('nattOa', (n.oa.initiator ?? n.oa.responder) as Address, 'natt.oa'));
      } else {
        if (n.oa.initiator !== undefined) exts.push(addressExt('nattOai', n.oa.initiator, 'natt.oa.initiator'));
        if (n.oa.responder !== undefined) exts.push(addressExt('nattOar', n.oa.responder, 'natt.oa.responder'));
      }
    }
  }
  return { type, satype, seq, pid, extensions: exts };
}

const STATES: SaState[] = ['larval', 'mature', 'dying', 'dead'];

/** The SA a kernel message describes (GET/DUMP replies, ADD/UPDATE broadcasts, EXPIRE). Keys stay as given. */
export function messageToSa(msg: PfKeyMessage, d: Dialect): SecurityAssociation {
  const s = need(findExt(msg, 'sa'), 'SA extension', msg);
  const src = need(addressOf(findExt(msg, 'src')), 'source address', msg);
  const dst = need(addressOf(findExt(msg, 'dst')), 'destination address', msg);
  const protocol = protocolOfSatype(msg.satype ?? 0) ?? 'esp';
  const sa: SecurityAssociation = { src: src.address, dst: dst.address, spi: s.spi, protocol, replayWindow: s.replay, state: STATES[s.state] ?? 'dead' };
  const sa2 = findExt(msg, 'sa2');
  sa.mode = sa2 ? modeName(sa2.mode) : 'transport';
  if (sa2?.reqid) sa.reqid = sa2.reqid;
  if (d.esnFlag && s.flags & d.esnFlag) sa.esn = true;
  const ke = findExt(msg, 'keyEncrypt');
  const ka = findExt(msg, 'keyAuth');
  if (protocol === 'ipcomp') {
    const c = reverse(d.algorithms.compress, s.encrypt);
    if (c) sa.compression = { algorithm: c as 'deflate' };
  } else {
    const enc = encryptName(d, s.encrypt);
    const aead = AEADS.has(enc);
    if (protocol === 'esp') sa.encryption = { algorithm: enc as 'aes-cbc', key: ke?.key ?? new Uint8Array(0) };
    if (!aead && s.auth !== 0) sa.integrity = { algorithm: authName(d, s.auth) as 'hmac-sha1-96', key: ka?.key ?? new Uint8Array(0) };
  }
  const nt = findExt(msg, 'nattType');
  if (nt) {
    sa.natt = {
      type: nt.type === 1 ? 'espinudp-non-ike' : 'espinudp',
      sport: findExt(msg, 'nattSport')?.port ?? 0,
      dport: findExt(msg, 'nattDport')?.port ?? 0,
    };
    const oai = addressOf(findExt(msg, 'nattOa') ?? findExt(msg, 'nattOai'));
    const oar = addressOf(findExt(msg, 'nattOar'));
    if (oai || oar) sa.natt.oa = { ...(oai && { initiator: oai.address }), ...(oar && { responder: oar.address }) };
  }
  const hard = findExt(msg, 'lifetimeHard');
  const soft = findExt(msg, 'lifetimeSoft');
  if (hard || soft) sa.lifetime = { ...(hard && { hard: lifetimeOf(hard) }), ...(soft && { soft: lifetimeOf(soft) }) };
  const cur = findExt(msg, 'lifetimeCurrent');
  if (cur) sa.current = currentOf(cur);
  if (msg.seq) sa.seq = msg.seq;
  return sa;
}

/** SADB_GET / SADB_DELETE for one SA. */
export function saIdToMessage(id: SaId, type: number, seq: number, pid: number): PfKeyMessage {
  if (id === null || typeof id !== 'object') throw typeError('id', 'an object { src, dst, spi }', id);
  if (!Number.isInteger(id.spi) || id.spi < 0 || id.spi > 0xffffffff) throw rangeError('spi', 'an integer 0..2^32-1', id.spi);
  return {
    type,
    satype: satypeOf(id.protocol ?? 'esp'),
    seq,
    pid,
    extensions: [{ name: 'sa', spi: id.spi, replay: 0, state: 0, auth: 0, encrypt: 0, flags: 0 }, addressExt('src', id.src, 'src'), addressExt('dst', id.dst, 'dst')],
  };
}

/** SADB_GETSPI. */
export function getSpiToMessage(req: GetSpiRequest, seq: number, pid: number): PfKeyMessage {
  if (req === null || typeof req !== 'object') throw typeError('request', 'an object { src, dst, min?, max? }', req);
  const min = req.min ?? 0x100;
  const max = req.max ?? 0x0fffffff;
  for (const [k, v] of [['min', min], ['max', max]] as const)
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw rangeError(k, 'an integer 0..2^32-1', v);
  if (min > max) throw rangeError('min', `at most max (${max})`, min);
  return {
    type: SADB.GETSPI,
    satype: satypeOf(req.protocol ?? 'esp'),
    seq,
    pid,
    extensions: [
      { name: 'sa2', mode: modeNumber(req.mode ?? 'any', 'mode'), sequence: 0, reqid: req.reqid ?? 0 },
      addressExt('src', req.src, 'src'),
      addressExt('dst', req.dst, 'dst'),
      { name: 'spirange', min, max },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Policies

const DIR_OF: Record<PolicyDirection, number> = { in: IPSEC_DIR.INBOUND, out: IPSEC_DIR.OUTBOUND, fwd: IPSEC_DIR.FWD };
const LEVEL_OF = { default: IPSEC_LEVEL.DEFAULT, use: IPSEC_LEVEL.USE, require: IPSEC_LEVEL.REQUIRE, unique: IPSEC_LEVEL.UNIQUE } as const;
const ACTION_OF = { discard: IPSEC_POLICY.DISCARD, none: IPSEC_POLICY.NONE, ipsec: IPSEC_POLICY.IPSEC } as const;

function dirNumber(dir: PolicyDirection, d: Dialect): number {
  const n = DIR_OF[dir];
  if (n === undefined) throw rangeError('direction', "'in', 'out' or 'fwd'", dir);
  if (dir === 'fwd' && d.name !== 'linux') throw rangeError('direction', `'in' or 'out' (${d.name} has no forward policies)`, dir);
  return n;
}

function selectorExts(sel: TrafficSelector): [AddressExt, AddressExt] {
  if (sel === null || typeof sel !== 'object') throw typeError('selector', 'an object { src, dst }', sel);
  const s = parsePrefix(sel.src, 'selector.src');
  const t = parsePrefix(sel.dst, 'selector.dst');
  if (s.family !== t.family) throw rangeError('selector.dst', `an IPv${s.family} prefix like selector.src`, sel.dst);
  const proto = sel.proto ?? IPSEC_ULPROTO_ANY;
  if (!Number.isInteger(proto) || proto < 0 || proto > 255) throw rangeError('selector.proto', 'an integer 0..255', proto);
  const len = s.family === 4 ? 4 : 16;
  return [
    addressExt('src', bytesToAddress(s.bytes, 0, len), 'selector.src', sel.sport ?? 0, proto, s.bits),
    addressExt('dst', bytesToAddress(t.bytes, 0, len), 'selector.dst', sel.dport ?? 0, proto, t.bits),
  ];
}

function policyExt(p: Partial<SecurityPolicy> & Pick<SecurityPolicy, 'direction'>, d: Dialect): PfKeyExtension {
  const action = p.action ?? 'ipsec';
  const policyType = ACTION_OF[action];
  if (policyType === undefined) throw rangeError('action', "'ipsec', 'none' or 'discard'", action);
  const id = p.id ?? 0;
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw rangeError('id', 'an integer 0..2^32-1', id);
  const priority = d.name === 'netbsd' ? 0 : p.priority ?? 0;
  if (!Number.isInteger(priority) || priority < 0 || priority > 0xffffffff) throw rangeError('priority', 'an integer 0..2^32-1', priority);
  const requests = (action === 'ipsec' ? p.templates ?? [] : []).map((t: PolicyTemplate, i) => {
    const o = `templates[${i}]`;
    const proto = IPPROTO_OF[t.protocol];
    if (proto === undefined) throw rangeError(`${o}.protocol`, "'esp', 'ah' or 'ipcomp'", t.protocol);
    if (t.mode !== 'transport' && t.mode !== 'tunnel') throw rangeError(`${o}.mode`, "'transport' or 'tunnel'", t.mode);
    const level = LEVEL_OF[t.level ?? (t.reqid ? 'unique' : 'require')];
    if (level === undefined) throw rangeError(`${o}.level`, "'default', 'use', 'require' or 'unique'", t.level);
    const reqid = t.reqid ?? 0;
    const maxReqid = d.ipsecRequestSize === 16 ? 0xffffffff : 0xffff;
    if (!Number.isInteger(reqid) || reqid < 0 || reqid > maxReqid) throw rangeError(`${o}.reqid`, `an integer 0..${maxReqid} on ${d.name}`, reqid);
    if (t.mode === 'tunnel' && (t.src === undefined || t.dst === undefined)) throw typeError(`${o}.src`, 'tunnel endpoints src and dst in tunnel mode', t.src);
    return {
      proto,
      mode: modeNumber(t.mode, `${o}.mode`),
      level,
      reqid,
      ...(t.mode === 'tunnel' && { tunnel: { src: sockaddr(t.src as Address, 0, `${o}.src`), dst: sockaddr(t.dst as Address, 0, `${o}.dst`) } }),
    };
  });
  return { name: 'policy', policyType, dir: dirNumber(p.direction, d), id, priority, requests };
}

/** SPDADD / SPDUPDATE / SPDDELETE (by selector) message. */
export function policyToMessage(p: SecurityPolicy | Pick<SecurityPolicy, 'selector' | 'direction'>, type: number, d: Dialect, seq: number, pid: number): PfKeyMessage {
  if (p === null || typeof p !== 'object') throw typeError('policy', 'a SecurityPolicy object', p);
  const [src, dst] = selectorExts(p.selector);
  return { type, satype: SATYPE.UNSPEC, seq, pid, extensions: [src, dst, policyExt(p, d)] };
}

/** SPDGET / SPDDELETE2 by policy id. */
export function policyIdToMessage(id: number, type: number, seq: number, pid: number): PfKeyMessage {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw rangeError('id', 'an integer 0..2^32-1', id);
  return { type, satype: SATYPE.UNSPEC, seq, pid, extensions: [{ name: 'policy', policyType: 0, dir: 0, id, priority: 0, requests: [] }] };
}

function selectorOf(msg: PfKeyMessage): TrafficSelector {
  const s = need(findExt(msg, 'src'), 'source selector', msg);
  const t = need(findExt(msg, 'dst'), 'destination selector', msg);
  if (s.addr.family === 'raw' || t.addr.family === 'raw') throw new NattUnsupportedError('a policy selector with an unknown address family');
  const sel: TrafficSelector = { src: `${s.addr.address}/${s.prefixlen}`, dst: `${t.addr.address}/${t.prefixlen}` };
  if (s.proto !== IPSEC_ULPROTO_ANY && s.proto !== 0) sel.proto = s.proto;
  if (s.addr.port) sel.sport = s.addr.port;
  if (t.addr.port) sel.dport = t.addr.port;
  return sel;
}

function directionOf(n: number): PolicyDirection {
  return n === IPSEC_DIR.INBOUND ? 'in' : n === IPSEC_DIR.FWD ? 'fwd' : 'out';
}

/** The policy an SPD message describes (SPDADD/SPDGET/SPDDUMP replies). */
export function messageToPolicy(msg: PfKeyMessage): SecurityPolicy {
  const pe = need(findExt(msg, 'policy'), 'policy extension', msg);
  const action = pe.policyType === IPSEC_POLICY.IPSEC ? 'ipsec' : pe.policyType === IPSEC_POLICY.DISCARD ? 'discard' : 'none';
  const levels = ['default', 'use', 'require', 'unique'] as const;
  const p: SecurityPolicy = { selector: selectorOf(msg), direction: directionOf(pe.dir), action, id: pe.id };
  if (pe.priority) p.priority = pe.priority;
  if (action === 'ipsec')
    p.templates = pe.requests.map((r) => {
      const t: PolicyTemplate = { protocol: protocolOfIpproto(r.proto), mode: r.mode === IPSEC_MODE.TUNNEL ? 'tunnel' : 'transport', level: levels[r.level] ?? 'default' };
      if (r.reqid) t.reqid = r.reqid;
      if (r.tunnel && r.tunnel.src.family !== 'raw' && r.tunnel.dst.family !== 'raw') {
        t.src = r.tunnel.src.address;
        t.dst = r.tunnel.dst.address;
      }
      return t;
    });
  const cur = findExt(msg, 'lifetimeCurrent');
  if (cur) p.current = currentOf(cur);
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel-originated messages

export function messageToAcquire(msg: PfKeyMessage): AcquireEvent {
  const src = need(addressOf(findExt(msg, 'src')), 'source address', msg);
  const dst = need(addressOf(findExt(msg, 'dst')), 'destination address', msg);
  const ev: AcquireEvent = { seq: msg.seq ?? 0, src: src.address, dst: dst.address, protocol: protocolOfSatype(msg.satype ?? 0) ?? 'esp' };
  const pe = findExt(msg, 'policy');
  if (pe) ev.policy = { id: pe.id, direction: directionOf(pe.dir) };
  return ev;
}

/**
 * SADB_X_NAT_T_NEW_MAPPING, normalised: Linux sends the OLD peer address/port in ADDRESS_SRC/NAT_T_SPORT and the NEW
 * ones in ADDRESS_DST/NAT_T_DPORT. The message carries neither the SA's own destination nor its reqid: `sa.dst` is ''
 * here, and PfKey fills it (and reqid) from the SA database before emitting 'newMapping'.
 */
export function messageToNewMapping(msg: PfKeyMessage): NewMappingEvent {
  const s = need(findExt(msg, 'sa'), 'SA extension', msg);
  const oldA = need(addressOf(findExt(msg, 'src')), 'old address', msg);
  const newA = need(addressOf(findExt(msg, 'dst')), 'new address', msg);
  return {
    sa: { src: oldA.address, dst: '', spi: s.spi, protocol: protocolOfSatype(msg.satype ?? 0) ?? 'esp' },
    old: { address: oldA.address, port: findExt(msg, 'nattSport')?.port ?? oldA.port },
    new: { address: newA.address, port: findExt(msg, 'nattDport')?.port ?? newA.port },
  };
}

/** SADB_REGISTER's answer. */
export function messageToSupported(msg: PfKeyMessage, d: Dialect): SupportedAlgorithms {
  const out: SupportedAlgorithms = { protocol: protocolOfSatype(msg.satype ?? 0) ?? 'esp', encryption: [], integrity: [] };
  for (const a of findExt(msg, 'supportedEncrypt')?.algs ?? [])
    out.encryption.push({ algorithm: encryptName(d, a.id), id: a.id, minBits: a.minbits, maxBits: a.maxbits, ivBits: a.ivlen * 8 });
  for (const a of findExt(msg, 'supportedAuth')?.algs ?? []) out.integrity.push({ algorithm: authName(d, a.id), id: a.id, minBits: a.minbits, maxBits: a.maxbits });
  return out;
}

/** SaId of an SA message (for 'delete' events). */
export function messageToSaId(msg: PfKeyMessage): SaId {
  const s = need(findExt(msg, 'sa'), 'SA extension', msg);
  return {
    src: need(addressOf(findExt(msg, 'src')), 'source address', msg).address,
    dst: need(addressOf(findExt(msg, 'dst')), 'destination address', msg).address,
    spi: s.spi,
    protocol: protocolOfSatype(msg.satype ?? 0) ?? 'esp',
  };
}
