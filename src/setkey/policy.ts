// The policy text after -P (libipsec's ipsec_set_policy grammar): direction, priority, action and request rules.

import { SetkeyParseError, describeText, printable, type SourcePos } from './errors';

/** libipsec's priority bases (Linux builds of ipsec-tools: lower values win). */
export const PRIORITY_LOW = 0xc000_0000;
export const PRIORITY_DEFAULT = 0x8000_0000;
export const PRIORITY_HIGH = 0x4000_0000;
const OFFSET_POSITIVE_MAX = 0x3fff_ffff;
const OFFSET_NEGATIVE_MAX = 0x4000_0000;

export type PolicyAction = 'discard' | 'none' | 'ipsec' | 'entrust' | 'bypass';

/** One endpoint of a tunnel rule (`192.168.0.1[4500]`), still text. */
export interface RuleAddress {
  address: string;
  port?: number;
  at: SourcePos;
}

/** One request rule: `esp/tunnel/a-b/require`. */
export interface PolicyRule {
  protocol: 'esp' | 'ah' | 'ipcomp';
  mode: 'transport' | 'tunnel';
  src?: RuleAddress;
  dst?: RuleAddress;
  /** KAME's `me-any` / `any-me` endpoint words. */
  meAny?: string;
  level: 'default' | 'use' | 'require' | 'unique';
  /** From `unique:N`. */
  reqid?: number;
  at: SourcePos;
}

/** The parsed policy text. `action` is absent only for the bare `-P in` form (spddelete). */
export interface PolicySpec {
  direction: 'in' | 'out' | 'fwd';
  at: SourcePos;
  /** The kernel's priority value, when the text gives one (`priority def+1` → 0x7fffffff). */
  priority?: number;
  priorityAt?: SourcePos;
  action?: PolicyAction;
  actionAt?: SourcePos;
  rules: PolicyRule[];
}

type PTokKind = 'kw' | 'dec' | 'addr' | 'level' | 'slash' | 'hyphen' | 'plus' | 'port' | 'eof';
interface PTok {
  kind: PTokKind;
  text: string;
  at: SourcePos;
}

const KEYWORDS = new Set([
  'in', 'out', 'fwd', 'priority', 'prio', 'low', 'def', 'high', 'discard', 'none', 'ipsec', 'bypass', 'entrust',
  'esp', 'ah', 'ipcomp', 'transport', 'tunnel', 'me', 'any', 'default', 'use', 'require', 'unique',
]);

const isAddrChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x3a || c === 0x2e || c === 0x5f;
const isAlnum = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** Tokens of the policy text, per libipsec's policy_token.l (longest match, earlier rule on a tie). */
function tokenize(text: string, at: SourcePos): PTok[] {
  const out: PTok[] = [];
  let line = at.line;
  let col = at.column;
  let i = 0;
  const pos = (): SourcePos => ({ file: at.file, line, column: col });
  const advance = (n: number): void => {
    for (let k = 0; k < n; k++, i++) {
      if (text.charCodeAt(i) === 0x0a) {
        line++;
        col = 1;
      } else col++;
    }
  };
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      advance(1);
      continue;
    }
    const here = pos();
    if (c === 0x2f || c === 0x2d || c === 0x2b) {
      out.push({ kind: c === 0x2f ? 'slash' : c === 0x2d ? 'hyphen' : 'plus', text: text[i], at: here });
      advance(1);
      continue;
    }
    if (c === 0x5b) {
      let j = i + 1;
      while (isDigit(text.charCodeAt(j))) j++;
      if (j > i + 1 && text.charCodeAt(j) === 0x5d) {
        out.push({ kind: 'port', text: text.slice(i + 1, j), at: here });
        advance(j + 1 - i);
        continue;
      }
      throw new SetkeyParseError(here, "a port in a policy rule is '[' digits ']' right after the address (like 10.0.0.1[4500])", 'a port', "'['");
    }
    if (isAddrChar(c)) {
      let w = i;
      while (w < text.length && isAddrChar(text.charCodeAt(w))) w++;
      if (text.charCodeAt(w) === 0x25 && isAlnum(text.charCodeAt(w + 1))) {
        w++;
        while (isAlnum(text.charCodeAt(w))) w++;
      }
      let d = i;
      while (isDigit(text.charCodeAt(d))) d++;
      let u = i;
      if (text.startsWith('unique:', i) && isDigit(text.charCodeAt(i + 7))) {
        u = i + 7;
        while (isDigit(text.charCodeAt(u))) u++;
      }
      const word = text.slice(i, w);
      if (u - i >= w - i && u > i) out.push({ kind: 'level', text: text.slice(i, u), at: here });
      else if (KEYWORDS.has(word)) out.push({ kind: 'kw', text: word, at: here });
      else if (d === w) out.push({ kind: 'dec', text: word, at: here });
      else out.push({ kind: 'addr', text: word, at: here });
      advance(Math.max(w, u) - i);
      continue;
    }
    const ch = String.fromCodePoint(text.codePointAt(i) as number);
    throw new SetkeyParseError(here, `unexpected character '${printable(ch)}' in the policy`, '', `'${printable(ch)}'`);
  }
  out.push({ kind: 'eof', text: '', at: pos() });
  return out;
}

