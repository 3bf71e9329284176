// UDP GSO where the kernel will not segment: a socket whose datagrams an XFRM policy takes into ESP gets EIO for a GSO
// send (udp_send_skb refuses GSO on an xfrm route); natt turns GSO off for it, resends one by one, and says why.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { flushXfrm, hexKey, ip, kernelEspMissing, saPackets, until } from './lib/guest';

const missing = kernelEspMissing();
const GUEST = '10.0.2.15';
const PEER = '10.0.2.2'; // slirp's host address: reachable, nothing needs to answer
const SPI = 0x4747;
const PORT = 45999;

describe.skipIf(missing !== null)(`UDP GSO on an IPsec route${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let s: NattSocket | null = null;
  afterEach(() => {
    s?.close();
    s = null;
    flushXfrm();
  });

  it('the kernel answers EIO; GSO turns off for the socket, the run goes out datagram by datagram through ESP', async () => {
    flushXfrm();
    ip('xfrm', 'state', 'add', 'src', GUEST, 'dst', PEER, 'proto', 'esp', 'spi', `0x${SPI.toString(16)}`, 'mode', 'transport',
      'aead', 'rfc4106(gcm(aes))', hexKey(randomBytes(20)), '128');
    ip('xfrm', 'policy', 'add', 'src', `${GUEST}/32`, 'dst', `${PEER}/32`, 'proto', '17', 'dport', String(PORT), 'dir', 'out',
      'tmpl', 'src', GUEST, 'dst', PEER, 'proto', 'esp', 'mode', 'transport');
    // bypass: false, so the host's policy applies to this socket (with the default bypass it never would).
    s = await createNattSocket({ address: GUEST, port: 0, backend: 'userland', bypass: false, gso: true });
    expect(s.offload.gso).toBe(true);
    const slab = Buffer.alloc(12 * 2048);
    const offsets = new Uint32Array(10);
    const lengths = new Uint32Array(10).fill(1000);
    for (let i = 0; i < 10; i++) {
      offsets[i] = 64 + i * 2048;
      slab.writeUInt32BE(0x1000, offsets[i]);
      slab.writeUInt32BE(i + 1, offsets[i] + 4);
    }
    expect(s.sendEspRun(slab, offsets, lengths, 10, PORT, PEER)).toBe(10);
    const st = s.stats();
    expect(st.sendErrors).toBe(0);
    expect(st.sentEsp).toBe(10);
    expect(st.offload).toMatchObject({ gsoSends: 0, gsoRetries: 1 });
    expect(s.offload.gso).toBe(false);
    expect(s.offload.gsoReason).toMatch(/EIO/);
    await until(() => saPackets(GUEST, PEER, SPI) >= 10, 5000, () => `the SA carried ${saPackets(GUEST, PEER, SPI)} packets`);
    expect(saPackets(GUEST, PEER, SPI)).toBe(10); // every datagram went through the kernel's ESP, once
    // Later runs go out without GSO at once (no second refusal).
    expect(s.sendEspRun(slab, offsets, lengths, 10, PORT, PEER)).toBe(10);
    expect(s.stats().offload.gsoRetries).toBe(1);
  });
});
