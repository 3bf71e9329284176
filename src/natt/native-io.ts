// NativeIo: the addon's UdpSocket under a NattSocket: the receive slab and records, address caches, the EAGAIN queue.

import { NattError, NattSystemError, errnoName, errnoNumber } from '../errors';
import { bytesToAddress } from '../ip/address';
import { ifNameToIndex, openUdpSocket } from '../native/binding';
import { withAdvice } from '../native/advice';
import { UDP_FLAG_LOCAL_KNOWN, UDP_FLAG_TRUNCATED, UDP_RECORD_BYTES, type NativeUdpSocket } from '../native/types';
import type { EspBatch, RemoteInfo } from '../transport';

/** Datagrams per readable wake, and the bytes of each slot: any UDP payload fits, so nothing is ever cut. */
export const RECV_SLOTS = 64;
export const RECV_SLOT_SIZE = 65536;
/** Datagrams one UDP GRO receive may hold at most (the kernel coalesces up to 64). */
export const RECV_GRO_SEGMENTS = 64;
/** Datagrams that wait for the socket to drain after EAGAIN, at most; beyond, a send fails (counted, reported). */
export const MAX_SEND_QUEUE = 1024;
/** Sends per sendmmsg batch slab (sendBatch): its bytes and entries. */
const BATCH_BYTES = 256 * 1024;
const BATCH_ENTRIES = 64;
/** Distinct destination / source address texts whose bytes are remembered (then the cache starts over). */
const MAX_ADDRESS_CACHE = 256;
/** Received addresses whose text is remembered (direct-mapped by the address bytes). */
const TEXT_CACHE = 64;

const W = UDP_RECORD_BYTES / 4; // int32 words per record

/** What the owner of a NativeIo hears. */
export interface IoSink {
  /** One datagram: `len` bytes of `slab` from `off`; `slot` names its record for remoteInfo(). */
  datagram(slab: Buffer, off: number, len: number, slot: number, truncated: boolean): void;
  /** A receive error (the socket stays open). */
  error(err: Error): void;
  /** The wake's datagrams have all been given (a batch consumer delivers now). */
  end(): void;
}

/** Called when a send completed: counts and reports. Never throws. */
export type Completion = (err: Error | null, bytes: number) => void;

interface Queued {
  a: Uint8Array;
  b: Uint8Array | null;
  dst: Uint8Array;
  port: number;
  scope: number;
  src: Uint8Array | null;
  done: Completion;
}

/** Address text ↔ bytes for one family: parsed once per distinct text. */
class AddressBytes {
  readonly #family: 4 | 6;
  readonly #bytes = new Map<string, { bytes: Uint8Array; scope: number }>();
  constructor(family: 4 | 6) {
    this.#family = family;
  }

  /** The bytes and scope id of `text` (checked by the caller to be of this family). */
  get(text: string): { bytes: Uint8Array; scope: number } {
    let e = this.#bytes.get(text);
    if (e) return e;
    if (this.#bytes.size >= MAX_ADDRESS_CACHE) this.#bytes.clear();
    e = this.#parse(text);
    this.#bytes.set(text, e);
    return e;
  }

  #parse(text: string): { bytes: Uint8Array; scope: number } {
    if (this.#family === 4) {
      const p = text.split('.');
      return { bytes: Uint8Array.of(+p[0], +p[1], +p[2], +p[3]), scope: 0 };
    }
    const pct = text.indexOf('%');
    const base = pct >= 0 ? text.slice(0, pct) : text;
    let scope = 0;
    if (pct >= 0) {
      const zone = text.slice(pct + 1);
      scope = /^\d+$/.test(zone) ? Number(zone) : ifNameToIndex(zone);
    }
    return { bytes: ipv6Bytes(base), scope };
  }
}

