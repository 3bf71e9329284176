// UserlandEngine: the ESP-in-UDP datapath over a NattSocket: policy → SA → ESP → UDP out; UDP → SA → ESP → packet in.

import { EventEmitter } from 'node:events';
import type { NewMappingEvent, PolicyTemplate } from '../sadb/types';
import { rangeError, typeError } from '../errors';
import { durationSeconds, intOption, readOptions } from '../core/options';
import { dontFragment } from '../ip/icmp';
import { longInterval, type LongTimer } from '../core/timers';
import { EspBatch, EspSequenceExhaustedError, ESP_BATCH_DROP, ESP_BATCH_OK, ESP_DESC_WORDS, ESP_DROP_REASONS, ESP_META_WORDS, MAX_ESP_BATCH } from '../esp';
import { addressToBytes, bytesToAddress, sameAddress } from '../ip/address';
import {
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IpView,
  fixL4ChecksumForNat,
  readIpHeader,
  rebuildTransportPacket,
  recomputeL4Checksum,
} from '../ip/packet';
import { UserlandSadb } from './sadb';
import type { UserlandSa } from './sa';
import { selectorMatches, type PolicyEntry } from './spd';
import { newStats, type UserlandCounters } from './counters';
import { ESP_RUN_HEADROOM, type EspSources, type EspTransport, type RemoteInfo } from '../transport';

export type { RemoteInfo } from '../transport';

/** @deprecated the old name of EspTransport (src/transport): what the engine needs from its socket. */
export type EspSocket = EspTransport;

export interface UserlandEngineOptions {
  /**
   * What carries the ESP: a NAT-T socket (createNattSocket with backend 'userland', or 'auto' on a host without kernel
   * ESP), or any EspTransport (src/transport).
   */
  socket: EspTransport;
  /** The SA database; default a new one (reach it as `engine.sadb`). */
  sadb?: UserlandSadb;
  /** Seconds between NAT-T keepalives to each peer (RFC 3948 §2.3), skipped while ESP flows; 0 = off. Default 20. */
  keepaliveSeconds?: number;
  /**
   * MTU of the path the ESP-in-UDP datagrams take (default: none, only the 64 KiB limit applies). With it, an inner
   * packet that may not be fragmented (IPv6, or IPv4 with DF) whose datagram would exceed it is not sent: send()
   * returns 'too-big' and `tooBigMtu` says the largest inner packet the SA carries (for an ICMP "packet too big").
   */
  outerMtu?: number;
}

/** Traffic counts (not drops): what got through. */
export interface EngineTraffic {
  /** Authenticated inbound packets handed up as 'packet' (or dummy packets, Next Header 59, discarded). */
  inPackets: number;
  inBytes: number;
  /** Packets sealed and handed to the socket. */
  outPackets: number;
  outBytes: number;
  /** Outbound packets no policy asked to protect (the engine cannot send clear traffic: returned 'bypass'). */
  outBypass: number;
  keepalivesSent: number;
  newMappings: number;
  /** Inner packets refused as too big for the path (outerMtu), each answered by the caller with an ICMP error. */
  tooBig: number;
}

/** What `send()` did with a packet. */
export type SendResult = 'sent' | 'bypass' | 'blocked' | 'acquire' | 'dropped' | 'too-big';

export interface UserlandEngineEvents {
  /** An inbound packet: tunnel mode the inner IP packet, transport mode the IP packet rebuilt (see README). */
  packet: [Buffer, RemoteInfo];
  newMapping: [NewMappingEvent];
  error: [Error];
}

const NH_NONE = 59;

/** What sendBatch() did with packet i (`results[i]`): the SendResult names, as numbers. */
export const BATCH_SENT = 0;
export const BATCH_BYPASS = 1;
export const BATCH_BLOCKED = 2;
export const BATCH_ACQUIRE = 3;
export const BATCH_DROPPED = 4;
export const BATCH_TOO_BIG = 5;
const R_SENT = BATCH_SENT;
const R_BYPASS = BATCH_BYPASS;
const R_BLOCKED = BATCH_BLOCKED;
const R_ACQUIRE = BATCH_ACQUIRE;
const R_DROPPED = BATCH_DROPPED;
const R_TOO_BIG = BATCH_TOO_BIG;
const RESULT_NAMES: readonly SendResult[] = ['sent', 'bypass', 'blocked', 'acquire', 'dropped', 'too-big'];
const RESULT_CODES: Record<SendResult, number> = { sent: 0, bypass: 1, blocked: 2, acquire: 3, dropped: 4, 'too-big': 5 };
/** Room sendBatch() needs in front of each packet to seal it in place (marker, SPI, sequence number, IV: at most). */
export const SEAL_HEADROOM = ESP_RUN_HEADROOM + 8 + 16;
/** Room it needs behind each packet (padding, trailer, ICV: at most). */
export const SEAL_TAILROOM = 15 + 2 + 16 + 32;
/** ESP datagrams opened per cipher call on the batched receive path. */
const RX_CAPACITY = 64;
/** Payload views remembered per receive slab (by offset; then the cache starts over). */
const MAX_RX_VIEWS = 1024;

/**
 * Receives the inner packets of one receive batch (the batched path, tunnel mode): packet i is
 * `slab[offsets[i], offsets[i] + lengths[i])`, valid only until the handler returns.
 */
export type PacketBatchHandler = (slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number) => void;

/** sendBatch's in-place state for one read slab. */
interface TxState {
  slab: Buffer;
  slotSize: number;
  headroom: number;
  /** The batch over the slab's whole ArrayBuffer (headroom included). */
  batch: EspBatch;
  /** Per slot: a view of it (made once). */
  views: Buffer[];
  /** Per batch entry: its packet's index in the call. */
  index: Uint32Array;
  /** The sealed run, for the transport. */
  offsets: Uint32Array;
  lengths: Uint32Array;
}
/** Sends whose completion is awaited, at most, for the per-packet length accounting (beyond: lengths uncounted). */
const SENT_RING = 4096;

