#!/usr/bin/env node
// TUN benchmark: packets per second written into and read out of a createTun device in a throwaway netns, µs per packet.

'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');

const SIZES = (process.env.BENCH_SIZES || '92,1400').split(',').map(Number); // whole IP packet bytes
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3); // measurements per case (the best is reported)
const MS = Number(process.env.BENCH_MS || 500); // duration of one measurement
const BATCH = Number(process.env.BENCH_BATCH || 64); // packets per writeBatch call and read slots

if (process.argv[2] !== '--inside') {
  // Outside: make a namespace, run this file inside it, clean up. Needs root (ip netns, TUN).
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    console.log('tun bench skipped: needs Linux and root (ip netns, /dev/net/tun)');
    console.log(JSON.stringify({ bench: 'tun', skipped: 'needs Linux and root' }));
    process.exit(0);
  }
  const ns = `natt-bench-tun-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, __filename, '--inside'], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
  return;
}

const { createTun } = require('../../dist/tun');
const { buildUdpPacket } = require('../../dist/ip/packet');

const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: 'pipe' });

/** `count` copies of a UDP packet of `size` bytes from src to dst, laid out in one slab. */
function slabOf(size, count, src, dst) {
  const pkt = buildUdpPacket(src, 40000, dst, 9, Buffer.alloc(size - 28));
  const slab = Buffer.alloc(size * count);
  const offsets = new Uint32Array(count);
  const lengths = new Uint32Array(count).fill(size);
  for (let i = 0; i < count; i++) {
    pkt.copy(slab, i * size);
    offsets[i] = i * size;
  }
  return { pkt, slab, offsets, lengths };
}

/** Run `step` `perTurn` times per event-loop turn for MS ms; returns the seconds it took. */
function timed(step, perTurn = 16) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const end = start + BigInt(MS) * 1_000_000n;
    const loop = () => {
      for (let k = 0; k < perTurn; k++) step();
      if (process.hrtime.bigint() < end) setImmediate(loop);
      else resolve(Number(process.hrtime.bigint() - start) / 1e9);
    };
    loop();
  });
}

(async () => {
  sh('ip', 'link', 'set', 'lo', 'up');
  sh('sysctl', '-qw', 'net.ipv4.ip_forward=1');
  sh('sysctl', '-qw', 'net.ipv4.conf.all.send_redirects=0');
  sh('sysctl', '-qw', 'net.ipv4.conf.default.send_redirects=0');
  sh('sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0');
  sh('sysctl', '-qw', 'net.ipv4.conf.default.rp_filter=0');
  const tun = await createTun({
    name: 'bench0',
    mtu: 1400,
    batch: BATCH,
    queue: 4096,
    addresses: ['10.200.1.1/32'],
    // 10.200.2.0/24: where written packets claim to come from; 10.200.3.0/24 is routed back into the TUN (the loop);
    // 10.200.9.0/24 is a blackhole (write only: the kernel takes the packet and drops it).
    routes: [{ dst: '10.200.2.0/24' }, { dst: '10.200.3.0/24' }],
  });
  sh('ip', 'route', 'add', 'blackhole', '10.200.9.0/24');
  let read = 0;
  tun.onPackets((slab, lengths, count) => {
    read += count;
  });
  const rows = [];
  for (const size of SIZES) {
    const sink = slabOf(size, BATCH, '10.200.2.9', '10.200.9.9');
    const loop = slabOf(size, BATCH, '10.200.2.9', '10.200.3.9');
    const best = { single: 0, batch: 0, loopWrite: 0, loopRead: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      // write() one packet per call, into the blackhole
      let n = 0;
      let secs = await timed(() => {
        if (tun.write(sink.pkt)) n++;
      });
      best.single = Math.max(best.single, n / secs);
      // writeBatch(): BATCH packets per native call, into the blackhole
      n = 0;
      secs = await timed(() => {
        n += tun.writeBatch(sink.slab, sink.offsets, sink.lengths);
      });
      best.batch = Math.max(best.batch, n / secs);
      // the loop: written, forwarded by the kernel, routed back out of the TUN and read through the batch path
      n = 0;
      read = 0;
      const s0 = tun.stats();
      // One batch per turn: the reader gets one wake (one burst of up to BATCH) per turn, so this is the balanced rate.
      secs = await timed(() => {
        n += tun.writeBatch(loop.slab, loop.offsets, loop.lengths);
      }, 1);
      await new Promise((res) => setTimeout(res, 50));
      const s1 = tun.stats();
      best.loopWrite = Math.max(best.loopWrite, (s1.packetsOut - s0.packetsOut) / secs);
      best.loopRead = Math.max(best.loopRead, read / secs);
    }
    rows.push({
      size,
      writePps: Math.round(best.single),
      writeUs: +(1e6 / best.single).toFixed(2),
      writeBatchPps: Math.round(best.batch),
      writeBatchUs: +(1e6 / best.batch).toFixed(2),
      loopWritePps: Math.round(best.loopWrite),
      loopReadPps: Math.round(best.loopRead),
      loopReadUs: +(1e6 / best.loopRead).toFixed(2),
    });
  }
  const stats = tun.stats();
  await tun.close();
  const pad = (s, n) => String(s).padStart(n);
  console.log(`TUN through createTun (node ${process.version}; best of ${ROUNDS} × ${MS} ms; batch ${BATCH}; packets/s and µs per packet)`);
  console.log('  write: write() into a blackholed route; batch: writeBatch(); loop: one batch per turn written, forwarded by the kernel, read back');
  console.log(`${pad('bytes', 5)} ${pad('write/s', 9)} ${pad('µs', 6)} ${pad('batch/s', 9)} ${pad('µs', 6)} ${pad('loop in/s', 10)} ${pad('read/s', 9)} ${pad('µs', 6)}`);
  for (const r of rows) {
    console.log(
      `${pad(r.size, 5)} ${pad(r.writePps, 9)} ${pad(r.writeUs, 6)} ${pad(r.writeBatchPps, 9)} ${pad(r.writeBatchUs, 6)} ${pad(r.loopWritePps, 10)} ${pad(r.loopReadPps, 9)} ${pad(r.loopReadUs, 6)}`,
    );
  }
  console.log(`drops over the run: ${JSON.stringify(stats.drops)}`);
  console.log(JSON.stringify({ bench: 'tun', node: process.version, batch: BATCH, rows, drops: stats.drops }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
