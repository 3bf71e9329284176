// Numbers of the Linux netlink and XFRM uapi (linux/netlink.h, linux/xfrm.h), named as there, with reverse lookups.

import { typeError } from '../errors';

// Netlink's own numbers are shared with every netlink codec (src/kernel/netlink.ts).
export { NLM_F, NLMSG } from '../kernel/netlink';
import { NLMSG } from '../kernel/netlink';

/** XFRM message types (nlmsg_type). */
export const XFRM_MSG = {
  NEWSA: 16,
  DELSA: 17,
  GETSA: 18,
  NEWPOLICY: 19,
  DELPOLICY: 20,
  GETPOLICY: 21,
  ALLOCSPI: 22,
  ACQUIRE: 23,
  EXPIRE: 24,
  UPDPOLICY: 25,
  UPDSA: 26,
  POLEXPIRE: 27,
  FLUSHSA: 28,
  FLUSHPOLICY: 29,
  NEWAE: 30,
  GETAE: 31,
  REPORT: 32,
  MIGRATE: 33,
  NEWSADINFO: 34,
  GETSADINFO: 35,
  NEWSPDINFO: 36,
  GETSPDINFO: 37,
  MAPPING: 38,
  SETDEFAULT: 39,
  GETDEFAULT: 40,
} as const;

/** XFRM attribute types (XFRMA_*). */
export const XFRMA = {
  UNSPEC: 0,
  ALG_AUTH: 1,
  ALG_CRYPT: 2,
  ALG_COMP: 3,
  ENCAP: 4,
  TMPL: 5,
  SA: 6,
  POLICY: 7,
  SEC_CTX: 8,
  LTIME_VAL: 9,
  REPLAY_VAL: 10,
  REPLAY_THRESH: 11,
  ETIMER_THRESH: 12,
  SRCADDR: 13,
  COADDR: 14,
  LASTUSED: 15,
  POLICY_TYPE: 16,
  MIGRATE: 17,
  ALG_AEAD: 18,
  KMADDRESS: 19,
  ALG_AUTH_TRUNC: 20,
  MARK: 21,
  TFCPAD: 22,
  REPLAY_ESN_VAL: 23,
  SA_EXTRA_FLAGS: 24,
  PROTO: 25,
  ADDRESS_FILTER: 26,
  PAD: 27,
  OFFLOAD_DEV: 28,
  SET_MARK: 29,
  SET_MARK_MASK: 30,
  IF_ID: 31,
  MTIMER_THRESH: 32,
  SA_DIR: 33,
  NAT_KEEPALIVE_INTERVAL: 34,
  SA_PCPU: 35,
} as const;

/** XFRMA_SA_DIR values (Linux >= 6.10): which way an SA carries packets. */
export const XFRM_SA_DIR = { IN: 1, OUT: 2 } as const;

/** Attributes of XFRM_MSG_NEWSADINFO (their own number space). */
export const XFRMA_SAD = { UNSPEC: 0, CNT: 1, HINFO: 2 } as const;

/** Multicast groups (1-based); bind mask bit is 1 << (group - 1). */
export const XFRMNLGRP = {
  ACQUIRE: 1,
  EXPIRE: 2,
  SA: 3,
  POLICY: 4,
  AEVENTS: 5,
  REPORT: 6,
  MIGRATE: 7,
  MAPPING: 8,
} as const;

/** xfrm_usersa_info.flags. */
export const XFRM_STATE = {
  NOECN: 1,
  DECAP_DSCP: 2,
  NOPMTUDISC: 4,
  WILDRECV: 8,
  ICMP: 16,
  AF_UNSPEC: 32,
  ALIGN4: 64,
  ESN: 128,
} as const;

/** XFRMA_SA_EXTRA_FLAGS bits. */
export const XFRM_SA_XFLAG = { DONT_ENCAP_DSCP: 1, OSEQ_MAY_WRAP: 2 } as const;

export const XFRM_MODE = { TRANSPORT: 0, TUNNEL: 1, ROUTEOPTIMIZATION: 2, IN_TRIGGER: 3, BEET: 4, IPTFS: 5 } as const;
export const XFRM_POLICY_DIR = { IN: 0, OUT: 1, FWD: 2 } as const;
export const XFRM_POLICY_ACTION = { ALLOW: 0, BLOCK: 1 } as const;
export const XFRM_SHARE = { ANY: 0, SESSION: 1, USER: 2, UNIQUE: 3 } as const;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_COMP = 108;
/** Any IPsec protocol (XFRM flush/dump filters). */
export const IPSEC_PROTO_ANY = 255;

export const UDP_ENCAP_ESPINUDP_NON_IKE = 1;
export const UDP_ENCAP_ESPINUDP = 2;
/** include/uapi/linux/udp.h: ESP in TCP (RFC 8229 / 9329), the kernel's espintcp (Linux >= 5.6, CONFIG_INET_ESPINTCP). */
export const TCP_ENCAP_ESPINTCP = 7;

/** Fixed sizes of the uapi structures as laid out on x86-64 (u64 aligned to 8). */
export const SIZE = {
  nlmsghdr: 16,
  nlattr: 4,
  nlmsgerr: 20,
  selector: 56,
  id: 24,
  lifetimeCfg: 64,
  lifetimeCur: 32,
  stats: 12,
  usersaInfo: 224,
  usersaId: 24,
  userspiInfo: 232,
  userpolicyInfo: 168,
  userpolicyId: 64,
  userTmpl: 64,
  userAcquire: 280,
  userExpire: 232,
  userPolexpire: 176,
  userMapping: 64,
  encapTmpl: 24,
  algo: 68,
  algoAuth: 72,
  algoAead: 72,
  replayState: 12,
  replayStateEsn: 24,
  secCtx: 8,
  mark: 8,
  userpolicyType: 6,
  userOffload: 8,
  usersaFlush: 1,
} as const;

function reverse(table: Record<string, number>): Record<number, string> {
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(table)) out[v] = k;
  return out;
}

const msgNames = reverse(XFRM_MSG);
const attrNames = reverse(XFRMA);

/** `'XFRM_MSG_NEWSA'` for 16, `'NLMSG_ERROR'` for 2, `'nlmsg type 99'` otherwise. */
export function messageTypeName(type: number): string {
  if (typeof type !== 'number') throw typeError('type', 'a netlink message type number', type);
  if (Object.hasOwn(msgNames, type)) return `XFRM_MSG_${msgNames[type]}`;
  for (const [k, v] of Object.entries(NLMSG)) if (v === type) return `NLMSG_${k}`;
  return `nlmsg type ${type}`;
}

/** `'XFRMA_ENCAP'` for 4. */
export function attributeName(type: number): string {
  if (typeof type !== 'number') throw typeError('type', 'an attribute type number', type);
  return Object.hasOwn(attrNames, type) ? `XFRMA_${attrNames[type]}` : `attribute ${type}`;
}
