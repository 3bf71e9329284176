// `natt tunnel up|status|down`: the tunnel daemon in the foreground (systemd style), and asking a running one over its control socket.

import * as fs from 'node:fs';
import { DaemonSadb } from '../control/client';
import { longTimeout, type LongTimer } from '../core/timers';
import { controlPathFor } from '../control/protocol';
import { parseDaemonConfig } from '../daemon/config';
import { runDaemon, type RunningDaemon } from '../daemon/daemon';
import { formatOffloads, type DaemonStatus } from '../daemon/status';
import { UsageError, quotedArg, runEntry, type Command, type Group, type Io } from './args';
import { untilSignal } from './signals';

export interface TunnelIo extends Io {
  /** Resolves when the daemon should stop (default: the first SIGTERM or SIGINT). */
  stopSignal?: Promise<string>;
  /** Called once the datapath is up (tests). */
  onUp?: (d: RunningDaemon) => void;
}

const UP_OPTIONS = {
  config: { type: 'string', short: 'c' },
} as const;

export const TUNNEL_UP_USAGE = `Usage: natt tunnel up --config FILE

Run the tunnel daemon in the foreground: a TUN device, a NAT-T socket and the userland ESP engine, configured from
FILE (JSON: tun, listen, sas, policies; keys as hex); logs one line per event on stdout; SIGTERM or SIGINT remove the
routes and the TUN and exit 0.

  -c, --config FILE  the daemon's configuration
  -h, --help         show this help

Exit status: 0 stopped cleanly, 1 could not start or failed, 2 a usage error.
`;

/** `natt tunnel up`. */
export const tunnelUp: Command<typeof UP_OPTIONS, TunnelIo> = {
  name: 'up',
  synopsis: '--config FILE',
  summary: 'run the tunnel daemon in the foreground (SIGTERM/SIGINT take it down)',
  usage: TUNNEL_UP_USAGE,
  options: UP_OPTIONS,
  async run({ values }, io) {
    if (!values.config) throw new UsageError('--config FILE is required: the daemon\'s JSON configuration');
    const log = (line: string): void => void io.out.write(`${line}\n`);
    let config;
    try {
      config = parseDaemonConfig(fs.readFileSync(values.config, 'utf8'));
    } catch (e) {
      throw new Error(`${values.config}: ${(e as Error).message}`);
    }
    let d: RunningDaemon;
    try {
      d = await runDaemon(config, log);
    } catch (e) {
      throw new Error(`could not start: ${(e as Error).message}`);
    }
    io.onUp?.(d);
    const done = new AbortController(); // stopped by `down`: the signal listeners go
    const why = await Promise.race([io.stopSignal ?? untilSignal(done.signal), d.stopRequested]);
    done.abort();
    log(`${why}: stopping`);
    await d.stop();
    return 0;
  },
};

const CONTROL_OPTIONS = {
  name: { type: 'string', short: 'n' },
  control: { type: 'string' },
} as const;

const STATUS_OPTIONS = { ...CONTROL_OPTIONS, json: { type: 'boolean' } } as const;
const DOWN_OPTIONS = { ...CONTROL_OPTIONS, timeout: { type: 'string' } } as const;

const WHICH = `  -n, --name TUN     the daemon of this TUN: its control socket /run/natt/TUN.sock (default natt0)
      --control PATH the daemon's control socket (its config's control.path)`;

export const TUNNEL_STATUS_USAGE = `Usage: natt tunnel status [--name TUN | --control PATH] [--json]

Ask a running tunnel daemon (natt tunnel up) over its control socket what it is doing: its TUN, NAT-T socket, SAs
(peers, NAT-T ports, counters; never keys), policies, uptime and counters.

${WHICH}
      --json         print the daemon's answer as JSON
  -h, --help         show this help

Exit status: 0 the daemon answered, 1 no daemon there (or it refused this user), 2 a usage error.
`;

export const TUNNEL_DOWN_USAGE = `Usage: natt tunnel down [--name TUN | --control PATH] [--timeout SECONDS]

Stop a running tunnel daemon as SIGTERM does: its routes, addresses and TUN are removed, its control socket closed,
and \`natt tunnel up\` exits 0. Returns once the daemon has closed its control socket (the TUN is gone by then).

${WHICH}
      --timeout SECONDS  how long to wait for the daemon to finish stopping (default 30)
  -h, --help         show this help

Exit status: 0 the daemon stopped, 1 no daemon there, it refused this user, or it did not stop in time, 2 a usage error.
`;

