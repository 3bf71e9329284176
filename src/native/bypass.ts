// Per-socket IPsec bypass: the policy bytes each kernel takes (built here), set on an fd through the addon's setsockopt.
//
// An IKE socket must be exempt from the kernel's IPsec policies, or a policy that covers the two peers takes the
// IKE datagrams too: out, the kernel looks for an SA, raises an ACQUIRE for IKE itself and drops the datagram (the
// send still succeeds); in, the plain datagram fails the policy check. charon and racoon set a per-socket policy in
// each direction that says "no IPsec for this socket"; so does natt, on every NattSocket by default.

import type { NativeAddon } from './types';
import { withAdvice } from './advice';

/** Whether a socket is exempt from the kernel's IPsec policies, and why (not). */
export interface BypassState {
  active: boolean;
  reason: string;
}

/** One setsockopt that makes up the bypass. */
export interface BypassOption {
  level: number;
  name: number;
  bytes: Uint8Array;
  /** 'in' or 'out': which direction it exempts. */
  dir: 'in' | 'out';
}

/** struct xfrm_userpolicy_info on x86-64 and arm64 (the layout the XFRM codec uses, src/xfrm/structs.ts). */
const XFRM_USERPOLICY_INFO = 168;
const XFRM_POLICY_IN = 0;
const XFRM_POLICY_OUT = 1;
const XFRM_POLICY_ALLOW = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const XFRM_INF = 0xffff_ffff_ffff_ffffn;

/**
 * Linux: an xfrm_userpolicy_info with an empty selector of the socket's family (every address, port and protocol),
 * direction `dir`, action ALLOW and no templates: "this socket's traffic needs no SA". Byte and packet limits are
 * infinite, as `ip xfrm policy` sets them; the time limits 0 (none).
 */
export function xfrmBypassPolicy(family: 4 | 6, dir: 'in' | 'out'): Uint8Array {
  const b = new Uint8Array(XFRM_USERPOLICY_INFO);
  const v = new DataView(b.buffer);
  v.setUint16(40, family === 4 ? AF_INET : AF_INET6, true); // sel.family (host order)
  for (let i = 0; i < 4; i++) v.setBigUint64(56 + 8 * i, XFRM_INF, true); // lft soft/hard byte and packet limits
  b[160] = dir === 'in' ? XFRM_POLICY_IN : XFRM_POLICY_OUT;
  b[161] = XFRM_POLICY_ALLOW;
  return b;
}

const SADB_X_EXT_POLICY = 18;
const IPSEC_POLICY_BYPASS = 4;
const IPSEC_DIR_INBOUND = 1;
const IPSEC_DIR_OUTBOUND = 2;

/**
 * The BSDs (KAME): a struct sadb_x_policy of 16 bytes (length 2 in 64-bit words, extension SADB_X_EXT_POLICY,
 * type IPSEC_POLICY_BYPASS, direction in or out), host byte order, as ipsec_set_policy("in bypass") makes it.
 */
export function pfkeyBypassPolicy(dir: 'in' | 'out'): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint16(0, 2, true);
  v.setUint16(2, SADB_X_EXT_POLICY, true);
  v.setUint16(4, IPSEC_POLICY_BYPASS, true);
  b[6] = dir === 'in' ? IPSEC_DIR_INBOUND : IPSEC_DIR_OUTBOUND;
  return b;
}

/** The setsockopts that exempt a socket of `family` on `platform`, or a string saying why there are none. */
export function bypassOptions(addon: Pick<NativeAddon, 'constants'>, platform: NodeJS.Platform, family: 4 | 6): BypassOption[] | string {
  const c = addon.constants;
  const dirs = ['out', 'in'] as const;
  if (platform === 'linux') {
    const level = family === 4 ? c.IPPROTO_IP : c.IPPROTO_IPV6;
    const name = family === 4 ? c.IP_XFRM_POLICY : c.IPV6_XFRM_POLICY;
    return dirs.map((dir) => ({ level, name, dir, bytes: xfrmBypassPolicy(family, dir) }));
  }
  if (platform === 'netbsd' || platform === 'freebsd' || platform === 'openbsd' || platform === 'darwin') {
    const level = family === 4 ? c.IPPROTO_IP : c.IPPROTO_IPV6;
    const name = family === 4 ? c.IP_IPSEC_POLICY : c.IPV6_IPSEC_POLICY;
    if (name < 0) return `this OS has no ${family === 4 ? 'IP_IPSEC_POLICY' : 'IPV6_IPSEC_POLICY'} socket option`;
    return dirs.map((dir) => ({ level, name, dir, bytes: pfkeyBypassPolicy(dir) }));
  }
  return `${platform} has no per-socket IPsec policy natt knows`;
}

/** The refusal with its advice (what to do, or why it does not matter), from the one advice table. */
function failureReason(err: unknown): string {
  const e = withAdvice(err, 'ipsec-bypass') as { message?: string };
  return e.message ?? String(err);
}

/**
 * Exempt `fd` from the kernel's IPsec policies in both directions. Never throws: the answer says whether it holds.
 * Where it needs privilege (CAP_NET_ADMIN on Linux, root on the BSDs) and the process lacks it, `active` is false and
 * the reason says so; the socket works as before (only traffic no IPsec policy covers gets through).
 */
export function applyBypass(addon: NativeAddon, fd: number, family: 4 | 6, platform: NodeJS.Platform = process.platform): BypassState {
  const opts = bypassOptions(addon, platform, family);
  if (typeof opts === 'string') return { active: false, reason: opts };
  for (const o of opts) {
    try {
      addon.setSockOptBytes(fd, o.level, o.name, o.bytes);
    } catch (err) {
      return { active: false, reason: `the ${o.dir}bound bypass policy was refused (${failureReason(err)})` };
    }
  }
  const how = platform === 'linux' ? (family === 4 ? 'IP_XFRM_POLICY' : 'IPV6_XFRM_POLICY') : family === 4 ? 'IP_IPSEC_POLICY' : 'IPV6_IPSEC_POLICY';
  return { active: true, reason: `${how}: an allow (bypass) policy in and out on this socket: the kernel's IPsec policies do not apply to it` };
}
