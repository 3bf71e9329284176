// PF_KEY v2 numbers: the RFC 2367 core shared by every OS, and one dialect table per OS for what differs.

import { rangeError } from '../errors';
import { checkedInt, checkedObject } from '../core/cursor';
import { readingCallerValue } from '../core/options';

export const PF_KEY_V2 = 2;

/** Message types 1..22, the same on Linux, NetBSD and FreeBSD (RFC 2367 + KAME). */
export const SADB = {
  RESERVED: 0,
  GETSPI: 1,
  UPDATE: 2,
  ADD: 3,
  DELETE: 4,
  GET: 5,
  ACQUIRE: 6,
  REGISTER: 7,
  EXPIRE: 8,
  FLUSH: 9,
  DUMP: 10,
  X_PROMISC: 11,
  X_PCHANGE: 12,
  X_SPDUPDATE: 13,
  X_SPDADD: 14,
  X_SPDDELETE: 15,
  X_SPDGET: 16,
  X_SPDACQUIRE: 17,
  X_SPDDUMP: 18,
  X_SPDFLUSH: 19,
  X_SPDSETIDX: 20,
  X_SPDEXPIRE: 21,
  X_SPDDELETE2: 22,
  /** Linux and NetBSD only. */
  X_NAT_T_NEW_MAPPING: 23,
  /** Linux only. */
  X_MIGRATE: 24,
} as const;

/** SA types (sadb_msg_satype). */
export const SATYPE = { UNSPEC: 0, AH: 2, ESP: 3, RSVP: 5, OSPFV2: 6, RIPV2: 7, MIP: 8, X_IPCOMP: 9, X_TCPSIGNATURE: 11 } as const;
export const SASTATE = { LARVAL: 0, MATURE: 1, DYING: 2, DEAD: 3 } as const;
/** sadb_x_sa2 / ipsecrequest mode. */
export const IPSEC_MODE = { ANY: 0, TRANSPORT: 1, TUNNEL: 2, BEET: 3 } as const;
export const IPSEC_DIR = { ANY: 0, INBOUND: 1, OUTBOUND: 2, FWD: 3 } as const;
export const IPSEC_POLICY = { DISCARD: 0, NONE: 1, IPSEC: 2, ENTRUST: 3, BYPASS: 4 } as const;
export const IPSEC_LEVEL = { DEFAULT: 0, USE: 1, REQUIRE: 2, UNIQUE: 3 } as const;
export const IPSEC_ULPROTO_ANY = 255;

/**
 * What an extension number means, by layout name. 1..22 are common; 23..31 come from the dialect.
 * The names are the `name` field of decoded extensions (see codec.ts).
 */
export const COMMON_EXTENSIONS = {
  1: 'sa',
  2: 'lifetimeCurrent',
  3: 'lifetimeHard',
  4: 'lifetimeSoft',
  5: 'src',
  6: 'dst',
  7: 'proxy',
  8: 'keyAuth',
  9: 'keyEncrypt',
  10: 'identitySrc',
  11: 'identityDst',
  12: 'sensitivity',
  13: 'proposal',
  14: 'supportedAuth',
  15: 'supportedEncrypt',
  16: 'spirange',
  17: 'kmprivate',
  18: 'policy',
  19: 'sa2',
  20: 'nattType',
  21: 'nattSport',
  22: 'nattDport',
} as const;

export type CommonExtensionName = (typeof COMMON_EXTENSIONS)[keyof typeof COMMON_EXTENSIONS];
export type DialectExtensionName =
  | 'nattOa'
  | 'secCtx'
  | 'kmaddress'
  | 'filter'
  | 'nattOai'
  | 'nattOar'
  | 'nattFrag'
  | 'saReplay'
  | 'newAddressSrc'
  | 'newAddressDst'
  | 'lifetimeSwOffload'
  | 'lifetimeHwOffload'
  | 'ifHwOffload';
export type ExtensionName = CommonExtensionName | DialectExtensionName;

export type DialectName = 'linux' | 'netbsd' | 'freebsd';

/** PF_KEY algorithm ids of one OS, by natt's (IKEv2) names. `auth` is sadb_sa_auth, `encrypt` sadb_sa_encrypt. */
export interface DialectAlgorithms {
  encrypt: Record<string, number>;
  auth: Record<string, number>;
  compress: Record<string, number>;
  /**
   * sadb_sa_auth to send beside an AEAD: `'none'` (0) or `'gmac-by-key'` (FreeBSD's esp_init wants AES-GCM/GMAC
   * paired with SADB_X_AALG_AES{128,192,256}GMAC by key size, and ChaCha20-Poly1305 with its own auth id 14).
   */
  aeadAuth: 'none' | 'gmac-by-key';
}

