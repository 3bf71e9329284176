// `npm run soak`: hours of traffic in minutes: two ESP ends carrying a steady stream both ways, rekeyed, remapped and attacked; memory and losses watched.
//
//   npm run soak                                  the 'userland' mode, 5 minutes, 2000 inner packets/s in all
//   npm run soak -- --minutes 30 --rate 5000      longer, faster
//   npm run soak -- userland --max-drift 2        the mode by name; fail above 2 MiB/min of RSS growth
//   npm run soak -- --packets 3000000 --rate 5000 a packet count instead of a duration (the run ends when all are sent)
//
// Every mode (MODES below) builds two ends and answers send(dir, i), stats(), and the events it supports (rekey,
// remap, attack); the harness paces the traffic, fires the events, samples RSS and heap (after a full GC) every 5 s and
// the event-loop delay, and prints what was sent and received, every drop counter that moved, the losses
// (sent − received − drops of genuine traffic), memory at start / 1 min / end and its drift per minute after warm-up,
// and one JSON line. Exit 1 when the RSS drift after warm-up exceeds --max-drift (MiB/min) or packets were lost:
// sent + injected − received − natt's counted drops − the kernel's receive-buffer drops (/proc/net/udp) is not 0.
// A 'tunnel' mode (TUN ⇄ policy ⇄ ESP ⇄ NAT-T socket, the daemon) is added to MODES beside 'userland'.

'use strict';
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const v8 = require('node:v8');
const vm = require('node:vm');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');
const natt = require('../dist/index.js');
const { buildUdpPacket } = require('../dist/ip/packet.js');

// ---- options ----

const argv = process.argv.slice(2);
// 'tunnel' is its own driver (daemons in namespaces, a UDP blast through the TUNs): scripts/soak-tunnel.js.
if (argv[0] === 'tunnel') {
  require('./soak-tunnel.js')
    .tunnelSoak(argv.slice(1))
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    });
  return;
}
const opt = { mode: 'userland', minutes: 5, rate: 2000, maxDrift: 1, rekeySeconds: 15, remapSeconds: 60, attackRate: 20, sas: 4 };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const num = (name) => {
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v <= 0) usage(`${name} takes a positive number, got ${argv[i]}`);
    return v;
  };
  if (a === '--minutes') opt.minutes = num(a);
  else if (a === '--packets') opt.packets = Math.round(num(a));
  else if (a === '--rate') opt.rate = num(a);
  else if (a === '--max-drift') opt.maxDrift = num(a);
  else if (a === '--rekey') opt.rekeySeconds = num(a);
  else if (a === '--remap') opt.remapSeconds = num(a);
  else if (a === '--attack-rate') opt.attackRate = num(a);
  else if (a === '--sas') opt.sas = Math.max(1, Math.min(64, Math.round(num(a))));
  else if (a === '--help' || a === '-h') usage();
  else if (!a.startsWith('-')) opt.mode = a;
  else usage(`unknown option ${a}`);
}

function usage(problem) {
  if (problem) console.error(problem);
  console.error(
    'usage: npm run soak -- [mode] [--minutes N | --packets N] [--rate pps] [--max-drift MiB/min] [--rekey s] [--remap s] [--attack-rate pps] [--sas N]\n' +
      `modes: ${Object.entries(MODES)
        .map(([k, m]) => `${k} (${m.what})`)
        .join('; ')}`,
  );
  process.exit(problem ? 2 : 0);
}

// ---- the modes ----

/** Suites the SAs cycle through: an AEAD, ChaCha20-Poly1305, CBC+HMAC, AES-GCM-128. Keys are fresh random bytes. */
const SUITES = [
  () => ({ encryption: { algorithm: 'aes-gcm-16', key: crypto.randomBytes(36) } }),
  () => ({ encryption: { algorithm: 'chacha20-poly1305', key: crypto.randomBytes(36) } }),
  () => ({ encryption: { algorithm: 'aes-cbc', key: crypto.randomBytes(32) }, integrity: { algorithm: 'hmac-sha2-256-128', key: crypto.randomBytes(32) } }),
  () => ({ encryption: { algorithm: 'aes-gcm-16', key: crypto.randomBytes(20) } }),
];

