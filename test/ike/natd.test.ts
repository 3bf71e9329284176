// natd: NAT-D hashes against byte strings built by hand and hashed with node:crypto, detection, and strict arguments.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { natd } from '../../src/ike';

const hex = (s: string) => Buffer.from(s.replace(/[\s:]/g, ''), 'hex');
const port2 = (p: number) => Buffer.from([p >> 8, p & 0xff]);

/** The RFC 7296 §2.23 / RFC 3947 §3.2 input written out by hand: SPIi | SPIr | IP | port, then hashed. */
function byHand(alg: string, spiI: string, spiR: string, ip: number[], port: number): Buffer {
  return createHash(alg).update(Buffer.concat([hex(spiI), hex(spiR), Buffer.from(ip), port2(port)])).digest();
}

const SPI_I = '5f0e2a1b9c3d4e7f';
const SPI_R = 'a1b2c3d4e5f60718';
const ZERO = '0000000000000000';

describe('natd.ikev2Hash (RFC 7296 §2.23: SHA-1 of SPIi | SPIr | IP | port)', () => {
  it('IPv4, first IKE_SA_INIT request (SPIr zero)', () => {
    const h = natd.ikev2Hash(hex(SPI_I), hex(ZERO), '192.0.2.10', 500);
    expect(h.length).toBe(20);
    expect(h.equals(byHand('sha1', SPI_I, ZERO, [192, 0, 2, 10], 500))).toBe(true);
  });

  it('IPv4 and IPv6 with both SPIs; the port goes in network order', () => {
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '198.51.100.7', 4500).equals(byHand('sha1', SPI_I, SPI_R, [198, 51, 100, 7], 4500))).toBe(true);
    // 0x1194 = 4500: a little-endian port would hash 94 11 and differ.
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '198.51.100.7', 4500).equals(byHand('sha1', SPI_I, SPI_R, [198, 51, 100, 7], 0x9411))).toBe(false);
    const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '2001:db8::42', 61234).equals(byHand('sha1', SPI_I, SPI_R, v6, 61234))).toBe(true);
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), Buffer.from(v6), 61234).equals(byHand('sha1', SPI_I, SPI_R, v6, 61234))).toBe(true);
  });

  it('a bigint SPI is the same 8 octets in network order', () => {
    const a = natd.ikev2Hash(0x5f0e2a1b9c3d4e7fn, 0n, '192.0.2.10', 500);
    expect(a.equals(natd.ikev2Hash(hex(SPI_I), hex(ZERO), '192.0.2.10', 500))).toBe(true);
    expect(natd.ikev2Hash(0xffff_ffff_ffff_ffffn, 1n, '192.0.2.10', 500).equals(byHand('sha1', 'ffffffffffffffff', '0000000000000001', [192, 0, 2, 10], 500))).toBe(true);
  });

  it('an IPv4-mapped IPv6 address (what a dual-stack socket reports) hashes as the IPv4 address on the wire', () => {
    const v4 = natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '203.0.113.5', 40000);
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '::ffff:203.0.113.5', 40000).equals(v4)).toBe(true);
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), hex('00000000000000000000ffffcb007105'), 40000).equals(v4)).toBe(true);
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), Buffer.from([203, 0, 113, 5]), 40000).equals(v4)).toBe(true);
  });

  it('an IPv6 zone index is not part of the address', () => {
    const fe80 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), 'fe80::1%eth0', 500).equals(byHand('sha1', SPI_I, SPI_R, fe80, 500))).toBe(true);
  });

  it('every input octet matters: SPI order, each SPI, the address, the port', () => {
    const base = natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '192.0.2.1', 500);
    expect(natd.ikev2Hash(hex(SPI_R), hex(SPI_I), '192.0.2.1', 500).equals(base)).toBe(false);
    expect(natd.ikev2Hash(hex(SPI_I), hex(ZERO), '192.0.2.1', 500).equals(base)).toBe(false);
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '192.0.2.2', 500).equals(base)).toBe(false);
    expect(natd.ikev2Hash(hex(SPI_I), hex(SPI_R), '192.0.2.1', 501).equals(base)).toBe(false);
  });
});

