// The tunnel scenario: the guest kernel's XFRM (tunnel mode, ESP in UDP) ⇄ a `natt tunnel up` daemon on the host, across slirp's NAT.
//
// Guest 10.0.2.15: inner 10.30.2.1/32 on lo, route to 10.30.1.0/24 via 10.0.2.2; SAs and policies from natt's own
// XFRM client; a UDP_ENCAP socket on 4500 so the kernel decapsulates.  Host (inside run.js's network namespace for
// this kernel, never the host's own): the daemon with TUN nattvm0 (10.30.1.1/32, route 10.30.2.0/24), listening on
// 127.0.0.1:4500. The guest's ESP leaves 10.0.2.15:4500 for 10.0.2.2:4500 and reaches the daemon from 127.0.0.1:<the
// port slirp sends it from>; the daemon's packets go to the hostfwd port (127.0.0.1:<fwd> → guest :4500) until an
// authenticated packet newer than all before comes from elsewhere, and the daemon moves its SA there.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createNattSocket, type NattSocket } from '../../../src/natt/socket';
import { openSadb } from '../../../src/open';
import type { Sadb, SecurityAssociation, EncryptionAlgorithm, IntegrityAlgorithm } from '../../../src/sadb/types';
import { ip, flushXfrm, kernelEspMissing, saPackets, xfrmStat, until } from './guest';
import { PeerClient, peerAddress, type TcpResult } from './peer-client';

const G = '10.0.2.15'; // the guest, as itself
const H = '10.0.2.2'; // the host, as the guest reaches it
const HOST_VIEW = '127.0.0.1'; // both outer ends, as the daemon sees them (slirp's sockets)
const DAEMON_PORT = 4500; // the daemon's NAT-T port, in the run's own namespace
const G_NET = '10.30.2.0/24';
const G_IN = '10.30.2.1';
const H_NET = '10.30.1.0/24';
const H_IN = '10.30.1.1';
const TUN = 'nattvm0';
const TCP_PEER = join(__dirname, '..', '..', 'tunnel', 'tcp-peer.js');
const MIB = 1024 * 1024;

export interface TunnelSuite {
  encryption: { algorithm: EncryptionAlgorithm; keyBytes: number };
  integrity?: { algorithm: IntegrityAlgorithm; keyBytes: number };
  /** Bytes each way of each TCP transfer (TCG is slow: a few MiB). */
  bytes: number;
  /** Also move the guest's NAT mapping mid-transfer (its ESP leaves from 4501, its 4500 closed). */
  moveMapping: boolean;
}

/** Why the tunnel scenario cannot run here (the guest's kernel, the host peer, the host's side), or null. */
export async function tunnelMissing(): Promise<string | null> {
  const guest = kernelEspMissing();
  if (guest) return guest;
  if (!peerAddress()) return 'no host peer (NATT_VM_CTL unset: run it with npm run test:vm)';
  const peer = await PeerClient.connect();
  try {
    const { missing } = await peer.tunnelCheck();
    return missing;
  } finally {
    peer.close();
  }
}

/** A tcp-peer.js endpoint in the guest: `listening` once a server listens, `done` with its result and run time. */
function guestTcp(role: 'server' | 'client', address: string, port: number, bytes: number): { listening: Promise<void>; done: Promise<{ result: TcpResult; ms: number }> } {
  const t0 = Date.now();
  const proc = spawn(process.execPath, [TCP_PEER, role, address, String(port), String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let onListen: () => void = () => {};
  const listening = new Promise<void>((r) => (onListen = r));
  createInterface({ input: proc.stdout }).on('line', (l) => {
    lines.push(l);
    if (l.includes('"listening"')) onListen();
  });
  createInterface({ input: proc.stderr }).on('line', (l) => lines.push(`stderr: ${l}`));
  const done = new Promise<{ result: TcpResult; ms: number }>((resolve, reject) => {
    proc.on('close', (code, signal) => {
      // 'close', not 'exit': by then every line of its stdout has been read
      const last = lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return null; } }).find((o) => o && ('sentHash' in o || 'error' in o));
      if (code === 0 && last && !('error' in last)) resolve({ result: last as unknown as TcpResult, ms: Date.now() - t0 });
      else reject(new Error(`guest tcp-peer ${role} exited ${code ?? signal}: ${lines.join(' | ')}`));
    });
  });
  return { listening, done };
}

const mbps = (bytes: number, ms: number): string => `${((bytes * 8) / 1e6 / (ms / 1000)).toFixed(1)} Mbit/s`;

