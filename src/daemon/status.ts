// What `natt tunnel status` shows: the daemon's TUN, socket, SAs (identity, peer, counters; never keys), policies and counters, as JSON.

import type { ControlServerStats } from '../control/server';
import type { NattSocketOffload, NattSocketStats } from '../natt/socket';
import type { TunOffload } from '../tun';
import type { LifetimeCurrent, SaState, SecurityPolicy } from '../sadb/types';
import type { TunnelStats } from '../tunnel';
import type { UserlandSadb } from '../userland/sadb';
import type { DaemonConfig } from './config';

/** One SA as the status shows it: who, where, how and how much; no key, ever. */
export interface DaemonSaStatus {
  src: string;
  dst: string;
  spi: number;
  protocol: string;
  mode: string;
  reqid?: number;
  /** From the policies (the SA a template names) or the listen address; absent when neither says. */
  direction?: 'in' | 'out';
  state: SaState;
  encryption?: string;
  integrity?: string;
  /** The encapsulation and its ports (updated when the NAT's mapping moves). */
  natt?: { type: string; sport: number; dport: number };
  /** Where its datagrams go (out) or are expected from (in): follows the NAT's mapping. */
  peer: { address: string; port: number };
  current: LifetimeCurrent;
}

/** Tunnel and socket counters in JSON form (the TUN's last read error as its message). */
export type DaemonStats = Omit<TunnelStats, 'tun'> & {
  tun: Omit<TunnelStats['tun'], 'lastReadError'> & { lastReadError?: string };
  socket: NattSocketStats;
  control: ControlServerStats;
};

/** The answer of the daemon's `status` method. */
export interface DaemonStatus {
  pid: number;
  /** ISO time the tunnel came up, and seconds since. */
  startedAt: string;
  uptimeSeconds: number;
  tun: { name: string; index: number; mtu: number; addresses: string[]; routes: DaemonConfig['tun']['routes'] };
  listen: { family: 4 | 6; address: string; port: number };
  outerMtu: number;
  keepaliveSeconds: number;
  /** The segmentation offloads on now (UDP GSO/GRO on the socket, TSO/USO/GRO on the TUN), and why one is off. */
  offload: { socket: NattSocketOffload; tun: TunOffload };
  control: { path: string; mode: string; allowUids: number[] };
  /** SAs in the database, and the first of them (at most the request's maxSas, default 256). */
  saCount: number;
  sas: DaemonSaStatus[];
  /** Policies in the database, and the first of them (at most maxPolicies, default 256). */
  policyCount: number;
  policies: SecurityPolicy[];
  stats: DaemonStats;
}

/** The offloads as one line, for the daemon's log and `natt tunnel status`: each on, or off with why. */
export function formatOffloads(o: DaemonStatus['offload']): string {
  const on = (v: boolean, why: string): string => (v ? 'on' : `off${why ? ` (${why})` : ''}`);
  return (
    `udp gso ${on(o.socket.gso, o.socket.gsoReason)}, gro ${on(o.socket.gro, o.socket.groReason)}; ` +
    `tun tso ${on(o.tun.tso, o.tun.tsoReason)}, uso ${on(o.tun.uso, o.tun.usoReason)}, gro ${on(o.tun.gro, '')}`
  );
}

/** The tunnel's and socket's counters as JSON can carry them. */
export function jsonStats(s: TunnelStats & { socket: NattSocketStats; control: ControlServerStats }): DaemonStats {
  const { lastReadError, ...tun } = s.tun;
  return { ...s, tun: lastReadError ? { ...tun, lastReadError: lastReadError.message } : tun };
}

/** Which way an SA carries traffic, by the policies' templates (else by the listen address). */
function directionOf(src: string, dst: string, reqid: number | undefined, policies: SecurityPolicy[], listen: string): 'in' | 'out' | undefined {
  for (const p of policies) {
    if (p.direction === 'fwd') continue;
    for (const t of p.templates ?? []) {
      if (t.src === src && t.dst === dst && (t.reqid === undefined || t.reqid === 0 || reqid === undefined || t.reqid === reqid)) return p.direction;
    }
  }
  if (src === listen) return 'out';
  if (dst === listen) return 'in';
  return undefined;
}

/**
 * The first `limit` SAs of the daemon's database as the status shows them (built field by field: nothing keyed is
 * copied), and how many there are.
 */
export function saStatus(sadb: UserlandSadb, policies: SecurityPolicy[], listen: string, limit: number): { count: number; sas: DaemonSaStatus[] } {
  const out: DaemonSaStatus[] = [];
  let count = 0;
  for (const e of sadb.entries()) {
    if (count++ >= limit) continue;
    const sa = e.sa;
    const direction = directionOf(sa.src, sa.dst, sa.reqid, policies, listen);
    const peer = direction === 'in' ? e.inboundPeer : e.peer;
    const row: DaemonSaStatus = {
      src: sa.src,
      dst: sa.dst,
      spi: sa.spi,
      protocol: sa.protocol ?? 'esp',
      mode: sa.mode ?? 'transport',
      state: e.state,
      peer: { address: peer.address, port: peer.port },
      current: { ...e.lifetime.current },
    };
    if (sa.reqid !== undefined) row.reqid = sa.reqid;
    if (direction) row.direction = direction;
    if (sa.encryption) row.encryption = sa.encryption.algorithm;
    if (sa.integrity) row.integrity = sa.integrity.algorithm;
    if (sa.natt) row.natt = { type: sa.natt.type, sport: sa.natt.sport, dport: sa.natt.dport };
    out.push(row);
  }
  return { count, sas: out };
}
