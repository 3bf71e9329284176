// What backend 'auto' picks, as pure rules over probe()'s facts: one rule for the NAT-T socket, one for the SA database.

import type { SadbBackendName } from '../sadb/types';
import type { Fact, HostFacts, KernelEspSupport } from './facts';

/** A choice and why, in plain words. */
export interface Choice<B extends string> {
  backend: B;
  reason: string;
}

/** What the socket rule looks at. `udpEncap` is absent when it was not probed (a socket learns it by trying). */
export interface SocketRuleFacts {
  nativeLoaded: boolean;
  kernelEsp: KernelEspSupport;
  udpEncap?: Fact;
}

/**
 * The NAT-T socket: the kernel (UDP_ENCAP) only where it can also do ESP for this family. A kernel with UDP_ENCAP but
 * no ESP takes every ESP datagram off the socket and drops it for want of an SA, so a userland engine would never see
 * it. A refused encapsulation type at bind time falls back to userland too (src/natt/socket.ts).
 */
export function autoSocketBackend(f: SocketRuleFacts, family: 4 | 6 = 4): Choice<'kernel' | 'userland'> {
  if (!f.nativeLoaded) return { backend: 'userland', reason: 'the native addon is not loaded' };
  if (f.udpEncap && !f.udpEncap.ok) return { backend: 'userland', reason: `UDP_ENCAP is not available: ${f.udpEncap.reason}` };
  const esp = family === 4 ? f.kernelEsp.v4 : f.kernelEsp.v6;
  if (!esp) {
    return {
      backend: 'userland',
      reason: `the kernel cannot do ESP for IPv${family} (${f.kernelEsp.reason}): it would swallow ESP that only the userland engine can decrypt`,
    };
  }
  return { backend: 'kernel', reason: `the kernel does ESP-in-UDP itself (${f.kernelEsp.reason})` };
}

type XfrmFacts = Pick<HostFacts, 'platform' | 'facts' | 'kernelEsp'>;

/** Can XFRM netlink install ESP SAs here? (Linux, the socket opens, the kernel has esp4.) */
export function xfrmVerdict(p: XfrmFacts): { canDoEsp: boolean; reason: string } {
  if (p.platform !== 'linux') return { canDoEsp: false, reason: `XFRM netlink is Linux only (this is ${p.platform})` };
  if (!p.facts.xfrm.ok) return { canDoEsp: false, reason: `NETLINK_XFRM does not open: ${p.facts.xfrm.reason ?? p.facts.xfrm.code}` };
  if (!p.kernelEsp.v4) return { canDoEsp: false, reason: `XFRM netlink works but the kernel has no ESP: ${p.kernelEsp.reason}` };
  return { canDoEsp: true, reason: `XFRM netlink opens and the kernel has ESP (${p.kernelEsp.reason})` };
}

/** The XFRM part of the SA-database rule: XFRM, when it can do ESP; undefined otherwise (the rest decides). */
export function xfrmPreferred(p: XfrmFacts): Choice<SadbBackendName> | undefined {
  const v = xfrmVerdict(p);
  return v.canDoEsp ? { backend: 'xfrm', reason: `kernel ESP via XFRM netlink: ${v.reason}` } : undefined;
}

/**
 * The SA database: userland where the kernel cannot do ESP; else XFRM on Linux (PF_KEY there cannot install AEAD SAs
 * and truncates HMAC-SHA2-256), else PF_KEY (the BSDs), else userland.
 */
export function autoSadbBackend(p: XfrmFacts): Choice<SadbBackendName> {
  if (!p.kernelEsp.v4) return { backend: 'userland', reason: 'the kernel cannot do ESP, so the userland engine keeps the SAs' };
  const x = xfrmPreferred(p);
  if (x) return x;
  if (p.facts.pfkey.ok) return { backend: 'pfkey', reason: 'kernel ESP via PF_KEY' };
  return { backend: 'userland', reason: 'the kernel has ESP but neither XFRM nor PF_KEY opens' };
}
