// startCapture() on loopback with real ESP-in-UDP between two userland engines; tshark, the independent decoder, reads the pcapng.

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative } from '../../src/native/binding';
import { startCapture, writeEspSaFile } from '../../src/capture';
import type { SecurityAssociation } from '../../src/sadb/types';
import { GCM_KEY_AB, GCM_KEY_BA, enginePair, until } from '../userland/helpers';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const root = process.getuid?.() === 0;
const native = loadNative() !== null && typeof loadNative()?.constants.AF_PACKET === 'number' && loadNative()!.constants.AF_PACKET! > 0;
const why = !hasTshark ? ' (skipped: tshark not installed)' : !root ? ' (skipped: needs root for AF_PACKET)' : !native ? ' (skipped: no native addon with packet sockets)' : '';

/** tshark over a pcapng, with an esp_sa file (or none), ports decoded as ESP-in-UDP. */
function tshark(file: string, ports: number[], espSa: string | undefined, fields: string[]): string[] {
  const args = ['-n', '-r', file];
  for (const p of ports) args.push('-d', `udp.port==${p},udpencap`);
  if (espSa) {
    // Each line of the file as one UAT record: what Wireshark reads from the profile's esp_sa file.
    args.push('-o', 'esp.enable_encryption_decode:TRUE');
    for (const line of readFileSync(espSa, 'utf8').split('\n')) if (line && !line.startsWith('#')) args.push('-o', `uat:esp_sa:${line}`);
  }
  args.push('-T', 'fields', '-E', 'separator=|');
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out.trim() === '' ? [] : out.trim().split('\n');
}

