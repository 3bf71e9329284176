// natt capture: the command over real loopback ESP-in-UDP; keys only in the --esp-sa file (mode 0600), never elsewhere.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureCommand, type CaptureIo } from '../../src/cli/capture';
import { runCommand } from '../../src/cli/args';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative } from '../../src/native/binding';
import { ensureDist, ROOT } from '../lib/dist';
import { GCM_KEY_AB, GCM_KEY_BA, enginePair, until } from '../userland/helpers';

const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const root = process.getuid?.() === 0;
const packet = (loadNative()?.constants.AF_PACKET ?? -1) > 0;
const why = !hasTshark ? ' (skipped: tshark not installed)' : !root ? ' (skipped: needs root for AF_PACKET)' : !packet ? ' (skipped: no native addon with packet sockets)' : '';

function collector() {
  const text: string[] = [];
  return { write: (s: string) => void text.push(s), text };
}

const hexOf = (b: Buffer): string => b.toString('hex');

describe('natt capture: usage', () => {
  it.each([
    [[], /-w\/--out FILE is required/],
    [['-w', 'x', '--count', '0'], /--count must be an integer/],
    [['-w', 'x', '--duration', 'soon'], /--duration must be a number/],
    [['-w', 'x', '--udp-port', '70000'], /--udp-port must be an integer from 0 to 65535/],
    [['-w', 'x', '--udp-port', '0', '--tcp-port', '0'], /no port to capture/],
    [['-w', 'x', '--backend', 'xfrm'], /give --esp-sa FILE/],
    [['-w', 'x', '--esp-sa', 'x'], /must be different files/],
    [['-w', 'x', '--esp-sa', 'y', '--backend', 'userland'], /unknown backend/],
  ])('%j is a usage error (exit 2)', async (argv, msg) => {
    const out = collector();
    const err = collector();
    expect(await runCommand(captureCommand, argv as string[], { out, err })).toBe(2);
    expect(err.text.join('')).toMatch(msg);
    expect(out.text.join('')).toBe('');
  });
});