describe('natd against values recorded from strongSwan (a known answer from another implementation)', () => {
  // Recorded on this project's test host, not published anywhere: strongSwan 5.9.8 charon-cmd (Debian 12 package
  // charon-cmd 5.9.8-5+deb12u6) sent IKE_SA_INIT request 0 from 10.0.1.2[43648] to 10.0.1.1[4500] between two network
  // namespaces; tshark decoded SPIi b422aa63aeb9c2b7, SPIr 0, N(NATD_S_IP) and N(NATD_D_IP) as below.
  // test/ike/natd-strongswan.test.ts repeats this live (routed and through a masquerade) where charon-cmd is installed.
  const spiI = hex('b422aa63aeb9c2b7');
  it('NAT_DETECTION_SOURCE_IP and _DESTINATION_IP match strongSwan octet for octet', () => {
    expect(natd.ikev2Hash(spiI, 0n, '10.0.1.2', 43648).toString('hex')).toBe('b68290b63f5a1e4d6847bec3f27d022eceb4ce70');
    expect(natd.ikev2Hash(spiI, 0n, '10.0.1.1', 4500).toString('hex')).toBe('a57fef5034b8bf9c70576ec35e2cce464f00abcc');
    const r = natd.detect({
      local: { address: '10.0.1.1', port: 4500 },
      remote: { address: '10.0.1.2', port: 43648 },
      spiI,
      spiR: 0n,
      sourceHashes: [hex('b68290b63f5a1e4d6847bec3f27d022eceb4ce70')],
      destinationHash: hex('a57fef5034b8bf9c70576ec35e2cce464f00abcc'),
    });
    expect(r).toEqual({ localBehindNat: false, remoteBehindNat: false });
  });
});

describe('natd.ikev1Hash (RFC 3947 §3.2: HASH(CKY-I | CKY-R | IP | Port) with the phase-1 hash)', () => {
  const cases: [Parameters<typeof natd.ikev1Hash>[0], string, number][] = [
    ['md5', 'md5', 16],
    ['sha1', 'sha1', 20],
    ['sha256', 'sha256', 32],
    ['sha384', 'sha384', 48],
    ['sha512', 'sha512', 64],
    [1, 'md5', 16],
    [2, 'sha1', 20],
    [4, 'sha256', 32],
    [5, 'sha384', 48],
    [6, 'sha512', 64],
  ];
  for (const [alg, node, len] of cases) {
    it(`${String(alg)} → ${node}, ${len} octets`, () => {
      const h = natd.ikev1Hash(alg, hex(SPI_I), hex(SPI_R), '10.1.2.3', 4500);
      expect(h.length).toBe(len);
      expect(h.equals(byHand(node, SPI_I, SPI_R, [10, 1, 2, 3], 4500))).toBe(true);
    });
  }
  it('refuses Tiger (3), unknown names and ids, naming the argument', () => {
    expect(() => natd.ikev1Hash(3 as never, hex(SPI_I), hex(SPI_R), '10.1.2.3', 500)).toThrow(/option "hash".*Tiger/);
    expect(() => natd.ikev1Hash('sha224' as never, hex(SPI_I), hex(SPI_R), '10.1.2.3', 500)).toThrow(RangeError);
    expect(() => natd.ikev1Hash(7 as never, hex(SPI_I), hex(SPI_R), '10.1.2.3', 500)).toThrow(RangeError);
    expect(() => natd.ikev1Hash('SHA1' as never, hex(SPI_I), hex(SPI_R), '10.1.2.3', 500)).toThrow(RangeError);
    expect(() => natd.ikev1Hash('toString' as never, hex(SPI_I), hex(SPI_R), '10.1.2.3', 500)).toThrow(RangeError);
    expect(() => natd.ikev1Hash(null as never, hex(SPI_I), hex(SPI_R), '10.1.2.3', 500)).toThrow(TypeError);
  });
});

