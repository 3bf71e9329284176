// The `natt` command line: the table of commands (probe, setkey, monitor, stats, capture, tunnel), `natt --help`, `natt help <command>`, `--version`.

import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, commandList, runCli, type Entry, type Out } from './args';
import { probeCommand, version } from './probe';
import { setkey } from './setkey';
import { tunnel } from './tunnel';
import { monitorCommand } from './monitor';
import { statsCommand } from './stats';
import { captureCommand } from './capture';

export { formatProbe } from './probe';

/**
 * Every `natt` command, in the order `natt --help` lists them. To add one (`natt monitor`, say):
 *   1. write src/cli/monitor.ts, opening with its one-line role comment, exporting
 *      `export const monitorCommand: Command<typeof OPTIONS> = { name: 'monitor', synopsis, summary, usage, options, run }`
 *      (src/cli/args.ts: the option table is parseArgs'; --help/-h is added; `run` returns or resolves with the exit
 *      status, throws `UsageError` for a usage problem (exit 2) and any other error for a failure (exit 1));
 *   2. add `monitorCommand` to this table.
 * A command with subcommands is a `Group` — `{ name: 'tunnel', synopsis, summary, description, commands: [up, ...] }`
 * (src/cli/tunnel.ts) — in one module, and one row here; `natt tunnel down` is one more entry in its `commands`. Everything else (the help
 * listing, `natt help tunnel up`, --help, usage errors, exit codes) follows; test/cli/cli.test.ts checks every
 * command in this table for --help, `natt help`, a bad flag and an option table that its usage text describes.
 */
export const COMMANDS: readonly Entry[] = [probeCommand, setkey, monitorCommand, statsCommand, captureCommand, tunnel];

/** `natt --help`. */
export const USAGE = `Usage: natt <command> [options]

Commands:
${commandList(COMMANDS)}

Options:
  -h, --help       show this help (natt <command> --help, natt help <command>: a command's help)
  -v, --version    print the version

Exit status: ${EXIT_OK} done, ${EXIT_FAILURE} a failure (the message says what to do), ${EXIT_USAGE} a usage error (unknown command or
option, bad option value: the usage follows on stderr).
`;

/**
 * Run the CLI with arguments (without node and script); returns the exit code (a promise of it for commands whose
 * work is asynchronous, such as `setkey`; never rejects).
 */
export function main(argv: string[], out: Out = process.stdout, err: Out = process.stderr): number | Promise<number> {
  return runCli(COMMANDS, argv, { out, err }, { usage: USAGE, version });
}
