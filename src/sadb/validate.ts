// The model's boundary: every SA, SA id, selector, policy and request a caller hands any backend is checked here, once.
//
// Each check reads own properties only (a field that Object.prototype supplies is never seen), refuses unknown field
// names, names the field in every TypeError/RangeError (`natt.sport`, `lifetime.hard.addSeconds`), and returns a fresh
// plain object holding only the fields it checked, so a backend never sees the caller's object again (nor a getter,
// a Proxy, or a value that changes after the check). Key bytes are never printed: errors describe them by shape.

import { rangeError, typeError } from '../errors';
import { arrayOption, boolOption, durationSeconds, intOption, oneOf, readOptions, stringOption } from '../core/options';
import { addressFamily } from '../ip/address';
import { checkKey, encryptionInfo } from './algorithms';
import { heldKey } from './keys';
import type {
  Address,
  CompressionAlgorithm,
  EncryptionAlgorithm,
  GetSpiRequest,
  IntegrityAlgorithm,
  IpsecProtocol,
  Lifetime,
  PolicyDirection,
  PolicyTemplate,
  SaId,
  SaNatt,
  SaNattType,
  SecurityAssociation,
  SecurityPolicy,
  TrafficSelector,
} from './types';

export const PROTOCOLS: readonly IpsecProtocol[] = ['esp', 'ah', 'ipcomp'];
/** Every `natt.type`: ESP in UDP (RFC 3948 and the non-IKE draft) and ESP in TCP (RFC 9329). */
export const NATT_TYPES: readonly SaNattType[] = ['espinudp', 'espinudp-non-ike', 'espintcp'];
export const DIRECTIONS: readonly PolicyDirection[] = ['in', 'out', 'fwd'];
const U32 = 0xffff_ffff;

const field = (parent: string, name: string): string => (parent ? `${parent}.${name}` : name);

/** An IP address in text form (IPv4 or IPv6). */
export function checkAddress(v: unknown, name: string): Address {
  if (typeof v !== 'string') throw typeError(name, 'an IPv4 or IPv6 address string', v);
  if (addressFamily(v) === 0) throw typeError(name, 'an IPv4 or IPv6 address string', v);
  return v;
}

/** A prefix in text form: an address, or address/bits within the family's length. */
export function checkPrefix(v: unknown, name: string): string {
  if (typeof v !== 'string') throw typeError(name, "a prefix string like '10.0.0.0/24' or an address", v);
  const slash = v.indexOf('/');
  const addr = slash < 0 ? v : v.slice(0, slash);
  const fam = addressFamily(addr);
  if (fam === 0) throw typeError(name, "a prefix string like '10.0.0.0/24' or an address", v);
  if (slash >= 0) {
    const bits = v.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > (fam === 4 ? 32 : 128)) throw rangeError(name, `a prefix length from 0 to ${fam === 4 ? 32 : 128}`, v);
  }
  return v;
}

export function checkProtocol(v: unknown, name = 'protocol'): IpsecProtocol {
  return oneOf(v, name, PROTOCOLS, 'esp');
}

export function checkSpi(v: unknown, name = 'spi'): number {
  return intOption(v, name, 1, U32);
}

/** A traffic selector; src and dst of one family. */
export function checkSelector(v: unknown, name = 'selector'): TrafficSelector {
  const o = readOptions(v, ['src', 'dst', 'proto', 'sport', 'dport'] as const, name);
  if (v === undefined) throw typeError(name, 'an object { src, dst, proto?, sport?, dport? }', v);
  const src = checkPrefix(o.src, field(name, 'src'));
  const dst = checkPrefix(o.dst, field(name, 'dst'));
  if (addressFamily(src.split('/')[0]) !== addressFamily(dst.split('/')[0])) {
    throw typeError(field(name, 'dst'), `a prefix of the same family as ${field(name, 'src')}`, o.dst);
  }
  const out: TrafficSelector = { src, dst };
  if (o.proto !== undefined) out.proto = intOption(o.proto, field(name, 'proto'), 0, 255);
  if (o.sport !== undefined) out.sport = intOption(o.sport, field(name, 'sport'), 0, 65535);
  if (o.dport !== undefined) out.dport = intOption(o.dport, field(name, 'dport'), 0, 65535);
  return out;
}

function checkLifetime(v: unknown, name: string): Lifetime {
  const o = readOptions(v, ['bytes', 'packets', 'addSeconds', 'useSeconds'] as const, name);
  const out: Lifetime = {};
  if (o.bytes !== undefined) out.bytes = intOption(o.bytes, field(name, 'bytes'), 0, Number.MAX_SAFE_INTEGER);
  if (o.packets !== undefined) out.packets = intOption(o.packets, field(name, 'packets'), 0, Number.MAX_SAFE_INTEGER);
  if (o.addSeconds !== undefined) out.addSeconds = durationSeconds(o.addSeconds, field(name, 'addSeconds'));
  if (o.useSeconds !== undefined) out.useSeconds = durationSeconds(o.useSeconds, field(name, 'useSeconds'));
  return out;
}

