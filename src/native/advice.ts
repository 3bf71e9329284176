// The one errno-advice table: what to do about an OS or kernel error, keyed by errno name and what was being done.

import { NattSystemError } from '../errors';

/**
 * What the failing call was for: picks the advice (EAFNOSUPPORT means one thing for PF_KEY, another for XFRM).
 * `pfkey-reply` / `xfrm-reply` / `rtnetlink-reply`: the kernel answered a request with an errno (details.request or,
 * for rtnetlink, details.requestName says which).
 */
export type ErrorContext =
  | 'pfkey'
  | 'xfrm'
  | 'netlink'
  | 'rtnetlink'
  | 'udp-encap'
  | 'udp'
  | 'tcp'
  | 'ipsec-bypass'
  | 'tun'
  | 'control'
  | 'peercred'
  | 'capture'
  | 'other'
  | 'pfkey-reply'
  | 'xfrm-reply'
  | 'rtnetlink-reply';

/** What a kernel request was (for the `*-reply` contexts). */
export type RequestKind = 'sa' | 'getspi' | 'policy' | 'register' | 'dump' | 'migrate' | 'other';

export interface AdviceDetails {
  /** UDP_ENCAP type that was asked for (1 = non-IKE, 2 = ESP-in-UDP), or an SA's NAT-T type (7 = ESP in TCP). */
  encapType?: number;
  /** Port being bound. */
  port?: number;
  /** `*-reply`: which kind of request the kernel refused, and its name ('SADB_ADD', 'XFRM_MSG_NEWSA'). */
  request?: RequestKind;
  requestName?: string;
  /** `*-reply`: the SA is ESP (XFRM's ENOENT then means a missing transform or crypto template). */
  esp?: boolean;
}

const CAP = 'run as root or grant the CAP_NET_ADMIN capability (e.g. setcap cap_net_admin+ep $(which node))';
const XFRM_INSTEAD = "open the SA database with openSadb({ backend: 'xfrm' }) instead";
const NON_IKE =
  "the kernel refuses the non-IKE encapsulation (UDP_ENCAP_ESPINUDP_NON_IKE): Linux >= 6.10 removed it; use encap 'espinudp' or backend 'userland'";
const NON_IKE_SA =
  "Linux >= 6.10 (and current BSDs) reject the non-IKE encapsulation (NAT-T type 1, UDP_ENCAP_ESPINUDP_NON_IKE): use natt.type 'espinudp'";

const ESPINTCP_SA =
  "the kernel refused ESP in TCP (natt.type 'espintcp', TCP_ENCAP_ESPINTCP 7): it was built without CONFIG_INET_ESPINTCP " +
  "(Debian's cloud kernels are; `natt probe` says), or its ESP module lacks it; run the userland engine over " +
  'connectNattTcp / listenNattTcp instead';

type Rule = {
  codes: readonly string[];
  ctx: readonly ErrorContext[] | '*';
  when?: (d: AdviceDetails) => boolean;
  say: string | ((d: AdviceDetails) => string);
};

const sa = (d: AdviceDetails): boolean => d.request === 'sa';
const rtnl = (...names: string[]) => (d: AdviceDetails): boolean => names.includes(d.requestName ?? '');
const isReply: readonly ErrorContext[] = ['pfkey-reply', 'xfrm-reply'];