describe('natd.detect (RFC 7296 §2.23)', () => {
  // Initiator I at 10.0.0.2:500 behind a NAT whose public side is 203.0.113.5:40000; responder R at 198.51.100.7:500.
  const I = { address: '10.0.0.2', port: 500 };
  const NAT = { address: '203.0.113.5', port: 40000 };
  const R = { address: '198.51.100.7', port: 500 };
  const h = (spiR: string, e: { address: string; port: number }) => natd.ikev2Hash(hex(SPI_I), hex(spiR), e.address, e.port);

  it('behind a NAT: the responder sees the initiator behind it, the initiator sees itself behind it', () => {
    // IKE_SA_INIT request: I hashes its own source and R's address, with SPIr zero; R receives it from the NAT's address.
    const atR = natd.detect({ local: R, remote: NAT, spiI: hex(SPI_I), spiR: hex(ZERO), sourceHashes: [h(ZERO, I)], destinationHash: h(ZERO, R) });
    expect(atR).toEqual({ localBehindNat: false, remoteBehindNat: true });
    // IKE_SA_INIT response: R hashes its source and the address it answers to (the NAT's), with both SPIs.
    const atI = natd.detect({ local: I, remote: R, spiI: hex(SPI_I), spiR: hex(SPI_R), sourceHashes: [h(SPI_R, R)], destinationHash: h(SPI_R, NAT) });
    expect(atI).toEqual({ localBehindNat: true, remoteBehindNat: false });
  });

  it('no NAT on the path: both false', () => {
    const r = natd.detect({ local: R, remote: I, spiI: hex(SPI_I), spiR: hex(ZERO), sourceHashes: [h(ZERO, I)], destinationHash: h(ZERO, R) });
    expect(r).toEqual({ localBehindNat: false, remoteBehindNat: false });
  });

  it('both behind NATs', () => {
    const NAT2 = { address: '192.0.2.99', port: 4500 };
    const r = natd.detect({ local: R, remote: NAT, spiI: hex(SPI_I), spiR: hex(ZERO), sourceHashes: [h(ZERO, I)], destinationHash: h(ZERO, NAT2) });
    expect(r).toEqual({ localBehindNat: true, remoteBehindNat: true });
  });

  it('several source hashes (a multihomed sender): any one matching means the peer is not behind a NAT', () => {
    const other = { address: '10.9.9.9', port: 500 };
    const r = natd.detect({ local: R, remote: I, spiI: hex(SPI_I), spiR: hex(ZERO), sourceHashes: [h(ZERO, other), h(ZERO, I)], destinationHash: h(ZERO, R) });
    expect(r.remoteBehindNat).toBe(false);
    const r2 = natd.detect({ local: R, remote: I, spiI: hex(SPI_I), spiR: hex(ZERO), sourceHashes: [h(ZERO, other)], destinationHash: h(ZERO, R) });
    expect(r2.remoteBehindNat).toBe(true);
  });

  it('a port change alone (a NAPT keeping the address) is a NAT', () => {
    const r = natd.detect({ local: R, remote: { address: I.address, port: 1024 }, spiI: hex(SPI_I), spiR: hex(ZERO), sourceHashes: [h(ZERO, I)], destinationHash: h(ZERO, R) });
    expect(r.remoteBehindNat).toBe(true);
  });

  it('a dual-stack socket reporting ::ffff:… for an IPv4 peer still matches (no false NAT)', () => {
    const r = natd.detect({
      local: { address: '::ffff:198.51.100.7', port: 500 },
      remote: { address: '::ffff:10.0.0.2', port: 500 },
      spiI: hex(SPI_I),
      spiR: hex(ZERO),
      sourceHashes: [h(ZERO, I)],
      destinationHash: h(ZERO, R),
    });
    expect(r).toEqual({ localBehindNat: false, remoteBehindNat: false });
  });
});

