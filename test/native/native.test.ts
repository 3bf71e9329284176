// The addon itself: constants, the kernel message socket on netlink (XFRM and ROUTE), PF_KEY's error, probe, workers.

import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNative, nativeStatus, openMessageSocket, requireNative } from '../../src/native/binding';
import { NattSystemError } from '../../src/errors';

const native = loadNative();
const skipWhy = native ? '' : ` (skipped: native addon not loaded: ${nativeStatus().reason})`;
const isRoot = process.getuid?.() === 0;

// struct nlmsghdr (16 bytes, host order) followed by a body.
function nlmsg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const b = Buffer.alloc(16 + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  body.copy(b, 16);
  return b;
}
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_DONE = 3;

/** Opens a netlink socket, sends one request, collects messages until `until` says stop. */
function exchange(protocol: number, req: Buffer, until: (m: Buffer, all: Buffer[]) => boolean): Promise<Buffer[]> {
  const c = native!.constants;
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    const s = openMessageSocket(
      c.AF_NETLINK,
      c.SOCK_RAW,
      protocol,
      (m) => {
        got.push(m);
        if (until(m, got)) {
          s.close();
          resolve(got);
        }
      },
      (e) => {
        s.close();
        reject(e);
      },
    );
    const sa = Buffer.alloc(12);
    sa.writeUInt16LE(c.AF_NETLINK, 0); // sockaddr_nl: family, pad, pid 0 (kernel picks), groups 0
    s.bind(sa);
    s.setsockopt(c.SOL_SOCKET, c.SO_RCVBUF, 1 << 20);
    expect(s.send(req)).toBe(req.length);
  });
}

