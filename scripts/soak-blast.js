// The UDP ends of `npm run soak -- tunnel`: `send` paces N numbered datagrams to a peer, `recv` counts them (each
// number once: duplicates and reordering are told apart from losses). Each prints JSON lines on stdout.
//
//   node scripts/soak-blast.js recv ADDRESS PORT N            until SIGTERM: {"recv":{received,unique,duplicates,reordered,bytes}} every second
//   node scripts/soak-blast.js send ADDRESS PORT N RATE SIZE  N datagrams of SIZE bytes at RATE per second, then {"done":...}

'use strict';
const dgram = require('node:dgram');

const [role, address, portText, nText, rateText, sizeText] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText);

if (role === 'recv') {
  const seen = new Uint8Array(Math.ceil(n / 8));
  const c = { received: 0, unique: 0, duplicates: 0, reordered: 0, outOfRange: 0, bytes: 0 };
  let highest = -1;
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  s.on('message', (m) => {
    c.received++;
    c.bytes += m.length;
    if (m.length < 4) return void c.outOfRange++;
    const i = m.readUInt32BE(0);
    if (i >= n) return void c.outOfRange++;
    const bit = 1 << (i & 7);
    if (seen[i >> 3] & bit) return void c.duplicates++;
    seen[i >> 3] |= bit;
    c.unique++;
    if (i < highest) c.reordered++;
    else highest = i;
  });
  const report = () => process.stdout.write(`${JSON.stringify({ recv: c })}\n`);
  s.bind(port, address, () => process.stdout.write(`${JSON.stringify({ ready: true })}\n`));
  setInterval(report, 1000);
  process.on('SIGTERM', () => {
    report();
    process.exit(0);
  });
} else if (role === 'send') {
  const rate = Number(rateText);
  const size = Math.max(4, Number(sizeText));
  const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
  // A ring of buffers as deep as the in-flight bound: a buffer is rewritten only after its send completed.
  const ring = Array.from({ length: 4096 }, () => Buffer.alloc(size, 0x5a));
  let i = 0;
  let errors = 0;
  let inFlight = 0;
  const t0 = Date.now();
  const done = (err) => {
    inFlight--;
    if (err) errors++;
  };
  const tick = () => {
    const due = Math.min(n, Math.floor(((Date.now() - t0) / 1000) * rate));
    // At most 20 ms of the rate at once and a bounded number in flight: the sender never bursts after a stall.
    for (let k = 0; i < due && k < Math.max(1, rate / 50) && inFlight < 4096; k++, i++) {
      const buf = ring[i & 4095];
      buf.writeUInt32BE(i, 0);
      inFlight++;
      s.send(buf, port, address, done);
    }
    if (i < n) setTimeout(tick, 1);
    else finish();
  };
  const progress = setInterval(() => process.stdout.write(`${JSON.stringify({ send: { sent: i, errors } })}\n`), 1000);
  const finish = () => {
    const wait = () => {
      if (inFlight > 0) return void setTimeout(wait, 10);
      clearInterval(progress);
      process.stdout.write(`${JSON.stringify({ done: { sent: i, errors, seconds: (Date.now() - t0) / 1000 } })}\n`);
      s.close();
    };
    wait();
  };
  s.bind(0, () => tick());
} else {
  console.error('usage: soak-blast.js recv ADDRESS PORT N | send ADDRESS PORT N RATE SIZE');
  process.exit(2);
}