export interface Dialect {
  name: DialectName;
  /** SADB_MAX: the highest message type. */
  msgMax: number;
  /** SADB_EXT_MAX. */
  extMax: number;
  /** Extension numbers above 22. */
  extensions: Record<number, DialectExtensionName>;
  /** sizeof(struct sadb_x_ipsecrequest): 16 on Linux (u32 reqid @8), 8 on the BSDs (u16 reqid @6). */
  ipsecRequestSize: 16 | 8;
  /** sockaddr header: Linux u16 family; BSD u8 sa_len + u8 family. */
  sockaddr: 'linux' | 'bsd';
  /** AF_INET6 (AF_INET is 2 everywhere). */
  afInet6: number;
  /** The UDP_ENCAP socket option number. */
  udpEncapOption: number;
  /** sadb_sa_flags bit for extended sequence numbers, 0 where PF_KEY has none. */
  esnFlag: number;
  /** Whether this OS's PF_KEY can install AEAD SAs (Linux cannot: ENOSYS; use XFRM). */
  aead: boolean;
  algorithms: DialectAlgorithms;
}

const commonEncrypt = { 'des-cbc': 2, '3des-cbc': 3, 'cast128-cbc': 6, 'blowfish-cbc': 7, null: 11, 'aes-cbc': 12, 'aes-ctr': 13, 'camellia-cbc': 22 };
const commonAuth = { none: 0, 'hmac-md5-96': 2, 'hmac-sha1-96': 3, 'hmac-sha2-384-192': 6, 'hmac-sha2-512-256': 7, 'hmac-ripemd160-96': 8, 'aes-xcbc-96': 9, null: 251 };
const commonCompress = { oui: 1, deflate: 2, lzs: 3 };
const gcm = { 'aes-gcm-8': 18, 'aes-gcm-12': 19, 'aes-gcm-16': 20, 'aes-gmac': 23 };

export const DIALECTS: Readonly<Record<DialectName, Dialect>> = Object.freeze({
  linux: {
    name: 'linux',
    msgMax: 24,
    extMax: 26,
    extensions: { 23: 'nattOa', 24: 'secCtx', 25: 'kmaddress', 26: 'filter' },
    ipsecRequestSize: 16,
    sockaddr: 'linux',
    afInet6: 10,
    udpEncapOption: 100,
    esnFlag: 0,
    aead: false,
    algorithms: {
      // Linux numbers AES-GCM/CCM/GMAC but af_key cannot install them (ENOSYS): they decode, convert.ts refuses them.
      encrypt: { ...commonEncrypt, ...gcm, 'aes-ccm-8': 14, 'aes-ccm-12': 15, 'aes-ccm-16': 16, 'sm4-cbc': 24, 'serpent-cbc': 252, 'twofish-cbc': 253 },
      // SADB_X_AALG_SHA2_256HMAC is installed with 96-bit truncation by Linux PF_KEY.
      auth: { ...commonAuth, 'hmac-sha2-256-96': 5, 'hmac-sm3': 10 },
      compress: { ...commonCompress, lzjh: 4 },
      aeadAuth: 'none',
    },
  },
  netbsd: {
    name: 'netbsd',
    msgMax: 23,
    extMax: 25,
    extensions: { 23: 'nattOai', 24: 'nattOar', 25: 'nattFrag' },
    ipsecRequestSize: 8,
    sockaddr: 'bsd',
    afInet6: 24,
    udpEncapOption: 100,
    esnFlag: 0,
    aead: true,
    algorithms: {
      encrypt: { ...commonEncrypt, ...gcm, skipjack: 250 },
      auth: { ...commonAuth, 'hmac-sha2-256-128': 5, 'aes-128-gmac': 11, 'aes-192-gmac': 12, 'aes-256-gmac': 13, 'keyed-md5': 249, 'keyed-sha1': 250, 'tcp-md5': 252 },
      compress: commonCompress,
      aeadAuth: 'none',
    },
  },
  freebsd: {
    name: 'freebsd',
    msgMax: 22,
    extMax: 31,
    extensions: {
      23: 'nattOai',
      24: 'nattOar',
      25: 'nattFrag',
      26: 'saReplay',
      27: 'newAddressSrc',
      28: 'newAddressDst',
      29: 'lifetimeSwOffload',
      30: 'lifetimeHwOffload',
      31: 'ifHwOffload',
    },
    ipsecRequestSize: 8,
    sockaddr: 'bsd',
    afInet6: 28,
    udpEncapOption: 1,
    esnFlag: 0x400,
    aead: true,
    algorithms: {
      // ChaCha20-Poly1305 is 15 here, which is Linux's AES-CCM-12: never share one table between dialects.
      encrypt: { ...commonEncrypt, ...gcm, 'chacha20-poly1305': 15 },
      auth: {
        ...commonAuth,
        'hmac-sha2-256-128': 5,
        'aes-128-gmac': 11,
        'aes-192-gmac': 12,
        'aes-256-gmac': 13,
        'chacha20-poly1305': 14,
        'keyed-md5': 249,
        'keyed-sha1': 250,
        'tcp-md5': 252,
      },
      compress: commonCompress,
      aeadAuth: 'gmac-by-key',
    },
  },
});

