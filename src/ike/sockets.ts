// createIkeSockets(): an IKE daemon's two ports as one event stream: the plain IKE socket (500) and the NAT-T one (4500).

import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { rangeError, typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { boolOption, callbackOption, intOption, oneOf, readOptions, stringOption } from '../core/options';
import { createNattSocket, type NattBackend, type NattSocket } from '../natt/socket';
import type { RemoteInfo, SendCallback } from '../transport';

/** Which of the two sockets: `'plain'` (port 500, bare IKE) or `'natt'` (port 4500, IKE behind the non-ESP marker). */
export type IkeVia = 'plain' | 'natt';

export interface IkeSocketsOptions {
  /** 4 (default) or 6. */
  family?: 4 | 6;
  /** Local address of both sockets; default the unspecified address (local addresses are then told per datagram). */
  address?: string;
  /** The plain IKE port (default 500) and the NAT-T port (default 4500); 0 picks free ones (tests). */
  port?: number;
  nattPort?: number;
  /** The NAT-T socket's backend (createNattSocket's `backend`; default 'auto'). */
  backend?: NattBackend;
  /** Both sockets exempt from the kernel's IPsec policies (default true). */
  bypass?: boolean;
  /** The NAT-T socket's `zeroChecksum`. */
  zeroChecksum?: boolean;
}

/** sendIke's options: which socket (required), the peer, and optionally the local address and a callback. */
export interface IkeSendOptions {
  via: IkeVia;
  port: number;
  address: string;
  localAddress?: string;
  callback?: SendCallback;
}

export interface IkeSocketsEvents {
  /** An IKE message (marker removed) and the socket it came in on: reply `via` the same one. */
  ike: [payload: Buffer, rinfo: RemoteInfo, via: IkeVia];
  /** A NAT-keepalive on the NAT-T socket (userland backend; the kernel backend's kernel eats them on Linux). */
  keepalive: [rinfo: RemoteInfo];
  error: [err: Error, via: IkeVia];
  close: [];
}

/** The class's constructor is createIkeSockets()'s alone. */
const ikeGate = new InternalGate('createIkeSockets()', 'an IkeSockets');

/**
 * The plain and the NAT-T IKE sockets of one address. IKE from either arrives as one `'ike'` event saying which;
 * `sendIke({ via, ... })` or `reply()` sends on the one asked for. ESP is not forwarded: give `natt` to the userland
 * engine (`new UserlandEngine({ socket: ike.natt })`), or let the kernel have it (kernel backend). When to move an
 * exchange to `'natt'`: decideFloat() on natd.detect() (src/ike/float.ts).
 */
export class IkeSockets extends EventEmitter<IkeSocketsEvents> {
  /** Port 500: bare IKE, no marker, never ESP (`encap: 'none'`). */
  readonly plain: NattSocket;
  /** Port 4500: IKE behind the non-ESP marker, keepalives, ESP (RFC 3948). */
  readonly natt: NattSocket;
  #closed = false;
  #open = 2;
  #errors = 0;

  /** @internal use createIkeSockets() */
  constructor(plain: NattSocket, natt: NattSocket) {
    ikeGate.check();
    super();
    this.plain = plain;
    this.natt = natt;
    for (const [sock, via] of [
      [plain, 'plain'],
      [natt, 'natt'],
    ] as const) {
      sock.on('ike', (p, r) => this.emit('ike', p, r, via));
      sock.on('error', (e) => {
        // Never an unhandled 'error': counted when nobody listens.
        if (this.listenerCount('error') > 0) this.emit('error', e, via);
        else this.#errors++;
      });
      sock.once('close', () => {
        if (--this.#open === 0) this.emit('close');
      });
    }
    natt.on('keepalive', (r) => this.emit('keepalive', r));
  }

  /** The socket named `via`. */
  socket(via: IkeVia): NattSocket {
    if (via === 'plain') return this.plain;
    if (via === 'natt') return this.natt;
    throw rangeError('via', "'plain' or 'natt'", via);
  }

  /** Send one IKE message on the socket `via` names (the NAT-T socket adds the non-ESP marker). */
  sendIke(payload: Uint8Array, options: IkeSendOptions): void {
    if (options === undefined) throw typeError('options', 'an object { via, port, address }', options);
    const o = readOptions(options, ['via', 'port', 'address', 'localAddress', 'callback'] as const);
    const sock = this.socket(oneOf(o.via, 'via', ['plain', 'natt'] as const));
    const callback = callbackOption<SendCallback>(o.callback, 'callback');
    sock.sendIke(payload, { port: o.port as number, address: o.address as string, localAddress: o.localAddress as string | undefined, callback });
  }

  /**
   * Answer a received message: on the socket it came in on, to where it came from, from the local address it came
   * to (when known): what RFC 7296 §2.11 asks of a responder, and what a multi-homed host needs.
   */
  reply(payload: Uint8Array, rinfo: RemoteInfo, via: IkeVia, callback?: SendCallback): void {
    if (rinfo === null || typeof rinfo !== 'object') throw typeError('rinfo', "an 'ike' event's rinfo", rinfo);
    const sock = this.socket(via);
    const localAddress = sock.localAddressKnown ? rinfo.localAddress : undefined;
    sock.sendIke(payload, { port: rinfo.port, address: rinfo.address, localAddress, callback: callbackOption<SendCallback>(callback, 'callback') });
  }

  /** Errors of either socket that arrived while nobody listened to 'error'. */
  get unheardErrors(): number {
    return this.#errors;
  }

  /** Close both; idempotent; `'close'` once both are closed. */
  close(cb?: () => void): void {
    if (cb !== undefined && typeof cb !== 'function') throw typeError('cb', 'a function', cb);
    if (this.#closed) {
      if (cb) queueMicrotask(cb);
      return;
    }
    this.#closed = true;
    if (cb) this.once('close', cb);
    this.plain.close();
    this.natt.close();
  }

  ref(): this {
    this.plain.ref();
    this.natt.ref();
    return this;
  }

  unref(): this {
    this.plain.unref();
    this.natt.unref();
    return this;
  }
}

/**
 * Open the plain IKE socket (port 500, `encap: 'none'`) and the NAT-T socket (port 4500, `'espinudp'`) on one
 * address. Options are checked at once (TypeError / RangeError naming the option, synchronously); the promise
 * resolves once both are bound, and if either fails the other is closed.
 */
export function createIkeSockets(options: IkeSocketsOptions = {}): Promise<IkeSockets> {
  const o = readOptions(options, ['family', 'address', 'port', 'nattPort', 'backend', 'bypass', 'zeroChecksum'] as const);
  const family = oneOf(o.family, 'family', [4, 6] as const, 4);
  const address = stringOption(o.address, 'address', undefined, family === 4 ? '0.0.0.0' : '::');
  if (isIP(address) !== family) throw rangeError('address', `an IPv${family} address`, address);
  const port = intOption(o.port, 'port', 0, 65535, 500);
  const nattPort = intOption(o.nattPort, 'nattPort', 0, 65535, 4500);
  if (port !== 0 && port === nattPort) throw rangeError('nattPort', `a port other than the plain IKE port (${port})`, nattPort);
  const backend = oneOf(o.backend, 'backend', ['auto', 'kernel', 'userland'] as const, 'auto');
  const bypass = boolOption(o.bypass, 'bypass', true);
  const zeroChecksum = boolOption(o.zeroChecksum, 'zeroChecksum', undefined);
  const plainP = createNattSocket({ family, address, port, encap: 'none', bypass });
  const nattP = createNattSocket({ family, address, port: nattPort, encap: 'espinudp', backend, bypass, zeroChecksum });
  return Promise.allSettled([plainP, nattP]).then(([p, n]) => {
    if (p.status === 'fulfilled' && n.status === 'fulfilled') return ikeGate.make(() => new IkeSockets(p.value, n.value));
    if (p.status === 'fulfilled') p.value.close();
    if (n.status === 'fulfilled') n.value.close();
    throw p.status === 'rejected' ? p.reason : (n as PromiseRejectedResult).reason;
  });
}
