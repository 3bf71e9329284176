// More host facts for probe(): capabilities, the IKE-socket bypass, the kernel's crypto templates for natt's suites, kernel-version notes.

import * as os from 'node:os';
import { loadNative, nativeStatus, openEncapSocket } from '../native/binding';
import { applyBypass } from '../native/bypass';
import { readText } from './text';

/** The capabilities natt's work needs, in this process's effective set. */
export interface Privileges {
  /** CAP_NET_ADMIN: XFRM and PF_KEY changes, TUN devices, routes, the IKE-socket bypass. null: not known (not Linux). */
  netAdmin: boolean | null;
  /** CAP_NET_RAW: packet capture (natt capture). */
  netRaw: boolean | null;
  /** CAP_NET_BIND_SERVICE: ports below 1024 (IKE on 500). */
  netBindService: boolean | null;
  reason: string;
}

const CAP_NET_BIND_SERVICE = 10;
const CAP_NET_ADMIN = 12;
const CAP_NET_RAW = 13;

/** privileges()'s rule over a /proc/<pid>/status text (undefined: none to read). */
export function linuxPrivileges(status: string | undefined, uid: number | undefined): Privileges {
  const m = status?.match(/^CapEff:\s*([0-9a-fA-F]+)\s*$/m);
  if (!m) return { netAdmin: null, netRaw: null, netBindService: null, reason: 'no CapEff line in /proc/self/status to read' };
  const eff = BigInt(`0x${m[1]}`);
  const has = (bit: number): boolean => (eff >> BigInt(bit)) & 1n ? true : false;
  const netAdmin = has(CAP_NET_ADMIN);
  const netRaw = has(CAP_NET_RAW);
  const netBindService = has(CAP_NET_BIND_SERVICE);
  const who = uid === 0 ? 'root' : `uid ${uid ?? '?'}`;
  const list = [netAdmin && 'CAP_NET_ADMIN', netRaw && 'CAP_NET_RAW', netBindService && 'CAP_NET_BIND_SERVICE'].filter(Boolean).join(', ');
  const missing = [!netAdmin && 'CAP_NET_ADMIN (kernel SAs and policies, TUN, the IKE bypass)', !netRaw && 'CAP_NET_RAW (natt capture)'].filter(Boolean);
  return {
    netAdmin,
    netRaw,
    netBindService,
    reason:
      `${who}, effective capabilities 0x${m[1].replace(/^0+(?=.)/, '')}: ${list || 'none of natt\'s'}` +
      (missing.length ? `; without ${missing.join(', ')}: run as root or grant them (setcap cap_net_admin,cap_net_raw+ep on node)` : ''),
  };
}

/** This process's capabilities (Linux); elsewhere unknown (root or not decides there). */
export function privileges(): Privileges {
  if (process.platform !== 'linux') {
    const root = process.getuid?.() === 0;
    return { netAdmin: null, netRaw: null, netBindService: null, reason: `${process.platform}: no capabilities; ${root ? 'running as root' : 'not root: kernel changes need root'}` };
  }
  return linuxPrivileges(readText('/proc/self/status'), process.getuid?.());
}

/** Whether an IKE socket can be exempted from the kernel's IPsec policies (what createIkeSockets and NattSockets do). */
export interface BypassSupport {
  ok: boolean;
  reason: string;
}

/** Try the per-socket bypass policy on a fresh loopback UDP socket (closed at once); changes nothing else. */
export function ikeBypassSupport(): BypassSupport {
  const addon = loadNative();
  if (!addon) return { ok: false, reason: `the native addon is not loaded: ${nativeStatus().reason}` };
  let fd: number;
  try {
    fd = openEncapSocket(4, '127.0.0.1', 0, 0);
  } catch (e) {
    return { ok: false, reason: `no UDP socket to try it on: ${(e as Error).message}` };
  }
  try {
    const s = applyBypass(addon, fd, 4);
    return { ok: s.active, reason: s.reason };
  } finally {
    try {
      addon.closeFd(fd);
    } catch {
      // closed already
    }
  }
}

/** How the kernel stands with one crypto template natt's XFRM suites need. */
export type TemplateState = 'present' | 'loadable' | 'absent';

/** The kernel's crypto templates for natt's suites (XFRM names them; the userland engine needs none of them). */
export interface CryptoTemplateSupport {
  /**
   * Per template: 'present' (in /proc/crypto now), 'loadable' (its pieces are built in or installed as modules: the
   * kernel instantiates it on first use), 'absent' (neither).
   */
  templates: Record<string, TemplateState>;
  /** The AEAD templates (AES-GCM, AES-GMAC, ChaCha20-Poly1305) that are present or loadable. */
  aead: string[];
  reason: string;
}

/** Each template, its kernel config options and modules (all needed). */
const TEMPLATES: readonly { name: string; aead: boolean; config: string[]; modules: string[] }[] = [
  { name: 'rfc4106(gcm(aes))', aead: true, config: ['CONFIG_CRYPTO_GCM'], modules: ['gcm'] },
  { name: 'rfc4543(gcm(aes))', aead: true, config: ['CONFIG_CRYPTO_GCM'], modules: ['gcm'] },
  { name: 'rfc7539esp(chacha20,poly1305)', aead: true, config: ['CONFIG_CRYPTO_CHACHA20POLY1305'], modules: ['chacha20poly1305'] },
  { name: 'cbc(aes)', aead: false, config: ['CONFIG_CRYPTO_CBC'], modules: ['cbc'] },
  { name: 'hmac(sha256)', aead: false, config: ['CONFIG_CRYPTO_HMAC', 'CONFIG_CRYPTO_SHA256'], modules: ['hmac'] },
  { name: 'hmac(sha1)', aead: false, config: ['CONFIG_CRYPTO_HMAC', 'CONFIG_CRYPTO_SHA1'], modules: ['hmac'] },
];

