// `npm run soak -- tunnel`: N packets (default 10^7) through two natt tunnel daemons in network namespaces joined by
// a veth: a UDP blast from namespace A's TUN side to namespace B's, counted at both ends, the daemons' RSS sampled.
//
//   npm run soak -- tunnel                                  10^7 datagrams of 64 bytes at 8000/s
//   npm run soak -- tunnel --packets 1000000 --rate 20000   fewer, faster
//   npm run soak -- tunnel --size 1000 --max-loss 0.01       bigger datagrams; fail above 1 % lost
//
// A ⇄ B: `natt tunnel up` in each namespace (TUN 10.10.1.1 / 10.10.2.1, outer 10.99.0.1 / 10.99.0.2 on the veth, one
// AES-GCM-128 SA each way, ESP in UDP 4500). The blast (scripts/soak-blast.js) goes from 10.10.1.1 to 10.10.2.1:9000:
// the kernel routes it into A's TUN, A's engine seals it, the veth carries it, B's engine opens it and writes it into
// B's TUN, the kernel delivers it. Printed: sent, received (each number once), lost, duplicates, the daemons' counters
// as they log them at SIGTERM, the namespaces' UDP receive-buffer errors (/proc/net/snmp: where losses happen on a
// host that cannot keep up), RSS of each daemon at start (after warm-up), end and its drift per minute, one JSON line.
// Root, ip(8) and /dev/net/tun needed; the namespaces are the run's own and are removed at the end.

'use strict';
const { spawn, spawnSync, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createInterface } = require('node:readline');

const ROOT = path.join(__dirname, '..');
const MiB = 1024 * 1024;

function parse(argv) {
  const o = { packets: 10_000_000, rate: 8000, size: 64, maxLoss: 0.05, maxDrift: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) fail(`${a} takes a positive number, got ${argv[i]}`, 2);
      return v;
    };
    if (a === 'tunnel') continue;
    else if (a === '--packets') o.packets = Math.round(num());
    else if (a === '--rate') o.rate = num();
    else if (a === '--size') o.size = Math.min(1300, Math.max(4, Math.round(num())));
    else if (a === '--max-loss') o.maxLoss = num();
    else if (a === '--max-drift') o.maxDrift = num();
    else fail(`unknown option ${a} (tunnel: --packets N --rate pps --size bytes --max-loss fraction --max-drift MiB/min)`, 2);
  }
  if (o.packets > 0xffffffff) fail('--packets: at most 2^32 (the datagrams carry a 32-bit number)', 2);
  return o;
}

function fail(msg, code = 1) {
  console.error(`soak tunnel: ${msg}`);
  process.exit(code);
}

