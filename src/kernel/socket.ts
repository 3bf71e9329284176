// A kernel message socket (native, or a test's stand-in) as the request layer's transport, owned by one client:
// full buffer → wait for writable; a client dropped without close() has its socket closed when it is collected.

import type { MessageTransport } from './requests';
import { typeError } from '../errors';

/** What a kernel message client needs from its socket: the native MessageSocket's shape (bind/setsockopt optional). */
export interface KernelSocket {
  /** Send one whole message: bytes sent, or -1 when the socket's buffer is full (nothing sent). */
  send(msg: Uint8Array): number;
  /** Ask for one onWritable call when send() may succeed again (absent: the client retries on the next turn). */
  wantWritable?(): void;
  bind?(sockaddr: Uint8Array): void;
  setsockopt?(level: number, name: number, value: number): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/** Builds a client's socket: the native one by default, a scripted one in tests (the clients' `transport` option). */
export type KernelSocketFactory = (
  onMessage: (msg: Buffer) => void,
  onError: (err: Error) => void,
  onWritable: () => void,
) => KernelSocket;

const SOCKET_METHODS = ['send', 'ref', 'unref', 'close'] as const;

/** What a caller's `transport` factory built must be a socket: send, ref, unref and close at least. */
function checkSocket(s: unknown): KernelSocket {
  const expected = 'a function returning a socket { send, ref, unref, close }';
  if (s === null || typeof s !== 'object') throw typeError('transport', expected, s);
  try {
    for (const m of SOCKET_METHODS) if (typeof (s as Record<string, unknown>)[m] !== 'function') throw new TypeError(m);
  } catch {
    throw typeError('transport', expected, s);
  }
  return s as KernelSocket;
}

/**
 * Clients with a request outstanding (the transport is ref'd): held here, so a pending request keeps its client
 * alive until it settles even when the caller keeps only the promise.
 */
const busy = new Set<object>();

/** Closes the socket of a client that became unreachable without close(), so its fd does not stay open until exit. */
const orphans = new FinalizationRegistry<KernelSocket>((socket) => {
  try {
    socket.close();
  } catch {
    // a finalizer must not throw: the socket is gone either way
  }
});

/**
 * The callbacks the socket keeps. They reach the client only through a WeakRef: the native socket holds them as GC
 * roots, so a strong path from them to the client would keep the client (and the socket) alive forever. Made here,
 * apart from openKernelTransport's other closures, so that they share no scope (and no captured variable) with them.
 */
function weakCallbacks<O extends object>(
  weak: WeakRef<O>,
  onMessage: (owner: O, msg: Buffer) => void,
  onError: (owner: O, err: Error) => void,
  writable: { cb: (() => void) | null },
): { message: (msg: Buffer) => void; error: (err: Error) => void; writable: () => void } {
  return {
    message: (msg) => {
      const o = weak.deref();
      if (o) onMessage(o, msg);
    },
    error: (err) => {
      const o = weak.deref();
      if (o) onError(o, err);
    },
    writable: () => {
      const cb = writable.cb;
      writable.cb = null;
      cb?.();
    },
  };
}

/**
 * Open `factory`'s socket for `owner` and wrap it as a MessageTransport. The socket starts unref'd (the request layer
 * refs it while requests are outstanding, and `owner` is held strongly for that time). Messages and errors go to
 * `onMessage(owner, ...)` / `onError(owner, ...)` (pass functions that do not close over the owner: static methods).
 * When `owner` is collected without having closed the returned socket, the socket is closed.
 */
export function openKernelTransport<O extends object>(
  factory: KernelSocketFactory,
  owner: O,
  onMessage: (owner: O, msg: Buffer) => void,
  onError: (owner: O, err: Error) => void,
): { socket: KernelSocket; transport: MessageTransport } {
  const weak = new WeakRef(owner);
  const writable: { cb: (() => void) | null } = { cb: null };
  const cbs = weakCallbacks(weak, onMessage, onError, writable);
  const raw = checkSocket(factory(cbs.message, cbs.error, cbs.writable));
  raw.unref();
  const token = {};
  orphans.register(owner, raw, token);
  const socket: KernelSocket = {
    send: (msg) => raw.send(msg),
    ref: () => raw.ref(),
    unref: () => raw.unref(),
    close: () => {
      orphans.unregister(token);
      const o = weak.deref();
      if (o) busy.delete(o);
      raw.close();
    },
  };
  if (raw.wantWritable) socket.wantWritable = () => raw.wantWritable?.();
  if (raw.bind) socket.bind = (sockaddr) => raw.bind?.(sockaddr);
  if (raw.setsockopt) socket.setsockopt = (level, name, value) => raw.setsockopt?.(level, name, value);
  const transport: MessageTransport = {
    send: (msg) => raw.send(msg) >= 0,
    onceWritable: (cb) => {
      writable.cb = cb;
      if (raw.wantWritable) raw.wantWritable();
      else setImmediate(cbs.writable);
    },
    ref: () => {
      raw.ref();
      const o = weak.deref();
      if (o) busy.add(o);
    },
    unref: () => {
      raw.unref();
      const o = weak.deref();
      if (o) busy.delete(o);
    },
  };
  return { socket, transport };
}
