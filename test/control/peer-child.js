// A control client in a process of its own (run as another uid, or SIGKILLed mid-request by the tests): raw frames in
// and out, one JSON line on stdout per thing that happens. argv: socket path, then 'hello' or 'wait' (hello + a call
// of the daemon's 'wait' method, which does not answer).
'use strict';
const net = require('node:net');

const [path, mode] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const frame = (o) => {
  const b = Buffer.from(JSON.stringify(o));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length, 0);
  return Buffer.concat([h, b]);
};
let buf = Buffer.alloc(0);
const s = net.connect(path);
s.on('connect', () => {
  out({ connected: true, uid: process.getuid() });
  s.write(frame({ type: 'hello', id: 1, versions: [1], client: 'peer-child' }));
  if (mode === 'wait') s.write(frame({ type: 'request', id: 2, method: 'wait' }));
});
s.on('data', (c) => {
  buf = Buffer.concat([buf, c]);
  while (buf.length >= 4) {
    const n = buf.readUInt32BE(0);
    if (buf.length < 4 + n) break;
    out({ message: JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) });
    buf = buf.subarray(4 + n);
  }
});
s.on('error', (e) => out({ error: { code: e.code, syscall: e.syscall } }));
s.on('close', () => {
  out({ closed: true });
  process.exit(0);
});
