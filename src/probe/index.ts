// probe(): this host's facts and what 'auto' picks from them; chooseSadbBackend() for the SA database alone.

import { autoSadbBackend, autoSocketBackend, type Choice } from './auto';
import { hostFacts, type HostFacts } from './facts';
import type { SadbBackendName } from '../sadb/types';

export { kernelEspSupport, linuxKernelEsp, espInTcpSupport, linuxEspInTcp, hostFacts, nativeFacts, cryptoTemplates, readProcCrypto, CRYPTO_TEMPLATES } from './facts';
export type { Fact, KernelEspSupport, EspInTcpSupport, LinuxKernelTexts, HostFacts, SocketFacts } from './facts';
export {
  privileges,
  linuxPrivileges,
  ikeBypassSupport,
  cryptoTemplateSupport,
  linuxCryptoTemplates,
  kernelNotes,
  linuxVersion,
  type Privileges,
  type BypassSupport,
  type CryptoTemplateSupport,
  type TemplateState,
} from './extra';
export { autoSadbBackend, autoSocketBackend, xfrmPreferred, xfrmVerdict, type Choice, type SocketRuleFacts } from './auto';

/** probe()'s answer: the facts, and what backend 'auto' picks for the NAT-T socket (IPv4) and the SA database, and why. */
export interface ProbeResult extends HostFacts {
  auto: {
    nattSocket: Choice<'kernel' | 'userland'>;
    sadb: Choice<SadbBackendName>;
  };
}

/** Probe this host. Opens and closes a few sockets; changes nothing. */
export function probe(): ProbeResult {
  const f = hostFacts();
  return {
    ...f,
    auto: {
      nattSocket: autoSocketBackend({ nativeLoaded: f.native.loaded, kernelEsp: f.kernelEsp, udpEncap: f.facts.udpEncap4 }, 4),
      sadb: autoSadbBackend(f),
    },
  };
}

/** Which SA-database backend 'auto' picks on this host, and why. */
export function chooseSadbBackend(): Choice<SadbBackendName> {
  return autoSadbBackend(hostFacts());
}
