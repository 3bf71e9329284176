// createTun: a TUN device configured over rtnetlink (MTU, addresses, routes, up), batched reads into one slab, bounded writes.

import { EventEmitter } from 'node:events';
import { NattError, rangeError, typeError, errnoName } from '../errors';
import { boolOption, durationMs, intOption, readOptions, stringOption } from '../core/options';
import { loadNative, openTun } from '../native/binding';
import type { NativeAddon, NativeTun } from '../native/types';
import { Rtnetlink } from '../rtnetlink/client';
import { parseAddressWithPrefix, readRouteSpec, type AddressWithPrefix, type CheckedRouteSpec } from '../rtnetlink/convert';
import { Coalescer, SEGMENT_DROP_REASONS, Segmenter, VNET_HDR_LEN } from '../ip/offload';

/** A route into the TUN device (its `dev` is the device). */
export interface TunRouteSpec {
  /** '10.10.2.0/24', 'fd00:2::/64', 'default'. */
  dst: string;
  /** A gateway on the TUN's network (rarely needed: a TUN is point-to-point). */
  via?: string;
  metric?: number;
  /** 1 to 2^32-1 (default 254, main). */
  table?: number;
  /** The preferred source address. */
  src?: string;
}

export interface CreateTunOptions {
  /** The interface name ('natt0'), or a template ('natt%d'); default: the kernel picks tunN. At most 15 bytes. */
  name?: string;
  /** Default 1400. */
  mtu?: number;
  /** Addresses to add: '10.10.1.1/32', 'fd00:1::1/128' (IPv6 ones without duplicate address detection). */
  addresses?: string[];
  /** Routes to add through the device, after it is up. */
  routes?: TunRouteSpec[];
  /** Bring the device up (default true). */
  up?: boolean;
  /** Packets read per wake, each into its own slot of the read slab (default 64, at most 1024). */
  batch?: number;
  /** Packets held while the device is not writable (default 256); beyond that, writes are dropped and counted. */
  queue?: number;
  /** Per-request timeout for the rtnetlink configuration in ms (default 5000). */
  timeout?: number;
  /**
   * The device's send buffer in bytes (TUNSETSNDBUF): how much written data the kernel holds for it before writes
   * meet EAGAIN and queue. The kernel's default is unlimited.
   */
  sndbuf?: number;
  /**
   * The device's transmit queue in packets (txqueuelen): how many packets the kernel routed into the TUN may wait
   * for natt to read them before it drops (tx_dropped). Default TUN_TX_QUEUE (the kernel's own is 500, which a TCP
   * burst overruns while natt is busy the other way: every such drop is a retransmission and a halved window).
   */
  txQueueLength?: number;
  /**
   * Segmentation offloads (Linux; default off): `true` for all, or each on its own. The device is opened with
   * IFF_VNET_HDR and every read and write carries a virtio-net header.
   *  - `tso`: TUNSETOFFLOAD TSO4/TSO6 (with CSUM): the kernel hands over TCP superpackets of up to 64 KiB, which natt
   *    cuts into MTU-sized packets (checksums computed) before the batch handler sees them; one read per 64 KiB.
   *  - `uso`: USO4/USO6 likewise for UDP (Linux ≥ 6.2; older kernels refuse the flag and `offload.usoReason` says so).
   *  - `gro`: writeBatch() joins consecutive TCP segments of one flow into one GSO write (as Linux's GRO would, each
   *    member's checksum checked first): one write(2) per up to 64 segments, and the host's TCP sees fewer, larger
   *    packets.
   */
  offload?: boolean | TunOffloadOptions;
}

export interface TunOffloadOptions {
  tso?: boolean;
  uso?: boolean;
  gro?: boolean;
}

/** The offloads a Tun has on, and why one asked for is off. */
export interface TunOffload {
  tso: boolean;
  uso: boolean;
  gro: boolean;
  /** '' when on or not asked for; else why not. */
  tsoReason: string;
  usoReason: string;
}

/** What the offloads did: superpackets read and the packets cut from them, drops by reason; coalesced writes. */
export interface TunOffloadStats {
  superpackets: number;
  segments: number;
  /** Reads dropped whole: their virtio-net header or packet did not make sense (by reason). */
  drops: Record<string, number>;
  coalescedWrites: number;
  coalescedPackets: number;
}

/** The default TUN transmit queue (packets): see CreateTunOptions.txQueueLength. */
export const TUN_TX_QUEUE = 4096;

/**
 * Called once per wake with the packets read: packet i is `slab[i*slotSize, i*slotSize + lengths[i])`. The slab is
 * the handler's to overwrite until it returns (ESP is sealed in place there), and `headroom` bytes in front of
 * `slab[0]` (in its ArrayBuffer) are free for that too; every slot has TUN_SLOT_ROOM bytes beyond the MTU.
 */
