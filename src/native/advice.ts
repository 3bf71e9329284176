// Plain-words advice for OS errors (which capability, which kernel option), keyed by errno name and what was being done.

import { NattSystemError } from '../errors';

/** What the failing call was for: picks the advice (EAFNOSUPPORT means one thing for PF_KEY, another for XFRM). */
export type ErrorContext = 'pfkey' | 'xfrm' | 'netlink' | 'rtnetlink' | 'udp-encap' | 'udp' | 'tun' | 'other';

export interface AdviceDetails {
  /** UDP_ENCAP type that was asked for (1 = non-IKE, 2 = ESP-in-UDP). */
  encapType?: number;
  /** Port being bound. */
  port?: number;
  /** The kernel request that was refused (rtnetlink: 'RTM_NEWADDR', 'RTM_NEWROUTE', ...). */
  request?: string;
}

const CAP = 'run as root or grant the CAP_NET_ADMIN capability (e.g. setcap cap_net_admin+ep $(which node))';

/** Advice for an errno name in a context, or undefined when there is nothing useful to add. */
export function adviceFor(code: string, ctx: ErrorContext, details: AdviceDetails = {}): string | undefined {
  switch (code) {
    case 'EPERM':
    case 'EACCES':
      if ((ctx === 'udp' || ctx === 'udp-encap') && details.port !== undefined && details.port > 0 && details.port < 1024)
        return `port ${details.port} is privileged: run as root, grant CAP_NET_BIND_SERVICE, or use a port >= 1024`;
      if (ctx === 'pfkey') return `PF_KEY needs privilege: ${CAP}`;
      if (ctx === 'xfrm' || ctx === 'netlink') return `XFRM netlink needs privilege: ${CAP}`;
      if (ctx === 'tun' && code === 'EACCES')
        return (
          '/dev/net/tun is not open to this user (its mode is root-only here): run as root, or give this user access ' +
          `to the device node; creating the device also needs CAP_NET_ADMIN (${CAP})`
        );
      if (ctx === 'tun') return `creating a TUN device needs CAP_NET_ADMIN: ${CAP}`;
      if (ctx === 'rtnetlink') return `changing links, addresses and routes needs CAP_NET_ADMIN in this network namespace: ${CAP}`;
      return CAP;
    case 'EAFNOSUPPORT':
    case 'EPROTONOSUPPORT':
    case 'ESOCKTNOSUPPORT':
      if (ctx === 'pfkey')
        return (
          'this kernel has no PF_KEY: it was built without CONFIG_NET_KEY, or the af_key module is not loaded ' +
          '(modprobe af_key as root); on Linux the xfrm backend, and everywhere the userland backend, work without it'
        );
      if (ctx === 'xfrm') return 'this kernel has no XFRM netlink: it was built without CONFIG_XFRM_USER (modprobe xfrm_user as root)';
      if (ctx === 'udp-encap' || ctx === 'udp') return 'this address family is not available here (IPv6 disabled?): use family 4';
      return undefined;
    case 'ENOPROTOOPT':
      if (ctx === 'udp-encap') {
        if (details.encapType === 1)
          return (
            "the kernel refuses the non-IKE encapsulation (UDP_ENCAP_ESPINUDP_NON_IKE): Linux >= 6.10 removed it; use encap 'espinudp' " +
            "or backend 'userland'"
          );
        if (process.platform === 'darwin') return "this OS has no UDP_ENCAP socket option: use backend 'userland'";
        return "the kernel cannot do ESP-in-UDP: it was built without CONFIG_XFRM / CONFIG_INET_ESP; use backend 'userland'";
      }
      return undefined;
    case 'EINVAL':
      if (ctx === 'tun')
        return (
          'the kernel refused the interface name or the flags: a name has at most 15 bytes and no "/", ":" or white ' +
          'space, and a device of another kind by that name cannot be attached as a TUN'
        );
      if (ctx === 'rtnetlink') return rtnlInvalid(details.request);
      if (ctx === 'udp-encap' && details.encapType === 1)
        return "this kernel does not accept the non-IKE encapsulation: use encap 'espinudp' or backend 'userland'";
      if (ctx === 'udp-encap') return 'the kernel rejected the address or the UDP_ENCAP value (is the address valid for this family?)';
      return undefined;
    case 'EADDRINUSE':
      return (
        `something else holds ${details.port !== undefined ? `port ${details.port}` : 'this address and port'} ` +
        '(another IKE daemon such as charon, pluto, racoon or iked?): pick another port or stop it'
      );
    case 'EADDRNOTAVAIL':
      if (ctx === 'rtnetlink' && details.request === 'RTM_DELADDR') return 'no such address on this interface';
      return 'this address is not configured on any interface of this host';
    case 'EBUSY':
      if (ctx === 'tun') return 'the interface name is in use (a TUN device or any other link): pick another name, or none for tunN';
      return undefined;
    case 'EEXIST':
      if (ctx === 'rtnetlink') {
        if (details.request === 'RTM_NEWADDR') return 'this address is already on the interface';
        if (details.request === 'RTM_NEWROUTE') return 'a route to this destination with this metric is already in this table';
        return 'it exists already';
      }
      return undefined;
    case 'ESRCH':
      if (ctx === 'rtnetlink' && details.request === 'RTM_DELROUTE') return 'no such route (destination, metric and table must all match)';
      return undefined;
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      if (ctx === 'rtnetlink')
        return 'the gateway is not on a network this host reaches directly: add an address whose prefix covers it, or a route to it, first';
      return undefined;
    case 'ENOENT':
    case 'ENODEV':
    case 'ENXIO':
      if (ctx === 'tun')
        return (
          'no TUN driver: the kernel was built without CONFIG_TUN, or the tun module is not loaded (modprobe tun as ' +
          'root); the device node is /dev/net/tun (mknod /dev/net/tun c 10 200)'
        );
      if (ctx === 'rtnetlink') return code === 'ENODEV' ? 'no such interface (it was removed?)' : 'no such route, address or table';
      return undefined;
    case 'ENOBUFS':
    case 'ENOMEM':
      return 'the kernel is short of socket buffer memory or dropped messages: raise SO_RCVBUF, or read faster';
    case 'EMSGSIZE':
      return 'a kernel message larger than the 256 KiB receive buffer was dropped';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files: close some sockets or raise the limit (ulimit -n)';
    default:
      return undefined;
  }
}

function rtnlInvalid(request: string | undefined): string {
  if (request === 'RTM_NEWLINK' || request === 'RTM_SETLINK') return 'the kernel refused the link change (an MTU outside the device\'s range?)';
  if (request === 'RTM_NEWROUTE' || request === 'RTM_DELROUTE') return 'the kernel refused the route (prefix, gateway family or table)';
  if (request === 'RTM_NEWADDR' || request === 'RTM_DELADDR') return 'the kernel refused the address (prefix length, family)';
  return 'the kernel refused the request';
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
