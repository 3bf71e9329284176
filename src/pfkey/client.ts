// PfKey: the Sadb interface over a PF_KEY v2 socket (requests matched by type/seq/pid, dumps, kernel events).

import { EventEmitter } from 'node:events';
import { KernelReplyError, NattError, NattTimeoutError, NattUnsupportedError, errnoName, typeError } from '../errors';
import { openMessageSocket, requireNative } from '../native/binding';
import { adviceFor, type RequestKind } from '../native/advice';
import { boolOption, callbackOption, durationMs, oneOf, readOptions, readingCallerValue } from '../core/options';
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
import { copyHolder, hideSaKeys, withoutKeys } from '../sadb/keys';
import { handleMapping, MappingGate, type MappingMode } from '../sadb/mapping';
import type {
  Address,
  CallOptions,
  GetSpiRequest,
  IpsecProtocol,
  NewMappingEvent,
  OpenSadbOptions,
  SaId,
  Sadb,
  SadbEvents,
  SecurityAssociation,
  SecurityPolicy,
  SupportedAlgorithms,
} from '../sadb/types';
import { sameAddress } from '../ip/address';
import { decode, encode, findExt, PfKeyDecodeError, type PfKeyMessage } from './codec';
import {
  getSpiToMessage,
  messageToAcquire,
  messageToNewMapping,
  messageToPolicy,
  messageToSa,
  messageToSaId,
  messageToSupported,
  policyIdToMessage,
  policyToMessage,
  saIdToMessage,
  saToMessage,
  satypeOf,
} from './convert';
import { PF_KEY_V2, SADB, messageName, resolveDialect, type Dialect, type DialectName } from './dialects';

/** The transport under the client: the native PF_KEY socket, or a stand-in (tests). */
export type PfKeyTransport = KernelSocket;

export interface PfKeyOptions {
  /** The kernel's PF_KEY dialect (default: this OS's). */
  dialect?: DialectName | Dialect;
  /** Put key bytes in `'add'` (and PF_KEY/XFRM `'message'`) events, in key holders: readable as `.key`, never printed (default false: removed). */
  revealKeys?: boolean;
  /** Default per-request timeout in ms (default 5000). */
  timeout?: number;
  /** Build the transport yourself (default: the native PF_KEY v2 socket). */
  transport?: KernelSocketFactory;
  /** On SADB_X_NAT_T_NEW_MAPPING: re-point the SA and its outbound twins ('follow', default), or only emit ('notify'). */
  mapping?: MappingMode;
}

/** Messages this client dropped instead of acting on. */
export interface PfKeyStats {
  /** Received messages that failed to decode. */
  decodeErrors: number;
  /** Decoded messages that could not become an event (missing extensions). */
  badEvents: number;
  /** Mapping changes that mapping 'follow' could not apply to the SAs (the event says followed: false). */
  mappingFailures: number;
  /** Requests waiting for the kernel's answer now. */
  pending: number;
}

/** What the matcher keeps per request: its type and bytes (a promiscuous socket echoes them first); for dumps, the seq. */
interface PfCtx {
  type: number;
  seq: number;
  sent?: Buffer;
  echoSkipped: boolean;
}

/** What kind of request a PF_KEY message type is, for the advice table. */
function requestKind(type: number): RequestKind {
  if (type === SADB.ADD || type === SADB.UPDATE) return 'sa';
  if (type === SADB.GETSPI) return 'getspi';
  if (type === SADB.REGISTER) return 'register';
  if (type === SADB.DUMP || type === SADB.X_SPDDUMP) return 'dump';
  if (type === SADB.X_MIGRATE) return 'migrate';
  if (type >= SADB.X_SPDUPDATE) return 'policy';
  return 'other';
}

/** Advice for a kernel errno answered to a PF_KEY request (from the one advice table, src/native/advice.ts). */
export function replyAdvice(type: number, code: string, request?: PfKeyMessage): string | undefined {
  const encapType = request ? findExt(request, 'nattType')?.type : undefined;
  return adviceFor(code, 'pfkey-reply', { request: requestKind(type), requestName: messageName(type), encapType });
}

