// The seam between the userland engine and whatever carries its ESP: one transport interface, one remote-info type.
//
// A NattSocket in userland mode implements it (src/natt/socket.ts), so do the ESP-in-TCP connections and listener
// (src/tcp/); its batched native I/O lives in src/natt/native-io.ts; test/lib/memory-transport.ts is an in-memory pair.

/** Where a datagram came from, as node:dgram reports it (the NAT-T socket, ESP-in-TCP and the test pair alike). */
export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  /** Bytes of the datagram (UDP payload). */
  size: number;
  /**
   * The local address the datagram arrived on (its IP destination: with a wildcard-bound socket, the interface
   * address), where the carrier can tell (the NAT-T socket on the native addon: IP_PKTINFO / IPV6_RECVPKTINFO).
   * NAT-D (RFC 7296 §2.23) hashes it, and a multi-homed host replies from it.
   */
  localAddress?: string;
  /** The local port the datagram arrived on, given with `localAddress`. */
  localPort?: number;
}

/** Called once per send that was given a callback: `err` null when the datagram left. */
export type SendCallback = (err: Error | null, bytes?: number) => void;

/**
 * Several ESP packets to send in one call (the fast path sends them with one system call). The arrays are the
 * caller's and may be reused after the call returns: `count` entries of each are valid.
 */
export interface EspBatch {
  count: number;
  packets: Uint8Array[];
  ports: ArrayLike<number>;
  addresses: string[];
}

/**
 * How a transport carries ESP, as an SA's `natt.type` names it: `'espintcp'` for RFC 9329 TCP (src/tcp/), the UDP
 * encapsulations otherwise. The engine sends an SA only over a transport of its kind (see UserlandEngine).
 */
export type TransportEncap = 'espinudp' | 'espinudp-non-ike' | 'espintcp';

/**
 * Where the datagrams of an ESP receive batch came from (valid only during the batch call): by batch index, without
 * building an object per datagram. `remoteInfo(i)` builds the whole shape (for an event that needs one).
 */
export interface EspSources {
  port(i: number): number;
  /** The sender's address text (remembered per address: no string built per datagram). */
  address(i: number): string;
  remoteInfo(i: number): RemoteInfo;
}

/**
 * Called once per receive wake with the ESP datagrams that arrived (SPI first): datagram i is
 * `slab[offsets[i], offsets[i] + lengths[i])`, in the transport's own slab, valid (and writable: it may be opened in
 * place) only until the handler returns.
 */
export type EspBatchHandler = (slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, count: number, from: EspSources) => void;

/** Bytes in front of each packet of sendEspRun() that belong to the transport (it may write a marker there). */
export const ESP_RUN_HEADROOM = 8;

/** What the userland engine needs from the carrier of its ESP. 'esp' gives the packet from the SPI on. */
export interface EspTransport {
  /**
   * How this transport carries ESP; absent means UDP (a NattSocket says `'espinudp'` or `'espinudp-non-ike'`).
   * `'none'`: a plain IKE socket that carries no ESP at all; the engine refuses it.
   */
  readonly encap?: TransportEncap | 'none';
  on(event: 'esp', listener: (esp: Buffer, rinfo: RemoteInfo) => void): unknown;
  off(event: 'esp', listener: (esp: Buffer, rinfo: RemoteInfo) => void): unknown;
  /** Send one ESP packet (SPI first). A failure is reported to `cb`, or, without one, as the transport's 'error'. */
  sendEsp(esp: Uint8Array, port: number, address: string, cb?: SendCallback): void;
  /** Send several; failures are counted by the transport. Absent: the engine sends them one by one. */
  sendEspBatch?(batch: EspBatch): void;
  /**
   * The batched fast path (optional): send `count` ESP packets lying in `slab` (packet i at `offsets[i]`, `lengths[i]`
   * bytes, with ESP_RUN_HEADROOM bytes in front of it that the transport may overwrite) to one peer, in as few system
   * calls as it can (sendmmsg), without copying them unless the socket is full. Returns how many were taken (sent, or
   * queued for a full buffer); the others failed, counted by the transport. `slab` is the caller's again on return.
   */
  sendEspRun?(slab: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, port: number, address: string): number;
  /**
   * The batched fast path (optional): hand received ESP to `handler` once per wake, in the transport's slab, instead
   * of one 'esp' event (and one copy) per datagram; `null` goes back to 'esp' events. Returns false when this
   * transport cannot (no native batched I/O here): then 'esp' events go on.
   */
  onEspBatch?(handler: EspBatchHandler | null): boolean;
  /** Send one NAT-keepalive (RFC 3948 §2.3). */
  sendKeepalive(port: number, address: string, cb?: SendCallback): void;
  /** The local address and port. */
  address(): { address: string; port: number; family?: string };
}
