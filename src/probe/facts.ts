// Facts about this host, learnt without changing it: the addon, PF_KEY, XFRM, UDP_ENCAP, TUN, kernel ESP (in UDP and in TCP), /proc/crypto.

import * as os from 'node:os';
import { loadNative, nativeStatus, type NativeStatus } from '../native/binding';
import { adviceFor, type ErrorContext } from '../native/advice';
import { readText } from './text';
import { cryptoTemplateSupport, ikeBypassSupport, kernelNotes, privileges, type BypassSupport, type CryptoTemplateSupport, type Privileges } from './extra';

export interface Fact {
  ok: boolean;
  /** errno name when !ok (`'EAFNOSUPPORT'`), or `'ERR_NATT_NO_NATIVE'` when the addon is missing. */
  code?: string;
  errno?: number;
  /** Why not, in plain words. */
  reason?: string;
}

export interface KernelEspSupport {
  /** The kernel can do ESP for IPv4 / IPv6 (module loaded, built in, or autoloadable). */
  v4: boolean;
  v6: boolean;
  /** How that was learnt, in plain words. */
  reason: string;
}

/** What can be opened here, by facility. */
export interface SocketFacts {
  pfkey: Fact;
  xfrm: Fact;
  udpEncap4: Fact;
  udpEncap6: Fact;
  tun: Fact;
}

/**
 * Whether the kernel itself can carry ESP in TCP (RFC 9329): Linux's espintcp (>= 5.6). Learnt from
 * /proc/sys/net/ipv4/tcp_available_ulp, the kernel's list of registered TCP upper-layer protocols, which is the list
 * setsockopt(TCP_ULP, "espintcp") searches; espintcp cannot be a module (CONFIG_XFRM_ESPINTCP is a bool, registered
 * at boot from xfrm_init), so the list misses nothing, and reading it loads nothing (the setsockopt would try
 * request_module). The kernel config, when readable, is quoted as evidence. The userland engine over
 * connectNattTcp / listenNattTcp needs none of this.
 */
export interface EspInTcpSupport {
  /** The kernel can install and carry espintcp SAs: the ULP is registered and kernel ESP is there. */
  ok: boolean;
  /** 'espintcp' is in tcp_available_ulp (null: no such file, not Linux or a kernel before 4.13). */
  ulp: boolean | null;
  /** CONFIG_INET_ESPINTCP / CONFIG_INET6_ESPINTCP from the kernel config (null: no config to read). */
  config: { v4: boolean; v6: boolean } | null;
  /** In plain words, with the evidence. */
  reason: string;
}

/** Everything probe() learns before the 'auto' rules (src/probe/auto.ts) are applied. */
export interface HostFacts {
  platform: NodeJS.Platform;
  release: string;
  arch: string;
  node: string;
  native: NativeStatus;
  facts: SocketFacts;
  kernelEsp: KernelEspSupport;
  /** ESP in TCP in the kernel (espintcp). */
  espInTcp: EspInTcpSupport;
  /** CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE in this process's effective set. */
  privileges: Privileges;
  /** Whether an IKE socket can be exempted from the kernel's IPsec policies (tried on a loopback UDP socket). */
  ikeBypass: BypassSupport;
  /** The kernel crypto templates natt's XFRM suites map to (the AEADs among them). */
  cryptoTemplates: CryptoTemplateSupport;
  /** What this kernel version means for natt, in plain words. */
  kernelNotes: string[];
}

/** Texts kernelEspSupport() reads on Linux (undefined: file absent). */
export interface LinuxKernelTexts {
  modules?: string;
  builtin?: string;
  dep?: string;
  config?: string;
}

