// The NETLINK_ROUTE codec: nlmsghdr framing, ifinfomsg / ifaddrmsg / rtmsg and their rtattrs, NLMSG_ERROR/DONE, strict and lossless.
//
// decode(buffer) → RtnlMessage[] (a datagram may carry several messages, e.g. a multipart dump); encode(message |
// message[]) → Buffer. Every decode failure is an RtnetlinkDecodeError naming the byte offset and the rule broken.
// Known attributes are decoded by a table (number, string, address, bytes); an unknown one, or one flagged
// NLA_F_NESTED / NLA_F_NET_BYTEORDER where natt expects a scalar, is kept as its bytes with its full type word. The
// kernel zeroes the padding it writes (nlmsg_put, nla_reserve) and the ifinfomsg pad byte: decode insists, so every
// buffer decode accepts gives encode(decode(b)) = b, byte for byte. encode range-checks every field (a RangeError
// naming it). Host order is little-endian (natt's kernel codecs run on little-endian Linux).

import { ByteReader, ByteWriter } from '../core/cursor';
import { rangeError, typeError } from '../errors';
import { readingCallerValue } from '../core/options';
import { addressToBytes, bytesToAddress } from '../ip/address';
import { AF_INET, AF_INET6, IFA, IFLA, NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLMSG, NLMSGERR_ATTR, NLM_F, RTA, RTM } from './constants';
import { RtnetlinkDecodeError } from './errors';

const NLMSG_HDRLEN = 16;
const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const RTMSG_LEN = 12;
const NLMSGERR_LEN = 4 + NLMSG_HDRLEN;
const NLA_HDRLEN = 4;

/** The nlmsghdr fields other than the length (computed by encode). */
export interface NlHeaderFields {
  /** nlmsg_type: RTM_* or NLMSG_*. */
  type: number;
  /** nlmsg_flags: NLM_F_*. */
  flags: number;
  seq: number;
  /** nlmsg_pid: the sender's port id (0 from the kernel). */
  pid: number;
}

/** struct ifinfomsg. */
export interface IfInfoMsg {
  family: number;
  /** ARPHRD_* (ARPHRD_NONE = 0xfffe for a TUN device). */
  type: number;
  index: number;
  /** IFF_* flags. */
  flags: number;
  /** Which IFF_* flags a request changes. */
  change: number;
}

/** struct ifaddrmsg. */
export interface IfAddrMsg {
  family: number;
  prefixlen: number;
  /** IFA_F_* (8 bits; the full word is the IFA_FLAGS attribute). */
  flags: number;
  scope: number;
  index: number;
}

/** struct rtmsg. */
export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  /** 8 bits: tables above 255 use RTA_TABLE. */
  table: number;
  /** RTPROT_*. */
  protocol: number;
  /** RT_SCOPE_*. */
  scope: number;
  /** RTN_*. */
  type: number;
  /** RTM_F_*. */
  flags: number;
}

/** struct ifa_cacheinfo (IFA_CACHEINFO): lifetimes in seconds (0xffffffff: forever), stamps in 1/100 s. */
export interface IfaCacheinfo {
  preferred: number;
  valid: number;
  cstamp: number;
  tstamp: number;
}

export type RtAttrValue = number | string | Uint8Array | IfaCacheinfo;

/**
 * One attribute. `type` is the wire word (NLA_F_* bits included); `name` is natt's name for a known attribute
 * (`'ifname'`, `'mtu'`, `'local'`, `'gateway'` ...), absent for one natt keeps as bytes. Addresses of an AF_INET or
 * AF_INET6 message are text (`'10.0.0.1'`); strings are latin1 without the trailing NUL.
 */
export interface RtAttr {
  type: number;
  name?: string;
  value: RtAttrValue;
}

/** An attribute to encode: by `name` (its type from the table) or by `type` (then `value` is its bytes, or a known format). */
export interface RtAttrInput {
  type?: number;
  name?: string;
  value: RtAttrValue;
}

/** The original request's header quoted in an NLMSG_ERROR, with its length. */
export interface QuotedHeader extends NlHeaderFields {
  len: number;
}

