// setkey's names: algorithms as setkey spells them (and natt's own), upper-layer protocols, and the reverse for dumps.

/**
 * One algorithm name a setkey file may write after -E / -A / -C.
 * `model` is the name the SA carries: an IKEv2 name of the shared model, or (`dialectOnly`) a name only the PF_KEY
 * dialect tables know (des-cbc, blowfish-cbc ...: a BSD or Linux kernel can install them, natt's own engine cannot).
 */
export interface AlgorithmName {
  model: string;
  /** Takes no key (`-E null`, `-A null`). */
  keyless?: boolean;
  /** Where the spelling comes from: ipsec-tools' lexer, NetBSD's, FreeBSD's, or natt's own model names. */
  origin: 'ipsec-tools' | 'netbsd' | 'freebsd' | 'natt';
  /** Not in the shared model: only some PF_KEY dialects have it. */
  dialectOnly?: boolean;
  /** Valid setkey that no natt backend can express; the reason says why. */
  unsupported?: string;
  /** A note for `-n` / `-v` (obsolete spelling ...). */
  note?: string;
  /** Key lengths in bytes where the shared table (src/sadb/algorithms.ts) has none: [min, max]. */
  keyBytes?: [number, number];
}

const ENC: Record<string, AlgorithmName> = {
  'des-cbc': { model: 'des-cbc', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [8, 8] },
  '3des-cbc': { model: '3des-cbc', origin: 'ipsec-tools' },
  null: { model: 'null', origin: 'ipsec-tools', keyless: true },
  simple: { model: 'null', origin: 'ipsec-tools', keyless: true, note: "'simple' is an obsolete spelling of null encryption" },
  'blowfish-cbc': { model: 'blowfish-cbc', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [5, 56] },
  'cast128-cbc': { model: 'cast128-cbc', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [5, 16] },
  'des-deriv': {
    model: 'des-cbc',
    origin: 'ipsec-tools',
    unsupported: 'des-deriv (DES with a derived IV, an old KAME extension) is not supported by natt on any backend: use aes-cbc or aes-gcm-16',
  },
  'des-32iv': {
    model: 'des-cbc',
    origin: 'ipsec-tools',
    unsupported: 'des-32iv (DES with a 32-bit IV for RFC 1827 esp-old) is not supported by natt on any backend: use esp with aes-cbc',
  },
  'twofish-cbc': { model: 'twofish-cbc', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [16, 32] },
  'aes-cbc': { model: 'aes-cbc', origin: 'ipsec-tools' },
  'rijndael-cbc': { model: 'aes-cbc', origin: 'ipsec-tools' },
  'aes-ctr': { model: 'aes-ctr', origin: 'ipsec-tools' },
  'camellia-cbc': { model: 'camellia-cbc', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [16, 32] },
  'aes-gcm-16': { model: 'aes-gcm-16', origin: 'netbsd' },
  'aes-gmac': { model: 'aes-gmac', origin: 'netbsd' },
  'chacha20-poly1305': { model: 'chacha20-poly1305', origin: 'freebsd' },
  'aes-gcm-8': { model: 'aes-gcm-8', origin: 'natt' },
  'aes-gcm-12': { model: 'aes-gcm-12', origin: 'natt' },
};

/** `hmac-sha256` means RFC 4868's 128-bit truncation, except on Linux PF_KEY (see `integrityModel`). */
const SHA256 = 'hmac-sha2-256';

