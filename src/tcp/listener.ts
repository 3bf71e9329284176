// listenNattTcp: the RFC 9329 responder, one NattTcpConnection per accepted socket, limits against abuse, and one transport over all.

import * as net from 'node:net';
import * as tls from 'node:tls';
import { EventEmitter } from 'node:events';
import { rangeError, typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { withAdvice } from '../native/advice';
import { addressToBytes, bytesToAddress } from '../ip/address';
import { intOption, oneOf, readOptions } from '../core/options';
import type { EspBatch, EspTransport, RemoteInfo, SendCallback } from '../transport';
import type { FrameDropReason } from './framing';
import {
  CHECK,
  END,
  NattTcpConnection,
  SEND,
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
  type TcpSendDropReason,
  connectionGate,
  checkCallback,
} from './connection';
import {
  LIMIT_NAMES,
  LISTENER_DEFAULTS,
  readAddress,
  readFamily,
  readLimits,
  readPort,
  readServerTls,
  type NattTcpTlsCommonOptions,
  type ServerTls,
} from './options';

export interface NattTcpServerTlsOptions extends NattTcpTlsCommonOptions {
  /** Ask initiators for a certificate (default false); with it, rejectUnauthorized defaults to true. */
  requestCert?: boolean;
}

export interface ListenNattTcpOptions {
  /** 4 (default) or 6. */
  family?: 4 | 6;
  /** Local address; default the unspecified one of the family. */
  address?: string;
  /** TCP port; default 4500 (RFC 9329 §2: the port is configured; 4500 is the usual one); 0 picks a free one. */
  port?: number;
  /** Wrap every connection in TLS (RFC 9329 Appendix A): the server's key and certificate. */
  tls?: NattTcpServerTlsOptions;
  /**
   * Connections at once, default 1024. A newcomer beyond it closes (`'evicted'`) the oldest connection that has not
   * yet sent a whole IKE or ESP frame, else the one idle the longest.
   */
  maxConnections?: number;
  /** ms from accept to the first whole IKE or ESP frame (TLS handshake and "IKETCP" prefix included); default 10000. */
  handshakeTimeout?: number;
  /** ms without a whole IKE or ESP frame from the peer; default 600000 (10 min); 0 = never. */
  idleTimeout?: number;
  /** ms a frame that started arriving may take to complete; default 30000; 0 = never. */
  frameTimeout?: number;
  /** Send-queue bound per connection in bytes (ESP beyond it is dropped and counted); default 1 MiB. */
  maxQueuedBytes?: number;
  /** The longest frame accepted (its Length), 34..65535; default 65535. A longer one closes the connection. */
  maxFrameLength?: number;
  /** listen(2) backlog; default 511. */
  backlog?: number;
  /**
   * How the listener, used as one EspTransport, picks the connection for a send to (port, address): `'address'`
   * (default) the connection of that exact TCP port if it is open, else the connection from that address that last
   * delivered a frame (a reconnected initiator, RFC 9329 §6.1, before the engine has learnt its new port);
   * `'exact'` only the exact port.
   */
  route?: 'address' | 'exact';
}

/** The counts of NattTcpConnectionStats, summed over every connection the listener ever had, and its own. */
export interface NattTcpListenerStats extends Omit<NattTcpConnectionStats, 'queuedBytes' | 'dropped'> {
  /** Open connections now, and accepted in all. */
  connections: number;
  accepted: number;
  /** Connections closed, by reason. */
  closed: Record<TcpCloseReason, number>;
  /** Sends routed to the connection the peer last used, not to the exact port asked for (route 'address'). */
  routedByAddress: number;
  /** Frames and sends dropped, by reason, over all connections and the router. */
  dropped: Record<FrameDropReason, number> & Record<TcpSendDropReason, number>;
}

export interface NattTcpListenerEvents {
  /** A TCP connection was accepted (its prefix and frames are still to come). */
  connection: [conn: NattTcpConnection];
  ike: [payload: Buffer, rinfo: RemoteInfo, conn: NattTcpConnection];
  esp: [packet: Buffer, rinfo: RemoteInfo, conn: NattTcpConnection];
  /** A connection's send queue emptied after passing half its bound. */
  drain: [conn: NattTcpConnection];
  /** Only when someone listens (an accept error; network errors of connections are counted in stats().closed). */
  error: [err: Error];
  close: [];
}

/** The connections from one remote address: by TCP port, and the one that last delivered a frame. */
interface PeerRecord {
  byPort: Map<number, NattTcpConnection>;
  last: NattTcpConnection | null;
}

const PEER = Symbol('peer');
type Indexed = NattTcpConnection & { [PEER]?: PeerRecord };

/** An address as a map key: IPv4 as is, IPv6 in one canonical text form (so '2001:db8::1' and '2001:DB8:0::1' meet). */
function addressKey(a: string): string {
  if (!a.includes(':')) return a;
  try {
    return bytesToAddress(addressToBytes(a), 0, 16);
  } catch {
    return a;
  }
}

/** The class's constructor is listenNattTcp()'s alone. */
const listenerGate = new InternalGate('listenNattTcp()', 'a NattTcpListener');

/**
 * The RFC 9329 responder: a TCP (or TLS) listener whose every accepted socket becomes a NattTcpConnection
 * (`'connection'`). It is itself an EspTransport over all of them, so one UserlandEngine serves every initiator:
 * `'esp'` and `'ike'` come from any connection with that connection's RemoteInfo, and a send to (port, address)
 * goes to the connection of that peer (see the `route` option). An initiator that reconnects from a new source port
 * keeps its SAs (§6.1): the engine's first authenticated packet from the new port moves the SAs there ('newMapping').
 *
 * Limits (all options, all counted in stats()): maxConnections (eviction), handshakeTimeout, idleTimeout,
 * frameTimeout, maxQueuedBytes, maxFrameLength. Bad input closes that connection only; nothing here throws on it.
 */
export class NattTcpListener extends EventEmitter<NattTcpListenerEvents> implements EspTransport {
  readonly encap = 'espintcp' as const;
  readonly family: 4 | 6;
  /** True when connections run inside TLS (RFC 9329 Appendix A). */
  readonly tls: boolean;
  readonly route: 'address' | 'exact';
  readonly maxConnections: number;
  readonly limits: Readonly<TcpConnectionLimits>;
  readonly #server: net.Server;
  readonly #tls: ServerTls | null;
  /** Open connections, oldest first (a Set keeps insertion order). */
  readonly #conns = new Set<Indexed>();
  readonly #peers = new Map<string, PeerRecord>();
  readonly #sweeper: Sweeper;
  readonly #owner: ConnectionOwner;
  readonly #retired = zeroStats();
  readonly #closedBy = Object.fromEntries(TCP_CLOSE_REASONS.map((r) => [r, 0])) as Record<TcpCloseReason, number>;
  #accepted = 0;
  #routedByAddress = 0;
  #noConnection = 0;
  #keepalivesNotSent = 0;
  #closed = false;
  #serverClosed = false;
  #refed = true;
  /** The last route found (no lookup while a peer's packets keep going to the same place). */
  #lastAddress = '';
  #lastPort = 0;
  #lastConn: NattTcpConnection | null = null;
  #lastByAddress = false;
  #noConnectionError: Error | null = null;

  /** @internal use listenNattTcp() */
  constructor(server: net.Server, family: 4 | 6, serverTls: ServerTls | null, limits: TcpConnectionLimits, maxConnections: number, route: 'address' | 'exact') {
    listenerGate.check();
    super();
    this.#server = server;
    this.family = family;
    this.#tls = serverTls;
    this.tls = serverTls !== null;
    this.limits = Object.freeze({ ...limits });
    this.maxConnections = maxConnections;
    this.route = route;
    this.#sweeper = new Sweeper(limits);
    this.#owner = {
      onIke: (payload, rinfo, conn) => {
        this.#seen(conn);
        this.emit('ike', payload, rinfo, conn);
      },
      onEsp: (packet, rinfo, conn) => {
        this.#seen(conn);
        this.emit('esp', packet, rinfo, conn);
      },
      onDrain: (conn) => this.emit('drain', conn),
      onClose: (conn, reason) => this.#onClose(conn, reason),
    };
    server.on('connection', (raw: net.Socket) => this.#accept(raw));
    server.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', withAdvice(err, 'tcp') as Error);
    });
    server.on('close', () => {
      this.#serverClosed = true;
      this.#maybeClosed();
    });
  }

  #accept(raw: net.Socket): void {
    if (this.#closed) {
      raw.destroy();
      return;
    }
    if (!this.#refed) raw.unref();
    if (this.#conns.size >= this.maxConnections) this.#evict();
    let sock: net.Socket = raw;
    if (this.#tls) {
      const t = this.#tls;
      raw.on('error', () => {}); // reported by the TLS socket on top of it
      sock = new tls.TLSSocket(raw, { isServer: true, secureContext: t.context, requestCert: t.requestCert, rejectUnauthorized: t.rejectUnauthorized });
    }
    const conn = connectionGate.make(() => new NattTcpConnection(sock, 'responder', this.limits, this.#owner, this.tls)) as Indexed;
    this.#accepted++;
    if (conn.closeReason !== null || !conn.remoteAddress) return; // gone before it began (its close is counted)
    this.#conns.add(conn);
    const key = addressKey(conn.remoteAddress);
    let rec = this.#peers.get(key);
    if (!rec) {
      rec = { byPort: new Map(), last: null };
      this.#peers.set(key, rec);
    }
    rec.byPort.set(conn.remotePort, conn);
    conn[PEER] = rec;
    this.#lastConn = null;
    this.#sweeper.add(conn);
    this.emit('connection', conn);
  }

  /** Full: close the oldest connection that has not sent a whole frame yet, else the one idle the longest. */
  #evict(): void {
    let victim: Indexed | null = null;
    for (const c of this.#conns) {
      if (!c.proven) {
        victim = c;
        break;
      }
      if (victim === null || c.lastActive < victim.lastActive) victim = c;
    }
    if (victim === null) return;
    this.#detach(victim);
    victim.destroy('evicted');
  }

  /** A frame from `conn`: it is the connection its address last used. */
  #seen(conn: Indexed): void {
    const rec = conn[PEER];
    if (rec !== undefined && rec.last !== conn) {
      rec.last = conn;
      this.#lastConn = null;
    }
  }

  /** Forget `conn` in the indexes (idempotent). */
  #detach(conn: Indexed): void {
    if (!this.#conns.delete(conn)) return;
    this.#sweeper.delete(conn);
    const rec = conn[PEER];
    if (rec !== undefined) {
      if (rec.byPort.get(conn.remotePort) === conn) rec.byPort.delete(conn.remotePort);
      if (rec.last === conn) {
        // Another connection of that address that has spoken, the most recently active one.
        rec.last = null;
        for (const c of rec.byPort.values()) if (c.proven && c.open && (rec.last === null || c.lastActive > rec.last.lastActive)) rec.last = c;
      }
      if (rec.byPort.size === 0) this.#peers.delete(addressKey(conn.remoteAddress));
    }
    this.#lastConn = null;
  }

  #onClose(conn: NattTcpConnection, reason: TcpCloseReason): void {
    this.#detach(conn);
    this.#closedBy[reason]++;
    addStats(this.#retired, conn.stats());
    this.#maybeClosed();
  }

  /** The connection a send to (port, address) takes, or null. */
  #routeTo(port: number, address: string): NattTcpConnection | null {
    const last = this.#lastConn;
    if (last !== null && port === this.#lastPort && address === this.#lastAddress && last.open) {
      if (this.#lastByAddress) this.#routedByAddress++;
      return last;
    }
    if (typeof port !== 'number' || !Number.isInteger(port)) throw typeError('port', 'an integer', port);
    if (port < 1 || port > 65535) throw rangeError('port', 'from 1 to 65535', port);
    if (typeof address !== 'string') throw typeError('address', 'a string', address);
    const rec = this.#peers.get(addressKey(address));
    if (rec === undefined) return null;
    let conn = rec.byPort.get(port) ?? null;
    let byAddress = false;
    if ((conn === null || !conn.open) && this.route === 'address') {
      conn = rec.last !== null && rec.last.open ? rec.last : null;
      byAddress = conn !== null;
    }
    if (conn === null || !conn.open) return null;
    this.#lastConn = conn;
    this.#lastPort = port;
    this.#lastAddress = address;
    this.#lastByAddress = byAddress;
    if (byAddress) this.#routedByAddress++;
    return conn;
  }

  #noRoute(cb: SendCallback | undefined): void {
    this.#noConnection++;
    if (cb) {
      const err = (this.#noConnectionError ??= sendDropError('noConnection'));
      process.nextTick(cb, err);
    }
  }

  /** Send one IKE message to the peer at (port, address): the connection it uses (RFC 9329 §3.1 framing). */
  sendIke(payload: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    checkIke(payload);
    const c = this.#routeTo(port, address);
    if (c === null) this.#noRoute(cb);
    else c[SEND](1, payload, cb);
  }

  /** Send one ESP packet (SPI first) to the peer at (port, address). Drops (no connection, queue full) are counted. */
  sendEsp(packet: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    checkEsp(packet);
    const c = this.#routeTo(port, address);
    if (c === null) this.#noRoute(cb);
    else c[SEND](2, packet, cb);
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

  /** The connection a send to (port, address) would take now (or null): for a sender that wants to watch needDrain. */
  connectionTo(port: number, address: string): NattTcpConnection | null {
    const c = this.#routeTo(port, address);
    if (c !== null && this.#lastByAddress) this.#routedByAddress--; // a question, not a send
    return c;
  }

  /** The open connections, oldest first (a copy). */
  connections(): NattTcpConnection[] {
    return [...this.#conns];
  }

  /** The bound address and port. */
  address(): { address: string; port: number; family: string } {
    const a = this.#server.address();
    if (a === null || typeof a === 'string') throw typeError('listener', 'a listening TCP server', a);
    return { address: a.address, port: a.port, family: a.family };
  }

  /** A snapshot: the listener's own counts and the sum over every connection it ever had. */
  stats(): NattTcpListenerStats {
    const sum = zeroStats();
    addStats(sum, this.#retired);
    for (const c of this.#conns) addStats(sum, c.stats());
    sum.keepalivesNotSent += this.#keepalivesNotSent;
    return {
      ...sum,
      connections: this.#conns.size,
      accepted: this.#accepted,
      closed: { ...this.#closedBy },
      routedByAddress: this.#routedByAddress,
      dropped: { ...sum.dropped, noConnection: this.#noConnection },
    };
  }

  /** Stop accepting and close every connection gracefully ('listenerClosed'); `'close'` follows. Idempotent. */
  close(cb?: () => void): void {
    if (cb !== undefined && typeof cb !== 'function') throw typeError('cb', 'a function', cb);
    if (cb) {
      if (this.#closed && this.#serverClosed && this.#conns.size === 0) queueMicrotask(cb);
      else this.once('close', () => cb());
    }
    if (this.#closed) return;
    this.#closed = true;
    this.#sweeper.stop();
    this.#server.close();
    for (const c of [...this.#conns]) c[END]('listenerClosed');
    this.#maybeClosed();
  }

  #closeEmitted = false;

  #maybeClosed(): void {
    if (!this.#closed || !this.#serverClosed || this.#conns.size > 0 || this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.emit('close');
  }

  ref(): this {
    this.#refed = true;
    this.#server.ref();
    for (const c of this.#conns) c.ref();
    return this;
  }

  unref(): this {
    this.#refed = false;
    this.#server.unref();
    for (const c of this.#conns) c.unref();
    return this;
  }

  /** Check every connection's deadlines now (the sweep does this on its own). @internal for tests */
  [CHECK](now = performance.now()): void {
    for (const c of [...this.#conns]) c[CHECK](now);
  }
}

const LISTEN_OPTIONS = ['family', 'address', 'port', 'tls', 'maxConnections', 'backlog', 'route', ...LIMIT_NAMES] as const;

/**
 * Listen for RFC 9329 connections (IKE and ESP over TCP, optionally TLS). Options are checked at once (a bad one
 * throws a TypeError / RangeError naming it, synchronously; unknown names are refused); the promise resolves once
 * the server listens (a port in use rejects with EADDRINUSE and advice).
 */
export function listenNattTcp(options: ListenNattTcpOptions = {}): Promise<NattTcpListener> {
  const o = readOptions(options, LISTEN_OPTIONS);
  const family = readFamily(o.family);
  const address = readAddress(o.address, 'address', family, family === 4 ? '0.0.0.0' : '::') as string;
  const port = readPort(o.port, 'port', 0, 4500);
  const d = LISTENER_DEFAULTS;
  const limits = readLimits(o, d);
  const maxConnections = intOption(o.maxConnections, 'maxConnections', 1, 1_000_000, d.maxConnections);
  const backlog = intOption(o.backlog, 'backlog', 1, 65535, d.backlog);
  const route = oneOf(o.route, 'route', ['address', 'exact'] as const, 'address');
  const serverTls = readServerTls(o.tls);
  const server = net.createServer({ pauseOnConnect: false, noDelay: true });
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.close();
      reject(withAdvice(err, 'tcp', { port }));
    };
    server.once('error', onError);
    server.listen({ host: address, port, backlog, exclusive: true, ipv6Only: family === 6 }, () => {
      server.off('error', onError);
      resolve(listenerGate.make(() => new NattTcpListener(server, family, serverTls, limits, maxConnections, route)));
    });
  });
}
