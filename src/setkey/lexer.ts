// The setkey(8) lexer: ipsec-tools' token.l rules (longest match, rule order on ties), lazily, with line and column.

import { SetkeyParseError, describeText, printable, type SourcePos } from './errors';

export type TokenKind =
  | 'word' // [A-Za-z0-9:][A-Za-z0-9:%.-]* or [0-9,]+ (setkey's STRING), keywords included
  | 'dec' // [0-9]+
  | 'hex' // 0x[0-9a-fA-F]+
  | 'quoted' // "..." (text is the content, without the quotes)
  | 'option' // -P -E -A -C -R -m -u -f -r -lh -ls -bh -bs -ctx and -[n46]+
  | 'slash'
  | 'lbracket'
  | 'rbracket'
  | 'semi'
  | 'policy' // the raw text after -P up to the ';' (setkey's S_PL state)
  | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  at: SourcePos;
  /** Offset of the token's first character in the input. */
  offset: number;
}

/** What natt writes in place of a key it was not asked to reveal: no setkey token, so such a file never loads. */
export const HIDDEN_KEY = '<hidden>';

/** Options setkey's lexer knows, longest first so `-lh` wins over nothing and `-ctx` is read whole. */
const OPTIONS = ['-ctx', '-lh', '-ls', '-bh', '-bs', '-P', '-E', '-A', '-C', '-R', '-m', '-u', '-f', '-r'];