/**
 * 'userland': two UserlandEngines over real loopback NattSockets (userland backend). `sas` SA pairs, each its own
 * inner networks (10.1.k.0/24 ⇄ 10.2.k.0/24), policies with reqids (both ends share 127.0.0.1). Rekey: update() both
 * ends of one SA with new keys (same SPI: packets in flight are counted drops). Remap: end A moves to a second socket
 * on a new port (a NAT rebinding); its old socket and engine stay up 3 s for what is in flight, then close; B learns the
 * new port from A's next authenticated packet (newMapping). Attack: an outside socket sends B and A replays of
 * captured ESP, forged ESP (a flipped ICV byte), unknown SPIs and runts; each must end in exactly one counted drop.
 */
async function userlandMode(o) {
  const open = () => natt.createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
  const sockets = { A: await open(), B: await open() };
  const db = { A: new natt.UserlandSadb(), B: new natt.UserlandSadb() };
  const port = (end) => sockets[end].address().port;
  const sas = [];
  for (let k = 0; k < o.sas; k++) {
    const ab = { spi: 0x1000 + k, reqid: 10 + k, src: 'A', dst: 'B', net: [`10.1.${k}.0/24`, `10.2.${k}.0/24`] };
    const ba = { spi: 0x2000 + k, reqid: 20 + k, src: 'B', dst: 'A', net: [`10.2.${k}.0/24`, `10.1.${k}.0/24`] };
    for (const d of [ab, ba]) {
      d.sa = () => ({
        src: '127.0.0.1',
        dst: '127.0.0.1',
        spi: d.spi,
        mode: 'tunnel',
        reqid: d.reqid,
        replayWindow: 128,
        ...d.keys,
        natt: { type: 'espinudp', sport: port(d.src), dport: port(d.dst) },
      });
      d.keys = SUITES[k % SUITES.length]();
      for (const end of ['A', 'B']) await db[end].add(d.sa());
      const tmpl = [{ protocol: 'esp', mode: 'tunnel', src: '127.0.0.1', dst: '127.0.0.1', reqid: d.reqid }];
      await db[d.src].spdAdd({ selector: { src: d.net[0], dst: d.net[1] }, direction: 'out', action: 'ipsec', templates: tmpl });
      await db[d.dst].spdAdd({ selector: { src: d.net[0], dst: d.net[1] }, direction: 'in', action: 'ipsec', templates: tmpl });
      sas.push(d);
    }
  }
  // Inner packets, built once (the engine copies what it seals): per SA pair and direction, sizes 64 to 1400.
  const sizes = [64, 300, 800, 1400];
  const packets = { A: [], B: [] };
  for (let k = 0; k < o.sas; k++) {
    const size = sizes[k % sizes.length] - 28;
    packets.A.push(buildUdpPacket(`10.1.${k}.5`, 5000 + k, `10.2.${k}.7`, 6000 + k, crypto.randomBytes(size)));
    packets.B.push(buildUdpPacket(`10.2.${k}.7`, 6000 + k, `10.1.${k}.5`, 5000 + k, crypto.randomBytes(size)));
  }

  const received = { A: 0, B: 0 };
  const results = {};
  const engines = { A: null, B: null };
  const retired = []; // engines and sockets replaced by a remap: their counters still count
  const draining = new Set(); // replaced, still receiving what was in flight to the old port
  const captured = [];
  const capture = (end) => (esp) => {
    if (captured.length < 256 && Math.random() < 0.005) captured.push({ end, bytes: Buffer.from(esp) });
  };
  const attach = (end, socket) => {
    const e = new natt.UserlandEngine({ socket, sadb: db[end], keepaliveSeconds: 20 });
    e.on('packet', () => received[end]++);
    socket.on('esp', capture(end));
    engines[end] = e;
    return e;
  };
  attach('A', sockets.A);
  attach('B', sockets.B);

  const attacker = dgram.createSocket('udp4');
  await new Promise((res) => attacker.bind(0, '127.0.0.1', res));
  const injected = { replay: 0, forged: 0, unknownSpi: 0, runt: 0 };
  let rekeys = 0;
  let remaps = 0;

  return {
    /** Send packet i of the stream: it alternates directions and SA pairs. */
    send(i) {
      const from = i & 1 ? 'B' : 'A';
      const r = engines[from].send(packets[from][(i >> 1) % o.sas]);
      results[r] = (results[r] ?? 0) + 1;
    },
    events: [
      {
        name: 'rekey',
        every: o.rekeySeconds,
        async run() {
          const d = sas[rekeys++ % sas.length];
          d.keys = SUITES[(d.spi & 0xff) % SUITES.length]();
          await db[d.dst].update(d.sa()); // the receiver first: what is in flight with the old keys is a counted drop
          await db[d.src].update(d.sa());
        },
      },
      {
        name: 'remap',
        every: o.remapSeconds,
        async run() {
          remaps++;
          const old = { engine: engines.A, socket: sockets.A };
          draining.add(old);
          sockets.A = await open();
          attach('A', sockets.A);
          setTimeout(() => {
            draining.delete(old);
            retired.push({ stats: old.engine.stats(), traffic: old.engine.traffic(), socket: old.socket.stats(), kernelDrops: kernelDrops([old.socket.address().port]) });
            old.engine.close();
            old.socket.close();
          }, 3000).unref();
        },
      },
      {
        name: 'attack',
        every: 1 / o.attackRate,
        run() {
          if (captured.length === 0) return;
          const c = captured[Math.floor(Math.random() * captured.length)];
          const to = c.end === 'A' ? port('A') : port('B');
          const kind = ['replay', 'forged', 'unknownSpi', 'runt'][Math.floor(Math.random() * 4)];
          let b = c.bytes;
          if (kind === 'forged') {
            b = Buffer.from(c.bytes);
            b[b.length - 1] ^= 0x5a;
          } else if (kind === 'unknownSpi') {
            b = Buffer.from(c.bytes);
            b.writeUInt32BE(0xdead0000 + Math.floor(Math.random() * 0xffff), 0);
          } else if (kind === 'runt') b = Buffer.from([1, 2, 3]);
          injected[kind]++;
          attacker.send(b, to, '127.0.0.1');
        },
      },
    ],
    stats() {
      const live = [...['A', 'B'].map((end) => ({ engine: engines[end], socket: sockets[end] })), ...draining].map((x) => ({
        stats: x.engine.stats(),
        traffic: x.engine.traffic(),
        socket: x.socket.stats(),
        kernelDrops: kernelDrops([x.socket.address().port]),
      }));
      const all = [...live, ...retired];
      const sum = (pick) => {
        const out = {};
        for (const x of all) for (const [k, n] of Object.entries(pick(x))) if (typeof n === 'number') out[k] = (out[k] ?? 0) + n;
        return out;
      };
      const counters = sum((x) => x.stats);
      const traffic = sum((x) => x.traffic);
      const socketDrops = sum((x) => x.socket.dropped);
      const socket = sum((x) => ({ sendErrors: x.socket.sendErrors, keepalive: x.socket.keepalive }));
      const inDrops = Object.entries(counters).reduce((t, [k, n]) => (k.startsWith('In') ? t + n : t), 0) + Object.values(socketDrops).reduce((a, b) => a + b, 0);
      const attacks = Object.values(injected).reduce((a, b) => a + b, 0);
      const sent = traffic.outPackets;
      const got = received.A + received.B;
      const kernel = all.reduce((t, x) => t + x.kernelDrops, 0);
      return {
        sent,
        received: got,
        results,
        injected,
        events: { rekeys, remaps, newMappings: traffic.newMappings, keepalivesSent: traffic.keepalivesSent, keepalivesReceived: socket.keepalive },
        drops: { ...counters, ...Object.fromEntries(Object.entries(socketDrops).map(([k, n]) => [`socket.${k}`, n])), 'socket.sendErrors': socket.sendErrors },
        // What reached the sockets (genuine packets the engines completed sending, and injected ones) was received,
        // counted as a drop by natt (engine or socket), or dropped by the kernel for a full receive buffer: the rest is lost.
        kernelDrops: kernel,
        losses: sent + attacks - got - inDrops - kernel,
      };
    },
    async close() {
      for (const end of ['A', 'B']) engines[end].close();
      await Promise.all([...Object.values(sockets).map((s) => new Promise((res) => s.close(res))), new Promise((res) => attacker.close(res))]);
      await Promise.all([db.A.close(), db.B.close()]);
    },
  };
}

