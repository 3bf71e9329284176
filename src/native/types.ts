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
  /** TUNSETOFFLOAD flags (Linux only: absent elsewhere). USO4/USO6 need Linux 6.2. */
  TUN_F_CSUM?: number;
  TUN_F_TSO4?: number;
  TUN_F_TSO6?: number;
  TUN_F_TSO_ECN?: number;
  TUN_F_USO4?: number;
  TUN_F_USO6?: number;
  IFNAMSIZ: number;
  IPPROTO_UDP: number;
  UDP_ENCAP: number;
  UDP_ENCAP_ESPINUDP_NON_IKE: number;
  UDP_ENCAP_ESPINUDP: number;
  SOL_SOCKET: number;
  SO_RCVBUF: number;
  SO_SNDBUF: number;
  /** Linux: set the buffer past rmem_max / wmem_max (CAP_NET_ADMIN); -1 where the OS has none. */
  SO_RCVBUFFORCE: number;
  SO_SNDBUFFORCE: number;
  IPPROTO_IP: number;
  IPPROTO_IPV6: number;
  /** Linux: per-socket policy as struct xfrm_userpolicy_info (xfrm_user). */
  IP_XFRM_POLICY: number;
  IPV6_XFRM_POLICY: number;
  /** Packet capture (Linux; -1 elsewhere): AF_PACKET, its option level, every protocol, drop counters, ns timestamps. */
  AF_PACKET?: number;
  SOL_PACKET?: number;
  ETH_P_ALL?: number;
  PACKET_STATISTICS?: number;
  SO_TIMESTAMPNS?: number;
  /** Per-socket policy as PF_KEY's struct sadb_x_policy (the BSDs; Linux with af_key). */
  IP_IPSEC_POLICY: number;
  IPV6_IPSEC_POLICY: number;
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
  /**
   * Packet capture mode: from now on each datagram is read with recvmsg(2) and onMessage is called as
   * `(bytes, sockaddr, seconds, nanoseconds, length)`: the source sockaddr as the kernel wrote it, the receive time
   * (SO_TIMESTAMPNS when set, else the time of reading), and the datagram's full length (more than `bytes.length`
   * when it did not fit the receive buffer). Absent from addons built before it.
   */
  recvFrom?(on: boolean): void;
  /** setsockopt(SOL_SOCKET, SO_ATTACH_FILTER) with a classic BPF program (8-byte struct sock_filter each). Linux. */
  attachFilter?(program: Uint8Array): void;
  /** getsockopt(2) into at most `length` bytes; returns what the kernel wrote. */
  getsockoptBytes?(level: number, name: number, length: number): Buffer;
}

export interface NativeMessageSocketConstructor {
  new (
    family: number,
    type: number,
    protocol: number,
    onMessage: (msg: Buffer, from?: Buffer, seconds?: number, nanoseconds?: number, length?: number) => void,
    onError: (err: Error & NativeErrorFields) => void,
    onWritable?: () => void,
  ): NativeMessageSocket;
}

/** Bytes of one metadata record / descriptor of NativeUdpSocket (receive records and sendBatch descriptors alike). */
export const UDP_RECORD_BYTES = 64;
/** Receive record flags (word 1). */
export const UDP_FLAG_TRUNCATED = 1;
export const UDP_FLAG_LOCAL_KNOWN = 2;

/**
 * The addon's UDP socket over a bound fd (from openEncapSocket): batched receive into a JS-owned slab, sendmsg and
 * sendmmsg out. See native/udp_socket.h for the record and descriptor layouts (64 bytes each, int32 words):
 * receive record: [0] bytes stored, [1] flags (UDP_FLAG_*), [2] family, [3] source port, [4] source scope id,
 * [5] arrival ifindex, [6] GRO segment size (0: one datagram), bytes 32..47 source address, 48..63 local address. Send descriptor: [0] slab offset, [1] length,
 * [2] family, [3] port, [4] scope id, [5] flags (1: source given), [6] status out (bytes sent or -errno),
 * bytes 32..47 destination, 48..63 source.
 */
