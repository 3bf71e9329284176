// What an IKE daemon needs from the NAT-T socket, on loopback: the plain IKE socket (encap 'none'), local addresses in
// and out, the options forms of the sends, the batched ESP send, keepalives on both backends, and the dgram fallback.

import * as dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNattSocket, MAX_KEEPALIVE_PEERS, type NattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';
import { ensureDist } from '../lib/dist';
import { NattUnsupportedError } from '../../src/errors';
import type { RemoteInfo } from '../../src/transport';

const native = loadNative();
const noNative = native ? '' : ' (skipped: the native addon is not built)';
const encap4 = native?.probe().udpEncap4.ok === true;

const open: (NattSocket | dgram.Socket)[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {
      // closed already
    }
  }
});

async function natt(opts: Parameters<typeof createNattSocket>[0]): Promise<NattSocket> {
  const s = await createNattSocket(opts);
  open.push(s);
  return s;
}

async function plain(type: 'udp4' | 'udp6' = 'udp4', address = type === 'udp4' ? '127.0.0.1' : '::1'): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  open.push(s);
  await new Promise<void>((r) => s.bind(0, address, r));
  return s;
}

const next = <T extends unknown[]>(em: NodeJS.EventEmitter, ev: string): Promise<T> => new Promise((r) => em.once(ev, (...a: unknown[]) => r(a as T)));
const sendFrom = (s: dgram.Socket, b: Buffer, port: number, address: string) =>
  new Promise<void>((res, rej) => s.send(b, port, address, (e) => (e ? rej(e) : res())));

describe("the plain IKE socket (encap 'none')", () => {
  it('every non-empty datagram is IKE, whole (no marker removed), whatever it starts with; empty ones are dropped', async () => {
    const s = await natt({ encap: 'none', address: '127.0.0.1', port: 0 });
    expect(s).toMatchObject({ encap: 'none', backend: 'userland', kernelEncap: false, zeroChecksum: false });
    expect(s.backendReason).toMatch(/plain IKE socket/);
    const from = await plain();
    const got: string[] = [];
    s.on('ike', (p) => got.push(p.toString('hex')));
    s.on('esp', () => got.push('esp!'));
    s.on('keepalive', () => got.push('keepalive!'));
    const rows = ['ff', '00000000aabbccdd', '0000100000000001deadbeefdeadbeef', '1122334455667788' + '00'.repeat(20)];
    await sendFrom(from, Buffer.alloc(0), s.address().port, '127.0.0.1');
    for (const r of rows) await sendFrom(from, Buffer.from(r, 'hex'), s.address().port, '127.0.0.1');
    while (got.length < rows.length) await new Promise((r) => setTimeout(r, 5));
    expect(got).toEqual(rows);
    expect(s.stats()).toMatchObject({ ike: 4, esp: 0, keepalive: 0, dropped: { empty: 1 } });
  });

  it('sendIke sends bare IKE; ESP and keepalives are refused; the kernel backend is refused naming the option', async () => {
    const s = await natt({ encap: 'none', address: '127.0.0.1', port: 0 });
    const rx = await plain();
    const got = next<[Buffer]>(rx, 'message');
    s.sendIke(Buffer.from('1122334455667788', 'hex'), rx.address().port, '127.0.0.1');
    expect((await got)[0].toString('hex')).toBe('1122334455667788');
    expect(() => s.sendEsp(Buffer.alloc(20, 1), 9, '127.0.0.1')).toThrow(NattUnsupportedError);
    expect(() => s.sendKeepalive(9, '127.0.0.1')).toThrow(/NAT-T port/);
    expect(() => s.keepalive(9, '127.0.0.1')).toThrow(NattUnsupportedError);
    expect(() => createNattSocket({ encap: 'none', backend: 'kernel' })).toThrow(/option "backend"/);
    expect(() => createNattSocket({ encap: 'plain' as never })).toThrow(/option "encap"/);
  });
});

