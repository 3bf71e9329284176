// The pcapng file format (draft-ietf-opsawg-pcapng): section header, interface description, enhanced packet and interface statistics blocks.
//
// Every block is built little-endian (the byte-order magic says so, any reader swaps as needed) into one reused
// scratch buffer; PcapngWriter hands each block to a sink (a file descriptor by default) as soon as it is complete,
// so a capture cut short by a crash is readable up to its last whole block.

import * as fs from 'node:fs';
import { NattError, rangeError, typeError } from '../errors';
import { intOption, oneOf, readOptions, stringOption } from '../core/options';

/** LINKTYPE_RAW: each packet starts with its IPv4 or IPv6 header (what a SOCK_DGRAM packet socket reads). */
export const LINKTYPE_RAW = 101;
/** LINKTYPE_ETHERNET. */
export const LINKTYPE_ETHERNET = 1;

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const ISB = 0x00000005;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_HARDWARE = 2;
const SHB_OS = 3;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const EPB_FLAGS = 2;
const ISB_STARTTIME = 2;
const ISB_ENDTIME = 3;
const ISB_IFRECV = 4;
const ISB_IFDROP = 5;
const ISB_OSDROP = 7;
const ISB_USRDELIV = 8;

/** A packet's direction, as the EPB flags word says it (bits 0-1). */
export type PacketDirection = 'in' | 'out' | undefined;

/** Where blocks go: a file descriptor (written synchronously, whole) or any function taking the bytes. */
export type PcapngSink = number | ((block: Uint8Array) => void);

/** What the section header says about the capture. */
export interface SectionInfo {
  hardware?: string;
  os?: string;
  application?: string;
  comment?: string;
}

/** One interface of the section: pcapng numbers them from 0 in the order they are described. */
export interface InterfaceInfo {
  linkType: number;
  /** Longest packet captured (0: no limit). */
  snapLength?: number;
  name?: string;
  description?: string;
}

/** Counters of an interface statistics block; each is a 64-bit counter (omitted when undefined). */
export interface InterfaceStatistics {
  /** Packets the interface (here: the packet socket's filter) accepted. */
  received?: bigint;
  /** Packets the kernel dropped for this capture (its socket buffer was full). */
  dropped?: bigint;
  /** Packets dropped by the capturing process itself. */
  osDropped?: bigint;
  /** Packets written to the file. */
  delivered?: bigint;
  /** Capture start and end, in nanoseconds since the epoch. */
  startNs?: bigint;
  endNs?: bigint;
}

const pad4 = (n: number): number => (n + 3) & ~3;

const U64_MAX = 2n ** 64n - 1n;

/** A 64-bit counter or time (`undefined` stays absent); else a TypeError / RangeError naming `field`. */
function u64(v: unknown, field: string): bigint | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'bigint') throw typeError(field, 'a bigint from 0 to 2^64-1', v);
  if (v < 0n || v > U64_MAX) throw rangeError(field, 'a bigint from 0 to 2^64-1', v);
  return v;
}

