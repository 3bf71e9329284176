// UDP GSO (send) and GRO (receive) on real loopback sockets: runs leave as one message, arrive as the same datagrams.

import { afterEach, describe, expect, it } from 'vitest';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';

const why = process.platform !== 'linux' ? 'UDP GSO/GRO are Linux only' : !loadNative() ? 'the native addon is not built' : '';
const open: NattSocket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

async function sock(o: { gso?: boolean; gro?: boolean; zeroChecksum?: boolean } = {}): Promise<NattSocket> {
  const s = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland', ...o });
  open.push(s);
  return s;
}

/** A run of ESP-looking datagrams in one slab: SPI 0x1000, sequence i, then bytes that say (i, k). */
function run(lengths: number[]): { slab: Buffer; offsets: Uint32Array; lens: Uint32Array } {
  const slab = Buffer.alloc(lengths.length * 2048 + 64);
  const offsets = new Uint32Array(lengths.length);
  const lens = Uint32Array.from(lengths);
  lengths.forEach((len, i) => {
    const at = 64 + i * 2048;
    offsets[i] = at;
    slab.writeUInt32BE(0x1000, at);
    slab.writeUInt32BE(i + 1, at + 4);
    for (let k = 8; k < len; k++) slab[at + k] = (i * 7 + k) & 0xff;
  });
  return { slab, offsets, lens };
}

function collect(s: NattSocket, n: number): Promise<Buffer[]> {
  const got: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${got.length} of ${n} datagrams arrived`)), 3000);
    s.on('esp', (p) => {
      got.push(p);
      if (got.length === n) {
        clearTimeout(t);
        resolve(got);
      }
    });
  });
}

describe.skipIf(why !== '')(`UDP segmentation offloads on the NAT-T socket${why ? ` (skipped: ${why})` : ''}`, () => {
  it('gso: a run of equal datagrams (the last shorter) is one UDP_SEGMENT message; a receiver without GRO gets each, byte-equal', async () => {
    const a = await sock({ gso: true });
    const b = await sock({ gro: false });
    expect(a.offload).toEqual({ gso: true, gro: true, gsoReason: '', groReason: '' });
    expect(a.zeroChecksum).toBe(false); // GSO needs checksums: gso: true turns the zero-checksum default off
    const lengths = [...Array(39).fill(1400), 700];
    const r = run(lengths);
    const got = collect(b, 40);
    expect(a.sendEspRun(r.slab, r.offsets, r.lens, 40, b.address().port, '127.0.0.1')).toBe(40);
    const pkts = await got;
    pkts.sort((x, y) => x.readUInt32BE(4) - y.readUInt32BE(4));
    pkts.forEach((p, i) => expect(p.equals(r.slab.subarray(r.offsets[i], r.offsets[i] + lengths[i]))).toBe(true));
    expect(a.stats().offload).toMatchObject({ gsoSends: 1, gsoSegments: 40, gsoRetries: 0 });
    expect(b.stats().offload).toMatchObject({ groReceives: 0 }); // the kernel cut it for a socket without UDP_GRO
    expect(a.stats().sentEsp).toBe(40);
  });

  it('gro: the GSO message arrives as one receive and is split again; every datagram is counted and delivered', async () => {
    const a = await sock({ gso: true });
    const b = await sock({ gro: true });
    const lengths = Array(20).fill(1000);
    const r = run(lengths);
    const got = collect(b, 20);
    a.sendEspRun(r.slab, r.offsets, r.lens, 20, b.address().port, '127.0.0.1');
    const pkts = await got;
    expect(pkts.map((p) => p.readUInt32BE(4))).toEqual(lengths.map((_, i) => i + 1)); // in order
    pkts.forEach((p, i) => expect(p.equals(r.slab.subarray(r.offsets[i], r.offsets[i] + 1000))).toBe(true));
    expect(b.stats().offload).toMatchObject({ groReceives: 1, groSegments: 20, groOverflow: 0 });
    expect(b.stats().esp).toBe(20);
  });

  it('gso groups only what the kernel can cut: a longer datagram, or one after a shorter, starts a new message', async () => {
    const a = await sock({ gso: true });
    const b = await sock({ gro: false });
    const lengths = [1000, 1000, 500, 1000, 1200, 1200, 1200, 100];
    const r = run(lengths);
    const got = collect(b, lengths.length);
    a.sendEspRun(r.slab, r.offsets, r.lens, lengths.length, b.address().port, '127.0.0.1');
    const pkts = (await got).sort((x, y) => x.readUInt32BE(4) - y.readUInt32BE(4));
    expect(pkts.map((p) => p.length)).toEqual(lengths);
    // [1000 1000 500] [1000] [1200 1200 1200 100]: three messages, two of them GSO (the lone 1000 is a plain send)
    expect(a.stats().offload).toMatchObject({ gsoSends: 2, gsoSegments: 7 });
  });

  it('without gso (the default) every datagram is its own message; the offload property says why GSO is off', async () => {
    const a = await sock();
    const b = await sock();
    expect(a.offload.gso).toBe(false);
    expect(a.offload.gsoReason).toMatch(/gso: false/);
    const r = run(Array(10).fill(900));
    const got = collect(b, 10);
    a.sendEspRun(r.slab, r.offsets, r.lens, 10, b.address().port, '127.0.0.1');
    expect((await got).length).toBe(10);
    expect(a.stats().offload.gsoSends).toBe(0);
    expect(b.stats().offload.groReceives).toBe(0);
  });

  it('gso: true with zeroChecksum: true is refused at once, naming gso; gso and gro must be booleans', () => {
    expect(() => createNattSocket({ gso: true, zeroChecksum: true })).toThrow(RangeError);
    expect(() => createNattSocket({ gso: true, zeroChecksum: true })).toThrow(/gso/);
    expect(() => createNattSocket({ gso: 1 as never })).toThrow(/gso/);
    expect(() => createNattSocket({ gro: 'yes' as never })).toThrow(/gro/);
  });

  it('the kernel backend and encap none report the offloads off, with the reason', async () => {
    const ike = await createNattSocket({ address: '127.0.0.1', port: 0, encap: 'none' });
    open.push(ike);
    expect(ike.offload).toMatchObject({ gso: false, gro: false });
    expect(ike.offload.gsoReason).toMatch(/encap 'none'/);
  });
});
