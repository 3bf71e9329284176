// serveControl(): the daemon's control socket, serving any Sadb (plus the daemon's own methods and events) to local peers.
//
// Who may connect: root, the daemon's own uid and `allowUids`, as the kernel says (SO_PEERCRED); the socket file is
// 0600 in a 0700 directory besides. Everyone else gets one error frame and is closed (counted). What a connection may
// do: say hello, then call methods, cancel them, subscribe to events. What it may not do is hurt the daemon or the
// other clients: a frame over the limit, bad JSON or a bad field closes it; an unknown method or bad params is an
// error reply; at most `maxRequests` calls run per connection; a client that does not read its replies is cut off
// once `maxQueued` bytes wait for it, and a dump waits at most `stallMs` for it to read (the dump pauses meanwhile:
// nothing is buffered without bound); a client that vanishes mid-request has its calls aborted (AbortSignal); idle
// connections that never said hello are closed after `helloMs` and are the first to go when the server is full.
// Everything refused or cut is counted in stats(); nothing a client sends can throw out of the server.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { NattError, NattSystemError, rangeError, typeError } from '../errors';
import { boolOption, callbackOption, durationMs, intOption, readOptions, stringOption } from '../core/options';
import { longTimeout, type LongTimer } from '../core/timers';
import { adviceFor, withAdvice } from '../native/advice';
import { requireNative } from '../native/binding';
import type { CallOptions, IpsecProtocol, SaId, Sadb, SecurityAssociation, SecurityPolicy, GetSpiRequest } from '../sadb/types';
import {
  checkGetSpi,
  checkOptionalProtocol,
  checkPolicy,
  checkPolicyRef,
  checkSa,
  checkSaId,
  checkSaMatch,
} from '../sadb/validate';
import { assertPeerCheckable, peerOf, type PeerCred } from './peer';
import {
  ControlFrameError,
  ControlProtocolError,
  DEFAULT_MAX_FRAME,
  FrameDecoder,
  MIN_MAX_FRAME,
  NAME_PATTERN,
  PROTOCOL_VERSIONS,
  RESERVED_EVENTS,
  SADB_EVENTS,
  SADB_METHODS,
  checkControlPath,
  encodeFrame,
  parseClientMessage,
  pickVersion,
  type CallRequest,
  type HelloReply,
  type SadbMethod,
} from './protocol';
import { EVENT_DATA, POLICY, SA, SUPPORTED, errorToWire, saKeysFromHex, toWire, type Schema } from './wire';

/** What a daemon method's handler gets besides its params. */
export interface ControlCallContext {
  /** Aborted when the client cancels the call or disconnects. */
  signal: AbortSignal;
  /** The caller's timeout in ms, if it gave one. */
  timeout?: number;
  /** Who called (the kernel's word: SO_PEERCRED). */
  peer: PeerCred;
}

/** A daemon-specific method: a params check (TypeError/RangeError naming the field) and an async handler. */
export interface ControlMethod<P = unknown> {
  /** Check the request's params (a JSON value, or undefined) and return what the handler takes. Absent: no params. */
  params?: (params: unknown) => P;
  /** The answer must be JSON-serialisable (undefined: no result). Throw natt's errors (or TypeError/RangeError). */
  handler: (params: P, ctx: ControlCallContext) => unknown;
}

export interface ServeControlOptions {
  /** The socket's path (default /run/natt/natt0.sock). Its directory is created 0700 when missing. */
  path?: string;
  /** The socket file's mode (default 0o600: the peer check is the gate, the mode a second one). */
  mode?: number;
  /** Uids besides root and the daemon's own that may connect. */
  allowUids?: number[];
  /** Connections at once (default 128). When full, the oldest that has not said hello is closed for a new one. */
  maxClients?: number;
  /** Largest frame in bytes, both directions (default 1 MiB). */
  maxFrame?: number;
  /** Calls running at once per connection (default 64; more get ERR_NATT_BUSY). */
  maxRequests?: number;
  /** Bytes waiting to be written to one client before it is cut off as not reading (default 4 MiB, at least maxFrame). */
  maxQueued?: number;
  /** How long a dump waits for its client to read before the client is cut off (ms, default 30000). */
  stallMs?: number;
  /** How long a new connection has to say hello (ms, default 10000). */
  helloMs?: number;
  /** Give key material to clients that ask (get/dump replies, 'add' events)? Default false: keys never leave. */
  revealKeys?: boolean;
  /** The daemon's own methods (names must not be Sadb methods). */
  methods?: Record<string, ControlMethod<any>>;
  /** The daemon's own event names, for publish() (not Sadb event names). */
  events?: string[];
  /** One line per refusal, cut-off or protocol error (for the daemon's log; never carries a key). */
  log?: (line: string) => void;
}

