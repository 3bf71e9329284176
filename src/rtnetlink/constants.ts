// NETLINK_ROUTE numbers from the Linux uapi (<linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>).

// The netlink numbers shared with every netlink codec, re-exported so the `rtnetlink.constants` namespace has them.
export { NLM_F, NLMSG, NLMSGERR_ATTR, NLA_F_NESTED, NLA_F_NET_BYTEORDER } from '../kernel/netlink';
import { NLMSG } from '../kernel/netlink';
import { typeError } from '../errors';

/** rtnetlink message types natt speaks (links, addresses, routes). */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
} as const;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** Link attributes (IFLA_*). */
export const IFLA = {
  ADDRESS: 1,
  BROADCAST: 2,
  IFNAME: 3,
  MTU: 4,
  LINK: 5,
  QDISC: 6,
  STATS: 7,
  MASTER: 10,
  TXQLEN: 13,
  MAP: 14,
  OPERSTATE: 16,
  LINKMODE: 17,
  LINKINFO: 18,
  NET_NS_PID: 19,
  IFALIAS: 20,
  STATS64: 23,
  AF_SPEC: 26,
  GROUP: 27,
  NET_NS_FD: 28,
  EXT_MASK: 29,
  PROMISCUITY: 30,
  NUM_TX_QUEUES: 31,
  NUM_RX_QUEUES: 32,
  CARRIER: 33,
  CARRIER_CHANGES: 35,
  LINK_NETNSID: 37,
  PHYS_PORT_NAME: 38,
  PROTO_DOWN: 39,
  GSO_MAX_SEGS: 40,
  GSO_MAX_SIZE: 41,
  XDP: 43,
  CARRIER_UP_COUNT: 47,
  CARRIER_DOWN_COUNT: 48,
  NEW_IFINDEX: 49,
  MIN_MTU: 50,
  MAX_MTU: 51,
  PROP_LIST: 52,
  ALT_IFNAME: 53,
  PERM_ADDRESS: 54,
  PARENT_DEV_NAME: 56,
  PARENT_DEV_BUS_NAME: 57,
  GRO_MAX_SIZE: 58,
  TSO_MAX_SIZE: 59,
  TSO_MAX_SEGS: 60,
  ALLMULTI: 61,
  GSO_IPV4_MAX_SIZE: 63,
  GRO_IPV4_MAX_SIZE: 64,
} as const;

/** Address attributes (IFA_*). */
export const IFA = {
  ADDRESS: 1,
  LOCAL: 2,
  LABEL: 3,
  BROADCAST: 4,
  ANYCAST: 5,
  CACHEINFO: 6,
  MULTICAST: 7,
  FLAGS: 8,
  RT_PRIORITY: 9,
  TARGET_NETNSID: 10,
  PROTO: 11,
} as const;

/** Address flags (ifa_flags, and the u32 IFA_FLAGS). */
export const IFA_F = {
  SECONDARY: 0x01,
  NODAD: 0x02,
  OPTIMISTIC: 0x04,
  DADFAILED: 0x08,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
  MCAUTOJOIN: 0x400,
  STABLE_PRIVACY: 0x800,
} as const;

/** Route attributes (RTA_*). */
export const RTA = {
  DST: 1,
  SRC: 2,
  IIF: 3,
  OIF: 4,
  GATEWAY: 5,
  PRIORITY: 6,
  PREFSRC: 7,
  METRICS: 8,
  MULTIPATH: 9,
  FLOW: 11,
  CACHEINFO: 12,
  TABLE: 15,
  MARK: 16,
  MFC_STATS: 17,
  VIA: 18,
  NEWDST: 19,
  PREF: 20,
  ENCAP_TYPE: 21,
  ENCAP: 22,
  EXPIRES: 23,
  PAD: 24,
  UID: 25,
  TTL_PROPAGATE: 26,
  IP_PROTO: 27,
  SPORT: 28,
  DPORT: 29,
  NH_ID: 30,
} as const;

/** Routing tables. rtm_table is 8 bits: a table above 255 goes in RTA_TABLE (rtm_table is then RT_TABLE.UNSPEC). */
export const RT_TABLE = { UNSPEC: 0, COMPAT: 252, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;

/** Who installed a route (rtm_protocol). */
export const RTPROT = { UNSPEC: 0, REDIRECT: 1, KERNEL: 2, BOOT: 3, STATIC: 4 } as const;

/** Route and address scopes. */
export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;

/** Route types (rtm_type). */
export const RTN = {
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
  NAT: 10,
  XRESOLVE: 11,
} as const;

/** Route flags (rtm_flags). */
export const RTM_F = { NOTIFY: 0x100, CLONED: 0x200, EQUALIZE: 0x400, PREFIX: 0x800, LOOKUP_TABLE: 0x1000, FIB_MATCH: 0x2000 } as const;

/** Interface flags (ifi_flags, <net/if.h>). */
export const IFF = {
  UP: 0x1,
  BROADCAST: 0x2,
  DEBUG: 0x4,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  NOTRAILERS: 0x20,
  RUNNING: 0x40,
  NOARP: 0x80,
  PROMISC: 0x100,
  ALLMULTI: 0x200,
  MASTER: 0x400,
  SLAVE: 0x800,
  MULTICAST: 0x1000,
  PORTSEL: 0x2000,
  AUTOMEDIA: 0x4000,
  DYNAMIC: 0x8000,
  LOWER_UP: 0x10000,
  DORMANT: 0x20000,
  ECHO: 0x40000,
} as const;

/** Multicast groups (RTNLGRP_*), for a client that listens to changes. */
export const RTNLGRP = { LINK: 1, IPV4_IFADDR: 5, IPV4_ROUTE: 7, IPV6_IFADDR: 9, IPV6_ROUTE: 11 } as const;

const typeNames: Record<number, string> = {
  [NLMSG.NOOP]: 'NLMSG_NOOP',
  [NLMSG.ERROR]: 'NLMSG_ERROR',
  [NLMSG.DONE]: 'NLMSG_DONE',
  [NLMSG.OVERRUN]: 'NLMSG_OVERRUN',
};
for (const [k, v] of Object.entries(RTM)) typeNames[v] = `RTM_${k}`;

/** `'RTM_NEWADDR'` for 20; `'RTM_<n>'` for a number natt has no name for. */
export function messageTypeName(type: number): string {
  if (typeof type !== 'number') throw typeError('type', 'a message type number', type);
  return Object.hasOwn(typeNames, type) ? typeNames[type] : `RTM_${type}`;
}
