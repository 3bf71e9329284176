// connectNattTcp: the RFC 9329 initiator, one connection to the responder at a time, re-established with bounded backoff.

import * as net from 'node:net';
import * as tls from 'node:tls';
import { EventEmitter } from 'node:events';
import { NattError, NattSystemError, errnoNumber, typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { adviceFor, withAdvice } from '../native/advice';
import { longTimeout, type LongTimer } from '../core/timers';
import { durationMs, oneOf, readOptions, stringOption } from '../core/options';
import type { EspBatch, EspTransport, RemoteInfo, SendCallback } from '../transport';
import {
  NattTcpConnection,
  Sweeper,
  TCP_CLOSE_REASONS,
  checkEsp,
  checkIke,
  sendDropError,
  addStats,
  zeroStats,
  type ConnectionOwner,
  type NattTcpConnectionStats,
  type TcpCloseReason,
  type TcpConnectionLimits,
  type TcpTotals,
  connectionGate,
  checkCallback,
} from './connection';
import {
  CLIENT_DEFAULTS,
  LIMIT_NAMES,
  readAddress,
  readClientTls,
  readLimits,
  readReconnect,
  readPort,
  type NattTcpTlsCommonOptions,
  type ReconnectPolicy,
} from './options';

export interface NattTcpClientTlsOptions extends NattTcpTlsCommonOptions {
  /** SNI and the name the certificate must carry; default `host` when it is a name (not an address). */
  servername?: string;
  /** (rejectUnauthorized defaults to true: the responder's certificate must verify against `ca`, else the system's CAs.) */
  checkServerIdentity?: tls.ConnectionOptions['checkServerIdentity'];
}

export interface ConnectNattTcpOptions {
  /** The responder: an address or a host name (resolved at each connection). Required. */
  host: string;
  /** Its TCP port; default 4500. */
  port?: number;
  /** 0 (default: as `host` resolves), 4 or 6. */
  family?: 0 | 4 | 6;
  /** Local address to connect from. */
  localAddress?: string;
  /** TLS around the stream (RFC 9329 Appendix A): `true` (system CAs) or options. */
  tls?: boolean | NattTcpClientTlsOptions;
  /** ms for TCP (and TLS) to connect, each attempt; default 10000. */
  connectTimeout?: number;
  /**
   * Re-establish a lost connection (RFC 9329 §6.1: the originator's job): `true` (default), `false`, or
   * `{ minDelay: 100, maxDelay: 30000, attempts: 20 }` (ms; exponential backoff with jitter; giving up after
   * `attempts` consecutive failures closes the client with `'error'` if listened).
   */
  reconnect?: boolean | { minDelay?: number; maxDelay?: number; attempts?: number };
  /** ms without a whole frame from the responder; default 0 (never: the initiator keeps its connection). */
  idleTimeout?: number;
  /** ms a frame that started arriving may take; default 30000; 0 = never. */
  frameTimeout?: number;
  /** Send-queue bound in bytes; default 1 MiB. */
  maxQueuedBytes?: number;
  /** The longest frame accepted, 34..65535; default 65535. */
  maxFrameLength?: number;
}

/** Where the initiator is connected (the 'connect' event). */
export interface NattTcpConnectInfo {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** False for the first connection, true for a re-established one. */
  reconnected: boolean;
}

export interface NattTcpClientStats extends Omit<NattTcpConnectionStats, 'queuedBytes'> {
  connected: boolean;
  /** Connections established in all, re-established ones among them, and attempts that failed. */
  connects: number;
  reconnects: number;
  failedAttempts: number;
  /** Connections lost, by reason. */
  disconnects: Record<TcpCloseReason, number>;
  queuedBytes: number;
}

export interface NattTcpClientEvents {
  connect: [info: NattTcpConnectInfo];
  /** The connection closed; with reconnect on, a new one is being made. */
  disconnect: [reason: TcpCloseReason, err: Error | undefined];
  ike: [payload: Buffer, rinfo: RemoteInfo];
  esp: [packet: Buffer, rinfo: RemoteInfo];
  drain: [];
  /** Only when someone listens: reconnection gave up (the client then closes). */
  error: [err: Error];
  close: [];
}

interface Dial {
  host: string;
  port: number;
  family: 0 | 4 | 6;
  localAddress: string | undefined;
  tls: tls.ConnectionOptions | null;
  connectTimeout: number;
}

/** One attempt: TCP (and TLS) connected → onSocket, in the same tick as the event (no window without listeners). */
function dial(d: Dial, onSocket: (s: net.Socket) => void, onError: (e: Error) => void): () => void {
  const base = { host: d.host, port: d.port, family: d.family || undefined, localAddress: d.localAddress };
  const sock = d.tls ? tls.connect({ ...d.tls, ...base }) : net.connect(base);
  let done = false;
  const fail = (e: Error): void => {
    if (done) return;
    done = true;
    timer.clear();
    sock.destroy();
    onError(e);
  };
  const timer: LongTimer = longTimeout(() => {
    fail(new NattSystemError(errnoNumber('ETIMEDOUT') ?? 110, 'connect', `no connection within ${d.connectTimeout} ms: ${adviceFor('ETIMEDOUT', 'tcp')}`));
  }, d.connectTimeout);
  sock.once('error', (e) => fail(withAdvice(e, 'tcp', { port: d.port }) as Error));
  sock.once(d.tls ? 'secureConnect' : 'connect', () => {
    if (done) return;
    done = true;
    timer.clear();
    sock.removeAllListeners('error');
    onSocket(sock);
  });
  return () => fail(new NattError('ERR_NATT_CLOSED', 'the client was closed while connecting'));
}

/** The class's constructor is connectNattTcp()'s alone. */
const clientGate = new InternalGate('connectNattTcp()', 'a NattTcpClient');

/**
 * The RFC 9329 initiator ("TCP originator"): one connection to the responder, which it opens with the "IKETCP"
 * prefix (§4) and re-establishes when it is lost (§6.1), with bounded exponential backoff. It is an EspTransport
 * whose identity outlives its connections, so a UserlandEngine over it keeps running across reconnections; while
 * no connection is up, sends are dropped and counted (`dropped.closed`), as a datagram path drops them.
 */
export class NattTcpClient extends EventEmitter<NattTcpClientEvents> implements EspTransport {
  readonly encap = 'espintcp' as const;
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly #dial: Dial;
  readonly #limits: TcpConnectionLimits;
  readonly #reconnect: ReconnectPolicy | null;
  readonly #sweeper: Sweeper;
  readonly #owner: ConnectionOwner;
  readonly #retired: TcpTotals;
  readonly #disconnects = Object.fromEntries(TCP_CLOSE_REASONS.map((r) => [r, 0])) as Record<TcpCloseReason, number>;
  #conn: NattTcpConnection | null = null;
  #local: { address: string; port: number; family: string };
  #connects = 0;
  #reconnects = 0;
  #failedAttempts = 0;
  #failures = 0;
  #notConnected = 0;
  #notConnectedError: Error | null = null;
  #keepalivesNotSent = 0;
  #timer: LongTimer | null = null;
  #abort: (() => void) | null = null;
  #closed = false;
  #closeEmitted = false;
  #refed = true;

  /** @internal use connectNattTcp() */
  constructor(d: Dial, limits: TcpConnectionLimits, reconnect: ReconnectPolicy | null, first: net.Socket) {
    clientGate.check();
    super();
    this.host = d.host;
    this.port = d.port;
    this.tls = d.tls !== null;
    this.#dial = d;
    this.#limits = limits;
    this.#reconnect = reconnect;
    this.#sweeper = new Sweeper(limits);
    this.#retired = zeroStats();
    this.#owner = {
      onIke: (p, r) => this.emit('ike', p, r),
      onEsp: (p, r) => this.emit('esp', p, r),
      onDrain: () => this.emit('drain'),
      onClose: (conn, reason, err) => this.#onClose(conn, reason, err),
    };
    this.#local = { address: '', port: 0, family: 'IPv4' };
    this.#adopt(first, false);
  }

  #adopt(sock: net.Socket, reconnected: boolean): void {
    const c = connectionGate.make(() => new NattTcpConnection(sock, 'originator', this.#limits, this.#owner, this.tls));
    if (!this.#refed) c.unref();
    this.#conn = c;
    this.#local = c.address();
    this.#connects++;
    if (reconnected) this.#reconnects++;
    this.#failures = 0;
    this.#sweeper.add(c);
    if (c.closeReason === null) {
      this.emit('connect', { localAddress: c.localAddress, localPort: c.localPort, remoteAddress: c.remoteAddress, remotePort: c.remotePort, reconnected });
    }
  }

  #onClose(conn: NattTcpConnection, reason: TcpCloseReason, err: Error | undefined): void {
    if (conn !== this.#conn) return;
    this.#conn = null;
    this.#sweeper.delete(conn);
    this.#disconnects[reason]++;
    addStats(this.#retired, conn.stats());
    this.emit('disconnect', reason, err);
    if (this.#closed || this.#reconnect === null) {
      this.#closed = true;
      this.#emitClose();
      return;
    }
    this.#schedule(undefined);
  }

  /** The next attempt after a backoff of minDelay·2^failures (at most maxDelay), jittered to 50–100 %. */
  #schedule(lastError: Error | undefined): void {
    const p = this.#reconnect!;
    if (this.#failures >= p.attempts) {
      this.#closed = true;
      const err = new NattError('ERR_NATT_TCP_RECONNECT', `gave up reconnecting to ${this.host}:${this.port} after ${p.attempts} failed attempts${lastError ? `: ${lastError.message}` : ''}`, { cause: lastError });
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.#emitClose();
      return;
    }
    const delay = Math.min(p.maxDelay, p.minDelay * 2 ** Math.min(this.#failures, 52)) * (0.5 + Math.random() / 2);
    this.#timer = longTimeout(() => this.#attempt(), delay);
    if (!this.#refed) this.#timer.unref();
  }

  #attempt(): void {
    this.#timer = null;
    if (this.#closed) return;
    this.#abort = dial(
      this.#dial,
      (sock) => {
        this.#abort = null;
        if (this.#closed) {
          sock.destroy();
          return;
        }
        this.#adopt(sock, true);
      },
      (err) => {
        this.#abort = null;
        if (this.#closed) return;
        this.#failures++;
        this.#failedAttempts++;
        this.#schedule(err);
      },
    );
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.#sweeper.stop();
    queueMicrotask(() => this.emit('close'));
  }

  /** True while a connection is up. */
  get connected(): boolean {
    return this.#conn !== null && this.#conn.open;
  }

  /** The connection now (null between connections). */
  get connection(): NattTcpConnection | null {
    return this.#conn;
  }

  /** True once the current connection's queue passed half its bound; `'drain'` follows when it empties. */
  get needDrain(): boolean {
    return this.#conn?.needDrain ?? false;
  }

  #notConnectedDrop(cb: SendCallback | undefined): void {
    this.#notConnected++;
    if (cb) {
      const err = (this.#notConnectedError ??= sendDropError('closed'));
      process.nextTick(cb, err);
    }
  }

  /** Send one IKE message to the responder (port and address must be its; RFC 9329 §3.1). */
  sendIke(payload: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    checkIke(payload);
    const c = this.#conn;
    if (c === null || !c.open) this.#notConnectedDrop(cb);
    else c.sendIke(payload, port, address, cb);
  }

  /** Send one ESP packet (SPI first) to the responder; dropped and counted while not connected. */
  sendEsp(packet: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    checkEsp(packet);
    const c = this.#conn;
    if (c === null || !c.open) this.#notConnectedDrop(cb);
    else c.sendEsp(packet, port, address, cb);
  }

  sendEspBatch(batch: EspBatch): void {
    for (let i = 0; i < batch.count; i++) this.sendEsp(batch.packets[i], batch.ports[i], batch.addresses[i]);
  }

  /** A counted no-op: RFC 9329 §6.6, no NAT-keepalives over TCP. */
  sendKeepalive(port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    if (typeof port !== 'number' || !Number.isInteger(port)) throw typeError('port', 'an integer', port);
    if (typeof address !== 'string') throw typeError('address', 'a string', address);
    this.#keepalivesNotSent++;
    if (cb) process.nextTick(cb, null, 0);
  }

  /** The local address and port of the current connection (the last one while reconnecting). */
  address(): { address: string; port: number; family: string } {
    return { ...this.#local };
  }

  stats(): NattTcpClientStats {
    const sum = zeroStats();
    addStats(sum, this.#retired);
    const c = this.#conn?.stats();
    if (c) addStats(sum, c);
    sum.dropped.closed += this.#notConnected;
    sum.keepalivesNotSent += this.#keepalivesNotSent;
    return {
      ...sum,
      connected: this.connected,
      connects: this.#connects,
      reconnects: this.#reconnects,
      failedAttempts: this.#failedAttempts,
      disconnects: { ...this.#disconnects },
      queuedBytes: c ? c.queuedBytes : 0,
    };
  }

  /** Close the connection (gracefully) and stop reconnecting; `'close'` follows. Idempotent. */
  close(cb?: () => void): void {
    if (cb !== undefined && typeof cb !== 'function') throw typeError('cb', 'a function', cb);
    if (cb) {
      if (this.#closeEmitted) queueMicrotask(cb);
      else this.once('close', () => cb());
    }
    if (this.#closed) {
      if (this.#conn === null) this.#emitClose();
      return;
    }
    this.#closed = true;
    this.#timer?.clear();
    this.#timer = null;
    this.#abort?.();
    this.#abort = null;
    if (this.#conn !== null) this.#conn.close();
    else this.#emitClose();
  }

  ref(): this {
    this.#refed = true;
    this.#conn?.ref();
    this.#timer?.ref();
    return this;
  }

  unref(): this {
    this.#refed = false;
    this.#conn?.unref();
    this.#timer?.unref();
    return this;
  }
}

const CONNECT_OPTIONS = ['host', 'port', 'family', 'localAddress', 'tls', 'connectTimeout', 'reconnect', ...LIMIT_NAMES.filter((n) => n !== 'handshakeTimeout')] as const;

/**
 * Connect to an RFC 9329 responder. Options are checked at once (TypeError / RangeError naming the option,
 * synchronously; unknown names refused). Resolves once connected (TCP, and TLS when asked) with the prefix queued;
 * the first attempt's failure rejects (ECONNREFUSED, ETIMEDOUT, a TLS error), later losses reconnect.
 */
export function connectNattTcp(options: ConnectNattTcpOptions): Promise<NattTcpClient> {
  if (options === undefined) throw typeError('options', 'an object { host, port? }', options);
  const o = readOptions(options, CONNECT_OPTIONS);
  const host = stringOption(o.host, 'host');
  const port = readPort(o.port, 'port', 1, 4500);
  const family = oneOf(o.family, 'family', [0, 4, 6] as const, 0);
  const localAddress = o.localAddress === undefined ? undefined : readAddress(o.localAddress, 'localAddress', net.isIP(String(o.localAddress)) === 6 ? 6 : 4, undefined);
  const d = CLIENT_DEFAULTS;
  const limits = readLimits(o, d); // no handshakeTimeout: the initiator chose its peer
  const dialOpts: Dial = {
    host,
    port,
    family,
    localAddress,
    tls: readClientTls(o.tls, host),
    connectTimeout: durationMs(o.connectTimeout, 'connectTimeout', 1, d.connectTimeout),
  };
  const reconnect = readReconnect(o.reconnect);
  return new Promise((resolve, reject) => {
    dial(dialOpts, (sock) => resolve(clientGate.make(() => new NattTcpClient(dialOpts, limits, reconnect, sock))), reject);
  });
}

