// The one typed model of SAs, policies and events that every SA-database backend (pfkey, xfrm, userland) shares.

import type { EventEmitter } from 'node:events';

/** An IP address in text form: `'192.0.2.1'`, `'2001:db8::1'`. */
export type Address = string;

/** IPsec protocols an SA can carry. natt's datapath does ESP; the codecs also carry AH and IPComp. */
export type IpsecProtocol = 'esp' | 'ah' | 'ipcomp';

/** IPsec mode. `'any'` exists only in PF_KEY (SADB_X_SA2 mode 0). */
export type IpsecMode = 'transport' | 'tunnel' | 'any';

/**
 * Encryption transforms, named as IKEv2 (RFC 7296 / IANA) names them.
 * AEADs (`aes-gcm-16`, `aes-gmac`, `chacha20-poly1305`) take KEYMAT: the key followed by the 4-byte salt.
 */
export type EncryptionAlgorithm =
  | 'aes-cbc'
  | 'aes-ctr'
  | 'aes-gcm-8'
  | 'aes-gcm-12'
  | 'aes-gcm-16'
  | 'aes-gmac'
  | 'chacha20-poly1305'
  | '3des-cbc'
  | 'null';

/**
 * Integrity transforms, named as IKEv2 names them. `hmac-sha2-256-96` is not an IKEv2 transform: it is what
 * Linux PF_KEY installs for SADB_X_AALG_SHA2_256HMAC (96-bit truncation), kept so such SAs can be described.
 */
export type IntegrityAlgorithm =
  | 'hmac-md5-96'
  | 'hmac-sha1-96'
  | 'hmac-sha2-256-128'
  | 'hmac-sha2-256-96'
  | 'hmac-sha2-384-192'
  | 'hmac-sha2-512-256'
  | 'aes-xcbc-96'
  | 'none';

/** IPComp transforms. */
export type CompressionAlgorithm = 'deflate' | 'lzs' | 'oui';

/** Key material is raw bytes. natt never prints it: objects it returns hold keys in key holders (src/sadb/keys.ts). */
export type KeyMaterial = Uint8Array;

export interface EncryptionParams {
  algorithm: EncryptionAlgorithm;
  /** Key bytes; for AEADs the KEYMAT (key ‖ 4-byte salt). Empty for `null`. */
  key: KeyMaterial;
}

export interface IntegrityParams {
  algorithm: IntegrityAlgorithm;
  key: KeyMaterial;
}

/** How an SA's ESP travels: `natt.type`. */
export type SaNattType = 'espinudp' | 'espinudp-non-ike' | 'espintcp';

/**
 * An SA's NAT-T encapsulation, its `natt` field: the UDP header (RFC 3948) or the TCP stream (RFC 9329) the SA's ESP
 * packets travel in. The same keys, SPIs and lifetimes work over either; only `type` and the ports say how.
 */
export interface SaNatt {
  /**
   * `'espinudp'` = UDP_ENCAP_ESPINUDP (2); `'espinudp-non-ike'` = the draft's 8-byte non-IKE marker (1);
   * `'espintcp'` = TCP_ENCAP_ESPINTCP (7): ESP framed in an RFC 9329 TCP connection (XFRM where the kernel was built
   * with CONFIG_INET_ESPINTCP; the userland engine over connectNattTcp / listenNattTcp; PF_KEY has none). A userland
   * engine sends and accepts an SA's ESP only over a transport of the same kind (src/userland/engine.ts).
   */
  type: SaNattType;
  /** UDP (or, for `'espintcp'`, TCP) source port of the SA's packets (for an inbound SA: the peer's port). */
  sport: number;
  /** UDP (or TCP) destination port of the SA's packets (for an inbound SA: our port). */
  dport: number;
  /** Original addresses (NAT-OA, RFC 3947), used for the transport-mode checksum fix-up. */
  oa?: { initiator?: Address; responder?: Address };
  /**
   * XFRM only: seconds between the RFC 3948 NAT keepalives (one 0xFF byte) the kernel itself sends for this
   * outbound SA (XFRMA_NAT_KEEPALIVE_INTERVAL, an integer 0..2^32-1; 0 or absent = none). It needs `natt`'s
   * encapsulation. The attribute came with Linux 6.10, in the same cycle as XFRMA_SA_DIR (our reading; the
   * reference leaves the release unconfirmed); older kernels ignore an attribute they do not know without an error,
   * so there the SA reads back without it (seen on 6.1). A non-zero interval marks the SA outbound (XFRMA_SA_DIR, which
   * 6.12 requires for it) and so without a replay window (`replayWindow` 0, the default then). Read back from the
   * kernel. PF_KEY has no such field: it refuses a non-zero one (NattUnsupportedError); the userland backend stores
   * it, its engine sends keepalives per peer on its own timer (`keepaliveSeconds`). Refused (non-zero) with
   * `'espintcp'`: RFC 9329 §6.6 says NAT-keepalives SHOULD NOT be sent over TCP.
   */
  keepaliveInterval?: number;
}

