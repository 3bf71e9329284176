// ESP in TCP (RFC 9329) between two userland engines on loopback, captured into pcapng; tshark reads the TCP segments back.

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative } from '../../src/native/binding';
import { startCapture } from '../../src/capture';
import { KEY_CS, KEY_SC, closeAll, installTunnel, loopbackPair, until } from '../tcp/helpers';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const tsharkVersion = hasTshark ? /TShark \(Wireshark\) (\S+)/.exec(spawnSync('tshark', ['--version'], { encoding: 'utf8' }).stdout)?.[1] : undefined;
const ok = hasTshark && process.getuid?.() === 0 && (loadNative()?.constants.AF_PACKET ?? -1) > 0;
const why = ok ? '' : ' (skipped: needs tshark, root and the addon with packet sockets)';

describe.skipIf(!ok)(`natt capture: ESP in TCP${why}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'natt-capture-tcp-'));
  const cleanup: Array<() => unknown> = [];
  afterAll(async () => {
    while (cleanup.length) await cleanup.pop()!();
    if (!process.env.NATT_KEEP_PCAP) rmSync(dir, { recursive: true, force: true });
  });

  it('the TCP segments are in the pcapng: the TCP payloads tshark reads are RFC 9329 frames of the ESP packets, in order', async () => {
    const LO = '127.0.0.1';
    const { listener, client } = await loopbackPair();
    cleanup.push(() => closeAll(client, listener));
    const sPort = listener.address().port;
    const cPort = client.address().port;
    const file = join(dir, 'tcp.pcapng');
    const cap = startCapture({ out: file, interface: 'lo', udpPorts: [], tcpPorts: [sPort] });
    const dbC = new UserlandSadb();
    const dbS = new UserlandSadb();
    await installTunnel(dbC, { address: LO, port: cPort, net: '10.10.0.0/16' }, { address: LO, port: sPort, net: '10.20.0.0/16' }, { out: 0xc5, in: 0x5c }, { out: KEY_CS, in: KEY_SC });
    await installTunnel(dbS, { address: LO, port: sPort, net: '10.20.0.0/16' }, { address: LO, port: cPort, net: '10.10.0.0/16' }, { out: 0x5c, in: 0xc5 }, { out: KEY_SC, in: KEY_CS });
    const ec = new UserlandEngine({ socket: client, sadb: dbC, keepaliveSeconds: 0 });
    const es = new UserlandEngine({ socket: listener, sadb: dbS, keepaliveSeconds: 0 });
    cleanup.push(() => ec.close(), () => es.close());
    let got = 0;
    es.on('packet', () => got++);
    const words = ['foxtrot-1a2b', 'golf-3c4d', 'hotel-5e6f'];
    for (const w of words) {
      expect(ec.send(buildUdpPacket('10.10.0.5', 41111, '10.20.0.7', 42222, Buffer.from(w)))).toBe('sent');
      await new Promise((r) => setTimeout(r, 30)); // one ESP packet per segment, mostly
    }
    await until(() => got === words.length, 5000, 'the server engine to open every packet');
    await new Promise((r) => setTimeout(r, 100));
    const stats = await cap.stop();
    expect(stats.packets).toBeGreaterThanOrEqual(3);
    // tshark reassembles nothing here: it hands us each segment's payload, which we read as RFC 9329 frames
    // (a 2-byte length that counts itself, then the ESP packet): SPI 0xc5, sequence numbers 1, 2, 3.
    const out = execFileSync('tshark', ['-n', '-r', file, '-Y', `tcp.srcport==${cPort} && tcp.len>0`, '-T', 'fields', '-e', 'tcp.payload'], { encoding: 'utf8' });
    const stream = Buffer.concat(out.trim().split('\n').map((h) => Buffer.from(h.replace(/:/g, ''), 'hex')));
    const frames: Array<{ spi: number; seq: number }> = [];
    for (let at = 0; at + 2 <= stream.length; ) {
      const len = stream.readUInt16BE(at);
      expect(len).toBeGreaterThan(8);
      frames.push({ spi: stream.readUInt32BE(at + 2), seq: stream.readUInt32BE(at + 6) });
      at += len; // the length counts its own two bytes (RFC 9329 §3.1)
    }
    expect(frames).toEqual([1, 2, 3].map((seq) => ({ spi: 0xc5, seq })));
    // Wireshark 4.0's TCPENCAP dissector passes the length field to ESP (SPI read as 0xLLLL0000): it cannot decrypt
    // ESP in TCP. Note it here so that a tshark that can is noticed (then this project's notes should change).
    const dec = execFileSync('tshark', ['-n', '-r', file, '-d', `tcp.port==${sPort},tcpencap`, '-Y', 'esp', '-T', 'fields', '-e', 'esp.spi'], { encoding: 'utf8' });
    const spis = dec.trim().split('\n').filter(Boolean);
    expect(spis.length).toBe(3);
    if (!spis.every((x) => x === '0x000000c5')) console.log(`tshark ${tsharkVersion}: TCPENCAP reads SPIs ${spis.join(' ')} (the length field taken for the SPI)`);
    const raw = readFileSync(file);
    for (const w of words) expect(raw.includes(Buffer.from(w))).toBe(false);
  });
});
