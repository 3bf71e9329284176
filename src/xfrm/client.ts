// Xfrm: the Sadb interface over Linux XFRM netlink: requests matched by seq, dumps, timeouts, and kernel events.

import { EventEmitter } from 'node:events';
import type {
  AcquireEvent,
  CallOptions,
  GetSpiRequest,
  IpsecProtocol,
  NewMappingEvent,
  SaId,
  Sadb,
  SadbEvents,
  SecurityAssociation,
  SecurityPolicy,
  SupportedAlgorithms,
} from '../sadb/types';
import { copyHolder, hideSaKeys, withoutKeys } from '../sadb/keys';
import { handleMapping, MappingGate, type MappingMode } from '../sadb/mapping';
import { KernelReplyError, NattError, rangeError, typeError } from '../errors';
import { openMessageSocket } from '../native/binding';
import { adviceFor, type RequestKind } from '../native/advice';
import { arrayOption, boolOption, callbackOption, durationMs, intOption, oneOf, readCallOptions, readOptions } from '../core/options';
import { RequestLayer } from '../kernel/requests';
import {
  checkGetSpi,
  checkOptionalProtocol,
  checkPolicy,
  checkPolicyRef,
  checkProtocol,
  checkSa,
  checkSaId,
  checkSaMatch,
} from '../sadb/validate';
import { openKernelTransport, type KernelSocket, type KernelSocketFactory } from '../kernel/socket';
import { IPSEC_PROTO_ANY, NLM_F, TCP_ENCAP_ESPINTCP, XFRMNLGRP, messageTypeName, XFRM_MSG } from './constants';
import { decode, encode, encodingLength, findAttr, messageTypeNumber, type XfrmAttribute, type XfrmMessage } from './codec';
import { XfrmDecodeError } from './errors';
import {
  dirName,
  dirNumber,
  familyOf,
  policyToStruct,
  protoName,
  protoNumber,
  saIdToStruct,
  saToStruct,
  selectorToStruct,
  structToPolicy,
  structToSa,
  structToSelector,
} from './convert';
import { supportedAlgorithms } from './algorithms';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_XFRM = 6;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
/** Requests waiting for the kernel at once, per client (see #request). */
export const MAX_IN_FLIGHT = 64;

/** The groups an Xfrm client joins by default: ACQUIRE, EXPIRE, SA, POLICY, MAPPING. */
export const DEFAULT_GROUPS = [XFRMNLGRP.ACQUIRE, XFRMNLGRP.EXPIRE, XFRMNLGRP.SA, XFRMNLGRP.POLICY, XFRMNLGRP.MAPPING];

/** The transport under the client: the native message socket, or a stand-in (tests). */
export type XfrmTransport = KernelSocket;

export interface XfrmOptions {
  /** Put key bytes in `'add'` (and PF_KEY/XFRM `'message'`) events, in key holders: readable as `.key`, never printed (default false: removed). */
  revealKeys?: boolean;
  /** Default per-request timeout in ms (default 5000). */
  timeout?: number;
  /** Multicast groups to join (XFRMNLGRP numbers); `[]` joins none (default: DEFAULT_GROUPS). */
  groups?: number[];
  /** Build the transport yourself (default: the native NETLINK_XFRM socket). */
  transport?: KernelSocketFactory;
  /** On XFRM_MSG_MAPPING: re-point the SA and its outbound twins ('follow', default), or only emit ('notify'). */
  mapping?: MappingMode;
}

/** What the matcher keeps per request: the reply type that belongs to it (-1: an ACK only) and the replies so far. */
interface XfrmCtx {
  expect: number;
  replies: XfrmMessage[];
}

/** Advice for an errno the kernel put in an NLMSG_ERROR, by request (from the one advice table, src/native/advice.ts). */
export function xfrmAdvice(code: string, what: string, detail: { esp?: boolean; encapType?: number } = {}): string | undefined {
  const request: RequestKind = /NEWSA|UPDSA/.test(what) ? 'sa' : /ALLOCSPI/.test(what) ? 'getspi' : /POLICY/.test(what) ? 'policy' : 'other';
  return adviceFor(code, 'xfrm-reply', { request, requestName: what, esp: detail.esp, encapType: detail.encapType });
}

