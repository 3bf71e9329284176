// NAT detection (NAT-D): the IKEv2 NAT_DETECTION_*_IP hashes (RFC 7296 §2.23), IKEv1's NAT-D (RFC 3947 §3.2), and what they say.
//
// Both versions hash the same 34 or 46 octets: the two 8-octet IKE SPIs (IKEv1: the cookies CKY-I, CKY-R) in the order
// the IKE header carries them, the IP address (4 or 16 octets), the port (2 octets, network order). IKEv2 always uses
// SHA-1 (20 octets); IKEv1 uses the hash algorithm its phase-1 SA negotiated.

import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { rangeError, typeError } from '../errors';
import { arrayOption, fieldName, intOption, readOptions } from '../core/options';
import { checkedU64 } from '../core/cursor';
import { addressToBytes } from '../ip/address';

/** An 8-octet IKE SPI (IKEv1: cookie): 8 bytes in header order, or the same as an unsigned 64-bit bigint (network order). */
export type IkeSpi = Uint8Array | bigint;

/** An address as text (`'192.0.2.1'`, `'2001:db8::1'`, `'::ffff:192.0.2.1'`) or wire form (4 or 16 bytes). */
export type NatdAddress = string | Uint8Array;

/** One end of the packet that carried the NAT-D payloads, as this host saw it. */
export interface NatdEndpoint {
  address: NatdAddress;
  /** 1..65535 (port 0 never appears on the wire). */
  port: number;
}

/**
 * The hash of the IKEv1 phase-1 SA, by name or by its RFC 2409 Appendix A attribute value
 * (1 MD5, 2 SHA, 4 SHA2-256, 5 SHA2-384, 6 SHA2-512; 3 Tiger is not offered by node:crypto).
 */
export type Ikev1HashAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha384' | 'sha512' | 1 | 2 | 4 | 5 | 6;

/** What detect() and detectIkev1() conclude. */
export interface NatdResult {
  /** This host is behind a NAT: the peer saw our packet leave a different address or port than we sent it from. */
  localBehindNat: boolean;
  /** The peer is behind a NAT: none of its source hashes names the address and port its packet arrived from. */
  remoteBehindNat: boolean;
}

/** Options of natd.detect() (IKEv2, RFC 7296 §2.23). */
export interface NatdDetectOptions {
  /** Our end of the received packet: its DESTINATION address and port (with a wildcard-bound socket, the interface address). */
  local: NatdEndpoint;
  /** The peer's end of the received packet: its SOURCE address and port, as the socket reported them. */
  remote: NatdEndpoint;
  /** The IKE header's SPIs; `spiR` is all zero in the first IKE_SA_INIT request. */
  spiI: IkeSpi;
  spiR: IkeSpi;
  /** The notification data of every NAT_DETECTION_SOURCE_IP (16388) payload in the message (at least one). */
  sourceHashes: readonly Uint8Array[];
  /** The notification data of the NAT_DETECTION_DESTINATION_IP (16389) payload. */
  destinationHash: Uint8Array;
}

/** Options of natd.detectIkev1() (RFC 3947 §3.2): the NAT-D payloads in message order are [destinationHash, ...sourceHashes]. */
export interface NatdDetectIkev1Options {
  /** The hash algorithm of the phase-1 SA. */
  hash: Ikev1HashAlgorithm;
  local: NatdEndpoint;
  remote: NatdEndpoint;
  /** The ISAKMP header's cookies. */
  cookieI: IkeSpi;
  cookieR: IkeSpi;
  /** The second and later NAT-D payloads: the sender's possible source addresses (at least one). */
  sourceHashes: readonly Uint8Array[];
  /** The first NAT-D payload: the sender's hash of the address it sent to (our address as it sees it). */
  destinationHash: Uint8Array;
}

