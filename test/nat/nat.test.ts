// Through a real NAT: client, router (nftables masquerade) and server namespaces; traffic both ways, then the mapping moves.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildUdpPacket, l4ChecksumOk } from '../../src/ip/packet';
import { natTopology, natUnavailable, sh } from '../lib/nat-topology';
import { ensureDist } from '../lib/dist';
import { Endpoint as NsEndpoint } from '../lib/ns-endpoint';

const why = natUnavailable();

const tag = `${process.pid % 10000}`;
// The server gets no route back to 10.0.1.0/24: only the masquerade makes the client reachable.
const topo = natTopology('natt', tag);
const NS = topo.ns;
const KEY_CS = Buffer.alloc(36, 0x3c).toString('hex');
const KEY_SC = Buffer.alloc(36, 0xc3).toString('hex');

const teardown = topo.teardown;

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

function setup(): void {
  topo.setup();
  execFileSync('ip', ['netns', 'exec', NS.r, 'nft', '-f', '-'], { input: masquerade('20000-20099') });
}

/** A NAT test endpoint (test/nat/endpoint.js) in namespace `ns`. */
class Endpoint extends NsEndpoint {
  constructor(ns: string, cfg: unknown) {
    super(ns, join(__dirname, 'endpoint.js'), cfg);
  }
}

function tunnelConfig(me: string, peer: string, peerPort: number, meNet: string, peerNet: string, outSpi: number, inSpi: number, outKey: string, inKey: string) {
  return {
    bind: me,
    port: 4500,
    keepaliveSeconds: 0,
    sas: [
      { src: me, dst: peer, spi: outSpi, mode: 'tunnel', reqid: 1, encryption: { algorithm: 'aes-gcm-16', key: outKey }, natt: { type: 'espinudp', sport: 4500, dport: peerPort } },
      { src: peer, dst: me, spi: inSpi, mode: 'tunnel', reqid: 2, encryption: { algorithm: 'aes-gcm-16', key: inKey }, natt: { type: 'espinudp', sport: peerPort, dport: 4500 } },
    ],
    policies: [
      { selector: { src: meNet, dst: peerNet }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: me, dst: peer, reqid: 1 }] },
      { selector: { src: peerNet, dst: meNet }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: peer, dst: me, reqid: 2 }] },
    ],
  };
}

function transportConfig(me: string, peer: string, port: number, outSpi: number, inSpi: number, outKey: string, inKey: string) {
  const t = (reqid: number) => [{ protocol: 'esp', mode: 'transport', reqid }];
  return {
    bind: me,
    port,
    keepaliveSeconds: 0,
    sas: [
      { src: me, dst: peer, spi: outSpi, mode: 'transport', reqid: 1, encryption: { algorithm: 'aes-gcm-16', key: outKey }, natt: { type: 'espinudp', sport: port, dport: port } },
      { src: peer, dst: me, spi: inSpi, mode: 'transport', reqid: 2, encryption: { algorithm: 'aes-gcm-16', key: inKey }, natt: { type: 'espinudp', sport: port, dport: port } },
    ],
    policies: [
      { selector: { src: me, dst: peer, proto: 17 }, direction: 'out', action: 'ipsec', templates: t(1) },
      { selector: { src: peer, dst: me, proto: 17 }, direction: 'in', action: 'ipsec', templates: t(2) },
    ],
  };
}

