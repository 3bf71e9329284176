// The interop scenario: kernel ESP in the guest ↔ natt's UserlandEngine on the host, across slirp's NAT.
//
// Guest 10.0.2.15 (kernel ESP, NattSocket with UDP_ENCAP on 4500)  ⇄  slirp NAT  ⇄  host 127.0.0.1 (peer.js: engine).
// The guest sees the host as 10.0.2.2; the host sees the guest as 127.0.0.1 (slirp's own sockets), so host-side
// SAs are 127.0.0.1 ⇄ 127.0.0.1, told apart by reqid. Host → guest first goes through the hostfwd port; once the
// engine has authenticated ESP from the guest's NAT mapping it moves its outbound SA there ('newMapping') if the
// mapping differs from the port it recorded (slirp maps the guest's 4500 to the hostfwd socket itself).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { createNattSocket, type NattSocket } from '../../../src/natt/socket';
import type { SecurityAssociation, EncryptionAlgorithm, IntegrityAlgorithm } from '../../../src/sadb/types';
import { ip, flushXfrm, nextDatagram, nextEvent, kernelEspMissing, xfrmStat, saPackets } from './guest';
import { installerFor, type Installer } from './install';
import { PeerClient, peerAddress, type WireSa } from './peer-client';

const G = '10.0.2.15'; // the guest, as itself
const H = '10.0.2.2'; // the host, as the guest reaches it
const HOST_VIEW = '127.0.0.1'; // both ends, as the host's engine sees them
const G_INNER = '192.168.100.1'; // tunnel mode: the guest's protected network
const H_INNER = '192.168.200.1'; // tunnel mode: the host's protected network
const H_PORT = 7000; // the inner UDP port on the host side

export interface InteropSuite {
  /** Which natt client installs the guest's SAs. */
  backend: 'pfkey' | 'xfrm';
  encryption: { algorithm: EncryptionAlgorithm; keyBytes: number };
  integrity?: { algorithm: IntegrityAlgorithm; keyBytes: number };
}

const wireKeys = (sa: SecurityAssociation): WireSa => ({
  ...(sa as unknown as WireSa),
  encryption: { algorithm: sa.encryption!.algorithm, key: Buffer.from(sa.encryption!.key).toString('hex') },
  integrity: sa.integrity ? { algorithm: sa.integrity.algorithm, key: Buffer.from(sa.integrity.key).toString('hex') } : undefined,
});

function bindUdp(address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, address, () => resolve(s));
  });
}

/** Register the interop tests (tunnel and transport, both directions) for one suite. Call at a test file's top. */
export function defineInteropSuite(suite: InteropSuite): void {
  const missing = kernelEspMissing() ?? (peerAddress() ? null : 'no host peer (NATT_VM_CTL unset: run it with npm run test:vm)');
  const algs = suite.encryption.algorithm + (suite.integrity ? ` + ${suite.integrity.algorithm}` : '');
  const title = `interop ${algs}, guest kernel ⇄ host UserlandEngine across slirp NAT`;

  describe.skipIf(missing !== null)(`${title}${missing ? ` (skipped: ${missing})` : ''}`, async () => {
    // vitest awaits an async suite body while collecting: the nested title says who installed the SAs.
    const installer = await installerFor(suite.backend, missing);
    describe(installer.label, () => defineModes(suite, installer));
  });
}

