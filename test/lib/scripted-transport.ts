// A scripted stand-in for a kernel message socket (the `transport` option of the Xfrm and PfKey clients): records what
// the client sends, answers through a script, and delivers bytes as the kernel would.

/** The transport shape both clients take (XfrmTransport; PfKeyTransport is the same less bind/setsockopt). */
export interface ScriptedSocket {
  bind(sockaddr: Uint8Array): void;
  send(msg: Uint8Array): number;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface Scripted {
  /** Pass as `transport` to the client's options. */
  transport: (onMessage: (msg: Buffer) => void, onError: (err: Error) => void) => ScriptedSocket;
  /** Every message the client sent, as bytes. */
  sent: Buffer[];
  /** Deliver bytes to the client on a later turn of the event loop (as a socket read would). */
  push(bytes: Uint8Array): void;
  /** Deliver bytes now, synchronously. */
  deliver(bytes: Uint8Array): void;
  /** Report a socket-level error to the client. */
  fail(err: Error): void;
  /** Whether the client holds the event loop open (ref) and whether it closed the socket. */
  state: { refd: boolean; closed: boolean };
}

/**
 * A transport whose `answer` is called with each message the client sends and a `push` to reply with; without
 * `answer` nothing is ever answered (timeouts).
 */
export function scriptedTransport(answer?: (bytes: Buffer, push: (reply: Uint8Array) => void) => void): Scripted {
  let onMessage: ((msg: Buffer) => void) | null = null;
  let onError: ((err: Error) => void) | null = null;
  const sent: Buffer[] = [];
  const state = { refd: false, closed: false };
  const deliver = (bytes: Uint8Array): void => {
    if (!onMessage) throw new Error('the client has not opened the transport yet');
    if (!state.closed) onMessage(Buffer.from(bytes));
  };
  const push = (bytes: Uint8Array): void => void setImmediate(() => deliver(bytes));
  const transport = (m: (msg: Buffer) => void, e: (err: Error) => void): ScriptedSocket => {
    onMessage = m;
    onError = e;
    return {
      bind: () => undefined,
      send: (b) => {
        const copy = Buffer.from(b);
        sent.push(copy);
        answer?.(copy, push);
        return b.length;
      },
      ref: () => void (state.refd = true),
      unref: () => void (state.refd = false),
      close: () => void (state.closed = true),
    };
  };
  return {
    transport,
    sent,
    push,
    deliver,
    fail: (err) => {
      if (!onError) throw new Error('the client has not opened the transport yet');
      onError(err);
    },
    state,
  };
}
