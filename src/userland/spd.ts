// The userland security policy database: policies with compiled selectors, outbound choice and the inbound check.

import type { PolicyDirection, SecurityPolicy, TrafficSelector } from '../sadb/types';
import { parsePrefix, prefixMatches, formatPrefix, type Prefix } from '../ip/address';
import type { IpView } from '../ip/packet';
import { rangeError, typeError } from '../errors';

/** A selector parsed once, matched per packet without allocation. */
export interface CompiledSelector {
  src: Prefix;
  dst: Prefix;
  /** 0 = any. */
  proto: number;
  sport: number;
  dport: number;
}

/** A stored policy: the caller's shape (copied) and its compiled selector. */
export interface PolicyEntry {
  policy: SecurityPolicy;
  sel: CompiledSelector;
  /** Linux-style index: a counter shifted left by 3, ORed with the direction (in 0, out 1, fwd 2). */
  id: number;
}

const DIR_NUM: Record<PolicyDirection, number> = { in: 0, out: 1, fwd: 2 };

function port(v: unknown, option: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(option, 'an integer port', v);
  if (v < 0 || v > 65535) throw rangeError(option, '0..65535', v);
  return v;
}

/** Validate and compile a selector; errors name `option`.src etc. */
export function compileSelector(sel: TrafficSelector, option = 'selector'): CompiledSelector {
  if (sel === null || typeof sel !== 'object') throw typeError(option, 'an object { src, dst, proto?, sport?, dport? }', sel);
  const src = parsePrefix(sel.src, `${option}.src`);
  const dst = parsePrefix(sel.dst, `${option}.dst`);
  if (src.family !== dst.family) throw typeError(`${option}.dst`, `an IPv${src.family} prefix like ${option}.src`, sel.dst);
  let proto = 0;
  if (sel.proto !== undefined) {
    if (typeof sel.proto !== 'number' || !Number.isInteger(sel.proto)) throw typeError(`${option}.proto`, 'an integer', sel.proto);
    if (sel.proto < 0 || sel.proto > 255) throw rangeError(`${option}.proto`, '0..255', sel.proto);
    proto = sel.proto === 255 ? 0 : sel.proto;
  }
  return { src, dst, proto, sport: port(sel.sport, `${option}.sport`), dport: port(sel.dport, `${option}.dport`) };
}

/** Does the packet described by `v` (whose bytes are `pkt`) fall under the selector? */
export function selectorMatches(s: CompiledSelector, pkt: Uint8Array, v: IpView): boolean {
  if (s.src.family !== v.version) return false;
  if (s.proto !== 0 && s.proto !== v.proto) return false;
  if (s.sport !== 0 && s.sport !== v.sport) return false;
  if (s.dport !== 0 && s.dport !== v.dport) return false;
  return prefixMatches(s.src, pkt, v.srcOffset) && prefixMatches(s.dst, pkt, v.dstOffset);
}

function sameSelector(a: CompiledSelector, b: CompiledSelector): boolean {
  return (
    formatPrefix(a.src) === formatPrefix(b.src) &&
    formatPrefix(a.dst) === formatPrefix(b.dst) &&
    a.proto === b.proto &&
    a.sport === b.sport &&
    a.dport === b.dport
  );
}

/** The policy table. Lookup order: lowest `priority` value first (Linux), then insertion order. */
export class PolicyTable {
  #byDir: Record<PolicyDirection, PolicyEntry[]> = { in: [], out: [], fwd: [] };
  #next = 1;
  /** Bumped on every change so caches (the engine's policy→SA choice) can tell they are stale. */
  generation = 0;

  /** Validate a policy; returns its compiled selector. */
  static validate(p: SecurityPolicy): CompiledSelector {
    if (p === null || typeof p !== 'object') throw typeError('policy', 'an object', p);
    if (!(p.direction in DIR_NUM)) throw typeError('policy.direction', "'in', 'out' or 'fwd'", p.direction);
    if (p.action !== 'ipsec' && p.action !== 'none' && p.action !== 'discard') {
      throw typeError('policy.action', "'ipsec', 'none' or 'discard'", p.action);
    }
    if (p.action === 'ipsec') {
      if (!Array.isArray(p.templates) || p.templates.length === 0) {
        throw typeError('policy.templates', "a non-empty array for action 'ipsec'", p.templates);
      }
      p.templates.forEach((t, i) => {
        if (t.mode !== 'transport' && t.mode !== 'tunnel') throw typeError(`policy.templates[${i}].mode`, "'transport' or 'tunnel'", t.mode);
        if (t.mode === 'tunnel' && (typeof t.src !== 'string' || typeof t.dst !== 'string')) {
          throw typeError(`policy.templates[${i}].src`, 'tunnel endpoint addresses (src and dst) for tunnel mode', t.src);
        }
      });
    }
    if (p.priority !== undefined && (!Number.isInteger(p.priority) || p.priority < 0)) {
      throw rangeError('policy.priority', 'a non-negative integer', p.priority);
    }
    return compileSelector(p.selector, 'policy.selector');
  }

  /** Find by id, or by exact selector and direction. */
  find(which: { id: number } | Pick<SecurityPolicy, 'selector' | 'direction'>): PolicyEntry | undefined {
    if ('id' in which && typeof which.id === 'number') {
      for (const list of Object.values(this.#byDir)) {
        const e = list.find((x) => x.id === which.id);
        if (e) return e;
      }
      return undefined;
    }
    const w = which as Pick<SecurityPolicy, 'selector' | 'direction'>;
    if (typeof w.direction !== 'string' || !Object.hasOwn(DIR_NUM, w.direction)) throw typeError('direction', "'in', 'out' or 'fwd'", w.direction);
    const sel = compileSelector(w.selector);
    return this.#byDir[w.direction].find((x) => sameSelector(x.sel, sel));
  }

  /** Insert (or replace `existing`) keeping the lookup order. */
  put(policy: SecurityPolicy, sel: CompiledSelector, existing?: PolicyEntry): PolicyEntry {
    const list = this.#byDir[policy.direction];
    if (existing) this.remove(existing);
    const id = existing?.id ?? ((this.#next++ << 3) | DIR_NUM[policy.direction]);
    const stored: SecurityPolicy = structuredClone({ ...policy, id });
    const entry: PolicyEntry = { policy: stored, sel, id };
    const prio = policy.priority ?? 0;
    let at = list.findIndex((x) => (x.policy.priority ?? 0) > prio);
    if (at < 0) at = list.length;
    list.splice(at, 0, entry);
    this.generation++;
    return entry;
  }

  remove(e: PolicyEntry): void {
    const list = this.#byDir[e.policy.direction];
    const i = list.indexOf(e);
    if (i >= 0) list.splice(i, 1);
    this.generation++;
  }

  clear(): void {
    this.#byDir = { in: [], out: [], fwd: [] };
    this.generation++;
  }

  /** The first policy of `dir` covering the packet, or undefined. */
  lookup(dir: PolicyDirection, pkt: Uint8Array, v: IpView): PolicyEntry | undefined {
    const list = this.#byDir[dir];
    for (let i = 0; i < list.length; i++) if (selectorMatches(list[i].sel, pkt, v)) return list[i];
    return undefined;
  }

  /** Every policy, in, out, fwd order. */
  all(): PolicyEntry[] {
    return [...this.#byDir.in, ...this.#byDir.out, ...this.#byDir.fwd];
  }

  /** Does any inbound policy exist? */
  hasInbound(): boolean {
    return this.#byDir.in.length > 0;
  }
}
