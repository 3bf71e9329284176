// SAs and policies back to setkey statements (toSetkey), and one operation as a statement for `natt setkey -n`.

import type { SecurityAssociation, SecurityPolicy, TrafficSelector } from '../sadb/types';
import { arrayOption, readOptions, oneOf } from '../core/options';
import { typeError } from '../errors';
import { HIDDEN_KEY } from './lexer';
import type { SetkeyOp } from './lower';
import { IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MH, upperProtocolText, writeEncryptionName, writeIntegrityName } from './names';
import { RESERVED } from './parser';
import { SETKEY_PLATFORMS, platformCaps, type SetkeyPlatform } from './platform';
import { formatItem, priorityText, readBackSa, ruleText } from './format';

const SA_EXPECTED = 'a SecurityAssociation as get() and dump() return it';

export interface ToSetkeyOptions {
  /** Write the key bytes (as 0x hex). Without it every key is `<hidden>`, which no parser accepts. Default false. */
  revealKeys?: boolean;
  /** The platform the file is for (spellings that differ: Linux PF_KEY's hmac-sha256). Default 'any'. */
  platform?: SetkeyPlatform;
}

const hex = (b: Uint8Array): string => `0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`;

function key(k: Uint8Array | undefined, reveal: boolean): string {
  if (!k || k.length === 0) return '';
  return ` ${reveal ? hex(k) : HIDDEN_KEY}`;
}

/** The upper-layer protocol as setkey reads it back (a reserved word like esp is written as its number). */
function upperWord(proto: number | undefined): string {
  const t = upperProtocolText(proto);
  return t !== 'any' && t !== 'tcp' && RESERVED.has(t) ? String(proto) : t;
}

function selectorText(sel: TrafficSelector): string {
  const icmpish = sel.proto === IPPROTO_ICMP || sel.proto === IPPROTO_ICMPV6 || sel.proto === IPPROTO_MH;
  const gre = sel.proto === IPPROTO_GRE;
  const port = (p: number | undefined): string => (icmpish || gre || !p ? '' : `[${p}]`);
  let s = `${sel.src}${port(sel.sport)} ${sel.dst}${port(sel.dport)} ${upperWord(sel.proto)}`;
  const p1 = sel.sport ?? 0;
  const p2 = sel.dport ?? 0;
  if ((icmpish || gre) && (p1 || p2)) s += icmpish ? ` ${p1},${p2}` : ` ${p1 * 65536 + p2}`;
  return s;
}

/** One `add` (or `update`) statement and the notes on what setkey cannot say about the SA. */
function saText(sa: SecurityAssociation, command: 'add' | 'update', reveal: boolean, linuxPfkey: boolean): { text: string; notes: string[] } {
  const notes: string[] = [];
  const protocol = sa.protocol ?? 'esp';
  const n = sa.natt;
  let proto: string = protocol;
  if (n) {
    proto = 'esp-udp';
    const oa = n.oa?.initiator ?? n.oa?.responder;
    if (oa) proto += ` ${oa}`;
    if (n.type !== 'espinudp') notes.push(`natt.type ${n.type}: setkey's esp-udp is espinudp (RFC 3948)`);
    if (n.keepaliveInterval) notes.push(`natt.keepaliveInterval ${n.keepaliveInterval}: setkey has no keepalive setting`);
    if (n.oa?.initiator && n.oa?.responder) notes.push('setkey carries one NAT-OA address: the responder one is left out');
  }
  let s = `${command} ${sa.src}${n ? `[${n.sport}]` : ''} ${sa.dst}${n ? `[${n.dport}]` : ''} ${proto} 0x${(sa.spi >>> 0).toString(16)}`;
  if (sa.mode) s += ` -m ${sa.mode}`;
  if (sa.replayWindow) s += ` -r ${sa.replayWindow}`;
  if (sa.reqid !== undefined) s += ` -u ${sa.reqid}`;
  const hard = sa.lifetime?.hard;
  const soft = sa.lifetime?.soft;
  if (hard?.addSeconds) s += ` -lh ${hard.addSeconds}`;
  if (soft?.addSeconds) s += ` -ls ${soft.addSeconds}`;
  if (hard?.bytes) s += ` -bh ${hard.bytes}`;
  if (soft?.bytes) s += ` -bs ${soft.bytes}`;
  if (hard?.packets || soft?.packets || hard?.useSeconds || soft?.useSeconds) notes.push('packet and use-time lifetimes have no setkey option');
  if (sa.esn) notes.push('esn: setkey has no extended-sequence-number option');
  if (sa.selector) notes.push('the SA selector has no setkey option');
  if (protocol === 'ipcomp') s += ` -C ${sa.compression?.algorithm ?? 'deflate'}`;
  else if (protocol === 'ah') s += ` -A ${writeIntegrityName(sa.integrity?.algorithm ?? 'none', linuxPfkey)}${key(sa.integrity?.key, reveal)}`;
  else {
    s += ` -E ${writeEncryptionName(sa.encryption?.algorithm ?? 'null')}${key(sa.encryption?.key, reveal)}`;
    if (sa.integrity) s += ` -A ${writeIntegrityName(sa.integrity.algorithm, linuxPfkey)}${key(sa.integrity.key, reveal)}`;
  }
  return { text: `${s} ;`, notes };
}