export type RtnlMessage =
  | (NlHeaderFields & { kind: 'link'; link: IfInfoMsg; attrs: RtAttr[] })
  | (NlHeaderFields & { kind: 'addr'; addr: IfAddrMsg; attrs: RtAttr[] })
  | (NlHeaderFields & { kind: 'route'; route: RtMsg; attrs: RtAttr[] })
  /**
   * NLMSG_ERROR: `error` 0 is an ACK, else a negative errno. `payload`: the request's body, when the kernel did not
   * cap it (NLM_F_CAPPED); `ext`: extended-ACK attributes (NLM_F_ACK_TLVS): `msg` (the kernel's words), `offs` ...
   */
  | (NlHeaderFields & { kind: 'error'; error: number; request: QuotedHeader; payload?: Uint8Array; ext: RtAttr[] })
  /** NLMSG_DONE: the end of a dump; `status` 0 or a negative errno; `ext` as for errors. */
  | (NlHeaderFields & { kind: 'done'; status: number; ext: RtAttr[] })
  /** Any other message type (NLMSG_NOOP, NLMSG_OVERRUN, RTM_* natt does not model): its body as bytes. */
  | (NlHeaderFields & { kind: 'raw'; body: Uint8Array });

export type RtnlMessageKind = RtnlMessage['kind'];

type WithInputAttrs<M> = M extends { attrs: RtAttr[] } ? Omit<M, 'attrs'> & { attrs?: RtAttrInput[] } : M extends { ext: RtAttr[] } ? Omit<M, 'ext'> & { ext?: RtAttrInput[] } : M;
/** What encode takes: a message whose header flags, seq and pid default to 0 and whose attributes may go by name. */
export type RtnlMessageInput = WithInputAttrs<RtnlMessage> extends infer M ? (M extends NlHeaderFields ? Omit<M, 'flags' | 'seq' | 'pid'> & Partial<NlHeaderFields> : never) : never;

// ---- attribute tables ----

type Format = 'u8' | 'u16' | 'be16' | 'u32' | 's32' | 'string' | 'bytes' | 'address' | 'cacheinfo';

interface Space {
  what: string;
  byType: Map<number, { name: string; format: Format }>;
  byName: Map<string, { type: number; format: Format }>;
}

function space(what: string, entries: Record<string, [number, Format]>): Space {
  const s: Space = { what, byType: new Map(), byName: new Map() };
  for (const [name, [type, format]] of Object.entries(entries)) {
    s.byType.set(type, { name, format });
    s.byName.set(name, { type, format });
  }
  return s;
}

