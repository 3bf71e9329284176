// TUN segmentation offloads against the real kernel: two TUNs (TSO/USO reads, GRO writes) in two namespaces, joined
// by a wire in this process; the hosts' own TCP and UDP cross it, and the kernel checks every checksum we made.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createTun, type Tun } from '../../src/tun';
import { loadNative } from '../../src/native/binding';
import { buildUdpPacket } from '../../src/ip/packet';

const why =
  process.platform !== 'linux'
    ? 'TUN offloads are Linux only'
    : process.getuid?.() !== 0
      ? 'not root: TUN devices and namespaces need CAP_NET_ADMIN'
      : !loadNative()
        ? 'the native addon is not built'
        : !fs.existsSync('/dev/net/tun')
          ? 'no /dev/net/tun'
          : spawnOk('python3', ['-c', '1'])
            ? ''
            : 'python3 not installed (the test hosts are python3 one-liners)';

function spawnOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const tag = `${process.pid % 10000}`;
const NS = { a: `ntoa${tag}`, b: `ntob${tag}` };
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const nsx = (ns: string, ...args: string[]) => ip('netns', 'exec', ns, ...args);

/** Move a TUN into a namespace and give it an address and a route to the other side (the move drops addresses). */
function place(t: Tun, ns: string, mine: [string, string], peer: [string, string]): void {
  ip('link', 'set', 'dev', t.name, 'netns', ns);
  nsx(ns, 'ip', 'link', 'set', 'lo', 'up');
  nsx(ns, 'ip', 'addr', 'add', `${mine[0]}/32`, 'dev', t.name);
  nsx(ns, 'ip', '-6', 'addr', 'add', `${mine[1]}/128`, 'dev', t.name, 'nodad');
  nsx(ns, 'ip', 'link', 'set', t.name, 'up');
  nsx(ns, 'ip', 'route', 'add', `${peer[0]}/32`, 'dev', t.name);
  nsx(ns, 'ip', '-6', 'route', 'add', `${peer[1]}/128`, 'dev', t.name);
}

/** What one TUN reads goes into the other (the wire): the batch handler's slots straight into writeBatch. */
function wire(from: Tun, to: Tun): void {
  let offsets = new Uint32Array(0);
  from.onPackets((slab, lengths, count, slot) => {
    if (offsets.length < count) offsets = Uint32Array.from({ length: count }, (_, i) => i * slot);
    to.writeBatch(slab, offsets, lengths, count);
  });
}

/** TCP: ns b listens on `port`, ns a sends `data`; resolves with what b received (sha256, bytes). */
async function tcpTransfer(addr: string, port: number, data: Buffer): Promise<{ sha: string; bytes: number }> {
  const fam = addr.includes(':') ? 'AF_INET6' : 'AF_INET';
  const server = spawn('ip', [
    'netns', 'exec', NS.b, 'python3', '-c',
    `import socket,hashlib,sys
s=socket.socket(socket.${fam});s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('${addr}',${port}));s.listen(1)
print('ready',flush=True)
c,_=s.accept();h=hashlib.sha256();n=0
while True:
  b=c.recv(1<<20)
  if not b: break
  h.update(b);n+=len(b)
print(h.hexdigest(),n,flush=True)`,
  ]);
  let out = '';
  server.stdout.on('data', (d) => (out += String(d)));
  for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  const client = spawn('ip', [
    'netns', 'exec', NS.a, 'python3', '-c',
    `import socket,sys
c=socket.create_connection(('${addr}',${port}),timeout=20);d=sys.stdin.buffer.read();c.sendall(d);c.close()`,
  ]);
  client.stdin.end(data);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`TCP transfer stalled: server said ${JSON.stringify(out)}`)), 60_000);
    server.on('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
  const [sha, bytes] = out.split('\n')[1].trim().split(' ');
  return { sha, bytes: Number(bytes) };
}

/** A TCP counter of a namespace (nstat: TcpInCsumErrors, TcpRetransSegs ...). */
function tcpCounter(ns: string, name: string): number {
  const m = new RegExp(`${name}\\s+(\\d+)`).exec(nsx(ns, 'nstat', '-az', name));
  return m ? Number(m[1]) : 0;
}

