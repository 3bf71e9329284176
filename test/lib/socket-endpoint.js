// A NattSocket endpoint run inside a network namespace (over dist/), driven by JSON lines on stdin.
'use strict';
// Usage: ip netns exec NS node test/lib/socket-endpoint.js '{}'
// stdin:  {"cmd":"open","name":n,"options":{createNattSocket options}} | {"cmd":"openIke","name":n,"options":{...}}
//         {"cmd":"reply","name":n,"hex":h,"rinfo":{address,port,localAddress},"via":v}  (an IkeSockets' reply())
//         {"cmd":"sendIke","name":n,"port":p,"address":a,"count":k,"text":t,"localAddress"?:l}  (waits for each completion)
//         {"cmd":"burst","name":n,"port":p,"address":a,"count":k,"size":b}  (all at once, then one reply)
//         {"cmd":"sendKeepalive","name":n,"port":p,"address":a}
//         {"cmd":"keepalive","name":n,"port":p,"address":a,"seconds":s} | {"cmd":"stopKeepalive",...}
//         {"cmd":"stats","name":n} | {"cmd":"close","name":n} | {"cmd":"exit"}
// stdout: {"ev":"ready"} | {"ev":"opened","name","port","bypass","backend","localAddressKnown"}
//         | {"ev":"ike","name","text","from","local"} | {"ev":"keepalive","name","from","local"}
//         | {"ev":"sent","name","errors":[...]} | {"ev":"stats","name","stats"} | {"ev":"error","message"}

const path = require('node:path');
const readline = require('node:readline');
const natt = require(path.join(__dirname, '..', '..', 'dist'));

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sockets = new Map();
const where = (rinfo) => `${rinfo.address}:${rinfo.port}`;
const local = (rinfo) => (rinfo.localAddress === undefined ? null : `${rinfo.localAddress}:${rinfo.localPort}`);

async function run(m) {
  const s = sockets.get(m.name);
  switch (m.cmd) {
    case 'open': {
      const sock = await natt.createNattSocket(m.options);
      sockets.set(m.name, sock);
      sock.on('ike', (p, r) => out({ ev: 'ike', name: m.name, text: p.toString(), from: where(r), local: local(r) }));
      sock.on('keepalive', (r) => out({ ev: 'keepalive', name: m.name, from: where(r), local: local(r) }));
      sock.on('error', (e) => out({ ev: 'error', name: m.name, message: e.message }));
      return out({ ev: 'opened', name: m.name, port: sock.address().port, bypass: sock.bypass, backend: sock.backend, localAddressKnown: sock.localAddressKnown });
    }
    case 'openIke': {
      const ike = await natt.createIkeSockets(m.options);
      sockets.set(m.name, ike);
      ike.on('ike', (p, r, via) => out({ ev: 'ike', name: m.name, via, hex: p.toString('hex'), from: where(r), local: local(r) }));
      ike.on('error', (e, via) => out({ ev: 'error', name: m.name, via, message: e.message }));
      return out({ ev: 'opened', name: m.name, port: ike.plain.address().port, nattPort: ike.natt.address().port, bypass: ike.natt.bypass });
    }
    case 'reply':
      s.reply(Buffer.from(m.hex, 'hex'), m.rinfo, m.via);
      return out({ ev: 'replied', name: m.name });
    case 'sendIke': {
      const errors = [];
      for (let i = 0; i < (m.count ?? 1); i++) {
        const err = await new Promise((resolve) =>
          s.sendIke(Buffer.from(`${m.text ?? 'ike'} ${i}`), m.port, m.address, { localAddress: m.localAddress, callback: resolve }),
        );
        if (err) errors.push(`${err.code}: ${err.message}`);
      }
      return out({ ev: 'sent', name: m.name, errors });
    }
    case 'burst': {
      // `count` IKE messages of `size` bytes at once, each with a callback; reply when all completed.
      const t0 = Date.now();
      const results = await Promise.all(
        Array.from({ length: m.count }, () => new Promise((resolve) => s.sendIke(Buffer.alloc(m.size, 0x5a), m.port, m.address, resolve))),
      );
      const errors = results.filter(Boolean).map((e) => e.code);
      return out({ ev: 'burst', name: m.name, ms: Date.now() - t0, sent: results.length - errors.length, errors, stats: s.stats() });
    }
    case 'sendKeepalive': {
      const err = await new Promise((resolve) => s.sendKeepalive(m.port, m.address, resolve));
      return out({ ev: 'sent', name: m.name, errors: err ? [`${err.code}: ${err.message}`] : [] });
    }
    case 'keepalive':
      return out({ ev: 'keepalive-set', name: m.name, ok: s.keepalive(m.port, m.address, m.seconds) });
    case 'stopKeepalive':
      return out({ ev: 'keepalive-stopped', name: m.name, ok: s.stopKeepalive(m.port, m.address) });
    case 'stats':
      return out({ ev: 'stats', name: m.name, stats: s.stats() });
    case 'close':
      await new Promise((r) => s.close(r));
      sockets.delete(m.name);
      return out({ ev: 'closed', name: m.name });
    case 'exit':
      for (const x of sockets.values()) x.close();
      return process.exit(0);
    default:
      return out({ ev: 'error', message: `unknown command ${m.cmd}` });
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  let m;
  try {
    m = JSON.parse(line);
  } catch {
    return out({ ev: 'error', message: 'bad command line' });
  }
  // One command at a time, in order.
  chain = chain.then(() => run(m)).catch((e) => out({ ev: 'error', message: String(e && e.stack) }));
});
rl.on('close', () => process.exit(0)); // the test went away: never linger
out({ ev: 'ready' });
