// The userland engine's drop and error counters, named as Linux names them in /proc/net/xfrm_stat (without "Xfrm").

import { typeError } from '../errors';
import { fieldName, intOption, readingCallerValue } from '../core/options';

/** Counter names, in /proc/net/xfrm_stat order. Each is a reason a packet was dropped (or an error seen). Frozen. */
export const XFRM_STAT_NAMES = Object.freeze([
  'InError', // inbound: anything else (e.g. a malformed inner packet the engine cannot hand up)
  'InBufferError',
  'InHdrError', // inbound: datagram too short for an ESP header
  'InNoStates', // inbound: no SA for the SPI
  'InStateProtoError', // inbound: ICV failed, bad padding, or the SA's transform refused the packet
  'InStateModeError', // inbound: the decrypted payload does not fit the SA's mode (tunnel: not an IP packet)
  'InStateSeqError', // inbound: replayed or too old for the anti-replay window
  'InStateExpired', // inbound: the SA hit its hard lifetime (or is larval/dead)
  'InStateMismatch', // inbound: the inner packet is outside the SA's selector
  'InStateInvalid',
  'InTmplMismatch', // inbound: the policy's template does not match the SA that carried the packet
  'InNoPols', // inbound: a tunnel-mode packet with no inbound policy
  'InPolBlock', // inbound: the inbound policy says discard
  'InPolError',
  'OutError', // outbound: the socket refused the datagram
  'OutBundleGenError',
  'OutBundleCheckError',
  'OutNoStates', // outbound: a policy requires IPsec but there is no SA (an 'acquire' was raised)
  'OutStateProtoError', // outbound: the transform refused to seal (e.g. sequence numbers exhausted)
  'OutStateModeError', // outbound: the packet cannot be carried in the SA's mode / family
  'OutStateSeqError', // outbound: the SA's sequence number space is exhausted
  'OutStateExpired', // outbound: the SA hit its hard lifetime
  'OutPolBlock', // outbound: the policy says discard
  'OutPolDead',
  'OutPolError', // outbound: the packet is not a parseable IP packet
  'FwdHdrError',
  'OutStateInvalid',
  'AcquireError',
] as const);

/** One counter name of the userland engine (a /proc/net/xfrm_stat name without "Xfrm"). */
export type UserlandCounterName = (typeof XFRM_STAT_NAMES)[number];

/** The userland engine's counters: every name present, 0 when nothing happened. */
export type UserlandCounters = Record<UserlandCounterName, number>;

/** @deprecated the old name of UserlandCounterName. */
export type XfrmStatName = UserlandCounterName;
/** @deprecated the old name of UserlandCounters (these are the userland engine's counters, named as XFRM names them). */
export type XfrmStats = UserlandCounters;

/** Counters as plain numeric fields (fast increments on the hot path). */
export function newStats(): UserlandCounters {
  const s = {} as UserlandCounters;
  for (const n of XFRM_STAT_NAMES) s[n] = 0;
  return s;
}

/** Add `b` into `a` (a source that gives no counters, or a name that is not a number, adds nothing). */
export function addStats(a: UserlandCounters, b: UserlandCounters): void {
  if (b === null || typeof b !== 'object') return;
  for (const n of XFRM_STAT_NAMES) {
    const v = b[n];
    if (typeof v === 'number') a[n] += v;
  }
}

/** Sum of the inbound drop counters (every `In*` name). */
export function inboundDrops(s: UserlandCounters): number {
  let t = 0;
  for (const n of XFRM_STAT_NAMES) if (n.startsWith('In')) t += s[n];
  return t;
}

/** Format like /proc/net/xfrm_stat: `XfrmInError             0` per line (a counter not given is 0). */
export function formatStats(s: UserlandCounters): string {
  if (s === undefined) throw typeError('stats', 'the counters of stats()', s);
  if (s === null || typeof s !== 'object') throw typeError('stats', 'the counters of stats()', s);
  // Own properties only; names beyond XFRM_STAT_NAMES (a newer kernel's /proc/net/xfrm_stat has more) are not printed.
  const own = (n: string): unknown => readingCallerValue('stats', () => (Object.hasOwn(s, n) ? (s as unknown as Record<string, unknown>)[n] : undefined));
  return XFRM_STAT_NAMES.map((n) => `Xfrm${n}`.padEnd(32) + String(intOption(own(n), fieldName('stats', n), 0, Number.MAX_SAFE_INTEGER, 0))).join('\n');
}
