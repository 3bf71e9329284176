// DaemonSadb: the Sadb interface over a running natt daemon's control socket, plus its own methods (call) and events (on).
//
// Every call goes through the shared request layer (src/kernel/requests.ts): ids from its sequence, its pending table,
// timeouts and AbortSignals, one dump at a time, a send queue over a transport that says when the socket is full. This
// file keeps only the control protocol's matching: a reply, error, item or end settles the request of its id; an error
// with id 0 is about the connection and fails everything. When a call times out or is aborted here, the daemon is told
// to cancel it; a dump left early is cancelled too. Arguments are checked here by the model's one boundary before
// anything is sent, and again by the daemon; errors come back as the classes the daemon's backend threw.

import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { NattError, NattSystemError, NattTimeoutError, rangeError, typeError } from '../errors';
import { boolOption, durationMs, intOption, readCallOptions, readOptions, stringOption } from '../core/options';
import { RequestLayer, type MessageTransport, type RequestSpec } from '../kernel/requests';
import { longTimeout } from '../core/timers';
import { InternalGate } from '../core/internal';
import { adviceFor } from '../native/advice';
import { hideSaKeys } from '../sadb/keys';
import type {
  CallOptions,
  GetSpiRequest,
  IpsecProtocol,
  SaId,
  Sadb,
  SadbEvents,
  SadbFactory,
  SecurityAssociation,
  SecurityPolicy,
  SupportedAlgorithms,
} from '../sadb/types';
import {
  checkGetSpi,
  checkOptionalProtocol,
  checkPolicy,
  checkPolicyRef,
  checkSa,
  checkSaId,
  checkSaMatch,
} from '../sadb/validate';
import {
  ControlFrameError,
  ControlProtocolError,
  DEFAULT_MAX_FRAME,
  FrameDecoder,
  MIN_MAX_FRAME,
  PROTOCOL_VERSIONS,
  RESERVED_EVENTS,
  SADB_EVENTS,
  SADB_METHODS,
  checkControlPath,
  encodeFrame,
  parseServerMessage,
  type HelloReply,
  type SadbEventName,
  type ServerMessage,
} from './protocol';
import { EVENT_DATA, POLICY, SUPPORTED, errorFromWire, fromWire, saFromWire, toWire, SA } from './wire';

export interface DaemonSadbOptions {
  /** The daemon's control socket (default /run/natt/natt0.sock). */
  path?: string;
  /** Default per-call timeout in ms (default 5000); also bounds connecting and the hello. */
  timeout?: number;
  /** Ask for key material in 'add' events (the daemon gives it only if it allows revealing keys). Default false. */
  revealKeys?: boolean;
  /** A label for the daemon's log (default 'natt'). */
  client?: string;
  /** Largest frame accepted from the daemon, in bytes (default 1 MiB; a larger one closes the connection). */
  maxFrame?: number;
}

/** What the daemon said in its hello. */
export interface DaemonInfo {
  version: number;
  /** The backend behind the daemon ('userland' for the tunnel daemon). */
  backend: string;
  methods: string[];
  events: string[];
  maxFrame: number;
  /** Whether the daemon hands out key material to clients that ask (get and dump need it to return keys). */
  revealKeys: boolean;
}

/** What the matcher keeps per request: how to read its answer. */
interface Ctx {
  hello?: boolean;
  decode?: (v: unknown) => unknown;
}

/** Events the client handles itself (never subscribed to at the daemon). */
const LOCAL_EVENTS = new Set(RESERVED_EVENTS);

const voidResult = (): undefined => undefined;

export interface DaemonSadb {
  on<K extends keyof SadbEvents>(event: K, listener: (...args: SadbEvents[K]) => void): this;
  /** 'close': the connection ended (the Error says why, undefined after close()). */
  on(event: 'close', listener: (err: Error | undefined) => void): this;
  /** The daemon's own events (DaemonInfo.events): JSON data as the daemon published it. */
  on(event: string & {}, listener: (...args: any[]) => void): this;
  once<K extends keyof SadbEvents>(event: K, listener: (...args: SadbEvents[K]) => void): this;
  once(event: 'close', listener: (err: Error | undefined) => void): this;
  once(event: string & {}, listener: (...args: any[]) => void): this;
  off<K extends keyof SadbEvents>(event: K, listener: (...args: SadbEvents[K]) => void): this;
  off(event: string & {}, listener: (...args: any[]) => void): this;
  removeAllListeners(event?: keyof SadbEvents | (string & {})): this;
}