/** One family's answer from Linux's module lists and kernel config, with the reason. */
function linuxEsp(mod: 'esp4' | 'esp6', option: string, rel: string, texts: LinuxKernelTexts): [boolean, string] {
  if (texts.modules?.split('\n').some((l) => l.startsWith(`${mod} `))) return [true, `${mod} is loaded`];
  const ko = new RegExp(`/${mod}\\.ko(\\.[a-z]+)?(:|$)`, 'm');
  if (texts.builtin && ko.test(texts.builtin)) return [true, `${mod} is built into the kernel`];
  if (texts.dep && ko.test(texts.dep)) return [true, `${mod} is available as a module (the kernel autoloads it)`];
  const m = texts.config?.match(new RegExp(`^${option}=([ym])`, 'm'));
  if (m?.[1] === 'y') return [true, `${option}=y in the kernel config`];
  if (m?.[1] === 'm') return [false, `${option}=m but no ${mod} module is installed under /lib/modules/${rel}`];
  if (texts.config) return [false, `the kernel was built without ${option} (no ${mod})`];
  return [false, `no ${mod} found (not loaded, not in /lib/modules/${rel}, no kernel config to read)`];
}

/** kernelEspSupport()'s Linux rule over given texts: loaded, built in, autoloadable module, else the config. */
export function linuxKernelEsp(rel: string, texts: LinuxKernelTexts): KernelEspSupport {
  const [v4, r4] = linuxEsp('esp4', 'CONFIG_INET_ESP', rel, texts);
  const [v6, r6] = linuxEsp('esp6', 'CONFIG_INET6_ESP', rel, texts);
  return { v4, v6, reason: `IPv4: ${r4}; IPv6: ${r6}` };
}

/**
 * Whether the kernel can do ESP, learnt without changing the system (nothing is loaded or configured):
 * Linux: esp4/esp6 in /proc/modules, modules.builtin or modules.dep, else the kernel config; the BSDs: a PF_KEY socket
 * opens (their IPsec stack brings both); macOS: never (no UDP_ENCAP).
 */
export function kernelEspSupport(): KernelEspSupport {
  if (process.platform === 'linux') {
    const rel = os.release();
    return linuxKernelEsp(rel, {
      modules: readText('/proc/modules'),
      builtin: readText(`/lib/modules/${rel}/modules.builtin`),
      dep: readText(`/lib/modules/${rel}/modules.dep`),
      config: readText('/proc/config.gz') ?? readText(`/boot/config-${rel}`),
    });
  }
  if (process.platform === 'netbsd' || process.platform === 'freebsd') {
    const pfkey = nativeFacts().pfkey;
    return pfkey.ok
      ? { v4: true, v6: process.platform === 'freebsd', reason: 'PF_KEY opens, so the kernel has IPsec (options IPSEC)' }
      : { v4: false, v6: false, reason: `PF_KEY does not open (${pfkey.code}): the kernel has no IPsec` };
  }
  return { v4: false, v6: false, reason: `${process.platform} has no kernel ESP-in-UDP that natt can drive` };
}

const USERLAND_TCP = 'the userland engine over connectNattTcp / listenNattTcp carries ESP in TCP without it';

/** espInTcpSupport()'s rule over given texts (tcp_available_ulp, the kernel config) and the kernel-ESP answer. */
export function linuxEspInTcp(texts: { ulp?: string; config?: string }, kernelEsp: KernelEspSupport): EspInTcpSupport {
  const ulp = texts.ulp === undefined ? null : texts.ulp.split(/\s+/).includes('espintcp');
  const opt = (name: string): boolean | null => {
    if (texts.config === undefined) return null;
    const m = texts.config.match(new RegExp(`^${name}=([ym])`, 'm'));
    return m !== null;
  };
  const v4 = opt('CONFIG_INET_ESPINTCP');
  const v6 = opt('CONFIG_INET6_ESPINTCP');
  const config = v4 === null || v6 === null ? null : { v4, v6 };
  const cfg = config === null ? '' : `; kernel config: CONFIG_INET_ESPINTCP ${config.v4 ? '=y' : 'not set'}, CONFIG_INET6_ESPINTCP ${config.v6 ? '=y' : 'not set'}`;
  const list = texts.ulp === undefined ? '' : ` (tcp_available_ulp: ${texts.ulp.trim() || 'empty'})`;
  if (ulp === null) return { ok: false, ulp, config, reason: `no /proc/sys/net/ipv4/tcp_available_ulp to read${cfg}: ${USERLAND_TCP}` };
  if (!ulp) return { ok: false, ulp, config, reason: `the kernel has no espintcp TCP ULP${list}: it was built without CONFIG_INET_ESPINTCP${cfg}; ${USERLAND_TCP}` };
  if (!kernelEsp.v4 && !kernelEsp.v6) return { ok: false, ulp, config, reason: `espintcp is registered${list} but the kernel has no ESP (${kernelEsp.reason}); ${USERLAND_TCP}` };
  return { ok: true, ulp, config, reason: `espintcp is registered${list} and the kernel has ESP: XFRM takes SAs with natt.type 'espintcp' (encap type 7)${cfg}` };
}