/** A time part: a finite number ≥ 0 (seconds, nanoseconds). */
function timePart(v: unknown, field: string): number {
  if (typeof v !== 'number') throw typeError(field, 'a finite number from 0 to 2^53-1', v);
  if (!Number.isFinite(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) throw rangeError(field, 'a finite number from 0 to 2^53-1', v);
  return v;
}

/**
 * Builds pcapng blocks into one scratch buffer and passes each to the sink. Not a stream: writes are synchronous, so
 * the order of blocks in the file is the order of calls.
 */
export class PcapngWriter {
  #sink: (block: Uint8Array) => void;
  #buf: Buffer;
  #at = 0;
  #interfaces = 0;
  #snap: number[] = [];
  #closed = false;

  /** `sink`: a file descriptor opened for writing, or a function given each block (the bytes are reused after it returns). */
  constructor(sink: PcapngSink, section: SectionInfo = {}) {
    if (typeof sink === 'number') {
      if (!Number.isInteger(sink) || sink < 0) throw typeError('sink', 'a file descriptor or a function', sink);
      const fd = sink;
      this.#sink = (b) => {
        let off = 0;
        while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
      };
    } else if (typeof sink === 'function') {
      this.#sink = sink;
    } else {
      throw typeError('sink', 'a file descriptor or a function', sink);
    }
    const o = readOptions(section, ['hardware', 'os', 'application', 'comment'] as const, 'section');
    const info: SectionInfo = {
      hardware: stringOption(o.hardware, 'section.hardware', { allowEmpty: true }, undefined),
      os: stringOption(o.os, 'section.os', { allowEmpty: true }, undefined),
      application: stringOption(o.application, 'section.application', { allowEmpty: true }, undefined),
      comment: stringOption(o.comment, 'section.comment', { allowEmpty: true }, undefined),
    };
    section = info;
    this.#buf = Buffer.allocUnsafe(256 * 1024 + 256);
    this.#begin(SHB);
    this.#u32(BYTE_ORDER_MAGIC);
    this.#u16(1); // major
    this.#u16(0); // minor
    this.#u32(0xffffffff); // section length: not given
    this.#u32(0xffffffff);
    this.#stringOpt(SHB_HARDWARE, section.hardware);
    this.#stringOpt(SHB_OS, section.os);
    this.#stringOpt(SHB_USERAPPL, section.application);
    this.#stringOpt(OPT_COMMENT, section.comment);
    this.#endOptions(section.hardware ?? section.os ?? section.application ?? section.comment);
    this.#finish();
  }

  /** Describe one more interface; returns its id (for packet()). Timestamps are in nanoseconds (if_tsresol 9). */
  addInterface(info: InterfaceInfo): number {
    this.#open();
    if (info === undefined) throw typeError('info', 'an object { linkType, snapLength?, name?, description? }', info);
    const o = readOptions(info, ['linkType', 'snapLength', 'name', 'description'] as const, 'info');
    const linkType = intOption(o.linkType, 'linkType', 0, 0xffff);
    const snap = intOption(o.snapLength, 'snapLength', 0, 0x7fffffff, 0);
    const name = stringOption(o.name, 'name', { allowEmpty: true }, undefined);
    const description = stringOption(o.description, 'description', { allowEmpty: true }, undefined);
    this.#begin(IDB);
    this.#u16(linkType);
    this.#u16(0);
    this.#u32(snap);
    this.#stringOpt(IF_NAME, name);
    this.#stringOpt(IF_DESCRIPTION, description);
    this.#opt(IF_TSRESOL, 1);
    this.#buf[this.#at] = 9;
    this.#at += 4;
    this.#endOptions(true);
    this.#finish();
    this.#snap.push(snap);
    return this.#interfaces++;
  }

  /**
   * One enhanced packet block. `data` is what was captured (cut to the interface's snap length here), `length` the
   * packet's length on the wire (default: data's); the time is seconds and nanoseconds since the epoch.
   */
  packet(iface: number, seconds: number, nanoseconds: number, data: Uint8Array, length?: number, direction?: PacketDirection): void {
    this.#open();
    this.#checkIface(iface);
    timePart(seconds, 'seconds');
    timePart(nanoseconds, 'nanoseconds');
    if (!(data instanceof Uint8Array)) throw typeError('data', 'a Buffer or Uint8Array', data);
    const wire = intOption(length, 'length', 0, 0xffffffff, data.length);
    oneOf(direction, 'direction', ['in', 'out'] as const, undefined);
    const snap = this.#snap[iface];
    let captured = data.length;
    if (snap > 0 && captured > snap) captured = snap;
    if (captured > this.#buf.length - 64) captured = this.#buf.length - 64;
    const ns = BigInt(Math.trunc(seconds)) * 1_000_000_000n + BigInt(Math.trunc(nanoseconds));
    this.#begin(EPB);
    this.#u32(iface);
    this.#u32(Number((ns >> 32n) & 0xffffffffn));
    this.#u32(Number(ns & 0xffffffffn));
    this.#u32(captured);
    this.#u32(Math.max(wire, captured));
    this.#buf.set(data.subarray(0, captured), this.#at);
    const padded = pad4(captured);
    this.#buf.fill(0, this.#at + captured, this.#at + padded);
    this.#at += padded;
    if (direction) {
      this.#opt(EPB_FLAGS, 4);
      this.#buf.writeUInt32LE(direction === 'in' ? 1 : 2, this.#at);
      this.#at += 4;
      this.#endOptions(true);
    }
    this.#finish();
  }

  /** An interface statistics block for `iface` at time `ns` (nanoseconds since the epoch). */
  statistics(iface: number, ns: bigint, stats: InterfaceStatistics): void {
    this.#open();
    this.#checkIface(iface);
    if (u64(ns, 'ns') === undefined) throw typeError('ns', 'a bigint from 0 to 2^64-1', ns);
    if (stats === undefined) throw typeError('stats', 'an object of counters', stats);
    const o = readOptions(stats, ['received', 'dropped', 'osDropped', 'delivered', 'startNs', 'endNs'] as const, 'stats');
    const st: InterfaceStatistics = {
      received: u64(o.received, 'stats.received'),
      dropped: u64(o.dropped, 'stats.dropped'),
      osDropped: u64(o.osDropped, 'stats.osDropped'),
      delivered: u64(o.delivered, 'stats.delivered'),
      startNs: u64(o.startNs, 'stats.startNs'),
      endNs: u64(o.endNs, 'stats.endNs'),
    };
    stats = st;
    this.#begin(ISB);
    this.#u32(iface);
    this.#u32(Number((ns >> 32n) & 0xffffffffn));
    this.#u32(Number(ns & 0xffffffffn));
    let any = false;
    const counter = (code: number, v: bigint | undefined): void => {
      if (v === undefined) return;
      any = true;
      this.#opt(code, 8);
      this.#u32(Number((v >> 32n) & 0xffffffffn));
      this.#u32(Number(v & 0xffffffffn));
    };
    counter(ISB_STARTTIME, stats.startNs);
    counter(ISB_ENDTIME, stats.endNs);
    counter(ISB_IFRECV, stats.received);
    counter(ISB_IFDROP, stats.dropped);
    counter(ISB_OSDROP, stats.osDropped);
    counter(ISB_USRDELIV, stats.delivered);
    this.#endOptions(any);
    this.#finish();
  }

  /** How many interfaces were described. */
  get interfaces(): number {
    return this.#interfaces;
  }

  /** No more blocks (the sink is not closed: it is the caller's). */
  close(): void {
    this.#closed = true;
  }

  #checkIface(iface: unknown): void {
    if (typeof iface !== 'number') throw typeError('iface', `an interface id 0..${this.#interfaces - 1}`, iface);
    if (!Number.isInteger(iface) || iface < 0 || iface >= this.#interfaces) throw rangeError('iface', `an interface id 0..${this.#interfaces - 1}`, iface);
  }

  #open(): void {
    if (this.#closed) throw new NattError('ERR_NATT_CLOSED', 'this pcapng writer is closed');
  }

  #begin(type: number): void {
    this.#at = 0;
    this.#u32(type);
    this.#u32(0); // total length, set by #finish
  }

  #finish(): void {
    const total = this.#at + 4;
    this.#buf.writeUInt32LE(total, 4);
    this.#u32(total);
    this.#sink(this.#buf.subarray(0, this.#at));
  }

  #u16(v: number): void {
    this.#buf.writeUInt16LE(v, this.#at);
    this.#at += 2;
  }

  #u32(v: number): void {
    this.#buf.writeUInt32LE(v >>> 0, this.#at);
    this.#at += 4;
  }

  #opt(code: number, length: number): void {
    this.#u16(code);
    this.#u16(length);
  }

  #stringOpt(code: number, text: string | undefined): void {
    if (text === undefined) return;
    const bytes = Buffer.from(text, 'utf8').subarray(0, 1024);
    this.#opt(code, bytes.length);
    this.#buf.set(bytes, this.#at);
    const padded = pad4(bytes.length);
    this.#buf.fill(0, this.#at + bytes.length, this.#at + padded);
    this.#at += padded;
  }

  #endOptions(any: unknown): void {
    if (any !== undefined && any !== false) this.#opt(OPT_ENDOFOPT, 0);
  }
}
