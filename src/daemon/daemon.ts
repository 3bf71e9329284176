// The natt tunnel daemon: a TUN, a NAT-T socket, a userland SA database and engine, its control socket, one log line per event.
//
// runDaemon(config) brings everything up in order (the SA database with the configured SAs and policies, the control
// socket, the NAT-T socket, the TUN with its addresses and routes, the tunnel) and undoes what it did if any step
// fails; stop() takes it down in the reverse order: the tunnel, the TUN (whose close removes its routes and
// addresses), the socket, then the control socket (its clients see the datapath already gone, and get "shutting
// down"), then the database. Logs never carry a key: SAs are logged by their identity, events by what they say (the
// database's events carry no keys), control clients by uid and pid.

import { intOption, readOptions } from '../core/options';
import { serveControl, type ControlServer } from '../control/server';
import type { PeerCred } from '../control/peer';
import { createNattSocket, type NattSocket } from '../natt/socket';
import { createTun, type Tun } from '../tun';
import { createTunnel, type Tunnel } from '../tunnel';
import { UserlandSadb } from '../userland/sadb';
import { formatStats } from '../userland/counters';
import type { SecurityPolicy } from '../sadb/types';
import type { DaemonConfig } from './config';
import { formatOffloads, jsonStats, saStatus, type DaemonStats, type DaemonStatus } from './status';

/** One log line (the daemon's stdout; systemd style: no timestamps of its own, one event per line). */
export type DaemonLog = (line: string) => void;

/** The daemon's own control methods, and its own events (besides the Sadb methods and events every control socket serves). */
export const DAEMON_METHODS = ['status', 'stats', 'down'] as const;
export const DAEMON_EVENTS = ['tunnelUp', 'tunnelDown'] as const;

export interface RunningDaemon {
  readonly config: DaemonConfig;
  readonly tun: Tun;
  readonly socket: NattSocket;
  readonly sadb: UserlandSadb;
  readonly tunnel: Tunnel;
  readonly control: ControlServer;
  /** Counters of the tunnel, its engine and its TUN, the socket's and the control socket's (JSON). */
  stats(): DaemonStats;
  /** What `natt tunnel status` shows (JSON; no keys): at most `maxSas` SAs and `maxPolicies` policies (default 256 each). */
  status(params?: { maxSas: number; maxPolicies: number }): Promise<DaemonStatus>;
  /**
   * Resolves with a reason (`down asked by uid 0 (pid 1234)`) when a control client asked the daemon to stop; the
   * owner of the daemon then calls stop(), as on SIGTERM (`natt tunnel up` does).
   */
  readonly stopRequested: Promise<string>;
  /** Take everything down (routes, addresses and the TUN removed, the control socket closed). Idempotent. */
  stop(): Promise<void>;
}

/** How many SAs and policies a status lists by default (the rest are counted: a dump lists them all). */
const STATUS_DEFAULTS = { maxSas: 256, maxPolicies: 256 };

/** The status method's params: `{ maxSas?, maxPolicies? }`, each 0..1000 (so that the answer fits in a frame). */
function readStatusParams(p: unknown): { maxSas: number; maxPolicies: number } {
  const o = readOptions(p, ['maxSas', 'maxPolicies'] as const, 'params');
  return {
    maxSas: intOption(o.maxSas, 'params.maxSas', 0, 1000, STATUS_DEFAULTS.maxSas),
    maxPolicies: intOption(o.maxPolicies, 'params.maxPolicies', 0, 1000, STATUS_DEFAULTS.maxPolicies),
  };
}

const spi = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
const who = (p: PeerCred): string => `uid ${p.uid}${p.pid >= 0 ? ` (pid ${p.pid})` : ''}`;