export interface NativeUdpSocket {
  readonly fd: number;
  /** The kernel reports each datagram's local address (IP_PKTINFO / IP_RECVDSTADDR / IPV6_RECVPKTINFO). */
  readonly localAddressKnown: boolean;
  /**
   * sendmsg(2) one datagram of `a` then `b`, to the address given as bytes (4 or 16, the socket's family), from
   * `source` when given (IP_PKTINFO / IPV6_PKTINFO). Returns the bytes sent, or -1 when the socket's buffer is full
   * (EAGAIN: not sent; call wantWritable()). Throws on any other errno.
   */
  send(a: Uint8Array, b: Uint8Array | null, family: number, address: Uint8Array, port: number, scopeId: number, source: Uint8Array | null): number;
  /**
   * Send descriptors `start` .. `start + count - 1` (sendmmsg on Linux). Returns how many were processed (each has its
   * status word set); fewer than `count` when the buffer filled (EAGAIN: the rest were not attempted).
   */
  sendBatch(slab: Uint8Array, desc: Int32Array, start: number, count: number): number;
  /** Poll for writability once: onWritable is called when send() may succeed again. */
  wantWritable(): void;
  /**
   * Turn the segmentation offloads on or off (Linux): UDP GSO on send (sendBatch sends runs of equal-length datagrams
   * to one peer as one UDP_SEGMENT message) and UDP GRO on receive (a slot may hold several datagrams of the size in
   * record word 6). Returns the bits now on: 1 GSO, 2 GRO.
   */
  setOffload(gso: boolean, gro: boolean): number;
  /** The offloads' state: on or not, the errno that turned one off (0: none), and what GSO did. */
  readonly offload: NativeUdpOffload;
  ref(): void;
  unref(): void;
  /** Stop polling and close the fd. Idempotent. */
  close(): void;
}

export interface NativeUdpOffload {
  gso: boolean;
  gro: boolean;
  gsoError: number;
  groError: number;
  /** GSO messages sent, the datagrams they carried, and GSO messages the kernel refused (sent again without). */
  gsoSends: number;
  gsoSegments: number;
  gsoRetries: number;
}

