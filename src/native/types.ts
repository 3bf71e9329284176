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
  NETLINK_ROUTE: number;
  /** setsockopt level for netlink options, and two of them: extended ACKs (kernel messages), capped ACKs. */
  SOL_NETLINK: number;
  NETLINK_EXT_ACK: number;
  NETLINK_CAP_ACK: number;
  /** TUNSETIFF flags (Linux; -1 elsewhere) and the interface name size (16: at most 15 bytes and a NUL). */
  IFF_TUN: number;
  IFF_TAP: number;
  IFF_NO_PI: number;
  IFF_VNET_HDR: number;
  IFF_TUN_EXCL: number;
  IFF_MULTI_QUEUE: number;
  IFNAMSIZ: number;
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

/**
 * A TUN device (Linux): `open("/dev/net/tun", O_RDWR|O_NONBLOCK|O_CLOEXEC)` + `ioctl(TUNSETIFF)`, polled with uv_poll
 * on the environment's own loop. Reading is driven by readability into ONE JS-owned slab handed over once
 * (`setSlab`): per wake the addon read(2)s up to N packets into the slots and calls `onPackets(count)` ONCE; packet i
 * is `slab[i*slotSize, i*slotSize + lengths[i])`, valid until the callback returns (the next wake overwrites it). No
 * Buffer is made per packet. Per-packet write results are errno numbers (0 = written, EAGAIN = not written: call
 * `waitWritable()` and retry), so the write path allocates nothing either. Closed safely when its environment
 * (a worker) is torn down.
 */
export interface NativeTun {
  /** -1 once closed. */
  readonly fd: number;
  /** The interface name the kernel gave (e.g. 'tun0' for a template 'tun%d' or ''). */
  readonly name: string;
  /** Packets dropped whole because they were longer than a slot. */
  readonly oversize: number;
  /**
   * Hand over the slab and start reading: N = min(floor(slab.byteLength / slotSize), lengths.length, 1024) slots.
   * Returns N. The addon keeps references to both; call again to replace them.
   */
  setSlab(slab: Uint8Array, slotSize: number, lengths: Uint32Array): number;
  /** Stop / restart reading (the readable watch); packets wait in the kernel's queue (txqueuelen) meanwhile. */
  pause(): void;
  resume(): void;
  /** write(2) one packet (`packet[offset, offset+length)`, default all). Returns 0 or the errno (EAGAIN: not written). */
  write(packet: Uint8Array, offset?: number, length?: number): number;
  /**
   * write(2) packets i = start .. start+count-1, each `slab[offsets[i], offsets[i]+lengths[i])`, one syscall each, in one
   * native call. `status[i]` gets 0 or the errno of packet i (EFAULT: outside the slab). Stops at the first EAGAIN;
   * returns how many were consumed (written or refused), so `start + result` is the first one not written.
   */
  writeBatch(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, start: number, count: number, status: Int32Array): number;
  /** Watch for writability once: `onWritable()` is called the next time the fd is writable. */
  waitWritable(): void;
  /** ioctl(TUNSETSNDBUF): the device's send buffer in bytes (the kernel's default is effectively unlimited). */
  setSndbuf(bytes: number): void;
  /** Keep / stop keeping the event loop alive while watching. */
  ref(): void;
  unref(): void;
  /** Stop polling and close the fd (a non-persistent TUN device disappears). Idempotent. */
  close(): void;
}

export interface NativeTunConstructor {
  new (
    name: string,
    flags: number,
    onPackets: (count: number) => void,
    onWritable: () => void,
    onError: (err: Error & NativeErrorFields) => void,
  ): NativeTun;
}

/** The credentials of a Unix socket's peer. */
export interface PeerCred {
  /** -1 where the OS does not say. */
  pid: number;
  uid: number;
  gid: number;
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
  /**
   * Who is connected on the other end of a Unix stream socket, as the kernel recorded it at connect time:
   * getsockopt(SOL_SOCKET, SO_PEERCRED) on Linux, LOCAL_PEEREID on NetBSD, getpeereid(3) on FreeBSD and macOS
   * (`pid` -1 there: not told). Throws ENOPROTOOPT where the OS has none of these.
   */
  getPeerCred(fd: number): PeerCred;
  /** close(2) an fd the addon opened, when it was never adopted. */
  closeFd(fd: number): void;
  MessageSocket: NativeMessageSocketConstructor;
  Tun: NativeTunConstructor;
  /** Try each facility without changing anything; closes what it opened. */
  probe(): { pfkey: ProbeFact; xfrm: ProbeFact; udpEncap4: ProbeFact; udpEncap6: ProbeFact; tun: ProbeFact };
}