export interface ControlServerStats {
  /** Connections open now (past the peer check). */
  clients: number;
  /** Connections that passed the peer check. */
  accepted: number;
  /** Refused: a uid that may not connect. */
  refusedPeer: number;
  /** Refused: the server was full of clients that had said hello. */
  refusedFull: number;
  /** Refused: the peer's credentials could not be read. */
  refusedUnchecked: number;
  /** Closed to make room: connected, but no hello yet. */
  evicted: number;
  helloTimeouts: number;
  /** Bad frames: not UTF-8 JSON, a bad envelope, no hello first, a reused id, no common version. */
  malformed: number;
  oversized: number;
  unknownMethod: number;
  badParams: number;
  /** Calls refused for maxRequests. */
  busy: number;
  /** Clients cut off for not reading. */
  slow: number;
  /** Calls aborted because the client cancelled them or went away. */
  aborted: number;
  /** Calls answered (reply, dump end or error). */
  requests: number;
  /** Of those, answered with an error. */
  errors: number;
  dumpItems: number;
  /** Event frames written to subscribers. */
  events: number;
  /** Events not sent: larger than a frame, or not serialisable. */
  eventsDropped: number;
  /** The most bytes ever waiting to be written to one client (bounded by maxQueued plus one frame). */
  queuedPeak: number;
}

/** A running control server. */
export interface ControlServer {
  readonly path: string;
  /** Send one of the daemon's own events (declared in `events`) to its subscribers; returns how many got it. */
  publish(event: string, data?: unknown): number;
  stats(): ControlServerStats;
  /** Stop: every client gets a shutdown error and is closed; the socket file is removed. Idempotent. */
  close(): Promise<void>;
}

// ---- the Sadb methods: params → the model's checks → the database ----------------------------------------------

interface Builtin {
  read(params: unknown): unknown[];
  call?(db: Sadb, a: unknown[], o: CallOptions): Promise<unknown>;
  dump?(db: Sadb, a: unknown[], o: CallOptions): AsyncIterable<unknown>;
  /** Schema of the result (or of each dump item); absent: no result. */
  out?: Schema;
  /** Whether the result (items) may carry keys. */
  keyed?: boolean;
}

/** params as an object with one field `name` (or none). */
const one = (p: unknown, name: string): unknown => readOptions(p, [name], 'params')[name];
const none = (p: unknown): unknown[] => (readOptions(p, [], 'params'), []);

const BUILTINS: Record<SadbMethod, Builtin> = {
  add: { read: (p) => [checkSa(saKeysFromHex(one(p, 'sa')))], call: (db, [sa], o) => db.add(sa as SecurityAssociation, o) },
  update: { read: (p) => [checkSa(saKeysFromHex(one(p, 'sa')))], call: (db, [sa], o) => db.update(sa as SecurityAssociation, o) },
  get: { read: (p) => [checkSaId(one(p, 'id'))], call: (db, [id], o) => db.get(id as SaId, o), out: SA, keyed: true },
  delete: { read: (p) => [checkSaId(one(p, 'id'))], call: (db, [id], o) => db.delete(id as SaId, o) },
  deleteAll: { read: (p) => [checkSaMatch(one(p, 'match'))], call: (db, [m], o) => db.deleteAll(m as { src: string; dst: string }, o) },
  flush: { read: (p) => [checkOptionalProtocol(one(p, 'protocol'))], call: (db, [pr], o) => db.flush(pr as IpsecProtocol | undefined, o) },
  dump: {
    read: (p) => [checkOptionalProtocol(one(p, 'protocol'))],
    dump: (db, [pr], o) => db.dump(pr as IpsecProtocol | undefined, o),
    out: SA,
    keyed: true,
  },
  getSpi: {
    read: (p) => [checkGetSpi(one(p, 'request'))],
    call: (db, [r], o) => db.getSpi(r as GetSpiRequest, o),
    out: { t: 'int', min: 0, max: 0xffff_ffff },
  },
  register: {
    read: (p) => [checkOptionalProtocol(one(p, 'protocol'))],
    call: (db, [pr], o) => db.register(pr as IpsecProtocol | undefined, o),
    out: SUPPORTED,
  },
  spdAdd: { read: (p) => [checkPolicy(one(p, 'policy'))], call: (db, [x], o) => db.spdAdd(x as SecurityPolicy, o), out: POLICY },
  spdUpdate: { read: (p) => [checkPolicy(one(p, 'policy'))], call: (db, [x], o) => db.spdUpdate(x as SecurityPolicy, o), out: POLICY },
  spdDelete: { read: (p) => [checkPolicyRef(one(p, 'policy'))], call: (db, [x], o) => db.spdDelete(x as { id: number }, o) },
  spdGet: { read: (p) => [checkPolicyRef(one(p, 'policy'))], call: (db, [x], o) => db.spdGet(x as { id: number }, o), out: POLICY },
  spdDump: { read: none, dump: (db, _a, o) => db.spdDump(o), out: POLICY },
  spdFlush: { read: none, call: (db, _a, o) => db.spdFlush(o) },
};