describe.skipIf(!native)(`local addresses (IP_PKTINFO / IPV6_RECVPKTINFO)${noNative}`, () => {
  for (const backend of encap4 ? (['userland', 'kernel'] as const) : (['userland'] as const)) {
    it(`${backend}: a wildcard-bound socket says which local address IKE arrived on, and replies from it`, async () => {
      const s = await natt({ address: '0.0.0.0', port: 0, backend });
      expect(s.localAddressKnown).toBe(true);
      const peer = await plain();
      const got = next<[Buffer, RemoteInfo]>(s, 'ike');
      await sendFrom(peer, Buffer.concat([Buffer.alloc(4), Buffer.from('IKE_SA_INIT')]), s.address().port, '127.0.0.2');
      const [msg, rinfo] = await got;
      expect(msg.toString()).toBe('IKE_SA_INIT');
      expect(rinfo).toEqual({ address: '127.0.0.1', family: 'IPv4', port: peer.address().port, size: 15, localAddress: '127.0.0.2', localPort: s.address().port });
      // The reply leaves from the address the request came to (a multi-homed host must), in both forms.
      const back = next<[Buffer, dgram.RemoteInfo]>(peer, 'message');
      s.sendIke(Buffer.from('reply'), rinfo.port, rinfo.address, { localAddress: rinfo.localAddress });
      const [m1, r1] = await back;
      expect(m1.subarray(4).toString()).toBe('reply');
      expect(r1.address).toBe('127.0.0.2');
      const back2 = next<[Buffer, dgram.RemoteInfo]>(peer, 'message');
      const done = new Promise<unknown>((r) => s.sendIke(Buffer.from('again'), { port: rinfo.port, address: rinfo.address, localAddress: '127.0.0.3', callback: r }));
      expect(await done).toBeNull();
      expect((await back2)[1].address).toBe('127.0.0.3');
      const ka = next<[Buffer, dgram.RemoteInfo]>(peer, 'message');
      s.sendKeepalive(rinfo.port, rinfo.address, { localAddress: '127.0.0.4' });
      const [k, rk] = await ka;
      expect([k.toString('hex'), rk.address]).toEqual(['ff', '127.0.0.4']);
    });
  }

  it('IPv6: localAddress on a wildcard socket', async () => {
    const s = await natt({ family: 6, address: '::', port: 0, backend: 'userland' });
    const peer = await plain('udp6');
    const got = next<[Buffer, RemoteInfo]>(s, 'keepalive');
    await sendFrom(peer, Buffer.from([0xff]), s.address().port, '::1');
    const [rinfo] = await got;
    expect(rinfo).toMatchObject({ address: '::1', family: 'IPv6', localAddress: '::1', localPort: s.address().port });
  });

  it("userland: 'esp' events carry the local address too; the packet is the caller's to keep", async () => {
    const s = await natt({ address: '0.0.0.0', port: 0, backend: 'userland' });
    const peer = await plain();
    const seen: [Buffer, RemoteInfo][] = [];
    s.on('esp', (p, r) => seen.push([p, r]));
    for (let i = 0; i < 40; i++) await sendFrom(peer, Buffer.from(`0000abcd0000000${i % 10}payload-${i}`), s.address().port, '127.0.0.5');
    while (seen.length < 40) await new Promise((r) => setTimeout(r, 5));
    // Received in batches into one reused slab: each event's buffer must still hold its own datagram.
    expect(seen.map(([p]) => p.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `0000abcd0000000${i % 10}payload-${i}`));
    expect(seen[0][1]).toMatchObject({ localAddress: '127.0.0.5' });
  });

  it('send options are checked at once, naming the option', async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    expect(() => s.sendIke(Buffer.from('x'), 500, '127.0.0.1', { localAddress: 5 as never })).toThrow(/option "localAddress"/);
    expect(() => s.sendIke(Buffer.from('x'), 500, '127.0.0.1', { localAddress: '::1' })).toThrow(RangeError);
    expect(() => s.sendIke(Buffer.from('x'), 500, '127.0.0.1', { localAdress: '127.0.0.1' } as never)).toThrow(/unknown option "localAdress"/);
    expect(() => s.sendIke(Buffer.from('x'), { port: 500 } as never)).toThrow(/option "address"/);
    expect(() => s.sendIke(Buffer.from('x'), { port: 500, address: '127.0.0.1', callback: 3 } as never)).toThrow(/option "callback"/);
    expect(() => s.sendKeepalive(500, '127.0.0.1', 'cb' as never)).toThrow(/option "callback" must be a function/);
  });

  it('a send the OS refuses is reported to its callback (after the call returns) and counted, never thrown', async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    let returned = false;
    const err = new Promise<Error | null>((r) =>
      s.sendIke(Buffer.alloc(70_000), 9, '127.0.0.1', (e) => {
        expect(returned).toBe(true);
        r(e);
      }),
    );
    returned = true;
    expect(await err).toMatchObject({ code: 'EMSGSIZE', syscall: 'sendmsg' });
    expect(s.stats()).toMatchObject({ sentIke: 0, sendErrors: 1 });
  });
});

