// probeXfrm(): can this kernel do ESP over XFRM netlink? Learnt without changing the system (no SA, no module load).

import * as fs from 'node:fs';
import { probe, type KernelEspSupport, type ProbeResult } from '../probe';
import type { SadbBackendName } from '../sadb/types';
import { Xfrm } from './client';

/** Crypto templates the XFRM backend maps to, and whether /proc/crypto lists them now (loaded or built in). */
export const CRYPTO_TEMPLATES = ['rfc4106(gcm(aes))', 'rfc4543(gcm(aes))', 'rfc7539esp(chacha20,poly1305)', 'cbc(aes)', 'hmac(sha256)', 'hmac(sha1)'];

export interface XfrmProbe {
  /** A NETLINK_XFRM socket opens (the kernel has CONFIG_XFRM_USER). */
  netlink: { ok: boolean; code?: string; reason?: string };
  /** The kernel answered GETSADINFO (needs CAP_NET_ADMIN; absent when not asked or refused). */
  sadInfo?: { count: number; hashCount: number; hashMax: number };
  /** Why GETSADINFO failed, when it did. */
  sadInfoError?: string;
  /** esp4/esp6: loaded, built in, installed as a module, or in the kernel config (src/probe.ts's rule). */
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

/** /proc/crypto text → which templates it names (by `name` or `driver`). */
export function cryptoTemplates(procCrypto: string | undefined): Record<string, boolean> {
  const names = new Set<string>();
  for (const line of (procCrypto ?? '').split('\n')) {
    const m = /^(name|driver)\s*:\s*(.+)$/.exec(line);
    if (m) names.add(m[2].trim());
  }
  const out: Record<string, boolean> = {};
  for (const t of CRYPTO_TEMPLATES) out[t] = names.has(t);
  return out;
}

/** The verdict from facts already gathered (src/probe.ts's ProbeResult). */
export function xfrmVerdict(p: Pick<ProbeResult, 'platform' | 'facts' | 'kernelEsp'>): { canDoEsp: boolean; reason: string } {
  if (p.platform !== 'linux') return { canDoEsp: false, reason: `XFRM netlink is Linux only (this is ${p.platform})` };
  if (!p.facts.xfrm.ok) return { canDoEsp: false, reason: `NETLINK_XFRM does not open: ${p.facts.xfrm.reason ?? p.facts.xfrm.code}` };
  if (!p.kernelEsp.v4) return { canDoEsp: false, reason: `XFRM netlink works but the kernel has no ESP: ${p.kernelEsp.reason}` };
  return { canDoEsp: true, reason: `XFRM netlink opens and the kernel has ESP (${p.kernelEsp.reason})` };
}

/**
 * The XFRM part of chooseSadbBackend(): on Linux, XFRM is preferred over PF_KEY whenever it can do ESP
 * (PF_KEY cannot install AEAD SAs and truncates HMAC-SHA2-256). undefined: XFRM cannot, let the rest decide.
 */
export function xfrmPreferred(p: Pick<ProbeResult, 'platform' | 'facts' | 'kernelEsp'>): { backend: SadbBackendName; reason: string } | undefined {
  const v = xfrmVerdict(p);
  return v.canDoEsp ? { backend: 'xfrm', reason: `kernel ESP via XFRM netlink: ${v.reason}` } : undefined;
}

/**
 * Probe XFRM: socket facts and ESP availability (src/probe.ts), /proc/crypto, and a GETSADINFO round trip when
 * `askKernel` (default true; needs CAP_NET_ADMIN, refused quietly otherwise). Never throws; changes nothing.
 */
export async function probeXfrm(opts: { askKernel?: boolean; timeout?: number } = {}): Promise<XfrmProbe> {
  const p = probe();
  let procCrypto: string | undefined;
  try {
    procCrypto = fs.readFileSync('/proc/crypto', 'latin1');
  } catch {
    procCrypto = undefined;
  }
  const v = xfrmVerdict(p);
  const out: XfrmProbe = {
    netlink: p.facts.xfrm.ok ? { ok: true } : { ok: false, code: p.facts.xfrm.code, reason: p.facts.xfrm.reason },
    kernelEsp: p.kernelEsp,
    crypto: cryptoTemplates(procCrypto),
    canDoEsp: v.canDoEsp,
    reason: v.reason,
  };
  if (p.facts.xfrm.ok && opts.askKernel !== false) {
    let x: Xfrm | undefined;
    try {
      x = await Xfrm.open({ groups: [], timeout: opts.timeout ?? 2000 });
      out.sadInfo = await x.sadInfo();
    } catch (e) {
      out.sadInfoError = (e as Error).message;
    } finally {
      await x?.close();
    }
  }
  return out;
}