/** The control socket a status/down command talks to: --control PATH, --name TUN, or the default daemon's. */
function controlPath(values: { name?: string; control?: string }): string {
  if (values.name !== undefined && values.control !== undefined) throw new UsageError('--name and --control name the same thing: give one');
  if (values.control !== undefined) {
    if (values.control === '') throw new UsageError('--control needs a path');
    return values.control;
  }
  const name = values.name ?? 'natt0';
  if (Buffer.byteLength(name) > 15 || !/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new UsageError(`--name ${quotedArg(name)}: an interface name of at most 15 letters, digits, _ . -`);
  }
  return controlPathFor(name);
}

/** Connect to the daemon at `path`, with the one message a newcomer needs when nothing listens there. */
async function connect(path: string, client: string, timeout = 5000): Promise<DaemonSadb> {
  try {
    return await DaemonSadb.open({ path, client, timeout });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') {
      throw new Error(`no natt daemon at ${path}: start one with natt tunnel up --config FILE`);
    }
    throw e;
  }
}

const spiHex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function duration(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d && `${d}d`, (d || h) && `${h}h`, (d || h || m) && `${m}m`, `${s % 60}s`].filter(Boolean);
  return parts.join('');
}

/** Counters that moved, as `name=value` (none: '-'). */
function moved(o: Record<string, unknown>): string {
  const out = Object.entries(o)
    .filter(([, v]) => typeof v === 'number' && v !== 0)
    .map(([k, v]) => `${k}=${v}`);
  return out.join(' ') || '-';
}

/** The human form of the daemon's status. */
export function formatStatus(st: DaemonStatus): string {
  const l: string[] = [];
  const s = st.stats;
  l.push(`natt tunnel daemon, pid ${st.pid}, up ${duration(st.uptimeSeconds)} (since ${st.startedAt})`);
  l.push(
    `tun ${st.tun.name}: mtu ${st.tun.mtu}, addresses ${st.tun.addresses.join(' ') || '-'}, routes ${st.tun.routes.map((r) => r.dst).join(' ') || '-'}`,
  );
  l.push(`listening on ${st.listen.address}:${st.listen.port} (NAT-T, userland ESP), outer MTU ${st.outerMtu}, keepalives every ${st.keepaliveSeconds} s`);
  const more = (shown: number, total: number): string => (shown < total ? `, the first ${shown} shown: a dump lists them all` : '');
  l.push(`SAs (${st.saCount}${more(st.sas.length, st.saCount)}):`);
  for (const sa of st.sas) {
    const alg = [sa.encryption, sa.integrity].filter(Boolean).join('+') || '-';
    const natt = sa.natt ? ` ${sa.natt.type} ${sa.natt.sport}->${sa.natt.dport}` : '';
    l.push(
      `  ${(sa.direction ?? '?').padEnd(3)} ${sa.protocol} ${sa.src} -> ${sa.dst} spi ${spiHex(sa.spi)} ${sa.mode}${sa.reqid ? ` reqid ${sa.reqid}` : ''} ${alg}${natt}` +
        ` peer ${sa.peer.address}:${sa.peer.port} ${sa.state}: ${sa.current.packets} packets ${sa.current.bytes} bytes`,
    );
  }
  l.push(`policies (${st.policyCount}${more(st.policies.length, st.policyCount)}):`);
  for (const p of st.policies) {
    const t = (p.templates ?? []).map((x) => ` ${x.protocol} ${x.mode}${x.src ? ` ${x.src} -> ${x.dst}` : ''}${x.reqid ? ` reqid ${x.reqid}` : ''}`).join(',');
    l.push(`  ${p.direction.padEnd(3)} ${p.selector.src} -> ${p.selector.dst} ${p.action}${t}${p.id !== undefined ? ` (id ${p.id})` : ''}`);
  }
  const t = s.traffic;
  l.push(
    `traffic: esp in ${t.inPackets} packets ${t.inBytes} bytes, out ${t.outPackets} packets ${t.outBytes} bytes, ` +
      `${t.newMappings} nat mappings followed, ${t.keepalivesSent} keepalives sent, ${t.tooBig} too big`,
  );
  l.push(`tunnel: ${s.tunnel.fromTun} packets out of the tun, ${s.tunnel.toTun} into it; ${moved({ ...s.tunnel, fromTun: 0, toTun: 0 })}`);
  l.push(`engine drops: ${moved(s.engine as unknown as Record<string, unknown>)}`);
  l.push(`socket: esp ${s.socket.esp} in, ${s.socket.sentEsp} out; drops ${moved(s.socket.dropped)}; send errors ${s.socket.sendErrors}`);
  const of = st.offload;
  const so = s.socket.offload;
  const to = s.tun.offload;
  if (of) {
    l.push(`offloads: ${formatOffloads(of)}`);
    l.push(
      `offload counters: gso ${so.gsoSends} sends of ${so.gsoSegments} datagrams, gro ${so.groReceives} receives of ${so.groSegments}; ` +
        `tun ${to.superpackets} superpackets cut into ${to.segments}, ${to.coalescedWrites} coalesced writes of ${to.coalescedPackets} packets` +
        `${Object.keys(to.drops).length ? `, drops ${moved(to.drops)}` : ''}`,
    );
  }
  const c = s.control;
  l.push(
    `control ${st.control.path} (mode ${st.control.mode}): ${c.clients} clients now, ${c.accepted} accepted, ${c.requests} requests; ` +
      `refused: peer ${c.refusedPeer}, full ${c.refusedFull}, unchecked ${c.refusedUnchecked}; malformed ${c.malformed}, oversized ${c.oversized}, ` +
      `aborted ${c.aborted}, slow ${c.slow}, evicted ${c.evicted}`,
  );
  return `${l.join('\n')}\n`;
}