const IKEV1_HASHES: Record<string, string> = { md5: 'md5', sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };
const IKEV1_HASH_IDS: Record<number, string> = { 1: 'md5', 2: 'sha1', 4: 'sha256', 5: 'sha384', 6: 'sha512' };
const DIGEST_LENGTH: Record<string, number> = { md5: 16, sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const HASH_EXPECTED = "'md5', 'sha1', 'sha256', 'sha384', 'sha512' or an RFC 2409 hash id 1, 2, 4, 5 or 6";

/** The node:crypto name of an IKEv1 hash algorithm, or a TypeError / RangeError naming `field`. */
function ikev1Algorithm(v: unknown, field: string): string {
  if (typeof v === 'string') {
    const name = Object.hasOwn(IKEV1_HASHES, v) ? IKEV1_HASHES[v] : undefined;
    if (name) return name;
    throw rangeError(field, HASH_EXPECTED, v);
  }
  if (typeof v === 'number') {
    const name = Number.isInteger(v) && Object.hasOwn(IKEV1_HASH_IDS, v) ? IKEV1_HASH_IDS[v] : undefined;
    if (name) return name;
    if (v === 3) throw rangeError(field, `${HASH_EXPECTED} (3, Tiger, is not available in node:crypto)`, v);
    throw rangeError(field, HASH_EXPECTED, v);
  }
  throw typeError(field, HASH_EXPECTED, v);
}

/** An SPI as 8 bytes: a Uint8Array of exactly 8, or a bigint 0..2^64-1; `nonZero` refuses the all-zero SPI. */
function spiBytes(v: unknown, field: string, nonZero: boolean): Uint8Array {
  let b: Uint8Array;
  if (v instanceof Uint8Array) {
    if (v.length !== 8) throw rangeError(field, 'an 8-byte SPI', v);
    b = v;
  } else if (typeof v === 'bigint') {
    const n = checkedU64(v, field);
    b = Buffer.alloc(8);
    new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, n, false);
  } else {
    throw typeError(field, 'an 8-byte Uint8Array or a bigint', v);
  }
  // RFC 7296 §3.1: the initiator's SPI "MUST NOT be zero"; only the responder's is zero (in the first request).
  if (nonZero && b.every((x) => x === 0)) throw rangeError(field, 'a non-zero SPI (only the responder SPI may be zero)', v);
  return b;
}

/**
 * An address in the form the IP header carries it. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, which a dual-stack
 * socket reports for an IPv4 peer) is the 4-byte IPv4 address: the packet on the wire was IPv4, and its peer hashed
 * 4 octets. The unspecified address is refused: a wildcard-bound socket must pass the address the packet really used.
 */
function addressBytes(v: unknown, field: string): Uint8Array {
  let b: Uint8Array;
  if (typeof v === 'string') {
    const zone = v.indexOf('%');
    if (!isIPv4(v) && !isIPv6(zone >= 0 ? v.slice(0, zone) : v)) throw rangeError(field, 'an IPv4 or IPv6 address', v);
    b = addressToBytes(v, field);
  } else if (v instanceof Uint8Array) {
    if (v.length !== 4 && v.length !== 16) throw rangeError(field, 'an address of 4 or 16 bytes', v);
    b = v;
  } else {
    throw typeError(field, 'an IPv4 or IPv6 address (a string, or 4 or 16 bytes)', v);
  }
  if (b.length === 16 && isMappedV4(b)) b = b.subarray(12, 16);
  if (b.every((x) => x === 0)) throw rangeError(field, "the packet's real address (not the unspecified address)", v);
  return b;
}

function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function portNumber(v: unknown, field: string): number {
  return intOption(v, field, 1, 65535);
}

/** HASH(SPIi | SPIr | IP | port) with node:crypto's `algorithm`. */
function natdHash(algorithm: string, spiI: Uint8Array, spiR: Uint8Array, ip: Uint8Array, port: number): Buffer {
  const input = Buffer.allocUnsafe(16 + ip.length + 2);
  input.set(spiI, 0);
  input.set(spiR, 8);
  input.set(ip, 16);
  input.writeUInt16BE(port, 16 + ip.length);
  return createHash(algorithm).update(input).digest();
}

/**
 * The IKEv2 NAT-D hash (RFC 7296 §2.23): SHA-1(SPIi | SPIr | IP | port), 20 bytes. This is the notification data of a
 * NAT_DETECTION_SOURCE_IP payload (our source address and port) or NAT_DETECTION_DESTINATION_IP (the peer's, as we send
 * to it). `spiR` is all zero in the first IKE_SA_INIT request. Throws a TypeError / RangeError naming the argument.
 */
function ikev2Hash(spiI: IkeSpi, spiR: IkeSpi, address: NatdAddress, port: number): Buffer {
  return natdHash('sha1', spiBytes(spiI, 'spiI', true), spiBytes(spiR, 'spiR', false), addressBytes(address, 'address'), portNumber(port, 'port'));
}

/**
 * The IKEv1 NAT-D hash (RFC 3947 §3.2): HASH(CKY-I | CKY-R | IP | Port) with the phase-1 SA's hash algorithm; its
 * length is the digest's (16 MD5, 20 SHA-1, 32/48/64 SHA-2). The first NAT-D payload of a message hashes the peer's
 * address (the destination), the others our possible source addresses.
 */
function ikev1Hash(hash: Ikev1HashAlgorithm, cookieI: IkeSpi, cookieR: IkeSpi, address: NatdAddress, port: number): Buffer {
  const alg = ikev1Algorithm(hash, 'hash');
  return natdHash(alg, spiBytes(cookieI, 'cookieI', true), spiBytes(cookieR, 'cookieR', false), addressBytes(address, 'address'), portNumber(port, 'port'));
}

