// `natt setkey`: setkey(8)'s command line over natt's SA databases (-f/-c files, -D/-DP dumps, -F/-FP flushes, -n).

import * as fs from 'node:fs';
import type { Sadb, SecurityAssociation, SecurityPolicy } from '../sadb/types';
import { openSadb, type OpenSadbOptions } from '../open';
import { addressFamily } from '../ip/address';
import {
  SetkeyParseError,
  SetkeyUnsupportedError,
  applySetkey,
  formatSadDump,
  formatSpdDump,
  opText,
  parseSetkey,
  platformOf,
  type SetkeyOp,
  type SourcePos,
} from '../setkey';
import { UsageError, quotedArg, runCommand, type Command, type Io, type ValuesOf } from './args';

/** What `natt setkey` asks of openSadb: a backend, and for the daemon backend its control socket. */
export interface SetkeyOpenOptions {
  backend: 'pfkey' | 'xfrm' | 'userland' | 'daemon' | 'auto';
  /** The daemon's control socket (`--control PATH`), passed through for the daemon backend. */
  control?: string;
}

export interface SetkeyIo extends Io {
  /** Use this database (it is not closed); otherwise `openSadb` opens one and closes it at the end. */
  sadb?: Sadb;
  /** How to open the database (default: natt's openSadb). */
  openSadb?: (opts: SetkeyOpenOptions) => Promise<Sadb>;
  /** Standard input for -c and -f - (default: process.stdin). */
  stdin?: string | AsyncIterable<string | Uint8Array>;
}

const USAGE = `Usage: natt setkey [options] -f FILE | -c | -D | -DP | -F | -FP

setkey(8) for natt's SA databases: reads setkey files unchanged, prints dumps in setkey's layout.

  -f FILE            read setkey commands from FILE ('-' for standard input)
  -c                 read setkey commands from standard input
  -D                 dump the SAD (-DP: the SPD)
  -F                 flush the SAD (-FP: the SPD)
  -P                 with -D or -F: the SPD instead of the SAD
  -n                 parse and check everything, apply nothing, print what would be done
  -v                 print each operation as it is applied
  -4, -6             IPv4 / IPv6 only: addresses of the other family are errors, dumps show only this family
  -k, -r             setkey's kernel / RFC semantics (-r adds a fwd policy beside every in policy;
                     the default is -r on the xfrm and Linux PF_KEY backends, -k elsewhere)
  --backend NAME     pfkey, xfrm, userland, daemon or auto (default auto)
  --control PATH     the natt daemon's control socket (with --backend daemon)
  --json             print operations, dumps and errors as JSON (the typed model)
  --reveal-keys      show key bytes in dumps and -n output (hidden by default)
  -h, --help         show this help

Unlike setkey, the whole input is parsed and checked before anything is applied: a file with an error anywhere
applies nothing. Exit status: 0 done, 1 an error (the file, the database), 2 a usage error.
`;

