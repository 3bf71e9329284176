// ICMP "packet too big" for path MTU discovery: layout, checksums, and when no error may be sent.

import { describe, expect, it } from 'vitest';
import { packetTooBig, dontFragment } from '../../src/ip/icmp';
import { IpView, buildUdpPacket, internetChecksum, onesSum, foldSum, readIpHeader } from '../../src/ip/packet';

const view = (p: Uint8Array): IpView => {
  const v = new IpView();
  expect(readIpHeader(p, v)).toBe(true);
  return v;
};

describe('packetTooBig', () => {
  it('IPv4: type 3 code 4 with the next-hop MTU, from the destination to the source, header and 8 bytes quoted, checksums valid', () => {
    const p = buildUdpPacket('10.10.1.1', 5000, '10.10.2.1', 6000, Buffer.alloc(1400, 7));
    p[6] |= 0x40; // DF
    const v = view(p);
    expect(dontFragment(p, v)).toBe(true);
    const icmp = packetTooBig(p, v, 1372)!;
    const iv = view(icmp);
    expect(iv.proto).toBe(1);
    expect([...icmp.subarray(12, 16)]).toEqual([10, 10, 2, 1]);
    expect([...icmp.subarray(16, 20)]).toEqual([10, 10, 1, 1]);
    expect(internetChecksum(icmp, 0, 20)).toBe(0);
    expect([icmp[20], icmp[21]]).toEqual([3, 4]);
    expect(icmp.readUInt16BE(26)).toBe(1372);
    expect(internetChecksum(icmp, 20, icmp.length)).toBe(0);
    expect(icmp.subarray(28)).toEqual(p.subarray(0, 28));
  });

  it('IPv6: type 2 with the MTU (never below 1280), quoted up to the minimum MTU, pseudo-header checksum valid', () => {
    const p = buildUdpPacket('fd00:1::1', 5000, 'fd00:2::1', 6000, Buffer.alloc(1400, 7));
    const v = view(p);
    expect(dontFragment(p, v)).toBe(true);
    const icmp = packetTooBig(p, v, 1000)!;
    expect(icmp.length).toBe(1280);
    expect(icmp[6]).toBe(58);
    expect(icmp[40]).toBe(2);
    expect(icmp.readUInt32BE(44)).toBe(1280);
    expect(icmp.subarray(8, 24)).toEqual(p.subarray(24, 40));
    let sum = onesSum(icmp, 8, 40) + (icmp.length - 40) + 58;
    sum = onesSum(icmp, 40, icmp.length, sum);
    expect(~foldSum(sum) & 0xffff).toBe(0);
  });

  it('no error about an ICMP error, a non-first fragment or a multicast source; DF clear is not "do not fragment"', () => {
    const p = buildUdpPacket('10.10.1.1', 1, '10.10.2.1', 2, Buffer.alloc(10));
    p[6] &= 0xbf; // DF clear (the header checksum is not read here)
    expect(dontFragment(p, view(p))).toBe(false);
    const err = packetTooBig(p, view(p), 1000)!;
    expect(packetTooBig(err, view(err), 576)).toBeNull();
    const frag = Buffer.from(p);
    frag[7] = 5; // fragment offset 40
    expect(packetTooBig(frag, view(frag), 1000)).toBeNull();
    const mc = buildUdpPacket('224.0.0.1', 1, '10.10.2.1', 2, Buffer.alloc(10));
    expect(packetTooBig(mc, view(mc), 1000)).toBeNull();
  });
});