function checkNatt(v: unknown, name: string): SaNatt {
  const o = readOptions(v, ['type', 'sport', 'dport', 'oa', 'keepaliveInterval'] as const, name);
  const out: SaNatt = {
    type: oneOf(o.type, field(name, 'type'), NATT_TYPES),
    sport: intOption(o.sport, field(name, 'sport'), 1, 65535),
    dport: intOption(o.dport, field(name, 'dport'), 1, 65535),
  };
  if (o.oa !== undefined) {
    const oa = readOptions(o.oa, ['initiator', 'responder'] as const, field(name, 'oa'));
    out.oa = {};
    if (oa.initiator !== undefined) out.oa.initiator = checkAddress(oa.initiator, field(name, 'oa.initiator'));
    if (oa.responder !== undefined) out.oa.responder = checkAddress(oa.responder, field(name, 'oa.responder'));
  }
  if (o.keepaliveInterval !== undefined) {
    const ka = intOption(o.keepaliveInterval, field(name, 'keepaliveInterval'), 0, U32);
    // RFC 9329 §6.6: NAT-keepalives SHOULD NOT be sent over TCP (its mappings outlive UDP's; liveness is IKE's job).
    if (ka !== 0 && out.type === 'espintcp') {
      throw rangeError(field(name, 'keepaliveInterval'), `0 or absent with ${field(name, 'type')} 'espintcp' (RFC 9329 §6.6: no NAT-keepalives over TCP)`, ka);
    }
    out.keepaliveInterval = ka;
  }
  return out;
}

function checkAlg<A extends string>(v: unknown, name: string, extra: 'key' | 'none'): { algorithm: A; key?: Uint8Array } {
  const o = readOptions(v, extra === 'key' ? (['algorithm', 'key'] as const) : (['algorithm'] as const), name);
  if (v === undefined || v === null) throw typeError(name, 'an object { algorithm, key }', v);
  const algorithm = stringOption(o.algorithm, field(name, 'algorithm')) as A;
  // An SA natt handed out (get/dump) holds its key in a holder, not as an own property: read it from there.
  const key = heldKey(v) ?? (o as { key?: unknown }).key;
  return extra === 'key' ? { algorithm, key: key as Uint8Array | undefined } : { algorithm };
}

/** Every field of SecurityAssociation (read-back only ones included: they are accepted and dropped). */
const SA_FIELDS = [
  'src',
  'dst',
  'spi',
  'protocol',
  'mode',
  'reqid',
  'replayWindow',
  'esn',
  'encryption',
  'integrity',
  'allowNoIntegrity',
  'compression',
  'natt',
  'lifetime',
  'selector',
  'current',
  'state',
  'seq',
] as const;

/**
 * A whole SA, as add/update take it. ESP needs `encryption` (algorithm 'null' for none), and encryption without
 * integrity (a non-AEAD cipher with no `integrity` or 'none') is refused naming `integrity` unless the SA says
 * `allowNoIntegrity: true` (RFC 4303 §3.2 allows it but it leaves the SA open to forgery). NULL with no integrity is
 * refused always (RFC 4303 §5). AH needs integrity and no encryption.
 */
