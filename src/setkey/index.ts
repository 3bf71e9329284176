// The setkey(8) front end: parseSetkey (the whole input, validated before anything runs) and what it re-exports.

import { readOptions, oneOf, stringOption } from '../core/options';
import { typeError } from '../errors';
import { SetkeyUnsupportedError, type UnsupportedFeature } from './errors';
import { lowerStatement, type LowerContext, type SetkeyOp } from './lower';
import { parseStatements } from './parser';
import { SETKEY_PLATFORMS, platformCaps, type SetkeyPlatform } from './platform';

export { SetkeyParseError, SetkeyUnsupportedError, type SourcePos, type UnsupportedFeature } from './errors';
export type { SetkeyOp } from './lower';
export { SETKEY_PLATFORMS, platformOf, platformCaps, type SetkeyPlatform, type PlatformCaps } from './platform';
export { applySetkey, type ApplySetkeyOptions, type ApplyResult, type ApplyFailure, type ApplyDump, type ApplyEvent } from './apply';
export { formatSadDump, formatSpdDump, type SadDumpOptions, type SpdDumpOptions } from './format';
export { toSetkey, opText, type ToSetkeyOptions } from './write';
export { PRIORITY_DEFAULT, PRIORITY_HIGH, PRIORITY_LOW } from './policy';

export interface ParseSetkeyOptions {
  /** The file name errors and operations carry (default `'<input>'`). */
  file?: string;
  /**
   * What the file is read for (default `'any'`: natt's model alone). A backend name adds what that backend cannot do
   * (`'userland'`, `'xfrm'`, `'pfkey-linux'`, `'pfkey-netbsd'`, `'pfkey-freebsd'`), and picks setkey's meaning there
   * (Linux PF_KEY's 96-bit `hmac-sha256`, the BSDs' `-m any` default).
   */
  platform?: SetkeyPlatform;
  /**
   * setkey -r / -k: `'rfc'` adds a fwd policy beside every `in` policy (setkey's default on Linux, so the default
   * for `'xfrm'` and `'pfkey-linux'`), `'kernel'` installs exactly what the file says (the default elsewhere).
   */
  semantics?: 'rfc' | 'kernel';
  /** Every address must be IPv4 (4) or IPv6 (6), as if each statement said -4 or -6 (a statement's own flag wins). */
  family?: 4 | 6;
}

/**
 * Parse and validate a whole setkey(8) input (ipsec-tools' grammar, with NetBSD's and FreeBSD's spellings) into
 * operations on natt's model, each with its source position. Nothing is applied: the result goes to applySetkey.
 *
 * - Not setkey (a syntax error, an unknown algorithm, a key of the wrong length, a bad address): throws
 *   SetkeyParseError at the first place in file order where setkey itself would stop.
 * - Valid setkey that natt or the platform cannot do (des-cbc, -ctx, host names, fwd on a BSD ...): once the whole
 *   input has read cleanly, throws SetkeyUnsupportedError (a NattUnsupportedError) listing every such place.
 * - `exit;` ends the input, as in setkey (what follows is not read).
 */
export function parseSetkey(text: string, opts: ParseSetkeyOptions = {}): SetkeyOp[] {
  if (typeof text !== 'string') throw typeError('text', 'a string (the setkey input)', text);
  const o = readOptions(opts, ['file', 'platform', 'semantics', 'family'] as const, 'options');
  const file = stringOption(o.file, 'file', undefined, '<input>');
  const platform = oneOf(o.platform, 'platform', SETKEY_PLATFORMS, 'any' as SetkeyPlatform);
  const caps = platformCaps(platform);
  const semantics = oneOf(o.semantics, 'semantics', ['rfc', 'kernel'] as const, caps.semantics);
  const family = oneOf(o.family, 'family', [4, 6] as const, undefined);
  const ctx: LowerContext = { caps, semantics, family, unsupported: [] }; // family own even when absent (never inherited)
  const ops: SetkeyOp[] = [];
  for (const statement of parseStatements(text, file)) ops.push(...lowerStatement(statement, ctx));
  const problems: UnsupportedFeature[] = ctx.unsupported;
  if (problems.length) {
    problems.sort((a, b) => a.at.line - b.at.line || a.at.column - b.at.column);
    throw new SetkeyUnsupportedError(problems, platform);
  }
  return ops;
}
