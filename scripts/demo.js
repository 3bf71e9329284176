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

async function main() {
  await ikeAndKeepalives();
  // Later parts of the demo (the userland ESP engine's encrypted traffic) follow here.
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
