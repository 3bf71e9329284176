// Test helpers: a control server over a fresh UserlandSadb on a Unix socket in a temp dir, and SAs to put in it.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { serveControl, type ControlServer, type ServeControlOptions } from '../../src/control/server';
import { nativeStatus } from '../../src/native/binding';
import { UserlandSadb } from '../../src/userland/sadb';
import type { SecurityAssociation } from '../../src/sadb/types';

/** Why the control tests cannot run here (the server checks peers with the addon), or undefined. */
export const controlSkip: string | undefined = nativeStatus().loaded ? undefined : `the native addon is not loaded: ${nativeStatus().reason}`;

export interface Daemon {
  dir: string;
  path: string;
  db: UserlandSadb;
  server: ControlServer;
  log: string[];
  stop(): Promise<void>;
}

/** Serve a fresh UserlandSadb on `<tmp>/control.sock` (or `sub/control.sock` under the temp dir). */
export async function startDaemon(opts: Omit<ServeControlOptions, 'path'> = {}, sub?: string): Promise<Daemon> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-control-'));
  const p = sub ? path.join(dir, sub, 'control.sock') : path.join(dir, 'control.sock');
  const db = new UserlandSadb();
  const log: string[] = [];
  const server = await serveControl(db, { log: (l) => log.push(l), ...opts, path: p });
  return {
    dir,
    path: p,
    db,
    server,
    log,
    stop: async () => {
      await server.close();
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An AES-CBC + HMAC-SHA1 SA with NAT-T; keys are 0x11.. and 0x22... */
export const cbcSa = (spi: number, src = '192.0.2.1', dst = '192.0.2.2'): SecurityAssociation => ({
  src,
  dst,
  spi,
  protocol: 'esp',
  mode: 'tunnel',
  reqid: 7,
  encryption: { algorithm: 'aes-cbc', key: new Uint8Array(16).fill(0x11) },
  integrity: { algorithm: 'hmac-sha1-96', key: new Uint8Array(20).fill(0x22) },
  natt: { type: 'espinudp', sport: 4500, dport: 4500 },
});

/** Resolve after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `f` until it is true (or fail after `ms`). */
export async function until(f: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
