// Test helpers for ESP over TCP: SA pairs with natt.type 'espintcp', a listener and an initiator on loopback, waiting.

import { UserlandSadb } from '../../src/userland/sadb';
import type { SaNattType, SecurityPolicy } from '../../src/sadb/types';
import { listenNattTcp, type ListenNattTcpOptions, type NattTcpListener } from '../../src/tcp/listener';
import { connectNattTcp, type ConnectNattTcpOptions, type NattTcpClient } from '../../src/tcp/client';

export const KEY_CS = Buffer.alloc(36, 0x3c); // AES-256-GCM KEYMAT, client → server
export const KEY_SC = Buffer.alloc(36, 0xc3);

export interface Side {
  address: string;
  port: number;
  net: string;
}

/**
 * In `db` (endpoint `me`'s), the SAs and policies of a tunnel between me.net and peer.net: spi `out` me → peer
 * (reqid 1), spi `in` peer → me (reqid 2), both with natt.type `type` (default 'espintcp') and the given ports.
 */
export async function installTunnel(
  db: UserlandSadb,
  me: Side,
  peer: Side,
  spis: { out: number; in: number },
  keys: { out: Buffer; in: Buffer },
  type: SaNattType = 'espintcp',
): Promise<void> {
  await db.add({
    src: me.address, dst: peer.address, spi: spis.out, mode: 'tunnel', reqid: 1, replayWindow: 1024,
    encryption: { algorithm: 'aes-gcm-16', key: keys.out }, natt: { type, sport: me.port, dport: peer.port },
  });
  await db.add({
    src: peer.address, dst: me.address, spi: spis.in, mode: 'tunnel', reqid: 2, replayWindow: 1024,
    encryption: { algorithm: 'aes-gcm-16', key: keys.in }, natt: { type, sport: peer.port, dport: me.port },
  });
  const t = (src: string, dst: string, reqid: number): SecurityPolicy['templates'] => [{ protocol: 'esp', mode: 'tunnel', src, dst, reqid }];
  await db.spdAdd({ selector: { src: me.net, dst: peer.net }, direction: 'out', action: 'ipsec', templates: t(me.address, peer.address, 1) });
  await db.spdAdd({ selector: { src: peer.net, dst: me.net }, direction: 'in', action: 'ipsec', templates: t(peer.address, me.address, 2) });
}

/** A listener on 127.0.0.1 (a free port) and an initiator connected to it. */
export async function loopbackPair(
  lopts: ListenNattTcpOptions = {},
  copts: Partial<ConnectNattTcpOptions> = {},
): Promise<{ listener: NattTcpListener; client: NattTcpClient }> {
  const listener = await listenNattTcp({ address: '127.0.0.1', port: 0, ...lopts });
  const client = await connectNattTcp({ host: '127.0.0.1', port: listener.address().port, ...copts });
  return { listener, client };
}

/** Close anything with close(cb), waiting for it (never throws). */
export function closeAll(...xs: Array<{ close(cb?: () => void): void } | undefined>): Promise<void> {
  return Promise.all(
    xs.map(
      (x) =>
        new Promise<void>((res) => {
          if (!x) return res();
          const t = setTimeout(res, 3000);
          try {
            x.close(() => {
              clearTimeout(t);
              res();
            });
          } catch {
            clearTimeout(t);
            res();
          }
        }),
    ),
  ).then(() => undefined);
}

/** Wait until `pred()` holds, polling (rejects after `ms` naming `what`). */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
