// One RFC 9329 connection: IKE and ESP framed in one TCP (or TLS) stream, with a bounded send queue, deadlines and counts.

import { EventEmitter } from 'node:events';
import type * as net from 'node:net';
import { NattError, rangeError, typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { sameAddress } from '../ip/address';
import { longInterval, type LongTimer } from '../core/timers';
import type { EspBatch, EspTransport, RemoteInfo, SendCallback } from '../transport';
import {
  ESP_FRAME_HEADER_LENGTH,
  FrameDecoder,
  IKE_FRAME_HEADER_LENGTH,
  MAX_FRAME_LENGTH,
  streamPrefix,
  type FrameDropReason,
  type FrameFailReason,
} from './framing';

/** Who opened the TCP connection: the originator sends the "IKETCP" prefix (RFC 9329 §4), the responder expects it. */
export type TcpRole = 'originator' | 'responder';

/**
 * Why a connection closed. `'local'`: close() or destroy() here; `'peerEnd'`: the peer's FIN between frames;
 * `'reset'`: a socket error (ECONNRESET, EPIPE, ...); `'tlsError'`: the TLS layer failed (handshake, certificate,
 * bad record); the framing failures (`'badPrefix'`, `'lengthBelowMinimum'`, `'lengthOverLimit'`, `'truncated'`:
 * FIN inside a frame); the limits (`'handshakeTimeout'`, `'idleTimeout'`, `'frameTimeout'`, `'evicted'`: closed
 * to admit a newer connection when the listener was full); `'listenerClosed'`.
 */
export type TcpCloseReason =
  | 'local'
  | 'peerEnd'
  | 'reset'
  | 'tlsError'
  | FrameFailReason
  | 'handshakeTimeout'
  | 'idleTimeout'
  | 'frameTimeout'
  | 'evicted'
  | 'listenerClosed';

export const TCP_CLOSE_REASONS: readonly TcpCloseReason[] = Object.freeze([
  'local',
  'peerEnd',
  'reset',
  'tlsError',
  'badPrefix',
  'lengthBelowMinimum',
  'lengthOverLimit',
  'truncated',
  'handshakeTimeout',
  'idleTimeout',
  'frameTimeout',
  'evicted',
  'listenerClosed',
] as TcpCloseReason[]);

/**
 * Why a send was dropped (counted; reported to the send's callback when it has one, never as 'error'):
 * `'queueFull'` the connection's queue holds maxQueuedBytes already (the peer reads too slowly); `'closed'` the
 * connection is closed (or, on the initiator, not connected right now); `'wrongPeer'` the port and address are not
 * this connection's peer; `'noConnection'` (listener) no open connection leads to that peer.
 */
export type TcpSendDropReason = 'queueFull' | 'closed' | 'wrongPeer' | 'noConnection';

/** The limits one connection keeps, in milliseconds and bytes (0 turns a timeout off). */
export interface TcpConnectionLimits {
  /** Responder: from accept to the first whole frame after the prefix (TLS handshake and prefix included). */
  handshakeTimeout: number;
  /** No whole frame received for this long closes the connection. */
  idleTimeout: number;
  /** A frame that started arriving must be complete within this long (slowloris). */
  frameTimeout: number;
  /** Bytes queued for sending (ours and the socket's) beyond which ESP is dropped; IKE may go up to 64 KiB past it. */
  maxQueuedBytes: number;
  /** The longest frame accepted (FrameDecoder's maxFrameLength). */
  maxFrameLength: number;
}

export interface NattTcpConnectionStats {
  /** Frames received, by kind (keepalives are dropped silently, RFC 9329 §6.6, and only counted). */
  ike: number;
  esp: number;
  keepalive: number;
  /** Frames sent, by kind. */
  sentIke: number;
  sentEsp: number;
  /** sendKeepalive() calls, none sent: RFC 9329 §6.6 says NAT-keepalives SHOULD NOT be sent over TCP. */
  keepalivesNotSent: number;
  /** Octets of the stream (TLS plaintext), each way, prefix included. */
  bytesIn: number;
  bytesOut: number;
  /** Octets queued right now (ours and the socket's). */
  queuedBytes: number;
  /** Frames the decoder dropped (well framed, not a message) and sends dropped, by reason. */
  dropped: Record<FrameDropReason, number> & Record<'queueFull' | 'closed' | 'wrongPeer', number>;
}

/** The counts of NattTcpConnectionStats without the queue: what the listener and the initiator sum. */
export type TcpTotals = Omit<NattTcpConnectionStats, 'queuedBytes'>;

/** All counts zero. @internal */
export function zeroStats(): TcpTotals {
  return {
    ike: 0,
    esp: 0,
    keepalive: 0,
    sentIke: 0,
    sentEsp: 0,
    keepalivesNotSent: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: { empty: 0, short: 0, markerOnly: 0, queueFull: 0, closed: 0, wrongPeer: 0 },
  };
}

/** Add `b`'s counts into `a`. @internal */
export function addStats(a: TcpTotals, b: TcpTotals): void {
  a.ike += b.ike;
  a.esp += b.esp;
  a.keepalive += b.keepalive;
  a.sentIke += b.sentIke;
  a.sentEsp += b.sentEsp;
  a.keepalivesNotSent += b.keepalivesNotSent;
  a.bytesIn += b.bytesIn;
  a.bytesOut += b.bytesOut;
  for (const k of Object.keys(a.dropped) as (keyof TcpTotals['dropped'])[]) a.dropped[k] += b.dropped[k];
}

/** What the owner of a connection (listener, initiator) hears from it. @internal */
export interface ConnectionOwner {
  onIke(payload: Buffer, rinfo: RemoteInfo, conn: NattTcpConnection): void;
  onEsp(packet: Buffer, rinfo: RemoteInfo, conn: NattTcpConnection): void;
  onDrain(conn: NattTcpConnection): void;
  onClose(conn: NattTcpConnection, reason: TcpCloseReason, err: Error | undefined): void;
}

export interface NattTcpConnectionEvents {
  ike: [payload: Buffer, rinfo: RemoteInfo];
  esp: [packet: Buffer, rinfo: RemoteInfo];
  /** The send queue, after filling past half of maxQueuedBytes (needDrain), has emptied. */
  drain: [];
  /** Only when someone listens: network errors close the connection and are counted either way. */
  error: [err: Error];
  close: [reason: TcpCloseReason];
}

const EMPTY_SLAB = Buffer.alloc(0);

/**
 * The send path's slab: frames are written into it and flushed with one write per tick. Made on the first send (an
 * idle connection holds none); reused from its start whenever the socket took everything at once (plain TCP).
 */
const SLAB_BYTES = 64 * 1024;
/** IKE may exceed the queue bound by this much (IKE over TCP is not retransmitted, RFC 9329 §6.2). */
const IKE_HEADROOM = MAX_FRAME_LENGTH + IKE_FRAME_HEADER_LENGTH;
/** After close(): how long a peer that does not read may hold the FIN back before the socket is destroyed. */
const LINGER_MS = 2000;
const ESP_MIN = 9;

/** Internal entry points the listener and the initiator use (not exported from src/tcp/index.ts). */
export const SEND = Symbol('send');
export const CHECK = Symbol('check');
export const END = Symbol('end');

/** `::ffff:a.b.c.d` (a dual-stack socket's view of an IPv4 peer) as `a.b.c.d`: SAs name the IPv4 address. */
export function plainAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && a.indexOf('.') > 0 ? a.slice(7) : a;
}