function endpoint(v: unknown, what: string): { ip: Uint8Array; port: number } {
  if (v === undefined) throw typeError(what, 'an object { address, port }', v);
  const o = readOptions(v, ['address', 'port'] as const, what);
  return { ip: addressBytes(o.address, fieldName(what, 'address')), port: portNumber(o.port, fieldName(what, 'port')) };
}

function hashList(v: unknown, field: string, length: number): readonly Uint8Array[] {
  if (!Array.isArray(v)) throw typeError(field, `an array of ${length}-byte hashes`, v);
  const list = arrayOption(v, field);
  if (list.length === 0) throw rangeError(field, `at least one ${length}-byte hash`, v);
  for (let i = 0; i < list.length; i++) hashValue(list[i], `${field}[${i}]`, length);
  return list as readonly Uint8Array[];
}

function hashValue(v: unknown, field: string, length: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw typeError(field, `a ${length}-byte Uint8Array`, v);
  if (v.length !== length) throw rangeError(field, `a hash of ${length} bytes`, v);
  return v;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function conclude(
  alg: string,
  spiI: Uint8Array,
  spiR: Uint8Array,
  local: { ip: Uint8Array; port: number },
  remote: { ip: Uint8Array; port: number },
  sourceHashes: readonly Uint8Array[],
  destinationHash: Uint8Array,
): NatdResult {
  const remoteSeen = natdHash(alg, spiI, spiR, remote.ip, remote.port);
  const localSeen = natdHash(alg, spiI, spiR, local.ip, local.port);
  return {
    localBehindNat: !equal(destinationHash, localSeen),
    remoteBehindNat: !sourceHashes.some((h) => equal(h, remoteSeen)),
  };
}

/**
 * IKEv2 NAT detection (RFC 7296 §2.23) on a received message carrying NAT_DETECTION_SOURCE_IP and
 * NAT_DETECTION_DESTINATION_IP notifications. `remoteBehindNat`: no source hash matches the packet's source address and
 * port as we received it. `localBehindNat`: the destination hash does not match the packet's destination (our address
 * and port as we received it). Either means NAT-T: float to port 4500 and, if we are the one behind it, send keepalives.
 * Options are read from own properties only, unknown names are refused, and each field is checked (TypeError /
 * RangeError naming it: `local.port`, `sourceHashes[1]`, ...).
 */
function detect(options: NatdDetectOptions): NatdResult {
  if (options === undefined) throw typeError('options', 'an object', options);
  const o = readOptions(options, ['local', 'remote', 'spiI', 'spiR', 'sourceHashes', 'destinationHash'] as const);
  const spiI = spiBytes(o.spiI, 'spiI', true);
  const spiR = spiBytes(o.spiR, 'spiR', false);
  const local = endpoint(o.local, 'local');
  const remote = endpoint(o.remote, 'remote');
  const sources = hashList(o.sourceHashes, 'sourceHashes', 20);
  const destination = hashValue(o.destinationHash, 'destinationHash', 20);
  return conclude('sha1', spiI, spiR, local, remote, sources, destination);
}

/**
 * IKEv1 NAT detection (RFC 3947 §3.2) on a received Main Mode message 3/4 or Aggressive Mode message 2/3. Pass the
 * first NAT-D payload as `destinationHash` and the others as `sourceHashes`. `localBehindNat`: the first payload does
 * not hash our address and port (this end is behind the NAT and sends keepalives, RFC 3948); `remoteBehindNat`: none of
 * the others hashes the peer's address and port as we received them. Hash lengths must be the algorithm's digest length.
 */
function detectIkev1(options: NatdDetectIkev1Options): NatdResult {
  if (options === undefined) throw typeError('options', 'an object', options);
  const o = readOptions(options, ['hash', 'local', 'remote', 'cookieI', 'cookieR', 'sourceHashes', 'destinationHash'] as const);
  const alg = ikev1Algorithm(o.hash, 'hash');
  const len = DIGEST_LENGTH[alg];
  const cookieI = spiBytes(o.cookieI, 'cookieI', true);
  const cookieR = spiBytes(o.cookieR, 'cookieR', false);
  const local = endpoint(o.local, 'local');
  const remote = endpoint(o.remote, 'remote');
  const sources = hashList(o.sourceHashes, 'sourceHashes', len);
  const destination = hashValue(o.destinationHash, 'destinationHash', len);
  return conclude(alg, cookieI, cookieR, local, remote, sources, destination);
}

/**
 * NAT-D for an IKE daemon: `ikev2Hash` / `ikev1Hash` make the payload data to send, `detect` / `detectIkev1` read the
 * payloads received. Pure (node:crypto only): no socket, no state.
 */
export const natd = Object.freeze({ ikev2Hash, ikev1Hash, detect, detectIkev1 });
