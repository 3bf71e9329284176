// The setkey front end's errors: a file that is not setkey (line, column, what was expected) and what natt cannot do.

import { NattError, NattUnsupportedError, rangeError, typeError } from '../errors';
import { arrayOption, readOptions } from '../core/options';

/** Where a statement or token starts in its file: 1-based line and column (a tab counts as one column). */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

/** A caller's SourcePos, checked (own properties, file a string, line and column numbers). */
export function checkPos(v: unknown, name: string): SourcePos {
  if (v === undefined) throw typeError(name, 'an object { file, line, column }', v);
  const o = readOptions(v, ['file', 'line', 'column'] as const, name);
  if (typeof o.file !== 'string') throw typeError(`${name}.file`, 'a string', o.file);
  for (const k of ['line', 'column'] as const) if (typeof o[k] !== 'number') throw typeError(`${name}.${k}`, 'a number', o[k]);
  return { file: o.file, line: o.line as number, column: o.column as number };
}

/** `file:line:column`. */
export function where(at: SourcePos): string {
  return `${at.file}:${at.line}:${at.column}`;
}

/**
 * The input is not valid setkey(8): a lexical or grammar error, a malformed address, a key of the wrong length. Real
 * setkey rejects the same input (it prints `line N: ... at [token]`). Never carries key material: tokens that could
 * be keys (quoted and hex strings) are described by their shape only.
 */
export class SetkeyParseError extends NattError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** What the parser wanted at this place, in words (`'a protocol (esp, esp-udp, ah, ipcomp, ...)'`). */
  readonly expected: string;
  /** What it found, described safely (`"the word 'rc5-cbc'"`, `'a quoted string of 16 characters'`). */
  readonly found: string;
  /** The problem without the position. */
  readonly reason: string;
  constructor(at: SourcePos, reason: string, expected = '', found = '') {
    for (const [v, name] of [[reason, 'reason'], [expected, 'expected'], [found, 'found']] as const) {
      if (typeof v !== 'string') throw typeError(name, 'a string', v);
    }
    super('ERR_NATT_SETKEY_PARSE', `${where(checkPos(at, 'at'))}: ${reason}`);
    this.file = at.file;
    this.line = at.line;
    this.column = at.column;
    this.expected = expected;
    this.found = found;
    this.reason = reason;
  }
}

/** One thing natt cannot do, and where the file asks for it. */
export interface UnsupportedFeature {
  at: SourcePos;
  /** Short name of the feature (`'-ctx'`, `'des-cbc'`, `'host names'`, `'priority'`). */
  feature: string;
  /** The whole explanation, with what to do instead. */
  reason: string;
}

/**
 * The file is valid setkey, but asks for something natt's model or the chosen backend cannot do (an algorithm it
 * lacks, SELinux labels, host names, forward policies on a BSD ...). `features` lists every such place in the file;
 * the message names the first. A `NattUnsupportedError` (code `ERR_NATT_UNSUPPORTED`).
 */
export class SetkeyUnsupportedError extends NattUnsupportedError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly feature: string;
  /** The platform the file was checked for (`'userland'`, `'pfkey-linux'`, ...). */
  readonly platform: string;
  readonly features: UnsupportedFeature[];
  constructor(features: UnsupportedFeature[], platform: string) {
    const list = arrayOption(features, 'features');
    if (list.length === 0) throw rangeError('features', 'at least one { at, feature, reason }', features);
    features = list.map((f, i) => {
      const o = readOptions(f, ['at', 'feature', 'reason'] as const, `features[${i}]`);
      if (f === undefined) throw typeError(`features[${i}]`, 'an object { at, feature, reason }', f);
      for (const k of ['feature', 'reason'] as const) if (typeof o[k] !== 'string') throw typeError(`features[${i}].${k}`, 'a string', o[k]);
      return { at: checkPos(o.at, `features[${i}].at`), feature: o.feature as string, reason: o.reason as string };
    });
    if (typeof platform !== 'string') throw typeError('platform', 'a string', platform);
    const first = features[0];
    const more = features.length > 1 ? ` (and ${features.length - 1} more place${features.length > 2 ? 's' : ''} natt cannot do)` : '';
    super(`${where(first.at)}: ${first.reason}${more}`);
    this.file = first.at.file;
    this.line = first.at.line;
    this.column = first.at.column;
    this.feature = first.feature;
    this.platform = platform;
    this.features = features;
  }
}

/**
 * A token's text for an error message: words and numbers as they are (shortened), never a key's content. A quoted or
 * 0x string is described by its length; so is a word that could be key text written without its 0x or quotes (more
 * than 16 characters of letters, digits, '+', '/' or '=' only: addresses have '.' or ':', algorithm names '-').
 */
export function describeText(kind: 'word' | 'quoted' | 'hex' | 'other', text: string): string {
  if (kind === 'quoted') return `a quoted string of ${text.length} characters`;
  if (kind === 'hex') return `a hex string of ${Math.max(0, text.length - 2)} digits`;
  if (/^[0-9A-Za-z+/=]{17,}$/.test(text)) return `a ${kind === 'word' ? 'word' : 'string'} of ${text.length} characters`;
  const shown = text.length > 40 ? `${text.slice(0, 40)}...` : text;
  return kind === 'word' ? `'${printable(shown)}'` : printable(shown);
}

/** Control characters and non-ASCII shown as escapes, so an error message is always one clean line. */
export function printable(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c === 9) out += '\\t';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else out += c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u{${c.toString(16)}}`;
  }
  return out;
}
