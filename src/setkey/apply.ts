// Running parsed setkey operations against any Sadb (pfkey, xfrm, userland, daemon), collecting dumps and failures.

import type { CallOptions, Sadb, SecurityAssociation, SecurityPolicy } from '../sadb/types';
import { arrayOption, callbackOption, durationMs, oneOf, readOptions, signalOption, boolOption } from '../core/options';
import { typeError } from '../errors';
import { SetkeyUnsupportedError, checkPos, where, type SourcePos, type UnsupportedFeature } from './errors';
import { formatItem, formatSadDump, formatSpdDump } from './format';
import { platformProblems, type SetkeyOp } from './lower';
import { SETKEY_PLATFORMS, platformCaps, platformOf, type SetkeyPlatform } from './platform';

export interface ApplySetkeyOptions {
  /** Print key bytes in the dumps of `dump` and `get` statements. Default false. */
  revealKeys?: boolean;
  /** Stop at the first operation the database refuses. Default false: go on, as setkey does. */
  stopOnError?: boolean;
  /** What to check the operations against before the first one runs. Default: what `sadb` is (platformOf). */
  platform?: SetkeyPlatform;
  /** Per-call timeout in ms, passed to every database call. */
  timeout?: number;
  /** Abort: the operation in flight may fail, and nothing after it runs. */
  signal?: AbortSignal;
  /** Called after every operation (for `natt setkey -v`). */
  onOp?: (event: ApplyEvent) => void;
  /** Seconds since the epoch for the dumps' lifetime lines (tests). */
  now?: number;
  /** The pid the dumps print (tests). */
  pid?: number;
}

export interface ApplyEvent {
  op: SetkeyOp;
  /** Undefined when the operation succeeded. */
  error?: Error;
  /** The SPI getspi got. */
  spi?: number;
}

/** An operation the database refused. */
export interface ApplyFailure {
  at: SourcePos;
  op: SetkeyOp['op'];
  error: Error;
  /** `file:line:column: <the error's message>`. */
  message: string;
}

/** What one `dump`, `spddump` or `get` statement printed, as objects (for `--json`). */
export interface ApplyDump {
  at: SourcePos;
  kind: 'sad' | 'spd';
  sas?: SecurityAssociation[];
  policies?: SecurityPolicy[];
}

export interface ApplyResult {
  /** Operations the database accepted. */
  applied: number;
  failed: ApplyFailure[];
  /** Text the dump and get statements printed, in setkey's layout. */
  output: string;
  dumps: ApplyDump[];
  /** SPIs the getspi statements got. */
  spis: Array<{ at: SourcePos; spi: number }>;
  /** True when an `exit;` statement, `stopOnError` or an abort ended the run early. */
  stopped: boolean;
}

const OP_EXPECTED = 'an operation from parseSetkey()';
const SADB_METHODS = ['add', 'update', 'get', 'delete', 'deleteAll', 'flush', 'dump', 'getSpi', 'spdAdd', 'spdUpdate', 'spdDelete', 'spdDump', 'spdFlush'];

/**
 * Run `ops` (from parseSetkey) against `sadb`, in order. Before the first one runs, every operation is checked
 * against what the database can do (its backend and PF_KEY dialect, or `platform`): if any cannot be done, a
 * SetkeyUnsupportedError is thrown and nothing is applied. Then, like setkey, an operation the database refuses
 * (EEXIST, ESRCH, ENOENT ...) is recorded in `failed` and the run goes on (unless `stopOnError`). Resolves with what
 * was applied, what failed and what the dump statements printed.
 */
