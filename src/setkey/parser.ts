// The setkey(8) statement grammar (ipsec-tools parse.y plus NetBSD's update): tokens to a syntax tree with positions.

import { SetkeyParseError, type SourcePos } from './errors';
import { Lexer, describeToken, type Token } from './lexer';
import { COMPRESSION_SPELLINGS, ENCRYPTION_SPELLINGS, INTEGRITY_SPELLINGS, compressionName, encryptionName, integrityName } from './names';
import { parsePolicy, type PolicySpec } from './policy';

/** Address-resolution flags before the addresses (`-4`, `-6`, `-n`, combined as `-n4`). */
export interface AddrFlags {
  /** The last of -4 / -6 wins, as in setkey. */
  family?: 4 | 6;
  at?: SourcePos;
}

/** `[port]` after an address: `[any]`, `[4500]`, or a service name. */
export interface PortSpec {
  kind: 'any' | 'number' | 'name';
  text: string;
  at: SourcePos;
}

export interface HostPort {
  host: Token;
  port?: PortSpec;
}

/** An SPD endpoint: address, optional /prefix, optional [port]. */
export interface SelectorEnd {
  host: Token;
  prefix?: { bits: number; at: SourcePos };
  port?: PortSpec;
}

export type SaProtocolWord = 'esp' | 'esp-old' | 'esp-udp' | 'ah' | 'ah-old' | 'ipcomp' | 'tcp';

export interface SaExtension {
  option: '-m' | '-r' | '-u' | '-f' | '-lh' | '-ls' | '-bh' | '-bs' | '-ctx';
  /** The argument: a mode or flag word, or a decimal number (as text). */
  value: string;
  at: SourcePos;
  valueAt: SourcePos;
}

export interface AlgorithmSpec {
  option: '-E' | '-A' | '-C';
  name: Token;
  key?: Token;
  /** `-C deflate -R`. */
  rawCpi?: SourcePos;
  at: SourcePos;
}

export interface SaStatement {
  kind: 'sa';
  command: 'add' | 'update' | 'getspi' | 'get' | 'delete';
  at: SourcePos;
  flags: AddrFlags;
  src: HostPort;
  dst: HostPort;
  protocol: SaProtocolWord;
  protocolAt: SourcePos;
  /** `esp-udp <address>`: the NAT-OA address. */
  nattOa?: Token;
  spi: Token;
  extensions: SaExtension[];
  algorithms: AlgorithmSpec[];
}

export interface DeleteAllStatement {
  kind: 'deleteall';
  at: SourcePos;
  flags: AddrFlags;
  src: Token;
  dst: Token;
  protocol: SaProtocolWord;
  protocolAt: SourcePos;
}

export interface FlushDumpStatement {
  kind: 'flush' | 'dump';
  at: SourcePos;
  protocol?: SaProtocolWord;
  protocolAt?: SourcePos;
}

export interface SpdStatement {
  kind: 'spd';
  command: 'spdadd' | 'spdupdate' | 'spddelete';
  at: SourcePos;
  flags: AddrFlags;
  src: SelectorEnd;
  dst: SelectorEnd;
  /** The upper-layer protocol: a number, `any`, `tcp`, or a protocols name. */
  upper: Token;
  /** ICMP type[,code] or GRE key after the upper-layer protocol. */
  upperMisc?: Token;
  ctx?: SourcePos;
  policy: PolicySpec;
}

export interface TaggedStatement {
  kind: 'tagged';
  command: 'spdadd' | 'spdupdate';
  at: SourcePos;
  tag: Token;
  policy: PolicySpec;
}

export interface SimpleStatement {
  kind: 'spdflush' | 'spddump' | 'exit';
  at: SourcePos;
}

export type Statement = SaStatement | DeleteAllStatement | FlushDumpStatement | SpdStatement | TaggedStatement | SimpleStatement;

/** Words setkey's lexer reserves in its normal state: never an address or a protocols name. */
export const RESERVED = new Set([
  'add', 'update', 'delete', 'deleteall', 'get', 'getspi', 'flush', 'dump', 'exit', 'quit', 'bye',
  'spdadd', 'spdupdate', 'spddelete', 'spddump', 'spdflush', 'tagged',
  'ah', 'esp', 'ah-old', 'esp-old', 'esp-udp', 'ipcomp', 'tcp',
  'oui', 'deflate', 'lzs', 'transport', 'tunnel', 'random-pad', 'seq-pad', 'zero-pad', 'nocyclic-seq', 'any',
]);

