// ESP in TCP through a real NAT (client, router with nftables masquerade, server namespaces): a transfer both ways, the
// TCP connection reset mid-transfer by the router, the initiator reconnecting from a new port, the responder's SAs
// following it; then tshark reads the capture with an RFC 9329 stream decoder and decrypts the ESP with the keys.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { have, natTopology, natUnavailable, sh } from '../lib/nat-topology';

const ROOT = join(__dirname, '..', '..');
const why = natUnavailable();
const tsharkWhy = why || (!have('tshark', ['--version']) ? 'tshark not installed (apt-get install tshark)' : !have('tcpdump', ['--version']) ? 'tcpdump not installed' : '');

const tag = `${(process.pid + 7) % 10000}`;
const topo = natTopology('natt', `t${tag}`.slice(0, 5));
const NS = topo.ns;
const KEY_CS = Buffer.alloc(36, 0x3c).toString('hex');
const KEY_SC = Buffer.alloc(36, 0xc3).toString('hex');
const COUNT = 3000;
const SIZE = 1000;
const SPI_CS = 0xc5;
const SPI_SC = 0x5c;

interface Msg {
  ev: string;
  [k: string]: unknown;
}

/** A child endpoint (test/tcp/endpoint.js) in a namespace: JSON lines in and out. */
class Endpoint {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly msgs: Msg[] = [];
  readonly stderr: string[] = [];
  constructor(ns: string, cfg: unknown) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, join(__dirname, 'endpoint.js'), JSON.stringify(cfg)]);
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      try {
        this.msgs.push(JSON.parse(l) as Msg);
      } catch {
        this.stderr.push(l);
      }
    });
    this.proc.stderr.on('data', (d) => this.stderr.push(String(d)));
  }
  async wait(pred: (m: Msg) => boolean, ms = 20_000, from = 0): Promise<Msg> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.msgs.slice(from).find(pred);
      if (m) return m;
      if (Date.now() > end) {
        const tail = this.msgs.filter((x) => x.ev !== 'progress').slice(-12);
        throw new Error(`endpoint: nothing matched; saw ${JSON.stringify(tail)} ${this.stderr.join('').slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  all(ev: string): Msg[] {
    return this.msgs.filter((m) => m.ev === ev);
  }
  cmd(o: unknown): void {
    this.proc.stdin.write(`${JSON.stringify(o)}\n`);
  }
  async stats(): Promise<Msg> {
    const from = this.msgs.length;
    this.cmd({ cmd: 'stats' });
    return this.wait((m) => m.ev === 'stats', 5000, from);
  }
  kill(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}

function masquerade(): string {
  return `flush ruleset
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${topo.dev.rs}" masquerade
  }
}
`;
}

/** The router resets one TCP flow (the client's port `p`), both ways: a middlebox killing the connection. */
function cutFlow(p: number): void {
  sh(['nft', '-f', '-'], NS.r, `table inet cut {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip saddr 10.0.1.2 tcp sport ${p} reject with tcp reset
    ip daddr 10.0.1.2 tcp dport ${p} reject with tcp reset
  }
}
`);
}

describe.skipIf(!!why)(`ESP in TCP through a real NAT${why ? ` (skipped: ${why})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'natt-tcpnat-'));
  const pcap = join(dir, 'server.pcap');
  let server: Endpoint | undefined;
  let client: Endpoint | undefined;
  let dump: ChildProcess | undefined;
  const result: { firstPort?: number; secondPort?: number; clientStats?: Msg; serverStats?: Msg; ikeSent?: number } = {};

  beforeAll(() => {
    const src = join(ROOT, 'src', 'tcp', 'connection.ts');
    const out = join(ROOT, 'dist', 'tcp', 'connection.js');
    if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
      spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'ignore' });
    }
    if (!existsSync(out)) throw new Error('dist/ is missing: run npm run compile');
    process.once('exit', topo.teardown);
    topo.setup();
    execFileSync('ip', ['netns', 'exec', NS.r, 'nft', '-f', '-'], { input: masquerade() });
  }, 120_000);

  afterAll(() => {
    for (const e of [client, server]) e?.kill();
    dump?.kill();
    topo.teardown();
    if (!process.env.NATT_KEEP_PCAP) rmSync(dir, { recursive: true, force: true });
    expect(sh(['ip', 'netns', 'list'])).not.toContain(NS.r);
  });

  it(`a transfer both ways (${COUNT} x ${SIZE} bytes each way), reset mid-transfer: the initiator reconnects, the responder's SAs follow the new port, the transfer completes`, async () => {
    if (!tsharkWhy) {
      dump = spawn('ip', ['netns', 'exec', NS.s, 'tcpdump', '-i', topo.dev.sr, '-B', '32768', '-U', '-s', '0', '-w', pcap, 'tcp', 'port', '4500'], { stdio: ['ignore', 'ignore', 'pipe'] });
      await new Promise<void>((res) => {
        const t = setTimeout(res, 3000);
        dump!.stderr!.on('data', (d) => /listening on/.test(String(d)) && (clearTimeout(t), res()));
      });
    }
    const transfer = { count: COUNT, size: SIZE, window: 64, rtoMs: 300 };
    server = new Endpoint(NS.s, {
      role: 'server', server: { address: '192.0.2.2', port: 4500 }, peerPort: 4500,
      me: { address: '192.0.2.2', net: '10.20.0.0/16', host: '10.20.0.7' }, peer: { address: '192.0.2.1', net: '10.10.0.0/16', host: '10.10.0.5' },
      spis: { out: SPI_SC, in: SPI_CS }, keys: { out: KEY_SC, in: KEY_CS }, transfer: { ...transfer, id: 2, peerId: 1, seed: 2, peerSeed: 1 },
    });
    await server.wait((m) => m.ev === 'ready');
    client = new Endpoint(NS.c, {
      role: 'client', server: { address: '192.0.2.2', port: 4500 }, reconnect: { minDelay: 100, maxDelay: 1000, attempts: 10 },
      me: { address: '10.0.1.2', net: '10.10.0.0/16', host: '10.10.0.5' }, peer: { address: '192.0.2.2', net: '10.20.0.0/16', host: '10.20.0.7' },
      spis: { out: SPI_CS, in: SPI_SC }, keys: { out: KEY_CS, in: KEY_SC }, transfer: { ...transfer, id: 1, peerId: 2, seed: 1, peerSeed: 2 },
    });
    const ready = await client.wait((m) => m.ev === 'ready');
    result.firstPort = (ready.local as { port: number }).port;
    // IKE both ways before the data: 3 requests, 3 responses.
    client.cmd({ cmd: 'ike', n: 3 });
    await client.wait(() => client!.all('ike').length === 3);
    const firstConn = await server.wait((m) => m.ev === 'connection');
    server.cmd({ cmd: 'start' });
    client.cmd({ cmd: 'start' });
    // Mid-transfer, the router resets the connection.
    await server.wait((m) => m.ev === 'progress' && (m.received as number) >= COUNT / 3 && (m.acked as number) >= COUNT / 4, 60_000);
    cutFlow(result.firstPort);
    const disc = await client.wait((m) => m.ev === 'disconnect', 20_000);
    const re = await client.wait((m) => m.ev === 'connect' && m.reconnected === true, 20_000);
    result.secondPort = re.localPort as number;
    expect(result.secondPort).not.toBe(result.firstPort);
    client.cmd({ cmd: 'ike', n: 2 }); // IKE over the new connection too
    const [dc, ds] = await Promise.all([client.wait((m) => m.ev === 'done', 90_000), server.wait((m) => m.ev === 'done', 90_000)]);
    await client.wait(() => client!.all('ike').length === 5);
    result.ikeSent = 5;
    expect(dc.received).toBe(COUNT);
    expect(ds.received).toBe(COUNT);
    expect(dc.digest).toBe(dc.expected);
    expect(ds.digest).toBe(ds.expected);
    expect(Number(dc.retransmits) + Number(ds.retransmits)).toBeGreaterThan(0); // the reset lost some in flight
    // The responder saw two connections from the router's address, from two ports; its SAs moved to the second.
    const conns = server.all('connection');
    expect(conns).toHaveLength(2);
    expect(conns.every((c) => c.remoteAddress === '192.0.2.1')).toBe(true);
    expect(conns[1].remotePort).not.toBe(conns[0].remotePort);
    expect(firstConn.remotePort).toBe(conns[0].remotePort);
    const maps = server.all('newMapping');
    expect(maps.length).toBeGreaterThanOrEqual(2);
    expect((maps[maps.length - 1].new as { port: number }).port).toBe(conns[1].remotePort);
    await new Promise((r) => setTimeout(r, 500)); // the transfers' last ACKs go out within 100 ms of done
    const ss = await server.stats();
    const cs = await client.stats();
    result.serverStats = ss;
    result.clientStats = cs;
    const st = ss.transport as { accepted: number; connections: number; closed: Record<string, number> };
    expect(st.accepted).toBe(2);
    expect(st.connections).toBe(1);
    expect(st.closed.reset + st.closed.peerEnd).toBe(1);
    const ct = cs.transport as { reconnects: number; connects: number };
    expect(ct).toMatchObject({ reconnects: 1, connects: 2 });
    // The same SAs (SPIs) throughout: the outbound SA now points at the new port.
    const sa = (ss.sa as Array<{ spi: number; peer: { address: string; port: number } }>).find((s) => s.spi === SPI_SC)!;
    expect(sa.peer).toEqual({ address: '192.0.2.1', port: conns[1].remotePort });
    // Nothing failed authentication, replay or policy on either side; the only drops are sends that met no open
    // connection while it was down (OutError: the transport refused them, as a UDP socket refuses on ENETUNREACH).
    for (const e of [ss.engine, cs.engine] as Array<Record<string, number>>) {
      for (const [k, v] of Object.entries(e)) if (k !== 'OutError') expect(`${k}=${v}`).toBe(`${k}=0`);
    }
    console.log(
      `tcp nat: ${COUNT} x ${SIZE} B each way in ${dc.elapsedMs}/${ds.elapsedMs} ms; reset after the first third; reconnected ${result.firstPort} → ${result.secondPort} ` +
        `(public ${String(conns[0].remotePort)} → ${String(conns[1].remotePort)}); retransmits ${String(dc.retransmits)}/${String(ds.retransmits)}; disconnect reason ${String(disc.reason)}`,
    );
  }, 240_000);

  it.skipIf(!!tsharkWhy)(`tshark reads the capture: RFC 9329 frames, ISAKMP, ESP decrypted with the keys${tsharkWhy ? ` (skipped: ${tsharkWhy})` : ''}`, async () => {
    expect(result.serverStats).toBeDefined();
    // Let tcpdump catch up (on a loaded host it lags): stop it once the file has not grown for a second.
    let size = -1;
    for (let i = 0; i < 60 && statSync(pcap).size !== size; i++) {
      size = statSync(pcap).size;
      await new Promise((r) => setTimeout(r, 1000));
    }
    let dumpErr = '';
    dump!.stderr!.on('data', (d) => (dumpErr += String(d)));
    dump!.kill('SIGINT');
    await new Promise<void>((r) => (dump!.exitCode !== null ? r() : dump!.once('exit', () => r())));
    // tcpdump's own count: a capture that lost packets could not show every frame.
    const num = (re: RegExp): number => Number(re.exec(dumpErr)?.[1] ?? NaN);
    expect(num(/(\d+) packets dropped by kernel/)).toBe(0);
    expect(num(/(\d+) packets captured/)).toBe(num(/(\d+) packets received by filter/));
    const sa = (spi: number, src: string, dst: string, key: string): string =>
      `"IPv4","${src}","${dst}","0x${spi.toString(16).padStart(8, '0')}","AES-GCM with 16 octet ICV [RFC4106]","0x${key}","NULL",""`;
    const run = (keys: boolean): string[] =>
      execFileSync(
        'tshark',
        [
          '-n', '-r', pcap,
          '-X', `lua_script:${join(__dirname, 'iketcp.lua')}`, '-X', 'lua_script1:4500',
          '-o', 'esp.enable_encryption_decode:TRUE',
          '-o', 'tcp.reassemble_out_of_order:TRUE',
          ...(keys ? ['-o', `uat:esp_sa:${sa(SPI_CS, '192.0.2.1', '192.0.2.2', KEY_CS)}`, '-o', `uat:esp_sa:${sa(SPI_SC, '192.0.2.2', '192.0.2.1', KEY_SC)}`] : []),
          '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=;', '-E', 'separator=|',
          '-e', 'ip.src', '-e', 'iketcp.prefix', '-e', 'iketcp.kind', '-e', 'isakmp.exchangetype', '-e', 'esp.spi', '-e', 'udp.srcport', '-e', 'esp.sequence',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 256 * 1024 * 1024 },
      )
        .split('\n')
        .filter((l) => l.length > 0);
    type Count = { prefix: number; ike: number; isakmp: number; esp: number; decrypted: number; seqs: Set<string> };
    // Per direction (outer source address). A TCP segment tshark sees twice (retransmitted around the reset) is
    // dissected twice, so ESP packets are counted by their (SPI, sequence number), which ESP never repeats.
    const count = (lines: string[]): Record<string, Count> => {
      const out: Record<string, Count> = {};
      for (const l of lines) {
        const [src, prefix, kinds, exch, spis, udp, seq] = l.split('|');
        const ips = src.split(';'); // the outer IP first; decrypted inner packets add their own
        const o = (out[ips[0]] ??= { prefix: 0, ike: 0, isakmp: 0, esp: 0, decrypted: 0, seqs: new Set() });
        const list = (s: string | undefined): string[] => (s ? s.split(';').filter(Boolean) : []);
        o.prefix += list(prefix).length;
        o.ike += list(kinds).filter((k) => k === 'ike').length;
        o.isakmp += list(exch).length;
        o.esp += list(spis).length;
        o.decrypted += list(udp).length;
        const sp = list(spis);
        list(seq).forEach((q, i) => o.seqs.add(`${sp[i]}/${q}`));
      }
      return out;
    };
    const c = count(run(true));
    const up = c['192.0.2.1'];
    const down = c['192.0.2.2'];
    const cs = result.clientStats!.transport as { sentEsp: number; sentIke: number; esp: number };
    const ss = result.serverStats!.transport as { sentEsp: number; esp: number; ike: number; sentIke: number };
    const show = (x: Count): string => JSON.stringify({ ...x, seqs: undefined, distinctEsp: x.seqs.size });
    console.log(`tshark: client→server ${show(up)}; server→client ${show(down)}; engines: client sent ${cs.sentEsp} ESP, server got ${ss.esp}, sent ${ss.sentEsp}, client got ${cs.esp}`);
    // Two connections, each opened with "IKETCP" by the initiator, none by the responder (RFC 9329 §4).
    expect(up.prefix).toBe(2);
    expect(down.prefix).toBe(0);
    // Every IKE frame is an ISAKMP message tshark decodes (IKE_SA_INIT, 34): 5 requests, 5 responses.
    expect([up.ike, up.isakmp, down.ike, down.isakmp]).toEqual([result.ikeSent, result.ikeSent, result.ikeSent, result.ikeSent]);
    // ESP: what reached the server is on its wire; what it sent is too. Every one decrypts (its inner UDP is read).
    expect(up.seqs.size).toBeGreaterThanOrEqual(ss.esp);
    expect(up.seqs.size).toBeLessThanOrEqual(cs.sentEsp);
    expect(down.seqs.size).toBeGreaterThanOrEqual(cs.esp);
    expect(down.seqs.size).toBeLessThanOrEqual(ss.sentEsp);
    expect(up.decrypted).toBe(up.esp);
    expect(down.decrypted).toBe(down.esp);
    // Negative control: without the keys tshark still frames the stream but decrypts nothing.
    const n = count(run(false));
    expect(n['192.0.2.1'].esp).toBe(up.esp);
    expect(n['192.0.2.1'].decrypted + n['192.0.2.2'].decrypted).toBe(0);
  }, 120_000);
});
