// A NAT mapping change, handled the same on every backend: follow it (re-point the SA and its outbound twins) or notify.
//
// The kernels report a NAT-T peer that moved (XFRM_MSG_MAPPING, SADB_X_NAT_T_NEW_MAPPING) and leave the SA as it
// was: replies still go to the old address and port. With mapping 'follow' (the default) natt re-points them itself,
// through the Sadb interface only, as the userland backend always did: the inbound SA's source port (and address),
// and every NAT-T SA that sent to the old peer (its destination port, and address). Then 'newMapping' is emitted,
// with `followed` saying whether that worked. With 'notify' only the event is emitted, and the IKE daemon decides.

import type { NewMappingEvent, Sadb, SecurityAssociation } from './types';
import { sameAddress } from '../ip/address';
import { NattError, typeError } from '../errors';
import { intOption, oneOf, readingCallerValue, stringOption } from '../core/options';

/** The caller's event, checked and copied (the fields followMapping reads; a getter or a Proxy that throws is named). */
function checkMappingEvent(v: unknown): NewMappingEvent {
  if (v === null || typeof v !== 'object') throw typeError('ev', 'a newMapping event { sa, old, new }', v);
  return readingCallerValue('ev', () => {
    const e = v as Record<string, unknown>;
    const obj = (x: unknown, name: string): Record<string, unknown> => {
      if (x === null || typeof x !== 'object') throw typeError(name, 'an object', x);
      return x as Record<string, unknown>;
    };
    const sa = obj(e.sa, 'ev.sa');
    const end = (x: unknown, name: string) => {
      const o = obj(x, name);
      return { address: stringOption(o.address, `${name}.address`), port: intOption(o.port, `${name}.port`, 0, 65535) };
    };
    return {
      sa: {
        src: stringOption(sa.src, 'ev.sa.src', { allowEmpty: true }, ''),
        dst: stringOption(sa.dst, 'ev.sa.dst', { allowEmpty: true }),
        spi: intOption(sa.spi, 'ev.sa.spi', 0, 0xffff_ffff),
        protocol: oneOf(sa.protocol, 'ev.sa.protocol', ['esp', 'ah', 'ipcomp'] as const, 'esp'),
      },
      old: end(e.old, 'ev.old'),
      new: end(e.new, 'ev.new'),
    };
  });
}

/** What a backend does on a NAT mapping change: re-point the SAs itself ('follow', default), or only emit ('notify'). */
export type MappingMode = 'follow' | 'notify';

/** The same mapping of the same SA is handled once per this long (the kernel reports it per packet). */
export const MAPPING_HOLD_MS = 30_000;
/** SAs whose last mapping is remembered, at most (the oldest are forgotten first). */
export const MAX_MAPPING_ENTRIES = 1024;

/**
 * Lets each mapping change through once: the kernel repeats its report for every packet from the new address until
 * the SA is changed (Linux without XFRMA_MTIMER_THRESH), and a 'notify' daemon or a failed follow leaves it unchanged.
 * A different new address or port is always news; the same one again after MAPPING_HOLD_MS is too. Bounded.
 */
export class MappingGate {
  readonly #seen = new Map<string, { to: string; at: number }>();
  #busy = new Set<string>();
  /** Reports held back as repeats. */
  repeats = 0;

  /** The key of the SA a mapping event is about. */
  static key(ev: NewMappingEvent): string {
    return `${ev.sa.protocol ?? 'esp'}/${ev.sa.dst}/${ev.sa.spi}`;
  }

