// Test helpers for the userland engine: loopback NAT-T sockets, SA/policy pairs for two endpoints, a seeded PRNG.

import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { UserlandSadb } from '../../src/userland/sadb';
import { UserlandEngine } from '../../src/userland/engine';
import type { SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';

/** A userland NAT-T socket on loopback (port 0: a free one), as the engine uses in production. */
export function openSocket(family: 4 | 6, address = family === 4 ? '127.0.0.1' : '::1', port = 0): Promise<NattSocket> {
  return createNattSocket({ family, address, port, backend: 'userland' });
}

/** Close a NattSocket and wait for it. */
export function closeSocket(s: NattSocket): Promise<void> {
  return new Promise((res) => {
    try {
      s.close(() => res());
    } catch {
      res();
    }
  });
}

export const GCM_KEY_AB = Buffer.alloc(36, 0xab); // AES-256-GCM KEYMAT
export const GCM_KEY_BA = Buffer.alloc(36, 0xba);

export interface Endpoint {
  address: string;
  port: number;
  /** The inner network behind this endpoint (tunnel mode). */
  net: string;
}

/**
 * Install, in `db` (the database of endpoint `me`), the SAs and policies for ESP-in-UDP between `me` and `peer`:
 * spi `out` from me to peer (reqid 1), spi `in` from peer to me (reqid 2). Tunnel mode protects me.net ↔ peer.net; transport mode
 * protects me.address ↔ peer.address.
 */
export async function installPair(
  db: UserlandSadb,
  mode: 'tunnel' | 'transport',
  me: Endpoint,
  peer: Endpoint,
  spis: { out: number; in: number },
  keys: { out: Buffer; in: Buffer },
  extra: Partial<SecurityAssociation> = {},
): Promise<void> {
  const base = { mode, replayWindow: 64, ...extra } as const;
  await db.add({
    ...base,
    src: me.address,
    dst: peer.address,
    spi: spis.out,
    reqid: 1,
    encryption: { algorithm: 'aes-gcm-16', key: keys.out },
    natt: { type: 'espinudp', sport: me.port, dport: peer.port },
  });
  await db.add({
    ...base,
    src: peer.address,
    dst: me.address,
    spi: spis.in,
    reqid: 2,
    encryption: { algorithm: 'aes-gcm-16', key: keys.in },
    natt: { type: 'espinudp', sport: peer.port, dport: me.port },
  });
  // reqid tells the two SAs apart when both endpoints share an address (loopback), as on Linux.
  const tmpl = (src: string, dst: string, reqid: number): SecurityPolicy['templates'] =>
    mode === 'tunnel' ? [{ protocol: 'esp', mode, src, dst, reqid }] : [{ protocol: 'esp', mode, reqid }];
  const outSel = mode === 'tunnel' ? { src: me.net, dst: peer.net } : { src: me.address, dst: peer.address };
  const inSel = mode === 'tunnel' ? { src: peer.net, dst: me.net } : { src: peer.address, dst: me.address };
  await db.spdAdd({ selector: outSel, direction: 'out', action: 'ipsec', templates: tmpl(me.address, peer.address, 1) });
  await db.spdAdd({ selector: inSel, direction: 'in', action: 'ipsec', templates: tmpl(peer.address, me.address, 2) });
}

/** xorshift32: a small seeded PRNG so fuzz runs are reproducible. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Wait until `pred()` is true, polling on the event loop (bounded: rejects after `ms`). */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Two userland engines on loopback NAT-T sockets (A and B), tunnel or transport mode, AES-GCM-16 with GCM_KEY_AB from A
 * to B (spi `spis.ab`) and GCM_KEY_BA back (`spis.ba`). Everything opened is pushed onto `cleanup` (closed in reverse).
 */
export async function enginePair(
  family: 4 | 6,
  mode: 'tunnel' | 'transport',
  spis: { ab: number; ba: number },
  cleanup: Array<() => unknown>,
): Promise<{ a: NattSocket; b: NattSocket; dbA: UserlandSadb; dbB: UserlandSadb; A: Endpoint; B: Endpoint; ea: UserlandEngine; eb: UserlandEngine }> {
  const lo = family === 4 ? '127.0.0.1' : '::1';
  const a = await openSocket(family, lo);
  const b = await openSocket(family, lo);
  cleanup.push(() => closeSocket(a), () => closeSocket(b));
  const dbA = new UserlandSadb();
  const dbB = new UserlandSadb();
  const A = { address: lo, port: a.address().port, net: '10.1.0.0/16' };
  const B = { address: lo, port: b.address().port, net: '10.2.0.0/16' };
  await installPair(dbA, mode, A, B, { out: spis.ab, in: spis.ba }, { out: GCM_KEY_AB, in: GCM_KEY_BA });
  await installPair(dbB, mode, B, A, { out: spis.ba, in: spis.ab }, { out: GCM_KEY_BA, in: GCM_KEY_AB });
  const ea = new UserlandEngine({ socket: a, sadb: dbA });
  const eb = new UserlandEngine({ socket: b, sadb: dbB });
  cleanup.push(() => ea.close(), () => eb.close());
  return { a, b, dbA, dbB, A, B, ea, eb };
}