const isWordStart = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x3a; // 0-9 A-Z a-z :
const isWordChar = (c: number): boolean => isWordStart(c) || c === 0x25 || c === 0x2e || c === 0x2d; // % . -
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHexDigit = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** Characters the policy text after -P may hold (token.l's S_PL rule); the first may not be % + [ ]. */
const isPolicyChar = (c: number): boolean =>
  isWordStart(c) || c === 0x2e || c === 0x2d || c === 0x5f || c === 0x2f || c === 0x20 || c === 0x0a || c === 0x09 ||
  c === 0x25 || c === 0x2b || c === 0x5b || c === 0x5d;

/** A lazy token stream over one input; `next()` throws SetkeyParseError for characters setkey has no rule for. */
export class Lexer {
  readonly #src: string;
  readonly #file: string;
  #pos = 0;
  #line = 1;
  #lineStart = 0;
  #afterPolicyFlag = false;
  #peeked: Token | null = null;

  constructor(src: string, file: string) {
    this.#src = src;
    this.#file = file;
  }

  #here(offset = this.#pos): SourcePos {
    return { file: this.#file, line: this.#line, column: offset - this.#lineStart + 1 };
  }

  #newline(at: number): void {
    this.#line++;
    this.#lineStart = at + 1;
  }

  peek(): Token {
    if (!this.#peeked) this.#peeked = this.#read();
    return this.#peeked;
  }

  next(): Token {
    const t = this.peek();
    this.#peeked = null;
    return t;
  }

  #fail(offset: number, reason: string, found: string): never {
    throw new SetkeyParseError(this.#here(offset), reason, '', found);
  }

  #read(): Token {
    const s = this.#src;
    if (this.#afterPolicyFlag) {
      this.#afterPolicyFlag = false;
      return this.#readPolicy();
    }
    for (;;) {
      if (this.#pos >= s.length) return { kind: 'eof', text: '', at: this.#here(), offset: this.#pos };
      const c = s.charCodeAt(this.#pos);
      if (c === 0x20 || c === 0x09) {
        this.#pos++;
      } else if (c === 0x0a) {
        this.#newline(this.#pos);
        this.#pos++;
      } else if (c === 0x0d && s.charCodeAt(this.#pos + 1) === 0x0a) {
        this.#pos++; // CRLF: a deliberate leniency (setkey itself stops at the CR)
      } else if (c === 0x23) {
        while (this.#pos < s.length && s.charCodeAt(this.#pos) !== 0x0a) this.#pos++;
      } else break;
    }
    const start = this.#pos;
    const at = this.#here(start);
    const c = s.charCodeAt(start);
    const one = (kind: TokenKind): Token => {
      this.#pos++;
      return { kind, text: s[start], at, offset: start };
    };
    if (c === 0x3b) return one('semi');
    if (c === 0x2f) return one('slash');
    if (c === 0x5b) return one('lbracket');
    if (c === 0x5d) return one('rbracket');
    if (c === 0x22) {
      const close = s.indexOf('"', start + 1);
      if (close < 0) this.#fail(start, 'a quoted string is not closed: a \'"\' is missing', 'an unterminated quoted string');
      for (let i = start + 1; i < close; i++) if (s.charCodeAt(i) === 0x0a) this.#newline(i);
      this.#pos = close + 1;
      return { kind: 'quoted', text: s.slice(start + 1, close), at, offset: start };
    }
    if (c === 0x2d) {
      // -[n46]+ (address flags), or one of the options, longest match.
      let j = start + 1;
      while (j < s.length && (s[j] === 'n' || s[j] === '4' || s[j] === '6')) j++;
      const flagLen = j - start;
      let opt = '';
      for (const o of OPTIONS) if (s.startsWith(o, start) && o.length > opt.length) opt = o;
      if (flagLen > 1 && flagLen >= opt.length) {
        this.#pos = j;
        return { kind: 'option', text: s.slice(start, j), at, offset: start };
      }
      if (opt) {
        this.#pos = start + opt.length;
        if (opt === '-P') this.#afterPolicyFlag = true;
        return { kind: 'option', text: opt, at, offset: start };
      }
      let k = start + 1;
      while (k < s.length && isWordChar(s.charCodeAt(k))) k++;
      const text = s.slice(start, Math.max(k, start + 2));
      this.#fail(start, `unknown option ${describeText('word', text)}: setkey knows -m -r -u -f -lh -ls -bh -bs -ctx -E -A -C -R -P and -4 -6 -n`, describeText('word', text));
    }
    if (isWordStart(c) || c === 0x2c) {
      // Candidates: decstring, hexstring, STRING, [0-9,]+; the longest wins, ties go to the earlier rule.
      let dec = 0;
      while (isDigit(s.charCodeAt(start + dec))) dec++;
      let hex = 0;
      if (c === 0x30 && (s[start + 1] === 'x' || s[start + 1] === 'X') && isHexDigit(s.charCodeAt(start + 2))) {
        hex = 2;
        while (isHexDigit(s.charCodeAt(start + hex))) hex++;
      }
      let word = 0;
      if (isWordStart(c)) {
        word = 1;
        while (isWordChar(s.charCodeAt(start + word))) word++;
      }
      let comma = 0;
      while (isDigit(s.charCodeAt(start + comma)) || s.charCodeAt(start + comma) === 0x2c) comma++;
      const best = Math.max(dec, hex, word, comma);
      const kind: TokenKind = dec === best ? 'dec' : hex === best ? 'hex' : 'word';
      this.#pos = start + best;
      return { kind, text: s.slice(start, start + best), at, offset: start };
    }
    const ch = String.fromCodePoint(s.codePointAt(start) as number);
    if (s.startsWith(HIDDEN_KEY, start)) {
      this.#fail(start, 'this key was hidden when the file was written (natt writes keys only when asked to reveal them): put the key here', "'<hidden>'");
    }
    if (c === 0x5c) this.#fail(start, "unexpected '\\': setkey has no backslash line continuation (a statement simply goes on until its ';')", "'\\'");
    if (c === 0x0d) this.#fail(start, 'unexpected carriage return not followed by a newline', printable(ch));
    this.#fail(start, `unexpected character '${printable(ch)}'`, `'${printable(ch)}'`);
  }

  /** After -P: the policy text up to (not including) the ';', as setkey's S_PL state reads it. */
  #readPolicy(): Token {
    const s = this.#src;
    const start = this.#pos;
    const at = this.#here(start);
    let i = start;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x3b) break;
      if (c === 0x0a) {
        this.#newline(i);
        continue;
      }
      if (c === 0x0d && s.charCodeAt(i + 1) === 0x0a) continue;
      // token.l: the policy's first character may be anything allowed except % + [ ].
      if (isPolicyChar(c) && !(i === start && (c === 0x25 || c === 0x2b || c === 0x5b || c === 0x5d))) continue;
      this.#pos = i;
      const ch = String.fromCodePoint(s.codePointAt(i) as number);
      if (c === 0x23) this.#fail(i, "unexpected '#' inside the policy after -P: setkey allows no comment before the policy's ';'", "'#'");
      if (c === 0x5c) this.#fail(i, "unexpected '\\' inside the policy after -P: setkey has no backslash line continuation", "'\\'");
      this.#fail(i, `unexpected character '${printable(ch)}' inside the policy after -P`, `'${printable(ch)}'`);
    }
    this.#pos = i;
    if (i >= s.length) this.#fail(i, "the policy after -P is not ended by ';'", 'the end of the input');
    return { kind: 'policy', text: s.slice(start, i), at, offset: start };
  }
}

/** A token in words, for "expected X, got Y" (never a key's content). */
export function describeToken(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'the end of the input';
    case 'semi':
      return "';'";
    case 'slash':
      return "'/'";
    case 'lbracket':
      return "'['";
    case 'rbracket':
      return "']'";
    case 'quoted':
      return describeText('quoted', t.text);
    case 'hex':
      return describeText('hex', t.text);
    case 'policy':
      return 'a policy';
    case 'option':
      return `the option ${t.text}`;
    default:
      return describeText('word', t.text);
  }
}
