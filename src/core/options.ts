// The API boundary's one options reader: own properties only, unknown names refused, each value checked and named.

import { NattError, nameText, rangeError, typeError } from '../errors';

/** A caller's options as read: a null-prototype object holding only the allowed names the caller set itself. */
export type ReadOptions<K extends string> = { readonly [P in K]?: unknown };

/**
 * Read `value` as an options object: `undefined` is `{}`; anything but a plain object (null, an array, a function, a
 * primitive) is a TypeError naming `what`. Only the object's own string-keyed properties are read (a property that
 * `Object.prototype` or another prototype supplies is never seen); a name outside `allowed` is a TypeError naming it
 * (typos like `adress` fail instead of being ignored); a property whose value is `undefined` counts as absent.
 */
export function readOptions<K extends string>(value: unknown, allowed: readonly K[], what = 'options'): ReadOptions<K> {
  const out = Object.create(null) as Record<string, unknown>;
  if (value === undefined) return out as ReadOptions<K>;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw typeError(what, 'an object', value);
  let names: (string | symbol)[];
  try {
    names = Reflect.ownKeys(value);
  } catch {
    throw typeError(what, 'an object whose properties can be listed', value);
  }
  for (const name of names) {
    if (typeof name !== 'string') continue; // symbol-keyed properties are never options
    if (!(allowed as readonly string[]).includes(name)) {
      const e = new TypeError(
        `unknown option "${prefix(what)}${nameText(name)}"${allowed.length ? `: ${what} takes ${allowed.join(', ')}` : `: ${what} takes none`}`,
      ) as TypeError & { code: string };
      e.code = 'ERR_INVALID_ARG_VALUE';
      throw e;
    }
    let v: unknown;
    try {
      const d = Object.getOwnPropertyDescriptor(value, name);
      v = d === undefined ? undefined : 'value' in d ? d.value : Reflect.get(value, name);
    } catch {
      throw typeError(`${prefix(what)}${nameText(name)}`, 'a readable property', undefined);
    }
    if (v !== undefined) out[name] = v;
  }
  return out as ReadOptions<K>;
}

/** `what` as the start of a field path: a description ('options', 'call options') names no field; a field does (`natt.`). */
function prefix(what: string): string {
  return what === 'options' || what.includes(' ') ? '' : `${what}.`;
}

/** The full name of `field` under `what` (`natt` + `sport` → `natt.sport`). */
export function fieldName(what: string, field: string): string {
  return `${prefix(what)}${field}`;
}

/** An integer in [min, max] (`undefined` gives `dflt`); else a TypeError / RangeError naming `field`. */
export function intOption(v: unknown, field: string, min: number, max: number): number;
export function intOption<D>(v: unknown, field: string, min: number, max: number, dflt: D): number | D;
export function intOption(v: unknown, field: string, min: number, max: number, ...dflt: unknown[]): unknown {
  if (v === undefined && dflt.length) return dflt[0];
  if (typeof v !== 'number') throw typeError(field, `an integer from ${min} to ${max}`, v);
  if (!Number.isSafeInteger(v) || v < min || v > max) throw rangeError(field, `an integer from ${min} to ${max}`, v);
  return v;
}

/** A boolean (`undefined` gives `dflt`); anything else, `0` and `'false'` included, is a TypeError naming `field`. */
export function boolOption(v: unknown, field: string): boolean;
export function boolOption<D>(v: unknown, field: string, dflt: D): boolean | D;
export function boolOption(v: unknown, field: string, ...dflt: unknown[]): unknown {
  if (v === undefined && dflt.length) return dflt[0];
  if (typeof v !== 'boolean') throw typeError(field, 'true or false', v);
  return v;
}

/** One of `values` (`undefined` gives `dflt`); a value of another type is a TypeError, another string a RangeError. */
export function oneOf<T extends string | number>(v: unknown, field: string, values: readonly T[]): T;
export function oneOf<T extends string | number, D>(v: unknown, field: string, values: readonly T[], dflt: D): T | D;
export function oneOf<T extends string | number>(v: unknown, field: string, values: readonly T[], ...dflt: unknown[]): unknown {
  if (v === undefined && dflt.length) return dflt[0];
  const list = values.map((x) => (typeof x === 'string' ? `'${x}'` : String(x)));
  const expected = list.length > 1 ? `${list.slice(0, -1).join(', ')} or ${list[list.length - 1]}` : list[0];
  if ((values as readonly unknown[]).includes(v)) return v;
  if (typeof v !== typeof values[0]) throw typeError(field, expected, v);
  throw rangeError(field, expected, v);
}