export interface NativeUdpSocketConstructor {
  /**
   * Adopt `fd` (bound, non-blocking): turn local-address reporting on and poll it. The slab holds one `slotSize` slot
   * per 64-byte record of `meta` (at most 1024). `onRead(count)` is called once per readable wake with the number of
   * datagrams written into slots 0..count-1. The fd is the caller's until the constructor returns.
   */
  new (
    fd: number,
    family: 4 | 6,
    slab: Uint8Array,
    slotSize: number,
    meta: Int32Array,
    onRead: (count: number) => void,
    onError: (err: Error & NativeErrorFields) => void,
    onWritable: () => void,
  ): NativeUdpSocket;
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
  /**
   * writev(2) writes w = start .. start+count-1: each is `headers[w*headerLength, +headerLength)` (the virtio-net
   * header of an IFF_VNET_HDR device) then its `pieceCounts[w]` pieces `slab[pieceOffsets[p], +pieceLengths[p])`, the
   * pieces taken in order from the first write's. `status[w]` gets 0 or the errno. Stops at the first EAGAIN; returns
   * how many writes were consumed.
   */
  writevBatch(
    headers: Uint8Array,
    headerLength: number,
    slab: Uint8Array,
    pieceOffsets: Uint32Array,
    pieceLengths: Uint32Array,
    pieceCounts: Uint32Array,
    start: number,
    count: number,
    status: Int32Array,
  ): number;
  /** ioctl(TUNSETOFFLOAD, flags): 0, or the errno (EINVAL: a flag this kernel does not know). */
  setOffload(flags: number): number;
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

/**
 * A per-SA cipher context (native/cipher.cc) over the OpenSSL inside Node: EVP_CIPHER_CTXs keyed once, HMAC inner
 * and outer states precomputed; per packet only the IV is set. Keys are copied in at construction and wiped
 * (OPENSSL_cleanse / EVP_CIPHER_CTX_free) by free(), by the finalizer, and at environment teardown; the object
 * exposes none of them (util.inspect shows `EspCipher {}`). The packet layout is src/esp/cipher.ts's EspCipher:
 * [SPI(4)|seq(4)|IV|plaintext…|padlen|nh|ICV], IV 8 bytes (AEAD, GMAC), 16 (CBC) or 0 (NULL). Layout errors are
 * RangeErrors, OpenSSL failures Errors with code 'ERR_NATT_OPENSSL'; use after free() is a RangeError.
 */
export interface NativeEspCipher {
  /** Encrypt in place and write the ICV for the `length` bytes at `offset`. */
  seal(buf: Uint8Array, offset: number, length: number, seqHi: number): void;
  /**
   * Verify, and decrypt (AEAD, CBC) to `out` at `outOffset`: exactly over the ciphertext (in place) or outside the
   * packet. False when the ICV fails; the packet is then unchanged (in place: the ciphertext is put back).
   */
  open(buf: Uint8Array, offset: number, length: number, seqHi: number, out: Uint8Array, outOffset: number): boolean;
  /**
   * Seal / open in place every packet of the batch whose status is 0: `desc` has 4 words per packet (offset,
   * length, ESN high bits, 0); status becomes 1 ok, 2 ICV failed (open), 3 bad layout, 4 OpenSSL refused (seal).
   * One call per batch, nothing allocated. Returns how many were done.
   */
  sealBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number;
  openBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number;
  /** Free the contexts and wipe the key material now (idempotent). */
  free(): void;
}

export interface NativeEspCipherConstructor {
  /**
   * kind: 'aead' | 'gmac' | 'cbc' | 'null'; cipher: 'aes-{128,192,256}-gcm', 'chacha20-poly1305',
   * 'aes-{128,192,256}-cbc' or '' (NULL); key without salt; salt: 4 bytes (AEAD, GMAC) or empty; cipherIcvLength:
   * 8/12/16 (GCM), 16 (GMAC, ChaCha20-Poly1305), 0 otherwise; hash: 'sha1' | 'sha256' | 'sha384' | 'sha512' | ''
   * (none); macIcvLength: the truncated HMAC length (0 without one); esn: ESN high bits in the AAD / HMAC input.
   */
  new (
    kind: string,
    cipher: string,
    key: Uint8Array,
    salt: Uint8Array,
    cipherIcvLength: number,
    hash: string,
    authKey: Uint8Array | null,
    macIcvLength: number,
    esn: boolean,
  ): NativeEspCipher;
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
  UdpSocket: NativeUdpSocketConstructor;
  /** setsockopt(2) with raw bytes (a level or name of -1, which the OS lacks, is ENOPROTOOPT). */
  setSockOptBytes(fd: number, level: number, name: number, bytes: Uint8Array): void;
  /** getsockopt of an int option. */
  getSockOptInt?(fd: number, level: number, name: number): number;
  /** Native ESP cipher contexts of this env not freed yet. */
  espCipherContexts?(): number;
  /** getsockname(2): the bound address and port. */
  getSockName(fd: number): { family: 4 | 6; address: string; port: number };
  /** if_nametoindex(3); 0 when there is no such interface. */
  ifNameToIndex(name: string): number;

  Tun: NativeTunConstructor;
  /** Per-SA ESP cipher contexts (absent from an addon built before them, e.g. a stale prebuild). */
  EspCipher?: NativeEspCipherConstructor;
  /** OpenSSL_version(OPENSSL_VERSION) of the libcrypto the addon's symbols resolved to: Node's own. */
  opensslVersion?: string;
  /** Try each facility without changing anything; closes what it opened. */
  probe(): { pfkey: ProbeFact; xfrm: ProbeFact; udpEncap4: ProbeFact; udpEncap6: ProbeFact; tun: ProbeFact };
}
