#!/usr/bin/env node
// Echo benchmark: ESP-in-UDP round trips between two UserlandEngines on loopback beside a plain dgram echo, packets/s and their ratio.

'use strict';
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const { createNattSocket, UserlandEngine, UserlandSadb } = require('../../dist');
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

async function espPair(size) {
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
  eb.on('packet', () => eb.send(reply));
  let hook = () => {};
  ea.on('packet', () => hook());
  return {
    run: () => pump(() => ea.send(inner), (cb) => (hook = cb)),
    close: async () => {
      ea.close();
      eb.close();
      await Promise.all([new Promise((r) => sa.close(r)), new Promise((r) => sb.close(r))]);
      const drops = (s) => Object.values(s).reduce((x, y) => x + y, 0);
      return { dropsA: drops(ea.stats()), dropsB: drops(eb.stats()) };
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  console.log(`ESP-in-UDP echo (two UserlandEngines, AES-128-GCM, tunnel mode) vs plain dgram echo on ${HOST}`);
  console.log(`window ${WINDOW} in flight, ${ROUNDS} interleaved rounds of ${MS} ms, median round trips/s; goal: esp/plain >= 0.6`);
  console.log('natt-sock = the same echo through two NattSockets without crypto; floor = bare node:crypto GCM seal+open (µs);');
  console.log('ceiling = the best esp/plain any engine could reach on node:crypto: plain round trip / (plain + 2 × floor)\n');
  console.log('size (B)   plain rt/s  natt-sock rt/s    esp rt/s   esp/plain   floor µs   ceiling');
  const results = [];
  for (const size of SIZES) {
    const plain = await plainPair(size);
    const natt = await nattPair(size);
    const esp = await espPair(size);
    await plain.run(); // warm-up
    await natt.run();
    await esp.run();
    const p = [];
    const n = [];
    const e = [];
    const f = [];
    for (let r = 0; r < ROUNDS; r++) {
      p.push(await plain.run());
      n.push(await natt.run());
      e.push(await esp.run());
      f.push(cryptoFloorUs(size));
    }
    await plain.close();
    await natt.close();
    const drops = await esp.close();
    const floor = median(f);
    const plainRtUs = 1e6 / median(p);
    const row = {
      size,
      plain: Math.round(median(p)),
      nattSocket: Math.round(median(n)),
      esp: Math.round(median(e)),
      ratio: median(e) / median(p),
      floorUs: floor,
      ceiling: plainRtUs / (plainRtUs + 2 * floor),
      ...drops,
    };
    results.push(row);
    console.log(
      `${String(size).padStart(8)} ${String(row.plain).padStart(12)} ${String(row.nattSocket).padStart(15)} ${String(row.esp).padStart(11)}` +
        `   ${row.ratio.toFixed(2).padStart(9)}   ${floor.toFixed(2).padStart(8)}   ${row.ceiling.toFixed(2).padStart(7)}`,
    );
  }
  const worst = Math.min(...results.map((r) => r.ratio));
  console.log(`\nworst esp/plain ${worst.toFixed(2)} (${worst >= 0.6 ? 'meets' : 'misses'} the 0.6 goal)`);
  console.log(JSON.stringify({ bench: 'echo', node: process.version, window: WINDOW, results }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
