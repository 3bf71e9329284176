// The daemon configuration's control section: path, mode and allowUids, their defaults and their errors (no privileges needed).

import { describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../../src/daemon/config';
import { main } from '../../src/cli/main';

function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  return Promise.resolve(main(argv, { write: (s: string) => (out += s) }, { write: (s: string) => (err += s) })).then((code) => ({ code, out, err }));
}

describe('the control section of a daemon configuration', () => {
  it('defaults: /run/natt/<tun>.sock, mode 0600, no other uids', () => {
    expect(parseDaemonConfig({}).control).toEqual({ path: '/run/natt/natt0.sock', mode: 0o600, allowUids: [], revealKeys: false });
    expect(parseDaemonConfig({ tun: { name: 'wan1' } }).control.path).toBe('/run/natt/wan1.sock');
  });

  it('mode as an octal string or a number; allowUids', () => {
    expect(parseDaemonConfig({ control: { path: '/tmp/x.sock', mode: '0660', allowUids: [1000] } }).control).toEqual({ path: '/tmp/x.sock', mode: 0o660, allowUids: [1000], revealKeys: false });
    expect(parseDaemonConfig({ control: { revealKeys: true } }).control.revealKeys).toBe(true);
    expect(parseDaemonConfig({ control: { mode: '666' } }).control.mode).toBe(0o666);
    expect(parseDaemonConfig({ control: { mode: 0o640 } }).control.mode).toBe(0o640);
  });

  it('refuses a bad mode, a bad uid and an unknown field, naming them', () => {
    expect(() => parseDaemonConfig({ control: { mode: '0800' } })).toThrow(/control\.mode/);
    expect(() => parseDaemonConfig({ control: { mode: 0o1777 } })).toThrow(/control\.mode/);
    expect(() => parseDaemonConfig({ control: { allowUids: [-1] } })).toThrow(/control\.allowUids\[0\]/);
    expect(() => parseDaemonConfig({ control: { pth: '/x' } })).toThrow(/pth/);
    expect(() => parseDaemonConfig({ control: { revealKeys: 'yes' } })).toThrow(/control\.revealKeys/);
  });
});

describe('the offload section of a daemon configuration', () => {
  it('every offload on by default; each can be switched off alone', () => {
    expect(parseDaemonConfig({}).offload).toEqual({ udpGso: true, udpGro: true, tunTso: true, tunUso: true, tunGro: true });
    expect(parseDaemonConfig({ offload: { tunGro: false } }).offload).toEqual({ udpGso: true, udpGro: true, tunTso: true, tunUso: true, tunGro: false });
  });

  it('refuses a non-boolean and an unknown name, naming them', () => {
    expect(() => parseDaemonConfig({ offload: { udpGso: 1 } })).toThrow(/offload\.udpGso/);
    expect(() => parseDaemonConfig({ offload: { tso: true } })).toThrow(/tso/);
    expect(() => parseDaemonConfig({ offload: true })).toThrow(/offload/);
  });
});

describe('natt tunnel status / down: arguments', () => {
  it('--name and --control together, a bad name, a bad timeout: usage errors (exit 2)', async () => {
    const both = await run('tunnel', 'status', '--name', 'a', '--control', '/tmp/a.sock');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/^natt tunnel status: --name and --control name the same thing: give one\n\nUsage: natt tunnel status/);
    const name = await run('tunnel', 'down', '--name', 'no/such');
    expect(name.code).toBe(2);
    expect(name.err).toMatch(/^natt tunnel down: --name "no\/such": an interface name/);
    const t = await run('tunnel', 'down', '--timeout', 'soon');
    expect(t.code).toBe(2);
    expect(t.err).toMatch(/^natt tunnel down: --timeout "soon": a number of seconds/);
  });

  it('no daemon at the path: the one message a newcomer needs, exit 1', async () => {
    const r = await run('tunnel', 'status', '--control', '/tmp/natt-no-such-daemon.sock');
    expect(r).toEqual({ code: 1, out: '', err: 'natt tunnel status: no natt daemon at /tmp/natt-no-such-daemon.sock: start one with natt tunnel up --config FILE\n' });
  });

  it('natt tunnel --help lists up, status and down', async () => {
    const r = await run('tunnel', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/up --config FILE/);
    expect(r.out).toMatch(/status \[--name TUN \| --control PATH\] \[--json\]/);
    expect(r.out).toMatch(/down \[--name TUN \| --control PATH\]/);
  });
});