/** Register one tunnel suite (its own keys, SAs and daemon). `missing`: from tunnelMissing(). */
export function defineTunnelSuite(suite: TunnelSuite, missing: string | null): void {
  const algs = suite.encryption.algorithm + (suite.integrity ? ` + ${suite.integrity.algorithm}` : '');
  const title = `natt tunnel daemon (host, own netns) ⇄ guest kernel XFRM tunnel mode across slirp NAT, ${algs}`;

  describe.skipIf(missing !== null)(`${title}${missing ? ` (skipped: ${missing})` : ''}`, () => {
    let sadb: Sadb;
    let peer: PeerClient;
    let natt: NattSocket | null = null; // the guest's UDP_ENCAP socket on 4500
    let natt2: NattSocket | null = null; // and on 4501, once the mapping moved
    let fwdPort = 0;
    let guestOut: SecurityAssociation;
    const spiGH = 0x200000 + Math.floor(Math.random() * 0xfffff) * 2; // guest → host
    const spiHG = spiGH + 1; // host → guest
    /** The mid-transfer move: the guest's inbound packet count then, ms until the daemon followed, ms until its ESP came in on 4501. */
    let moved: { atPacket: number; followMs: number; resumeMs: number } | null = null;
    const sent = { host: 0, guest: 0 }; // TCP payload bytes each side sent, for the counter checks

    beforeAll(async () => {
      flushXfrm();
      sadb = await openSadb({ backend: 'xfrm' }); // natt's own XFRM netlink client, not ip xfrm
      peer = await PeerClient.connect();
      natt = await createNattSocket({ backend: 'kernel', address: G, port: 4500 });
      ip('addr', 'replace', `${G_IN}/32`, 'dev', 'lo');
      ip('route', 'replace', H_NET, 'via', H, 'dev', 'eth0', 'src', G_IN);
      fwdPort = Number(process.env.NATT_VM_HOSTFWD);
      const key = (n: number) => randomBytes(n);
      const keys = () => ({
        encryption: { algorithm: suite.encryption.algorithm, key: key(suite.encryption.keyBytes) },
        ...(suite.integrity ? { integrity: { algorithm: suite.integrity.algorithm, key: key(suite.integrity.keyBytes) } } : {}),
      });
      const kGH = keys();
      const kHG = keys();
      // guest kernel: out 10.0.2.15:4500 → 10.0.2.2:4500, in from there
      guestOut = { src: G, dst: H, spi: spiGH, mode: 'tunnel', reqid: 1, replayWindow: 64, ...kGH, natt: { type: 'espinudp', sport: 4500, dport: DAEMON_PORT } };
      await sadb.add(guestOut);
      await sadb.add({ src: H, dst: G, spi: spiHG, mode: 'tunnel', reqid: 2, replayWindow: 64, ...kHG, natt: { type: 'espinudp', sport: DAEMON_PORT, dport: 4500 } });
      await sadb.spdAdd({ selector: { src: G_NET, dst: H_NET }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: G, dst: H, reqid: 1 }] });
      await sadb.spdAdd({ selector: { src: H_NET, dst: G_NET }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: H, dst: G, reqid: 2 }] });
      // host daemon: the mirror image as the host sees it (both ends 127.0.0.1); its peer starts at the hostfwd port
      const hex = (k: { algorithm: string; key: Uint8Array }) => ({ algorithm: k.algorithm, key: `0x${Buffer.from(k.key).toString('hex')}` });
      const wire = (k: ReturnType<typeof keys>) => ({ encryption: hex(k.encryption), ...(k.integrity ? { integrity: hex(k.integrity) } : {}) });
      const config = {
        tun: { name: TUN, mtu: 1400, addresses: [`${H_IN}/32`], routes: [{ dst: G_NET }] },
        listen: { address: HOST_VIEW, port: DAEMON_PORT },
        sas: [
          { src: HOST_VIEW, dst: HOST_VIEW, spi: spiHG, mode: 'tunnel', reqid: 2, replayWindow: 1024, ...wire(kHG), natt: { type: 'espinudp', sport: DAEMON_PORT, dport: fwdPort } },
          { src: HOST_VIEW, dst: HOST_VIEW, spi: spiGH, mode: 'tunnel', reqid: 1, replayWindow: 1024, ...wire(kGH), natt: { type: 'espinudp', sport: fwdPort, dport: DAEMON_PORT } },
        ],
        policies: [
          { selector: { src: H_NET, dst: G_NET }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: HOST_VIEW, dst: HOST_VIEW, reqid: 2 }] },
          { selector: { src: G_NET, dst: H_NET }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: HOST_VIEW, dst: HOST_VIEW, reqid: 1 }] },
        ],
      };
      const t0 = Date.now();
      const up = await peer.tunnelUp(config);
      console.log(`daemon up in ${Date.now() - t0} ms: ${up.lines.filter((l) => /^(tun|listening|tunnel up)/.test(l)).join('; ')}`);
    });

    afterAll(async () => {
      peer?.close(); // the peer stops a daemon still running when the session ends
      for (const s of [natt, natt2]) if (s) await new Promise<void>((r) => s.close(() => r()));
      flushXfrm();
      await sadb?.close();
      try {
        ip('route', 'del', H_NET);
      } catch {
        /* never added */
      }
      try {
        ip('addr', 'del', `${G_IN}/32`, 'dev', 'lo');
      } catch {
        /* never added */
      }
    });

    it('ping both ways through the daemon\'s TUN and the guest kernel\'s tunnel-mode SAs', async () => {
      const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
        const p = spawn('ping', ['-c', '3', '-W', '5', H_IN], { stdio: ['ignore', 'pipe', 'pipe'] });
        let text = '';
        p.stdout.on('data', (d) => (text += d));
        p.stderr.on('data', (d) => (text += d));
        p.on('exit', (code) => resolve({ code, text }));
      });
      expect(out.text, `guest ping: ${out.text}; xfrm_stat ${JSON.stringify(xfrmStat())}`).toMatch(/3 packets received/);
      const back = await peer.ping(G_IN, 3);
      expect(back.out).toMatch(/3 received/);
      const rtt = (t: string) => /= ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(t)?.slice(1).join('/') ?? '?';
      console.log(`ping rtt min/avg/max ms: guest → host ${rtt(out.text)}, host → guest ${rtt(back.out)}`);
      expect(saPackets(G, H, spiGH)).toBeGreaterThanOrEqual(6); // 3 requests + 3 replies
      expect(saPackets(H, G, spiHG)).toBeGreaterThanOrEqual(6);
      // Where the guest's 4500 shows up on the host is slirp's choice: the hostfwd socket (the daemon's SA already
      // points there: no move) or a socket of its own (the daemon must have followed it).
      const { lines } = await peer.tunnelLog();
      const m = lines.filter((l) => /nat mapping changed/.test(l));
      console.log(`the guest's 4500 reaches the daemon ${m.length ? `from a new port (${m.join('; ')})` : `from the hostfwd port ${fwdPort} (no mapping change)`}`);
      for (const l of m) expect(l).toMatch(new RegExp(`spi 0x${spiGH.toString(16).padStart(8, '0')} peer 127\\.0\\.0\\.1:${fwdPort} -> 127\\.0\\.0\\.1:\\d+`));
    });

    it(`TCP guest → host: ${suite.bytes / MIB} MiB each way on one connection the guest opens, SHA-256 of both directions`, async () => {
      const { endpoint } = await peer.tcpStart('server', H_IN, 7000, suite.bytes);
      const client = guestTcp('client', H_IN, 7000, suite.bytes);
      const [c, s] = await Promise.all([client.done, peer.tcpResult(endpoint)]);
      expect(c.result.sent).toBe(suite.bytes);
      expect(s.result.received).toBe(suite.bytes);
      expect(s.result.receivedHash).toBe(c.result.sentHash);
      expect(c.result.received).toBe(suite.bytes);
      expect(c.result.receivedHash).toBe(s.result.sentHash);
      sent.guest += suite.bytes;
      sent.host += suite.bytes;
      console.log(`TCP guest → host → guest, ${suite.bytes / MIB} MiB each way: ${c.ms} ms in the guest (${mbps(2 * suite.bytes, c.ms)} both directions together)`);
    }, 90_000);

    const t2 = `TCP host → guest: ${suite.bytes / MIB} MiB each way on one connection the host opens` +
      (suite.moveMapping ? ", the guest's NAT mapping moved mid-transfer (ESP now from 4501, 4500 closed): the daemon follows" : '');
    it(t2, async () => {
      const server = guestTcp('server', G_IN, 7001, suite.bytes);
      await server.listening;
      const { endpoint } = await peer.tcpStart('client', G_IN, 7001, suite.bytes);
      if (suite.moveMapping) {
        // a quarter of the host's bytes in (packets of ≤ 1400 bytes into the guest's inbound SA): move now
        const before = saPackets(H, G, spiHG);
        const quarter = before + Math.ceil(suite.bytes / 1400 / 4);
        await until(() => saPackets(H, G, spiHG) >= quarter, 60_000, () => `the host's data did not start arriving (${saPackets(H, G, spiHG)} packets)`);
        natt2 = await createNattSocket({ backend: 'kernel', address: G, port: 4501 });
        guestOut = { ...guestOut, natt: { ...guestOut.natt!, sport: 4501 } };
        const atPacket = saPackets(H, G, spiHG);
        const t0 = Date.now();
        await sadb.update(guestOut);
        // the guest's next ESP (its ACKs) leaves from 4501: slirp gives that a host port of its own, and the daemon
        // moves its SA there once such a packet authenticates (the peer cannot reach a moved NAT before it did)
        for (const end = Date.now() + 30_000; ; ) {
          const { lines } = await peer.tunnelLog();
          if (lines.some((l) => /nat mapping changed: spi/.test(l) && !l.endsWith(`:${fwdPort}`))) break;
          if (Date.now() > end) throw new Error(`the daemon did not follow the new mapping within 30 s: ${lines.join(' | ')}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        const followMs = Date.now() - t0;
        await new Promise<void>((r) => natt!.close(() => r()));
        natt = null; // from now on only what the daemon sends to the new mapping reaches the guest
        const inAtClose = saPackets(H, G, spiHG);
        await until(() => saPackets(H, G, spiHG) > inAtClose + 10, 30_000, () => 'no ESP from the daemon after 4500 closed');
        moved = { atPacket, followMs, resumeMs: Date.now() - t0 };
      }
      const [s, c] = await Promise.all([server.done, peer.tcpResult(endpoint)]);
      expect(c.result.sent).toBe(suite.bytes);
      expect(s.result.received).toBe(suite.bytes);
      expect(s.result.receivedHash).toBe(c.result.sentHash);
      expect(c.result.received).toBe(suite.bytes);
      expect(c.result.receivedHash).toBe(s.result.sentHash);
      sent.guest += suite.bytes;
      sent.host += suite.bytes;
      console.log(`TCP host → guest → host, ${suite.bytes / MIB} MiB each way: ${c.ms} ms on the host (${mbps(2 * suite.bytes, c.ms)} both directions together)`);
      if (suite.moveMapping) {
        const { lines } = await peer.tunnelLog();
        const m = lines.filter((l) => /nat mapping changed/.test(l));
        expect(m.length).toBeGreaterThan(0);
        const last = /-> 127\.0\.0\.1:(\d+)$/.exec(m.at(-1)!);
        expect(last).not.toBeNull();
        expect(Number(last![1])).not.toBe(fwdPort);
        console.log(
          `the guest's SA moved to 4501 at its inbound packet ${moved!.atPacket}; the daemon followed within ${moved!.followMs} ms ` +
            `(polled), its ESP reached the guest on 4501 alone ${moved!.resumeMs} ms after the move; ${m.at(-1)}`,
        );
      }
    }, 90_000);

    it('SIGTERM: the daemon exits 0, its counters show the traffic, its TUN and route are gone', async () => {
      const d = await peer.tunnelDown();
      const log = d.lines.join('\n');
      expect(d.code, log).toBe(0);
      expect(log).toMatch(/SIGTERM: stopping\ntunnel down/);
      const down = /tunnel down: (\d+) packets out of the tun, (\d+) into it/.exec(log);
      const traffic = /traffic: esp in (\d+) packets (\d+) bytes, out (\d+) packets (\d+) bytes, (\d+) nat mappings followed/.exec(log);
      expect(down).not.toBeNull();
      expect(traffic).not.toBeNull();
      const [fromTun, toTun] = [Number(down![1]), Number(down![2])];
      const [inPk, inB, outPk, outB, followed] = traffic!.slice(1).map(Number);
      // at least one packet per 1360-byte TCP segment each side sent (the TUN's MTU 1400), plus the pings
      expect(fromTun).toBeGreaterThanOrEqual(Math.ceil(sent.host / 1360) + 3);
      expect(toTun).toBeGreaterThanOrEqual(Math.ceil(sent.guest / 1360) + 3);
      expect(inPk).toBe(toTun);
      expect(inB).toBeGreaterThan(sent.guest);
      expect(outPk).toBeGreaterThanOrEqual(Math.ceil(sent.host / 1360));
      expect(outB).toBeGreaterThan(sent.host);
      if (suite.moveMapping) expect(followed).toBeGreaterThanOrEqual(1);
      expect(d.links).not.toContain(TUN);
      expect(d.routes).not.toContain('10.30.');
      console.log(`daemon down ${d.ms} ms after SIGTERM: ${log.split('\n').filter((l) => /^(tunnel down|traffic|drops)/.test(l)).join('; ')}`);
      console.log(`guest xfrm_stat (non-zero): ${JSON.stringify(xfrmStat())}`);
    });
  });
}