const AUTH: Record<string, AlgorithmName> = {
  'hmac-md5': { model: 'hmac-md5-96', origin: 'ipsec-tools' },
  'hmac-sha1': { model: 'hmac-sha1-96', origin: 'ipsec-tools' },
  'keyed-md5': { model: 'keyed-md5', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [16, 16] },
  'keyed-sha1': { model: 'keyed-sha1', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [20, 20] },
  'hmac-sha2-256': { model: SHA256, origin: 'ipsec-tools' },
  'hmac-sha256': { model: SHA256, origin: 'ipsec-tools' },
  'hmac-sha2-384': { model: 'hmac-sha2-384-192', origin: 'ipsec-tools' },
  'hmac-sha384': { model: 'hmac-sha2-384-192', origin: 'ipsec-tools' },
  'hmac-sha2-512': { model: 'hmac-sha2-512-256', origin: 'ipsec-tools' },
  'hmac-sha512': { model: 'hmac-sha2-512-256', origin: 'ipsec-tools' },
  'hmac-ripemd160': { model: 'hmac-ripemd160-96', origin: 'ipsec-tools', dialectOnly: true, keyBytes: [20, 20] },
  'aes-xcbc-mac': { model: 'aes-xcbc-96', origin: 'ipsec-tools' },
  'tcp-md5': {
    model: 'tcp-md5',
    origin: 'ipsec-tools',
    unsupported: 'TCP-MD5 signatures (RFC 2385, -A tcp-md5 on a tcp SA) are not IPsec and not supported by natt: configure them on the socket (TCP_MD5SIG)',
  },
  null: { model: 'none', origin: 'ipsec-tools', keyless: true },
  'hmac-md5-96': { model: 'hmac-md5-96', origin: 'natt' },
  'hmac-sha1-96': { model: 'hmac-sha1-96', origin: 'natt' },
  'hmac-sha2-256-128': { model: 'hmac-sha2-256-128', origin: 'natt' },
  'hmac-sha2-256-96': { model: 'hmac-sha2-256-96', origin: 'natt' },
  'hmac-sha2-384-192': { model: 'hmac-sha2-384-192', origin: 'natt' },
  'hmac-sha2-512-256': { model: 'hmac-sha2-512-256', origin: 'natt' },
  'aes-xcbc-96': { model: 'aes-xcbc-96', origin: 'natt' },
};

const COMP: Record<string, AlgorithmName> = {
  deflate: { model: 'deflate', origin: 'ipsec-tools' },
  lzs: { model: 'lzs', origin: 'ipsec-tools' },
  oui: { model: 'oui', origin: 'ipsec-tools' },
};

const own = (t: Record<string, AlgorithmName>, name: string): AlgorithmName | undefined =>
  Object.prototype.hasOwnProperty.call(t, name) ? t[name] : undefined;

/** The -E name, or undefined if setkey does not know it (rc5-cbc, a typo ...). */
export function encryptionName(name: string): AlgorithmName | undefined {
  return own(ENC, name);
}

/** The -A name, or undefined. */
export function integrityName(name: string): AlgorithmName | undefined {
  return own(AUTH, name);
}

/** The -C name, or undefined. */
export function compressionName(name: string): AlgorithmName | undefined {
  return own(COMP, name);
}

/** The setkey spellings, for "expected one of ..." messages. */
export const ENCRYPTION_SPELLINGS = Object.keys(ENC).filter((n) => ENC[n].origin !== 'natt');
export const INTEGRITY_SPELLINGS = Object.keys(AUTH).filter((n) => AUTH[n].origin !== 'natt');
export const COMPRESSION_SPELLINGS = Object.keys(COMP);

/**
 * The model's integrity algorithm for a setkey spelling. `hmac-sha256`/`hmac-sha2-256` is SADB_X_AALG_SHA2_256 on
 * every OS, but Linux's PF_KEY installs it with a 96-bit ICV while the BSDs (and RFC 4868, XFRM, the userland engine)
 * use 128 bits: a file read for Linux PF_KEY gets what Linux's setkey would install.
 */
export function integrityModel(n: AlgorithmName, linuxPfkey: boolean): string {
  return n.model === SHA256 ? (linuxPfkey ? 'hmac-sha2-256-96' : 'hmac-sha2-256-128') : n.model;
}

/** AEAD transforms: they take no -A. */
export const AEADS: ReadonlySet<string> = new Set(['aes-gcm-8', 'aes-gcm-12', 'aes-gcm-16', 'aes-gmac', 'chacha20-poly1305']);

