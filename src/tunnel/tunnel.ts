// createTunnel: the host's own traffic through the userland engine: TUN → policy → ESP → NAT-T socket, and back.
//
// Packets the kernel routes into the TUN device are read in batches and handed to the engine, which applies the
// outbound policy, picks the SA and sends ESP-in-UDP to its peer; authenticated inbound ESP comes back from the engine
// as inner IP packets and is written into the TUN for the kernel to deliver. Tunnel mode only: a TUN carries whole IP
// packets, so the SA's inner addresses are the host's and its peer's networks (transport mode would protect the
// TUN's own point-to-point traffic, which is not a meaningful setup; such SAs still work, the engine rebuilds their
// packets, but createTunnel is built and documented for tunnel mode). Inner packets too big for the path get an ICMP
// "packet too big" written back into the TUN, as Linux xfrm does, so TCP's path MTU discovery works.

import { EventEmitter } from 'node:events';
import { typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { readOptions, intOption, durationSeconds } from '../core/options';
import { IpView, readIpHeader } from '../ip/packet';
import { packetTooBig } from '../ip/icmp';
import type { NewMappingEvent } from '../sadb/types';
import type { EspTransport } from '../transport';
import { BATCH_BYPASS, BATCH_DROPPED, BATCH_SENT, BATCH_TOO_BIG, UserlandEngine, type EngineTraffic } from '../userland/engine';
import { UserlandSadb } from '../userland/sadb';
import type { UserlandCounters } from '../userland/counters';
import { Tun, type TunStats } from '../tun';

export interface CreateTunnelOptions {
  /** The TUN device (createTun()); the tunnel reads from it and writes into it. */
  tun: Tun;
  /** The NAT-T socket (userland backend) or any EspTransport. */
  socket: EspTransport;
  /** The userland SA database the engine uses (default: a new one, `tunnel.sadb`). */
  sadb?: UserlandSadb;
  /** MTU of the outer path (default 1500): sets the inner MTU each SA can carry. */
  outerMtu?: number;
  /** Seconds between NAT-T keepalives (default 20; 0 = off). */
  keepaliveSeconds?: number;
}

/** The tunnel's own counters (the engine and the TUN keep theirs). */
export interface TunnelCounters {
  /** Packets read from the TUN and handed to the engine. */
  fromTun: number;
  /** Packets the engine decrypted and the tunnel wrote into the TUN. */
  toTun: number;
  /** Read from the TUN but no policy covers them (nothing protects them: dropped). */
  noPolicy: number;
  /** Read from the TUN but not an IP packet. */
  notIp: number;
  /** ICMP "packet too big" errors written back into the TUN. */
  icmpTooBig: number;
  /** Too big, but no ICMP error may be sent about it (an ICMP error itself, a fragment, a multicast source). */
  tooBigSilent: number;
}

export interface TunnelStats {
  tunnel: TunnelCounters;
  engine: UserlandCounters;
  traffic: EngineTraffic;
  tun: TunStats;
}

export interface TunnelEvents {
  newMapping: [NewMappingEvent];
  error: [Error];
}

/** The class's constructor is createTunnel()'s alone. */
const tunnelGate = new InternalGate('createTunnel()', 'a Tunnel');

/** A running tunnel (createTunnel()). close() stops the plumbing; the TUN, socket and database stay the caller's. */
export class Tunnel extends EventEmitter<TunnelEvents> {
  readonly tun: Tun;
  readonly socket: EspTransport;
  readonly sadb: UserlandSadb;
  readonly engine: UserlandEngine;
  readonly outerMtu: number;
  readonly #c: TunnelCounters = { fromTun: 0, toTun: 0, noPolicy: 0, notIp: 0, icmpTooBig: 0, tooBigSilent: 0 };
  readonly #v = new IpView();
  #closed = false;

  /** @internal use createTunnel() */
  constructor(tun: Tun, socket: EspTransport, sadb: UserlandSadb, outerMtu: number, keepaliveSeconds: number) {
    tunnelGate.check();
    super();
    this.tun = tun;
    this.socket = socket;
    this.sadb = sadb;
    this.outerMtu = outerMtu;
    this.engine = new UserlandEngine({ socket, sadb, keepaliveSeconds, outerMtu });
    // Transport-mode packets, and every packet where the socket has no batched receive.
    this.engine.on('packet', (p) => {
      this.#c.toTun++;
      tun.write(p); // bounded inside the Tun: a full device queue drops and counts
    });
    this.engine.on('newMapping', (e) => this.emit('newMapping', e));
    this.engine.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    // The batched path both ways: TUN reads sealed in place and sent with one call per SA; received ESP opened in
    // the socket's slab and written into the TUN with one call (where the socket has batched I/O; else 'packet').
    this.batchedReceive = this.engine.onPackets((slab, offsets, lengths, count) => {
      this.#c.toTun += count;
      tun.writeBatch(slab, offsets, lengths, count); // bounded inside the Tun: a full device queue drops and counts
    });
    tun.onPackets((slab, lengths, count, slotSize, headroom) => {
      try {
        this.#fromTun(slab, lengths, count, slotSize, headroom ?? 0);
      } catch (e) {
        if (this.listenerCount('error') > 0) this.emit('error', e as Error); // a TUN handler never throws
      }
    });
  }

  /** True when received ESP takes the batched path (the NAT-T socket on the native addon). */
  readonly batchedReceive: boolean;

  #fromTun(slab: Buffer, lengths: Uint32Array, count: number, slotSize: number, headroom: number): void {
    const c = this.#c;
    c.fromTun += count;
    if (this.#results.length < count) {
      this.#results = new Uint8Array(count);
      this.#mtus = new Uint32Array(count);
    }
    const results = this.#results;
    const sent = this.engine.sendBatch(slab, lengths, count, slotSize, results, headroom, this.#mtus);
    if (sent === count) return;
    for (let i = 0; i < count; i++) {
      const r = results[i];
      if (r === BATCH_SENT) continue;
      if (r === BATCH_BYPASS) c.noPolicy++;
      else if (r === BATCH_TOO_BIG) {
        // Not sealed: the packet is as it was read (the rare path may allocate).
        const packet = slab.subarray(i * slotSize, i * slotSize + lengths[i]);
        const v = this.#v;
        const icmp = readIpHeader(packet, v) ? packetTooBig(packet, v, this.#mtus[i]) : null;
        if (icmp) {
          c.icmpTooBig++;
          this.tun.write(icmp);
        } else c.tooBigSilent++;
      } else if (r === BATCH_DROPPED && !readIpHeader(slab.subarray(i * slotSize, i * slotSize + lengths[i]), this.#v)) c.notIp++;
    }
  }

  #results = new Uint8Array(64);
  #mtus = new Uint32Array(64);

  /** The counters of the tunnel, its engine and its TUN (snapshots). */
  stats(): TunnelStats {
    return { tunnel: { ...this.#c }, engine: this.engine.stats(), traffic: this.engine.traffic(), tun: this.tun.stats() };
  }

  /** Stop moving packets (the engine stops; the TUN, socket and database are left open for their owner). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.tun.onPackets(null);
    this.engine.close();
  }
}

/**
 * Connect a TUN device to a NAT-T socket through a userland engine. Options are checked at once (own properties
 * only, unknown names refused).
 */
export function createTunnel(options: CreateTunnelOptions): Tunnel {
  const o = readOptions(options, ['tun', 'socket', 'sadb', 'outerMtu', 'keepaliveSeconds'] as const);
  if (!(o.tun instanceof Tun)) throw typeError('tun', 'a Tun from createTun()', o.tun);
  if (o.tun.closed) throw typeError('tun', 'an open Tun', 'a closed Tun');
  const socket = o.socket as EspTransport | undefined;
  if (!socket || typeof socket !== 'object' || typeof socket.sendEsp !== 'function' || typeof socket.on !== 'function') {
    throw typeError('socket', 'a NattSocket (userland backend) or an EspTransport', o.socket);
  }
  if (o.sadb !== undefined && !(o.sadb instanceof UserlandSadb)) throw typeError('sadb', 'a UserlandSadb', o.sadb);
  const outerMtu = intOption(o.outerMtu, 'outerMtu', 576, 65535, 1500);
  const keepaliveSeconds = durationSeconds(o.keepaliveSeconds, 'keepaliveSeconds', 0, 20);
  const tun = o.tun;
  const sadb = (o.sadb as UserlandSadb | undefined) ?? new UserlandSadb();
  return tunnelGate.make(() => new Tunnel(tun, socket, sadb, outerMtu, keepaliveSeconds));
}
