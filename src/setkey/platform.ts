// Which setkey features each backend can do: algorithms, forward policies, priorities, reqid widths, PF_KEY quirks.

import type { Sadb } from '../sadb/types';
import { PRIORITY_DEFAULT } from './policy';

/**
 * What a setkey file is read for. `'any'` is natt's shared model alone; the others add what one backend can and
 * cannot do. The PF_KEY ones also choose setkey's OS-specific meanings (Linux PF_KEY's 96-bit `hmac-sha256`).
 */
export type SetkeyPlatform = 'any' | 'userland' | 'xfrm' | 'pfkey-linux' | 'pfkey-netbsd' | 'pfkey-freebsd';

export const SETKEY_PLATFORMS: readonly SetkeyPlatform[] = ['any', 'userland', 'xfrm', 'pfkey-linux', 'pfkey-netbsd', 'pfkey-freebsd'];

export interface PlatformCaps {
  /** In words, for messages: "the userland backend", "Linux PF_KEY". */
  label: string;
  /** ESP encryption algorithms (model names). */
  encryption: ReadonlySet<string>;
  /** ESP integrity algorithms (model names, 'none' included). */
  integrity: ReadonlySet<string>;
  /** AH integrity algorithms. */
  ahIntegrity: ReadonlySet<string>;
  compression: ReadonlySet<string>;
  forwardPolicies: boolean;
  priorities: boolean;
  /** Largest reqid a policy template carries (BSD PF_KEY: 16 bits). */
  maxTemplateReqid: number;
  /** Largest replay window (PF_KEY: 8 bits). */
  maxReplay: number;
  /** `hmac-sha256` means Linux PF_KEY's 96-bit truncation. */
  linuxPfkey: boolean;
  /** The kernel reads the ports of tunnel endpoints (BSD NAT-T); natt's model has none to give it. */
  templatePortsMatter: boolean;
  /** The kernel honours -f zero-pad / random-pad (KAME); natt's model cannot pass them. */
  padFlagsMatter: boolean;
  /** Priority every policy gets when the file names none (Linux setkey: 'def'). */
  defaultPriority?: number;
  /** setkey's default semantics there: 'rfc' adds a fwd policy for every in policy (Linux, setkey -r). */
  semantics: 'rfc' | 'kernel';
  /** Takes ESP with null encryption and no integrity (RFC 4303 §3.2 forbids it; the kernels install it anyway). */
  nullWithoutIntegrity: boolean;
  /** setkey's default SA mode when -m is absent: 'any' on the BSDs; undefined = the backend's (transport). */
  defaultMode?: 'any';
}

const MODEL_ENC = ['aes-cbc', 'aes-ctr', 'aes-gcm-8', 'aes-gcm-12', 'aes-gcm-16', 'aes-gmac', 'chacha20-poly1305', '3des-cbc', 'null'];
const MODEL_AUTH = ['hmac-md5-96', 'hmac-sha1-96', 'hmac-sha2-256-128', 'hmac-sha2-256-96', 'hmac-sha2-384-192', 'hmac-sha2-512-256', 'aes-xcbc-96', 'none'];
const COMP = ['deflate', 'lzs', 'oui'];

// The PF_KEY dialects' algorithm names (src/pfkey/dialects.ts: test/setkey checks these lists against it).
const PFKEY_COMMON_ENC = ['des-cbc', '3des-cbc', 'cast128-cbc', 'blowfish-cbc', 'null', 'aes-cbc', 'aes-ctr', 'camellia-cbc'];
const PFKEY_COMMON_AUTH = ['none', 'hmac-md5-96', 'hmac-sha1-96', 'hmac-sha2-384-192', 'hmac-sha2-512-256', 'hmac-ripemd160-96', 'aes-xcbc-96'];
const GCM = ['aes-gcm-8', 'aes-gcm-12', 'aes-gcm-16', 'aes-gmac'];
const BSD_AUTH = [...PFKEY_COMMON_AUTH, 'hmac-sha2-256-128', 'keyed-md5', 'keyed-sha1'];

const set = (...lists: string[][]): ReadonlySet<string> => new Set(lists.flat());