const LINK = space('link', {
  address: [IFLA.ADDRESS, 'bytes'],
  broadcast: [IFLA.BROADCAST, 'bytes'],
  ifname: [IFLA.IFNAME, 'string'],
  mtu: [IFLA.MTU, 'u32'],
  link: [IFLA.LINK, 'u32'],
  qdisc: [IFLA.QDISC, 'string'],
  stats: [IFLA.STATS, 'bytes'],
  master: [IFLA.MASTER, 'u32'],
  txqlen: [IFLA.TXQLEN, 'u32'],
  map: [IFLA.MAP, 'bytes'],
  operstate: [IFLA.OPERSTATE, 'u8'],
  linkmode: [IFLA.LINKMODE, 'u8'],
  linkinfo: [IFLA.LINKINFO, 'bytes'],
  netNsPid: [IFLA.NET_NS_PID, 'u32'],
  ifalias: [IFLA.IFALIAS, 'string'],
  stats64: [IFLA.STATS64, 'bytes'],
  afSpec: [IFLA.AF_SPEC, 'bytes'],
  group: [IFLA.GROUP, 'u32'],
  netNsFd: [IFLA.NET_NS_FD, 'u32'],
  extMask: [IFLA.EXT_MASK, 'u32'],
  promiscuity: [IFLA.PROMISCUITY, 'u32'],
  numTxQueues: [IFLA.NUM_TX_QUEUES, 'u32'],
  numRxQueues: [IFLA.NUM_RX_QUEUES, 'u32'],
  carrier: [IFLA.CARRIER, 'u8'],
  carrierChanges: [IFLA.CARRIER_CHANGES, 'u32'],
  linkNetnsid: [IFLA.LINK_NETNSID, 's32'],
  physPortName: [IFLA.PHYS_PORT_NAME, 'string'],
  protoDown: [IFLA.PROTO_DOWN, 'u8'],
  gsoMaxSegs: [IFLA.GSO_MAX_SEGS, 'u32'],
  gsoMaxSize: [IFLA.GSO_MAX_SIZE, 'u32'],
  xdp: [IFLA.XDP, 'bytes'],
  carrierUpCount: [IFLA.CARRIER_UP_COUNT, 'u32'],
  carrierDownCount: [IFLA.CARRIER_DOWN_COUNT, 'u32'],
  newIfindex: [IFLA.NEW_IFINDEX, 's32'],
  minMtu: [IFLA.MIN_MTU, 'u32'],
  maxMtu: [IFLA.MAX_MTU, 'u32'],
  propList: [IFLA.PROP_LIST, 'bytes'],
  altIfname: [IFLA.ALT_IFNAME, 'string'],
  permAddress: [IFLA.PERM_ADDRESS, 'bytes'],
  parentDevName: [IFLA.PARENT_DEV_NAME, 'string'],
  parentDevBusName: [IFLA.PARENT_DEV_BUS_NAME, 'string'],
  groMaxSize: [IFLA.GRO_MAX_SIZE, 'u32'],
  tsoMaxSize: [IFLA.TSO_MAX_SIZE, 'u32'],
  tsoMaxSegs: [IFLA.TSO_MAX_SEGS, 'u32'],
  allmulti: [IFLA.ALLMULTI, 'u32'],
  gsoIpv4MaxSize: [IFLA.GSO_IPV4_MAX_SIZE, 'u32'],
  groIpv4MaxSize: [IFLA.GRO_IPV4_MAX_SIZE, 'u32'],
});

const ADDR = space('addr', {
  address: [IFA.ADDRESS, 'address'],
  local: [IFA.LOCAL, 'address'],
  label: [IFA.LABEL, 'string'],
  broadcast: [IFA.BROADCAST, 'address'],
  anycast: [IFA.ANYCAST, 'address'],
  cacheinfo: [IFA.CACHEINFO, 'cacheinfo'],
  multicast: [IFA.MULTICAST, 'address'],
  flags: [IFA.FLAGS, 'u32'],
  rtPriority: [IFA.RT_PRIORITY, 'u32'],
  targetNetnsid: [IFA.TARGET_NETNSID, 's32'],
  proto: [IFA.PROTO, 'u8'],
});

const ROUTE = space('route', {
  dst: [RTA.DST, 'address'],
  src: [RTA.SRC, 'address'],
  iif: [RTA.IIF, 'u32'],
  oif: [RTA.OIF, 'u32'],
  gateway: [RTA.GATEWAY, 'address'],
  priority: [RTA.PRIORITY, 'u32'],
  prefsrc: [RTA.PREFSRC, 'address'],
  metrics: [RTA.METRICS, 'bytes'],
  multipath: [RTA.MULTIPATH, 'bytes'],
  flow: [RTA.FLOW, 'u32'],
  cacheinfo: [RTA.CACHEINFO, 'bytes'],
  table: [RTA.TABLE, 'u32'],
  mark: [RTA.MARK, 'u32'],
  mfcStats: [RTA.MFC_STATS, 'bytes'],
  via: [RTA.VIA, 'bytes'],
  newdst: [RTA.NEWDST, 'bytes'],
  pref: [RTA.PREF, 'u8'],
  encapType: [RTA.ENCAP_TYPE, 'u16'],
  encap: [RTA.ENCAP, 'bytes'],
  expires: [RTA.EXPIRES, 'bytes'],
  pad: [RTA.PAD, 'bytes'],
  uid: [RTA.UID, 'u32'],
  ttlPropagate: [RTA.TTL_PROPAGATE, 'u8'],
  ipProto: [RTA.IP_PROTO, 'u8'],
  sport: [RTA.SPORT, 'be16'],
  dport: [RTA.DPORT, 'be16'],
  nhId: [RTA.NH_ID, 'u32'],
});

