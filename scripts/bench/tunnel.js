// `npm run bench -- tunnel`: TCP through natt's tunnel daemon vs strongSwan 5.9.8 kernel-libipsec, same NAT topology, one run.
//
// The topology and strongSwan come from ../shared/bench/strongswan (setup.sh, teardown.sh): client sw-a behind the
// masquerading router sw-nat, server sw-b. Rounds interleave: strongSwan (setup.sh: IKEv2, AES-GCM-128, tunnel mode,
// NAT-T detected), then natt (setup.sh --topology-only, a `natt tunnel up` daemon in sw-a and sw-b with the same
// addresses, AES-GCM-16 with a 128-bit key, tunnel mode, NAT-T); each round runs iperf3 TCP for DUR seconds (1 stream)
// and records the receiver's rate, the CPU time of both ends' daemons, and the packets through the TUN devices, from
// which CPU µs per packet (both ends) follows. Prints medians, the ratio natt / strongSwan, the load, and a JSON line.
// natt runs once per variant each round (NATT_BENCH_VARIANTS, default plain,udp,offload; also tso): which segmentation
// offloads its daemons have on (config `offload`): none, UDP GSO/GRO, + TUN TSO/USO, + TUN GRO. Packets for natt are
// the ESP packets its engines sealed (TUN counters would count 64 KiB superpackets as one); CPU s/GB needs no count.
// Needs root, /dev/net/tun, iperf3 and strongSwan (setup.sh installs them with apt when missing).
'use strict';

const { execFileSync, spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const RIG = process.env.NATT_BENCH_STRONGSWAN ?? path.join(ROOT, '..', 'shared', 'bench', 'strongswan');
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DUR = Number(process.env.DUR ?? 10);
const CLK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
const STATE = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-bench-tunnel-'));
// NATT_BENCH_PROF=DIR: the natt daemons run with --cpu-prof into DIR, and the top self-time functions are printed.
const PROF = process.env.NATT_BENCH_PROF ? path.resolve(process.env.NATT_BENCH_PROF) : '';

const sh = (cmd, args, o = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...o });
const nsx = (ns, args, o) => sh('ip', ['netns', 'exec', ns, ...args], o);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function why() {
  if (process.getuid?.() !== 0) return 'not root';
  if (!fs.existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!fs.existsSync(path.join(RIG, 'setup.sh'))) return `no strongSwan rig at ${RIG} (set NATT_BENCH_STRONGSWAN)`;
  return '';
}

/** CPU seconds (user + system) of a process, from /proc. */
function cpu(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK;
}

