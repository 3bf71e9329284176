// The addon's surface as TypeScript sees it: the only description of what native/ exports.

/**
 * Errors thrown by the addon are plain `Error`s with Node's system-error fields:
 * `code` ('EPERM'), `errno` (negative, as Node reports it) and `syscall` ('socket', 'bind', 'setsockopt', ...).
 * src/native/binding.ts re-throws them as NattSystemError with advice.
 */
export interface NativeErrorFields {
  code: string;
  errno: number;
  syscall: string;
}

/** Numbers that differ by OS, read from the system headers at build time (-1 where the OS lacks one). */
export interface NativeConstants {
  AF_INET: number;
  AF_INET6: number;
  AF_KEY: number;
  AF_NETLINK: number;
  SOCK_RAW: number;
  SOCK_DGRAM: number;
  PF_KEY_V2: number;
  NETLINK_XFRM: number;
  IPPROTO_UDP: number;
  UDP_ENCAP: number;
  UDP_ENCAP_ESPINUDP_NON_IKE: number;
  UDP_ENCAP_ESPINUDP: number;
  SOL_SOCKET: number;
  SO_RCVBUF: number;
  SO_SNDBUF: number;
}

/**
 * A kernel message socket (PF_KEY, netlink): datagrams in, datagrams out, nothing parsed.
 * Whole messages are delivered to `onMessage` from libuv when the fd is readable (uv_poll, bounded burst).
 */
export interface NativeMessageSocket {
  readonly fd: number;
  /** bind(2) with a raw sockaddr built by the caller (e.g. sockaddr_nl with multicast groups). */
  bind(sockaddr: Uint8Array): void;
  /** setsockopt(2) with an int value. */
  setsockopt(level: number, name: number, value: number): void;
  /**
   * send(2) one whole message. Returns the bytes sent, or -1 when the socket's buffer is full (EAGAIN: nothing was
   * sent; call wantWritable() and send again from onWritable). Throws on any other errno.
   */
  send(msg: Uint8Array): number;
  /** Poll for writability once: onWritable (the constructor's sixth argument) is called when send() may succeed. */
  wantWritable(): void;
  /** Keep / stop keeping the event loop alive while the socket is open. */
  ref(): void;
  unref(): void;
  /** Stop polling and close the fd. Idempotent. */
  close(): void;
}

export interface NativeMessageSocketConstructor {
  new (
    family: number,
    type: number,
    protocol: number,
    onMessage: (msg: Buffer) => void,
    onError: (err: Error & NativeErrorFields) => void,
    onWritable?: () => void,
  ): NativeMessageSocket;
}

export interface ProbeFact {
  ok: boolean;
  /** errno name when !ok, e.g. 'EAFNOSUPPORT'. */
  code?: string;
  errno?: number;
}

export interface NativeAddon {
  constants: NativeConstants;
  /**
   * socket + setsockopt(UDP_ENCAP, encapType) (none for encapType 0) + setsockopt(SO_NO_CHECK) when noCheck + bind;
   * returns the fd for dgram to adopt. family 4 or 6.
   */
  openEncapSocket(family: 4 | 6, address: string, port: number, encapType: number, noCheck?: boolean): number;
  /** getsockopt(IPPROTO_UDP, UDP_ENCAP) read-back. */
  getEncap(fd: number): number;
  /** getsockopt(SOL_SOCKET, SO_NO_CHECK) read-back (Linux; ENOPROTOOPT elsewhere). */
  getNoCheck(fd: number): boolean;
  /** close(2) an fd the addon opened, when it was never adopted. */
  closeFd(fd: number): void;
  MessageSocket: NativeMessageSocketConstructor;
  /** Try each facility without changing anything; closes what it opened. */
  probe(): { pfkey: ProbeFact; xfrm: ProbeFact; udpEncap4: ProbeFact; udpEncap6: ProbeFact; tun: ProbeFact };
}
