// From setkey statements to typed operations on the shared model: addresses, keys, algorithms, selectors, policies.

import type {
  Address,
  GetSpiRequest,
  IpsecProtocol,
  PolicyDirection,
  PolicyTemplate,
  SaId,
  SecurityAssociation,
  SecurityPolicy,
  TrafficSelector,
} from '../sadb/types';
import { encryptionInfo } from '../sadb/algorithms';
import { ENCRYPTION_KEY_BYTES, INTEGRITY_KEY_BYTES, checkKey } from '../sadb/algorithms';
import { hideSaKeys } from '../sadb/keys';
import { addressFamily, addressToBytes, bytesToAddress } from '../ip/address';
import { SetkeyParseError, describeText, type SourcePos, type UnsupportedFeature } from './errors';
import type { Token } from './lexer';
import {
  AEADS,
  IPPROTO_GRE,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_MH,
  ULPROTO_ANY,
  compressionName,
  encryptionName,
  integrityModel,
  integrityName,
  upperProtocolNumber,
  type AlgorithmName,
} from './names';
import type { AddrFlags, AlgorithmSpec, HostPort, PortSpec, SaProtocolWord, SaStatement, SelectorEnd, SpdStatement, Statement } from './parser';
import { PRIORITY_DEFAULT, type PolicyRule, type RuleAddress } from './policy';
import type { PlatformCaps } from './platform';

interface OpBase {
  /** Where the statement starts. */
  at: SourcePos;
  /** What natt did differently from setkey here, or ignored, in words (shown by `natt setkey -n` and `-v`). */
  notes?: string[];
}

/** One operation a setkey file asks for, on the shared model. */
export type SetkeyOp =
  | (OpBase & { op: 'add' | 'update'; sa: SecurityAssociation })
  | (OpBase & { op: 'getspi'; request: GetSpiRequest })
  | (OpBase & { op: 'get' | 'delete'; id: SaId })
  | (OpBase & { op: 'deleteall'; match: { src: Address; dst: Address; protocol: IpsecProtocol } })
  | (OpBase & { op: 'flush' | 'dump'; protocol?: IpsecProtocol })
  | (OpBase & { op: 'spdadd' | 'spdupdate'; policy: SecurityPolicy; implicit?: boolean })
  | (OpBase & { op: 'spddelete'; selector: TrafficSelector; direction: PolicyDirection; implicit?: boolean })
  | (OpBase & { op: 'spdflush' | 'spddump' | 'exit' });

export interface LowerContext {
  caps: PlatformCaps;
  semantics: 'rfc' | 'kernel';
  /** A family every address must have unless a statement says -4/-6 itself. */
  family?: 4 | 6;
  /** Things natt cannot do, collected in file order (the caller throws them once the whole file read cleanly). */
  unsupported: UnsupportedFeature[];
}

const NATT_PORT = 4500;

function parseError(at: SourcePos, reason: string, expected = '', found = ''): SetkeyParseError {
  return new SetkeyParseError(at, reason, expected, found);
}

function unsupported(ctx: LowerContext, at: SourcePos, feature: string, reason: string): void {
  ctx.unsupported.push({ at, feature, reason });
}

