// rtnetlink messages ⇄ natt's objects: links, interface addresses and routes out; checked address and route specs in.

import { rangeError, typeError } from '../errors';
import { intOption, oneOf, readOptions, stringOption, boolOption, fieldName } from '../core/options';
import { addressFamily, addressToBytes, bytesToAddress } from '../ip/address';
import { AF_INET, AF_INET6, IFF, RTN, RTPROT, RT_SCOPE, RT_TABLE } from './constants';
import { findAttr, type RtAttrInput, type RtMsg, type RtnlMessage } from './codec';

/** A network interface, from RTM_NEWLINK. */
export interface Link {
  index: number;
  name: string;
  /** ARPHRD_* (0xfffe: none, as for a TUN device; 772: loopback; 1: Ethernet). */
  type: number;
  /** IFF_* flags. */
  flags: number;
  /** IFF_UP: administratively up. */
  up: boolean;
  /** IFF_LOWER_UP: the carrier is there (for a TUN: a process holds it open). */
  lowerUp: boolean;
  mtu?: number;
  minMtu?: number;
  maxMtu?: number;
  txqlen?: number;
  /** RFC 2863 operational state (IF_OPER_*: 6 up, 2 down, 0 unknown). */
  operstate?: number;
  /** The hardware address as 'aa:bb:..', when the link has one. */
  address?: string;
  qdisc?: string;
}

/** An address on an interface, from RTM_NEWADDR. */
export interface InterfaceAddress {
  index: number;
  family: 4 | 6;
  /** The interface's own address (IFA_LOCAL, else IFA_ADDRESS). */
  address: string;
  prefixLength: number;
  /** The far end of a point-to-point link, when IFA_ADDRESS differs from IFA_LOCAL. */
  peer?: string;
  /** RT_SCOPE_* (0 global, 253 link, 254 host). */
  scope: number;
  /** IFA_F_* (the 32-bit IFA_FLAGS when present). */
  flags: number;
  label?: string;
}

/** A route, from RTM_NEWROUTE. */
export interface Route {
  family: 4 | 6;
  /** '10.10.2.0/24', '0.0.0.0/0' ... */
  dst: string;
  table: number;
  /** RTPROT_* (2 kernel, 3 boot, 4 static). */
  protocol: number;
  scope: number;
  /** RTN_* (1 unicast, 2 local, 6 blackhole ...). */
  type: number;
  /** The output interface's index. */
  oif?: number;
  gateway?: string;
  /** The metric (RTA_PRIORITY). */
  priority?: number;
  prefsrc?: string;
}

const familyOf = (af: number): 4 | 6 | 0 => (af === AF_INET ? 4 : af === AF_INET6 ? 6 : 0);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** RTM_NEWLINK → Link. */
export function messageToLink(m: Extract<RtnlMessage, { kind: 'link' }>): Link {
  const hw = findAttr(m.attrs, 'address');
  const link: Link = {
    index: m.link.index,
    name: str(findAttr(m.attrs, 'ifname')) ?? '',
    type: m.link.type,
    flags: m.link.flags,
    up: (m.link.flags & IFF.UP) !== 0,
    lowerUp: (m.link.flags & IFF.LOWER_UP) !== 0,
  };
  const set = <K extends keyof Link>(k: K, v: Link[K] | undefined): void => {
    if (v !== undefined) link[k] = v;
  };
  set('mtu', num(findAttr(m.attrs, 'mtu')));
  set('minMtu', num(findAttr(m.attrs, 'minMtu')));
  set('maxMtu', num(findAttr(m.attrs, 'maxMtu')));
  set('txqlen', num(findAttr(m.attrs, 'txqlen')));
  set('operstate', num(findAttr(m.attrs, 'operstate')));
  set('qdisc', str(findAttr(m.attrs, 'qdisc')));
  if (hw instanceof Uint8Array && hw.length) set('address', Buffer.from(hw).toString('hex').replace(/(..)(?!$)/g, '$1:'));
  return link;
}

