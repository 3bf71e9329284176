// src/ip: address text ↔ bytes, prefixes, IP header parsing (IPv6 extension headers), checksums and the NAT fix-up.

import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { addressToBytes, bytesToAddress, parsePrefix, prefixMatches, formatPrefix } from '../../src/ip/address';
import {
  IpView,
  buildUdpPacket,
  fixL4ChecksumForNat,
  l4ChecksumOk,
  readIpHeader,
  recomputeL4Checksum,
  writeIpHeader,
} from '../../src/ip/packet';
import { prng } from './helpers';

describe('addresses and prefixes', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['2001:db8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:DB8::', '2001:db8::'],
    ['::', '::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['fe80:0:0:1:0:0:0:1', 'fe80:0:0:1::1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
  ])('%s → %s', (text, canon) => {
    const b = addressToBytes(text);
    expect(bytesToAddress(b, 0, b.length === 4 ? 4 : 16)).toBe(canon);
  });

  it('prefixes clear host bits and match without allocating', () => {
    const p = parsePrefix('10.1.2.3/15');
    expect(formatPrefix(p)).toBe('10.0.0.0/15');
    expect(prefixMatches(p, addressToBytes('10.1.255.1'), 0)).toBe(true);
    expect(prefixMatches(p, addressToBytes('10.2.0.1'), 0)).toBe(false);
    expect(formatPrefix(parsePrefix('2001:db8::1'))).toBe('2001:db8::1/128');
    expect(prefixMatches(parsePrefix('::/0'), addressToBytes('2001:db8::1'), 0)).toBe(true);
    expect(() => parsePrefix('10.0.0.0/33', 'x.src')).toThrow(/"x.src"/);
    expect(() => addressToBytes('10.0.0', 'dst')).toThrow(TypeError);
  });
});

describe('IP headers and checksums', () => {
  it('parses IPv4 and IPv6 UDP, walking IPv6 extension headers', () => {
    const v = new IpView();
    const p4 = buildUdpPacket('10.0.0.1', 1234, '10.0.0.2', 53, Buffer.from('q'));
    expect(readIpHeader(p4, v)).toBe(true);
    expect([v.version, v.proto, v.sport, v.dport, v.headerLength]).toEqual([4, 17, 1234, 53, 20]);
    const p6 = buildUdpPacket('2001:db8::1', 5, '2001:db8::2', 6, Buffer.from('hello'));
    // Insert an 8-byte hop-by-hop header (next header UDP) after the base header.
    const hbh = Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]);
    const withExt = Buffer.concat([p6.subarray(0, 40), hbh, p6.subarray(40)]);
    withExt[6] = 0;
    withExt.writeUInt16BE(p6.length - 40 + 8, 4);
    expect(readIpHeader(withExt, v)).toBe(true);
    expect([v.version, v.nextHeader, v.proto, v.l4Offset, v.sport, v.dport]).toEqual([6, 0, 17, 48, 5, 6]);
    expect(readIpHeader(Buffer.from([0x45, 0, 0, 10]), v)).toBe(false);
    expect(readIpHeader(Buffer.alloc(0), v)).toBe(false);
  });

  it('the incremental NAT fix-up equals a recomputation (random packets and addresses, IPv4 and IPv6)', () => {
    const rnd = prng(42);
    const v = new IpView();
    for (let i = 0; i < 500; i++) {
      const six = i % 2 === 1;
      const addr = (): string => bytesToAddress(randomBytes(six ? 16 : 4), 0, six ? 16 : 4);
      const [origSrc, origDst, newSrc, newDst] = [addr(), addr(), addr(), addr()];
      const data = randomBytes(rnd() % 300);
      const sent = buildUdpPacket(origSrc, rnd() & 0xffff, origDst, rnd() & 0xffff, data); // checksum over the originals
      const moved = buildUdpPacket(newSrc, 1, newDst, 1, data); // the same size: take its header, keep the segment
      sent.copy(moved, moved.length - (sent.length - (six ? 40 : 20)), six ? 40 : 20);
      readIpHeader(moved, v);
      const inc = Buffer.from(moved);
      expect(fixL4ChecksumForNat(inc, v, addressToBytes(origSrc), addressToBytes(origDst))).toBe(true);
      expect(l4ChecksumOk(inc)).toBe(true);
      const rec = Buffer.from(moved);
      recomputeL4Checksum(rec, v);
      expect(inc).toEqual(rec);
    }
  });

  it('TCP too: the NAT fix-up of a TCP segment equals its recomputation', () => {
    const v = new IpView();
    for (const [os, od, ns, nd] of [
      ['10.0.0.2', '203.0.113.5', '198.51.100.1', '203.0.113.5'],
      ['fd00::2', '2001:db8::5', '2001:db8:1::1', '2001:db8::5'],
    ]) {
      const tcp = Buffer.alloc(20 + 11);
      tcp.writeUInt16BE(40000, 0);
      tcp.writeUInt16BE(443, 2);
      tcp[12] = 5 << 4; // data offset
      tcp.write('hello world', 20);
      const mk = (src: string, dst: string): Buffer => {
        const s4 = addressToBytes(src);
        const hl = s4.length === 4 ? 20 : 40;
        const p = Buffer.alloc(hl + tcp.length);
        writeIpHeader(p, s4.length === 4 ? 4 : 6, 6, s4, addressToBytes(dst), tcp.length);
        tcp.copy(p, hl);
        return p;
      };
      const sent = mk(os, od);
      readIpHeader(sent, v);
      recomputeL4Checksum(sent, v);
      const moved = mk(ns, nd);
      sent.copy(moved, moved.length - tcp.length, sent.length - tcp.length); // the segment as sent, checksum included
      readIpHeader(moved, v);
      expect(l4ChecksumOk(moved)).toBe(false);
      const inc = Buffer.from(moved);
      expect(fixL4ChecksumForNat(inc, v, addressToBytes(os), addressToBytes(od))).toBe(true);
      const rec = Buffer.from(moved);
      recomputeL4Checksum(rec, v);
      expect(inc).toEqual(rec);
      expect(l4ChecksumOk(inc)).toBe(true);
    }
  });
});