const EXTACK = space('ext', {
  msg: [NLMSGERR_ATTR.MSG, 'string'],
  offs: [NLMSGERR_ATTR.OFFS, 'u32'],
  cookie: [NLMSGERR_ATTR.COOKIE, 'bytes'],
  policy: [NLMSGERR_ATTR.POLICY, 'bytes'],
  missType: [NLMSGERR_ATTR.MISS_TYPE, 'u32'],
  missNest: [NLMSGERR_ATTR.MISS_NEST, 'u32'],
});

/** natt's attribute names, by message kind: `attributeNames.link` → ['address', 'broadcast', 'ifname', ...]. */
export const attributeNames: Readonly<Record<'link' | 'addr' | 'route' | 'ext', readonly string[]>> = Object.freeze({
  link: Object.freeze([...LINK.byName.keys()]),
  addr: Object.freeze([...ADDR.byName.keys()]),
  route: Object.freeze([...ROUTE.byName.keys()]),
  ext: Object.freeze([...EXTACK.byName.keys()]),
});

/** The kind of body a message type carries. */
export function kindOf(type: number): RtnlMessageKind {
  if (type >= RTM.NEWLINK && type <= RTM.SETLINK) return 'link';
  if (type >= RTM.NEWADDR && type <= RTM.GETADDR) return 'addr';
  if (type >= RTM.NEWROUTE && type <= RTM.GETROUTE) return 'route';
  if (type === NLMSG.ERROR) return 'error';
  if (type === NLMSG.DONE) return 'done';
  return 'raw';
}

/** The value of the first attribute named `name`, or undefined. */
export function findAttr(attrs: readonly RtAttr[], name: string): RtAttrValue | undefined {
  if (!Array.isArray(attrs)) throw typeError('attrs', 'an array of attributes (a decoded message\'s attrs)', attrs);
  if (typeof name !== 'string') throw typeError('name', 'an attribute name', name);
  return readingCallerValue('attrs', () => {
    for (const a of attrs) if (a !== null && typeof a === 'object' && a.name === name) return a.value;
    return undefined;
  });
}

// ---- decode ----

const fail = (offset: number, rule: string): Error => new RtnetlinkDecodeError(offset, rule);
const align4 = (n: number): number => (n + 3) & ~3;

/** Decode every message in `buf` (one netlink datagram). Throws RtnetlinkDecodeError naming the offset and the rule. */
export function decode(buf: Uint8Array): RtnlMessage[] {
  const r = new ByteReader(buf, fail);
  const out: RtnlMessage[] = [];
  if (buf.length === 0) r.fail(0, 'an empty datagram holds no nlmsghdr');
  let o = 0;
  while (o < buf.length) {
    r.need(o, NLMSG_HDRLEN, buf.length, 'nlmsghdr');
    const len = r.u32(o);
    if (len < NLMSG_HDRLEN) r.fail(o, `nlmsg_len ${len} is shorter than the 16-byte header`);
    if (len % 4) r.fail(o, `nlmsg_len ${len} is not a multiple of 4 (the kernel aligns every message)`);
    if (o + len > buf.length) r.fail(o, `nlmsg_len ${len} runs past the end of the datagram (${buf.length - o} bytes left)`);
    out.push(decodeOne(r, o, o + len));
    o += len;
  }
  return out;
}

