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
import { NattSystemError, rangeError, typeError } from '../errors';
import { oneOf } from '../core/options';
import { addressFamily, addressToBytes, bytesToAddress } from '../ip/address';
import type { EspTransform } from '../esp';
import { createEspTransform, type EspCipherChoice } from '../fastpath';
import { LifetimeTracker, validateLifetime, type ExpireKind } from './lifetimes';
import { PolicyTable, compileSelector, type CompiledSelector, type PolicyEntry } from './spd';
import { newStats, type XfrmStats } from './counters';

export interface UserlandSadbOptions {
  /** Include key material in `'add'` events (default false). */
  revealKeys?: boolean;
  /** Seconds an 'acquire' for the same policy and destination is not repeated (Linux: 30). */
  acquireSeconds?: number;
  /** The SAs' ESP cipher: 'auto' (default: the native fast path where available), 'native', or 'node' (node:crypto). */
  cipher?: EspCipherChoice;
}

/** One SA as the engine uses it: the stored SA, its transform, its usage. Internal to src/userland. */
export class SaEntry {
  readonly key: string;
  /** The stored SA (our copy; keys non-enumerable). Its src/dst/natt are updated on a new mapping. */
  readonly sa: SecurityAssociation;
  readonly transform: EspTransform | null;
  readonly lifetime: LifetimeTracker;
  readonly selector: CompiledSelector | null;
  state: SaState;
  srcBytes: Uint8Array;
  dstBytes: Uint8Array;
  /**
   * Where this SA's datagrams go (outbound) or come from (inbound): the remote address and UDP port. Starts as
   * dst:natt.dport (outbound) or src:natt.sport (inbound); a new mapping moves it. The SA's identity never changes.
   */
  peer: { address: string; port: number };
  /** For an inbound SA: the address and port its packets are expected from (src:natt.sport, then learned). */
  inboundPeer: { address: string; port: number };
  /** NAT-OA original addresses as bytes (the engine fills it on first use; null = none). */
  oaBytes: { src: Uint8Array; dst: Uint8Array } | null | undefined = undefined;
  /** inboundPeer's address as bytes (the engine caches it; null after a change). */
  inboundPeerBytes: Uint8Array | null = null;
  /** ms timestamps of the last packet sealed / opened with this SA (0 = never): keepalive bookkeeping. */
  lastOut = 0;
  lastIn = 0;

  constructor(key: string, sa: SecurityAssociation, transform: EspTransform | null, lifetime: LifetimeTracker, state: SaState) {
    this.key = key;
    this.sa = sa;
    this.transform = transform;
    this.lifetime = lifetime;
    this.state = state;
    this.selector = sa.selector ? compileSelector(sa.selector, 'selector') : null;
    this.srcBytes = addressToBytes(sa.src, 'src');
    this.dstBytes = addressToBytes(sa.dst, 'dst');
    this.peer = { address: sa.dst, port: sa.natt?.dport ?? 4500 };
    this.inboundPeer = { address: sa.src, port: sa.natt?.sport ?? 4500 };
  }

  /** Can the SA carry traffic? */
  get usable(): boolean {
    return (this.state === 'mature' || this.state === 'dying') && this.transform !== null;
  }
}

const canonical = (a: string, option: string): string => {
  const b = addressToBytes(a, option);
  return bytesToAddress(b, 0, b.length === 4 ? 4 : 16);
};

const PROTOCOLS: IpsecProtocol[] = ['esp', 'ah', 'ipcomp'];

/** A kernel-shaped refusal: `code`/`errno`/`syscall` as PF_KEY would give, plus `messageType`. */
function refused(errno: 'EEXIST' | 'ESRCH' | 'ENOENT' | 'EINVAL', messageType: string, advice: string): NattSystemError {
  const num = { EEXIST: 17, ESRCH: 3, ENOENT: 2, EINVAL: 22 }[errno];
  return new NattSystemError(num, messageType, advice, { messageType });
}

function checkSpi(spi: unknown, option = 'spi'): number {
  if (typeof spi !== 'number' || !Number.isInteger(spi)) throw typeError(option, 'an integer', spi);
  if (spi < 1 || spi > 0xffff_ffff) throw rangeError(option, '1..0xffffffff', spi);
  return spi;
}