describe.skipIf(why !== '')(`natt capture on loopback${why}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'natt-capture-cli-'));
  const cleanup: Array<() => unknown> = [];
  afterAll(async () => {
    while (cleanup.length) await cleanup.pop()!();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--esp-sa writes the table (mode 0600) that lets tshark decrypt the pcapng; stdout and stderr hold no key', async () => {
    const { dbA, A, B, ea, eb } = await enginePair(4, 'tunnel', { ab: 0x3001, ba: 0x4002 }, cleanup);
    let got = 0;
    eb.on('packet', () => got++);

    const pcap = join(dir, 'cli.pcapng');
    const espSa = join(dir, 'esp_sa');
    const out = collector();
    const err = collector();
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    let stop!: (s: string) => void;
    const stopSignal = new Promise<string>((r) => (stop = r));
    const io: CaptureIo = { out, err, sadb: dbA, stopSignal, onReady: () => ready() };
    const code = runCommand(captureCommand, ['-w', pcap, '-i', 'lo', '--udp-port', `${A.port},${B.port}`, '--tcp-port', '0', '--esp-sa', espSa], io);
    await isReady;
    // An SA added during the capture is in the table written at the end.
    await dbA.add({ src: '127.0.0.1', dst: '127.0.0.9', spi: 0x5005, mode: 'tunnel', encryption: { algorithm: 'aes-cbc', key: Buffer.alloc(16, 0x77) }, integrity: { algorithm: 'hmac-sha2-256-128', key: Buffer.alloc(32, 0x66) } });
    const words = ['delta-11aa', 'echo-22bb'];
    for (const w of words) ea.send(buildUdpPacket('10.1.0.5', 41111, '10.2.0.7', 42222, Buffer.from(w)));
    await until(() => got === words.length, 5000, 'B to open both packets');
    await new Promise((r) => setTimeout(r, 100));
    stop('SIGINT');
    expect(await code).toBe(0);
    const console = out.text.join('') + err.text.join('');
    expect(console).toMatch(/natt capture: 2 packets \(\d+ bytes\) written to .*cli\.pcapng, 0 dropped by the kernel; stopped by SIGINT; seen on lo/);
    expect(console).toMatch(/3 ESP SAs with keys in .*esp_sa \(mode 0600\)/);
    for (const k of [GCM_KEY_AB, GCM_KEY_BA, Buffer.alloc(16, 0x77)]) {
      expect(console.toLowerCase()).not.toContain(hexOf(k).slice(0, 16));
      expect(readFileSync(pcap).includes(k)).toBe(false);
    }
    expect(statSync(espSa).mode & 0o777).toBe(0o600);
    const table = readFileSync(espSa, 'utf8');
    expect(table).toContain(hexOf(GCM_KEY_AB));
    expect(table).toContain('"0x00005005","AES-CBC [RFC3602]","0x77777777777777777777777777777777","HMAC-SHA-256-128 [RFC4868]"');
    const args = ['-n', '-r', pcap, '-d', `udp.port==${B.port},udpencap`, '-o', 'esp.enable_encryption_decode:TRUE'];
    for (const line of table.split('\n')) if (line && !line.startsWith('#')) args.push('-o', `uat:esp_sa:${line}`);
    const lines = execFileSync('tshark', [...args, '-T', 'fields', '-e', 'esp.spi', '-e', 'udp.payload'], { encoding: 'utf8' }).trim().split('\n');
    expect(lines.map((l) => Buffer.from(l.split('\t')[1].split(',').pop()!, 'hex').toString())).toEqual(words);
  });

  beforeAll(() => ensureDist(), 240_000);

  it('--backend daemon --control: the table comes from a daemon that allows revealing keys; one that does not is exit 1 and no capture', async () => {
    const { serveControl } = await import('../../src/control/server');
    const daemonDb = new UserlandSadb();
    await daemonDb.add({ src: '127.0.0.1', dst: '127.0.0.2', spi: 0x6006, mode: 'tunnel', encryption: { algorithm: 'aes-gcm-16', key: GCM_KEY_AB }, natt: { type: 'espinudp', sport: 4500, dport: 4500 } });
    const open = await serveControl(daemonDb, { path: join(dir, 'open.sock'), revealKeys: true });
    const closed = await serveControl(daemonDb, { path: join(dir, 'closed.sock') });
    cleanup.push(() => open.close(), () => closed.close());
    const run = async (sock: string, pcap: string, espSa: string) => {
      const out = collector();
      const err = collector();
      let stop!: (s: string) => void;
      const stopSignal = new Promise<string>((r) => (stop = r));
      const code = runCommand(captureCommand, ['-w', pcap, '-i', 'lo', '--udp-port', '9', '--tcp-port', '0', '--esp-sa', espSa, '--backend', 'daemon', '--control', sock], {
        out,
        err,
        stopSignal,
        onReady: () => setTimeout(() => stop('SIGTERM'), 50),
      });
      return { code: await code, out: out.text.join(''), err: err.text.join('') };
    };
    const ok = await run(join(dir, 'open.sock'), join(dir, 'd1.pcapng'), join(dir, 'd1.esp_sa'));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/1 ESP SA with keys in .*d1\.esp_sa/);
    expect(readFileSync(join(dir, 'd1.esp_sa'), 'utf8')).toContain(`"0x00006006","AES-GCM with 16 octet ICV [RFC4106]","0x${hexOf(GCM_KEY_AB)}","NULL",""`);
    const no = await run(join(dir, 'closed.sock'), join(dir, 'd2.pcapng'), join(dir, 'd2.esp_sa'));
    expect(no.code).toBe(1);
    expect(no.err).toMatch(/^natt capture: SPI 0x00006006 \(127\.0\.0\.1 -> 127\.0\.0\.2\): its keys are hidden: the daemon gives no key material to its clients/);
    expect(existsSync(join(dir, 'd2.pcapng'))).toBe(false);
    expect(existsSync(join(dir, 'd2.esp_sa'))).toBe(false);
    expect(no.out + no.err).not.toContain(hexOf(GCM_KEY_AB).slice(0, 16));
  });

  it('the installed command: -c stops it, exit 0; without --esp-sa no SA database is opened and no key file exists', async () => {
    const rx = dgram.createSocket('udp4');
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    cleanup.push(() => rx.close(), () => tx.close());
    const port = (rx.address() as AddressInfo).port;
    const pcap = join(dir, 'bin.pcapng');
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'natt.js'), 'capture', '-w', pcap, '-i', 'lo', '--udp-port', String(port), '--tcp-port', '0', '-c', '3', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
    // The capture is up once its file exists (written after the socket and its filter).
    await until(() => existsSync(pcap), 10000, 'the capture to start');
    const sender = setInterval(() => tx.send(Buffer.from([0xff]), port, '127.0.0.1'), 20);
    const code = await exited;
    clearInterval(sender);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const res = JSON.parse(stdout.trim());
    expect(res).toMatchObject({ packets: 3, stoppedBy: 'count', interfaces: ['lo'] });
    expect(res.espSa).toBeUndefined();
    const n = execFileSync('tshark', ['-n', '-r', pcap, '-d', `udp.port==${port},udpencap`, '-T', 'fields', '-e', 'udpencap.nat_keepalive'], { encoding: 'utf8' });
    expect(n.trim().split('\n')).toHaveLength(3);
  });
});