/** An spdadd-style statement (without the `spdadd`) and its notes. */
function policyText(p: SecurityPolicy, platformDefault: number | undefined): { text: string; notes: string[] } {
  const notes: string[] = [];
  let prio = '';
  const value = p.priority ?? 0;
  if (value !== (platformDefault ?? 0)) {
    prio = value === 0 ? ' priority 2147483648' : ` ${priorityText(value)}`;
  }
  let s = `${selectorText(p.selector)} -P ${p.direction}${prio} ${p.action}`;
  if (p.action === 'ipsec') {
    for (const [i, t] of (p.templates ?? []).entries()) {
      const level = t.level ?? (t.reqid ? 'unique' : 'require');
      if (t.reqid && level !== 'unique') notes.push(`template ${i}: reqid ${t.reqid} with level ${level} has no setkey spelling (only unique:N carries a reqid)`);
      s += ` ${ruleText({ ...t, level, ...(level !== 'unique' && { reqid: undefined }) }).replace(/#(\d+)$/, ':$1')}`;
    }
  }
  return { text: `${s} ;`, notes };
}

/**
 * A setkey file that adds `sas` and `policies` (the dump of a database turned back into a file). Keys are written
 * only with `revealKeys: true`; otherwise each stands as `<hidden>`, so the file cannot be loaded by mistake with
 * wrong keys. Every policy is written, fwd ones included: read the file with kernel semantics (setkey -k,
 * `semantics: 'kernel'`) so an `in` policy does not grow a second fwd twin.
 */
export function toSetkey(sas: readonly SecurityAssociation[], policies: readonly SecurityPolicy[] = [], opts: ToSetkeyOptions = {}): string {
  const saList = arrayOption(sas, 'sas').map((sa, i) => readBackSa(sa, `sas[${i}]`));
  const policyList = arrayOption(policies, 'policies');
  const o = readOptions(opts, ['revealKeys', 'platform'] as const, 'options');
  const reveal = o.revealKeys === true;
  const platform = oneOf(o.platform, 'platform', SETKEY_PLATFORMS, 'any' as SetkeyPlatform);
  const caps = platformCaps(platform);
  let out = `# setkey input written by natt: ${saList.length} SA${saList.length === 1 ? '' : 's'}, ${policyList.length} polic${policyList.length === 1 ? 'y' : 'ies'}`;
  out += reveal ? ', keys included\n' : ', keys hidden (the <hidden> keys must be filled in before this loads)\n';
  for (const [i, sa] of saList.entries()) {
    const larval = formatItem(`sas[${i}]`, SA_EXPECTED, sa, () => sa.state === 'larval');
    if (larval) {
      out += `# note: a larval SA (getspi, no keys yet) is not written: ${sa.src} ${sa.dst} ${sa.protocol ?? 'esp'} 0x${(sa.spi >>> 0).toString(16)}\n`;
      continue;
    }
    const { text, notes } = formatItem(`sas[${i}]`, SA_EXPECTED, sa, () => saText(sa, 'add', reveal, caps.linuxPfkey));
    for (const n of notes) out += `# note: ${n}\n`;
    out += `${text}\n`;
  }
  for (const [i, p] of policyList.entries()) {
    if (p === null || typeof p !== 'object') throw typeError(`policies[${i}]`, 'a SecurityPolicy', p);
    const { text, notes } = formatItem(`policies[${i}]`, 'a SecurityPolicy as spdGet() and spdDump() return it', p, () => policyText(p as SecurityPolicy, caps.defaultPriority));
    for (const n of notes) out += `# note: ${n}\n`;
    out += `spdadd ${text}\n`;
  }
  return out;
}

/** One operation as the setkey statement it came from (keys as `<hidden>` unless revealed), for `-n` and `-v`. */
export function opText(op: SetkeyOp, opts: { revealKeys?: boolean; platform?: SetkeyPlatform } = {}): string {
  const caps = platformCaps(opts.platform ?? 'any');
  const reveal = opts.revealKeys === true;
  switch (op.op) {
    case 'add':
    case 'update':
      return saText(op.sa, op.op, reveal, caps.linuxPfkey).text;
    case 'getspi': {
      const r = op.request;
      const range = r.min !== undefined && r.min === r.max ? `0x${r.min.toString(16)}` : '0';
      return `getspi ${r.src} ${r.dst} ${r.protocol ?? 'esp'} ${range}${r.mode ? ` -m ${r.mode}` : ''}${r.reqid !== undefined ? ` -u ${r.reqid}` : ''} ;`;
    }
    case 'get':
    case 'delete':
      return `${op.op} ${op.id.src} ${op.id.dst} ${op.id.protocol ?? 'esp'} 0x${op.id.spi.toString(16)} ;`;
    case 'deleteall':
      return `deleteall ${op.match.src} ${op.match.dst} ${op.match.protocol} ;`;
    case 'flush':
    case 'dump':
      return `${op.op}${op.protocol ? ` ${op.protocol}` : ''} ;`;
    case 'spdadd':
    case 'spdupdate':
      return `${op.op} ${policyText(op.policy, caps.defaultPriority).text}`;
    case 'spddelete':
      return `spddelete ${selectorText(op.selector)} -P ${op.direction} ;`;
    default:
      return `${op.op} ;`;
  }
}
