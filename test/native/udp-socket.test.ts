// The addon's UdpSocket on loopback: batched receive into a JS slab with per-datagram records (source, local address,
// truncation), sendmsg from a chosen source, sendmmsg from a slab and descriptors, errors in Node's shape, workers.

import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { loadNative, nativeStatus, openEncapSocket, openUdpSocket } from '../../src/native/binding';
import { UDP_FLAG_LOCAL_KNOWN, UDP_FLAG_TRUNCATED, UDP_RECORD_BYTES, type NativeUdpSocket } from '../../src/native/types';
import { NattSystemError } from '../../src/errors';

const native = loadNative();
const skipWhy = native ? '' : ` (skipped: native addon not loaded: ${nativeStatus().reason})`;
const W = UDP_RECORD_BYTES / 4;

interface Got {
  data: Buffer;
  len: number;
  flags: number;
  family: number;
  port: number;
  source: Buffer;
  local: Buffer;
}

/** A UdpSocket on a fresh fd, with everything it receives collected (and the wake counts). */
function open(family: 4 | 6, address: string, slots = 8, slotSize = 2048) {
  const fd = openEncapSocket(family, address, 0, 0);
  const slab = new Uint8Array(slots * slotSize);
  const meta = new Int32Array(slots * W);
  const metaBytes = new Uint8Array(meta.buffer);
  const got: Got[] = [];
  const wakes: number[] = [];
  const errors: Error[] = [];
  let writable = 0;
  const sock = openUdpSocket(
    fd,
    family,
    slab,
    slotSize,
    meta,
    (count) => {
      wakes.push(count);
      for (let i = 0; i < count; i++) {
        const r = i * W;
        const alen = meta[r + 2] === 4 ? 4 : 16;
        got.push({
          data: Buffer.from(slab.subarray(i * slotSize, i * slotSize + meta[r])),
          len: meta[r],
          flags: meta[r + 1],
          family: meta[r + 2],
          port: meta[r + 3],
          source: Buffer.from(metaBytes.subarray(r * 4 + 32, r * 4 + 32 + alen)),
          local: Buffer.from(metaBytes.subarray(r * 4 + 48, r * 4 + 48 + alen)),
        });
      }
    },
    (e) => errors.push(e),
    () => writable++,
  );
  const port = native!.getSockName(fd).port;
  return { sock, fd, port, got, wakes, errors, writable: () => writable };
}