/** The sockaddr_nl for bind(): family AF_NETLINK, pid 0 (kernel picks), groups as a bit mask. */
export function sockaddrNl(groups: number[]): Uint8Array {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(AF_NETLINK, 0);
  let mask = 0;
  for (const g of groups) mask |= 1 << (g - 1);
  b.writeUInt32LE(mask >>> 0, 8);
  return b;
}

/** XfrmOptions after checking: own properties only, unknown names refused, each named. */
function checkOptions(options: unknown = {}): XfrmOptions {
  const o = readOptions(options, ['revealKeys', 'timeout', 'groups', 'transport', 'mapping'] as const);
  const groups = o.groups === undefined ? undefined : arrayOption(o.groups, 'groups', 32).map((g, i) => intOption(g, `groups[${i}]`, 1, 32));
  return {
    revealKeys: boolOption(o.revealKeys, 'revealKeys', false),
    timeout: durationMs(o.timeout, 'timeout', 1, 5000),
    groups,
    transport: callbackOption<KernelSocketFactory>(o.transport, 'transport'),
    mapping: oneOf(o.mapping, 'mapping', ['follow', 'notify'] as const, 'follow'),
  };
}

/** Attributes with every algorithm key removed (the holders keep name and length, `key` reads 0 bytes). */
function redactedAttrs(attrs: XfrmAttribute[]): XfrmAttribute[] {
  return attrs.map((a) => ('key' in a ? copyHolder(a, false) : a.kind === 'nested' ? { ...a, attrs: redactedAttrs(a.attrs) } : a));
}

/**
 * An NLMSG_ERROR that answers no request waiting (a late answer) without the request the kernel echoes after its
 * errno: that is our own request's bytes (a NEWSA's keys among them), which no event carries, revealKeys or not.
 */
function withoutEcho(m: XfrmMessage): XfrmMessage {
  return m.type === 'error' ? { ...m, data: new Uint8Array(0) } : m;
}

/** A message as 'message' events carry it without revealKeys: no algorithm key bytes, no echoed request. */
function redacted(m: XfrmMessage): XfrmMessage {
  if (m.type === 'error') return withoutEcho(m);
  if ('attrs' in m && Array.isArray(m.attrs)) return { ...m, attrs: redactedAttrs(m.attrs) } as XfrmMessage;
  return m;
}

/** The SA database over XFRM netlink. Open with `Xfrm.open()` or `openSadb({ backend: 'xfrm' })`. */
export class Xfrm extends EventEmitter<SadbEvents> implements Sadb {
  readonly backend = 'xfrm' as const;
  readonly #revealKeys: boolean;
  readonly #timeout: number;
  readonly #mapping: MappingMode;
  readonly #mappings = new MappingGate();
  #sock: XfrmTransport | null;
  readonly #req: RequestLayer<XfrmCtx>;
  #drops = 0;
  #mappingFailures = 0;

