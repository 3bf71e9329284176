// The one argument parser of the `natt` command: command tables, node:util parseArgs, --help everywhere, usage errors → exit 2.
//
// A command is a module exporting a `Command` (its option table, usage text and `run`); a `Group` is a word with
// commands under it (`natt tunnel up|down|status`). `runCli` walks the table in src/cli/main.ts. What every command
// gets from here, so that none of them parses or reports by itself:
//   - `--help`/`-h` (added to each option table), `natt help <command> [<subcommand>]`: the usage on stdout, exit 0;
//   - an unknown option, a missing option value, a stray argument, an unknown (sub)command, or a `UsageError` thrown
//     by `run` (sync or async): `natt <command>: <what>`, a blank line and the usage on stderr, exit 2;
//   - any other error thrown by `run`: `natt <command>: <message>` on stderr, exit 1 (natt's errors say what to do);
//   - arguments echoed in errors are shown only when they cannot be key material (`shownArg`).

import { parseArgs } from 'node:util';

/** Where a command writes (process.stdout / process.stderr, or a string collector in tests). */
export interface Out {
  write(s: string): unknown;
}

export interface Io {
  out: Out;
  err: Out;
}

/** Exit statuses of every natt command. */
export const EXIT_OK = 0;
/** A runtime failure: the host, the kernel, a file, a database said no; the message says what to do. */
export const EXIT_FAILURE = 1;
/** A usage error: unknown command or option, bad or missing option value; the usage follows on stderr. */
export const EXIT_USAGE = 2;

/** One option, as node:util parseArgs takes it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}

export type OptionTable = Readonly<Record<string, Readonly<OptionSpec>>>;

/** The parsed values of an option table (absent options are undefined). */
export type ValuesOf<O extends OptionTable> = {
  -readonly [K in keyof O]?: O[K]['type'] extends 'string'
    ? O[K]['multiple'] extends true
      ? string[]
      : string
    : O[K]['multiple'] extends true
      ? boolean[]
      : boolean;
};

export interface Parsed<O extends OptionTable> {
  values: ValuesOf<O>;
  positionals: string[];
}

/** A usage problem found by a command after parsing (two options that cannot go together, say): exit 2 with the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A command: `natt <name> [options]` (or `natt <group> <name> ...`). */
export interface Command<O extends OptionTable = OptionTable, I extends Io = Io> {
  /** The word that selects it. */
  name: string;
  /** What follows the name in `natt --help`, e.g. '[--json]'. */
  synopsis: string;
  /** What it does, for `natt --help` (may span lines). */
  summary: string;
  /** The full help: printed for --help and after a usage error; starts with 'Usage: natt ...'. */
  usage: string;
  /** Its options (parseArgs' table); `help` (-h) is added unless the table has it or uses -h for something else. */
  options: O;
  /** Whether it takes positional arguments (default: no; a stray one is a usage error). */
  positionals?: boolean;
  /** Flags that belong to this command when given to `natt` itself (setkey's -D, -f ...): the error names the command. */
  ownFlags?: RegExp;
  /** Do it; returns (or resolves with) the exit status. Throw UsageError for a usage problem, anything else for a failure. */
  run(args: Parsed<O>, io: I): number | Promise<number>;
}

/** A word with commands under it: `natt tunnel up|down|status`. */
export interface Group {
  name: string;
  synopsis: string;
  summary: string;
  /** The help above the list of its commands (the list is generated from `commands`). */
  description: string;
  commands: readonly Entry[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Entry = Command<any, any> | Group;

const isGroup = (e: Entry): e is Group => 'commands' in e;

/**
 * An argument as it may appear in an error message: itself when it is short plain text, else only its length (a
 * mistyped key must not be echoed). Plain: at most 64 characters of letters, digits and `_ . : / @ % + , = -`,
 * with no run of 16 or more letters and digits (hex or ASCII key material).
 */
export function shownArg(s: string): string {
  if (s.length <= 64 && /^[\w.:/@%+,=-]*$/.test(s) && !/[A-Za-z0-9]{16}/.test(s)) return s;
  return `<an argument of ${s.length} characters>`;
}

/** `shownArg` in double quotes when shown. */
export function quotedArg(s: string): string {
  const shown = shownArg(s);
  return shown === s ? JSON.stringify(s) : shown;
}

/** The option table given to parseArgs: the command's, plus --help (-h when free). */
function withHelp(options: OptionTable): OptionTable {
  if ('help' in options) return options;
  const hTaken = Object.values(options).some((o) => o.short === 'h');
  return { ...options, help: hTaken ? { type: 'boolean' } : { type: 'boolean', short: 'h' } };
}

function usageError(io: Io, prefix: string, what: string, usage: string): number {
  io.err.write(`${prefix}: ${what}\n\n${usage}`);
  return EXIT_USAGE;
}

function failure(io: Io, prefix: string, usage: string, e: unknown): number {
  if (e instanceof UsageError) return usageError(io, prefix, e.message, usage);
  const msg = e instanceof Error ? e.message : String(e);
  io.err.write(`${prefix}: ${msg || 'failed without a message'}\n`);
  return EXIT_FAILURE;
}

/**
 * Parse `argv` (the arguments after the command's words) with the command's table and run it. Returns the exit
 * status, synchronously when `run` does; a returned promise never rejects. `prefix` names the command in messages.
 */
export function runCommand<O extends OptionTable, I extends Io>(cmd: Command<O, I>, argv: string[], io: I, prefix = `natt ${cmd.name}`): number | Promise<number> {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: withHelp(cmd.options), strict: true, allowPositionals: true }) as typeof parsed;
  } catch (e) {
    // parseArgs names the option (never its value): "Unknown option '--x'", "Option '-f, --file <value>' argument missing".
    return usageError(io, prefix, (e as Error).message, cmd.usage);
  }
  if (parsed.values.help === true) {
    io.out.write(cmd.usage);
    return EXIT_OK;
  }
  if (!cmd.positionals && parsed.positionals.length) {
    return usageError(io, prefix, `unexpected argument ${quotedArg(parsed.positionals[0])}`, cmd.usage);
  }
  try {
    const r = cmd.run({ values: parsed.values as ValuesOf<O>, positionals: parsed.positionals }, io);
    if (typeof r === 'number') return r;
    return r.then(
      (code) => code,
      (e: unknown) => failure(io, prefix, cmd.usage, e),
    );
  } catch (e) {
    return failure(io, prefix, cmd.usage, e);
  }
}