/** cryptoTemplateSupport()'s rule over given texts: /proc/crypto, the kernel config, modules.builtin, modules.dep. */
export function linuxCryptoTemplates(texts: { crypto?: string; config?: string; builtin?: string; dep?: string }): CryptoTemplateSupport {
  const names = new Set<string>();
  for (const line of (texts.crypto ?? '').split('\n')) {
    const m = /^(name|driver)\s*:\s*(.+)$/.exec(line);
    if (m) names.add(m[2].trim());
  }
  const configured = (opt: string): boolean => new RegExp(`^${opt}=[ym]$`, 'm').test(texts.config ?? '');
  const moduleThere = (mod: string): boolean => {
    const ko = new RegExp(`/${mod}\\.ko(\\.[a-z]+)?(:|$)`, 'm');
    return ko.test(texts.builtin ?? '') || ko.test(texts.dep ?? '');
  };
  const templates: Record<string, TemplateState> = {};
  for (const t of TEMPLATES) {
    if (names.has(t.name)) templates[t.name] = 'present';
    else if (texts.config !== undefined ? t.config.every(configured) : t.modules.every(moduleThere)) templates[t.name] = 'loadable';
    else templates[t.name] = 'absent';
  }
  const aead = TEMPLATES.filter((t) => t.aead && templates[t.name] !== 'absent').map((t) => t.name);
  const absent = Object.keys(templates).filter((n) => templates[n] === 'absent');
  const source = texts.crypto === undefined ? 'no /proc/crypto' : '/proc/crypto';
  const evidence = texts.config !== undefined ? 'the kernel config' : texts.builtin !== undefined || texts.dep !== undefined ? 'the module lists' : 'nothing else';
  return {
    templates,
    aead,
    reason:
      `from ${source} and ${evidence}: ` +
      (absent.length ? `absent: ${absent.join(', ')} (XFRM refuses SAs of those suites; the userland engine does them with OpenSSL)` : 'every suite natt maps to XFRM is there'),
  };
}

/** The kernel's crypto templates for natt's XFRM suites (Linux); changes nothing (nothing is instantiated). */
export function cryptoTemplateSupport(): CryptoTemplateSupport {
  if (process.platform !== 'linux') {
    const templates = Object.fromEntries(TEMPLATES.map((t) => [t.name, 'absent'])) as Record<string, TemplateState>;
    return { templates, aead: [], reason: `${process.platform} has no Linux crypto API (its kernel IPsec, if any, picks its own ciphers)` };
  }
  const rel = os.release();
  return linuxCryptoTemplates({
    crypto: readText('/proc/crypto'),
    config: readText('/proc/config.gz') ?? readText(`/boot/config-${rel}`),
    builtin: readText(`/lib/modules/${rel}/modules.builtin`),
    dep: readText(`/lib/modules/${rel}/modules.dep`),
  });
}

/** [major, minor] of a Linux release string ('6.1.0-18-amd64' → [6, 1]), or undefined. */
export function linuxVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * What this kernel version means for natt, in plain words (Linux; empty elsewhere). `kernelEsp` false (the kernel has
 * no esp4/esp6) puts that first: the version notes on kernel ESP then describe what a kernel with ESP would do.
 */
export function kernelNotes(release: string, platform: NodeJS.Platform = process.platform, kernelEsp?: boolean): string[] {
  if (platform !== 'linux') return [];
  const v = linuxVersion(release);
  if (!v) return [`cannot read a version from the release ${JSON.stringify(release.slice(0, 40))}`];
  const at = (major: number, minor: number): boolean => v[0] > major || (v[0] === major && v[1] >= minor);
  const notes: string[] = [];
  if (kernelEsp === false) {
    notes.push('this kernel has no ESP: XFRM can hold SAs but carries no ESP; the userland engine (natt tunnel, the userland backend) does the datapath');
  }
  if (!at(4, 13)) notes.push('before 4.13: no tcp_available_ulp, so ESP in TCP in the kernel cannot be probed (and there is none before 5.6)');
  if (!at(5, 6)) notes.push('before 5.6: no ESP in TCP in the kernel (espintcp, RFC 8229/9329); the userland engine carries it');
  else if (!at(5, 8)) notes.push('5.6 and 5.7: espintcp for IPv4 only (IPv6 came with 5.8)');
  if (!at(5, 8)) notes.push('before 5.8: no kernel ESP in UDP over IPv6 (UDP_ENCAP on IPv6 sockets came with 5.8); IPv6 NAT-T needs the userland engine');
  if (!at(6, 10)) {
    notes.push(
      'before 6.10 (our reading): no XFRMA_NAT_KEEPALIVE_INTERVAL or XFRMA_SA_DIR, so the kernel ignores an SA\'s natt.keepaliveInterval ' +
        '(it reads back without it): send NAT keepalives from userland (the engine\'s keepaliveSeconds, or your IKE daemon)',
    );
  } else {
    notes.push('6.10 and later: the kernel sends NAT keepalives itself for outbound SAs with natt.keepaliveInterval (marked outbound with XFRMA_SA_DIR, which 6.12 requires for it)');
  }
  return notes;
}