describe.skipIf(!native || process.platform !== 'linux')(`MessageSocket on netlink${skipWhy}`, () => {
  it('NETLINK_ROUTE: a link dump is answered with whole messages ending in NLMSG_DONE', async () => {
    const req = nlmsg(18 /* RTM_GETLINK */, NLM_F_REQUEST | NLM_F_DUMP, 7, Buffer.alloc(16) /* ifinfomsg */);
    const msgs = await exchange(0 /* NETLINK_ROUTE */, req, (m) => {
      // a datagram may hold several nlmsghdrs: look for DONE in any of them
      for (let off = 0; off + 16 <= m.length; ) {
        if (m.readUInt16LE(off + 4) === NLMSG_DONE) return true;
        off += (m.readUInt32LE(off) + 3) & ~3 || m.length;
      }
      return false;
    });
    expect(msgs.length).toBeGreaterThan(0);
    for (const m of msgs) expect(m.readUInt32LE(8)).toBe(7); // every part carries our seq
  });

  it.skipIf(!isRoot)(`NETLINK_XFRM: XFRM_MSG_GETSADINFO is answered with XFRM_MSG_NEWSADINFO${isRoot ? '' : ' (skipped: needs root)'}`, async () => {
    const req = nlmsg(35 /* XFRM_MSG_GETSADINFO */, NLM_F_REQUEST, 42, Buffer.alloc(4));
    const [reply] = await exchange(native!.constants.NETLINK_XFRM, req, () => true);
    expect(reply.readUInt16LE(4)).toBe(34); // XFRM_MSG_NEWSADINFO
    expect(reply.readUInt32LE(8)).toBe(42);
  });

  it('more queued datagrams than one wake delivers (64) all arrive, each whole and in order', async () => {
    const c = native!.constants;
    const N = 150;
    const seqs: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = openMessageSocket(
        c.AF_NETLINK,
        c.SOCK_RAW,
        0,
        (m) => {
          expect(m.readUInt32LE(0)).toBe(m.length); // one whole nlmsgerr per datagram
          seqs.push(m.readUInt32LE(8));
          if (seqs.length === N) {
            s.close();
            resolve();
          }
        },
        reject,
      );
      s.setsockopt(c.SOL_SOCKET, c.SO_RCVBUF, 1 << 20);
      const body = Buffer.alloc(16); // ifinfomsg asking for an interface index that does not exist: a short error reply
      body.writeInt32LE(0x7ffffff0, 4);
      for (let i = 1; i <= N; i++) s.send(nlmsg(18 /* RTM_GETLINK */, NLM_F_REQUEST, i, body));
    });
    expect(seqs).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  });

  it('close() is idempotent; send after close is EBADF in Node shape; ref/unref do not throw', () => {
    const c = native!.constants;
    const s = openMessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, () => {}, () => {});
    expect(s.fd).toBeGreaterThan(2);
    s.unref();
    s.ref();
    s.close();
    s.close();
    expect(s.fd).toBe(-1);
    let err: unknown;
    try {
      s.send(Buffer.alloc(16));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NattSystemError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'send' });
  });

  it('a bad sockaddr gives a Node-style bind error; bad arguments give a TypeError', () => {
    const c = native!.constants;
    const s = openMessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, () => {}, () => {});
    try {
      expect(() => s.bind(Buffer.alloc(2))).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'bind' }));
      expect(() => s.send('x' as never)).toThrow(TypeError);
      expect(() => new native!.MessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, 1 as never, () => {})).toThrow(TypeError);
    } finally {
      s.close();
    }
  });

  it('works from a worker thread (per-env instance data, the worker loop)', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.file);
      const c = addon.constants;
      const s = new addon.MessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, (m) => { s.close(); parentPort.postMessage(m.readUInt32LE(8)); }, (e) => parentPort.postMessage(String(e)));
      const sa = Buffer.alloc(12); sa.writeUInt16LE(c.AF_NETLINK, 0); s.bind(sa);
      const b = Buffer.alloc(32); b.writeUInt32LE(32, 0); b.writeUInt16LE(18, 4); b.writeUInt16LE(0x301, 6); b.writeUInt32LE(99, 8);
      s.send(b);`;
    const file = nativeStatus().path!;
    const w = new Worker(code, { eval: true, workerData: { file: path.resolve(file) } });
    const seq = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(seq).toBe(99);
    await w.terminate();
  });

  it('a worker torn down with its socket still open and polling exits cleanly (env cleanup closes it)', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.file);
      const c = addon.constants;
      globalThis.keep = new addon.MessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, () => {}, () => {});
      parentPort.postMessage(globalThis.keep.fd);`;
    const w = new Worker(code, { eval: true, workerData: { file: path.resolve(nativeStatus().path!) } });
    const fd = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(fd).toBeGreaterThan(2);
    expect(await w.terminate()).toBe(1);
  });

  it('a worker whose sockets were dropped (some collected, some not yet) and that then exits, exits cleanly', async () => {
    // Sockets are not kept alive by themselves (D17): collected ones are closed by their destructor; the rest are
    // closed at env teardown, through the same worker-safe PollHandle path.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      require('node:v8').setFlagsFromString('--expose-gc');
      const collect = require('node:vm').runInNewContext('gc');
      const fs = require('node:fs');
      const addon = require(workerData.file);
      const c = addon.constants;
      const open = () => { for (let i = 0; i < 40; i++) new addon.MessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, () => {}, () => {}); };
      const base = fs.readdirSync('/proc/self/fd').length;
      open();
      const opened = fs.readdirSync('/proc/self/fd').length;
      collect();
      setTimeout(() => {
        collect();
        setTimeout(() => {
          const after = fs.readdirSync('/proc/self/fd').length;
          open(); // dropped, not collected yet: the worker exits with them pending
          parentPort.postMessage({ base, opened, after });
        }, 20);
      }, 20);`;
    for (let round = 0; round < 3; round++) {
      const w = new Worker(code, { eval: true, workerData: { file: path.resolve(nativeStatus().path!) } });
      const r = await new Promise<{ base: number; opened: number; after: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      expect(r.opened).toBe(r.base + 40);
      expect(r.after).toBe(r.base);
      expect(await w.terminate()).toBe(1);
    }
  });

  it('a throwing onMessage becomes an uncaughtException, as in any Node callback', () => {
    const script = `
      const addon = require(process.argv[1]);
      const c = addon.constants;
      process.on('uncaughtException', (e) => { console.log('caught:' + e.message); process.exit(0); });
      const s = new addon.MessageSocket(c.AF_NETLINK, c.SOCK_RAW, 0, () => { throw new Error('boom'); }, () => {});
      const sa = Buffer.alloc(12); sa.writeUInt16LE(c.AF_NETLINK, 0); s.bind(sa);
      const b = Buffer.alloc(32); b.writeUInt32LE(32, 0); b.writeUInt16LE(18, 4); b.writeUInt16LE(0x301, 6);
      s.send(b);`;
    const r = spawnSync(process.execPath, ['-e', script, path.resolve(nativeStatus().path!)], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stdout.trim()).toBe('caught:boom');
    expect(r.status).toBe(0);
  });
});

describe.skipIf(!native)(`PF_KEY through the message socket${skipWhy}`, () => {
  const pfkey = native?.probe().pfkey;
  it(pfkey?.ok ? 'opens here (this kernel has PF_KEY)' : 'fails here with EAFNOSUPPORT in Node shape, naming CONFIG_NET_KEY', () => {
    const c = native!.constants;
    let sock: ReturnType<typeof openMessageSocket> | undefined;
    let err: unknown;
    try {
      sock = openMessageSocket(c.AF_KEY, c.SOCK_RAW, c.PF_KEY_V2, () => {}, () => {});
    } catch (e) {
      err = e;
    }
    if (pfkey!.ok) {
      expect(sock!.fd).toBeGreaterThan(2);
      sock!.close();
      return;
    }
    expect(err).toBeInstanceOf(NattSystemError);
    expect(err).toMatchObject({ code: 'EAFNOSUPPORT', syscall: 'socket' });
    expect((err as NattSystemError).errno).toBeLessThan(0);
    expect((err as Error).message).toMatch(/CONFIG_NET_KEY/);
    expect((err as Error).message).toMatch(/modprobe af_key/);
  });
});

describe.skipIf(!native)(`addon constants and probe facts${skipWhy}`, () => {
  it('constants are this OS’s numbers', () => {
    const c = requireNative().constants;
    expect(c.IPPROTO_UDP).toBe(17);
    expect(c.UDP_ENCAP_ESPINUDP).toBe(2);
    expect(c.UDP_ENCAP_ESPINUDP_NON_IKE).toBe(1);
    if (process.platform === 'linux') {
      expect(c).toMatchObject({ UDP_ENCAP: 100, AF_KEY: 15, AF_NETLINK: 16, PF_KEY_V2: 2, NETLINK_XFRM: 6 });
    }
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('probe() reports each facility as ok or with an errno name', () => {
    const p = requireNative().probe();
    for (const f of Object.values(p)) {
      if (f.ok) expect(f.code).toBeUndefined();
      else expect(f.code).toMatch(/^E[A-Z]+$/), expect(f.errno).toBeLessThan(0);
    }
  });
});
