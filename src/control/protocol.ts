// The natt daemon's control protocol: framing (32-bit big-endian length + UTF-8 JSON), the message catalogue, its checks.
//
// vici's framing is the anchor: a Unix stream socket carries frames, each a 4-byte big-endian length and then that many
// bytes of one UTF-8 JSON object. A frame longer than the limit is refused before its body is read (the connection is
// closed). Every message is read with own properties only, unknown fields refused, every field checked; a message
// that breaks these rules is a ControlProtocolError naming the field. docs/reference/tunnel.md (the control socket) has the catalogue in words.

import * as path from 'node:path';
import { NattError, rangeError, typeError } from '../errors';
import { boolOption, durationMs, intOption, oneOf, readOptions, stringOption } from '../core/options';

/** The protocol versions this build speaks; the hello exchange picks the highest both sides know. */
export const PROTOCOL_VERSIONS: readonly number[] = [1];
/** Default largest frame (the JSON, without the 4-byte length), both directions. */
export const DEFAULT_MAX_FRAME = 1 << 20;
/** The smallest frame limit either side may set (a hello reply must fit). */
export const MIN_MAX_FRAME = 4096;
/** Where control sockets live by default (src/daemon/config.ts builds its default path from it). */
export const CONTROL_DIR = '/run/natt';

/** The control socket of the daemon whose TUN is `name`: /run/natt/<name>.sock. */
export function controlPathFor(name: string): string {
  stringOption(name, 'name');
  if (name.includes('/') || name.includes('\0')) throw rangeError('name', 'a daemon (TUN) name without "/" or NUL', name);
  return `${CONTROL_DIR}/${name}.sock`;
}

/** The default daemon's control socket (the daemon's default TUN is natt0). */
export const DEFAULT_CONTROL_PATH = controlPathFor('natt0');

/** The longest socket path: sun_path holds 108 bytes on Linux, 104 on the BSDs and macOS, with its NUL. */
const MAX_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Check a control socket path (absolute, not too long for sun_path). */
export function checkControlPath(v: unknown, name = 'path'): string {
  const p = stringOption(v, name, undefined, DEFAULT_CONTROL_PATH);
  if (!path.isAbsolute(p)) throw rangeError(name, 'an absolute path', p);
  if (Buffer.byteLength(p) > MAX_PATH_BYTES || p.includes('\0')) throw rangeError(name, `a path of at most ${MAX_PATH_BYTES} bytes (sun_path)`, p);
  return p;
}

/** The Sadb methods every control server serves. */
export const SADB_METHODS = [
  'add',
  'update',
  'get',
  'delete',
  'deleteAll',
  'flush',
  'dump',
  'getSpi',
  'register',
  'spdAdd',
  'spdUpdate',
  'spdDelete',
  'spdGet',
  'spdDump',
  'spdFlush',
] as const;
export type SadbMethod = (typeof SADB_METHODS)[number];

/** The Sadb events a server forwards to subscribers ('message' and 'error' stay with the daemon). */
export const SADB_EVENTS = ['acquire', 'expire', 'newMapping', 'add', 'delete', 'register'] as const;
export type SadbEventName = (typeof SADB_EVENTS)[number];

/** Event names neither side may use for the daemon's own events (EventEmitter's and the client's own). */
export const RESERVED_EVENTS: readonly string[] = ['message', 'error', 'close', 'newListener', 'removeListener'];

/** A method or event name the daemon may add: a letter, then letters, digits, '.', '-', '_' (at most 64). */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;

/** Request ids: 1..2^32-1 (0 is the connection itself: errors that close it). */
const ID_MAX = 0xffff_ffff;
/** At most this many event names in one subscribe. */
const MAX_EVENT_NAMES = 64;
/** Strings the envelope carries (names, versions' client label, error messages) are bounded. */
const MAX_MESSAGE = 16_384;

/** A peer broke the protocol (bad frame, bad JSON, a bad or unknown field): the connection is closed. */
export class ControlProtocolError extends NattError {
  constructor(message: string) {
    super('ERR_NATT_CONTROL_PROTOCOL', stringOption(message, 'message', { allowEmpty: true }));
  }
}

