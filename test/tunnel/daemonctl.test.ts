// The running tunnel daemon's control socket: `natt tunnel status` (human and --json) and `natt tunnel down`, SAs and
// policies added over openSadb({ backend: 'daemon' }) carrying the tunnel's traffic, and test (c) of issue 11 at the
// daemon level: a second uid refused, malformed and oversized frames refused, clients SIGKILLed mid-request, all
// counted in the status, with the daemon serving (and forwarding) throughout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { have, sh } from '../lib/nat-topology';
import { ensureDist } from '../lib/dist';
import { TunnelDaemon } from '../lib/tunnel-daemon';
import { openSadb } from '../../src/open';
import type { DaemonSadb } from '../../src/control/client';
import type { DaemonStatus } from '../../src/daemon/status';
import type { SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';
import { RawClient } from '../control/raw';

const ROOT = join(__dirname, '..', '..');
const NATT = join(ROOT, 'bin', 'natt.js');
const isRoot = process.getuid?.() === 0;
const why = !isRoot ? 'not root' : !existsSync('/dev/net/tun') ? 'no /dev/net/tun (CONFIG_TUN)' : !have('ip', ['-V']) ? 'no ip (iproute2)' : '';
const tag = `${process.pid % 10000}`;
const NS = { a: `ndc-a${tag}`, b: `ndc-b${tag}` };
const TUN = { a: `dca${tag}`, b: `dcb${tag}` };
const OUTER = { a: '10.77.0.1', b: '10.77.0.2' };
const NET = { a: '10.78.1.0/24', b: '10.78.2.0/24' };
const INNER = { a: '10.78.1.1', b: '10.78.2.1' };
const KEY_AB = Buffer.alloc(36, 0xc5).toString('hex');
const KEY_BA = Buffer.alloc(36, 0x5c).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'natt-daemonctl-'));
const open = join(dir, 'open'); // a directory anyone may enter: the uid test needs to reach the sockets
const CTL = { a: join(open, 'a.sock'), b: join(open, 'b.sock') };

const natt = { type: 'espinudp', sport: 4500, dport: 4500 } as const;
const gcm = (key: string) => ({ algorithm: 'aes-gcm-16', key: `0x${key}` });

/** Side `me`'s SAs and policies (JSON form, keys as hex). */
function sasOf(me: 'a' | 'b'): { sas: object[]; policies: object[] } {
  const peer = me === 'a' ? 'b' : 'a';
  const outKey = me === 'a' ? KEY_AB : KEY_BA;
  const inKey = me === 'a' ? KEY_BA : KEY_AB;
  const [outSpi, inSpi] = me === 'a' ? [0x3001, 0x4002] : [0x4002, 0x3001];
  const [outReq, inReq] = me === 'a' ? [1, 2] : [2, 1];
  return {
    sas: [
      { src: OUTER[me], dst: OUTER[peer], spi: outSpi, mode: 'tunnel', reqid: outReq, replayWindow: 1024, encryption: gcm(outKey), natt },
      { src: OUTER[peer], dst: OUTER[me], spi: inSpi, mode: 'tunnel', reqid: inReq, replayWindow: 1024, encryption: gcm(inKey), natt },
    ],
    policies: [
      { selector: { src: NET[me], dst: NET[peer] }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: OUTER[me], dst: OUTER[peer], reqid: outReq }] },
      { selector: { src: NET[peer], dst: NET[me] }, direction: 'in', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: OUTER[peer], dst: OUTER[me], reqid: inReq }] },
    ],
  };
}

/** A's configuration carries its SAs; B starts empty and gets them over its control socket. */
function config(side: 'a' | 'b'): object {
  const peer = side === 'a' ? 'b' : 'a';
  return {
    tun: { name: TUN[side], mtu: 1400, addresses: [`${INNER[side]}/32`], routes: [{ dst: NET[peer] }] },
    listen: { address: OUTER[side], port: 4500 },
    // A: the default mode 0600 (the kernel refuses other uids at connect); B: 0666, so only the peer check stands.
    control: side === 'a' ? { path: CTL.a } : { path: CTL.b, mode: '0666' },
    ...(side === 'a' ? sasOf('a') : {}),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run `natt ...` (as `uid` if given), without blocking this process's event loop (it hosts control clients too). */
function cli(args: string[], uid?: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NATT, ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20, ...(uid !== undefined ? { uid, gid: uid } : {}) }, (e, out, err) =>
      resolve({ code: e ? ((e as { code?: number }).code ?? null) : 0, out, err }),
    );
  });
}

async function status(path: string): Promise<DaemonStatus> {
  const r = await cli(['tunnel', 'status', '--control', path, '--json']);
  expect(r).toMatchObject({ code: 0, err: '' });
  return JSON.parse(r.out) as DaemonStatus;
}

