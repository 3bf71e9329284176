// An in-memory pair of ESP transports (wireguard-go's bindtest idea): the engine's unit tests run without sockets.
//
// a.sendEsp(esp, port, address) hands a copy of `esp` to b's 'esp' listeners with a's apparent address as the source
// (what a NAT in between would show: see natAs()), synchronously or on the next turn; everything sent is recorded.

import { EventEmitter } from 'node:events';
import type { EspBatch, EspTransport, RemoteInfo, SendCallback } from '../../src/transport';

export interface Sent {
  kind: 'esp' | 'keepalive';
  bytes: Buffer;
  port: number;
  address: string;
}

export class MemoryTransport extends EventEmitter implements EspTransport {
  peer: MemoryTransport | null = null;
  readonly sent: Sent[] = [];
  /** Where this end's datagrams appear to come from at the peer (a NAT rewrites it). */
  seenAs: { address: string; port: number };
  /** Deliver on the next turn (setImmediate) instead of synchronously. */
  async = false;
  /** Drop everything this end sends (a broken path). */
  dropAll = false;
  /** Make the next sends fail with this error (reported to the callback, else as 'error'). */
  failWith: Error | null = null;

  constructor(readonly local: { address: string; port: number }) {
    super();
    this.seenAs = { ...local };
  }

  /** A NAT in between now shows this end as `address:port`. */
  natAs(address: string, port: number): void {
    this.seenAs = { address, port };
  }

  #deliver(kind: Sent['kind'], bytes: Buffer, port: number, address: string, cb?: SendCallback): void {
    this.sent.push({ kind, bytes, port, address });
    if (this.failWith) {
      const err = this.failWith;
      if (cb) queueMicrotask(() => cb(err));
      else queueMicrotask(() => this.emit('error', err));
      return;
    }
    if (cb) queueMicrotask(() => cb(null, bytes.length));
    const peer = this.peer;
    if (!peer || this.dropAll || peer.local.port !== port) return;
    const rinfo: RemoteInfo = { address: this.seenAs.address, port: this.seenAs.port, family: this.seenAs.address.includes(':') ? 'IPv6' : 'IPv4', size: bytes.length };
    const go = (): void => void peer.emit(kind === 'esp' ? 'esp' : 'keepalive', bytes, rinfo);
    if (this.async) setImmediate(go);
    else go();
  }

  sendEsp(esp: Uint8Array, port: number, address: string, cb?: SendCallback): void {
    this.#deliver('esp', Buffer.from(esp), port, address, cb);
  }

  sendEspBatch(batch: EspBatch): void {
    for (let i = 0; i < batch.count; i++) this.sendEsp(batch.packets[i], batch.ports[i], batch.addresses[i]);
  }

  sendKeepalive(port: number, address: string, cb?: SendCallback): void {
    this.#deliver('keepalive', Buffer.from([0xff]), port, address, cb);
  }

  /** Inject a datagram as if `from` had sent it (an attacker, a replay). */
  inject(esp: Uint8Array, from: { address: string; port: number }): void {
    this.emit('esp', Buffer.from(esp), { address: from.address, port: from.port, family: from.address.includes(':') ? 'IPv6' : 'IPv4', size: esp.length });
  }

  address(): { address: string; port: number; family: string } {
    return { ...this.local, family: this.local.address.includes(':') ? 'IPv6' : 'IPv4' };
  }
}

/** Two connected transports at the given local addresses. */
export function memoryPair(a: { address: string; port: number }, b: { address: string; port: number }): [MemoryTransport, MemoryTransport] {
  const ta = new MemoryTransport(a);
  const tb = new MemoryTransport(b);
  ta.peer = tb;
  tb.peer = ta;
  return [ta, tb];
}