/** RTM_NEWADDR → InterfaceAddress; undefined for a family other than IPv4/IPv6. */
export function messageToAddress(m: Extract<RtnlMessage, { kind: 'addr' }>): InterfaceAddress | undefined {
  const family = familyOf(m.addr.family);
  if (family === 0) return undefined;
  const local = str(findAttr(m.attrs, 'local'));
  const address = str(findAttr(m.attrs, 'address'));
  const own = local ?? address;
  if (own === undefined) return undefined;
  const out: InterfaceAddress = {
    index: m.addr.index,
    family,
    address: own,
    prefixLength: m.addr.prefixlen,
    scope: m.addr.scope,
    flags: num(findAttr(m.attrs, 'flags')) ?? m.addr.flags,
  };
  if (local !== undefined && address !== undefined && address !== local) out.peer = address;
  const label = str(findAttr(m.attrs, 'label'));
  if (label !== undefined) out.label = label;
  return out;
}

/** RTM_NEWROUTE → Route; undefined for a family other than IPv4/IPv6. */
export function messageToRoute(m: Extract<RtnlMessage, { kind: 'route' }>): Route | undefined {
  const family = familyOf(m.route.family);
  if (family === 0) return undefined;
  const dst = str(findAttr(m.attrs, 'dst')) ?? (family === 4 ? '0.0.0.0' : '::');
  const out: Route = {
    family,
    dst: `${dst}/${m.route.dstLen}`,
    table: num(findAttr(m.attrs, 'table')) ?? m.route.table,
    protocol: m.route.protocol,
    scope: m.route.scope,
    type: m.route.type,
  };
  const oif = num(findAttr(m.attrs, 'oif'));
  if (oif !== undefined) out.oif = oif;
  const gw = str(findAttr(m.attrs, 'gateway'));
  if (gw !== undefined) out.gateway = gw;
  const prio = num(findAttr(m.attrs, 'priority'));
  if (prio !== undefined) out.priority = prio;
  const prefsrc = str(findAttr(m.attrs, 'prefsrc'));
  if (prefsrc !== undefined) out.prefsrc = prefsrc;
  return out;
}

// ---- specs in ----

/** An address with its prefix length, host bits kept: '10.10.1.1/24' (a bare address is a host prefix). */
export interface AddressWithPrefix {
  family: 4 | 6;
  address: string;
  prefixLength: number;
}

/** Parse `'10.10.1.1/24'` or `'fd00::1/64'` (host bits kept; a bare address means /32 or /128). */
export function parseAddressWithPrefix(v: unknown, field: string): AddressWithPrefix {
  if (typeof v !== 'string') throw typeError(field, "an address with a prefix length, like '10.10.1.1/24'", v);
  const slash = v.indexOf('/');
  const text = slash >= 0 ? v.slice(0, slash) : v;
  const family = addressFamily(text);
  if (family === 0 || text.includes('%')) throw rangeError(field, "an IPv4 or IPv6 address with a prefix length, like '10.10.1.1/24'", v);
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = v.slice(slash + 1);
    bits = /^\d{1,3}$/.test(b) ? Number(b) : NaN;
    if (!(bits >= 0 && bits <= max)) throw rangeError(field, `a prefix length from 0 to ${max} after the '/'`, v);
  }
  const bytes = addressToBytes(text, field);
  return { family, address: bytesToAddress(bytes, 0, family === 4 ? 4 : 16), prefixLength: bits };
}

/** A route destination: a prefix without host bits; 'default' is 0.0.0.0/0 (or ::/0 with an IPv6 `via`). */
export function parseDestination(v: unknown, field: string, viaFamily: 0 | 4 | 6): AddressWithPrefix {
  if (v === 'default') return { family: viaFamily === 6 ? 6 : 4, address: viaFamily === 6 ? '::' : '0.0.0.0', prefixLength: 0 };
  const p = parseAddressWithPrefix(v, field);
  const bytes = addressToBytes(p.address);
  for (let bit = p.prefixLength; bit < bytes.length * 8; bit++) {
    if (bytes[bit >> 3] & (0x80 >> (bit & 7))) {
      throw rangeError(field, `a network prefix without host bits (bit ${bit} is set past /${p.prefixLength})`, v);
    }
  }
  return p;
}

