// UserlandSadb: the SA and policy database of the userland engine, implementing the Sadb interface like the kernel clients.

import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import type {
  AcquireEvent,
  CallOptions,
  GetSpiRequest,
  IpsecProtocol,
  NewMappingEvent,
  SaId,
  Sadb,
  SadbEvents,
  SaState,
  SecurityAssociation,
  SecurityPolicy,
  SupportedAlgorithms,
} from '../sadb/types';
import { hideSaKeys, withoutKeys } from '../sadb/keys';
import { MappingGate, type MappingMode } from '../sadb/mapping';
import { supportedFromTable } from '../sadb/algorithms';
import { NattError, NattSystemError, typeError } from '../errors';
import { boolOption, callbackOption, durationSeconds, intOption, oneOf, readCallOptions, readOptions } from '../core/options';
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
import { addressToBytes, bytesToAddress } from '../ip/address';
import type { EspTransform } from '../esp';
import { createEspTransform, type EspCipherChoice } from '../fastpath';
import { LifetimeTracker, type ExpireKind } from './lifetimes';
import { PolicyTable, type PolicyEntry } from './spd';
import { addStats, newStats, type UserlandCounters } from './counters';
import { UserlandSa } from './sa';

export interface UserlandSadbOptions {
  /** Put key bytes in `'add'` events, in key holders: readable as `.key`, never printed (default false: removed). */
  revealKeys?: boolean;
  /** Seconds an 'acquire' for the same policy and destination is not repeated (Linux: 30). */
  acquireSeconds?: number;
  /** Seconds a larval SA from getSpi() waits for its update before it expires (Linux: 30). */
  larvalSeconds?: number;
  /** The SAs' ESP cipher: 'auto' (default: the native fast path where available), 'native', or 'node' (node:crypto). */
  cipher?: EspCipherChoice;
  /** A NAT-T peer moved: re-point its SAs at once ('follow', default) or only emit 'newMapping' ('notify'). */
  mapping?: MappingMode;
}

/** Acquires remembered for rate limiting at most (the oldest are forgotten first): one map entry per destination. */
export const MAX_ACQUIRE_ENTRIES = 4096;

const canonical = (a: string, option: string): string => {
  const b = addressToBytes(a, option);
  return bytesToAddress(b, 0, b.length === 4 ? 4 : 16);
};

/** A kernel-shaped refusal: `code`/`errno`/`syscall` as PF_KEY would give, plus `messageType`. */
function refused(errno: 'EEXIST' | 'ESRCH' | 'ENOENT' | 'EINVAL', messageType: string, advice: string): NattSystemError {
  const num = { EEXIST: 17, ESRCH: 3, ENOENT: 2, EINVAL: 22 }[errno];
  return new NattSystemError(num, messageType, advice, { messageType });
}

const sameBytes = (a?: Uint8Array, b?: Uint8Array): boolean =>
  (a?.length ?? 0) === (b?.length ?? 0) && (a === undefined || b === undefined || Buffer.compare(a, b) === 0);

/** Do two SAs have the same transform parameters (algorithms, keys, ESN, replay window)? */
function sameCrypto(a: SecurityAssociation, b: SecurityAssociation): boolean {
  return (
    a.encryption?.algorithm === b.encryption?.algorithm &&
    sameBytes(a.encryption?.key, b.encryption?.key) &&
    (a.integrity?.algorithm ?? 'none') === (b.integrity?.algorithm ?? 'none') &&
    sameBytes(a.integrity?.key, b.integrity?.key) &&
    (a.esn === true) === (b.esn === true) &&
    (a.replayWindow ?? 32) === (b.replayWindow ?? 32)
  );
}

function copyKeyed(sa: SecurityAssociation): SecurityAssociation {
  const out: SecurityAssociation = structuredClone({ ...sa, encryption: undefined, integrity: undefined });
  if (sa.encryption) out.encryption = { algorithm: sa.encryption.algorithm, key: Uint8Array.from(sa.encryption.key ?? []) };
  if (sa.integrity) out.integrity = { algorithm: sa.integrity.algorithm, key: Uint8Array.from(sa.integrity.key ?? []) };
  for (const k of Object.keys(out) as (keyof SecurityAssociation)[]) if (out[k] === undefined) delete out[k];
  return hideSaKeys(out);
}