/** UDP receive/send buffer errors of a namespace (/proc/net/snmp: RcvbufErrors, SndbufErrors, InErrors). */
function udpErrors(ns) {
  const lines = nsx(ns, ['cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0].split(/\s+/);
  const vals = lines[1].split(/\s+/).map(Number);
  const get = (n) => vals[names.indexOf(n)] ?? 0;
  return { rcvbuf: get('RcvbufErrors'), sndbuf: get('SndbufErrors'), inErrors: get('InErrors') };
}

/** TX drops of a device (for a TUN: packets the kernel dropped because the reader did not keep up). */
function devDrops(ns, dev) {
  const j = JSON.parse(nsx(ns, ['ip', '-j', '-s', 'link', 'show', dev]))[0];
  return { txDropped: j.stats64.tx.dropped, rxDropped: j.stats64.rx.dropped };
}

/** Packets in and out of a device in a namespace. */
function devPackets(ns, dev) {
  const j = JSON.parse(nsx(ns, ['ip', '-j', '-s', 'link', 'show', dev]))[0];
  return j.stats64.rx.packets + j.stats64.tx.packets;
}

function iperf(dur) {
  const out = nsx('sw-a', ['iperf3', '-J', '-c', '10.10.2.1', '-B', '10.10.1.1', '-p', '5201', '-t', String(dur), '-P', '1', '--connect-timeout', '3000'], {
    timeout: (dur + 30) * 1000,
  });
  const j = JSON.parse(out);
  return { mbps: j.end.sum_received.bits_per_second / 1e6, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent.retransmits ?? 0 };
}

function startIperfServer() {
  const p = spawn('ip', ['netns', 'exec', 'sw-b', 'iperf3', '-s', '-p', '5201'], { stdio: 'ignore' });
  return p;
}

async function waitListening(ns, port) {
  for (let i = 0; i < 50; i++) {
    if (nsx(ns, ['ss', '-ltn']).includes(`:${port} `)) return;
    await sleep(100);
  }
  throw new Error(`nothing listens on ${port} in ${ns}`);
}

/**
 * A measured round: run iperf3 while sampling the two daemons' CPU and the packets that crossed the tunnel: the TUN
 * devices' counters, or `crossed()` where given (natt: ESP packets its engines sealed, which stays a count of
 * MTU-sized packets when the TUN hands over 64 KiB superpackets).
 */
async function measure(pids, devs, crossed) {
  const c0 = pids.map(cpu);
  const x0 = crossed ? crossed() : 0;
  const p0 = devs.map(([ns, d]) => devPackets(ns, d));
  const u0 = devs.map(([ns]) => udpErrors(ns));
  const d0 = devs.map(([ns, d]) => devDrops(ns, d));
  const r = iperf(DUR);
  const c1 = pids.map(cpu);
  const x1 = crossed ? crossed() : 0;
  const p1 = devs.map(([ns, d]) => devPackets(ns, d));
  const u1 = devs.map(([ns]) => udpErrors(ns));
  const d1 = devs.map(([ns, d]) => devDrops(ns, d));
  const counters = {
    udpRcvbufErrors: u1.map((u, i) => u.rcvbuf - u0[i].rcvbuf),
    udpSndbufErrors: u1.map((u, i) => u.sndbuf - u0[i].sndbuf),
    devTxDropped: d1.map((d, i) => d.txDropped - d0[i].txDropped),
  };
  const cpuS = c1.reduce((s, v, i) => s + v - c0[i], 0);
  // Each data packet crosses both TUNs once (out of one, into the other); ACKs the other way likewise.
  const packets = crossed ? x1 - x0 : (p1[0] - p0[0] + (p1[1] - p0[1])) / 2;
  return {
    ...r,
    cpuPct: [(c1[0] - c0[0]) / DUR * 100, (c1[1] - c0[1]) / DUR * 100],
    usPerPacket: (cpuS / packets) * 1e6,
    cpuSecondsPerGB: cpuS / (r.bytes / 1e9),
    packets,
    counters,
  };
}

async function strongswanRound() {
  spawnSync(path.join(RIG, 'teardown.sh'), { stdio: 'ignore' });
  sh(path.join(RIG, 'setup.sh'), ['aes128gcm16'], { env: { ...process.env, BENCH_SW_STATE: path.join(STATE, 'sw') } });
  const env = (side) => ['env', `STRONGSWAN_CONF=${STATE}/sw/${side}/strongswan.conf`, `SWANCTL_DIR=${STATE}/sw/${side}/swanctl`];
  nsx('sw-a', [...env('a'), 'swanctl', '--initiate', '--child', 'net', '--uri', `unix://${STATE}/sw/a/charon.vici`]);
  const srv = startIperfServer();
  try {
    await waitListening('sw-b', 5201);
    const pids = ['a', 'b'].map((s) => Number(fs.readFileSync(`${STATE}/sw/${s}/charon.pid`, 'utf8')));
    return await measure(pids, [
      ['sw-a', 'ipsec0'],
      ['sw-b', 'ipsec0'],
    ]);
  } finally {
    srv.kill();
    spawnSync(path.join(RIG, 'teardown.sh'), { stdio: 'ignore', env: { ...process.env, BENCH_SW_STATE: path.join(STATE, 'sw') } });
  }
}

function nattConfig(side) {
  const a = side === 'a';
  const me = a ? '192.168.100.2' : '203.0.113.2';
  const peer = a ? '203.0.113.2' : '203.0.113.1';
  const [myNet, peerNet] = a ? ['10.10.1.0/24', '10.10.2.0/24'] : ['10.10.2.0/24', '10.10.1.0/24'];
  const kAB = `0x${'ab'.repeat(20)}`;
  const kBA = `0x${'ba'.repeat(20)}`;
  const out = { spi: a ? 0x1001 : 0x2002, key: a ? kAB : kBA, reqid: a ? 1 : 2 };
  const inn = { spi: a ? 0x2002 : 0x1001, key: a ? kBA : kAB, reqid: a ? 2 : 1 };
  const natt = { type: 'espinudp', sport: 4500, dport: 4500 };
  return {
    tun: { name: `natt${side}`, mtu: 1400, addresses: [a ? '10.10.1.1/32' : '10.10.2.1/32'], routes: [{ dst: peerNet }] },
    listen: { address: me, port: 4500 },
    sas: [
      { src: me, dst: peer, spi: out.spi, mode: 'tunnel', reqid: out.reqid, replayWindow: 4096, encryption: { algorithm: 'aes-gcm-16', key: out.key }, natt },
      { src: peer, dst: me, spi: inn.spi, mode: 'tunnel', reqid: inn.reqid, replayWindow: 4096, encryption: { algorithm: 'aes-gcm-16', key: inn.key }, natt },
    ],
    policies: [
      { selector: { src: myNet, dst: peerNet }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: me, dst: peer, reqid: out.reqid }] },
      { selector: { src: peerNet, dst: myNet }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: peer, dst: me, reqid: inn.reqid }] },
    ],
  };
}

