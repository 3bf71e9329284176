// One IKE_SA_INIT through natt, against a real initiator: strongSwan's charon-cmd sends it to createIkeSockets on a
// multi-homed responder (two addresses, sockets bound to the wildcard), routed and through an nftables masquerade.
// The responder's 'ike' event gives the local address and socket the request came to; natd.detect on it and
// decideFloat say what RFC 7296 §2.23 says; the reply leaves from that address. (IPv4 only: charon-cmd 5.9 will not
// take an IPv6 --host.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';

import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { decideFloat, natd } from '../../src/ike';
import { loadNative } from '../../src/native/binding';
import { have, natTopology, natUnavailable, sh } from '../lib/nat-topology';
import { ensureDist } from '../lib/dist';
import { Endpoint } from '../lib/ns-endpoint';
import { CHARON_CONF } from '../lib/charon';

const ROOT = join(__dirname, '..', '..');
function probe(): string {
  const nat = natUnavailable();
  if (nat) return nat;
  if (!loadNative()) return 'the native addon is not built (no local addresses without it)';
  if (!have('charon-cmd', ['--version'])) return "needs strongSwan's charon-cmd (apt-get install charon-cmd)";
  if (!have('tcpdump', ['--version'])) return 'needs tcpdump';
  return '';
}
const why = probe();
const tag = `${process.pid % 10000}`;
const topo = natTopology('ikes', tag, { serverRouteBack: true });
const NS = topo.ns;
const SECOND = '192.0.2.3'; // the responder's second address: charon is sent there

function masquerade(on: boolean): void {
  const rules = on
    ? `flush ruleset\ntable ip nat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname "rs${tag}" ip protocol udp masquerade to :20000-20099\n }\n}\n`
    : 'flush ruleset\n';
  sh(['nft', '-f', '-'], NS.r, rules);
  spawnSync('ip', ['netns', 'exec', NS.r, 'conntrack', '-F'], { stdio: 'ignore' });
}

/** The IKE header's SPIs and every Notify payload (type 41) of an IKEv2 message: [notify type, data]. */
function parseIke(msg: Buffer): { spiI: Buffer; spiR: Buffer; notifies: [number, Buffer][] } {
  const notifies: [number, Buffer][] = [];
  let next = msg[16];
  let off = 28;
  while (next !== 0 && off + 4 <= msg.length) {
    const len = msg.readUInt16BE(off + 2);
    if (next === 41) {
      const spiSize = msg[off + 5];
      notifies.push([msg.readUInt16BE(off + 6), msg.subarray(off + 8 + spiSize, off + len)]);
    }
    next = msg[off];
    off += len;
  }
  return { spiI: msg.subarray(0, 8), spiR: msg.subarray(8, 16), notifies };
}

