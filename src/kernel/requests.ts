// The request layer every kernel (and daemon) message client shares: seq, pending table, timeouts, abort, dumps, send queue.
//
// A client (PfKey, Xfrm, the rtnetlink client, the daemon's control client) keeps only its own matching rules: it
// encodes a request with a sequence number from nextSeq(), hands it to request() or dump() under a key, and when a
// message arrives it finds the pending request (find(key), or currentDump for protocols whose dump replies carry no
// request key) and settles it. Everything else lives here once:
// - per-call options checked at once (own properties, `timeout` a duration, `signal` a real AbortSignal): nothing is
//   armed or held for a call that is refused;
// - a timeout per request (a long timer: durations past 2^31 ms work) and AbortSignal cancellation;
// - at most `maxInFlight` requests waiting for the kernel (the rest wait their turn unsent: a burst cannot overflow the
//   socket's receive buffer);
// - a send queue: a transport that is full takes nothing and says when it is writable again; nothing is dropped and
//   no EAGAIN reaches the caller;
// - one dump at a time (kernels answer a second one with EBUSY), a consumer that stops early has the rest read and
//   dropped before the next dump starts, and a dump's timeout is re-armed by every item;
// - the transport is ref'd while anything is outstanding, unref'd otherwise (an idle client never keeps Node alive).

import { NattError, NattTimeoutError } from '../errors';
import { readCallOptions } from '../core/options';
import { longTimeout, type LongTimer } from '../core/timers';

/** What the request layer needs from a socket. */
export interface MessageTransport {
  /** Hand one whole message over: true when it was taken, false when the transport is full (nothing was taken). */
  send(msg: Uint8Array): boolean;
  /** Call `cb` once when send() may take a message again (asked only after send() returned false). */
  onceWritable(cb: () => void): void;
  ref(): void;
  unref(): void;
}

/** A request or dump waiting for its answer, as the client's matcher sees it. */
export interface PendingRequest<C> {
  /** The request's name for errors ('SADB_ADD', 'XFRM_MSG_NEWSA'). */
  readonly what: string;
  /** What the client attached at request time (reply type expected, replies collected so far, ...). */
  readonly ctx: C;
  readonly dump: boolean;
  /** Settle a request with its answer (for a dump: end it; `value` is ignored). */
  resolve(value: unknown): void;
  /** Fail the request (or the dump). */
  reject(err: Error): void;
  /** Dumps: one more item (re-arms the dump's timeout). */
  item(value: unknown): void;
}

export interface RequestLayerOptions {
  transport: MessageTransport;
  /** The error for a request made or still waiting after close(). */
  closedError: (what: string) => Error;
  /** Default per-request timeout in ms when the call gives none. */
  timeout: number;
  /** Requests waiting for the kernel at once (default 64). */
  maxInFlight?: number;
  /** First sequence number minus one (default 0; netlink clients start at a random point). */
  seqStart?: number;
}

/** One request: its bytes, what it is called, and the key replies are matched by. */
export interface RequestSpec {
  what: string;
  key: string | number;
  bytes: Uint8Array;
}

/** waiting: for a slot (unsent, no timer); admitted: registered and being sent; queued: for the transport; sent. */
type State = 'waiting' | 'admitted' | 'queued' | 'sent' | 'done';

interface Entry<C> extends PendingRequest<C> {
  key: string | number;
  bytes: Uint8Array;
  state: State;
  timeout: number;
  signal: AbortSignal | undefined;
  timer: LongTimer | null;
  onAbort: (() => void) | null;
  settle: (err: Error | null, value?: unknown) => void;
}

const abortError = (what: string, signal: AbortSignal): unknown =>
  signal.reason ?? new NattError('ABORT_ERR', `${what} aborted`);

export class RequestLayer<C = undefined> {
  readonly #t: MessageTransport;
  readonly #closedError: (what: string) => Error;
  readonly #timeout: number;
  readonly #max: number;
  #seq: number;
  readonly #pending = new Map<string | number, Entry<C>>();
  /** Requests not yet sent because maxInFlight are out (FIFO). */
  readonly #waiting: Entry<C>[] = [];
  /** Requests the transport did not take yet (FIFO): flushed when it is writable. */
  readonly #queue: Entry<C>[] = [];
  #inFlight = 0;
  #waitingWritable = false;
  #dumpTail: Promise<void> = Promise.resolve();
  #dump: Entry<C> | null = null;
  #refd = false;
  #closed = false;