function checkProtocol(p: unknown): IpsecProtocol {
  if (p === undefined) return 'esp';
  if (!PROTOCOLS.includes(p as IpsecProtocol)) throw typeError('protocol', "'esp', 'ah' or 'ipcomp'", p);
  return p as IpsecProtocol;
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
  /** The counters (mutated in place by the engine). */
  readonly counters: XfrmStats = newStats();
  /** Bumped on every SA change; the engine's caches compare it. */
  generation = 0;
  #byKey = new Map<string, SaEntry>();
  #bySpi = new Map<number, SaEntry[]>();
  #acquires = new Map<string, number>();
  #acquireSeq = 0;
  #revealKeys: boolean;
  #acquireMs: number;
  #cipher: EspCipherChoice;
  #closed = false;

  constructor(opts: UserlandSadbOptions = {}) {
    super();
    if (opts === null || typeof opts !== 'object') throw typeError('options', 'an object', opts);
    this.#revealKeys = opts.revealKeys === true;
    const acq = opts.acquireSeconds ?? 30;
    if (typeof acq !== 'number' || !(acq >= 0)) throw rangeError('acquireSeconds', 'a number ≥ 0', acq);
    this.#acquireMs = acq * 1000;
    this.#cipher = oneOf(opts.cipher, 'cipher', ['auto', 'native', 'node'] as const, 'auto');
  }

  /** A snapshot of the counters. */
  stats(): XfrmStats {
    return { ...this.counters };
  }

  #key(id: SaId): string {
    if (id === null || typeof id !== 'object') throw typeError('sa', 'an object { src, dst, spi }', id);
    const proto = checkProtocol(id.protocol);
    const spi = checkSpi(id.spi);
    const dst = canonical(id.dst, 'dst');
    return `${proto}/${dst}/${spi}`;
  }

  #find(id: SaId, messageType: string): SaEntry {
    const e = this.#byKey.get(this.#key(id));
    if (!e || (id.src !== undefined && canonical(id.src, 'src') !== e.sa.src)) {
      throw refused('ESRCH', messageType, `no ${id.protocol ?? 'esp'} SA with SPI 0x${id.spi.toString(16)} to ${id.dst}`);
    }
    return e;
  }

  #build(sa: SecurityAssociation, state: SaState, prev?: SaEntry): SaEntry {
    if (sa === null || typeof sa !== 'object') throw typeError('sa', 'an object', sa);
    const key = this.#key(sa);
    const stored = copyKeyed(sa);
    stored.protocol = checkProtocol(sa.protocol);
    stored.src = canonical(sa.src, 'src');
    stored.dst = canonical(sa.dst, 'dst');
    if (addressFamily(stored.src) !== addressFamily(stored.dst)) throw typeError('dst', `an address of the same family as src (${sa.src})`, sa.dst);
    stored.mode = sa.mode ?? 'transport';
    if (stored.mode !== 'transport' && stored.mode !== 'tunnel' && stored.mode !== 'any') {
      throw typeError('mode', "'transport', 'tunnel' or 'any'", sa.mode);
    }
    if (sa.natt !== undefined) {
      const n = sa.natt;
      if (n === null || typeof n !== 'object') throw typeError('natt', 'an object { type, sport, dport }', n);
      if (n.type !== 'espinudp' && n.type !== 'espinudp-non-ike') throw typeError('natt.type', "'espinudp' or 'espinudp-non-ike'", n.type);
      for (const f of ['sport', 'dport'] as const) {
        if (!Number.isInteger(n[f]) || n[f] < 1 || n[f] > 65535) throw rangeError(`natt.${f}`, '1..65535', n[f]);
      }
      if (n.oa?.initiator !== undefined) addressToBytes(n.oa.initiator, 'natt.oa.initiator');
      if (n.oa?.responder !== undefined) addressToBytes(n.oa.responder, 'natt.oa.responder');
    }
    validateLifetime(sa);
    delete stored.current;
    delete stored.state;
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
          // New keys or parameters: still never reuse a sequence number (an AEAD's IV) the SA has sent.
          outboundSeq: prev?.transform?.outboundSeq,
        });
      }
    }
    // An update keeps the usage counted so far (as the kernel does).
    let entry!: SaEntry;
    const lifetime = new LifetimeTracker(sa.lifetime, (kind) => this.#expire(entry, kind), prev?.lifetime.current);
    entry = new SaEntry(key, stored, transform, lifetime, state);
    transform?.on('expire', () => lifetime.expireNow());
    return entry;
  }

  #insert(e: SaEntry): void {
    this.#byKey.set(e.key, e);
    const spi = e.sa.spi;
    const list = this.#bySpi.get(spi);
    if (list) list.push(e);
    else this.#bySpi.set(spi, [e]);
    this.generation++;
  }

  #remove(e: SaEntry): void {
    e.lifetime.stop();
    e.state = 'dead';
    this.#byKey.delete(e.key);
    const list = this.#bySpi.get(e.sa.spi);
    if (list) {
      const i = list.indexOf(e);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#bySpi.delete(e.sa.spi);
    }
    this.generation++;
  }

  #expire(e: SaEntry, kind: ExpireKind): void {
    if (this.#byKey.get(e.key) !== e) return;
    if (kind === 'hard') this.#remove(e);
    else e.state = 'dying';
    this.emit('expire', { kind, sa: this.#public(e, false) });
  }

  #public(e: SaEntry, keys: boolean): SecurityAssociation {
    const out = keys ? copyKeyed(e.sa) : withoutKeys(e.sa);
    out.current = { ...e.lifetime.current };
    out.state = e.state;
    return out;
  }

  #announce(e: SaEntry): void {
    this.emit('add', this.#revealKeys ? this.#public(e, true) : this.#public(e, false));
  }

  #open(): void {
    if (this.#closed) throw new NattSystemError(9, 'userland sadb', 'the database was closed; open a new one with openSadb()');
  }

  async add(sa: SecurityAssociation, _opts?: CallOptions): Promise<void> {
    this.#open();
    const key = this.#key(sa);
    if (this.#byKey.has(key)) {
      throw refused('EEXIST', 'SADB_ADD', `an SA with SPI 0x${sa.spi.toString(16)} to ${sa.dst} exists: use update() or delete it first`);
    }
    const e = this.#build(sa, 'mature');
    this.#insert(e);
    this.#acquires.clear();
    this.#announce(e);
  }

  async update(sa: SecurityAssociation, _opts?: CallOptions): Promise<void> {
    this.#open();
    const prev = this.#find(sa, 'SADB_UPDATE');
    const e = this.#build(sa, 'mature', prev.state === 'larval' ? undefined : prev);
    this.#remove(prev);
    this.#insert(e);
    this.#acquires.clear();
    this.#announce(e);
  }

  async get(id: SaId, _opts?: CallOptions): Promise<SecurityAssociation> {
    this.#open();
    return this.#public(this.#find(id, 'SADB_GET'), true);
  }

  async delete(id: SaId, _opts?: CallOptions): Promise<void> {
    this.#open();
    const e = this.#find(id, 'SADB_DELETE');
    this.#remove(e);
    this.emit('delete', { src: e.sa.src, dst: e.sa.dst, spi: e.sa.spi, protocol: e.sa.protocol });
  }

  async deleteAll(match: { src: string; dst: string; protocol?: IpsecProtocol }, _opts?: CallOptions): Promise<void> {
    this.#open();
    if (match === null || typeof match !== 'object') throw typeError('match', 'an object { src, dst, protocol? }', match);
    const proto = checkProtocol(match.protocol);
    const src = canonical(match.src, 'src');
    const dst = canonical(match.dst, 'dst');
    for (const e of [...this.#byKey.values()]) {
      if (e.sa.protocol === proto && e.sa.src === src && e.sa.dst === dst) {
        this.#remove(e);
        this.emit('delete', { src, dst, spi: e.sa.spi, protocol: proto });
      }
    }
  }

  async flush(protocol?: IpsecProtocol, _opts?: CallOptions): Promise<void> {
    this.#open();
    const proto = protocol === undefined ? undefined : checkProtocol(protocol);
    for (const e of [...this.#byKey.values()]) if (proto === undefined || e.sa.protocol === proto) this.#remove(e);
  }

  async *dump(protocol?: IpsecProtocol, _opts?: CallOptions): AsyncIterable<SecurityAssociation> {
    this.#open();
    const proto = protocol === undefined ? undefined : checkProtocol(protocol);
    for (const e of [...this.#byKey.values()]) if (proto === undefined || e.sa.protocol === proto) yield this.#public(e, true);
  }

  async getSpi(req: GetSpiRequest, _opts?: CallOptions): Promise<number> {
    this.#open();
    if (req === null || typeof req !== 'object') throw typeError('request', 'an object { src, dst, min?, max? }', req);
    const min = req.min ?? 0x100;
    const max = req.max ?? 0xffff_ffff;
    checkSpi(min, 'min');
    checkSpi(max, 'max');
    if (min > max) throw rangeError('min', `at most max (${max})`, min);
    const proto = checkProtocol(req.protocol);
    for (let tries = 0; tries < 64; tries++) {
      const spi = min === max ? min : min + randomInt(0, Math.min(max - min + 1, 2 ** 48 - 1));
      const sa: SecurityAssociation = { src: req.src, dst: req.dst, spi, protocol: proto, mode: req.mode, reqid: req.reqid };
      if (this.#byKey.has(this.#key(sa))) continue;
      const e = this.#build(sa, 'larval');
      this.#insert(e);
      return spi;
    }
    throw refused('EEXIST', 'SADB_GETSPI', `no free SPI in 0x${min.toString(16)}..0x${max.toString(16)}: widen the range`);
  }

  async register(protocol: IpsecProtocol = 'esp', _opts?: CallOptions): Promise<SupportedAlgorithms> {
    this.#open();
    const proto = checkProtocol(protocol);
    const algs: SupportedAlgorithms =
      proto !== 'esp'
        ? { protocol: proto, encryption: [], integrity: [] }
        : {
            protocol: 'esp',
            encryption: [
              { algorithm: 'aes-gcm-16', minBits: 128, maxBits: 256, ivBits: 64 },
              { algorithm: 'aes-gmac', minBits: 128, maxBits: 256, ivBits: 64 },
              { algorithm: 'chacha20-poly1305', minBits: 256, maxBits: 256, ivBits: 64 },
              { algorithm: 'aes-cbc', minBits: 128, maxBits: 256, ivBits: 128 },
              { algorithm: 'null', minBits: 0, maxBits: 0, ivBits: 0 },
            ],
            integrity: [
              { algorithm: 'hmac-sha1-96', minBits: 160, maxBits: 160 },
              { algorithm: 'hmac-sha2-256-128', minBits: 256, maxBits: 256 },
              { algorithm: 'hmac-sha2-384-192', minBits: 384, maxBits: 384 },
              { algorithm: 'hmac-sha2-512-256', minBits: 512, maxBits: 512 },
            ],
          };
    this.emit('register', algs);
    return algs;
  }

  async spdAdd(policy: SecurityPolicy, _opts?: CallOptions): Promise<SecurityPolicy> {
    this.#open();
    const sel = PolicyTable.validate(policy);
    if (this.policies.find(policy)) throw refused('EEXIST', 'SADB_X_SPDADD', 'a policy with this selector and direction exists: use spdUpdate()');
    return structuredClone(this.policies.put(policy, sel).policy);
  }

  async spdUpdate(policy: SecurityPolicy, _opts?: CallOptions): Promise<SecurityPolicy> {
    this.#open();
    const sel = PolicyTable.validate(policy);
    const existing = policy.id !== undefined ? this.policies.find({ id: policy.id }) : this.policies.find(policy);
    this.#acquires.clear();
    return structuredClone(this.policies.put(policy, sel, existing).policy);
  }

  #policy(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, messageType: string): PolicyEntry {
    if (which === null || typeof which !== 'object') throw typeError('policy', 'an object { id } or { selector, direction }', which);
    const e = this.policies.find(which);
    if (!e) throw refused('ENOENT', messageType, 'no such policy');
    return e;
  }

  async spdDelete(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, _opts?: CallOptions): Promise<void> {
    this.#open();
    this.policies.remove(this.#policy(which, 'SADB_X_SPDDELETE'));
  }

  async spdGet(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>, _opts?: CallOptions): Promise<SecurityPolicy> {
    this.#open();
    return structuredClone(this.#policy(which, 'SADB_X_SPDGET').policy);
  }

  async *spdDump(_opts?: CallOptions): AsyncIterable<SecurityPolicy> {
    this.#open();
    for (const e of this.policies.all()) yield structuredClone(e.policy);
  }

  async spdFlush(_opts?: CallOptions): Promise<void> {
    this.#open();
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
  bySpi(spi: number): SaEntry[] | undefined {
    return this.#bySpi.get(spi);
  }

  /** Every SA entry (for keepalive peers and mapping updates). */
  entries(): IterableIterator<SaEntry> {
    return this.#byKey.values();
  }

  /** Raise 'acquire' for an outbound packet that found policy `p` but no SA, at most once per acquireSeconds. */
  acquire(p: PolicyEntry, src: string, dst: string): void {
    const k = `${p.id}/${src}/${dst}`;
    const now = Date.now();
    const last = this.#acquires.get(k);
    if (last !== undefined && now - last < this.#acquireMs) return;
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
   * An authenticated packet of inbound SA `e` came from `address`:`port`, not the recorded peer. Update it and the
   * outbound SAs that went to the old peer, then raise 'newMapping' (as Linux's km_new_mapping, with the update
   * the IKE daemon would make applied here).
   */
  newMapping(e: SaEntry, address: string, port: number): NewMappingEvent {
    const old = { ...e.inboundPeer };
    const addrBytes = addressToBytes(address, 'address');
    const addr = bytesToAddress(addrBytes, 0, addrBytes.length === 4 ? 4 : 16);
    for (const o of this.#byKey.values()) {
      if (o !== e && o.sa.natt && o.peer.address === old.address && o.peer.port === old.port) {
        o.peer = { address: addr, port };
        o.sa.natt.dport = port;
      }
    }
    e.inboundPeer = { address: addr, port };
    if (e.sa.natt) e.sa.natt.sport = port;
    this.generation++;
    const ev: NewMappingEvent = {
      sa: { src: e.sa.src, dst: e.sa.dst, spi: e.sa.spi, protocol: e.sa.protocol },
      reqid: e.sa.reqid,
      old,
      new: { address: addr, port },
    };
    this.emit('newMapping', ev);
    return ev;
  }
}