export function checkSa(v: unknown, name = 'sa'): SecurityAssociation {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError(name, 'an object { src, dst, spi, ... }', v);
  const o = readOptions(v, SA_FIELDS, name === 'sa' ? 'options' : name);
  const src = checkAddress(o.src, 'src');
  const dst = checkAddress(o.dst, 'dst');
  if (addressFamily(src) !== addressFamily(dst)) throw typeError('dst', `an address of the same family as src`, o.dst);
  const sa: SecurityAssociation = { src, dst, spi: checkSpi(o.spi), protocol: checkProtocol(o.protocol) };
  if (o.mode !== undefined) sa.mode = oneOf(o.mode, 'mode', ['transport', 'tunnel', 'any'] as const);
  if (o.reqid !== undefined) sa.reqid = intOption(o.reqid, 'reqid', 0, U32);
  if (o.replayWindow !== undefined) sa.replayWindow = intOption(o.replayWindow, 'replayWindow', 0, U32);
  if (o.esn !== undefined) sa.esn = boolOption(o.esn, 'esn');
  if (o.seq !== undefined) sa.seq = intOption(o.seq, 'seq', 0, U32);
  const allowNoIntegrity = boolOption(o.allowNoIntegrity, 'allowNoIntegrity', false);
  if (o.allowNoIntegrity !== undefined) sa.allowNoIntegrity = allowNoIntegrity;
  if (o.encryption !== undefined) {
    const e = checkAlg<EncryptionAlgorithm>(o.encryption, 'encryption', 'key');
    sa.encryption = { algorithm: e.algorithm, key: checkKey(e, 'encryption') };
  }
  if (o.integrity !== undefined) {
    const i = checkAlg<IntegrityAlgorithm>(o.integrity, 'integrity', 'key');
    sa.integrity = { algorithm: i.algorithm, key: checkKey(i, 'integrity') };
  }
  if (o.compression !== undefined) {
    sa.compression = { algorithm: checkAlg<CompressionAlgorithm>(o.compression, 'compression', 'none').algorithm };
  }
  if (o.natt !== undefined) sa.natt = checkNatt(o.natt, 'natt');
  if (o.lifetime !== undefined) {
    const l = readOptions(o.lifetime, ['soft', 'hard'] as const, 'lifetime');
    sa.lifetime = {};
    if (l.soft !== undefined) sa.lifetime.soft = checkLifetime(l.soft, 'lifetime.soft');
    if (l.hard !== undefined) sa.lifetime.hard = checkLifetime(l.hard, 'lifetime.hard');
  }
  if (o.selector !== undefined) sa.selector = checkSelector(o.selector, 'selector');
  checkIntegrityRule(sa, allowNoIntegrity);
  return sa;
}

/** D5: ESP must be authenticated unless the caller says otherwise; AH must have integrity. */
function checkIntegrityRule(sa: SecurityAssociation, allowNoIntegrity: boolean): void {
  const integ = sa.integrity && sa.integrity.algorithm !== 'none' ? sa.integrity : undefined;
  if (sa.protocol === 'ah') {
    if (sa.encryption) throw rangeError('encryption', 'absent for AH (AH only authenticates)', sa.encryption);
    if (!integ) throw typeError('integrity', 'an object { algorithm, key } (AH authenticates)', sa.integrity);
    return;
  }
  if (sa.protocol !== 'esp' || !sa.encryption) return;
  const kind = encryptionInfo(sa.encryption.algorithm)?.kind;
  if (kind === 'aead' || kind === 'gmac') {
    if (integ) throw rangeError('integrity.algorithm', `'none' (or absent) with the combined-mode ${sa.encryption.algorithm}`, integ.algorithm);
    return;
  }
  if (integ) return;
  if (kind === 'null' && !allowNoIntegrity) {
    // RFC 4303 §3.2: NULL encryption with no integrity protects nothing; the kernels install it all the same (setkey's
    // `-E null` without -A), so a caller that says so explicitly (allowNoIntegrity) gets it.
    throw typeError('integrity', 'an HMAC with NULL encryption (RFC 4303 forbids NULL and no integrity; allowNoIntegrity: true installs it anyway)', sa.integrity);
  }
  if (!allowNoIntegrity) {
    throw typeError(
      'integrity',
      `an object { algorithm, key } with ${sa.encryption.algorithm} (encryption without integrity can be forged: ` +
        'set allowNoIntegrity: true on the SA only if something else authenticates the traffic)',
      sa.integrity,
    );
  }
}

/** An SA's identity (get/delete). */
export function checkSaId(v: unknown, name = 'sa'): SaId {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError(name, 'an object { src, dst, spi, protocol? }', v);
  // An SA read back (get/dump) may be passed as its own id: its other fields are accepted and ignored.
  const o = readOptions(v, SA_FIELDS, name === 'sa' ? 'options' : name);
  const id: SaId = { src: checkAddress(o.src, 'src'), dst: checkAddress(o.dst, 'dst'), spi: checkSpi(o.spi), protocol: checkProtocol(o.protocol) };
  if (addressFamily(id.src) !== addressFamily(id.dst)) throw typeError('dst', 'an address of the same family as src', o.dst);
  return id;
}

/** deleteAll's match. */
export function checkSaMatch(v: unknown): { src: Address; dst: Address; protocol: IpsecProtocol } {
  const o = readOptions(v, ['src', 'dst', 'protocol'] as const, 'match');
  if (v === undefined) throw typeError('match', 'an object { src, dst, protocol? }', v);
  const src = checkAddress(o.src, 'src');
  const dst = checkAddress(o.dst, 'dst');
  if (addressFamily(src) !== addressFamily(dst)) throw typeError('dst', 'an address of the same family as src', o.dst);
  return { src, dst, protocol: checkProtocol(o.protocol) };
}

