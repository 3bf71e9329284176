// `natt capture -w FILE [--esp-sa FILE]`: NAT-T traffic into pcapng and, only when asked, the esp_sa table that decrypts it.

import { startCapture, writeEspSaFile, type CaptureStats } from '../capture';
import { longTimeout } from '../core/timers';
import { openSadb, type OpenSadbOptions } from '../open';
import type { Sadb, SecurityAssociation } from '../sadb/types';
import { UsageError, type Command, type Io } from './args';
import { untilSignal } from './signals';

export interface CaptureIo extends Io {
  /** Read SAs (for --esp-sa) from this database (not closed at the end) instead of opening one. */
  sadb?: Sadb;
  /** How to open one (default: natt's openSadb). */
  openSadb?: (opts: OpenSadbOptions) => Promise<Sadb>;
  /** Resolves when the capture should stop (default: the first SIGINT or SIGTERM). */
  stopSignal?: Promise<string>;
  /** Called once capturing (tests). */
  onReady?: () => void;
}

const OPTIONS = {
  out: { type: 'string', short: 'w' },
  interface: { type: 'string', short: 'i' },
  'udp-port': { type: 'string', multiple: true },
  'tcp-port': { type: 'string', multiple: true },
  count: { type: 'string', short: 'c' },
  duration: { type: 'string' },
  snaplen: { type: 'string', short: 's' },
  'esp-sa': { type: 'string' },
  backend: { type: 'string' },
  control: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const USAGE = `Usage: natt capture -w FILE.pcapng [-i IFACE] [--udp-port N]... [--tcp-port N]... [-c COUNT]
                    [--duration SECONDS] [-s BYTES] [--esp-sa FILE [--backend NAME] [--control PATH]] [--json]

Capture IPsec NAT-T traffic into a pcapng file for Wireshark or tshark: ESP in UDP and IKE (UDP ports 500 and
4500), ESP and IKE in TCP (TCP port 4500, RFC 9329), sent or received on this host (a Linux packet socket: root or
CAP_NET_RAW), until interrupted (SIGINT or SIGTERM), COUNT packets or SECONDS. The file holds what crossed the
wire: ESP stays encrypted. With --esp-sa FILE natt also writes Wireshark's ESP SA table (the esp_sa file, mode
0600) with the SAs' KEYS, read from the SA database at the start and again at the end (SAs added meanwhile are in
it): that file decrypts the capture, so keep it private. Without --esp-sa no key is read or written.

  -w, --out FILE        the pcapng file to write (replaced if it exists)
  -i, --interface NAME  one interface (default: every interface of this network namespace)
  --udp-port N          a UDP port to keep, source or destination (repeat; default 500 and 4500)
  --tcp-port N          a TCP port to keep (repeat; default 4500); --tcp-port 0 keeps no TCP
  -c, --count N         stop after N packets
  --duration SECONDS    stop after SECONDS
  -s, --snaplen BYTES   keep at most BYTES of each packet (64..262144, default 262144)
  --esp-sa FILE         also write the esp_sa table (with keys) to FILE, mode 0600
  --backend NAME        where --esp-sa reads SAs: pfkey, xfrm, daemon or auto (default auto: the kernel's
                        database where the kernel does ESP, else the natt daemon's)
  --control PATH        the daemon's control socket (--backend daemon; default /run/natt/natt0.sock)
  --json                print the final counts as JSON
  -h, --help            show this help

To read the capture decrypted: copy the esp_sa file into a Wireshark profile (~/.config/wireshark/esp_sa) and
set the ESP preference "Attempt to detect/decode encrypted ESP payloads" (esp.enable_encryption_decode:TRUE);
for ESP-in-UDP on a port other than 4500 add -d udp.port==PORT,udpencap to tshark (Decode As in Wireshark).

Exit status: 0 done, 1 a failure (no privilege, no such interface, the SA database could not be read), 2 a usage error.
`;

function intArg(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}`);
  return Number(v);
}

function ports(v: string[] | undefined, name: string, dflt: number[]): number[] {
  if (v === undefined) return dflt;
  const out: number[] = [];
  for (const s of v) for (const part of s.split(',')) out.push(intArg(part, name, 0, 65535)!);
  const real = out.filter((p) => p !== 0);
  if (real.length > 32) throw new UsageError(`${name}: at most 32 ports`);
  return real;
}

/** The SA database --esp-sa reads: 'auto' is the kernel's where the kernel does ESP, else the daemon's. */
async function openForKeys(backend: string, control: string | undefined, io: CaptureIo): Promise<Sadb> {
  const open = io.openSadb ?? ((o: OpenSadbOptions) => openSadb(o));
  const base: OpenSadbOptions = { revealKeys: true, ...(control !== undefined && { path: control }) };
  if (backend === 'auto' && control === undefined) {
    const db = await open({ ...base, backend: 'auto' });
    if (db.backend !== 'userland') return db;
    await db.close(); // an empty database of this process: the SAs in use are the daemon's
    return open({ ...base, backend: 'daemon' });
  }
  return open({ ...base, backend: (backend === 'auto' ? 'daemon' : backend) as OpenSadbOptions['backend'] });
}

/** ERR_NATT_KEYS_HIDDEN in the operator's words: which side keeps the keys back and what to do. */
function keysHidden(e: unknown, backend: string): unknown {
  if ((e as { code?: unknown })?.code !== 'ERR_NATT_KEYS_HIDDEN') return e;
  const why =
    backend === 'daemon'
      ? 'the daemon gives no key material to its clients (its control socket serves without revealKeys; a daemon must allow it for an esp_sa table)'
      : `the ${backend} database returned SAs without their keys`;
  return Object.assign(new Error(`${(e as Error).message.replace(/ \(open the SA database.*\)$/, '')}: ${why}`), { code: 'ERR_NATT_KEYS_HIDDEN' });
}

async function dumpEsp(db: Sadb, into: Map<string, SecurityAssociation>): Promise<void> {
  for await (const sa of db.dump('esp')) into.set(`${sa.src} ${sa.dst} ${sa.spi}`, sa);
}

export const captureCommand: Command<typeof OPTIONS, CaptureIo> = {
  name: 'capture',
  synopsis: '-w FILE [--esp-sa FILE]',
  summary: 'NAT-T traffic (ESP in UDP and TCP, IKE) into a pcapng file; with --esp-sa, the keys\nthat let Wireshark decrypt it',
  usage: USAGE,
  options: OPTIONS,
  async run({ values }, io) {
    if (values.out === undefined) throw new UsageError('-w/--out FILE is required');
    const count = intArg(values.count, '--count', 1, Number.MAX_SAFE_INTEGER);
    const duration = values.duration === undefined ? undefined : Number(values.duration);
    if (duration !== undefined && (!/^\d+(\.\d+)?$/.test(values.duration!) || !(duration > 0) || duration * 1000 > Number.MAX_SAFE_INTEGER)) {
      throw new UsageError('--duration must be a number of seconds above 0');
    }
    const snapLength = intArg(values.snaplen, '--snaplen', 64, 262144);
    const udpPorts = ports(values['udp-port'], '--udp-port', [500, 4500]);
    const tcpPorts = ports(values['tcp-port'], '--tcp-port', [4500]);
    if (udpPorts.length === 0 && tcpPorts.length === 0) throw new UsageError('no port to capture: give --udp-port or --tcp-port');
    const espSa = values['esp-sa'];
    const backend = values.backend ?? 'auto';
    if (!['pfkey', 'xfrm', 'daemon', 'auto'].includes(backend)) throw new UsageError(`unknown backend '${backend}' (pfkey, xfrm, daemon or auto)`);
    if (espSa === undefined && (values.backend !== undefined || values.control !== undefined)) {
      throw new UsageError('--backend and --control say where --esp-sa reads keys: give --esp-sa FILE');
    }
    if (values.control !== undefined && backend !== 'daemon' && backend !== 'auto') throw new UsageError('--control goes with --backend daemon');
    if (espSa !== undefined && espSa === values.out) throw new UsageError('--esp-sa and --out must be different files');

    // Keys first: when the database cannot be read, nothing is captured (and no pcapng file is left half made).
    let db = io.sadb;
    let opened = false;
    const sas = new Map<string, SecurityAssociation>();
    const onAdd = (sa: SecurityAssociation): void => {
      if ((sa.protocol ?? 'esp') === 'esp') sas.set(`${sa.src} ${sa.dst} ${sa.spi}`, sa);
    };
    if (espSa !== undefined) {
      if (!db) {
        db = await openForKeys(backend, values.control, io);
        opened = true;
      }
      db.on('add', onAdd);
      db.on('error', () => {}); // a backend's stray error must not end the capture; the final dump reports failures
      try {
        await dumpEsp(db, sas);
        writeEspSaFile(espSa, sas.values());
      } catch (e) {
        db.off('add', onAdd);
        if (opened) await db.close();
        throw keysHidden(e, db.backend);
      }
    }
    const json = values.json === true;
    let stopNow!: (why: string) => void;
    const stoppedByItself = new Promise<string>((r) => (stopNow = r));
    let cap;
    try {
      cap = startCapture({
        out: values.out,
        ...(values.interface !== undefined && { interface: values.interface }),
        udpPorts,
        tcpPorts,
        ...(snapLength !== undefined && { snapLength }),
        ...(count !== undefined && { count }),
        onStop: (_s, err) => stopNow(err ? `error: ${err.message}` : 'count'),
      });
    } catch (e) {
      if (db) db.off('add', onAdd);
      if (opened) await db!.close();
      throw e;
    }
    const timer = duration === undefined ? undefined : longTimeout(() => stopNow('duration'), duration * 1000);
    const where = values.interface ?? 'every interface';
    const what = [udpPorts.length ? `udp ${udpPorts.join(',')}` : '', tcpPorts.length ? `tcp ${tcpPorts.join(',')}` : ''].filter(Boolean).join('; ');
    if (!json) io.out.write(`natt capture: capturing ${what} on ${where} into ${values.out} (interrupt to stop)\n`);
    io.onReady?.();
    let why: string;
    let stats: CaptureStats;
    let tableNote = '';
    try {
      why = await Promise.race([io.stopSignal ?? untilSignal(), stoppedByItself]);
      stats = await cap.stop();
    } finally {
      timer?.clear();
      if (db) {
        try {
          if (espSa !== undefined) {
            let t;
            try {
              await dumpEsp(db, sas);
              t = writeEspSaFile(espSa, sas.values());
            } catch (e) {
              throw keysHidden(e, db.backend);
            }
            tableNote = `${t.entries} ESP SA${t.entries === 1 ? '' : 's'} with keys in ${espSa} (mode 0600)`;
            for (const s of t.skipped) io.err.write(`natt capture: not in ${espSa}: ${s}\n`);
          }
        } finally {
          db.off('add', onAdd);
          if (opened) await db.close();
        }
      }
    }
    if (why.startsWith('error: ')) throw new Error(`the capture stopped: ${why.slice(7)} (${stats.packets} packets are in ${values.out})`);
    if (json) {
      io.out.write(`${JSON.stringify({ out: values.out, ...stats, stoppedBy: why, ...(espSa !== undefined && { espSa, espSaEntries: sas.size }) })}\n`);
    } else {
      io.out.write(
        `natt capture: ${stats.packets} packet${stats.packets === 1 ? '' : 's'} (${stats.bytes} bytes) written to ${values.out}` +
          `, ${stats.kernelDrops} dropped by the kernel; stopped by ${why}${stats.interfaces.length ? `; seen on ${stats.interfaces.join(', ')}` : ''}\n`,
      );
      if (tableNote) io.out.write(`natt capture: ${tableNote}\n`);
    }
    return 0;
  },
};
