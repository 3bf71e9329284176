// NattSocket: one UDP port carrying IKE, keepalives and ESP (RFC 3948), kernel UDP_ENCAP or userland demux.

import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { NattError, NattUnsupportedError, rangeError, typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { boolOption, callbackOption, durationSeconds, intOption, oneOf, readOptions, stringOption } from '../core/options';
import { longInterval, type LongTimer } from '../core/timers';
import { withAdvice } from '../native/advice';
import { getEncap, getSockName, loadNative, openEncapSocket } from '../native/binding';
import { applyBypass, type BypassState } from '../native/bypass';
import type { NativeAddon } from '../native/types';
import { autoSocketBackend, kernelEspSupport } from '../probe';
import { classify, classifyAt, type DropReason, type NattEncapType, type NattSocketEncap } from './demux';
import { NativeIo, RECV_GRO_SEGMENTS, RECV_SLOTS } from './native-io';
import { ESP_RUN_HEADROOM, type EspBatch, type EspBatchHandler, type EspSources, type EspTransport, type RemoteInfo, type SendCallback } from '../transport';

export type NattBackend = 'auto' | 'kernel' | 'userland';
export type { BypassState } from '../native/bypass';

export interface NattSocketOptions {
  /** 4 (default) or 6. */
  family?: 4 | 6;
  /** Local address to bind; default the unspecified address ('0.0.0.0' or '::'). */
  address?: string;
  /** Local port; default 4500 ('espinudp'), 500 ('espinudp-non-ike', 'none'); 0 picks a free one. */
  port?: number;
  /**
   * Encapsulation; default 'espinudp' (RFC 3948). `'none'`: a plain IKE socket (port 500): no marker, never ESP,
   * every datagram is 'ike' (backend 'auto' or 'userland' only: there is nothing for the kernel to decapsulate).
   */
  encap?: NattSocketEncap;
  /**
   * 'kernel': set UDP_ENCAP (fails if the kernel refuses); 'userland': demultiplex in TypeScript;
   * 'auto' (default): the kernel only where it can also do ESP, else userland.
   */
  backend?: NattBackend;
  /**
   * Userland backend, IPv4: send UDP with checksum 0, as RFC 3948 §2.1 asks of ESP-in-UDP (SO_NO_CHECK, Linux).
   * One socket carries IKE and keepalives too, so they go out with checksum 0 as well (IKE has its own integrity).
   * Default: on wherever the addon and the kernel allow it, else off (`zeroChecksum` on the socket tells which);
   * `true` insists (rejects with ERR_NATT_UNSUPPORTED where it cannot be done); `false` keeps the kernel's checksum.
   * The kernel backend ignores it: there the kernel's ESP output already sends checksum 0. `encap: 'none'`: off
   * unless `true`.
   */
  zeroChecksum?: boolean;
  /**
   * Exempt the socket from the kernel's IPsec policies in both directions, as IKE daemons do (default true):
   * Linux IP_XFRM_POLICY / IPV6_XFRM_POLICY allow policies, BSD IP_IPSEC_POLICY / IPV6_IPSEC_POLICY "bypass".
   * Without it, a policy that covers this host and a peer takes IKE and keepalives too (an ACQUIRE, nothing sent).
   * It needs CAP_NET_ADMIN (root on the BSDs) and the addon; where it cannot be set the socket still opens, and
   * `bypass` on the socket says why.
   */
  bypass?: boolean;
  /**
   * SO_SNDBUF / SO_RCVBUF in bytes (the kernel doubles it). With the native addon, default LARGE_SOCKET_BUFFER: set
   * with SO_SNDBUFFORCE / SO_RCVBUFFORCE where the process may (CAP_NET_ADMIN, Linux), else with SO_SNDBUF /
   * SO_RCVBUF, which the kernel caps at net.core.wmem_max / rmem_max; `socket.buffers` says what the kernel holds.
   * On node:dgram: the kernel's default unless given.
   */
  sendBufferSize?: number;
  receiveBufferSize?: number;
  /**
   * UDP GSO on send (Linux ≥ 4.18, the native addon, userland backend): a run of equal-length ESP datagrams to one
   * peer (sendEspRun, the tunnel's path) goes to the kernel as ONE message that the stack (or the NIC) cuts into the
   * datagrams. GSO needs UDP checksums (the kernel refuses it with SO_NO_CHECK), so `gso: true` makes `zeroChecksum`
   * default to false (the device computes the checksum; RFC 3948 §2.1 receivers accept any valid one) and
   * `gso: true, zeroChecksum: true` is a RangeError. Default false. Turned off by itself if the kernel answers EIO
   * (a device that cannot checksum); `offload` on the socket says what is on and why not.
   */
  gso?: boolean;
  /**
   * UDP GRO on receive (Linux ≥ 5.0, the native addon, userland backend): the kernel may hand over several
   * datagrams of one flow in one receive, which natt splits again (nothing changes for listeners). Default true.
   */
  gro?: boolean;
}

/** Segmentation offloads of a NAT-T socket: what is on, and why not where it is off. */
export interface NattSocketOffload {
  gso: boolean;
  gro: boolean;
  /** Why GSO is off ('' when on). */
  gsoReason: string;
  /** Why GRO is off ('' when on). */
  groReason: string;
}

/** What the offloads did: GSO messages sent and the datagrams they carried; GRO receives and the datagrams in them. */
export interface NattSocketOffloadStats {
  gsoSends: number;
  gsoSegments: number;
  /** GSO messages the kernel refused (sent again one datagram at a time). */
  gsoRetries: number;
  groReceives: number;
  groSegments: number;
  /** Datagrams of a GRO receive past the 64 natt splits (the kernel coalesces no more): not delivered. */
  groOverflow: number;
}

/** Options of one send: the local address to send from (IP_PKTINFO / IPV6_PKTINFO), and a completion callback. */
export interface NattSendOptions {
  /** Send from this local address (one of this host's, of the socket's family); needs the native addon. */
  localAddress?: string;
  callback?: SendCallback;
}

/** sendIke's options-object form: the peer, and the send options. */
export interface NattSendToOptions extends NattSendOptions {
  port: number;
  address: string;
}

/** @deprecated the old name of RemoteInfo (src/transport), the one remote-info type. */
export type NattRemoteInfo = RemoteInfo;

export interface NattSocketStats {
  /** Datagrams received, by kind. */
  ike: number;
  keepalive: number;
  esp: number;
  /** Datagrams sent, by kind: counted when the OS took them. */
  sentIke: number;
  sentKeepalive: number;
  sentEsp: number;
  /** Sends the OS refused (ENETUNREACH, EMSGSIZE, ...), or that found the send queue full, of any kind. */
  sendErrors: number;
  /** Sends that met a full socket buffer (EAGAIN) and waited for it to drain (then counted as sent or failed). */
  sendDeferred: number;
  /** Receive errors reported while no 'error' listener was there. */
  receiveErrors: number;
  /** keepalive(): peers now kept alive, keepalives skipped because other traffic went there, refusals past the bound. */
  keepalivePeers: number;
  keepalivesSkipped: number;
  keepaliveRefused: number;
  /** Datagrams dropped, by reason. */
  dropped: Record<DropReason, number>;
  /** What UDP GSO and GRO did (all 0 where they are off). */
  offload: NattSocketOffloadStats;
}

export interface NattSocketEvents {
  ike: [payload: Buffer, rinfo: RemoteInfo];
  keepalive: [rinfo: RemoteInfo];
  esp: [packet: Buffer, rinfo: RemoteInfo];
  error: [err: Error];
  close: [];
}

/** The socket buffers a NAT-T socket got (`socket.buffers`). */
export interface SocketBuffers {
  /** SO_RCVBUF / SO_SNDBUF as the kernel reports them (Linux: twice what was set), 0 where unknown. */
  receive: number;
  send: number;
  /** True when set past the sysctl limits with SO_RCVBUFFORCE / SO_SNDBUFFORCE (privileged). */
  forced: boolean;
  /** How they were set, in words. */
  reason: string;
}

/** The default socket buffer of the native path (each direction), asked for with the FORCE options first. */
export const LARGE_SOCKET_BUFFER = 4 * 1024 * 1024;

/** Peers one socket keeps alive at most (keepalive()); beyond, keepalive() refuses and counts. */
export const MAX_KEEPALIVE_PEERS = 1024;

const NON_ESP_MARKER = Buffer.alloc(4); // RFC 3948 §2.2: in front of IKE on port 4500
const NON_IKE_MARKER = Buffer.alloc(8); // draft-ietf-ipsec-nat-t-ike-00: in front of ESP
const KEEPALIVE = Buffer.from([0xff]); // RFC 3948 §2.3

type SentKind = 'sentIke' | 'sentKeepalive' | 'sentEsp';
type Completion = (err: Error | null, bytes: number) => void;

interface KeepalivePeer {
  port: number;
  address: string;
  ms: number;
  lastSent: number;
  timer: LongTimer;
}

/** @internal how createNattSocket hands a socket over: a bound fd for the addon's UdpSocket, or a bound dgram socket. */
export interface NattSocketInit {
  fd: number;
  dgram: dgram.Socket | null;
  family: 4 | 6;
  encap: NattSocketEncap;
  backendReason: string;
  kernelEncap: boolean;
  zeroChecksum: boolean;
  bypass: BypassState;
  buffers?: SocketBuffers;
  gso?: boolean;
  gro?: boolean;
}

/**
 * A NAT-T UDP socket. Receives `'ike'` (marker removed), `'keepalive'`, `'esp'` (userland backend only: the ESP
 * packet from the SPI on), `'error'`, `'close'`. Made by createNattSocket().
 */
export class NattSocket extends EventEmitter<NattSocketEvents> implements EspTransport {
  /** True when the kernel holds UDP_ENCAP on this socket (it takes ESP and keepalives itself). */
  readonly kernelEncap: boolean;
  readonly encap: NattSocketEncap;
  readonly family: 4 | 6;
  /** Why this backend was chosen. */
  readonly backendReason: string;
  /** True when IPv4 datagrams leave this socket with UDP checksum 0 (userland, SO_NO_CHECK; see the option). */
  readonly zeroChecksum: boolean;
  /** Whether the socket is exempt from the kernel's IPsec policies (the `bypass` option), and why (not). */
  readonly bypass: BypassState;
  /**
   * True when received datagrams carry `rinfo.localAddress` / `localPort` (the native addon); false on the node:dgram
   * fallback, which cannot learn a datagram's local address (and cannot send from a chosen one).
   */
  readonly localAddressKnown: boolean;
  readonly #io: NativeIo | null;
  readonly #dgram: dgram.Socket | null;
  readonly #fd: number;
  readonly #buffers: SocketBuffers;
  readonly #bound: { address: string; family: string; port: number };
  #closed = false;
  #closeEmitted = false;
  #espBatch: EspBatchHandler | null = null;
  // One entry per datagram of a wake: with UDP GRO a slot may hold up to RECV_GRO_SEGMENTS of them.
  readonly #rxOff = new Uint32Array(RECV_SLOTS * RECV_GRO_SEGMENTS);
  readonly #rxLen = new Uint32Array(RECV_SLOTS * RECV_GRO_SEGMENTS);
  readonly #rxSlot = new Uint32Array(RECV_SLOTS * RECV_GRO_SEGMENTS);
  #rxCount = 0;
  readonly #sources: EspSources = {
    port: (i) => this.#io!.sourcePort(this.#rxSlot[i]),
    address: (i) => this.#io!.sourceAddress(this.#rxSlot[i]),
    remoteInfo: (i) => this.#io!.remoteInfo(this.#rxSlot[i], this.#rxLen[i]),
  };
  #lastPeer: string | null = null; // the last peer address that passed #checkPeer
  #lastLocal: string | null = null; // the last local address that passed #checkLocal
  readonly #keepalives = new Map<string, Map<number, KeepalivePeer>>();
  #keepaliveCount = 0;
  #stats: Omit<NattSocketStats, 'offload'> = {
    ike: 0,
    keepalive: 0,
    esp: 0,
    sentIke: 0,
    sentKeepalive: 0,
    sentEsp: 0,
    sendErrors: 0,
    sendDeferred: 0,
    receiveErrors: 0,
    keepalivePeers: 0,
    keepalivesSkipped: 0,
    keepaliveRefused: 0,
    dropped: { empty: 0, short: 0, markerOnly: 0, espInKernelMode: 0, truncated: 0 },
  };

  /** @internal use createNattSocket() */
  constructor(init: NattSocketInit) {
    socketGate.check();
    super();
    this.family = init.family;
    this.encap = init.encap;
    this.kernelEncap = init.kernelEncap;
    this.backendReason = init.backendReason;
    this.zeroChecksum = init.zeroChecksum;
    this.bypass = Object.freeze({ ...init.bypass });
    this.#fd = init.fd;
    this.#buffers = init.buffers ?? { receive: 0, send: 0, forced: false, reason: 'unknown' };
    if (init.dgram) {
      const sock = init.dgram;
      this.#dgram = sock;
      this.#io = null;
      this.localAddressKnown = false;
      this.#bound = sock.address();
      sock.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo as RemoteInfo));
      sock.on('error', (err) => this.#receiveError(err));
      sock.on('close', () => {
        this.#closed = true;
        this.#emitClose();
      });
    } else {
      const name = getSockName(init.fd);
      this.#bound = { address: name.address, family: name.family === 4 ? 'IPv4' : 'IPv6', port: name.port };
      this.#dgram = null;
      this.#io = new NativeIo(init.fd, init.family, name.port, {
        datagram: (slab, off, len, slot, truncated) => this.#onDatagram(slab, off, len, slot, truncated),
        error: (err) => this.#receiveError(err),
        end: () => this.#endOfWake(),
      });
      this.localAddressKnown = this.#io.localAddressKnown;
      if (!init.kernelEncap && init.encap !== 'none') this.#io.setOffload(init.gso === true, init.gro !== false, init.zeroChecksum);
    }
  }

  /** 'kernel' or 'userland': who demultiplexes. */
  get backend(): 'kernel' | 'userland' {
    return this.kernelEncap ? 'kernel' : 'userland';
  }

  #receiveError(err: Error): void {
    // Never an unhandled 'error' from the receive path: counted when nobody listens.
    if (this.listenerCount('error') > 0) this.emit('error', withAdvice(err, 'udp') as Error);
    else this.#stats.receiveErrors++;
  }

  /** The native path: one datagram in the receive slab (copied out only for an event someone listens to). */
  #onDatagram(slab: Buffer, off: number, len: number, slot: number, truncated: boolean): void {
    if (truncated) {
      this.#stats.dropped.truncated++;
      return;
    }
    const c = classifyAt(slab, off, len, this.encap);
    switch (c.kind) {
      case 'ike':
        this.#stats.ike++;
        if (this.listenerCount('ike') > 0) this.emit('ike', copy(slab, off + c.offset, off + len), this.#io!.remoteInfo(slot, len));
        return;
      case 'keepalive':
        this.#stats.keepalive++;
        if (this.listenerCount('keepalive') > 0) this.emit('keepalive', this.#io!.remoteInfo(slot, len));
        return;
      case 'esp':
        if (this.kernelEncap) {
          this.#stats.dropped.espInKernelMode++; // the kernel owns ESP on this socket
          return;
        }
        this.#stats.esp++;
        // Other 'esp' listeners get their copy first: the batch handler decrypts in the slab.
        if (this.listenerCount('esp') > 0) this.emit('esp', copy(slab, off + c.offset, off + len), this.#io!.remoteInfo(slot, len));
        if (this.#espBatch !== null) {
          const k = this.#rxCount++;
          this.#rxOff[k] = off + c.offset;
          this.#rxLen[k] = len - c.offset;
          this.#rxSlot[k] = slot;
        }
        return;
      case 'drop':
        this.#stats.dropped[c.reason]++;
        return;
    }
  }

  /** The end of a receive wake: the ESP batch (if a batch handler takes it) goes to the handler, in the slab. */
  #endOfWake(): void {
    const n = this.#rxCount;
    if (n === 0) return;
    this.#rxCount = 0;
    const h = this.#espBatch;
    if (h === null) return;
    try {
      h(this.#io!.slab, this.#rxOff, this.#rxLen, n, this.#sources);
    } catch {
      this.#stats.receiveErrors++; // a handler never throws into the receive path (natt's engine counts its own drops)
    }
  }

  /**
   * Userland backend on the native addon: hand received ESP to `handler` once per receive wake, in the receive slab
   * (no copy, no object per datagram); 'esp' listeners, if any, still get their copies (before the handler). One
   * handler at a time; `null` removes it. Returns false where there is no native batched receive (node:dgram, the
   * kernel backend) or another handler holds it: use 'esp' events then.
   */
  onEspBatch(handler: EspBatchHandler | null): boolean {
    if (handler !== null && typeof handler !== 'function') throw typeError('handler', 'a function or null', handler);
    if (handler !== null && (!this.#io || this.kernelEncap || this.encap === 'none')) return false;
    if (handler !== null && this.#espBatch !== null && this.#espBatch !== handler) return false; // one batch consumer; others use 'esp'
    this.#espBatch = handler;
    return true;
  }

  /** The node:dgram fallback: one datagram, its own buffer. */
  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const c = classify(msg, this.encap);
    switch (c.kind) {
      case 'ike':
        this.#stats.ike++;
        this.emit('ike', c.offset === 0 ? msg : msg.subarray(c.offset), rinfo);
        return;
      case 'keepalive':
        this.#stats.keepalive++;
        this.emit('keepalive', rinfo);
        return;
      case 'esp':
        if (this.kernelEncap) {
          this.#stats.dropped.espInKernelMode++;
          return;
        }
        this.#stats.esp++;
        this.emit('esp', c.offset === 0 ? msg : msg.subarray(c.offset), rinfo);
        return;
      case 'drop':
        this.#stats.dropped[c.reason]++;
        return;
    }
  }

  #checkPeer(port: unknown, address: unknown): void {
    if (typeof port !== 'number' || !Number.isInteger(port)) throw typeError('port', 'an integer', port);
    if (port < 1 || port > 65535) throw rangeError('port', 'from 1 to 65535', port);
    if (address === this.#lastPeer) return; // checked already: peers repeat, and isIP is not free per packet (never '': see below)
    if (typeof address !== 'string') throw typeError('address', 'a string', address);
    if (isIP(address) !== this.family) throw rangeError('address', `an IPv${this.family} address`, address);
    this.#lastPeer = address;
  }

  #checkLocal(local: unknown): string | undefined {
    if (local === undefined) return undefined;
    if (local === this.#lastLocal) return local as string;
    if (typeof local !== 'string') throw typeError('localAddress', 'a string', local);
    if (isIP(local) !== this.family) throw rangeError('localAddress', `an IPv${this.family} address of this host`, local);
    if (!this.#io) {
      throw new NattUnsupportedError(
        'localAddress: sending from a chosen local address needs the native addon (IP_PKTINFO); node:dgram cannot ' +
          '(localAddressKnown is false): bind the socket to that address instead',
      );
    }
    this.#lastLocal = local;
    return local;
  }

  /** Read the last argument of a send: a callback, or NattSendOptions. */
  #sendOptions(v: unknown): { local: string | undefined; cb: SendCallback | undefined } {
    if (v === undefined || typeof v === 'function') return { local: undefined, cb: v as SendCallback | undefined };
    if (v === null || typeof v !== 'object') return { local: undefined, cb: callbackOption<SendCallback>(v, 'callback') };
    const o = readOptions(v, ['localAddress', 'callback'] as const);
    return { local: this.#checkLocal(o.localAddress), cb: callbackOption<SendCallback>(o.callback, 'callback') };
  }

  #send(a: Uint8Array, b: Uint8Array | null, port: number, address: string, local: string | undefined, kind: SentKind, cb: SendCallback | undefined): void {
    if (this.#closed) {
      const err = new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket is closed');
      if (cb) queueMicrotask(() => cb(err));
      else throw err;
      return;
    }
    if (this.#keepaliveCount > 0) this.#noteSent(address, port);
    // A datagram counts as sent when the OS took it (the completion), never before: a failed send is counted as
    // sendErrors and reported to `cb`, or, without one, as 'error' where someone listens (never an unhandled one).
    // Callbacks always run later (never inside the send call).
    const done = cb ? this.#completionWith(kind, cb) : this.#done[kind];
    if (this.#io) {
      this.#io.send(a, b, port, address, local, done);
      return;
    }
    const parts = b ? [a, b] : a;
    this.#dgram!.send(parts as Buffer[], port, address, (err, bytes) => done(err, bytes ?? 0));
  }

  /** What a completed send does: count it, and report a failure where someone listens. Never throws. */
  #count(kind: SentKind, err: Error | null): Error | null {
    if (!err) {
      this.#stats[kind]++;
      return null;
    }
    this.#stats.sendErrors++;
    return withAdvice(err, 'udp') as Error;
  }

  /** One completion per kind, shared (no closure per datagram when the caller gives no callback). */
  #completion(kind: SentKind): Completion {
    return (err) => {
      const e = this.#count(kind, err);
      if (e && this.listenerCount('error') > 0) process.nextTick(() => this.emit('error', e));
    };
  }

  #completionWith(kind: SentKind, cb: SendCallback): Completion {
    return (err, bytes) => {
      const e = this.#count(kind, err);
      if (e && this.listenerCount('error') > 0) process.nextTick(() => this.emit('error', e));
      process.nextTick(cb, e, bytes);
    };
  }

  readonly #done: Record<SentKind, Completion> = {
    sentIke: this.#completion('sentIke'),
    sentKeepalive: this.#completion('sentKeepalive'),
    sentEsp: this.#completion('sentEsp'),
  };

  /**
   * Send one IKE message: with 'espinudp' the 4-byte non-ESP marker is put in front. The last argument is a callback
   * or `{ localAddress, callback }`; or give everything as one object: `sendIke(payload, { port, address, ... })`.
   */
  sendIke(payload: Uint8Array, port: number, address: string, cbOrOptions?: SendCallback | NattSendOptions): void;
  sendIke(payload: Uint8Array, options: NattSendToOptions): void;
  sendIke(payload: Uint8Array, portOrOptions: number | NattSendToOptions, address?: string, cbOrOptions?: SendCallback | NattSendOptions): void {
    if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Buffer or Uint8Array', payload);
    let port: unknown = portOrOptions;
    let addr: unknown = address;
    let so: { local: string | undefined; cb: SendCallback | undefined };
    if (portOrOptions !== null && typeof portOrOptions === 'object') {
      const o = readOptions(portOrOptions, ['port', 'address', 'localAddress', 'callback'] as const);
      port = o.port;
      addr = o.address;
      this.#checkPeer(port, addr);
      so = { local: this.#checkLocal(o.localAddress), cb: callbackOption<SendCallback>(o.callback, 'callback') };
    } else {
      this.#checkPeer(port, addr);
      so = this.#sendOptions(cbOrOptions);
    }
    if (this.encap === 'espinudp') this.#send(NON_ESP_MARKER, payload, port as number, addr as string, so.local, 'sentIke', so.cb);
    else this.#send(payload, null, port as number, addr as string, so.local, 'sentIke', so.cb);
  }

  /** Send the one-byte 0xFF NAT-keepalive. The last argument is a callback or `{ localAddress, callback }`. */
  sendKeepalive(port: number, address: string, cbOrOptions?: SendCallback | NattSendOptions): void {
    if (this.encap === 'none') throw new NattUnsupportedError("sendKeepalive(): NAT-keepalives go on the NAT-T port (4500), not on a plain IKE socket (encap 'none')");
    this.#checkPeer(port, address);
    const so = this.#sendOptions(cbOrOptions);
    this.#send(KEEPALIVE, null, port, address, so.local, 'sentKeepalive', so.cb);
  }

  /**
   * Userland backend: send one ESP packet (SPI first). With 'espinudp-non-ike' the 8-byte non-IKE marker is put in
   * front. With the kernel backend the kernel does ESP itself, so this throws ERR_NATT_UNSUPPORTED.
   */
  sendEsp(espPacket: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    this.#espAllowed();
    if (!(espPacket instanceof Uint8Array)) throw typeError('espPacket', 'a Buffer or Uint8Array', espPacket);
    if (espPacket.length <= 8) throw rangeError('espPacket', 'longer than the 8-byte ESP header', espPacket);
    this.#checkPeer(port, address);
    const done = callbackOption<SendCallback>(cb, 'callback');
    if (this.encap === 'espinudp') this.#send(espPacket, null, port, address, undefined, 'sentEsp', done);
    else this.#send(NON_IKE_MARKER, espPacket, port, address, undefined, 'sentEsp', done);
  }

  #espAllowed(): void {
    if (this.kernelEncap) throw new NattUnsupportedError('sendEsp() is for the userland backend: here the kernel does ESP');
    if (this.encap === 'none') throw new NattUnsupportedError("sendEsp(): a plain IKE socket (encap 'none') never carries ESP");
  }

  /**
   * Userland backend: send several ESP packets (the engine's batch; one datagram each). On the native addon they go
   * out with sendmmsg (Linux) in as few system calls as fit; failures are counted (sendErrors).
   */
  sendEspBatch(batch: EspBatch): void {
    this.#espAllowed();
    if (!this.#io || this.#closed || this.#keepaliveCount > 0) {
      for (let i = 0; i < batch.count; i++) this.sendEsp(batch.packets[i], batch.ports[i], batch.addresses[i]);
      return;
    }
    for (let i = 0; i < batch.count; i++) {
      const p = batch.packets[i];
      if (!(p instanceof Uint8Array)) throw typeError(`packets[${i}]`, 'a Buffer or Uint8Array', p);
      if (p.length <= 8) throw rangeError(`packets[${i}]`, 'longer than the 8-byte ESP header', p);
      this.#checkPeer(batch.ports[i], batch.addresses[i]);
    }
    this.#io.sendMany(batch, this.encap === 'espinudp' ? null : NON_IKE_MARKER, this.#done.sentEsp);
  }

  /**
   * Userland backend, the batched fast path: send `count` ESP packets lying in `slab` (packet i at `offsets[i]`,
   * `lengths[i]` bytes, ESP_RUN_HEADROOM bytes in front of each for the non-IKE marker) to one peer with sendmmsg
   * straight from the slab. Returns how many were taken (sent, or queued for a full buffer); failures are counted
   * (sendErrors) and reported as 'error' where someone listens. Without the native addon: one send each (copied).
   */
  sendEspRun(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, port: number, address: string): number {
    this.#espAllowed();
    this.#checkRun(slab, offsets, lengths, count);
    this.#checkPeer(port, address);
    if (!this.#io || this.#closed) {
      let taken = 0;
      for (let i = 0; i < count; i++) {
        try {
          this.sendEsp(Buffer.from(slab.subarray(offsets[i], offsets[i] + lengths[i])), port, address);
          taken++;
        } catch {
          this.#stats.sendErrors++;
        }
      }
      return taken;
    }
    if (this.#keepaliveCount > 0) this.#noteSent(address, port);
    const errors = this.#stats.sendErrors;
    const ok = this.#io.sendRun(slab, offsets, lengths, count, this.encap === 'espinudp' ? null : NON_IKE_MARKER, port, address, this.#done.sentEsp);
    this.#stats.sentEsp += ok;
    return count - (this.#stats.sendErrors - errors);
  }

  /** sendEspRun's slab and run: every packet inside the slab, ESP_RUN_HEADROOM bytes free in front of it (the marker's). */
  #checkRun(slab: unknown, offsets: unknown, lengths: unknown, count: unknown): void {
    if (!(slab instanceof Uint8Array)) throw typeError('slab', 'a Buffer or Uint8Array', slab);
    if (!(offsets instanceof Uint32Array)) throw typeError('offsets', 'a Uint32Array', offsets);
    if (!(lengths instanceof Uint32Array)) throw typeError('lengths', 'a Uint32Array', lengths);
    intOption(count, 'count', 0, Math.min(offsets.length, lengths.length));
    for (let i = 0; i < (count as number); i++) {
      const off = offsets[i];
      const len = lengths[i];
      if (off < ESP_RUN_HEADROOM || off > slab.length) throw rangeError(`offsets[${i}]`, `an offset from ${ESP_RUN_HEADROOM} (the headroom) into the slab`, off);
      if (len <= 8 || len > slab.length - off) throw rangeError(`lengths[${i}]`, 'longer than the 8-byte ESP header and inside the slab', len);
    }
  }

  /** The segmentation offloads (UDP GSO / GRO) on this socket, and why one is off. */
  get offload(): NattSocketOffload {
    if (!this.#io) {
      const why = this.#dgram ? 'node:dgram (the native addon is not loaded)' : 'closed';
      return { gso: false, gro: false, gsoReason: this.kernelEncap ? 'the kernel backend' : why, groReason: this.kernelEncap ? 'the kernel backend' : why };
    }
    if (this.kernelEncap || this.encap === 'none') {
      const why = this.kernelEncap ? 'the kernel backend (the kernel takes ESP)' : "encap 'none' (no ESP)";
      return { gso: false, gro: false, gsoReason: why, groReason: why };
    }
    return this.#io.offload();
  }

  /** The socket buffers as the kernel holds them (SO_RCVBUF / SO_SNDBUF read back), and how they were set. */
  get buffers(): SocketBuffers {
    return { ...this.#buffers };
  }

  // ---- keepalives (RFC 3948 §2.3), the same on both backends ----

  /**
   * Keep the NAT mapping towards `address`:`port` alive: send a NAT-keepalive every `seconds` (default 20) in which
   * nothing else (IKE, ESP, a keepalive) went to that peer from this socket. The timer is unref'd (it never keeps the
   * process alive) and any length works (long timers). Calling it again for the same peer changes the interval.
   * Returns false, and counts `keepaliveRefused`, when MAX_KEEPALIVE_PEERS peers are already kept alive.
   *
   * On the kernel backend the kernel sends no keepalives of its own before Linux 6.10; from 6.10 it does for an SA
   * that carries `natt.keepaliveInterval` (XFRMA_NAT_KEEPALIVE_INTERVAL). Use one or the other (both do no harm).
   */
  keepalive(port: number, address: string, seconds?: number): boolean {
    if (this.encap === 'none') throw new NattUnsupportedError("keepalive(): NAT-keepalives go on the NAT-T port (4500), not on a plain IKE socket (encap 'none')");
    this.#checkPeer(port, address);
    const s = durationSeconds(seconds, 'seconds', 0.001, 20);
    if (this.#closed) throw new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket is closed');
    let byPort = this.#keepalives.get(address);
    const old = byPort?.get(port);
    if (!old && this.#keepaliveCount >= MAX_KEEPALIVE_PEERS) {
      this.#stats.keepaliveRefused++;
      return false;
    }
    old?.timer.clear();
    const peer: KeepalivePeer = { port, address, ms: s * 1000, lastSent: old?.lastSent ?? 0, timer: undefined as unknown as LongTimer };
    peer.timer = longInterval(() => this.#keepaliveTick(peer), peer.ms).unref();
    if (!byPort) this.#keepalives.set(address, (byPort = new Map()));
    if (!old) this.#keepaliveCount++;
    byPort.set(port, peer);
    this.#stats.keepalivePeers = this.#keepaliveCount;
    return true;
  }

  /** Stop keepalives towards `address`:`port`; returns whether there were any. */
  stopKeepalive(port: number, address: string): boolean {
    this.#checkPeer(port, address);
    const byPort = this.#keepalives.get(address);
    const peer = byPort?.get(port);
    if (!peer) return false;
    peer.timer.clear();
    byPort!.delete(port);
    if (byPort!.size === 0) this.#keepalives.delete(address);
    this.#keepaliveCount--;
    this.#stats.keepalivePeers = this.#keepaliveCount;
    return true;
  }

  #noteSent(address: string, port: number): void {
    const peer = this.#keepalives.get(address)?.get(port);
    if (peer) peer.lastSent = Date.now();
  }

  #keepaliveTick(peer: KeepalivePeer): void {
    if (this.#closed) return;
    if (Date.now() - peer.lastSent < peer.ms) {
      this.#stats.keepalivesSkipped++; // IKE (or ESP) went there within the interval
      return;
    }
    try {
      this.#send(KEEPALIVE, null, peer.port, peer.address, undefined, 'sentKeepalive', undefined);
    } catch (err) {
      // A timer never throws: counted, and reported where someone listens.
      this.#stats.sendErrors++;
      if (this.listenerCount('error') > 0) this.emit('error', err as Error);
    }
  }

  #clearKeepalives(): void {
    for (const byPort of this.#keepalives.values()) for (const p of byPort.values()) p.timer.clear();
    this.#keepalives.clear();
    this.#keepaliveCount = 0;
    this.#stats.keepalivePeers = 0;
  }

  /** The bound address and port. */
  address(): { address: string; family: string; port: number } {
    if (this.#dgram) return this.#dgram.address();
    if (this.#closed) throw new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket is closed');
    return { ...this.#bound };
  }

  /** getsockopt(UDP_ENCAP) on the socket: the encapsulation type the kernel holds (0 on the userland backend). */
  kernelEncapType(): number {
    if (!this.kernelEncap) return 0;
    if (this.#closed) throw new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket is closed');
    return getEncap(this.#io ? this.#io.fd : this.#fd);
  }

  /** A snapshot of the counters. */
  stats(): NattSocketStats {
    return { ...this.#stats, sendDeferred: this.#io?.deferred ?? 0, dropped: { ...this.#stats.dropped }, offload: this.#io?.offloadStats() ?? noOffloadStats() };
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.emit('close');
  }

  /** Close the socket; idempotent. `'close'` follows. */
  close(cb?: () => void): void {
    if (cb !== undefined && typeof cb !== 'function') throw typeError('cb', 'a function', cb);
    if (this.#closed) {
      if (cb) queueMicrotask(cb);
      return;
    }
    this.#closed = true;
    this.#clearKeepalives();
    if (this.#dgram) {
      this.#dgram.close(cb);
      return;
    }
    if (cb) this.once('close', cb);
    this.#io!.close();
    process.nextTick(() => this.#emitClose());
  }

  ref(): this {
    if (this.#dgram) this.#dgram.ref();
    else if (!this.#closed) this.#io!.ref();
    return this;
  }

  unref(): this {
    if (this.#dgram) this.#dgram.unref();
    else if (!this.#closed) this.#io!.unref();
    return this;
  }
}

/** `end - start` bytes of the receive slab in a Buffer of their own (the slab is reused on the next wake). */
function copy(slab: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  slab.copy(out, 0, start, end);
  return out;
}

interface Resolved {
  family: 4 | 6;
  address: string;
  port: number;
  encap: NattSocketEncap;
  backend: NattBackend;
  zeroChecksum: boolean | undefined;
  bypass: boolean;
  sendBufferSize: number | undefined;
  receiveBufferSize: number | undefined;
  gso: boolean;
  gro: boolean;
}

function noOffloadStats(): NattSocketOffloadStats {
  return { gsoSends: 0, gsoSegments: 0, gsoRetries: 0, groReceives: 0, groSegments: 0, groOverflow: 0 };
}

function validate(opts: NattSocketOptions): Resolved {
  const o = readOptions(opts, [
    'family',
    'address',
    'port',
    'encap',
    'backend',
    'zeroChecksum',
    'bypass',
    'sendBufferSize',
    'receiveBufferSize',
    'gso',
    'gro',
  ] as const);
  const family = oneOf(o.family, 'family', [4, 6] as const, 4);
  const encap = oneOf(o.encap, 'encap', ['espinudp', 'espinudp-non-ike', 'none'] as const, 'espinudp');
  const backend = oneOf(o.backend, 'backend', ['auto', 'kernel', 'userland'] as const, 'auto');
  if (encap === 'none' && backend === 'kernel') throw rangeError('backend', "'auto' or 'userland' with encap 'none' (a plain IKE socket has no UDP_ENCAP)", backend);
  const address = stringOption(o.address, 'address', undefined, family === 4 ? '0.0.0.0' : '::');
  if (isIP(address) !== family) throw rangeError('address', `an IPv${family} address`, address);
  const port = intOption(o.port, 'port', 0, 65535, encap === 'espinudp' ? 4500 : 500);
  const zeroChecksum = boolOption(o.zeroChecksum, 'zeroChecksum', undefined);
  const bypass = boolOption(o.bypass, 'bypass', true);
  const sendBufferSize = intOption(o.sendBufferSize, 'sendBufferSize', 1, 0x7fffffff, undefined);
  const receiveBufferSize = intOption(o.receiveBufferSize, 'receiveBufferSize', 1, 0x7fffffff, undefined);
  const gso = boolOption(o.gso, 'gso', false);
  const gro = boolOption(o.gro, 'gro', true);
  if (gso && zeroChecksum === true) throw rangeError('gso', 'false with zeroChecksum: true (the kernel does not segment UDP sent without checksums)', gso);
  // GSO needs checksums: asking for it makes zeroChecksum's default false.
  return { family, address, port, encap, backend, zeroChecksum: gso ? false : zeroChecksum, bypass, sendBufferSize, receiveBufferSize, gso, gro };
}

/** Which backend to use, and why: what was asked for, or the 'auto' rule (src/probe/auto.ts). */
function chooseBackend(o: Resolved): { kernel: boolean; reason: string } {
  if (o.encap === 'none') return { kernel: false, reason: "encap 'none': a plain IKE socket (no UDP_ENCAP, no ESP)" };
  if (o.backend === 'userland') return { kernel: false, reason: "backend 'userland' was asked for" };
  if (o.backend === 'kernel') return { kernel: true, reason: "backend 'kernel' was asked for" };
  const c = autoSocketBackend({ nativeLoaded: loadNative() !== null, kernelEsp: kernelEspSupport() }, o.family);
  return { kernel: c.backend === 'kernel', reason: c.reason };
}

function adopt(sock: dgram.Socket, bindOpts: dgram.BindOptions, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      sock.close();
      reject(withAdvice(err, 'udp', { port }));
    };
    sock.once('error', onError);
    sock.bind(bindOpts, () => {
      sock.off('error', onError);
      resolve();
    });
  });
}

/**
 * SO_SNDBUF / SO_RCVBUF on an addon fd: the size asked for, or LARGE_SOCKET_BUFFER; with the FORCE options first
 * (privileged: past the sysctl limits), else the plain ones (capped by the kernel at rmem_max / wmem_max). An explicit
 * size the kernel refuses is an error; the default never is. Returns what the kernel holds.
 */
function setBuffers(addon: NativeAddon, fd: number, o: Resolved): SocketBuffers {
  const c = addon.constants;
  let forced = 0;
  let plain = 0;
  for (const [force, name, asked] of [
    [c.SO_SNDBUFFORCE, c.SO_SNDBUF, o.sendBufferSize],
    [c.SO_RCVBUFFORCE, c.SO_RCVBUF, o.receiveBufferSize],
  ] as const) {
    const v = new Uint8Array(Int32Array.of(asked ?? LARGE_SOCKET_BUFFER).buffer);
    if (force !== undefined && force >= 0) {
      try {
        addon.setSockOptBytes(fd, c.SOL_SOCKET, force, v);
        forced++;
        continue;
      } catch {
        // EPERM without CAP_NET_ADMIN: the plain option, up to the limit
      }
    }
    try {
      addon.setSockOptBytes(fd, c.SOL_SOCKET, name, v);
      plain++;
    } catch (e) {
      if (asked !== undefined) throw withAdvice(e, 'udp');
    }
  }
  const read = (name: number): number => {
    try {
      return addon.getSockOptInt ? addon.getSockOptInt(fd, c.SOL_SOCKET, name) : 0;
    } catch {
      return 0;
    }
  };
  const what = o.sendBufferSize === undefined && o.receiveBufferSize === undefined ? `${LARGE_SOCKET_BUFFER} bytes (the default)` : 'the size asked for';
  return {
    receive: read(c.SO_RCVBUF),
    send: read(c.SO_SNDBUF),
    forced: forced === 2,
    reason:
      forced === 2
        ? `${what}, forced past the sysctl limits (SO_RCVBUFFORCE / SO_SNDBUFFORCE)`
        : `${what}, capped by net.core.rmem_max / wmem_max (${forced ? 'one' : 'no'} FORCE option allowed: needs CAP_NET_ADMIN)`,
  };
}

/**
 * What a NAT-T socket of this host gets (for `natt probe`): a UDP socket on 127.0.0.1 is opened with the addon, its
 * buffers set as createNattSocket sets them, read back, closed. Null without the addon (node:dgram: the kernel's).
 */
export function probeSocketBuffers(): SocketBuffers | null {
  const addon = loadNative();
  if (!addon) return null;
  let fd: number;
  try {
    fd = openEncapSocket(4, '127.0.0.1', 0, 0, false);
  } catch {
    return null;
  }
  try {
    return setBuffers(addon, fd, { sendBufferSize: undefined, receiveBufferSize: undefined } as Resolved);
  } catch {
    return null;
  } finally {
    addon.closeFd(fd);
  }
}

/** Whether this kernel does UDP GSO (UDP_SEGMENT) and GRO (UDP_GRO) on a NAT-T socket, and why not: a scratch socket. */
export function probeUdpOffload(): { gso: boolean; gro: boolean; reason: string } {
  const addon = loadNative();
  if (!addon) return { gso: false, gro: false, reason: 'the native addon is not loaded' };
  if (process.platform !== 'linux') return { gso: false, gro: false, reason: 'UDP GSO/GRO are Linux only' };
  let fd: number;
  try {
    fd = openEncapSocket(4, '127.0.0.1', 0, 0, false);
  } catch (e) {
    return { gso: false, gro: false, reason: `no scratch socket: ${(e as Error).message}` };
  }
  const why: string[] = [];
  const test = (what: string, f: () => void): boolean => {
    try {
      f();
      return true;
    } catch (e) {
      why.push(`${what}: ${(e as { code?: string }).code ?? (e as Error).message}`);
      return false;
    }
  };
  try {
    const SOL_UDP = 17;
    const gso = test('UDP_SEGMENT (Linux 4.18)', () => addon.getSockOptInt!(fd, SOL_UDP, 103));
    const gro = test('UDP_GRO (Linux 5.0)', () => addon.setSockOptBytes(fd, SOL_UDP, 104, new Uint8Array(Int32Array.of(1).buffer)));
    return { gso, gro, reason: why.join('; ') };
  } finally {
    addon.closeFd(fd);
  }
}

/** NattSocket's constructor is createNattSocket's alone. */
const socketGate = new InternalGate('createNattSocket()', 'a NattSocket');

/**
 * Open a NAT-T socket. Options are checked at once (a bad one throws a TypeError/RangeError naming it, synchronously);
 * the socket is bound before the promise resolves (a port in use rejects with EADDRINUSE). With the native addon the
 * socket is the addon's (batched receive, local addresses, the IPsec bypass); without it, node:dgram.
 */
export function createNattSocket(opts: NattSocketOptions = {}): Promise<NattSocket> {
  const o = validate(opts);
  const encapType = o.encap === 'espinudp' ? 2 : 1;
  let choice = chooseBackend(o);
  const addon = loadNative();
  let fd: number | undefined;
  let zeroChecksum = false;
  if (choice.kernel) {
    try {
      fd = openEncapSocket(o.family, o.address, o.port, encapType);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // 'auto' falls back when the kernel refuses this encapsulation; a port in use is an error for both.
      if (o.backend === 'kernel' || (code !== 'ENOPROTOOPT' && code !== 'EINVAL')) return Promise.reject(e);
      choice = { kernel: false, reason: `the kernel refused UDP_ENCAP ${encapType} (${code})` };
    }
  }
  if (!choice.kernel) {
    // RFC 3948 §2.1: the addon opens the userland IPv4 socket with SO_NO_CHECK; node:dgram cannot set it.
    const wantNoCheck = o.family === 4 && (o.zeroChecksum === true || (o.zeroChecksum === undefined && o.encap !== 'none'));
    const why = !addon ? 'the native addon is not loaded' : process.platform !== 'linux' ? 'SO_NO_CHECK is Linux only' : '';
    if (wantNoCheck && why && o.zeroChecksum) return Promise.reject(new NattUnsupportedError(`zeroChecksum: ${why}`));
    if (addon) {
      const noCheck = wantNoCheck && !why;
      try {
        fd = openEncapSocket(o.family, o.address, o.port, 0, noCheck);
        zeroChecksum = noCheck;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (!noCheck || o.zeroChecksum || code !== 'ENOPROTOOPT') return Promise.reject(e);
        try {
          fd = openEncapSocket(o.family, o.address, o.port, 0, false);
        } catch (e2) {
          return Promise.reject(e2);
        }
      }
    }
  }
  if (fd !== undefined && addon) {
    let buffers: SocketBuffers;
    try {
      buffers = setBuffers(addon, fd, o);
    } catch (e) {
      addon.closeFd(fd);
      return Promise.reject(e);
    }
    const bypass: BypassState = o.bypass ? applyBypass(addon, fd, o.family) : { active: false, reason: 'bypass: false was asked for' };
    try {
      return Promise.resolve(
        socketGate.make(() => new NattSocket({ fd, dgram: null, family: o.family, encap: o.encap, backendReason: choice.reason, kernelEncap: choice.kernel, zeroChecksum, bypass, buffers, gso: o.gso, gro: o.gro })),
      );
    } catch (e) {
      try {
        addon.closeFd(fd);
      } catch {
        // already closed
      }
      return Promise.reject(e);
    }
  }
  // No addon: node:dgram (no local addresses, no bypass, kernel checksums).
  const sock = dgram.createSocket({
    type: o.family === 4 ? 'udp4' : 'udp6',
    ipv6Only: o.family === 6,
    sendBufferSize: o.sendBufferSize,
    recvBufferSize: o.receiveBufferSize,
  });
  const bypass: BypassState = {
    active: false,
    reason: o.bypass ? 'the native addon is not loaded: node:dgram cannot set a per-socket IPsec policy' : 'bypass: false was asked for',
  };
  return adopt(sock, { address: o.address, port: o.port, exclusive: true }, o.port).then(
    () => {
      let receive = 0;
      let send = 0;
      try {
        receive = sock.getRecvBufferSize();
        send = sock.getSendBufferSize();
      } catch {
        // unknown
      }
      const reason = o.sendBufferSize === undefined && o.receiveBufferSize === undefined ? "node:dgram: the kernel's default" : 'node:dgram: the size asked for';
      const buffers: SocketBuffers = { receive, send, forced: false, reason };
      return socketGate.make(() => new NattSocket({ fd: -1, dgram: sock, family: o.family, encap: o.encap, backendReason: choice.reason, kernelEncap: false, zeroChecksum: false, bypass, buffers }));
    },
  );
}

export type { NattEncapType, NattSocketEncap };