describe.skipIf(!!why)(`through a real NAT (three namespaces, nftables masquerade)${why ? ` (skipped: ${why})` : ''}`, () => {
  let client: Endpoint | undefined;
  let server: Endpoint | undefined;
  let client2: Endpoint | undefined;
  let server2: Endpoint | undefined;

  beforeAll(() => {
    ensureDist(); // the endpoints are plain JS over dist/
    process.once('exit', teardown); // even if vitest dies between here and afterAll
    setup();
  }, 120_000);

  afterAll(() => {
    for (const e of [client, server, client2, server2]) e?.kill();
    teardown();
    expect(sh(['ip', 'netns', 'list'])).not.toContain(NS.r);
  });

  it('client → server and back; the NAT moves the mapping → newMapping and traffic continues', async () => {
    // The server is told (as IKE would) that the client hides behind 192.0.2.1; the port it learns from traffic.
    server = new Endpoint(NS.s, tunnelConfig('192.0.2.2', '192.0.2.1', 4500, '10.20.0.0/16', '10.10.0.0/16', 0x5c, 0xc5, KEY_SC, KEY_CS));
    client = new Endpoint(NS.c, tunnelConfig('10.0.1.2', '192.0.2.2', 4500, '10.10.0.0/16', '10.20.0.0/16', 0xc5, 0x5c, KEY_CS, KEY_SC));
    await server.wait((m) => m.ev === 'ready');
    await client.wait((m) => m.ev === 'ready');

    const cs = (n: number) => buildUdpPacket('10.10.0.5', 7000, '10.20.0.9', 8000, Buffer.from(`c2s-${n}`)).toString('hex');
    const sc = (n: number) => buildUdpPacket('10.20.0.9', 8000, '10.10.0.5', 7000, Buffer.from(`s2c-${n}`)).toString('hex');

    client.cmd({ cmd: 'send', hex: cs(1) });
    const p1 = await server.wait((m) => m.ev === 'packet');
    expect(p1.hex).toBe(cs(1));
    const from1 = String(p1.from);
    expect(from1).toMatch(/^192\.0\.2\.1:200\d\d$/); // the masquerade's address and port range
    const map1 = await server.wait((m) => m.ev === 'newMapping');
    expect(map1.new).toEqual({ address: '192.0.2.1', port: Number(from1.split(':')[1]) });

    server.cmd({ cmd: 'send', hex: sc(1) });
    const r1 = await client.wait((m) => m.ev === 'packet');
    expect(r1.hex).toBe(sc(1));
    expect(r1.from).toBe('192.0.2.2:4500');

    // The NAT forgets and remaps: a new port range, the conntrack table flushed.
    execFileSync('ip', ['netns', 'exec', NS.r, 'nft', '-f', '-'], { input: masquerade('30000-30099') });
    sh(['conntrack', '-F'], NS.r);

    const mark = server.msgs.length;
    client.cmd({ cmd: 'send', hex: cs(2) });
    const p2 = await server.wait((m) => m.ev === 'packet', mark);
    expect(p2.hex).toBe(cs(2));
    expect(String(p2.from)).toMatch(/^192\.0\.2\.1:300\d\d$/);
    const map2 = await server.wait((m) => m.ev === 'newMapping', mark);
    expect(map2.old).toEqual(map1.new);
    expect(map2.new).toEqual({ address: '192.0.2.1', port: Number(String(p2.from).split(':')[1]) });

    const cmark = client.msgs.length;
    server.cmd({ cmd: 'send', hex: sc(2) });
    const r2 = await client.wait((m) => m.ev === 'packet', cmark);
    expect(r2.hex).toBe(sc(2));

    server.cmd({ cmd: 'stats' });
    const st = await server.wait((m) => m.ev === 'stats');
    expect(st.traffic).toMatchObject({ inPackets: 2, outPackets: 2, newMappings: 2 });
    expect(Object.values(st.stats as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('transport mode: each side gets the packet rebuilt with the addresses it sees, TCP/UDP checksum fixed (RFC 3948 §3.1.2)', async () => {
    // The client knows only its own private address; the server knows the client as the NAT's 192.0.2.1.
    server2 = new Endpoint(NS.s, transportConfig('192.0.2.2', '192.0.2.1', 4501, 0x1d, 0xd1, KEY_SC, KEY_CS));
    client2 = new Endpoint(NS.c, transportConfig('10.0.1.2', '192.0.2.2', 4501, 0xd1, 0x1d, KEY_CS, KEY_SC));
    await server2.wait((m) => m.ev === 'ready');
    await client2.wait((m) => m.ev === 'ready');
    const up = buildUdpPacket('10.0.1.2', 7000, '192.0.2.2', 8000, Buffer.from('transport up'));
    client2.cmd({ cmd: 'send', hex: up.toString('hex') });
    const got = Buffer.from(String((await server2.wait((m) => m.ev === 'packet')).hex), 'hex');
    expect(got.subarray(12, 20)).toEqual(Buffer.from([192, 0, 2, 1, 192, 0, 2, 2])); // src: the NAT, dst: the server
    expect(got.subarray(20)).not.toEqual(up.subarray(20)); // the UDP checksum had to change ...
    expect(l4ChecksumOk(got)).toBe(true); // ... and is right for the new addresses
    expect(got.subarray(28).toString()).toBe('transport up');
    const down = buildUdpPacket('192.0.2.2', 8000, '192.0.2.1', 7000, Buffer.from('transport down'));
    server2.cmd({ cmd: 'send', hex: down.toString('hex') });
    const back = Buffer.from(String((await client2.wait((m) => m.ev === 'packet')).hex), 'hex');
    expect(back.subarray(12, 20)).toEqual(Buffer.from([192, 0, 2, 2, 10, 0, 1, 2]));
    expect(l4ChecksumOk(back)).toBe(true);
    expect(back.subarray(28).toString()).toBe('transport down');
  });
});