const PROTOCOL_WORDS = new Set<string>(['esp', 'esp-old', 'esp-udp', 'ah', 'ah-old', 'ipcomp', 'tcp']);
const PROTOCOLS_EXPECTED = 'a protocol (esp, esp-udp, ah, ipcomp, tcp, esp-old or ah-old)';
const SA_EXTENSIONS = new Set(['-m', '-r', '-u', '-f', '-lh', '-ls', '-bh', '-bs', '-ctx']);

/**
 * The statements of a setkey input, one at a time (so a caller can check each before the next is read, in file order,
 * as setkey does). Stops at `exit;` / `quit;` / `bye;` as setkey does (the rest is not read). Throws
 * SetkeyParseError at the first token setkey's grammar does not accept.
 */
export function* parseStatements(text: string, file: string): Generator<Statement, void, undefined> {
  const lx = new Lexer(text, file);
  for (;;) {
    if (lx.peek().kind === 'eof') return;
    const s = statement(lx);
    yield s;
    if (s.kind === 'exit') return;
  }
}

function fail(t: Token, expected: string, hint = ''): never {
  const found = describeToken(t);
  throw new SetkeyParseError(t.at, `expected ${expected}, got ${found}${hint}`, expected, found);
}

const isWord = (t: Token, ...words: string[]): boolean => t.kind === 'word' && words.includes(t.text);

function semi(lx: Lexer, hint = ''): void {
  const t = lx.next();
  if (t.kind !== 'semi') fail(t, "';' (the end of the statement)", hint);
}

function flags(lx: Lexer): AddrFlags {
  const f: AddrFlags = { family: undefined, at: undefined }; // own, so a polluted Object.prototype is never read
  while (lx.peek().kind === 'option' && /^-[n46]+$/.test(lx.peek().text)) {
    const t = lx.next();
    f.at ??= t.at;
    for (const ch of t.text.slice(1)) if (ch !== 'n') f.family = ch === '4' ? 4 : 6;
  }
  return f;
}

/** An address or host name (setkey's STRING; not a reserved word, not a plain number). */
function host(lx: Lexer, what: string): Token {
  const t = lx.next();
  if (t.kind !== 'word' || RESERVED.has(t.text)) fail(t, what);
  return t;
}

function port(lx: Lexer): PortSpec | undefined {
  if (lx.peek().kind !== 'lbracket') return undefined;
  lx.next();
  const t = lx.next();
  let spec: PortSpec;
  if (isWord(t, 'any')) spec = { kind: 'any', text: 'any', at: t.at };
  else if (t.kind === 'dec') spec = { kind: 'number', text: t.text, at: t.at };
  else if (t.kind === 'word') spec = { kind: 'name', text: t.text, at: t.at };
  else fail(t, "a port number or 'any' inside [ ]");
  const close = lx.next();
  if (close.kind !== 'rbracket') fail(close, "']' after the port");
  return spec;
}

function protocol(lx: Lexer, optional: boolean): { word: SaProtocolWord; at: SourcePos } | undefined {
  const t = lx.peek();
  if (t.kind === 'word' && PROTOCOL_WORDS.has(t.text)) {
    lx.next();
    return { word: t.text as SaProtocolWord, at: t.at };
  }
  if (optional) return undefined;
  return fail(lx.next(), PROTOCOLS_EXPECTED);
}

function decimal(lx: Lexer, what: string): Token {
  const t = lx.next();
  if (t.kind !== 'dec') fail(t, what);
  return t;
}

function statement(lx: Lexer): Statement {
  const t = lx.next();
  if (t.kind !== 'word') {
    fail(t, 'a command (add, update, get, getspi, delete, deleteall, flush, dump, spdadd, spdupdate, spddelete, spdflush, spddump)');
  }
  const at = t.at;
  switch (t.text) {
    case 'add':
    case 'update':
    case 'getspi':
    case 'get':
    case 'delete':
      return saStatement(lx, t.text, at);
    case 'deleteall': {
      const f = flags(lx);
      const src = host(lx, 'the source address');
      if (lx.peek().kind === 'lbracket') fail(lx.peek(), 'the destination address', ' (deleteall takes no [port])');
      const dst = host(lx, 'the destination address');
      if (lx.peek().kind === 'lbracket') fail(lx.peek(), PROTOCOLS_EXPECTED, ' (deleteall takes no [port])');
      const p = protocol(lx, false) as { word: SaProtocolWord; at: SourcePos };
      semi(lx);
      return { kind: 'deleteall', at, flags: f, src, dst, protocol: p.word, protocolAt: p.at };
    }
    case 'flush':
    case 'dump': {
      const p = protocol(lx, true);
      semi(lx, p ? '' : ` (${t.text} takes an optional protocol, then ';')`);
      return { kind: t.text, at, ...(p && { protocol: p.word, protocolAt: p.at }) };
    }
    case 'spdadd':
    case 'spdupdate':
    case 'spddelete':
      return spdStatement(lx, t.text, at);
    case 'spdflush':
    case 'spddump':
      semi(lx);
      return { kind: t.text, at };
    case 'exit':
    case 'quit':
    case 'bye':
      semi(lx);
      return { kind: 'exit', at };
    default:
      return fail(
        t,
        'a command (add, update, get, getspi, delete, deleteall, flush, dump, spdadd, spdupdate, spddelete, spdflush, spddump)',
      );
  }
}