/** ping from a namespace (asynchronously: a blocked event loop would starve this file's control clients). */
const ping = (from: 'a' | 'b', to: string, n = 2): Promise<string> =>
  new Promise((resolve) =>
    execFile('ip', ['netns', 'exec', NS[from], 'ping', '-c', String(n), '-i', '0.2', '-W', '2', to], { encoding: 'utf8' }, (_e, out) => resolve(out)),
  );

/** A control client in a child process; resolves once it says it is mid-request. */
function child(path: string, mode: 'partial' | 'dump'): Promise<ReturnType<typeof spawn>> {
  const proc = spawn(process.execPath, [join(__dirname, 'control-child.js'), path, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const m = JSON.parse(l) as { ready?: boolean };
      if (m.ready) resolve(proc);
      else reject(new Error(`control child: ${l}`));
    });
    proc.on('exit', (code) => reject(new Error(`control child exited ${code}`)));
  });
}

function teardown(): void {
  for (const n of Object.values(NS)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
}

describe.skipIf(!!why)(`a running natt tunnel daemon driven over its control socket${why ? ` (skipped: ${why})` : ''}`, () => {
  let A: TunnelDaemon;
  let B: TunnelDaemon;
  const clients: DaemonSadb[] = [];

  beforeAll(async () => {
    ensureDist();
    process.once('exit', teardown);
    teardown();
    mkdirSync(open);
    chmodSync(open, 0o755);
    chmodSync(dir, 0o755);
    for (const n of Object.values(NS)) sh(['ip', 'netns', 'add', n]);
    sh(['ip', 'link', 'add', `dcv${tag}`, 'netns', NS.a, 'type', 'veth', 'peer', 'name', `dcw${tag}`, 'netns', NS.b]);
    sh(['ip', 'addr', 'add', `${OUTER.a}/24`, 'dev', `dcv${tag}`], NS.a);
    sh(['ip', 'addr', 'add', `${OUTER.b}/24`, 'dev', `dcw${tag}`], NS.b);
    for (const [n, d] of [
      [NS.a, `dcv${tag}`],
      [NS.b, `dcw${tag}`],
    ]) {
      sh(['ip', 'link', 'set', d, 'up'], n);
      sh(['ip', 'link', 'set', 'lo', 'up'], n);
    }
    A = new TunnelDaemon(NS.a, join(dir, 'a.json'), config('a'));
    B = new TunnelDaemon(NS.b, join(dir, 'b.json'), config('b'));
    await Promise.all([A.waitFor(/^tunnel up/), B.waitFor(/^tunnel up/)]);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const d of [A, B]) if (d && d.proc.exitCode === null) d.proc.kill('SIGTERM');
    await Promise.all([A?.exited, B?.exited]);
    teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('natt tunnel status answers in human form and as JSON: TUN, socket, SAs with peers and ports, policies; no key', async () => {
    expect(A.lines.join('\n')).toMatch(new RegExp(`^control socket ${CTL.a} \\(mode 0600, serves root\\)$`, 'm'));
    const human = await cli(['tunnel', 'status', '--control', CTL.a]);
    expect(human.err).toBe('');
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^natt tunnel daemon, pid \d+, up \d+s \(since \d{4}-\d\d-\d\dT/);
    expect(human.out).toContain(`tun ${TUN.a}: mtu 1400, addresses ${INNER.a}/32, routes ${NET.b}`);
    expect(human.out).toContain(`listening on ${OUTER.a}:4500 (NAT-T, userland ESP), outer MTU 1500, keepalives every 20 s`);
    expect(human.out).toContain('SAs (2):');
    expect(human.out).toMatch(new RegExp(`out esp ${OUTER.a} -> ${OUTER.b} spi 0x00003001 tunnel reqid 1 aes-gcm-16 espinudp 4500->4500 peer ${OUTER.b}:4500 mature`));
    expect(human.out).toMatch(new RegExp(`in  esp ${OUTER.b} -> ${OUTER.a} spi 0x00004002 tunnel reqid 2 aes-gcm-16`));
    expect(human.out).toContain(`out ${NET.a} -> ${NET.b} ipsec esp tunnel ${OUTER.a} -> ${OUTER.b} reqid 1 (id `);
    expect(human.out).toMatch(new RegExp(`control ${CTL.a} \\(mode 0600\\): \\d+ clients now`));
    const st = await status(CTL.a);
    expect(st.tun).toMatchObject({ name: TUN.a, mtu: 1400, addresses: [`${INNER.a}/32`], routes: [{ dst: NET.b }] });
    expect(st.tun.index).toBeGreaterThan(0);
    expect(st.listen).toEqual({ family: 4, address: OUTER.a, port: 4500 });
    expect(st.control).toEqual({ path: CTL.a, mode: '0600', allowUids: [] });
    expect(st.sas.map((s) => [s.spi, s.direction, s.natt, s.peer])).toEqual([
      [0x3001, 'out', natt, { address: OUTER.b, port: 4500 }],
      [0x4002, 'in', natt, { address: OUTER.b, port: 4500 }],
    ]);
    expect(st.policies.map((p) => p.direction).sort()).toEqual(['in', 'out']);
    expect([st.saCount, st.policyCount]).toEqual([2, 2]);
    expect(st.stats.engine).toBeTypeOf('object');
    expect(st.stats.control.accepted).toBeGreaterThanOrEqual(2);
    expect(st.uptimeSeconds).toBeGreaterThanOrEqual(0);
    // natt stats reads the same daemon's engine counters through its `stats` method.
    const counters = await cli(['stats', '--backend', 'daemon', '--control', CTL.a, '--json']);
    expect(counters.code).toBe(0);
    expect(JSON.parse(counters.out)).toMatchObject({ source: 'natt daemon', counters: { InNoStates: expect.any(Number) } });
    for (const text of [human.out, JSON.stringify(st), A.lines.join('\n')]) {
      expect(text.toLowerCase()).not.toContain(KEY_AB.slice(0, 16));
      expect(text.toLowerCase()).not.toContain(KEY_BA.slice(0, 16));
    }
  });

  it('with no daemon there: "no natt daemon at PATH: start one with natt tunnel up --config FILE", exit 1', async () => {
    const r = await cli(['tunnel', 'status', '--name', `nx${tag}`]);
    expect(r).toEqual({ code: 1, out: '', err: `natt tunnel status: no natt daemon at /run/natt/nx${tag}.sock: start one with natt tunnel up --config FILE\n` });
    const d = await cli(['tunnel', 'down', '--control', join(dir, 'none.sock')]);
    expect(d).toEqual({ code: 1, out: '', err: `natt tunnel down: no natt daemon at ${join(dir, 'none.sock')}: start one with natt tunnel up --config FILE\n` });
    const u = await cli(['tunnel', 'status', '--name', 'a', '--control', CTL.a]);
    expect(u.code).toBe(2);
    expect(u.err).toMatch(/^natt tunnel status: --name and --control name the same thing: give one\n\nUsage: natt tunnel status/);
  });

  it('SAs and policies added over openSadb({ backend: "daemon" }) to the running daemon carry the tunnel traffic', async () => {
    expect(await ping('a', INNER.b, 1)).toMatch(/0 received/); // B has no SA yet
    const db = (await openSadb({ backend: 'daemon', path: CTL.b })) as DaemonSadb;
    clients.push(db);
    expect(db.daemon.methods).toEqual(expect.arrayContaining(['status', 'stats', 'down', 'add', 'spdAdd']));
    expect(db.daemon.events).toEqual(expect.arrayContaining(['tunnelUp', 'tunnelDown', 'newMapping']));
    const { sas, policies } = sasOf('b');
    for (const sa of sas as Array<Record<string, any>>) {
      await db.add({ ...sa, encryption: { algorithm: sa.encryption.algorithm, key: Buffer.from(sa.encryption.key.slice(2), 'hex') } } as unknown as SecurityAssociation);
    }
    for (const p of policies) await db.spdAdd(p as SecurityPolicy);
    await B.waitFor(/^sa installed: 10\.77\.0\.1 -> 10\.77\.0\.2 spi 0x00003001$/);
    expect(await ping('a', INNER.b, 3)).toMatch(/3 received/);
    expect(await ping('b', INNER.a, 2)).toMatch(/2 received/);
    const st = await status(CTL.b);
    expect(st.sas.map((s) => [s.spi, s.direction])).toEqual([
      [0x4002, 'out'],
      [0x3001, 'in'],
    ]);
    for (const s of st.sas) expect(s.current.packets).toBeGreaterThanOrEqual(5);
    expect(st.stats.traffic.inPackets).toBeGreaterThanOrEqual(5);
    const viaCall = (await db.call('stats')) as DaemonStatus['stats'];
    expect(viaCall.tunnel.toTun).toBeGreaterThanOrEqual(5);
  });

  it('test (c) at the daemon: a second uid, malformed and oversized frames, clients SIGKILLed mid-request: refused, counted, still serving', async () => {
    // uid 65534 on B (socket mode 0666): the daemon's peer check refuses it, and says so; the status counts it.
    const nobody = await cli(['tunnel', 'status', '--control', CTL.b], 65534);
    expect(nobody.code).toBe(1);
    expect(nobody.err).toMatch(/^natt tunnel status: .*uid 65534 may not use this control socket: it serves root/);
    await B.waitFor(/^control: refused uid 65534 \(pid \d+\): not root, the daemon's uid or an allowed uid$/);
    // On A (mode 0600) the kernel refuses its connect: EACCES, with advice.
    const nobodyA = await cli(['tunnel', 'down', '--control', CTL.a], 65534);
    expect(nobodyA.code).toBe(1);
    expect(nobodyA.err).toMatch(/EACCES|permission denied/i);

    // A malformed frame (not JSON) and an oversized one (a header announcing 2 GiB): each connection closed.
    const bad = await RawClient.connect(CTL.b);
    await bad.hello();
    bad.sendRaw(Buffer.concat([Buffer.from([0, 0, 0, 9]), Buffer.from('not json!')]));
    await bad.closed;
    expect(bad.messages.at(-1)).toMatchObject({ type: 'error', id: 0 });
    const big = await RawClient.connect(CTL.b);
    await big.hello();
    big.sendRaw(Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x7b]));
    await big.closed;
    expect(big.messages.at(-1)).toMatchObject({ type: 'error', id: 0 });

    // A client killed with half a request sent, and one killed while the daemon streams it a dump it does not read.
    const db = clients[0];
    const N = 3000;
    for (let i = 0; i < N; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          db.add({ src: '198.51.100.1', dst: '198.51.100.2', spi: 0x10000 + i + j, mode: 'tunnel', encryption: { algorithm: 'aes-gcm-16', key: new Uint8Array(20).fill(7) } }),
        ),
      );
    }
    const partial = await child(CTL.b, 'partial');
    partial.kill('SIGKILL');
    const dumping = await child(CTL.b, 'dump');
    const control = async (): Promise<DaemonStatus['stats']['control']> => ((await db.call('stats')) as DaemonStatus['stats']).control;
    let before = await control();
    for (let i = 0; i < 100 && before.dumpItems === 0; i++) before = (await sleep(50), await control());
    expect(before.dumpItems).toBeGreaterThan(0);
    await sleep(200);
    expect((await control()).dumpItems).toBeLessThan(N); // stalled on the child's full socket
    dumping.kill('SIGKILL');
    let after = await control();
    for (let i = 0; i < 100 && after.aborted === 0; i++) after = (await sleep(50), await control());
    expect(after).toMatchObject({ refusedPeer: 1, malformed: 1, oversized: 1, aborted: 1 });
    // Meanwhile the status lists the first 256 SAs and counts them all (an answer stays within a frame).
    const many = await status(CTL.b);
    expect([many.saCount, many.sas.length]).toEqual([N + 2, 256]);
    await db.deleteAll({ src: '198.51.100.1', dst: '198.51.100.2' });

    // Still serving, and still forwarding.
    const human = await cli(['tunnel', 'status', '--control', CTL.b]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/refused: peer 1, full 0, unchecked 0; malformed 1, oversized 1, aborted 1/);
    expect(human.out).toContain('SAs (2):');
    expect(await ping('a', INNER.b, 2)).toMatch(/2 received/);
    console.log(`daemon control counters after test (c): ${JSON.stringify(after)}`);
  }, 60_000);

  it('natt tunnel down stops the daemon as SIGTERM does: exit 0, tunnelDown published, the TUN, routes and socket gone', async () => {
    const db = clients[0];
    const heard: unknown[] = [];
    db.on('tunnelDown', (e) => heard.push(e));
    await sleep(50); // the subscribe reaches the daemon
    const r = await cli(['tunnel', 'down', '--control', CTL.b]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^natt daemon pid \\d+ \\(tun ${TUN.b}\\) stopped: its TUN and routes are removed\\n$`));
    // By the time `down` returns, the datapath is gone.
    expect(sh(['ip', '-j', 'link'], NS.b)).not.toContain(TUN.b);
    expect(sh(['ip', 'route'], NS.b)).not.toContain('10.78.');
    expect(await B.exited).toBe(0);
    expect(B.lines.join('\n')).toMatch(/^control: down asked by uid 0 \(pid \d+\)\ndown asked by uid 0 \(pid \d+\): stopping\ntunnel down: /m);
    expect(existsSync(CTL.b)).toBe(false);
    expect(heard).toEqual([{ tun: TUN.b, pid: expect.any(Number) }]);
    const after = await cli(['tunnel', 'status', '--control', CTL.b]);
    expect(after.code).toBe(1);
    expect(after.err).toContain(`no natt daemon at ${CTL.b}`);
    // A is untouched.
    expect((await status(CTL.a)).tun.name).toBe(TUN.a);
  });
});