/** First match wins. */
const RULES: readonly Rule[] = [
  // Privilege
  {
    codes: ['EPERM', 'EACCES'],
    ctx: ['udp', 'udp-encap'],
    when: (d) => d.port !== undefined && d.port > 0 && d.port < 1024,
    say: (d) => `port ${d.port} is privileged: run as root, grant CAP_NET_BIND_SERVICE, or use a port >= 1024`,
  },
  { codes: ['EPERM', 'EACCES'], ctx: ['pfkey', 'pfkey-reply'], say: `PF_KEY needs privilege: ${CAP}` },
  { codes: ['EPERM', 'EACCES'], ctx: ['xfrm', 'netlink', 'xfrm-reply'], say: `XFRM netlink needs CAP_NET_ADMIN in this network namespace: ${CAP}` },
  {
    codes: ['EACCES'],
    ctx: ['tun'],
    say:
      '/dev/net/tun is not open to this user (its mode is root-only here): run as root, or give this user access to the ' +
      `device node; creating the device also needs CAP_NET_ADMIN (${CAP})`,
  },
  { codes: ['EPERM'], ctx: ['tun'], say: `creating a TUN device needs CAP_NET_ADMIN: ${CAP}` },
  {
    codes: ['EPERM', 'EACCES'],
    ctx: ['rtnetlink', 'rtnetlink-reply'],
    say: `changing links, addresses and routes needs CAP_NET_ADMIN in this network namespace: ${CAP}`,
  },
  {
    codes: ['EACCES', 'EPERM'],
    ctx: ['control'],
    when: (d) => d.requestName === 'listen',
    say: "this user may not create the control socket there (/run/natt needs root): run the daemon as root, or give it a control path in a directory this user owns",
  },
  {
    codes: ['EACCES', 'EPERM'],
    ctx: ['control'],
    say: "the control socket is open only to root and the daemon's user (mode 0600): run as one of them, or list this uid in the daemon's control.allowUids",
  },
  {
    codes: ['EPERM', 'EACCES'],
    ctx: ['ipsec-bypass'],
    say:
      `a per-socket IPsec bypass policy needs privilege: ${CAP}; without it, IKE between peers that an IPsec policy ` +
      'covers is taken by that policy (an ACQUIRE, nothing sent)',
  },
  {
    codes: ['EPERM', 'EACCES'],
    ctx: ['capture'],
    say: 'capturing packets (an AF_PACKET socket) needs CAP_NET_RAW in this network namespace: run as root, or grant it (setcap cap_net_raw+ep on node)',
  },
  { codes: ['EPERM', 'EACCES'], ctx: '*', say: CAP },
  // A facility the kernel lacks
  {
    codes: ['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'ESOCKTNOSUPPORT'],
    ctx: ['pfkey'],
    say:
      'this kernel has no PF_KEY: it was built without CONFIG_NET_KEY, or the af_key module is not loaded ' +
      '(modprobe af_key as root); on Linux the xfrm backend, and everywhere the userland backend, work without it',
  },
  {
    codes: ['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'ESOCKTNOSUPPORT'],
    ctx: ['xfrm'],
    say: 'this kernel has no XFRM netlink: it was built without CONFIG_XFRM_USER (modprobe xfrm_user as root)',
  },
  {
    codes: ['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'ESOCKTNOSUPPORT', 'ENOPROTOOPT'],
    ctx: ['capture'],
    say: 'no packet socket here: capture needs Linux AF_PACKET (CONFIG_PACKET, modprobe af_packet as root)',
  },
  {
    codes: ['EAFNOSUPPORT', 'EPROTONOSUPPORT', 'ESOCKTNOSUPPORT'],
    ctx: ['udp', 'udp-encap'],
    say: 'this address family is not available here (IPv6 disabled?): use family 4',
  },
  {
    codes: ['EPROTONOSUPPORT', 'ENOPROTOOPT'],
    ctx: ['pfkey-reply'],
    when: (d) => d.request === 'migrate',
    say: 'the kernel was built without CONFIG_NET_KEY_MIGRATE',
  },
  {
    codes: ['EPROTONOSUPPORT', 'ENOPROTOOPT'],
    ctx: ['pfkey-reply'],
    when: sa,
    say: 'the kernel lacks the IPsec transform: CONFIG_INET_ESP / CONFIG_INET6_ESP (modprobe esp4 esp6) or CONFIG_INET_AH',
  },
  {
    codes: ['EPROTONOSUPPORT', 'ENOPROTOOPT'],
    ctx: ['xfrm-reply'],
    when: (d) => d.request === 'sa' || d.request === 'getspi',
    say:
      'the kernel has no ESP (or AH/IPComp) transform: it was built without CONFIG_INET_ESP / CONFIG_INET6_ESP, ' +
      "or the esp4/esp6 module is not loaded (modprobe esp4 esp6 as root); use backend 'userland' meanwhile",
  },
  { codes: ['ENOPROTOOPT'], ctx: ['udp-encap'], when: (d) => d.encapType === 1, say: NON_IKE },
  {
    codes: ['ENOPROTOOPT'],
    ctx: ['udp-encap'],
    say: (): string =>
      process.platform === 'darwin'
        ? "this OS has no UDP_ENCAP socket option: use backend 'userland'"
        : "the kernel cannot do ESP-in-UDP: it was built without CONFIG_XFRM / CONFIG_INET_ESP; use backend 'userland'",
  },
  {
    codes: ['ENOPROTOOPT', 'EINVAL', 'EOPNOTSUPP', 'ENOSYS'],
    ctx: ['ipsec-bypass'],
    say:
      'the kernel takes no per-socket IPsec policy here (no IPsec, or no xfrm_user: CONFIG_XFRM_USER / modprobe xfrm_user); ' +
      'where the kernel has no IPsec at all there is no policy to bypass',
  },
  // Invalid arguments
  {
    codes: ['EINVAL'],
    ctx: ['udp-encap'],
    when: (d) => d.encapType === 1,
    say: "this kernel does not accept the non-IKE encapsulation: use encap 'espinudp' or backend 'userland'",
  },
  { codes: ['EINVAL'], ctx: ['udp-encap'], say: 'the kernel rejected the address or the UDP_ENCAP value (is the address valid for this family?)' },
  { codes: ['EINVAL'], ctx: isReply, when: (d) => sa(d) && d.encapType === 1, say: NON_IKE_SA },
  { codes: ['EINVAL'], ctx: ['xfrm-reply'], when: (d) => sa(d) && d.encapType === 7, say: ESPINTCP_SA },
  {
    codes: ['EINVAL'],
    ctx: ['pfkey-reply'],
    when: sa,
    say: 'the kernel rejected the SA: check the key lengths against the algorithms, the address families, the mode and the NAT-T type (2) and ports',
  },
  { codes: ['EINVAL'], ctx: ['xfrm-reply'], when: sa, say: 'the kernel rejected the SA: check key lengths, algorithm combination, mode and addresses' },
  {
    codes: ['EINVAL'],
    ctx: isReply,
    when: (d) => d.request === 'policy',
    say:
      'the kernel rejected the policy: Linux refuses an optional (level use) tunnel-mode rule in an out policy ' +
      '(use require there); else check the selector prefixes, the direction and the rules\' address families',
  },
  {
    codes: ['EINVAL'],
    ctx: ['tun'],
    say:
      'the kernel refused the interface name or the flags: a name has at most 15 bytes and no "/", ":" or white space, ' +
      'and a device of another kind by that name cannot be attached as a TUN',
  },
  {
    codes: ['EINVAL'],
    ctx: ['rtnetlink-reply'],
    when: rtnl('RTM_NEWLINK', 'RTM_SETLINK'),
    say: "the kernel refused the link change (an MTU outside the device's range?)",
  },
  {
    codes: ['EINVAL'],
    ctx: ['rtnetlink-reply'],
    when: rtnl('RTM_NEWROUTE', 'RTM_DELROUTE'),
    say: 'the kernel refused the route (prefix, gateway family or table)',
  },
  {
    codes: ['EINVAL'],
    ctx: ['rtnetlink-reply'],
    when: rtnl('RTM_NEWADDR', 'RTM_DELADDR'),
    say: 'the kernel refused the address (prefix length, family)',
  },
  // Algorithms
  {
    codes: ['ENOSYS'],
    ctx: ['pfkey-reply'],
    when: sa,
    say: `this kernel's PF_KEY cannot install that algorithm (Linux PF_KEY has no AEAD: AES-GCM/CCM/GMAC, ChaCha20-Poly1305): ${XFRM_INSTEAD}`,
  },
  {
    codes: ['ENOSYS'],
    ctx: ['xfrm-reply'],
    say:
      'the kernel does not know one of the algorithms: its crypto template is missing ' +
      '(CONFIG_CRYPTO_GCM, CONFIG_CRYPTO_CHACHA20POLY1305, CONFIG_CRYPTO_SHA256 ..., or the module is not loaded)',
  },
  {
    codes: ['ENOENT'],
    ctx: ['xfrm-reply'],
    when: (d) => (d.request === 'sa' || d.request === 'getspi') && d.esp === true,
    say:
      'the kernel found no ESP transform or crypto template: load esp4/esp6 (CONFIG_INET_ESP) and the crypto modules ' +
      "(CONFIG_CRYPTO_GCM, CONFIG_CRYPTO_CHACHA20POLY1305, CONFIG_CRYPTO_AUTHENC); or use backend 'userland'",
  },
  // Existence
  { codes: ['ENOENT', 'ESRCH'], ctx: isReply, when: (d) => d.request === 'policy', say: 'no such policy' },
  { codes: ['ENOENT', 'ESRCH'], ctx: ['pfkey-reply'], say: 'no such SA (destination, protocol, SPI)' },
  { codes: ['ESRCH'], ctx: ['xfrm-reply'], say: 'no such SA' },
  { codes: ['EEXIST'], ctx: ['pfkey-reply'], when: (d) => d.request === 'register', say: 'this socket is already registered for that SA type' },
  { codes: ['EEXIST'], ctx: isReply, when: (d) => d.request === 'policy', say: 'a policy with this selector and direction exists: use spdUpdate' },
  { codes: ['EEXIST'], ctx: isReply, when: sa, say: 'an SA with this destination, protocol and SPI already exists: use update, or delete it first' },
  { codes: ['EEXIST'], ctx: isReply, say: 'it already exists' },
  { codes: ['EBUSY'], ctx: ['pfkey-reply'], say: 'a dump is already running on this PF_KEY socket' },
  { codes: ['EBUSY'], ctx: ['xfrm-reply'], say: 'another dump is running on this socket' },
  {
    codes: ['EBUSY'],
    ctx: ['tun'],
    say: 'the interface name is in use (a TUN device or any other link): pick another name, or none for tunN',
  },
  { codes: ['EEXIST'], ctx: ['rtnetlink-reply'], when: rtnl('RTM_NEWADDR'), say: 'this address is already on the interface' },
  {
    codes: ['EEXIST'],
    ctx: ['rtnetlink-reply'],
    when: rtnl('RTM_NEWROUTE'),
    say: 'a route to this destination with this metric is already in this table',
  },
  { codes: ['EEXIST'], ctx: ['rtnetlink-reply'], say: 'it already exists' },
  {
    codes: ['ESRCH'],
    ctx: ['rtnetlink-reply'],
    when: rtnl('RTM_DELROUTE'),
    say: 'no such route (destination, metric and table must all match)',
  },
  { codes: ['ENODEV'], ctx: ['rtnetlink-reply'], say: 'no such interface (it was removed?)' },
  { codes: ['ENOENT', 'ESRCH'], ctx: ['rtnetlink-reply'], say: 'no such route, address or table' },
  {
    codes: ['ENETUNREACH', 'EHOSTUNREACH'],
    ctx: ['rtnetlink-reply'],
    say: 'the gateway is not on a network this host reaches directly: add an address whose prefix covers it, or a route to it, first',
  },
  { codes: ['ENETDOWN'], ctx: ['rtnetlink-reply'], say: 'the interface is down: bring it up before adding IPv4 routes through it' },
  { codes: ['EADDRNOTAVAIL'], ctx: ['rtnetlink-reply'], when: rtnl('RTM_DELADDR'), say: 'no such address on this interface' },
  { codes: ['EOPNOTSUPP'], ctx: ['pfkey-reply'], say: (d) => `the kernel does not take ${d.requestName ?? 'this message'} from userland` },
  // The daemon's control socket (src/control/)
  {
    codes: ['EADDRINUSE'],
    ctx: ['control'],
    say: 'a natt daemon is already serving this control socket (natt tunnel up already running?): stop it, or give this one another control path',
  },
  {
    codes: ['ENOENT', 'ECONNREFUSED'],
    ctx: ['control'],
    say: 'no natt daemon is listening on this control socket: start one (natt tunnel up --config FILE), or check the path',
  },
  {
    codes: ['EEXIST', 'ENOTSOCK'],
    ctx: ['control'],
    say: 'the control path exists and is not a socket: natt does not replace it; remove it or pick another path',
  },
  {
    codes: ['ENOPROTOOPT', 'EOPNOTSUPP', 'ENOSYS'],
    ctx: ['peercred'],
    say: 'this OS cannot tell who is on the other end of a Unix socket (no SO_PEERCRED or getpeereid): the control socket will not serve unchecked',
  },
  // Sockets and resources
  {
    codes: ['EADDRINUSE'],
    ctx: '*',
    say: (d) =>
      `something else holds ${d.port !== undefined ? `port ${d.port}` : 'this address and port'} ` +
      '(another IKE daemon such as charon, pluto, racoon or iked?): pick another port or stop it',
  },
  { codes: ['EADDRNOTAVAIL'], ctx: '*', say: 'this address is not configured on any interface of this host' },
  // ESP in TCP (src/tcp/)
  {
    codes: ['ECONNREFUSED'],
    ctx: ['tcp'],
    say: (d) => `nothing accepts TCP on ${d.port !== undefined ? `port ${d.port}` : 'that port'} there: is the responder's listenNattTcp running, or does a firewall reject TCP to it?`,
  },
  {
    codes: ['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'],
    ctx: ['tcp'],
    say: 'the responder did not answer: check the address and route, and whether a firewall drops TCP to that port',
  },
  { codes: ['ECONNRESET', 'EPIPE'], ctx: ['tcp'], say: 'the peer or a middlebox reset the connection (the initiator reconnects if reconnect is on)' },
  {
    codes: ['ENOENT', 'ENODEV', 'ENXIO'],
    ctx: ['tun'],
    say:
      'no TUN driver: the kernel was built without CONFIG_TUN, or the tun module is not loaded (modprobe tun as root); ' +
      'the device node is /dev/net/tun (mknod /dev/net/tun c 10 200)',
  },
  { codes: ['ENOBUFS', 'ENOMEM'], ctx: '*', say: 'the kernel is short of socket buffer memory or dropped messages: raise SO_RCVBUF, or read faster' },
  { codes: ['EMSGSIZE'], ctx: ['pfkey', 'xfrm', 'netlink'], say: 'a kernel message larger than the 256 KiB receive buffer was dropped' },
  { codes: ['EMSGSIZE'], ctx: ['udp', 'udp-encap'], say: 'the datagram is larger than UDP allows here (65507 bytes over IPv4, 65527 over IPv6) or than the route MTU with DF set' },
  { codes: ['ENETUNREACH', 'EHOSTUNREACH'], ctx: ['udp', 'udp-encap'], say: 'no route to that address from this host (check the routes and the local address)' },
  {
    codes: ['EINVAL'],
    ctx: ['udp'],
    say: 'the kernel refused the datagram: a local address that is not configured here, or an address of the other family?',
  },
  { codes: ['EMFILE', 'ENFILE'], ctx: '*', say: 'too many open files: close some sockets or raise the limit (ulimit -n)' },
];

/** Advice for an errno name in a context, or undefined when there is nothing useful to add. */
export function adviceFor(code: string, ctx: ErrorContext, details: AdviceDetails = {}): string | undefined {
  for (const r of RULES) {
    if (!r.codes.includes(code)) continue;
    if (r.ctx !== '*' && !r.ctx.includes(ctx)) continue;
    if (r.when && !r.when(details)) continue;
    return typeof r.say === 'string' ? r.say : r.say(details);
  }
  return undefined;
}

/**
 * Re-shape any error carrying Node's system-error fields (from the addon or from node:dgram) as NattSystemError
 * with advice. Anything else is returned unchanged.
 */
export function withAdvice(err: unknown, ctx: ErrorContext, details: AdviceDetails = {}): unknown {
  if (err instanceof NattSystemError) return err;
  const e = err as { code?: unknown; errno?: unknown; syscall?: unknown } | null;
  if (!e || typeof e.code !== 'string' || typeof e.errno !== 'number' || typeof e.syscall !== 'string') return err;
  const out = new NattSystemError(e.errno, e.syscall, adviceFor(e.code, ctx, details));
  if (out.code !== e.code) out.code = e.code; // keep the name the OS layer gave
  (out as { cause?: unknown }).cause = err;
  return out;
}
