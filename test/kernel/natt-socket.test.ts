// Kernel ESP behind a NattSocket (UDP_ENCAP): ESP-in-UDP is decrypted by the kernel, IKE still reaches 'ike'.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { EspTransform, type EspTransformOptions } from '../../src/esp';
import { buildUdpPacket } from '../../src/ip/packet';
import type { SecurityAssociation } from '../../src/sadb/types';
import { kernelEspMissing, flushXfrm, nextDatagram, nextEvent, saPackets, xfrmStat } from './lib/guest';
import { installerFor, type Installer } from './lib/install';
import { adviceFor } from '../../src/native/advice';
import { NattSystemError } from '../../src/errors';
import { release } from 'node:os';

const missing = kernelEspMissing();
const [major, minor] = release().split('.').map(Number);
/** Linux 6.10 removed UDP_ENCAP_ESPINUDP_NON_IKE (type 1): setsockopt refuses it from then on. */
const NON_IKE_GONE = major > 6 || (major === 6 && minor >= 10);
const GUEST = '10.0.2.15';

/** One ESP suite: the keys (the SA model's shape, which EspTransform takes too). */
interface Suite {
  name: string;
  keys(): Pick<EspTransformOptions, 'encryption' | 'integrity'>;
}

const suites: Suite[] = [
  { name: 'aes-gcm-16 (rfc4106, 128-bit key)', keys: () => ({ encryption: { algorithm: 'aes-gcm-16', key: randomBytes(20) } }) },
  {
    name: 'aes-cbc + hmac-sha1-96',
    keys: () => ({
      encryption: { algorithm: 'aes-cbc', key: randomBytes(16) },
      integrity: { algorithm: 'hmac-sha1-96', key: randomBytes(20) },
    }),
  },
  { name: 'chacha20-poly1305 (rfc7539esp)', keys: () => ({ encryption: { algorithm: 'chacha20-poly1305', key: randomBytes(36) } }) },
];

/** The SA the peer's ESP-in-UDP travels on: to this guest, transport mode, NAT-T from the peer's port to 4500. */
function inboundSa(spi: number, peerPort: number, keys: Pick<EspTransformOptions, 'encryption' | 'integrity'>): SecurityAssociation {
  return {
    src: GUEST,
    dst: GUEST,
    spi,
    mode: 'transport',
    replayWindow: 32,
    encryption: keys.encryption as SecurityAssociation['encryption'],
    integrity: keys.integrity as SecurityAssociation['integrity'],
    natt: { type: 'espinudp', sport: peerPort, dport: 4500 },
  };
}

function bindUdp(port = 0): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, GUEST, () => resolve(s));
  });
}

const send = (s: dgram.Socket, msg: Uint8Array, port: number) =>
  new Promise<void>((resolve, reject) => s.send(msg, port, GUEST, (e) => (e ? reject(e) : resolve())));

describe.skipIf(missing !== null)(`NattSocket on kernel ESP (UDP_ENCAP)${missing ? ` (skipped: ${missing})` : ''}`, async () => {
  // vitest awaits an async suite body while collecting: the nested title says who installed the SAs.
  const installer = await installerFor('xfrm', missing);
  describe(installer.label, () => defineTests(installer));
});

function defineTests(installer: Installer): void {
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
    await installer.close();
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

  it("backend 'auto' picks the kernel here, where the kernel does ESP, and says why", async () => {
    const s = await createNattSocket({ address: GUEST, port: 0 });
    try {
      expect(s.kernelEncap).toBe(true);
      expect(s.backendReason).toMatch(/kernel does ESP/);
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it(
    `UDP_ENCAP type 1 (non-IKE): ${
      NON_IKE_GONE
        ? `kernel ${release()} (>= 6.10) refuses it with ENOPROTOOPT and advice, and 'auto' falls back to userland`
        : `kernel ${release()} (< 6.10) still takes it: a kernel socket that reads back type 1`
    }`,
    async () => {
      const kernel = createNattSocket({ backend: 'kernel', address: GUEST, port: 0, encap: 'espinudp-non-ike' });
      if (!NON_IKE_GONE) {
        const s = await kernel;
        try {
          expect(s.kernelEncapType()).toBe(1);
        } finally {
          await new Promise<void>((r) => s.close(() => r()));
        }
        return;
      }
      const err = await kernel.then(
        (s) => (s.close(), new Error('the kernel took UDP_ENCAP type 1')),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NattSystemError);
      expect(err).toMatchObject({ code: 'ENOPROTOOPT', errno: -92, syscall: 'setsockopt' });
      expect((err as Error).message).toContain(adviceFor('ENOPROTOOPT', 'udp-encap', { encapType: 1 })!);
      expect((err as Error).message).toMatch(/non-IKE.*6\.10/);
      const auto = await createNattSocket({ address: GUEST, port: 0, encap: 'espinudp-non-ike' });
      try {
        expect(auto.backend).toBe('userland');
        expect(auto.backendReason).toBe('the kernel refused UDP_ENCAP 1 (ENOPROTOOPT)');
      } finally {
        await new Promise<void>((r) => auto.close(() => r()));
      }
    },
  );

  for (const suite of suites) {
    it(`${suite.name}: ESP-in-UDP to the socket is decrypted by the kernel and the inner datagram reaches its own socket`, async () => {
      const spi = 0x1000 + Math.floor(Math.random() * 0xffff);
      const keys = suite.keys();
      await installer.addSa(inboundSa(spi, peer.address().port, keys));
      const tx = new EspTransform({ spi, ...keys });
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

  it('IPv6: ESP-in-UDP to a family-6 NattSocket on ::1 is decrypted by the kernel (esp6) and delivered', async () => {
    const natt6 = await createNattSocket({ family: 6, backend: 'kernel', address: '::1', port: 4500 });
    const peer6 = dgram.createSocket('udp6');
    const inner6 = dgram.createSocket('udp6');
    try {
      await new Promise<void>((r) => peer6.bind(0, '::1', () => r()));
      await new Promise<void>((r) => inner6.bind(0, '::1', () => r()));
      expect(natt6.kernelEncap).toBe(true);
      const spi = 0x30000 + Math.floor(Math.random() * 0xffff);
      const keys = suites[0].keys();
      await installer.addSa({ ...inboundSa(spi, peer6.address().port, keys), src: '::1', dst: '::1' });
      const tx = new EspTransform({ spi, ...keys });
      const data = randomBytes(300);
      const udp = buildUdpPacket('::1', 5555, '::1', inner6.address().port, data).subarray(40);
      const got = nextDatagram(inner6);
      await new Promise<void>((r, j) => peer6.send(tx.seal(udp, 17), 4500, '::1', (e) => (e ? j(e) : r())));
      const { msg, rinfo } = await got;
      expect(msg.equals(data)).toBe(true);
      expect(rinfo.port).toBe(5555);
      expect(saPackets('::1', '::1', spi)).toBe(1);
    } finally {
      peer6.close();
      inner6.close();
      await new Promise<void>((r) => natt6.close(() => r()));
    }
  });

  it('a tampered ESP packet is dropped by the kernel (counted), never delivered, never surfaced as IKE', async () => {
    const spi = 0x20000 + Math.floor(Math.random() * 0xffff);
    const keys = suites[0].keys();
    await installer.addSa(inboundSa(spi, peer.address().port, keys));
    const tx = new EspTransform({ spi, ...keys });
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
}