/**
 * Datagrams the kernel dropped because a socket's receive buffer was full (the `drops` column of /proc/net/udp and
 * udp6, Linux), for the sockets bound to these local ports: a process that did not read in time (event-loop stalls on
 * a loaded host). Counted by the kernel, not by natt; 0 where /proc/net/udp does not exist.
 */
function kernelDrops(ports) {
  const want = new Set(ports.map((p) => p.toString(16).toUpperCase().padStart(4, '0')));
  let n = 0;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text;
    try {
      text = require('node:fs').readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 13) continue;
      if (want.has(cols[1].split(':')[1])) n += Number(cols[12]) || 0;
    }
  }
  return n;
}

const MODES = {
  userland: { what: 'two UserlandEngines over real loopback NattSockets, userland backend', setup: userlandMode },
  // tunnel: { what: 'two tunnels (TUN ⇄ policy ⇄ ESP ⇄ NAT-T socket) between network namespaces', setup: tunnelMode },
};

// ---- the harness ----

const gc = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
})();

function memory() {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

/** Least-squares slope of (t in minutes, bytes) → bytes per minute (one definition, in the tunnel driver). */
const { slope } = require('./soak-tunnel.js');

const MiB = 1024 * 1024;
/** A percentile of the event-loop histogram as the lateness of its 1 ms timer, in ms. */
const late = (ns) => Math.max(0, ns / 1e6 - 1);
const mib = (b) => (b / MiB).toFixed(1);

async function main() {
  const mode = MODES[opt.mode];
  if (!mode) usage(`no mode '${opt.mode}'`);
  // With --packets the run lasts until that many are sent (at --rate, about packets / rate seconds).
  const durationMs = opt.packets ? (opt.packets / opt.rate) * 1000 : opt.minutes * 60_000;
  // RSS climbs for the first ~30 s (V8's heap and the allocator settle); the drift is measured after that.
  const warmupMs = Math.min(60_000, durationMs * 0.5);
  console.log(
    `natt soak: mode '${opt.mode}' (${mode.what}), ${opt.packets ? `${opt.packets} packets` : `${opt.minutes} min`} at ${opt.rate} inner packets/s, ${opt.sas} SA pairs, ` +
      `rekey every ${opt.rekeySeconds} s, remap every ${opt.remapSeconds} s, ${opt.attackRate} attack datagrams/s; fail above ${opt.maxDrift} MiB/min RSS drift after ${warmupMs / 1000} s`,
  );
  const m = await mode.setup(opt);
  const loop = monitorEventLoopDelay({ resolution: 1 }); // a 1 ms timer; its lateness is the delay (below: minus 1 ms)
  loop.enable();
  const start = performance.now();
  const elapsed = () => performance.now() - start;
  const samples = [{ t: 0, ...memory() }];
  const marks = { start: samples[0] };

  let i = 0;
  let stopped = false;
  const limit = opt.packets ?? Infinity;
  let skipped = 0; // what a stall left undue: the schedule moves on rather than bursting
  const pace = setInterval(() => {
    // Send what is due by now (at most 50 ms' worth at once: after a stall the rate does not burst).
    const due = Math.floor((elapsed() / 1000) * opt.rate) - skipped;
    const max = Math.ceil(opt.rate / 20);
    for (let n = 0; i < due && n < max && i < limit; n++) m.send(i++);
    if (i < due - max) skipped += due - max - i;
  }, 5);
  const timers = m.events.map((ev) => {
    let running = false;
    return setInterval(() => {
      if (running || stopped) return;
      running = true;
      Promise.resolve(ev.run())
        .catch((e) => console.error(`${ev.name} failed: ${e.message}`))
        .finally(() => (running = false));
    }, ev.every * 1000);
  });
  const sampler = setInterval(() => {
    const s = { t: elapsed(), ...memory() };
    samples.push(s);
    if (!marks.oneMinute && s.t >= 60_000) marks.oneMinute = s;
  }, 5000);
  const progress = setInterval(() => {
    const s = m.stats();
    const last = samples[samples.length - 1];
    console.log(
      `  ${(elapsed() / 60_000).toFixed(1)} min: sent ${s.sent}, received ${s.received}, kernel drops ${s.kernelDrops}, losses ${s.losses}, rss ${mib(last.rss)} MiB, heap ${mib(last.heapUsed)} MiB, loop p99 ${late(loop.percentile(99)).toFixed(1)} ms`,
    );
  }, 30_000);

  if (opt.packets) await new Promise((res) => { const t = setInterval(() => i >= limit && (clearInterval(t), res()), 100); });
  else await new Promise((res) => setTimeout(res, durationMs));
  stopped = true;
  clearInterval(pace);
  for (const t of timers) clearInterval(t);
  clearInterval(sampler);
  clearInterval(progress);
  await new Promise((res) => setTimeout(res, 4000)); // in flight, and the last retired socket of a remap
  loop.disable();
  const end = { t: elapsed(), ...memory() };
  samples.push(end);
  marks.end = end;
  const s = m.stats();
  await m.close();

  const after = samples.filter((p) => p.t >= warmupMs);
  const drift = {
    rss: slope(after.map((p) => ({ t: p.t / 60_000, v: p.rss }))),
    heapUsed: slope(after.map((p) => ({ t: p.t / 60_000, v: p.heapUsed }))),
  };
  const moved = Object.fromEntries(Object.entries(s.drops).filter(([, n]) => n > 0));
  const lossRate = s.sent ? s.losses / s.sent : 0;
  const failures = [];
  if (drift.rss > opt.maxDrift * MiB) failures.push(`RSS grows ${mib(drift.rss)} MiB/min after warm-up (limit ${opt.maxDrift})`);
  if (s.losses !== 0) failures.push(`${s.losses} packets unaccounted for (sent + injected − received − counted drops − kernel drops)`);

  console.log(`\nnatt soak, mode '${opt.mode}': ${(end.t / 60_000).toFixed(2)} min`);
  console.log(`  inner packets   sent ${s.sent} (engine results: ${JSON.stringify(s.results)}), received ${s.received}`);
  console.log(`  kernel drops    ${s.kernelDrops} (${s.sent ? ((s.kernelDrops / s.sent) * 100).toFixed(3) : 0} %): receive buffer full, /proc/net/udp (the loop did not read in time)`);
  console.log(`  losses          ${s.losses} (${(lossRate * 100).toFixed(4)} %): sent + injected − received − natt's counted drops − kernel drops`);
  console.log(`  injected        ${JSON.stringify(s.injected)}`);
  console.log(`  events          ${JSON.stringify(s.events)}`);
  console.log(`  drop counters   ${Object.entries(moved).map(([k, n]) => `${k} ${n}`).join(', ') || 'none moved'}`);
  for (const [name, p] of [['start', marks.start], ['1 min', marks.oneMinute], ['end', marks.end]]) {
    if (p) console.log(`  memory ${name.padEnd(6)}  rss ${mib(p.rss)} MiB, heap used ${mib(p.heapUsed)} MiB, external ${mib(p.external)} MiB (after a full GC)`);
  }
  console.log(`  drift/min       rss ${mib(drift.rss)} MiB, heap ${mib(drift.heapUsed)} MiB (least squares over ${after.length} samples after ${warmupMs / 1000} s)`);
  console.log(`  event loop      delay p50 ${late(loop.percentile(50)).toFixed(1)} ms, p99 ${late(loop.percentile(99)).toFixed(1)} ms, max ${late(loop.max).toFixed(1)} ms (lateness of a 1 ms timer)`);
  console.log(failures.length ? `  FAIL: ${failures.join('; ')}` : '  PASS: no unbounded growth, every packet accounted for');
  console.log(
    JSON.stringify({
      soak: {
        mode: opt.mode,
        minutes: +(end.t / 60_000).toFixed(2),
        rate: opt.rate,
        sas: opt.sas,
        sent: s.sent,
        received: s.received,
        kernelDrops: s.kernelDrops,
        losses: s.losses,
        results: s.results,
        injected: s.injected,
        events: s.events,
        drops: moved,
        memory: Object.fromEntries(Object.entries(marks).map(([k, p]) => [k, { rssMiB: +mib(p.rss), heapMiB: +mib(p.heapUsed) }])),
        driftMiBPerMin: { rss: +mib(drift.rss), heap: +mib(drift.heapUsed) },
        maxDriftMiBPerMin: opt.maxDrift,
        loopDelayMs: { p50: +late(loop.percentile(50)).toFixed(1), p99: +late(loop.percentile(99)).toFixed(1), max: +late(loop.max).toFixed(1) },
        pass: failures.length === 0,
        failures,
      },
    }),
  );
  process.exitCode = failures.length ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
