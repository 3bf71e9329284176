// The natt command line, called in-process and as bin/natt.js: probe, every command's --help and bad flags, exit codes.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Command, Entry, Group } from '../../src/cli/args';
import { COMMANDS, USAGE, main } from '../../src/cli/main';
import { loadNative } from '../../src/native/binding';

function run(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(argv, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) }) as number; // sync but for setkey
  return { code, out, err };
}

describe('natt CLI', () => {
  it('probe --json gives the facts, the choices of auto, and reasons in plain words', () => {
    const r = run('probe', '--json');
    expect(r.code).toBe(0);
    const p = JSON.parse(r.out);
    expect(Object.keys(p.facts).sort()).toEqual(['pfkey', 'tun', 'udpEncap4', 'udpEncap6', 'xfrm']);
    expect(['kernel', 'userland']).toContain(p.auto.nattSocket.backend);
    expect(['pfkey', 'xfrm', 'userland']).toContain(p.auto.sadb.backend);
    for (const f of Object.values(p.facts) as { ok: boolean; reason?: string }[]) {
      if (!f.ok) expect(f.reason).toMatch(/\w+ \w+/);
    }
  });

  const pf = loadNative()?.probe().pfkey;
  it.skipIf(!pf || pf.ok)(
    `probe says PF_KEY is missing with EAFNOSUPPORT and CONFIG_NET_KEY${!pf ? ' (skipped: no native addon)' : pf.ok ? ' (skipped: this kernel has PF_KEY)' : ''}`,
    () => {
      const p = JSON.parse(run('probe', '--json').out);
      expect(p.facts.pfkey).toMatchObject({ ok: false, code: 'EAFNOSUPPORT' });
      expect(p.facts.pfkey.reason).toMatch(/CONFIG_NET_KEY/);
      expect(run('probe').out).toMatch(/PF_KEY\s+no\s+EAFNOSUPPORT/);
    },
  );

  it('probe (text) has one line per facility and the choices', () => {
    const r = run('probe');
    expect(r.code).toBe(0);
    for (const label of ['PF_KEY', 'XFRM netlink', 'UDP_ENCAP IPv4', 'UDP_ENCAP IPv6', '/dev/net/tun', 'kernel ESP', 'NAT-T socket', 'SA database'])
      expect(r.out).toContain(label);
  });

  it('--help and --version go to stdout with exit 0', () => {
    expect(run('--help')).toMatchObject({ code: 0, err: '' });
    expect(run('--help').out).toMatch(/Usage: natt/);
    expect(run('--version').out).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('an unknown command, an unknown option or no command → usage on stderr, exit 2', () => {
    for (const argv of [['frobnicate'], ['probe', '--yaml'], []]) {
      const r = run(...argv);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/Usage: natt/);
    }
  });
});

/** Every command of the table with the words that reach it (['probe'], ['tunnel', 'up'], ...). */
function leaves(entries: readonly Entry[], words: string[] = []): Array<[string[], Command]> {
  return entries.flatMap((e): Array<[string[], Command]> =>
    'commands' in e ? leaves((e as Group).commands, [...words, e.name]) : [[[...words, e.name], e as Command]],
  );
}

async function runAsync(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) });
  return { code, out, err };
}

describe('every command in the table (src/cli/main.ts COMMANDS)', () => {
  const all = leaves(COMMANDS);
  it('has commands, each listed in natt --help', () => {
    expect(all.map(([w]) => w.join(' '))).toEqual(expect.arrayContaining(['probe', 'setkey']));
    for (const e of COMMANDS) expect(USAGE).toMatch(new RegExp(`^  ${e.name} `, 'm'));
  });

  for (const [words, cmd] of all) {
    const name = words.join(' ');
    it(`natt ${name} --help, -h and natt help ${name}: its usage on stdout, exit 0`, async () => {
      expect(cmd.usage).toMatch(new RegExp(`^Usage: natt ${name}\\b`));
      expect(await runAsync(...words, '--help')).toEqual({ code: 0, out: cmd.usage, err: '' });
      expect(await runAsync(...words, '-h')).toEqual({ code: 0, out: cmd.usage, err: '' });
      expect(await runAsync('help', ...words)).toEqual({ code: 0, out: cmd.usage, err: '' });
    });

    it(`natt ${name} with a bad flag: the message and its usage on stderr, exit 2`, async () => {
      for (const bad of [['--no-such-flag'], ['-%'], ['--help=yes']]) {
        const r = await runAsync(...words, ...bad);
        expect({ bad, code: r.code, out: r.out }).toEqual({ bad, code: 2, out: '' });
        expect(r.err.startsWith(`natt ${name}: `)).toBe(true);
        expect(r.err).toContain(cmd.usage);
      }
    });

    it(`natt ${name}'s usage describes every option of its table`, () => {
      for (const [long, o] of Object.entries(cmd.options)) {
        const names = [`--${long}`, ...(o.short ? [`-${o.short}`] : [])];
        expect({ long, described: names.some((n) => new RegExp(`(^|[\\s,(])${n.replace(/[-]/g, '\\-')}\\b`, 'm').test(cmd.usage)) }).toEqual({ long, described: true });
      }
    });
  }
});

describe('bin/natt.js: the exit status of the process', () => {
  const bin = path.join(__dirname, '..', '..', 'bin', 'natt.js');
  const built = fs.existsSync(path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js'));
  const natt = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  it.skipIf(!built)(`0 for help, 2 for a usage error, 1 for a failure (with what to do)${built ? '' : ' (skipped: dist/ not built; npm test compiles it first)'}`, () => {
    expect(natt('setkey', '--help').status).toBe(0);
    const u = natt('probe', '--yaml');
    expect({ status: u.status, out: u.stdout }).toEqual({ status: 2, out: '' });
    expect(u.stderr).toMatch(/^natt probe: Unknown option '--yaml'/);
    const f = natt('setkey', '-f', '/nonexistent/natt.conf');
    expect({ status: f.status, out: f.stdout }).toEqual({ status: 1, out: '' });
    expect(f.stderr).toBe('natt setkey: cannot read /nonexistent/natt.conf: ENOENT (no such file)\n');
  });
});