describe.skipIf(!native)(`sendEspBatch over sendmmsg${noNative}`, () => {
  for (const encap of ['espinudp', 'espinudp-non-ike'] as const) {
    it(`${encap}: a batch of ESP packets to two peers arrives whole and in order, counted`, async () => {
      const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland', encap });
      const a = await natt({ address: '127.0.0.1', port: 0, backend: 'userland', encap });
      const b = await natt({ address: '127.0.0.1', port: 0, backend: 'userland', encap });
      // More than two sendmmsg fills of 64 entries, small enough for loopback's default receive buffers.
      const n = 130;
      const packets = Array.from({ length: n }, (_, i) => Buffer.concat([Buffer.from([0, 0, 0x10, 1 + i]), Buffer.alloc(4), Buffer.from(`esp ${i}`.padEnd(40 + i, '.'))]));
      const got: Record<string, string[]> = { a: [], b: [] };
      a.on('esp', (p) => got.a.push(p.toString('latin1')));
      b.on('esp', (p) => got.b.push(p.toString('latin1')));
      s.sendEspBatch({
        count: n,
        packets,
        ports: packets.map((_, i) => (i % 3 ? b : a).address().port),
        addresses: packets.map(() => '127.0.0.1'),
      });
      for (let t = 0; t < 400 && got.a.length + got.b.length < n; t++) await new Promise((r) => setTimeout(r, 5));
      expect(got.a).toEqual(packets.filter((_, i) => i % 3 === 0).map((p) => p.toString('latin1')));
      expect(got.b).toEqual(packets.filter((_, i) => i % 3 !== 0).map((p) => p.toString('latin1')));
      expect(s.stats()).toMatchObject({ sentEsp: n, sendErrors: 0 });
    });
  }

  it('entries are checked before anything is sent; an oversized one fails alone, counted', async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    const r = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    const ok = Buffer.from('0000100100000001cafecafe', 'hex');
    expect(() => s.sendEspBatch({ count: 2, packets: [ok, Buffer.alloc(3)], ports: [r.address().port, 1], addresses: ['127.0.0.1', '127.0.0.1'] })).toThrow(/option "packets\[1\]"/);
    expect(s.stats().sentEsp).toBe(0);
    const seen = next<[Buffer]>(r, 'esp');
    s.sendEspBatch({ count: 2, packets: [Buffer.alloc(70_000, 1), ok], ports: [r.address().port, r.address().port], addresses: ['127.0.0.1', '127.0.0.1'] });
    expect((await seen)[0].equals(ok)).toBe(true);
    expect(s.stats()).toMatchObject({ sentEsp: 1, sendErrors: 1 });
  });
});

