// The `natt` command line: `natt probe [--json]`, `natt setkey ...`, `--help`, `--version`; unknown input → usage, exit 2.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { probe, type Fact, type ProbeResult } from '../probe';
import { tunnelCommand } from './tunnel';
import { setkeyCommand } from './setkey';

interface Out {
  write(s: string): unknown;
}

const USAGE = `Usage: natt <command> [options]

Commands:
  probe [--json]   what this host's kernel offers for IPsec NAT-T (PF_KEY, XFRM, UDP_ENCAP, TUN,
                   kernel ESP), which backends 'auto' picks, and why
  setkey ...       setkey(8): -f FILE, -c, -D, -DP, -F, -FP, -n (natt setkey --help)
  tunnel up --config FILE   the tunnel daemon: a TUN, a NAT-T socket and userland ESP (natt tunnel --help)

Options:
  -h, --help       show this help
  -v, --version    print the version
`;

function version(): string {
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
  s += `backend 'auto' picks:\n`;
  s += `  NAT-T socket    ${p.auto.nattSocket.backend}: ${p.auto.nattSocket.reason}\n`;
  s += `  SA database     ${p.auto.sadb.backend}: ${p.auto.sadb.reason}\n`;
  return s;
}

/** setkey's own command-line flags: given to `natt` itself, they get a hint that they live under `natt setkey`. */
const SETKEY_FLAGS = /^-(?:[cfnDFPkrx]|DP|FP|PD|PF)$/;

/**
 * Run the CLI with arguments (without node and script); returns the exit code (a promise of it for `setkey`, whose
 * database calls are asynchronous).
 */
export function main(argv: string[], out: Out = process.stdout, err: Out = process.stderr): number | Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'setkey') return setkeyCommand(rest, { out, err });
  if (cmd === 'tunnel') return tunnelCommand(rest, { out, err });
  if (cmd === '-h' || cmd === '--help' || cmd === 'help') {
    out.write(USAGE);
    return 0;
  }
  if (cmd === '-v' || cmd === '--version') {
    out.write(`${version()}\n`);
    return 0;
  }
  if (cmd === 'probe') {
    const unknown = rest.filter((a) => a !== '--json');
    if (unknown.length) {
      err.write(`natt probe: unknown option ${unknown[0]}\n\n${USAGE}`);
      return 2;
    }
    const p = probe();
    out.write(rest.includes('--json') ? `${JSON.stringify(p, null, 2)}\n` : formatProbe(p));
    return 0;
  }
  const hint = cmd !== undefined && SETKEY_FLAGS.test(cmd) ? ` (setkey's flags live under \`natt setkey\`: natt setkey ${argv.join(' ')})` : '';
  err.write(cmd === undefined ? USAGE : `natt: unknown command ${cmd}${hint}\n\n${USAGE}`);
  return 2;
}
