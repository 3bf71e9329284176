// D17: natt objects owning a native fd, dropped without close(), release it when collected; a pending request keeps
// its client alive until it settles. Runs gc-driver.ts in a child `node --expose-gc` (bundled by esbuild).

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNative } from '../../src/native/binding';
import { bundleDriver } from '../lib/bundle';
import { netnsSkipReason } from '../tun/harness';

function why(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux (/proc/self/fd)';
  const addon = loadNative();
  if (!addon) return 'native addon not built';
  if (!addon.probe().xfrm.ok) return 'no XFRM netlink here to open sockets on';
  return undefined;
}
const skip = why();

interface Report {
  fatal?: string;
  xfrmClients: { n: number; base: number; opened: number; after: number; rounds: number };
  nativeSockets: { n: number; base: number; opened: number; after: number; rounds: number };
  closedThenDropped: { base: number; afterClose: number };
  whilePending: { collected: boolean; socketClosed: boolean };
  pendingResult: string;
  afterSettle: { collected: boolean; socketClosed: boolean };
  pfkeyIdle: { collected: boolean; socketClosed: boolean };
  referenced: { socketClosed: boolean; backend: string };
  referencedAfterClose: { socketClosed: boolean };
}

describe.skipIf(skip !== undefined)(`clients dropped without close() give their fds back on GC${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let r: Report;

  it('runs the driver in a child node --expose-gc', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-gc-'));
    try {
      const out = await bundleDriver(path.join(__dirname, 'gc-driver.ts'), path.join(dir, 'driver.js'));
      const res = spawnSync(process.execPath, ['--expose-gc', out], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NATT_GC_CLIENTS: '200' } });
      const line = res.stdout.trim().split('\n').pop() ?? '';
      r = JSON.parse(line || '{}') as Report;
      expect(r.fatal, res.stderr).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('200 Xfrm clients on this host, dropped: /proc/self/fd returns to its count before they were opened', () => {
    expect(r.xfrmClients.opened).toBe(r.xfrmClients.base + 200);
    expect(r.xfrmClients.after).toBe(r.xfrmClients.base);
  });

  it('200 bare native message sockets, dropped: each native object is collected and its destructor closes the fd', () => {
    expect(r.nativeSockets.opened).toBe(r.nativeSockets.base + 200);
    expect(r.nativeSockets.after).toBe(r.nativeSockets.base);
  });

  it('a client closed explicitly gives its fd back at once', () => {
    expect(r.closedThenDropped.afterClose).toBe(r.closedThenDropped.base);
  });

  it('a client with a request outstanding is not collected while it waits, and is once the request times out', () => {
    expect(r.whilePending).toEqual({ collected: false, socketClosed: false });
    expect(r.pendingResult).toBe('NattTimeoutError');
    expect(r.afterSettle).toMatchObject({ collected: true, socketClosed: true });
  });

  it('a PfKey client (listeners attached, nothing outstanding) dropped is collected and its socket closed', () => {
    expect(r.pfkeyIdle).toMatchObject({ collected: true, socketClosed: true });
  });

  it('a client still referenced keeps its socket open through GC', () => {
    expect(r.referenced).toEqual({ socketClosed: false, backend: 'xfrm' });
    expect(r.referencedAfterClose).toEqual({ socketClosed: true });
  });
});

const tunSkip = skip ?? netnsSkipReason();

interface TunReport {
  fatal?: string;
  unrefd: { n: number; base: { fds: number; links: number }; opened: { fds: number; links: number }; after: { fds: number; links: number } };
  refd: { collected: boolean; linkPresent: boolean };
  afterClose: { linkPresent: boolean; fds: number };
}

describe.skipIf(tunSkip !== undefined)(`TUN devices dropped without close() are closed on GC, in a fresh netns${tunSkip ? ` (skipped: ${tunSkip})` : ''}`, () => {
  it('20 unref’d Tuns dropped: their fds (device and rtnetlink) and their links go; a ref’d one stays until close()', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-gc-tun-'));
    const ns = `natt-gc-${process.pid}`;
    try {
      const out = await bundleDriver(path.join(__dirname, 'gc-driver.ts'), path.join(dir, 'driver.js'));
      spawnSync('ip', ['netns', 'add', ns]);
      const res = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--expose-gc', out], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, NATT_GC_TUN: '1' },
      });
      const r = JSON.parse(res.stdout.trim().split('\n').pop() || '{}') as TunReport;
      expect(r.fatal, res.stderr).toBeUndefined();
      expect(r.unrefd.opened.fds).toBe(r.unrefd.base.fds + 2 * r.unrefd.n); // a device and an rtnetlink socket each
      expect(r.unrefd.opened.links).toBe(r.unrefd.base.links + r.unrefd.n);
      expect(r.unrefd.after).toEqual(r.unrefd.base);
      expect(r.refd).toEqual({ collected: false, linkPresent: true });
      expect(r.afterClose).toEqual({ linkPresent: false, fds: r.unrefd.base.fds });
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