/** Start the daemon from a checked configuration (parseDaemonConfig). */
export async function runDaemon(config: DaemonConfig, log: DaemonLog = () => {}): Promise<RunningDaemon> {
  const undo: Array<() => Promise<void> | void> = [];
  const rollback = async (): Promise<void> => {
    for (const u of undo.splice(0).reverse()) {
      try {
        await u();
      } catch {
        /* best effort: keep undoing */
      }
    }
  };
  let askStop: (reason: string) => void = () => {};
  const stopRequested = new Promise<string>((resolve) => (askStop = resolve));
  // Filled in as the parts come up; the control methods are only called once the socket listens.
  const parts: { tun?: Tun; socket?: NattSocket; tunnel?: Tunnel; control?: ControlServer; startedAt?: number } = {};
  try {
    const sadb = new UserlandSadb();
    undo.push(() => sadb.close());
    for (const sa of config.sas) {
      await sadb.add(sa);
      log(`sa added: ${sa.protocol ?? 'esp'} ${sa.src} -> ${sa.dst} spi ${spi(sa.spi)} ${sa.mode ?? 'transport'} ${sa.encryption?.algorithm ?? ''}`);
    }
    for (const p of config.policies) {
      const added = await sadb.spdAdd(p);
      log(`policy added: ${p.direction} ${p.selector.src} -> ${p.selector.dst} ${p.action} (id ${added.id})`);
    }

    const stats = (): DaemonStats => {
      const { tunnel, socket, control } = parts;
      if (!tunnel || !socket || !control) throw new Error('the daemon is still starting');
      return jsonStats({ ...tunnel.stats(), socket: socket.stats(), control: control.stats() });
    };
    const status = async (params: { maxSas: number; maxPolicies: number } = STATUS_DEFAULTS): Promise<DaemonStatus> => {
      const { tun, socket, control } = parts;
      const s = stats();
      const policies: SecurityPolicy[] = [];
      for await (const p of sadb.spdDump()) policies.push(p);
      const sas = saStatus(sadb, policies, config.listen.address, params.maxSas);
      const at = socket!.address();
      const startedAt = parts.startedAt ?? Date.now();
      return {
        pid: process.pid,
        startedAt: new Date(startedAt).toISOString(),
        uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
        tun: { name: tun!.name, index: tun!.index, mtu: tun!.mtu, addresses: [...config.tun.addresses], routes: config.tun.routes.map((r) => ({ ...r })) },
        listen: { family: config.listen.family, address: at.address, port: at.port },
        outerMtu: config.outerMtu,
        keepaliveSeconds: config.keepaliveSeconds,
        offload: { socket: socket!.offload, tun: tun!.offload },
        control: { path: control!.path, mode: `0${config.control.mode.toString(8)}`, allowUids: [...config.control.allowUids] },
        saCount: sas.count,
        sas: sas.sas,
        policyCount: policies.length,
        policies: policies.slice(0, params.maxPolicies),
        stats: s,
      };
    };

    const control = await serveControl(sadb, {
      path: config.control.path,
      mode: config.control.mode,
      allowUids: config.control.allowUids,
      revealKeys: config.control.revealKeys,
      methods: {
        status: { params: readStatusParams, handler: (p: { maxSas: number; maxPolicies: number }) => status(p) },
        stats: { handler: () => stats() },
        down: {
          handler: (_p, ctx) => {
            const reason = `down asked by ${who(ctx.peer)}`;
            log(`control: ${reason}`);
            askStop(reason);
            return { stopping: true, pid: process.pid, tun: config.tun.name };
          },
        },
      },
      events: [...DAEMON_EVENTS],
      log,
    });
    parts.control = control;
    undo.push(() => control.close());
    const datapathFrom = undo.length; // what comes after is the datapath, taken down first at stop()
    const uids = ['root', ...new Set([process.getuid?.() ?? 0, ...config.control.allowUids].filter((u) => u !== 0).map(String))];
    log(`control socket ${control.path} (mode 0${config.control.mode.toString(8)}, serves ${uids.join(', ')}${config.control.revealKeys ? '; gives keys to clients that ask: control.revealKeys' : ''})`);

    const off = config.offload;
    const socket = await createNattSocket({
      family: config.listen.family,
      address: config.listen.address,
      port: config.listen.port,
      backend: 'userland',
      gso: off.udpGso,
      gro: off.udpGro,
    });
    parts.socket = socket;
    undo.push(() => new Promise<void>((res) => socket.close(() => res())));
    const at = socket.address();
    log(`listening on ${at.address}:${at.port} (NAT-T, userland ESP${socket.zeroChecksum ? ', UDP checksum 0' : ''})`);
    const b = socket.buffers;
    log(`socket buffers: receive ${b.receive} bytes, send ${b.send} bytes (${b.reason})`);

    const tun = await createTun({
      name: config.tun.name,
      mtu: config.tun.mtu,
      addresses: config.tun.addresses,
      routes: config.tun.routes,
      offload: { tso: off.tunTso, uso: off.tunUso, gro: off.tunGro },
    });
    parts.tun = tun;
    undo.push(() => tun.close());
    log(`tun ${tun.name} up: mtu ${tun.mtu}, addresses ${config.tun.addresses.join(' ') || '-'}, routes ${config.tun.routes.map((r) => r.dst).join(' ') || '-'}`);
    log(`offloads: ${formatOffloads({ socket: socket.offload, tun: tun.offload })}`);

    sadb.on('expire', (e) => log(`sa expired (${e.kind}): ${e.sa.src} -> ${e.sa.dst} spi ${spi(e.sa.spi)}`));
    sadb.on('acquire', (e) => log(`acquire: no SA for ${e.src} -> ${e.dst} (policy ${e.policy?.id ?? '?'})`));
    sadb.on('add', (sa) => log(`sa installed: ${sa.src} -> ${sa.dst} spi ${spi(sa.spi)}`));
    sadb.on('delete', (id) => log(`sa deleted: ${id.src} -> ${id.dst} spi ${spi(id.spi)}`));
    const tunnel = createTunnel({ tun, socket, sadb, outerMtu: config.outerMtu, keepaliveSeconds: config.keepaliveSeconds });
    parts.tunnel = tunnel;
    undo.push(() => tunnel.close());
    // The database's own 'newMapping' reaches control subscribers as the Sadb event; the log gets a line.
    tunnel.on('newMapping', (m) =>
      log(`nat mapping changed: spi ${spi(m.sa.spi)} peer ${m.old.address}:${m.old.port} -> ${m.new.address}:${m.new.port}`),
    );
    tunnel.on('error', (e) => log(`error: ${e.message}`));
    socket.on('error', (e) => log(`socket error: ${e.message}`));
    tun.on('error', (e) => log(`tun error: ${e.message}`));
    parts.startedAt = Date.now();
    const paths = [...new Set([...sadb.entries()].map((e) => e.transform?.cipherPath).filter((x) => x))].join(', ') || '-';
    log(`tunnel up: ${config.sas.length} SAs, ${config.policies.length} policies, outer MTU ${config.outerMtu}; cipher ${paths}, batched receive ${tunnel.batchedReceive ? 'yes' : 'no'}`);
    control.publish('tunnelUp', { tun: tun.name, mtu: tun.mtu, pid: process.pid, listen: { address: at.address, port: at.port } });

    let stopping: Promise<void> | null = null;
    return {
      config,
      tun,
      socket,
      sadb,
      tunnel,
      control,
      stats,
      status,
      stopRequested,
      stop: () => {
        stopping ??= (async () => {
          const s = tunnel.stats();
          // The datapath first (tunnel, TUN and its routes, socket), so that a control client told "shutting down"
          // finds the TUN already gone; then the control socket, then the database.
          for (const u of undo.splice(datapathFrom).reverse()) {
            try {
              await u();
            } catch {
              /* best effort */
            }
          }
          log(`tunnel down: ${s.tunnel.fromTun} packets out of the tun, ${s.tunnel.toTun} into it`);
          const t = s.traffic;
          log(
            `traffic: esp in ${t.inPackets} packets ${t.inBytes} bytes, out ${t.outPackets} packets ${t.outBytes} bytes, ` +
              `${t.newMappings} nat mappings followed, ${t.keepalivesSent} keepalives sent`,
          );
          const moved = formatStats(s.engine)
            .split('\n')
            .filter((l) => !/\s0$/.test(l));
          if (moved.length) log(`drops: ${moved.map((l) => l.replace(/\s+/, '=')).join(' ')}`);
          const td = Object.entries(s.tun.drops).filter(([, n]) => n > 0);
          const so = socket.stats();
          log(
            `tun: in ${s.tun.packetsIn} out ${s.tun.packetsOut}, drops ${td.length ? td.map(([k, n]) => `${k}=${n}`).join(' ') : 'none'}; ` +
              `socket: esp in ${so.esp}, sent ${so.sentEsp}, send errors ${so.sendErrors}, deferred ${so.sendDeferred}, receive errors ${so.receiveErrors}`,
          );
          try {
            control.publish('tunnelDown', { tun: tun.name, pid: process.pid });
          } catch {
            /* nobody to tell */
          }
          await rollback(); // the control socket, then the database
        })();
        return stopping;
      },
    };
  } catch (e) {
    await rollback();
    throw e;
  }
}
