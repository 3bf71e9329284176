// `natt tunnel up --config FILE`: the tunnel daemon in the foreground, systemd style; SIGTERM/SIGINT take it down.

import * as fs from 'node:fs';
import { parseDaemonConfig } from '../daemon/config';
import { runDaemon, type RunningDaemon } from '../daemon/daemon';
import { UsageError, runEntry, type Command, type Group, type Io } from './args';
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
    const sig = await (io.stopSignal ?? untilSignal());
    log(`${sig}: stopping`);
    await d.stop();
    return 0;
  },
};

/** `natt tunnel`: its subcommands (down and status plug in here, one entry each). */
export const tunnel: Group = {
  name: 'tunnel',
  synopsis: 'up --config FILE',
  summary: 'the tunnel daemon: a TUN, a NAT-T socket and userland ESP (natt tunnel --help)',
  description: 'The natt tunnel daemon: TUN ⇄ policy ⇄ ESP ⇄ NAT-T socket.',
  commands: [tunnelUp],
};

/** Run `natt tunnel <argv>` (the arguments after `tunnel`: `up --config FILE`); resolves with the exit code, never rejects. */
export async function tunnelCommand(argv: string[], io: TunnelIo): Promise<number> {
  return runEntry(tunnel, argv, io);
}
