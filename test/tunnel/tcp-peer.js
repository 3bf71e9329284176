// A TCP transfer endpoint for the tunnel tests, run inside a namespace: sends N deterministic bytes, hashes what it gets.
'use strict';
// Usage: node tcp-peer.js server <address> <port> <bytes> | client <address> <port> <bytes>
// The server accepts one connection, reads until the client half-closes, then sends <bytes> and closes.
// Both print one JSON line: { sent, sentHash, received, receivedHash }.
const net = require('node:net');
const crypto = require('node:crypto');

const [role, address, portText, bytesText] = process.argv.slice(2);
const port = Number(portText);
const total = Number(bytesText);

/** Deterministic bytes, different per role, produced in 64 KiB chunks (a counter through SHA-256, stretched). */
function* chunks(seed) {
  let left = total;
  let i = 0;
  while (left > 0) {
    const n = Math.min(left, 65536);
    const block = crypto.createHash('sha256').update(`${seed}:${i++}`).digest();
    const buf = Buffer.alloc(n);
    for (let o = 0; o < n; o += 32) block.copy(buf, o, 0, Math.min(32, n - o));
    left -= n;
    yield buf;
  }
}

function send(sock, seed, done) {
  const h = crypto.createHash('sha256');
  const it = chunks(seed);
  let sent = 0;
  const pump = () => {
    for (;;) {
      const { value, done: end } = it.next();
      if (end) {
        sock.end();
        return done({ sent, sentHash: h.digest('hex') });
      }
      h.update(value);
      sent += value.length;
      if (!sock.write(value)) return sock.once('drain', pump);
    }
  };
  pump();
}

function receive(sock, done) {
  const h = crypto.createHash('sha256');
  let received = 0;
  sock.on('data', (d) => {
    h.update(d);
    received += d.length;
  });
  sock.on('end', () => done({ received, receivedHash: h.digest('hex') }));
}

const fail = (e) => {
  process.stdout.write(`${JSON.stringify({ error: String(e && e.message) })}\n`);
  process.exit(1);
};

if (role === 'server') {
  const srv = net.createServer({ allowHalfOpen: true }, (sock) => {
    sock.on('error', fail);
    receive(sock, (r) => {
      send(sock, 'server', (s) => {
        process.stdout.write(`${JSON.stringify({ ...s, ...r })}\n`);
        sock.on('close', () => srv.close());
      });
    });
  });
  srv.listen(port, address, () => process.stdout.write(`${JSON.stringify({ listening: port })}\n`));
} else {
  const sock = net.connect({ host: address, port, allowHalfOpen: true }, () => {
    let s;
    let r;
    const finish = () => {
      if (s && r) {
        process.stdout.write(`${JSON.stringify({ ...s, ...r })}\n`);
        process.exit(0);
      }
    };
    send(sock, 'client', (x) => {
      s = x;
      finish();
    });
    receive(sock, (x) => {
      r = x;
      finish();
    });
  });
  sock.on('error', fail);
  sock.setTimeout(120_000, () => fail(new Error('client timed out')));
}