// ---------------------------------------------------------------------------------------------------------------
// Names in dumps (pfkey_dump.c's str_alg_*) and in files natt writes (toSetkey).

const DUMP_ENC: Record<string, string> = {
  'des-cbc': 'des-cbc',
  '3des-cbc': '3des-cbc',
  null: 'null',
  'cast128-cbc': 'cast128-cbc',
  'blowfish-cbc': 'blowfish-cbc',
  'aes-cbc': 'aes-cbc',
  'twofish-cbc': 'twofish-cbc',
  'aes-ctr': 'aes-ctr',
  'camellia-cbc': 'camellia-cbc',
  'aes-gcm-8': 'aes-gcm-8',
  'aes-gcm-12': 'aes-gcm-12',
  'aes-gcm-16': 'aes-gcm-16',
  'aes-gmac': 'aes-gmac',
  'chacha20-poly1305': 'chacha20-poly1305',
};

const DUMP_AUTH: Record<string, string> = {
  none: 'none',
  'hmac-md5-96': 'hmac-md5',
  'hmac-sha1-96': 'hmac-sha1',
  'keyed-md5': 'md5',
  'keyed-sha1': 'sha',
  null: 'null',
  'hmac-sha2-256-128': 'hmac-sha256',
  'hmac-sha2-256-96': 'hmac-sha256',
  'hmac-sha2-384-192': 'hmac-sha384',
  'hmac-sha2-512-256': 'hmac-sha512',
  'hmac-ripemd160-96': 'hmac-ripemd160',
  'aes-xcbc-96': 'aes-xcbc-mac',
};

/** The name `setkey -D` prints for an encryption algorithm of the model. */
export function dumpEncryptionName(model: string): string {
  return Object.prototype.hasOwnProperty.call(DUMP_ENC, model) ? DUMP_ENC[model] : model;
}

/** The name `setkey -D` prints for an integrity algorithm. */
export function dumpIntegrityName(model: string): string {
  return Object.prototype.hasOwnProperty.call(DUMP_AUTH, model) ? DUMP_AUTH[model] : model;
}

/** The -E spelling natt writes for a model algorithm (one that reads back as the same algorithm). */
export function writeEncryptionName(model: string): string {
  return model;
}

/**
 * The -A spelling natt writes: setkey's where it reads back as the same algorithm on `linuxPfkey` or not, else
 * natt's own model name (`hmac-sha2-256-96` off Linux PF_KEY, `hmac-sha2-256-128` on it).
 */
export function writeIntegrityName(model: string, linuxPfkey: boolean): string {
  if (model === 'hmac-sha2-256-128') return linuxPfkey ? model : 'hmac-sha256';
  if (model === 'hmac-sha2-256-96') return linuxPfkey ? 'hmac-sha256' : model;
  const spelled: Record<string, string> = {
    'hmac-md5-96': 'hmac-md5',
    'hmac-sha1-96': 'hmac-sha1',
    'hmac-sha2-384-192': 'hmac-sha384',
    'hmac-sha2-512-256': 'hmac-sha512',
    'aes-xcbc-96': 'aes-xcbc-mac',
    'hmac-ripemd160-96': 'hmac-ripemd160',
    none: 'null',
  };
  return Object.prototype.hasOwnProperty.call(spelled, model) ? spelled[model] : model;
}

// ---------------------------------------------------------------------------------------------------------------
// Upper-layer protocols: the names getprotobyname(3) finds in /etc/protocols (Debian's netbase and NetBSD's files,
// names and aliases, case as written there), plus setkey's own icmp6 and ip4. An embedded table, so a file reads the
// same on every host.

