// Runs inside a test's network namespace (ip netns exec): TUN devices, the rtnetlink client and UDP sockets, driven by
// one JSON command per stdin line, one JSON answer per stdout line. Bundled by esbuild (see harness.ts).

import * as dgram from 'node:dgram';
import * as readline from 'node:readline';
import { createTun, type Tun } from '../../src/tun';
import { Rtnetlink } from '../../src/rtnetlink';
import { buildUdpPacket } from '../../src/ip/packet';
import { loadNative, openTun } from '../../src/native/binding';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const tuns = new Map<number, Tun>();
let nextId = 1;
/** Per TUN: UDP packets seen (hex), and the count of every batch delivered. */
const seen = new Map<number, { packets: string[]; batches: number[]; events: string[] }>();
const sockets = new Map<number, { sock: dgram.Socket; got: { data: string; address: string; port: number }[] }>();
let rt: Rtnetlink | undefined;

/** An IP packet carrying UDP (skips the ICMPv6 router solicitations and MLD reports the kernel sends on its own). */
function isUdp(p: Uint8Array): boolean {
  const v = p[0] >> 4;
  return (v === 4 && p[9] === 17) || (v === 6 && p[6] === 17);
}

function tunOf(id: unknown): Tun {
  const t = tuns.get(id as number);
  if (!t) throw new Error(`no tun ${String(id)}`);
  return t;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

const commands: Record<string, (a: any) => unknown> = {
  async create(a: { options: any; watch?: 'batch' | 'event' | 'none' }) {
    const tun = await createTun(a.options);
    const id = nextId++;
    tuns.set(id, tun);
    const s = { packets: [] as string[], batches: [] as number[], events: [] as string[] };
    seen.set(id, s);
    if (a.watch !== 'none' && a.watch !== 'event') {
      tun.onPackets((slab, lengths, count, slot) => {
        s.batches.push(count);
        for (let i = 0; i < count; i++) {
          const p = slab.subarray(i * slot, i * slot + lengths[i]);
          if (isUdp(p)) s.packets.push(Buffer.from(p).toString('hex'));
        }
      });
    }
    if (a.watch === 'event') tun.on('packet', (p) => isUdp(p) && s.events.push(p.toString('hex')));
    tun.on('error', () => {});
    return { id, name: tun.name, index: tun.index, mtu: tun.mtu, slotSize: tun.slotSize, slots: tun.slots };
  },
  seen: (a: { id: number }) => seen.get(a.id),
  clearSeen: (a: { id: number }) => {
    const s = seen.get(a.id)!;
    s.packets.length = s.batches.length = s.events.length = 0;
    return true;
  },
  stats: (a: { id: number }) => tunOf(a.id).stats(),
  pause: (a: { id: number }) => (tunOf(a.id).pause(), true),
  resume: (a: { id: number }) => (tunOf(a.id).resume(), true),
  async close(a: { id: number }) {
    const t = tunOf(a.id);
    await t.close();
    const again = t.close(); // idempotent: the same promise
    return { same: again === t.close(), closed: t.closed, writeAfter: t.write(Buffer.alloc(20)), stats: t.stats() as unknown as Json };
  },
  write(a: { id: number; hex: string }) {
    return tunOf(a.id).write(Buffer.from(a.hex, 'hex'));
  },
  /** UDP datagrams built here (src → dst) and written into the TUN with one writeBatch; `garbage` adds a non-IP one. */
  writeUdp(a: { id: number; src: string; dst: string; dport: number; texts: string[]; garbageAt?: number; size?: number }) {
    const packets = a.texts.map((t) => buildUdpPacket(a.src, 40000, a.dst, a.dport, Buffer.from(t.padEnd(a.size ?? 0, '.'))));
    if (a.garbageAt !== undefined) packets.splice(a.garbageAt, 0, Buffer.from('0123456789abcdef0123'));
    const slab = Buffer.concat(packets);
    const offsets = new Uint32Array(packets.length);
    const lengths = new Uint32Array(packets.length);
    let o = 0;
    packets.forEach((p, i) => {
      offsets[i] = o;
      lengths[i] = p.length;
      o += p.length;
    });
    return tunOf(a.id).writeBatch(slab, offsets, lengths);
  },
  /** Write `count` UDP packets of `size` payload bytes one by one as fast as possible: how many write() accepted. */
  flood(a: { id: number; count: number; size: number; src: string; dst: string }) {
    const t = tunOf(a.id);
    const pkt = buildUdpPacket(a.src, 40000, a.dst, 9, Buffer.alloc(a.size));
    let accepted = 0;
    for (let i = 0; i < a.count; i++) if (t.write(pkt)) accepted++;
    return { accepted, stats: t.stats() as unknown as Json };
  },
  async udpListen(a: { family: 4 | 6; address: string; port?: number }) {
    const sock = dgram.createSocket(a.family === 4 ? 'udp4' : 'udp6');
    const got: { data: string; address: string; port: number }[] = [];
    sock.on('message', (m, r) => got.push({ data: m.toString(), address: r.address, port: r.port }));
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(a.port ?? 0, a.address, () => resolve());
    });
    const id = nextId++;
    sockets.set(id, { sock, got });
    return { id, port: sock.address().port };
  },
  udpReceived: (a: { id: number }) => sockets.get(a.id)!.got,
  async udpSend(a: { family: 4 | 6; address: string; port: number; texts: string[]; size?: number }) {
    const sock = dgram.createSocket(a.family === 4 ? 'udp4' : 'udp6');
    for (const t of a.texts) {
      await new Promise<void>((resolve, reject) => sock.send(t.padEnd(a.size ?? 0, '.'), a.port, a.address, (e) => (e ? reject(e) : resolve())));
    }
    sock.close();
    return true;
  },
  /** A method of the rtnetlink client; dumps are collected into arrays. */
  async rt(a: { method: string; args: any[] }) {
    rt ??= await Rtnetlink.open();
    const r = (rt as any)[a.method](...a.args);
    if (r && typeof r[Symbol.asyncIterator] === 'function') return collect(r);
    return await r;
  },
  rtStats: () => rt?.stats() ?? null,
  /** The addon's TUN object used directly: argument checks, errno results, a detached slab, close. */
  async nativeChecks() {
    const c = loadNative()!.constants;
    const r: Record<string, Json> = {};
    const shape = (f: () => unknown): Json => {
      try {
        return { returned: (f() ?? null) as Json };
      } catch (e) {
        return errorShape(e);
      }
    };
    const errors: Json[] = [];
    const dev = openTun('', c.IFF_TUN | c.IFF_NO_PI, () => {}, () => {}, (e) => errors.push(errorShape(e)));
    r.name = dev.name;
    r.badCtor = shape(() => new (loadNative()!.Tun)(1 as never, 0, () => {}, () => {}, () => {}));
    r.badName = shape(() => openTun('x'.repeat(16), c.IFF_TUN | c.IFF_NO_PI, () => {}, () => {}, () => {}));
    r.slabType = shape(() => dev.setSlab(new Uint16Array(8) as never, 4, new Uint32Array(1)));
    r.slotZero = shape(() => dev.setSlab(new Uint8Array(8), 0, new Uint32Array(1)));
    r.slotTooBig = shape(() => dev.setSlab(new Uint8Array(8), 16, new Uint32Array(1)));
    r.writeType = shape(() => dev.write('x' as never));
    r.writeRange = shape(() => dev.write(Buffer.alloc(10), 5, 10));
    const pkt = buildUdpPacket('10.70.2.1', 1, '10.70.1.1', 9, Buffer.from('x'));
    r.writeDown = shape(() => dev.write(pkt)); // the link is down: EIO
    rt ??= await Rtnetlink.open();
    await rt.setLink(dev.name, { up: true });
    r.writeGarbage = shape(() => dev.write(Buffer.alloc(20))); // IP version 0
    const status = new Int32Array(3).fill(-1);
    r.batch = shape(() => dev.writeBatch(pkt, Uint32Array.of(0, 0, 4), Uint32Array.of(pkt.length, 1000, pkt.length - 4), 0, 3, status));
    r.batchStatus = [...status];
    r.batchRange = shape(() => dev.writeBatch(pkt, new Uint32Array(2), new Uint32Array(2), 1, 2, new Int32Array(2)));
    r.sndbufZero = shape(() => dev.setSndbuf(0));
    r.slots = shape(() => dev.setSlab(new Uint8Array(10 * 100), 100, new Uint32Array(50)));
    // A slab whose ArrayBuffer is transferred away: the next wake finds no memory, reports EFAULT and stops reading.
    await rt.addAddress({ dev: dev.name, address: '10.70.1.1/32' });
    await rt.addRoute({ dst: '10.70.2.0/24', dev: dev.name });
    const ab = new ArrayBuffer(4 * 1500);
    dev.setSlab(new Uint8Array(ab), 1500, new Uint32Array(4));
    structuredClone(ab, { transfer: [ab] });
    await commands.udpSend({ family: 4, address: '10.70.2.1', port: 9, texts: ['lost'] });
    await new Promise((res) => setTimeout(res, 100));
    r.detachedErrors = errors;
    dev.ref();
    dev.unref();
    dev.close();
    dev.close();
    r.afterClose = { fd: dev.fd, write: dev.write(pkt), resume: shape(() => dev.resume()), wait: shape(() => dev.waitWritable()) };
    return r;
  },
  async exit() {
    for (const t of tuns.values()) await t.close();
    for (const s of sockets.values()) s.sock.close();
    rt?.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};

function errorShape(e: unknown): Json {
  const x = e as { name?: string; code?: string; errno?: number; syscall?: string; message?: string; constructor?: { name: string } };
  const out: Record<string, Json> = { message: String(x?.message ?? e), name: x?.constructor?.name ?? x?.name ?? 'Error' };
  for (const k of ['code', 'errno', 'syscall'] as const) if (x?.[k] !== undefined) out[k] = x[k] as Json;
  return out;
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let req: { n: number; cmd: string; args: any };
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  Promise.resolve()
    .then(() => {
      const fn = commands[req.cmd];
      if (!fn) throw new Error(`unknown command ${req.cmd}`);
      return fn(req.args ?? {});
    })
    .then(
      (value) => process.stdout.write(`${JSON.stringify({ n: req.n, ok: true, value: value ?? null })}\n`),
      (e) => process.stdout.write(`${JSON.stringify({ n: req.n, ok: false, error: errorShape(e) })}\n`),
    );
});
