// `natt tunnel up --config FILE`: the tunnel daemon in the foreground, systemd style; SIGTERM/SIGINT take it down.

import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDaemonConfig } from '../daemon/config';
import { runDaemon, type RunningDaemon } from '../daemon/daemon';

interface Io {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
  /** Resolves when the daemon should stop (default: the first SIGTERM or SIGINT). */
  stopSignal?: Promise<string>;
  /** Called once the datapath is up (tests). */
  onUp?: (d: RunningDaemon) => void;
}

export const TUNNEL_USAGE = `Usage: natt tunnel up --config FILE

  up --config FILE   run the tunnel daemon in the foreground: a TUN device, a NAT-T socket and the userland ESP
                     engine, configured from FILE (JSON: tun, listen, sas, policies; keys as hex); logs one line
                     per event on stdout; SIGTERM or SIGINT remove the routes and the TUN and exit 0

Exit codes: 0 stopped cleanly, 1 could not start or failed, 2 usage.
`;

function signals(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => (): void => {
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
      resolve(sig);
    };
    const term = on('SIGTERM');
    const int = on('SIGINT');
    process.once('SIGTERM', term);
    process.once('SIGINT', int);
  });
}

/** Run `natt tunnel <argv>`; resolves with the exit code. */
export async function tunnelCommand(argv: string[], io: Io): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    io.err.write(`natt tunnel: ${(e as Error).message}\n\n${TUNNEL_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out.write(TUNNEL_USAGE);
    return 0;
  }
  if (positionals[0] !== 'up' || positionals.length !== 1 || !values.config) {
    io.err.write(`natt tunnel: ${positionals[0] && positionals[0] !== 'up' ? `unknown subcommand ${positionals[0]}` : 'say `up --config FILE`'}\n\n${TUNNEL_USAGE}`);
    return 2;
  }
  const log = (line: string): void => void io.out.write(`${line}\n`);
  let config;
  try {
    config = parseDaemonConfig(fs.readFileSync(values.config, 'utf8'));
  } catch (e) {
    io.err.write(`natt tunnel: ${values.config}: ${(e as Error).message}\n`);
    return 1;
  }
  let d: RunningDaemon;
  try {
    d = await runDaemon(config, log);
  } catch (e) {
    io.err.write(`natt tunnel: could not start: ${(e as Error).message}\n`);
    return 1;
  }
  io.onUp?.(d);
  const sig = await (io.stopSignal ?? signals());
  log(`${sig}: stopping`);
  await d.stop();
  return 0;
}
