// probeXfrm(): can this kernel do ESP over XFRM netlink? The host's facts, /proc/crypto, and a GETSADINFO round trip.

import { cryptoTemplates, hostFacts, readProcCrypto, xfrmVerdict, type KernelEspSupport } from '../probe';
import { Xfrm } from './client';
import { boolOption, durationMs, readOptions } from '../core/options';

export interface XfrmProbe {
  /** A NETLINK_XFRM socket opens (the kernel has CONFIG_XFRM_USER). */
  netlink: { ok: boolean; code?: string; reason?: string };
  /** The kernel answered GETSADINFO (needs CAP_NET_ADMIN; absent when not asked or refused). */
  sadInfo?: { count: number; hashCount: number; hashMax: number };
  /** Why GETSADINFO failed, when it did. */
  sadInfoError?: string;
  /** esp4/esp6: loaded, built in, installed as a module, or in the kernel config (src/probe/facts.ts's rule). */
  kernelEsp: KernelEspSupport;
  /**
   * Which of CRYPTO_TEMPLATES /proc/crypto lists right now. A missing one may still load on demand, so this is
   * advice, not a verdict.
   */
  crypto: Record<string, boolean>;
  /** XFRM can install ESP SAs: the socket opens and the kernel has esp4. */
  canDoEsp: boolean;
  reason: string;
}

/**
 * Probe XFRM: socket facts and ESP availability, /proc/crypto, and a GETSADINFO round trip when `askKernel` (default
 * true; needs CAP_NET_ADMIN, refused quietly otherwise). Never fails for what the host lacks (a bad option rejects,
 * naming it); changes nothing.
 */
export async function probeXfrm(options: { askKernel?: boolean; timeout?: number } = {}): Promise<XfrmProbe> {
  const o = readOptions(options, ['askKernel', 'timeout'] as const);
  const askKernel = boolOption(o.askKernel, 'askKernel', true);
  const timeout = durationMs(o.timeout, 'timeout', 1, 2000);
  const p = hostFacts();
  const v = xfrmVerdict(p);
  const out: XfrmProbe = {
    netlink: p.facts.xfrm.ok ? { ok: true } : { ok: false, code: p.facts.xfrm.code, reason: p.facts.xfrm.reason },
    kernelEsp: p.kernelEsp,
    crypto: cryptoTemplates(readProcCrypto()),
    canDoEsp: v.canDoEsp,
    reason: v.reason,
  };
  if (p.facts.xfrm.ok && askKernel) {
    let x: Xfrm | undefined;
    try {
      x = await Xfrm.open({ groups: [], timeout });
      out.sadInfo = await x.sadInfo();
    } catch (e) {
      out.sadInfoError = (e as Error).message;
    } finally {
      await x?.close();
    }
  }
  return out;
}
