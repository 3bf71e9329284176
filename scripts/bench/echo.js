#!/usr/bin/env node
// Echo benchmark: ESP-in-UDP round trips between two UserlandEngines on loopback beside a plain dgram echo, packets/s and their ratio.

'use strict';
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const v8 = require('node:v8');
const { PerformanceObserver } = require('node:perf_hooks');
const { spawnSync } = require('node:child_process');
const { createNattSocket, UserlandEngine, UserlandSadb } = require('../../dist');
const { SEAL_HEADROOM } = require('../../dist/userland/engine');
const { buildUdpPacket } = require('../../dist/ip/packet');

const SIZES = (process.env.BENCH_SIZES || '64,512,1400').split(',').map(Number); // inner IP packet bytes
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5); // interleaved rounds per size (odd: a true median)
const MS = Number(process.env.BENCH_MS || 400); // duration of one measurement
const WINDOW = Number(process.env.BENCH_WINDOW || 16); // packets in flight
const HOST = '127.0.0.1';

/**
 * Keep WINDOW requests in flight for MS milliseconds; `send()` starts one, `onReply(cb)` registers the reply hook.
 * Lost datagrams (loopback buffer overflow) are topped up by a stall timer. Returns completed round trips per second.
 */
function pump(send, onReply) {
  return new Promise((resolve) => {
    let done = 0;
    let inFlight = 0;
    let last = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(MS) * 1_000_000n;
    let finished = false;
    onReply(() => {
      done++;
      inFlight--;
      if (finished) return;
      if (process.hrtime.bigint() >= end) {
        finished = true;
        clearInterval(stall);
        const secs = Number(process.hrtime.bigint() - start) / 1e9;
        resolve(done / secs);
        return;
      }
      inFlight++;
      send();
    });
    const stall = setInterval(() => {
      if (done === last) {
        while (inFlight < WINDOW) {
          inFlight++;
          send();
        }
        if (done === last) inFlight = 0; // nothing came back at all: assume all lost, refill next tick
      }
      last = done;
    }, 20);
    for (let i = 0; i < WINDOW; i++) {
      inFlight++;
      send();
    }
  });
}

async function plainPair(size) {
  const open = () =>
    new Promise((res) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, HOST, () => res(s));
    });
  const a = await open();
  const b = await open();
  const bPort = b.address().port;
  const aPort = a.address().port;
  const msg = Buffer.alloc(size, 0x61);
  b.on('message', (m) => b.send(m, aPort, HOST));
  let hook = () => {};
  a.on('message', () => hook());
  return {
    run: () => pump(() => a.send(msg, bPort, HOST), (cb) => (hook = cb)),
    close: () => Promise.all([new Promise((r) => a.close(r)), new Promise((r) => b.close(r))]),
  };
}

// The same echo through two NattSockets (userland demux, sendEsp) with a fixed ESP-shaped datagram: the socket layer alone.
async function nattPair(size) {
  const sa = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
  const sb = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
  const pa = sa.address().port;
  const pb = sb.address().port;
  const msg = Buffer.alloc(size + 36, 0x61); // what an AES-GCM ESP packet of `size` inner bytes weighs
  sb.on('esp', (m) => sb.sendEsp(m, pa, HOST));
  let hook = () => {};
  sa.on('esp', () => hook());
  return {
    run: () => pump(() => sa.sendEsp(msg, pb, HOST), (cb) => (hook = cb)),
    close: () => Promise.all([new Promise((r) => sa.close(r)), new Promise((r) => sb.close(r))]),
  };
}

// The floor no ESP engine on node:crypto avoids: one AES-128-GCM encrypt + one decrypt of `size` bytes, in µs.
function cryptoFloorUs(size) {
  const key = crypto.createSecretKey(Buffer.alloc(16, 1));
  const nonce = Buffer.alloc(12, 2);
  const aad = Buffer.alloc(8, 3);
  const pt = Buffer.alloc(size + 2, 4);
  const one = () => {
    const c = crypto.createCipheriv('aes-128-gcm', key, nonce);
    c.setAAD(aad);
    const ct = c.update(pt);
    c.final();
    const d = crypto.createDecipheriv('aes-128-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(c.getAuthTag());
    d.update(ct);
    d.final();
  };
  for (let i = 0; i < 2000; i++) one();
  const n = 20000;
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) one();
  return Number(process.hrtime.bigint() - t) / n / 1000;
}

