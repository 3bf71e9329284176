// `natt stats`: the kernel's /proc/net/xfrm_stat, or a natt daemon's userland counters, in one format (or JSON).

import * as fs from 'node:fs';
import { XFRM_STAT_NAMES, formatStats, newStats, type UserlandCounters } from '../userland/counters';
import { openSadb, type OpenSadbOptions } from '../open';
import type { Sadb } from '../sadb/types';
import { UsageError, type Command, type Io } from './args';

export interface StatsIo extends Io {
  /** Read the kernel's counters from this text instead of /proc/net/xfrm_stat (tests). */
  procText?: string;
  /** Ask this database (a daemon client) instead of opening one. */
  sadb?: Sadb & { call?: (method: string, params?: unknown) => Promise<unknown> };
  openSadb?: (opts: OpenSadbOptions & { path?: string }) => Promise<Sadb>;
}

const OPTIONS = {
  backend: { type: 'string' },
  control: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const USAGE = `Usage: natt stats [--backend kernel|daemon] [--control PATH] [--json]

Print IPsec counters in one format, named as Linux names them in /proc/net/xfrm_stat: the kernel's own
(--backend kernel, the default: /proc/net/xfrm_stat, which needs CONFIG_XFRM_STATISTICS), or a running natt tunnel
daemon's userland engine (--backend daemon, over its control socket), whose counters carry the same names.

  --backend NAME     kernel (default) or daemon
  --control PATH     the daemon's control socket (--backend daemon)
  --json             one JSON object: { source, counters }
  -h, --help         show this help

Exit status: 0 printed, 1 the counters could not be read, 2 a usage error.
`;

/** /proc/net/xfrm_stat's text → counters (names without "Xfrm"); unknown lines are kept under their own names. */
export function parseXfrmStat(text: string): Record<string, number> {
  const out: Record<string, number> = { ...newStats() };
  for (const line of text.split('\n')) {
    const m = /^Xfrm(\w+)\s+(\d+)\s*$/.exec(line.trim());
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

export const statsCommand: Command<typeof OPTIONS, StatsIo> = {
  name: 'stats',
  synopsis: '[--backend kernel|daemon] [--json]',
  summary: "IPsec counters: the kernel's /proc/net/xfrm_stat or a natt daemon's, in one format",
  usage: USAGE,
  options: OPTIONS,
  async run({ values }, io) {
    const backend = values.backend ?? 'kernel';
    if (backend !== 'kernel' && backend !== 'daemon') throw new UsageError(`unknown backend '${backend}' (kernel or daemon)`);
    if (values.control !== undefined && backend !== 'daemon') throw new UsageError('--control goes with --backend daemon');
    let counters: Record<string, number>;
    let source: string;
    if (backend === 'kernel') {
      let text = io.procText;
      if (text === undefined) {
        try {
          text = fs.readFileSync('/proc/net/xfrm_stat', 'utf8');
        } catch (e) {
          throw new Error(
            `cannot read /proc/net/xfrm_stat (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): the kernel was built without CONFIG_XFRM_STATISTICS, or this is not Linux`,
          );
        }
      }
      counters = parseXfrmStat(text);
      source = '/proc/net/xfrm_stat';
    } else {
      let sadb = io.sadb;
      let opened = false;
      if (!sadb) {
        const open = io.openSadb ?? ((o: OpenSadbOptions & { path?: string }) => openSadb(o as OpenSadbOptions));
        sadb = (await open({ backend: 'daemon' as OpenSadbOptions['backend'], ...(values.control !== undefined && { path: values.control }) })) as StatsIo['sadb'];
        opened = true;
      }
      try {
        if (typeof sadb!.call !== 'function') throw new Error('this database is not a natt daemon');
        const r = (await sadb!.call('stats')) as { engine?: UserlandCounters };
        counters = { ...newStats(), ...(r.engine ?? {}) };
        source = 'natt daemon';
      } finally {
        if (opened) await sadb!.close();
      }
    }
    if (values.json) io.out.write(`${JSON.stringify({ source, counters })}\n`);
    else {
      const known = formatStats(counters as UserlandCounters);
      const extra = Object.keys(counters).filter((k) => !(XFRM_STAT_NAMES as readonly string[]).includes(k));
      io.out.write(`${known}${extra.map((k) => `\n${`Xfrm${k}`.padEnd(32)}${counters[k]}`).join('')}\n`);
    }
    return 0;
  },
};
