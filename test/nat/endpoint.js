// A NAT test endpoint run inside a network namespace: a userland engine on a NAT-T socket, driven by JSON lines on stdin.
'use strict';
// Usage: ip netns exec NS node test/nat/endpoint.js '<json config>'
// Config: { bind, port, sas: [SecurityAssociation with hex keys], policies: [SecurityPolicy] }
// stdin:  {"cmd":"send","hex":"<ip packet>"} | {"cmd":"stats"} | {"cmd":"exit"}
// stdout: {"ev":"ready","port":n} | {"ev":"packet","hex":...,"from":...} | {"ev":"newMapping",...} | {"ev":"sent","result":...}
//         | {"ev":"stats","stats":...,"traffic":...} | {"ev":"error","message":...}

const path = require('node:path');
const readline = require('node:readline');
const natt = require(path.join(__dirname, '..', '..', 'dist'));

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const socket = await natt.createNattSocket({ family: 4, address: cfg.bind, port: cfg.port, backend: 'userland' });
  const sadb = await natt.openSadb({ backend: 'userland' });
  for (const sa of cfg.sas) {
    sa.encryption.key = Buffer.from(sa.encryption.key, 'hex');
    await sadb.add(sa);
  }
  for (const p of cfg.policies) await sadb.spdAdd(p);
  const engine = new natt.UserlandEngine({ socket, sadb, keepaliveSeconds: cfg.keepaliveSeconds ?? 20 });
  engine.on('packet', (pkt, rinfo) => out({ ev: 'packet', hex: pkt.toString('hex'), from: `${rinfo.address}:${rinfo.port}` }));
  engine.on('newMapping', (m) => out({ ev: 'newMapping', old: m.old, new: m.new, spi: m.sa.spi }));
  engine.on('error', (e) => out({ ev: 'error', message: e.message }));
  socket.on('error', (e) => out({ ev: 'error', message: e.message }));
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      return out({ ev: 'error', message: 'bad command line' });
    }
    if (m.cmd === 'send') out({ ev: 'sent', result: engine.send(Buffer.from(m.hex, 'hex')) });
    else if (m.cmd === 'stats') out({ ev: 'stats', stats: engine.stats(), traffic: engine.traffic() });
    else if (m.cmd === 'exit') {
      engine.close();
      socket.close(() => process.exit(0));
    }
  });
  rl.on('close', () => process.exit(0)); // the test went away: never linger
  out({ ev: 'ready', port: socket.address().port });
}

main().catch((e) => {
  out({ ev: 'error', message: String(e && e.stack) });
  process.exit(1);
});