function decodeOne(r: ByteReader, o: number, end: number): RtnlMessage {
  const hdr: NlHeaderFields = { type: r.u16(o + 4), flags: r.u16(o + 6), seq: r.u32(o + 8), pid: r.u32(o + 12) };
  const b = o + NLMSG_HDRLEN;
  const kind = kindOf(hdr.type);
  switch (kind) {
    case 'link': {
      r.need(b, IFINFOMSG_LEN, end, 'ifinfomsg');
      r.zeros(b + 1, 1, 'ifinfomsg.__ifi_pad');
      const link: IfInfoMsg = { family: r.u8(b), type: r.u16(b + 2), index: r.i32(b + 4), flags: r.u32(b + 8), change: r.u32(b + 12) };
      return { ...hdr, kind, link, attrs: decodeAttrs(r, b + IFINFOMSG_LEN, end, LINK, link.family) };
    }
    case 'addr': {
      r.need(b, IFADDRMSG_LEN, end, 'ifaddrmsg');
      const addr: IfAddrMsg = { family: r.u8(b), prefixlen: r.u8(b + 1), flags: r.u8(b + 2), scope: r.u8(b + 3), index: r.u32(b + 4) };
      return { ...hdr, kind, addr, attrs: decodeAttrs(r, b + IFADDRMSG_LEN, end, ADDR, addr.family) };
    }
    case 'route': {
      r.need(b, RTMSG_LEN, end, 'rtmsg');
      const route: RtMsg = {
        family: r.u8(b),
        dstLen: r.u8(b + 1),
        srcLen: r.u8(b + 2),
        tos: r.u8(b + 3),
        table: r.u8(b + 4),
        protocol: r.u8(b + 5),
        scope: r.u8(b + 6),
        type: r.u8(b + 7),
        flags: r.u32(b + 8),
      };
      return { ...hdr, kind, route, attrs: decodeAttrs(r, b + RTMSG_LEN, end, ROUTE, route.family) };
    }
    case 'error': {
      r.need(b, NLMSGERR_LEN, end, 'nlmsgerr');
      const q = b + 4;
      const request: QuotedHeader = { len: r.u32(q), type: r.u16(q + 4), flags: r.u16(q + 6), seq: r.u32(q + 8), pid: r.u32(q + 12) };
      let at = b + NLMSGERR_LEN;
      let payload: Uint8Array | undefined;
      // Not capped: the request's body follows (aligned, zero padded). Kernels before NLM_F_CAPPED existed sent
      // ACKs without the body and without the flag: nothing after the header means no body either way.
      if (!(hdr.flags & NLM_F.CAPPED) && at < end) {
        if (request.len < NLMSG_HDRLEN) r.fail(q, `the quoted request's nlmsg_len ${request.len} is shorter than its header`);
        const plen = request.len - NLMSG_HDRLEN;
        r.need(at, align4(plen), end, "the quoted request's body");
        payload = r.bytes(at, plen);
        r.zeros(at + plen, align4(plen) - plen, "the quoted request's padding");
        at += align4(plen);
      }
      const ext = extAttrs(r, hdr.flags, at, end, 'nlmsgerr');
      const m: RtnlMessage = { ...hdr, kind, error: r.i32(b), request, ext };
      if (payload) m.payload = payload;
      return m;
    }
    case 'done': {
      r.need(b, 4, end, 'NLMSG_DONE status');
      return { ...hdr, kind, status: r.i32(b), ext: extAttrs(r, hdr.flags, b + 4, end, 'NLMSG_DONE status') };
    }
    default:
      return { ...hdr, kind: 'raw', body: r.bytes(b, end - b) };
  }
}

function extAttrs(r: ByteReader, flags: number, at: number, end: number, what: string): RtAttr[] {
  if (flags & NLM_F.ACK_TLVS) return decodeAttrs(r, at, end, EXTACK, 0);
  if (at !== end) r.fail(at, `${end - at} bytes follow the ${what} without NLM_F_ACK_TLVS`);
  return [];
}

function decodeAttrs(r: ByteReader, start: number, end: number, sp: Space, family: number): RtAttr[] {
  const out: RtAttr[] = [];
  let o = start;
  while (o < end) {
    r.need(o, NLA_HDRLEN, end, 'attribute header');
    const len = r.u16(o);
    const type = r.u16(o + 2);
    if (len < NLA_HDRLEN) r.fail(o, `nla_len ${len} is shorter than the 4-byte attribute header`);
    if (o + len > end) r.fail(o, `nla_len ${len} runs past the end of its message (${end - o} bytes left)`);
    const padded = align4(len);
    if (o + padded > end) r.fail(o + len, 'attribute padding runs past the end of its message');
    r.zeros(o + len, padded - len, 'attribute padding');
    out.push(decodeAttr(r, o + NLA_HDRLEN, len - NLA_HDRLEN, type, sp, family));
    o += padded;
  }
  return out;
}

