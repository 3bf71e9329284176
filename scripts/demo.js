#!/usr/bin/env node
// npm start: two NAT-T sockets on loopback exchange IKE messages and keepalives both ways and print what each saw (no root).
'use strict';
const { createNattSocket, probe } = require('../dist');

const HOST = '127.0.0.1';

function log(who, what) {
  console.log(`  ${who.padEnd(9)} ${what}`);
}

// Prints every IKE message and keepalive the socket gets; resolves once one of each kind in `kinds` has arrived.
function expectEvents(sock, who, kinds) {
  return new Promise((resolve) => {
    const waiting = new Set(kinds);
    const seen = (kind) => {
      waiting.delete(kind);
      if (waiting.size === 0) resolve();
    };
    sock.on('ike', (payload, rinfo) => {
      log(who, `got IKE from ${rinfo.address}:${rinfo.port}: ${JSON.stringify(payload.toString())} (${payload.length} bytes, marker removed)`);
      seen('ike');
    });
    sock.on('keepalive', (rinfo) => {
      log(who, `got a NAT-keepalive from ${rinfo.address}:${rinfo.port}`);
      seen('keepalive');
    });
  });
}

async function ikeAndKeepalives() {
  const p = probe();
  console.log(`natt demo: NAT-T sockets on ${HOST}`);
  console.log(`  backend 'auto' picks ${p.auto.nattSocket.backend}: ${p.auto.nattSocket.reason}`);
  const alice = await createNattSocket({ address: HOST, port: 0 });
  const bob = await createNattSocket({ address: HOST, port: 0 });
  const aPort = alice.address().port;
  const bPort = bob.address().port;
  log('alice', `listening on ${HOST}:${aPort} (${alice.backend})`);
  log('bob', `listening on ${HOST}:${bPort} (${bob.backend})`);

  // A kernel UDP_ENCAP socket never passes keepalives up (the kernel drops them), so only wait for what can arrive.
  const want = (sock) => (sock.kernelEncap ? ['ike'] : ['ike', 'keepalive']);
  const aliceSaw = expectEvents(alice, 'alice', want(alice));
  const bobSaw = expectEvents(bob, 'bob', want(bob));

  alice.sendIke(Buffer.from('IKE_SA_INIT request from alice'), bPort, HOST);
  alice.sendKeepalive(bPort, HOST);
  bob.sendIke(Buffer.from('IKE_SA_INIT response from bob'), aPort, HOST);
  bob.sendKeepalive(aPort, HOST);
  await Promise.all([aliceSaw, bobSaw]);

  for (const [who, s] of [['alice', alice], ['bob', bob]]) {
    const st = s.stats();
    const dropped = Object.values(st.dropped).reduce((a, b) => a + b, 0);
    log(who, `sent ${st.sentIke} IKE + ${st.sentKeepalive} keepalive; received ${st.ike} IKE, ${st.keepalive} keepalive, ${st.esp} ESP, ${dropped} dropped`);
  }
  await Promise.all([new Promise((r) => alice.close(r)), new Promise((r) => bob.close(r))]);
  console.log('  IKE and keepalives went both ways.');
}

// Where the kernel accepts UDP_ENCAP (no root needed), show a kernel socket beside a userland one: IKE passes both
// ways, while the keepalive sent just before the IKE message is taken by the kernel (Linux, NetBSD) and never shows.
async function kernelSocket() {
  const p = probe();
  if (!p.facts.udpEncap4.ok) {
    console.log(`natt demo: no kernel UDP_ENCAP socket here (${p.facts.udpEncap4.reason})`);
    return;
  }
  console.log(`natt demo: a kernel UDP_ENCAP socket beside a userland one`);
  const k = await createNattSocket({ address: HOST, port: 0, backend: 'kernel' });
  const u = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
  log('kernel', `listening on ${HOST}:${k.address().port}, getsockopt(UDP_ENCAP) = ${k.kernelEncapType()}`);
  let keepalives = 0;
  k.on('keepalive', () => keepalives++);
  const kGot = new Promise((r) => k.once('ike', (payload) => r(payload.toString())));
  const uGot = new Promise((r) => u.once('ike', (payload) => r(payload.toString())));
  u.sendKeepalive(k.address().port, HOST);
  u.sendIke(Buffer.from('IKE to the kernel socket'), k.address().port, HOST);
  k.sendIke(Buffer.from('IKE from the kernel socket'), u.address().port, HOST);
  log('kernel', `got IKE ${JSON.stringify(await kGot)}; keepalives seen: ${keepalives}${keepalives === 0 ? ' (the kernel took it)' : ''}`);
  log('userland', `got IKE ${JSON.stringify(await uGot)}`);
  await Promise.all([new Promise((r) => k.close(r)), new Promise((r) => u.close(r))]);
}

async function main() {
  await ikeAndKeepalives();
  await kernelSocket();
  // Later parts of the demo (the userland ESP engine's encrypted traffic) follow here.
  await encryptedTraffic();
}