function defineModes(suite: InteropSuite, installer: Installer): void {
  let natt: NattSocket;
  beforeAll(async () => {
    flushXfrm();
    // The guest's NAT-T socket: the kernel takes ESP-in-UDP arriving on 4500 only where UDP_ENCAP is set.
    natt = await createNattSocket({ backend: 'kernel', address: G, port: 4500 });
    ip('addr', 'replace', `${G_INNER}/32`, 'dev', 'lo');
    ip('route', 'replace', `${H_INNER}/32`, 'via', H, 'dev', 'eth0', 'src', G_INNER);
  });
  afterAll(async () => {
    flushXfrm();
    await installer.close();
    await new Promise<void>((r) => natt.close(() => r()));
  });

  for (const mode of ['tunnel', 'transport'] as const) {
    describe(`${mode} mode`, () => {
      let peer: PeerClient;
      let hostPort: number;
      let fwdPort: number;
      let inner: dgram.Socket; // guest: the plain socket host → guest traffic is for
      let sender: dgram.Socket; // guest: the plain socket guest → host traffic comes from
      const spiOut = 0x10000 + Math.floor(Math.random() * 0xfffff); // guest → host
      const spiIn = spiOut + 1; // host → guest
      const gAddr = mode === 'tunnel' ? G_INNER : G; // inner addresses, guest view
      const hAddr = mode === 'tunnel' ? H_INNER : H;
      let lastRinfoPort = 0;
      let guestOut: SecurityAssociation;

      beforeAll(async () => {
        flushXfrm();
        peer = await PeerClient.connect();
        ({ port: hostPort, fwdPort } = await peer.reset());
        inner = await bindUdp(gAddr);
        sender = await bindUdp(gAddr);
        const keys = () => ({
          encryption: { algorithm: suite.encryption.algorithm, key: randomBytes(suite.encryption.keyBytes) },
          ...(suite.integrity ? { integrity: { algorithm: suite.integrity.algorithm, key: randomBytes(suite.integrity.keyBytes) } } : {}),
        });
        const kOut = keys();
        const kIn = keys();
        // guest kernel
        guestOut = { src: G, dst: H, spi: spiOut, mode, reqid: 1, replayWindow: 32, ...kOut, natt: { type: 'espinudp', sport: 4500, dport: hostPort } };
        await installer.addSa(guestOut);
        await installer.addSa({ src: H, dst: G, spi: spiIn, mode, reqid: 2, replayWindow: 32, ...kIn, natt: { type: 'espinudp', sport: hostPort, dport: 4500 } });
        const gOut = mode === 'tunnel' ? { src: `${G_INNER}/32`, dst: `${H_INNER}/32` } : { src: `${G}/32`, dst: `${H}/32`, proto: 17, dport: H_PORT };
        const gIn = mode === 'tunnel' ? { src: `${H_INNER}/32`, dst: `${G_INNER}/32` } : { src: `${H}/32`, dst: `${G}/32`, proto: 17, sport: H_PORT };
        await installer.addPolicy({ selector: gOut, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode, reqid: 1, ...(mode === 'tunnel' ? { src: G, dst: H } : {}) }] });
        await installer.addPolicy({ selector: gIn, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode, reqid: 2, ...(mode === 'tunnel' ? { src: H, dst: G } : {}) }] });
        // host engine: the mirror image, as the host sees it (both ends 127.0.0.1). Its inbound SA names the
        // guest's original addresses (NAT-OA) for the transport-mode checksum fix-up; its outbound SA starts at
        // the hostfwd port, and the peer it recorded (fwdPort) is replaced by the guest's NAT mapping once seen.
        await peer.addSa(wireKeys({ src: HOST_VIEW, dst: HOST_VIEW, spi: spiOut, mode, reqid: 1, replayWindow: 32, ...kOut, natt: { type: 'espinudp', sport: fwdPort, dport: hostPort, oa: { initiator: G, responder: H } } }));
        await peer.addSa(wireKeys({ src: HOST_VIEW, dst: HOST_VIEW, spi: spiIn, mode, reqid: 2, replayWindow: 32, ...kIn, natt: { type: 'espinudp', sport: hostPort, dport: fwdPort } }));
        const hOut = mode === 'tunnel' ? { src: `${H_INNER}/32`, dst: `${G_INNER}/32` } : { src: `${HOST_VIEW}/32`, dst: `${HOST_VIEW}/32`, proto: 17, sport: H_PORT };
        const hIn = mode === 'tunnel' ? { src: `${G_INNER}/32`, dst: `${H_INNER}/32` } : { src: `${HOST_VIEW}/32`, dst: `${HOST_VIEW}/32`, proto: 17, dport: H_PORT };
        await peer.addPolicy({ selector: hOut, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode, reqid: 2, ...(mode === 'tunnel' ? { src: HOST_VIEW, dst: HOST_VIEW } : {}) }] });
        await peer.addPolicy({ selector: hIn, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode, reqid: 1, ...(mode === 'tunnel' ? { src: HOST_VIEW, dst: HOST_VIEW } : {}) }] });
      });
      afterAll(() => {
        peer?.close();
        inner?.close();
        sender?.close();
        flushXfrm();
      });

      /** host engine → guest kernel: the engine seals, the guest kernel decrypts, the inner socket receives. */
      async function hostToGuest(label: string): Promise<void> {
        const data = randomBytes(200);
        const got = nextDatagram(inner);
        const src = mode === 'tunnel' ? H_INNER : HOST_VIEW;
        const dst = mode === 'tunnel' ? G_INNER : HOST_VIEW;
        const { result } = await peer.sendUdp({ src, sport: H_PORT, dst, dport: inner.address().port, data: data.toString('hex') });
        expect(result).toBe('sent');
        const { msg, rinfo } = await got.catch((e: Error) => {
          throw new Error(`${label}: ${e.message}; guest xfrm_stat ${JSON.stringify(xfrmStat())}`);
        });
        expect(msg.equals(data)).toBe(true);
        expect(rinfo.address).toBe(hAddr);
        expect(rinfo.port).toBe(H_PORT);
      }

      it(`IKE crosses the NAT both ways on the same ports as the ESP (${mode}): guest 'ike' ⇄ host 'ike'`, async () => {
        const toGuest = randomBytes(80);
        const gotGuest = nextEvent<[Buffer, { address: string; port: number }]>(natt, 'ike');
        await peer.sendIke(fwdPort, HOST_VIEW, toGuest.toString('hex'));
        const [msg, rinfo] = await gotGuest;
        expect(msg.equals(toGuest)).toBe(true);
        expect([rinfo.address, rinfo.port]).toEqual([H, hostPort]);
        const toHost = randomBytes(90);
        natt.sendIke(toHost, hostPort, H);
        const back = await peer.nextIke();
        expect(back.data).toBe(toHost.toString('hex'));
      });

      it(`host userland → guest kernel (${mode}, through the hostfwd port)`, async () => {
        await hostToGuest('hostfwd');
        expect(saPackets(H, G, spiIn)).toBe(1);
      });

      it(`guest kernel → host userland (${mode}, through the NAT; checksums accepted after the NAT fix-up)`, async () => {
        for (const size of [1, 300, 1300]) {
          const data = randomBytes(size);
          await new Promise<void>((r, j) => sender.send(data, H_PORT, hAddr, (e) => (e ? j(e) : r())));
          const p = await peer.nextPacket();
          lastRinfoPort = p.rinfo.port;
          expect(p.udp).not.toBeNull();
          expect(p.udp!.data).toBe(data.toString('hex'));
          expect(p.udp!.sport).toBe(sender.address().port);
          expect(p.udp!.dport).toBe(H_PORT);
          // the kernel computed a real UDP checksum; after the engine's NAT fix-up it still adds up
          expect(p.udp!.checksum).not.toBe(0);
          expect(p.checksumOk).toBe(true);
          if (mode === 'tunnel') expect([p.udp!.src, p.udp!.dst]).toEqual([G_INNER, H_INNER]);
          else expect([p.udp!.src, p.udp!.dst]).toEqual([HOST_VIEW, HOST_VIEW]);
        }
        expect(saPackets(G, H, spiOut)).toBe(3);
        // Where the guest's 4500 appears on the host is slirp's choice: the hostfwd socket (the SA's recorded
        // peer: no new mapping) or a port of its own (then the engine must have moved its SAs there).
        const st = await peer.state();
        const seen = lastRinfoPort;
        console.log(`${mode}: the guest's UDP 4500 appears on the host as 127.0.0.1:${seen} (hostfwd port ${fwdPort})`);
        if (seen === fwdPort) expect(st.mappings).toEqual([]);
        else expect(st.mappings.map((m) => m.new.port)).toEqual([seen]);
      });

      it(`host userland → guest kernel (${mode}, to the guest's NAT mapping as the engine last saw it)`, async () => {
        await hostToGuest('mapping');
        expect(saPackets(H, G, spiIn)).toBe(2);
        const st = await peer.state();
        expect(st.stats).toEqual({});
      });

      it(`the guest's NAT mapping changes (its ESP now leaves from UDP 4501): the engine raises newMapping and its replies follow (${mode})`, async () => {
        // a second UDP_ENCAP socket: the kernel decrypts what arrives on 4501 too
        const natt2 = await createNattSocket({ backend: 'kernel', address: G, port: 4501 });
        try {
          await installer.updateSa({ ...guestOut, natt: { ...guestOut.natt!, sport: 4501 } });
          const data = randomBytes(64);
          await new Promise<void>((r, j) => sender.send(data, H_PORT, hAddr, (e) => (e ? j(e) : r())));
          const p = await peer.nextPacket();
          expect(p.udp!.data).toBe(data.toString('hex'));
          expect(p.checksumOk).toBe(true);
          // slirp gave the guest's new source port a host port of its own: a new mapping, learnt from an
          // authenticated packet
          console.log(`${mode}: after the change the guest appears as 127.0.0.1:${p.rinfo.port} (was ${lastRinfoPort})`);
          expect(p.rinfo.port).not.toBe(lastRinfoPort);
          const st = await peer.state();
          expect(st.mappings.at(-1)).toMatchObject({ spi: spiOut, old: { port: lastRinfoPort }, new: { address: HOST_VIEW, port: p.rinfo.port } });
          // the engine's replies now go to the new mapping, which slirp delivers to the guest's 4501
          await hostToGuest('new mapping');
          expect(natt2.stats().esp).toBe(0); // the kernel took the ESP, not the socket
        } finally {
          await new Promise<void>((r) => natt2.close(() => r()));
        }
      });
    });
  }
}