function saStatement(lx: Lexer, command: SaStatement['command'], at: SourcePos): SaStatement {
  const f = flags(lx);
  const srcHost = host(lx, 'the source address');
  const src: HostPort = { host: srcHost, port: port(lx) };
  const dstHost = host(lx, 'the destination address');
  const dst: HostPort = { host: dstHost, port: port(lx) };
  const p = protocol(lx, false) as { word: SaProtocolWord; at: SourcePos };
  let nattOa: Token | undefined;
  if (p.word === 'esp-udp' && lx.peek().kind === 'word' && !RESERVED.has(lx.peek().text)) nattOa = lx.next();
  const spi = lx.next();
  if (spi.kind !== 'dec' && spi.kind !== 'hex') fail(spi, 'the SPI (a decimal or 0x hex number)');
  const extensions: SaExtension[] = [];
  for (;;) {
    const o = lx.peek();
    if (o.kind !== 'option' || !SA_EXTENSIONS.has(o.text)) break;
    lx.next();
    extensions.push(extension(lx, o));
  }
  const algorithms: AlgorithmSpec[] = [];
  if (command === 'add' || command === 'update') {
    const o = lx.next();
    if (o.kind !== 'option' || (o.text !== '-E' && o.text !== '-A' && o.text !== '-C')) {
      fail(o, 'an algorithm: -E (encryption), -A (authentication) or -C (compression)', o.kind === 'semi' ? ` (${command} needs its algorithms and keys)` : '');
    }
    algorithms.push(algorithm(lx, o));
    if (o.text === '-E' && lx.peek().kind === 'option' && lx.peek().text === '-A') algorithms.push(algorithm(lx, lx.next()));
  }
  const end = lx.peek();
  if (end.kind === 'option' && SA_EXTENSIONS.has(end.text) && algorithms.length) {
    fail(end, "';' (the end of the statement)", ` (extensions such as ${end.text} come before -E, -A and -C)`);
  }
  if (end.kind === 'option' && (end.text === '-E' || end.text === '-A' || end.text === '-C') && !algorithms.length) {
    fail(end, "';' (the end of the statement)", ` (${command} takes no algorithms)`);
  }
  semi(lx);
  return { kind: 'sa', command, at, flags: f, src, dst, protocol: p.word, protocolAt: p.at, ...(nattOa && { nattOa }), spi, extensions, algorithms };
}

function extension(lx: Lexer, o: Token): SaExtension {
  const option = o.text as SaExtension['option'];
  if (option === '-m') {
    const v = lx.next();
    if (!isWord(v, 'transport', 'tunnel', 'any')) fail(v, 'a mode after -m (transport, tunnel or any)');
    return { option, value: v.text, at: o.at, valueAt: v.at };
  }
  if (option === '-f') {
    const v = lx.next();
    if (!isWord(v, 'zero-pad', 'random-pad', 'seq-pad', 'nocyclic-seq')) fail(v, 'a flag after -f (zero-pad, random-pad, seq-pad or nocyclic-seq)');
    return { option, value: v.text, at: o.at, valueAt: v.at };
  }
  if (option === '-ctx') {
    const doi = decimal(lx, 'the DOI number after -ctx (-ctx DOI ALGORITHM "context")');
    decimal(lx, 'the algorithm number after -ctx DOI');
    const str = lx.next();
    if (str.kind !== 'quoted') fail(str, 'the quoted security context after -ctx DOI ALGORITHM');
    return { option, value: doi.text, at: o.at, valueAt: doi.at };
  }
  const what = { '-r': 'the replay window', '-u': 'the reqid', '-lh': 'seconds', '-ls': 'seconds', '-bh': 'bytes', '-bs': 'bytes' }[option];
  const v = decimal(lx, `a decimal number after ${option} (${what})`);
  return { option, value: v.text, at: o.at, valueAt: v.at };
}

