// Dumps in the layout of ipsec-tools' pfkey_dump.c (setkey -D / -DP), so scripts that read setkey's output keep working.

import type { SecurityAssociation, SecurityPolicy, PolicyTemplate, TrafficSelector } from '../sadb/types';
import { addressFamily } from '../ip/address';
import { arrayOption, readOptions } from '../core/options';
import { checkSaId } from '../sadb/validate';
import { typeError } from '../errors';
import { IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_MH, dumpEncryptionName, dumpIntegrityName, upperProtocolText } from './names';
import { PRIORITY_DEFAULT, PRIORITY_HIGH, PRIORITY_LOW } from './policy';

export interface SadDumpOptions {
  /** Print key bytes (setkey always does; natt only when asked). Default false. */
  revealKeys?: boolean;
  /** Include dead SAs (setkey -a). Default false. */
  all?: boolean;
  /** "Now" in seconds since the epoch, for the lifetime lines (default: the clock). */
  now?: number;
  /** The pid printed in `sadb_seq=... pid=...` (default: this process's). */
  pid?: number;
}

export interface SpdDumpOptions {
  now?: number;
  pid?: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => String(n).padStart(2, '0');

/** ctime(3) from its 5th character, 20 characters (`Nov 24 10:00:05 2026`), local time; 0 is 20 spaces. */
export function strTime(seconds: number): string {
  if (!seconds) return ' '.repeat(20);
  const d = new Date(seconds * 1000);
  if (Number.isNaN(d.getTime())) return '?'.repeat(20);
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`.slice(0, 20).padEnd(20);
}

/** ipsec_hexdump: a space before every 4 bytes, a newline after every 32. */
function hexdump(key: Uint8Array): string {
  let s = '';
  for (let i = 0; i < key.length; i++) {
    if (i !== 0 && i % 32 === 0) s += '\n';
    if (i % 4 === 0) s += ' ';
    s += key[i].toString(16).padStart(2, '0');
  }
  return s;
}

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0');

function keyText(key: Uint8Array | undefined, reveal: boolean): string {
  if (!key) return '';
  return reveal ? hexdump(key) : ` (${key.length * 8}-bit key hidden)`;
}

/**
 * Format one item of a caller's list with `f`: a field of a shape no formatter can print (a Symbol, a bigint where a
 * number goes, a getter that throws, a missing object) is a TypeError naming the item, never an internal error.
 */
export function formatItem<T>(field: string, expected: string, v: unknown, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if ((e instanceof TypeError || e instanceof RangeError) && /^(unknown )?option "/.test(e.message)) throw e;
    throw typeError(field, expected, v);
  }
}

const SA_SHAPE = 'a SecurityAssociation as get() and dump() return it';
const POLICY_SHAPE = 'a SecurityPolicy as spdGet() and spdDump() return it';

/** A read-back SA: its identity checked (own fields, known names), the rest as formatItem reads it. */
export function readBackSa(v: unknown, field: string): SecurityAssociation {
  checkSaId(v, field);
  return v as SecurityAssociation;
}

function num(n: unknown, dflt = 0): number {
  return typeof n === 'number' && Number.isFinite(n) ? n : dflt;
}

/**
 * The SAD as `setkey -D` prints it (pfkey_dump.c's pfkey_sadump): one block per SA, NAT-T SAs as `esp-udp` with
 * their ports after the addresses, `No SAD entries.` when there are none. Keys are printed only with
 * `revealKeys: true` (otherwise `(128-bit key hidden)`): a deliberate difference from setkey.
 */
export function formatSadDump(sas: readonly SecurityAssociation[], opts: SadDumpOptions = {}): string {
  const o = readOptions(opts, ['revealKeys', 'all', 'now', 'pid'] as const, 'options');
  const list = arrayOption(sas, 'sas').map((sa, i) => readBackSa(sa, `sas[${i}]`));
  if (list.length === 0) return 'No SAD entries.\n';
  const reveal = o.revealKeys === true;
  const now = num(o.now, Math.floor(Date.now() / 1000));
  const pid = num(o.pid, process.pid);
  const shown = list.map((sa, i) => [sa, i] as const).filter(([sa, i]) => o.all === true || formatItem(`sas[${i}]`, SA_SHAPE, sa, () => sa.state) !== 'dead');
  let out = '';
  shown.forEach(([sa, at], i) => formatItem(`sas[${at}]`, SA_SHAPE, sa, () => {
    const protocol = sa.protocol ?? 'esp';
    const natt = sa.natt !== undefined;
    out += `${sa.src}${natt ? `[${sa.natt?.sport}]` : ''} ${sa.dst}${natt ? `[${sa.natt?.dport}]` : ''} \n`;
    const satype = natt && protocol === 'esp' ? 'esp-udp' : `${natt ? 'natt+' : ''}${protocol}`;
    const reqid = num(sa.reqid);
    out += `\t${satype} mode=${sa.mode ?? 'transport'} spi=${sa.spi >>> 0}(0x${hex8(sa.spi)}) reqid=${reqid >>> 0}(0x${hex8(reqid)})\n`;
    const oa = sa.natt?.oa?.initiator ?? sa.natt?.oa?.responder;
    if (natt && oa) out += `\tNAT OA=${oa}\n`;
    if (protocol === 'ipcomp') {
      out += `\tC: ${sa.compression?.algorithm ?? 'none'} `; // pfkey_dump prints no newline after C:, as here
    } else if (protocol === 'esp' && sa.encryption && sa.encryption.key && sa.encryption.key.length > 0) {
      out += `\tE: ${dumpEncryptionName(sa.encryption.algorithm)} ${keyText(sa.encryption.key, reveal)}\n`;
    }
    if (sa.integrity && sa.integrity.algorithm !== 'none' && sa.integrity.key && sa.integrity.key.length > 0) {
      out += `\tA: ${dumpIntegrityName(sa.integrity.algorithm)} ${keyText(sa.integrity.key, reveal)}\n`;
    }
    out += `\tseq=0x00000000 replay=${num(sa.replayWindow)} flags=0x00000000 state=${sa.state ?? 'mature'}\n`;
    const c = sa.current;
    if (c) {
      const hard = sa.lifetime?.hard ?? {};
      const soft = sa.lifetime?.soft ?? {};
      out += `\tcreated: ${strTime(c.addTime)}\tcurrent: ${strTime(now)}\n`;
      out += `\tdiff: ${c.addTime ? Math.max(0, now - c.addTime) : 0}(s)\thard: ${num(hard.addSeconds)}(s)\tsoft: ${num(soft.addSeconds)}(s)\n`;
      out += `\tlast: ${strTime(c.useTime)}\thard: ${num(hard.useSeconds)}(s)\tsoft: ${num(soft.useSeconds)}(s)\n`;
      out += `\tcurrent: ${num(c.bytes)}(bytes)\thard: ${num(hard.bytes)}(bytes)\tsoft: ${num(soft.bytes)}(bytes)\n`;
      out += `\tallocated: ${num(c.packets)}\thard: ${num(hard.packets)}\tsoft: ${num(soft.packets)}\n`;
    }
    out += `\tsadb_seq=${shown.length - 1 - i} pid=${pid} refcnt=0\n`;
  }));
  return out;
}

/** `/prefix[port]` after a selector address, as str_prefport prints it. */
function prefPort(text: string, port: number | undefined, proto: number | undefined): { addr: string; suffix: string } {
  const slash = text.indexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  const full = addressFamily(addr.split('%')[0]) === 6 ? 128 : 32;
  const bits = slash >= 0 ? Number(text.slice(slash + 1)) : full;
  const pref = bits === full ? '' : `/${bits}`;
  const noPorts = proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6 || proto === IPPROTO_MH || proto === IPPROTO_GRE;
  return { addr, suffix: pref + (noPorts ? '' : port ? `[${port}]` : '[any]') };
}

/** The upper-layer spec as str_upperspec prints it: name, then ICMP `type,code` or the GRE key. */
export function upperSpecText(sel: TrafficSelector): string {
  const proto = sel.proto;
  let s = upperProtocolText(proto);
  const p1 = num(sel.sport);
  const p2 = num(sel.dport);
  if (p1 === 0 && p2 === 0) return s;
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6 || proto === IPPROTO_MH) s += ` ${p1},${p2}`;
  else if (proto === IPPROTO_GRE) s += ` ${p1 * 65536 + p2}`;
  return s;
}

/** ipsec_dump_policy's priority words for a kernel priority value (`prio def + 1`), or '' for 0. */
export function priorityText(priority: number | undefined): string {
  const p = num(priority) >>> 0;
  if (p === 0) return '';
  let base: number;
  let word: string;
  if (p < (PRIORITY_DEFAULT / 4) * 3) [base, word] = [PRIORITY_HIGH, 'high'];
  else if (p < (PRIORITY_DEFAULT / 4) * 5) [base, word] = [PRIORITY_DEFAULT, 'def'];
  else [base, word] = [PRIORITY_LOW, 'low'];
  const offset = base - p; // the sign as it is written: + is higher priority (a lower value)
  if (offset === 0) return `prio ${word}`;
  return `prio ${word} ${offset > 0 ? '+' : '-'} ${Math.abs(offset)}`;
}

/** One request rule as ipsec_dump_ipsecrequest prints it. */
export function ruleText(t: PolicyTemplate): string {
  // A required rule that names a reqid is what setkey calls unique (Linux's af_key reports it so; the BSDs keep a
  // reqid only for unique rules): require:N is never printed.
  const level = t.level === undefined || (t.level === 'require' && t.reqid) ? (t.reqid ? 'unique' : 'require') : t.level;
  const addrs = t.src !== undefined && t.dst !== undefined ? `${t.src}-${t.dst}` : '';
  const reqid = t.reqid ? `${t.reqid > 0x3fff ? '#' : ':'}${t.reqid}` : '';
  return `${t.protocol}/${t.mode}/${addrs}/${level}${reqid}`;
}

/** The policy line: direction, priority, action. */
export function policyHeadText(p: SecurityPolicy): string {
  const prio = priorityText(p.priority);
  return `${p.direction}${prio ? ` ${prio}` : ''} ${p.action}`;
}

/**
 * The SPD as `setkey -DP` prints it (pfkey_dump.c's pfkey_spdump): selector and upper-layer protocol, then the policy
 * and its rules on tab-indented lines, `spid=... seq=... pid=...`; `No SPD entries.` when there are none.
 */
export function formatSpdDump(policies: readonly SecurityPolicy[], opts: SpdDumpOptions = {}): string {
  const o = readOptions(opts, ['now', 'pid'] as const, 'options');
  const list = arrayOption(policies, 'policies') as SecurityPolicy[];
  if (list.length === 0) return 'No SPD entries.\n';
  const pid = num(o.pid, process.pid);
  let out = '';
  list.forEach((p, i) => formatItem(`policies[${i}]`, POLICY_SHAPE, p, () => {
    const sel = p.selector;
    const s = prefPort(sel.src, sel.sport, sel.proto);
    const d = prefPort(sel.dst, sel.dport, sel.proto);
    out += `${s.addr}${s.suffix} ${d.addr}${d.suffix} ${upperSpecText(sel)}\n`;
    out += `\t${policyHeadText(p)}`;
    if (p.action === 'ipsec') for (const t of p.templates ?? []) out += `\n\t${ruleText(t)}`;
    out += '\n';
    if (p.current) {
      out += `\tcreated: ${strTime(p.current.addTime)}  lastused: ${strTime(p.current.useTime)}\n`;
      out += `\tlifetime: 0(s) validtime: 0(s)\n`;
    }
    out += `\tspid=${num(p.id)} seq=${list.length - 1 - i} pid=${pid}\n`;
    out += `\trefcnt=1\n`;
  }));
  return out;
}
