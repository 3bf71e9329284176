// Mapping changes on the kernel backends in the VM: the guest kernel reports a NAT-T peer that moved (XFRM_MSG_MAPPING,
// SADB_X_NAT_T_NEW_MAPPING), and natt follows it (re-points the SAs by UPDSA/UPDATE) or only notifies.
//
// The "peer" is a plain UDP socket on loopback that sends ESP-in-UDP built here with node:crypto (AES-CBC-128 and
// HMAC-SHA1-96, transport mode, RFC 4303), independent of natt's own ESP code; the kernel decrypts it on natt's
// kernel-mode NattSocket and reports the peer's new address or port.

import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { openSadb } from '../../src/open';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import type { NewMappingEvent, Sadb, SecurityAssociation } from '../../src/sadb/types';
import { flushXfrm, kernelEspMissing } from './lib/guest';

const missing = kernelEspMissing();
const ME = '127.0.0.1';
const PEER = '127.0.0.2';
const MOVED = '127.0.0.3';
const ENC = randomBytes(16);
const AUTH = randomBytes(20);

/** One ESP packet (SPI, sequence number, CBC IV, encrypted UDP datagram with padding, ICV). */
function esp(spi: number, seq: number): Buffer {
  const udp = Buffer.alloc(8 + 4);
  udp.writeUInt16BE(1234, 0);
  udp.writeUInt16BE(9, 2);
  udp.writeUInt16BE(udp.length, 4); // checksum 0: none (IPv4)
  udp.write('ping', 8);
  const padLen = (16 - ((udp.length + 2) % 16)) % 16;
  const plain = Buffer.alloc(udp.length + padLen + 2);
  udp.copy(plain);
  for (let i = 0; i < padLen; i++) plain[udp.length + i] = i + 1;
  plain[plain.length - 2] = padLen;
  plain[plain.length - 1] = 17; // next header: UDP
  const iv = randomBytes(16);
  const c = createCipheriv('aes-128-cbc', ENC, iv).setAutoPadding(false);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(spi, 0);
  head.writeUInt32BE(seq, 4);
  const body = Buffer.concat([head, iv, c.update(plain), c.final()]);
  const icv = createHmac('sha1', AUTH).update(body).digest().subarray(0, 12);
  return Buffer.concat([body, icv]);
}

const sa = (src: string, dst: string, spi: number, sport: number, dport: number): SecurityAssociation => ({
  src,
  dst,
  spi,
  reqid: 42,
  mode: 'transport',
  replayWindow: 32,
  encryption: { algorithm: 'aes-cbc', key: ENC },
  integrity: { algorithm: 'hmac-sha1-96', key: AUTH },
  natt: { type: 'espinudp', sport, dport },
});

const open: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c();
  if (!missing) flushXfrm();
});

