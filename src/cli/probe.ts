// `natt probe [--json]`: what this host's kernel offers for NAT-T and what 'auto' picks, for people or as JSON.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { probe, type Fact, type ProbeResult } from '../probe';
import type { Command } from './args';

/** natt's version, from its package.json. */
export function version(): string {
  const pkg = path.join(__dirname, '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function line(label: string, f: Fact): string {
  return `  ${label.padEnd(16)}${f.ok ? 'yes' : `no   ${f.code}: ${f.reason}`}\n`;
}

/** The human-readable report of a probe. */
export function formatProbe(p: ProbeResult): string {
  let s = `natt ${version()} on ${p.platform} ${p.release} (${p.arch}), node ${p.node}\n`;
  s += `  native addon    ${p.native.loaded ? `loaded from ${p.native.path}` : `not loaded: ${p.native.reason}`}\n`;
  s += line('PF_KEY', p.facts.pfkey);
  s += line('XFRM netlink', p.facts.xfrm);
  s += line('UDP_ENCAP IPv4', p.facts.udpEncap4);
  s += line('UDP_ENCAP IPv6', p.facts.udpEncap6);
  s += line('/dev/net/tun', p.facts.tun);
  s += `  kernel ESP      IPv4 ${p.kernelEsp.v4 ? 'yes' : 'no'}, IPv6 ${p.kernelEsp.v6 ? 'yes' : 'no'} (${p.kernelEsp.reason})\n`;
  s += `  ESP in TCP      ${p.espInTcp.ok ? 'yes' : 'no'}   ${p.espInTcp.reason}\n`;
  s += `backend 'auto' picks:\n`;
  s += `  NAT-T socket    ${p.auto.nattSocket.backend}: ${p.auto.nattSocket.reason}\n`;
  s += `  SA database     ${p.auto.sadb.backend}: ${p.auto.sadb.reason}\n`;
  return s;
}

const PROBE_OPTIONS = {
  json: { type: 'boolean' },
} as const;

export const probeCommand: Command<typeof PROBE_OPTIONS> = {
  name: 'probe',
  synopsis: '[--json]',
  summary: "what this host's kernel offers for IPsec NAT-T (PF_KEY, XFRM, UDP_ENCAP, TUN,\nkernel ESP in UDP and in TCP), which backends 'auto' picks, and why",
  usage: `Usage: natt probe [--json]

What this host's kernel offers for IPsec NAT-T: whether PF_KEY, XFRM netlink, UDP_ENCAP (IPv4, IPv6) and
/dev/net/tun can be opened (the errno and what to do where not), whether the kernel can do ESP, whether the native
addon loaded and from which file, and which backend 'auto' picks for the NAT-T socket and the SA database, and why.
Opens and closes a few sockets; changes nothing.

  --json             print probe()'s result as JSON (for programs; fields may be added, never renamed)
  -h, --help         show this help

Exit status: 0 done, 1 a failure, 2 a usage error.
`,
  options: PROBE_OPTIONS,
  run({ values }, io) {
    const p = probe();
    io.out.write(values.json ? `${JSON.stringify(p, null, 2)}\n` : formatProbe(p));
    return 0;
  },
};