const SETKEY_OPTIONS = {
  file: { type: 'string', short: 'f' },
  stdin: { type: 'boolean', short: 'c' },
  dump: { type: 'boolean', short: 'D' },
  flush: { type: 'boolean', short: 'F' },
  policy: { type: 'boolean', short: 'P' },
  'dry-run': { type: 'boolean', short: 'n' },
  verbose: { type: 'boolean', short: 'v' },
  ipv4: { type: 'boolean', short: '4' },
  ipv6: { type: 'boolean', short: '6' },
  kernel: { type: 'boolean', short: 'k' },
  rfc: { type: 'boolean', short: 'r' },
  backend: { type: 'string' },
  control: { type: 'string' },
  json: { type: 'boolean' },
  'reveal-keys': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const BACKENDS = ['pfkey', 'xfrm', 'userland', 'daemon', 'auto'] as const;

type SetkeyValues = ValuesOf<typeof SETKEY_OPTIONS>;

async function readStdin(io: SetkeyIo): Promise<string> {
  const src = io.stdin ?? process.stdin;
  if (typeof src === 'string') return src;
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** An SA for JSON: its keys (in key holders, which JSON shows as their length) as hex when revealed, else left out. */
function jsonSa(sa: SecurityAssociation, reveal: boolean): unknown {
  const out: Record<string, unknown> = { ...sa };
  for (const k of ['encryption', 'integrity'] as const) {
    const p = sa[k];
    if (p) out[k] = reveal ? { algorithm: p.algorithm, key: hex(p.key) } : { algorithm: p.algorithm };
  }
  return out;
}

function jsonOp(op: SetkeyOp, reveal: boolean): unknown {
  return op.op === 'add' || op.op === 'update' ? { ...op, sa: jsonSa(op.sa, reveal) } : op;
}

const atJson = (at: SourcePos): SourcePos => ({ file: at.file, line: at.line, column: at.column });

function familyOf(text: string): number {
  return addressFamily(text.split('/')[0].split('%')[0]);
}

/** What parseArgs cannot check: one mode, options that go together; throws UsageError (exit 2). */
function check(values: SetkeyValues, positionals: string[]): void {
  // -DP and -FP need no pre-pass: P is a boolean short option, and parseArgs reads a group of short booleans
  // (-DP, -nv, -n4) as the separate options, as getopt(3) does for setkey.
  if (positionals.length) {
    throw new UsageError(`unexpected argument ${quotedArg(positionals[0])}: natt setkey reads a file with -f FILE (setkey's "setkey file ..." reading raw PF_KEY messages is not supported)`);
  }
  if (values.policy && !values.dump && !values.flush) throw new UsageError('-P goes with -D or -F (-DP dumps the SPD, -FP flushes it)');
  const modes = [values.file !== undefined && '-f', values.stdin && '-c', values.dump && '-D', values.flush && '-F'].filter(Boolean);
  if (modes.length !== 1) {
    throw new UsageError(modes.length ? `${modes.join(' and ')} cannot be combined: give one of -f FILE, -c, -D, -F` : 'nothing to do: give -f FILE, -c, -D (-DP) or -F (-FP)');
  }
  if (values.ipv4 && values.ipv6) throw new UsageError('-4 and -6 cannot be combined');
  if (values.kernel && values.rfc) throw new UsageError('-k and -r cannot be combined');
  if (values.file === '') throw new UsageError('-f needs a file name');
  const backend = values.backend ?? 'auto';
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}, got ${quotedArg(backend)}`);
  if (values.control !== undefined && backend !== 'daemon') throw new UsageError('--control PATH goes with --backend daemon');
}

/** `natt setkey`: the entry of src/cli/main.ts's command table. */
export const setkey: Command<typeof SETKEY_OPTIONS, SetkeyIo> = {
  name: 'setkey',
  synopsis: '...',
  summary: 'setkey(8): -f FILE, -c, -D, -DP, -F, -FP, -n (natt setkey --help)',
  usage: USAGE,
  options: SETKEY_OPTIONS,
  positionals: true,
  // setkey's own flags given to `natt` itself (natt -DP): the error points at `natt setkey`.
  ownFlags: /^-(?:[cfnDFPkrx]|DP|FP|PD|PF)$/,
  run({ values, positionals }, io) {
    check(values, positionals);
    return run(values, io);
  },
};

/**
 * Run `natt setkey` with `argv` (the arguments after `setkey`). Resolves with the exit status: 0 done, 1 an error
 * of the input or the database, 2 a usage error. Never rejects.
 */
export async function setkeyCommand(argv: string[], io: SetkeyIo): Promise<number> {
  return runCommand(setkey, argv, io);
}

async function run(v: SetkeyValues, io: SetkeyIo): Promise<number> {
  const json = v.json === true;
  const reveal = v['reveal-keys'] === true;
  const dryRun = v['dry-run'] === true;
  const family = v.ipv4 ? 4 : v.ipv6 ? 6 : undefined;
  const backend = (v.backend ?? 'auto') as SetkeyOpenOptions['backend'];
  const err = (s: string): void => void io.err.write(`natt setkey: ${s}\n`);

  // The input first: a file that cannot be read needs no database.
  let text: string | undefined;
  let file = '<stdin>';
  if (typeof v.file === 'string' && v.file !== '-') {
    file = v.file;
    try {
      text = fs.readFileSync(v.file, 'utf8');
    } catch (e) {
      err(`cannot read ${v.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (no such file)' : ''}`);
      return 1;
    }
  } else if (v.file === '-' || v.stdin) {
    text = await readStdin(io);
  }

  let sadb = io.sadb;
  let opened = false;
  if (!sadb) {
    const open =
      io.openSadb ?? ((o: SetkeyOpenOptions) => openSadb({ backend: o.backend, ...(o.control !== undefined && { path: o.control }) } as OpenSadbOptions));
    try {
      sadb = await open({ backend, ...(typeof v.control === 'string' && { control: v.control }) });
      opened = true;
    } catch (e) {
      err(`cannot open the SA database (--backend ${backend}): ${(e as Error).message}`);
      return 1;
    }
  }
  const ephemeral = (): void => {
    if (opened && sadb?.backend === 'userland') {
      err('note: the userland SA database lives in this process only; what this command installs is gone when it exits (--backend daemon reaches a running natt daemon)');
    }
  };
  try {
    const platform = platformOf(sadb);
    if (v.dump) return await dump(sadb, v.policy === true, family, json, reveal, io);
    if (v.flush) {
      const what = v.policy ? 'SPD' : 'SAD';
      if (dryRun) {
        io.out.write(json ? `${JSON.stringify({ dryRun: true, ops: [{ op: v.policy ? 'spdflush' : 'flush' }] })}\n` : `would flush the ${what} (-n: nothing was done)\n`);
        return 0;
      }
      ephemeral();
      if (v.policy) await sadb.spdFlush();
      else await sadb.flush();
      if (json) io.out.write(`${JSON.stringify({ flushed: what })}\n`);
      return 0;
    }

    let ops: SetkeyOp[];
    try {
      ops = parseSetkey(text ?? '', {
        file,
        platform,
        ...(v.kernel ? { semantics: 'kernel' as const } : v.rfc ? { semantics: 'rfc' as const } : {}),
        ...(family && { family }),
      });
    } catch (e) {
      if (e instanceof SetkeyUnsupportedError) {
        if (json) io.out.write(`${JSON.stringify({ error: { code: e.code, kind: 'unsupported', platform: e.platform, features: e.features.map((f) => ({ ...f, at: atJson(f.at) })) } }, null, 2)}\n`);
        for (const f of e.features) err(`${f.at.file}:${f.at.line}:${f.at.column}: ${f.reason}`);
        err(`nothing was applied: ${e.features.length} place${e.features.length === 1 ? '' : 's'} in ${file} ask${e.features.length === 1 ? 's' : ''} for what ${sadb.backend === 'pfkey' ? platform : `the ${sadb.backend} backend`} cannot do`);
        return 1;
      }
      if (e instanceof SetkeyParseError) {
        if (json) io.out.write(`${JSON.stringify({ error: { code: e.code, kind: 'parse', file: e.file, line: e.line, column: e.column, reason: e.reason, expected: e.expected, found: e.found } }, null, 2)}\n`);
        err(e.message);
        err('nothing was applied (natt checks the whole file before it applies any of it)');
        return 1;
      }
      throw e;
    }

    if (dryRun) {
      if (json) {
        io.out.write(`${JSON.stringify({ dryRun: true, backend: sadb.backend, platform, ops: ops.map((op) => jsonOp(op, reveal)) }, null, 2)}\n`);
      } else {
        for (const op of ops) {
          io.out.write(`${op.at.file}:${op.at.line}: ${opText(op, { revealKeys: reveal, platform })}\n`);
          for (const n of op.notes ?? []) io.out.write(`    note: ${n}\n`);
        }
        io.out.write(`${ops.length} operation${ops.length === 1 ? '' : 's'} checked for the ${sadb.backend} backend (${platform}); nothing was applied (-n)\n`);
      }
      return 0;
    }

    ephemeral();
    for (const op of ops) for (const n of op.notes ?? []) if (n.startsWith('WARNING')) err(`${op.at.file}:${op.at.line}: ${n}`);
    const verbose = v.verbose === true;
    const result = await applySetkey(ops, sadb, {
      revealKeys: reveal,
      ...(verbose &&
        !json && {
          onOp: (e) => {
            const spi = e.spi !== undefined ? ` (spi 0x${e.spi.toString(16)})` : '';
            io.out.write(`${e.op.at.file}:${e.op.at.line}: ${opText(e.op, { platform })} ${e.error ? 'FAILED' : 'ok'}${spi}\n`);
          },
        }),
    });
    if (json) {
      io.out.write(
        `${JSON.stringify(
          {
            backend: sadb.backend,
            applied: result.applied,
            failed: result.failed.map((f) => ({ at: atJson(f.at), op: f.op, code: (f.error as { code?: string }).code, message: f.message })),
            spis: result.spis.map((s) => ({ at: atJson(s.at), spi: s.spi })),
            dumps: result.dumps.map((d) => ({
              at: atJson(d.at),
              kind: d.kind,
              ...(d.sas && { sas: d.sas.map((sa) => jsonSa(sa, reveal)) }),
              ...(d.policies && { policies: d.policies }),
            })),
          },
          null,
          2,
        )}\n`,
      );
    } else io.out.write(result.output);
    for (const f of result.failed) err(f.message);
    if (result.failed.length) {
      err(`${result.failed.length} of ${ops.length} operation${ops.length === 1 ? '' : 's'} failed; the other ${result.applied} were applied`);
      return 1;
    }
    return 0;
  } finally {
    if (opened) await sadb.close().catch(() => undefined);
  }
}

async function dump(sadb: Sadb, policies: boolean, family: 4 | 6 | undefined, json: boolean, reveal: boolean, io: SetkeyIo): Promise<number> {
  if (policies) {
    let list: SecurityPolicy[] = [];
    for await (const p of sadb.spdDump()) list.push(p);
    if (family) list = list.filter((p) => familyOf(p.selector.src) === family);
    io.out.write(json ? `${JSON.stringify(list, null, 2)}\n` : formatSpdDump(list));
    return 0;
  }
  let list: SecurityAssociation[] = [];
  for await (const sa of sadb.dump()) list.push(sa);
  if (family) list = list.filter((sa) => familyOf(sa.src) === family);
  io.out.write(json ? `${JSON.stringify(list.map((sa) => jsonSa(sa, reveal)), null, 2)}\n` : formatSadDump(list, { revealKeys: reveal }));
  return 0;
}