function startNatt(side, offload) {
  const file = path.join(STATE, `natt-${side}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...nattConfig(side), offload }));
  const ns = side === 'a' ? 'sw-a' : 'sw-b';
  const prof = PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF, '--cpu-prof-name', `natt-${side}-${Date.now()}.cpuprofile`] : [];
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, ...prof, path.join(ROOT, 'bin', 'natt.js'), 'tunnel', 'up', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  p.stdout.on('data', (d) => lines.push(String(d)));
  p.stderr.on('data', (d) => lines.push(String(d)));
  const up = (async () => {
    for (let i = 0; i < 200; i++) {
      if (lines.join('').includes('tunnel up')) return;
      if (p.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`natt ${side} did not come up: ${lines.join('')}`);
  })();
  return { p, up, lines };
}

/** ESP packets both daemons sealed so far (from `natt tunnel status --json`). */
function espSealed() {
  let n = 0;
  for (const side of ['a', 'b']) {
    const out = sh(process.execPath, [path.join(ROOT, 'bin', 'natt.js'), 'tunnel', 'status', '--json', '--control', `/run/natt/natt${side}.sock`]);
    n += JSON.parse(out).stats.traffic.outPackets;
  }
  return n;
}

/** The natt variants a round runs: which offloads are on. */
const OFFLOADS = {
  plain: { udpGso: false, udpGro: false, tunTso: false, tunUso: false, tunGro: false },
  udp: { udpGso: true, udpGro: true, tunTso: false, tunUso: false, tunGro: false },
  tso: { udpGso: true, udpGro: true, tunTso: true, tunUso: true, tunGro: false },
  offload: { udpGso: true, udpGro: true, tunTso: true, tunUso: true, tunGro: true },
};
const VARIANTS = (process.env.NATT_BENCH_VARIANTS ?? 'plain,udp,offload').split(',').filter((v) => v in OFFLOADS);

async function nattRound(variant) {
  let m = null;
  spawnSync(path.join(RIG, 'teardown.sh'), { stdio: 'ignore' });
  sh(path.join(RIG, 'setup.sh'), ['--topology-only']);
  const b = startNatt('b', OFFLOADS[variant]);
  const a = startNatt('a', OFFLOADS[variant]);
  const srv = startIperfServer();
  try {
    await Promise.all([a.up, b.up]);
    nsx('sw-a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', '-I', '10.10.1.1', '10.10.2.1']); // the server learns the NAT mapping
    await waitListening('sw-b', 5201);
    m = await measure(
      [a.p.pid, b.p.pid],
      [
        ['sw-a', 'natta'],
        ['sw-b', 'nattb'],
      ],
      espSealed,
    );
    return m;
  } finally {
    srv.kill();
    for (const d of [a, b]) d.p.kill('SIGTERM');
    await Promise.all([a, b].map((d) => new Promise((r) => (d.p.exitCode !== null ? r() : d.p.once('exit', r)))));
    if (m) m.daemon = [a, b].map((d) => d.lines.join('').split('\n').filter((l) => /drops:|tun:|tunnel up|socket buffers|offloads/.test(l)).map((l) => l.replace(/^.*?(drops:|tun:|tunnel up|socket buffers|offloads:)/, '$1')));
    spawnSync(path.join(RIG, 'teardown.sh'), { stdio: 'ignore' });
  }
}

/** The top self-time functions over every .cpuprofile in `dir` (both daemons, every round), as a table. */
function profileSummary(dir) {
  const self = new Map();
  let total = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const dt = new Map();
    for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
    for (const [id, us] of dt) {
      const n = byId.get(id);
      const cf = n.callFrame;
      const where = cf.url ? `${path.basename(cf.url)}:${cf.lineNumber + 1}` : '';
      const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
      self.set(key, (self.get(key) ?? 0) + us);
      total += us;
    }
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 20);
  let out = `\nprofile (--cpu-prof, both daemons, all rounds): top self time of ${(total / 1e6).toFixed(1)} s sampled\n| self % | function |\n|---|---|\n`;
  for (const [k, us] of rows) out += `| ${((us / total) * 100).toFixed(1)} | ${k} |\n`;
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const skip = why();
  if (skip) {
    console.log(`tunnel bench skipped: ${skip}`);
    return;
  }
  const load0 = os.loadavg();
  const res = { strongswan: [] };
  for (const v of VARIANTS) res[`natt-${v}`] = [];
  const runs = [['strongswan', strongswanRound], ...VARIANTS.map((v) => [`natt-${v}`, () => nattRound(v)])];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [name, fn] of runs) {
      const m = await fn();
      res[name].push(m);
      console.log(
        `round ${r} ${name.padEnd(14)} ${m.mbps.toFixed(0).padStart(6)} Mbit/s  ${m.usPerPacket.toFixed(1).padStart(5)} µs/packet (both ends)  ${m.cpuSecondsPerGB.toFixed(2)} CPU s/GB  CPU ${m.cpuPct.map((c) => c.toFixed(0)).join('/')}%  retr ${m.retransmits}`,
      );
      const k = m.counters;
      console.log(`         udp RcvbufErrors ${k.udpRcvbufErrors.join('/')}  SndbufErrors ${k.udpSndbufErrors.join('/')}  dev tx dropped ${k.devTxDropped.join('/')}`);
      if (m.daemon) for (const [i, ls] of m.daemon.entries()) for (const l of ls) console.log(`         natt ${i ? 'b' : 'a'}: ${l}`);
    }
  }
  const sum = (name) => ({
    mbps: median(res[name].map((m) => m.mbps)),
    usPerPacket: median(res[name].map((m) => m.usPerPacket)),
    cpuSecondsPerGB: median(res[name].map((m) => m.cpuSecondsPerGB)),
    runs: res[name].map((m) => Math.round(m.mbps)),
  });
  const s = sum('strongswan');
  const label = {
    plain: 'natt tunnel, no offloads',
    udp: 'natt tunnel, UDP GSO/GRO',
    tso: 'natt tunnel, UDP GSO/GRO + TUN TSO/USO',
    offload: 'natt tunnel, UDP GSO/GRO + TUN TSO/USO/GRO',
  };
  console.log(`\nTCP through the tunnel, 1 stream, ${DUR} s, ${ROUNDS} interleaved rounds, medians; load ${load0.map((l) => l.toFixed(2)).join(' ')} → ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('| | Mbit/s | runs | × strongSwan | CPU µs/packet (both ends) | CPU s/GB |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| strongSwan 5.9.8 kernel-libipsec | ${s.mbps.toFixed(0)} | ${s.runs.join(', ')} | 1.00× | ${s.usPerPacket.toFixed(1)} | ${s.cpuSecondsPerGB.toFixed(2)} |`);
  const natt = {};
  for (const v of VARIANTS) {
    const n = (natt[v] = sum(`natt-${v}`));
    console.log(`| ${label[v]} | ${n.mbps.toFixed(0)} | ${n.runs.join(', ')} | ${(n.mbps / s.mbps).toFixed(2)}× | ${n.usPerPacket.toFixed(1)} | ${n.cpuSecondsPerGB.toFixed(2)} |`);
  }
  console.log("(packets: strongSwan the TUN devices' counters, natt the ESP packets its engines sealed; each packet that crossed the tunnel, either way, once)");
  if (PROF) console.log(profileSummary(PROF));
  const ratios = Object.fromEntries(VARIANTS.map((v) => [v, natt[v].mbps / s.mbps]));
  console.log(JSON.stringify({ bench: 'tunnel', dur: DUR, rounds: ROUNDS, load: os.loadavg(), strongswan: s, natt, ratios, raw: res }));
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(STATE, { recursive: true, force: true }));
