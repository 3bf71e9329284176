// The model's JSON form on the control socket: SAs, policies, events and errors to and from the wire, keys as hex.
//
// One schema per model type says which fields travel and what each holds. toWire() builds the JSON form of a value
// the database handed out (known fields only: nothing else leaks; key bytes as hex only when asked, else ''), and
// fromWire() checks what the other side sent against the same schema (own properties, unknown fields refused, every
// field's type and range) before turning hex back into bytes. Requests that carry an SA get their hex keys turned into
// bytes by saKeysFromHex() and are then checked by the model's one boundary (src/sadb/validate.ts), like any caller's.

import { KernelReplyError, NattError, NattSystemError, NattTimeoutError, NattUnsupportedError, typeError } from '../errors';
import { readOptions } from '../core/options';
import { heldKey, hideSaKeys } from '../sadb/keys';
import type { SecurityAssociation } from '../sadb/types';
import { ControlProtocolError, type SadbEventName, type WireError } from './protocol';

/** What a field holds. `hex`: key bytes (hex on the wire, Uint8Array in the model). */
export type Schema =
  | { t: 'str'; max?: number }
  | { t: 'int'; min: number; max: number }
  | { t: 'num' }
  | { t: 'bool' }
  | { t: 'hex' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'obj'; fields: Readonly<Record<string, Schema>>; required?: readonly string[] }
  | { t: 'arr'; of: Schema; max: number };

const U32 = 0xffff_ffff;
const str: Schema = { t: 'str', max: 256 };
const u8: Schema = { t: 'int', min: 0, max: 255 };
const u16: Schema = { t: 'int', min: 0, max: 65535 };
const u32: Schema = { t: 'int', min: 0, max: U32 };
const count: Schema = { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER };
const num: Schema = { t: 'num' };
const bool: Schema = { t: 'bool' };
const protocol: Schema = { t: 'enum', values: ['esp', 'ah', 'ipcomp'] };
const obj = (fields: Record<string, Schema>, required: readonly string[] = []): Schema => ({ t: 'obj', fields, required });

export const SELECTOR: Schema = obj({ src: str, dst: str, proto: u8, sport: u16, dport: u16 }, ['src', 'dst']);
const LIFETIME = obj({ bytes: count, packets: count, addSeconds: num, useSeconds: num });
const CURRENT = obj({ bytes: count, packets: count, addTime: num, useTime: num });
const ALG_KEY = obj({ algorithm: str, key: { t: 'hex' } }, ['algorithm']);

export const SA: Schema = obj(
  {
    src: str,
    dst: str,
    spi: u32,
    protocol,
    mode: { t: 'enum', values: ['transport', 'tunnel', 'any'] },
    reqid: u32,
    replayWindow: u32,
    esn: bool,
    encryption: ALG_KEY,
    integrity: ALG_KEY,
    allowNoIntegrity: bool,
    compression: obj({ algorithm: str }, ['algorithm']),
    natt: obj(
      {
        type: { t: 'enum', values: ['espinudp', 'espinudp-non-ike'] },
        sport: u16,
        dport: u16,
        oa: obj({ initiator: str, responder: str }),
        keepaliveInterval: u32,
      },
      ['type', 'sport', 'dport'],
    ),
    lifetime: obj({ soft: LIFETIME, hard: LIFETIME }),
    selector: SELECTOR,
    current: CURRENT,
    state: { t: 'enum', values: ['larval', 'mature', 'dying', 'dead'] },
    seq: u32,
  },
  ['src', 'dst', 'spi'],
);

export const SA_ID: Schema = obj({ src: str, dst: str, spi: u32, protocol }, ['src', 'dst', 'spi']);

const TEMPLATE = obj(
  {
    protocol,
    mode: { t: 'enum', values: ['transport', 'tunnel'] },
    src: str,
    dst: str,
    level: { t: 'enum', values: ['default', 'use', 'require', 'unique'] },
    reqid: u32,
  },
  ['protocol', 'mode'],
);

const DIRECTION: Schema = { t: 'enum', values: ['in', 'out', 'fwd'] };

export const POLICY: Schema = obj(
  {
    selector: SELECTOR,
    direction: DIRECTION,
    action: { t: 'enum', values: ['ipsec', 'none', 'discard'] },
    templates: { t: 'arr', of: TEMPLATE, max: 16 },
    priority: u32,
    id: u32,
    current: CURRENT,
  },
  ['selector', 'direction', 'action'],
);

const ALG_INFO = (iv: boolean): Schema =>
  obj({ algorithm: str, id: u32, minBits: u32, maxBits: u32, ...(iv ? { ivBits: u32 } : {}) }, ['algorithm', 'minBits', 'maxBits']);

