// The control server and client over real Unix sockets: the protocol's rules, errors as the backend threw them,
// CallOptions across the socket, the daemon's own methods and events, keys, and the socket file's life.

import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonSadb } from '../../src/control/client';
import { serveControl } from '../../src/control/server';
import { chooseSadbBackend, openSadb } from '../../src/open';
import { KernelReplyError, NattError, NattSystemError, NattTimeoutError } from '../../src/errors';
import { UserlandSadb } from '../../src/userland/sadb';
import type { SecurityAssociation } from '../../src/sadb/types';
import { cbcSa, controlSkip, sleep, startDaemon, until, type Daemon } from './helpers';
import { RawClient, frame } from './raw';

const A = '192.0.2.1';
const B = '192.0.2.2';

describe.skipIf(controlSkip !== undefined)(`control socket${controlSkip ? ` (skipped: ${controlSkip})` : ''}`, () => {
  let d: Daemon | undefined;
  const clients: Array<{ close(): unknown }> = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await d?.stop();
    d = undefined;
  });
  const open = async (o: Record<string, unknown> = {}): Promise<DaemonSadb> => {
    const c = await openSadb({ backend: 'daemon', path: d!.path, ...o });
    clients.push(c);
    return c;
  };
  const raw = async (): Promise<RawClient> => {
    const r = await RawClient.connect(d!.path);
    clients.push(r);
    return r;
  };

  describe('the socket file', () => {
    it('is made 0600 in a directory made 0700, and removed on close', async () => {
      d = await startDaemon({}, 'run/natt');
      expect(fs.statSync(d.path).mode & 0o777).toBe(0o600);
      expect(fs.statSync(path.dirname(d.path)).mode & 0o777).toBe(0o700);
      expect(fs.statSync(d.path).isSocket()).toBe(true);
      await d.server.close();
      expect(fs.existsSync(d.path)).toBe(false);
    });

    it("a dead daemon's socket is replaced; a live one is EADDRINUSE with advice; a file that is not a socket is refused", async () => {
      d = await startDaemon();
      const db = new UserlandSadb();
      await expect(serveControl(db, { path: d.path })).rejects.toMatchObject({
        name: 'NattSystemError',
        code: 'EADDRINUSE',
        errno: -98,
        message: expect.stringMatching(/already serving this control socket/),
      });
      // A stale socket: a daemon bound it and was SIGKILLed, so nobody unlinked it.
      const stale = path.join(d.dir, 'stale.sock');
      const killed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      expect(killed.signal).toBe('SIGKILL');
      expect(fs.statSync(stale).isSocket()).toBe(true);
      const again = await serveControl(db, { path: stale });
      const c = await DaemonSadb.open({ path: stale });
      expect(c.daemon.backend).toBe('userland');
      await c.close();
      await again.close();
      const file = path.join(d.dir, 'plain');
      fs.writeFileSync(file, 'x');
      await expect(serveControl(db, { path: file })).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringMatching(/not a socket/) });
      expect(fs.readFileSync(file, 'utf8')).toBe('x');
      await db.close();
    });

    it('no daemon at the path: ENOENT with advice', async () => {
      d = await startDaemon();
      await expect(DaemonSadb.open({ path: `${d.dir}/none.sock` })).rejects.toMatchObject({
        name: 'NattSystemError',
        code: 'ENOENT',
        syscall: 'connect',
        message: expect.stringMatching(/no natt daemon is listening/),
      });
    });

    it('options are checked at once, naming the option', async () => {
      const db = new UserlandSadb();
      await expect(serveControl(db, { path: 'relative.sock' })).rejects.toThrow(/option "path" must be an absolute path/);
      await expect(serveControl(db, { path: `/tmp/${'x'.repeat(120)}` })).rejects.toThrow(/option "path" must be a path of at most 107 bytes/);
      await expect(serveControl(db, { mode: 0o1777 })).rejects.toThrow(/option "mode"/);
      await expect(serveControl(db, { maxFrame: 10 })).rejects.toThrow(/option "maxFrame"/);
      await expect(serveControl(db, { colour: 'red' } as never)).rejects.toThrow(/unknown option "colour"/);
      await expect(serveControl(db, { methods: { add: { handler: () => 1 } } })).rejects.toThrow(/option "methods.add" must be a name that is not a Sadb method/);
      await expect(serveControl(db, { methods: { x: { handler: 1 } } } as never)).rejects.toThrow(/option "methods.x.handler" must be a function/);
      await expect(serveControl(db, { events: ['add'] })).rejects.toThrow(/option "events\[0\]"/);
      await expect(serveControl(db, { events: ['close'] })).rejects.toThrow(/reserved/);
      await expect(serveControl({} as never)).rejects.toThrow(/option "sadb"/);
      await expect(openSadb({ backend: 'userland', path: '/tmp/x.sock' })).rejects.toThrow(/option "path" must be absent unless backend is 'daemon'/);
      await expect(DaemonSadb.open({ timeout: -1 })).rejects.toThrow(/option "timeout"/);
      expect(chooseSadbBackend().backend).not.toBe('daemon'); // 'auto' never picks it
      await db.close();
    });
  });

  describe('the protocol', () => {
    it('hello first: version, backend, methods, events, limits', async () => {
      d = await startDaemon({ methods: { status: { handler: () => ({ up: true }) } }, events: ['tunnelUp'] });
      const r = await raw();
      const h = await r.hello();
      expect(h).toEqual({
        type: 'hello',
        id: 1,
        version: 1,
        server: 'natt',
        backend: 'userland',
        methods: expect.arrayContaining(['add', 'dump', 'spdFlush', 'status']),
        events: ['acquire', 'expire', 'newMapping', 'add', 'delete', 'register', 'tunnelUp'],
        maxFrame: 1 << 20,
        revealKeys: false,
      });
    });

    it('a request before hello, a second hello, or no common version: an error frame, then closed (counted)', async () => {
      d = await startDaemon();
      const r1 = await raw();
      r1.send({ type: 'request', id: 5, method: 'flush' });
      expect(await r1.waitFor((m) => m.type === 'error')).toMatchObject({ id: 0, error: { code: 'ERR_NATT_CONTROL_PROTOCOL', message: expect.stringMatching(/hello first/) } });
      await r1.closed;
      const r2 = await raw();
      await r2.hello();
      r2.send({ type: 'hello', id: 2, versions: [1] });
      await r2.closed;
      const r3 = await raw();
      r3.send({ type: 'hello', id: 1, versions: [7, 9] });
      expect(await r3.waitFor((m) => m.type === 'error')).toMatchObject({ id: 0, error: { code: 'ERR_NATT_CONTROL_VERSION' } });
      await r3.closed;
      expect(d.server.stats().malformed).toBe(3);
    });

    it('an unknown method and bad params are error replies; the connection goes on', async () => {
      d = await startDaemon();
      const r = await raw();
      await r.hello();
      r.send({ type: 'request', id: 2, method: 'reboot' });
      expect(await r.waitFor((m) => m.id === 2)).toMatchObject({ type: 'error', error: { name: 'RangeError', message: expect.stringMatching(/option "method"/) } });
      r.send({ type: 'request', id: 3, method: 'get', params: { id: { src: A, dst: 'nowhere', spi: 1 } } });
      expect(await r.waitFor((m) => m.id === 3)).toMatchObject({ type: 'error', error: { name: 'TypeError', message: expect.stringMatching(/^option "dst"/) } });
      r.send({ type: 'request', id: 4, method: 'flush', params: { protocol: 'esp', all: true } });
      expect(await r.waitFor((m) => m.id === 4)).toMatchObject({ type: 'error', error: { message: expect.stringMatching(/unknown option "params.all"/) } });
      r.send({ type: 'request', id: 5, method: 'add', params: { sa: { ...cbcSa(1), encryption: { algorithm: 'aes-cbc', key: 'not hex' } } } });
      expect(await r.waitFor((m) => m.id === 5)).toMatchObject({ type: 'error', error: { name: 'TypeError', message: expect.stringMatching(/"encryption.key".*a string of 7 characters/) } });
      r.send({ type: 'request', id: 6, method: 'flush' });
      expect(await r.waitFor((m) => m.id === 6)).toEqual({ type: 'reply', id: 6 });
      expect(d.server.stats()).toMatchObject({ unknownMethod: 1, badParams: 3, malformed: 0, clients: 1 });
    });

    it('a reused id while its call runs closes the connection', async () => {
      let release!: () => void;
      d = await startDaemon({ methods: { wait: { handler: () => new Promise<void>((r) => (release = r)) } } });
      const r = await raw();
      await r.hello();
      r.send({ type: 'request', id: 2, method: 'wait' });
      await until(() => release !== undefined);
      r.send({ type: 'request', id: 2, method: 'flush' });
      expect(await r.waitFor((m) => m.type === 'error')).toMatchObject({ id: 0, error: { message: expect.stringMatching(/id 2 is still in use/) } });
      await r.closed;
      release();
    });

    it('at most maxRequests calls run per connection; more are ERR_NATT_BUSY', async () => {
      const waiting: Array<() => void> = [];
      d = await startDaemon({ maxRequests: 2, methods: { wait: { handler: () => new Promise<void>((r) => waiting.push(r)) } } });
      const r = await raw();
      await r.hello();
      for (const id of [2, 3, 4]) r.send({ type: 'request', id, method: 'wait' });
      expect(await r.waitFor((m) => m.id === 4)).toMatchObject({ type: 'error', error: { code: 'ERR_NATT_BUSY' } });
      await until(() => waiting.length === 2);
      for (const w of waiting) w();
      expect(await r.waitFor((m) => m.id === 3)).toEqual({ type: 'reply', id: 3 });
      expect(d.server.stats().busy).toBe(1);
    });

    it('a connection that never says hello is closed after helloMs (counted)', async () => {
      d = await startDaemon({ helloMs: 100 });
      const r = await raw();
      await r.closed;
      expect(r.messages[0]).toMatchObject({ type: 'error', id: 0, error: { code: 'ERR_NATT_CONTROL_HELLO' } });
      expect(d.server.stats().helloTimeouts).toBe(1);
    });
  });

  describe('errors come back as the backend threw them', () => {
    const shape = (e: any) => ({ cls: e?.constructor?.name, name: e?.name, code: e?.code, errno: e?.errno, syscall: e?.syscall, messageType: e?.messageType, message: e?.message });
    const tries: Array<[string, (db: any) => Promise<unknown>]> = [
      ['a duplicate add (EEXIST)', async (db) => (await db.add(cbcSa(0x10)), db.add(cbcSa(0x10)))],
      ['get of a missing SA (ESRCH)', (db) => db.get({ src: A, dst: B, spi: 0x99 })],
      ['update of a missing SA (ESRCH)', (db) => db.update(cbcSa(0x98))],
      ['spdGet of a missing policy (ENOENT)', (db) => db.spdGet({ id: 12345 })],
      ['a bad address (TypeError)', (db) => db.add({ ...cbcSa(1), dst: 'x' })],
      ['a short key (RangeError)', (db) => db.add({ ...cbcSa(1), encryption: { algorithm: 'aes-cbc', key: new Uint8Array(3) } })],
      ['CBC without integrity (TypeError, D5)', (db) => db.add({ ...cbcSa(1), integrity: undefined })],
      ['an unknown SA field', (db) => db.add({ ...cbcSa(1), colour: 'red' })],
      ['a bad getSpi range', (db) => db.getSpi({ src: A, dst: B, min: 5, max: 4 })],
      ['bad call options', (db) => db.flush('esp', { timeout: 'soon' })],
      ['an unknown protocol', (db) => db.flush('gre')],
    ];
    it.each(tries)('%s', async (_what, f) => {
      d = await startDaemon();
      const direct = new UserlandSadb();
      const viaDaemon = await open();
      const a = await f(direct).then(() => 'resolved', shape);
      const b = await f(viaDaemon).then(() => 'resolved', shape);
      expect(b).toEqual(a);
      expect(a).not.toBe('resolved');
      await direct.close();
    });

    it('a KernelReplyError from a kernel backend keeps its class, errno and messageType', async () => {
      // A Sadb whose add fails as the XFRM client's does; the rest is a UserlandSadb.
      const db = new UserlandSadb();
      db.add = async () => {
        throw new KernelReplyError(93, 'XFRM_MSG_NEWSA', 'the kernel has no ESP transform');
      };
      d = await startDaemon();
      const srv = await serveControl(db, { path: `${d.dir}/k.sock` });
      const c = await DaemonSadb.open({ path: `${d.dir}/k.sock` });
      const e = await c.add(cbcSa(1)).catch((x) => x);
      expect(e).toBeInstanceOf(KernelReplyError);
      expect(e).toMatchObject({ code: 'EPROTONOSUPPORT', errno: -93, syscall: 'XFRM_MSG_NEWSA', messageType: 'XFRM_MSG_NEWSA' });
      expect(e.message).toBe(new KernelReplyError(93, 'XFRM_MSG_NEWSA', 'the kernel has no ESP transform').message);
      await c.close();
      await srv.close();
    });
  });

  describe('CallOptions across the socket', () => {
    it('a timeout fails the call here (NattTimeoutError) and cancels it at the daemon', async () => {
      let seen: AbortSignal | undefined;
      d = await startDaemon({ methods: { wait: { handler: (_p, ctx) => ((seen = ctx.signal), new Promise(() => undefined)) } } });
      const c = await open();
      const t0 = Date.now();
      await expect(c.call('wait', undefined, { timeout: 150 })).rejects.toBeInstanceOf(NattTimeoutError);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      await until(() => seen?.aborted === true, 2000, 'the handler aborted');
      await until(() => d!.server.stats().aborted === 1);
      expect(await c.register()).toMatchObject({ protocol: 'esp' }); // the connection goes on
    });

    it('an AbortSignal aborts the call here and at the daemon; an aborted signal sends nothing', async () => {
      let seen: AbortSignal | undefined;
      let calls = 0;
      d = await startDaemon({ methods: { wait: { handler: (_p, ctx) => (calls++, (seen = ctx.signal), new Promise(() => undefined)) } } });
      const c = await open();
      const ac = new AbortController();
      const p = c.call('wait', undefined, { signal: ac.signal });
      await until(() => seen !== undefined);
      ac.abort();
      await expect(p).rejects.toMatchObject({ name: 'AbortError' });
      await until(() => seen!.aborted, 2000, 'the handler aborted');
      await expect(c.call('wait', undefined, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
      await sleep(50);
      expect(calls).toBe(1);
    });

    it('a timeout reaches the database as its CallOptions', async () => {
      const db = new UserlandSadb();
      const got: unknown[] = [];
      const flush = db.flush.bind(db);
      db.flush = async (p, o) => (got.push(o?.timeout), flush(p, o));
      d = await startDaemon();
      const srv = await serveControl(db, { path: `${d.dir}/t.sock` });
      const c = await DaemonSadb.open({ path: `${d.dir}/t.sock`, timeout: 1234 });
      await c.flush();
      await c.flush('esp', { timeout: 2 ** 31 + 5 });
      expect(got).toEqual([1234, 2 ** 31 + 5]);
      await c.close();
      await srv.close();
    });
  });

  describe('dumps', () => {
    it('a dump left early is cancelled at the daemon, and the next dump runs', async () => {
      d = await startDaemon({ revealKeys: true });
      for (let i = 0; i < 300; i++) await d.db.add(cbcSa(0x1000 + i));
      const c = await open();
      let n = 0;
      for await (const _sa of c.dump()) if (++n === 3) break;
      expect(n).toBe(3);
      const all: number[] = [];
      for await (const sa of c.dump('esp')) all.push(sa.spi);
      expect(all.length).toBe(300);
      await until(() => d!.server.stats().aborted >= 1, 2000, 'the first dump cancelled');
      expect(d.server.stats().dumpItems).toBeLessThan(600);
    });

    it('dumps return keys only when the daemon reveals them', async () => {
      d = await startDaemon();
      await d.db.add(cbcSa(0x5000));
      const c = await open();
      expect(c.daemon.revealKeys).toBe(false);
      const got = await c.get({ src: A, dst: B, spi: 0x5000 });
      expect(got.encryption).toMatchObject({ algorithm: 'aes-cbc' });
      expect(got.encryption!.key.length).toBe(0);
      for await (const sa of c.dump()) expect(sa.integrity!.key.length).toBe(0);
    });
  });

  describe('events', () => {
    it("Sadb events reach listeners; 'add' keys only when both the client asks and the daemon allows", async () => {
      const revealing = new UserlandSadb({ revealKeys: true });
      d = await startDaemon();
      const pAllow = `${d.dir}/allow.sock`;
      const pDeny = `${d.dir}/deny.sock`;
      const allow = await serveControl(revealing, { path: pAllow, revealKeys: true });
      const deny = await serveControl(revealing, { path: pDeny });
      const asks = await DaemonSadb.open({ path: pAllow, revealKeys: true });
      const notAsking = await DaemonSadb.open({ path: pAllow });
      const denied = await DaemonSadb.open({ path: pDeny, revealKeys: true });
      const seen = new Map<string, SecurityAssociation[]>();
      for (const [name, c] of [['asks', asks], ['notAsking', notAsking], ['denied', denied]] as const) {
        seen.set(name, []);
        c.on('add', (sa) => seen.get(name)!.push(sa));
      }
      const deletes: unknown[] = [];
      notAsking.on('delete', (id) => deletes.push(id));
      await sleep(20);
      await revealing.add(cbcSa(0x7001));
      await revealing.delete({ src: A, dst: B, spi: 0x7001 });
      await until(() => [...seen.values()].every((l) => l.length === 1) && deletes.length === 1);
      expect(Buffer.from(seen.get('asks')![0].encryption!.key).toString('hex')).toBe('11'.repeat(16));
      expect(seen.get('notAsking')![0].encryption!.key.length).toBe(0);
      expect(seen.get('denied')![0].encryption!.key.length).toBe(0);
      expect(deletes[0]).toEqual({ src: A, dst: B, spi: 0x7001, protocol: 'esp' });
      for (const c of [asks, notAsking, denied]) await c.close();
      await allow.close();
      await deny.close();
      await revealing.close();
    });

    it("the daemon's own methods and events: call(), on(), publish(); unknown names refused at once", async () => {
      d = await startDaemon({
        methods: {
          status: { handler: (_p, ctx) => ({ up: true, uid: ctx.peer.uid }) },
          echo: { params: (p) => p as { n: number }, handler: (p: { n: number }) => p.n + 1 },
        },
        events: ['tunnelUp', 'tunnelDown'],
      });
      const c = await open();
      expect(await c.call('status')).toEqual({ up: true, uid: process.getuid!() });
      expect(await c.call('echo', { n: 41 })).toBe(42);
      await expect(c.call('status', { extra: 1 })).rejects.toThrow(/option "params" must be absent/);
      await expect(c.call('reboot')).rejects.toThrow(/option "method" must be one of the daemon's own methods \(status, echo\)/);
      await expect(c.call('add')).rejects.toThrow(/Sadb methods are called as methods/);
      expect(() => c.on('tunnelSideways', () => undefined)).toThrow(/option "event" must be an event this daemon sends/);
      const ups: unknown[] = [];
      c.on('tunnelUp', (x) => ups.push(x));
      await sleep(30);
      expect(d.server.publish('tunnelUp', { tun: 'natt0', mtu: 1400 })).toBe(1);
      expect(d.server.publish('tunnelDown')).toBe(0);
      expect(() => d!.server.publish('reboot')).toThrow(/option "event"/);
      expect(() => d!.server.publish('tunnelUp', { big: 'x'.repeat(2 << 20) })).toThrow(/option "data" must be at most 1048576 bytes/);
      expect(() => d!.server.publish('tunnelUp', { n: 1n })).toThrow(/option "data" must be a JSON-serialisable value/);
      await until(() => ups.length === 1);
      expect(ups).toEqual([{ tun: 'natt0', mtu: 1400 }]);
      c.removeAllListeners('tunnelUp');
      await sleep(30);
      expect(d.server.publish('tunnelUp', {})).toBe(0);
    });

    it('the client hears the daemon shut down: pending calls fail, later ones too, close is emitted', async () => {
      let started = false;
      d = await startDaemon({ methods: { wait: { handler: () => ((started = true), new Promise(() => undefined)) } } });
      const c = await open();
      const closes: unknown[] = [];
      c.on('close', (e) => closes.push(e));
      const p = c.call('wait').then(
        () => 'resolved',
        (e: unknown) => e,
      );
      await until(() => started);
      await d.server.close();
      expect(await p).toMatchObject({ code: 'ERR_NATT_CLOSED', message: expect.stringMatching(/shutting down/) });
      await expect(c.flush()).rejects.toMatchObject({ code: 'ERR_NATT_CLOSED', message: expect.stringMatching(/open it again/) });
      expect(closes).toHaveLength(1);
      expect((closes[0] as Error).message).toMatch(/shutting down/);
    });
  });

  it('client-side frames are bounded by the daemon limit; nothing is sent for a call refused here', async () => {
    d = await startDaemon({ maxFrame: 4096, methods: { echo: { params: (p) => p, handler: (p) => p } } });
    const c = await open();
    await expect(c.call('echo', 'x'.repeat(5000))).rejects.toThrow(/option "params" must be at most 4096 bytes/);
    await expect(c.call('echo', { n: 10n })).rejects.toThrow(/option "params" must be a JSON-serialisable value/);
    expect(await c.call('echo', 'ok')).toBe('ok');
    expect(d.server.stats().requests).toBe(1);
  });

  it('a frame that is not a frame at all: raw garbage, oversized header, invalid UTF-8 (each closed and counted)', async () => {
    d = await startDaemon();
    const cases: Buffer[] = [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'), // "GET " as a length: 1195725856 bytes, over the limit
      frame(Buffer.from([0xc3, 0x28])),
      frame('{"type":"hello"'),
      Buffer.alloc(4),
    ];
    for (const bytes of cases) {
      const r = await raw();
      r.sendRaw(bytes);
      await r.closed;
      expect(r.messages[0]).toMatchObject({ type: 'error', id: 0 });
    }
    expect(d.server.stats()).toMatchObject({ oversized: 1, malformed: 3, clients: 0 });
    const c = await open();
    expect(await c.getSpi({ src: A, dst: B, min: 0x100, max: 0x100 })).toBe(0x100);
  });

  it('a listener that throws does not break the connection', async () => {
    d = await startDaemon({ events: ['tick'] });
    const c = await open();
    const got: unknown[] = [];
    c.on('tick', (x) => got.push(x));
    c.on('tick', () => {
      throw new Error('listener bug');
    });
    // The throw surfaces as an uncaught exception of its own (as from any EventEmitter); catch it here, not in vitest.
    const uncaught: unknown[] = [];
    const saved = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      await sleep(20);
      d.server.publish('tick', 1);
      d.server.publish('tick', 2);
      await until(() => got.length === 2);
      await sleep(10);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const l of saved) process.on('uncaughtException', l);
    }
    expect(uncaught.map((e) => (e as Error).message)).toEqual(['listener bug', 'listener bug']);
    expect(await c.register()).toMatchObject({ protocol: 'esp' });
  });

  it('stats count requests, errors and events; the NattError shapes are the documented ones', async () => {
    d = await startDaemon();
    const c = await open();
    await c.flush();
    await c.get({ src: A, dst: B, spi: 77 }).catch((e) => expect(e).toBeInstanceOf(NattSystemError));
    expect(d.server.stats()).toMatchObject({ accepted: 1, clients: 1, requests: 2, errors: 1 });
    expect(new NattError('ERR_NATT_CLOSED', 'x').code).toBe('ERR_NATT_CLOSED');
  });

  describe('the client against a daemon that breaks the protocol', () => {
    /** A fake daemon: answers hello, then `answer(request)` gives the frames to send back (raw bytes or objects). */
    async function fakeDaemon(answer: (req: Record<string, any>) => Array<object | Buffer>): Promise<{ path: string; close(): Promise<void> }> {
      d = await startDaemon();
      const p = `${d.dir}/fake.sock`;
      const srv = net.createServer((sock) => {
        let buf = Buffer.alloc(0);
        sock.on('error', () => undefined);
        sock.on('data', (c) => {
          buf = Buffer.concat([buf, c]);
          while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
            const req = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString());
            buf = buf.subarray(4 + buf.readUInt32BE(0));
            const out =
              req.type === 'hello'
                ? [{ type: 'hello', id: req.id, version: 1, server: 'natt', backend: 'userland', methods: ['get', 'dump', 'status'], events: ['add'], maxFrame: 4096, revealKeys: true }]
                : answer(req);
            for (const o of out) sock.write(Buffer.isBuffer(o) ? o : frame(o));
          }
        });
      });
      await new Promise<void>((r) => srv.listen(p, () => r()));
      return { path: p, close: () => new Promise<void>((r) => srv.close(() => r())) };
    }
    const id = { src: A, dst: B, spi: 1 };

    it('a reply that does not fit the model is a ControlProtocolError naming the field; the connection goes on', async () => {
      const fake = await fakeDaemon((req) =>
        req.method === 'get' ? [{ type: 'reply', id: req.id, result: { src: A, dst: B, spi: 'one' } }] : [{ type: 'reply', id: req.id, result: 'fine' }],
      );
      const c = await DaemonSadb.open({ path: fake.path });
      await expect(c.get(id)).rejects.toMatchObject({ code: 'ERR_NATT_CONTROL_PROTOCOL', message: expect.stringMatching(/the SA.spi/) });
      expect(await c.call('status')).toBe('fine');
      expect(c.stats().protocolErrors).toBe(1);
      await c.close();
      await fake.close();
    });

    it('garbage, an oversized frame, an answer of the wrong kind or to no one: clear errors and counts, never a crash', async () => {
      const big = Buffer.alloc(4);
      big.writeUInt32BE(64 << 20, 0);
      const answers: Record<string, Array<object | Buffer>> = {
        garbage: [frame('not json')],
        oversized: [big],
        kind: [{ type: 'item', id: 0, item: 1 }],
      };
      for (const [what, out] of Object.entries(answers)) {
        const fake = await fakeDaemon((req) => (what === 'kind' ? [{ type: 'item', id: req.id, item: 1 }] : out));
        const c = await DaemonSadb.open({ path: fake.path });
        const closes: unknown[] = [];
        c.on('close', (e) => closes.push(e));
        const e = await c.call('status').catch((x) => x);
        if (what === 'kind') {
          expect(e).toMatchObject({ code: 'ERR_NATT_CONTROL_PROTOCOL', message: expect.stringMatching(/answered daemon status with a dump item/) });
        } else {
          expect(e).toMatchObject({ code: what === 'garbage' ? 'ERR_NATT_CONTROL_PROTOCOL' : 'ERR_NATT_CONTROL_FRAME' });
          expect(closes).toHaveLength(1);
          await expect(c.call('status')).rejects.toMatchObject({ code: 'ERR_NATT_CLOSED' });
        }
        await c.close();
        await fake.close();
        await d!.stop();
        d = undefined;
      }
    });

    it("an answer for an id nobody waits for is counted and dropped; an event not subscribed to, too", async () => {
      const fake = await fakeDaemon((req) => [
        { type: 'reply', id: req.id + 1000, result: 1 },
        { type: 'event', event: 'add', data: { src: A, dst: B, spi: 1 } },
        { type: 'reply', id: req.id, result: 2 },
      ]);
      const c = await DaemonSadb.open({ path: fake.path });
      expect(await c.call('status')).toBe(2);
      expect(c.stats()).toMatchObject({ drops: 2, protocolErrors: 0 });
      await c.close();
      await fake.close();
    });
  });

  it('a reply larger than the client accepts closes the connection (ERR_NATT_CONTROL_FRAME); a larger maxFrame takes it', async () => {
    d = await startDaemon({ maxFrame: 8 << 20, methods: { blob: { handler: () => 'x'.repeat(2 << 20) } } });
    const small = await DaemonSadb.open({ path: d.path });
    await expect(small.call('blob')).rejects.toMatchObject({ code: 'ERR_NATT_CONTROL_FRAME' });
    await small.close();
    const large = await DaemonSadb.open({ path: d.path, maxFrame: 4 << 20 });
    clients.push(large);
    expect(((await large.call('blob')) as string).length).toBe(2 << 20);
  });
});
