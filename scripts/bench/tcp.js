#!/usr/bin/env node
// ESP-in-TCP (RFC 9329) throughput and packets/s beside ESP-in-UDP, two UserlandEngines on loopback, the same SAs.

'use strict';
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { createNattSocket, UserlandEngine, UserlandSadb } = require('../../dist');
const { listenNattTcp, connectNattTcp } = require('../../dist/tcp');
const { buildUdpPacket } = require('../../dist/ip/packet');

const SIZES = (process.env.BENCH_SIZES || '64,512,1400').split(',').map(Number); // inner IP packet bytes
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5); // interleaved rounds per size (odd: a true median)
const MS = Number(process.env.BENCH_MS || 500); // one measurement
const WINDOW = Number(process.env.BENCH_WINDOW || 256); // packets sent and not yet received, at most
const HOST = '127.0.0.1';
const TLS = process.env.BENCH_TLS !== '0';

/** A throwaway self-signed certificate for the TLS column (openssl; the column is left out without it). */
function selfSigned() {
  try {
    const dir = require('node:fs').mkdtempSync(require('node:path').join(os.tmpdir(), 'natt-bench-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=bench',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${dir}/k`, '-out', `${dir}/c`], { stdio: 'ignore' });
    const fs = require('node:fs');
    const r = { key: fs.readFileSync(`${dir}/k`), cert: fs.readFileSync(`${dir}/c`) };
    fs.rmSync(dir, { recursive: true, force: true });
    return r;
  } catch {
    return null;
  }
}

async function sadbs(type, pa, pb) {
  const keyAB = Buffer.alloc(20, 0xab); // AES-128-GCM KEYMAT
  const keyBA = Buffer.alloc(20, 0xba);
  const mk = async (myPort, peerPort, out, inn, kOut, kIn, myNet, peerNet) => {
    const db = new UserlandSadb();
    const base = { mode: 'tunnel', replayWindow: 1024 };
    await db.add({ ...base, src: HOST, dst: HOST, spi: out, reqid: 1, encryption: { algorithm: 'aes-gcm-16', key: kOut }, natt: { type, sport: myPort, dport: peerPort } });
    await db.add({ ...base, src: HOST, dst: HOST, spi: inn, reqid: 2, encryption: { algorithm: 'aes-gcm-16', key: kIn }, natt: { type, sport: peerPort, dport: myPort } });
    await db.spdAdd({ selector: { src: myNet, dst: peerNet }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: HOST, dst: HOST, reqid: 1 }] });
    await db.spdAdd({ selector: { src: peerNet, dst: myNet }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: HOST, dst: HOST, reqid: 2 }] });
    return db;
  };
  return [await mk(pa, pb, 0xa1, 0xb1, keyAB, keyBA, '10.1.0.0/16', '10.2.0.0/16'), await mk(pb, pa, 0xb1, 0xa1, keyBA, keyAB, '10.2.0.0/16', '10.1.0.0/16')];
}

/** A sender engine A and a receiver engine B over the given transports. */
async function pairOver(kind, certs) {
  let ta;
  let tb;
  if (kind === 'udp') {
    ta = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
    tb = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
  } else {
    tb = await listenNattTcp({ address: HOST, port: 0, maxQueuedBytes: 8 * 1024 * 1024, ...(kind === 'tcp+tls' ? { tls: certs } : {}) });
    ta = await connectNattTcp({ host: HOST, port: tb.address().port, maxQueuedBytes: 8 * 1024 * 1024, ...(kind === 'tcp+tls' ? { tls: { ca: certs.cert } } : {}) });
  }
  const [dbA, dbB] = await sadbs(kind === 'udp' ? 'espinudp' : 'espintcp', ta.address().port, tb.address().port);
  const ea = new UserlandEngine({ socket: ta, sadb: dbA, keepaliveSeconds: 0 });
  const eb = new UserlandEngine({ socket: tb, sadb: dbB, keepaliveSeconds: 0 });
  let received = 0;
  eb.on('packet', () => received++);
  const blocked = kind === 'udp' ? () => false : () => ta.needDrain;
  return {
    /** Send as fast as the window allows for MS ms; returns packets/s received. */
    run: (size) =>
      new Promise((resolve) => {
        const inner = buildUdpPacket('10.1.0.1', 1000, '10.2.0.1', 2000, Buffer.alloc(size - 28, 0x61));
        received = 0;
        let sent = 0;
        let writtenOff = 0; // lost in flight (UDP): after 10 ms without progress they stop holding the window
        let lastReceived = 0;
        let lastProgress = process.hrtime.bigint();
        const t0 = process.hrtime.bigint();
        const end = t0 + BigInt(MS) * 1_000_000n;
        const tick = () => {
          if (process.hrtime.bigint() >= end) {
            // Wait for what is in flight, then count.
            const t1 = process.hrtime.bigint();
            const settle = () => {
              if (received >= sent || Number(process.hrtime.bigint() - t1) > 100e6) {
                const secs = Number(process.hrtime.bigint() - t0) / 1e9;
                resolve({ pps: received / secs, lost: sent - received });
              } else setTimeout(settle, 2);
            };
            return settle();
          }
          const now = process.hrtime.bigint();
          if (received !== lastReceived) {
            lastReceived = received;
            lastProgress = now;
          } else if (now - lastProgress > 10_000_000n) {
            writtenOff = sent - received;
            lastProgress = now;
          }
          for (let i = 0; i < 64 && sent - received - writtenOff < WINDOW && !blocked(); i++) {
            ea.send(inner);
            sent++;
          }
          setImmediate(tick);
        };
        tick();
      }),
    close: async () => {
      const drops = (s) => Object.values(s).reduce((x, y) => x + y, 0);
      const d = { dropsA: drops(ea.stats()), dropsB: drops(eb.stats()) };
      ea.close();
      eb.close();
      await Promise.all([new Promise((r) => ta.close(r)), new Promise((r) => tb.close(r))]);
      return d;
    },
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const certs = TLS ? selfSigned() : null;
  const kinds = ['udp', 'tcp', ...(certs ? ['tcp+tls'] : [])];
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`ESP-in-TCP (RFC 9329) vs ESP-in-UDP: one-way, two UserlandEngines on ${HOST}, AES-128-GCM tunnel mode, the same SAs`);
  console.log(`at most ${WINDOW} packets in flight, ${ROUNDS} interleaved rounds of ${MS} ms, medians; load average ${load} on ${os.cpus().length} CPUs, node ${process.version}\n`);
  console.log(`size (B) ${kinds.map((k) => `${k} pkt/s`.padStart(14) + `${k} Mbit/s`.padStart(16)).join('')}   tcp/udp`);
  const results = [];
  for (const size of SIZES) {
    const pairs = {};
    for (const k of kinds) pairs[k] = await pairOver(k, certs);
    for (const k of kinds) await pairs[k].run(size); // warm-up
    const runs = Object.fromEntries(kinds.map((k) => [k, []]));
    const lost = Object.fromEntries(kinds.map((k) => [k, 0]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const k of kinds) {
        const x = await pairs[k].run(size);
        runs[k].push(x.pps);
        lost[k] += x.lost;
      }
    }
    const row = { size };
    for (const k of kinds) {
      const pps = median(runs[k]);
      row[k] = { pps: Math.round(pps), mbit: +((pps * size * 8) / 1e6).toFixed(1), lost: lost[k], ...(await pairs[k].close()) };
    }
    row.tcpOverUdp = +(row.tcp.pps / row.udp.pps).toFixed(2);
    results.push(row);
    console.log(
      `${String(size).padStart(8)} ${kinds.map((k) => String(row[k].pps).padStart(14) + String(row[k].mbit).padStart(16)).join('')}   ${row.tcpOverUdp.toFixed(2).padStart(7)}`,
    );
  }
  console.log('\nMbit/s counts inner IP bytes; lost = sent but not received in the round (UDP: socket buffer overflow; TCP: none expected)');
  console.log(JSON.stringify({ bench: 'tcp', node: process.version, loadavg: os.loadavg(), cpus: os.cpus().length, window: WINDOW, rounds: ROUNDS, ms: MS, results }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