/**
 * Lifetime limits. 0 or absent means no limit. `bytes` and `packets` count what the SA processed;
 * `addSeconds` runs from the SA's creation, `useSeconds` from its first use.
 */
export interface Lifetime {
  bytes?: number;
  packets?: number;
  addSeconds?: number;
  useSeconds?: number;
}

/** What an SA has used so far (read from the backend; ignored on add). */
export interface LifetimeCurrent {
  bytes: number;
  packets: number;
  /** Seconds since the epoch when the SA was added. */
  addTime: number;
  /** Seconds since the epoch of first use, 0 if unused. */
  useTime: number;
}

/** A traffic selector: which packets a policy (or an SA's XFRM selector) covers. */
export interface TrafficSelector {
  /** Source prefix: `'10.0.0.0/24'`, or a bare address meaning a host prefix. */
  src: string;
  /** Destination prefix. */
  dst: string;
  /** Upper-layer protocol number (6 TCP, 17 UDP, 58 ICMPv6, ...); absent or 255 = any. */
  proto?: number;
  /** Source port (TCP/UDP); 0 or absent = any. */
  sport?: number;
  /** Destination port (TCP/UDP); 0 or absent = any. */
  dport?: number;
}

/** Identifies one SA: the triple (destination, protocol, SPI); the source narrows it as PF_KEY does. */
export interface SaId {
  src: Address;
  dst: Address;
  spi: number;
  protocol?: IpsecProtocol;
}

export type SaState = 'larval' | 'mature' | 'dying' | 'dead';

/** A security association, the same for every backend. */
export interface SecurityAssociation extends SaId {
  /** Defaults to `'esp'`. */
  protocol?: IpsecProtocol;
  /** Defaults to `'transport'` on add. */
  mode?: IpsecMode;
  reqid?: number;
  /** Anti-replay window in packets; 0 turns replay checking off. */
  replayWindow?: number;
  /** Extended sequence numbers (RFC 4303 §2.2.1). */
  esn?: boolean;
  encryption?: EncryptionParams;
  integrity?: IntegrityParams;
  /**
   * ESP with a non-AEAD cipher and no `integrity` is refused (it can be forged) unless this is `true` (RFC 4303
   * allows confidentiality-only SAs; use it only when something else authenticates the traffic).
   */
  allowNoIntegrity?: boolean;
  compression?: { algorithm: CompressionAlgorithm };
  natt?: SaNatt;
  lifetime?: { soft?: Lifetime; hard?: Lifetime };
  /** The kernel's selector for the SA (XFRM); absent = derived from the addresses. */
  selector?: TrafficSelector;
  /** Read back only: what the SA has used. */
  current?: LifetimeCurrent;
  /** Read back only. */
  state?: SaState;
  /**
   * PF_KEY: the sequence number of the ACQUIRE this SA answers (so the kernel finds its larval SA);
   * on messages from the kernel, the message's sequence number.
   */
  seq?: number;
}

/** One IPsec transform a policy requires (a PF_KEY `sadb_x_ipsecrequest`, an XFRM template). */
export interface PolicyTemplate {
  protocol: IpsecProtocol;
  mode: 'transport' | 'tunnel';
  /** Tunnel endpoints; required for tunnel mode. */
  src?: Address;
  dst?: Address;
  level?: 'default' | 'use' | 'require' | 'unique';
  reqid?: number;
}

export type PolicyDirection = 'in' | 'out' | 'fwd';

/** A security policy (SPD entry). */
export interface SecurityPolicy {
  selector: TrafficSelector;
  direction: PolicyDirection;
  /** `'ipsec'` applies the templates, `'none'` bypasses IPsec, `'discard'` drops. */
  action: 'ipsec' | 'none' | 'discard';
  templates?: PolicyTemplate[];
  priority?: number;
  /** Kernel-assigned index; read back, or given to delete/get by id. */
  id?: number;
  /** Read back only (Linux): lifetime use. */
  current?: LifetimeCurrent;
}

/** Algorithms a backend supports for one protocol (SADB_REGISTER's answer). */
export interface SupportedAlgorithms {
  protocol: IpsecProtocol;
  encryption: Array<{ algorithm: EncryptionAlgorithm | string; id?: number; minBits: number; maxBits: number; ivBits?: number }>;
  integrity: Array<{ algorithm: IntegrityAlgorithm | string; id?: number; minBits: number; maxBits: number }>;
}