/** This process's dialect: by `process.platform` (Linux for anything that is not NetBSD or FreeBSD). */
export function defaultDialectName(): DialectName {
  return process.platform === 'netbsd' ? 'netbsd' : process.platform === 'freebsd' ? 'freebsd' : 'linux';
}

/**
 * A dialect by name (default: this OS's), or a Dialect object as given (for overrides), its codec fields checked
 * (a TypeError/RangeError naming `dialect.<field>`).
 */
export function resolveDialect(d?: DialectName | Dialect): Dialect {
  if (d === undefined) return DIALECTS[defaultDialectName()];
  if (typeof d === 'object' && d !== null) return readingCallerValue('dialect', () => resolveDialectObject(d));
  return resolveDialectObject(d);
}

function resolveDialectObject(d: DialectName | Dialect): Dialect {
  if (typeof d === 'object' && d !== null && typeof d.name === 'string') return checkDialect(d);
  const found = typeof d === 'string' && Object.hasOwn(DIALECTS, d) ? DIALECTS[d as DialectName] : undefined;
  if (!found) throw rangeError('dialect', "'linux', 'netbsd' or 'freebsd'", d);
  return found;
}

/** The fields of a caller's Dialect object that the codec reads, checked. */
function checkDialect(d: Dialect): Dialect {
  checkedInt(d.msgMax, 0, 0xff, 'dialect.msgMax');
  checkedInt(d.extMax, 0, 0xffff, 'dialect.extMax');
  checkedObject(d.extensions, 'dialect.extensions');
  if (d.ipsecRequestSize !== 16 && d.ipsecRequestSize !== 8) throw rangeError('dialect.ipsecRequestSize', '16 or 8', d.ipsecRequestSize);
  if (d.sockaddr !== 'linux' && d.sockaddr !== 'bsd') throw rangeError('dialect.sockaddr', "'linux' or 'bsd'", d.sockaddr);
  checkedInt(d.afInet6, 0, 0xff, 'dialect.afInet6');
  return d;
}

/** The name of extension number `type` in dialect `d`, or undefined when the dialect has no layout for it. */
export function extensionName(d: Dialect, type: number): ExtensionName | undefined {
  if (type >= 1 && type <= 22) return COMMON_EXTENSIONS[type as keyof typeof COMMON_EXTENSIONS];
  return type <= d.extMax ? d.extensions[type] : undefined;
}

const numberCache = new WeakMap<Dialect, Map<string, number>>();

/** The extension number of `name` in dialect `d`, or undefined when that dialect lacks it. */
export function extensionNumber(d: Dialect, name: string): number | undefined {
  let m = numberCache.get(d);
  if (!m) {
    m = new Map();
    for (const [k, v] of Object.entries(COMMON_EXTENSIONS)) m.set(v, Number(k));
    for (const [k, v] of Object.entries(d.extensions)) m.set(v, Number(k));
    numberCache.set(d, m);
  }
  return m.get(name);
}

const KNOWN_DIALECTS = new Set<unknown>(Object.values(DIALECTS));
const MESSAGE_NAMES = Object.fromEntries(Object.entries(SADB).map(([k, v]) => [v, `SADB_${k}`])) as Record<number, string>;

/** `'SADB_ADD'` for 3, etc.; `'SADB_<n>'` for numbers without a name in this dialect. */
export function messageName(type: number, d?: Dialect): string {
  checkedInt(type, 0, 0xff, 'type');
  if (d !== undefined && !KNOWN_DIALECTS.has(d)) d = resolveDialect(d); // a caller's own Dialect object: checked
  if (d && type > d.msgMax) return `SADB_${type}`;
  return Object.hasOwn(MESSAGE_NAMES, type) ? MESSAGE_NAMES[type] : `SADB_${type}`;
}