type Method = { kind: 'sadb'; b: Builtin } | { kind: 'own'; m: ControlMethod<unknown> };

// ---- one connection -------------------------------------------------------------------------------------------------

const gone = (): NattError => new NattError('ERR_NATT_CONTROL_GONE', 'the client disconnected');

class Conn {
  readonly decoder: FrameDecoder;
  hello = false;
  label = '';
  closing = false;
  closed = false;
  readonly pending = new Map<number, AbortController>();
  /** event → whether this client gets keys in it. */
  readonly subs = new Map<string, boolean>();
  helloTimer: LongTimer | null = null;
  #stall: LongTimer | null = null;
  #waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(
    readonly sock: net.Socket,
    readonly peer: PeerCred,
    maxFrame: number,
    readonly onStall: () => void,
    readonly stallMs: number,
  ) {
    this.decoder = new FrameDecoder(maxFrame);
    sock.on('drain', () => this.#drained());
  }

  get who(): string {
    return `uid ${this.peer.uid}${this.peer.pid >= 0 ? ` pid ${this.peer.pid}` : ''}${this.label ? ` (${this.label})` : ''}`;
  }

  /** Resolves once the socket has room again; rejects if the client goes away (or is cut off for not reading). */
  room(): Promise<void> {
    if (this.closed) return Promise.reject(gone());
    if (!this.sock.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#stall ??= longTimeout(() => this.onStall(), this.stallMs).unref();
    });
  }

  #drained(): void {
    this.#stall?.clear();
    this.#stall = null;
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /** The socket closed: stop everything this connection had running. Returns how many calls were aborted. */
  teardown(): number {
    this.closed = true;
    this.helloTimer?.clear();
    this.#stall?.clear();
    this.#stall = null;
    for (const w of this.#waiters.splice(0)) w.reject(gone());
    this.subs.clear();
    let n = 0;
    for (const ac of this.pending.values()) {
      if (!ac.signal.aborted) {
        ac.abort(gone());
        n++;
      }
    }
    return n;
  }
}

