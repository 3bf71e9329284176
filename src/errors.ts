// Error classes shared by every layer: Node-style system errors, kernel replies, timeouts and bad configuration.

import { constants as osConstants } from 'node:os';

const errnoNames: Record<number, string> = {};
for (const [name, num] of Object.entries(osConstants.errno)) errnoNames[num] = name;

/** The symbolic name (`'EPERM'`) of an errno number (either sign), or `'E<n>'` when unknown. */
export function errnoName(errno: number): string {
  if (!Number.isSafeInteger(errno)) throw typeError('errno', 'an integer errno number', errno);
  const n = Math.abs(errno);
  return Object.hasOwn(errnoNames, n) ? errnoNames[n] : `E${n}`;
}

/** Positive errno number of a symbolic name (`'EPERM'` → 1), or undefined. */
export function errnoNumber(code: string): number | undefined {
  if (typeof code !== 'string') throw typeError('code', "an errno name such as 'EPERM'", code);
  return Object.hasOwn(osConstants.errno, code) ? (osConstants.errno as Record<string, number>)[code] : undefined;
}

/** An error constructor's text argument: a string (a caller building natt's errors itself gets a clear refusal). */
function text(v: unknown, field: string): string {
  if (typeof v !== 'string') throw typeError(field, 'a string', v);
  return v;
}

/** An error constructor's `{ cause }`, read from its own property only. */
function causeOption(v: unknown): { cause?: unknown } | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object') throw typeError('options', 'an object { cause? }', v);
  try {
    const d = Object.getOwnPropertyDescriptor(v, 'cause');
    return d && 'value' in d ? { cause: d.value } : undefined;
  } catch {
    throw typeError('options', 'an object whose properties can be read', undefined);
  }
}

/** Base class: every error natt creates on purpose is an `NattError` with a stable `code`. */
export class NattError extends Error {
  code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(text(message, 'message'), causeOption(options));
    this.name = new.target.name;
    this.code = text(code, 'code');
  }
}

/**
 * An operating-system error with Node's `SystemError` shape: `code` (`'EPERM'`), `errno` (negative, as
 * libuv reports it in Node), `syscall`, and a message that says what to do about it.
 */
export class NattSystemError extends NattError {
  errno: number;
  syscall: string;
  constructor(errno: number, syscall: string, advice?: string, extra?: Record<string, unknown>) {
    const code = errnoName(errno);
    if (advice !== undefined) text(advice, 'advice');
    super(code, `${text(syscall, 'syscall')} failed: ${code}${advice ? `: ${advice}` : ''}`);
    this.errno = -Math.abs(errno);
    this.syscall = syscall;
    if (extra !== undefined) {
      if (extra === null || typeof extra !== 'object') throw typeError('extra', 'an object of fields to add', extra);
      try {
        Object.assign(this, extra);
      } catch {
        throw typeError('extra', 'an object whose properties can be read', undefined);
      }
    }
  }
}

/** A request to the kernel's key manager (PF_KEY or XFRM) that the kernel answered with an errno. */
export class KernelReplyError extends NattSystemError {
  /** The request the kernel refused, e.g. `'SADB_ADD'` or `'XFRM_MSG_NEWSA'`. */
  messageType: string;
  constructor(errno: number, messageType: string, advice?: string) {
    super(errno, messageType, advice);
    this.messageType = messageType;
    this.message = `${messageType} refused by the kernel: ${errnoName(errno)}${advice ? `: ${advice}` : ''}`;
  }
}

/** A request that got no answer in time. */
export class NattTimeoutError extends NattError {
  constructor(what: string, ms: number) {
    if (typeof ms !== 'number') throw typeError('ms', 'a number of milliseconds', ms);
    super('ETIMEDOUT', `${text(what, 'what')} got no reply within ${ms} ms`);
  }
}

/** An operation that a backend cannot do on this platform. */
export class NattUnsupportedError extends NattError {
  constructor(message: string) {
    super('ERR_NATT_UNSUPPORTED', message);
  }
}

/** A caller's argument that is the wrong type: names the option. */
export function typeError(option: string, expected: string, got: unknown): TypeError {
  const e = new TypeError(`option "${option}" must be ${expected}, got ${describe(got, option)}`) as TypeError & { code: string };
  e.code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

/** A caller's argument that is out of range: names the option. */
export function rangeError(option: string, expected: string, got: unknown): RangeError {
  const e = new RangeError(`option "${option}" must be ${expected}, got ${describe(got, option)}`) as RangeError & { code: string };
  e.code = 'ERR_OUT_OF_RANGE';
  return e;
}

/**
 * A caller's property or class name as an error may show it: an identifier of at most 20 characters is printed; any
 * other name (longer, or with characters an identifier has not: a key's hex or base64 text used as a name) is
 * described by its length. No natt key fits in 20 characters of hex or base64.
 */
export function nameText(name: string): string {
  return /^[A-Za-z_$][\w$]{0,19}$/.test(name) ? name : `<a name of ${name.length} characters>`;
}

const article = (word: string): string => (/^[aeioAEIO]/.test(word) ? `an ${word}` : `a ${word}`);

/**
 * What the caller passed, in words, by its shape only, never its content (a value in any field may be a key put in the
 * wrong place): a string by its length, bytes and arrays by their length, an object by its class and the names of its
 * properties (names that could be key text by their length: nameText). Numbers, booleans, null and undefined are
 * printed (bigints too), except in an option that names a key.
 */
function describe(v: unknown, option: string): string {
  switch (typeof v) {
    case 'string':
      return v.length === 0 ? 'an empty string' : `a string of ${v.length} character${v.length === 1 ? '' : 's'}`;
    case 'number':
      return /key/i.test(option) ? 'a number' : String(v);
    case 'bigint':
      return /key/i.test(option) ? 'a bigint' : `${v}n`;
    case 'boolean':
    case 'undefined':
      return String(v);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
  }
  if (v === null) return 'null';
  const o = v as object;
  try {
    if (ArrayBuffer.isView(v)) return `${article(className(v, 'TypedArray'))} of ${v.byteLength} bytes`;
    if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)) {
      return `${article(className(v, 'ArrayBuffer'))} of ${v.byteLength} bytes`;
    }
    if (Array.isArray(v)) return `an Array of ${v.length} item${v.length === 1 ? '' : 's'}`;
    if (v instanceof Map || v instanceof Set) return `${article(className(v, v instanceof Map ? 'Map' : 'Set'))} of ${v.size} entries`;
    const name = className(o, 'Object');
    const keys = Object.keys(o);
    const what = name === 'Object' ? 'an object' : article(name);
    if (!keys.length) return `${what} with no properties`;
    const list = keys.slice(0, 8).map(nameText).join(', ');
    return `${what} with properties ${list}${keys.length > 8 ? `, ... (${keys.length} in all)` : ''}`;
  } catch {
    return 'an object that cannot be inspected'; // a Proxy whose traps throw
  }
}

/** The class name of an object (a caller's class name may be anything: shown only as nameText allows). */
function className(v: object, fallback: string): string {
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor;
  const name = typeof ctor?.name === 'string' && ctor.name ? ctor.name : fallback;
  return nameText(name).startsWith('<') ? fallback : name;
}
