// Rtnetlink: links, addresses and routes over NETLINK_ROUTE, every request ACKed, on the shared request layer.

import { KernelReplyError, NattError, errnoName, rangeError, typeError } from '../errors';
import { InternalGate } from '../core/internal';
import { boolOption, durationMs, intOption, oneOf, readOptions } from '../core/options';
import { RequestLayer } from '../kernel/requests';
import { openKernelTransport, type KernelSocket } from '../kernel/socket';
import { adviceFor } from '../native/advice';
import { loadNative, openMessageSocket, requireNative } from '../native/binding';
import { AF_INET, AF_INET6, AF_UNSPEC, IFA_F, IFF, NLM_F, RTM, messageTypeName } from './constants';
import { decode, encode, findAttr, type RtAttrInput, type RtnlMessage, type RtnlMessageInput } from './codec';
import {
  deviceOption,
  messageToAddress,
  messageToLink,
  messageToRoute,
  readAddressSpec,
  readRouteSpec,
  routeMessage,
  type AddressSpec,
  type DeviceRef,
  type InterfaceAddress,
  type Link,
  type Route,
  type RouteSpec,
} from './convert';

export interface RtnetlinkOptions {
  /** Default per-request timeout in ms (default 5000). */
  timeout?: number;
}

/** What each request waits for: replies of type `expect` before the ACK (GETLINK → NEWLINK), or -1. */
interface Ctx {
  expect: number;
  replies: RtnlMessage[];
  /** Dumps: message → item (undefined: skip it). */
  item?: (m: RtnlMessage) => unknown;
}

/** sockaddr_nl: family AF_NETLINK, pid 0 (the kernel picks), no groups. */
function sockaddrNl(family: number): Uint8Array {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(family, 0);
  return b;
}

/** The class's constructor is rtnetlink.open()'s alone. */
const rtnlGate = new InternalGate('rtnetlink.open()', 'an Rtnetlink');

/**
 * Links, addresses and routes of this network namespace over NETLINK_ROUTE. Every change is a request with
 * NLM_F_ACK (a refusal is a KernelReplyError with advice and, where the kernel gives one, its own words); lists are
 * dumps (AsyncIterables, one dump at a time). Needs CAP_NET_ADMIN for changes; lists work unprivileged.
 */
export class Rtnetlink {
  #sock: KernelSocket | null;
  readonly #layer: RequestLayer<Ctx>;
  #drops = 0;

