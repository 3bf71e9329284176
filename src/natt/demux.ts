// What a datagram on a NAT-T port is (RFC 3948 §2, draft-ietf-ipsec-nat-t-ike-00): one pure function, classify().

import { rangeError, typeError } from '../errors';

/** A NAT-T socket's encapsulation. `'espinudp'`: RFC 3948 (IKE behind a 4-byte non-ESP marker); `'espinudp-non-ike'`: the draft's 8-byte non-IKE marker before ESP. */
export type NattEncapType = 'espinudp' | 'espinudp-non-ike';

/** @deprecated the old name of NattEncapType (the SA's `natt` field is SaNatt). */
export type NattEncap = NattEncapType;

/** What a NAT-T socket's port carries: an ESP-in-UDP encapsulation, or `'none'`: bare IKE (port 500), never ESP. */
export type NattSocketEncap = NattEncapType | 'none';

/**
 * Why a datagram was dropped; the keys of NattSocket.stats().dropped. `truncated`: larger than the receive slot
 * (never with the socket's 64 KiB slots; counted should a smaller geometry be used).
 */
export type DropReason = 'empty' | 'short' | 'markerOnly' | 'espInKernelMode' | 'truncated';

export type Classified =
  /** IKE: the IKE message starts at `offset` (after the marker, if any). */
  | { readonly kind: 'ike'; readonly offset: number }
  /** The one-byte 0xFF NAT-keepalive (RFC 3948 §2.3). */
  | { readonly kind: 'keepalive' }
  /** ESP: the ESP packet (SPI first) starts at `offset`. */
  | { readonly kind: 'esp'; readonly offset: number }
  | { readonly kind: 'drop'; readonly reason: DropReason };

// Shared, frozen results: classify() allocates nothing per packet.
const IKE_AT_0: Classified = Object.freeze({ kind: 'ike', offset: 0 });
const IKE_AT_4: Classified = Object.freeze({ kind: 'ike', offset: 4 });
const ESP_AT_0: Classified = Object.freeze({ kind: 'esp', offset: 0 });
const ESP_AT_8: Classified = Object.freeze({ kind: 'esp', offset: 8 });
const KEEPALIVE: Classified = Object.freeze({ kind: 'keepalive' });
const DROP_EMPTY: Classified = Object.freeze({ kind: 'drop', reason: 'empty' });
const DROP_SHORT: Classified = Object.freeze({ kind: 'drop', reason: 'short' });
const DROP_MARKER_ONLY: Classified = Object.freeze({ kind: 'drop', reason: 'markerOnly' });

/** Length of an ESP header (SPI + sequence number): an ESP datagram must be longer than this, as in Linux. */
const ESP_HEADER = 8;

/**
 * Classify one UDP payload received on a NAT-T port.
 *
 * `'espinudp'` (RFC 3948): 1 byte 0xFF → keepalive; 4 zero bytes then at least one byte → IKE at offset 4;
 * more than 8 bytes with a non-zero SPI → ESP at offset 0 (Linux's rule, xfrm4_udp_encap_rcv); anything else → drop.
 *
 * `'espinudp-non-ike'` (draft-00/01, port 500): 1 byte 0xFF → keepalive; 8 zero bytes then more → ESP at offset 8;
 * 8 or more bytes not starting with 8 zero bytes → IKE at offset 0 (its initiator SPI is never zero); else → drop.
 *
 * `'none'` (a plain IKE port, 500): every non-empty datagram is IKE at offset 0; nothing is ESP or a keepalive.
 */
export function classify(buf: Uint8Array, encap: NattSocketEncap = 'espinudp'): Classified {
  if (!(buf instanceof Uint8Array)) throw typeError('buf', 'a Buffer or Uint8Array', buf);
  if (encap !== 'espinudp' && encap !== 'espinudp-non-ike' && encap !== 'none') {
    throw rangeError('encap', "'espinudp', 'espinudp-non-ike' or 'none'", encap);
  }
  return classifyAt(buf, 0, buf.length, encap);
}

/**
 * classify() on `len` bytes of `buf` from `off`, unchecked (the caller's arguments are its own): the NAT-T socket's
 * receive path classifies datagrams in place in its receive slab.
 */
export function classifyAt(buf: Uint8Array, off: number, len: number, encap: NattSocketEncap): Classified {
  if (len === 0) return DROP_EMPTY;
  if (encap === 'none') return IKE_AT_0;
  if (len === 1) return buf[off] === 0xff ? KEEPALIVE : DROP_SHORT;
  if (encap === 'espinudp') {
    if (len < 4) return DROP_SHORT;
    if ((buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3]) === 0) return len === 4 ? DROP_MARKER_ONLY : IKE_AT_4;
    return len > ESP_HEADER ? ESP_AT_0 : DROP_SHORT;
  }
  if (len < 8) return DROP_SHORT;
  let z = 0;
  for (let i = 0; i < 8; i++) z |= buf[off + i];
  if (z === 0) {
    if (len === 8) return DROP_MARKER_ONLY;
    // The ESP behind the marker needs a non-zero SPI and a whole header.
    if (len <= 8 + ESP_HEADER || (buf[off + 8] | buf[off + 9] | buf[off + 10] | buf[off + 11]) === 0) return DROP_SHORT;
    return ESP_AT_8;
  }
  return IKE_AT_0;
}