export interface AcquireEvent {
  /** Echo this in the getSpi/update that answers the acquire. */
  seq: number;
  src: Address;
  dst: Address;
  protocol: IpsecProtocol;
  /** The policy that triggered it, when the backend says. */
  policy?: { id?: number; direction?: PolicyDirection; selector?: TrafficSelector };
}

export interface ExpireEvent {
  kind: 'soft' | 'hard';
  /** The SA, without its keys. */
  sa: SecurityAssociation;
}

/**
 * The peer of a NAT-T SA was seen at a new address or port (normalised from PF_KEY NEW_MAPPING, XFRM MAPPING
 * and the userland engine alike).
 */
export interface NewMappingEvent {
  sa: SaId;
  reqid?: number;
  old: { address: Address; port: number };
  new: { address: Address; port: number };
}

export interface SadbEvents {
  acquire: [AcquireEvent];
  expire: [ExpireEvent];
  newMapping: [NewMappingEvent];
  /** An SA was added or updated (by anyone): keys removed unless the Sadb was opened with `revealKeys` (then in key holders). */
  add: [SecurityAssociation];
  delete: [SaId];
  register: [SupportedAlgorithms];
  /**
   * Any message the backend received that it does not turn into one of the events above (decoded): key extensions and
   * algorithm attributes hold no bytes unless `revealKeys`, and an XFRM NLMSG_ERROR never carries the request it echoes.
   */
  message: [unknown];
  error: [Error];
}

/** Per-call options: a deadline and cancellation. */
export interface CallOptions {
  /** Milliseconds to wait for the kernel's reply (default 5000). */
  timeout?: number;
  signal?: AbortSignal;
}

/** `'daemon'`: a running natt daemon's database, over its control socket (src/control/); 'auto' never picks it. */
export type SadbBackendName = 'pfkey' | 'xfrm' | 'userland' | 'daemon';

/** Options of openSadb() (src/open.ts), shared by every backend; each backend reads the ones that concern it. */
export interface OpenSadbOptions {
  /**
   * `'auto'` (default) picks the kernel where it can do ESP (XFRM before PF_KEY on Linux), else userland; it never
   * picks `'daemon'`, which must be asked for.
   */
  backend?: SadbBackendName | 'auto';
  /** PF_KEY only: the dialect of the kernel's PF_KEY (default: this OS's). */
  dialect?: 'linux' | 'netbsd' | 'freebsd';
  /** Put key bytes in `'add'` (and PF_KEY/XFRM `'message'`) events, in key holders: readable as `.key`, never printed (default false: removed). */
  revealKeys?: boolean;
  /** Default per-request timeout in ms (default 5000). */
  timeout?: number;
  /** Daemon only: the daemon's control socket (default /run/natt/natt0.sock). */
  path?: string;
}

/** How openSadb() opens one backend. */
export type SadbFactory<S extends Sadb = Sadb> = (opts: Omit<OpenSadbOptions, 'backend'>) => Promise<S>;

/** Arguments for getSpi: allocate an SPI in [min, max] for an SA from `src` to `dst`. */
export interface GetSpiRequest {
  src: Address;
  dst: Address;
  protocol?: IpsecProtocol;
  min?: number;
  max?: number;
  mode?: IpsecMode;
  reqid?: number;
  /** Sequence number of the ACQUIRE being answered. */
  seq?: number;
}

/** The SA database: one interface over the PF_KEY client, the XFRM client and the userland engine. */
export interface Sadb extends EventEmitter<SadbEvents> {
  readonly backend: SadbBackendName;
  add(sa: SecurityAssociation, opts?: CallOptions): Promise<void>;
  update(sa: SecurityAssociation, opts?: CallOptions): Promise<void>;
  get(id: SaId, opts?: CallOptions): Promise<SecurityAssociation>;
  delete(id: SaId, opts?: CallOptions): Promise<void>;
  /** Delete every SA of `protocol` between `src` and `dst`. */
  deleteAll(match: { src: Address; dst: Address; protocol?: IpsecProtocol }, opts?: CallOptions): Promise<void>;
  flush(protocol?: IpsecProtocol, opts?: CallOptions): Promise<void>;
  dump(protocol?: IpsecProtocol, opts?: CallOptions): AsyncIterable<SecurityAssociation>;
  getSpi(req: GetSpiRequest, opts?: CallOptions): Promise<number>;
  register(protocol?: IpsecProtocol, opts?: CallOptions): Promise<SupportedAlgorithms>;
  spdAdd(policy: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy>;
  spdUpdate(policy: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy>;
  /** Delete by id, or by selector and direction. */
  spdDelete(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<void>;
  spdGet(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<SecurityPolicy>;
  spdDump(opts?: CallOptions): AsyncIterable<SecurityPolicy>;
  spdFlush(opts?: CallOptions): Promise<void>;
  close(): Promise<void>;
}