/** Settle with `p`, or reject as soon as `signal` aborts (the loser's outcome is dropped, never unhandled). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

// ---- the server --------------------------------------------------------------------------------------------------

interface Settings {
  maxClients: number;
  maxFrame: number;
  maxRequests: number;
  maxQueued: number;
  stallMs: number;
  helloMs: number;
  revealKeys: boolean;
  log: ((line: string) => void) | undefined;
  methods: Map<string, ControlMethod<unknown>>;
  events: string[];
  allowUids: number[];
}

class Server implements ControlServer {
  readonly path: string;
  readonly #db: Sadb;
  readonly #net: net.Server;
  readonly #conns = new Set<Conn>();
  readonly #methods = new Map<string, Method>();
  readonly #ownEvents: Set<string>;
  readonly #hello: Omit<HelloReply, 'id' | 'version'>;
  readonly #allowed: Set<number>;
  readonly #o: Settings;
  readonly #listeners: Array<[string, (data: unknown) => void]> = [];
  #ino = -1;
  #closing: Promise<void> | null = null;
  readonly #s: ControlServerStats = {
    clients: 0,
    accepted: 0,
    refusedPeer: 0,
    refusedFull: 0,
    refusedUnchecked: 0,
    evicted: 0,
    helloTimeouts: 0,
    malformed: 0,
    oversized: 0,
    unknownMethod: 0,
    badParams: 0,
    busy: 0,
    slow: 0,
    aborted: 0,
    requests: 0,
    errors: 0,
    dumpItems: 0,
    events: 0,
    eventsDropped: 0,
    queuedPeak: 0,
  };

  constructor(db: Sadb, p: string, o: Settings) {
    this.#db = db;
    this.path = p;
    this.#o = o;
    for (const name of SADB_METHODS) this.#methods.set(name, { kind: 'sadb', b: BUILTINS[name] });
    for (const [name, m] of o.methods) this.#methods.set(name, { kind: 'own', m });
    this.#ownEvents = new Set(o.events);
    this.#allowed = new Set([0, process.getuid?.() ?? 0, ...o.allowUids]);
    this.#hello = {
      type: 'hello',
      server: 'natt',
      backend: db.backend,
      methods: [...this.#methods.keys()],
      events: [...SADB_EVENTS, ...o.events],
      maxFrame: o.maxFrame,
      revealKeys: o.revealKeys,
    };
    this.#net = net.createServer({ allowHalfOpen: false }, (sock) => this.#accept(sock));
    this.#net.on('error', (e) => this.#log(`control socket error: ${e.message}`));
    for (const name of SADB_EVENTS) {
      const l = (data: unknown): void => this.#forward(name, data);
      this.#listeners.push([name, l]);
      db.on(name, l as never);
    }
  }

  async listen(mode: number): Promise<void> {
    await prepareSocketPath(this.path);
    await new Promise<void>((resolve, reject) => {
      const fail = (e: Error): void => reject(withAdvice(e, 'control', { requestName: 'listen' }));
      this.#net.once('error', fail);
      this.#net.listen(this.path, () => {
        this.#net.off('error', fail);
        resolve();
      });
    });
    try {
      fs.chmodSync(this.path, mode);
      this.#ino = fs.statSync(this.path).ino;
      assertPeerCheckable(this.#net);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  stats(): ControlServerStats {
    return { ...this.#s, clients: this.#conns.size };
  }

  publish(event: string, data?: unknown): number {
    if (typeof event !== 'string' || !this.#ownEvents.has(event)) {
      throw rangeError('event', `one of the daemon's declared events (${[...this.#ownEvents].join(', ') || 'none declared'})`, event);
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(data === undefined ? { type: 'event', event } : { type: 'event', event, data }, this.#o.maxFrame);
    } catch (e) {
      if (e instanceof ControlFrameError) throw rangeError('data', `at most ${this.#o.maxFrame} bytes of JSON`, `${e.size} bytes`);
      throw typeError('data', 'a JSON-serialisable value', data);
    }
    let n = 0;
    for (const c of this.#conns) if (c.subs.has(event) && this.#write(c, frame)) n++;
    this.#s.events += n;
    return n;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const [name, l] of this.#listeners) this.#db.off(name as never, l as never);
      const closed = new Promise<void>((resolve) => this.#net.close(() => resolve()));
      for (const c of [...this.#conns]) this.#fatal(c, new NattError('ERR_NATT_CLOSED', 'the natt daemon is shutting down'));
      await closed;
      try {
        if (this.#ino >= 0 && fs.statSync(this.path).ino === this.#ino) fs.unlinkSync(this.path);
      } catch {
        /* already gone */
      }
    })();
    return this.#closing;
  }

  // ---- connections ----

  #log(line: string): void {
    try {
      this.#o.log?.(line);
    } catch {
      /* a log that throws must not take the server down */
    }
  }

  #accept(sock: net.Socket): void {
    sock.on('error', () => undefined); // ECONNRESET, EPIPE: the 'close' that follows does the work
    if (this.#closing) {
      sock.destroy();
      return;
    }
    let peer: PeerCred;
    try {
      peer = peerOf(sock);
    } catch (e) {
      this.#s.refusedUnchecked++;
      this.#log(`control: refused a connection whose peer cannot be checked: ${(e as Error).message}`);
      this.#refuse(sock, new NattError('ERR_NATT_CONTROL_UNCHECKED', 'the daemon cannot check who you are, so it does not serve you'));
      return;
    }
    if (!this.#allowed.has(peer.uid)) {
      this.#s.refusedPeer++;
      this.#log(`control: refused uid ${peer.uid}${peer.pid >= 0 ? ` (pid ${peer.pid})` : ''}: not root, the daemon's uid or an allowed uid`);
      const own = process.getuid?.() ?? 0;
      const who = `root, uid ${own}${this.#allowed.size > 2 ? ' and the allowed uids' : ''}`;
      const advice = `uid ${peer.uid} may not use this control socket: it serves ${who}; ${adviceFor('EACCES', 'control') ?? ''}`;
      this.#refuse(sock, new NattSystemError(13, 'connect', advice));
      return;
    }
    if (this.#conns.size >= this.#o.maxClients) {
      const idle = [...this.#conns].find((c) => !c.hello && !c.closing);
      if (!idle) {
        this.#s.refusedFull++;
        this.#log(`control: refused uid ${peer.uid}: ${this.#o.maxClients} clients connected (maxClients)`);
        this.#refuse(sock, new NattError('ERR_NATT_CONTROL_FULL', `the daemon serves at most ${this.#o.maxClients} clients at once: try again later`));
        return;
      }
      this.#s.evicted++;
      this.#fatal(idle, new NattError('ERR_NATT_CONTROL_FULL', 'closed to make room: the daemon is full and this connection never said hello'));
    }
    this.#s.accepted++;
    const c = new Conn(
      sock,
      peer,
      this.#o.maxFrame,
      () => this.#cut(c, `did not read for ${this.#o.stallMs} ms during a dump`),
      this.#o.stallMs,
    );
    this.#conns.add(c);
    c.helloTimer = longTimeout(() => {
      this.#s.helloTimeouts++;
      this.#fatal(c, new NattError('ERR_NATT_CONTROL_HELLO', `no hello within ${this.#o.helloMs} ms`));
    }, this.#o.helloMs).unref();
    sock.on('data', (chunk: Buffer) => this.#onData(c, chunk));
    sock.on('close', () => {
      this.#conns.delete(c);
      this.#s.aborted += c.teardown();
    });
  }

  /**
   * Tell a connection we do not serve it why, then close it. The write side is shut after the frame and the socket is
   * destroyed when the peer closes (or after a second): closing at once could make the peer's first write fail (EPIPE)
   * before it has read why. What it sends meanwhile is read and dropped.
   */
  #refuse(sock: net.Socket, err: Error): void {
    let frame: Buffer | undefined;
    try {
      frame = encodeFrame({ type: 'error', id: 0, error: errorToWire(err) });
    } catch {
      frame = undefined;
    }
    const t = setTimeout(() => sock.destroy(), 1000);
    t.unref();
    sock.once('close', () => clearTimeout(t));
    if (frame) sock.end(frame);
    else sock.end();
    sock.resume();
  }

  /** A connection-level error: one error frame (id 0), then close. */
  #fatal(c: Conn, err: Error): void {
    if (c.closing || c.closed) return;
    c.closing = true;
    this.#s.aborted += c.teardown();
    this.#conns.delete(c);
    this.#refuse(c.sock, err);
  }

  /** Cut a client that does not read: no goodbye (it would not read it either). */
  #cut(c: Conn, why: string): void {
    if (c.closed) return;
    this.#s.slow++;
    this.#log(`control: cut off ${c.who}: ${why}`);
    c.closing = true;
    this.#s.aborted += c.teardown();
    this.#conns.delete(c);
    c.sock.destroy();
  }

  /** Write one frame; false (and the client cut off) when too much already waits for it. */
  #write(c: Conn, frame: Buffer): boolean {
    if (c.closing || c.closed || c.sock.destroyed) return false;
    c.sock.write(frame);
    if (c.sock.writableLength > this.#s.queuedPeak) this.#s.queuedPeak = c.sock.writableLength;
    if (c.sock.writableLength > this.#o.maxQueued) {
      this.#cut(c, `more than ${this.#o.maxQueued} bytes of replies and events wait unread`);
      return false;
    }
    return true;
  }

  #send(c: Conn, msg: object): boolean {
    let frame: Buffer;
    try {
      frame = encodeFrame(msg, this.#o.maxFrame);
    } catch (e) {
      const id = (msg as { id?: number }).id ?? 0;
      const why = e instanceof ControlFrameError ? e : new NattError('ERR_NATT_CONTROL_RESULT', 'the answer cannot be written as JSON');
      frame = encodeFrame({ type: 'error', id, error: errorToWire(why) });
    }
    return this.#write(c, frame);
  }

  #replyError(c: Conn, id: number, e: unknown): void {
    this.#s.requests++;
    this.#s.errors++;
    this.#send(c, { type: 'error', id, error: errorToWire(e) });
  }

  #onData(c: Conn, chunk: Buffer): void {
    if (c.closing || c.closed) return;
    let frames: Buffer[];
    try {
      frames = c.decoder.push(chunk);
    } catch (e) {
      if (e instanceof ControlFrameError) this.#s.oversized++;
      else this.#s.malformed++;
      this.#log(`control: closed ${c.who}: ${(e as Error).message}`);
      this.#fatal(c, e as Error);
      return;
    }
    for (const f of frames) {
      if (c.closing || c.closed) return;
      try {
        this.#onFrame(c, f);
      } catch (e) {
        // Only a bug could get here: report it as such, and keep serving everyone else.
        this.#s.malformed++;
        this.#fatal(c, new NattError('ERR_NATT_CONTROL_INTERNAL', `the daemon failed on this message: ${(e as Error)?.message}`));
      }
    }
  }

  #protocolError(c: Conn, e: Error): void {
    this.#s.malformed++;
    this.#log(`control: closed ${c.who}: ${e.message}`);
    this.#fatal(c, e);
  }

  #onFrame(c: Conn, frame: Buffer): void {
    let msg: ReturnType<typeof parseClientMessage>;
    try {
      msg = parseClientMessage(frame);
    } catch (e) {
      this.#protocolError(c, e as Error);
      return;
    }
    if (!c.hello && msg.type !== 'hello') return this.#protocolError(c, new ControlProtocolError(`a ${msg.type} before hello: say hello first`));
    if (msg.type !== 'hello' && c.pending.has(msg.id)) return this.#protocolError(c, new ControlProtocolError(`request id ${msg.id} is still in use`));
    switch (msg.type) {
      case 'hello': {
        if (c.hello) return this.#protocolError(c, new ControlProtocolError('a second hello'));
        const version = pickVersion(msg.versions);
        if (version === undefined) {
          return this.#protocolError(
            c,
            new NattError(
              'ERR_NATT_CONTROL_VERSION',
              `no common protocol version: the client speaks ${msg.versions.join(', ')}, this daemon ${PROTOCOL_VERSIONS.join(', ')}`,
            ),
          );
        }
        c.hello = true;
        c.label = msg.client ?? '';
        c.helloTimer?.clear();
        c.helloTimer = null;
        this.#send(c, { ...this.#hello, id: msg.id, version });
        return;
      }
      case 'cancel': {
        const ac = c.pending.get(msg.target);
        if (ac && !ac.signal.aborted) {
          ac.abort(new NattError('ABORT_ERR', 'cancelled by the client'));
          this.#s.aborted++;
        }
        this.#send(c, { type: 'reply', id: msg.id, result: { cancelled: ac !== undefined } });
        return;
      }
      case 'subscribe':
      case 'unsubscribe': {
        for (const [i, name] of msg.events.entries()) {
          if (!(SADB_EVENTS as readonly string[]).includes(name) && !this.#ownEvents.has(name)) {
            this.#s.badParams++;
            this.#replyError(c, msg.id, rangeError(`events[${i}]`, `an event this daemon sends (${this.#hello.events.join(', ')})`, name));
            return;
          }
        }
        const keys = msg.revealKeys && this.#o.revealKeys;
        for (const name of msg.events) {
          if (msg.type === 'subscribe') c.subs.set(name, keys);
          else c.subs.delete(name);
        }
        this.#send(c, { type: 'reply', id: msg.id, result: { events: [...c.subs.keys()] } });
        return;
      }
      case 'request':
        this.#request(c, msg);
    }
  }

  #request(c: Conn, msg: CallRequest): void {
    const m = this.#methods.get(msg.method);
    if (!m) {
      this.#s.unknownMethod++;
      this.#replyError(c, msg.id, rangeError('method', `a method this daemon serves (${[...this.#methods.keys()].join(', ')})`, msg.method));
      return;
    }
    if (c.pending.size >= this.#o.maxRequests) {
      this.#s.busy++;
      const why = `${this.#o.maxRequests} calls are already running on this connection: wait for their answers`;
      this.#replyError(c, msg.id, new NattError('ERR_NATT_BUSY', why));
      return;
    }
    let args: unknown[];
    try {
      args = m.kind === 'sadb' ? m.b.read(msg.params) : [m.m.params ? m.m.params(msg.params) : noParams(msg.params)];
    } catch (e) {
      this.#s.badParams++;
      this.#replyError(c, msg.id, e);
      return;
    }
    const ac = new AbortController();
    c.pending.set(msg.id, ac);
    const opts: CallOptions = msg.timeout === undefined ? { signal: ac.signal } : { signal: ac.signal, timeout: msg.timeout };
    this.#run(c, msg, m, args, ac, opts)
      .catch((e) => {
        if (!c.closed && !c.closing) this.#replyError(c, msg.id, e);
      })
      .finally(() => {
        if (c.pending.get(msg.id) === ac) c.pending.delete(msg.id);
      })
      .catch(() => undefined);
  }

  async #run(c: Conn, msg: CallRequest, m: Method, args: unknown[], ac: AbortController, opts: CallOptions): Promise<void> {
    const keys = msg.revealKeys && this.#o.revealKeys;
    if (m.kind === 'own') {
      const ctx: ControlCallContext = { signal: ac.signal, peer: { ...c.peer } };
      if (msg.timeout !== undefined) ctx.timeout = msg.timeout;
      const result = await raceAbort(Promise.resolve().then(() => m.m.handler(args[0], ctx)), ac.signal);
      if (c.closed) return;
      this.#s.requests++;
      this.#send(c, result === undefined ? { type: 'reply', id: msg.id } : { type: 'reply', id: msg.id, result });
      return;
    }
    const b = m.b;
    if (b.call) {
      const result = await raceAbort(b.call(this.#db, args, opts), ac.signal);
      if (c.closed) return;
      this.#s.requests++;
      const out = b.out ? toWire(result, b.out, keys && b.keyed === true) : undefined;
      this.#send(c, out === undefined ? { type: 'reply', id: msg.id } : { type: 'reply', id: msg.id, result: out });
      return;
    }
    // A dump: one item at a time, each written only when the client has room (the dump pauses meanwhile).
    const it = b.dump!(this.#db, args, opts)[Symbol.asyncIterator]();
    let n = 0;
    try {
      for (;;) {
        const r = await raceAbort(it.next(), ac.signal);
        if (r.done) break;
        if (c.closed) return;
        // A frame too large for one item fails the dump (an error reply), never cuts it silently.
        const item = toWire(r.value, b.out!, keys && b.keyed === true);
        if (!this.#write(c, encodeFrame({ type: 'item', id: msg.id, item }, this.#o.maxFrame))) return;
        n++;
        this.#s.dumpItems++;
        await c.room();
        if (ac.signal.aborted) throw ac.signal.reason;
      }
    } finally {
      Promise.resolve(it.return?.()).catch(() => undefined);
    }
    if (c.closed) return;
    this.#s.requests++;
    this.#send(c, { type: 'end', id: msg.id, count: n });
  }

  #forward(event: string, data: unknown): void {
    try {
      let plain: Buffer | undefined;
      let keyed: Buffer | undefined;
      const schema = EVENT_DATA[event as keyof typeof EVENT_DATA];
      const frame = (keys: boolean): Buffer => encodeFrame({ type: 'event', event, data: toWire(data, schema, keys) }, this.#o.maxFrame);
      for (const c of this.#conns) {
        const want = c.subs.get(event);
        if (want === undefined) continue;
        // Only 'add' may carry keys (and only if the database put them in the event): expire never does.
        const f = want && event === 'add' ? (keyed ??= frame(true)) : (plain ??= frame(false));
        if (this.#write(c, f)) this.#s.events++;
      }
    } catch {
      this.#s.eventsDropped++;
    }
  }
}

/** A daemon method that takes no params refuses any. */
function noParams(p: unknown): undefined {
  if (p !== undefined) throw typeError('params', 'absent (this method takes none)', p);
  return undefined;
}

/** Make the socket's directory (0700) if missing; replace a stale socket of a dead daemon; refuse a live one. */
async function prepareSocketPath(p: string): Promise<void> {
  const dir = path.dirname(p);
  if (!fs.existsSync(dir)) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw withAdvice(e, 'control', { requestName: 'listen' });
    }
  }
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw new NattSystemError(17, 'listen', `${p}: ${adviceFor('EEXIST', 'control')}`);
  const live = await new Promise<boolean>((resolve, reject) => {
    const s = net.connect(p);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.destroy();
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else reject(withAdvice(e, 'control', { requestName: 'listen' }));
    });
  });
  if (live) throw new NattSystemError(98, 'listen', `${p}: ${adviceFor('EADDRINUSE', 'control')}`);
  try {
    fs.unlinkSync(p); // a dead daemon's socket: nobody listens on it
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw withAdvice(e, 'control', { requestName: 'listen' });
  }
}

