// The natt command line, called in-process: probe (text and --json), --help, --version, unknown input → exit 2.

import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
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
