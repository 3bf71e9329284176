// What the boundary table's rows call their methods on: fresh databases, engines, transforms and kernel clients over a
// scripted transport that answers every request, and one shared userland NAT-T socket on loopback.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { createTun, type Tun } from '../../src/tun';
import { listenNattTcp, type NattTcpListener } from '../../src/tcp';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { UserlandSadb } from '../../src/userland/sadb';
import { UserlandEngine } from '../../src/userland/engine';
import { PfKey } from '../../src/pfkey/client';
import { Xfrm } from '../../src/xfrm/client';
import { decode as pfkeyDecode, encode as pfkeyEncode } from '../../src/pfkey/codec';
import { decode as xfrmDecode, encode as xfrmEncode, type XfrmMessage } from '../../src/xfrm/codec';
import type { SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';
import { memoryPair, type MemoryTransport } from '../lib/memory-transport';
import { scriptedTransport } from '../lib/scripted-transport';
import { key } from './values';

/** A valid SA with every kind of field, keys of KEY_BYTE. */
export const sa = (): SecurityAssociation => ({
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi: 0x1234,
  protocol: 'esp',
  mode: 'tunnel',
  reqid: 1,
  replayWindow: 32,
  encryption: { algorithm: 'aes-cbc', key: key(16) },
  integrity: { algorithm: 'hmac-sha1-96', key: key(20) },
  natt: { type: 'espinudp', sport: 4500, dport: 4500 },
  lifetime: { soft: { bytes: 1_000_000 }, hard: { addSeconds: 3600 } },
  selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' },
});

/** An AEAD SA (the engine's). */
export const gcmSa = (): SecurityAssociation => ({
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi: 0x2002,
  mode: 'tunnel',
  reqid: 2,
  encryption: { algorithm: 'aes-gcm-16', key: key(20) },
  natt: { type: 'espinudp', sport: 4500, dport: 4500 },
});

export const saId = () => ({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1234, protocol: 'esp' as const });

export const policy = (): SecurityPolicy => ({
  selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16', proto: 17, sport: 0, dport: 53 },
  direction: 'out',
  action: 'ipsec',
  priority: 10,
  templates: [{ protocol: 'esp', mode: 'tunnel', src: '192.0.2.1', dst: '192.0.2.2', level: 'require', reqid: 1 }],
});

export const policyRef = () => ({ selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16', proto: 17, sport: 0, dport: 53 }, direction: 'out' as const });

export const callOptions = (): { timeout: number; signal: AbortSignal } => ({ timeout: 1000, signal: new AbortController().signal });

/** A fresh userland database holding sa() and policy(). */
export async function filledSadb(): Promise<UserlandSadb> {
  const db = new UserlandSadb();
  await db.add(sa());
  await db.spdAdd(policy());
  return db;
}

/** Run `f` on a fresh filled database, then close it. */
export async function withSadb<T>(f: (db: UserlandSadb) => T | Promise<T>): Promise<T> {
  const db = await filledSadb();
  try {
    return await f(db);
  } finally {
    await db.close();
  }
}

/** A fresh engine over an in-memory transport pair, with an outbound SA and policy; closed after `f`. */
export async function withEngine<T>(f: (e: UserlandEngine, t: MemoryTransport, db: UserlandSadb) => T | Promise<T>): Promise<T> {
  const [ta] = memoryPair({ address: '192.0.2.1', port: 4500 }, { address: '192.0.2.2', port: 4500 });
  const db = new UserlandSadb();
  await db.add(gcmSa());
  await db.add({ ...gcmSa(), src: '192.0.2.2', dst: '192.0.2.1', spi: 0x1001, reqid: 1 });
  await db.spdAdd({
    selector: { src: '10.1.0.0/16', dst: '10.2.0.0/16' },
    direction: 'out',
    action: 'ipsec',
    templates: [{ protocol: 'esp', mode: 'tunnel', src: '192.0.2.1', dst: '192.0.2.2', reqid: 2 }],
  });
  const e = new UserlandEngine({ socket: ta, sadb: db, keepaliveSeconds: 0 });
  try {
    return await f(e, ta, db);
  } finally {
    e.close();
    await db.close();
  }
}

/** A transport factory for the Xfrm client that ACKs every request (and ends every dump), as a kernel with nothing in it. */
export function xfrmAnswering() {
  return scriptedTransport((bytes, push) => {
    let msgs: XfrmMessage[];
    try {
      msgs = xfrmDecode(bytes);
    } catch {
      return;
    }
    for (const m of msgs) {
      const seq = m.seq ?? 0;
      const dump = m.flags !== undefined && (m.flags & 0x300) !== 0;
      push(
        xfrmEncode(
          dump
            ? { type: 'done', seq, pid: 1, flags: 2, data: new Uint8Array(4) }
            : { type: 'error', seq, pid: 1, error: 0, request: { len: 16, type: 16, flags: 5, seq, pid: 0 }, data: new Uint8Array(0) },
        ),
      );
    }
  });
}

/** A transport factory for the PfKey client that answers as a kernel would: echoes requests, ENOENT for dumps. */
export function pfkeyAnswering() {
  return scriptedTransport((bytes, push) => {
    try {
      const m = pfkeyDecode(bytes, 'linux');
      if (m.type === 10 || m.type === 18) push(pfkeyEncode({ ...m, errno: 2, extensions: [] }, 'linux'));
      else push(bytes);
    } catch {
      /* not for us */
    }
  });
}

/** Run `f` on a fresh PfKey client (Linux dialect) over pfkeyAnswering(), then close it. */
export async function withPfKey<T>(f: (p: PfKey) => T | Promise<T>): Promise<T> {
  const p = new PfKey({ dialect: 'linux', transport: pfkeyAnswering().transport, timeout: 500 });
  try {
    return await f(p);
  } finally {
    await p.close();
  }
}

/** Run `f` on a fresh Xfrm client over xfrmAnswering(), then close it. */
export async function withXfrm<T>(f: (x: Xfrm) => T | Promise<T>): Promise<T> {
  const x = await Xfrm.open({ transport: xfrmAnswering().transport, timeout: 500 });
  try {
    return await f(x);
  } finally {
    await x.close();
  }
}

/** Collect an async iterable (a dump), at most 100 items; anything that is not iterable is returned as it is. */
export async function drain(it: unknown): Promise<unknown[] | unknown> {
  if (it === null || typeof it !== 'object' || !(Symbol.asyncIterator in it)) return it;
  const out: unknown[] = [];
  for await (const x of it as AsyncIterable<unknown>) {
    out.push(x);
    if (out.length >= 100) break;
  }
  return out;
}

/** Close whatever a successful call returned that holds a resource (a socket, a client, an engine). */
export async function release(v: unknown): Promise<void> {
  if (v === null || typeof v !== 'object') return;
  const c = (v as { close?: unknown }).close;
  if (typeof c !== 'function') return;
  await new Promise<void>((res) => {
    try {
      const r = (c as (cb?: () => void) => unknown).call(v, () => res());
      if (r instanceof Promise) r.then(() => res(), () => res());
      else if (!(v instanceof Object && 'kernelEncap' in v)) res(); // a NattSocket calls back; the others return
    } catch {
      res();
    }
  });
}

/** The shared loopback socket the NattSocket rows send from (and to: every valid peer becomes this socket itself). */
export const shared: { socket: NattSocket | null } = { socket: null };

export async function openShared(): Promise<NattSocket> {
  shared.socket ??= await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
  return shared.socket;
}

/**
 * Traffic stays on this machine: a valid IPv4 peer address becomes 127.0.0.1 and a valid port this socket's own, so a
 * hostile call exercises the same checks but can only ever send to itself.
 */
export function toLoopback(address: unknown, port: unknown, own: number): [unknown, unknown] {
  const a = typeof address === 'string' && isIP(address) === 4 ? '127.0.0.1' : address;
  const p = typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535 ? own : port;
  return [a, p];
}

// ---- fixtures of the I/O surfaces merged later: TCP, TUN, rtnetlink (all on this host only) ----

/** Can this process make TUN devices and links (root, /dev/net/tun)? The TUN and rtnetlink rows need it. */
export const canTun = process.getuid?.() === 0 && existsSync('/dev/net/tun');

let tunSeq = 0;
/** A TUN name of this test process (the rows never touch another device by name). */
export const tunName = (): string => `nb${process.pid % 100000}t${tunSeq++ % 100}`;

/** The shared TUN the Tun and Tunnel rows use: down, no address, no route (what is written into it goes nowhere). */
export const sharedTun: { tun: Tun | null; dummy: string } = { tun: null, dummy: `nb${process.pid % 100000}d` };

export async function openSharedTun(): Promise<Tun | null> {
  if (!canTun) return null;
  sharedTun.tun ??= await createTun({ name: tunName(), up: false });
  return sharedTun.tun;
}

/** A dummy link of this process for the rtnetlink rows that change links, addresses and routes (deleted at the end). */
export function openDummy(): string | null {
  if (!canTun) return null;
  spawnSync('ip', ['link', 'del', sharedTun.dummy], { stdio: 'ignore' });
  return spawnSync('ip', ['link', 'add', sharedTun.dummy, 'type', 'dummy'], { stdio: 'ignore' }).status === 0 ? sharedTun.dummy : null;
}

export async function releaseTunFixtures(): Promise<void> {
  if (sharedTun.tun) await sharedTun.tun.close();
  sharedTun.tun = null;
  spawnSync('ip', ['link', 'del', sharedTun.dummy], { stdio: 'ignore' });
  if (sharedTcp.listener) await release(sharedTcp.listener);
  sharedTcp.listener = null;
}

/** The shared RFC 9329 listener on loopback the TCP rows connect to. */
export const sharedTcp: { listener: NattTcpListener | null } = { listener: null };

export async function openSharedTcp(): Promise<NattTcpListener> {
  sharedTcp.listener ??= await listenNattTcp({ address: '127.0.0.1', port: 0 });
  return sharedTcp.listener;
}