function algorithm(lx: Lexer, o: Token): AlgorithmSpec {
  const option = o.text as AlgorithmSpec['option'];
  const name = lx.next();
  const kind = option === '-E' ? 'an encryption algorithm' : option === '-A' ? 'an authentication algorithm' : 'a compression algorithm';
  if (name.kind !== 'word') fail(name, `${kind} after ${option}`);
  const spec: AlgorithmSpec = { option, name, at: o.at };
  const known = option === '-E' ? encryptionName(name.text) : option === '-A' ? integrityName(name.text) : compressionName(name.text);
  if (!known) {
    const list = option === '-E' ? ENCRYPTION_SPELLINGS : option === '-A' ? INTEGRITY_SPELLINGS : COMPRESSION_SPELLINGS;
    fail(name, `${kind} after ${option} (${list.join(', ')})`);
  }
  if (option === '-C') {
    if (lx.peek().kind === 'option' && lx.peek().text === '-R') spec.rawCpi = lx.next().at;
    return spec;
  }
  // setkey's grammar: a keyed algorithm is followed by its key (a quoted or a 0x hex string); null takes none.
  const k = lx.peek();
  if (known.keyless) {
    if (k.kind === 'quoted' || k.kind === 'hex') fail(k, option === '-E' ? "-A or ';'" : "';'", ` (${name.text} takes no key)`);
  } else {
    if (k.kind !== 'quoted' && k.kind !== 'hex') fail(k, `the key for ${name.text} (a "quoted string" or 0x hex digits)`);
    spec.key = lx.next();
  }
  return spec;
}

function selectorEnd(lx: Lexer, what: string): SelectorEnd {
  const h = host(lx, what);
  const end: SelectorEnd = { host: h };
  if (lx.peek().kind === 'slash') {
    lx.next();
    const b = decimal(lx, 'a prefix length after /');
    end.prefix = { bits: Number(b.text), at: b.at };
  }
  end.port = port(lx);
  return end;
}

function spdStatement(lx: Lexer, command: SpdStatement['command'], at: SourcePos): SpdStatement | TaggedStatement {
  if (command !== 'spddelete' && isWord(lx.peek(), 'tagged')) {
    lx.next();
    const tag = lx.next();
    if (tag.kind !== 'quoted') fail(tag, 'the quoted tag name after tagged');
    const policy = policyAfterFlag(lx);
    semi(lx);
    return { kind: 'tagged', command, at, tag, policy };
  }
  const f = flags(lx);
  const src = selectorEnd(lx, 'the source address or prefix');
  const dst = selectorEnd(lx, 'the destination address or prefix');
  const upper = lx.next();
  const upperOk = upper.kind === 'dec' || isWord(upper, 'any', 'tcp') || (upper.kind === 'word' && !RESERVED.has(upper.text));
  if (!upperOk) {
    fail(
      upper,
      'the upper-layer protocol (any, tcp, udp, icmp, icmp6, a protocols name or a number)',
      upper.kind === 'word' ? ` (setkey reserves '${upper.text}': write its number)` : '',
    );
  }
  let upperMisc: Token | undefined;
  const m = lx.peek();
  if ((m.kind === 'word' && !RESERVED.has(m.text)) || m.kind === 'dec') upperMisc = lx.next();
  let ctx: SourcePos | undefined;
  if (lx.peek().kind === 'option' && lx.peek().text === '-ctx') {
    const c = lx.next();
    decimal(lx, 'the DOI number after -ctx (-ctx DOI ALGORITHM "context")');
    decimal(lx, 'the algorithm number after -ctx DOI');
    const str = lx.next();
    if (str.kind !== 'quoted') fail(str, 'the quoted security context after -ctx DOI ALGORITHM');
    ctx = c.at;
  }
  const policy = policyAfterFlag(lx);
  semi(lx);
  return { kind: 'spd', command, at, flags: f, src, dst, upper, ...(upperMisc && { upperMisc }), ...(ctx && { ctx }), policy };
}

function policyAfterFlag(lx: Lexer): PolicySpec {
  const p = lx.next();
  if (p.kind !== 'option' || p.text !== '-P') fail(p, '-P and the policy (-P in|out|fwd ...)');
  const text = lx.next();
  // The lexer hands over everything up to the ';' as one policy token (setkey's S_PL state).
  if (text.kind !== 'policy' || !/\S/.test(text.text)) {
    throw new SetkeyParseError(text.at, "expected the policy's direction (in, out or fwd) after -P", "the policy's direction", 'nothing');
  }
  return parsePolicy(text.text, text.at);
}
