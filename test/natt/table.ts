// The one table of NAT-T inputs that demux.test.ts (classify) and socket.test.ts (kernel and userland sockets) share.

import type { Classified, NattEncap } from '../../src/natt/demux';

/** What a NattSocket shows for a datagram: an event, a counted drop, or nothing at all (the kernel took it). */
export type Seen = 'ike' | 'keepalive' | 'esp' | `drop:${string}` | 'nothing';

export interface Row {
  name: string;
  encap: NattEncap;
  bytes: Buffer;
  /** classify()'s answer (the userland socket shows the same as an event or drop). */
  expect: Classified;
  /** What a socket with kernel UDP_ENCAP shows on Linux (xfrm4_udp_encap_rcv); absent: same as userland. */
  kernel?: Seen;
}

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
// An IKE_SA_INIT header: SPIi, SPIr 0, next payload 33, version 2.0, exchange 34, flags, msg id 0, length 28.
const IKE = hex('1122334455667788 0000000000000000 21 20 22 08 00000000 0000001c');
// An ESP packet: SPI 0x1000, seq 1, then 16 bytes that stand for payload and ICV.
const ESP = hex('00001000 00000001 000102030405060708090a0b0c0d0e0f');

export const rows: Row[] = [
  { name: 'IKE behind the 4-byte non-ESP marker', encap: 'espinudp', bytes: Buffer.concat([Buffer.alloc(4), IKE]), expect: { kind: 'ike', offset: 4 } },
  { name: 'IKE of one byte behind the marker', encap: 'espinudp', bytes: hex('00000000 2a'), expect: { kind: 'ike', offset: 4 } },
  { name: 'NAT-keepalive 0xFF', encap: 'espinudp', bytes: hex('ff'), expect: { kind: 'keepalive' }, kernel: 'nothing' },
  { name: 'ESP with a non-zero SPI', encap: 'espinudp', bytes: ESP, expect: { kind: 'esp', offset: 0 }, kernel: 'nothing' },
  { name: 'ESP header plus one byte (9 bytes)', encap: 'espinudp', bytes: hex('00001000 00000001 ff'), expect: { kind: 'esp', offset: 0 }, kernel: 'nothing' },
  { name: '0xFF inside a longer datagram (ESP-shaped, SPI 0xff000000)', encap: 'espinudp', bytes: hex('ff000000 00000001 aabbccdd'), expect: { kind: 'esp', offset: 0 }, kernel: 'nothing' },
  { name: 'empty datagram', encap: 'espinudp', bytes: Buffer.alloc(0), expect: { kind: 'drop', reason: 'empty' } },
  { name: 'one byte that is not 0xFF', encap: 'espinudp', bytes: hex('00'), expect: { kind: 'drop', reason: 'short' } },
  { name: '0xFF followed by one more byte', encap: 'espinudp', bytes: hex('ff00'), expect: { kind: 'drop', reason: 'short' } },
  { name: '3 bytes', encap: 'espinudp', bytes: hex('ffffff'), expect: { kind: 'drop', reason: 'short' } },
  { name: 'the marker alone (4 zero bytes)', encap: 'espinudp', bytes: Buffer.alloc(4), expect: { kind: 'drop', reason: 'markerOnly' } },
  { name: '5 bytes, SPI-shaped', encap: 'espinudp', bytes: hex('00001000 00'), expect: { kind: 'drop', reason: 'short' } },
  { name: '7 bytes, SPI-shaped', encap: 'espinudp', bytes: hex('00001000 000000'), expect: { kind: 'drop', reason: 'short' } },
  { name: 'a bare 8-byte ESP header', encap: 'espinudp', bytes: hex('00001000 00000001'), expect: { kind: 'drop', reason: 'short' } },
  // The draft encapsulation (draft-ietf-ipsec-nat-t-ike-00/01): IKE bare, ESP behind 8 zero bytes.
  { name: 'non-IKE: bare IKE', encap: 'espinudp-non-ike', bytes: IKE, expect: { kind: 'ike', offset: 0 } },
  { name: 'non-IKE: ESP behind the 8-byte non-IKE marker', encap: 'espinudp-non-ike', bytes: Buffer.concat([Buffer.alloc(8), ESP]), expect: { kind: 'esp', offset: 8 } },
  { name: 'non-IKE: keepalive 0xFF', encap: 'espinudp-non-ike', bytes: hex('ff'), expect: { kind: 'keepalive' } },
  { name: 'non-IKE: empty datagram', encap: 'espinudp-non-ike', bytes: Buffer.alloc(0), expect: { kind: 'drop', reason: 'empty' } },
  { name: 'non-IKE: 7 bytes', encap: 'espinudp-non-ike', bytes: hex('11223344556677'), expect: { kind: 'drop', reason: 'short' } },
  { name: 'non-IKE: the marker alone', encap: 'espinudp-non-ike', bytes: Buffer.alloc(8), expect: { kind: 'drop', reason: 'markerOnly' } },
  { name: 'non-IKE: marker then a zero SPI', encap: 'espinudp-non-ike', bytes: Buffer.concat([Buffer.alloc(12), hex('00000001 aabbccdd')]), expect: { kind: 'drop', reason: 'short' } },
  { name: 'non-IKE: marker then a bare ESP header', encap: 'espinudp-non-ike', bytes: Buffer.concat([Buffer.alloc(8), hex('00001000 00000001')]), expect: { kind: 'drop', reason: 'short' } },
];

/** What a userland socket shows for a row. */
export function seenUserland(row: Row): Seen {
  return row.expect.kind === 'drop' ? `drop:${row.expect.reason}` : row.expect.kind;
}

/** What a kernel UDP_ENCAP socket shows for a row (Linux). */
export function seenKernel(row: Row): Seen {
  return row.kernel ?? seenUserland(row);
}