/** A frame larger than the limit, refused before its body is read. */
export class ControlFrameError extends NattError {
  readonly size: number;
  readonly limit: number;
  constructor(size: number, limit: number, direction: 'received' | 'to send') {
    intOption(size, 'size', 0, Number.MAX_SAFE_INTEGER);
    intOption(limit, 'limit', 0, Number.MAX_SAFE_INTEGER);
    oneOf(direction, 'direction', ['received', 'to send'] as const);
    super('ERR_NATT_CONTROL_FRAME', `a control frame of ${size} bytes ${direction} is larger than the limit of ${limit} bytes`);
    this.size = size;
    this.limit = limit;
  }
}

// ---- framing ----------------------------------------------------------------------------------------------------

/** One message as a frame: the 4-byte big-endian length, then the JSON. Throws ControlFrameError past `maxFrame`. */
export function encodeFrame(msg: object, maxFrame = DEFAULT_MAX_FRAME): Buffer {
  const json = JSON.stringify(msg);
  const n = Buffer.byteLength(json);
  if (n > maxFrame) throw new ControlFrameError(n, maxFrame, 'to send');
  const buf = Buffer.allocUnsafe(4 + n);
  buf.writeUInt32BE(n, 0);
  buf.write(json, 4, 'utf8');
  return buf;
}

/**
 * Cuts a byte stream into frames. Holds at most one frame's bytes (plus the chunk being read): a length over the limit
 * throws ControlFrameError at once, without waiting for (or keeping) the body; a length of 0 is a ControlProtocolError.
 */
export class FrameDecoder {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #have = 0;
  /** Bytes of the frame being read, or -1 while the header is awaited. */
  #need = -1;

  constructor(maxFrame = DEFAULT_MAX_FRAME) {
    this.#max = maxFrame;
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.#have;
  }

  /** Feed bytes; returns the frames completed by them (their JSON bytes). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (chunk.length === 0) return out;
    this.#chunks.push(chunk);
    this.#have += chunk.length;
    for (;;) {
      if (this.#need < 0) {
        if (this.#have < 4) break;
        const n = this.#take(4).readUInt32BE(0);
        if (n > this.#max) {
          this.#reset();
          throw new ControlFrameError(n, this.#max, 'received');
        }
        if (n === 0) {
          this.#reset();
          throw new ControlProtocolError('an empty control frame (length 0)');
        }
        this.#need = n;
      }
      if (this.#have < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = -1;
    }
    return out;
  }

  #reset(): void {
    this.#chunks = [];
    this.#have = 0;
    this.#need = -1;
  }

  /** The first `n` buffered bytes (n <= #have), as one Buffer. */
  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.#chunks[0];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#have -= n;
    return out;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A frame's JSON object (strict UTF-8, an object at the top), or a ControlProtocolError. */
export function parseFrame(frame: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(frame);
  } catch {
    throw new ControlProtocolError('a control frame that is not UTF-8');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ControlProtocolError(`a control frame that is not JSON (${frame.length} bytes)`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ControlProtocolError('a control frame that is not a JSON object');
  return v as Record<string, unknown>;
}

/** Run a field check; a caller-style TypeError/RangeError becomes a ControlProtocolError with the same words. */
function field<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ControlProtocolError) throw e;
    throw new ControlProtocolError((e as Error).message);
  }
}

const readId = (v: unknown, name = 'id'): number => intOption(v, name, 1, ID_MAX);
const ownType = (raw: Record<string, unknown>): unknown => (Object.hasOwn(raw, 'type') ? raw.type : undefined);

function nameList(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) throw typeError(what, `an array of names`, v);
  if (v.length === 0 || v.length > MAX_EVENT_NAMES) throw typeError(what, `1 to ${MAX_EVENT_NAMES} names`, v);
  return v.map((n: unknown, i: number) => {
    const s = stringOption(n, `${what}[${i}]`);
    if (!NAME_PATTERN.test(s)) throw typeError(`${what}[${i}]`, 'an event name (a letter, then letters, digits, ., -, _)', s);
    return s;
  });
}

// ---- client → server ----------------------------------------------------------------------------------------------

/** `hello`: the first message of every connection; `versions` lists what the client speaks. */
export interface HelloRequest {
  type: 'hello';
  id: number;
  versions: number[];
  /** A label for the daemon's log (a program name), at most 64 characters. */
  client?: string;
}