async function engines(size) {
  const sa = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
  const sb = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
  const pa = sa.address().port;
  const pb = sb.address().port;
  const keyAB = Buffer.alloc(20, 0xab); // AES-128-GCM KEYMAT
  const keyBA = Buffer.alloc(20, 0xba);
  const mk = async (me, peer, myPort, peerPort, out, inn, kOut, kIn, myNet, peerNet) => {
    const db = new UserlandSadb();
    const base = { mode: 'tunnel', replayWindow: 1024 };
    await db.add({ ...base, src: me, dst: peer, spi: out, reqid: 1, encryption: { algorithm: 'aes-gcm-16', key: kOut }, natt: { type: 'espinudp', sport: myPort, dport: peerPort } });
    await db.add({ ...base, src: peer, dst: me, spi: inn, reqid: 2, encryption: { algorithm: 'aes-gcm-16', key: kIn }, natt: { type: 'espinudp', sport: peerPort, dport: myPort } });
    await db.spdAdd({ selector: { src: myNet, dst: peerNet }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: me, dst: peer, reqid: 1 }] });
    await db.spdAdd({ selector: { src: peerNet, dst: myNet }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: peer, dst: me, reqid: 2 }] });
    return db;
  };
  const dbA = await mk(HOST, HOST, pa, pb, 0xa1, 0xb1, keyAB, keyBA, '10.1.0.0/16', '10.2.0.0/16');
  const dbB = await mk(HOST, HOST, pb, pa, 0xb1, 0xa1, keyBA, keyAB, '10.2.0.0/16', '10.1.0.0/16');
  const ea = new UserlandEngine({ socket: sa, sadb: dbA, keepaliveSeconds: 0 });
  const eb = new UserlandEngine({ socket: sb, sadb: dbB, keepaliveSeconds: 0 });
  const inner = buildUdpPacket('10.1.0.1', 1000, '10.2.0.1', 2000, Buffer.alloc(size - 28, 0x61));
  const reply = buildUdpPacket('10.2.0.1', 2000, '10.1.0.1', 1000, Buffer.alloc(size - 28, 0x62));
  const close = async () => {
    ea.close();
    eb.close();
    await Promise.all([new Promise((r) => sa.close(r)), new Promise((r) => sb.close(r))]);
    const drops = (s) => Object.values(s).reduce((x, y) => x + y, 0);
    return { dropsA: drops(ea.stats()), dropsB: drops(eb.stats()) };
  };
  return { ea, eb, inner, reply, close };
}

// One packet per call: send() and 'packet' events (a copy per datagram, node:crypto-shaped API).
async function espPair(size) {
  const { ea, eb, inner, reply, close } = await engines(size);
  eb.on('packet', () => eb.send(reply));
  let hook = () => {};
  ea.on('packet', () => hook());
  return { run: () => pump(() => ea.send(inner), (cb) => (hook = cb)), close };
}

/**
 * The tunnel's path: packets laid out as the Tun reads them (a slab with room), sealed in place by sendBatch and
 * sent with one sendmmsg; received ESP opened in the socket's slab and handed over in one call (onPackets). B echoes
 * each batch it receives as one batch; A keeps WINDOW in flight, topping up by the batch.
 */
async function batchedPair(size) {
  const { ea, eb, inner, reply, close } = await engines(size);
  const slot = (size + 128 + 15) & ~15;
  const mk = () => {
    const whole = Buffer.alloc(SEAL_HEADROOM + 1024 * slot);
    return { slab: whole.subarray(SEAL_HEADROOM), lengths: new Uint32Array(1024), results: new Uint8Array(1024) };
  };
  const ta = mk();
  const tb = mk();
  const fill = (t, pkt, n) => {
    for (let i = 0; i < n; i++) {
      pkt.copy(t.slab, i * slot);
      t.lengths[i] = pkt.length;
    }
  };
  const sendA = (n) => {
    fill(ta, inner, n);
    ea.sendBatch(ta.slab, ta.lengths, n, slot, ta.results, SEAL_HEADROOM);
  };
  eb.onPackets((slab, offsets, lengths, count) => {
    fill(tb, reply, count);
    eb.sendBatch(tb.slab, tb.lengths, count, slot, tb.results, SEAL_HEADROOM);
  });
  let hook = () => {};
  const on = ea.onPackets((slab, offsets, lengths, count) => hook(count));
  if (!on) throw new Error('no batched receive here (the native addon is needed)');
  const run = () =>
    new Promise((resolve) => {
      let done = 0;
      let last = 0;
      const start = process.hrtime.bigint();
      const end = start + BigInt(MS) * 1_000_000n;
      let finished = false;
      hook = (count) => {
        done += count;
        if (finished) return;
        if (process.hrtime.bigint() >= end) {
          finished = true;
          clearInterval(stall);
          resolve(done / (Number(process.hrtime.bigint() - start) / 1e9));
          return;
        }
        sendA(count);
      };
      const stall = setInterval(() => {
        if (done === last) sendA(WINDOW); // lost: top the window up again
        last = done;
      }, 20);
      sendA(WINDOW);
    });
  return { run, close, engines: { ea, eb } };
}