/**
 * The userland SA database. Same contract as the PF_KEY and XFRM clients: kernel-shaped errors (EEXIST on a
 * duplicate add, ESRCH for a missing SA, ENOENT for a missing policy), 'expire', 'acquire', 'newMapping', 'add',
 * 'delete' events. Counters named as /proc/net/xfrm_stat live here (`stats()`): one database, one set of counters,
 * as one Linux network namespace has.
 */
export class UserlandSadb extends EventEmitter<SadbEvents> implements Sadb {
  readonly backend = 'userland' as const;
  readonly policies = new PolicyTable();
  /** The counters of the engines that use this database (each engine owns its own; see addStatsSource). */
  readonly #statsSources = new Set<() => UserlandCounters>();
  /** Bumped on every SA change; the engine's caches compare it. */
  generation = 0;
  #byKey = new Map<string, UserlandSa>();
  #bySpi = new Map<number, UserlandSa[]>();
  #acquires = new Map<string, number>();
  #acquireSeq = 0;
  #revealKeys: boolean;
  #acquireMs: number;
  #larvalSeconds: number;
  #cipher: EspCipherChoice;
  readonly #mapping: MappingMode;
  readonly #mappings = new MappingGate();
  #closed = false;

  constructor(options: UserlandSadbOptions = {}) {
    super();
    const o = readOptions(options, ['revealKeys', 'acquireSeconds', 'larvalSeconds', 'cipher', 'mapping'] as const);
    this.#mapping = oneOf(o.mapping, 'mapping', ['follow', 'notify'] as const, 'follow');
    this.#revealKeys = boolOption(o.revealKeys, 'revealKeys', false);
    this.#acquireMs = durationSeconds(o.acquireSeconds, 'acquireSeconds', 0, 30) * 1000;
    this.#larvalSeconds = durationSeconds(o.larvalSeconds, 'larvalSeconds', 0, 30);
    this.#cipher = oneOf(o.cipher, 'cipher', ['auto', 'native', 'node'] as const, 'auto');
  }

  /**
   * The counters of every engine that uses this database, summed (as /proc/net/xfrm_stat sums a network namespace):
   * one engine → that engine's stats().
   */
  stats(): UserlandCounters {
    const sum = newStats();
    for (const source of this.#statsSources) addStats(sum, source());
    return sum;
  }

  /** How many (policy, source, destination) acquires are remembered for rate limiting (at most MAX_ACQUIRE_ENTRIES). */
  get acquireEntries(): number {
    return this.#acquires.size;
  }

  /** An engine registers its counters here (it owns them); the returned function unregisters. */
  addStatsSource(source: () => UserlandCounters): () => void {
    if (callbackOption(source, 'source') === undefined) throw typeError('source', 'a function returning counters', source);
    this.#statsSources.add(source);
    return () => this.#statsSources.delete(source);
  }

  /** The map key of a checked SA id. */
  #key(id: SaId): string {
    return `${id.protocol ?? 'esp'}/${canonical(id.dst, 'dst')}/${id.spi}`;
  }

