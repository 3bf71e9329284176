// natd against a real IKE implementation: strongSwan's charon-cmd sends IKE_SA_INIT through namespaces, directly and
// through an nftables masquerade; tshark decodes the packet as the responder receives it; natd.detect reads its NAT-D.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { natd } from '../../src/ike';

const have = (cmd: string, args: string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const isRoot = process.getuid?.() === 0;

function probe(): string {
  if (!isRoot) return 'not root';
  if (!have('ip', ['-V']) || !have('nft', ['--version'])) return 'needs ip and nft (apt-get install iproute2 nftables)';
  if (!have('tshark', ['--version'])) return 'needs tshark (apt-get install tshark)';
  if (!have('charon-cmd', ['--version'])) return "needs strongSwan's charon-cmd (apt-get install charon-cmd)";
  const ns = `natd-p${process.pid % 10000}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: 'table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname "lo" masquerade\n }\n}\n',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return '';
  } catch (e) {
    return `this kernel cannot: ${String((e as { stderr?: Buffer }).stderr ?? e).split('\n')[0]} (needs netns and nftables masquerade)`;
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

const why = probe();
const tag = `${process.pid % 10000}`;
const NS = { c: `natd-c${tag}`, r: `natd-r${tag}`, s: `natd-s${tag}` };

function sh(args: string[], ns?: string, input?: string): string {
  const argv = ns ? ['ip', 'netns', 'exec', ns, ...args] : args;
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function teardown(): void {
  for (const n of Object.values(NS)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

// client 10.0.1.2 — router 10.0.1.1 | 192.0.2.1 — server 192.0.2.2 (IPv4 only: charon-cmd 5.9 will not resolve an IPv6
// literal for --host, its IKE config binds 0.0.0.0; the unit tests cover 16-octet addresses)
function setup(): void {
  teardown();
  for (const n of Object.values(NS)) sh(['ip', 'netns', 'add', n]);
  sh(['ip', 'link', 'add', `cr${tag}`, 'netns', NS.c, 'type', 'veth', 'peer', 'name', `rc${tag}`, 'netns', NS.r]);
  sh(['ip', 'link', 'add', `rs${tag}`, 'netns', NS.r, 'type', 'veth', 'peer', 'name', `sr${tag}`, 'netns', NS.s]);
  sh(['ip', 'addr', 'add', '10.0.1.2/24', 'dev', `cr${tag}`], NS.c);
  sh(['ip', 'addr', 'add', '10.0.1.1/24', 'dev', `rc${tag}`], NS.r);
  sh(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', `rs${tag}`], NS.r);
  sh(['ip', 'addr', 'add', '192.0.2.2/24', 'dev', `sr${tag}`], NS.s);
  for (const [ns, devs] of [
    [NS.c, [`cr${tag}`, 'lo']],
    [NS.r, [`rc${tag}`, `rs${tag}`, 'lo']],
    [NS.s, [`sr${tag}`, 'lo']],
  ] as const) {
    for (const d of devs) sh(['ip', 'link', 'set', d, 'up'], ns);
  }
  sh(['ip', 'route', 'add', 'default', 'via', '10.0.1.1'], NS.c);
  sh(['ip', 'route', 'add', '10.0.1.0/24', 'via', '192.0.2.1'], NS.s);
  sh(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], NS.r);
}

function masquerade(on: boolean): void {
  const rules = on
    ? `flush ruleset\ntable ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname "rs${tag}" ip protocol udp masquerade to :20000-20099\n }\n}\n`
    : 'flush ruleset\n';
  sh(['nft', '-f', '-'], NS.r, rules);
  spawnSync('ip', ['netns', 'exec', NS.r, 'conntrack', '-F'], { stdio: 'ignore' });
}

interface Captured {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  spiI: Buffer;
  spiR: Buffer;
  natdSource: Buffer[];
  natdDestination: Buffer[];
  /** charon's own view: the address and port it sent from (its log line "sending packet: from A[P] to B[Q]"). */
  charonFrom: { address: string; port: number };
}

/** Start tshark on `iface` in `capNs`, run charon-cmd in the client namespace towards `host`, return the first IKE packet. */
async function capture(capNs: string, iface: string, host: string): Promise<Captured> {
  const fields = ['ip.src', 'udp.srcport', 'ip.dst', 'udp.dstport', 'isakmp.ispi', 'isakmp.rspi', 'isakmp.notify.msgtype', 'isakmp.notify.data'];
  const ts = spawn('ip', ['netns', 'exec', capNs, 'tshark', '-l', '-i', iface, '-c', '1', '-f', 'udp', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
  let line = '';
  ts.stdout.on('data', (d) => (line += String(d)));
  const tsErr: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tshark did not start: ${tsErr.join('')}`)), 20_000);
    createInterface({ input: ts.stderr }).on('line', (l) => {
      tsErr.push(l);
      if (/Capturing on/.test(l)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const charonLog: string[] = [];
  const ch = spawn('ip', ['netns', 'exec', NS.c, 'charon-cmd', '--host', host, '--identity', 'client', '--profile', 'ikev2-eap', '--eap-identity', 'u']);
  createInterface({ input: ch.stdout }).on('line', (l) => charonLog.push(l));
  createInterface({ input: ch.stderr }).on('line', (l) => charonLog.push(l));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no IKE packet captured; charon-cmd said: ${charonLog.join('\n')}`)), 20_000);
      ts.on('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  } finally {
    ch.kill('SIGTERM');
    ts.kill();
    await new Promise((r) => (ch.exitCode !== null ? r(null) : ch.once('close', r)));
  }
  const [src, sport, dst, dport, ispi, rspi, types, data] = line.trim().split('|');
  const t = types.split(',');
  const d = data.split(',');
  const pick = (type: string) => t.flatMap((x, i) => (x === type ? [Buffer.from(d[i], 'hex')] : []));
  const sent = charonLog.map((l) => /sending packet: from (\S+)\[(\d+)\]/.exec(l)).find((m) => m);
  if (!sent) throw new Error(`charon-cmd did not log what it sent: ${charonLog.join('\n')}`);
  return {
    src,
    sport: Number(sport),
    dst,
    dport: Number(dport),
    spiI: Buffer.from(ispi, 'hex'),
    spiR: Buffer.from(rspi, 'hex'),
    natdSource: pick('16388'),
    natdDestination: pick('16389'),
    charonFrom: { address: sent[1], port: Number(sent[2]) },
  };
}

describe.skipIf(!!why)(`natd against strongSwan charon-cmd (IKEv2), packets decoded by tshark${why ? ` (skipped: ${why})` : ''}`, () => {
  beforeAll(() => {
    process.once('exit', teardown);
    setup();
  }, 60_000);
  afterAll(() => {
    teardown();
    expect(sh(['ip', 'netns', 'list'])).not.toContain(NS.r);
  });

  it('routed, no NAT: strongSwan hashes what natd hashes, and detect() finds no NAT', async () => {
    masquerade(false);
    const p = await capture(NS.s, `sr${tag}`, '192.0.2.2');
    expect(p.src).toBe('10.0.1.2');
    expect(p.spiR.equals(Buffer.alloc(8))).toBe(true); // the first request
    expect(p.natdSource).toHaveLength(1);
    expect(p.natdDestination).toHaveLength(1);
    expect(p.natdSource[0].equals(natd.ikev2Hash(p.spiI, p.spiR, p.src, p.sport))).toBe(true);
    expect(p.natdDestination[0].equals(natd.ikev2Hash(p.spiI, p.spiR, p.dst, p.dport))).toBe(true);
    const r = natd.detect({ local: { address: p.dst, port: p.dport }, remote: { address: p.src, port: p.sport }, spiI: p.spiI, spiR: p.spiR, sourceHashes: p.natdSource, destinationHash: p.natdDestination[0] });
    expect(r).toEqual({ localBehindNat: false, remoteBehindNat: false });
  }, 60_000);

  it('through the masquerade: the responder sees the initiator behind a NAT, itself not', async () => {
    masquerade(true);
    const p = await capture(NS.s, `sr${tag}`, '192.0.2.2');
    expect(p.src).toBe('192.0.2.1'); // rewritten by the NAT
    expect(p.sport).toBeGreaterThanOrEqual(20000);
    expect(p.natdSource[0].equals(natd.ikev2Hash(p.spiI, p.spiR, p.charonFrom.address, p.charonFrom.port))).toBe(true);
    const r = natd.detect({ local: { address: p.dst, port: p.dport }, remote: { address: p.src, port: p.sport }, spiI: p.spiI, spiR: p.spiR, sourceHashes: p.natdSource, destinationHash: p.natdDestination[0] });
    expect(r).toEqual({ localBehindNat: false, remoteBehindNat: true });
  }, 60_000);

});
