// UserlandEngine: the ESP-in-UDP datapath over a NattSocket: policy → SA → ESP → UDP out; UDP → SA → ESP → packet in.

import { EventEmitter } from 'node:events';
import type { NewMappingEvent, PolicyTemplate } from '../sadb/types';
import { typeError } from '../errors';
import { durationSeconds, intOption, readOptions } from '../core/options';
import { dontFragment } from '../ip/icmp';
import { longInterval, type LongTimer } from '../core/timers';
import { EspSequenceExhaustedError } from '../esp';
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
import type { EspTransport, RemoteInfo } from '../transport';

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
    const c = this.#c;
    const v = this.#v;
    if (this.#closed || !readIpHeader(packet, v)) {
      c.OutPolError++;
      return 'dropped';
    }
    const pol = this.sadb.policies.lookup('out', packet, v);
    if (!pol || pol.policy.action === 'none') {
      this.#t.outBypass++;
      return 'bypass';
    }
    if (pol.policy.action === 'discard') {
      c.OutPolBlock++;
      return 'blocked';
    }
    const e = this.#outboundSa(pol, packet, v);
    if (!e) {
      c.OutNoStates++;
      const al = v.addrLength;
      this.sadb.acquire(pol, bytesToAddress(packet, v.srcOffset, al), bytesToAddress(packet, v.dstOffset, al));
      return 'acquire';
    }
    if (e.lifetime.dead) {
      c.OutStateExpired++;
      return 'dropped';
    }
    if ((e.sa.natt?.type === 'espintcp') !== this.#tcp) {
      // The SA travels in TCP and this transport is UDP, or the reverse: ESP output fails, as Linux counts it.
      c.OutStateProtoError++;
      return 'dropped';
    }
    let payload: Uint8Array;
    let nh: number;
    if (e.sa.mode === 'tunnel') {
      payload = packet.length === v.totalLength ? packet : packet.subarray(0, v.totalLength);
      nh = v.version === 4 ? IPPROTO_IPIP : IPPROTO_IPV6;
    } else {
      if (v.addrLength !== e.dstBytes.length) {
        c.OutStateModeError++;
        return 'dropped';
      }
      payload = packet.subarray(v.headerLength, v.totalLength);
      nh = v.nextHeader;
    }
    // Refused up front, counted once: an inner packet whose ESP-in-UDP datagram would not fit in an IP packet (over
    // TCP: whose RFC 9329 frame, Length included, would pass 65535; TCP segments it, so no path-MTU check there).
    const outerHeaders = this.#tcp ? 2 : (e.dstBytes.length === 4 ? 20 : 40) + 8 + (e.sa.natt?.type === 'espinudp-non-ike' ? 8 : 0);
    const sealed = e.transform!.sealedLength(payload.length);
    if (sealed + outerHeaders > 65535) {
      c.OutStateModeError++;
      return 'dropped';
    }
    if (this.#outerMtu && !this.#tcp && sealed + outerHeaders > this.#outerMtu && dontFragment(packet, v)) {
      // Path MTU discovery (as Linux xfrm does): the sender learns the inner MTU from the ICMP error its caller sends.
      let max = this.#outerMtu - outerHeaders - e.transform!.overhead;
      while (max > 0 && e.transform!.sealedLength(max) + outerHeaders > this.#outerMtu) max--;
      this.tooBigMtu = max + (e.sa.mode === 'tunnel' ? 0 : v.headerLength);
      this.#t.tooBig++;
      return 'too-big';
    }
    let esp: Buffer;
    try {
      esp = e.transform!.seal(payload, nh);
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
    const spi = esp.readUInt32BE(0);
    const list = this.sadb.bySpi(spi);
    let e: UserlandSa | undefined;
    if (list) {
      for (let i = 0; i < list.length; i++) {
        if (list[i].transform) {
          e = list[i];
          break;
        }
      }
    }
    if (!e) {
      c.InNoStates++;
      return false;
    }
    if (e.lifetime.dead || !e.usable) {
      c.InStateExpired++;
      return false;
    }
    if ((e.sa.natt?.type === 'espintcp') !== this.#tcp) {
      // Linux xfrm_input: the SA's encapsulation is not the one the packet came in (XfrmInStateMismatch).
      c.InStateMismatch++;
      return false;
    }
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
      this.#t.newMappings++;
      const ev = this.sadb.newMapping(e, rinfo.address, rinfo.port);
      this.emit('newMapping', ev);
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
    this.#unregisterStats();
    this.#keepaliveTimer?.clear();
    this.#keepaliveTimer = null;
  }
}