// The userland ESP engine: two endpoints on loopback, each a NAT-T socket + SA database + UserlandEngine, exchange
// tunnel-mode traffic (AES-256-GCM ESP-in-UDP) both ways, then print their counters (names as /proc/net/xfrm_stat).
async function encryptedTraffic() {
  const { UserlandEngine, openSadb } = require('../dist');
  const { buildUdpPacket, IpView, readIpHeader } = require('../dist/ip/packet');
  console.log(`\nnatt demo: the userland ESP engine, two endpoints on ${HOST}, tunnel mode, AES-256-GCM ESP-in-UDP`);
  const ends = {};
  for (const name of ['alice', 'bob']) {
    const socket = await createNattSocket({ address: HOST, port: 0, backend: 'userland' });
    const sadb = await openSadb({ backend: 'userland' });
    ends[name] = { name, socket, sadb, port: socket.address().port, net: name === 'alice' ? '10.1.0.0/16' : '10.2.0.0/16' };
  }
  const keys = { alice: Buffer.alloc(36, 0xa1), bob: Buffer.alloc(36, 0xb0) }; // KEYMAT each sender uses (as IKE would derive)
  const spis = { alice: 0xa11ce, bob: 0xb0b };
  for (const [me, peer] of [[ends.alice, ends.bob], [ends.bob, ends.alice]]) {
    const sa = (from, to, spi, key, reqid) => ({
      src: HOST, dst: HOST, spi, mode: 'tunnel', reqid, encryption: { algorithm: 'aes-gcm-16', key },
      natt: { type: 'espinudp', sport: from.port, dport: to.port },
    });
    await me.sadb.add(sa(me, peer, spis[me.name], keys[me.name], 1)); // outbound (reqid 1)
    await me.sadb.add(sa(peer, me, spis[peer.name], keys[peer.name], 2)); // inbound (reqid 2)
    const tmpl = (reqid) => [{ protocol: 'esp', mode: 'tunnel', src: HOST, dst: HOST, reqid }];
    await me.sadb.spdAdd({ selector: { src: me.net, dst: peer.net }, direction: 'out', action: 'ipsec', templates: tmpl(1) });
    await me.sadb.spdAdd({ selector: { src: peer.net, dst: me.net }, direction: 'in', action: 'ipsec', templates: tmpl(2) });
    me.engine = new UserlandEngine({ socket: me.socket, sadb: me.sadb });
    log(me.name, `NAT-T port ${me.port}, protects ${me.net} <-> ${peer.net}, out SPI 0x${spis[me.name].toString(16)}`);
  }
  const v = new IpView();
  const done = new Promise((resolve) => {
    let pongs = 0;
    ends.bob.engine.on('packet', (pkt, rinfo) => {
      readIpHeader(pkt, v);
      const text = pkt.subarray(v.l4Offset + 8).toString();
      log('bob', `decrypted from ${rinfo.address}:${rinfo.port}: ${pkt.length}-byte IPv4/UDP packet, payload "${text}"`);
      ends.bob.engine.send(buildUdpPacket('10.2.0.9', 7, '10.1.0.5', 40000, Buffer.from(text.replace('ping', 'pong'))));
    });
    ends.alice.engine.on('packet', (pkt, rinfo) => {
      readIpHeader(pkt, v);
      log('alice', `decrypted from ${rinfo.address}:${rinfo.port}: payload "${pkt.subarray(v.l4Offset + 8).toString()}"`);
      if (++pongs === 3) resolve();
    });
  });
  // What the wire carries: bob's socket sees only ESP (SPI, sequence number, ciphertext).
  ends.bob.socket.prependOnceListener('esp', (esp) => log('wire', `alice -> bob ESP: SPI 0x${esp.readUInt32BE(0).toString(16)} seq ${esp.readUInt32BE(4)}, ${esp.length} bytes, plaintext not visible: ${!esp.includes('ping')}`));
  for (let i = 1; i <= 3; i++) {
    const r = ends.alice.engine.send(buildUdpPacket('10.1.0.5', 40000, '10.2.0.9', 7, Buffer.from(`ping ${i}`)));
    log('alice', `send(ping ${i}) -> ${r}`);
  }
  await done;
  // A forged datagram with bob's SPI: dropped and counted, never handed up.
  const forged = Buffer.alloc(64, 0x55);
  forged.writeUInt32BE(spis.alice, 0);
  ends.alice.socket.sendEsp(forged, ends.bob.port, HOST);
  const deadline = Date.now() + 5000;
  while (ends.bob.engine.stats().InStateProtoError === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const forgedCounted = ends.bob.engine.stats().InStateProtoError === 1;
  for (const e of [ends.alice, ends.bob]) {
    const t = e.engine.traffic();
    const drops = Object.entries(e.engine.stats()).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
    log(e.name, `engine: out ${t.outPackets} packets/${t.outBytes} B, in ${t.inPackets} packets/${t.inBytes} B; drops: ${drops.join(', ') || 'none'}`);
    const st = e.socket.stats();
    log(e.name, `socket: sent ${st.sentEsp} ESP, received ${st.esp} ESP`);
    e.engine.close();
    await e.sadb.close();
    await new Promise((r) => e.socket.close(r));
  }
  if (!forgedCounted) throw new Error('the forged datagram was not counted as InStateProtoError');
  console.log('  Encrypted traffic went both ways; the forged datagram was counted as InStateProtoError.');
}

const guard = setTimeout(() => {
  console.error('natt demo: nothing arrived within 10 s');
  process.exit(1);
}, 10_000);
guard.unref();

main().then(
  () => clearTimeout(guard),
  (err) => {
    console.error(`natt demo failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