const CAPS: Record<SetkeyPlatform, PlatformCaps> = {
  any: {
    label: "natt's SA model",
    encryption: set(MODEL_ENC),
    integrity: set(MODEL_AUTH),
    ahIntegrity: set(MODEL_AUTH),
    compression: set(COMP),
    forwardPolicies: true,
    priorities: true,
    maxTemplateReqid: 0xffff_ffff,
    maxReplay: 65536,
    linuxPfkey: false,
    templatePortsMatter: false,
    padFlagsMatter: false,
    defaultPriority: PRIORITY_DEFAULT,
    semantics: 'kernel',
    nullWithoutIntegrity: true,
  },
  userland: {
    label: 'the userland backend',
    // What the userland ESP engine implements (src/esp/suites.ts); AH and IPComp SAs are only stored there.
    encryption: set(['aes-gcm-8', 'aes-gcm-12', 'aes-gcm-16', 'aes-gmac', 'chacha20-poly1305', 'aes-cbc', 'null']),
    integrity: set(['hmac-sha1-96', 'hmac-sha2-256-128', 'hmac-sha2-256-96', 'hmac-sha2-384-192', 'hmac-sha2-512-256', 'none']),
    ahIntegrity: set(MODEL_AUTH),
    compression: set(COMP),
    forwardPolicies: true,
    priorities: true,
    maxTemplateReqid: 0xffff_ffff,
    maxReplay: 65536,
    linuxPfkey: false,
    templatePortsMatter: false,
    padFlagsMatter: false,
    defaultPriority: PRIORITY_DEFAULT,
    semantics: 'kernel',
    nullWithoutIntegrity: false,
  },
  xfrm: {
    label: 'Linux XFRM',
    encryption: set(MODEL_ENC),
    integrity: set(MODEL_AUTH),
    ahIntegrity: set(MODEL_AUTH),
    compression: set(COMP),
    forwardPolicies: true,
    priorities: true,
    maxTemplateReqid: 0xffff_ffff,
    maxReplay: 255,
    linuxPfkey: false,
    templatePortsMatter: false,
    padFlagsMatter: false,
    defaultPriority: PRIORITY_DEFAULT,
    semantics: 'rfc',
    nullWithoutIntegrity: true,
  },
  'pfkey-linux': {
    label: 'Linux PF_KEY',
    encryption: set(PFKEY_COMMON_ENC, ['twofish-cbc']),
    integrity: set(PFKEY_COMMON_AUTH, ['hmac-sha2-256-96']),
    ahIntegrity: set(PFKEY_COMMON_AUTH, ['hmac-sha2-256-96']),
    compression: set(COMP),
    forwardPolicies: true,
    priorities: true,
    maxTemplateReqid: 0xffff_ffff,
    maxReplay: 255,
    linuxPfkey: true,
    templatePortsMatter: false,
    padFlagsMatter: false,
    defaultPriority: PRIORITY_DEFAULT,
    semantics: 'rfc',
    nullWithoutIntegrity: true,
  },
  'pfkey-netbsd': {
    label: 'NetBSD PF_KEY',
    encryption: set(PFKEY_COMMON_ENC, GCM),
    integrity: set(BSD_AUTH),
    ahIntegrity: set(BSD_AUTH),
    compression: set(COMP),
    forwardPolicies: false,
    priorities: false,
    maxTemplateReqid: 0xffff,
    maxReplay: 255,
    linuxPfkey: false,
    templatePortsMatter: true,
    padFlagsMatter: true,
    semantics: 'kernel',
    nullWithoutIntegrity: true,
    defaultMode: 'any',
  },
  'pfkey-freebsd': {
    label: 'FreeBSD PF_KEY',
    encryption: set(PFKEY_COMMON_ENC, GCM, ['chacha20-poly1305']),
    integrity: set(BSD_AUTH),
    ahIntegrity: set(BSD_AUTH),
    compression: set(COMP),
    forwardPolicies: false,
    priorities: true,
    maxTemplateReqid: 0xffff,
    maxReplay: 255,
    linuxPfkey: false,
    templatePortsMatter: true,
    padFlagsMatter: true,
    semantics: 'kernel',
    nullWithoutIntegrity: true,
    defaultMode: 'any',
  },
};

export function platformCaps(p: SetkeyPlatform): PlatformCaps {
  return CAPS[p];
}

/** The platform an SA database is: its backend, and for PF_KEY the dialect it speaks. */
export function platformOf(sadb: Pick<Sadb, 'backend'>): SetkeyPlatform {
  const b = (sadb as { backend?: unknown }).backend;
  if (b === 'userland') return 'userland';
  if (b === 'xfrm') return 'xfrm';
  if (b === 'pfkey') {
    const d = (sadb as { dialect?: { name?: unknown } }).dialect?.name;
    if (d === 'netbsd' || d === 'freebsd' || d === 'linux') return `pfkey-${d}`;
    return process.platform === 'netbsd' ? 'pfkey-netbsd' : process.platform === 'freebsd' ? 'pfkey-freebsd' : 'pfkey-linux';
  }
  return 'any';
}
