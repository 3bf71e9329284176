// natt tunnel daemons at both ends of a real NAT (client, router with nftables masquerade, server namespaces): ping,
// a TCP transfer both ways with a hash of the bytes, and the NAT's mapping moved mid-transfer (conntrack flushed).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { natTopology, natUnavailable, sh } from '../lib/nat-topology';
import { ensureDist } from '../lib/dist';
import { TunnelDaemon } from '../lib/tunnel-daemon';

const why = natUnavailable() || (existsSync('/dev/net/tun') ? '' : 'no /dev/net/tun (CONFIG_TUN)');
const tag = `${process.pid % 10000}`;
const topo = natTopology('ntun', tag);
const NS = topo.ns;
const KEY_AB = Buffer.alloc(36, 0xab).toString('hex');
const KEY_BA = Buffer.alloc(36, 0xba).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'natt-tunnel-'));

function masquerade(range: string): string {
  return `flush ruleset
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "rs${tag}" ip protocol udp masquerade to :${range}
  }
}
`;
}

/** A tunnel configuration for one end: `me`/`peer` outer addresses as the SAs name them. */
function config(side: 'a' | 'b'): object {
  const a = side === 'a';
  const me = a ? '10.0.1.2' : '192.0.2.2';
  const peer = a ? '192.0.2.2' : '192.0.2.1'; // the server knows the client by the NAT's address (IKE would tell it)
  const [myNet, peerNet] = a ? ['10.10.1.0/24', '10.10.2.0/24'] : ['10.10.2.0/24', '10.10.1.0/24'];
  const out = { spi: a ? 0x1001 : 0x2002, key: a ? KEY_AB : KEY_BA, reqid: a ? 1 : 2 };
  const inn = { spi: a ? 0x2002 : 0x1001, key: a ? KEY_BA : KEY_AB, reqid: a ? 2 : 1 };
  const natt = { type: 'espinudp', sport: 4500, dport: 4500 };
  const gcm = (key: string) => ({ algorithm: 'aes-gcm-16', key: `0x${key}` });
  return {
    tun: { name: `nt${side}${tag}`, mtu: 1400, addresses: [a ? '10.10.1.1/32' : '10.10.2.1/32'], routes: [{ dst: peerNet }] },
    listen: { address: me, port: 4500 },
    sas: [
      { src: me, dst: peer, spi: out.spi, mode: 'tunnel', reqid: out.reqid, replayWindow: 1024, encryption: gcm(out.key), natt },
      { src: peer, dst: me, spi: inn.spi, mode: 'tunnel', reqid: inn.reqid, replayWindow: 1024, encryption: gcm(inn.key), natt },
    ],
    policies: [
      { selector: { src: myNet, dst: peerNet }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: me, dst: peer, reqid: out.reqid }] },
      { selector: { src: peerNet, dst: myNet }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: peer, dst: me, reqid: inn.reqid }] },
    ],
  };
}

function peer(ns: string, args: string[]): { proc: ReturnType<typeof spawn>; result: Promise<Record<string, unknown>> } {
  const proc = spawn('ip', ['netns', 'exec', ns, process.execPath, join(__dirname, 'tcp-peer.js'), ...args]);
  const lines: string[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    proc.on('exit', () => {
      const last = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => 'sentHash' in o || 'error' in o);
      if (last && !('error' in last)) resolve(last);
      else reject(new Error(`tcp peer: ${lines.join(' ')}`));
    });
  });
  return { proc, result };
}

describe.skipIf(!!why)(`natt tunnel through a NAT (client, masquerading router, server)${why ? ` (skipped: ${why})` : ''}`, () => {
  let A: TunnelDaemon;
  let B: TunnelDaemon;

  beforeAll(async () => {
    ensureDist();
    process.once('exit', topo.teardown); // even if vitest dies between here and afterAll
    topo.setup();
    execFileSync('ip', ['netns', 'exec', NS.r, 'nft', '-f', '-'], { input: masquerade('30000-30099') });
    B = new TunnelDaemon(NS.s, join(dir, 'b.json'), config('b'));
    A = new TunnelDaemon(NS.c, join(dir, 'a.json'), config('a'));
    await Promise.all([A.waitFor(/^tunnel up/), B.waitFor(/^tunnel up/)]);
  }, 120_000);

  afterAll(async () => {
    for (const d of [A, B]) if (d && d.proc.exitCode === null) d.proc.kill('SIGTERM');
    await Promise.all([A?.exited, B?.exited]);
    topo.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ping crosses the NAT through both TUNs (ESP-in-UDP, the server follows the NAT mapping)', async () => {
    const out = sh(['ping', '-c', '3', '-i', '0.2', '-W', '3', '10.10.2.1'], NS.c);
    expect(out).toMatch(/3 received/);
    await B.waitFor(/nat mapping changed: spi 0x00001001 peer 192\.0\.2\.1:4500 -> 192\.0\.2\.1:300\d\d/);
    const back = sh(['ping', '-c', '2', '-i', '0.2', '-W', '3', '10.10.1.1'], NS.s);
    expect(back).toMatch(/2 received/);
  });

  it('a TCP transfer both ways arrives byte for byte, and survives the NAT mapping moving mid-transfer', async () => {
    const size = 24 * 1024 * 1024;
    const server = peer(NS.s, ['server', '10.10.2.1', '7000', String(size)]);
    await new Promise((r) => setTimeout(r, 300));
    const client = peer(NS.c, ['client', '10.10.2.1', '7000', String(size)]);
    const mappingsBefore = B.lines.filter((l) => /nat mapping changed/.test(l)).length;
    // Mid-transfer: the masquerade moves to another port range and forgets its mappings.
    await new Promise((r) => setTimeout(r, 400));
    execFileSync('ip', ['netns', 'exec', NS.r, 'nft', '-f', '-'], { input: masquerade('31000-31099') });
    sh(['conntrack', '-F'], NS.r);
    // A transfer that stalls fails with what both daemons logged (counters, mappings), not a bare timeout.
    let stall: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => {
      stall = setTimeout(() => {
        reject(new Error(`the transfer stalled for 100 s\n--- daemon a:\n${A.lines.slice(-30).join('\n')}\n--- daemon b:\n${B.lines.slice(-30).join('\n')}`));
      }, 100_000);
    });
    const [c, s] = await Promise.race([Promise.all([client.result, server.result]), stalled]).finally(() => clearTimeout(stall));
    expect(c.sent).toBe(size);
    expect(s.received).toBe(size);
    expect(s.receivedHash).toBe(c.sentHash);
    expect(c.received).toBe(size);
    expect(c.receivedHash).toBe(s.sentHash);
    const moved = B.lines.filter((l) => /nat mapping changed/.test(l));
    expect(moved.length).toBeGreaterThan(mappingsBefore);
    expect(moved.at(-1)).toMatch(/-> 192\.0\.2\.1:310\d\d/);
  }, 120_000);

  it('SIGTERM takes each end down: exit 0, the TUN and its routes gone', async () => {
    A.proc.kill('SIGTERM');
    B.proc.kill('SIGTERM');
    expect(await A.exited).toBe(0);
    expect(await B.exited).toBe(0);
    expect(A.lines.join('\n')).toMatch(/SIGTERM: stopping\ntunnel down/);
    for (const [ns, side] of [
      [NS.c, 'a'],
      [NS.s, 'b'],
    ] as const) {
      expect(sh(['ip', '-j', 'link'], ns)).not.toContain(`nt${side}${tag}`);
      expect(sh(['ip', 'route'], ns)).not.toContain('10.10.');
    }
  });
});