function decodeAttr(r: ByteReader, o: number, len: number, type: number, sp: Space, family: number): RtAttr {
  const flagged = (type & (NLA_F_NESTED | NLA_F_NET_BYTEORDER)) !== 0;
  const spec = sp.byType.get(type & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));
  // Unknown, or flagged where natt expects a scalar: its bytes, its full type word.
  if (!spec || (flagged && spec.format !== 'bytes')) return { type, value: r.bytes(o, len) };
  const name = spec.name;
  const exact = (want: number): void => {
    if (len !== want) r.fail(o - NLA_HDRLEN, `${sp.what} attribute ${name} (type ${type}) must be ${want} bytes, is ${len}`);
  };
  let value: RtAttrValue;
  switch (spec.format) {
    case 'u8':
      exact(1);
      value = r.u8(o);
      break;
    case 'u16':
      exact(2);
      value = r.u16(o);
      break;
    case 'be16':
      exact(2);
      value = r.be16(o);
      break;
    case 'u32':
      exact(4);
      value = r.u32(o);
      break;
    case 's32':
      exact(4);
      value = r.i32(o);
      break;
    case 'string': {
      // nla_put_string: the bytes and one NUL, nothing else.
      if (len < 1 || r.u8(o + len - 1) !== 0) r.fail(o - NLA_HDRLEN, `${sp.what} attribute ${name} must end with a NUL byte`);
      const nul = r.buf.indexOf(0, o);
      if (nul !== o + len - 1) r.fail(nul, `${sp.what} attribute ${name} has a NUL byte before its end`);
      value = Buffer.from(r.buf.buffer, r.buf.byteOffset + o, len - 1).toString('latin1');
      break;
    }
    case 'address':
      if (family === AF_INET || family === AF_INET6) {
        const want = family === AF_INET ? 4 : 16;
        exact(want);
        value = bytesToAddress(r.buf, o, want);
      } else value = r.bytes(o, len); // another family (MPLS, bridge ...): its bytes
      break;
    case 'cacheinfo':
      exact(16);
      value = { preferred: r.u32(o), valid: r.u32(o + 4), cstamp: r.u32(o + 8), tstamp: r.u32(o + 12) };
      break;
    default:
      value = r.bytes(o, len);
  }
  return { type, name, value };
}

// ---- encode ----

/** Encode one message or several (one datagram). Every field is range-checked: a RangeError / TypeError naming it. */
export function encode(input: RtnlMessageInput | readonly RtnlMessageInput[]): Buffer {
  // A caller's getter or Proxy that throws is a TypeError naming the input, never its own error.
  return readingCallerValue('message', () => {
    const list = Array.isArray(input) ? input : [input as RtnlMessageInput];
    if (list.length === 0) throw rangeError('messages', 'at least one message', list);
    const w = new ByteWriter(256);
    list.forEach((m, i) => encodeOne(w, m, list.length > 1 ? `messages[${i}]` : 'message'));
    return w.result();
  });
}