/** Statement → operations (usually one; RFC semantics add a fwd twin to an `in` policy). */
export function lowerStatement(s: Statement, ctx: LowerContext): SetkeyOp[] {
  switch (s.kind) {
    case 'sa':
      return [lowerSa(s, ctx)];
    case 'deleteall': {
      const fam = s.flags.family ?? ctx.family;
      const src = address(s.src, fam, ctx, 'source');
      const dst = address(s.dst, fam, ctx, 'destination');
      sameFamily(src, dst, s.dst.at);
      return [{ op: 'deleteall', at: s.at, match: { src, dst, protocol: saProtocol(s.protocol, s.protocolAt, ctx) } }];
    }
    case 'flush':
    case 'dump':
      return [{ op: s.kind, at: s.at, ...(s.protocol && { protocol: saProtocol(s.protocol, s.protocolAt as SourcePos, ctx) }) }];
    case 'spd':
      return lowerSpd(s, ctx);
    case 'tagged':
      unsupported(ctx, s.at, 'tagged', 'tagged policies (spdadd tagged "name", PF packet tags) are not supported by natt: write the selector');
      return [];
    case 'spdflush':
    case 'spddump':
    case 'exit':
      return [{ op: s.kind, at: s.at }];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Addresses

/** A numeric address in canonical form (RFC 5952 for IPv6; an IPv6 zone kept), or a collected "unsupported". */
function address(t: Token, family: 4 | 6 | undefined, ctx: LowerContext, what: string): Address {
  const text = t.text;
  const zone = text.indexOf('%');
  const bare = zone >= 0 ? text.slice(0, zone) : text;
  const fam = addressFamily(bare);
  if (fam === 0 || (zone >= 0 && fam !== 6)) {
    if (/^[0-9.]+$/.test(text)) throw parseError(t.at, `${describeText('word', text)} is not an IPv4 address (four decimal numbers 0..255)`, `the ${what} address`, describeText('word', text));
    if (/^[0-9a-fA-F:.%]+$/.test(text) && text.includes(':')) {
      throw parseError(t.at, `${describeText('word', text)} is not an IPv6 address`, `the ${what} address`, describeText('word', text));
    }
    unsupported(
      ctx,
      t.at,
      'host names',
      `host names are not resolved (setkey would look up ${describeText('word', text)} in DNS): write the numeric address (natt reads every file as setkey -n does)`,
    );
    return family === 6 ? '::' : '0.0.0.0';
  }
  if (family !== undefined && fam !== family) {
    throw parseError(t.at, `${describeText('word', text)} is an IPv${fam} address, but -${family} asks for IPv${family} only`, `an IPv${family} address`, describeText('word', text));
  }
  const b = addressToBytes(bare, what);
  return bytesToAddress(b, 0, b.length === 4 ? 4 : 16) + (zone >= 0 ? text.slice(zone) : '');
}

function sameFamily(a: string, b: string, at: SourcePos): void {
  if (addressFamily(a.split('%')[0]) !== addressFamily(b.split('%')[0])) {
    throw parseError(at, 'the source and destination addresses are of different families (one IPv4, one IPv6)', 'an address of the same family');
  }
}

/** A [port]: 0 for any. */
function portNumber(p: PortSpec | undefined, ctx: LowerContext): number {
  if (!p || p.kind === 'any') return 0;
  if (p.kind === 'name') {
    if (/^\d+-\d+$/.test(p.text)) {
      throw parseError(p.at, `port ranges (${p.text}) do not exist in setkey or PF_KEY: give one port, or any`, 'a port number or any', describeText('word', p.text));
    }
    unsupported(ctx, p.at, 'service names', `service names in [port] (${describeText('word', p.text)}) are not supported by natt: write the port number`);
    return 0;
  }
  const n = Number(p.text);
  if (n > 65535) throw parseError(p.at, `port ${p.text} is out of range 0..65535`, 'a port 0..65535', p.text);
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Security associations

function saProtocol(word: SaProtocolWord, at: SourcePos, ctx: LowerContext): IpsecProtocol {
  switch (word) {
    case 'esp':
    case 'esp-udp':
      return 'esp';
    case 'ah':
      return 'ah';
    case 'ipcomp':
      return 'ipcomp';
    case 'esp-old':
      unsupported(ctx, at, 'esp-old', 'esp-old (RFC 1827 ESP) is not supported by natt on any backend: use esp (RFC 4303)');
      return 'esp';
    case 'ah-old':
      unsupported(ctx, at, 'ah-old', 'ah-old (RFC 1826 AH) is not supported by natt on any backend: use ah (RFC 4302)');
      return 'ah';
    case 'tcp':
      unsupported(ctx, at, 'tcp', 'tcp SAs (TCP-MD5 signatures, RFC 2385) are not IPsec and not supported by natt: set TCP_MD5SIG on the socket');
      return 'esp';
  }
}

function decimalValue(t: { value: string; valueAt: SourcePos }, max: number, what: string): number {
  const n = Number(t.value);
  if (!(n <= max)) throw parseError(t.valueAt, `${what} ${t.value} is too big (at most ${max})`, `${what} up to ${max}`, t.value);
  return n;
}

function spiValue(t: Token, command: string): number {
  const n = t.kind === 'hex' ? parseInt(t.text.slice(2), 16) : Number(t.text);
  if (!(n <= 0xffff_ffff)) throw parseError(t.at, 'SPI too big: an SPI is 32 bits (at most 0xffffffff)', 'an SPI up to 0xffffffff', t.text.length > 20 ? `${t.text.slice(0, 20)}...` : t.text);
  if (n === 0 && command !== 'getspi') throw parseError(t.at, 'SPI 0 is not an SA\'s SPI (only getspi takes 0: "let the kernel pick")', 'an SPI from 1', t.text);
  return n;
}

/** A key token's bytes: a quoted string as its UTF-8 bytes, hex digits with an odd first digit as its own byte. */
function keyBytes(t: Token): Uint8Array {
  if (t.kind === 'quoted') return new Uint8Array(Buffer.from(t.text, 'utf8'));
  const digits = t.text.slice(2);
  const odd = digits.length % 2;
  const out = new Uint8Array(odd + (digits.length - odd) / 2);
  if (odd) out[0] = parseInt(digits[0], 16);
  for (let i = odd, j = odd; i < digits.length; i += 2, j++) out[j] = parseInt(digits.slice(i, i + 2), 16);
  return out;
}

function checkKeyLength(spec: AlgorithmSpec, known: AlgorithmName, model: string, key: Uint8Array, option: 'encryption' | 'integrity'): void {
  const at = spec.key?.at ?? spec.name.at;
  const bad = (allowed: string): never => {
    throw parseError(at, `the key for ${spec.name.text} must be ${allowed}, got ${key.length} byte${key.length === 1 ? '' : 's'}`, `a key of ${allowed}`, `a key of ${key.length} bytes`);
  };
  const table: Record<string, readonly number[]> = option === 'encryption' ? ENCRYPTION_KEY_BYTES : INTEGRITY_KEY_BYTES;
  if (Object.prototype.hasOwnProperty.call(table, model)) {
    try {
      checkKey({ algorithm: model, key }, option);
    } catch {
      const salt = /gcm|gmac|chacha|ctr/.test(model) ? ' (the key and then a 4-byte salt/nonce)' : '';
      bad(`${table[model].join(', ')} bytes${salt}`);
    }
    return;
  }
  if (known.keyBytes) {
    const [min, max] = known.keyBytes;
    if (key.length < min || key.length > max) bad(min === max ? `${min} bytes` : `${min} to ${max} bytes`);
  }
}

function lowerAlgorithms(s: SaStatement, sa: SecurityAssociation, ctx: LowerContext, notes: string[]): void {
  const [first, second] = s.algorithms;
  const protocol = sa.protocol;
  if (s.protocol === 'tcp') return; // a TCP-MD5 SA: already reported as unsupported, its -A tcp-md5 with it
  const opt = (a: AlgorithmSpec): string => `${a.option} ${a.name.text}`;
  if (protocol === 'esp' && first.option !== '-E') {
    throw parseError(first.at, `ESP needs -E first (for authentication only write -E null ${first.option === '-A' ? opt(first) : '-A ...'})`, '-E', first.option);
  }
  if (protocol === 'ah' && first.option !== '-A') {
    throw parseError(first.at, 'AH only authenticates: it takes -A (an authentication algorithm and key), no -E or -C', '-A', first.option);
  }
  if (protocol === 'ipcomp' && first.option !== '-C') throw parseError(first.at, 'IPComp takes -C (deflate, lzs or oui), no -E or -A', '-C', first.option);
  for (const a of s.algorithms) {
    if (a.option === '-E') {
      const known = encryptionName(a.name.text) as AlgorithmName;
      if (known.unsupported) unsupported(ctx, a.name.at, a.name.text, known.unsupported);
      if (known.note) notes.push(known.note);
      const key = a.key ? keyBytes(a.key) : new Uint8Array(0);
      if (!known.unsupported) {
        checkKeyLength(a, known, known.model, key, 'encryption');
        if (protocol === 'esp' && !ctx.caps.encryption.has(known.model)) unsupported(ctx, a.name.at, known.model, encryptionAdvice(known.model, ctx.caps));
      }
      sa.encryption = { algorithm: known.model as 'aes-cbc', key };
      if (AEADS.has(known.model) && second) {
        throw parseError(second.at, `${a.name.text} is an AEAD: it authenticates itself and takes no -A`, "';'", second.option);
      }
    } else if (a.option === '-A') {
      const known = integrityName(a.name.text) as AlgorithmName;
      if (known.unsupported) unsupported(ctx, a.name.at, a.name.text, known.unsupported);
      const model = integrityModel(known, ctx.caps.linuxPfkey);
      const key = a.key ? keyBytes(a.key) : new Uint8Array(0);
      if (!known.unsupported) {
        checkKeyLength(a, known, model, key, 'integrity');
        const allowed = protocol === 'ah' ? ctx.caps.ahIntegrity : ctx.caps.integrity;
        if (!allowed.has(model)) unsupported(ctx, a.name.at, model, integrityAdvice(model, ctx.caps));
      }
      sa.integrity = { algorithm: model as 'none', key };
    } else {
      const known = compressionName(a.name.text) as AlgorithmName;
      sa.compression = { algorithm: known.model as 'deflate' };
      if (a.rawCpi) notes.push('-R (raw CPI): the CPI on the wire is the SPI, which is how natt and Linux always do it');
    }
  }
  if (protocol === 'esp' && sa.encryption?.algorithm === 'null' && (sa.integrity?.algorithm ?? 'none') === 'none' && !ctx.caps.nullWithoutIntegrity) {
    unsupported(ctx, first.name.at, 'null without integrity', NULL_WITHOUT_INTEGRITY(ctx.caps));
  }
  const kind = encryptionInfo(sa.encryption?.algorithm)?.kind;
  if (protocol === 'esp' && sa.encryption && kind !== 'aead' && kind !== 'gmac' && (sa.integrity?.algorithm ?? 'none') === 'none') {
    // The file asks for confidentiality only (-E without -A; PF_KEY's own ciphers too: camellia-cbc, des-cbc ...), or for
    // neither (-E null without -A, where the platform installs that, as the kernels do), as setkey allows: say so,
    // loudly, and let it through.
    sa.allowNoIntegrity = true;
    notes.push(`${kind === 'null' ? NULL_NO_INTEGRITY_WARNING : NO_INTEGRITY_WARNING} (allowNoIntegrity)`);
  }
}

/** The note an ESP SA with -E and no -A carries: natt installs it (the file asks for it) and warns. */
export const NO_INTEGRITY_WARNING = 'WARNING: ESP without -A encrypts but does not authenticate: a forged packet can be accepted';
/** The note an ESP SA with -E null and no -A carries (where the backend installs it): it protects nothing. */
export const NULL_NO_INTEGRITY_WARNING = 'WARNING: ESP with -E null and without -A neither encrypts nor authenticates: any packet is accepted';

const NULL_WITHOUT_INTEGRITY = (caps: PlatformCaps): string =>
  `ESP with null encryption and no authentication is not supported on ${caps.label} (RFC 4303 forbids it; the kernels install it): add -A hmac-sha256 and a key, or use --backend xfrm`;

function lowerSa(s: SaStatement, ctx: LowerContext): SetkeyOp {
  const notes: string[] = [];
  const fam = s.flags.family ?? ctx.family;
  const src = address(s.src.host, fam, ctx, 'source');
  const dst = address(s.dst.host, fam, ctx, 'destination');
  sameFamily(src, dst, s.dst.host.at);
  const protocol = saProtocol(s.protocol, s.protocolAt, ctx);
  const spi = spiValue(s.spi, s.command);
  if (protocol === 'ipcomp' && spi > 0xffff) {
    unsupported(ctx, s.spi.at, 'IPComp CPI', `an IPComp CPI is 16 bits: natt uses the SPI as the CPI, so it must be at most 0xffff (got ${s.spi.text})`);
  }
  const sport = portNumber(s.src.port, ctx);
  const dport = portNumber(s.dst.port, ctx);
  const natt = s.protocol === 'esp-udp';
  if (!natt && (sport || dport)) notes.push('the [ports] of a non-esp-udp SA are ignored, as the kernels ignore them');

  let mode: SecurityAssociation['mode'] = ctx.caps.defaultMode;
  let reqid: number | undefined;
  let replay = 0;
  const lifetime: NonNullable<SecurityAssociation['lifetime']> = {};
  const ignored: string[] = [];
  for (const e of s.extensions) {
    switch (e.option) {
      case '-m':
        mode = e.value as SecurityAssociation['mode'];
        if (s.command === 'get' || s.command === 'delete') notes.push(`WARNING: mode is obsolete for ${s.command} (as setkey warns)`);
        break;
      case '-u':
        reqid = decimalValue(e, 0xffff_ffff, 'the reqid');
        break;
      case '-r':
        replay = decimalValue(e, 0xffff_ffff, 'the replay window');
        if (replay > ctx.caps.maxReplay) {
          unsupported(ctx, e.valueAt, 'replay window', `a replay window of ${replay} is more than ${ctx.caps.label} carries (at most ${ctx.caps.maxReplay})`);
        }
        break;
      case '-lh':
      case '-ls':
      case '-bh':
      case '-bs': {
        const n = decimalValue(e, Number.MAX_SAFE_INTEGER, e.option.startsWith('-l') ? 'a lifetime' : 'a byte limit');
        const which = e.option.endsWith('h') ? 'hard' : 'soft';
        const field = e.option.startsWith('-l') ? 'addSeconds' : 'bytes';
        (lifetime[which] ??= {})[field] = n;
        break;
      }
      case '-f':
        if (e.value === 'zero-pad' || e.value === 'random-pad') {
          if (ctx.caps.padFlagsMatter) {
            unsupported(ctx, e.valueAt, `-f ${e.value}`, `-f ${e.value} is not supported on ${ctx.caps.label}: natt's model has no padding choice (it pads 1, 2, 3, ... as RFC 4303 says)`);
          } else notes.push(`-f ${e.value} is ignored: natt pads 1, 2, 3, ... as RFC 4303 says (Linux ignores the flag too)`);
        } else if (e.value === 'seq-pad') notes.push('-f seq-pad is what natt always does (RFC 4303 padding)');
        else notes.push('-f nocyclic-seq is what natt always does (an SA stops at the last sequence number)');
        break;
      case '-ctx':
        unsupported(ctx, e.at, '-ctx', 'security context labels (-ctx, SELinux labeled IPsec) are not supported by natt on any backend: its SA model has no label');
        break;
    }
    if (s.command !== 'add' && s.command !== 'update' && e.option !== '-m' && e.option !== '-ctx') ignored.push(e.option);
  }
  const replayOld = s.protocol === 'esp-old' || s.protocol === 'ah-old';
  if (replayOld && replay) {
    throw parseError(s.protocolAt, 'replay prevention (-r) cannot be used with ah-old or esp-old', 'no -r');
  }

  if (s.command === 'get' || s.command === 'delete') {
    if (ignored.length) notes.push(`${ignored.join(' ')} ignored by ${s.command}`);
    if (natt) notes.push(`esp-udp means esp for ${s.command}`);
    return { op: s.command, at: s.at, id: { src, dst, spi, protocol }, ...(notes.length && { notes }) };
  }
  if (s.command === 'getspi') {
    const request: GetSpiRequest = { src, dst, protocol };
    if (spi) Object.assign(request, { min: spi, max: spi });
    if (mode) request.mode = mode;
    if (reqid !== undefined) request.reqid = reqid;
    if (ignored.length) notes.push(`${ignored.join(' ')} ignored by getspi, as the kernels ignore them there: give them in the update`);
    if (natt) notes.push('esp-udp ports are not kept by getspi: give them in the update');
    return { op: 'getspi', at: s.at, request, ...(notes.length && { notes }) };
  }

  const sa: SecurityAssociation = { src, dst, spi, protocol };
  if (mode) sa.mode = mode;
  if (reqid !== undefined) sa.reqid = reqid;
  sa.replayWindow = replay;
  if (lifetime.hard || lifetime.soft) sa.lifetime = lifetime;
  if (natt) {
    sa.natt = { type: 'espinudp', sport: sport || NATT_PORT, dport: dport || NATT_PORT };
    if (s.nattOa) {
      const oa = address(s.nattOa, undefined, ctx, 'NAT-OA');
      sa.natt.oa = { initiator: oa };
    }
  }
  lowerAlgorithms(s, sa, ctx, notes);
  hideSaKeys(sa);
  return { op: s.command, at: s.at, sa, ...(notes.length && { notes }) };
}

// ---------------------------------------------------------------------------------------------------------------
// Security policies

function selectorEnd(e: SelectorEnd, family: 4 | 6 | undefined, ctx: LowerContext, what: string): { text: string; port: number; fam: number } {
  const a = address(e.host, family, ctx, what);
  const fam = addressFamily(a.split('%')[0]);
  let text = a;
  if (e.prefix) {
    const max = fam === 4 ? 32 : 128;
    if (e.prefix.bits > max) throw parseError(e.prefix.at, `prefix length /${e.prefix.bits} is more than the ${max} bits of an IPv${fam} address`, `a prefix length 0..${max}`, String(e.prefix.bits));
    text = `${a}/${e.prefix.bits}`;
  }
  return { text, port: portNumber(e.port, ctx), fam };
}

function upperProtocol(t: Token): number | undefined {
  if (t.kind === 'dec') {
    const n = Number(t.text);
    if (n > 255) throw parseError(t.at, `upper-layer protocol ${t.text} is out of range 0..255`, 'a protocol number 0..255', t.text);
    return n === ULPROTO_ANY ? undefined : n;
  }
  if (t.text === 'any') return undefined;
  const n = upperProtocolNumber(t.text);
  if (n === undefined) {
    throw parseError(t.at, `invalid upper layer protocol ${describeText('word', t.text)}: not a protocols name (tcp, udp, icmp, icmp6, gre, ...), a number or any`, 'an upper-layer protocol', describeText('word', t.text));
  }
  return n;
}

/** ICMP `type[,code]` or GRE key into the selector's port fields, as setkey's fix_portstr does. */
function upperMisc(t: Token, proto: number | undefined): [number, number] {
  const bad = (why: string): never => {
    throw parseError(t.at, why, 'an upper-layer spec', describeText('word', t.text));
  };
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6 || proto === IPPROTO_MH) {
    const m = /^(\d+)(?:,(\d+))?$/.exec(t.text);
    if (!m) bad(`expected an ICMP type or type,code after the protocol, got ${describeText('word', t.text)}`);
    const type = Number(m?.[1]);
    const code = m?.[2] === undefined ? 0 : Number(m[2]);
    if (type > 255 || code > 255) bad('ICMP type and code are 0..255');
    return [type, code];
  }
  if (proto === IPPROTO_GRE) {
    const q = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t.text);
    if (q) {
      const [a, b, c, d] = q.slice(1).map(Number);
      if (a > 255 || b > 255 || c > 255 || d > 255) bad('a GRE key a.b.c.d has four numbers 0..255');
      return [(a << 8) + b, (c << 8) + d];
    }
    if (!/^\d+$/.test(t.text) || Number(t.text) > 0xffff_ffff) bad('a GRE key is a.b.c.d or a 32-bit number');
    const k = Number(t.text);
    return [Math.floor(k / 65536), k % 65536];
  }
  return bad(`${describeText('word', t.text)} after the upper-layer protocol: only icmp, icmp6, mobility-header (type,code) and gre (key) take one`);
}

function templates(rules: PolicyRule[], ctx: LowerContext, notes: string[]): PolicyTemplate[] {
  return rules.map((r) => {
    const t: PolicyTemplate = { protocol: r.protocol, mode: r.mode, level: r.level };
    if (r.reqid !== undefined) {
      t.reqid = r.reqid;
      if (r.reqid > ctx.caps.maxTemplateReqid) {
        unsupported(ctx, r.at, 'reqid', `unique:${r.reqid} does not fit ${ctx.caps.label}'s 16-bit policy reqid (at most ${ctx.caps.maxTemplateReqid})`);
      }
    }
    if (r.meAny) {
      unsupported(ctx, r.at, r.meAny, `${r.meAny} tunnel endpoints (KAME's me/any words) are not supported by natt: write both addresses`);
      return t;
    }
    if (r.src && r.dst) {
      const s = ruleAddress(r.src);
      const d = ruleAddress(r.dst);
      if (addressFamily(s) !== addressFamily(d)) {
        throw parseError(r.dst.at, 'the tunnel endpoints are of different families (one IPv4, one IPv6)', 'an address of the same family', describeText('word', r.dst.address));
      }
      t.src = s;
      t.dst = d;
      if (r.src.port !== undefined) {
        if (ctx.caps.templatePortsMatter) {
          unsupported(ctx, r.src.at, 'ports in tunnel endpoints', `ports in tunnel endpoints (${r.src.address}[${r.src.port}]) matter to ${ctx.caps.label}, but natt's policy model has no ports to give it`);
        } else {
          notes.push(`the ports in the tunnel endpoints (${r.src.address}[${r.src.port}]-${r.dst.address}[${r.dst.port}]) are dropped: the esp-udp SA's ports decide, as on Linux`);
        }
      }
    }
    return t;
  });
}

/** Tunnel endpoints must be numeric (libipsec asks getaddrinfo for AI_NUMERICHOST). */
function ruleAddress(a: RuleAddress): Address {
  const zone = a.address.indexOf('%');
  const bare = zone >= 0 ? a.address.slice(0, zone) : a.address;
  if (addressFamily(bare) === 0) {
    throw parseError(a.at, `invalid IP address ${describeText('word', a.address)} in the policy: tunnel endpoints are numeric addresses`, 'a numeric IP address', describeText('word', a.address));
  }
  const b = addressToBytes(bare, 'tunnel endpoint');
  return bytesToAddress(b, 0, b.length === 4 ? 4 : 16) + (zone >= 0 ? a.address.slice(zone) : '');
}

function lowerSpd(s: SpdStatement, ctx: LowerContext): SetkeyOp[] {
  const notes: string[] = [];
  const fam = s.flags.family ?? ctx.family;
  const src = selectorEnd(s.src, fam, ctx, 'source');
  const dst = selectorEnd(s.dst, fam, ctx, 'destination');
  if (src.fam !== dst.fam) throw parseError(s.dst.host.at, 'the source and destination of the selector are of different families', 'an address of the same family');
  const proto = upperProtocol(s.upper);
  let sport = src.port;
  let dport = dst.port;
  if (s.upperMisc) {
    if (sport || dport) {
      throw parseError(s.upperMisc.at, 'with an ICMP type,code or a GRE key the selector takes no [ports]: setkey keeps those in the port fields', "[any] or no [port]", describeText('word', s.upperMisc.text));
    }
    [sport, dport] = upperMisc(s.upperMisc, proto);
  }
  if (s.ctx) unsupported(ctx, s.ctx, '-ctx', 'security context labels (-ctx, SELinux labeled IPsec) are not supported by natt on any backend: its policy model has no label');
  const selector: TrafficSelector = { src: src.text, dst: dst.text };
  if (proto !== undefined) selector.proto = proto;
  if (sport) selector.sport = sport;
  if (dport) selector.dport = dport;

  const p = s.policy;
  const direction = p.direction;
  if (direction === 'fwd' && !ctx.caps.forwardPolicies) {
    unsupported(ctx, p.at, 'fwd', `forward policies (-P fwd) are not supported on ${ctx.caps.label}: it has only in and out`);
  }
  if (s.command === 'spddelete') {
    if (p.action || p.priority !== undefined) notes.push('spddelete matches the selector and direction; the rest of the policy is not compared');
    const ops: SetkeyOp[] = [{ op: 'spddelete', at: s.at, selector, direction, ...(notes.length && { notes }) }];
    if (ctx.semantics === 'rfc' && direction === 'in') {
      ops.push({ op: 'spddelete', at: s.at, selector: { ...selector }, direction: 'fwd', implicit: true, notes: ['the fwd twin of the in policy (setkey -r semantics)'] });
    }
    return ops;
  }
  if (!p.action) {
    throw parseError(p.at, `expected an action after -P ${direction} (discard, none or ipsec): setkey would install a discard policy here`, 'an action', 'nothing');
  }
  if (p.action === 'entrust' || p.action === 'bypass') {
    unsupported(ctx, p.actionAt as SourcePos, p.action, `'${p.action}' is a per-socket policy action; the SPD takes discard, none or ipsec (the kernels refuse ${p.action} there too)`);
  }
  const action = p.action === 'ipsec' ? 'ipsec' : p.action === 'discard' ? 'discard' : 'none';
  if (action === 'ipsec' && p.rules.length === 0) {
    throw parseError(p.actionAt as SourcePos, 'an ipsec policy needs at least one rule (protocol/mode/src-dst/level)', 'a rule', 'nothing');
  }
  if (action !== 'ipsec' && p.rules.length) {
    throw parseError(p.rules[0].at, `rules follow only ipsec, not ${p.action}`, "';'", describeText('word', p.rules[0].protocol));
  }
  const policy: SecurityPolicy = { selector, direction, action };
  if (p.priority !== undefined) {
    if (!ctx.caps.priorities) {
      unsupported(ctx, p.priorityAt as SourcePos, 'priority', `policy priority (-P ${direction} priority ...) is not supported on ${ctx.caps.label}: it keeps none (leave it out)`);
    }
    policy.priority = p.priority;
  } else if (ctx.caps.defaultPriority !== undefined) policy.priority = ctx.caps.defaultPriority;
  if (action === 'ipsec') policy.templates = templates(p.rules, ctx, notes);
  const ops: SetkeyOp[] = [{ op: s.command, at: s.at, policy, ...(notes.length && { notes }) }];
  if (ctx.semantics === 'rfc' && direction === 'in') {
    // setkey -r (its default on Linux): every in policy also goes in as fwd; a first rule of level unique becomes
    // require without its reqid (parse.y's setkeymsg_spdaddr).
    const twin: SecurityPolicy = structuredClone({ ...policy, direction: 'fwd' as const });
    const first = twin.templates?.[0];
    if (first?.level === 'unique') {
      first.level = 'require';
      delete first.reqid;
    }
    ops.push({ op: s.command, at: s.at, policy: twin, implicit: true, notes: ['the fwd twin of the in policy (setkey -r semantics)'] });
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------------------------
// What the chosen platform cannot do, on the model (also used by applySetkey for the database it is given).

/**
 * Features of `op` the platform cannot do, on the model alone (applySetkey checks operations read for one platform
 * against the database it is given; parseSetkey flags the same things at their exact tokens while it reads).
 */
export function platformProblems(op: SetkeyOp, caps: PlatformCaps): UnsupportedFeature[] {
  const out: UnsupportedFeature[] = [];
  const add = (feature: string, reason: string): void => {
    out.push({ at: op.at, feature, reason });
  };
  if (op.op === 'add' || op.op === 'update') {
    const sa = op.sa;
    if (sa.protocol === 'esp' || sa.protocol === undefined) {
      const e = sa.encryption?.algorithm;
      if (e && !caps.encryption.has(e)) add(e, encryptionAdvice(e, caps));
      const i = sa.integrity?.algorithm;
      if (i && !caps.integrity.has(i)) add(i, integrityAdvice(i, caps));
      if (e === 'null' && (i ?? 'none') === 'none' && !caps.nullWithoutIntegrity) add('null without integrity', NULL_WITHOUT_INTEGRITY(caps));
    } else if (sa.protocol === 'ah') {
      const i = sa.integrity?.algorithm;
      if (i && !caps.ahIntegrity.has(i)) add(i, integrityAdvice(i, caps));
    } else if (sa.compression && !caps.compression.has(sa.compression.algorithm)) {
      add(sa.compression.algorithm, `${sa.compression.algorithm} is not supported on ${caps.label}`);
    }
    if ((sa.replayWindow ?? 0) > caps.maxReplay) add('replay window', `a replay window of ${sa.replayWindow} is more than ${caps.label} carries (at most ${caps.maxReplay})`);
  } else if (op.op === 'spdadd' || op.op === 'spdupdate' || op.op === 'spddelete') {
    const direction = op.op === 'spddelete' ? op.direction : op.policy.direction;
    if (direction === 'fwd' && !caps.forwardPolicies) add('fwd', `forward policies (-P fwd) are not supported on ${caps.label}: it has only in and out`);
    if (op.op !== 'spddelete') {
      const pr = op.policy.priority;
      if (pr !== undefined && !caps.priorities && pr !== PRIORITY_DEFAULT) {
        add('priority', `policy priority is not supported on ${caps.label}: it keeps none (leave it out)`);
      }
      for (const t of op.policy.templates ?? []) {
        if ((t.reqid ?? 0) > caps.maxTemplateReqid) add('reqid', `a policy reqid of ${t.reqid} does not fit ${caps.label} (at most ${caps.maxTemplateReqid})`);
      }
    }
  }
  return out;
}

const MODEL_ENCRYPTION = new Set(['aes-cbc', 'aes-ctr', 'aes-gcm-8', 'aes-gcm-12', 'aes-gcm-16', 'aes-gmac', 'chacha20-poly1305', '3des-cbc', 'null']);
const MODEL_INTEGRITY = new Set(['hmac-md5-96', 'hmac-sha1-96', 'hmac-sha2-256-128', 'hmac-sha2-256-96', 'hmac-sha2-384-192', 'hmac-sha2-512-256', 'aes-xcbc-96', 'none']);
const PFKEY_ONLY = 'only the PF_KEY kernels know it (--backend pfkey, on a BSD or a Linux with af_key)';

function encryptionAdvice(alg: string, caps: PlatformCaps): string {
  const base = `${alg} is not supported on ${caps.label}`;
  if (caps.linuxPfkey && AEADS.has(alg)) return `${base}: Linux PF_KEY cannot install AEAD SAs (the kernel answers ENOSYS): use --backend xfrm`;
  if (!MODEL_ENCRYPTION.has(alg)) return `${base}: ${PFKEY_ONLY}; use aes-gcm-16 or aes-cbc`;
  if (caps.label === 'the userland backend') {
    return `${base}: the userland ESP engine implements aes-gcm-16, aes-gmac, chacha20-poly1305, aes-cbc and null (--backend xfrm has ${alg})`;
  }
  return `${base}: use aes-gcm-16 or aes-cbc`;
}

function integrityAdvice(alg: string, caps: PlatformCaps): string {
  const base = `${alg} is not supported on ${caps.label}`;
  if (alg === 'hmac-sha2-256-128' && caps.linuxPfkey) {
    return `${base}: Linux PF_KEY truncates HMAC-SHA2-256 to 96 bits, not RFC 4868's 128; use --backend xfrm, or -A hmac-sha256 for Linux's 96-bit SA`;
  }
  if (alg === 'hmac-sha2-256-96' && !caps.linuxPfkey && caps.label.endsWith('PF_KEY')) return `${base}: the BSDs truncate HMAC-SHA2-256 to 128 bits (-A hmac-sha256)`;
  if (!MODEL_INTEGRITY.has(alg)) return `${base}: ${PFKEY_ONLY}; use hmac-sha256`;
  if (caps.label === 'the userland backend') {
    return `${base}: the userland ESP engine implements hmac-sha1, hmac-sha256, hmac-sha384 and hmac-sha512 (--backend xfrm has ${alg})`;
  }
  return `${base}: use hmac-sha256`;
}
