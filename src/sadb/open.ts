// openSadb(): the single entry to the SA database, choosing the pfkey, xfrm or userland backend.

import type { Sadb, SadbBackendName } from './types';
import { NattUnsupportedError, typeError } from '../errors';
import { xfrmPreferred } from '../xfrm/probe';
import { probe } from '../probe';

export interface OpenSadbOptions {
  /** `'auto'` (default) picks the kernel where it can do ESP (XFRM before PF_KEY on Linux), else userland. */
  backend?: SadbBackendName | 'auto';
  /** PF_KEY only: the dialect of the kernel's PF_KEY (default: this OS's). */
  dialect?: 'linux' | 'netbsd' | 'freebsd';
  /** Include key material in `'add'` broadcasts and dumps' events (default false). */
  revealKeys?: boolean;
  /** Default per-request timeout in ms (default 5000). */
  timeout?: number;
}

export type SadbFactory = (opts: OpenSadbOptions) => Promise<Sadb>;

// Each backend's module is loaded only when asked for (the kernel ones need the native addon).
const factories: Record<SadbBackendName, () => SadbFactory> = {
  pfkey: () => async (o) => (await import('../pfkey/client')).openPfKey(o),
  xfrm: () => async (o) => (await import('../xfrm/client')).openXfrm(o),
  userland: () => async (o) => (await import('../userland')).createUserlandSadb(o),
};

/** Which backend `'auto'` picks on this host, and why. */
export function chooseSadbBackend(): { backend: SadbBackendName; reason: string } {
  const p = probe();
  return xfrmPreferred(p) ?? p.auto.sadb; // XFRM before PF_KEY on Linux when it can do ESP (src/xfrm/probe.ts)
}

/** Open the SA database. The returned object has `.backend` naming what was chosen. */
export async function openSadb(opts: OpenSadbOptions = {}): Promise<Sadb> {
  if (opts === null || typeof opts !== 'object') throw typeError('options', 'an object', opts);
  const want = opts.backend ?? 'auto';
  if (want !== 'auto' && !(want in factories)) {
    throw typeError('backend', "'auto', 'pfkey', 'xfrm' or 'userland'", want);
  }
  const name: SadbBackendName = want === 'auto' ? chooseSadbBackend().backend : want;
  return factories[name]()(opts);
}