/** `request`: call a method; `params` is the method's argument object (see the catalogue). */
export interface CallRequest {
  type: 'request';
  id: number;
  method: string;
  params?: unknown;
  /** The caller's CallOptions timeout in ms, passed on to the database. */
  timeout?: number;
  /** Ask for key material in the reply (get, dump); the server gives it only if it allows revealing keys. */
  revealKeys: boolean;
}

/** `cancel`: abort request `target` (its AbortSignal fired, or it timed out at the client). */
export interface CancelRequest {
  type: 'cancel';
  id: number;
  target: number;
}

/** `subscribe` / `unsubscribe`: which events this connection receives. */
export interface SubscribeRequest {
  type: 'subscribe' | 'unsubscribe';
  id: number;
  events: string[];
  /** subscribe: ask for keys in 'add' events (given only if the server allows revealing keys). */
  revealKeys: boolean;
}

export type ClientMessage = HelloRequest | CallRequest | CancelRequest | SubscribeRequest;

/** Read one client message; a ControlProtocolError names what is wrong (the connection is then closed). */
export function parseClientMessage(frame: Uint8Array): ClientMessage {
  const raw = parseFrame(frame);
  return field(() => {
    // The type first (own property only); then each type's own fields, anything else refused.
    const type = oneOf(ownType(raw), 'type', ['hello', 'request', 'cancel', 'subscribe', 'unsubscribe'] as const);
    switch (type) {
      case 'hello': {
        const o = readOptions(raw, ['type', 'id', 'versions', 'client'], 'hello');
        if (!Array.isArray(o.versions) || o.versions.length === 0 || o.versions.length > 16) {
          throw typeError('versions', 'an array of 1 to 16 protocol versions', o.versions);
        }
        const versions = o.versions.map((v: unknown, i: number) => intOption(v, `versions[${i}]`, 1, 0xffff));
        const msg: HelloRequest = { type, id: readId(o.id), versions };
        if (o.client !== undefined) {
          msg.client = stringOption(o.client, 'client');
          // It goes into the daemon's log: printable ASCII only (no line breaks to forge log lines with).
          if (!/^[\x20-\x7e]{1,64}$/.test(msg.client)) throw typeError('client', 'a label of 1 to 64 printable ASCII characters', msg.client);
        }
        return msg;
      }
      case 'request': {
        const o = readOptions(raw, ['type', 'id', 'method', 'params', 'timeout', 'revealKeys'], 'request');
        const method = stringOption(o.method, 'method');
        if (!NAME_PATTERN.test(method)) throw typeError('method', 'a method name (a letter, then letters, digits, ., -, _)', method);
        const msg: CallRequest = { type, id: readId(o.id), method, revealKeys: boolOption(o.revealKeys, 'revealKeys', false) };
        if (o.params !== undefined) msg.params = o.params;
        if (o.timeout !== undefined) msg.timeout = durationMs(o.timeout, 'timeout', 1);
        return msg;
      }
      case 'cancel': {
        const o = readOptions(raw, ['type', 'id', 'target'], 'cancel');
        return { type, id: readId(o.id), target: readId(o.target, 'target') };
      }
      default: {
        const o = readOptions(raw, ['type', 'id', 'events', 'revealKeys'], type);
        const revealKeys = boolOption(o.revealKeys, 'revealKeys', false);
        if (type === 'unsubscribe' && o.revealKeys !== undefined) throw typeError('revealKeys', 'absent in an unsubscribe', o.revealKeys);
        return { type, id: readId(o.id), events: nameList(o.events, 'events'), revealKeys };
      }
    }
  });
}

// ---- server → client ----------------------------------------------------------------------------------------------

/** The answer to hello: the version chosen and what this daemon serves. */
export interface HelloReply {
  type: 'hello';
  id: number;
  version: number;
  server: 'natt';
  /** The backend of the database behind the daemon ('userland' for the tunnel daemon). */
  backend: string;
  /** Every method the server serves: the Sadb ones and the daemon's own. */
  methods: string[];
  /** Every event one may subscribe to: the Sadb ones and the daemon's own. */
  events: string[];
  /** The server's frame limit (the client must not send more). */
  maxFrame: number;
  /** Whether the server gives key material to clients that ask. */
  revealKeys: boolean;
}

/** An error as it travels: the class name and Node's fields, never a key. */
export interface WireError {
  name: string;
  code?: string;
  errno?: number;
  syscall?: string;
  messageType?: string;
  message: string;
}