/** `natt tunnel status`. */
export const tunnelStatus: Command<typeof STATUS_OPTIONS> = {
  name: 'status',
  synopsis: '[--name TUN | --control PATH] [--json]',
  summary: "a running daemon's TUN, SAs, policies and counters (no keys)",
  usage: TUNNEL_STATUS_USAGE,
  options: STATUS_OPTIONS,
  async run({ values }, io) {
    const path = controlPath(values);
    const d = await connect(path, 'natt tunnel status');
    try {
      const st = (await d.call('status')) as DaemonStatus;
      io.out.write(values.json ? `${JSON.stringify(st, null, 2)}\n` : formatStatus(st));
    } finally {
      await d.close();
    }
    return 0;
  },
};

/** `natt tunnel down`. */
export const tunnelDown: Command<typeof DOWN_OPTIONS> = {
  name: 'down',
  synopsis: '[--name TUN | --control PATH]',
  summary: 'stop a running daemon (as SIGTERM does: routes and the TUN removed)',
  usage: TUNNEL_DOWN_USAGE,
  options: DOWN_OPTIONS,
  async run({ values }, io) {
    const path = controlPath(values);
    let seconds = 30;
    if (values.timeout !== undefined) {
      seconds = Number(values.timeout);
      if (!/^\d+(\.\d+)?$/.test(values.timeout) || !(seconds > 0) || seconds > 86400) {
        throw new UsageError(`--timeout ${quotedArg(values.timeout)}: a number of seconds, more than 0 and at most 86400`);
      }
    }
    const d = await connect(path, 'natt tunnel down');
    const closed = new Promise<Error | undefined>((resolve) => d.once('close', resolve));
    d.ref(); // wait for the daemon to close the connection (the datapath is down by then)
    let answer: { pid?: number; tun?: string };
    try {
      answer = (await d.call('down')) as typeof answer;
    } catch (e) {
      await d.close();
      throw e;
    }
    let timer: LongTimer | undefined;
    const late = new Promise<'late'>((resolve) => (timer = longTimeout(() => resolve('late'), seconds * 1000)));
    const r = await Promise.race([closed, late]);
    timer?.clear();
    if (r === 'late') {
      await d.close();
      throw new Error(`the daemon at ${path} (pid ${answer.pid}) was asked to stop but still serves after ${seconds} s`);
    }
    io.out.write(`natt daemon pid ${answer.pid} (tun ${answer.tun}) stopped: its TUN and routes are removed\n`);
    return 0;
  },
};

/** `natt tunnel`: its subcommands, one entry each. */
export const tunnel: Group = {
  name: 'tunnel',
  synopsis: 'up|status|down',
  summary: 'the tunnel daemon: a TUN, a NAT-T socket and userland ESP (natt tunnel --help)',
  description: 'The natt tunnel daemon: TUN ⇄ policy ⇄ ESP ⇄ NAT-T socket.',
  commands: [tunnelUp, tunnelStatus, tunnelDown],
};

/** Run `natt tunnel <argv>` (the arguments after `tunnel`: `up --config FILE`); resolves with the exit code, never rejects. */
export async function tunnelCommand(argv: string[], io: TunnelIo): Promise<number> {
  return runEntry(tunnel, argv, io);
}