const tag = String(process.pid % 10000);
const NS = { a: `natt-soak-a${tag}`, b: `natt-soak-b${tag}` };
const sh = (args, ns) => execFileSync(ns ? 'ip' : args[0], ns ? ['netns', 'exec', ns, ...args] : args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function teardown() {
  for (const n of Object.values(NS)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

function topology() {
  teardown();
  sh(['ip', 'netns', 'add', NS.a]);
  sh(['ip', 'netns', 'add', NS.b]);
  sh(['ip', 'link', 'add', `sa${tag}`, 'netns', NS.a, 'type', 'veth', 'peer', 'name', `sb${tag}`, 'netns', NS.b]);
  sh(['ip', 'addr', 'add', '10.99.0.1/24', 'dev', `sa${tag}`], NS.a);
  sh(['ip', 'addr', 'add', '10.99.0.2/24', 'dev', `sb${tag}`], NS.b);
  for (const [n, d] of [
    [NS.a, `sa${tag}`],
    [NS.b, `sb${tag}`],
  ]) {
    sh(['ip', 'link', 'set', d, 'up'], n);
    sh(['ip', 'link', 'set', 'lo', 'up'], n);
  }
}

const KEY_AB = require('node:crypto').randomBytes(20).toString('hex');
const KEY_BA = require('node:crypto').randomBytes(20).toString('hex');

function config(side, dir) {
  const a = side === 'a';
  const me = a ? '10.99.0.1' : '10.99.0.2';
  const peer = a ? '10.99.0.2' : '10.99.0.1';
  const [myNet, peerNet] = a ? ['10.10.1.0/24', '10.10.2.0/24'] : ['10.10.2.0/24', '10.10.1.0/24'];
  const out = { spi: a ? 0x1001 : 0x2002, key: a ? KEY_AB : KEY_BA, reqid: a ? 1 : 2 };
  const inn = { spi: a ? 0x2002 : 0x1001, key: a ? KEY_BA : KEY_AB, reqid: a ? 2 : 1 };
  const natt = { type: 'espinudp', sport: 4500, dport: 4500 };
  const gcm = (key) => ({ algorithm: 'aes-gcm-16', key: `0x${key}` });
  return {
    tun: { name: `st${side}${tag}`, mtu: 1400, addresses: [a ? '10.10.1.1/32' : '10.10.2.1/32'], routes: [{ dst: peerNet }] },
    listen: { address: me, port: 4500 },
    control: { path: path.join(dir, `${side}.sock`) },
    keepaliveSeconds: 0,
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

/** A child in a namespace, its stdout lines collected and offered to waiters. */
function child(ns, args) {
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const c = { proc: p, lines: [], waiters: [], exited: null, stderr: '' };
  createInterface({ input: p.stdout }).on('line', (l) => {
    c.lines.push(l);
    if (c.lines.length > 10000) c.lines.splice(0, 5000);
    for (const w of [...c.waiters]) if (w.test(l)) (c.waiters.splice(c.waiters.indexOf(w), 1), w.resolve(l));
  });
  p.stderr.on('data', (d) => (c.stderr = (c.stderr + d).slice(-4000)));
  p.on('exit', (code, sig) => {
    c.exited = { code, sig };
    for (const w of c.waiters.splice(0)) w.reject(new Error(`${args.join(' ')} exited (${code ?? sig}): ${c.stderr.trim().slice(-500)}`));
  });
  c.wait = (re, ms = 20000) =>
    new Promise((resolve, reject) => {
      const hit = c.lines.find((l) => re.test(l));
      if (hit) return resolve(hit);
      if (c.exited) return reject(new Error(`${args.join(' ')} had exited: ${c.stderr.trim().slice(-500)}`));
      const w = { test: (l) => re.test(l), resolve, reject };
      c.waiters.push(w);
      setTimeout(() => reject(new Error(`no ${re} within ${ms} ms from ${args.join(' ')}: ${c.stderr.trim().slice(-500)}`)), ms).unref();
    });
  c.stop = () =>
    new Promise((res) => {
      if (c.exited) return res();
      p.once('exit', () => res());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 10000).unref();
    });
  return c;
}

/** VmRSS of a process in bytes (the daemon: `ip netns exec` execs node, so the child's pid is node's). */
function rss(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** A TUN's kernel counters in its namespace (tx: towards the daemon, the kernel's side of what the daemon reads). */
function linkStats(ns, dev) {
  try {
    const [l] = JSON.parse(sh(['ip', '-s', '-j', 'link', 'show', 'dev', dev], ns));
    const s = l.stats64 ?? l.stats;
    return { txPackets: s.tx.packets, txDropped: s.tx.dropped, rxPackets: s.rx.packets, rxDropped: s.rx.dropped };
  } catch {
    return null;
  }
}

/** The Udp line of /proc/net/snmp in a namespace, as { InDatagrams, RcvbufErrors, SndbufErrors, ... }. */
function udpSnmp(ns) {
  const lines = sh(['cat', '/proc/net/snmp'], ns).split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.trim().split(/\s+/).slice(1));
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

/** Least-squares slope of (t in minutes, bytes) → bytes per minute. */
function slope(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.t, 0) / n;
  const my = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mx) * (p.v - my);
    den += (p.t - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const fmt = (n) => n.toLocaleString('en-US');
const mib = (b) => (b / MiB).toFixed(1);

async function tunnelSoak(argv) {
  const o = parse(argv);
  if (process.getuid?.() !== 0) fail('needs root (network namespaces, TUN devices)');
  if (!fs.existsSync('/dev/net/tun')) fail('needs /dev/net/tun (CONFIG_TUN)');
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) fail('needs ip(8) (iproute2)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-soak-'));
  const estimate = o.packets / o.rate;
  console.log(
    `natt soak: mode 'tunnel' (two natt tunnel daemons in namespaces ${NS.a}, ${NS.b} over a veth), ${fmt(o.packets)} datagrams of ${o.size} bytes at ${fmt(o.rate)}/s ` +
      `(about ${(estimate / 60).toFixed(1)} min); fail above ${o.maxLoss * 100} % lost or ${o.maxDrift} MiB/min RSS drift of a daemon`,
  );
  const procs = [];
  process.on('SIGINT', () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    teardown();
    process.exit(130);
  });
  let result;
  try {
    topology();
    const daemons = {};
    for (const side of ['a', 'b']) {
      const file = path.join(dir, `${side}.json`);
      fs.writeFileSync(file, JSON.stringify(config(side, dir)), { mode: 0o600 });
      daemons[side] = child(NS[side], [path.join(ROOT, 'bin', 'natt.js'), 'tunnel', 'up', '--config', file]);
      procs.push(daemons[side]);
    }
    await Promise.all(Object.values(daemons).map((d) => d.wait(/tunnel up/)));
    const recv = child(NS.b, [path.join(__dirname, 'soak-blast.js'), 'recv', '10.10.2.1', '9000', String(o.packets)]);
    procs.push(recv);
    await recv.wait(/"ready"/);
    // Warm-up: a second of traffic both ways (ping) so both engines have run their paths once.
    spawnSync('ip', ['netns', 'exec', NS.a, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '10.10.2.1'], { stdio: 'ignore' });
    const snmp0 = { a: udpSnmp(NS.a), b: udpSnmp(NS.b) };
    const t0 = Date.now();
    const samples = { a: [], b: [] };
    const sample = () => {
      const t = (Date.now() - t0) / 60000;
      for (const s of ['a', 'b']) samples[s].push({ t, v: rss(daemons[s].proc.pid) });
    };
    sample();
    const sampler = setInterval(sample, 5000);
    const send = child(NS.a, [path.join(__dirname, 'soak-blast.js'), 'send', '10.10.2.1', '9000', String(o.packets), String(o.rate), String(o.size)]);
    procs.push(send);
    let last = 0;
    const progress = setInterval(() => {
      const s = [...send.lines].reverse().find((l) => l.startsWith('{"send"'));
      const r = [...recv.lines].reverse().find((l) => l.startsWith('{"recv"'));
      const sent = s ? JSON.parse(s).send.sent : 0;
      const got = r ? JSON.parse(r).recv.unique : 0;
      const ra = samples.a.at(-1)?.v ?? NaN;
      const rb = samples.b.at(-1)?.v ?? NaN;
      console.log(
        `  ${((Date.now() - t0) / 60000).toFixed(1)} min: sent ${fmt(sent)} (${fmt(Math.round((sent - last) / 30))}/s), received ${fmt(got)}, ` +
          `rss A ${mib(ra)} MiB, B ${mib(rb)} MiB`,
      );
      last = sent;
    }, 30000);
    const doneLine = await send.wait(/"done"/, (estimate * 3 + 600) * 1000);
    const done = JSON.parse(doneLine).done;
    await new Promise((r) => setTimeout(r, 2000)); // what is in flight
    clearInterval(progress);
    clearInterval(sampler);
    sample();
    const snmp1 = { a: udpSnmp(NS.a), b: udpSnmp(NS.b) };
    const tunLinks = { a: linkStats(NS.a, `sta${tag}`), b: linkStats(NS.b, `stb${tag}`) };
    await recv.stop();
    const got = JSON.parse([...recv.lines].reverse().find((l) => l.startsWith('{"recv"'))).recv;
    await Promise.all(Object.values(daemons).map((d) => d.stop()));
    const logs = {};
    for (const s of ['a', 'b']) logs[s] = daemons[s].lines.filter((l) => /^(tunnel down|traffic|drops):/.test(l.replace(/^\S+ /, '')) || /tunnel down|traffic:|drops:/.test(l));
    const warm = (pts) => pts.filter((p) => p.t >= Math.min(1, pts.at(-1).t / 2));
    const drift = { a: slope(warm(samples.a)), b: slope(warm(samples.b)) };
    const delta = (s) => Object.fromEntries(['InDatagrams', 'RcvbufErrors', 'SndbufErrors', 'InErrors'].map((k) => [k, snmp1[s][k] - snmp0[s][k]]));
    const lost = done.sent - got.unique;
    result = {
      packets: o.packets,
      rate: o.rate,
      size: o.size,
      seconds: done.seconds,
      sent: done.sent,
      sendErrors: done.errors,
      received: got.unique,
      duplicates: got.duplicates,
      reordered: got.reordered,
      lost,
      lossRate: done.sent ? lost / done.sent : 0,
      udp: { a: delta('a'), b: delta('b') },
      tun: tunLinks,
      daemons: logs,
      rssMiB: Object.fromEntries(['a', 'b'].map((s) => [s, { start: +mib(samples[s][0].v), end: +mib(samples[s].at(-1).v), max: +mib(Math.max(...samples[s].map((p) => p.v))) }])),
      driftMiBPerMin: { a: +mib(drift.a), b: +mib(drift.b) },
    };
    const failures = [];
    if (result.lossRate > o.maxLoss) failures.push(`${(result.lossRate * 100).toFixed(3)} % lost (limit ${o.maxLoss * 100} %)`);
    for (const s of ['a', 'b']) if (drift[s] > o.maxDrift * MiB) failures.push(`daemon ${s.toUpperCase()} RSS grows ${mib(drift[s])} MiB/min`);
    if (got.duplicates) failures.push(`${got.duplicates} duplicates delivered (replay protection failed)`);
    result.pass = failures.length === 0;
    result.failures = failures;
    console.log(`\nnatt soak, mode 'tunnel': ${(done.seconds / 60).toFixed(2)} min of sending (${fmt(Math.round(done.sent / done.seconds))} datagrams/s)`);
    console.log(`  datagrams       sent ${fmt(done.sent)} (send errors ${done.errors}), received ${fmt(got.unique)}, lost ${fmt(lost)} (${(result.lossRate * 100).toFixed(3)} %), duplicates ${got.duplicates}, reordered ${got.reordered}`);
    for (const s of ['a', 'b']) console.log(`  udp ns ${s.toUpperCase()}        ${JSON.stringify(result.udp[s])} (/proc/net/snmp during the blast)`);
    for (const s of ['a', 'b']) console.log(`  tun ${s.toUpperCase()}           ${JSON.stringify(tunLinks[s])} (ip -s link: tx = the kernel towards the daemon; txDropped = queue full, not read in time)`);
    for (const s of ['a', 'b']) for (const l of logs[s]) console.log(`  daemon ${s.toUpperCase()}        ${l}`);
    for (const s of ['a', 'b']) {
      const r = result.rssMiB[s];
      console.log(`  rss daemon ${s.toUpperCase()}    start ${r.start} MiB, end ${r.end} MiB, max ${r.max} MiB, drift ${result.driftMiBPerMin[s]} MiB/min after warm-up`);
    }
    console.log(failures.length ? `  FAIL: ${failures.join('; ')}` : '  PASS');
    console.log(JSON.stringify({ soak: { mode: 'tunnel', ...result } }));
    process.exitCode = failures.length ? 1 : 0;
  } finally {
    for (const p of procs) if (!p.exited) p.proc.kill('SIGKILL');
    teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

module.exports = { tunnelSoak, slope };