export const SUPPORTED: Schema = obj(
  { protocol, encryption: { t: 'arr', of: ALG_INFO(true), max: 256 }, integrity: { t: 'arr', of: ALG_INFO(false), max: 256 } },
  ['protocol', 'encryption', 'integrity'],
);

const ENDPOINT = obj({ address: str, port: u16 }, ['address', 'port']);

/** The data of each forwarded Sadb event. */
export const EVENT_DATA: Readonly<Record<SadbEventName, Schema>> = {
  acquire: obj(
    { seq: u32, src: str, dst: str, protocol, policy: obj({ id: u32, direction: DIRECTION, selector: SELECTOR }) },
    ['seq', 'src', 'dst', 'protocol'],
  ),
  expire: obj({ kind: { t: 'enum', values: ['soft', 'hard'] }, sa: SA }, ['kind', 'sa']),
  newMapping: obj({ sa: SA_ID, reqid: u32, old: ENDPOINT, new: ENDPOINT }, ['sa', 'old', 'new']),
  add: SA,
  delete: SA_ID,
  register: SUPPORTED,
};

/** Key bytes as lowercase hex. */
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** At most this many hex digits in one key (1024 bytes: far past any algorithm's key). */
const MAX_HEX = 2048;

/** Hex (even length, 0-9a-f either case) to bytes; a TypeError/RangeError naming `name` (values described by shape). */
export function hexToBytes(v: unknown, name: string): Uint8Array {
  if (typeof v !== 'string' || v.length % 2 !== 0 || v.length > MAX_HEX || !/^[0-9a-fA-F]*$/.test(v)) {
    throw typeError(name, `an even number of hex digits (at most ${MAX_HEX})`, v);
  }
  return Uint8Array.from(Buffer.from(v, 'hex'));
}

/**
 * The JSON form of a value the database handed out: only the schema's fields, each of the schema's type (anything
 * else is left out), key bytes as hex when `keys`, else as '' (the key removed, the algorithm kept).
 */
export function toWire(v: unknown, s: Schema, keys: boolean): unknown {
  switch (s.t) {
    case 'hex':
      return keys && v instanceof Uint8Array ? toHex(v) : '';
    case 'str':
    case 'enum':
      return typeof v === 'string' ? v : undefined;
    case 'int':
    case 'num':
      return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
    case 'bool':
      return typeof v === 'boolean' ? v : undefined;
    case 'arr':
      return Array.isArray(v) ? v.slice(0, s.max).map((x) => toWire(x, s.of, keys)).filter((x) => x !== undefined) : undefined;
    case 'obj': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
      const out: Record<string, unknown> = {};
      for (const [k, fs] of Object.entries(s.fields)) {
        // Each field is read by name, own properties only; key bytes live in a key holder (src/sadb/keys.ts), not in
        // an own property, and are read from it.
        const own = Object.hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined;
        const x = fs.t === 'hex' ? (heldKey(v) ?? own) : own;
        if (x === undefined) continue;
        const w = toWire(x, fs, keys);
        if (w !== undefined) out[k] = w;
      }
      return out;
    }
  }
}

const bad = (path: string, expected: string): ControlProtocolError =>
  new ControlProtocolError(`the daemon sent ${path} that is not ${expected}`);

/**
 * Check a value the other side sent against `s` and build the model's form: a fresh object of the schema's fields
 * only, hex turned into bytes. A mismatch is a ControlProtocolError naming the field (values are never shown).
 */
export function fromWire(v: unknown, s: Schema, path = 'a value'): unknown {
  switch (s.t) {
    case 'hex':
      if (typeof v !== 'string' || v.length % 2 !== 0 || v.length > MAX_HEX || !/^[0-9a-fA-F]*$/.test(v)) throw bad(path, 'a hex key');
      return Uint8Array.from(Buffer.from(v, 'hex'));
    case 'str':
      if (typeof v !== 'string' || v.length > (s.max ?? 256)) throw bad(path, `a string of at most ${s.max ?? 256} characters`);
      return v;
    case 'enum':
      if (typeof v !== 'string' || !s.values.includes(v)) throw bad(path, `one of ${s.values.join(', ')}`);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < s.min || v > s.max) throw bad(path, `an integer from ${s.min} to ${s.max}`);
      return v;
    case 'num':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(path, 'a finite number');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw bad(path, 'true or false');
      return v;
    case 'arr':
      if (!Array.isArray(v) || v.length > s.max) throw bad(path, `an array of at most ${s.max} items`);
      return v.map((x, i) => fromWire(x, s.of, `${path}[${i}]`));
    case 'obj': {
      let o: Record<string, unknown>;
      try {
        o = readOptions(v, Object.keys(s.fields), path) as Record<string, unknown>;
      } catch (e) {
        throw new ControlProtocolError(`the daemon sent ${path} that is not as expected: ${(e as Error).message}`);
      }
      if (v === undefined) throw bad(path, 'an object');
      const out: Record<string, unknown> = {};
      for (const k of s.required ?? []) if (o[k] === undefined) throw bad(`${path}.${k}`, 'present');
      for (const [k, fs] of Object.entries(s.fields)) if (o[k] !== undefined) out[k] = fromWire(o[k], fs, `${path}.${k}`);
      return out;
    }
  }
}

