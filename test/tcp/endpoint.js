// An ESP-in-TCP test endpoint run inside a network namespace: a UserlandEngine over connectNattTcp or listenNattTcp.
'use strict';
// Usage: ip netns exec NS node test/tcp/endpoint.js '<json config>'
// Config: { role: 'client'|'server', server: {address, port}, me: {address, net, host}, peer: {address, net, host},
//           peerPort (server: the port its SAs name for the client before it is learnt), spis: {out, in},
//           keys: {out, in} (hex), transfer: {count, size, seed, peerSeed, id, peerId, window, rtoMs}, reconnect }
// stdin:  {"cmd":"start"} | {"cmd":"ike","n":k} | {"cmd":"stats"} | {"cmd":"exit"}
// stdout: JSON lines: ready, connect, disconnect, connection, newMapping, ike, progress, done, stats, error

const path = require('node:path');
const readline = require('node:readline');
const crypto = require('node:crypto');
const natt = require(path.join(__dirname, '..', '..', 'dist'));
const { listenNattTcp, connectNattTcp } = require(path.join(__dirname, '..', '..', 'dist', 'tcp'));
const { buildUdpPacket } = require(path.join(__dirname, '..', '..', 'dist', 'ip', 'packet'));
const { createTransfer } = require('./transfer.js');

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** A bare IKEv2 IKE_SA_INIT header (28 octets, no payloads): what tshark's ISAKMP dissector reads. */
function ikeMessage(initiator) {
  const m = Buffer.alloc(28);
  crypto.randomFillSync(m, 0, 8); // SPIi
  m[16] = 0; // next payload: none
  m[17] = 0x20; // version 2.0
  m[18] = 34; // IKE_SA_INIT
  m[19] = initiator ? 0x08 : 0x20; // I, or R
  m.writeUInt32BE(28, 24);
  return m;
}

async function main() {
  const cfg = JSON.parse(process.argv[2]);
  const sadb = await natt.openSadb({ backend: 'userland' });
  let transport;
  let myPort;
  let peerPort;
  if (cfg.role === 'server') {
    transport = await listenNattTcp({ address: cfg.server.address, port: cfg.server.port });
    myPort = transport.address().port;
    peerPort = cfg.peerPort;
    transport.on('connection', (c) => {
      out({ ev: 'connection', remoteAddress: c.remoteAddress, remotePort: c.remotePort });
      c.on('close', (reason) => out({ ev: 'connectionClose', remotePort: c.remotePort, reason }));
    });
    transport.on('ike', (p, r) => {
      out({ ev: 'ike', from: `${r.address}:${r.port}`, len: p.length });
      transport.sendIke(ikeMessage(false), r.port, r.address); // the "response", to the connection it came on
    });
  } else {
    transport = await connectNattTcp({ host: cfg.server.address, port: cfg.server.port, reconnect: cfg.reconnect ?? true });
    myPort = transport.address().port;
    peerPort = cfg.server.port;
    transport.on('connect', (i) => out({ ev: 'connect', ...i }));
    transport.on('disconnect', (reason) => out({ ev: 'disconnect', reason }));
    transport.on('ike', (p, r) => out({ ev: 'ike', from: `${r.address}:${r.port}`, len: p.length }));
    transport.on('error', (e) => out({ ev: 'error', message: e.message }));
  }
  const key = (h) => Buffer.from(h, 'hex');
  const me = cfg.me;
  const peer = cfg.peer;
  await sadb.add({
    src: me.address, dst: peer.address, spi: cfg.spis.out, mode: 'tunnel', reqid: 1, replayWindow: 1024,
    encryption: { algorithm: 'aes-gcm-16', key: key(cfg.keys.out) }, natt: { type: 'espintcp', sport: myPort, dport: peerPort },
  });
  await sadb.add({
    src: peer.address, dst: me.address, spi: cfg.spis.in, mode: 'tunnel', reqid: 2, replayWindow: 1024,
    encryption: { algorithm: 'aes-gcm-16', key: key(cfg.keys.in) }, natt: { type: 'espintcp', sport: peerPort, dport: myPort },
  });
  const tmpl = (src, dst, reqid) => [{ protocol: 'esp', mode: 'tunnel', src, dst, reqid }];
  await sadb.spdAdd({ selector: { src: me.net, dst: peer.net }, direction: 'out', action: 'ipsec', templates: tmpl(me.address, peer.address, 1) });
  await sadb.spdAdd({ selector: { src: peer.net, dst: me.net }, direction: 'in', action: 'ipsec', templates: tmpl(peer.address, me.address, 2) });
  const engine = new natt.UserlandEngine({ socket: transport, sadb, keepaliveSeconds: 20 });
  engine.on('newMapping', (m) => out({ ev: 'newMapping', old: m.old, new: m.new, spi: m.sa.spi }));
  engine.on('error', (e) => out({ ev: 'error', message: e.message }));
  const t = cfg.transfer;
  const blocked =
    cfg.role === 'server'
      ? () => {
          const sa = [...sadb.entries()].find((e) => e.sa.spi === cfg.spis.out);
          const c = sa && transport.connectionTo(sa.peer.port, sa.peer.address);
          return c ? c.needDrain : false;
        }
      : () => transport.needDrain;
  const transfer = createTransfer({
    engine, build: buildUdpPacket, me: { host: me.host }, peer: { host: peer.host },
    id: t.id, peerId: t.peerId, count: t.count, size: t.size, seed: t.seed, peerSeed: t.peerSeed, window: t.window, rtoMs: t.rtoMs,
    blocked, onUnblock: (f) => transport.on('drain', cfg.role === 'server' ? () => f() : f),
  });
  let progressTimer = null;
  const stats = () => ({
    ev: 'stats',
    transport: transport.stats(),
    engine: engine.stats(),
    traffic: engine.traffic(),
    local: transport.address(),
    sa: [...sadb.entries()].map((e) => ({ spi: e.sa.spi, peer: e.peer, natt: e.sa.natt })),
  });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      return out({ ev: 'error', message: 'bad command line' });
    }
    if (m.cmd === 'start') {
      progressTimer = setInterval(() => out({ ev: 'progress', ...transfer.progress() }), 200);
      transfer.start().then((r) => {
        clearInterval(progressTimer);
        out({ ev: 'done', ...r });
      });
    } else if (m.cmd === 'ike') {
      for (let i = 0; i < m.n; i++) transport.sendIke(ikeMessage(true), cfg.server.port, cfg.server.address);
    } else if (m.cmd === 'stats') out(stats());
    else if (m.cmd === 'exit') {
      engine.close();
      transport.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 1000).unref();
    }
  });
  rl.on('close', () => process.exit(0)); // the test went away: never linger
  out({ ev: 'ready', port: myPort, local: transport.address() });
}

main().catch((e) => {
  out({ ev: 'error', message: String(e && e.stack) });
  process.exit(1);
});
