// The natt tunnel daemon: a TUN, a NAT-T socket, a userland SA database and engine, logging one line per event.
//
// runDaemon(config) brings everything up in order (the TUN with its addresses and routes, the socket, the SAs and
// policies, the tunnel) and undoes what it did if any step fails; stop() takes it down in the reverse order (the
// tunnel, the socket, the TUN, whose close removes its routes and addresses). Logs never carry a key: SAs are
// logged by their identity, events by what they say (the database's events carry no keys).

import { createNattSocket, type NattSocket } from '../natt/socket';
import { createTun, type Tun } from '../tun';
import { createTunnel, type Tunnel, type TunnelStats } from '../tunnel';
import { UserlandSadb } from '../userland/sadb';
import { formatStats } from '../userland/counters';
import type { DaemonConfig } from './config';

/** One log line (the daemon's stdout; systemd style: no timestamps of its own, one event per line). */
export type DaemonLog = (line: string) => void;

export interface RunningDaemon {
  readonly config: DaemonConfig;
  readonly tun: Tun;
  readonly socket: NattSocket;
  readonly sadb: UserlandSadb;
  readonly tunnel: Tunnel;
  /** Counters of the tunnel, its engine and its TUN, and the socket's. */
  stats(): TunnelStats & { socket: ReturnType<NattSocket['stats']> };
  /** Take everything down (routes, addresses and the TUN removed). Idempotent. */
  stop(): Promise<void>;
}

const spi = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** Start the daemon's datapath from a checked configuration (parseDaemonConfig). */
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
  try {
    const tun = await createTun({ name: config.tun.name, mtu: config.tun.mtu, addresses: config.tun.addresses, routes: config.tun.routes });
    undo.push(() => tun.close());
    log(`tun ${tun.name} up: mtu ${tun.mtu}, addresses ${config.tun.addresses.join(' ') || '-'}, routes ${config.tun.routes.map((r) => r.dst).join(' ') || '-'}`);
    const socket = await createNattSocket({ family: config.listen.family, address: config.listen.address, port: config.listen.port, backend: 'userland' });
    undo.push(() => new Promise<void>((res) => socket.close(() => res())));
    const at = socket.address();
    log(`listening on ${at.address}:${at.port} (NAT-T, userland ESP${socket.zeroChecksum ? ', UDP checksum 0' : ''})`);
    const b = socket.buffers;
    log(`socket buffers: receive ${b.receive} bytes, send ${b.send} bytes (${b.reason})`);
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
    sadb.on('expire', (e) => log(`sa expired (${e.kind}): ${e.sa.src} -> ${e.sa.dst} spi ${spi(e.sa.spi)}`));
    sadb.on('acquire', (e) => log(`acquire: no SA for ${e.src} -> ${e.dst} (policy ${e.policy?.id ?? '?'})`));
    sadb.on('add', (sa) => log(`sa installed: ${sa.src} -> ${sa.dst} spi ${spi(sa.spi)}`));
    sadb.on('delete', (id) => log(`sa deleted: ${id.src} -> ${id.dst} spi ${spi(id.spi)}`));
    const tunnel = createTunnel({ tun, socket, sadb, outerMtu: config.outerMtu, keepaliveSeconds: config.keepaliveSeconds });
    undo.push(() => tunnel.close());
    tunnel.on('newMapping', (m) =>
      log(`nat mapping changed: spi ${spi(m.sa.spi)} peer ${m.old.address}:${m.old.port} -> ${m.new.address}:${m.new.port}`),
    );
    tunnel.on('error', (e) => log(`error: ${e.message}`));
    socket.on('error', (e) => log(`socket error: ${e.message}`));
    tun.on('error', (e) => log(`tun error: ${e.message}`));
    const paths = [...new Set([...sadb.entries()].map((e) => e.transform?.cipherPath).filter((x) => x))].join(', ') || '-';
    log(`tunnel up: ${config.sas.length} SAs, ${config.policies.length} policies, outer MTU ${config.outerMtu}; cipher ${paths}, batched receive ${tunnel.batchedReceive ? 'yes' : 'no'}`);
    let stopping: Promise<void> | null = null;
    return {
      config,
      tun,
      socket,
      sadb,
      tunnel,
      stats: () => ({ ...tunnel.stats(), socket: socket.stats() }),
      stop: () => {
        stopping ??= (async () => {
          const s = tunnel.stats();
          await rollback();
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
        })();
        return stopping;
      },
    };
  } catch (e) {
    await rollback();
    throw e;
  }
}