/** RFC 4291 text (checked by node:net isIP first) → 16 bytes; an embedded IPv4 tail is allowed. */
function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  let t = text;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t);
  let tail4: number[] | null = null;
  if (v4) {
    tail4 = [+v4[1], +v4[2], +v4[3], +v4[4]];
    t = t.slice(0, v4.index) + '0:0';
  }
  const dbl = t.indexOf('::');
  const head = (dbl >= 0 ? t.slice(0, dbl) : t).split(':').filter((x) => x !== '');
  const rest = dbl >= 0 ? t.slice(dbl + 2).split(':').filter((x) => x !== '') : [];
  const groups = [...head, ...new Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  for (let i = 0; i < 8; i++) {
    const g = parseInt(groups[i], 16);
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  }
  if (tail4) out.set(tail4, 12);
  return out;
}

/** Received address bytes → text, remembered in a small direct-mapped cache (no string built per datagram). */
class AddressText {
  readonly #keys = new Int32Array(TEXT_CACHE * 5); // 4 address words + scope
  readonly #text: (string | undefined)[] = new Array<string | undefined>(TEXT_CACHE).fill(undefined);

  /** The text of the address in `words` at word `w` (4 words; the first only for IPv4), with its scope id. */
  text(words: Int32Array, bytes: Uint8Array, w: number, family: 4 | 6, scope: number): string {
    const a = words[w];
    const b = family === 6 ? words[w + 1] : 0;
    const c = family === 6 ? words[w + 2] : 0;
    const d = family === 6 ? words[w + 3] : 0;
    const i = ((a ^ b ^ c ^ d ^ (d >>> 13) ^ (a >>> 7) ^ scope) >>> 0) % TEXT_CACHE;
    const k = i * 5;
    const keys = this.#keys;
    const cached = this.#text[i];
    if (cached !== undefined && keys[k] === a && keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d && keys[k + 4] === scope) {
      return cached;
    }
    let t = bytesToAddress(bytes, w * 4, family === 4 ? 4 : 16);
    if (family === 6 && scope !== 0) t = `${t}%${scope}`;
    keys[k] = a;
    keys[k + 1] = b;
    keys[k + 2] = c;
    keys[k + 3] = d;
    keys[k + 4] = scope;
    this.#text[i] = t;
    return t;
  }
}

/**
 * The addon's UdpSocket with natt's receive geometry (RECV_SLOTS slots of RECV_SLOT_SIZE bytes) and send rules:
 * a send the OS takes completes at once; one that meets a full buffer (EAGAIN) waits in a bounded queue, in order,
 * until the socket is writable; past MAX_SEND_QUEUE it fails (ENOBUFS), counted by its completion.
 */
export class NativeIo {
  readonly family: 4 | 6;
  readonly localAddressKnown: boolean;
  readonly #sock: NativeUdpSocket;
  readonly #slab: Buffer;
  readonly #meta: Int32Array;
  readonly #metaBytes: Uint8Array;
  readonly #sink: IoSink;
  readonly #dst: AddressBytes;
  readonly #srcText = new AddressText();
  readonly #localText = new AddressText();
  readonly #familyName: 'IPv4' | 'IPv6';
  readonly #localPort: number;
  #queue: Queued[] = [];
  #waiting = false;
  #closed = false;
  #batchSlab: Uint8Array | null = null;
  #batchDesc: Int32Array | null = null;
  #batchBytes: Uint8Array | null = null;
  #batchIndex: Int32Array | null = null;
  /** Sends deferred by EAGAIN (they waited in the queue). */
  deferred = 0;