describe('keepalive(): the socket keeps NAT mappings alive itself, on both backends', () => {
  const fake = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
  /** Real I/O under fake timers: wait by turning the loop, not by a timer. */
  const turn = async (n = 20) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  for (const backend of encap4 ? (['userland', 'kernel'] as const) : (['userland'] as const)) {
    it(`${backend}: one keepalive per interval in which nothing else went there; IKE to the peer skips it; stop ends it`, async () => {
      const s = await natt({ address: '127.0.0.1', port: 0, backend });
      const peer = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
      const kas: number[] = [];
      peer.on('keepalive', () => kas.push(Date.now()));
      fake();
      expect(s.keepalive(peer.address().port, '127.0.0.1')).toBe(true); // 20 s by default
      vi.advanceTimersByTime(19_999);
      await turn();
      expect(kas).toHaveLength(0);
      vi.advanceTimersByTime(1);
      await turn();
      expect(kas).toHaveLength(1);
      // IKE went to the peer during the next interval: that keepalive is skipped.
      vi.advanceTimersByTime(10_000);
      s.sendIke(Buffer.from('INFORMATIONAL'), peer.address().port, '127.0.0.1');
      vi.advanceTimersByTime(10_000);
      await turn();
      expect(kas).toHaveLength(1);
      expect(s.stats()).toMatchObject({ keepalivesSkipped: 1, keepalivePeers: 1 });
      vi.advanceTimersByTime(20_000);
      await turn();
      expect(kas).toHaveLength(2);
      expect(s.stopKeepalive(peer.address().port, '127.0.0.1')).toBe(true);
      expect(s.stopKeepalive(peer.address().port, '127.0.0.1')).toBe(false);
      vi.advanceTimersByTime(100_000);
      await turn();
      expect(kas).toHaveLength(2);
      expect(s.stats()).toMatchObject({ sentKeepalive: 2, keepalivePeers: 0 });
    });
  }

  it('a 30-day interval waits 30 days (long timers), then sends once; the timers never hold the process', async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    const peer = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    let n = 0;
    peer.on('keepalive', () => n++);
    fake();
    s.keepalive(peer.address().port, '127.0.0.1', 30 * 86400);
    vi.advanceTimersByTime(30 * 86400 * 1000 - 1000);
    await turn();
    expect(n).toBe(0);
    vi.advanceTimersByTime(1000);
    await turn();
    expect(n).toBe(1);
    // A child with only a keepalive timer pending exits at once (unref'd).
    ensureDist();
    const script = `const { createNattSocket } = require(${JSON.stringify(join(__dirname, '..', '..', 'dist'))});
      createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' }).then((s) => { s.keepalive(9, '127.0.0.1', 1); s.unref(); });`;
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 20_000 });
    expect(r.status).toBe(0);
  });

  it(`at most ${MAX_KEEPALIVE_PEERS} peers: the next is refused and counted; bad arguments name the option; close clears them`, async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    for (let p = 1; p <= MAX_KEEPALIVE_PEERS; p++) expect(s.keepalive(p, '127.0.0.1')).toBe(true);
    expect(s.keepalive(MAX_KEEPALIVE_PEERS + 1, '127.0.0.1')).toBe(false);
    expect(s.keepalive(1, '127.0.0.1', 5)).toBe(true); // a known peer may change its interval
    expect(s.stats()).toMatchObject({ keepalivePeers: MAX_KEEPALIVE_PEERS, keepaliveRefused: 1 });
    expect(() => s.keepalive(9, '127.0.0.1', 0)).toThrow(/option "seconds"/);
    expect(() => s.keepalive(9, '127.0.0.1', '20' as never)).toThrow(TypeError);
    expect(() => s.keepalive(0, '127.0.0.1')).toThrow(/option "port"/);
    await new Promise<void>((r) => s.close(() => r()));
    expect(s.stats().keepalivePeers).toBe(0);
    expect(() => s.keepalive(9, '127.0.0.1')).toThrow(/closed/);
  });
});

describe('without the addon (node:dgram fallback)', () => {
  it('no local addresses (localAddressKnown false, said), sending from one refused, no bypass (said); IKE still works', () => {
    ensureDist();
    const script = `const natt = require(${JSON.stringify(join(__dirname, '..', '..', 'dist'))});
      (async () => {
        const s = await natt.createNattSocket({ address: '127.0.0.1', port: 0 });
        const r = await natt.createNattSocket({ address: '127.0.0.1', port: 0 });
        const got = new Promise((res) => r.once('ike', (p, ri) => res([p.toString(), ri])));
        s.sendIke(Buffer.from('hi'), r.address().port, '127.0.0.1');
        const [text, ri] = await got;
        let refused = '';
        try { s.sendIke(Buffer.from('x'), 9, '127.0.0.1', { localAddress: '127.0.0.1' }); } catch (e) { refused = e.code; }
        console.log(JSON.stringify({ known: s.localAddressKnown, bypass: s.bypass, text, local: 'localAddress' in ri, refused }));
        s.close(); r.close();
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NATT_DISABLE_NATIVE: '1' } });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      known: false,
      bypass: { active: false, reason: 'the native addon is not loaded: node:dgram cannot set a per-socket IPsec policy' },
      text: 'hi',
      local: false,
      refused: 'ERR_NATT_UNSUPPORTED',
    });
  });
});