  /** True when `ev` is news; it is then remembered (and marked busy until done() when `busy`). */
  admit(ev: NewMappingEvent, now = Date.now()): boolean {
    const k = MappingGate.key(ev);
    const to = `${ev.new.address}|${ev.new.port}`;
    const last = this.#seen.get(k);
    if (this.#busy.has(k) || (last && last.to === to && now - last.at < MAPPING_HOLD_MS)) {
      this.repeats++;
      return false;
    }
    this.#seen.delete(k); // re-inserted last: the map's first entries are the oldest
    if (this.#seen.size >= MAX_MAPPING_ENTRIES) this.#seen.delete(this.#seen.keys().next().value as string);
    this.#seen.set(k, { to, at: now });
    return true;
  }

  busy(ev: NewMappingEvent): void {
    this.#busy.add(MappingGate.key(ev));
  }

  done(ev: NewMappingEvent): void {
    this.#busy.delete(MappingGate.key(ev));
  }
}

/** What following changed: the SAs re-pointed (by their new ids). */
export interface FollowResult {
  inbound: SecurityAssociation;
  outbound: SecurityAssociation[];
}

/**
 * Re-point the SAs of a mapping change through `sadb`: find the inbound SA (`ev.sa`: destination, SPI, protocol) and
 * set its NAT-T source port (and, when the address moved, its source: the SA is deleted and added again, since its
 * id keeps the destination only); then every NAT-T SA that sends to the old peer (destination and destination port
 * = `ev.old`) gets the new port (and address: added under the new destination, then the old one deleted). Throws
 * when the inbound SA is not there, or a kernel call fails (what was done stays done; an inbound SA whose re-add failed
 * is put back as it was). The SAs must come with their keys (every backend gives them; a daemon when it reveals them).
 */
export async function followMapping(sadb: Sadb, ev: NewMappingEvent): Promise<FollowResult> {
  if (sadb === null || typeof sadb !== 'object' || readingCallerValue('sadb', () => typeof (sadb as Sadb).dump) !== 'function') throw typeError('sadb', 'a Sadb (openSadb(), new UserlandSadb())', sadb);
  ev = checkMappingEvent(ev);
  const protocol = ev.sa.protocol ?? 'esp';
  const all: SecurityAssociation[] = [];
  for await (const sa of sadb.dump(protocol)) all.push(sa);
  const inbound = all.find((sa) => sa.spi === ev.sa.spi && ev.sa.dst !== '' && sameAddress(sa.dst, ev.sa.dst) && sa.natt);
  if (!inbound) throw new NattError('ERR_NATT_NO_SA', `the SA of the mapping change (SPI ${ev.sa.spi} to ${ev.sa.dst || 'an unknown destination'}) is not in the database`);
  const moved = !sameAddress(ev.old.address, ev.new.address);
  const twins = all.filter((sa) => sa !== inbound && sa.natt && sameAddress(sa.dst, ev.old.address) && sa.natt.dport === ev.old.port);
  // The inbound SA: from the new address and port.
  const inNew: SecurityAssociation = { ...inbound, natt: { ...inbound.natt!, sport: ev.new.port } };
  if (moved) {
    inNew.src = ev.new.address;
    await sadb.delete({ src: inbound.src, dst: inbound.dst, spi: inbound.spi, protocol });
    try {
      await sadb.add(inNew);
    } catch (e) {
      // Not lost: the SA goes back as it was (its id allows one SPI per destination, so it had to go first).
      await sadb.add(inbound).catch(() => undefined);
      throw e;
    }
  } else {
    await sadb.update(inNew);
  }
  // Its outbound twins: to the new address and port.
  const outNew: SecurityAssociation[] = [];
  for (const o of twins) {
    const n: SecurityAssociation = { ...o, natt: { ...o.natt!, dport: ev.new.port } };
    if (moved) {
      n.dst = ev.new.address;
      await sadb.add(n);
      await sadb.delete({ src: o.src, dst: o.dst, spi: o.spi, protocol: o.protocol ?? protocol });
    } else {
      await sadb.update(n);
    }
    outNew.push(n);
  }
  return { inbound: inNew, outbound: outNew };
}

/**
 * The whole rule for a kernel backend's mapping report: held back when it is a repeat; in 'follow' mode the SAs are
 * re-pointed first. Resolves with the event to emit (`followed` set), and the error when following failed; or null
 * when the report was a repeat. Never rejects. `emit` is called with the same result: synchronously in 'notify'
 * mode (the event keeps its place among the kernel's messages), after the kernel calls in 'follow' mode.
 */
export function handleMapping(
  sadb: Sadb,
  ev: NewMappingEvent,
  mode: MappingMode,
  gate: MappingGate,
  emit?: (r: { ev: NewMappingEvent; error?: Error }) => void,
): Promise<{ ev: NewMappingEvent; error?: Error } | null> {
  if (!gate.admit(ev)) return Promise.resolve(null);
  if (mode === 'notify') {
    const r = { ev: { ...ev, followed: false } };
    emit?.(r);
    return Promise.resolve(r);
  }
  return follow(sadb, ev, gate).then((r) => {
    emit?.(r);
    return r;
  });
}

async function follow(sadb: Sadb, ev: NewMappingEvent, gate: MappingGate): Promise<{ ev: NewMappingEvent; error?: Error }> {
  gate.busy(ev);
  try {
    await followMapping(sadb, ev);
    return { ev: { ...ev, followed: true } };
  } catch (e) {
    return { ev: { ...ev, followed: false }, error: e instanceof Error ? e : new Error(String(e)) };
  } finally {
    gate.done(ev);
  }
}
