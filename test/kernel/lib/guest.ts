// Helpers for kernel tests in the Linux VM: what the kernel can do, `ip xfrm` by path, UDP receive with a bound.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type * as dgram from 'node:dgram';

const IP = '/usr/sbin/ip';

/** Why the kernel ESP tests cannot run here, or null when they can (root, XFRM netlink, esp4, UDP_ENCAP). */
export function kernelEspMissing(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync(IP)) return `no ${IP}`;
  if (!existsSync('/proc/net/xfrm_stat')) return 'no XFRM in this kernel';
  const mods = existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : '';
  if (!/^esp4 /m.test(mods) && !existsSync('/sys/module/esp4')) return 'no ESP (esp4) in this kernel';
  return null;
}

/** Run /usr/sbin/ip (busybox's applet would shadow a bare `ip`); throws with ip's stderr. */
export function ip(...args: string[]): string {
  try {
    return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

/** Remove every SA and policy (each test starts from an empty SADB/SPD). */
export function flushXfrm(): void {
  ip('xfrm', 'state', 'flush');
  ip('xfrm', 'policy', 'flush');
}

/** Lowercase hex of bytes, for `ip xfrm` key arguments (0x-prefixed). */
export function hexKey(b: Uint8Array): string {
  return '0x' + Buffer.from(b).toString('hex');
}

/** The next datagram on a dgram socket, or a rejection after `ms` (bounds a hang; not a timing assertion). */
export function nextDatagram(sock: dgram.Socket, ms = 10_000): Promise<{ msg: Buffer; rinfo: dgram.RemoteInfo }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      sock.off('message', on);
      reject(new Error(`no datagram within ${ms} ms`));
    }, ms);
    const on = (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      clearTimeout(t);
      resolve({ msg, rinfo });
    };
    sock.once('message', on);
  });
}

/** Resolve with the first emission of `event`, or reject after `ms`. */
export function nextEvent<T extends unknown[]>(em: NodeJS.EventEmitter, event: string, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      em.off(event, on);
      reject(new Error(`no '${event}' within ${ms} ms`));
    }, ms);
    const on = (...args: unknown[]) => {
      clearTimeout(t);
      resolve(args as T);
    };
    em.once(event, on);
  });
}

/** The packet counter of one SA as `ip -s xfrm state get` reports it. */
export function saPackets(src: string, dst: string, spi: number): number {
  const out = ip('-s', 'xfrm', 'state', 'get', 'src', src, 'dst', dst, 'proto', 'esp', 'spi', '0x' + spi.toString(16));
  const m = /(\d+)\(bytes\), (\d+)\(packets\)/.exec(out);
  return m ? Number(m[2]) : -1;
}

/** /proc/net/xfrm_stat as numbers, for messages when a packet went missing. */
export function xfrmStat(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/net/xfrm_stat', 'utf8').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && Number(v)) out[k] = Number(v);
  }
  return out;
}

/** Local UDP ports some socket of this host holds (IPv4 and IPv6), from /proc/net/udp{,6}. */
export function udpPortsInUse(): Set<number> {
  const ports = new Set<number>();
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local) ports.add(parseInt(local.split(':').pop()!, 16));
    }
  }
  return ports;
}

/** Resolve once `cond()` holds (polled), or reject after `ms` with `what` (bounds a hang; not a timing assertion). */
export async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what()} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
