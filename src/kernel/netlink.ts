// Netlink's own numbers (<linux/netlink.h>), shared by every netlink codec: header flags, control types, attribute flags.

/** Netlink message header flags. Bits 0x100–0x800 mean different things for GET, NEW, DELETE requests and ACKs. */
export const NLM_F = {
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  // GET requests
  ROOT: 0x100,
  MATCH: 0x200,
  ATOMIC: 0x400,
  DUMP: 0x300,
  // NEW requests
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // NLMSG_ERROR (ACK) messages
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const;

/** Netlink control message types (below 16). */
export const NLMSG = { NOOP: 1, ERROR: 2, DONE: 3, OVERRUN: 4 } as const;

/** Extended ACK attributes in NLMSG_ERROR / NLMSG_DONE (flag NLM_F_ACK_TLVS). */
export const NLMSGERR_ATTR = { MSG: 1, OFFS: 2, COOKIE: 3, POLICY: 4, MISS_TYPE: 5, MISS_NEST: 6 } as const;

/** Attribute type flags (the top two bits of nla_type). */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