/** The interface: an index, or a name to look up. */
export type DeviceRef = number | string;

export function deviceOption(v: unknown, field: string): DeviceRef {
  if (typeof v === 'number') return intOption(v, field, 1, 0x7fff_ffff);
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > 15 || !/^[^\s/:\0]+$/.test(v)) {
      throw rangeError(field, 'an interface name of 1 to 15 characters without white space, "/" or ":"', v);
    }
    return v;
  }
  throw typeError(field, 'an interface index or name', v);
}

/** What addAddress / deleteAddress take. */
export interface AddressSpec {
  /** The interface (index or name). */
  dev: DeviceRef;
  /** '10.10.1.1/24', 'fd00::1/64' (a bare address: /32 or /128). */
  address: string;
  /** The far end of a point-to-point link (IFA_ADDRESS). */
  peer?: string;
  /** IPv6: usable at once, without duplicate address detection (IFA_F_NODAD). */
  nodad?: boolean;
  /** Do not add the prefix route the kernel adds for a prefix shorter than the host (IFA_F_NOPREFIXROUTE). */
  noprefixroute?: boolean;
  /** The metric of the prefix route (IFA_RT_PRIORITY). */
  metric?: number;
}

export interface CheckedAddressSpec extends AddressWithPrefix {
  dev: DeviceRef;
  peer?: string;
  nodad: boolean;
  noprefixroute: boolean;
  metric?: number;
}

const ADDRESS_KEYS = ['dev', 'address', 'peer', 'nodad', 'noprefixroute', 'metric'] as const;

export function readAddressSpec(v: unknown, what = 'address'): CheckedAddressSpec {
  const o = readOptions(v, ADDRESS_KEYS, what);
  const f = (k: string): string => fieldName(what, k);
  if (o.dev === undefined) throw typeError(f('dev'), 'an interface index or name', undefined);
  if (o.address === undefined) throw typeError(f('address'), "an address with a prefix length, like '10.10.1.1/24'", undefined);
  const a = parseAddressWithPrefix(o.address, f('address'));
  const out: CheckedAddressSpec = {
    ...a,
    dev: deviceOption(o.dev, f('dev')),
    nodad: boolOption(o.nodad, f('nodad'), false),
    noprefixroute: boolOption(o.noprefixroute, f('noprefixroute'), false),
  };
  if (o.peer !== undefined) {
    const peer = stringOption(o.peer, f('peer'));
    if (addressFamily(peer) !== a.family) throw rangeError(f('peer'), `an IPv${a.family} address (the address's family)`, peer);
    out.peer = bytesToAddress(addressToBytes(peer), 0, a.family === 4 ? 4 : 16);
  }
  if (o.metric !== undefined) out.metric = intOption(o.metric, f('metric'), 0, 0xffff_ffff);
  return out;
}

/** The route types natt adds (RTN_*). */
export const ROUTE_TYPES = { unicast: RTN.UNICAST, blackhole: RTN.BLACKHOLE, unreachable: RTN.UNREACHABLE, prohibit: RTN.PROHIBIT } as const;
export type RouteType = keyof typeof ROUTE_TYPES;

/** What addRoute / deleteRoute take. */
export interface RouteSpec {
  /** '10.10.2.0/24', 'fd00:2::/64', 'default'. */
  dst: string;
  /** The output interface (index or name). A unicast route needs `dev`, `via` or both. */
  dev?: DeviceRef;
  /** The gateway (same family as `dst`). */
  via?: string;
  /** RTA_PRIORITY (0 is the kernel's default; IPv6 takes 0 as 1024). */
  metric?: number;
  /** 1 to 2^32-1 (default 254, main). */
  table?: number;
  /** The preferred source address (RTA_PREFSRC). */
  src?: string;
  /** Default 'unicast'. */
  type?: RouteType;
}

export interface CheckedRouteSpec {
  family: 4 | 6;
  dst: string;
  dstLen: number;
  dev?: DeviceRef;
  via?: string;
  metric?: number;
  table: number;
  src?: string;
  type: RouteType;
}