async function peerSocket(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  open.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

const send = (s: dgram.Socket, b: Buffer, port: number) => new Promise<void>((r, j) => s.send(b, port, ME, (e) => (e ? j(e) : r())));

/** Send ESP from `s` until `done()` says the reports arrived, a bounded number of times (a hang bound, not a timing check). */
async function sendUntil(s: dgram.Socket, port: number, seq: { n: number }, done: () => boolean): Promise<void> {
  for (let i = 0; i < 50 && !done(); i++) {
    await send(s, esp(0x5100, ++seq.n), port);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function rig(backend: 'xfrm' | 'pfkey', mapping: 'follow' | 'notify') {
  flushXfrm();
  const nat: NattSocket = await createNattSocket({ address: ME, port: 0, backend: 'kernel' });
  open.push(() => new Promise<void>((r) => nat.close(() => r())));
  const db: Sadb = await openSadb({ backend, mapping });
  open.push(() => db.close());
  // PF_KEY tells registered sockets of new mappings. REGISTER probes the kernel's algorithms (module requests): under
  // TCG it took 2.4 to 4.7 s here, past the default 5 s at times.
  if (backend === 'pfkey') await db.register('esp', { timeout: 40_000 });
  const peer = await peerSocket(PEER);
  const P = nat.address().port;
  const X = peer.address().port;
  await db.add(sa(PEER, ME, 0x5100, X, P)); // inbound: from the peer's NAT mapping
  await db.add(sa(ME, PEER, 0x5200, P, X)); // its outbound twin: to the mapping
  const events: NewMappingEvent[] = [];
  const errors: Error[] = [];
  db.on('newMapping', (e) => events.push(e));
  db.on('error', (e) => errors.push(e));
  return { nat, db, peer, P, X, events, errors, seq: { n: 0 } };
}

for (const backend of ['xfrm', 'pfkey'] as const) {
  describe.skipIf(missing)(`${backend}: mapping changes${missing ? ` (skipped: ${missing})` : ''}`, { timeout: 90_000 }, () => {
    it("'follow': a new port re-points the inbound SA and its outbound twin (UPDATE), one 'newMapping' with followed: true", async () => {
      const r = await rig(backend, 'follow');
      for (let i = 0; i < 2; i++) await send(r.peer, esp(0x5100, ++r.seq.n), r.P); // from the recorded mapping: no report
      await new Promise((res) => setTimeout(res, 100));
      expect(r.events).toEqual([]);
      const moved = await peerSocket(PEER);
      const Y = moved.address().port;
      await sendUntil(moved, r.P, r.seq, () => r.events.length > 0);
      for (let i = 0; i < 3; i++) await send(moved, esp(0x5100, ++r.seq.n), r.P); // later packets: no repeats
      await new Promise((res) => setTimeout(res, 200));
      expect(r.errors).toEqual([]);
      expect(r.events).toHaveLength(1);
      expect(r.events[0]).toMatchObject({
        sa: { dst: ME, spi: 0x5100 },
        reqid: 42,
        old: { address: PEER, port: r.X },
        new: { address: PEER, port: Y },
        followed: true,
      });
      expect((await r.db.get({ src: PEER, dst: ME, spi: 0x5100 })).natt).toMatchObject({ sport: Y, dport: r.P });
      expect((await r.db.get({ src: ME, dst: PEER, spi: 0x5200 })).natt).toMatchObject({ sport: r.P, dport: Y });
    });

    it("'follow': a new address moves the SAs to it (added anew under the new address, the old ones gone)", async () => {
      const r = await rig(backend, 'follow');
      const moved = await peerSocket(MOVED);
      const Y = moved.address().port;
      await sendUntil(moved, r.P, r.seq, () => r.events.length > 0);
      await new Promise((res) => setTimeout(res, 200));
      expect(r.errors).toEqual([]);
      expect(r.events).toHaveLength(1);
      expect(r.events[0]).toMatchObject({ old: { address: PEER, port: r.X }, new: { address: MOVED, port: Y }, followed: true });
      expect((await r.db.get({ src: MOVED, dst: ME, spi: 0x5100 })).natt).toMatchObject({ sport: Y });
      expect((await r.db.get({ src: ME, dst: MOVED, spi: 0x5200 })).natt).toMatchObject({ dport: Y });
      await expect(r.db.get({ src: ME, dst: PEER, spi: 0x5200 })).rejects.toMatchObject({ code: 'ESRCH' });
    });

    it("'notify': the same event with followed: false, once for many packets; the SAs stay; the daemon's update() moves them", async () => {
      const r = await rig(backend, 'notify');
      const moved = await peerSocket(PEER);
      const Y = moved.address().port;
      await sendUntil(moved, r.P, r.seq, () => r.events.length > 0);
      for (let i = 0; i < 5; i++) await send(moved, esp(0x5100, ++r.seq.n), r.P);
      await new Promise((res) => setTimeout(res, 200));
      expect(r.events).toHaveLength(1);
      expect(r.events[0]).toMatchObject({ sa: { dst: ME, spi: 0x5100 }, new: { address: PEER, port: Y }, followed: false });
      expect((await r.db.get({ src: ME, dst: PEER, spi: 0x5200 })).natt).toMatchObject({ dport: r.X });
      // The IKE daemon's own move: sadb.update with the new NAT-T ports.
      await r.db.update(sa(PEER, ME, 0x5100, Y, r.P));
      await r.db.update(sa(ME, PEER, 0x5200, r.P, Y));
      expect((await r.db.get({ src: ME, dst: PEER, spi: 0x5200 })).natt).toMatchObject({ dport: Y });
    });
  });
}