/**
 * The SA database of a running natt daemon, over its control socket. Open with `openSadb({ backend: 'daemon', path })`
 * or `DaemonSadb.open()`. Listening to an event subscribes to it at the daemon (and the last listener gone, unsubscribes).
 */
export class DaemonSadb extends EventEmitter<SadbEvents> implements Sadb {
  readonly backend = 'daemon' as const;
  readonly path: string;
  readonly #sock: net.Socket;
  readonly #req: RequestLayer<Ctx>;
  readonly #decoder: FrameDecoder;
  readonly #timeout: number;
  readonly #revealKeys: boolean;
  readonly #remote = new WeakSet<object>();
  /** Events subscribed at the daemon (or asked for). */
  readonly #subs = new Set<string>();
  #info: DaemonInfo | null = null;
  #maxSend = DEFAULT_MAX_FRAME;
  #closeErr: Error | null = null;
  #sockErr: Error | null = null;
  #layerRef = false;
  #userRef = false;
  #drops = 0;
  #protocolErrors = 0;

  private constructor(sock: net.Socket, p: string, timeout: number, revealKeys: boolean, maxFrame: number) {
    daemonGate.check();
    super();
    this.path = p;
    this.#decoder = new FrameDecoder(maxFrame);
    this.#sock = sock;
    this.#timeout = timeout;
    this.#revealKeys = revealKeys;
    const transport: MessageTransport = {
      send: (msg) => {
        if (sock.destroyed) throw this.#closedError('send');
        if (sock.writableNeedDrain) return false;
        sock.write(msg);
        return true;
      },
      onceWritable: (cb) => {
        if (!sock.writableNeedDrain || sock.destroyed) setImmediate(cb);
        else sock.once('drain', cb);
      },
      ref: () => {
        this.#layerRef = true;
        this.#applyRef();
      },
      unref: () => {
        this.#layerRef = false;
        this.#applyRef();
      },
    };
    this.#req = new RequestLayer<Ctx>({ transport, timeout, closedError: (what) => this.#closedError(what) });
    sock.on('data', (chunk: Buffer) => this.#onData(chunk));
    sock.on('error', (e) => (this.#sockErr ??= e));
    sock.on('close', () =>
      this.#fail(
        this.#sockErr
          ? withControlAdvice(this.#sockErr, this.path)
          : new NattError('ERR_NATT_CONTROL_CLOSED', `the natt daemon at ${this.path} closed the connection`),
      ),
    );
    this.#hooks();
    this.#applyRef();
  }

  /** Connect to the daemon at `path` and say hello. Options are checked at once (TypeError/RangeError naming them). */
  static async open(options: DaemonSadbOptions = {}): Promise<DaemonSadb> {
    const o = readOptions(options, ['path', 'timeout', 'revealKeys', 'client', 'maxFrame'] as const);
    const p = checkControlPath(o.path);
    const timeout = durationMs(o.timeout, 'timeout', 1, 5000);
    const revealKeys = boolOption(o.revealKeys, 'revealKeys', false);
    const client = stringOption(o.client, 'client', undefined, 'natt');
    if (!/^[\x20-\x7e]{1,64}$/.test(client)) throw rangeError('client', 'a label of 1 to 64 printable ASCII characters', client);
    const maxFrame = intOption(o.maxFrame, 'maxFrame', MIN_MAX_FRAME, 0x7fff_ffff, DEFAULT_MAX_FRAME);
    const sock = await connectUnix(p, timeout);
    const d = daemonGate.make(() => new DaemonSadb(sock, p, timeout, revealKeys, maxFrame));
    try {
      await d.#hello(client);
    } catch (e) {
      await d.close();
      throw e;
    }
    return d;
  }

  /** What the daemon said in its hello (backend, methods, events, limits). */
  get daemon(): DaemonInfo {
    const i = this.#info!;
    return { ...i, methods: [...i.methods], events: [...i.events] };
  }

  /** Counters: answers or events that matched nothing (late, after a cancel), messages that broke the protocol. */
  stats(): { pending: number; drops: number; protocolErrors: number } {
    return { pending: this.#req.size, drops: this.#drops, protocolErrors: this.#protocolErrors };
  }

  /** Keep the process alive while connected (e.g. to wait for events); unref() undoes it. Idle, it does not by default. */
  ref(): this {
    this.#userRef = true;
    this.#applyRef();
    return this;
  }

  unref(): this {
    this.#userRef = false;
    this.#applyRef();
    return this;
  }

  #applyRef(): void {
    if (this.#sock.destroyed) return;
    if (this.#layerRef || this.#userRef) this.#sock.ref();
    else this.#sock.unref();
  }

  #closedError(what: string): Error {
    const why = this.#closeErr;
    if (why && why.message !== 'closed') {
      return new NattError('ERR_NATT_CLOSED', `${what}: the connection to the natt daemon is gone (${why.message}): open it again`);
    }
    return new NattError('ERR_NATT_CLOSED', `${what}: the daemon client is closed`);
  }

  // ---- the wire ----

  #frame(msg: object): Buffer {
    try {
      return encodeFrame(msg, this.#maxSend);
    } catch (e) {
      if (e instanceof ControlFrameError) {
        throw rangeError('params', `at most ${this.#maxSend} bytes of JSON (the daemon's frame limit)`, `${e.size} bytes`);
      }
      throw typeError('params', 'a JSON-serialisable value', undefined);
    }
  }

  async #hello(client: string): Promise<void> {
    const reply = await this.#req.request<Extract<ServerMessage, { type: 'hello' }>>(
      () => {
        const id = this.#req.nextSeq();
        return { what: 'daemon hello', key: id, bytes: encodeFrame({ type: 'hello', id, versions: PROTOCOL_VERSIONS, client }) };
      },
      undefined,
      { hello: true },
    );
    if (!PROTOCOL_VERSIONS.includes(reply.version)) {
      throw new ControlProtocolError(`the daemon chose protocol version ${reply.version}, which this client does not speak`);
    }
    const { version, backend, methods, events, maxFrame, revealKeys } = reply as HelloReply;
    this.#info = { version, backend, methods, events, maxFrame, revealKeys };
    this.#maxSend = maxFrame;
  }

  #onData(chunk: Buffer): void {
    if (this.#closeErr) return;
    let frames: Buffer[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.#protocolErrors++;
      this.#fail(e as Error);
      return;
    }
    for (const f of frames) {
      if (this.#closeErr) return;
      let msg: ServerMessage;
      try {
        msg = parseServerMessage(f);
      } catch (e) {
        this.#protocolErrors++;
        this.#fail(e as Error);
        return;
      }
      this.#dispatch(msg);
    }
  }

  #dispatch(m: ServerMessage): void {
    if (m.type === 'event') return this.#event(m.event, m.data);
    if (m.type === 'error' && m.id === 0) {
      const e = errorFromWire(m.error);
      this.#remote.add(e);
      this.#fail(e);
      return;
    }
    const p = this.#req.find(m.id);
    if (!p) {
      this.#drops++; // the answer to a call that already timed out or was aborted here
      return;
    }
    const broke = (why: string): void => {
      this.#protocolErrors++;
      const e = new ControlProtocolError(`the daemon answered ${p.what} with ${why}`);
      this.#remote.add(e);
      p.reject(e);
    };
    try {
      switch (m.type) {
        case 'hello':
          if (!p.ctx.hello) return broke('a hello');
          p.resolve(m);
          return;
        case 'reply':
          if (p.dump || p.ctx.hello) return broke('a reply');
          p.resolve(p.ctx.decode ? p.ctx.decode(m.result) : m.result);
          return;
        case 'item':
          if (!p.dump) return broke('a dump item');
          p.item(p.ctx.decode ? p.ctx.decode(m.item) : m.item);
          return;
        case 'end':
          if (!p.dump) return broke('a dump end');
          p.resolve(undefined);
          return;
        case 'error': {
          const e = errorFromWire(m.error);
          this.#remote.add(e);
          p.reject(e);
        }
      }
    } catch (e) {
      // decode() refused what the daemon sent (a ControlProtocolError naming the field)
      this.#protocolErrors++;
      this.#remote.add(e as Error);
      p.reject(e as Error);
    }
  }

  #fail(err: Error): void {
    if (this.#closeErr) return;
    this.#closeErr = err;
    this.#req.close(err);
    this.#subs.clear();
    this.#sock.destroy();
    this.#emitSafe('close', err.message === 'closed' ? undefined : err);
  }

  /** Emit without letting a listener's throw break the socket's reading (it is rethrown on its own turn). */
  #emitSafe(event: string, ...args: unknown[]): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch (e) {
      process.nextTick(() => {
        throw e;
      });
    }
  }