export type ServerMessage =
  | HelloReply
  | { type: 'reply'; id: number; result?: unknown }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'item'; id: number; item: unknown }
  | { type: 'end'; id: number; count: number }
  | { type: 'event'; event: string; data?: unknown };

function wireError(v: unknown): WireError {
  const o = readOptions(v, ['name', 'code', 'errno', 'syscall', 'messageType', 'message'], 'error');
  const bounded = (x: unknown, name: string): string => {
    const s = stringOption(x, name, { allowEmpty: true });
    if (s.length > MAX_MESSAGE) throw typeError(name, `a string of at most ${MAX_MESSAGE} characters`, `${s.length} characters`);
    return s;
  };
  const e: WireError = { name: bounded(o.name, 'error.name'), message: bounded(o.message, 'error.message') };
  if (o.code !== undefined) e.code = bounded(o.code, 'error.code');
  if (o.errno !== undefined) e.errno = intOption(o.errno, 'error.errno', -4096, 4096);
  if (o.syscall !== undefined) e.syscall = bounded(o.syscall, 'error.syscall');
  if (o.messageType !== undefined) e.messageType = bounded(o.messageType, 'error.messageType');
  return e;
}

/** Read one server message (its envelope; results, items and event data are checked by what asked for them). */
export function parseServerMessage(frame: Uint8Array): ServerMessage {
  const raw = parseFrame(frame);
  return field((): ServerMessage => {
    const type = oneOf(ownType(raw), 'type', ['hello', 'reply', 'error', 'item', 'end', 'event'] as const);
    switch (type) {
      case 'hello': {
        const o = readOptions(raw, ['type', 'id', 'version', 'server', 'backend', 'methods', 'events', 'maxFrame', 'revealKeys'], 'hello');
        const names = (v: unknown, what: string): string[] => {
          if (!Array.isArray(v) || v.length > 1024) throw typeError(what, 'an array of at most 1024 names', v);
          return v.map((n: unknown, i: number) => {
            const s = stringOption(n, `${what}[${i}]`);
            if (!NAME_PATTERN.test(s)) throw typeError(`${what}[${i}]`, 'a name', s);
            return s;
          });
        };
        return {
          type,
          id: readId(o.id),
          version: intOption(o.version, 'version', 1, 0xffff),
          server: oneOf(o.server, 'server', ['natt'] as const),
          backend: (() => {
            const b = stringOption(o.backend, 'backend');
            if (!NAME_PATTERN.test(b)) throw typeError('backend', 'a backend name', b);
            return b;
          })(),
          methods: names(o.methods, 'methods'),
          events: names(o.events, 'events'),
          maxFrame: intOption(o.maxFrame, 'maxFrame', MIN_MAX_FRAME, 0xffff_ffff),
          revealKeys: boolOption(o.revealKeys, 'revealKeys'),
        };
      }
      case 'reply': {
        const o = readOptions(raw, ['type', 'id', 'result'], 'reply');
        return o.result === undefined ? { type, id: readId(o.id) } : { type, id: readId(o.id), result: o.result };
      }
      case 'error': {
        const o = readOptions(raw, ['type', 'id', 'error'], 'error');
        return { type, id: intOption(o.id, 'id', 0, ID_MAX), error: wireError(o.error) };
      }
      case 'item': {
        const o = readOptions(raw, ['type', 'id', 'item'], 'item');
        if (o.item === undefined) throw typeError('item', 'a value', undefined);
        return { type, id: readId(o.id), item: o.item };
      }
      case 'end': {
        const o = readOptions(raw, ['type', 'id', 'count'], 'end');
        return { type, id: readId(o.id), count: intOption(o.count, 'count', 0, Number.MAX_SAFE_INTEGER) };
      }
      default: {
        const o = readOptions(raw, ['type', 'event', 'data'], 'event');
        const event = stringOption(o.event, 'event');
        if (!NAME_PATTERN.test(event)) throw typeError('event', 'an event name', event);
        return o.data === undefined ? { type, event } : { type, event, data: o.data };
      }
    }
  });
}

/** The highest version both sides speak, or undefined. */
export function pickVersion(theirs: readonly number[], ours: readonly number[] = PROTOCOL_VERSIONS): number | undefined {
  let best: number | undefined;
  for (const v of theirs) if (ours.includes(v) && (best === undefined || v > best)) best = v;
  return best;
}