/** An SA from the wire, keys hidden (non-enumerable) as every backend hands them out. */
export function saFromWire(v: unknown, path = 'an SA'): SecurityAssociation {
  return hideSaKeys(fromWire(v, SA, path) as SecurityAssociation);
}

/**
 * An SA in a request (add, update): its hex keys turned into bytes, everything else left for checkSa to judge.
 * Only own properties are copied (the message came from JSON.parse; '__proto__' stays an own, unknown field).
 */
export function saKeysFromHex(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (const part of ['encryption', 'integrity'] as const) {
    const p = out[part];
    if (p !== null && typeof p === 'object' && !Array.isArray(p) && Object.hasOwn(p, 'key')) {
      out[part] = { ...(p as Record<string, unknown>), key: hexToBytes((p as Record<string, unknown>).key, `${part}.key`) };
    }
  }
  return out;
}

// ---- errors -------------------------------------------------------------------------------------------------------

/** Messages longer than this are cut (an error message is words, not data). */
const MAX_ERROR_MESSAGE = 4096;

const NAMES = ['KernelReplyError', 'NattSystemError', 'NattTimeoutError', 'NattUnsupportedError', 'NattError', 'TypeError', 'RangeError', 'AbortError'];

/** The wire form of anything a handler threw: the class, Node's fields, the message (natt's messages carry no keys). */
export function errorToWire(e: unknown): WireError {
  if (!(e instanceof Error) && !(e instanceof DOMException)) {
    return { name: 'Error', code: 'ERR_NATT_CONTROL_INTERNAL', message: `the daemon's handler threw a ${e === null ? 'null' : typeof e}, not an Error` };
  }
  const x = e as Error & { code?: unknown; errno?: unknown; syscall?: unknown; messageType?: unknown };
  let name: string;
  if (e instanceof KernelReplyError) name = 'KernelReplyError';
  else if (e instanceof NattSystemError) name = 'NattSystemError';
  else if (e instanceof NattTimeoutError) name = 'NattTimeoutError';
  else if (e instanceof NattUnsupportedError) name = 'NattUnsupportedError';
  else if (e instanceof NattError) name = 'NattError';
  else if (e instanceof TypeError) name = 'TypeError';
  else if (e instanceof RangeError) name = 'RangeError';
  else if (e.name === 'AbortError') name = 'AbortError';
  else name = 'Error';
  const out: WireError = { name, message: String(x.message).slice(0, MAX_ERROR_MESSAGE) };
  if (typeof x.code === 'string') out.code = x.code.slice(0, 64);
  if (typeof x.errno === 'number' && Number.isSafeInteger(x.errno) && Math.abs(x.errno) <= 4096) out.errno = x.errno;
  if (typeof x.syscall === 'string') out.syscall = x.syscall.slice(0, 64);
  if (typeof x.messageType === 'string') out.messageType = x.messageType.slice(0, 64);
  return out;
}

/** The error a wire error stands for, as the class the daemon's backend threw (same code, errno, syscall, message). */
export function errorFromWire(w: WireError): Error {
  const name = NAMES.includes(w.name) ? w.name : 'Error';
  const errno = Math.abs(w.errno ?? 0);
  let e: Error;
  switch (name) {
    case 'KernelReplyError':
      e = new KernelReplyError(errno, w.messageType ?? w.syscall ?? 'request');
      break;
    case 'NattSystemError':
      e = new NattSystemError(errno, w.syscall ?? 'request', undefined, w.messageType !== undefined ? { messageType: w.messageType } : undefined);
      break;
    case 'NattTimeoutError':
      e = new NattTimeoutError('request', 0);
      break;
    case 'NattUnsupportedError':
      e = new NattUnsupportedError(w.message);
      break;
    case 'NattError':
      e = new NattError(w.code ?? 'ERR_NATT', w.message);
      break;
    case 'TypeError':
      e = new TypeError(w.message);
      break;
    case 'RangeError':
      e = new RangeError(w.message);
      break;
    case 'AbortError':
      e = new DOMException(w.message, 'AbortError') as unknown as Error;
      break;
    default:
      e = new Error(w.message);
  }
  if (name !== 'AbortError') {
    e.message = w.message;
    const x = e as Error & { code?: string; errno?: number; syscall?: string };
    if (w.code !== undefined) x.code = w.code;
    if (w.errno !== undefined) x.errno = w.errno;
    if (w.syscall !== undefined) x.syscall = w.syscall;
  }
  return e;
}