  private constructor(timeout: number) {
    rtnlGate.check();
    const c = requireNative().constants;
    // The socket reaches this client only weakly: dropped without close(), the client is collected and its socket
    // closed (while a request is outstanding it is held: src/kernel/socket.ts).
    const { socket, transport } = openKernelTransport(
      (onMessage, onError, onWritable) => openMessageSocket(c.AF_NETLINK, c.SOCK_RAW, c.NETLINK_ROUTE, onMessage, onError, onWritable),
      this,
      Rtnetlink.#deliver,
      Rtnetlink.#lost,
    );
    try {
      socket.bind!(sockaddrNl(c.AF_NETLINK));
    } catch (e) {
      socket.close();
      throw e;
    }
    // Best effort: room for dumps; the kernel's own words in refusals; ACKs without the request quoted back.
    for (const [level, name, value] of [
      [c.SOL_SOCKET, c.SO_RCVBUF, 1 << 20],
      [c.SOL_NETLINK, c.NETLINK_EXT_ACK, 1],
      [c.SOL_NETLINK, c.NETLINK_CAP_ACK, 1],
    ]) {
      try {
        socket.setsockopt!(level, name, value);
      } catch {
        /* older kernel: plain ACKs */
      }
    }
    this.#sock = socket;
    this.#layer = new RequestLayer<Ctx>({
      transport,
      timeout,
      closedError: (what) => new NattError('ERR_NATT_CLOSED', `${what}: the Rtnetlink client is closed`),
      seqStart: Math.floor(Math.random() * 0x7fff_ffff),
    });
  }

  static #deliver(r: Rtnetlink, m: Buffer): void {
    r.#onMessage(m);
  }

  /** ENOBUFS and the like: a lost reply times its request out. */
  static #lost(r: Rtnetlink): void {
    r.#drops++;
  }

  /** Open a NETLINK_ROUTE socket in this process's network namespace. */
  static async open(opts?: RtnetlinkOptions): Promise<Rtnetlink> {
    const o = readOptions(opts, ['timeout'] as const);
    const timeout = durationMs(o.timeout, 'timeout', 1, 5000);
    if (!loadNative()) throw new NattError('ERR_NATT_NO_NATIVE', 'rtnetlink needs the natt native addon (npm rebuild natt)');
    return rtnlGate.make(() => new Rtnetlink(timeout));
  }

  /** Replies that could not be decoded or matched, and requests outstanding. */
  stats(): { drops: number; pending: number } {
    return { drops: this.#drops, pending: this.#layer.size };
  }

  /** Fail what is outstanding and close the socket. Idempotent. */
  close(): void {
    if (!this.#sock) return;
    this.#layer.close(new NattError('ERR_NATT_CLOSED', 'the Rtnetlink client was closed'));
    this.#sock.close();
    this.#sock = null;
  }

  // ---- links ----

  /** The link by index or name (ENODEV: a KernelReplyError when there is none). */
  async getLink(dev: DeviceRef, opts?: unknown): Promise<Link> {
    const d = deviceOption(dev, 'dev');
    const attrs: RtAttrInput[] = typeof d === 'string' ? [{ name: 'ifname', value: d }] : [];
    const replies = await this.#request(
      { kind: 'link', type: RTM.GETLINK, link: { family: AF_UNSPEC, type: 0, index: typeof d === 'number' ? d : 0, flags: 0, change: 0 }, attrs },
      opts,
      RTM.NEWLINK,
    );
    const m = replies.find((r) => r.kind === 'link');
    if (!m || m.kind !== 'link') throw new NattError('ERR_RTNETLINK_NO_REPLY', 'RTM_GETLINK was ACKed without a link');
    return messageToLink(m);
  }

  /** A link's index from its name. */
  async linkIndex(name: string, opts?: unknown): Promise<number> {
    if (typeof name !== 'string') throw typeError('name', 'an interface name', name);
    return (await this.getLink(deviceOption(name, 'name'), opts)).index;
  }

  /** Change a link: its MTU, its transmit queue length, up or down (one RTM_SETLINK). */
  async setLink(dev: DeviceRef, change: { mtu?: number; up?: boolean; txqlen?: number }, opts?: unknown): Promise<void> {
    const d = deviceOption(dev, 'dev');
    const c = readOptions(change, ['mtu', 'up', 'txqlen'] as const, 'change');
    const attrs: RtAttrInput[] = [];
    if (c.mtu !== undefined) attrs.push({ name: 'mtu', value: intOption(c.mtu, 'mtu', 68, 0xffff_ffff) });
    if (c.txqlen !== undefined) attrs.push({ name: 'txqlen', value: intOption(c.txqlen, 'txqlen', 1, 0xffff_ffff) });
    let flags = 0;
    let mask = 0;
    if (c.up !== undefined) {
      mask = IFF.UP;
      flags = boolOption(c.up, 'up') ? IFF.UP : 0;
    }
    if (!attrs.length && !mask) throw rangeError('change', 'an object with mtu, up or both, or txqlen', change);
    const index = await this.#index(d, opts);
    await this.#request({ kind: 'link', type: RTM.SETLINK, link: { family: AF_UNSPEC, type: 0, index, flags, change: mask }, attrs }, opts);
  }

  /** Set a link's MTU. */
  setMtu(dev: DeviceRef, mtu: number, opts?: unknown): Promise<void> {
    return this.setLink(dev, { mtu }, opts);
  }

  /** Bring a link up (true) or down (false). */
  setUp(dev: DeviceRef, up: boolean, opts?: unknown): Promise<void> {
    return this.setLink(dev, { up }, opts);
  }

  /** Every link (a dump). */
  links(opts?: unknown): AsyncIterable<Link> {
    return this.#dump(
      { kind: 'link', type: RTM.GETLINK, link: { family: AF_UNSPEC, type: 0, index: 0, flags: 0, change: 0 } },
      opts,
      (m) => (m.kind === 'link' ? messageToLink(m) : undefined),
    );
  }

  // ---- addresses ----

  /** Add an address ('10.10.1.1/24', 'fd00::1/64') to an interface. EEXIST when it is there already. */
  async addAddress(spec: AddressSpec, opts?: unknown): Promise<void> {
    await this.#address(RTM.NEWADDR, spec, opts);
  }

  /** Remove an address (matched by address and prefix length). EADDRNOTAVAIL when it is not there. */
  async deleteAddress(spec: AddressSpec, opts?: unknown): Promise<void> {
    await this.#address(RTM.DELADDR, spec, opts);
  }

  async #address(type: number, spec: AddressSpec, opts: unknown): Promise<void> {
    const a = readAddressSpec(spec);
    const index = await this.#index(a.dev, opts);
    const flags = (a.nodad ? IFA_F.NODAD : 0) | (a.noprefixroute ? IFA_F.NOPREFIXROUTE : 0);
    const attrs: RtAttrInput[] = [
      { name: 'local', value: a.address },
      { name: 'address', value: a.peer ?? a.address },
    ];
    if (type === RTM.NEWADDR) {
      if (flags > 0xff) attrs.push({ name: 'flags', value: flags });
      if (a.metric !== undefined) attrs.push({ name: 'rtPriority', value: a.metric });
    }
    await this.#request(
      {
        kind: 'addr',
        type,
        flags: type === RTM.NEWADDR ? NLM_F.CREATE | NLM_F.EXCL : 0,
        addr: { family: a.family === 4 ? AF_INET : AF_INET6, prefixlen: a.prefixLength, flags: flags & 0xff, scope: 0, index },
        attrs,
      },
      opts,
    );
  }

  /** Addresses (a dump), optionally of one interface and/or family. */
  addresses(filter?: { dev?: DeviceRef; family?: 4 | 6 }, opts?: unknown): AsyncIterable<InterfaceAddress> {
    const f = readOptions(filter, ['dev', 'family'] as const, 'filter');
    const dev = f.dev === undefined ? undefined : deviceOption(f.dev, 'filter.dev');
    const family = f.family === undefined ? undefined : oneOf(f.family, 'filter.family', [4, 6] as const);
    const self = this;
    let index: number | undefined;
    return {
      async *[Symbol.asyncIterator]() {
        if (dev !== undefined) index = await self.#index(dev, opts);
        yield* self.#dump<InterfaceAddress>(
          { kind: 'addr', type: RTM.GETADDR, addr: { family: family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC, prefixlen: 0, flags: 0, scope: 0, index: 0 } },
          opts,
          (m) => {
            if (m.kind !== 'addr') return undefined;
            const a = messageToAddress(m);
            return a && (index === undefined || a.index === index) ? a : undefined;
          },
        );
      },
    };
  }

  // ---- routes ----

  /** Add a route ({ dst: '10.10.2.0/24', dev?, via?, metric?, table?, src?, type? }). EEXIST when it is there already. */
  async addRoute(spec: RouteSpec, opts?: unknown): Promise<void> {
    const r = readRouteSpec(spec);
    const index = r.dev === undefined ? undefined : await this.#index(r.dev, opts);
    const { route, attrs } = routeMessage(r, index, false);
    await this.#request({ kind: 'route', type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.EXCL, route, attrs }, opts);
  }

  /** Delete a route (matched by dst, table, and dev / via / metric when given). ESRCH when there is none. */
  async deleteRoute(spec: RouteSpec, opts?: unknown): Promise<void> {
    const r = readRouteSpec(spec, 'route', true);
    const index = r.dev === undefined ? undefined : await this.#index(r.dev, opts);
    const { route, attrs } = routeMessage(r, index, true);
    await this.#request({ kind: 'route', type: RTM.DELROUTE, route, attrs }, opts);
  }

  /** Routes (a dump), optionally of one family and/or table. */
  routes(filter?: { family?: 4 | 6; table?: number }, opts?: unknown): AsyncIterable<Route> {
    const f = readOptions(filter, ['family', 'table'] as const, 'filter');
    const family = f.family === undefined ? undefined : oneOf(f.family, 'filter.family', [4, 6] as const);
    const table = f.table === undefined ? undefined : intOption(f.table, 'filter.table', 0, 0xffff_ffff);
    return this.#dump(
      {
        kind: 'route',
        type: RTM.GETROUTE,
        route: { family: family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC, dstLen: 0, srcLen: 0, tos: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0 },
      },
      opts,
      (m) => {
        if (m.kind !== 'route') return undefined;
        const r = messageToRoute(m);
        return r && (table === undefined || r.table === table) ? r : undefined;
      },
    );
  }

  // ---- the request machinery ----

  async #index(dev: DeviceRef, opts: unknown): Promise<number> {
    return typeof dev === 'number' ? dev : (await this.getLink(dev, opts)).index;
  }

  #request(msg: RtnlMessageInput, opts: unknown, expect = -1): Promise<RtnlMessage[]> {
    const what = messageTypeName(msg.type);
    const ctx: Ctx = { expect, replies: [] };
    return this.#layer.request<RtnlMessage[]>(
      () => {
        const seq = this.#layer.nextSeq();
        return { what, key: seq, bytes: encode({ ...msg, seq, flags: NLM_F.REQUEST | NLM_F.ACK | (msg.flags ?? 0) } as RtnlMessageInput) };
      },
      opts,
      ctx,
    );
  }

  #dump<T>(msg: RtnlMessageInput, opts: unknown, item: (m: RtnlMessage) => T | undefined): AsyncIterable<T> {
    const what = `${messageTypeName(msg.type)} dump`;
    return this.#layer.dump<T>(
      () => {
        const seq = this.#layer.nextSeq();
        return { what, key: seq, bytes: encode({ ...msg, seq, flags: NLM_F.REQUEST | NLM_F.DUMP } as RtnlMessageInput) };
      },
      opts,
      { expect: -1, replies: [], item },
    );
  }

  #onMessage(buf: Buffer): void {
    let msgs: RtnlMessage[];
    try {
      msgs = decode(buf);
    } catch (e) {
      this.#drops++;
      // A reply that breaks the rules fails its request at once (when its seq can be read) instead of timing out.
      const p = buf.length >= 12 ? this.#layer.find(buf.readUInt32LE(8)) : undefined;
      p?.reject(e as Error);
      return;
    }
    for (const m of msgs) this.#dispatch(m);
  }

  #dispatch(m: RtnlMessage): void {
    const p = m.seq ? this.#layer.find(m.seq) : undefined;
    if (!p) {
      this.#drops++; // a reply to a request that timed out or was aborted
      return;
    }
    if (m.kind === 'error') {
      if (m.error === 0) p.resolve(p.ctx.replies);
      else p.reject(replyError(-m.error, p.what.replace(/ dump$/, ''), str(findAttr(m.ext, 'msg'))));
      return;
    }
    if (m.kind === 'done') {
      if (m.status < 0) p.reject(replyError(-m.status, p.what.replace(/ dump$/, ''), str(findAttr(m.ext, 'msg'))));
      else p.resolve(undefined);
      return;
    }
    if (p.dump) {
      let v: unknown;
      try {
        v = p.ctx.item?.(m);
      } catch (e) {
        p.reject(e as Error);
        return;
      }
      if (v !== undefined) p.item(v);
      return;
    }
    if (m.type === p.ctx.expect) p.ctx.replies.push(m);
    else this.#drops++;
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A refusal: the errno, the request's name, natt's advice and the kernel's own words (extended ACK) when given. */
function replyError(errno: number, what: string, kernelSays: string | undefined): KernelReplyError {
  const advice = [kernelSays && `the kernel says "${kernelSays}"`, adviceFor(errnoName(errno), 'rtnetlink-reply', { requestName: what })]
    .filter(Boolean)
    .join('; ');
  return new KernelReplyError(errno, what, advice || undefined);
}

/** Open an Rtnetlink client (see Rtnetlink.open). */
export function openRtnetlink(opts?: RtnetlinkOptions): Promise<Rtnetlink> {
  return Rtnetlink.open(opts);
}
