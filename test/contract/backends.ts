// Which backends the contract suite runs against on this machine, and why the others are skipped.

import { openSadb } from '../../src/open';
import { probe } from '../../src/probe';
import type { SadbBackendName } from '../../src/sadb/types';
import { defineSadbContract } from './suite';

/** Why `backend` cannot run the contract here, or undefined when it can. */
export function contractSkip(backend: SadbBackendName): string | undefined {
  if (backend === 'userland') return undefined;
  const p = probe();
  if (process.getuid?.() !== 0) return 'not root: the kernel backends need CAP_NET_ADMIN';
  if (backend === 'pfkey') return p.facts.pfkey.ok ? undefined : `no PF_KEY in this kernel (${p.facts.pfkey.code})`;
  if (process.platform !== 'linux') return 'XFRM is Linux only';
  if (!p.facts.xfrm.ok) return `no XFRM netlink (${p.facts.xfrm.code})`;
  return p.kernelEsp.v4 ? undefined : 'no kernel ESP (CONFIG_INET_ESP): the kernel refuses ESP SAs';
}

/** Define the contract for pfkey, xfrm and userland, each skipped with its reason where it cannot run. */
export function defineAllContracts(): void {
  for (const backend of ['userland', 'xfrm', 'pfkey'] as const) {
    defineSadbContract(backend, () => openSadb({ backend }), { skip: contractSkip(backend), aead: backend !== 'pfkey' || process.platform !== 'linux' });
  }
}