describe('natd.detectIkev1 (RFC 3947 §3.2: first NAT-D = destination, the others = sources)', () => {
  it('Main Mode through a NAT, with SHA-1 and with SHA2-256', () => {
    const I = { address: '10.0.0.2', port: 500 };
    const NAT = { address: '203.0.113.5', port: 40000 };
    const R = { address: '198.51.100.7', port: 500 };
    for (const alg of ['sha1', 'sha256', 4] as const) {
      const h = (e: { address: string; port: number }) => natd.ikev1Hash(alg, hex(SPI_I), hex(SPI_R), e.address, e.port);
      const atR = natd.detectIkev1({ hash: alg, local: R, remote: NAT, cookieI: hex(SPI_I), cookieR: hex(SPI_R), destinationHash: h(R), sourceHashes: [h(I)] });
      expect(atR).toEqual({ localBehindNat: false, remoteBehindNat: true });
      const atI = natd.detectIkev1({ hash: alg, local: I, remote: R, cookieI: hex(SPI_I), cookieR: hex(SPI_R), destinationHash: h(NAT), sourceHashes: [h(R)] });
      expect(atI).toEqual({ localBehindNat: true, remoteBehindNat: false });
    }
  });
  it('hash lengths must be the algorithm digest length', () => {
    const base = { local: { address: '10.0.0.1', port: 500 }, remote: { address: '10.0.0.2', port: 500 }, cookieI: 1n, cookieR: 2n };
    expect(() => natd.detectIkev1({ ...base, hash: 'md5', destinationHash: Buffer.alloc(20), sourceHashes: [Buffer.alloc(16)] })).toThrow(
      /option "destinationHash" must be a hash of 16 bytes/,
    );
    expect(() => natd.detectIkev1({ ...base, hash: 'sha512', destinationHash: Buffer.alloc(64), sourceHashes: [Buffer.alloc(64), Buffer.alloc(20)] })).toThrow(
      /option "sourceHashes\[1\]" must be a hash of 64 bytes/,
    );
  });
});