function readMethods(v: unknown): Map<string, ControlMethod<unknown>> {
  const out = new Map<string, ControlMethod<unknown>>();
  if (v === undefined) return out;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError('methods', 'an object { name: { params?, handler } }', v);
  for (const name of Object.keys(v)) {
    const f = `methods.${name}`;
    if (!NAME_PATTERN.test(name)) throw rangeError(f, 'a method name (a letter, then letters, digits, ., -, _; at most 64)', name);
    if ((SADB_METHODS as readonly string[]).includes(name)) throw rangeError(f, 'a name that is not a Sadb method', name);
    const o = readOptions((v as Record<string, unknown>)[name], ['params', 'handler'] as const, f);
    const handler = callbackOption<ControlMethod<unknown>['handler']>(o.handler, `${f}.handler`);
    if (!handler) throw typeError(`${f}.handler`, 'a function', o.handler);
    const params = callbackOption<(p: unknown) => unknown>(o.params, `${f}.params`);
    out.set(name, params ? { params, handler } : { handler });
  }
  return out;
}

function readEvents(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw typeError('events', 'an array of event names', v);
  const out = v.map((n: unknown, i: number) => {
    const s = stringOption(n, `events[${i}]`);
    if (!NAME_PATTERN.test(s)) throw rangeError(`events[${i}]`, 'an event name (a letter, then letters, digits, ., -, _; at most 64)', s);
    if ((SADB_EVENTS as readonly string[]).includes(s) || RESERVED_EVENTS.includes(s)) {
      throw rangeError(`events[${i}]`, 'a name that is not a Sadb or reserved event', s);
    }
    return s;
  });
  if (new Set(out).size !== out.length) throw rangeError('events', 'names without repeats', v);
  return out;
}