describe.skipIf(why !== '')(`TUN offloads with the kernel's own TCP and UDP${why ? ` (skipped: ${why})` : ''}`, () => {
  let a: Tun;
  let b: Tun;
  const addr = { a: ['10.77.0.1', 'fd77::1'] as [string, string], b: ['10.77.0.2', 'fd77::2'] as [string, string] };

  beforeAll(async () => {
    for (const ns of Object.values(NS)) {
      spawnOk('ip', ['netns', 'del', ns]);
      ip('netns', 'add', ns);
    }
    a = await createTun({ name: `ntoa${tag}`, mtu: 1400, up: false, offload: true });
    b = await createTun({ name: `ntob${tag}`, mtu: 1400, up: false, offload: true });
    place(a, NS.a, addr.a, addr.b);
    place(b, NS.b, addr.b, addr.a);
    wire(a, b);
    wire(b, a);
  }, 30_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    for (const ns of Object.values(NS)) spawnOk('ip', ['netns', 'del', ns]);
  });

  it('the kernel took TSO, USO and GRO on (this kernel is 6.2 or later, or USO says why not)', () => {
    expect(a.offload.tso).toBe(true);
    expect(a.offload.gro).toBe(true);
    if (!a.offload.uso) expect(a.offload.usoReason).toMatch(/6\.2/);
  });

  for (const fam of [4, 6] as const) {
    it(`IPv${fam} TCP: 16 MiB arrive byte-exact; reads came as superpackets and writes went out coalesced; no checksum errors`, async () => {
      const data = randomBytes(16 << 20);
      const before = { a: a.stats().offload, b: b.stats().offload, csum: tcpCounter(NS.b, 'TcpInCsumErrors') + tcpCounter(NS.a, 'TcpInCsumErrors') };
      const got = await tcpTransfer(fam === 4 ? addr.b[0] : addr.b[1], 5000 + fam, data);
      expect(got.bytes).toBe(data.length);
      expect(got.sha).toBe(createHash('sha256').update(data).digest('hex'));
      const sa = a.stats().offload;
      const sb = b.stats().offload;
      expect(sa.superpackets - before.a.superpackets).toBeGreaterThan(10); // the sender's TCP handed over 64 KiB at a time
      expect(sa.segments - before.a.segments).toBeGreaterThan(sa.superpackets - before.a.superpackets);
      expect(sb.coalescedWrites - before.b.coalescedWrites).toBeGreaterThan(10); // and the receiver got them joined again
      expect(Object.keys(sa.drops)).toEqual([]);
      expect(tcpCounter(NS.b, 'TcpInCsumErrors') + tcpCounter(NS.a, 'TcpInCsumErrors')).toBe(before.csum);
      expect(a.stats().drops.refused + b.stats().drops.refused).toBe(0);
    }, 90_000);
  }

  it('write() of one packet behind the virtio-net header (the ICMP and transport-mode path): the host receives it', async () => {
    const server = spawn('ip', [
      'netns', 'exec', NS.a, 'python3', '-c',
      `import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('${addr.a[0]}',6100));s.settimeout(10)
print('ready',flush=True)
d,a=s.recvfrom(65535);print(d.decode(),a[0],a[1],flush=True)`,
    ]);
    let out = '';
    server.stdout.on('data', (d) => (out += String(d)));
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(a.write(buildUdpPacket(addr.b[0], 7777, addr.a[0], 6100, Buffer.from('hello through write()')))).toBe(true);
    await new Promise<void>((resolve) => server.on('exit', () => resolve()));
    expect(out.trim().split('\n')[1]).toBe(`hello through write() ${addr.b[0]} 7777`);
  }, 30_000);

  it('UDP with UDP_SEGMENT (USO): one 12000-byte send reaches the peer as ten 1200-byte datagrams, checksums valid', async () => {
    if (!a.offload.uso) return; // said by the first test
    const server = spawn('ip', [
      'netns', 'exec', NS.b, 'python3', '-c',
      `import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('${addr.b[0]}',6000));s.settimeout(10)
print('ready',flush=True)
for i in range(10):
  d,_=s.recvfrom(65535);print(len(d),d[0],flush=True)`,
    ]);
    let out = '';
    server.stdout.on('data', (d) => (out += String(d)));
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
    const before = a.stats().offload.superpackets;
    nsx(
      NS.a, 'python3', '-c',
      `import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.setsockopt(17,103,1200)
s.sendto(b''.join(bytes([i])*1200 for i in range(10)),('${addr.b[0]}',6000))`,
    );
    await new Promise<void>((resolve) => server.on('exit', () => resolve()));
    const lines = out.trim().split('\n').slice(1);
    expect(lines).toEqual(Array.from({ length: 10 }, (_, i) => `1200 ${i}`));
    expect(a.stats().offload.superpackets - before).toBe(1);
  }, 30_000);
});
