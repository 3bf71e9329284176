// An independent decryptor: tshark reads a pcap of the engine's ESP-in-UDP datagrams, with the keys, and finds the inner payloads.

import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildUdpPacket } from '../../src/ip/packet';
import { writePcap } from './pcap';
import { GCM_KEY_AB, GCM_KEY_BA, enginePair, until } from './helpers';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasTshark)(`tshark decrypts the engine's traffic${hasTshark ? '' : ' (skipped: tshark not installed; apt-get install tshark)'}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'natt-tshark-'));
  const cleanup: Array<() => unknown> = [];
  afterAll(async () => {
    while (cleanup.length) await cleanup.pop()!();
    if (!process.env.NATT_KEEP_PCAP) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['tunnel', 4],
    ['transport', 4],
    ['tunnel', 6],
    ['transport', 6],
  ] as const)('%s mode, AES-GCM-16/256, IPv%i NAT-T', async (mode, family) => {
    const lo = family === 4 ? '127.0.0.1' : '::1';
    const { b, B, ea, eb } = await enginePair(family, mode, { ab: 0x1001, ba: 0x2002 }, cleanup);
    // Capture what B's socket receives: the ESP bytes and where they came from, rebuilt into IP/UDP for the pcap.
    const captured: Buffer[] = [];
    b.on('esp', (esp: Buffer, rinfo: { address: string; port: number }) => {
      captured.push(buildUdpPacket(rinfo.address, rinfo.port, B.address, B.port, esp));
    });
    let got = 0;
    eb.on('packet', () => got++);
    const words = ['alpha-7d1f', 'bravo-93c2', 'charlie-55e0'];
    for (const w of words) {
      const inner =
        mode === 'tunnel'
          ? buildUdpPacket('10.1.0.5', 41111, '10.2.0.7', 42222, Buffer.from(w))
          : buildUdpPacket(lo, 41111, lo, 42222, Buffer.from(w));
      expect(ea.send(inner)).toBe('sent');
    }
    await until(() => got === words.length, 5000, 'B to open every packet');
    const pcap = join(dir, `${mode}${family}.pcap`);
    writePcap(pcap, captured);
    const decode = (key: Buffer): string[] => {
      const sa = `"IPv${family}","${lo}","${lo}","0x00001001","AES-GCM with 16 octet ICV [RFC4106]","0x${key.toString('hex')}","NULL","",""`;
      const out = execFileSync(
        'tshark',
        [
          '-n',
          '-r', pcap,
          '-d', `udp.port==${B.port},udpencap`,
          '-o', 'esp.enable_encryption_decode:TRUE',
          '-o', `uat:esp_sa:${sa}`,
          '-T', 'fields',
          '-E', 'separator=|',
          '-e', 'esp.spi',
          '-e', 'esp.sequence',
          '-e', 'udp.payload',
          '-e', 'udp.srcport',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      return out.trim().split('\n');
    };
    const lines = decode(GCM_KEY_AB);
    expect(lines).toHaveLength(words.length);
    lines.forEach((line, i) => {
      const [spi, seq, data, ports] = line.split('|');
      expect(spi).toBe('0x00001001');
      expect(Number(seq)).toBe(i + 1);
      // The inner UDP datagram's payload, found by tshark's own decryption and dissection.
      expect(Buffer.from(data.split(',').pop()!, 'hex').toString()).toBe(words[i]);
      expect(ports.split(',')).toContain('41111'); // the inner UDP header, dissected after decryption
    });
    // Negative control: with a wrong key tshark finds none of the payloads.
    const wrong = decode(GCM_KEY_BA).join('\n').toLowerCase();
    for (const w of words) expect(wrong).not.toContain(Buffer.from(w).toString('hex'));
  });
});