  /** Adopt the bound `fd`; on a throw the fd is still the caller's. */
  constructor(fd: number, family: 4 | 6, localPort: number, sink: IoSink) {
    this.family = family;
    this.#familyName = family === 4 ? 'IPv4' : 'IPv6';
    this.#localPort = localPort;
    this.#sink = sink;
    this.#dst = new AddressBytes(family);
    const ab = new ArrayBuffer(RECV_SLOTS * RECV_SLOT_SIZE);
    this.#slab = Buffer.from(ab);
    const mb = new ArrayBuffer(RECV_SLOTS * UDP_RECORD_BYTES);
    this.#meta = new Int32Array(mb);
    this.#metaBytes = new Uint8Array(mb);
    this.#sock = openUdpSocket(
      fd,
      family,
      this.#slab,
      RECV_SLOT_SIZE,
      this.#meta,
      (count) => this.#onRead(count),
      (err) => this.#sink.error(err),
      () => this.#onWritable(),
    );
    this.localAddressKnown = this.#sock.localAddressKnown;
  }

  get fd(): number {
    return this.#sock.fd;
  }

  /** The receive slab (datagrams of the current wake lie in it). */
  get slab(): Buffer {
    return this.#slab;
  }

  #onRead(count: number): void {
    const meta = this.#meta;
    for (let i = 0; i < count && !this.#closed; i++) {
      const r = i * W;
      const len = meta[r];
      const seg = meta[r + 6];
      const truncated = (meta[r + 1] & UDP_FLAG_TRUNCATED) !== 0;
      if (seg <= 0 || seg >= len) {
        this.#sink.datagram(this.#slab, i * RECV_SLOT_SIZE, len, i, truncated);
        continue;
      }
      // UDP GRO: the slot holds datagrams of `seg` bytes, the last maybe shorter; each is delivered on its own.
      this.#groReceives++;
      let n = 0;
      for (let off = 0; off < len && n < RECV_GRO_SEGMENTS && !this.#closed; off += seg, n++) {
        this.#sink.datagram(this.#slab, i * RECV_SLOT_SIZE + off, Math.min(seg, len - off), i, truncated);
      }
      this.#groSegments += n;
      if (n * seg < len) this.#groOverflow++; // more than the kernel's bound: the rest is not delivered (counted)
    }
    if (!this.#closed) this.#sink.end();
  }

  #groReceives = 0;
  #groSegments = 0;
  #groOverflow = 0;
  #gsoReason = 'not asked for (gso: false)';
  #groReason = 'not asked for (gro: false)';

  /**
   * Ask for UDP GSO / GRO (Linux); remember why one is off. `zeroChecksum`: the socket sends checksum 0, which the
   * kernel does not segment.
   */
  setOffload(gso: boolean, gro: boolean, zeroChecksum: boolean): void {
    let on = 0;
    try {
      on = this.#sock.setOffload(gso && !zeroChecksum, gro);
    } catch (e) {
      this.#gsoReason = this.#groReason = `setOffload failed: ${(e as Error).message}`;
      return;
    }
    const st = this.#sock.offload;
    const why = (asked: boolean, bit: number, errno: number, what: string): string => {
      if (on & bit) return '';
      if (!asked) return `not asked for (${what}: false)`;
      if (process.platform !== 'linux') return `${what} is Linux only`;
      return errno ? `the kernel refused it (${errnoName(errno)}: ${what === 'gso' ? 'UDP_SEGMENT needs Linux 4.18' : 'UDP_GRO needs Linux 5.0'})` : 'unavailable';
    };
    this.#gsoReason = gso && zeroChecksum ? 'the socket sends UDP checksum 0 (zeroChecksum), which the kernel does not segment' : why(gso, 1, st.gsoError, 'gso');
    this.#groReason = why(gro, 2, st.groError, 'gro');
  }

  /** The offloads on now, and why one is off (GSO turns itself off when the kernel answers EIO). */
  offload(): { gso: boolean; gro: boolean; gsoReason: string; groReason: string } {
    if (this.#closed) return { gso: false, gro: false, gsoReason: 'closed', groReason: 'closed' };
    const st = this.#sock.offload;
    let gsoReason = this.#gsoReason;
    if (!st.gso && gsoReason === '') gsoReason = `turned off: the kernel refused a GSO send (${errnoName(st.gsoError)}: the device cannot checksum or segment it)`;
    return { gso: st.gso, gro: st.gro, gsoReason: st.gso ? '' : gsoReason, groReason: st.gro ? '' : this.#groReason };
  }

  /** What the offloads did. */
  offloadStats(): { gsoSends: number; gsoSegments: number; gsoRetries: number; groReceives: number; groSegments: number; groOverflow: number } {
    const st = this.#closed ? null : this.#sock.offload;
    if (st) this.#lastGso = st;
    const g = this.#lastGso;
    return { gsoSends: g?.gsoSends ?? 0, gsoSegments: g?.gsoSegments ?? 0, gsoRetries: g?.gsoRetries ?? 0, groReceives: this.#groReceives, groSegments: this.#groSegments, groOverflow: this.#groOverflow };
  }

  #lastGso: { gsoSends: number; gsoSegments: number; gsoRetries: number } | null = null;

  /** The sender's port of the datagram in record `slot` (valid during the wake). */
  sourcePort(slot: number): number {
    return this.#meta[slot * W + 3];
  }

  /** The sender's address text of the datagram in record `slot` (cached: no string per datagram). */
  sourceAddress(slot: number): string {
    const meta = this.#meta;
    const r = slot * W;
    return this.#srcText.text(meta, this.#metaBytes, r + 8, meta[r + 2] === 6 ? 6 : 4, meta[r + 4]);
  }

  /** The sender of the datagram in record `slot` (valid during the datagram call), `size` its payload bytes. */
  remoteInfo(slot: number, size: number): RemoteInfo {
    const meta = this.#meta;
    const r = slot * W;
    const family = meta[r + 2] === 6 ? 6 : 4;
    const info: RemoteInfo = {
      address: this.#srcText.text(meta, this.#metaBytes, r + 8, family, meta[r + 4]),
      family: family === 4 ? 'IPv4' : 'IPv6',
      port: meta[r + 3],
      size,
    };
    if (meta[r + 1] & UDP_FLAG_LOCAL_KNOWN) {
      info.localAddress = this.#localText.text(meta, this.#metaBytes, r + 12, family, 0);
      info.localPort = this.#localPort;
    }
    return info;
  }

  /** The bytes of a destination or source address text of this family (parsed once). */
  addressBytes(text: string): { bytes: Uint8Array; scope: number } {
    return this.#dst.get(text);
  }

  /**
   * Send `a` then `b` as one datagram to `address`:`port`, from `local` when given. `done` is called exactly once:
   * at once when the OS took it or refused it, later when it waited for the socket to drain.
   */
  send(a: Uint8Array, b: Uint8Array | null, port: number, address: string, local: string | undefined, done: Completion): void {
    const d = this.#dst.get(address);
    const src = local === undefined ? null : this.#dst.get(local).bytes;
    if (this.#queue.length > 0) {
      this.#enqueue({ a, b, dst: d.bytes, port, scope: d.scope, src, done });
      return;
    }
    let n: number;
    try {
      n = this.#sock.send(a, b, this.family, d.bytes, port, d.scope, src);
    } catch (err) {
      done(err as Error, 0);
      return;
    }
    if (n >= 0) {
      done(null, n);
      return;
    }
    this.#enqueue({ a, b, dst: d.bytes, port, scope: d.scope, src, done });
  }

  #enqueue(q: Queued): void {
    if (this.#queue.length >= MAX_SEND_QUEUE) {
      q.done(sendQueueFull(), 0);
      return;
    }
    this.deferred++;
    this.#queue.push(q);
    this.#want();
  }

  #want(): void {
    if (this.#waiting || this.#closed) return;
    try {
      this.#sock.wantWritable();
      this.#waiting = true;
    } catch (err) {
      this.#failQueue(err as Error);
    }
  }

  #onWritable(): void {
    this.#waiting = false;
    const q = this.#queue;
    let i = 0;
    for (; i < q.length; i++) {
      const e = q[i];
      let n: number;
      try {
        n = this.#sock.send(e.a, e.b, this.family, e.dst, e.port, e.scope, e.src);
      } catch (err) {
        e.done(err as Error, 0);
        continue;
      }
      if (n < 0) break; // full again
      e.done(null, n);
    }
    this.#queue = i === q.length ? [] : q.slice(i);
    if (this.#queue.length > 0) this.#want();
  }

  #failQueue(err: Error): void {
    const q = this.#queue;
    this.#queue = [];
    for (const e of q) e.done(err, 0);
  }

  /**
   * Send the batch's datagrams (each `prefix` + packet) with sendmmsg (Linux; one sendmsg each elsewhere), copied into
   * a reused slab. `done` is called once per entry. Entries the socket could not take (EAGAIN) join the queue, in order.
   */
  sendMany(batch: EspBatch, prefix: Uint8Array | null, done: Completion): void {
    const count = batch.count;
    if (this.#queue.length > 0) {
      for (let i = 0; i < count; i++) this.#sendOne(batch, i, prefix, done);
      return;
    }
    const slab = (this.#batchSlab ??= new Uint8Array(BATCH_BYTES));
    const desc = (this.#batchDesc ??= new Int32Array(BATCH_ENTRIES * W));
    const descBytes = (this.#batchBytes ??= new Uint8Array(desc.buffer));
    const which = (this.#batchIndex ??= new Int32Array(BATCH_ENTRIES));
    const pre = prefix ? prefix.length : 0;
    let i = 0;
    while (i < count) {
      // Fill the slab with as many as fit (a datagram is at most 64 KiB, so at least one always does).
      let n = 0;
      let off = 0;
      for (; i < count && n < BATCH_ENTRIES; i++) {
        const p = batch.packets[i];
        const len = pre + p.length;
        if (len > MAX_UDP_PAYLOAD) {
          done(errnoError(EMSGSIZE, 'sendmmsg'), 0); // sendmsg would say the same
          continue;
        }
        if (off + len > slab.length) break;
        if (prefix) slab.set(prefix, off);
        slab.set(p, off + pre);
        const a = this.#dst.get(batch.addresses[i]);
        const r = n * W;
        desc[r] = off;
        desc[r + 1] = len;
        desc[r + 2] = this.family;
        desc[r + 3] = batch.ports[i];
        desc[r + 4] = a.scope;
        desc[r + 5] = 0;
        desc[r + 6] = 0;
        descBytes.set(a.bytes, r * 4 + 32);
        which[n++] = i;
        off += len;
      }
      let sent: number;
      try {
        sent = this.#sock.sendBatch(slab, desc, 0, n);
      } catch (err) {
        for (let k = 0; k < n; k++) done(err as Error, 0);
        continue;
      }
      for (let k = 0; k < sent; k++) {
        const st = desc[k * W + 6];
        if (st >= 0) done(null, st);
        else done(errnoError(-st, 'sendmmsg'), 0);
      }
      if (sent < n) {
        // The buffer is full: the rest of this fill, then every later entry, wait for the socket, in order.
        for (let k = sent; k < n; k++) this.#sendOne(batch, which[k], prefix, done);
        for (; i < count; i++) this.#sendOne(batch, i, prefix, done);
        return;
      }
    }
  }

  /**
   * Send `count` datagrams lying in the caller's `slab` (datagram i: `prefix` + `slab[offsets[i], +lengths[i])`; the
   * prefix is written into the `prefix.length` bytes in front of it) to one peer, with sendmmsg straight from the
   * slab: no copy unless the buffer is full, when the rest are copied into the bounded queue. `done(null|err, bytes)`
   * is called for entries that failed or waited; returns how many the OS took at once (their completion is the
   * caller's to count).
   */
  sendRun(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, prefix: Uint8Array | null, port: number, address: string, done: Completion): number {
    const a = this.#dst.get(address);
    const pre = prefix ? prefix.length : 0;
    if (this.#queue.length > 0) {
      for (let i = 0; i < count; i++) this.#queueCopy(slab, offsets[i] - pre, lengths[i] + pre, prefix, a, port, done);
      return 0;
    }
    let desc = this.#runDesc;
    if (desc === null || desc.length < count * W) {
      desc = this.#runDesc = new Int32Array(Math.max(count, 64) * W);
      this.#runBytes = new Uint8Array(desc.buffer);
      this.#runFilled = 0;
    }
    const bytes = this.#runBytes!;
    if (this.#runAddr !== a.bytes || this.#runPort !== port) {
      // Another peer: its address is written into the records again (the same peer's stays from the last run).
      this.#runAddr = a.bytes;
      this.#runPort = port;
      this.#runFilled = 0;
    }
    for (let i = 0; i < count; i++) {
      const r = i * W;
      const off = offsets[i] - pre;
      if (prefix) slab.set(prefix, off);
      desc[r] = off;
      desc[r + 1] = lengths[i] + pre;
      if (i >= this.#runFilled) {
        desc[r + 2] = this.family;
        desc[r + 3] = port;
        desc[r + 4] = a.scope;
        desc[r + 5] = 0;
        bytes.set(a.bytes, r * 4 + 32);
      }
      desc[r + 6] = 0;
    }
    if (count > this.#runFilled) this.#runFilled = count;
    let sent: number;
    try {
      sent = this.#sock.sendBatch(slab, desc, 0, count);
    } catch (err) {
      for (let k = 0; k < count; k++) done(err as Error, 0);
      return 0;
    }
    let ok = 0;
    for (let k = 0; k < sent; k++) {
      const st = desc[k * W + 6];
      if (st >= 0) ok++;
      else done(errnoError(-st, 'sendmmsg'), 0);
    }
    for (let k = sent; k < count; k++) this.#queueCopy(slab, desc[k * W], desc[k * W + 1], null, a, port, done);
    return ok;
  }

  #runDesc: Int32Array | null = null;
  #runBytes: Uint8Array | null = null;
  #runAddr: Uint8Array | null = null;
  #runPort = 0;
  #runFilled = 0;

  /** A datagram of a run that must wait for the socket: copied out of the caller's slab into the bounded queue. */
  #queueCopy(slab: Uint8Array, off: number, len: number, prefix: Uint8Array | null, a: { bytes: Uint8Array; scope: number }, port: number, done: Completion): void {
    if (prefix) slab.set(prefix, off);
    this.#enqueue({ a: Buffer.from(slab.subarray(off, off + len)), b: null, dst: a.bytes, port, scope: a.scope, src: null, done });
  }

  #sendOne(batch: EspBatch, i: number, prefix: Uint8Array | null, done: Completion): void {
    const p = batch.packets[i];
    this.send(prefix ?? p, prefix ? p : null, batch.ports[i], batch.addresses[i], undefined, done);
  }

  ref(): void {
    this.#sock.ref();
  }

  unref(): void {
    this.#sock.unref();
  }

  /** Close the fd; sends still queued fail with ERR_SOCKET_DGRAM_NOT_RUNNING. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock.close();
    if (this.#queue.length) this.#failQueue(new NattError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'the NAT-T socket closed before the datagram could be sent'));
  }
}

const EMSGSIZE = errnoNumber('EMSGSIZE') ?? 90;
const ENOBUFS = errnoNumber('ENOBUFS') ?? 105;
/** The largest UDP payload of one datagram (IPv6's; IPv4's 65507 is the kernel's to refuse). */
const MAX_UDP_PAYLOAD = 65527;

/** A Node-shaped error for `errno` (positive), with advice. */
function errnoError(errno: number, syscall: string): Error {
  return withAdvice({ code: errnoName(errno), errno: -errno, syscall }, 'udp') as Error;
}

function sendQueueFull(): Error {
  return new NattSystemError(
    ENOBUFS,
    'sendmsg',
    `the socket's send buffer is full and ${MAX_SEND_QUEUE} datagrams already wait for it: this one was not sent (send slower, or raise SO_SNDBUF)`,
  );
}