  /** The SA under a checked id, or ESRCH. */
  #find(id: SaId, messageType: string): UserlandSa {
    const e = this.#byKey.get(this.#key(id));
    if (!e || canonical(id.src, 'src') !== e.sa.src) {
      throw refused('ESRCH', messageType, `no ${id.protocol ?? 'esp'} SA with SPI 0x${id.spi.toString(16)} to ${id.dst}`);
    }
    return e;
  }

  /** A UserlandSa from a checked SA (src/sadb/validate.ts has read and checked every field). */
  #build(sa: SecurityAssociation, state: SaState, prev?: UserlandSa): UserlandSa {
    const key = this.#key(sa);
    const stored = copyKeyed(sa);
    stored.src = canonical(sa.src, 'src');
    stored.dst = canonical(sa.dst, 'dst');
    stored.mode = sa.mode ?? 'transport';
    let transform: EspTransform | null = null;
    if (state !== 'larval' && stored.protocol === 'esp') {
      if (!sa.encryption) throw typeError('encryption', "an object { algorithm, key } (use algorithm 'null' for none)", sa.encryption);
      const integrity = sa.integrity && sa.integrity.algorithm !== 'none' ? sa.integrity : undefined;
      if (prev?.transform && sameCrypto(prev.sa, stored)) {
        // Same keys: keep the transform, so the outbound sequence number (the AEAD IV) and the replay window go on.
        transform = prev.transform;
        transform.removeAllListeners('expire');
      } else {
        transform = createEspTransform({
          cipher: this.#cipher,
          spi: sa.spi,
          encryption: sa.encryption,
          integrity,
          esn: sa.esn === true,
          replayWindow: sa.replayWindow ?? 32,
          allowNoIntegrity: sa.allowNoIntegrity === true,
          // New keys or parameters: still never reuse a sequence number (an AEAD's IV) the SA has sent.
          outboundSeq: prev?.transform?.outboundSeq,
        });
      }
    }
    // An update keeps the usage counted so far (as the kernel does). A larval SA lives larvalSeconds at most.
    let entry!: UserlandSa;
    const lifetimes = state === 'larval' ? { hard: { addSeconds: this.#larvalSeconds } } : sa.lifetime;
    const lifetime = new LifetimeTracker(lifetimes, (kind) => this.#expire(entry, kind), prev?.lifetime.current);
    entry = new UserlandSa(key, stored, transform, lifetime, state);
    transform?.on('expire', () => lifetime.expireNow());
    return entry;
  }

  #insert(e: UserlandSa): void {
    this.#byKey.set(e.key, e);
    const spi = e.sa.spi;
    const list = this.#bySpi.get(spi);
    if (list) list.push(e);
    else this.#bySpi.set(spi, [e]);
    this.generation++;
  }

  /**
   * Take `e` out of the database; its transform's native cipher context is freed (keys wiped) at once, unless an
   * update carries the transform over to the SA that replaces it (`keepTransform`).
   */
  #remove(e: UserlandSa, keepTransform = false): void {
    e.lifetime.stop();
    e.state = 'dead';
    if (!keepTransform) e.transform?.dispose();
    this.#byKey.delete(e.key);
    const list = this.#bySpi.get(e.sa.spi);
    if (list) {
      const i = list.indexOf(e);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#bySpi.delete(e.sa.spi);
    }
    this.generation++;
  }

  #expire(e: UserlandSa, kind: ExpireKind): void {
    if (this.#byKey.get(e.key) !== e) return;
    if (kind === 'hard') this.#remove(e);
    else e.state = 'dying';
    this.emit('expire', { kind, sa: this.#public(e, false) });
  }

  #public(e: UserlandSa, keys: boolean): SecurityAssociation {
    const out = keys ? copyKeyed(e.sa) : withoutKeys(e.sa);
    out.current = { ...e.lifetime.current };
    out.state = e.state;
    return out;
  }

  #announce(e: UserlandSa): void {
    this.emit('add', this.#revealKeys ? this.#public(e, true) : this.#public(e, false));
  }

  #open(): void {
    if (this.#closed) throw new NattSystemError(9, 'userland sadb', 'the database was closed; open a new one with openSadb()');
  }

  /** Every call takes CallOptions as the kernel backends do: checked, and an aborted signal refuses the call unapplied. */
  #call(opts: unknown, what: string): void {
    this.#open();
    const { signal } = readCallOptions(opts, 5000);
    if (signal?.aborted) throw signal.reason ?? new NattError('ABORT_ERR', `${what} aborted`);
  }

  async add(input: SecurityAssociation, opts?: CallOptions): Promise<void> {
    const sa = checkSa(input);
    this.#call(opts, 'SADB_ADD');
    const key = this.#key(sa);
    if (this.#byKey.has(key)) {
      throw refused('EEXIST', 'SADB_ADD', `an SA with SPI 0x${sa.spi.toString(16)} to ${sa.dst} exists: use update() or delete it first`);
    }
    const e = this.#build(sa, 'mature');
    this.#insert(e);
    this.#acquires.clear();
    this.#announce(e);
  }

  async update(input: SecurityAssociation, opts?: CallOptions): Promise<void> {
    const sa = checkSa(input);
    this.#call(opts, 'SADB_UPDATE');
    const prev = this.#find(sa, 'SADB_UPDATE');
    const e = this.#build(sa, 'mature', prev.state === 'larval' ? undefined : prev);
    this.#remove(prev, e.transform !== null && e.transform === prev.transform);
    this.#insert(e);
    this.#acquires.clear();
    this.#announce(e);
  }

  async get(input: SaId, opts?: CallOptions): Promise<SecurityAssociation> {
    const id = checkSaId(input);
    this.#call(opts, 'SADB_GET');
    return this.#public(this.#find(id, 'SADB_GET'), true);
  }

  async delete(input: SaId, opts?: CallOptions): Promise<void> {
    const id = checkSaId(input);
    this.#call(opts, 'SADB_DELETE');
    const e = this.#find(id, 'SADB_DELETE');
    this.#remove(e);
    this.emit('delete', { src: e.sa.src, dst: e.sa.dst, spi: e.sa.spi, protocol: e.sa.protocol });
  }

  async deleteAll(input: { src: string; dst: string; protocol?: IpsecProtocol }, opts?: CallOptions): Promise<void> {
    const m = checkSaMatch(input);
    this.#call(opts, 'SADB_DELETE');
    const src = canonical(m.src, 'src');
    const dst = canonical(m.dst, 'dst');
    for (const e of [...this.#byKey.values()]) {
      if (e.sa.protocol === m.protocol && e.sa.src === src && e.sa.dst === dst) {
        this.#remove(e);
        this.emit('delete', { src, dst, spi: e.sa.spi, protocol: m.protocol });
      }
    }
  }

  async flush(protocol?: IpsecProtocol, opts?: CallOptions): Promise<void> {
    const proto = checkOptionalProtocol(protocol);
    this.#call(opts, 'SADB_FLUSH');
    for (const e of [...this.#byKey.values()]) if (proto === undefined || e.sa.protocol === proto) this.#remove(e);
  }

  async *dump(protocol?: IpsecProtocol, opts?: CallOptions): AsyncIterable<SecurityAssociation> {
    const proto = checkOptionalProtocol(protocol);
    this.#call(opts, 'SADB_DUMP');
    for (const e of [...this.#byKey.values()]) if (proto === undefined || e.sa.protocol === proto) yield this.#public(e, true);
  }

  async getSpi(input: GetSpiRequest, opts?: CallOptions): Promise<number> {
    const req = checkGetSpi(input);
    this.#call(opts, 'SADB_GETSPI');
    const { min, max } = req;
    for (let tries = 0; tries < 64; tries++) {
      const spi = min === max ? min : min + randomInt(0, Math.min(max - min + 1, 2 ** 48 - 1));
      const sa: SecurityAssociation = { src: req.src, dst: req.dst, spi, protocol: req.protocol, mode: req.mode, reqid: req.reqid };
      if (this.#byKey.has(this.#key(sa))) continue;
      const e = this.#build(sa, 'larval');
      this.#insert(e);
      return spi;
    }
    throw refused('EEXIST', 'SADB_GETSPI', `no free SPI in 0x${min.toString(16)}..0x${max.toString(16)}: widen the range`);
  }

  async register(protocol: IpsecProtocol = 'esp', opts?: CallOptions): Promise<SupportedAlgorithms> {
    const proto = checkProtocol(protocol);
    this.#call(opts, 'SADB_REGISTER');
    const algs = supportedFromTable(proto, 'userland');
    this.emit('register', algs);
    return algs;
  }

  async spdAdd(input: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    const policy = checkPolicy(input);
    this.#call(opts, 'SADB_X_SPDADD');
    const sel = PolicyTable.validate(policy);
    if (this.policies.find(policy)) throw refused('EEXIST', 'SADB_X_SPDADD', 'a policy with this selector and direction exists: use spdUpdate()');
    return structuredClone(this.policies.put(policy, sel).policy);
  }

  async spdUpdate(input: SecurityPolicy, opts?: CallOptions): Promise<SecurityPolicy> {
    const policy = checkPolicy(input);
    this.#call(opts, 'SADB_X_SPDUPDATE');
    const sel = PolicyTable.validate(policy);
    const existing = policy.id !== undefined ? this.policies.find({ id: policy.id }) : this.policies.find(policy);
    this.#acquires.clear();
    return structuredClone(this.policies.put(policy, sel, existing).policy);
  }

  #policy(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, messageType: string): PolicyEntry {
    const e = this.policies.find(which);
    if (!e) throw refused('ENOENT', messageType, 'no such policy');
    return e;
  }

  async spdDelete(input: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<void> {
    const which = checkPolicyRef(input);
    this.#call(opts, 'SADB_X_SPDDELETE');
    this.policies.remove(this.#policy(which, 'SADB_X_SPDDELETE'));
  }

  async spdGet(input: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, opts?: CallOptions): Promise<SecurityPolicy> {
    const which = checkPolicyRef(input);
    this.#call(opts, 'SADB_X_SPDGET');
    return structuredClone(this.#policy(which, 'SADB_X_SPDGET').policy);
  }

  async *spdDump(opts?: CallOptions): AsyncIterable<SecurityPolicy> {
    this.#call(opts, 'SADB_X_SPDDUMP');
    for (const e of this.policies.all()) yield structuredClone(e.policy);
  }

  async spdFlush(opts?: CallOptions): Promise<void> {
    this.#call(opts, 'SADB_X_SPDFLUSH');
    this.policies.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    for (const e of [...this.#byKey.values()]) this.#remove(e);
    this.policies.clear();
    this.#closed = true;
  }

  // ---- for the engine (src/userland/engine.ts) ----

  /** SAs with this SPI (usually one). */
  bySpi(spi: number): UserlandSa[] | undefined {
    return this.#bySpi.get(spi);
  }

  /** Every SA entry (for keepalive peers and mapping updates). */
  entries(): IterableIterator<UserlandSa> {
    return this.#byKey.values();
  }

  /** Raise 'acquire' for an outbound packet that found policy `p` but no SA, at most once per acquireSeconds. */
  acquire(p: PolicyEntry, src: string, dst: string): void {
    let ours = false;
    try {
      ours = p !== null && typeof p === 'object' && this.policies.find({ id: p.id }) === p;
    } catch {
      /* not an entry of this database */
    }
    if (!ours) throw typeError('policy', 'a policy entry of this database (db.policies)', p);
    if (typeof src !== 'string') throw typeError('src', 'an address string', src);
    if (typeof dst !== 'string') throw typeError('dst', 'an address string', dst);
    const k = `${p.id}/${src}/${dst}`;
    const now = Date.now();
    const last = this.#acquires.get(k);
    if (last !== undefined && now - last < this.#acquireMs) return;
    // Bounded: re-inserted entries move to the end, so the first ones are the oldest and go first.
    this.#acquires.delete(k);
    if (this.#acquires.size >= MAX_ACQUIRE_ENTRIES) this.#acquires.delete(this.#acquires.keys().next().value as string);
    this.#acquires.set(k, now);
    const ev: AcquireEvent = {
      seq: ++this.#acquireSeq,
      src,
      dst,
      protocol: p.policy.templates?.[0]?.protocol ?? 'esp',
      policy: { id: p.id, direction: p.policy.direction, selector: { ...p.policy.selector } },
    };
    this.emit('acquire', ev);
  }

  /**
   * An authenticated packet of inbound SA `e` came from `address`:`port`, not the recorded peer. With mapping
   * 'follow' (default): update it and the outbound SAs that went to the old peer, then raise 'newMapping' (as Linux's
   * km_new_mapping, with the update the IKE daemon would make applied here). With 'notify': only raise it, once per
   * new mapping (null when this one was reported already). The engine calls this only for a packet newer than all
   * before on the SA.
   */
  newMapping(e: UserlandSa, address: string, port: number): NewMappingEvent | null {
    if (!(e instanceof UserlandSa) || this.#byKey.get(e.key) !== e) throw typeError('sa', 'an SA entry of this database (bySpi(), entries())', e);
    intOption(port, 'port', 1, 65535);
    const old = { ...e.inboundPeer };
    const addrBytes = addressToBytes(address, 'address');
    const addr = bytesToAddress(addrBytes, 0, addrBytes.length === 4 ? 4 : 16);
    const ev: NewMappingEvent = {
      sa: { src: e.sa.src, dst: e.sa.dst, spi: e.sa.spi, protocol: e.sa.protocol },
      reqid: e.sa.reqid,
      old,
      new: { address: addr, port },
      followed: this.#mapping === 'follow',
    };
    if (this.#mapping === 'notify') {
      // The peer stays where it was: every later packet from the new place would report it again; once is news.
      if (!this.#mappings.admit(ev)) return null;
      this.emit('newMapping', ev);
      return ev;
    }
    for (const o of this.#byKey.values()) {
      if (o !== e && o.sa.natt && o.peer.address === old.address && o.peer.port === old.port) {
        o.peer = { address: addr, port };
        o.sa.natt.dport = port;
      }
    }
    e.inboundPeer = { address: addr, port };
    if (e.sa.natt) e.sa.natt.sport = port;
    this.generation++;
    this.emit('newMapping', ev);
    return ev;
  }
}