/** `  synopsis   summary` lines for a list of commands (summaries may span lines). */
export function commandList(entries: readonly Entry[]): string {
  const heads = entries.map((e) => `${e.name} ${e.synopsis}`.trimEnd());
  const width = Math.max(15, ...heads.map((h) => h.length)) + 2;
  return entries
    .map((e, i) => {
      const [first, ...more] = e.summary.split('\n');
      return [`  ${heads[i].padEnd(width)}${first}`, ...more.map((l) => `  ${' '.repeat(width)}${l}`)].join('\n');
    })
    .join('\n');
}

/** The help of a group: its description and its commands. */
export function groupUsage(group: Group, prefix: string): string {
  return `Usage: ${prefix} <command> [options]\n\n${group.description}\n\nCommands:\n${commandList(group.commands)}\n\n` +
    `${prefix} <command> --help shows a command's options.\n`;
}

export interface CliInfo {
  /** The top-level help (`natt --help`, and after an unknown command). */
  usage: string;
  version: () => string;
}

function find(entries: readonly Entry[], word: string): Entry | undefined {
  return entries.find((e) => e.name === word);
}

/** The help of the entry at `words` (a command or a group), or undefined when there is none. */
export function usageAt(entries: readonly Entry[], words: string[]): string | undefined {
  let list = entries;
  let prefix = 'natt';
  for (let i = 0; i < words.length; i++) {
    const e = find(list, words[i]);
    if (!e) return undefined;
    prefix += ` ${e.name}`;
    if (!isGroup(e)) return i === words.length - 1 ? e.usage : undefined;
    if (i === words.length - 1) return groupUsage(e, prefix);
    list = e.commands;
  }
  return undefined;
}

/** Run an entry of a table (a command, or a group and then one of its commands) with the arguments after its word. */
export function runEntry(entry: Entry, argv: string[], io: Io, prefix = `natt ${entry.name}`): number | Promise<number> {
  if (!isGroup(entry)) return runCommand(entry, argv, io, prefix);
  const usage = groupUsage(entry, prefix);
  const [word, ...rest] = argv;
  if (word === undefined) return usageError(io, prefix, 'which command? (see below)', usage);
  if (word === '-h' || word === '--help') {
    io.out.write(usage);
    return EXIT_OK;
  }
  const sub = find(entry.commands, word);
  if (!sub) return usageError(io, prefix, `unknown command ${shownArg(word)}`, usage);
  return runEntry(sub, rest, io, `${prefix} ${sub.name}`);
}

/**
 * Run `natt` with `argv` (without node and the script) over a command table: `natt <command> ...`, `natt --help`,
 * `natt help [<command> [<subcommand>]]`, `natt --version`; no command or an unknown one → usage on stderr, exit 2.
 */
export function runCli(entries: readonly Entry[], argv: string[], io: Io, info: CliInfo): number | Promise<number> {
  const [word, ...rest] = argv;
  if (word === undefined) {
    io.err.write(info.usage);
    return EXIT_USAGE;
  }
  if (word === '-h' || word === '--help') {
    io.out.write(info.usage);
    return EXIT_OK;
  }
  if (word === '-v' || word === '--version') {
    io.out.write(`${info.version()}\n`);
    return EXIT_OK;
  }
  if (word === 'help') {
    if (!rest.length) {
      io.out.write(info.usage);
      return EXIT_OK;
    }
    const usage = usageAt(entries, rest);
    if (usage === undefined) return usageError(io, 'natt help', `no command ${rest.map(shownArg).join(' ')}`, info.usage);
    io.out.write(usage);
    return EXIT_OK;
  }
  const entry = find(entries, word);
  if (entry) return runEntry(entry, rest, io);
  const owner = entries.find((e) => !isGroup(e) && e.ownFlags?.test(word));
  const hint = owner
    ? ` (${owner.name}'s flags live under \`natt ${owner.name}\`: natt ${owner.name} ${argv.map(shownArg).join(' ')})`
    : '';
  return usageError(io, 'natt', `unknown command ${shownArg(word)}${hint}`, info.usage);
}
