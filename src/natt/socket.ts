// NattSocket: one UDP port carrying IKE, keepalives and ESP (RFC 3948), kernel UDP_ENCAP or userland demux.

import * as dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { NattError, NattUnsupportedError, rangeError, typeError } from '../errors';
import { boolOption, callbackOption, intOption, oneOf, readOptions, stringOption } from '../core/options';
import { withAdvice } from '../native/advice';
import { getEncap, loadNative, openEncapSocket } from '../native/binding';
import { autoSocketBackend, kernelEspSupport } from '../probe';
import { classify, type DropReason, type NattEncapType } from './demux';
import type { EspBatch, EspTransport, RemoteInfo, SendCallback } from '../transport';

export type NattBackend = 'auto' | 'kernel' | 'userland';

export interface NattSocketOptions {
  /** 4 (default) or 6. */
  family?: 4 | 6;
  /** Local address to bind; default the unspecified address ('0.0.0.0' or '::'). */
  address?: string;
  /** Local port; default 4500 ('espinudp') or 500 ('espinudp-non-ike'); 0 picks a free one. */
  port?: number;
  /** Encapsulation; default 'espinudp' (RFC 3948). */
  encap?: NattEncapType;
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
   * The kernel backend ignores it: there the kernel's ESP output already sends checksum 0.
   */
  zeroChecksum?: boolean;
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
  /** Sends the OS refused (ENETUNREACH, EMSGSIZE, ...), of any kind. */
  sendErrors: number;
  /** Datagrams dropped, by reason. */
  dropped: Record<DropReason, number>;
}

export interface NattSocketEvents {
  ike: [payload: Buffer, rinfo: RemoteInfo];
  keepalive: [rinfo: RemoteInfo];
  esp: [packet: Buffer, rinfo: RemoteInfo];
  error: [err: Error];
  close: [];
}


const NON_ESP_MARKER = Buffer.alloc(4); // RFC 3948 §2.2: in front of IKE on port 4500
const NON_IKE_MARKER = Buffer.alloc(8); // draft-ietf-ipsec-nat-t-ike-00: in front of ESP
const KEEPALIVE = Buffer.from([0xff]); // RFC 3948 §2.3

/**
 * A NAT-T UDP socket. Receives `'ike'` (marker removed), `'keepalive'`, `'esp'` (userland backend only: the ESP
 * packet from the SPI on), `'error'`, `'close'`. Made by createNattSocket().
 */