function describe(t: PTok): string {
  if (t.kind === 'eof') return "the policy's end (';')";
  return describeText('word', t.text);
}

/** Parse the text after -P. Throws SetkeyParseError at the offending token. */
export function parsePolicy(text: string, at: SourcePos): PolicySpec {
  const toks = tokenize(text, at);
  let k = 0;
  const peek = (): PTok => toks[k];
  const next = (): PTok => toks[k++];
  const fail = (t: PTok, expected: string, hint = ''): never => {
    throw new SetkeyParseError(t.at, `expected ${expected}, got ${describe(t)}${hint}`, expected, describe(t));
  };
  const isKw = (t: PTok, ...w: string[]): boolean => t.kind === 'kw' && w.includes(t.text);

  const d = next();
  if (!isKw(d, 'in', 'out', 'fwd')) fail(d, "the policy's direction (in, out or fwd)");
  const spec: PolicySpec = { direction: d.text as PolicySpec['direction'], at: d.at, rules: [] };
  if (peek().kind === 'eof') return spec; // `-P out;`: direction only (spddelete)

  if (isKw(peek(), 'priority', 'prio')) {
    const p = next();
    spec.priorityAt = p.at;
    spec.priority = parsePriority();
  }
  const a = next();
  if (!isKw(a, 'discard', 'none', 'ipsec', 'entrust', 'bypass')) {
    fail(a, `an action (discard, none, ipsec, entrust or bypass)${spec.priority === undefined ? ' or a priority' : ''}`);
  }
  spec.action = a.text as PolicyAction;
  spec.actionAt = a.at;
  while (peek().kind !== 'eof') spec.rules.push(parseRule());
  return spec;

  function offset(t: PTok): number {
    if (t.kind !== 'dec') fail(t, 'a number (the priority offset)');
    return Number(t.text);
  }

  function parsePriority(): number {
    const t = next();
    const bad = (what: string): never => {
      throw new SetkeyParseError(t.at, `priority offset out of range: ${what}`, 'a priority offset in range', describe(t));
    };
    if (t.kind === 'dec') {
      const n = offset(t); // `priority N`: N above the default (higher priority = lower value)
      if (n > 0x8000_0000) bad('at most 2147483648');
      return (PRIORITY_DEFAULT - n) >>> 0;
    }
    if (t.kind === 'hyphen') {
      const n = offset(next()); // `priority -N`: below the default
      if (n > 0x7fff_ffff) bad('at most 2147483647');
      return (PRIORITY_DEFAULT + n) >>> 0;
    }
    if (isKw(t, 'low', 'def', 'high')) {
      const base = t.text === 'low' ? PRIORITY_LOW : t.text === 'def' ? PRIORITY_DEFAULT : PRIORITY_HIGH;
      const op = peek();
      if (op.kind === 'plus') {
        next();
        const n = offset(next());
        if (n > OFFSET_NEGATIVE_MAX) bad(`at most ${OFFSET_NEGATIVE_MAX} after '+'`);
        return (base - n) >>> 0;
      }
      if (op.kind === 'hyphen') {
        next();
        const n = offset(next());
        if (n > OFFSET_POSITIVE_MAX) bad(`at most ${OFFSET_POSITIVE_MAX} after '-'`);
        return (base + n) >>> 0;
      }
      return base;
    }
    return fail(t, 'a priority: a number, -number, or low/def/high with an optional +N or -N');
  }

  function parseAddress(t: PTok): RuleAddress {
    const ra: RuleAddress = { address: t.text, at: t.at };
    if (peek().kind === 'port') {
      const p = next();
      const n = Number(p.text);
      if (n > 65535) throw new SetkeyParseError(p.at, `port ${p.text} is out of range 0..65535`, 'a port 0..65535', describe(p));
      ra.port = n;
    }
    return ra;
  }

  function parseRule(): PolicyRule {
    const p = next();
    if (!isKw(p, 'esp', 'ah', 'ipcomp')) fail(p, 'a request rule protocol/mode/src-dst/level starting with esp, ah or ipcomp');
    const rule: PolicyRule = { protocol: p.text as PolicyRule['protocol'], mode: 'transport', level: 'default', at: p.at };
    const s1 = next();
    if (s1.kind !== 'slash') fail(s1, `'/' after ${p.text}: a rule needs at least protocol/mode`);
    const m = next();
    if (!isKw(m, 'transport', 'tunnel')) fail(m, 'a mode (transport or tunnel)');
    rule.mode = m.text as PolicyRule['mode'];
    if (peek().kind !== 'slash') return rule; // protocol/mode
    next();
    const t = peek();
    if (t.kind === 'addr' || t.kind === 'dec' || isKw(t, 'me', 'any')) {
      next();
      if (isKw(t, 'me', 'any')) {
        const h = next();
        if (h.kind !== 'hyphen') fail(h, `'-' after ${t.text} (me-any or any-me)`);
        const u = next();
        const want = t.text === 'me' ? 'any' : 'me';
        if (!isKw(u, want)) fail(u, `'${want}' (me-any or any-me)`);
        if ((t.text === 'me') !== (spec.direction === 'out')) {
          throw new SetkeyParseError(t.at, `${t.text}-${want} is only for ${t.text === 'me' ? 'out' : 'in'}bound policies`, '', describe(t));
        }
        rule.meAny = `${t.text}-${want}`;
      } else {
        rule.src = parseAddress(t);
        const h = next();
        if (h.kind !== 'hyphen') fail(h, "'-' between the tunnel endpoints (src-dst)");
        const u = next();
        if (u.kind !== 'addr' && u.kind !== 'dec') fail(u, 'the tunnel destination address');
        rule.dst = parseAddress(u);
        if ((rule.src.port === undefined) !== (rule.dst.port === undefined)) {
          const which = rule.src.port === undefined ? rule.src : rule.dst;
          throw new SetkeyParseError(which.at, 'give a [port] on both tunnel endpoints or on neither', "both endpoints' ports", describeText('word', which.address));
        }
      }
      if (peek().kind !== 'slash') return checkRule(rule); // protocol/mode/src-dst
      next(); // protocol/mode/src-dst/ then an optional level
      if (isKw(peek(), 'default', 'use', 'require', 'unique') || peek().kind === 'level') level(rule, next());
      else if (peek().kind === 'addr' || peek().kind === 'dec') fail(peek(), 'a level (default, use, require, unique or unique:N)');
      return checkRule(rule);
    }
    if (t.kind === 'slash') {
      next();
      const l = next();
      if (!(isKw(l, 'default', 'use', 'require', 'unique') || l.kind === 'level')) fail(l, "a level (default, use, require, unique or unique:N) after '//'");
      level(rule, l);
    }
    return checkRule(rule); // protocol/mode/ or protocol/mode//level
  }

  function level(rule: PolicyRule, l: PTok): void {
    if (l.kind === 'level') {
      rule.level = 'unique';
      const n = Number(l.text.slice(7));
      if (!(n <= 0xffff_ffff)) throw new SetkeyParseError(l.at, 'the reqid of unique:N must fit 32 bits', 'unique:N with N < 2^32', describe(l));
      rule.reqid = n;
    } else if (isKw(l, 'default', 'use', 'require', 'unique')) rule.level = l.text as PolicyRule['level'];
    else fail(l, 'a level (default, use, require, unique or unique:N)');
  }

  function checkRule(rule: PolicyRule): PolicyRule {
    if (spec.action === 'ipsec' && rule.mode === 'tunnel' && !rule.src && !rule.meAny) {
      throw new SetkeyParseError(rule.at, 'a tunnel-mode rule needs its endpoints: protocol/tunnel/src-dst/level', 'tunnel endpoints src-dst', describeText('word', rule.protocol));
    }
    return rule;
  }
}