/** getSpi's request. */
export function checkGetSpi(v: unknown): GetSpiRequest & { protocol: IpsecProtocol; min: number; max: number } {
  const o = readOptions(v, ['src', 'dst', 'protocol', 'min', 'max', 'mode', 'reqid', 'seq'] as const, 'request');
  if (v === undefined) throw typeError('request', 'an object { src, dst, min?, max? }', v);
  const src = checkAddress(o.src, 'src');
  const dst = checkAddress(o.dst, 'dst');
  if (addressFamily(src) !== addressFamily(dst)) throw typeError('dst', 'an address of the same family as src', o.dst);
  const min = intOption(o.min, 'min', 1, U32, 0x100);
  const max = intOption(o.max, 'max', 1, U32, U32);
  if (min > max) throw rangeError('min', `at most max (${max})`, min);
  const req: GetSpiRequest & { protocol: IpsecProtocol; min: number; max: number } = { src, dst, protocol: checkProtocol(o.protocol), min, max };
  if (o.mode !== undefined) req.mode = oneOf(o.mode, 'mode', ['transport', 'tunnel', 'any'] as const);
  if (o.reqid !== undefined) req.reqid = intOption(o.reqid, 'reqid', 0, U32);
  if (o.seq !== undefined) req.seq = intOption(o.seq, 'seq', 0, U32);
  return req;
}

function checkTemplate(v: unknown, name: string): PolicyTemplate {
  const o = readOptions(v, ['protocol', 'mode', 'src', 'dst', 'level', 'reqid'] as const, name);
  if (v === undefined) throw typeError(name, 'an object { protocol, mode, src?, dst? }', v);
  const t: PolicyTemplate = {
    protocol: oneOf(o.protocol, field(name, 'protocol'), PROTOCOLS),
    mode: oneOf(o.mode, field(name, 'mode'), ['transport', 'tunnel'] as const),
  };
  if (o.src !== undefined) t.src = checkAddress(o.src, field(name, 'src'));
  if (o.dst !== undefined) t.dst = checkAddress(o.dst, field(name, 'dst'));
  if (t.mode === 'tunnel' && (t.src === undefined || t.dst === undefined)) {
    throw typeError(field(name, t.src === undefined ? 'src' : 'dst'), 'the tunnel endpoint address (tunnel mode needs src and dst)', t.src === undefined ? o.src : o.dst);
  }
  if (t.src !== undefined && t.dst !== undefined && addressFamily(t.src) !== addressFamily(t.dst)) {
    throw typeError(field(name, 'dst'), `an address of the same family as ${field(name, 'src')}`, o.dst);
  }
  if (o.level !== undefined) t.level = oneOf(o.level, field(name, 'level'), ['default', 'use', 'require', 'unique'] as const);
  if (o.reqid !== undefined) t.reqid = intOption(o.reqid, field(name, 'reqid'), 0, U32);
  return t;
}

/** A whole policy (spdAdd/spdUpdate). `ipsec` needs at least one template; the others take none. */
export function checkPolicy(v: unknown, name = 'policy'): SecurityPolicy {
  const o = readOptions(v, ['selector', 'direction', 'action', 'templates', 'priority', 'id', 'current'] as const, name === 'policy' ? 'options' : name);
  if (v === undefined) throw typeError(name, 'an object { selector, direction, action, templates? }', v);
  const p: SecurityPolicy = {
    selector: checkSelector(o.selector, 'selector'),
    direction: oneOf(o.direction, 'direction', DIRECTIONS),
    action: oneOf(o.action, 'action', ['ipsec', 'none', 'discard'] as const),
  };
  if (o.templates !== undefined) {
    p.templates = arrayOption(o.templates, 'templates', 16).map((t, i) => checkTemplate(t, `templates[${i}]`));
  }
  if (p.action === 'ipsec' && !p.templates?.length) throw typeError('templates', "at least one template for action 'ipsec'", o.templates);
  if (o.priority !== undefined) p.priority = intOption(o.priority, 'priority', 0, U32);
  if (o.id !== undefined) p.id = intOption(o.id, 'id', 1, U32);
  return p;
}

/** Which policy (spdGet/spdDelete): `{ id }`, or `{ selector, direction }`. */
export function checkPolicyRef(v: unknown): { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError('policy', 'an object { id } or { selector, direction }', v);
  const o = readOptions(v, ['selector', 'direction', 'action', 'templates', 'priority', 'id', 'current'] as const);
  if (o.id !== undefined && o.selector === undefined) return { id: intOption(o.id, 'id', 1, U32) };
  return { selector: checkSelector(o.selector, 'selector'), direction: oneOf(o.direction, 'direction', DIRECTIONS) };
}

/** An optional protocol argument (flush, dump, register). */
export function checkOptionalProtocol(v: unknown): IpsecProtocol | undefined {
  return v === undefined ? undefined : checkProtocol(v);
}