  /** Use Xfrm.open(). (Options are checked here, so a caller reaching the constructor from JavaScript is checked too.) */
  private constructor(options: XfrmOptions) {
    super();
    const opts = checkOptions(options);
    this.#mapping = opts.mapping ?? 'follow';
    this.#revealKeys = opts.revealKeys === true;
    this.#timeout = opts.timeout ?? 5000;
    const factory: KernelSocketFactory =
      opts.transport ??
      ((onMessage, onError, onWritable) => openMessageSocket(AF_NETLINK, SOCK_RAW, NETLINK_XFRM, onMessage, onError, onWritable));
    // The socket reaches this client only weakly: dropped without close(), the client is collected and its socket
    // closed (while a request is outstanding it is held: src/kernel/socket.ts).
    const k = openKernelTransport(factory, this, Xfrm.#deliver, Xfrm.#deliverError);
    this.#sock = k.socket;
    this.#req = new RequestLayer<XfrmCtx>({
      transport: k.transport,
      timeout: this.#timeout,
      maxInFlight: MAX_IN_FLIGHT,
      seqStart: Math.floor(Math.random() * 0x7fffffff),
      closedError: (what) => new NattError('ERR_NATT_CLOSED', `${what}: the Xfrm client is closed`),
    });
    try {
      this.#sock.bind?.(sockaddrNl(opts.groups ?? DEFAULT_GROUPS));
    } catch (e) {
      this.#sock.close();
      this.#sock = null;
      throw e;
    }
    try {
      // Room for dumps and event bursts; the kernel caps it at net.core.rmem_max. Best effort.
      this.#sock.setsockopt?.(SOL_SOCKET, SO_RCVBUF, 1 << 20);
    } catch {
      /* keep the default buffer */
    }
  }

  /** Open a NETLINK_XFRM socket joined to the event groups. Needs CAP_NET_ADMIN for the groups and every request. */
  static async open(options: XfrmOptions = {}): Promise<Xfrm> {
    return new Xfrm(options);
  }

  /**
   * Messages received that could not be decoded or matched (counted, never thrown); mapping changes that mapping
   * 'follow' could not apply (their event says followed: false).
   */
  stats(): { drops: number; pending: number; mappingFailures: number } {
    return { drops: this.#drops, pending: this.#req.size, mappingFailures: this.#mappingFailures };
  }

  // ---- requests (the shared layer: src/kernel/requests.ts; at most MAX_IN_FLIGHT wait for the kernel at once,
  // since a burst overflows the socket's receive buffer and the kernel drops the replies) ----

  /** The NLMSG_F flags and bytes of one request with a fresh seq. */
  #spec(msg: XfrmMessage, dump: boolean): { seq: number; spec: () => { what: string; key: number; bytes: Uint8Array } } {
    const what = messageTypeName(messageTypeNumber(msg));
    const seq = this.#req.nextSeq();
    return {
      seq,
      spec: () => ({ what, key: seq, bytes: encode({ ...msg, seq, flags: NLM_F.REQUEST | (dump ? NLM_F.DUMP : NLM_F.ACK) }) }),
    };
  }

  /**
   * Send one request and wait for the ACK (every non-dump request carries NLM_F_ACK), collecting the replies of
   * type `expect` that come before it.
   */
  async #request(
    msg: XfrmMessage,
    expect: number,
    opts: CallOptions | undefined,
    detail: { esp?: boolean; encapType?: number } = {},
  ): Promise<XfrmMessage[]> {
    const what = messageTypeName(messageTypeNumber(msg));
    try {
      return await this.#req.request<XfrmMessage[]>(this.#spec(msg, false).spec, opts, { expect, replies: [] });
    } catch (e) {
      if (e instanceof KernelReplyError) throw new KernelReplyError(-(e.errno ?? 0), what, xfrmAdvice(e.code, what, detail));
      throw e;
    }
  }

  static #deliver(x: Xfrm, buf: Buffer): void {
    x.#onMessage(buf);
  }

  static #deliverError(x: Xfrm, err: Error): void {
    x.#onSocketError(err);
  }

  #onMessage(buf: Buffer): void {
    let msgs: XfrmMessage[];
    try {
      msgs = decode(buf);
    } catch (e) {
      this.#drops++;
      if (this.listenerCount('error') > 0) this.emit('error', e as XfrmDecodeError);
      return;
    }
    for (const m of msgs) this.#dispatch(m);
  }

  #dispatch(m: XfrmMessage): void {
    const p = m.seq ? this.#req.find(m.seq) : undefined;
    if (p) {
      if (m.type === 'error') {
        if (m.error === 0) p.resolve(p.ctx.replies);
        else p.reject(new KernelReplyError(-m.error, p.what));
        return;
      }
      if (m.type === 'done') {
        p.resolve(p.ctx.replies);
        return;
      }
      if (p.dump && m.flags !== undefined && m.flags & NLM_F.MULTI) {
        p.item(m);
        return;
      }
      if (!p.dump && messageTypeNumber(m) === p.ctx.expect) {
        p.ctx.replies.push(m);
        return;
      }
    }
    try {
      this.#event(m);
    } catch (e) {
      // A notification that does not fit the model (e.g. an unknown address family): counted, not thrown.
      this.#drops++;
      if (this.listenerCount('error') > 0) this.emit('error', e as Error);
    }
  }

  #event(m: XfrmMessage): void {
    switch (m.type) {
      case 'acquire': {
        const a = m.acquire;
        const ev: AcquireEvent = {
          seq: a.seq,
          src: a.saddr,
          dst: a.id.daddr,
          protocol: protoName(a.id.proto),
          policy: { id: a.policy.index, direction: dirName(a.policy.dir) },
        };
        const sel = structToSelector(a.sel);
        if (sel && ev.policy) ev.policy.selector = sel;
        this.emit('acquire', ev);
        return;
      }
      case 'expire':
        this.emit('expire', { kind: m.hard ? 'hard' : 'soft', sa: withoutKeys(structToSa(m.sa, m.attrs)) });
        return;
      case 'mapping': {
        const mp = m.mapping;
        const ev: NewMappingEvent = {
          sa: { src: mp.oldSaddr, dst: mp.id.daddr, spi: mp.id.spi, protocol: protoName(mp.id.proto) },
          old: { address: mp.oldSaddr, port: mp.oldSport },
          new: { address: mp.newSaddr, port: mp.newSport },
        };
        if (mp.reqid) ev.reqid = mp.reqid;
        this.#onMapping(ev);
        return;
      }
      case 'newsa':
      case 'updsa': {
        const sa = structToSa(m.sa, m.attrs);
        this.emit('add', this.#revealKeys ? sa : withoutKeys(sa));
        return;
      }
      case 'delsa': {
        const full = findAttr(m.attrs, 'sa')?.sa;
        const id: SaId = { src: full?.saddr ?? '', dst: m.id.daddr, spi: m.id.spi, protocol: protoName(m.id.proto) };
        this.emit('delete', id);
        return;
      }
      default:
        // Policy notifications (newpolicy/updpolicy/delpolicy/polexpire), flushes and anything else: decoded.
        this.emit('message', this.#revealKeys ? withoutEcho(m) : redacted(m));
    }
  }

  /** A mapping report: followed or only told (src/sadb/mapping.ts), repeats held back; never throws. */
  #onMapping(ev: NewMappingEvent): void {
    void handleMapping(this, ev, this.#mapping, this.#mappings, (r) => {
      if (!this.#sock) return;
      if (r.error) {
        this.#mappingFailures++;
        if (this.listenerCount('error') > 0) this.emit('error', r.error);
      }
      this.emit('newMapping', r.ev);
    });
  }

  #onSocketError(err: Error): void {
    // A socket-level error (ENOBUFS: the kernel dropped events) fails nothing in flight by itself; report it.
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.#drops++;
  }

  // ---- the Sadb interface ----

  async add(input: SecurityAssociation, opts?: CallOptions): Promise<void> {
    const sa = checkSa(input);
    const s = saToStruct(sa);
    await this.#request({ type: 'newsa', ...s }, -1, opts, this.#detail(sa));
  }

  async update(input: SecurityAssociation, opts?: CallOptions): Promise<void> {
    const sa = checkSa(input);
    const s = saToStruct(sa);
    await this.#request({ type: 'updsa', ...s }, -1, opts, this.#detail(sa));
  }

  #detail(sa: SecurityAssociation): { esp: boolean; encapType?: number } {
    const t = sa.natt?.type;
    return { esp: (sa.protocol ?? 'esp') === 'esp', encapType: t === 'espinudp-non-ike' ? 1 : t === 'espintcp' ? TCP_ENCAP_ESPINTCP : undefined };
  }

  async get(input: SaId, opts?: CallOptions): Promise<SecurityAssociation> {
    const id = checkSaId(input);
    const replies = await this.#request({ type: 'getsa', ...saIdToStruct(id) }, XFRM_MSG.NEWSA, opts);
    const m = replies[0];
    if (!m || m.type !== 'newsa') throw new KernelReplyError(3, 'XFRM_MSG_GETSA', 'the kernel acknowledged without an SA');
    return hideSaKeys(structToSa(m.sa, m.attrs));
  }

  async delete(input: SaId, opts?: CallOptions): Promise<void> {
    const id = checkSaId(input);
    await this.#request({ type: 'delsa', ...saIdToStruct(id) }, -1, opts);
  }

  async deleteAll(input: { src: string; dst: string; protocol?: IpsecProtocol }, opts?: CallOptions): Promise<void> {
    const match = checkSaMatch(input);
    const victims: SaId[] = [];
    for await (const sa of this.dump(match.protocol ?? 'esp', opts)) {
      if (sa.src === match.src && sa.dst === match.dst) victims.push({ src: sa.src, dst: sa.dst, spi: sa.spi, protocol: sa.protocol });
    }
    for (const v of victims) await this.delete(v, opts);
  }

  async flush(input?: IpsecProtocol, opts?: CallOptions): Promise<void> {
    const protocol = checkOptionalProtocol(input);
    const proto = protocol === undefined ? IPSEC_PROTO_ANY : protoNumber(protocol);
    await this.#request({ type: 'flushsa', proto, attrs: [] }, -1, opts);
  }

  /** Every SA (of `protocol`, or all), as the kernel lists them; keys included (in key holders: readable, never printed). */
  dump(input?: IpsecProtocol, opts?: CallOptions): AsyncIterable<SecurityAssociation> {
    const protocol = checkOptionalProtocol(input);
    const proto = protocol === undefined ? undefined : protoNumber(protocol);
    return this.#dumpIter<SecurityAssociation>({ type: 'getsaDump', attrs: proto ? [{ kind: 'proto', value: proto }] : [] }, opts, (m) =>
      m.type === 'newsa' && (proto === undefined || m.sa.id.proto === proto) ? hideSaKeys(structToSa(m.sa, m.attrs)) : undefined,
    );
  }

  /** A dump through the shared layer (one at a time per socket: the kernel answers a second one with EBUSY). */
  #dumpIter<T>(req: XfrmMessage, opts: CallOptions | undefined, map: (m: XfrmMessage) => T | undefined): AsyncIterable<T> {
    const layer = this.#req;
    const spec = (): { what: string; key: number; bytes: Uint8Array } => this.#spec(req, true).spec();
    return {
      async *[Symbol.asyncIterator]() {
        for await (const m of layer.dump<XfrmMessage>(spec, opts, { expect: -1, replies: [] })) {
          const v = map(m);
          if (v !== undefined) yield v;
        }
      },
    };
  }

  async getSpi(input: GetSpiRequest, opts?: CallOptions): Promise<number> {
    const req = checkGetSpi(input);
    const family = familyOf(req.dst, 'dst');
    if (familyOf(req.src, 'src') !== family) throw typeError('src', 'an address of the same family as dst', req.src);
    const min = req.min ?? 0x100;
    const max = req.max ?? 0xffffffff;
    if (!Number.isInteger(min) || min < 1 || min > 0xffffffff) throw rangeError('min', 'an integer 1..2^32-1', min);
    if (!Number.isInteger(max) || max < min || max > 0xffffffff) throw rangeError('max', 'an integer min..2^32-1', max);
    const info = saToStruct({ src: req.src, dst: req.dst, spi: 0, protocol: req.protocol, mode: req.mode, reqid: req.reqid, seq: req.seq, replayWindow: 0 }).sa;
    const replies = await this.#request({ type: 'allocspi', sa: info, min, max, attrs: [] }, XFRM_MSG.NEWSA, opts, {
      esp: (req.protocol ?? 'esp') === 'esp',
    });
    const m = replies[0];
    if (!m || m.type !== 'newsa') throw new KernelReplyError(3, 'XFRM_MSG_ALLOCSPI', 'the kernel acknowledged without an SA');
    return m.sa.id.spi;
  }

  /** XFRM has no SADB_REGISTER: answers the fixed list natt maps to kernel templates (see algorithms.ts). */
  async register(protocol?: IpsecProtocol, opts?: CallOptions): Promise<SupportedAlgorithms> {
    const p = checkProtocol(protocol);
    readCallOptions(opts, this.#timeout); // nothing is asked of the kernel, but the options are checked as everywhere
    const res = supportedAlgorithms(p);
    this.emit('register', res);
    return res;
  }

  async spdAdd(input: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    const policy = checkPolicy(input);
    await this.#request({ type: 'newpolicy', ...policyToStruct(policy) }, -1, opts);
    return this.spdGet({ selector: policy.selector, direction: policy.direction }, opts);
  }

  async spdUpdate(input: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    const policy = checkPolicy(input);
    await this.#request({ type: 'updpolicy', ...policyToStruct(policy) }, -1, opts);
    return this.spdGet({ selector: policy.selector, direction: policy.direction }, opts);
  }

  #policyId(input: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>): {
    sel: ReturnType<typeof selectorToStruct>;
    index: number;
    dir: number;
  } {
    const which = checkPolicyRef(input);
    if ('id' in which && which.id !== undefined) {
      if (!Number.isInteger(which.id) || which.id <= 0 || which.id > 0xffffffff) throw rangeError('id', 'a policy index 1..2^32-1', which.id);
      // The kernel keeps the direction in the index's low 3 bits.
      return { sel: selectorToStruct(undefined, 'selector'), index: which.id, dir: which.id & 7 };
    }
    const w = which as Pick<SecurityPolicy, 'selector' | 'direction'>;
    return { sel: selectorToStruct(w.selector, 'selector'), index: 0, dir: dirNumber(w.direction) };
  }

  async spdDelete(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<void> {
    await this.#request({ type: 'delpolicy', id: this.#policyId(which), attrs: [] }, -1, opts);
  }

  async spdGet(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<SecurityPolicy> {
    const replies = await this.#request({ type: 'getpolicy', id: this.#policyId(which), attrs: [] }, XFRM_MSG.NEWPOLICY, opts);
    const m = replies[0];
    if (!m || m.type !== 'newpolicy') throw new KernelReplyError(2, 'XFRM_MSG_GETPOLICY', 'the kernel acknowledged without a policy');
    return structToPolicy(m.policy, m.attrs);
  }

  spdDump(opts?: CallOptions): AsyncIterable<SecurityPolicy> {
    return this.#dumpIter<SecurityPolicy>({ type: 'getpolicyDump', attrs: [] }, opts, (m) =>
      m.type === 'newpolicy' ? structToPolicy(m.policy, m.attrs) : undefined,
    );
  }

  async spdFlush(opts?: CallOptions): Promise<void> {
    await this.#request({ type: 'flushpolicy', attrs: [] }, -1, opts);
  }

  /** GETSADINFO: how many SAs the kernel holds and its hash table sizes. Works without ESP support. */
  async sadInfo(opts?: CallOptions): Promise<{ count: number; hashCount: number; hashMax: number }> {
    const replies = await this.#request({ type: 'getsadinfo', sadFlags: 0xffffffff }, XFRM_MSG.NEWSADINFO, opts);
    const m = replies[0];
    if (!m || m.type !== 'newsadinfo') throw new KernelReplyError(2, 'XFRM_MSG_GETSADINFO', 'no NEWSADINFO in the answer');
    const cnt = findAttr(m.attrs, 'sadCnt');
    const h = findAttr(m.attrs, 'sadHinfo');
    return { count: cnt?.value ?? 0, hashCount: h?.count ?? 0, hashMax: h?.max ?? 0 };
  }

  /** Send any message (encoded by `xfrm.encode`) as a request and collect replies of type `expect` until the ACK. */
  async raw(msg: XfrmMessage, expect = -1, opts?: CallOptions): Promise<XfrmMessage[]> {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw typeError('msg', 'an XfrmMessage { type, ... }', msg);
    encodingLength(msg); // every field checked (a TypeError/RangeError naming it) before anything is sent
    intOption(expect, 'expect', -1, 0xffff);
    return this.#request(msg, expect, opts);
  }

  async close(): Promise<void> {
    const sock = this.#sock;
    if (!sock) return;
    this.#sock = null;
    this.#req.close(new NattError('ERR_NATT_CLOSED', 'the Xfrm client was closed'));
    sock.close();
  }
}

/** The factory openSadb({ backend: 'xfrm' }) uses. */
export async function openXfrm(opts: { revealKeys?: boolean; timeout?: number; mapping?: MappingMode } = {}): Promise<Xfrm> {
  return Xfrm.open({ revealKeys: opts.revealKeys, timeout: opts.timeout, mapping: opts.mapping });
}