const sockets: { close(): void }[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

function peer(type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  sockets.push(s);
  return new Promise((r) => s.bind(0, address, () => r(s)));
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const v4 = (a: string) => Buffer.from(a.split('.').map(Number));

describe.skipIf(!native)(`native UdpSocket: receive${skipWhy}`, () => {
  it('a burst arrives in batches (one call per wake, never more than the slots), whole, with source and local address', async () => {
    const u = open(4, '0.0.0.0', 8);
    sockets.push(u.sock);
    expect(u.sock.localAddressKnown).toBe(true);
    const p = await peer('udp4', '127.0.0.1');
    const n = 50;
    for (let i = 0; i < n; i++) p.send(Buffer.from(`datagram ${i}`), u.port, '127.0.0.2'); // 127/8 is all local
    await until(() => u.got.length === n);
    expect(u.got.map((g) => g.data.toString())).toEqual(Array.from({ length: n }, (_, i) => `datagram ${i}`));
    expect(Math.max(...u.wakes)).toBeLessThanOrEqual(8);
    expect(u.wakes.reduce((a, b) => a + b, 0)).toBe(n);
    expect(u.wakes.length).toBeLessThan(n); // batched: fewer calls than datagrams
    for (const g of u.got) {
      expect(g).toMatchObject({ family: 4, port: p.address().port, flags: UDP_FLAG_LOCAL_KNOWN });
      expect(g.source.equals(v4('127.0.0.1'))).toBe(true);
      expect(g.local.equals(v4('127.0.0.2'))).toBe(true); // the address it was sent to, not the bound 0.0.0.0
    }
  });

  it('IPv6: the local address is reported (IPV6_RECVPKTINFO) on a wildcard-bound socket', async () => {
    const u = open(6, '::');
    sockets.push(u.sock);
    const p = await peer('udp6', '::1');
    p.send(Buffer.from('six'), u.port, '::1');
    await until(() => u.got.length === 1);
    const loop = Buffer.alloc(16);
    loop[15] = 1;
    expect(u.got[0]).toMatchObject({ family: 6, port: p.address().port, len: 3, flags: UDP_FLAG_LOCAL_KNOWN });
    expect(u.got[0].source.equals(loop)).toBe(true);
    expect(u.got[0].local.equals(loop)).toBe(true);
  });

  it('a datagram larger than its slot is flagged truncated (the stored bytes are the slot), never spills', async () => {
    const u = open(4, '127.0.0.1', 2, 16);
    sockets.push(u.sock);
    const p = await peer('udp4', '127.0.0.1');
    p.send(Buffer.alloc(40, 0xab), u.port, '127.0.0.1');
    p.send(Buffer.from('short'), u.port, '127.0.0.1');
    await until(() => u.got.length === 2);
    expect(u.got[0]).toMatchObject({ len: 16, flags: UDP_FLAG_TRUNCATED | UDP_FLAG_LOCAL_KNOWN });
    expect(u.got[1]).toMatchObject({ len: 5, flags: UDP_FLAG_LOCAL_KNOWN });
    expect(u.got[1].data.toString()).toBe('short');
  });

  it('bad constructor arguments are TypeErrors and leave the fd to the caller', () => {
    const fd = openEncapSocket(4, '127.0.0.1', 0, 0);
    try {
      const C = native!.UdpSocket;
      const f = () => undefined;
      expect(() => new C(fd, 4, new Uint8Array(10), 100, new Int32Array(16), f, f, f)).toThrow(/slab/);
      expect(() => new C(fd, 5 as never, new Uint8Array(1024), 64, new Int32Array(16), f, f, f)).toThrow(TypeError);
      expect(() => new C(fd, 4, new Uint8Array(1024), 64, new Int32Array(4), f, f, f)).toThrow(/meta/);
      expect(native!.getSockName(fd).port).toBeGreaterThan(0); // still open
    } finally {
      native!.closeFd(fd);
    }
  });
});

describe.skipIf(!native)(`native UdpSocket: send${skipWhy}`, () => {
  it('send(marker, payload) is one datagram; a chosen source address (IP_PKTINFO) is the one the peer sees', async () => {
    const u = open(4, '0.0.0.0');
    sockets.push(u.sock);
    const p = await peer('udp4', '127.0.0.1');
    const seen = new Promise<[Buffer, dgram.RemoteInfo]>((r) => p.once('message', (m, ri) => r([m, ri])));
    const n = u.sock.send(Buffer.alloc(4), Buffer.from('ike'), 4, v4('127.0.0.1'), p.address().port, 0, v4('127.0.0.3'));
    expect(n).toBe(7);
    const [m, ri] = await seen;
    expect(m.toString('hex')).toBe('00000000' + Buffer.from('ike').toString('hex'));
    expect(ri.address).toBe('127.0.0.3');
    expect(ri.port).toBe(u.port);
  });

  it('IPv6: send from a chosen source (IPV6_PKTINFO)', async () => {
    const u = open(6, '::');
    sockets.push(u.sock);
    const p = await peer('udp6', '::1');
    const seen = new Promise<dgram.RemoteInfo>((r) => p.once('message', (_m, ri) => r(ri)));
    const loop = Buffer.alloc(16);
    loop[15] = 1;
    expect(u.sock.send(Buffer.from('x'), null, 6, loop, p.address().port, 0, loop)).toBe(1);
    expect((await seen).address).toBe('::1');
  });

  it('errors are Node-shaped NattSystemErrors with advice (EMSGSIZE, a source not configured here), never a crash', async () => {
    const u = open(4, '0.0.0.0');
    sockets.push(u.sock);
    let e: unknown;
    try {
      u.sock.send(Buffer.alloc(70_000), null, 4, v4('127.0.0.1'), 9, 0, null);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(NattSystemError);
    expect(e).toMatchObject({ code: 'EMSGSIZE', syscall: 'sendmsg' });
    expect((e as NattSystemError).errno).toBeLessThan(0);
    expect((e as Error).message).toMatch(/larger than UDP allows/);
    expect(() => u.sock.send(Buffer.from('x'), null, 4, v4('127.0.0.1'), 9, 0, v4('192.0.2.77'))).toThrow(
      expect.objectContaining({ syscall: 'sendmsg' }),
    );
    expect(() => u.sock.send(Buffer.from('x'), null, 6, v4('127.0.0.1'), 9, 0, null)).toThrow(TypeError);
    expect(() => u.sock.send(Buffer.from('x'), null, 4, Buffer.alloc(16), 9, 0, null)).toThrow(TypeError);
  });

  it('sendBatch: many datagrams from one slab in few system calls; a bad entry fails alone with its errno', async () => {
    const u = open(4, '127.0.0.1');
    sockets.push(u.sock);
    const a = await peer('udp4', '127.0.0.1');
    const b = await peer('udp4', '127.0.0.1');
    const n = 150; // more than one sendmmsg chunk (64)
    const slab = new Uint8Array(n * 32);
    const desc = new Int32Array((n + 2) * W);
    const bytes = new Uint8Array(desc.buffer);
    for (let i = 0; i < n; i++) {
      const text = Buffer.from(`batch ${i}`);
      slab.set(text, i * 32);
      const r = i * W;
      desc[r] = i * 32;
      desc[r + 1] = text.length;
      desc[r + 2] = 4;
      desc[r + 3] = (i % 2 ? b : a).address().port;
      bytes.set(v4('127.0.0.1'), r * 4 + 32);
    }
    // entry n: reaches past the end of the slab
    desc[n * W] = slab.length - 2;
    desc[n * W + 1] = 10;
    desc[n * W + 2] = 4;
    desc[n * W + 3] = a.address().port;
    bytes.set(v4('127.0.0.1'), n * W * 4 + 32);
    const gotA: string[] = [];
    const gotB: string[] = [];
    a.on('message', (m) => gotA.push(m.toString()));
    b.on('message', (m) => gotB.push(m.toString()));
    const done = u.sock.sendBatch(slab, desc, 0, n + 1);
    expect(done).toBe(n + 1);
    for (let i = 0; i < n; i++) expect(desc[i * W + 6]).toBe(`batch ${i}`.length);
    expect(desc[n * W + 6]).toBeLessThan(0); // -EINVAL
    await until(() => gotA.length + gotB.length === n);
    expect(gotA).toEqual(Array.from({ length: n / 2 }, (_, i) => `batch ${2 * i}`));
    expect(gotB).toEqual(Array.from({ length: n / 2 }, (_, i) => `batch ${2 * i + 1}`));
    expect(() => u.sock.sendBatch(slab, desc, 0, n + 10)).toThrow(TypeError); // more records than desc holds
  });

  it('close() is idempotent; send after close is EBADF in Node shape; ref/unref do not throw', () => {
    const u = open(4, '127.0.0.1');
    u.sock.ref();
    u.sock.unref();
    u.sock.close();
    u.sock.close();
    expect(() => u.sock.send(Buffer.from('x'), null, 4, v4('127.0.0.1'), 9, 0, null)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'sendmsg' }));
    expect(() => u.sock.wantWritable()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('wantWritable(): onWritable is called once the socket can take a datagram', async () => {
    const u = open(4, '127.0.0.1');
    sockets.push(u.sock);
    u.sock.wantWritable();
    await until(() => u.writable() === 1);
    await new Promise((r) => setTimeout(r, 30));
    expect(u.writable()).toBe(1); // once, not on every loop turn
  });
});

describe.skipIf(!native)(`native UdpSocket in workers${skipWhy}`, () => {
  it('receives in a worker thread, and a worker torn down with its socket polling exits cleanly', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.file);
      const fd = addon.openEncapSocket(4, '127.0.0.1', 0, 0);
      const slab = new Uint8Array(4 * 2048), meta = new Int32Array(4 * 16);
      const s = new addon.UdpSocket(fd, 4, slab, 2048, meta, (n) => {
        parentPort.postMessage(Buffer.from(slab.subarray(0, meta[0])).toString());
      }, () => {}, () => {});
      globalThis.keep = s;
      const port = addon.getSockName(fd).port;
      s.send(Buffer.from('from the worker'), null, 4, Buffer.from([127, 0, 0, 1]), port, 0, null);`;
    const w = new Worker(code, { eval: true, workerData: { file: path.resolve(nativeStatus().path!) } });
    const text = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(text).toBe('from the worker');
    expect(await w.terminate()).toBe(1);
  });
});

export type { NativeUdpSocket };
