// The only module that loads the native addon: prebuilds/<platform>-<arch>/ or `bindings` (the newer first); lazy; errors get advice.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { NattError } from '../errors';
import { withAdvice, type ErrorContext } from './advice';
import type { NativeAddon, NativeErrorFields, NativeMessageSocket, NativeTun, NativeUdpSocket, PeerCred } from './types';

export interface NativeStatus {
  loaded: boolean;
  /** The file that was loaded. */
  path?: string;
  /** Why it could not be loaded. */
  reason?: string;
}

// Package root: dist/native/binding.js and src/native/binding.ts both sit two levels below it.
const root = path.join(__dirname, '..', '..');

let cached: { addon: NativeAddon | null; status: NativeStatus } | undefined;

function prebuiltPath(): string | undefined {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.node'));
  } catch {
    return undefined;
  }
  // prebuildify 6 --napi writes <package name>.node (seen: prebuilds/linux-x64/natt.node); others use *.napi.node.
  // scripts/install.js makes the same choice when it decides whether the prebuild fits.
  names.sort((a, b) => Number(b.includes('napi')) - Number(a.includes('napi')) || a.localeCompare(b));
  return names.length ? path.join(dir, names[0]) : undefined;
}

function mtimeOf(file: string | undefined): number | undefined {
  if (!file) return undefined;
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

type Loaded = { addon: NativeAddon; status: NativeStatus };

function loadBuild(): Loaded {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bindings = require('bindings') as (opts: { bindings: string; module_root: string }) => NativeAddon;
  const addon = bindings({ bindings: 'natt', module_root: root });
  // bindings does not say which file it found; the require cache does.
  const file = Object.keys(require.cache).find((k) => path.basename(k) === 'natt.node' && require.cache[k]?.exports === addon);
  return { addon, status: { loaded: true, path: file ?? path.join(root, 'build', 'Release', 'natt.node') } };
}

/**
 * Which addon to load: a prebuild (prebuilds/<platform>-<arch>/, shipped in the package; found without any install
 * step) or a local build (build/Release/natt.node by node-gyp, found by `bindings`). When both exist the newer file
 * is tried first, so a prebuild left over from `npm run prebuild` never shadows a fresh `npm run build:native`, and
 * an installed package rebuilt with `npm rebuild natt --build-from-source` uses that build. The other is the
 * fallback when the first does not load (a glibc prebuild on musl, say).
 */
function load(): { addon: NativeAddon | null; status: NativeStatus } {
  if (process.env.NATT_DISABLE_NATIVE === '1') {
    return { addon: null, status: { loaded: false, reason: 'disabled by NATT_DISABLE_NATIVE=1' } };
  }
  const reasons: string[] = [];
  const attempt = (what: string, fn: () => Loaded): Loaded | undefined => {
    try {
      return fn();
    } catch (e) {
      reasons.push(`${what}: ${String((e as Error).message).split('\n')[0]}`);
      return undefined;
    }
  };
  const pre = prebuiltPath();
  const tryPrebuild = (): Loaded | undefined =>
    pre ? attempt(`prebuild ${path.relative(root, pre)}`, () => ({ addon: require(pre) as NativeAddon, status: { loaded: true, path: pre } })) : undefined;
  const tryBuild = (): Loaded | undefined => attempt('build/', loadBuild);
  const preTime = mtimeOf(pre);
  const buildTime = mtimeOf(path.join(root, 'build', 'Release', 'natt.node'));
  const buildFirst = buildTime !== undefined && (preTime === undefined || buildTime > preTime);
  const found = buildFirst ? (tryBuild() ?? tryPrebuild()) : (tryPrebuild() ?? tryBuild());
  return found ?? { addon: null, status: { loaded: false, reason: reasons.join('; ') } };
}

/** The addon, or null when it cannot be loaded (see nativeStatus() for why). Loads on first call. */
export function loadNative(): NativeAddon | null {
  cached ??= load();
  return cached.addon;
}

/** Whether the addon loaded, from where, or why not. */
export function nativeStatus(): NativeStatus {
  cached ??= load();
  return cached.status;
}

/** The addon, or a NattError 'ERR_NATT_NO_NATIVE' saying how to get it. */
export function requireNative(): NativeAddon {
  const addon = loadNative();
  if (addon) return addon;
  throw new NattError(
    'ERR_NATT_NO_NATIVE',
    `the natt native addon is not available (${nativeStatus().reason}): build it with \`npm rebuild natt\` ` +
      "(needs python3, make and a C++ compiler), or use backend 'userland'",
  );
}

/** openEncapSocket with errors re-thrown as NattSystemError with advice (encapType 0: a plain UDP socket). */
export function openEncapSocket(family: 4 | 6, address: string, port: number, encapType: number, noCheck = false): number {
  const addon = requireNative();
  try {
    return addon.openEncapSocket(family, address, port, encapType, noCheck);
  } catch (e) {
    throw withAdvice(e, encapType === 0 ? 'udp' : 'udp-encap', { encapType, port });
  }
}

/** getsockopt(SO_NO_CHECK) read-back: whether IPv4 datagrams leave this socket with UDP checksum 0. */
export function getNoCheck(fd: number): boolean {
  const addon = requireNative();
  try {
    return addon.getNoCheck(fd);
  } catch (e) {
    throw withAdvice(e, 'udp');
  }
}

/** getsockopt(UDP_ENCAP) read-back, errors with advice. */
export function getEncap(fd: number): number {
  const addon = requireNative();
  try {
    return addon.getEncap(fd);
  } catch (e) {
    throw withAdvice(e, 'udp-encap');
  }
}

/** The peer credentials of a connected Unix socket's fd (SO_PEERCRED and kin), errors with advice. */
export function getPeerCred(fd: number): PeerCred {
  return withAdviceFor('peercred')(() => requireNative().getPeerCred(fd))();
}

/** Wrap a function so that what it throws is re-thrown with advice for `ctx`. */
const withAdviceFor =
  (ctx: ErrorContext) =>
  <A extends unknown[], R>(fn: (...a: A) => R) =>
  (...a: A): R => {
    try {
      return fn(...a);
    } catch (e) {
      throw withAdvice(e, ctx);
    }
  };

function contextOf(addon: NativeAddon, family: number, protocol: number): ErrorContext {
  const c = addon.constants;
  if (family === c.AF_KEY) return 'pfkey';
  if (family === c.AF_NETLINK) return protocol === c.NETLINK_XFRM ? 'xfrm' : protocol === c.NETLINK_ROUTE ? 'rtnetlink' : 'netlink';
  return 'other';
}

/**
 * onError with advice added. Made apart from openMessageSocket's and openTun's closures: the native object holds its
 * callbacks as GC roots, and a callback sharing a scope with the object would keep it alive after JS dropped it.
 */
function adviceOnError(onError: (err: Error) => void, ctx: ErrorContext): (err: Error & NativeErrorFields) => void {
  return (err) => onError(withAdvice(err, ctx) as Error);
}

/**
 * Open a kernel message socket (PF_KEY: AF_KEY, SOCK_RAW, PF_KEY_V2; XFRM: AF_NETLINK, SOCK_RAW, NETLINK_XFRM).
 * Every error, thrown or passed to onError, is a NattSystemError with advice for that kind of socket. The socket is
 * not kept alive by itself: dropped without close(), it is collected and its fd closed (the native destructor).
 */
export function openMessageSocket(
  family: number,
  type: number,
  protocol: number,
  onMessage: (msg: Buffer) => void,
  onError: (err: Error) => void,
  onWritable?: () => void,
): NativeMessageSocket {
  const addon = requireNative();
  const ctx = contextOf(addon, family, protocol);
  let sock: NativeMessageSocket;
  try {
    sock = new addon.MessageSocket(family, type, protocol, onMessage, adviceOnError(onError, ctx), onWritable);
  } catch (e) {
    throw withAdvice(e, ctx);
  }
  const guard = withAdviceFor(ctx);
  return {
    get fd() {
      return sock.fd;
    },
    bind: guard((sa: Uint8Array) => sock.bind(sa)),
    setsockopt: guard((level: number, name: number, value: number) => sock.setsockopt(level, name, value)),
    send: guard((msg: Uint8Array) => sock.send(msg)),
    wantWritable: guard(() => sock.wantWritable()),
    ref: () => sock.ref(),
    unref: () => sock.unref(),
    close: () => sock.close(),
  };
}

/** One captured datagram as the packet socket read it: bytes (cut at the receive buffer), sockaddr_ll, time, length. */
export type CapturedPacket = (bytes: Buffer, from: Buffer, seconds: number, nanoseconds: number, length: number) => void;

/** The capture side of a packet socket: a BPF filter, the kernel's counters, ref/unref, close. */
export interface NativePacketSocket {
  readonly fd: number;
  bind(sockaddr: Uint8Array): void;
  attachFilter(program: Uint8Array): void;
  getsockoptBytes(level: number, name: number, length: number): Buffer;
  ref(): void;
  unref(): void;
  close(): void;
}

/**
 * Open a Linux packet socket (AF_PACKET, SOCK_DGRAM: network-layer packets) in capture mode: kernel receive times
 * (SO_TIMESTAMPNS), the sockaddr_ll of each packet. It is opened with protocol 0, so it receives nothing until bind()
 * names a protocol (sockaddr_ll with ETH_P_ALL): attach the filter first, and no unfiltered packet is ever queued.
 * Errors carry the 'capture' advice (privilege: CAP_NET_RAW); ENOPROTOOPT where the OS or an old addon has none.
 */
export function openPacketSocket(onPacket: CapturedPacket, onError: (err: Error) => void): NativePacketSocket {
  const addon = requireNative();
  const c = addon.constants;
  const guard = withAdviceFor('capture');
  const family = c.AF_PACKET ?? -1;
  const proto = c.ETH_P_ALL ?? -1;
  if (family < 0 || proto < 0 || typeof (addon.MessageSocket.prototype as { recvFrom?: unknown }).recvFrom !== 'function') {
    throw withAdvice(Object.assign(new Error('no packet socket'), { code: 'ENOPROTOOPT', errno: -92, syscall: 'socket' }), 'capture');
  }
  let sock: NativeMessageSocket;
  try {
    sock = new addon.MessageSocket(family, c.SOCK_DGRAM, 0, onPacket as (msg: Buffer) => void, adviceOnError(onError, 'capture'));
  } catch (e) {
    throw withAdvice(e, 'capture');
  }
  try {
    sock.recvFrom!(true);
    if ((c.SO_TIMESTAMPNS ?? -1) >= 0) sock.setsockopt(c.SOL_SOCKET, c.SO_TIMESTAMPNS!, 1);
  } catch (e) {
    sock.close();
    throw withAdvice(e, 'capture');
  }
  return {
    get fd() {
      return sock.fd;
    },
    bind: guard((sa: Uint8Array) => sock.bind(sa)),
    attachFilter: guard((p: Uint8Array) => sock.attachFilter!(p)),
    getsockoptBytes: guard((level: number, name: number, length: number) => sock.getsockoptBytes!(level, name, length)),
    ref: () => sock.ref(),
    unref: () => sock.unref(),
    close: () => sock.close(),
  };
}

/**
 * Adopt a bound UDP fd (from openEncapSocket) as a NativeUdpSocket: batched receive into `slab` / `meta`, sendmsg and
 * sendmmsg out. Every error, thrown or passed to onError, is a NattSystemError with advice. On a throw the fd is still
 * the caller's (close it with closeFd).
 */
export function openUdpSocket(
  fd: number,
  family: 4 | 6,
  slab: Uint8Array,
  slotSize: number,
  meta: Int32Array,
  onRead: (count: number) => void,
  onError: (err: Error) => void,
  onWritable: () => void,
): NativeUdpSocket {
  const addon = requireNative();
  let sock: NativeUdpSocket;
  try {
    sock = new addon.UdpSocket(fd, family, slab, slotSize, meta, onRead, (err) => onError(withAdvice(err, 'udp') as Error), onWritable);
  } catch (e) {
    throw withAdvice(e, 'udp');
  }
  // Written out (no rest parameters): send is the per-packet path and must not allocate.
  return {
    get fd() {
      return sock.fd;
    },
    get localAddressKnown() {
      return sock.localAddressKnown;
    },
    send(a, b, fam, address, port, scopeId, source) {
      try {
        return sock.send(a, b, fam, address, port, scopeId, source);
      } catch (e) {
        throw withAdvice(e, 'udp');
      }
    },
    sendBatch(slabIn, desc, start, count) {
      try {
        return sock.sendBatch(slabIn, desc, start, count);
      } catch (e) {
        throw withAdvice(e, 'udp');
      }
    },
    wantWritable() {
      try {
        sock.wantWritable();
      } catch (e) {
        throw withAdvice(e, 'udp');
      }
    },
    setOffload(gso, gro) {
      try {
        return sock.setOffload(gso, gro);
      } catch (e) {
        throw withAdvice(e, 'udp');
      }
    },
    get offload() {
      return sock.offload;
    },
    ref: () => sock.ref(),
    unref: () => sock.unref(),
    close: () => sock.close(),
  };
}

/** getsockname(2) on an fd the addon opened, errors with advice. */
export function getSockName(fd: number): { family: 4 | 6; address: string; port: number } {
  const addon = requireNative();
  try {
    return addon.getSockName(fd);
  } catch (e) {
    throw withAdvice(e, 'udp');
  }
}

/** if_nametoindex(3) (0: no such interface); 0 without the addon. */
export function ifNameToIndex(name: string): number {
  return loadNative()?.ifNameToIndex(name) ?? 0;
}

/**
 * Open a TUN device (Linux): `name` '' or a template ('natt%d') lets the kernel pick; `flags` is the TUNSETIFF word
 * (IFF_TUN | IFF_NO_PI, plus IFF_TUN_EXCL to refuse an existing name, IFF_VNET_HDR for the fast path). Every error,
 * thrown or passed to onError, is a NattSystemError with TUN advice (CAP_NET_ADMIN, CONFIG_TUN, name in use ...).
 */
export function openTun(
  name: string,
  flags: number,
  onPackets: (count: number) => void,
  onWritable: () => void,
  onError: (err: Error) => void,
): NativeTun {
  const addon = requireNative();
  if (addon.constants.IFF_TUN < 0) {
    throw withAdvice(Object.assign(new Error('open failed: ENOTSUP'), { code: 'ENOTSUP', errno: -95, syscall: 'open' }), 'tun');
  }
  let tun: NativeTun;
  try {
    tun = new addon.Tun(name, flags, onPackets, onWritable, adviceOnError(onError, 'tun'));
  } catch (e) {
    throw withAdvice(e, 'tun');
  }
  const guard = withAdviceFor('tun');
  // Methods on the per-packet path go straight to the addon (no wrapper closure); the rest get advice.
  return {
    get fd() {
      return tun.fd;
    },
    get name() {
      return tun.name;
    },
    get oversize() {
      return tun.oversize;
    },
    setSlab: guard((slab: Uint8Array, slotSize: number, lengths: Uint32Array) => tun.setSlab(slab, slotSize, lengths)),
    pause: () => tun.pause(),
    resume: guard(() => tun.resume()),
    write: (packet: Uint8Array, offset?: number, length?: number) => tun.write(packet, offset, length),
    writeBatch: (slab, offsets, lengths, start, count, status) => tun.writeBatch(slab, offsets, lengths, start, count, status),
    writevBatch: (headers, headerLength, slab, pieceOffsets, pieceLengths, pieceCounts, start, count, status) =>
      tun.writevBatch(headers, headerLength, slab, pieceOffsets, pieceLengths, pieceCounts, start, count, status),
    setOffload: (flags: number) => tun.setOffload(flags),
    waitWritable: guard(() => tun.waitWritable()),
    setSndbuf: guard((bytes: number) => tun.setSndbuf(bytes)),
    ref: () => tun.ref(),
    unref: () => tun.unref(),
    close: () => tun.close(),
  };
}