/** The class's constructor is listenNattTcp() or connectNattTcp()'s alone. */
export const connectionGate = new InternalGate('listenNattTcp() or connectNattTcp()', 'a NattTcpConnection');

/**
 * One RFC 9329 connection (a TCP or TLS socket carrying IKE and ESP). It is an EspTransport: a UserlandEngine runs
 * over it unchanged. Made by listenNattTcp (one per accepted socket, role 'responder') and connectNattTcp (role
 * 'originator', behind NattTcpClient, which replaces it on reconnection).
 *
 * Receives `'ike'` (marker removed) and `'esp'` (SPI first) with a RemoteInfo naming the peer's address and TCP port;
 * NAT-keepalives are dropped silently (§6.6). Bad input (a wrong prefix, a Length below 2 or over the limit, a FIN
 * inside a frame) closes this connection, counted by reason; it never throws.
 */
export class NattTcpConnection extends EventEmitter<NattTcpConnectionEvents> implements EspTransport {
  /** ESP travels in TCP here (RFC 9329): the engine sends only `natt.type: 'espintcp'` SAs over it. */
  readonly encap = 'espintcp' as const;
  readonly role: TcpRole;
  /** The peer's address (an IPv4-mapped address given as IPv4) and TCP port, as this end sees them. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: 'IPv4' | 'IPv6';
  readonly localAddress: string;
  readonly localPort: number;
  /** True when the stream runs inside TLS (RFC 9329 Appendix A). */
  readonly tls: boolean;
  /** Why it closed (null while open). */
  closeReason: TcpCloseReason | null = null;
  readonly #socket: net.Socket;
  readonly #decoder: FrameDecoder;
  readonly #limits: TcpConnectionLimits;
  readonly #owner: ConnectionOwner | null;
  readonly #created: number;
  #slab: Buffer = EMPTY_SLAB;
  #used = 0;
  #flushed = 0;
  #flushScheduled = false;
  /**
   * Callbacks of the sends of this tick, called in send order when the slab is handed to the socket: success with
   * the frame's octets, or the drop's error (a drop waits in the same queue, so completions never overtake).
   */
  #cbs: SendCallback[] = [];
  #cbBytes: number[] = [];
  #cbErrs: Array<NattError | null> = [];
  #dropErrors: Partial<Record<TcpSendDropReason, NattError>> = {};
  #needDrain = false;
  /** False on a TLS responder until its handshake is done: a close before that is the TLS layer's ('tlsError'). */
  #tlsUp: boolean;
  #closed = false;
  #ending = false;
  #linger: NodeJS.Timeout | null = null;
  /** performance.now() of the last whole frame received (0: none yet), and of the start of a partial frame (0: none). */
  #lastFrame = 0;
  #frameStart = 0;
  /** ms timestamp of the last frame in or out: the listener evicts the least recently active first. */
  lastActive: number;
  #stats = {
    ike: 0,
    esp: 0,
    keepalive: 0,
    sentIke: 0,
    sentEsp: 0,
    keepalivesNotSent: 0,
    bytesIn: 0,
    bytesOut: 0,
    queueFull: 0,
    closed: 0,
    wrongPeer: 0,
  };
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    this.#write();
    this.#maybeDrain();
  };

  /** @internal made by listenNattTcp / connectNattTcp */
  constructor(socket: net.Socket, role: TcpRole, limits: TcpConnectionLimits, owner: ConnectionOwner | null, tls: boolean) {
    connectionGate.check();
    super();
    this.#socket = socket;
    this.role = role;
    this.tls = tls;
    this.#limits = limits;
    this.#owner = owner;
    this.remoteAddress = plainAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.remoteFamily = this.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.localAddress = plainAddress(socket.localAddress);
    this.localPort = socket.localPort ?? 0;
    this.#created = performance.now();
    this.lastActive = Date.now();
    this.#decoder = new FrameDecoder({ expectPrefix: role === 'responder', maxFrameLength: limits.maxFrameLength });
    this.#tlsUp = !tls || role === 'originator'; // the initiator's connection is made after 'secureConnect'
    if (!this.#tlsUp) socket.once('secure', () => (this.#tlsUp = true));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: Error) => this.#onError(err));
    socket.on('close', () => this.#finish());
    socket.on('drain', () => this.#maybeDrain());
    if (role === 'originator') this.#append(streamPrefix(), null, 0);
    if (socket.destroyed) queueMicrotask(() => this.#finish());
  }

  /** True once the send queue passed half of maxQueuedBytes; `'drain'` follows when it has emptied. */
  get needDrain(): boolean {
    return this.#needDrain;
  }

  /** Octets queued for sending right now (not yet handed to the kernel). */
  get queuedBytes(): number {
    return this.#socket.writableLength + (this.#used - this.#flushed);
  }

  /** False once closed (or closing). */
  get open(): boolean {
    return !this.#closed && !this.#ending;
  }

  /** True once a whole frame arrived after the prefix: the peer speaks RFC 9329 (the listener evicts others first). */
  get proven(): boolean {
    return this.#lastFrame > 0;
  }

  #onData(chunk: Buffer): void {
    if (this.#closed || this.#ending) return;
    this.#stats.bytesIn += chunk.length;
    const frames = this.#decoder.push(chunk);
    const n = frames.length;
    const now = n > 0 || this.#decoder.buffered > 0 ? performance.now() : 0;
    for (let i = 0; i < n && !this.#closed && !this.#ending; i++) {
      const f = frames[i];
      if (f.kind !== 'keepalive') this.#lastFrame = now; // IKE and ESP prove the peer and keep it from idling out
      if (f.kind === 'esp') {
        this.#stats.esp++;
        const p = f.packet as Buffer;
        const rinfo: RemoteInfo = { address: this.remoteAddress, family: this.remoteFamily, port: this.remotePort, size: p.length };
        this.#owner?.onEsp(p, rinfo, this);
        this.emit('esp', p, rinfo);
      } else if (f.kind === 'ike') {
        this.#stats.ike++;
        const p = f.payload as Buffer;
        const rinfo: RemoteInfo = { address: this.remoteAddress, family: this.remoteFamily, port: this.remotePort, size: p.length };
        this.#owner?.onIke(p, rinfo, this);
        this.emit('ike', p, rinfo);
      } else {
        this.#stats.keepalive++; // RFC 9329 §6.6: dropped silently
      }
    }
    if (n > 0 && this.#lastFrame === now) this.lastActive = Date.now();
    const failure = this.#decoder.failure;
    if (failure !== null) {
      this.#close(failure.reason, undefined, true);
      return;
    }
    // A frame still arriving: its clock starts when its first octet came (frameTimeout).
    if (this.#decoder.buffered === 0) this.#frameStart = 0;
    else if (n > 0 || this.#frameStart === 0) this.#frameStart = now;
  }

  #onEnd(): void {
    if (this.#closed) return;
    const failure = this.#decoder.end();
    this.#close(!this.#tlsUp ? 'tlsError' : failure !== null ? failure.reason : 'peerEnd', undefined, true);
  }

  #onError(err: Error): void {
    if (this.#closed) return;
    const code = (err as { code?: string }).code ?? '';
    const tlsErr = this.tls && (!this.#tlsUp || !SOCKET_ERRORS.has(code));
    this.#close(tlsErr ? 'tlsError' : 'reset', err, true);
  }

  /** 'drain' once the queue that passed half its bound is empty (from the flush tick or the socket's 'drain'). */
  #maybeDrain(): void {
    if (!this.#needDrain || this.#closed || this.#ending || this.queuedBytes > 0) return;
    this.#needDrain = false;
    this.#owner?.onDrain(this);
    this.emit('drain');
  }

  /** Queue one frame (or the prefix when `body` is null) in the slab; one write per tick hands the slab to the socket. */
  #append(head: Buffer | null, body: Uint8Array | null, kind: 0 | 1 | 2): void {
    const h = kind === 1 ? IKE_FRAME_HEADER_LENGTH : kind === 2 ? ESP_FRAME_HEADER_LENGTH : 0;
    const len = body === null ? head!.length : h + body.length;
    if (this.#slab.length - this.#used < len) {
      this.#write();
      if (this.#slab.length - this.#used < len) {
        this.#slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, len));
        this.#used = 0;
        this.#flushed = 0;
      }
    }
    const s = this.#slab;
    let o = this.#used;
    if (body === null) {
      s.set(head!, o);
    } else {
      s[o] = len >>> 8;
      s[o + 1] = len & 0xff;
      if (kind === 1) {
        s[o + 2] = 0;
        s[o + 3] = 0;
        s[o + 4] = 0;
        s[o + 5] = 0;
      }
      o += h;
      s.set(body, o);
    }
    this.#used += len;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(this.#flush);
    }
  }

  #write(): void {
    if (this.#closed) {
      // What is queued was dropped with the connection: its callbacks hear so (#finish reports what remains).
      if (this.#cbs.length && this.#emittedClose) this.#completions();
      return;
    }
    if (this.#used !== this.#flushed) {
      const chunk = this.#slab.subarray(this.#flushed, this.#used);
      this.#flushed = this.#used;
      this.#stats.bytesOut += chunk.length;
      this.#socket.write(chunk);
      // The kernel took it all at once: nothing holds the slab any more, so it is reused from its start (no
      // allocation per packet). TLS keeps references while it encrypts, so there a full slab is replaced instead.
      if (!this.tls && this.#socket.writableLength === 0) this.#used = this.#flushed = 0;
    }
    this.#completions();
  }

  /** Call the queued callbacks, in send order. */
  #completions(): void {
    const cbs = this.#cbs;
    const n = cbs.length;
    if (n === 0) return;
    const bytes = this.#cbBytes;
    const errs = this.#cbErrs;
    for (let i = 0; i < n; i++) {
      const cb = cbs[i];
      const err = errs[i];
      cbs[i] = undefined as unknown as SendCallback;
      errs[i] = null;
      if (err === null) cb(null, bytes[i]);
      else cb(err);
    }
    cbs.length = 0;
    bytes.length = 0;
    errs.length = 0;
  }

  /** Queue an IKE (kind 1) or ESP (kind 2) frame; no peer check. Returns why it was dropped, or null. @internal */
  [SEND](kind: 1 | 2, body: Uint8Array, cb: SendCallback | undefined): TcpSendDropReason | null {
    if (this.#closed || this.#ending) return this.#drop('closed', cb);
    const h = kind === 1 ? IKE_FRAME_HEADER_LENGTH : ESP_FRAME_HEADER_LENGTH;
    const queued = this.queuedBytes;
    const max = this.#limits.maxQueuedBytes;
    if (queued + h + body.length > (kind === 1 ? max + IKE_HEADROOM : max)) {
      this.#needDrain = true;
      return this.#drop('queueFull', cb);
    }
    this.#append(null, body, kind);
    if (kind === 1) this.#stats.sentIke++;
    else this.#stats.sentEsp++;
    this.lastActive = Date.now();
    if (!this.#needDrain && queued + h + body.length >= max / 2) this.#needDrain = true;
    if (cb) {
      this.#cbs.push(cb);
      this.#cbBytes.push(h + body.length);
      this.#cbErrs.push(null);
    }
    return null;
  }

  #drop(reason: 'queueFull' | 'closed' | 'wrongPeer', cb: SendCallback | undefined): TcpSendDropReason {
    this.#stats[reason]++;
    if (cb) {
      const err = (this.#dropErrors[reason] ??= sendDropError(reason));
      if (this.#emittedClose) {
        process.nextTick(cb, err);
      } else {
        this.#cbs.push(cb);
        this.#cbBytes.push(0);
        this.#cbErrs.push(err);
        if (!this.#flushScheduled) {
          this.#flushScheduled = true;
          process.nextTick(this.#flush);
        }
      }
    }
    return reason;
  }

  /** Is `port`/`address` this connection's peer? Checks the types like NattSocket does (TypeError / RangeError). */
  #isPeer(port: unknown, address: unknown): boolean {
    if (typeof port !== 'number' || !Number.isInteger(port)) throw typeError('port', 'an integer', port);
    if (port < 1 || port > 65535) throw rangeError('port', 'from 1 to 65535', port);
    if (typeof address !== 'string') throw typeError('address', 'a string', address);
    return port === this.remotePort && (address === this.remoteAddress || sameAddress(address, this.remoteAddress));
  }

  /** Send one IKE message to this connection's peer (RFC 9329 §3.1: Length, the non-ESP marker, the message). */
  sendIke(payload: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    checkIke(payload);
    if (!this.#isPeer(port, address)) {
      this.#drop('wrongPeer', cb);
      return;
    }
    this[SEND](1, payload, cb);
  }

  /** Send one ESP packet (SPI first) to this connection's peer (RFC 9329 §3.2: Length, the packet). */
  sendEsp(packet: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    checkEsp(packet);
    if (!this.#isPeer(port, address)) {
      this.#drop('wrongPeer', cb);
      return;
    }
    this[SEND](2, packet, cb);
  }

  /** Several ESP packets (the engine's batch): one frame each, one write for the lot. */
  sendEspBatch(batch: EspBatch): void {
    for (let i = 0; i < batch.count; i++) this.sendEsp(batch.packets[i], batch.ports[i], batch.addresses[i]);
  }

  /**
   * A no-op, counted (`keepalivesNotSent`): RFC 9329 §6.6 says NAT-keepalives SHOULD NOT be sent over TCP (TCP
   * mappings outlive UDP's; liveness is IKE's job). The callback, if any, hears success: nothing needed sending.
   */
  sendKeepalive(port: number, address: string, cb?: SendCallback): void {
    checkCallback(cb);
    this.#isPeer(port, address);
    this.#stats.keepalivesNotSent++;
    if (cb) process.nextTick(cb, null, 0);
  }

  /** The local address and port of the TCP connection. */
  address(): { address: string; port: number; family: string } {
    return { address: this.localAddress, port: this.localPort, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4' };
  }

  /** A snapshot of the counters. */
  stats(): NattTcpConnectionStats {
    const s = this.#stats;
    const d = this.#decoder.stats().dropped;
    return {
      ike: s.ike,
      esp: s.esp,
      keepalive: s.keepalive,
      sentIke: s.sentIke,
      sentEsp: s.sentEsp,
      keepalivesNotSent: s.keepalivesNotSent,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      queuedBytes: this.#closed ? 0 : this.queuedBytes,
      dropped: { ...d, queueFull: s.queueFull, closed: s.closed, wrongPeer: s.wrongPeer },
    };
  }

  /**
   * The deadline check the owner runs on its sweep: returns the limit this connection broke (and closes it), or null.
   * @internal
   */
  [CHECK](now: number): TcpCloseReason | null {
    if (this.#closed) return null;
    const l = this.#limits;
    let why: TcpCloseReason | null = null;
    if (this.role === 'responder' && this.#lastFrame === 0 && l.handshakeTimeout > 0 && now - this.#created > l.handshakeTimeout) why = 'handshakeTimeout';
    else if (this.#frameStart > 0 && l.frameTimeout > 0 && now - this.#frameStart > l.frameTimeout) why = 'frameTimeout';
    else if (l.idleTimeout > 0 && now - (this.#lastFrame || this.#created) > l.idleTimeout) why = 'idleTimeout';
    if (why !== null) this.#close(why, undefined, false);
    return why;
  }

  /**
   * Close: queued frames are flushed, then FIN; a peer that does not take them within 2 s is cut off. Idempotent;
   * `'close'` follows with the reason ('local' here).
   */
  close(cb?: () => void): void {
    if (cb !== undefined && typeof cb !== 'function') throw typeError('cb', 'a function', cb);
    if (cb) {
      if (this.#closed) queueMicrotask(cb);
      else this.once('close', () => cb());
    }
    this.#close('local', undefined, false);
  }

  /** Close at once, dropping what is queued (an RST where the OS sends one). Idempotent. */
  destroy(reason: TcpCloseReason = 'local'): void {
    // The reason is counted by name later (in a close listener): a caller's value that is none throws here, not there.
    if (!TCP_CLOSE_REASONS.includes(reason)) throw typeError('reason', `one of ${TCP_CLOSE_REASONS.join(', ')}`, reason);
    if (this.#closed) return;
    this.closeReason ??= reason;
    this.#closed = true;
    this.#socket.destroy();
  }

  /** Close gracefully (FIN after the queue) with this reason: the listener's own shutdown. @internal */
  [END](reason: 'listenerClosed'): void {
    this.#close(reason, undefined, false);
  }

  /** Graceful for 'local', 'peerEnd' and 'listenerClosed'; at once for whatever broke a rule or the socket. */
  #close(reason: TcpCloseReason, err: Error | undefined, fromSocket: boolean): void {
    if (this.#closed || (this.#ending && (reason === 'local' || reason === 'listenerClosed'))) return;
    this.closeReason ??= reason;
    if (err && this.listenerCount('error') > 0) this.emit('error', err);
    this.#closeErr ??= err;
    if (reason === 'local' || reason === 'peerEnd' || reason === 'listenerClosed') {
      if (this.#ending) return;
      this.#ending = true;
      this.#write();
      this.#socket.end();
      this.#linger = setTimeout(() => this.#socket.destroy(), LINGER_MS);
      this.#linger.unref();
      return;
    }
    this.#closed = true;
    if (!fromSocket || !this.#socket.destroyed) this.#socket.destroy();
  }

  #closeErr: Error | undefined;

  #finish(): void {
    if (this.#emittedClose) return;
    this.#emittedClose = true;
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    this.#closed = true;
    this.closeReason ??= 'reset';
    // Callbacks of frames that never left: they were dropped with the connection (drops keep their own error).
    if (this.#cbs.length) {
      const err = (this.#dropErrors.closed ??= sendDropError('closed'));
      for (let i = 0; i < this.#cbErrs.length; i++) {
        if (this.#cbErrs[i] === null) {
          this.#cbErrs[i] = err;
          this.#stats.closed++;
        }
      }
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(this.#flush);
      }
    }
    this.#slab = EMPTY_SLAB;
    this.#used = this.#flushed = 0;
    this.#owner?.onClose(this, this.closeReason, this.#closeErr);
    this.emit('close', this.closeReason);
  }

  #emittedClose = false;

  ref(): this {
    this.#socket.ref();
    return this;
  }

  unref(): this {
    this.#socket.unref();
    return this;
  }
}

/** Errors of the TCP socket itself; anything else on a TLS connection is the TLS layer's ('tlsError'). */
const SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN']);

/** The error a dropped send's callback gets (shaped like Node's: a code naming the reason). */
export function sendDropError(reason: TcpSendDropReason): NattError {
  const text: Record<TcpSendDropReason, string> = {
    queueFull: 'the connection queue is full (the peer reads too slowly): dropped; wait for drain',
    closed: 'the TCP connection is closed (or not connected right now): dropped',
    wrongPeer: "that port and address are not this connection's peer: dropped",
    noConnection: 'no open TCP connection leads to that peer: dropped',
  };
  return new NattError(`ERR_NATT_TCP_${reason.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`, text[reason]);
}

/** A send's completion callback: a function or absent (checked before anything is queued). */
export function checkCallback(cb: unknown): void {
  if (cb !== undefined && typeof cb !== 'function') throw typeError('cb', 'a function', cb);
}

/** An IKE message the framing can carry (1..65529 octets). */
export function checkIke(payload: unknown): void {
  // isView: a Proxy of a Uint8Array passes instanceof but is no typed array (its reads could run a caller's traps).
  if (!ArrayBuffer.isView(payload) || !(payload instanceof Uint8Array)) throw typeError('payload', 'a Buffer or Uint8Array', payload);
  if (payload.length < 1 || payload.length > MAX_FRAME_LENGTH - IKE_FRAME_HEADER_LENGTH) {
    throw rangeError('payload', `an IKE message of 1 to ${MAX_FRAME_LENGTH - IKE_FRAME_HEADER_LENGTH} bytes`, payload);
  }
}

/** An ESP packet the framing can carry: 9..65533 octets, SPI not zero (four zeros would read as the non-ESP marker). */
export function checkEsp(packet: unknown): void {
  if (!ArrayBuffer.isView(packet) || !(packet instanceof Uint8Array)) throw typeError('packet', 'a Buffer or Uint8Array', packet);
  if (packet.length < ESP_MIN || packet.length > MAX_FRAME_LENGTH - ESP_FRAME_HEADER_LENGTH) {
    throw rangeError('packet', `an ESP packet of ${ESP_MIN} to ${MAX_FRAME_LENGTH - ESP_FRAME_HEADER_LENGTH} bytes`, packet);
  }
  if ((packet[0] | packet[1] | packet[2] | packet[3]) === 0) throw rangeError('packet', 'an ESP packet with a non-zero SPI', packet);
}

/**
 * One timer for many connections: every `period` ms each connection's deadlines are checked ([CHECK]). The period
 * is natt's own (a quarter of the shortest timeout, 50 ms to 1 s), never a caller's duration. @internal
 */
export class Sweeper {
  readonly #conns = new Set<NattTcpConnection>();
  readonly #period: number;
  #timer: LongTimer | null = null;
  #onBreak: (conn: NattTcpConnection, why: TcpCloseReason) => void;

  constructor(limits: TcpConnectionLimits, onBreak: (conn: NattTcpConnection, why: TcpCloseReason) => void = () => {}) {
    const t = [limits.handshakeTimeout, limits.idleTimeout, limits.frameTimeout].filter((x) => x > 0);
    this.#period = t.length ? Math.min(1000, Math.max(50, Math.min(...t) / 4)) : 0;
    this.#onBreak = onBreak;
  }

  add(c: NattTcpConnection): void {
    if (this.#period === 0) return;
    this.#conns.add(c);
    if (!this.#timer) this.#timer = longInterval(() => this.#sweep(), this.#period).unref();
  }

  delete(c: NattTcpConnection): void {
    this.#conns.delete(c);
    if (this.#conns.size === 0 && this.#timer) {
      this.#timer.clear();
      this.#timer = null;
    }
  }

  #sweep(): void {
    const now = performance.now();
    for (const c of [...this.#conns]) {
      const why = c[CHECK](now);
      if (why !== null) this.#onBreak(c, why);
    }
  }

  stop(): void {
    this.#timer?.clear();
    this.#timer = null;
    this.#conns.clear();
  }
}