/** A string (`undefined` gives `dflt`), non-empty unless `allowEmpty`. */
export function stringOption(v: unknown, field: string, o?: { allowEmpty?: boolean }): string;
export function stringOption<D>(v: unknown, field: string, o: { allowEmpty?: boolean } | undefined, dflt: D): string | D;
export function stringOption(v: unknown, field: string, o?: { allowEmpty?: boolean }, ...dflt: unknown[]): unknown {
  if (v === undefined && dflt.length) return dflt[0];
  if (typeof v !== 'string') throw typeError(field, 'a string', v);
  if (v.length === 0 && !o?.allowEmpty) throw rangeError(field, 'a non-empty string', v);
  return v;
}

/** A callback: a function, or `undefined` (returned as is). Any other value is a TypeError naming `field`. */
export function callbackOption<F extends (...args: never[]) => unknown>(v: unknown, field: string): F | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'function') throw typeError(field, 'a function', v);
  return v as F;
}

/**
 * A caller's array, copied item by item (never through its iterator, which a caller may have replaced): a Proxy or an
 * item getter that throws is a TypeError naming `field`, more than `max` items a RangeError. The copy is the caller's
 * no longer: a later change to the array changes nothing.
 */
export function arrayOption(v: unknown, field: string, max = 0xffff_ffff): unknown[] {
  if (!Array.isArray(v)) throw typeError(field, 'an array', v);
  let out: unknown[];
  try {
    const n = v.length;
    if (n > max) throw rangeError(field, `an array of at most ${max} items`, v);
    out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = v[i];
  } catch (e) {
    if (e instanceof RangeError && e.message.startsWith('option')) throw e;
    throw typeError(field, 'an array whose items can be read', undefined);
  }
  return out;
}

/**
 * Run `f`, which reads a caller's value field by field (an encoder walking a message): what a getter or a Proxy of the
 * caller throws on the way becomes a TypeError naming `field` (the thrown value as its cause). natt's own refusals
 * (TypeError, RangeError, NattError) pass as they are, so a field is still named exactly where a reader names it.
 */
export function readingCallerValue<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError || e instanceof NattError) throw e;
    const err = typeError(field, 'a value whose fields can be read (a getter or a Proxy of it threw)', undefined);
    (err as { cause?: unknown }).cause = e;
    throw err;
  }
}

/** An AbortSignal, or `undefined`. Anything else (`{}`, an AbortController) is a TypeError naming `field`. */
export function signalOption(v: unknown, field = 'signal'): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw typeError(field, 'an AbortSignal (controller.signal)', v);
  return v;
}

/** The longest duration natt accepts: 2^53−1 ms, far past any SA lifetime (timers chain past 2^31 ms: core/timers.ts). */
export const MAX_DURATION_MS = Number.MAX_SAFE_INTEGER;

/**
 * A duration in milliseconds: a finite number ≥ `min` (default 0) and ≤ MAX_DURATION_MS (`undefined` gives `dflt`).
 * NaN, Infinity, strings ('30s') and negatives are refused naming `field`.
 */
export function durationMs(v: unknown, field: string, min?: number): number;
export function durationMs<D>(v: unknown, field: string, min: number | undefined, dflt: D): number | D;
export function durationMs(v: unknown, field: string, min = 0, ...dflt: unknown[]): unknown {
  if (v === undefined && dflt.length) return dflt[0];
  const expected = `a number of milliseconds from ${min} to 2^53-1`;
  if (typeof v !== 'number') throw typeError(field, expected, v);
  if (!Number.isFinite(v) || v < min || v > MAX_DURATION_MS) throw rangeError(field, expected, v);
  return v;
}

/** A duration in seconds, finite, ≥ `min` (default 0), at most MAX_DURATION_MS / 1000 (`undefined` gives `dflt`). */
export function durationSeconds(v: unknown, field: string, min?: number): number;
export function durationSeconds<D>(v: unknown, field: string, min: number | undefined, dflt: D): number | D;
export function durationSeconds(v: unknown, field: string, min = 0, ...dflt: unknown[]): unknown {
  if (v === undefined && dflt.length) return dflt[0];
  const expected = `a number of seconds from ${min} to 2^53/1000`;
  if (typeof v !== 'number') throw typeError(field, expected, v);
  if (!Number.isFinite(v) || v < min || v * 1000 > MAX_DURATION_MS) throw rangeError(field, expected, v);
  return v;
}

/** Per-call options (CallOptions) after checking: `timeout` in ms (the caller's default when absent), `signal`. */
export interface CheckedCallOptions {
  timeout: number;
  signal: AbortSignal | undefined;
}

/** Check per-call options `{ timeout?, signal? }`; `defaultTimeout` applies when `timeout` is absent. */
export function readCallOptions(opts: unknown, defaultTimeout: number): CheckedCallOptions {
  const o = readOptions(opts, ['timeout', 'signal'] as const, 'call options');
  return { timeout: durationMs(o.timeout, 'timeout', 1, defaultTimeout), signal: signalOption(o.signal) };
}
