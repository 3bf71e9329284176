// Key hygiene: key material natt hands out sits in holders whose `key` no inspection, JSON or String() can print.
//
// A holder is an ordinary-looking object (`{ algorithm: 'aes-cbc' }`, or a decoded PF_KEY key extension / XFRM
// algorithm attribute) whose `key` is an accessor on a shared prototype reading a module-private WeakMap. Nothing
// reachable from the object holds the bytes: util.inspect lists own properties (showHidden adds own non-enumerable
// ones, and walks a prototype's accessors only below a constructor that is not built in: the prototype's
// `constructor` is Object, so it stops), `getters: true` evaluates own accessors only, JSON.stringify and util.format
// %j call toJSON, structuredClone and `{ ...spread }` copy own properties. The holder's own inspection and toJSON show
// `key: [hidden N bytes]`. Reading `holder.key` is the one way to the bytes (an explicit act of the caller).

import { inspect, type InspectOptionsStylized } from 'node:util';
import { typeError } from '../errors';
import type { EncryptionParams, IntegrityParams, SecurityAssociation } from './types';

/** The bytes of each holder; only this module reads it. */
const KEYS = new WeakMap<object, Uint8Array>();
const EMPTY = new Uint8Array(0);

/** What `[hidden N bytes]` prints as inside a holder's inspection. */
class HiddenMarker {
  readonly #text: string;
  constructor(bytes: number) {
    this.#text = `[hidden ${bytes} byte${bytes === 1 ? '' : 's'}]`;
  }
  [inspect.custom](_depth: number, options: InspectOptionsStylized): string {
    return options.stylize(this.#text, 'special');
  }
  toJSON(): string {
    return this.#text;
  }
}

/** The own properties of a holder with its key replaced by a marker (what inspection and JSON show). */
function shown(holder: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(holder)) out[k] = (holder as Record<string, unknown>)[k];
  out.key = new HiddenMarker(KEYS.get(holder)?.length ?? 0);
  return out;
}

/**
 * A key holder: `key` reads the bytes (a Uint8Array) and may be set to another Uint8Array; nothing prints them.
 * `new KeyHolder({ algorithm: 'aes-cbc' }, bytes)`, or hideKey() on an existing object.
 */
export class KeyHolder {
  constructor(fields: Record<string, unknown>, key: Uint8Array) {
    for (const k of Object.keys(fields)) if (k !== 'key') (this as Record<string, unknown>)[k] = fields[k];
    KEYS.set(this, checkBytes(key));
  }

  /** The key bytes (empty when the key was removed). */
  get key(): Uint8Array {
    return KEYS.get(this) ?? EMPTY;
  }

  set key(v: Uint8Array) {
    KEYS.set(this, checkBytes(v));
  }

  /** JSON shows the holder's fields and `key: '[hidden N bytes]'`. */
  toJSON(): Record<string, unknown> {
    return shown(this);
  }

  [inspect.custom](_depth: number, options: InspectOptionsStylized, insp: typeof inspect): string {
    return insp(shown(this), options);
  }
}
// util.inspect walks the prototype's accessors (showHidden) below a constructor it does not know as built in: name
// Object as the constructor so it never does. `instanceof KeyHolder` still works (it reads KeyHolder.prototype).
Object.defineProperty(KeyHolder.prototype, 'constructor', { value: Object, writable: true, enumerable: false, configurable: true });

function checkBytes(v: unknown): Uint8Array {
  if (v === undefined) return EMPTY;
  if (!(v instanceof Uint8Array)) throw typeError('key', 'a Uint8Array', v);
  return v;
}

/** Whether `v` is a key holder made by natt (a WeakMap entry: it cannot be faked). */
export function isKeyHolder(v: unknown): v is KeyHolder {
  return typeof v === 'object' && v !== null && KEYS.has(v);
}

/**
 * The key of a holder, read without touching anything a caller could have replaced (for the boundary checks that read
 * own properties only: a holder's `key` is not one). `undefined` when `v` is no holder.
 */
export function heldKey(v: unknown): Uint8Array | undefined {
  return typeof v === 'object' && v !== null ? KEYS.get(v) : undefined;
}

/**
 * Make `params.key` unprintable, in place: the object becomes a key holder (its prototype is changed and its own
 * `key` property removed; `params.key` still reads the bytes). Returns the same object, or a new holder with the same
 * fields when the object cannot be changed (frozen, sealed). A holder is returned as it is.
 */
export function hideKey<T extends { key?: Uint8Array }>(params: T): T {
  if (isKeyHolder(params)) return params;
  const key = checkBytes(params.key);
  if (!Object.isExtensible(params) || !Reflect.deleteProperty(params, 'key')) return new KeyHolder(params as Record<string, unknown>, key) as unknown as T;
  KEYS.set(params, key);
  Object.setPrototypeOf(params, KeyHolder.prototype);
  return params;
}

/** Hide the keys of an SA in place (see hideKey): `encryption` and `integrity` become holders. Returns the same SA. */
export function hideSaKeys<T extends SecurityAssociation>(sa: T): T {
  if (sa.encryption) sa.encryption = hideKey(sa.encryption);
  if (sa.integrity) sa.integrity = hideKey(sa.integrity);
  return sa;
}

/** A holder of `algorithm` with no key bytes (what events carry unless the database reveals keys). */
function keyless<T extends EncryptionParams | IntegrityParams>(p: T): T {
  return new KeyHolder({ algorithm: p.algorithm }, EMPTY) as unknown as T;
}

/** A copy of an SA with the key bytes removed entirely (`key` reads as 0 bytes): for broadcasts and expire events. */
export function withoutKeys(sa: SecurityAssociation): SecurityAssociation {
  const out: SecurityAssociation = { ...sa };
  if (sa.encryption) out.encryption = keyless(sa.encryption);
  if (sa.integrity) out.integrity = keyless(sa.integrity);
  return out;
}

/** A copy of a holder (or any `{ key }` object) as a holder of its own copy of the bytes, or with the bytes removed. */
export function copyHolder<T extends { key?: Uint8Array }>(v: T, keepKey: boolean): T {
  const key = keepKey ? Uint8Array.from(heldKey(v) ?? v.key ?? EMPTY) : EMPTY;
  return new KeyHolder(v as Record<string, unknown>, key) as unknown as T;
}