/** Per-template facts parsed once (cache keyed by the template object). */
interface TemplateInfo {
  src: Uint8Array | null;
  dst: Uint8Array | null;
}

/** What the engine caches per SA (the SA is the database's; this is the engine's). */
interface SaCache {
  /** NAT-OA original addresses as bytes (null: the SA has none). */
  oa: { src: Uint8Array; dst: Uint8Array } | null | undefined;
  /** The inbound peer address these bytes were made from, and the bytes. */
  peerAddress: string;
  peerBytes: Uint8Array | null;
}

/** Does `s` look like an EspTransport (sendEsp, sendKeepalive, on, off, address)? Never throws: a Proxy is just not one. */
function isTransport(s: unknown): s is EspTransport {
  try {
    const t = s as Record<string, unknown>;
    return s !== null && typeof s === 'object' && ['sendEsp', 'sendKeepalive', 'on', 'off', 'address'].every((m) => typeof t[m] === 'function');
  } catch {
    return false;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array, bOff: number, n: number): boolean {
  if (a.length !== n) return false;
  for (let i = 0; i < n; i++) if (a[i] !== b[bOff + i]) return false;
  return true;
}

/**
 * The userland ESP-in-UDP engine. `send(ipPacket)` applies the outbound policy and sends ESP-in-UDP to the SA's
 * peer; datagrams from the socket's 'esp' event are authenticated, decrypted, checked against the inbound policy and
 * emitted as 'packet'. Every drop increments one counter of `stats()` (names as /proc/net/xfrm_stat).
 */
export class UserlandEngine extends EventEmitter<UserlandEngineEvents> {
  readonly sadb: UserlandSadb;
  readonly socket: EspTransport;
  /** This engine's counters (the database sums those of its engines: sadb.stats()). */
  readonly #c: UserlandCounters = newStats();
  readonly #unregisterStats: () => void;
  readonly #saCache = new WeakMap<UserlandSa, SaCache>();
  readonly #t: EngineTraffic = {
    inPackets: 0,
    inBytes: 0,
    outPackets: 0,
    outBytes: 0,
    outBypass: 0,
    keepalivesSent: 0,
    newMappings: 0,
    tooBig: 0,
  };
  /** After send() returned 'too-big': the largest inner packet (whole IP packet) the chosen SA carries on this path. */
  tooBigMtu = 0;
  readonly #outerMtu: number;
  readonly #v = new IpView();
  readonly #onEsp: (esp: Buffer, rinfo: RemoteInfo) => void;
  readonly #onSent: (err: Error | null) => void;
  readonly #keepaliveMs: number;
  /** The transport carries ESP in TCP (RFC 9329): only 'espintcp' SAs travel over it, and no NAT-keepalives. */
  readonly #tcp: boolean;
  #keepaliveTimer: LongTimer | null = null;
  /** Payload lengths of sends not completed yet, in send order (completions come in that order): a bounded ring. */
  readonly #sentLens = new Uint32Array(SENT_RING);
  #sentHead = 0;
  #sentCount = 0;
  #tmpl = new WeakMap<PolicyTemplate, TemplateInfo>();
  /** Last SA chosen per policy, valid while the database's generation is unchanged. */
  #outCache = new WeakMap<PolicyEntry, { gen: number; e: UserlandSa }>();
  #closed = false;
  // The last #prep() verdict's SA, payload offset, length and Next Header (no object per packet).
  #pSa: UserlandSa | null = null;
  #pOff = 0;
  #pLen = 0;
  #pNh = 0;
  // sendBatch's state: the slab's, the pending run (one SA), the call's results and count.
  #tx: TxState | null = null;
  #txSa: UserlandSa | null = null;
  #txN = 0;
  #txResults: Uint8Array | null = null;
  #txSent = 0;
  #now = 0;
  readonly #onSentQuiet = (err: Error | null): void => {
    if (err) this.#c.OutError++;
  };
  // The batched receive: the sink, the batch over the transport's slab, the pending run, the packets for the sink.
  #sink: PacketBatchHandler | null = null;
  #batchedRx = false;
  #rx: EspBatch | null = null;
  #rxViews = new Map<number, Buffer>();
  #rxSa: UserlandSa | null = null;
  #rxN = 0;
  readonly #rxIndex = new Uint32Array(RX_CAPACITY);
  #outOffsets = new Uint32Array(RX_CAPACITY);
  #outLengths = new Uint32Array(RX_CAPACITY);
  #outN = 0;
  readonly #onEspBatch = (slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number, from: EspSources): void => {
    try {
      this.#receiveBatch(slab, offsets, lengths, count, from);
    } catch {
      this.#c.InError++;
      this.#rxN = 0;
      this.#rxSa = null;
      this.#outN = 0;
    }
  };

  constructor(options: UserlandEngineOptions) {
    super();
    if (options === null || typeof options !== 'object') throw typeError('options', 'an object { socket, sadb? }', options);
    const opts = readOptions(options, ['socket', 'sadb', 'keepaliveSeconds', 'outerMtu'] as const) as {
      socket?: EspTransport;
      sadb?: unknown;
      keepaliveSeconds?: unknown;
      outerMtu?: unknown;
    };
    this.#outerMtu = intOption(opts.outerMtu, 'outerMtu', 576, 65535, 0);
    const s = opts.socket;
    if (!isTransport(s)) throw typeError('socket', 'a NattSocket (createNattSocket) in userland mode', s);
    if ((s as { kernelEncap?: boolean }).kernelEncap === true) {
      throw typeError('socket', "a userland NAT-T socket (createNattSocket({ backend: 'userland' })): this one has kernel UDP_ENCAP, the kernel does its ESP", 'a kernel-mode NattSocket');
    }
    if (s.encap === 'none') {
      throw typeError('socket', "a NAT-T socket that carries ESP: this one is a plain IKE socket (encap 'none')", 'a socket with encap none');
    }
    if (opts.sadb !== undefined && !(opts.sadb instanceof UserlandSadb)) {
      throw typeError('sadb', "a UserlandSadb (openSadb({ backend: 'userland' }))", opts.sadb);
    }
    const ka = durationSeconds(opts.keepaliveSeconds, 'keepaliveSeconds', 0, 20);
    this.socket = s;
    this.sadb = (opts.sadb as UserlandSadb | undefined) ?? new UserlandSadb();
    this.#unregisterStats = this.sadb.addStatsSource(() => this.#c);
    this.#keepaliveMs = ka * 1000;
    this.#tcp = s.encap === 'espintcp';
    this.#onEsp = (esp, rinfo) => {
      // A listener on the transport never throws: whatever a datagram does is counted.
      try {
        this.receive(esp, rinfo);
      } catch {
        this.#c.InError++;
      }
    };
    this.#onSent = (err) => {
      let len = 0;
      if (this.#sentCount > 0) {
        len = this.#sentLens[this.#sentHead];
        this.#sentHead = (this.#sentHead + 1) % SENT_RING;
        this.#sentCount--;
      }
      if (err) {
        this.#c.OutError++; // failed after the send call returned (ENETUNREACH, EMSGSIZE): never counted as sent
        return;
      }
      this.#t.outPackets++;
      this.#t.outBytes += len;
    };
    s.on('esp', this.#onEsp);
    // RFC 9329 §6.6: NAT-keepalives SHOULD NOT be sent over TCP.
    if (this.#keepaliveMs > 0 && !this.#tcp) {
      // A long interval: keepaliveSeconds of 30 days means one keepalive a month, not ~900 a second.
      this.#keepaliveTimer = longInterval(() => this.#keepalives(), this.#keepaliveMs).unref();
    }
  }

  /** This engine's drop counters (/proc/net/xfrm_stat names). */
  stats(): UserlandCounters {
    return { ...this.#c };
  }

  /** What got through. */
  traffic(): EngineTraffic {
    return { ...this.#t };
  }

  /**
   * Protect and send one IP packet (IPv4 or IPv6, whole, from its IP header). Returns what happened; never throws
   * for a bad packet (it is counted). 'acquire' means a policy asked for an SA that does not exist yet: the
   * database raised 'acquire' and the packet was dropped (Linux does the same without larval queueing).
   */
  send(packet: Uint8Array): SendResult {
    if (!(packet instanceof Uint8Array)) throw typeError('packet', 'a Uint8Array holding an IP packet', packet);
    const r = this.#prep(packet, packet.length);
    if (r !== R_SENT) return RESULT_NAMES[r];
    const e = this.#pSa!;
    const c = this.#c;
    const payload = this.#pOff === 0 && this.#pLen === packet.length ? packet : packet.subarray(this.#pOff, this.#pOff + this.#pLen);
    let esp: Buffer;
    try {
      esp = e.transform!.seal(payload, this.#pNh);
    } catch (err) {
      if (err instanceof EspSequenceExhaustedError) c.OutStateSeqError++;
      else c.OutStateProtoError++;
      return 'dropped';
    }
    e.lifetime.use(payload.length);
    e.lastOut = Date.now();
    try {
      this.socket.sendEsp(esp, e.peer.port, e.peer.address, this.#onSent);
    } catch {
      c.OutError++; // e.g. an IPv6 SA on an IPv4 socket, or the socket closed
      return 'dropped';
    }
    // Counted as sent when the transport completes it (#onSent); until then its length waits here.
    if (this.#sentCount < SENT_RING) {
      this.#sentLens[(this.#sentHead + this.#sentCount) % SENT_RING] = payload.length;
      this.#sentCount++;
    }
    return 'sent';
  }

  /**
   * Everything send() decides before sealing, for the `len` bytes at the start of `packet` (which may be longer: a
   * slot of a batch): the policy, the SA, the size checks. R_SENT means "seal it": the SA, the payload's offset and
   * length in `packet` and its Next Header are left in #pSa, #pOff, #pLen, #pNh (no allocation). Counts its drops.
   */
  #prep(packet: Uint8Array, len: number): number {
    const c = this.#c;
    const v = this.#v;
    if (this.#closed || !readIpHeader(packet, v) || v.totalLength > len) {
      c.OutPolError++;
      return R_DROPPED;
    }
    const pol = this.sadb.policies.lookup('out', packet, v);
    if (!pol || pol.policy.action === 'none') {
      this.#t.outBypass++;
      return R_BYPASS;
    }
    if (pol.policy.action === 'discard') {
      c.OutPolBlock++;
      return R_BLOCKED;
    }
    const e = this.#outboundSa(pol, packet, v);
    if (!e) {
      c.OutNoStates++;
      const al = v.addrLength;
      this.sadb.acquire(pol, bytesToAddress(packet, v.srcOffset, al), bytesToAddress(packet, v.dstOffset, al));
      return R_ACQUIRE;
    }
    if (e.lifetime.dead) {
      c.OutStateExpired++;
      return R_DROPPED;
    }
    if ((e.sa.natt?.type === 'espintcp') !== this.#tcp) {
      // The SA travels in TCP and this transport is UDP, or the reverse: ESP output fails, as Linux counts it.
      c.OutStateProtoError++;
      return R_DROPPED;
    }
    let off: number;
    let plen: number;
    if (e.sa.mode === 'tunnel') {
      off = 0;
      plen = v.totalLength;
      this.#pNh = v.version === 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
    } else {
      if (v.addrLength !== e.dstBytes.length) {
        c.OutStateModeError++;
        return R_DROPPED;
      }
      off = v.headerLength;
      plen = v.totalLength - v.headerLength;
      this.#pNh = v.nextHeader;
    }
    // Refused up front, counted once: an inner packet whose ESP-in-UDP datagram would not fit in an IP packet (over
    // TCP: whose RFC 9329 frame, Length included, would pass 65535; TCP segments it, so no path-MTU check there).
    const outerHeaders = this.#tcp ? 2 : (e.dstBytes.length === 4 ? 20 : 40) + 8 + (e.sa.natt?.type === 'espinudp-non-ike' ? 8 : 0);
    const sealed = e.transform!.sealedLength(plen);
    if (sealed + outerHeaders > 65535) {
      c.OutStateModeError++;
      return R_DROPPED;
    }
    if (this.#outerMtu && !this.#tcp && sealed + outerHeaders > this.#outerMtu && dontFragment(packet, v)) {
      // Path MTU discovery (as Linux xfrm does): the sender learns the inner MTU from the ICMP error its caller sends.
      let max = this.#outerMtu - outerHeaders - e.transform!.overhead;
      while (max > 0 && e.transform!.sealedLength(max) + outerHeaders > this.#outerMtu) max--;
      this.tooBigMtu = max + (e.sa.mode === 'tunnel' ? 0 : v.headerLength);
      this.#t.tooBig++;
      return R_TOO_BIG;
    }
    this.#pSa = e;
    this.#pOff = off;
    this.#pLen = plen;
    return R_SENT;
  }

  /**
   * The batched send (the tunnel's fast path): protect `count` IP packets lying in `slab`, packet i at
   * `slab[i * slotSize, i * slotSize + lengths[i])`, sealing them IN PLACE (the slab is overwritten) and sending each
   * SA's run with one call of the transport (sendmmsg on the native NAT-T socket): no allocation, no copy per packet.
   * `headroom` bytes before `slab[0]` (in its ArrayBuffer) are the caller's to lend, as the Tun's read slab does;
   * sealing in place needs SEAL_HEADROOM bytes in front of each packet and SEAL_TAILROOM behind it (a packet without
   * that room goes the one-at-a-time way of send()). `results[i]` gets what happened to packet i (BATCH_SENT ...);
   * after BATCH_TOO_BIG, `tooBigMtus[i]` (when given) the inner MTU for the ICMP error. A packet not sealed is left as
   * it was. Returns how many were sent. Never throws for a bad packet (counted).
   */
  sendBatch(slab: Buffer, lengths: Uint32Array, count: number, slotSize: number, results: Uint8Array, headroom = 0, tooBigMtus?: Uint32Array): number {
    if (!Buffer.isBuffer(slab)) throw typeError('slab', 'a Buffer', slab);
    if (!(lengths instanceof Uint32Array)) throw typeError('lengths', 'a Uint32Array', lengths);
    if (!(results instanceof Uint8Array)) throw typeError('results', 'a Uint8Array', results);
    if (!Number.isInteger(slotSize) || slotSize < 1) throw rangeError('slotSize', 'a positive integer', slotSize);
    if (!Number.isInteger(count) || count < 0 || count > lengths.length || count > results.length || count * slotSize > slab.length) {
      throw rangeError('count', 'an integer with count slots inside the slab and entries in lengths and results', count);
    }
    if (!Number.isInteger(headroom) || headroom < 0 || headroom > slab.byteOffset) throw rangeError('headroom', `an integer in 0..${slab.byteOffset}`, headroom);
    if (tooBigMtus !== undefined && (!(tooBigMtus instanceof Uint32Array) || tooBigMtus.length < count)) {
      throw typeError('tooBigMtus', 'a Uint32Array with an entry per packet, or undefined', tooBigMtus);
    }
    if (this.#closed) {
      for (let i = 0; i < count; i++) results[i] = R_DROPPED;
      this.#c.OutPolError += count;
      return 0;
    }
    const tx = this.#txFor(slab, slotSize, headroom);
    const views = tx.views;
    this.#txResults = results;
    this.#txSent = 0;
    this.#now = Date.now();
    let floor = 0; // the first byte of `whole` not claimed by an earlier packet (its bytes, or its sealed tail)
    for (let i = 0; i < count; i++) {
      const len = lengths[i];
      const base = headroom + i * slotSize;
      if (len > slotSize) {
        this.#c.OutPolError++;
        results[i] = R_DROPPED;
        continue;
      }
      const view = views[i];
      const r = this.#prep(view, len);
      if (r !== R_SENT) {
        results[i] = r;
        if (r === R_TOO_BIG && tooBigMtus) tooBigMtus[i] = this.tooBigMtu;
        floor = base + len;
        continue;
      }
      const e = this.#pSa!;
      const t = e.transform!;
      const p = base + this.#pOff;
      const plen = this.#pLen;
      if (p - ESP_RUN_HEADROOM - t.headroom < floor || p + plen + t.tailroom(plen) > base + slotSize) {
        // No room around it to seal in place: the one-packet way (a copy), after the packets before it.
        this.#flushTx(tx);
        results[i] = RESULT_CODES[this.send(view.subarray(0, len))];
        if (results[i] === R_SENT) this.#txSent++;
        else if (results[i] === R_TOO_BIG && tooBigMtus) tooBigMtus[i] = this.tooBigMtu;
        floor = base + len;
        continue;
      }
      if (this.#txSa !== e || this.#txN === tx.batch.capacity) this.#flushTx(tx);
      const j = this.#txN++;
      this.#txSa = e;
      const m = j * ESP_META_WORDS;
      tx.batch.meta[m] = p;
      tx.batch.meta[m + 1] = plen;
      tx.batch.meta[m + 2] = this.#pNh;
      tx.index[j] = i;
      results[i] = R_SENT;
      floor = p + plen + t.tailroom(plen);
    }
    this.#flushTx(tx);
    this.#txResults = null;
    return this.#txSent;
  }

  /** Seal the pending run (one SA) in place and send it with one transport call. */
  #flushTx(tx: TxState): void {
    const n = this.#txN;
    const e = this.#txSa;
    this.#txN = 0;
    this.#txSa = null;
    if (n === 0 || e === null) return;
    const c = this.#c;
    const b = tx.batch;
    const results = this.#txResults!;
    b.count = n;
    try {
      e.transform!.sealBatch(b);
    } catch {
      c.OutStateProtoError += n; // a disposed context, a cipher failure: nothing of the run was sent
      for (let j = 0; j < n; j++) results[tx.index[j]] = R_DROPPED;
      return;
    }
    let m = 0;
    let bytes = 0;
    for (let j = 0; j < n; j++) {
      const w = j * ESP_DESC_WORDS;
      if (b.status[j] !== ESP_BATCH_OK) {
        c.OutStateSeqError++; // the sequence numbers ran out (the SA expires: 'expire' was raised)
        results[tx.index[j]] = R_DROPPED;
        continue;
      }
      const plen = b.meta[j * ESP_META_WORDS + 1];
      e.lifetime.use(plen);
      bytes += plen;
      tx.offsets[m] = b.desc[w];
      tx.lengths[m] = b.desc[w + 1];
      m++;
    }
    if (m === 0) return;
    e.lastOut = this.#now;
    let taken = 0;
    const s = this.socket;
    try {
      if (s.sendEspRun) taken = s.sendEspRun(b.slab, tx.offsets, tx.lengths, m, e.peer.port, e.peer.address);
      else {
        for (let k = 0; k < m; k++) {
          // A transport without the batched path: one send each (each a copy of its own, as it may keep it).
          s.sendEsp(Buffer.from(b.slab.subarray(tx.offsets[k], tx.offsets[k] + tx.lengths[k])), e.peer.port, e.peer.address, this.#onSentQuiet);
          taken++;
        }
      }
    } catch {
      // e.g. the socket closed
    }
    if (taken < m) c.OutError += m - taken;
    this.#t.outPackets += taken;
    this.#t.outBytes += taken === m ? bytes : Math.round((bytes * taken) / m);
    this.#txSent += taken;
  }

  /** The in-place state of one read slab (made once per slab): the batch over its ArrayBuffer, the slot views. */
  #txFor(slab: Buffer, slotSize: number, headroom: number): TxState {
    const cur = this.#tx;
    if (cur && cur.slab === slab && cur.slotSize === slotSize && cur.headroom === headroom) return cur;
    const whole = Buffer.from(slab.buffer, slab.byteOffset - headroom, slab.length + headroom);
    const slots = Math.floor(slab.length / slotSize);
    const capacity = Math.max(1, Math.min(MAX_ESP_BATCH, slots));
    const views: Buffer[] = [];
    for (let i = 0; i < slots; i++) views.push(whole.subarray(headroom + i * slotSize, headroom + (i + 1) * slotSize));
    const st: TxState = {
      slab,
      slotSize,
      headroom,
      batch: new EspBatch({ slab: whole, capacity }),
      views,
      index: new Uint32Array(capacity),
      offsets: new Uint32Array(capacity),
      lengths: new Uint32Array(capacity),
    };
    this.#tx = st;
    return st;
  }

  #template(t: PolicyTemplate): TemplateInfo {
    let info = this.#tmpl.get(t);
    if (!info) {
      info = { src: t.src ? addressToBytes(t.src) : null, dst: t.dst ? addressToBytes(t.dst) : null };
      this.#tmpl.set(t, info);
    }
    return info;
  }

  /** Does SA `e` have the addresses template `ti` (or, where it names none, the packet) asks for? No allocation. */
  #addrsOk(e: UserlandSa, ti: TemplateInfo, pkt: Uint8Array, v: IpView): boolean {
    const src = ti.src ? bytesEqual(e.srcBytes, ti.src, 0, ti.src.length) : bytesEqual(e.srcBytes, pkt, v.srcOffset, v.addrLength);
    return src && (ti.dst ? bytesEqual(e.dstBytes, ti.dst, 0, ti.dst.length) : bytesEqual(e.dstBytes, pkt, v.dstOffset, v.addrLength));
  }

  /** The SA the policy's (first) template selects for this packet, or null. */
  #outboundSa(pol: PolicyEntry, pkt: Uint8Array, v: IpView): UserlandSa | null {
    const t = pol.policy.templates![0];
    const ti = this.#template(t);
    const gen = this.sadb.generation;
    const cached = this.#outCache.get(pol);
    if (cached && cached.gen === gen && this.#addrsOk(cached.e, ti, pkt, v)) return cached.e;
    let best: UserlandSa | null = null;
    for (const e of this.sadb.entries()) {
      if (!e.usable || e.sa.protocol !== t.protocol) continue;
      if (e.sa.mode !== t.mode && e.sa.mode !== 'any') continue;
      if (t.reqid && e.sa.reqid !== t.reqid) continue;
      if (!this.#addrsOk(e, ti, pkt, v)) continue;
      if (!best || (best.state === 'dying' && e.state === 'mature') || best.state === e.state) best = e; // newest mature wins
    }
    if (best) {
      if (cached) {
        cached.gen = gen;
        cached.e = best;
      } else this.#outCache.set(pol, { gen, e: best });
    }
    return best;
  }

  /**
   * Take one ESP datagram (from the SPI on) that arrived from `rinfo`. The socket's 'esp' event calls this; it is
   * public for tests and for callers with their own transport. Returns true when the packet was accepted.
   */
  receive(datagram: Buffer | Uint8Array, from: RemoteInfo | { address: string; port: number }): boolean {
    const c = this.#c;
    if (this.#closed) return false;
    let esp: Buffer;
    if (Buffer.isBuffer(datagram)) esp = datagram;
    else if (datagram instanceof Uint8Array) esp = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.length);
    else throw typeError('esp', 'a Buffer or Uint8Array', datagram);
    let rinfo: RemoteInfo;
    try {
      if (from === null || typeof from !== 'object' || typeof from.address !== 'string' || typeof from.port !== 'number') throw new TypeError();
      // A caller with its own transport may give only address and port; 'packet' listeners get the whole shape.
      rinfo =
        'family' in from && 'size' in from ? from : { address: from.address, port: from.port, family: from.address.includes(':') ? 'IPv6' : 'IPv4', size: datagram.length };
    } catch {
      throw typeError('rinfo', 'an object { address, port }', from); // (a getter or a Proxy that throws, too)
    }
    if (esp.length < 8) {
      c.InHdrError++;
      return false;
    }
    const e = this.#inboundSa(esp.readUInt32BE(0));
    if (!e) return false;
    const r = e.transform!.open(esp);
    if (!r.ok) {
      if (r.reason === 'too-old' || r.reason === 'replayed') c.InStateSeqError++;
      else if (r.reason === 'truncated') c.InHdrError++;
      else c.InStateProtoError++;
      return false;
    }
    // Authenticated from here on: only now may the peer's address be learned (RFC 3948 §2.2, Linux esp_input).
    e.lifetime.use(r.payload.length);
    e.lastIn = Date.now();
    // Only a packet newer than every one before on this SA may move the peer: a held-back genuine packet re-sent from
    // elsewhere (authentic, inside the window, but not the newest) must not redirect the replies (D15).
    if (e.sa.natt && r.advanced && (rinfo.port !== e.inboundPeer.port || !sameAddress(rinfo.address, e.inboundPeer.address))) {
      const ev = this.sadb.newMapping(e, rinfo.address, rinfo.port); // null: 'notify' and told already
      if (ev) {
        this.#t.newMappings++;
        this.emit('newMapping', ev);
      }
    }
    if (r.nextHeader === NH_NONE) {
      this.#t.inPackets++;
      return true; // dummy packet (RFC 4303 §2.6): authenticated, then discarded
    }
    const v = this.#v;
    let pkt: Buffer;
    if (e.sa.mode === 'tunnel') {
      pkt = r.payload;
      const want = r.nextHeader === IPPROTO_IPIP ? 4 : r.nextHeader === IPPROTO_IPV6 ? 6 : 0;
      if (!want || !readIpHeader(pkt, v) || v.version !== want) {
        c.InStateModeError++;
        return false;
      }
      if (pkt.length !== v.totalLength) pkt = pkt.subarray(0, v.totalLength);
    } else {
      const src = this.#peerBytes(e);
      if (src.length !== e.dstBytes.length) {
        c.InStateModeError++;
        return false;
      }
      pkt = rebuildTransportPacket(r.payload, r.nextHeader, src, e.dstBytes);
      if (!readIpHeader(pkt, v)) {
        c.InStateModeError++;
        return false;
      }
      this.#fixChecksum(e, pkt, v);
    }
    if (e.selector && !this.#selectorOk(e, pkt, v)) {
      c.InStateMismatch++;
      return false;
    }
    if (!this.#inboundPolicyOk(e, pkt, v)) return false;
    this.#t.inPackets++;
    this.#t.inBytes += r.payload.length;
    this.emit('packet', pkt, rinfo);
    return true;
  }

  /** The SA an inbound datagram's SPI names, if it may take it now; else null, counted (as Linux xfrm_input). */
  #inboundSa(spi: number): UserlandSa | null {
    const c = this.#c;
    const list = this.sadb.bySpi(spi);
    let e: UserlandSa | null = null;
    if (list) {
      for (let k = 0; k < list.length; k++) {
        if (list[k].transform) {
          e = list[k];
          break;
        }
      }
    }
    if (!e) {
      c.InNoStates++;
      return null;
    }
    if (e.lifetime.dead || !e.usable) {
      c.InStateExpired++;
      return null;
    }
    if ((e.sa.natt?.type === 'espintcp') !== this.#tcp) {
      // The SA's encapsulation is not the one the packet came in (XfrmInStateMismatch).
      c.InStateMismatch++;
      return null;
    }
    return e;
  }

  /**
   * The batched receive path: hand inbound tunnel-mode packets to `handler` once per receive wake, in the transport's
   * receive slab (decrypted in place: no copy, no allocation per packet), instead of one 'packet' event each. Only
   * where the transport has a batched receive (the NAT-T socket on the native addon): returns true then, false when
   * 'packet' events go on. Transport-mode packets (rebuilt, so copied) still come as 'packet'. `null` turns it off.
   */
  onPackets(handler: PacketBatchHandler | null): boolean {
    if (handler !== null && typeof handler !== 'function') throw typeError('handler', 'a function or null', handler);
    if (this.#closed) return false;
    const s = this.socket;
    if (handler === null) {
      if (this.#batchedRx) {
        s.onEspBatch!(null);
        s.on('esp', this.#onEsp); // back to one event per datagram
      }
      this.#batchedRx = false;
      this.#sink = null;
      return false;
    }
    if (!this.#batchedRx) {
      if (typeof s.onEspBatch !== 'function' || !s.onEspBatch(this.#onEspBatch)) return false;
      s.off('esp', this.#onEsp); // the batch takes every ESP datagram now
      this.#batchedRx = true;
    }
    this.#sink = handler;
    return true;
  }

  /** Whether received ESP takes the batched path (onPackets()). */
  get batchedReceive(): boolean {
    return this.#batchedRx;
  }

  #receiveBatch(slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number, from: EspSources): void {
    if (this.#closed) return;
    const c = this.#c;
    let rx = this.#rx;
    if (rx === null || rx.slab !== slab) {
      rx = this.#rx = new EspBatch({ slab, capacity: RX_CAPACITY });
      this.#rxViews = new Map();
    }
    if (this.#outOffsets.length < count) {
      this.#outOffsets = new Uint32Array(count);
      this.#outLengths = new Uint32Array(count);
    }
    this.#now = Date.now();
    this.#outN = 0;
    for (let i = 0; i < count; i++) {
      const off = offsets[i];
      const len = lengths[i];
      if (len < 8) {
        c.InHdrError++;
        continue;
      }
      const e = this.#inboundSa(slab.readUInt32BE(off));
      if (!e) continue;
      if (this.#rxSa !== e || this.#rxN === RX_CAPACITY) this.#flushRx(rx, from);
      const j = this.#rxN++;
      this.#rxSa = e;
      rx.desc[j * ESP_DESC_WORDS] = off;
      rx.desc[j * ESP_DESC_WORDS + 1] = len;
      this.#rxIndex[j] = i;
    }
    this.#flushRx(rx, from);
    const n = this.#outN;
    this.#outN = 0;
    if (n > 0 && this.#sink !== null) this.#sink(slab, this.#outOffsets, this.#outLengths, n);
  }

  /** Open the pending run (one SA) in place with one cipher call; queue what passes every check for the sink. */
  #flushRx(rx: EspBatch, from: EspSources): void {
    const n = this.#rxN;
    const e = this.#rxSa;
    this.#rxN = 0;
    this.#rxSa = null;
    if (n === 0 || e === null) return;
    const c = this.#c;
    rx.count = n;
    try {
      e.transform!.openBatch(rx);
    } catch {
      c.InStateProtoError += n;
      return;
    }
    const v = this.#v;
    const tunnel = e.sa.mode === 'tunnel';
    for (let j = 0; j < n; j++) {
      const st = rx.status[j];
      if (st !== ESP_BATCH_OK) {
        const reason = ESP_DROP_REASONS[st - ESP_BATCH_DROP];
        if (reason === 'too-old' || reason === 'replayed') c.InStateSeqError++;
        else if (reason === 'truncated') c.InHdrError++;
        else c.InStateProtoError++;
        continue;
      }
      const m = j * ESP_META_WORDS;
      const poff = rx.meta[m];
      const plen = rx.meta[m + 1];
      const nh = rx.meta[m + 2];
      const i = this.#rxIndex[j];
      // Authenticated from here on: only now may the peer's address be learned (RFC 3948 §2.2), and only by a
      // packet newer than every one before (D15).
      e.lifetime.use(plen);
      e.lastIn = this.#now;
      if (e.sa.natt && rx.advanced[j] === 1) {
        const port = from.port(i);
        const address = from.address(i);
        if (port !== e.inboundPeer.port || (address !== e.inboundPeer.address && !sameAddress(address, e.inboundPeer.address))) {
          const ev = this.sadb.newMapping(e, address, port); // null: 'notify' and told already
          if (ev) {
            this.#t.newMappings++;
            this.emit('newMapping', ev);
          }
        }
      }
      if (nh === NH_NONE) {
        this.#t.inPackets++;
        continue;
      }
      if (!tunnel) {
        // Transport mode: the packet is rebuilt (a copy) and goes out as 'packet', as receive() does it.
        this.#deliverTransport(e, rx.slab.subarray(poff, poff + plen), nh, from.remoteInfo(i));
        continue;
      }
      const pkt = this.#rxView(rx.slab, poff);
      const want = nh === IPPROTO_IPIP ? 4 : nh === IPPROTO_IPV6 ? 6 : 0;
      if (!want || !readIpHeader(pkt, v) || v.version !== want || v.totalLength > plen) {
        c.InStateModeError++;
        continue;
      }
      if (e.selector && !this.#selectorOk(e, pkt, v)) {
        c.InStateMismatch++;
        continue;
      }
      if (!this.#inboundPolicyOk(e, pkt, v)) continue;
      this.#t.inPackets++;
      this.#t.inBytes += plen;
      const k = this.#outN++;
      this.#outOffsets[k] = poff;
      this.#outLengths[k] = v.totalLength;
    }
  }

  /** A view of the receive slab from `off` to its end (remembered per offset: slots repeat, so no view per packet). */
  #rxView(slab: Buffer, off: number): Buffer {
    let view = this.#rxViews.get(off);
    if (view === undefined) {
      if (this.#rxViews.size >= MAX_RX_VIEWS) this.#rxViews.clear();
      view = slab.subarray(off);
      this.#rxViews.set(off, view);
    }
    return view;
  }

  /** The end of receive() for a transport-mode payload: rebuild, fix the checksum, check, emit 'packet'. */
  #deliverTransport(e: UserlandSa, payload: Buffer, nh: number, rinfo: RemoteInfo): void {
    const c = this.#c;
    const v = this.#v;
    const src = this.#peerBytes(e);
    if (src.length !== e.dstBytes.length) {
      c.InStateModeError++;
      return;
    }
    const pkt = rebuildTransportPacket(payload, nh, src, e.dstBytes);
    if (!readIpHeader(pkt, v)) {
      c.InStateModeError++;
      return;
    }
    this.#fixChecksum(e, pkt, v);
    if (e.selector && !this.#selectorOk(e, pkt, v)) {
      c.InStateMismatch++;
      return;
    }
    if (!this.#inboundPolicyOk(e, pkt, v)) return;
    this.#t.inPackets++;
    this.#t.inBytes += payload.length;
    this.emit('packet', pkt, rinfo);
  }

  #selectorOk(e: UserlandSa, pkt: Uint8Array, v: IpView): boolean {
    const s = e.selector!;
    // A selector of the other family does not apply (4in6 / 6in4 tunnels).
    return s.src.family !== v.version || selectorMatches(s, pkt, v);
  }

  #cache(e: UserlandSa): SaCache {
    let c = this.#saCache.get(e);
    if (!c) {
      c = { oa: undefined, peerAddress: '', peerBytes: null };
      this.#saCache.set(e, c);
    }
    return c;
  }

  /** The inbound peer's address as bytes, cached until a new mapping moves it. */
  #peerBytes(e: UserlandSa): Uint8Array {
    const c = this.#cache(e);
    if (c.peerBytes === null || c.peerAddress !== e.inboundPeer.address) {
      c.peerBytes = addressToBytes(e.inboundPeer.address);
      c.peerAddress = e.inboundPeer.address;
    }
    return c.peerBytes;
  }

  /** RFC 3948 §3.1.2: with NAT-OA, the incremental update; without, recomputation (ESP already authenticated it). */
  #fixChecksum(e: UserlandSa, pkt: Buffer, v: IpView): void {
    const c = this.#cache(e);
    if (c.oa === undefined) c.oa = this.#originalAddresses(e);
    if (c.oa && fixL4ChecksumForNat(pkt, v, c.oa.src, c.oa.dst)) return;
    recomputeL4Checksum(pkt, v);
  }

  /**
   * The addresses the peer computed its checksums with, from the SA's NAT-OA (once per SA): the peer's original
   * source is the OA that is not our address; the original destination is ours as the peer knew it (the other OA
   * when given, else the SA's destination). null when the SA has no NAT-OA.
   */
  #originalAddresses(e: UserlandSa): { src: Uint8Array; dst: Uint8Array } | null {
    const oa = e.sa.natt?.oa;
    const given = [oa?.initiator, oa?.responder].filter((a): a is string => !!a);
    if (given.length === 0) return null;
    const srcOa = given.find((a) => !sameAddress(a, e.sa.dst)) ?? e.inboundPeer.address;
    const dstOa = given.find((a) => a !== srcOa) ?? e.sa.dst;
    try {
      return { src: addressToBytes(srcOa), dst: addressToBytes(dstOa) };
    } catch {
      return null; // a malformed NAT-OA: recompute instead
    }
  }

  /** The inbound policy check (Linux __xfrm_policy_check): counts and returns false on a drop. */
  #inboundPolicyOk(e: UserlandSa, pkt: Uint8Array, v: IpView): boolean {
    const c = this.#c;
    const tunnel = e.sa.mode === 'tunnel';
    const pol = this.sadb.policies.lookup('in', pkt, v);
    if (!pol) {
      if (tunnel) c.InNoPols++;
      return !tunnel;
    }
    if (pol.policy.action === 'discard') {
      c.InPolBlock++;
      return false;
    }
    if (pol.policy.action === 'none') {
      if (tunnel) c.InTmplMismatch++;
      return !tunnel;
    }
    const t = pol.policy.templates![0];
    const ti = this.#template(t);
    const ok =
      t.protocol === e.sa.protocol &&
      (t.mode === e.sa.mode || e.sa.mode === 'any') &&
      (!t.reqid || t.reqid === e.sa.reqid) &&
      (t.mode !== 'tunnel' || ((!ti.dst || bytesEqual(e.dstBytes, ti.dst, 0, ti.dst.length)) && (!ti.src || bytesEqual(e.srcBytes, ti.src, 0, ti.src.length))));
    if (!ok) c.InTmplMismatch++;
    return ok;
  }

  /**
   * Send a keepalive to each NAT-T peer of an outbound SA that no ESP went to during the last interval. An SA is
   * inbound when it only ever opened packets, or when its destination is this socket (its address, or any address
   * when bound to the unspecified one, and its port).
   */
  #keepalives(): void {
    const now = Date.now();
    let local: { address: string; port: number };
    try {
      local = this.socket.address();
    } catch {
      return; // socket closed
    }
    const anyAddr = local.address === '0.0.0.0' || local.address === '::';
    const last = new Map<string, { address: string; port: number; lastOut: number }>();
    for (const e of this.sadb.entries()) {
      if (!e.usable || !e.sa.natt || (e.lastIn > 0 && e.lastOut === 0)) continue;
      if (e.sa.natt.dport === local.port && (anyAddr || sameAddress(e.sa.dst, local.address))) continue; // inbound
      const k = `${e.peer.address}|${e.peer.port}`;
      const d = last.get(k);
      if (d) d.lastOut = Math.max(d.lastOut, e.lastOut);
      else last.set(k, { address: e.peer.address, port: e.peer.port, lastOut: e.lastOut });
    }
    for (const d of last.values()) {
      if (now - d.lastOut <= this.#keepaliveMs) continue; // ESP went there within the interval
      try {
        this.socket.sendKeepalive(d.port, d.address);
        this.#t.keepalivesSent++;
      } catch (err) {
        this.#c.OutError++;
        if (this.listenerCount('error') > 0) this.emit('error', err as Error); // never an unhandled 'error' from a timer
      }
    }
  }

  /** Stop listening to the socket and stop keepalives. The socket and the database stay open (they are the caller's). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.off('esp', this.#onEsp);
    if (this.#batchedRx) this.socket.onEspBatch!(null);
    this.#batchedRx = false;
    this.#sink = null;
    this.#unregisterStats();
    this.#keepaliveTimer?.clear();
    this.#keepaliveTimer = null;
  }
}