/** Whether the kernel itself carries ESP in TCP (Linux espintcp); changes nothing. */
export function espInTcpSupport(kernelEsp: KernelEspSupport = kernelEspSupport()): EspInTcpSupport {
  if (process.platform !== 'linux') {
    return { ok: false, ulp: null, config: null, reason: `${process.platform} has no kernel ESP in TCP (espintcp is Linux's); ${USERLAND_TCP}` };
  }
  const rel = os.release();
  return linuxEspInTcp({ ulp: readText('/proc/sys/net/ipv4/tcp_available_ulp'), config: readText('/proc/config.gz') ?? readText(`/boot/config-${rel}`) }, kernelEsp);
}

const contexts: Record<keyof SocketFacts, ErrorContext> = {
  pfkey: 'pfkey',
  xfrm: 'xfrm',
  udpEncap4: 'udp-encap',
  udpEncap6: 'udp-encap',
  tun: 'tun',
};

/** Which facilities open here (the addon tries each and closes what it opened). */
export function nativeFacts(): SocketFacts {
  const addon = loadNative();
  const out = {} as SocketFacts;
  const raw = addon?.probe();
  for (const key of Object.keys(contexts) as (keyof SocketFacts)[]) {
    if (!raw) {
      out[key] = { ok: false, code: 'ERR_NATT_NO_NATIVE', reason: `the native addon is not loaded: ${nativeStatus().reason}` };
      continue;
    }
    const f = raw[key];
    out[key] = f.ok
      ? { ok: true }
      : { ok: false, code: f.code, errno: f.errno, reason: adviceFor(f.code ?? '', contexts[key]) ?? `${f.code}` };
  }
  return out;
}

/** The host's facts. Opens and closes a few sockets; changes nothing. */
export function hostFacts(): HostFacts {
  const kernelEsp = kernelEspSupport();
  return {
    platform: process.platform,
    release: os.release(),
    arch: process.arch,
    node: process.version,
    native: nativeStatus(),
    facts: nativeFacts(),
    kernelEsp,
    espInTcp: espInTcpSupport(kernelEsp),
    privileges: privileges(),
    ikeBypass: ikeBypassSupport(),
    cryptoTemplates: cryptoTemplateSupport(),
    kernelNotes: kernelNotes(os.release(), process.platform, kernelEsp.v4 || kernelEsp.v6),
  };
}

/** Crypto templates the XFRM backend maps to (the kernel names for natt's suites). */
export const CRYPTO_TEMPLATES = ['rfc4106(gcm(aes))', 'rfc4543(gcm(aes))', 'rfc7539esp(chacha20,poly1305)', 'cbc(aes)', 'hmac(sha256)', 'hmac(sha1)'];

/** This host's /proc/crypto, or undefined where there is none. */
export function readProcCrypto(): string | undefined {
  return readText('/proc/crypto');
}

/** /proc/crypto text → which of CRYPTO_TEMPLATES it names (by `name` or `driver`). */
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
