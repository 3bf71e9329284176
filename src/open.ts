// openSadb(): the one backend selector, above every backend: pfkey, xfrm, userland or a daemon, by name or by the 'auto' rule.

import type { OpenSadbOptions, Sadb, SadbBackendName, SadbFactory } from './sadb/types';
import type { PfKey } from './pfkey/client';
import type { Xfrm } from './xfrm/client';
import type { UserlandSadb } from './userland/sadb';
import type { DaemonSadb } from './control/client';
import { rangeError } from './errors';
import { boolOption, durationMs, oneOf, readOptions, stringOption } from './core/options';
import { chooseSadbBackend } from './probe';

export type { OpenSadbOptions } from './sadb/types';
export { chooseSadbBackend } from './probe';

const BACKENDS = ['auto', 'pfkey', 'xfrm', 'userland', 'daemon'] as const;
const OPTION_NAMES = ['backend', 'dialect', 'revealKeys', 'timeout', 'path'] as const;

// Each backend's module is loaded only when asked for (the kernel ones need the native addon).
const factories: Record<SadbBackendName, () => Promise<SadbFactory>> = {
  pfkey: async () => (await import('./pfkey/client')).openPfKey,
  xfrm: async () => (await import('./xfrm/client')).openXfrm,
  userland: async () => (await import('./userland')).createUserlandSadb,
  daemon: async () => (await import('./control/client')).openDaemonSadb,
};

/**
 * Open the SA database. The result has `.backend` naming what was chosen; with a literal `backend` it is typed as
 * that backend's class (`openSadb({ backend: 'userland' })` is a UserlandSadb, ready for a UserlandEngine).
 * Options are checked at once (own properties only, unknown names refused).
 */
export function openSadb(opts: OpenSadbOptions & { backend: 'userland' }): Promise<UserlandSadb>;
export function openSadb(opts: OpenSadbOptions & { backend: 'pfkey' }): Promise<PfKey>;
export function openSadb(opts: OpenSadbOptions & { backend: 'xfrm' }): Promise<Xfrm>;
export function openSadb(opts: OpenSadbOptions & { backend: 'daemon' }): Promise<DaemonSadb>;
export function openSadb(opts?: OpenSadbOptions): Promise<Sadb>;
export async function openSadb(opts: OpenSadbOptions = {}): Promise<Sadb> {
  const o = readOptions(opts, OPTION_NAMES);
  const want = oneOf(o.backend, 'backend', BACKENDS, 'auto');
  const shared: Omit<OpenSadbOptions, 'backend'> = {
    dialect: oneOf(o.dialect, 'dialect', ['linux', 'netbsd', 'freebsd'] as const, undefined),
    revealKeys: boolOption(o.revealKeys, 'revealKeys', undefined),
    timeout: durationMs(o.timeout, 'timeout', 1, undefined),
  };
  if (o.path !== undefined) {
    if (want !== 'daemon') throw rangeError('path', "absent unless backend is 'daemon' (the daemon's control socket)", o.path);
    shared.path = stringOption(o.path, 'path');
  }
  const name: SadbBackendName = want === 'auto' ? chooseSadbBackend().backend : want;
  const factory = await factories[name]();
  return factory(shared);
}
