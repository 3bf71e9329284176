// Three network namespaces for NAT tests: client 10.0.1.2 — router 10.0.1.1 | 192.0.2.1 — server 192.0.2.2.

import { execFileSync, spawnSync } from 'node:child_process';

export interface NatTopology {
  /** Namespace names: client, router, server. */
  ns: { c: string; r: string; s: string };
  /** veth names: client→router, router→client, router→server, server→router. */
  dev: { cr: string; rc: string; rs: string; sr: string };
  /** Build it (after removing any leftover of the same names). */
  setup(): void;
  /** Remove the namespaces (and with them the veths); safe to call twice. */
  teardown(): void;
}

/** Does `cmd args` run and exit 0? */
export function have(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/**
 * Why NAT tests cannot run here ('' when they can): root, ip, nft and conntrack, and a kernel that gives a namespace an
 * nftables masquerade and a conntrack table.
 */
export function natUnavailable(): string {
  if (process.getuid?.() !== 0) return 'not root';
  if (!have('ip', ['-V']) || !have('nft', ['--version']) || !have('conntrack', ['--version'])) {
    return 'needs ip, nft and conntrack (apt-get install iproute2 nftables conntrack)';
  }
  const ns = `natt-p${process.pid % 10000}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input: 'table ip nat {\n chain post {\n  type nat hook postrouting priority srcnat;\n  oifname "lo" ip protocol udp masquerade to :20000-20099\n }\n}\n',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    execFileSync('ip', ['netns', 'exec', ns, 'conntrack', '-L'], { stdio: 'pipe' });
    return '';
  } catch (e) {
    const err = String((e as { stderr?: Buffer }).stderr ?? e).split('\n')[0];
    return `this kernel cannot: ${err} (needs CONFIG_NETNS, CONFIG_NF_TABLES, CONFIG_NFT_MASQ, CONFIG_NF_CONNTRACK_NETLINK)`;
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** Run a command, in a namespace when `ns` is given; returns stdout, throws on a non-zero exit. */
export function sh(args: string[], ns?: string, input?: string): string {
  const argv = ns ? ['ip', 'netns', 'exec', ns, ...args] : args;
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/**
 * Names from `prefix` (e.g. `natt`) and `tag` (unique per test process). The client routes everything via the router,
 * the router forwards; the server has a route back to 10.0.1.0/24 only when `serverRouteBack` (without it, only a
 * masquerade on the router makes the client reachable).
 */
export function natTopology(prefix: string, tag: string, o: { serverRouteBack?: boolean } = {}): NatTopology {
  const ns = { c: `${prefix}-c${tag}`, r: `${prefix}-r${tag}`, s: `${prefix}-s${tag}` };
  const dev = { cr: `cr${tag}`, rc: `rc${tag}`, rs: `rs${tag}`, sr: `sr${tag}` };
  const teardown = (): void => {
    for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  };
  const setup = (): void => {
    teardown();
    for (const n of Object.values(ns)) sh(['ip', 'netns', 'add', n]);
    sh(['ip', 'link', 'add', dev.cr, 'netns', ns.c, 'type', 'veth', 'peer', 'name', dev.rc, 'netns', ns.r]);
    sh(['ip', 'link', 'add', dev.rs, 'netns', ns.r, 'type', 'veth', 'peer', 'name', dev.sr, 'netns', ns.s]);
    sh(['ip', 'addr', 'add', '10.0.1.2/24', 'dev', dev.cr], ns.c);
    sh(['ip', 'addr', 'add', '10.0.1.1/24', 'dev', dev.rc], ns.r);
    sh(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', dev.rs], ns.r);
    sh(['ip', 'addr', 'add', '192.0.2.2/24', 'dev', dev.sr], ns.s);
    for (const [n, devs] of [
      [ns.c, [dev.cr, 'lo']],
      [ns.r, [dev.rc, dev.rs, 'lo']],
      [ns.s, [dev.sr, 'lo']],
    ] as const) {
      for (const d of devs) sh(['ip', 'link', 'set', d, 'up'], n);
    }
    sh(['ip', 'route', 'add', 'default', 'via', '10.0.1.1'], ns.c);
    if (o.serverRouteBack) sh(['ip', 'route', 'add', '10.0.1.0/24', 'via', '192.0.2.1'], ns.s);
    sh(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], ns.r);
  };
  return { ns, dev, setup, teardown };
}
