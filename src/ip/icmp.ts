// ICMP "packet too big" errors (RFC 792 / RFC 1191 fragmentation needed, RFC 4443 §3.2), built for path MTU discovery.

import { internetChecksum, onesSum, foldSum, type IpView } from './packet';

const ICMP_DEST_UNREACH = 3;
const ICMP_FRAG_NEEDED = 4;
const ICMPV6_PACKET_TOO_BIG = 2;
/** RFC 4443 §2.4(c): an ICMPv6 error carries as much of the offending packet as fits in the minimum MTU. */
const IPV6_MIN_MTU = 1280;

/** Does this IPv4 packet forbid fragmentation (DF set)? IPv6 packets are never fragmented on the way. */
export function dontFragment(pkt: Uint8Array, v: IpView): boolean {
  return v.version === 6 || (pkt[6] & 0x40) !== 0;
}

/**
 * The ICMP error telling the sender of `pkt` that `mtu` is the largest packet that fits: IPv4 "destination
 * unreachable / fragmentation needed" with the next-hop MTU (RFC 1191), IPv6 "packet too big" (RFC 4443). The error
 * comes from `pkt`'s destination (that address is routed back through the same device, so reverse-path filtering
 * accepts it) and goes to `pkt`'s source. Returns null for a packet that must not get an ICMP error (itself an ICMP
 * error, a non-first fragment, from an unspecified or multicast source).
 */
export function packetTooBig(pkt: Uint8Array, v: IpView, mtu: number): Buffer | null {
  return v.version === 4 ? fragNeeded4(pkt, v, mtu) : packetTooBig6(pkt, v, mtu);
}

function fragNeeded4(pkt: Uint8Array, v: IpView, mtu: number): Buffer | null {
  if ((((pkt[6] & 0x1f) << 8) | pkt[7]) !== 0) return null; // a non-first fragment (RFC 1122 §3.2.2)
  if (pkt[12] === 0 || pkt[12] >= 224) return null; // unspecified, multicast or reserved source
  if (v.proto === 1 && pkt.length > v.headerLength) {
    const type = pkt[v.headerLength];
    if (type !== 0 && type !== 8 && type !== 13 && type !== 15 && type !== 17) return null; // never an error about an error
  }
  const quoted = Math.min(v.totalLength, v.headerLength + 8); // the IP header and the first 8 bytes (RFC 792)
  const out = Buffer.alloc(20 + 8 + quoted);
  out[0] = 0x45;
  out.writeUInt16BE(out.length, 2);
  out[8] = 64; // TTL
  out[9] = 1; // ICMP
  out.set(pkt.subarray(16, 20), 12); // from the packet's destination
  out.set(pkt.subarray(12, 16), 16); // to its source
  out.writeUInt16BE(internetChecksum(out, 0, 20), 10);
  out[20] = ICMP_DEST_UNREACH;
  out[21] = ICMP_FRAG_NEEDED;
  out.writeUInt16BE(Math.min(mtu, 0xffff), 26); // next-hop MTU (RFC 1191 §4)
  out.set(pkt.subarray(0, quoted), 28);
  out.writeUInt16BE(internetChecksum(out, 20, out.length), 22);
  return out;
}

function packetTooBig6(pkt: Uint8Array, v: IpView, mtu: number): Buffer | null {
  const src = pkt.subarray(8, 24);
  if (src[0] === 0xff || src.every((b) => b === 0)) return null; // multicast or unspecified source
  if (v.proto === 58 && pkt.length > v.l4Offset && pkt[v.l4Offset] < 128) return null; // an ICMPv6 error itself
  const quoted = Math.min(v.totalLength, IPV6_MIN_MTU - 40 - 8);
  const out = Buffer.alloc(40 + 8 + quoted);
  out[0] = 0x60;
  out.writeUInt16BE(8 + quoted, 4);
  out[6] = 58; // ICMPv6
  out[7] = 64; // hop limit
  out.set(pkt.subarray(24, 40), 8); // from the packet's destination
  out.set(src, 24); // to its source
  out[40] = ICMPV6_PACKET_TOO_BIG;
  out.writeUInt32BE(Math.max(mtu, IPV6_MIN_MTU), 44); // RFC 8201: never below 1280
  out.set(pkt.subarray(0, quoted), 48);
  // Checksum over the pseudo-header (RFC 8200 §8.1) and the message.
  let sum = onesSum(out, 8, 40);
  sum += 8 + quoted;
  sum += 58;
  sum = onesSum(out, 40, out.length, sum);
  out.writeUInt16BE(~foldSum(sum) & 0xffff, 42);
  return out;
}
