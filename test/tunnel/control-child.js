// A control client in a process of its own, for the daemon-level control tests: it is SIGKILLed mid-request. argv:
// socket path, then 'partial' (hello, then the first bytes of a request frame, and nothing more) or 'dump' (hello, a
// dump request, and never reads again). One JSON line on stdout once it is in that state: { ready: true }.
'use strict';
const net = require('node:net');

const [path, mode] = process.argv.slice(2);
const frame = (o) => {
  const b = Buffer.from(JSON.stringify(o));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length, 0);
  return Buffer.concat([h, b]);
};
let buf = Buffer.alloc(0);
const s = net.connect(path);
s.on('connect', () => s.write(frame({ type: 'hello', id: 1, versions: [1], client: 'control-child' })));
s.on('data', (c) => {
  buf = Buffer.concat([buf, c]);
  if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
  const hello = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString('utf8'));
  if (hello.type !== 'hello') {
    process.stdout.write(`${JSON.stringify({ error: hello })}\n`);
    process.exit(1);
  }
  s.removeAllListeners('data');
  if (mode === 'partial') {
    const f = frame({ type: 'request', id: 2, method: 'status' });
    s.write(f.subarray(0, 10)); // the header and 6 of its bytes: the daemon waits for the rest
  } else {
    s.write(frame({ type: 'request', id: 2, method: 'dump' }));
    s.pause(); // and never read: the dump fills the socket and waits for us
  }
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
});
s.on('error', (e) => {
  process.stdout.write(`${JSON.stringify({ error: { code: e.code } })}\n`);
  process.exit(1);
});