function encodeOne(w: ByteWriter, m: RtnlMessageInput, what: string): void {
  if (m === null || typeof m !== 'object') throw typeError(what, 'an rtnetlink message object', m);
  const start = w.reserve(NLMSG_HDRLEN);
  w.u16(start + 4, m.type, `${what}.type`);
  w.u16(start + 6, m.flags ?? 0, `${what}.flags`);
  w.u32(start + 8, m.seq ?? 0, `${what}.seq`);
  w.u32(start + 12, m.pid ?? 0, `${what}.pid`);
  const kind = kindOf(m.type);
  if (m.kind !== kind) throw rangeError(`${what}.kind`, `'${kind}' for message type ${m.type}`, m.kind);
  switch (m.kind) {
    case 'link': {
      const l = m.link;
      if (l === null || typeof l !== 'object') throw typeError(`${what}.link`, 'an ifinfomsg object', l);
      const b = w.reserve(IFINFOMSG_LEN);
      w.u8(b, l.family, `${what}.link.family`);
      w.u16(b + 2, l.type, `${what}.link.type`);
      w.i32(b + 4, l.index, `${what}.link.index`);
      w.u32(b + 8, l.flags, `${what}.link.flags`);
      w.u32(b + 12, l.change, `${what}.link.change`);
      encodeAttrs(w, m.attrs, LINK, l.family, `${what}.attrs`);
      break;
    }
    case 'addr': {
      const a = m.addr;
      if (a === null || typeof a !== 'object') throw typeError(`${what}.addr`, 'an ifaddrmsg object', a);
      const b = w.reserve(IFADDRMSG_LEN);
      w.u8(b, a.family, `${what}.addr.family`);
      w.u8(b + 1, a.prefixlen, `${what}.addr.prefixlen`);
      w.u8(b + 2, a.flags, `${what}.addr.flags`);
      w.u8(b + 3, a.scope, `${what}.addr.scope`);
      w.u32(b + 4, a.index, `${what}.addr.index`);
      encodeAttrs(w, m.attrs, ADDR, a.family, `${what}.attrs`);
      break;
    }
    case 'route': {
      const t = m.route;
      if (t === null || typeof t !== 'object') throw typeError(`${what}.route`, 'an rtmsg object', t);
      const b = w.reserve(RTMSG_LEN);
      w.u8(b, t.family, `${what}.route.family`);
      w.u8(b + 1, t.dstLen, `${what}.route.dstLen`);
      w.u8(b + 2, t.srcLen, `${what}.route.srcLen`);
      w.u8(b + 3, t.tos, `${what}.route.tos`);
      w.u8(b + 4, t.table, `${what}.route.table`);
      w.u8(b + 5, t.protocol, `${what}.route.protocol`);
      w.u8(b + 6, t.scope, `${what}.route.scope`);
      w.u8(b + 7, t.type, `${what}.route.type`);
      w.u32(b + 8, t.flags, `${what}.route.flags`);
      encodeAttrs(w, m.attrs, ROUTE, t.family, `${what}.attrs`);
      break;
    }
    case 'error': {
      const b = w.reserve(NLMSGERR_LEN);
      w.i32(b, m.error, `${what}.error`);
      const q = m.request;
      if (q === null || typeof q !== 'object') throw typeError(`${what}.request`, 'a quoted nlmsghdr object', q);
      w.u32(b + 4, q.len, `${what}.request.len`);
      w.u16(b + 8, q.type, `${what}.request.type`);
      w.u16(b + 10, q.flags, `${what}.request.flags`);
      w.u32(b + 12, q.seq, `${what}.request.seq`);
      w.u32(b + 16, q.pid, `${what}.request.pid`);
      if (m.payload !== undefined) {
        if (!(m.payload instanceof Uint8Array)) throw typeError(`${what}.payload`, 'a Uint8Array', m.payload);
        if (q.len !== NLMSG_HDRLEN + m.payload.length) {
          throw rangeError(`${what}.request.len`, `${NLMSG_HDRLEN + m.payload.length} (16 + the payload's length)`, q.len);
        }
        w.bytes(w.reserve(m.payload.length), m.payload, `${what}.payload`);
        w.align(4);
      }
      encodeAttrs(w, m.ext, EXTACK, 0, `${what}.ext`);
      break;
    }
    case 'done': {
      w.i32(w.reserve(4), m.status, `${what}.status`);
      encodeAttrs(w, m.ext, EXTACK, 0, `${what}.ext`);
      break;
    }
    case 'raw': {
      if (!(m.body instanceof Uint8Array)) throw typeError(`${what}.body`, 'a Uint8Array', m.body);
      w.bytes(w.reserve(m.body.length), m.body, `${what}.body`);
      w.align(4);
      break;
    }
    default:
      throw rangeError(`${what}.kind`, "'link', 'addr', 'route', 'error', 'done' or 'raw'", (m as { kind?: unknown }).kind);
  }
  w.u32(start, w.len - start, `${what} length`);
}