/** Open a PF_KEY client (openSadb({ backend: 'pfkey' }) calls this). */
export async function openPfKey(opts: Omit<OpenSadbOptions, 'backend'> = {}): Promise<PfKey> {
  return new PfKey({ dialect: opts.dialect, revealKeys: opts.revealKeys, timeout: opts.timeout, mapping: opts.mapping });
}

export class PfKey extends EventEmitter<SadbEvents> implements Sadb {
  readonly backend = 'pfkey' as const;
  readonly dialect: Dialect;
  readonly #sock: PfKeyTransport;
  readonly #req: RequestLayer<PfCtx>;
  readonly #pid = process.pid >>> 0;
  readonly #reveal: boolean;
  readonly #timeout: number;
  readonly #mapping: MappingMode;
  readonly #mappings = new MappingGate();
  #promisc = false;
  #closed = false;
  readonly #stats = { decodeErrors: 0, badEvents: 0, mappingFailures: 0 };

  constructor(options: PfKeyOptions = {}) {
    super();
    const opts = readOptions(options, ['dialect', 'revealKeys', 'timeout', 'transport', 'mapping'] as const);
    this.#mapping = oneOf(opts.mapping, 'mapping', ['follow', 'notify'] as const, 'follow');
    this.dialect = resolveDialect(opts.dialect as PfKeyOptions['dialect']);
    this.#reveal = boolOption(opts.revealKeys, 'revealKeys', false);
    const t = durationMs(opts.timeout, 'timeout', 1, 5000);
    this.#timeout = t;
    const transport = callbackOption<KernelSocketFactory>(opts.transport, 'transport');
    const factory: KernelSocketFactory =
      transport ??
      ((onMessage, onError, onWritable) => {
        const c = requireNative().constants;
        if (c.AF_KEY < 0) throw new NattUnsupportedError(`this OS has no PF_KEY socket: use backend 'xfrm' (Linux) or 'userland'`);
        return openMessageSocket(c.AF_KEY, c.SOCK_RAW, c.PF_KEY_V2 > 0 ? c.PF_KEY_V2 : PF_KEY_V2, onMessage, onError, onWritable);
      });
    // The socket reaches this client only weakly: dropped without close(), the client is collected and its socket
    // closed (while a request is outstanding it is held: src/kernel/socket.ts).
    const k = openKernelTransport(factory, this, PfKey.#deliver, PfKey.#deliverError);
    this.#sock = k.socket;
    this.#req = new RequestLayer<PfCtx>({
      transport: k.transport,
      timeout: t,
      closedError: (what) => new NattError('ERR_NATT_CLOSED', `${what}: this PF_KEY client is closed`),
    });
  }

  /** Counted drops. */
  stats(): PfKeyStats {
    return { ...this.#stats, pending: this.#req.size };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Requests

  /** Send `msg` (its seq and pid are set here) and wait for the kernel's answer of the same type, seq and pid. */
  async #request(build: (seq: number, pid: number) => PfKeyMessage, opts?: CallOptions): Promise<PfKeyMessage> {
    let msg!: PfKeyMessage;
    const ctx: PfCtx = { type: 0, seq: 0, echoSkipped: false };
    const m = await this.#req.request<PfKeyMessage>(
      () => {
        msg = build(this.#req.nextSeq(), this.#pid);
        const sent = encode(msg, this.dialect);
        ctx.type = msg.type;
        ctx.seq = msg.seq ?? 0;
        ctx.sent = sent;
        return { what: messageName(msg.type, this.dialect), key: `${msg.type}:${ctx.seq}`, bytes: sent };
      },
      opts,
      ctx,
    );
    if (m.errno) throw new KernelReplyError(m.errno, messageName(msg.type, this.dialect), replyAdvice(msg.type, errnoName(m.errno), msg));
    return m;
  }

  /** A whole dump (SADB_DUMP / SADB_X_SPDDUMP): one message per entry, ending with seq 0; ENOENT = empty. */
  #dumpMessages(type: number, satype: number, opts?: CallOptions): AsyncIterable<PfKeyMessage> {
    const ctx: PfCtx = { type, seq: 0, echoSkipped: false };
    return this.#req.dump<PfKeyMessage>(
      () => {
        ctx.seq = this.#req.nextSeq();
        const bytes = encode({ type, satype, seq: ctx.seq, pid: this.#pid, extensions: [] }, this.dialect);
        return { what: messageName(type, this.dialect), key: `dump:${ctx.seq}`, bytes };
      },
      opts,
      ctx,
    );
  }

  // -------------------------------------------------------------------------------------------------------------
  // Receiving

  static #deliver(p: PfKey, m: Buffer): void {
    p.#onMessage(m);
  }

  static #deliverError(p: PfKey, e: Error): void {
    p.#onSocketError(e);
  }

  #onSocketError(e: Error): void {
    if (this.listenerCount('error')) this.emit('error', e);
  }

  #onMessage(buf: Buffer): void {
    let msg: PfKeyMessage;
    try {
      msg = decode(buf, this.dialect);
    } catch (e) {
      if (e instanceof PfKeyDecodeError) {
        this.#stats.decodeErrors++;
        // An answer to one of our requests that does not decode fails that request now rather than at its timeout.
        if (buf.length >= 16 && buf.readUInt32LE(12) === this.#pid) this.#req.find(`${buf[1]}:${buf.readUInt32LE(8)}`)?.reject(e);
        return;
      }
      throw e;
    }
    const ours = msg.pid === this.#pid;
    if (ours) {
      const dump = this.#req.currentDump;
      if (dump && msg.type === dump.ctx.type && (msg.errno === 0 || msg.seq === dump.ctx.seq)) {
        if (msg.errno === 2) dump.resolve(undefined); // ENOENT: an empty table
        else if (msg.errno) dump.reject(new KernelReplyError(msg.errno, dump.what, replyAdvice(msg.type, errnoName(msg.errno))));
        else {
          dump.item(msg);
          if (msg.seq === 0) dump.resolve(undefined);
        }
        return;
      }
      const p = this.#req.find(`${msg.type}:${msg.seq}`);
      if (p && !p.dump) {
        // A promiscuous socket first gets a copy of its own request, byte for byte.
        if (this.#promisc && !p.ctx.echoSkipped && p.ctx.sent && buf.equals(p.ctx.sent)) {
          p.ctx.echoSkipped = true;
          return;
        }
        p.resolve(msg);
        if (msg.errno) return;
      }
    }
    if (msg.errno) return;
    try {
      this.#emitEvent(msg);
    } catch (e) {
      if (e instanceof NattUnsupportedError) this.#stats.badEvents++;
      else throw e;
    }
  }

  #emitEvent(msg: PfKeyMessage): void {
    const d = this.dialect;
    switch (msg.type) {
      case SADB.ACQUIRE:
        this.emit('acquire', messageToAcquire(msg));
        return;
      case SADB.EXPIRE: {
        const sa = withoutKeys(messageToSa(msg, d));
        this.emit('expire', { kind: findExt(msg, 'lifetimeSoft') ? 'soft' : 'hard', sa });
        return;
      }
      case SADB.ADD:
      case SADB.UPDATE: {
        const sa = messageToSa(msg, d);
        this.emit('add', this.#reveal ? hideSaKeys(sa) : withoutKeys(sa));
        return;
      }
      case SADB.DELETE:
        if (findExt(msg, 'sa')) this.emit('delete', messageToSaId(msg));
        else this.emit('message', this.#forEvent(msg));
        return;
      case SADB.REGISTER:
        this.emit('register', messageToSupported(msg, d));
        return;
      case SADB.X_NAT_T_NEW_MAPPING:
        if (d.msgMax >= SADB.X_NAT_T_NEW_MAPPING) {
          const ev = messageToNewMapping(msg);
          void this.#completeMapping(ev)
            .then((e) => handleMapping(this, e, this.#mapping, this.#mappings))
            .then((r) => {
              if (!r || this.#closed) return;
              if (r.error) {
                this.#stats.mappingFailures++;
                if (this.listenerCount('error') > 0) this.emit('error', r.error);
              }
              this.emit('newMapping', r.ev);
            })
            .catch((err: unknown) =>
              process.nextTick(() => {
                throw err; // a listener threw: surface it as a synchronous emit would
              }),
            );
          return;
        }
        break;
    }
    this.emit('message', this.#forEvent(msg));
  }

  /** A message as 'message' events carry it: its key extensions hold no bytes unless the client reveals keys. */
  #forEvent(msg: PfKeyMessage): PfKeyMessage {
    if (this.#reveal) return msg;
    return { ...msg, extensions: msg.extensions.map((e) => (e.name === 'keyAuth' || e.name === 'keyEncrypt' ? copyHolder(e, false) : e)) };
  }

  /**
   * NEW_MAPPING does not carry the SA's destination or reqid (Linux sends SA, old SRC/SPORT, new DST/DPORT): find
   * the SA (same SPI, old peer address as its source) in a dump and fill them in, so the event has the shape XFRM's
   * has. If the SA is gone or the dump fails or takes longer than the client's timeout, the event keeps `sa.dst` ''.
   */
  async #completeMapping(ev: NewMappingEvent): Promise<NewMappingEvent> {
    if (this.#closed) return ev;
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<undefined>((r) => {
      timer = setTimeout(() => {
        ac.abort(new NattTimeoutError('SADB_DUMP', this.#timeout));
        r(undefined);
      }, this.#timeout);
    });
    const find = async (): Promise<SecurityAssociation | undefined> => {
      let fallback: SecurityAssociation | undefined;
      for await (const sa of this.dump(ev.sa.protocol ?? 'esp', { signal: ac.signal })) {
        if (sa.spi !== ev.sa.spi || !sameAddress(sa.src, ev.sa.src)) continue;
        if (sa.natt?.sport === ev.old.port) return sa;
        fallback ??= sa;
      }
      return fallback;
    };
    try {
      const sa = await Promise.race([find(), giveUp]);
      if (sa) {
        ev.sa.dst = sa.dst;
        if (sa.reqid) ev.reqid = sa.reqid;
      }
    } catch {
      /* keep what the message carried */
    } finally {
      clearTimeout(timer);
    }
    return ev;
  }

  // -------------------------------------------------------------------------------------------------------------
  // The Sadb interface

  async add(input: SecurityAssociation, opts?: CallOptions): Promise<void> {
    const sa = checkSa(input);
    await this.#request((seq, pid) => saToMessage(sa, SADB.ADD, this.dialect, sa.seq ?? seq, pid), opts);
  }

  async update(input: SecurityAssociation, opts?: CallOptions): Promise<void> {
    const sa = checkSa(input);
    await this.#request((seq, pid) => saToMessage(sa, SADB.UPDATE, this.dialect, sa.seq ?? seq, pid), opts);
  }

  async get(input: SaId, opts?: CallOptions): Promise<SecurityAssociation> {
    const id = checkSaId(input);
    const r = await this.#request((seq, pid) => saIdToMessage(id, SADB.GET, seq, pid), opts);
    return hideSaKeys(messageToSa(r, this.dialect));
  }

  async delete(input: SaId, opts?: CallOptions): Promise<void> {
    const id = checkSaId(input);
    await this.#request((seq, pid) => saIdToMessage(id, SADB.DELETE, seq, pid), opts);
  }

  async deleteAll(input: { src: Address; dst: Address; protocol?: IpsecProtocol }, opts?: CallOptions): Promise<void> {
    const match = checkSaMatch(input);
    // Linux's SADB_DELETE needs an SA extension; the BSDs delete all between src and dst without one. Do it portably.
    const victims: SaId[] = [];
    for await (const sa of this.dump(match.protocol ?? 'esp', opts))
      if (sameAddress(sa.src, match.src) && sameAddress(sa.dst, match.dst)) victims.push({ src: sa.src, dst: sa.dst, spi: sa.spi, protocol: sa.protocol });
    for (const v of victims) await this.delete(v, opts);
  }

  async flush(input?: IpsecProtocol, opts?: CallOptions): Promise<void> {
    const protocol = checkOptionalProtocol(input);
    await this.#request((seq, pid) => ({ type: SADB.FLUSH, satype: satypeOf(protocol), seq, pid, extensions: [] }), opts);
  }

  async *dump(input?: IpsecProtocol, opts?: CallOptions): AsyncIterable<SecurityAssociation> {
    const protocol = checkOptionalProtocol(input);
    for await (const m of this.#dumpMessages(SADB.DUMP, satypeOf(protocol), opts)) yield hideSaKeys(messageToSa(m, this.dialect));
  }

  async getSpi(input: GetSpiRequest, opts?: CallOptions): Promise<number> {
    const req = checkGetSpi(input);
    const r = await this.#request((seq, pid) => getSpiToMessage(req, req.seq ?? seq, pid), opts);
    const s = findExt(r, 'sa');
    if (!s) throw new NattUnsupportedError('the kernel answered SADB_GETSPI without an SA extension');
    return s.spi;
  }

  /** SADB_REGISTER: the kernel's algorithms for `protocol`; from now on this socket gets ACQUIRE, EXPIRE, NEW_MAPPING. */
  async register(input: IpsecProtocol = 'esp', opts?: CallOptions): Promise<SupportedAlgorithms> {
    const protocol = checkProtocol(input);
    const r = await this.#request((seq, pid) => ({ type: SADB.REGISTER, satype: satypeOf(protocol), seq, pid, extensions: [] }), opts);
    return messageToSupported(r, this.dialect);
  }

  async spdAdd(input: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    const policy = checkPolicy(input);
    return messageToPolicy(await this.#request((seq, pid) => policyToMessage(policy, SADB.X_SPDADD, this.dialect, seq, pid), opts));
  }

  async spdUpdate(input: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    const policy = checkPolicy(input);
    return messageToPolicy(await this.#request((seq, pid) => policyToMessage(policy, SADB.X_SPDUPDATE, this.dialect, seq, pid), opts));
  }

  async spdDelete(input: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<void> {
    const which = checkPolicyRef(input);
    if ('id' in which) await this.#request((seq, pid) => policyIdToMessage(which.id, SADB.X_SPDDELETE2, seq, pid), opts);
    else await this.#request((seq, pid) => policyToMessage(which, SADB.X_SPDDELETE, this.dialect, seq, pid), opts);
  }

  async spdGet(input: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<SecurityPolicy> {
    const which = checkPolicyRef(input);
    if ('id' in which) return messageToPolicy(await this.#request((seq, pid) => policyIdToMessage(which.id, SADB.X_SPDGET, seq, pid), opts));
    // SPDGET takes only an id: find the policy by selector in a dump.
    const want = policyToMessage(which, SADB.X_SPDGET, this.dialect, 0, 0);
    const key = JSON.stringify(messageToPolicy({ ...want, extensions: [...want.extensions] }).selector);
    for await (const p of this.spdDump(opts)) if (p.direction === which.direction && JSON.stringify(p.selector) === key) return p;
    throw new KernelReplyError(2, 'SADB_X_SPDGET', 'no policy with that selector and direction');
  }

  async *spdDump(opts?: CallOptions): AsyncIterable<SecurityPolicy> {
    for await (const m of this.#dumpMessages(SADB.X_SPDDUMP, 0, opts)) yield messageToPolicy(m);
  }

  async spdFlush(opts?: CallOptions): Promise<void> {
    await this.#request((seq, pid) => ({ type: SADB.X_SPDFLUSH, satype: 0, seq, pid, extensions: [] }), opts);
  }

  /** SADB_X_PROMISC: receive a copy of every PF_KEY message on the host (as 'message' and the usual events). */
  async promisc(on: boolean, opts?: CallOptions): Promise<void> {
    if (typeof on !== 'boolean') throw typeError('on', 'a boolean', on);
    await this.#request((seq, pid) => ({ type: SADB.X_PROMISC, satype: on ? 1 : 0, seq, pid, extensions: [] }), opts);
    this.#promisc = on;
  }

  /** Send any message (seq and pid filled in) and wait for the kernel's answer: for what the typed methods lack. */
  async send(msg: Omit<PfKeyMessage, 'seq' | 'pid'>, opts?: CallOptions): Promise<PfKeyMessage> {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw typeError('msg', 'a PfKeyMessage { type, satype, extensions }', msg);
    const fields = readingCallerValue('msg', () => ({ ...msg }));
    return this.#request((seq, pid) => ({ ...fields, seq, pid }), opts);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#req.close(new NattError('ERR_NATT_CLOSED', 'the PF_KEY client was closed'));
    this.#sock.close();
  }
}