export async function applySetkey(ops: readonly SetkeyOp[], sadb: Sadb, opts: ApplySetkeyOptions = {}): Promise<ApplyResult> {
  const list = arrayOption(ops, 'ops') as SetkeyOp[];
  for (const [i, op] of list.entries()) {
    const ok = formatItem(`ops[${i}]`, OP_EXPECTED, op, () => op !== null && typeof op === 'object' && typeof op.op === 'string' && (checkPos(op.at, `ops[${i}].at`), true));
    if (!ok) throw typeError(`ops[${i}]`, OP_EXPECTED, op);
  }
  if (sadb === null || typeof sadb !== 'object') throw typeError('sadb', 'a Sadb (openSadb(), new UserlandSadb() ...)', sadb);
  for (const m of SADB_METHODS) {
    let f: unknown;
    try {
      f = (sadb as unknown as Record<string, unknown>)[m];
    } catch {
      throw typeError('sadb', 'a Sadb whose methods can be read', undefined);
    }
    if (typeof f !== 'function') throw typeError(`sadb.${m}`, 'a function (sadb must implement Sadb)', f);
  }
  const o = readOptions(opts, ['revealKeys', 'stopOnError', 'platform', 'timeout', 'signal', 'onOp', 'now', 'pid'] as const, 'options');
  const revealKeys = boolOption(o.revealKeys, 'revealKeys', false);
  const stopOnError = boolOption(o.stopOnError, 'stopOnError', false);
  const platform = oneOf(o.platform, 'platform', SETKEY_PLATFORMS, platformOf(sadb));
  const timeout = durationMs(o.timeout, 'timeout', 1, undefined);
  const signal = signalOption(o.signal);
  const onOp = callbackOption<(e: ApplyEvent) => void>(o.onOp, 'onOp');
  const dumpOpts = { revealKeys, ...(o.now !== undefined && { now: o.now as number }), ...(o.pid !== undefined && { pid: o.pid as number }) };
  const call: CallOptions = { ...(timeout !== undefined && { timeout }), ...(signal && { signal }) };

  // Whole-input check first: a file natt cannot do anywhere applies nothing.
  const caps = platformCaps(platform);
  const problems: UnsupportedFeature[] = [];
  for (const [i, op] of list.entries()) problems.push(...formatItem(`ops[${i}]`, OP_EXPECTED, op, () => platformProblems(op, caps)));
  if (problems.length) throw new SetkeyUnsupportedError(problems, platform);

  const result: ApplyResult = { applied: 0, failed: [], output: '', dumps: [], spis: [], stopped: false };
  for (const op of list) {
    if (op.op === 'exit' || signal?.aborted) {
      result.stopped = true;
      break;
    }
    let spi: number | undefined;
    let error: Error | undefined;
    try {
      spi = await run(op, sadb, call, result, dumpOpts);
      result.applied++;
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
      result.failed.push({ at: op.at, op: op.op, error, message: `${where(op.at)}: ${error.message}` });
    }
    onOp?.({ op, ...(error && { error }), ...(spi !== undefined && { spi }) });
    if (error && (stopOnError || signal?.aborted)) {
      result.stopped = true;
      break;
    }
  }
  return result;
}

async function run(op: SetkeyOp, sadb: Sadb, call: CallOptions, result: ApplyResult, dumpOpts: { revealKeys: boolean; now?: number; pid?: number }): Promise<number | undefined> {
  switch (op.op) {
    case 'add':
      await sadb.add(op.sa, call);
      return undefined;
    case 'update':
      await sadb.update(op.sa, call);
      return undefined;
    case 'getspi': {
      const spi = await sadb.getSpi(op.request, call);
      result.spis.push({ at: op.at, spi });
      return spi;
    }
    case 'get': {
      const sa = await sadb.get(op.id, call);
      result.output += formatSadDump([sa], dumpOpts);
      result.dumps.push({ at: op.at, kind: 'sad', sas: [sa] });
      return undefined;
    }
    case 'delete':
      await sadb.delete(op.id, call);
      return undefined;
    case 'deleteall':
      await sadb.deleteAll(op.match, call);
      return undefined;
    case 'flush':
      await sadb.flush(op.protocol, call);
      return undefined;
    case 'dump': {
      const sas: SecurityAssociation[] = [];
      for await (const sa of sadb.dump(op.protocol, call)) sas.push(sa);
      result.output += formatSadDump(sas, dumpOpts);
      result.dumps.push({ at: op.at, kind: 'sad', sas });
      return undefined;
    }
    case 'spdadd':
      await sadb.spdAdd(op.policy, call);
      return undefined;
    case 'spdupdate':
      await sadb.spdUpdate(op.policy, call);
      return undefined;
    case 'spddelete':
      await sadb.spdDelete({ selector: op.selector, direction: op.direction }, call);
      return undefined;
    case 'spdflush':
      await sadb.spdFlush(call);
      return undefined;
    case 'spddump': {
      const policies: SecurityPolicy[] = [];
      for await (const p of sadb.spdDump(call)) policies.push(p);
      result.output += formatSpdDump(policies, { ...(dumpOpts.now !== undefined && { now: dumpOpts.now }), ...(dumpOpts.pid !== undefined && { pid: dumpOpts.pid }) });
      result.dumps.push({ at: op.at, kind: 'spd', policies });
      return undefined;
    }
    default:
      throw typeError('op', 'a setkey operation', (op as { op: unknown }).op);
  }
}