/**
 * Heap bytes allocated per round trip on the batched path, in a child whose young generation is large enough that
 * no GC runs during the measurement: heapUsed after − before, over the round trips (and the GCs seen, expected 0).
 */
async function allocationPerRoundTrip(size) {
  const pair = await batchedPair(size);
  await pair.run();
  await pair.run();
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const before = process.memoryUsage().heapUsed;
  const rate = await pair.run();
  const after = process.memoryUsage().heapUsed;
  obs.disconnect();
  await pair.close();
  const trips = (rate * MS) / 1000;
  return { size, roundTrips: Math.round(trips), bytesPerRoundTrip: (after - before) / trips, gcs, heapSpaceLimitMb: v8.getHeapStatistics().heap_size_limit / 2 ** 20 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  if (process.argv[2] === '--alloc') {
    const out = [];
    for (const size of SIZES) out.push(await allocationPerRoundTrip(size));
    process.stdout.write(JSON.stringify(out));
    return;
  }
  console.log(`ESP-in-UDP echo (two UserlandEngines, AES-128-GCM, tunnel mode) vs plain dgram echo on ${HOST}`);
  console.log(`window ${WINDOW} in flight, ${ROUNDS} interleaved rounds of ${MS} ms, median round trips/s; goal: esp/plain >= 0.6`);
  console.log('natt-sock = the same echo through two NattSockets without crypto; floor = bare node:crypto GCM seal+open (µs);');
  console.log('ceiling = the best esp/plain any engine could reach on node:crypto: plain round trip / (plain + 2 × floor)\n');
  console.log('batched = the tunnel\'s path (sendBatch sealing in place + sendmmsg, recvmmsg + openBatch + one hand-over per wake)\n');
  console.log('size (B)   plain rt/s  natt-sock rt/s    esp rt/s   esp/plain  batched rt/s  batched/plain   floor µs   ceiling');
  const results = [];
  for (const size of SIZES) {
    const plain = await plainPair(size);
    const natt = await nattPair(size);
    const esp = await espPair(size);
    const batched = await batchedPair(size);
    await plain.run(); // warm-up
    await natt.run();
    await esp.run();
    await batched.run();
    const p = [];
    const n = [];
    const e = [];
    const b = [];
    const f = [];
    for (let r = 0; r < ROUNDS; r++) {
      p.push(await plain.run());
      n.push(await natt.run());
      e.push(await esp.run());
      b.push(await batched.run());
      f.push(cryptoFloorUs(size));
    }
    await plain.close();
    await natt.close();
    const drops = await esp.close();
    const bdrops = await batched.close();
    const floor = median(f);
    const plainRtUs = 1e6 / median(p);
    const row = {
      size,
      plain: Math.round(median(p)),
      nattSocket: Math.round(median(n)),
      esp: Math.round(median(e)),
      ratio: median(e) / median(p),
      batched: Math.round(median(b)),
      batchedRatio: median(b) / median(p),
      batchedDrops: bdrops,
      floorUs: floor,
      ceiling: plainRtUs / (plainRtUs + 2 * floor),
      ...drops,
    };
    results.push(row);
    console.log(
      `${String(size).padStart(8)} ${String(row.plain).padStart(12)} ${String(row.nattSocket).padStart(15)} ${String(row.esp).padStart(11)}` +
        `   ${row.ratio.toFixed(2).padStart(9)} ${String(row.batched).padStart(13)} ${row.batchedRatio.toFixed(2).padStart(14)}` +
        `   ${floor.toFixed(2).padStart(8)}   ${row.ceiling.toFixed(2).padStart(7)}`,
    );
  }
  const worst = Math.min(...results.map((r) => r.ratio));
  const worstB = Math.min(...results.map((r) => r.batchedRatio));
  console.log(`\nworst esp/plain ${worst.toFixed(2)} (one packet per call); worst batched/plain ${worstB.toFixed(2)} (${worstB >= 0.8 ? 'meets' : 'misses'} the 0.8 goal)`);
  // Allocation on the batched path, in a child with a young generation large enough that no GC runs meanwhile.
  const child = spawnSync(process.execPath, ['--max-semi-space-size=256', '--min-semi-space-size=256', __filename, '--alloc'], { encoding: 'utf8', env: process.env });
  let alloc = null;
  try {
    alloc = JSON.parse(child.stdout);
    for (const a of alloc) console.log(`batched path, ${a.size} B: ${a.bytesPerRoundTrip.toFixed(1)} heap bytes allocated per round trip (4 packets: 2 sealed, 2 opened), ${a.gcs} GCs during ${a.roundTrips} round trips`);
  } catch {
    console.log(`allocation count failed: ${child.stderr}`);
  }
  console.log(JSON.stringify({ bench: 'echo', node: process.version, window: WINDOW, load: require('node:os').loadavg(), results, alloc }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
