// The userland SA: one SA of the userland database with the fields its datapath reads explicit (owned by the database).

import type { SaState, SecurityAssociation } from '../sadb/types';
import { addressToBytes } from '../ip/address';
import type { EspTransform } from '../esp';
import type { LifetimeTracker } from './lifetimes';
import { compileSelector, type CompiledSelector } from './spd';

/**
 * One SA of the userland database, with the fields the datapath reads per packet made explicit: the stored SA, its
 * ESP transform, its lifetime, its compiled selector, its addresses as bytes, and where its datagrams go or come from.
 * The database (src/userland/sadb.ts) creates, changes and removes them; the engine only reads them (its own caches
 * and counters live in the engine).
 */
export class UserlandSa {
  readonly key: string;
  /** The stored SA (our copy; keys in key holders). Its src/dst/natt are updated on a new mapping. */
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
