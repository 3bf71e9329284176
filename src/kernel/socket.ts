// A kernel message socket (native, or a test's stand-in) as the request layer's transport: full buffer → wait for writable.

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
 * Open `factory`'s socket and wrap it as a MessageTransport. The socket starts unref'd (the request layer refs it while
 * requests are outstanding).
 */
export function openKernelTransport(
  factory: KernelSocketFactory,
  onMessage: (msg: Buffer) => void,
  onError: (err: Error) => void,
): { socket: KernelSocket; transport: MessageTransport } {
  let writable: (() => void) | null = null;
  const fire = (): void => {
    const cb = writable;
    writable = null;
    cb?.();
  };
  const socket = checkSocket(factory(onMessage, onError, fire));
  socket.unref();
  const transport: MessageTransport = {
    send: (msg) => socket.send(msg) >= 0,
    onceWritable: (cb) => {
      writable = cb;
      if (socket.wantWritable) socket.wantWritable();
      else setImmediate(fire);
    },
    ref: () => socket.ref(),
    unref: () => socket.unref(),
  };
  return { socket, transport };
}
