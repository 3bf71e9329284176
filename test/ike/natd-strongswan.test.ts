// natd against a real IKE implementation: strongSwan's charon-cmd sends IKE_SA_INIT through namespaces, directly and
// through an nftables masquerade; tshark decodes the packet as the responder receives it; natd.detect reads its NAT-D.
// IPv4 only: charon-cmd 5.9 will not resolve an IPv6 literal for --host; the unit tests cover 16-octet addresses.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { natd } from '../../src/ike';
import { have, natTopology, natUnavailable, sh } from '../lib/nat-topology';
import { CHARON_CONF } from '../lib/charon';

function probe(): string {
  const nat = natUnavailable();
  if (nat) return nat;
  if (!have('tshark', ['--version'])) return 'needs tshark (apt-get install tshark)';
  if (!have('charon-cmd', ['--version'])) return "needs strongSwan's charon-cmd (apt-get install charon-cmd)";
  return '';
}

const why = probe();
const tag = `${process.pid % 10000}`;
const topo = natTopology('natd', tag, { serverRouteBack: true });
const NS = topo.ns;
const { setup, teardown } = topo;

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
  const ch = spawn('ip', ['netns', 'exec', NS.c, 'env', `STRONGSWAN_CONF=${CHARON_CONF}`, 'charon-cmd', '--host', host, '--identity', 'client', '--profile', 'ikev2-eap', '--eap-identity', 'u']);
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