describe.skipIf(why !== '')(`natt capture: ESP-in-UDP on loopback into pcapng, decrypted by tshark${why}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'natt-capture-'));
  const cleanup: Array<() => unknown> = [];
  afterAll(async () => {
    while (cleanup.length) await cleanup.pop()!();
    if (!process.env.NATT_KEEP_PCAP) rmSync(dir, { recursive: true, force: true });
  });

  it.each([4, 6] as const)('IPv%i: the pcapng holds every datagram once; with the esp_sa table tshark shows the inner payloads', async (family) => {
    const { dbA, A, B, ea, eb } = await enginePair(family, 'tunnel', { ab: 0x1001, ba: 0x2002 }, cleanup);

    const file = join(dir, `esp${family}.pcapng`);
    const cap = startCapture({ out: file, interface: 'lo', udpPorts: [A.port, B.port], tcpPorts: [] });
    let gotB = 0;
    let gotA = 0;
    eb.on('packet', () => gotB++);
    ea.on('packet', () => gotA++);
    const words = ['alpha-7d1f', 'bravo-93c2', 'charlie-55e0'];
    for (const w of words) expect(ea.send(buildUdpPacket('10.1.0.5', 41111, '10.2.0.7', 42222, Buffer.from(w)))).toBe('sent');
    expect(eb.send(buildUdpPacket('10.2.0.7', 42222, '10.1.0.5', 41111, Buffer.from('reply-0b1e')))).toBe('sent');
    await until(() => gotB === words.length && gotA === 1, 5000, 'both engines to open every packet');
    await until(() => cap.stats().packets >= 4, 5000, 'the capture to see 4 datagrams');
    const stats = await cap.stop();
    expect(stats.packets).toBe(4); // once each: loopback's outgoing copies are left out
    expect(stats.interfaces).toEqual(['lo']);
    expect(await cap.stop()).toEqual(stats); // idempotent

    // Without keys: tshark sees ESP-in-UDP, SPIs and sequence numbers, but no payload.
    const plain = tshark(file, [A.port, B.port], undefined, ['esp.spi', 'esp.sequence', 'udp.srcport']);
    expect(plain.map((l) => l.split('|').slice(0, 2).join('|'))).toEqual(['0x00001001|1', '0x00001001|2', '0x00001001|3', '0x00002002|1']);
    const raw = readFileSync(file);
    for (const w of words) expect(raw.includes(Buffer.from(w))).toBe(false);

    // The esp_sa table from A's database (keys revealed: the operator asked), mode 0600.
    const espSa = join(dir, `esp_sa${family}`);
    const sas: SecurityAssociation[] = [];
    for await (const sa of dbA.dump()) sas.push(sa);
    const res = writeEspSaFile(espSa, sas);
    expect(res).toEqual({ entries: 2, skipped: [] });
    expect(statSync(espSa).mode & 0o777).toBe(0o600);
    const lines = tshark(file, [A.port, B.port], espSa, ['esp.spi', 'udp.payload']);
    expect(lines).toHaveLength(4);
    const payloads = lines.map((l) => Buffer.from(l.split('|')[1].split(',').pop()!, 'hex').toString());
    expect(payloads).toEqual([...words, 'reply-0b1e']);
    // The capture file itself never holds a key.
    expect(raw.includes(GCM_KEY_AB)).toBe(false);
    expect(raw.includes(GCM_KEY_BA)).toBe(false);
  });

  it('a count stops the capture by itself and onStop is told; TCP ports are captured as well', async () => {
    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    cleanup.push(() => rx.close(), () => tx.close());
    const port = (rx.address() as AddressInfo).port;
    const server = net.createServer((s) => s.on('data', () => s.end()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => server.close());
    const tcpPort = (server.address() as AddressInfo).port;
    const file = join(dir, 'count.pcapng');
    let stoppedWith: { packets: number } | undefined;
    const cap = startCapture({ out: file, interface: 'lo', udpPorts: [port], tcpPorts: [tcpPort], count: 20, onStop: (s) => (stoppedWith = s) });
    const c = net.connect(tcpPort, '127.0.0.1');
    await new Promise<void>((r) => c.on('connect', r));
    c.write('hello-over-tcp');
    await new Promise<void>((r) => c.on('close', () => r()));
    const tcpSeen = cap.stats().packets;
    expect(tcpSeen).toBeGreaterThanOrEqual(6); // handshake, data, ack, fin both ways
    for (let i = 0; i < 40; i++) tx.send(Buffer.from([0xff]), port, '127.0.0.1'); // NAT keepalives
    await until(() => stoppedWith !== undefined, 5000, 'the capture to stop at 20 packets');
    expect(stoppedWith!.packets).toBe(20);
    const out = tshark(file, [port], undefined, ['tcp.dstport', 'udpencap.nat_keepalive']);
    expect(out).toHaveLength(20);
    const tcpLines = out.filter((l) => /^\d+\|$/.test(l));
    const udpLines = out.filter((l) => l.startsWith('|'));
    expect(tcpLines.length).toBeGreaterThanOrEqual(tcpSeen);
    expect(tcpLines).toContain(`${tcpPort}|`);
    expect(udpLines.length).toBe(20 - tcpLines.length);
    for (const l of udpLines) expect(l).toMatch(/^\|\S+$/); // each a keepalive, decoded as such
  });

  it('refuses bad options by name, and a capture that cannot start leaves no file', () => {
    expect(() => startCapture({ out: join(dir, 'x.pcapng'), udpPorts: [0] })).toThrow(/udpPorts\[0\]/);
    expect(() => startCapture({ out: join(dir, 'x.pcapng'), snapLength: 10 })).toThrow(/snapLength/);
    expect(() => startCapture({ out: join(dir, 'x.pcapng'), bogus: 1 } as never)).toThrow(/unknown option "bogus"/);
    expect(() => startCapture({ out: join(dir, 'y.pcapng'), interface: 'nosuchif0' })).toThrow(/no interface named/);
    expect(() => statSync(join(dir, 'y.pcapng'))).toThrow();
    writeFileSync(join(dir, 'keep'), 'x');
  });
});
