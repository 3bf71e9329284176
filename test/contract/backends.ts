// Which backends the contract suite runs against on this machine, and why the others are skipped.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSadb } from '../../src/open';
import { probe } from '../../src/probe';
import { nativeStatus } from '../../src/native/binding';
import { serveControl, type ControlServer } from '../../src/control/server';
import { UserlandSadb } from '../../src/userland/sadb';
import type { SadbBackendName } from '../../src/sadb/types';
import { defineSadbContract } from './suite';

/** Why `backend` cannot run the contract here, or undefined when it can. */
export function contractSkip(backend: SadbBackendName): string | undefined {
  if (backend === 'userland') return undefined;
  if (backend === 'daemon') {
    const n = nativeStatus();
    return n.loaded ? undefined : `the native addon is not loaded (${n.reason}): the control server checks its peers with it`;
  }
  const p = probe();
  if (process.getuid?.() !== 0) return 'not root: the kernel backends need CAP_NET_ADMIN';
  if (backend === 'pfkey') return p.facts.pfkey.ok ? undefined : `no PF_KEY in this kernel (${p.facts.pfkey.code})`;
  if (process.platform !== 'linux') return 'XFRM is Linux only';
  if (!p.facts.xfrm.ok) return `no XFRM netlink (${p.facts.xfrm.code})`;
  return p.kernelEsp.v4 ? undefined : 'no kernel ESP (CONFIG_INET_ESP): the kernel refuses ESP SAs';
}

/**
 * The daemon row: a real control server (serveControl over a UserlandSadb, on a Unix socket in a temp dir) in this
 * process, and the client through openSadb({ backend: 'daemon', path }). Keys are revealed on request (get and dump
 * return them, as every backend does); the daemon's own default is not to.
 */
function defineDaemonContract(): void {
  let server: ControlServer | undefined;
  let db: UserlandSadb | undefined;
  let dir: string | undefined;
  defineSadbContract(
    'daemon',
    async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-contract-'));
      const p = path.join(dir, 'control.sock');
      db = new UserlandSadb();
      server = await serveControl(db, { path: p, revealKeys: true });
      return openSadb({ backend: 'daemon', path: p });
    },
    {
      skip: contractSkip('daemon'),
      teardown: async () => {
        await server?.close();
        await db?.close();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
      },
    },
  );
}

/** Define the contract for pfkey, xfrm, userland and daemon, each skipped with its reason where it cannot run. */
export function defineAllContracts(): void {
  for (const backend of ['userland', 'xfrm', 'pfkey'] as const) {
    defineSadbContract(backend, () => openSadb({ backend }), { skip: contractSkip(backend), aead: backend !== 'pfkey' || process.platform !== 'linux' });
  }
  defineDaemonContract();
}