const ROUTE_KEYS = ['dst', 'dev', 'via', 'metric', 'table', 'src', 'type'] as const;

/** Check a route spec; for a delete (`del`) a unicast route needs neither dev nor via (the kernel matches on what is given). */
export function readRouteSpec(v: unknown, what = 'route', del = false): CheckedRouteSpec {
  const o = readOptions(v, ROUTE_KEYS, what);
  const f = (k: string): string => fieldName(what, k);
  let via: string | undefined;
  let viaFamily: 0 | 4 | 6 = 0;
  if (o.via !== undefined) {
    const t = stringOption(o.via, f('via'));
    viaFamily = addressFamily(t);
    if (viaFamily === 0 || t.includes('%')) throw rangeError(f('via'), 'an IPv4 or IPv6 gateway address', t);
    via = bytesToAddress(addressToBytes(t), 0, viaFamily === 4 ? 4 : 16);
  }
  if (o.dst === undefined) throw typeError(f('dst'), "a destination prefix like '10.10.2.0/24', or 'default'", undefined);
  const d = parseDestination(o.dst, f('dst'), viaFamily);
  if (via !== undefined && viaFamily !== d.family) throw rangeError(f('via'), `an IPv${d.family} address (the destination's family)`, o.via);
  const type = oneOf(o.type, f('type'), Object.keys(ROUTE_TYPES) as RouteType[], 'unicast' as const);
  const out: CheckedRouteSpec = {
    family: d.family,
    dst: d.address,
    dstLen: d.prefixLength,
    table: intOption(o.table, f('table'), 1, 0xffff_ffff, RT_TABLE.MAIN),
    type,
  };
  if (o.dev !== undefined) out.dev = deviceOption(o.dev, f('dev'));
  if (via !== undefined) out.via = via;
  if (!del && type === 'unicast' && out.dev === undefined && via === undefined) {
    throw typeError(f('dev'), 'an interface index or name (a unicast route needs dev, via or both)', undefined);
  }
  if (type !== 'unicast' && (out.dev !== undefined || via !== undefined)) {
    throw rangeError(f('type'), "'unicast' for a route with dev or via", type);
  }
  if (o.metric !== undefined) out.metric = intOption(o.metric, f('metric'), 0, 0xffff_ffff);
  if (o.src !== undefined) {
    const s = stringOption(o.src, f('src'));
    if (addressFamily(s) !== d.family) throw rangeError(f('src'), `an IPv${d.family} address (the destination's family)`, s);
    out.src = bytesToAddress(addressToBytes(s), 0, d.family === 4 ? 4 : 16);
  }
  return out;
}

/** A checked route as rtmsg fields and attributes; `index` is the resolved `dev`. For deletes the kernel matches loosely. */
export function routeMessage(r: CheckedRouteSpec, index: number | undefined, del: boolean): { route: RtMsg; attrs: RtAttrInput[] } {
  const attrs: RtAttrInput[] = [];
  if (r.dstLen > 0) attrs.push({ name: 'dst', value: r.dst });
  if (index !== undefined) attrs.push({ name: 'oif', value: index });
  if (r.via !== undefined) attrs.push({ name: 'gateway', value: r.via });
  if (r.metric !== undefined) attrs.push({ name: 'priority', value: r.metric });
  if (r.src !== undefined) attrs.push({ name: 'prefsrc', value: r.src });
  attrs.push({ name: 'table', value: r.table });
  const route = {
    family: r.family === 4 ? AF_INET : AF_INET6,
    dstLen: r.dstLen,
    srcLen: 0,
    tos: 0,
    table: r.table <= 255 ? r.table : RT_TABLE.UNSPEC,
    // Deletes match any protocol, scope and type (as ip route del does); adds say natt put them there: 'static'.
    protocol: del ? RTPROT.UNSPEC : RTPROT.STATIC,
    scope: del ? RT_SCOPE.NOWHERE : r.type === 'unicast' && r.via === undefined ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE,
    type: del ? RTN.UNSPEC : ROUTE_TYPES[r.type],
    flags: 0,
  };
  return { route, attrs };
}