describe('strict arguments', () => {
  const good = () => ({
    local: { address: '198.51.100.7', port: 500 },
    remote: { address: '10.0.0.2', port: 500 },
    spiI: hex(SPI_I),
    spiR: hex(ZERO),
    sourceHashes: [Buffer.alloc(20)],
    destinationHash: Buffer.alloc(20),
  });

  it('the namespace is frozen', () => {
    expect(Object.isFrozen(natd)).toBe(true);
    expect(Object.keys(natd).sort()).toEqual(['detect', 'detectIkev1', 'ikev1Hash', 'ikev2Hash']);
  });

  it('ikev2Hash names the bad argument', () => {
    expect(() => natd.ikev2Hash(hex('00'), 0n, '10.0.0.1', 500)).toThrow(/option "spiI" must be an 8-byte SPI/);
    expect(() => natd.ikev2Hash(0n, 0n, '10.0.0.1', 500)).toThrow(/option "spiI" must be a non-zero SPI/);
    expect(() => natd.ikev2Hash(1n, -1n, '10.0.0.1', 500)).toThrow(/option "spiR"/);
    expect(() => natd.ikev2Hash(1n, 2n ** 64n, '10.0.0.1', 500)).toThrow(RangeError);
    expect(() => natd.ikev2Hash(1 as never, 0n, '10.0.0.1', 500)).toThrow(/option "spiI" must be an 8-byte Uint8Array or a bigint/);
    expect(() => natd.ikev2Hash(1n, 0n, '10.0.0.256', 500)).toThrow(expect.objectContaining({ name: 'RangeError', message: expect.stringMatching(/"address"/) }));
    expect(() => natd.ikev2Hash(1n, 0n, 'example.com', 500)).toThrow(RangeError);
    expect(() => natd.ikev2Hash(1n, 0n, Buffer.alloc(5, 1), 500)).toThrow(/option "address" must be an address of 4 or 16 bytes/);
    expect(() => natd.ikev2Hash(1n, 0n, 42 as never, 500)).toThrow(TypeError);
    expect(() => natd.ikev2Hash(1n, 0n, '0.0.0.0', 500)).toThrow(/unspecified/);
    expect(() => natd.ikev2Hash(1n, 0n, '::', 500)).toThrow(/unspecified/);
    expect(() => natd.ikev2Hash(1n, 0n, '10.0.0.1', 0)).toThrow(/option "port" must be an integer from 1 to 65535/);
    expect(() => natd.ikev2Hash(1n, 0n, '10.0.0.1', 65536)).toThrow(RangeError);
    expect(() => natd.ikev2Hash(1n, 0n, '10.0.0.1', '500' as never)).toThrow(TypeError);
    expect(() => natd.ikev2Hash(1n, 0n, '10.0.0.1', 500.5)).toThrow(RangeError);
  });

  it('detect: the options object, own properties only, unknown names refused', () => {
    expect(() => natd.detect(undefined as never)).toThrow(TypeError);
    expect(() => natd.detect(null as never)).toThrow(TypeError);
    expect(() => natd.detect({ ...good(), spi: 1n } as never)).toThrow(/unknown option "spi"/);
    const inherited = Object.assign(Object.create({ spiI: hex(SPI_I) }), { ...good(), spiI: undefined });
    expect(() => natd.detect(inherited)).toThrow(/option "spiI"/);
  });

  it('detect: each field is named', () => {
    expect(() => natd.detect({ ...good(), local: undefined } as never)).toThrow(/option "local" must be an object/);
    expect(() => natd.detect({ ...good(), local: { address: '198.51.100.7' } } as never)).toThrow(/option "local.port"/);
    expect(() => natd.detect({ ...good(), remote: { address: '10.0.0.2', port: 500, family: 4 } } as never)).toThrow(/unknown option "remote.family"/);
    expect(() => natd.detect({ ...good(), remote: { address: '0.0.0.0', port: 500 } })).toThrow(/option "remote.address".*unspecified/);
    expect(() => natd.detect({ ...good(), sourceHashes: [] })).toThrow(/option "sourceHashes" must be at least one 20-byte hash/);
    expect(() => natd.detect({ ...good(), sourceHashes: Buffer.alloc(20) as never })).toThrow(/option "sourceHashes" must be an array/);
    expect(() => natd.detect({ ...good(), sourceHashes: [Buffer.alloc(20), 'x' as never] })).toThrow(/option "sourceHashes\[1\]" must be a 20-byte Uint8Array/);
    expect(() => natd.detect({ ...good(), sourceHashes: [Buffer.alloc(19)] })).toThrow(/option "sourceHashes\[0\]" must be a hash of 20 bytes/);
    expect(() => natd.detect({ ...good(), destinationHash: Buffer.alloc(32) })).toThrow(/option "destinationHash"/);
    expect(() => natd.detect({ ...good(), spiI: hex(ZERO) })).toThrow(/option "spiI" must be a non-zero SPI/);
    expect(() => natd.detect(good())).not.toThrow();
  });

  it('detectIkev1 requires hash and names cookies', () => {
    const v1 = { ...good(), spiI: undefined, spiR: undefined, cookieI: hex(SPI_I), cookieR: hex(SPI_R), hash: 'sha1' as const };
    delete (v1 as Record<string, unknown>).spiI;
    delete (v1 as Record<string, unknown>).spiR;
    expect(() => natd.detectIkev1(v1)).not.toThrow();
    expect(() => natd.detectIkev1({ ...v1, hash: undefined } as never)).toThrow(/option "hash"/);
    expect(() => natd.detectIkev1({ ...v1, cookieI: 0n })).toThrow(/option "cookieI"/);
    expect(() => natd.detectIkev1({ ...v1, spiI: 1n } as never)).toThrow(/unknown option "spiI"/);
  });
});