  constructor(o: RequestLayerOptions) {
    this.#t = o.transport;
    this.#closedError = o.closedError;
    this.#timeout = o.timeout;
    this.#max = o.maxInFlight ?? 64;
    this.#seq = o.seqStart ?? 0;
  }

  /** The next sequence number (32 bits, never 0). */
  nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    return this.#seq;
  }

  /** Requests outstanding: waiting for a slot, queued for the transport, or waiting for the kernel's answer. */
  get size(): number {
    return this.#pending.size + this.#waiting.length;
  }

  /** The pending request (or dump) under `key`, if any. */
  find(key: string | number): PendingRequest<C> | undefined {
    return this.#pending.get(key);
  }

  /** The dump being answered now (at most one at a time). */
  get currentDump(): PendingRequest<C> | undefined {
    return this.#dump ?? undefined;
  }

  /**
   * Send a request and wait for the matcher to settle it. `opts` are the caller's CallOptions, checked here (a bad
   * one rejects at once with a TypeError/RangeError naming it, before anything is sent or armed).
   */
  request<T>(spec: RequestSpec | (() => RequestSpec), opts: unknown, ctx: C): Promise<T> {
    let checked: ReturnType<typeof readCallOptions>;
    try {
      checked = readCallOptions(opts, this.#timeout);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#closed) return Promise.reject(this.#closedError(typeof spec === 'function' ? 'request' : spec.what));
    let s: RequestSpec;
    try {
      s = typeof spec === 'function' ? spec() : spec;
    } catch (e) {
      return Promise.reject(e);
    }
    if (checked.signal?.aborted) return Promise.reject(abortError(s.what, checked.signal));
    return new Promise<T>((resolve, reject) => {
      const e = this.#entry(s, checked, ctx, false, (err, value) => (err ? reject(err) : resolve(value as T)));
      this.#admit(e);
    });
  }

  /**
   * A dump: the matcher calls `item()` per entry and `resolve()` at the end. Dumps run one at a time in call order.
   * The iterator yields items as they come; leaving it early still reads the rest (dropped) before the next dump.
   */
  dump<T>(spec: () => RequestSpec, opts: unknown, ctx: C): AsyncIterable<T> {
    // Checked now, so a bad option fails at the first next() without taking the dump turn.
    let checked: ReturnType<typeof readCallOptions> | undefined;
    let bad: unknown;
    try {
      checked = readCallOptions(opts, this.#timeout);
    } catch (e) {
      bad = e;
    }
    const layer = this;
    return {
      async *[Symbol.asyncIterator](): AsyncGenerator<T> {
        if (bad !== undefined || !checked) throw bad;
        if (layer.#closed) throw layer.#closedError('dump');
        const signal = checked.signal;
        let release!: () => void;
        const prev = layer.#dumpTail;
        layer.#dumpTail = new Promise<void>((r) => (release = r));
        let released = false;
        const letNextGo = (): void => {
          if (!released) {
            released = true;
            release();
          }
        };
        const queue: T[] = [];
        let finished = false;
        let failure: Error | null = null;
        let dropping = false;
        let wake: (() => void) | null = null;
        let entry: Entry<C> | undefined;
        try {
          await prev;
          if (layer.#closed) throw layer.#closedError('dump');
          const s = spec();
          if (signal?.aborted) throw abortError(s.what, signal);
          entry = layer.#entry(s, checked, ctx, true, (err) => {
            finished = true;
            failure = err;
            if (layer.#dump === entry) layer.#dump = null;
            if (dropping) letNextGo();
            wake?.();
          });
          const e = entry;
          e.item = (v: unknown): void => {
            if (e.state === 'done') return;
            layer.#arm(e); // a dump's timeout counts from its last item
            if (!dropping) queue.push(v as T);
            wake?.();
          };
          layer.#dump = e;
          layer.#admit(e);
          for (;;) {
            if (queue.length) {
              yield queue.shift() as T;
              continue;
            }
            if (failure) throw failure;
            if (finished) return;
            await new Promise<void>((r) => (wake = r));
            wake = null;
          }
        } finally {
          if (!entry || finished) letNextGo();
          else {
            // Left early: drop what is queued and what still comes; the next dump starts once this one has ended.
            dropping = true;
            queue.length = 0;
          }
        }
      },
    };
  }

  /** Fail everything outstanding with `err`; later requests fail with closedError. Idempotent. */
  close(err: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#waiting.splice(0)) e.reject(err);
    for (const e of [...this.#pending.values()]) e.reject(err);
    this.#queue.length = 0;
    this.#updateRef();
  }

  // ---------------------------------------------------------------------------------------------------------------

  #entry(
    s: RequestSpec,
    o: { timeout: number; signal: AbortSignal | undefined },
    ctx: C,
    dump: boolean,
    settle: (err: Error | null, value?: unknown) => void,
  ): Entry<C> {
    const e: Entry<C> = {
      what: s.what,
      key: s.key,
      bytes: s.bytes,
      ctx,
      dump,
      state: 'waiting',
      timeout: o.timeout,
      signal: o.signal,
      timer: null,
      onAbort: null,
      settle,
      resolve: (value) => this.#finish(e, null, value),
      reject: (err) => this.#finish(e, err),
      item: () => {},
    };
    if (o.signal) {
      e.onAbort = () => this.#finish(e, abortError(s.what, o.signal!) as Error);
      o.signal.addEventListener('abort', e.onAbort, { once: true });
    }
    return e;
  }

  /** Give `e` a slot (or make it wait for one), register it, and send it (or queue it for the transport). */
  #admit(e: Entry<C>): void {
    if (this.#inFlight >= this.#max) {
      this.#waiting.push(e);
      this.#updateRef();
      return;
    }
    this.#inFlight++;
    if (this.#pending.has(e.key)) {
      // A key still in use (a sequence number wrapped onto a request that never got its answer): refuse, do not confuse.
      this.#inFlight--;
      this.#finish(e, new NattError('ERR_NATT_BUSY', `${e.what}: request key ${String(e.key)} is still in use`));
      return;
    }
    this.#pending.set(e.key, e);
    e.state = 'admitted';
    this.#arm(e);
    this.#updateRef();
    if (this.#queue.length) {
      e.state = 'queued';
      this.#queue.push(e);
      return;
    }
    this.#sendOne(e);
  }

  #sendOne(e: Entry<C>): boolean {
    let taken: boolean;
    try {
      taken = this.#t.send(e.bytes);
    } catch (err) {
      this.#finish(e, err as Error);
      return true;
    }
    if (taken) {
      if (e.state !== 'done') e.state = 'sent';
      return true;
    }
    e.state = 'queued';
    this.#queue.unshift(e);
    this.#askWritable();
    return false;
  }

  #askWritable(): void {
    if (this.#waitingWritable) return;
    this.#waitingWritable = true;
    this.#t.onceWritable(() => {
      this.#waitingWritable = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#queue.length && !this.#closed) {
      const e = this.#queue.shift()!;
      if (e.state !== 'queued') continue; // settled (timed out, aborted) while it waited
      if (!this.#sendOne(e)) return;
    }
  }

  #arm(e: Entry<C>): void {
    e.timer?.clear();
    e.timer = longTimeout(() => this.#finish(e, new NattTimeoutError(e.what, e.timeout)), e.timeout);
  }

  #finish(e: Entry<C>, err: Error | null, value?: unknown): void {
    if (e.state === 'done') return;
    const wasWaiting = e.state === 'waiting';
    e.state = 'done';
    e.timer?.clear();
    e.timer = null;
    if (e.onAbort) e.signal?.removeEventListener('abort', e.onAbort);
    if (wasWaiting) {
      const i = this.#waiting.indexOf(e);
      if (i >= 0) this.#waiting.splice(i, 1);
    } else if (this.#pending.get(e.key) === e) {
      this.#pending.delete(e.key);
      this.#inFlight--;
      const next = this.#waiting.shift();
      if (next && !this.#closed) this.#admit(next);
    }
    this.#updateRef();
    e.settle(err, value);
  }

  #updateRef(): void {
    const want = !this.#closed && (this.#pending.size > 0 || this.#waiting.length > 0);
    if (want === this.#refd) return;
    this.#refd = want;
    if (want) this.#t.ref();
    else this.#t.unref();
  }
}
