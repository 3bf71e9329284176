// SA lifetimes in the userland engine: soft/hard limits in bytes, packets, add-time and use-time, with unref'd timers.

import type { Lifetime, LifetimeCurrent, SecurityAssociation } from '../sadb/types';
import { rangeError, typeError } from '../errors';
import { longTimeout, type LongTimer } from '../core/timers';

export type ExpireKind = 'soft' | 'hard';

function limit(v: unknown, option: string): number {
  if (v === undefined || v === 0) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(option, 'a number', v);
  if (v < 0) throw rangeError(option, '0 (no limit) or more', v);
  return v;
}

/** Validate `sa.lifetime` (throws TypeError/RangeError naming the field). */
export function validateLifetime(sa: SecurityAssociation): void {
  const lt = sa.lifetime;
  if (lt === undefined) return;
  if (lt === null || typeof lt !== 'object') throw typeError('lifetime', 'an object { soft?, hard? }', lt);
  for (const kind of ['soft', 'hard'] as const) {
    const l = lt[kind];
    if (l === undefined) continue;
    if (l === null || typeof l !== 'object') throw typeError(`lifetime.${kind}`, 'an object', l);
    for (const f of ['bytes', 'packets', 'addSeconds', 'useSeconds'] as const) limit(l[f], `lifetime.${kind}.${f}`);
  }
}

/**
 * One SA's usage and limits. `use(bytes)` accounts a processed packet; limits reached fire `onExpire` once per
 * kind (soft, then hard). Timers are unref'd: an SA never keeps the process alive.
 */
export class LifetimeTracker {
  readonly current: LifetimeCurrent;
  #soft: Required<Lifetime>;
  #hard: Required<Lifetime>;
  #fired = { soft: false, hard: false };
  #timers: LongTimer[] = [];
  #onExpire: (kind: ExpireKind) => void;

  constructor(lifetime: SecurityAssociation['lifetime'], onExpire: (kind: ExpireKind) => void, current?: LifetimeCurrent) {
    const norm = (l?: Lifetime): Required<Lifetime> => ({
      bytes: l?.bytes ?? 0,
      packets: l?.packets ?? 0,
      addSeconds: l?.addSeconds ?? 0,
      useSeconds: l?.useSeconds ?? 0,
    });
    this.#soft = norm(lifetime?.soft);
    this.#hard = norm(lifetime?.hard);
    this.#onExpire = onExpire;
    this.current = current ? { ...current } : { bytes: 0, packets: 0, addTime: Math.floor(Date.now() / 1000), useTime: 0 };
    const age = Date.now() / 1000 - this.current.addTime;
    this.#arm('soft', this.#soft.addSeconds, age);
    this.#arm('hard', this.#hard.addSeconds, age);
    if (this.current.useTime) {
      const used = Date.now() / 1000 - this.current.useTime;
      this.#arm('soft', this.#soft.useSeconds, used);
      this.#arm('hard', this.#hard.useSeconds, used);
    }
  }

  #arm(kind: ExpireKind, seconds: number, elapsed: number): void {
    if (!seconds) return;
    // A long timer: a 25-day lifetime must not fire after 1 ms (setTimeout's 2^31 ms limit).
    this.#timers.push(longTimeout(() => this.#fire(kind), Math.max(0, (seconds - elapsed) * 1000)).unref());
  }

  #fire(kind: ExpireKind): void {
    if (this.#fired[kind] || this.#fired.hard) return;
    this.#fired[kind] = true;
    if (kind === 'hard') this.stop();
    this.#onExpire(kind);
  }

  /** Has the hard limit been reached (the SA must not be used)? */
  get dead(): boolean {
    return this.#fired.hard;
  }

  /** Has the soft limit been reached (the SA is dying: rekey)? */
  get dying(): boolean {
    return this.#fired.soft;
  }

  /** Account one processed packet of `bytes`; may fire soft and/or hard expiry. */
  use(bytes: number): void {
    const c = this.current;
    if (c.useTime === 0) {
      c.useTime = Math.floor(Date.now() / 1000);
      this.#arm('soft', this.#soft.useSeconds, 0);
      this.#arm('hard', this.#hard.useSeconds, 0);
    }
    c.bytes += bytes;
    c.packets++;
    const s = this.#soft;
    const h = this.#hard;
    if (!this.#fired.soft && ((s.bytes && c.bytes >= s.bytes) || (s.packets && c.packets >= s.packets))) this.#fire('soft');
    if (!this.#fired.hard && ((h.bytes && c.bytes >= h.bytes) || (h.packets && c.packets >= h.packets))) this.#fire('hard');
  }

  /** Force a hard expiry now (e.g. the transform ran out of sequence numbers). */
  expireNow(): void {
    this.#fire('hard');
  }

  /** Cancel the timers (SA deleted or replaced). */
  stop(): void {
    for (const t of this.#timers) t.clear();
    this.#timers = [];
  }
}