const PROTOCOLS: ReadonlyArray<[number, string, ...string[]]> = [
  [0, 'ip', 'IP', 'hopopt', 'HOPOPT'],
  [1, 'icmp', 'ICMP'],
  [2, 'igmp', 'IGMP'],
  [3, 'ggp', 'GGP'],
  [4, 'ipencap', 'IP-ENCAP', 'ipv4', 'IPv4'],
  [5, 'st', 'ST'],
  [6, 'tcp', 'TCP'],
  [8, 'egp', 'EGP'],
  [9, 'igp', 'IGP'],
  [12, 'pup', 'PUP'],
  [17, 'udp', 'UDP'],
  [20, 'hmp', 'HMP'],
  [22, 'xns-idp', 'XNS-IDP'],
  [27, 'rdp', 'RDP'],
  [29, 'iso-tp4', 'ISO-TP4'],
  [33, 'dccp', 'DCCP'],
  [36, 'xtp', 'XTP'],
  [37, 'ddp', 'DDP'],
  [38, 'idpr-cmtp', 'IDPR-CMTP'],
  [41, 'ipv6', 'IPv6'],
  [43, 'ipv6-route', 'IPv6-Route'],
  [44, 'ipv6-frag', 'IPv6-Frag'],
  [45, 'idrp', 'IDRP'],
  [46, 'rsvp', 'RSVP'],
  [47, 'gre', 'GRE'],
  [50, 'esp', 'IPSEC-ESP'],
  [51, 'ah', 'IPSEC-AH'],
  [57, 'skip', 'SKIP'],
  [58, 'ipv6-icmp', 'IPv6-ICMP'],
  [59, 'ipv6-nonxt', 'IPv6-NoNxt'],
  [60, 'ipv6-opts', 'IPv6-Opts'],
  [73, 'rspf', 'RSPF', 'CPHB'],
  [81, 'vmtp', 'VMTP'],
  [88, 'eigrp', 'EIGRP'],
  [89, 'ospf', 'OSPFIGP'],
  [93, 'ax.25', 'AX.25'],
  [94, 'ipip', 'IPIP'],
  [97, 'etherip', 'ETHERIP'],
  [98, 'encap', 'ENCAP'],
  [103, 'pim', 'PIM'],
  [108, 'ipcomp', 'IPCOMP'],
  [112, 'vrrp', 'VRRP'],
  [115, 'l2tp', 'L2TP'],
  [124, 'isis', 'ISIS'],
  [132, 'sctp', 'SCTP'],
  [133, 'fc', 'FC'],
  [135, 'mobility-header', 'Mobility-Header', 'ipv6-mh'],
  [136, 'udplite', 'UDPLite'],
  [137, 'mpls-in-ip', 'MPLS-in-IP'],
  [138, 'manet'],
  [139, 'hip', 'HIP'],
  [140, 'shim6', 'Shim6'],
  [141, 'wesp', 'WESP'],
  [142, 'rohc', 'ROHC'],
  [143, 'ethernet', 'Ethernet'],
];

const BY_NAME = new Map<string, number>();
const BY_NUMBER = new Map<number, string>();
for (const [num, name, ...aliases] of PROTOCOLS) {
  BY_NUMBER.set(num, name);
  for (const n of [name, ...aliases]) BY_NAME.set(n, num);
}
BY_NAME.set('icmp6', 58); // setkey's own fallbacks after getprotobyname
BY_NAME.set('ip4', 4);

/** The protocol number of an upper-layer name, or undefined. Case-sensitive, as getprotobyname is. */
export function upperProtocolNumber(name: string): number | undefined {
  return BY_NAME.get(name);
}

export const IPPROTO_ICMP = 1;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_MH = 135;
/** IPSEC_ULPROTO_ANY. */
export const ULPROTO_ANY = 255;

/** The upper-layer protocol as `setkey -DP` prints it (KAME style: any, icmp6, ip4, else the protocols name). */
export function upperProtocolText(proto: number | undefined): string {
  if (proto === undefined || proto === ULPROTO_ANY) return 'any';
  if (proto === IPPROTO_ICMPV6) return 'icmp6';
  if (proto === 4) return 'ip4';
  return BY_NUMBER.get(proto) ?? String(proto);
}
