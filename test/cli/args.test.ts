// The shared argument parser (src/cli/args.ts) on a table of its own: groups, help, usage errors, failures, exit codes.

import { describe, expect, it } from 'vitest';
import { UsageError, quotedArg, runCli, runCommand, shownArg, usageAt, type Command, type Entry, type Group } from '../../src/cli/args';

function io() {
  const o = { out: '', err: '' };
  return { o, io: { out: { write: (s: string) => (o.out += s) }, err: { write: (s: string) => (o.err += s) } } };
}

const seen: unknown[] = [];
const OPTS = { name: { type: 'string', short: 'n' }, count: { type: 'string', multiple: true }, force: { type: 'boolean' } } as const;
const up: Command<typeof OPTS> = {
  name: 'up',
  synopsis: '[-n NAME]',
  summary: 'bring it up',
  usage: 'Usage: natt tunnel up [-n NAME] [--count N]... [--force]\n',
  options: OPTS,
  run({ values }) {
    seen.push(values);
    if (values.name === 'bad') throw new UsageError('-n bad is not a name');
    if (values.name === 'boom') throw new Error('EPERM: run as root or grant CAP_NET_ADMIN');
    return 0;
  },
};
const down: Command = {
  name: 'down',
  synopsis: '',
  summary: 'take it down\n(second line)',
  usage: 'Usage: natt tunnel down\n',
  options: {},
  async run() {
    await new Promise((r) => setTimeout(r, 1));
    throw new UsageError('async usage problem');
  },
};
const status: Command = {
  name: 'status',
  synopsis: '[NAME...]',
  summary: 'show it',
  usage: 'Usage: natt tunnel status [NAME...]\n',
  options: { help: { type: 'boolean' }, host: { type: 'string', short: 'h' } },
  positionals: true,
  async run({ positionals }, io) {
    io.out.write(`${positionals.join(',')}\n`);
    if (positionals[0] === 'fail') throw new Error('no tunnel named fail: natt tunnel up -n fail first');
    return 0;
  },
};
const tunnel: Group = { name: 'tunnel', synopsis: 'up|down|status', summary: 'the tunnel', description: 'Tunnels.', commands: [up, down, status] };
const TABLE: Entry[] = [tunnel];
const INFO = { usage: 'Usage: natt <command>\n', version: () => '9.9.9' };

async function cli(...argv: string[]) {
  const { o, io: w } = io();
  const code = await runCli(TABLE, argv, w, INFO);
  return { code, ...o };
}

describe('runCli / runCommand', () => {
  it('a group dispatches to its commands; the values are typed and parsed by parseArgs', async () => {
    seen.length = 0;
    expect(await cli('tunnel', 'up', '-n', 'a', '--count', '1', '--count=2', '--force')).toEqual({ code: 0, out: '', err: '' });
    expect(seen).toEqual([{ name: 'a', count: ['1', '2'], force: true }]);
  });

  it('--help and `natt help <words>` print the usage at any depth, exit 0; group help lists its commands', async () => {
    expect(await cli('tunnel', 'up', '--help')).toEqual({ code: 0, out: up.usage, err: '' });
    expect(await cli('tunnel', 'up', '-h')).toEqual({ code: 0, out: up.usage, err: '' });
    expect(await cli('help', 'tunnel', 'up')).toEqual({ code: 0, out: up.usage, err: '' });
    const g = await cli('tunnel', '--help');
    expect(g.code).toBe(0);
    expect(g.out).toMatch(/^Usage: natt tunnel <command> \[options\]\n\nTunnels\.\n\nCommands:\n  up \[-n NAME\] +bring it up\n  down +take it down\n +\(second line\)\n  status \[NAME\.\.\.\] +show it\n/);
    expect((await cli('help', 'tunnel')).out).toBe(g.out);
    expect(await cli('help')).toEqual({ code: 0, out: INFO.usage, err: '' });
    expect(await cli('--version')).toEqual({ code: 0, out: '9.9.9\n', err: '' });
    expect(usageAt(TABLE, ['tunnel', 'up', 'extra'])).toBeUndefined();
  });

  it('a table that uses -h for an option keeps it; --help still works', async () => {
    expect((await cli('tunnel', 'status', '-h', 'host1', 'a')).out).toBe('a\n');
    expect(await cli('tunnel', 'status', '--help')).toEqual({ code: 0, out: status.usage, err: '' });
  });

  it('usage errors exit 2 with the message and the usage on stderr, nothing on stdout', async () => {
    const cases: Array<[string[], RegExp, string]> = [
      [['tunnel', 'up', '--nope'], /^natt tunnel up: Unknown option '--nope'/, up.usage],
      [['tunnel', 'up', '-n'], /^natt tunnel up: Option '-n, --name <value>' argument missing/, up.usage],
      [['tunnel', 'up', '--force=yes'], /^natt tunnel up: Option '--force' does not take an argument/, up.usage],
      [['tunnel', 'up', 'stray'], /^natt tunnel up: unexpected argument "stray"\n\n/, up.usage],
      [['tunnel', 'up', '-n', 'bad'], /^natt tunnel up: -n bad is not a name\n\n/, up.usage],
      [['tunnel', 'down'], /^natt tunnel down: async usage problem\n\n/, down.usage],
      [['tunnel'], /^natt tunnel: which command\?/, 'Usage: natt tunnel <command>'],
      [['tunnel', 'sideways'], /^natt tunnel: unknown command sideways\n\n/, 'Usage: natt tunnel <command>'],
      [['frobnicate'], /^natt: unknown command frobnicate\n\n/, INFO.usage],
      [['help', 'nope'], /^natt help: no command nope\n\n/, INFO.usage],
    ];
    for (const [argv, re, usage] of cases) {
      const r = await cli(...argv);
      expect({ argv, code: r.code, out: r.out }).toEqual({ argv, code: 2, out: '' });
      expect(r.err).toMatch(re);
      expect(r.err).toContain(usage);
    }
    expect(await cli()).toEqual({ code: 2, out: '', err: INFO.usage });
  });

  it('runtime failures exit 1 with the message only (sync and async); a returned promise never rejects', async () => {
    const s = await cli('tunnel', 'up', '-n', 'boom');
    expect(s).toEqual({ code: 1, out: '', err: 'natt tunnel up: EPERM: run as root or grant CAP_NET_ADMIN\n' });
    const a = await cli('tunnel', 'status', 'fail');
    expect(a).toEqual({ code: 1, out: 'fail\n', err: 'natt tunnel status: no tunnel named fail: natt tunnel up -n fail first\n' });
    const { io: w } = io();
    const sync = runCommand(up, ['-n', 'x'], w);
    expect(sync).toBe(0); // a synchronous command stays synchronous
  });

  it('arguments that may be key material are never echoed: only their length', async () => {
    const key = '0x0123456789abcdef0123456789abcdef';
    for (const argv of [[key], ['tunnel', key], ['tunnel', 'up', key], ['help', 'tunnel', key]]) {
      const r = await cli(...argv);
      expect(r.code).toBe(2);
      expect(r.err).not.toContain('0123456789abcdef');
      expect(r.err).toContain(`<an argument of ${key.length} characters>`);
    }
    expect(shownArg('aaaaaaaaaaaaaaaa')).toBe('<an argument of 16 characters>'); // an ASCII key
    expect(shownArg('/etc/ipsec-tools.conf')).toBe('/etc/ipsec-tools.conf');
    expect(shownArg('a b')).toBe('<an argument of 3 characters>');
    expect(quotedArg('extra')).toBe('"extra"');
    expect(quotedArg('x'.repeat(70))).toBe('<an argument of 70 characters>');
  });
});
