// Kernel ESP behind a NattSocket (UDP_ENCAP): ESP-in-UDP is decrypted by the kernel, IKE still reaches 'ike'.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { EspTransform, type EspTransformOptions } from '../../src/esp';
import { buildUdpPacket } from '../../src/ip/packet';
import { kernelEspMissing, ip, flushXfrm, hexKey, nextDatagram, nextEvent, saPackets, xfrmStat } from './lib/guest';

const missing = kernelEspMissing();
const GUEST = '10.0.2.15';

/** One ESP suite as EspTransform and `ip xfrm` each name it. */
interface Suite {
  name: string;
  make(): { esp: Omit<EspTransformOptions, 'spi'>; xfrm: string[] };
}

const suites: Suite[] = [
  {
    name: 'aes-gcm-16 (rfc4106, 128-bit key)',
    make() {
      const k = randomBytes(20);
      return { esp: { encryption: { algorithm: 'aes-gcm-16', key: k } }, xfrm: ['aead', 'rfc4106(gcm(aes))', hexKey(k), '128'] };
    },
  },
  {
    name: 'aes-cbc + hmac-sha1-96',
    make() {
      const k = randomBytes(16);
      const a = randomBytes(20);
      return {
        esp: { encryption: { algorithm: 'aes-cbc', key: k }, integrity: { algorithm: 'hmac-sha1-96', key: a } },
        xfrm: ['enc', 'cbc(aes)', hexKey(k), 'auth-trunc', 'hmac(sha1)', hexKey(a), '96'],
      };
    },
  },
  {
    name: 'chacha20-poly1305 (rfc7539esp)',
    make() {
      const k = randomBytes(36);
      return {
        esp: { encryption: { algorithm: 'chacha20-poly1305', key: k } },
        xfrm: ['aead', 'rfc7539esp(chacha20,poly1305)', hexKey(k), '128'],
      };
    },
  },
];

function bindUdp(port = 0): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, GUEST, () => resolve(s));
  });
}

const send = (s: dgram.Socket, msg: Uint8Array, port: number) =>
  new Promise<void>((resolve, reject) => s.send(msg, port, GUEST, (e) => (e ? reject(e) : resolve())));

describe.skipIf(missing !== null)(
  `NattSocket on kernel ESP (UDP_ENCAP)${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    let natt: NattSocket;
    let peer: dgram.Socket; // sends ESP-in-UDP and IKE to the NAT-T socket, as a peer behind a NAT would
    let inner: dgram.Socket; // the plain socket the decrypted datagrams are for

    beforeAll(async () => {
      flushXfrm();
      natt = await createNattSocket({ backend: 'kernel', address: GUEST, port: 4500 });
      peer = await bindUdp();
      inner = await bindUdp();
    });
    afterAll(async () => {
      flushXfrm();
      await new Promise<void>((r) => natt.close(() => r()));
      peer.close();
      inner.close();
    });
    afterEach(() => flushXfrm());

    it("createNattSocket({ backend: 'kernel' }) holds UDP_ENCAP_ESPINUDP on port 4500", () => {
      expect(natt.kernelEncap).toBe(true);
      expect(natt.kernelEncapType()).toBe(2);
      expect(natt.address().port).toBe(4500);
    });

    for (const suite of suites) {
      it(`${suite.name}: ESP-in-UDP to the socket is decrypted by the kernel and the inner datagram reaches its own socket`, async () => {
        const spi = 0x1000 + Math.floor(Math.random() * 0xffff);
        const { esp, xfrm } = suite.make();
        const peerPort = peer.address().port;
        ip('xfrm', 'state', 'add', 'src', GUEST, 'dst', GUEST, 'proto', 'esp', 'spi', String(spi), 'mode', 'transport',
          'replay-window', '32', ...xfrm, 'encap', 'espinudp', String(peerPort), '4500', '0.0.0.0');
        const tx = new EspTransform({ spi, ...esp });
        const espSeen: unknown[] = [];
        natt.on('esp', (p) => espSeen.push(p));
        const payloads = [randomBytes(1), randomBytes(100), randomBytes(1200)];
        for (const data of payloads) {
          const udp = buildUdpPacket(GUEST, 5555, GUEST, inner.address().port, data).subarray(20);
          const got = nextDatagram(inner);
          await send(peer, tx.seal(udp, 17), 4500);
          const { msg, rinfo } = await got.catch((e: Error) => {
            throw new Error(`${e.message}; xfrm_stat ${JSON.stringify(xfrmStat())}`);
          });
          expect(msg.equals(data)).toBe(true);
          expect(rinfo.port).toBe(5555);
        }
        expect(saPackets(GUEST, GUEST, spi)).toBe(payloads.length);
        expect(espSeen).toHaveLength(0);
        natt.removeAllListeners('esp');
      });
    }

    it('a tampered ESP packet is dropped by the kernel (counted), never delivered, never surfaced as IKE', async () => {
      const spi = 0x20000 + Math.floor(Math.random() * 0xffff);
      const { esp, xfrm } = suites[0].make();
      ip('xfrm', 'state', 'add', 'src', GUEST, 'dst', GUEST, 'proto', 'esp', 'spi', String(spi), 'mode', 'transport',
        ...xfrm, 'encap', 'espinudp', String(peer.address().port), '4500', '0.0.0.0');
      const tx = new EspTransform({ spi, ...esp });
      const before = xfrmStat().XfrmInStateProtoError ?? 0;
      const pkt = tx.seal(buildUdpPacket(GUEST, 5555, GUEST, inner.address().port, Buffer.from('x')).subarray(20), 17);
      pkt[pkt.length - 1] ^= 1;
      const ike: unknown[] = [];
      natt.on('ike', (p) => ike.push(p));
      const got: unknown[] = [];
      inner.on('message', (m) => got.push(m));
      await send(peer, pkt, 4500);
      // then a valid one: once it arrives, the tampered one (sent first) has been processed
      const ok = nextDatagram(inner);
      await send(peer, tx.seal(buildUdpPacket(GUEST, 5555, GUEST, inner.address().port, Buffer.from('y')).subarray(20), 17), 4500);
      expect((await ok).msg.toString()).toBe('y');
      expect(got.map(String)).toEqual(['y']);
      expect(ike).toHaveLength(0);
      expect((xfrmStat().XfrmInStateProtoError ?? 0) - before).toBe(1);
      inner.removeAllListeners('message');
      natt.removeAllListeners('ike');
    });

    it("IKE on the same port still reaches 'ike' (non-ESP marker removed), and a keepalive never does", async () => {
      const ikeMsg = Buffer.concat([Buffer.alloc(8, 0x11), randomBytes(60)]); // IKE SPIs + body
      const got = nextEvent<[Buffer, { port: number }]>(natt, 'ike');
      await send(peer, Buffer.from([0xff]), 4500); // keepalive first: the kernel eats it
      await send(peer, Buffer.concat([Buffer.alloc(4), ikeMsg]), 4500);
      const [payload, rinfo] = await got;
      expect(payload.equals(ikeMsg)).toBe(true);
      expect(rinfo.port).toBe(peer.address().port);
      // and the other way: sendIke adds the marker
      const back = nextDatagram(peer);
      natt.sendIke(ikeMsg, peer.address().port, GUEST);
      const { msg } = await back;
      expect(msg.subarray(0, 4).equals(Buffer.alloc(4))).toBe(true);
      expect(msg.subarray(4).equals(ikeMsg)).toBe(true);
    });
  },
);