export type TunBatchHandler = (slab: Buffer, lengths: Uint32Array, count: number, slotSize: number, headroom: number) => void;

/** Bytes free in front of the read slab, and in every slot beyond the MTU: room to seal ESP in place. */
export const TUN_HEADROOM = 64;
export const TUN_SLOT_ROOM = 128;

export interface TunStats {
  packetsIn: number;
  bytesIn: number;
  packetsOut: number;
  bytesOut: number;
  /** Packets waiting for the device to become writable. */
  queued: number;
  drops: {
    /** In: longer than a slot (the MTU was raised behind natt's back), dropped whole by the addon. */
    oversize: number;
    /** In: read with neither a batch handler nor a 'packet' listener. */
    noHandler: number;
    /** Out: the write queue was full. */
    queueFull: number;
    /** Out: waited for writability but longer than a queue slot (the MTU). */
    tooLong: number;
    /** Out: written after close(), or still queued at close(). */
    closed: number;
    /** Out: the kernel refused the packet (EINVAL: not IPv4/IPv6 ...); `lastRefusal` says the errno. */
    refused: number;
  };
  /** The errno name of the last refused write. */
  lastRefusal?: string;
  /** The segmentation offloads' counters (all 0 with offloads off). */
  offload: TunOffloadStats;
  /** Read errors reported (each stops reading until resume()), and the last one. */
  readErrors: number;
  lastReadError?: Error;
}

export interface TunEvents {
  /** One packet (a copy, yours to keep); only emitted while someone listens. */
  packet: [packet: Buffer];
  /** A read error (the device went away ...): reading stops; `resume()` tries again. */
  error: [err: Error];
  close: [];
}

const OPTION_NAMES = ['name', 'mtu', 'addresses', 'routes', 'up', 'batch', 'queue', 'timeout', 'sndbuf', 'txQueueLength', 'offload'] as const;
const OFFLOAD_NAMES = ['tso', 'uso', 'gro'] as const;
const EINVAL = 22;
/** The largest IP packet, and so what a TSO/USO read can hold after its virtio-net header. */
const MAX_IP_PACKET = 65535;
/** Packets one coalescing plan takes (a write batch of more is planned in parts). */
const COALESCE_BATCH = 4096;
const ZERO_HEADER = new Uint8Array(VNET_HDR_LEN);
const ROUTE_NAMES = ['dst', 'via', 'metric', 'table', 'src'] as const;
const EAGAIN = 11;
const TOKEN = Symbol('createTun');
let configure: (t: Tun, o: CheckedTunOptions) => Promise<void>;

/** What a Tun owns that must be closed if the Tun is collected without close(): the device, its rtnetlink client. */
interface Owned {
  dev: NativeTun | null;
  rt: Rtnetlink | null;
}

/**
 * Devices that keep Node running (ref'd, the default, like a listening socket): held here, so a ref'd device works
 * (and reads) even when no one references its Tun. An unref'd one that no one references is collected and closed.
 */
const held = new Set<object>();

/** Closes the device of a Tun collected without close() (the kernel removes a non-persistent TUN with its fd). */
const orphans = new FinalizationRegistry<Owned>((owned) => {
  try {
    owned.dev?.close();
    owned.rt?.close();
  } catch {
    // a finalizer must not throw: the device is gone either way
  }
});

/**
 * The callbacks the native device keeps (as GC roots): they reach the Tun only through a WeakRef, and are made here,
 * apart from the constructor's scope, so that they capture nothing else.
 */
function tunCallbacks(weak: WeakRef<Tun>, handlers: TunHandlers): [(n: number) => void, () => void, (e: Error) => void] {
  return [
    (n) => {
      const t = weak.deref();
      if (t) handlers.packets(t, n);
    },
    () => {
      const t = weak.deref();
      if (t) handlers.writable(t);
    },
    (e) => {
      const t = weak.deref();
      if (t) handlers.error(t, e);
    },
  ];
}

interface TunHandlers {
  packets(t: Tun, n: number): void;
  writable(t: Tun): void;
  error(t: Tun, e: Error): void;
}
let handlers: TunHandlers;

/** A TUN device made by createTun(). */
export class Tun extends EventEmitter<TunEvents> {
  /** The interface name the kernel gave. */
  readonly name: string;
  readonly mtu: number;
  /** Bytes per read slot (≥ the MTU). */
  readonly slotSize: number;
  /** Read slots: packets per wake at most. */
  readonly slots: number;