describe.skipIf(!!why)(`IKE_SA_INIT from strongSwan into createIkeSockets${why ? ` (skipped: ${why})` : ''}`, () => {
  let responder: Endpoint;
  let ports: { port: number; nattPort: number };

  beforeAll(async () => {
    ensureDist(); // the endpoints are plain JS over dist/
    process.once('exit', topo.teardown);
    topo.setup();
    sh(['ip', 'addr', 'add', `${SECOND}/24`, 'dev', `sr${tag}`], NS.s);
    responder = new Endpoint(NS.s, join(ROOT, 'test', 'lib', 'socket-endpoint.js'), {});
    await responder.wait((m) => m.ev === 'ready');
    responder.cmd({ cmd: 'openIke', name: 'r', options: { backend: 'userland' } }); // 0.0.0.0:500 and :4500
    const o = await responder.wait((m) => m.ev === 'opened' || m.ev === 'error');
    if (o.ev !== 'opened') throw new Error(String(o.message));
    ports = { port: Number(o.port), nattPort: Number(o.nattPort) };
  }, 60_000);

  afterAll(() => {
    responder?.kill();
    topo.teardown();
  });

  /** Run charon-cmd towards SECOND until the responder has its first IKE_SA_INIT; the message and where it came. */
  async function initiate(): Promise<{ msg: Buffer; from: string; local: string; via: string; charonFrom: string }> {
    const mark = responder.msgs.length;
    const log: string[] = [];
    const ch = spawn('ip', ['netns', 'exec', NS.c, 'env', `STRONGSWAN_CONF=${CHARON_CONF}`, 'charon-cmd', '--host', SECOND, '--identity', 'client', '--profile', 'ikev2-eap', '--eap-identity', 'u']);
    createInterface({ input: ch.stdout }).on('line', (l) => log.push(l));
    createInterface({ input: ch.stderr }).on('line', (l) => log.push(l));
    try {
      const m = await responder.wait((x) => x.ev === 'ike', mark, 20_000).catch((e: Error) => {
        throw new Error(`${e.message}; charon-cmd said: ${log.join('\n')}`);
      });
      const sent = log.map((l) => /sending packet: from (\S+\[\d+\])/.exec(l)).find(Boolean);
      return { msg: Buffer.from(String(m.hex), 'hex'), from: String(m.from), local: String(m.local), via: String(m.via), charonFrom: sent ? sent[1] : '' };
    } finally {
      ch.kill('SIGTERM');
      await new Promise((r) => (ch.exitCode !== null ? r(null) : ch.once('close', r)));
    }
  }

  function detect(msg: Buffer, from: string, local: { address: string; port: number }) {
    const p = parseIke(msg);
    const [address, port] = from.split(':');
    return natd.detect({
      local,
      remote: { address, port: Number(port) },
      spiI: p.spiI,
      spiR: p.spiR,
      sourceHashes: p.notifies.filter(([t]) => t === 16388).map(([, d]) => d),
      destinationHash: p.notifies.find(([t]) => t === 16389)![1],
    });
  }

  it('routed: the request arrives on the plain socket with the local address it came to (the second one); no NAT, no float', async () => {
    masquerade(false);
    const r = await initiate();
    expect(r.via).toBe('plain');
    expect(r.from).toBe('10.0.1.2:500');
    expect(r.local).toBe(`${SECOND}:${ports.port}`);
    const seen = detect(r.msg, r.from, { address: SECOND, port: ports.port });
    expect(seen).toEqual({ localBehindNat: false, remoteBehindNat: false });
    expect(decideFloat(seen)).toMatchObject({ float: false, encapsulate: false });
    // Why the local address matters: hashed with the other address of this host, NAT-D would see a NAT that is not there.
    expect(detect(r.msg, r.from, { address: '192.0.2.2', port: ports.port }).localBehindNat).toBe(true);
  }, 60_000);

  it('through the masquerade: the initiator is behind a NAT, so the exchange floats to 4500 and ESP goes in UDP', async () => {
    masquerade(true);
    const r = await initiate();
    expect(r.via).toBe('plain');
    expect(r.from).toMatch(/^192\.0\.2\.1:200\d\d$/);
    expect(r.local).toBe(`${SECOND}:${ports.port}`);
    const seen = detect(r.msg, r.from, { address: SECOND, port: ports.port });
    expect(seen).toEqual({ localBehindNat: false, remoteBehindNat: true });
    expect(decideFloat(seen)).toMatchObject({ float: true, encapsulate: true, keepalives: false });
  }, 60_000);

  it('the reply leaves the socket the request came in on, from the address it came to', async () => {
    masquerade(false);
    const r = await initiate();
    const [address, port] = r.from.split(':');
    const [localAddress, localPort] = r.local.split(':');
    const cap = spawn('ip', ['netns', 'exec', NS.s, 'tcpdump', '-i', `sr${tag}`, '-n', '-l', '-U', '-c', '1', `udp and dst host ${address} and dst port ${port}`]);
    let line = '';
    cap.stdout.on('data', (d) => (line += String(d)));
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
      cap.stderr.on('data', (d) => {
        err += String(d);
        if (/listening on/.test(err)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    responder.cmd({ cmd: 'reply', name: 'r', hex: r.msg.subarray(0, 28).toString('hex'), rinfo: { address, port: Number(port), localAddress }, via: r.via });
    await new Promise<void>((resolve) => cap.once('close', () => resolve()));
    expect(localPort).toBe(String(ports.port));
    expect(line).toContain(`IP ${SECOND}.${ports.port} > ${address}.${port}:`);
  }, 60_000);
});