/**
 * Serve `sadb` (any Sadb: the daemon's UserlandSadb, a kernel client) on a Unix control socket. Options are checked at
 * once (TypeError/RangeError naming the option); the promise resolves when the socket listens. Rejects with
 * ERR_NATT_NO_NATIVE without the addon (peers cannot be checked then), EADDRINUSE with advice when a live daemon
 * holds the path.
 */
export async function serveControl(sadb: Sadb, options: ServeControlOptions = {}): Promise<ControlServer> {
  if (sadb === null || typeof sadb !== 'object' || typeof (sadb as Sadb).dump !== 'function' || typeof (sadb as Sadb).on !== 'function') {
    throw typeError('sadb', 'a Sadb (openSadb(), new UserlandSadb())', sadb);
  }
  const o = readOptions(options, [
    'path',
    'mode',
    'allowUids',
    'maxClients',
    'maxFrame',
    'maxRequests',
    'maxQueued',
    'stallMs',
    'helloMs',
    'revealKeys',
    'methods',
    'events',
    'log',
  ] as const);
  const p = checkControlPath(o.path);
  const mode = intOption(o.mode, 'mode', 0, 0o777, 0o600);
  let allowUids: number[] = [];
  if (o.allowUids !== undefined) {
    if (!Array.isArray(o.allowUids)) throw typeError('allowUids', 'an array of uids', o.allowUids);
    allowUids = o.allowUids.map((u: unknown, i: number) => intOption(u, `allowUids[${i}]`, 0, 0xffff_ffff));
  }
  const maxFrame = intOption(o.maxFrame, 'maxFrame', MIN_MAX_FRAME, 0x7fff_ffff, DEFAULT_MAX_FRAME);
  const maxQueued = intOption(o.maxQueued, 'maxQueued', maxFrame, Number.MAX_SAFE_INTEGER, Math.max(4 << 20, maxFrame));
  const settings = {
    maxClients: intOption(o.maxClients, 'maxClients', 1, 65536, 128),
    maxFrame,
    maxRequests: intOption(o.maxRequests, 'maxRequests', 1, 65536, 64),
    maxQueued,
    stallMs: durationMs(o.stallMs, 'stallMs', 1, 30_000),
    helloMs: durationMs(o.helloMs, 'helloMs', 1, 10_000),
    revealKeys: boolOption(o.revealKeys, 'revealKeys', false),
    log: callbackOption<(line: string) => void>(o.log, 'log'),
    methods: readMethods(o.methods),
    events: readEvents(o.events),
    allowUids,
  };
  requireNative(); // peers are checked by the addon: without it there is no serving
  const server = new Server(sadb, p, settings);
  try {
    await server.listen(mode);
  } catch (e) {
    await server.close().catch(() => undefined);
    throw e;
  }
  return server;
}