  #dev: NativeTun | null;
  #rt: Rtnetlink | null = null;
  #index = 0;
  /** What createTun added, removed again by close(). */
  readonly #addresses: AddressWithPrefix[] = [];
  readonly #routes: CheckedRouteSpec[] = [];
  readonly #slab: Buffer;
  /** The read slab with TUN_HEADROOM bytes in front (the handler may write there). */
  readonly #slabWithRoom: Buffer;
  readonly #lengths: Uint32Array;
  #batch: TunBatchHandler | null = null;
  // The write queue: a ring of fixed slots (nothing allocated per packet, even under backpressure).
  readonly #qSlab: Buffer;
  readonly #qOffsets: Uint32Array;
  readonly #qLengths: Uint32Array;
  readonly #qStatus: Int32Array;
  readonly #qSlot: number;
  #qHead = 0;
  #qCount = 0;
  #waiting = false;
  #status = new Int32Array(64);
  #closing: Promise<void> | null = null;
  // Offloads: the virtio-net header on every read and write (#vnet), the read slab when it differs from the
  // handler's (TSO/USO: 64 KiB slots), the segmenter and coalescer, zero headers and one-piece counts for plain writes.
  readonly #vnet: boolean;
  readonly #offload: TunOffload;
  #readSlab: Buffer | null = null;
  #readSlot = 0;
  #readLengths: Uint32Array | null = null;
  #seg: Segmenter | null = null;
  #co: Coalescer | null = null;
  #zeros = new Uint8Array(0);
  #ones = new Uint32Array(0);
  readonly #one = { off: new Uint32Array(1), len: new Uint32Array(1), cnt: Uint32Array.of(1), st: new Int32Array(1) };
  readonly #o = { superpackets: 0, segments: 0, coalescedWrites: 0, coalescedPackets: 0, drops: Object.create(null) as Record<string, number> };
  readonly #owned: Owned = { dev: null, rt: null };
  readonly #token = {};
  readonly #s = {
    packetsIn: 0,
    bytesIn: 0,
    packetsOut: 0,
    bytesOut: 0,
    noHandler: 0,
    queueFull: 0,
    tooLong: 0,
    closed: 0,
    refused: 0,
    lastRefusal: undefined as string | undefined,
    readErrors: 0,
    lastError: undefined as Error | undefined,
  };

  /** Not for callers: use createTun(). */
  constructor(token: symbol, o: CheckedTunOptions) {
    if (token !== TOKEN) throw new TypeError('use createTun() to make a Tun');
    super();
    const addon = loadNative();
    if (!addon) throw new NattError('ERR_NATT_NO_NATIVE', 'createTun needs the natt native addon (npm rebuild natt)');
    const c = addon.constants;
    this.mtu = o.mtu;
    this.slotSize = (o.mtu + TUN_SLOT_ROOM + 15) & ~15;
    this.slots = o.batch;
    this.#slabWithRoom = Buffer.alloc(TUN_HEADROOM + o.batch * this.slotSize);
    this.#slab = this.#slabWithRoom.subarray(TUN_HEADROOM);
    this.#lengths = new Uint32Array(o.batch);
    const off = o.offload;
    this.#vnet = off.tso || off.uso || off.gro;
    const vh = this.#vnet ? VNET_HDR_LEN : 0;
    // A queued write keeps its virtio-net header; with GRO it may be a whole coalesced superpacket.
    this.#qSlot = (vh + (off.gro ? MAX_IP_PACKET : o.mtu) + 15) & ~15;
    this.#qSlab = Buffer.allocUnsafe(o.queue * this.#qSlot);
    this.#qOffsets = new Uint32Array(o.queue);
    for (let i = 0; i < o.queue; i++) this.#qOffsets[i] = i * this.#qSlot;
    this.#qLengths = new Uint32Array(o.queue);
    this.#qStatus = new Int32Array(o.queue);
    // IFF_TUN_EXCL: a name in use is EBUSY, never an existing device adopted (and later torn down) by mistake.
    // The device reaches this Tun only weakly: an unref'd Tun dropped without close() is collected and its device
    // closed; a ref'd one is held (module-level) until close() or unref().
    this.#dev = openTun(o.name, c.IFF_TUN | c.IFF_NO_PI | c.IFF_TUN_EXCL | (this.#vnet ? c.IFF_VNET_HDR : 0), ...tunCallbacks(new WeakRef(this), handlers));
    this.name = this.#dev.name;
    this.#offload = { tso: false, uso: false, gro: off.gro, tsoReason: '', usoReason: '' };
    if (this.#vnet) this.#setupOffload(off, c);
    this.#owned.dev = this.#dev;
    orphans.register(this, this.#owned, this.#token);
    held.add(this);
  }

  /** TUNSETOFFLOAD (USO refused by kernels before 6.2: then without it), the read slab, segmenter and coalescer. */
  #setupOffload(off: { tso: boolean; uso: boolean; gro: boolean }, c: NativeAddon['constants']): void {
    const dev = this.#dev!;
    const tso = off.tso ? (c.TUN_F_TSO4 ?? 0) | (c.TUN_F_TSO6 ?? 0) | (c.TUN_F_TSO_ECN ?? 0) : 0;
    const uso = off.uso ? (c.TUN_F_USO4 ?? 0) | (c.TUN_F_USO6 ?? 0) : 0;
    const csum = c.TUN_F_CSUM ?? 0;
    if (tso || uso) {
      let r = dev.setOffload(csum | tso | uso);
      if (r === EINVAL && uso) {
        this.#offload.usoReason = 'the kernel refused TUN_F_USO4/USO6 (EINVAL: UDP segmentation offload on TUN needs Linux 6.2)';
        r = tso ? dev.setOffload(csum | tso) : 0;
        if (r === 0) this.#offload.tso = tso !== 0;
      } else if (r === 0) {
        this.#offload.tso = tso !== 0;
        this.#offload.uso = uso !== 0;
      }
      if (r !== 0) {
        const why = `the kernel refused TUNSETOFFLOAD (${errnoName(r)})`;
        if (off.tso) this.#offload.tsoReason = why;
        if (off.uso && !this.#offload.usoReason) this.#offload.usoReason = why;
      }
    }
    // Reads carry the virtio-net header; with TSO/USO on, a read may be a 64 KiB superpacket.
    const big = this.#offload.tso || this.#offload.uso;
    this.#readSlot = (VNET_HDR_LEN + (big ? MAX_IP_PACKET : this.mtu + TUN_SLOT_ROOM) + 15) & ~15;
    this.#readSlab = Buffer.alloc(this.slots * this.#readSlot);
    this.#readLengths = new Uint32Array(this.slots);
    this.#seg = new Segmenter(this.slotSize);
    if (off.gro) this.#co = new Coalescer(COALESCE_BATCH);
  }

  static {
    configure = (t, o) => t.#configure(o);
    handlers = {
      packets: (t, n) => t.#onPackets(n),
      writable: (t) => t.#onWritable(),
      error: (t, e) => t.#onError(e),
    };
  }

  /** Closed: nothing to hold or to close on collection any more. */
  #released(): void {
    held.delete(this);
    orphans.unregister(this.#token);
    this.#owned.dev = null;
    this.#owned.rt = null;
  }

  /** Configure over rtnetlink; on failure close the device (which takes its addresses and routes with it). */
  async #configure(o: CheckedTunOptions): Promise<void> {
    const dev = this.#dev!;
    try {
      if (o.sndbuf !== undefined) dev.setSndbuf(o.sndbuf);
      const rt = await Rtnetlink.open({ timeout: o.timeout });
      this.#rt = rt;
      this.#owned.rt = rt;
      const index = await rt.linkIndex(dev.name);
      this.#index = index;
      await rt.setLink(index, { mtu: o.mtu, txqlen: o.txQueueLength });
      for (const a of o.addresses) {
        await rt.addAddress({ dev: index, address: `${a.address}/${a.prefixLength}`, nodad: a.family === 6 });
        this.#addresses.push(a);
      }
      if (o.up) await rt.setLink(index, { up: true });
      for (const r of o.routes) {
        await rt.addRoute({ ...routeSpecOf(r), ...(r.src !== undefined ? { src: r.src } : {}), dev: index });
        this.#routes.push(r);
      }
      if (this.#readSlab) dev.setSlab(this.#readSlab, this.#readSlot, this.#readLengths!);
      else dev.setSlab(this.#slab, this.slotSize, this.#lengths);
    } catch (e) {
      this.#released();
      this.#dev = null;
      dev.close();
      this.#rt?.close();
      this.#rt = null;
      throw e;
    }
  }

  /** The interface index. */
  get index(): number {
    return this.#index;
  }

  /** The offloads on this device (see CreateTunOptions.offload), and why one asked for is off. */
  get offload(): TunOffload {
    return { ...this.#offload };
  }

  #onPackets(count: number): void {
    if (this.#readSlab) this.#onReads(count);
    else this.#deliver(count);
  }

  /** Offloads on: cut each read (virtio-net header + packet, maybe 64 KiB) into the handler's slab, batch by batch. */
  #onReads(count: number): void {
    const seg = this.#seg!;
    const rs = this.#readSlab!;
    const rl = this.#readLengths!;
    const slots = this.slots;
    const o = this.#o;
    let out = 0;
    for (let i = 0; i < count && this.#dev; i++) {
      const n = seg.begin(rs, i * this.#readSlot, rl[i]);
      if (n < 0) {
        const why = SEGMENT_DROP_REASONS[-n] ?? 'unknown';
        o.drops[why] = (o.drops[why] ?? 0) + 1;
        continue;
      }
      if (n > 1) {
        o.superpackets++;
        o.segments += n;
      }
      while (seg.remaining > 0 && this.#dev) {
        if (out === slots) {
          this.#deliver(out);
          out = 0;
        }
        // Never 0 with slots free (begin() refused any packet longer than a slot); if it were, the rest of this read
        // is dropped and counted rather than looped on.
        const got = seg.emit(this.#slab, out * this.slotSize, this.slotSize, this.#lengths, out, slots - out);
        if (got === 0) {
          o.drops.tooBig = (o.drops.tooBig ?? 0) + 1;
          break;
        }
        out += got;
      }
    }
    if (out > 0 && this.#dev) this.#deliver(out);
  }

  /** Packets 0..count-1 of the handler's slab to the 'packet' listeners and the batch handler. */
  #deliver(count: number): void {
    const lengths = this.#lengths;
    let bytes = 0;
    for (let i = 0; i < count; i++) bytes += lengths[i];
    this.#s.packetsIn += count;
    this.#s.bytesIn += bytes;
    const listeners = this.listenerCount('packet');
    if (this.#batch === null && listeners === 0) {
      this.#s.noHandler += count;
      return;
    }
    // Copies for 'packet' listeners first: the batch handler may overwrite the slab (seal in place).
    if (listeners > 0) {
      for (let i = 0; i < count && this.#dev; i++) {
        const at = i * this.slotSize;
        this.emit('packet', Buffer.from(this.#slab.subarray(at, at + lengths[i])));
      }
    }
    if (this.#batch !== null && this.#dev) this.#batch(this.#slab, lengths, count, this.slotSize, TUN_HEADROOM);
  }

  #onError(err: Error): void {
    this.#s.readErrors++;
    this.#s.lastError = err;
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /**
   * Receive packets in batches, without a copy or an allocation per packet: `handler(slab, lengths, count, slotSize)`
   * is called once per wake; packet i is `slab.subarray(i * slotSize, i * slotSize + lengths[i])` and is valid only
   * until the handler returns (copy what you keep). `null` removes it. The 'packet' event is the simple alternative.
   */
  onPackets(handler: TunBatchHandler | null): this {
    if (handler !== null && typeof handler !== 'function') throw typeError('handler', 'a function or null', handler);
    this.#batch = handler;
    return this;
  }

  /**
   * Write one IP packet (`packet[offset, offset+length)`, default all of it) into the device: the host receives it
   * as if from the wire. True when written, or queued because the device is not writable now (the queue is bounded);
   * false when dropped (queue full, closed, refused by the kernel), counted in stats().
   */
  write(packet: Uint8Array, offset = 0, lengthArg?: number): boolean {
    if (!(packet instanceof Uint8Array)) throw typeError('packet', 'a Buffer or Uint8Array', packet);
    // The default length is computed once offset is known to be a number (never arithmetic on a caller's Symbol).
    const length = (lengthArg === undefined && typeof offset === 'number' ? packet.length - offset : lengthArg) as number;
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > packet.length) {
      throw rangeError('offset', `an offset and length inside the ${packet.length}-byte packet`, offset);
    }
    const dev = this.#dev;
    if (dev === null) {
      this.#s.closed++;
      return false;
    }
    if (this.#qCount > 0) return this.#enqueue(packet, offset, length);
    const r = this.#vnet ? this.#writeOneVnet(dev, packet, offset, length) : dev.write(packet, offset, length);
    if (r === 0) {
      this.#s.packetsOut++;
      this.#s.bytesOut += length;
      return true;
    }
    if (r === EAGAIN) {
      const ok = this.#enqueue(packet, offset, length);
      this.#waitWritable();
      return ok;
    }
    this.#refused(r);
    return false;
  }

  /**
   * Write `count` packets (default offsets.length), packet i being `slab[offsets[i], offsets[i] + lengths[i])`, in
   * one native call (one write(2) each). Returns how many were written or queued; the rest were dropped (counted).
   */
  writeBatch(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, countArg?: number): number {
    if (!(slab instanceof Uint8Array)) throw typeError('slab', 'a Buffer or Uint8Array', slab);
    if (!(offsets instanceof Uint32Array)) throw typeError('offsets', 'a Uint32Array', offsets);
    if (!(lengths instanceof Uint32Array)) throw typeError('lengths', 'a Uint32Array', lengths);
    const count = countArg === undefined ? offsets.length : countArg;
    if (!Number.isInteger(count) || count < 0 || count > offsets.length || count > lengths.length) {
      throw rangeError('count', `an integer from 0 to ${Math.min(offsets.length, lengths.length)}`, count);
    }
    for (let i = 0; i < count; i++) {
      if (offsets[i] + lengths[i] > slab.length) throw rangeError(`offsets[${i}]`, `a packet inside the ${slab.length}-byte slab`, offsets[i]);
    }
    const dev = this.#dev;
    if (dev === null) {
      this.#s.closed += count;
      return 0;
    }
    if (this.#vnet) return this.#writeBatchVnet(dev, slab, offsets, lengths, count);
    let accepted = 0;
    let i = 0;
    if (this.#qCount === 0) {
      if (this.#status.length < count) this.#status = new Int32Array(Math.max(count, this.#status.length * 2));
      const status = this.#status;
      const done = dev.writeBatch(slab, offsets, lengths, 0, count, status);
      for (; i < done; i++) {
        if (status[i] === 0) {
          accepted++;
          this.#s.packetsOut++;
          this.#s.bytesOut += lengths[i];
        } else this.#refused(status[i]);
      }
      if (i < count) this.#waitWritable();
    }
    for (; i < count; i++) if (this.#enqueue(slab, offsets[i], lengths[i])) accepted++;
    return accepted;
  }

  #enqueue(src: Uint8Array, offset: number, length: number): boolean {
    const cap = this.#qLengths.length;
    if (this.#qCount >= cap) {
      this.#s.queueFull++;
      return false;
    }
    const vh = this.#vnet ? VNET_HDR_LEN : 0;
    if (length + vh > this.#qSlot) {
      this.#s.tooLong++;
      return false;
    }
    const slot = (this.#qHead + this.#qCount) % cap;
    const at = this.#qOffsets[slot];
    if (vh) this.#qSlab.fill(0, at, at + vh); // a plain packet: no offload asked of the kernel
    this.#qSlab.set(src.subarray(offset, offset + length), at + vh);
    this.#qLengths[slot] = length + vh;
    this.#qCount++;
    return true;
  }

  /** One packet behind a zero virtio-net header (writev): 0, or the errno (EAGAIN: not written). */
  #writeOneVnet(dev: NativeTun, packet: Uint8Array, offset: number, length: number): number {
    const one = this.#one;
    one.off[0] = offset;
    one.len[0] = length;
    const done = dev.writevBatch(ZERO_HEADER, VNET_HDR_LEN, packet, one.off, one.len, one.cnt, 0, 1, one.st);
    return done === 0 ? EAGAIN : one.st[0];
  }

  /**
   * writeBatch() with the virtio-net header: with GRO, the coalescer's writes (consecutive TCP segments of a flow as
   * one GSO write); without, each packet behind a zero header. Straight from the caller's slab (writev); what meets
   * EAGAIN is copied whole (header included) into the queue.
   */
  #writeBatchVnet(dev: NativeTun, slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    let accepted = 0;
    for (let start = 0; start < count; start += COALESCE_BATCH) {
      const n = Math.min(COALESCE_BATCH, count - start);
      const offs = start === 0 ? offsets : offsets.subarray(start);
      const lens = start === 0 ? lengths : lengths.subarray(start);
      let headers: Uint8Array, pOff: Uint32Array, pLen: Uint32Array, pCnt: Uint32Array, writes: number;
      const co = this.#co;
      if (co) {
        writes = co.plan(slab, offs, lens, n);
        headers = co.headers;
        pOff = co.pieceOffsets;
        pLen = co.pieceLengths;
        pCnt = co.pieceCounts;
        if (co.coalesced > 0) {
          this.#o.coalescedPackets += co.coalesced;
        }
      } else {
        if (this.#ones.length < n) {
          this.#ones = new Uint32Array(Math.max(n, this.#ones.length * 2)).fill(1);
          this.#zeros = new Uint8Array(this.#ones.length * VNET_HDR_LEN);
        }
        writes = n;
        headers = this.#zeros;
        pOff = offs;
        pLen = lens;
        pCnt = this.#ones;
      }
      if (this.#status.length < writes) this.#status = new Int32Array(Math.max(writes, this.#status.length * 2));
      const status = this.#status;
      const done = this.#qCount === 0 ? dev.writevBatch(headers, VNET_HDR_LEN, slab, pOff, pLen, pCnt, 0, writes, status) : 0;
      let p = 0;
      for (let w = 0; w < writes; w++) {
        const members = pCnt[w];
        let bytes = 0;
        for (let k = 0; k < members; k++) bytes += pLen[p + k];
        if (w < done) {
          if (status[w] === 0) {
            accepted += members;
            this.#s.packetsOut += members;
            this.#s.bytesOut += bytes;
            if (members > 1) this.#o.coalescedWrites++;
          } else this.#refused(status[w]);
        } else if (this.#enqueueWrite(headers, w, slab, pOff, pLen, p, members, bytes)) accepted += members;
        p += members;
      }
      if (done < writes) this.#waitWritable();
    }
    return accepted;
  }

  /** A planned write that must wait: its header and pieces copied, as one, into a queue slot. */
  #enqueueWrite(headers: Uint8Array, w: number, slab: Uint8Array, pOff: Uint32Array, pLen: Uint32Array, p: number, pieces: number, bytes: number): boolean {
    const cap = this.#qLengths.length;
    if (this.#qCount >= cap) {
      this.#s.queueFull += pieces;
      return false;
    }
    if (bytes + VNET_HDR_LEN > this.#qSlot) {
      this.#s.tooLong += pieces;
      return false;
    }
    const slot = (this.#qHead + this.#qCount) % cap;
    let at = this.#qOffsets[slot];
    this.#qSlab.set(headers.subarray(w * VNET_HDR_LEN, (w + 1) * VNET_HDR_LEN), at);
    at += VNET_HDR_LEN;
    for (let k = 0; k < pieces; k++) {
      this.#qSlab.set(slab.subarray(pOff[p + k], pOff[p + k] + pLen[p + k]), at);
      at += pLen[p + k];
    }
    this.#qLengths[slot] = bytes + VNET_HDR_LEN;
    this.#qCount++;
    return true;
  }

  #waitWritable(): void {
    if (this.#waiting || this.#dev === null) return;
    this.#waiting = true;
    this.#dev.waitWritable();
  }

  /** The device is writable again: flush the queue in order, until empty or EAGAIN again. */
  #onWritable(): void {
    this.#waiting = false;
    const dev = this.#dev;
    const cap = this.#qLengths.length;
    while (dev !== null && this.#qCount > 0) {
      const run = Math.min(this.#qCount, cap - this.#qHead); // contiguous slots up to the ring's end
      const done = dev.writeBatch(this.#qSlab, this.#qOffsets, this.#qLengths, this.#qHead, run, this.#qStatus);
      for (let k = 0; k < done; k++) {
        const slot = this.#qHead + k;
        if (this.#qStatus[slot] === 0) {
          this.#s.packetsOut++;
          this.#s.bytesOut += this.#qLengths[slot];
        } else this.#refused(this.#qStatus[slot]);
      }
      this.#qHead = (this.#qHead + done) % cap;
      this.#qCount -= done;
      if (done < run) {
        this.#waitWritable();
        return;
      }
    }
  }

  #refused(errno: number): void {
    this.#s.refused++;
    this.#s.lastRefusal = errnoName(errno);
  }

  /** Stop reading (packets wait in the kernel's queue, then the kernel drops them); resume() starts again. */
  pause(): void {
    this.#dev?.pause();
  }

  resume(): void {
    this.#dev?.resume();
  }

  /**
   * An open device keeps Node running (like a listening socket) and stays open without a reference to it; unref()
   * lets the process exit anyway, and lets an unreferenced Tun be collected (its device closed, as by close()).
   */
  ref(): this {
    if (this.#dev) {
      this.#dev.ref();
      held.add(this);
    }
    return this;
  }

  unref(): this {
    if (this.#dev) {
      this.#dev.unref();
      held.delete(this);
    }
    return this;
  }

  /** Counters since creation. */
  stats(): TunStats {
    const s = this.#s;
    const out: TunStats = {
      packetsIn: s.packetsIn,
      bytesIn: s.bytesIn,
      packetsOut: s.packetsOut,
      bytesOut: s.bytesOut,
      queued: this.#qCount,
      drops: {
        oversize: this.#dev?.oversize ?? this.#oversizeAtClose,
        noHandler: s.noHandler,
        queueFull: s.queueFull,
        tooLong: s.tooLong,
        closed: s.closed,
        refused: s.refused,
      },
      readErrors: s.readErrors,
      offload: { superpackets: this.#o.superpackets, segments: this.#o.segments, drops: { ...this.#o.drops }, coalescedWrites: this.#o.coalescedWrites, coalescedPackets: this.#o.coalescedPackets },
    };
    if (s.lastRefusal !== undefined) out.lastRefusal = s.lastRefusal;
    if (s.lastError !== undefined) out.lastReadError = s.lastError;
    return out;
  }

  #oversizeAtClose = 0;

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /**
   * Remove the routes and addresses createTun added, then close the device (a non-persistent TUN disappears with
   * its fd). Idempotent: every call returns the same promise. Removal failures (already removed by someone else)
   * are ignored: the device's disappearance takes its addresses and routes with it anyway.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const dev = this.#dev;
    const rt = this.#rt;
    if (!dev || !rt) return;
    dev.pause();
    for (const r of [...this.#routes].reverse()) {
      await rt.deleteRoute({ ...routeSpecOf(r), dev: this.index }).catch(() => {});
    }
    for (const a of [...this.#addresses].reverse()) {
      await rt.deleteAddress({ dev: this.index, address: `${a.address}/${a.prefixLength}` }).catch(() => {});
    }
    this.#oversizeAtClose = dev.oversize;
    this.#s.closed += this.#qCount;
    this.#qCount = 0;
    this.#released();
    this.#dev = null;
    dev.close();
    rt.close();
    this.#rt = null;
    this.emit('close');
  }
}

function routeSpecOf(r: CheckedRouteSpec): { dst: string; via?: string; metric?: number; table: number } {
  const o: { dst: string; via?: string; metric?: number; table: number } = { dst: `${r.dst}/${r.dstLen}`, table: r.table };
  if (r.via !== undefined) o.via = r.via;
  if (r.metric !== undefined) o.metric = r.metric;
  return o;
}

interface CheckedTunOptions {
  name: string;
  mtu: number;
  addresses: AddressWithPrefix[];
  routes: CheckedRouteSpec[];
  up: boolean;
  batch: number;
  queue: number;
  timeout: number;
  sndbuf?: number;
  txQueueLength: number;
  offload: { tso: boolean; uso: boolean; gro: boolean };
}

/** Check createTun's options: own properties only, unknown names refused, every field named in errors. */
export function readTunOptions(v: unknown): CheckedTunOptions {
  const o = readOptions(v, OPTION_NAMES);
  const name = stringOption(o.name, 'name', { allowEmpty: true }, '');
  if (Buffer.byteLength(name) > 15 || !/^[^\s/:]*$/.test(name) || name === '.' || name === '..' || (name.match(/%/g) ?? []).length > 1) {
    throw rangeError('name', 'an interface name of at most 15 bytes without white space, "/" or ":" (one %d at most)', name);
  }
  if (name.includes('%') && !name.includes('%d')) throw rangeError('name', "a template with '%d' as its only %", name);
  const mtu = intOption(o.mtu, 'mtu', 68, 65535, 1400);
  const addresses: AddressWithPrefix[] = [];
  if (o.addresses !== undefined) {
    if (!Array.isArray(o.addresses)) throw typeError('addresses', "an array of addresses like '10.10.1.1/32'", o.addresses);
    if (o.addresses.length > 256) throw rangeError('addresses', 'at most 256 addresses', o.addresses);
    o.addresses.forEach((a, i) => addresses.push(parseAddressWithPrefix(a, `addresses[${i}]`)));
  }
  const routes: CheckedRouteSpec[] = [];
  if (o.routes !== undefined) {
    if (!Array.isArray(o.routes)) throw typeError('routes', "an array of routes like { dst: '10.10.2.0/24' }", o.routes);
    if (o.routes.length > 4096) throw rangeError('routes', 'at most 4096 routes', o.routes);
    o.routes.forEach((r, i) => {
      const what = `routes[${i}]`;
      const ro = readOptions(r, ROUTE_NAMES, what); // the TUN is every route's dev: no dev, no type
      const spec = readRouteSpec({ ...ro, dev: 1 }, what);
      delete spec.dev;
      routes.push(spec);
    });
  }
  const out: CheckedTunOptions = {
    name,
    mtu,
    addresses,
    routes,
    up: boolOption(o.up, 'up', true),
    batch: intOption(o.batch, 'batch', 1, 1024, 64),
    queue: intOption(o.queue, 'queue', 1, 65536, 256),
    timeout: durationMs(o.timeout, 'timeout', 1, 5000),
    // Own even when not set: the checked options are read later, and an absent name must not fall to Object.prototype.
    sndbuf: o.sndbuf === undefined ? undefined : intOption(o.sndbuf, 'sndbuf', 1, 0x7fff_ffff),
    txQueueLength: intOption(o.txQueueLength, 'txQueueLength', 1, 1_000_000, TUN_TX_QUEUE),
    offload: readOffload(o.offload),
  };
  return out;
}

function readOffload(v: unknown): { tso: boolean; uso: boolean; gro: boolean } {
  if (v === undefined || v === false) return { tso: false, uso: false, gro: false };
  if (v === true) return { tso: true, uso: true, gro: true };
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError('offload', 'a boolean or { tso?, uso?, gro? }', v);
  const f = readOptions(v, OFFLOAD_NAMES, 'offload');
  return { tso: boolOption(f.tso, 'offload.tso', false), uso: boolOption(f.uso, 'offload.uso', false), gro: boolOption(f.gro, 'offload.gro', false) };
}

/**
 * Create a TUN device (Linux, CAP_NET_ADMIN): open it, set its MTU (default 1400), add the addresses, bring it up,
 * add the routes through it. On any failure everything done so far is undone (closing the device removes it) and
 * the error (a NattSystemError / KernelReplyError with advice) is thrown.
 */
export async function createTun(options?: CreateTunOptions): Promise<Tun> {
  const o = readTunOptions(options);
  const tun = new Tun(TOKEN, o);
  await configure(tun, o);
  return tun;
}