export class NattSocket extends EventEmitter<NattSocketEvents> implements EspTransport {
  /** True when the kernel holds UDP_ENCAP on this socket (it takes ESP and keepalives itself). */
  readonly kernelEncap: boolean;
  readonly encap: NattEncapType;
  readonly family: 4 | 6;
  /** Why this backend was chosen. */
  readonly backendReason: string;
  /** True when IPv4 datagrams leave this socket with UDP checksum 0 (userland, SO_NO_CHECK; see the option). */
  readonly zeroChecksum: boolean;
  #sock: dgram.Socket;
  #fd: number; // the fd the addon opened (-1 when node:dgram opened it)
  #closed = false;
  #lastPeer: string | null = null; // the last peer address that passed #checkPeer
  #stats: NattSocketStats = {
    ike: 0,
    keepalive: 0,
    esp: 0,
    sentIke: 0,
    sentKeepalive: 0,
    sentEsp: 0,
    sendErrors: 0,
    dropped: { empty: 0, short: 0, markerOnly: 0, espInKernelMode: 0 },
  };

  /** @internal use createNattSocket() */
  constructor(sock: dgram.Socket, fd: number, family: 4 | 6, encap: NattEncapType, backendReason: string, kernelEncap: boolean, zeroChecksum: boolean) {
    super();
    this.#sock = sock;
    this.#fd = fd;
    this.family = family;
    this.encap = encap;
    this.kernelEncap = kernelEncap;
    this.backendReason = backendReason;
    this.zeroChecksum = zeroChecksum;
    sock.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo as RemoteInfo));
    sock.on('error', (err) => this.emit('error', withAdvice(err, 'udp') as Error));
    sock.on('close', () => {
      this.#closed = true;
      this.emit('close');
    });
  }

  /** 'kernel' or 'userland': who demultiplexes. */
  get backend(): 'kernel' | 'userland' {
    return this.kernelEncap ? 'kernel' : 'userland';
  }

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
          // The kernel owns ESP on this socket; one that got through is not ours to decrypt.
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

  #send(parts: Buffer | Uint8Array | (Buffer | Uint8Array)[], port: number, address: string, done: SendCallback, cb: SendCallback | undefined): void {
    if (this.#closed) {
      const err = new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket is closed');
      if (cb) queueMicrotask(() => cb(err));
      else throw err;
      return;
    }
    // A datagram counts as sent when the OS took it (the completion), never before: a failed send is counted as
    // sendErrors and reported to `cb`, or, without one, as 'error' where someone listens (never an unhandled one).
    if (cb) {
      this.#sock.send(parts as Buffer[], port, address, (err, bytes) => {
        done(err, bytes);
        cb(err ? (withAdvice(err, 'udp') as Error) : null, bytes);
      });
    } else this.#sock.send(parts as Buffer[], port, address, done);
  }

  /** One completion per kind, shared (no closure per datagram when the caller gives no callback). */
  #completion(kind: 'sentIke' | 'sentKeepalive' | 'sentEsp'): SendCallback {
    return (err) => {
      if (!err) {
        this.#stats[kind]++;
        return;
      }
      this.#stats.sendErrors++;
      if (this.listenerCount('error') > 0) this.emit('error', withAdvice(err, 'udp') as Error);
    };
  }

  readonly #doneIke = this.#completion('sentIke');
  readonly #doneKeepalive = this.#completion('sentKeepalive');
  readonly #doneEsp = this.#completion('sentEsp');

  /** Send one IKE message: with 'espinudp' the 4-byte non-ESP marker is put in front. */
  sendIke(payload: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Buffer or Uint8Array', payload);
    this.#checkPeer(port, address);
    const done = callbackOption<SendCallback>(cb, 'callback');
    this.#send(this.encap === 'espinudp' ? [NON_ESP_MARKER, payload] : payload, port, address, this.#doneIke, done);
  }

  /** Send the one-byte 0xFF NAT-keepalive. */
  sendKeepalive(port: number, address: string, cb?: SendCallback): void {
    this.#checkPeer(port, address);
    const done = callbackOption<SendCallback>(cb, 'callback');
    this.#send(KEEPALIVE, port, address, this.#doneKeepalive, done);
  }

  /**
   * Userland backend: send one ESP packet (SPI first). With 'espinudp-non-ike' the 8-byte non-IKE marker is put in
   * front. With the kernel backend the kernel does ESP itself, so this throws ERR_NATT_UNSUPPORTED.
   */
  sendEsp(espPacket: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    if (this.kernelEncap) throw new NattUnsupportedError('sendEsp() is for the userland backend: here the kernel does ESP');
    if (!(espPacket instanceof Uint8Array)) throw typeError('espPacket', 'a Buffer or Uint8Array', espPacket);
    if (espPacket.length <= 8) throw rangeError('espPacket', 'longer than the 8-byte ESP header', espPacket);
    this.#checkPeer(port, address);
    const done = callbackOption<SendCallback>(cb, 'callback');
    this.#send(this.encap === 'espinudp' ? espPacket : [NON_IKE_MARKER, espPacket], port, address, this.#doneEsp, done);
  }

  /** Userland backend: send several ESP packets (the engine's batch; one datagram each). */
  sendEspBatch(batch: EspBatch): void {
    for (let i = 0; i < batch.count; i++) this.sendEsp(batch.packets[i], batch.ports[i], batch.addresses[i]);
  }

  /** The bound address and port. */
  address(): { address: string; family: string; port: number } {
    return this.#sock.address();
  }

  /** getsockopt(UDP_ENCAP) on the socket: the encapsulation type the kernel holds (0 on the userland backend). */
  kernelEncapType(): number {
    if (!this.kernelEncap) return 0;
    if (this.#closed) throw new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket is closed');
    return getEncap(this.#fd);
  }

  /** A snapshot of the counters. */
  stats(): NattSocketStats {
    return { ...this.#stats, dropped: { ...this.#stats.dropped } };
  }

  /** Close the socket; idempotent. `'close'` follows. */
  close(cb?: () => void): void {
    if (this.#closed) {
      if (cb) queueMicrotask(cb);
      return;
    }
    this.#closed = true;
    this.#sock.close(cb);
  }

  ref(): this {
    this.#sock.ref();
    return this;
  }

  unref(): this {
    this.#sock.unref();
    return this;
  }
}

interface Resolved {
  family: 4 | 6;
  address: string;
  port: number;
  encap: NattEncapType;
  backend: NattBackend;
  zeroChecksum: boolean | undefined;
}

function validate(opts: NattSocketOptions): Resolved {
  const o = readOptions(opts, ['family', 'address', 'port', 'encap', 'backend', 'zeroChecksum'] as const);
  const family = oneOf(o.family, 'family', [4, 6] as const, 4);
  const encap = oneOf(o.encap, 'encap', ['espinudp', 'espinudp-non-ike'] as const, 'espinudp');
  const backend = oneOf(o.backend, 'backend', ['auto', 'kernel', 'userland'] as const, 'auto');
  const address = stringOption(o.address, 'address', undefined, family === 4 ? '0.0.0.0' : '::');
  if (isIP(address) !== family) throw rangeError('address', `an IPv${family} address`, address);
  const port = intOption(o.port, 'port', 0, 65535, encap === 'espinudp' ? 4500 : 500);
  const zeroChecksum = boolOption(o.zeroChecksum, 'zeroChecksum', undefined);
  return { family, address, port, encap, backend, zeroChecksum };
}

/** Which backend to use, and why: what was asked for, or the 'auto' rule (src/probe/auto.ts). */
function chooseBackend(o: Resolved): { kernel: boolean; reason: string } {
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
 * Open a NAT-T socket. Options are checked at once (a bad one throws a TypeError/RangeError naming it, synchronously);
 * the socket is bound before the promise resolves (a port in use rejects with EADDRINUSE).
 */
export function createNattSocket(opts: NattSocketOptions = {}): Promise<NattSocket> {
  const o = validate(opts);
  const type = o.family === 4 ? 'udp4' : 'udp6';
  const encapType = o.encap === 'espinudp' ? 2 : 1;
  let choice = chooseBackend(o);
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
  if (!choice.kernel && o.family === 4 && o.zeroChecksum !== false) {
    // RFC 3948 §2.1: the addon opens a plain UDP socket with SO_NO_CHECK; node:dgram cannot set it.
    const why = !loadNative() ? 'the native addon is not loaded' : process.platform !== 'linux' ? 'SO_NO_CHECK is Linux only' : '';
    if (why && o.zeroChecksum) return Promise.reject(new NattUnsupportedError(`zeroChecksum: ${why}`));
    if (!why) {
      try {
        fd = openEncapSocket(4, o.address, o.port, 0, true);
        zeroChecksum = true;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (o.zeroChecksum || code !== 'ENOPROTOOPT') return Promise.reject(e);
      }
    }
  }
  const sock = dgram.createSocket({ type, ipv6Only: o.family === 6 });
  const bindOpts: dgram.BindOptions = fd !== undefined ? { fd } : { address: o.address, port: o.port, exclusive: true };
  return adopt(sock, bindOpts, o.port).then(
    () => new NattSocket(sock, fd ?? -1, o.family, o.encap, choice.reason, choice.kernel, zeroChecksum),
    (e) => {
      if (fd !== undefined) {
        try {
          loadNative()?.closeFd(fd);
        } catch {
          // dgram may already own (and have closed) the fd
        }
      }
      throw e;
    },
  );
}
