// How kernel tests put SAs and policies into the guest kernel: natt's own pfkey/xfrm client, or `ip xfrm` until it exists.
import { openSadb } from '../../../src/open';
import { NattUnsupportedError } from '../../../src/errors';
import type { Sadb, SecurityAssociation, SecurityPolicy } from '../../../src/sadb/types';
import { ip, hexKey } from './guest';

/** How SAs and policies get into the guest kernel: natt's own client, or `ip xfrm` until that client exists. */
export interface Installer {
  label: string;
  addSa(sa: SecurityAssociation): Promise<void>;
  updateSa(sa: SecurityAssociation): Promise<void>;
  addPolicy(p: SecurityPolicy): Promise<void>;
  close(): Promise<void>;
}

const XFRM_ALG: Record<string, (key: Uint8Array) => string[]> = {
  'aes-cbc': (k) => ['enc', 'cbc(aes)', hexKey(k)],
  'aes-gcm-16': (k) => ['aead', 'rfc4106(gcm(aes))', hexKey(k), '128'],
  'chacha20-poly1305': (k) => ['aead', 'rfc7539esp(chacha20,poly1305)', hexKey(k), '128'],
  'hmac-sha1-96': (k) => ['auth-trunc', 'hmac(sha1)', hexKey(k), '96'],
  'hmac-sha2-256-128': (k) => ['auth-trunc', 'hmac(sha256)', hexKey(k), '128'],
};

function ipXfrmInstaller(why: string): Installer {
  const state = (verb: 'add' | 'update', sa: SecurityAssociation): void => {
    const args = ['xfrm', 'state', verb, 'src', sa.src, 'dst', sa.dst, 'proto', 'esp', 'spi', String(sa.spi)];
    args.push('mode', sa.mode ?? 'transport', 'reqid', String(sa.reqid ?? 0), 'replay-window', String(sa.replayWindow ?? 32));
    args.push(...XFRM_ALG[sa.encryption!.algorithm](sa.encryption!.key));
    if (sa.integrity && sa.integrity.algorithm !== 'none') args.push(...XFRM_ALG[sa.integrity.algorithm](sa.integrity.key));
    if (sa.natt) args.push('encap', 'espinudp', String(sa.natt.sport), String(sa.natt.dport), '0.0.0.0');
    ip(...args);
  };
  return {
    label: `SAs via ip xfrm: ${why}`,
    addSa: async (sa) => state('add', sa),
    updateSa: async (sa) => state('update', sa),
    async addPolicy(p) {
      const s = p.selector;
      const args = ['xfrm', 'policy', 'add', 'src', s.src, 'dst', s.dst];
      if (s.proto) args.push('proto', String(s.proto));
      if (s.sport) args.push('sport', String(s.sport));
      if (s.dport) args.push('dport', String(s.dport));
      args.push('dir', p.direction);
      for (const t of p.templates ?? []) {
        args.push('tmpl');
        if (t.mode === 'tunnel') args.push('src', t.src!, 'dst', t.dst!);
        args.push('proto', 'esp', 'reqid', String(t.reqid ?? 0), 'mode', t.mode);
      }
      ip(...args);
    },
    async close() {},
  };
}

function sadbInstaller(sadb: Sadb): Installer {
  return {
    label: `SAs via natt's ${sadb.backend} client`,
    addSa: (sa) => sadb.add(sa),
    updateSa: (sa) => sadb.update(sa),
    addPolicy: async (p) => void (await sadb.spdAdd(p)),
    close: () => sadb.close(),
  };
}

/** natt's client for `backend`; `ip xfrm` only while that backend is not built yet (said in the test title). */
export async function pickInstaller(backend: 'pfkey' | 'xfrm'): Promise<Installer> {
  try {
    return sadbInstaller(await openSadb({ backend }));
  } catch (err) {
    if (err instanceof NattUnsupportedError) return ipXfrmInstaller(String(err.message));
    throw err;
  }
}

/** Stands in where the suite is skipped (its body is still collected, so its tests are listed by name). */
export function unusedInstaller(reason: string): Installer {
  const no = async (): Promise<void> => {
    throw new Error(`skipped: ${reason}`);
  };
  return { label: 'SAs not installed', addSa: no, updateSa: no, addPolicy: no, close: async () => {} };
}

/** The installer for a suite, or a stand-in when the suite is skipped (no kernel calls on such a host). */
export async function installerFor(backend: 'pfkey' | 'xfrm', missing: string | null): Promise<Installer> {
  return missing ? unusedInstaller(missing) : pickInstaller(backend);
}
