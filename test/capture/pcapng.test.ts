// The pcapng writer read back by a parser of the spec's block layout and by tshark; the port filter in TypeScript and in the kernel.

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_RAW, PcapngWriter, captureFilter, espSaTable, matchesPorts, startCapture } from '../../src/capture';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative } from '../../src/native/binding';
import { until } from '../userland/helpers';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'natt-pcapng-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Split a little-endian pcapng into blocks, checking each block's two length fields and 4-byte alignment. */
function blocks(b: Buffer): { type: number; body: Buffer }[] {
  const out: { type: number; body: Buffer }[] = [];
  let at = 0;
  while (at < b.length) {
    const type = b.readUInt32LE(at);
    const len = b.readUInt32LE(at + 4);
    expect(len % 4).toBe(0);
    expect(b.readUInt32LE(at + len - 4)).toBe(len);
    out.push({ type, body: b.subarray(at + 8, at + len - 4) });
    at += len;
  }
  expect(at).toBe(b.length);
  return out;
}

describe('PcapngWriter', () => {
  it('writes SHB, IDB (nanosecond timestamps), EPB (padded, flags), ISB in the spec layout', () => {
    const parts: Buffer[] = [];
    const w = new PcapngWriter((b) => void parts.push(Buffer.from(b)), { application: 'test', comment: 'hello' });
    const id = w.addInterface({ linkType: LINKTYPE_RAW, snapLength: 100, name: 'lo' });
    expect(id).toBe(0);
    const pkt = buildUdpPacket('192.0.2.1', 4500, '192.0.2.2', 4500, Buffer.from([0xff]));
    w.packet(0, 1_700_000_000, 123_456_789, pkt, pkt.length, 'out');
    const big = Buffer.alloc(150, 0x45);
    w.packet(0, 1_700_000_001, 0, big); // cut to the snap length
    w.statistics(0, 1_700_000_002_000_000_000n, { received: 2n, dropped: 0n });
    w.close();
    expect(() => w.packet(0, 0, 0, pkt)).toThrow(/closed/);
    const bl = blocks(Buffer.concat(parts));
    expect(bl.map((x) => x.type)).toEqual([0x0a0d0d0a, 1, 6, 6, 5]);
    expect(bl[0].body.readUInt32LE(0)).toBe(0x1a2b3c4d);
    expect(bl[1].body.readUInt16LE(0)).toBe(LINKTYPE_RAW);
    expect(bl[1].body.readUInt32LE(4)).toBe(100);
    const epb = bl[2].body;
    const ns = (BigInt(epb.readUInt32LE(4)) << 32n) | BigInt(epb.readUInt32LE(8));
    expect(ns).toBe(1_700_000_000_123_456_789n);
    expect(epb.readUInt32LE(12)).toBe(pkt.length);
    expect(epb.subarray(20, 20 + pkt.length)).toEqual(pkt);
    expect(bl[3].body.readUInt32LE(12)).toBe(100); // captured
    expect(bl[3].body.readUInt32LE(16)).toBe(150); // on the wire
    expect(() => w.addInterface({ linkType: 1 })).toThrow(/closed/);
  });

  it('refuses a bad sink, interface id and link type by name', () => {
    expect(() => new PcapngWriter('x' as never)).toThrow(/sink/);
    const w = new PcapngWriter(() => {});
    expect(() => w.packet(0, 0, 0, new Uint8Array(1))).toThrow(/iface/);
    expect(() => w.addInterface({ linkType: 70000 })).toThrow(/linkType/);
  });

  it.skipIf(!hasTshark)(`tshark reads the file: interfaces, times, IPv4 and IPv6, directions${hasTshark ? '' : ' (skipped: no tshark)'}`, () => {
    const file = join(dir, 'unit.pcapng');
    const fd = openSync(file, 'w');
    const w = new PcapngWriter(fd, { os: 'Linux', application: 'natt test' });
    w.addInterface({ linkType: LINKTYPE_RAW, name: 'eth9' });
    w.addInterface({ linkType: LINKTYPE_RAW, name: 'lo' });
    w.packet(0, 1_700_000_000, 5, buildUdpPacket('192.0.2.1', 500, '192.0.2.2', 500, Buffer.alloc(28)), undefined, 'in');
    w.packet(1, 1_700_000_000, 6, buildUdpPacket('2001:db8::1', 4500, '2001:db8::2', 4500, Buffer.from([0xff])), undefined, 'out');
    w.statistics(0, 1_700_000_001_000_000_000n, { received: 1n });
    w.close();
    closeSync(fd);
    const out = execFileSync(
      'tshark',
      ['-n', '-r', file, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.interface_name', '-e', 'frame.time_epoch', '-e', 'ip.src', '-e', 'ipv6.src', '-e', 'frame.packet_flags_direction', '-e', 'udpencap.nat_keepalive', '-e', 'isakmp'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    )
      .trim()
      .split('\n');
    expect(out).toHaveLength(2);
    expect(out[0]).toMatch(/^eth9\|1700000000\.000000005\|192\.0\.2\.1\|\|0x0*1\|/);
    expect(out[1]).toMatch(/^lo\|1700000000\.000000006\|\|2001:db8::1\|0x0*2\|/);
    expect(out[1].split('|')[5]).not.toBe(''); // port 4500 with one 0xff byte: a NAT keepalive
  });
});

describe('the port filter', () => {
  const p4 = buildUdpPacket('192.0.2.1', 1234, '192.0.2.2', 4500, Buffer.alloc(8));
  const p6 = buildUdpPacket('2001:db8::1', 500, '2001:db8::2', 999, Buffer.alloc(8));
  it('keeps a packet by source or destination port, per protocol; leaves out later fragments and garbage', () => {
    expect(matchesPorts(p4, { udp: [4500], tcp: [] })).toBe(true);
    expect(matchesPorts(p4, { udp: [], tcp: [4500] })).toBe(false);
    expect(matchesPorts(p6, { udp: [500], tcp: [] })).toBe(true);
    expect(matchesPorts(p6, { udp: [4500], tcp: [] })).toBe(false);
    const frag = Buffer.from(p4);
    frag[7] = 1; // fragment offset 8
    expect(matchesPorts(frag, { udp: [4500], tcp: [] })).toBe(false);
    expect(matchesPorts(Buffer.alloc(3), { udp: [4500], tcp: [] })).toBe(false);
    expect(matchesPorts(Buffer.alloc(60, 0x55), { udp: [4500], tcp: [] })).toBe(false);
  });

  it('builds a BPF program of whole 8-byte instructions ending in returns', () => {
    const prog = captureFilter({ udp: [500, 4500], tcp: [4500] }, 262144);
    expect(prog.length % 8).toBe(0);
    expect(prog.length / 8).toBeGreaterThan(10);
    expect(() => captureFilter({ udp: Array.from({ length: 200 }, (_, i) => i + 1), tcp: [] }, 100)).toThrow(/jumps too far/);
  });

  const packets = (loadNative()?.constants.AF_PACKET ?? -1) > 0 && process.getuid?.() === 0;
  it.skipIf(!packets)(`in the kernel: on every interface, only the asked port reaches the process${packets ? '' : ' (skipped: needs root and the addon)'}`, async () => {
    const rx = dgram.createSocket('udp4');
    const other = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    await new Promise<void>((r) => other.bind(0, '127.0.0.1', r));
    const port = (rx.address() as AddressInfo).port;
    const otherPort = (other.address() as AddressInfo).port;
    const cap = startCapture({ out: join(dir, 'kernel.pcapng'), udpPorts: [port], tcpPorts: [] });
    try {
      for (let i = 0; i < 50; i++) tx.send(Buffer.from('not this'), otherPort, '127.0.0.1');
      for (let i = 0; i < 3; i++) tx.send(Buffer.from('this'), port, '127.0.0.1');
      await until(() => cap.stats().packets >= 3, 5000, 'three packets');
      await new Promise((r) => setTimeout(r, 100));
      const s = await cap.stop();
      expect(s.packets).toBe(3);
      expect(s.filtered).toBe(0); // the 50 others never left the kernel
    } finally {
      await cap.stop();
      rx.close();
      other.close();
      tx.close();
    }
  });
});

describe('espSaTable', () => {
  it('one quoted line per ESP SA; AEAD with NULL authentication; unsupported suites as comments; hidden keys refused', () => {
    const t = espSaTable([
      { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1234, encryption: { algorithm: 'aes-gcm-16', key: Buffer.alloc(20, 1) } },
      { src: '2001:db8::1', dst: '2001:db8::2', spi: 0xfffffffe, encryption: { algorithm: 'aes-cbc', key: Buffer.alloc(16, 2) }, integrity: { algorithm: 'hmac-sha1-96', key: Buffer.alloc(20, 3) } },
      { src: '192.0.2.1', dst: '192.0.2.2', spi: 7, encryption: { algorithm: 'chacha20-poly1305', key: Buffer.alloc(36, 4) } },
      { src: '192.0.2.1', dst: '192.0.2.2', spi: 8, protocol: 'ah', integrity: { algorithm: 'hmac-sha1-96', key: Buffer.alloc(20, 5) } },
    ]);
    const lines = t.text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines).toEqual([
      `"IPv4","192.0.2.1","192.0.2.2","0x00001234","AES-GCM with 16 octet ICV [RFC4106]","0x${'01'.repeat(20)}","NULL",""`,
      `"IPv6","2001:db8::1","2001:db8::2","0xfffffffe","AES-CBC [RFC3602]","0x${'02'.repeat(16)}","HMAC-SHA-1-96 [RFC2404]","0x${'03'.repeat(20)}"`,
    ]);
    expect(t.entries).toBe(2);
    expect(t.skipped).toEqual(["SPI 0x00000007 (192.0.2.1 -> 192.0.2.2): Wireshark's ESP dissector cannot decrypt chacha20-poly1305"]);
    expect(t.text).not.toContain('04'.repeat(8));
    expect(() => espSaTable([{ src: '192.0.2.1', dst: '192.0.2.2', spi: 9, encryption: { algorithm: 'aes-cbc', key: new Uint8Array(0) } }])).toThrow(/keys are hidden/);
  });
});