  // ---- events ----

  #listen(name: string | symbol): void {
    if (typeof name !== 'string' || LOCAL_EVENTS.has(name)) return;
    const known = this.#info?.events ?? [];
    if (!known.includes(name)) throw rangeError('event', `an event this daemon sends (${known.join(', ')}), 'close' or 'error'`, name);
    if (this.#subs.has(name) || this.#closeErr) return;
    this.#subs.add(name);
    this.#subscription('subscribe', name);
  }

  #unlisten(name: string | symbol): void {
    if (typeof name !== 'string' || !this.#subs.has(name) || this.listenerCount(name as keyof SadbEvents) > 0) return;
    this.#subs.delete(name);
    if (!this.#closeErr) this.#subscription('unsubscribe', name);
  }

  #subscription(type: 'subscribe' | 'unsubscribe', name: string): void {
    this.#req
      .request(
        () => {
          const id = this.#req.nextSeq();
          const msg = type === 'subscribe' ? { type, id, events: [name], revealKeys: this.#revealKeys } : { type, id, events: [name] };
          return { what: `daemon ${type} ${name}`, key: id, bytes: this.#frame(msg) };
        },
        undefined,
        {},
      )
      .catch((e: Error) => {
        if (this.#closeErr) return;
        if (type === 'subscribe') this.#subs.delete(name);
        if (this.listenerCount('error') > 0) this.#emitSafe('error', e);
        else this.#drops++;
      });
  }

  #event(name: string, data: unknown): void {
    if (!this.#subs.has(name)) {
      this.#drops++; // sent before our unsubscribe reached the daemon
      return;
    }
    let out = data;
    if ((SADB_EVENTS as readonly string[]).includes(name)) {
      try {
        out = fromWire(data, EVENT_DATA[name as SadbEventName], `the ${name} event`);
      } catch {
        this.#protocolErrors++;
        return;
      }
      if (name === 'add') hideSaKeys(out as SecurityAssociation);
      if (name === 'expire') hideSaKeys((out as { sa: SecurityAssociation }).sa);
    }
    this.#emitSafe(name, out);
  }

  readonly #onNew = (name: string | symbol): void => this.#listen(name);
  readonly #onRemove = (name: string | symbol): void => this.#unlisten(name);

  /** Subscribe as listeners come and go (EventEmitter's own newListener/removeListener events). */
  #hooks(): void {
    const ee = this as unknown as EventEmitter;
    if (!ee.listeners('newListener').includes(this.#onNew)) ee.on('newListener', this.#onNew);
    if (!ee.listeners('removeListener').includes(this.#onRemove)) ee.on('removeListener', this.#onRemove);
  }

  /** removeAllListeners() also ends the subscriptions it leaves without listeners, and keeps the client's own hooks. */
  override removeAllListeners(event?: keyof SadbEvents | (string & {})): this {
    if (event !== undefined && typeof event !== 'string' && typeof event !== 'symbol') throw typeError('event', 'an event name (a string)', event);
    super.removeAllListeners(event as keyof SadbEvents | undefined);
    this.#hooks();
    for (const name of [...this.#subs]) this.#unlisten(name);
    return this;
  }

  // ---- calls ----

  /** The effective timeout to pass on (undefined when the options are bad: the request layer rejects them). */
  #timeoutOf(opts: unknown): number | undefined {
    try {
      return readCallOptions(opts, this.#timeout).timeout;
    } catch {
      return undefined;
    }
  }

  /** Tell the daemon to stop a call this side gave up on (timed out, aborted, left early). Best effort. */
  #cancel(target: number): void {
    if (this.#closeErr || target === 0) return;
    this.#req
      .request(
        () => {
          const id = this.#req.nextSeq();
          return { what: 'daemon cancel', key: id, bytes: encodeFrame({ type: 'cancel', id, target }) };
        },
        undefined,
        {},
      )
      .catch(() => undefined);
  }

  /** Did this side give up on the call (rather than the daemon answer it)? */
  #gaveUp(e: unknown, opts: unknown): boolean {
    if (this.#closeErr || (e !== null && typeof e === 'object' && this.#remote.has(e))) return false;
    if (e instanceof NattTimeoutError) return true;
    try {
      return readCallOptions(opts, this.#timeout).signal?.aborted === true; // own properties only (never a caller's getter)
    } catch {
      return false; // bad call options: the request layer refused them, nothing was given up
    }
  }

  /** A request's spec for the layer: a fresh id (kept in `out.id`, for a cancel), the frame. */
  #requestSpec(method: string, params: unknown, opts: unknown, revealKeys: boolean, out: { id: number }): () => RequestSpec {
    const timeout = this.#timeoutOf(opts);
    return () => {
      out.id = this.#req.nextSeq();
      const msg: Record<string, unknown> = { type: 'request', id: out.id, method };
      if (params !== undefined) msg.params = params;
      if (timeout !== undefined) msg.timeout = timeout;
      if (revealKeys) msg.revealKeys = true;
      return { what: `daemon ${method}`, key: out.id, bytes: this.#frame(msg) };
    };
  }

  async #call<T>(method: string, params: unknown, opts: unknown, decode: (v: unknown) => unknown, revealKeys = false): Promise<T> {
    const sent = { id: 0 };
    try {
      return await this.#req.request<T>(this.#requestSpec(method, params, opts, revealKeys, sent), opts, { decode });
    } catch (e) {
      if (this.#gaveUp(e, opts)) this.#cancel(sent.id);
      throw e;
    }
  }

  #dump<T>(method: string, params: () => unknown, opts: unknown, decode: (v: unknown) => unknown, revealKeys = false): AsyncIterable<T> {
    const self = this;
    return {
      async *[Symbol.asyncIterator](): AsyncGenerator<T> {
        // The model's checks run at the first next(), as the other backends' dumps do.
        const sent = { id: 0 };
        const inner = self.#req.dump<T>(self.#requestSpec(method, params(), opts, revealKeys, sent), opts, { decode });
        let ended = false;
        try {
          for await (const item of inner) yield item;
          ended = true;
        } catch (e) {
          ended = true;
          if (self.#gaveUp(e, opts)) self.#cancel(sent.id);
          throw e;
        } finally {
          if (!ended) self.#cancel(sent.id); // the consumer left early: the daemon need not send the rest
        }
      },
    };
  }

  /** Call one of the daemon's own methods (DaemonInfo.methods beyond the Sadb ones) with JSON params. */
  call(method: string, params?: unknown, opts?: CallOptions): Promise<unknown> {
    const own = (this.#info?.methods ?? []).filter((m) => !(SADB_METHODS as readonly string[]).includes(m));
    if (typeof method !== 'string') return Promise.reject(typeError('method', `one of the daemon's methods (${own.join(', ')})`, method));
    if (!own.includes(method)) {
      const what = `one of the daemon's own methods (${own.join(', ') || 'none'}); Sadb methods are called as methods`;
      return Promise.reject(rangeError('method', what, method));
    }
    return this.#call(method, params, opts, (v) => v);
  }

  async add(sa: SecurityAssociation, opts?: CallOptions): Promise<void> {
    await this.#call('add', { sa: toWire(checkSa(sa), SA, true) }, opts, voidResult);
  }

  async update(sa: SecurityAssociation, opts?: CallOptions): Promise<void> {
    await this.#call('update', { sa: toWire(checkSa(sa), SA, true) }, opts, voidResult);
  }

  /** The SA with its keys (non-enumerable), when the daemon reveals keys; else with empty keys. */
  async get(id: SaId, opts?: CallOptions): Promise<SecurityAssociation> {
    return this.#call('get', { id: checkSaId(id) }, opts, (v) => saFromWire(v, 'the SA'), true);
  }

  async delete(id: SaId, opts?: CallOptions): Promise<void> {
    await this.#call('delete', { id: checkSaId(id) }, opts, voidResult);
  }

  async deleteAll(match: { src: string; dst: string; protocol?: IpsecProtocol }, opts?: CallOptions): Promise<void> {
    await this.#call('deleteAll', { match: checkSaMatch(match) }, opts, voidResult);
  }

  async flush(protocol?: IpsecProtocol, opts?: CallOptions): Promise<void> {
    const p = checkOptionalProtocol(protocol);
    await this.#call('flush', p === undefined ? {} : { protocol: p }, opts, voidResult);
  }

  dump(protocol?: IpsecProtocol, opts?: CallOptions): AsyncIterable<SecurityAssociation> {
    return this.#dump<SecurityAssociation>(
      'dump',
      () => {
        const p = checkOptionalProtocol(protocol);
        return p === undefined ? {} : { protocol: p };
      },
      opts,
      (v) => saFromWire(v, 'a dumped SA'),
      true,
    );
  }

  async getSpi(req: GetSpiRequest, opts?: CallOptions): Promise<number> {
    return this.#call('getSpi', { request: checkGetSpi(req) }, opts, (v) => fromWire(v, { t: 'int', min: 1, max: 0xffff_ffff }, 'the SPI'));
  }

  async register(protocol?: IpsecProtocol, opts?: CallOptions): Promise<SupportedAlgorithms> {
    const p = checkOptionalProtocol(protocol);
    return this.#call('register', p === undefined ? {} : { protocol: p }, opts, (v) => fromWire(v, SUPPORTED, 'the algorithms'));
  }

  async spdAdd(policy: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    return this.#call('spdAdd', { policy: checkPolicy(policy) }, opts, (v) => fromWire(v, POLICY, 'the policy'));
  }

  async spdUpdate(policy: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    return this.#call('spdUpdate', { policy: checkPolicy(policy) }, opts, (v) => fromWire(v, POLICY, 'the policy'));
  }

  async spdDelete(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<void> {
    await this.#call('spdDelete', { policy: checkPolicyRef(which) }, opts, voidResult);
  }

  async spdGet(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<SecurityPolicy> {
    return this.#call('spdGet', { policy: checkPolicyRef(which) }, opts, (v) => fromWire(v, POLICY, 'the policy'));
  }

  spdDump(opts?: CallOptions): AsyncIterable<SecurityPolicy> {
    return this.#dump<SecurityPolicy>('spdDump', () => undefined, opts, (v) => fromWire(v, POLICY, 'a dumped policy'));
  }

  async spdFlush(opts?: CallOptions): Promise<void> {
    await this.#call('spdFlush', undefined, opts, voidResult);
  }

  /** Close the connection: calls still waiting fail with ERR_NATT_CLOSED. Idempotent. */
  async close(): Promise<void> {
    if (this.#closeErr) return;
    const closed = new Promise<void>((resolve) => (this.#sock.destroyed ? resolve() : this.#sock.once('close', () => resolve())));
    this.#fail(new NattError('ERR_NATT_CLOSED', 'closed'));
    await closed;
  }
}

/** A connect error as NattSystemError with the control socket's advice and its path. */
function withControlAdvice(e: Error, p: string): Error {
  const x = e as NodeJS.ErrnoException;
  if (typeof x.code !== 'string' || typeof x.errno !== 'number') return e;
  const advice = adviceFor(x.code, 'control');
  const out = new NattSystemError(Math.abs(x.errno), x.syscall ?? 'connect', `${p}${advice ? `: ${advice}` : ''}`);
  if (out.code !== x.code) out.code = x.code;
  (out as { cause?: unknown }).cause = e;
  return out;
}

/** Connect a Unix stream socket, within `timeout` ms. */
function connectUnix(p: string, timeout: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    // A null-prototype options object: a polluted Object.prototype (timeout, ...) never reaches net.connect.
    const sock = net.connect(Object.assign(Object.create(null) as net.IpcNetConnectOpts, { path: p }));
    const timer = longTimeout(() => {
      sock.destroy();
      reject(new NattTimeoutError(`connect to ${p}`, timeout));
    }, timeout);
    const onError = (e: Error): void => {
      timer.clear();
      sock.destroy();
      reject(withControlAdvice(e, p));
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      timer.clear();
      sock.off('error', onError);
      sock.on('error', () => undefined); // until the client's own handler is on (it keeps the error for 'close')
      resolve(sock);
    });
  });
}

/** DaemonSadb is built by DaemonSadb.open() only (a caller's `new` would have no connection). */
const daemonGate = new InternalGate('DaemonSadb.open()', 'a DaemonSadb');

/** openSadb({ backend: 'daemon', path }) lands here. */
export const openDaemonSadb: SadbFactory<DaemonSadb> = (opts) =>
  DaemonSadb.open({ path: opts.path, timeout: opts.timeout, revealKeys: opts.revealKeys });
