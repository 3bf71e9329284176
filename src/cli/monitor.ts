// `natt monitor` (= `setkey -x`): the SA database's events as lines or JSON lines, until SIGINT or SIGTERM.

import { openSadb, type OpenSadbOptions } from '../open';
import type { Sadb, SadbEvents, SecurityAssociation } from '../sadb/types';
import { UsageError, type Command, type Io } from './args';
import { untilSignal } from './signals';

export interface MonitorIo extends Io {
  /** Watch this database (not closed at the end) instead of opening one. */
  sadb?: Sadb;
  /** How to open one (default: natt's openSadb). */
  openSadb?: (opts: OpenSadbOptions & { path?: string }) => Promise<Sadb>;
  /** Resolves when monitoring should stop (default: the first SIGINT or SIGTERM). */
  stopSignal?: Promise<string>;
  /** Called once listening (tests). */
  onReady?: (sadb: Sadb) => void;
}

const OPTIONS = {
  backend: { type: 'string' },
  control: { type: 'string' },
  json: { type: 'boolean' },
  'reveal-keys': { type: 'boolean' },
} as const;

const USAGE = `Usage: natt monitor [--backend pfkey|xfrm|daemon|auto] [--control PATH] [--json] [--reveal-keys]

Print the SA database's events as they happen (acquire, expire, new NAT mapping, SA added or deleted, and the
backend's other messages), one per line, or one JSON object per line with --json, until interrupted (SIGINT or
SIGTERM: exit 0). The same as setkey -x. On PF_KEY the socket registers for ESP and turns promiscuous (every PF_KEY
message on the host); on XFRM it joins the acquire, expire, SA, policy and mapping groups; on the daemon backend it
subscribes to a running natt tunnel's events over its control socket. Keys are never printed unless --reveal-keys
(and then only where the backend sends them).

  --backend NAME     pfkey, xfrm, daemon, or auto (default: the kernel's; the userland database lives in one process,
                     so there is nothing to watch from outside: use --backend daemon for a natt tunnel)
  --control PATH     the daemon's control socket (--backend daemon)
  --json             one JSON object per event
  --reveal-keys      keep key material in add events (as setkey -x prints it)
  -h, --help         show this help

Exit status: 0 interrupted, 1 the database could not be opened, 2 a usage error.
`;

const EVENTS: readonly (keyof SadbEvents)[] = ['acquire', 'expire', 'newMapping', 'add', 'delete', 'register', 'message'];

const spi = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function saText(sa: SecurityAssociation): string {
  const natt = sa.natt ? ` ${sa.natt.type} ${sa.natt.sport}->${sa.natt.dport}` : '';
  return `${sa.protocol ?? 'esp'} ${sa.src} -> ${sa.dst} spi ${spi(sa.spi)} ${sa.mode ?? ''}${natt}`.trimEnd();
}

/** One event as a line for people. */
export function eventLine(event: keyof SadbEvents, data: unknown): string {
  switch (event) {
    case 'acquire': {
      const a = data as SadbEvents['acquire'][0];
      return `acquire: ${a.protocol} ${a.src} -> ${a.dst} seq ${a.seq}${a.policy?.id !== undefined ? ` (policy ${a.policy.id})` : ''}`;
    }
    case 'expire': {
      const e = data as SadbEvents['expire'][0];
      return `expire ${e.kind}: ${saText(e.sa)}`;
    }
    case 'newMapping': {
      const m = data as SadbEvents['newMapping'][0];
      return `new mapping: spi ${spi(m.sa.spi)} ${m.old.address}:${m.old.port} -> ${m.new.address}:${m.new.port}${m.reqid ? ` reqid ${m.reqid}` : ''}`;
    }
    case 'add':
      return `add: ${saText(data as SecurityAssociation)}`;
    case 'delete': {
      const d = data as SadbEvents['delete'][0];
      return `delete: ${d.protocol ?? 'esp'} ${d.src} -> ${d.dst} spi ${spi(d.spi)}`;
    }
    case 'register':
      return `register: ${(data as SadbEvents['register'][0]).protocol}`;
    default: {
      const m = data as { type?: unknown };
      return `message: ${typeof m?.type === 'string' || typeof m?.type === 'number' ? m.type : 'decoded'}`;
    }
  }
}

/** A JSON-safe copy of an event payload: bytes as hex, bigints as strings. */
function jsonSafe(v: unknown): unknown {
  return JSON.parse(
    JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x)),
  );
}

export const monitorCommand: Command<typeof OPTIONS, MonitorIo> = {
  name: 'monitor',
  synopsis: '[--backend NAME] [--json]',
  summary: "the SA database's events (acquire, expire, new mapping, add/delete) until interrupted (setkey -x)",
  usage: USAGE,
  options: OPTIONS,
  async run({ values }, io) {
    const backend = values.backend ?? 'auto';
    if (!['pfkey', 'xfrm', 'daemon', 'auto', 'userland'].includes(backend)) throw new UsageError(`unknown backend '${backend}'`);
    if (values.control !== undefined && backend !== 'daemon') throw new UsageError('--control goes with --backend daemon');
    let sadb = io.sadb;
    let opened = false;
    if (!sadb) {
      const open = io.openSadb ?? ((o: OpenSadbOptions & { path?: string }) => openSadb(o as OpenSadbOptions));
      sadb = await open({ backend: backend as OpenSadbOptions['backend'], revealKeys: values['reveal-keys'] === true, ...(values.control !== undefined && { path: values.control }) });
      opened = true;
      if (sadb.backend === 'userland') {
        await sadb.close();
        throw new Error("the userland SA database lives inside one process: there is nothing to watch from here; for a natt tunnel use --backend daemon");
      }
    }
    const json = values.json === true;
    const write = (event: keyof SadbEvents, data: unknown): void => {
      // A raw backend message is shown by its type only: the decoded message may hold bytes natt does not vouch for.
      const shown = event === 'message' ? { type: (data as { type?: unknown })?.type } : data;
      io.out.write(json ? `${JSON.stringify({ event, time: new Date().toISOString(), data: jsonSafe(shown) })}\n` : `${eventLine(event, data)}\n`);
    };
    const listeners = EVENTS.map((event) => {
      const l = (data: unknown): void => write(event, data);
      (sadb as unknown as NodeJS.EventEmitter).on(event, l);
      return [event, l] as const;
    });
    const onError = (e: Error): void => void io.err.write(`natt monitor: ${e.message}\n`);
    sadb.on('error', onError);
    try {
      // PF_KEY sends ACQUIRE and EXPIRE only to registered sockets, and other sockets' messages only to promiscuous ones.
      const pf = sadb as Sadb & { promisc?: (on: boolean) => Promise<void> };
      if (sadb.backend === 'pfkey') {
        await sadb.register('esp');
        await pf.promisc?.(true);
      }
      if (!json) io.out.write(`natt monitor: watching the ${sadb.backend} SA database (interrupt to stop)\n`);
      io.onReady?.(sadb);
      await (io.stopSignal ?? untilSignal());
      return 0;
    } finally {
      for (const [event, l] of listeners) (sadb as unknown as NodeJS.EventEmitter).off(event, l);
      sadb.off('error', onError);
      if (opened) await sadb.close();
    }
  },
};