function encodeAttrs(w: ByteWriter, attrs: readonly RtAttrInput[] | undefined, sp: Space, family: number, what: string): void {
  if (attrs === undefined) return;
  if (!Array.isArray(attrs)) throw typeError(what, 'an array of attributes', attrs);
  attrs.forEach((a, i) => encodeAttr(w, a, sp, family, `${what}[${i}]`));
}

function encodeAttr(w: ByteWriter, a: RtAttrInput, sp: Space, family: number, what: string): void {
  if (a === null || typeof a !== 'object') throw typeError(what, 'an attribute object ({ name, value } or { type, value })', a);
  let type: number;
  let format: Format = 'bytes';
  if (a.name !== undefined) {
    const spec = sp.byName.get(a.name);
    if (!spec) throw rangeError(`${what}.name`, `a ${sp.what} attribute name (${[...sp.byName.keys()].join(', ')})`, a.name);
    type = a.type ?? spec.type;
    if ((type & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)) !== spec.type) throw rangeError(`${what}.type`, `${spec.type} for ${a.name}`, a.type);
    format = spec.format;
  } else {
    if (a.type === undefined) throw typeError(`${what}.name`, 'an attribute name, or a type number', undefined);
    type = a.type;
  }
  const field = `${what}${a.name ? ` (${a.name})` : ''}`;
  const v = a.value;
  let data: Uint8Array | undefined;
  let size: number;
  switch (format) {
    case 'u8':
      size = 1;
      break;
    case 'u16':
    case 'be16':
      size = 2;
      break;
    case 'u32':
    case 's32':
      size = 4;
      break;
    case 'cacheinfo':
      size = 16;
      break;
    case 'string': {
      if (typeof v !== 'string') throw typeError(`${field}.value`, 'a string', v);
      if (!/^[\x01-\xff]*$/.test(v)) throw rangeError(`${field}.value`, 'a latin1 string without NUL characters', v);
      data = Buffer.from(`${v}\0`, 'latin1');
      size = data.length;
      break;
    }
    default:
      if (format === 'address' && (family === AF_INET || family === AF_INET6)) {
        if (typeof v !== 'string') throw typeError(`${field}.value`, 'an address string', v);
        data = addressToBytes(v, `${field}.value`);
        if (data.length !== (family === AF_INET ? 4 : 16)) {
          throw rangeError(`${field}.value`, `an ${family === AF_INET ? 'IPv4' : 'IPv6'} address (the message's family)`, v);
        }
      } else {
        // bytes, or an address of another family (MPLS, bridge ...)
        if (!(v instanceof Uint8Array)) throw typeError(`${field}.value`, 'a Uint8Array', v);
        data = v;
      }
      size = data.length;
  }
  if (NLA_HDRLEN + size > 0xffff) throw rangeError(`${field}.value`, `at most ${0xffff - NLA_HDRLEN} bytes`, v);
  const at = w.reserve(NLA_HDRLEN + size);
  w.u16(at, NLA_HDRLEN + size, `${field} length`);
  w.u16(at + 2, type, `${field}.type`);
  const o = at + NLA_HDRLEN;
  switch (format) {
    case 'u8':
      w.u8(o, v, `${field}.value`);
      break;
    case 'u16':
      w.u16(o, v, `${field}.value`);
      break;
    case 'be16':
      w.be16(o, v, `${field}.value`);
      break;
    case 'u32':
      w.u32(o, v, `${field}.value`);
      break;
    case 's32':
      w.i32(o, v, `${field}.value`);
      break;
    case 'cacheinfo': {
      const c = v as IfaCacheinfo;
      if (c === null || typeof c !== 'object') throw typeError(`${field}.value`, 'an object { preferred, valid, cstamp, tstamp }', v);
      w.u32(o, c.preferred, `${field}.value.preferred`);
      w.u32(o + 4, c.valid, `${field}.value.valid`);
      w.u32(o + 8, c.cstamp, `${field}.value.cstamp`);
      w.u32(o + 12, c.tstamp, `${field}.value.tstamp`);
      break;
    }
    default:
      w.bytes(o, data, `${field}.value`);
  }
  w.align(4);
}
