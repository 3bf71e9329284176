// Error classes shared by every layer: Node-style system errors, kernel replies, timeouts and bad configuration.

import { inspect } from 'node:util';
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
 * What the caller passed, in words, without ever printing key material: byte arrays, arrays and objects are described
 * by their shape (objects by their property names only: a value inside may be a key), and for an option that names a
 * key even a string or number is described only by its type and length.
 */
function describe(v: unknown, option: string): string {
  try {
    return shape(v, option);
  } catch {
    return 'a value that cannot be inspected'; // a Proxy whose traps throw, a getter that throws
  }
}

function shape(v: unknown, option: string): string {
  if (v instanceof Uint8Array) return `a ${v.constructor.name} of ${v.length} bytes`;
  if (Array.isArray(v)) return `an Array of ${v.length} items`;
  if (/key/i.test(option) && v !== null && v !== undefined) {
    return typeof v === 'string' ? `a string of ${v.length} characters` : `a ${typeof v}`;
  }
  if (v !== null && typeof v === 'object') {
    try {
      const name = Object.getPrototypeOf(v)?.constructor?.name ?? 'Object';
      const keys = Object.keys(v);
      return `${name === 'Object' ? 'an object' : `a ${name}`} with ${keys.length ? `properties ${keys.slice(0, 8).join(', ')}${keys.length > 8 ? ', ...' : ''}` : 'no properties'}`;
    } catch {
      return 'an object that cannot be inspected'; // a Proxy whose traps throw
    }
  }
  return inspect(v, { depth: 0, breakLength: Infinity, maxStringLength: 40 });
}
