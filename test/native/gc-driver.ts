// Run by gc.test.ts in a child `node --expose-gc` (bundled by esbuild): opens natt objects that own fds, drops them,
// collects garbage, and prints one JSON line of what /proc/self/fd and the transports saw.

import * as fs from 'node:fs';
import { Xfrm } from '../../src/xfrm/client';
import { PfKey } from '../../src/pfkey/client';
import { openMessageSocket, loadNative } from '../../src/native/binding';
import { NattTimeoutError } from '../../src/errors';
import { scriptedTransport } from '../lib/scripted-transport';
import { createTun, type Tun } from '../../src/tun';

declare const gc: () => void;

const fds = (): number => fs.readdirSync('/proc/self/fd').length;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * gc() until `done()` (or `rounds` rounds): finalizers and FinalizationRegistry callbacks run on later turns. gc() runs
 * on a turn of its own: a WeakRef's deref() (in `done`) keeps its target alive until the end of the turn it ran in.
 */
async function collect(done: () => boolean, rounds = 50): Promise<number> {
  for (let i = 0; i < rounds; i++) {
    await sleep(1);
    gc();
    await sleep(10);
    if (done()) return i + 1;
  }
  return rounds;
}

/** In a network namespace of its own (NATT_GC_TUN=1): TUN devices dropped without close(). */
async function tuns(): Promise<Record<string, unknown>> {
  const N = 20;
  const links = (): number => fs.readdirSync('/sys/class/net').length;
  await collect(() => false, 3);
  const base = { fds: fds(), links: links() };
  let devices: Tun[] = [];
  for (let i = 0; i < N; i++) devices.push((await createTun({ up: false })).unref());
  const opened = { fds: fds(), links: links() };
  devices = [];
  void devices;
  const rounds = await collect(() => fds() <= base.fds && links() <= base.links);
  const unrefd = { n: N, base, opened, after: { fds: fds(), links: links() }, rounds };
  // A ref'd device (the default: it keeps Node running, like a listening socket) is not collected when dropped.
  let kept: Tun | null = await createTun({ up: false });
  const ref = new WeakRef(kept);
  const name = kept.name;
  kept = null;
  await collect(() => false, 20);
  const alive = ref.deref();
  const refd = { collected: alive === undefined, linkPresent: fs.existsSync(`/sys/class/net/${name}`) };
  await alive?.close();
  return { unrefd, refd, afterClose: { linkPresent: fs.existsSync(`/sys/class/net/${name}`), fds: fds() } };
}

async function main(): Promise<Record<string, unknown>> {
  if (process.env.NATT_GC_TUN === '1') return tuns();
  const out: Record<string, unknown> = {};
  const N = Number(process.env.NATT_GC_CLIENTS ?? 200);
  const native = loadNative();
  const xfrmOk = native !== null && native.probe().xfrm.ok;
  out.xfrm = xfrmOk;

  if (xfrmOk) {
    // 1. N Xfrm clients on this host's XFRM netlink, dropped without close().
    await collect(() => false, 3);
    const base = fds();
    let clients: Xfrm[] = [];
    for (let i = 0; i < N; i++) clients.push(await Xfrm.open());
    const opened = fds();
    clients = [];
    void clients;
    const rounds = await collect(() => fds() <= base);
    out.xfrmClients = { n: N, base, opened, after: fds(), rounds };

    // 2. Bare native message sockets dropped without close(): the native object itself is collected, its fd closed.
    const base2 = fds();
    let socks: unknown[] = [];
    for (let i = 0; i < N; i++) socks.push(openMessageSocket(16, 3, 6, () => undefined, () => undefined));
    const opened2 = fds();
    socks = [];
    void socks;
    const rounds2 = await collect(() => fds() <= base2);
    out.nativeSockets = { n: N, base: base2, opened: opened2, after: fds(), rounds: rounds2 };

    // 3. Closed explicitly, then dropped: nothing closes twice, nothing stays.
    const base3 = fds();
    const c = await Xfrm.open();
    await c.close();
    out.closedThenDropped = { base: base3, afterClose: fds() };
  }

  // 4. A client with a request outstanding is not collected while it waits (a transport that never answers).
  const t = scriptedTransport();
  let x: Xfrm | null = await Xfrm.open({ transport: t.transport });
  const ref = new WeakRef(x);
  // The timeout is well past what 40 collection rounds take on a loaded host: the client must still be waiting then.
  const pending = x.sadInfo({ timeout: 6000 }).then(
    () => 'answered',
    (e: unknown) => (e instanceof NattTimeoutError ? 'NattTimeoutError' : String(e)),
  );
  x = null;
  await collect(() => false, 40);
  out.whilePending = { collected: ref.deref() === undefined, socketClosed: t.state.closed };
  out.pendingResult = await pending;
  const rounds4 = await collect(() => ref.deref() === undefined && t.state.closed);
  out.afterSettle = { collected: ref.deref() === undefined, socketClosed: t.state.closed, rounds: rounds4 };

  // 5. The same for PfKey (scripted: this host has no PF_KEY): an idle client dropped is collected, its socket closed.
  const tp = scriptedTransport();
  let p: PfKey | null = new PfKey({ dialect: 'linux', transport: tp.transport });
  const pref = new WeakRef(p);
  p.on('acquire', () => undefined);
  p = null;
  const rounds5 = await collect(() => pref.deref() === undefined && tp.state.closed);
  out.pfkeyIdle = { collected: pref.deref() === undefined, socketClosed: tp.state.closed, rounds: rounds5 };

  // 6. An Xfrm client that is still referenced keeps its socket (and keeps working).
  const tk = scriptedTransport();
  const kept = await Xfrm.open({ transport: tk.transport });
  await collect(() => false, 10);
  out.referenced = { socketClosed: tk.state.closed, backend: kept.backend };
  await kept.close();
  out.referencedAfterClose = { socketClosed: tk.state.closed };
  return out;
}

main().then(
  (r) => console.log(JSON.stringify(r)),
  (e: unknown) => console.log(JSON.stringify({ fatal: e instanceof Error ? `${e.name}: ${e.message}` : String(e) })),
);
