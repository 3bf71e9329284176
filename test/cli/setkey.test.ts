// `natt setkey` in-process on a real UserlandSadb: files, stdin, -D/-DP, -F/-FP, -n, --json, errors and exit codes.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { setkeyCommand, type SetkeyIo, type SetkeyOpenOptions } from '../../src/cli/setkey';
import { main } from '../../src/cli/main';
import { UserlandSadb } from '../../src/userland';
import { loadNative } from '../../src/native/binding';
import type { Sadb } from '../../src/sadb/types';

const CORPUS = path.join(__dirname, '..', 'fixtures', 'setkey-corpus');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-setkey-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
}

async function run(argv: string[], extra: Partial<SetkeyIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await setkeyCommand(argv, { out: { write: (s: string) => (out += s) }, err: { write: (s: string) => (err += s) }, ...extra });
  return { code, out, err };
}

async function count(db: Sadb): Promise<[number, number]> {
  let sas = 0;
  let pols = 0;
  for await (const _ of db.dump()) sas++;
  for await (const _ of db.spdDump()) pols++;
  return [sas, pols];
}

const K = `"${'a'.repeat(16)}"`;
const H = `"${'h'.repeat(32)}"`;

describe('natt setkey', () => {
  it('-f FILE applies the file to the database; -D and -DP print it in setkey layout, keys hidden unless --reveal-keys', async () => {
    const sadb = new UserlandSadb();
    const r = await run(['-f', path.join(CORPUS, '09-netbsd-tunnel-ipcomp.conf')], { sadb });
    // The file's two ESP SAs have -E and no -A: applied, each with a warning on stderr.
    expect(r).toMatchObject({ code: 0, out: '' });
    expect(r.err.match(/WARNING: ESP without -A encrypts but does not authenticate/g)).toHaveLength(2);
    expect(await count(sadb)).toEqual([4, 2]);
    const d = await run(['-D'], { sadb });
    expect(d.code).toBe(0);
    expect(d.out).toContain('20.0.0.1 20.0.0.2 \n\tesp mode=transport spi=10000(0x00002710) reqid=0(0x00000000)\n\tE: aes-cbc  (128-bit key hidden)\n');
    expect(d.out).toContain('\tipcomp mode=transport spi=10001(0x00002711)');
    expect(d.out).not.toContain('61616161');
    expect((await run(['-D', '--reveal-keys'], { sadb })).out).toContain('\tE: aes-cbc  61616161 61616161 61616161 61616161\n');
    const p = await run(['-DP'], { sadb });
    expect(p.out).toContain('10.0.1.0/24[any] 10.0.2.0/24[any] any\n\tout prio def ipsec\n\tipcomp/tunnel/20.0.0.1-20.0.0.2/require\n\tesp/transport//require\n');
    expect((await run(['-D', '-P'], { sadb })).out).toBe(p.out);
  });

  it('--json: the typed model; keys only with --reveal-keys; -4/-6 filter dumps', async () => {
    const sadb = new UserlandSadb();
    await run(['-f', file('mixed.conf', `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${K} -A hmac-sha256 ${H};\nadd ::1 ::2 esp 0x200 -E aes-cbc ${K} -A hmac-sha256 ${H};`)], { sadb });
    const j = JSON.parse((await run(['-D', '--json'], { sadb })).out);
    expect(j.map((sa: { spi: number }) => sa.spi).sort()).toEqual([0x100, 0x200]);
    expect(j[0].encryption).toEqual({ algorithm: 'aes-cbc' });
    const jr = JSON.parse((await run(['-D', '--json', '--reveal-keys'], { sadb })).out);
    expect(jr[0].encryption).toEqual({ algorithm: 'aes-cbc', key: '61'.repeat(16) });
    expect(JSON.parse((await run(['-D', '--json', '-6'], { sadb })).out).map((sa: { src: string }) => sa.src)).toEqual(['::1']);
    expect((await run(['-D', '-4'], { sadb })).out).not.toContain('::1');
  });

  it('-n parses and checks, applies nothing, and prints what would be done (keys hidden), notes included', async () => {
    const sadb = new UserlandSadb();
    const r = await run(['-n', '-f', path.join(CORPUS, '31-racoon-ipsec-tools-spdconf-natt.conf')], { sadb });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/31-racoon-ipsec-tools-spdconf-natt\.conf:7: spdadd 10\.0\.12\.200\/32 10\.0\.12\.0\/24 any -P out ipsec esp\/tunnel\/192\.168\.1\.10-203\.0\.113\.1\/require ;\n    note: the ports in the tunnel endpoints/);
    expect(r.out).toMatch(/5 operations checked for the userland backend \(userland\); nothing was applied \(-n\)\n$/);
    expect(await count(sadb)).toEqual([0, 0]);
    const k = await run(['-n', '-f', file('k.conf', `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${K} -A hmac-sha256 ${H};`)], { sadb });
    expect(k.out).toContain('add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc <hidden> -A hmac-sha256 <hidden> ;');
    const j = JSON.parse((await run(['-n', '--json', '-f', path.join(tmp, 'k.conf')], { sadb })).out);
    expect(j).toMatchObject({ dryRun: true, backend: 'userland', platform: 'userland', ops: [{ op: 'add', at: { line: 1, column: 1 }, sa: { spi: 0x100, encryption: { algorithm: 'aes-cbc' } } }] });
    expect(JSON.stringify(j)).not.toContain('6161');
    expect((await run(['-n', '-F'], { sadb })).out).toBe('would flush the SAD (-n: nothing was done)\n');
  });

  it('a file that fails anywhere applies nothing: exit 1, the position, the SAD unchanged', async () => {
    const sadb = new UserlandSadb();
    await run(['-f', file('one.conf', `add 10.0.0.9 10.0.0.8 esp 0x999 -E aes-cbc ${K} -A hmac-sha256 ${H};`)], { sadb });
    const bad = file('bad.conf', `flush;\nadd 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${K} -A hmac-sha256 ${H};\nspdadd 10.0.0.0/24 10.1.0.0/24 any -P out ipsec\n  esp/tunnel/10.0.0.1-10.0.0.2/requre;\n`);
    const r = await run(['-f', bad], { sadb });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`natt setkey: ${bad}:4:32: expected a level (default, use, require, unique or unique:N)`);
    expect(r.err).toContain('nothing was applied');
    expect(await count(sadb)).toEqual([1, 0]); // not flushed, not added
    // What natt cannot do: every place listed, still nothing applied.
    const u = await run(['-f', path.join(CORPUS, '17-audit-test-lspp-ctx.conf')], { sadb });
    expect(u.code).toBe(1);
    expect(u.err.match(/-ctx, SELinux/g)).toHaveLength(60);
    expect(u.err).toMatch(/nothing was applied: 60 places in .* ask for what the userland backend cannot do/);
    expect(await count(sadb)).toEqual([1, 0]);
    const j = JSON.parse((await run(['--json', '-f', bad], { sadb })).out);
    expect(j.error).toMatchObject({ kind: 'parse', line: 4, column: 32, code: 'ERR_NATT_SETKEY_PARSE' });
  });

  it('a database refusal: reported with its line, the others applied (as setkey), exit 1', async () => {
    const sadb = new UserlandSadb();
    const r = await run(['-f', path.join(CORPUS, '05-netbsd-natt-ipv4.conf')], { sadb });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/05-netbsd-natt-ipv4\.conf:13:1: SADB_ADD failed: EEXIST/);
    expect(r.err).toContain('1 of 8 operations failed; the other 7 were applied');
    expect(await count(sadb)).toEqual([3, 4]);
  });

  it('-v prints each operation; dump statements in a file print; -c reads stdin; -f - too', async () => {
    const sadb = new UserlandSadb();
    const text = `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${K} -A hmac-sha256 ${H};\ndump esp;\nspddump;`;
    const v = await run(['-c', '-v'], { sadb, stdin: text });
    expect(v.code).toBe(0);
    expect(v.out).toMatch(/^<stdin>:1: add 10\.0\.0\.1 10\.0\.0\.2 esp 0x100 -E aes-cbc <hidden> -A hmac-sha256 <hidden> ; ok\n/);
    expect(v.out).toContain('\tesp mode=transport spi=256(0x00000100)');
    expect(v.out).toContain('No SPD entries.\n');
    const s = await run(['-f', '-'], { sadb, stdin: (async function* () { yield Buffer.from('flush;\n'); })() });
    expect(s.code).toBe(0);
    expect(await count(sadb)).toEqual([0, 0]);
  });

  it('-F and -FP flush the SAD and the SPD', async () => {
    const sadb = new UserlandSadb();
    await run(['-f', path.join(CORPUS, '09-netbsd-tunnel-ipcomp.conf')], { sadb });
    expect((await run(['-FP'], { sadb })).code).toBe(0);
    expect(await count(sadb)).toEqual([4, 0]);
    expect((await run(['-F'], { sadb })).code).toBe(0);
    expect(await count(sadb)).toEqual([0, 0]);
  });

  it('-k / -r: setkey -r adds a fwd twin to every in policy', async () => {
    const sadb = new UserlandSadb();
    const f = file('in.conf', 'spdadd 10.0.0.0/8 10.1.0.0/16 any -P in none;');
    await run(['-r', '-f', f], { sadb });
    expect(await count(sadb)).toEqual([0, 2]);
    await run(['-FP'], { sadb });
    await run(['-k', '-f', f], { sadb });
    expect(await count(sadb)).toEqual([0, 1]);
  });

  it('usage errors exit 2 with what to do', async () => {
    const sadb = new UserlandSadb();
    const cases: Array<[string[], RegExp]> = [
      [[], /nothing to do: give -f FILE, -c, -D \(-DP\) or -F \(-FP\)/],
      [['-D', '-F'], /-D and -F cannot be combined/],
      [['-f', 'x', '-c'], /-f and -c cannot be combined/],
      [['-P'], /-P goes with -D or -F/],
      [['-x'], /Unknown option '-x'/],
      [['-f'], /argument missing|requires|-f/i],
      [['-D', 'extra'], /unexpected argument "extra".*-f FILE/],
      [['-D', '--backend', 'solaris'], /--backend must be one of pfkey, xfrm, userland, daemon, auto/],
      [['-D', '--control', '/run/natt.sock'], /--control PATH goes with --backend daemon/],
      [['-D', '-4', '-6'], /-4 and -6 cannot be combined/],
      [['-f', 'x', '-k', '-r'], /-k and -r cannot be combined/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(argv, { sadb });
      expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
      expect(r.err).toMatch(re);
      expect(r.err).toContain('Usage: natt setkey');
      expect(r.out).toBe('');
    }
    const h = await run(['-h']);
    expect(h).toMatchObject({ code: 0, err: '' });
    expect(h.out).toMatch(/^Usage: natt setkey/);
  });

  it('runtime errors exit 1: a missing file, a database that will not open', async () => {
    const r = await run(['-f', path.join(tmp, 'nope.conf')], { sadb: new UserlandSadb() });
    expect(r).toMatchObject({ code: 1, out: '' });
    expect(r.err).toMatch(/cannot read .*nope\.conf: ENOENT \(no such file\)/);
    const o = await run(['-D'], { openSadb: async () => Promise.reject(new Error('EPERM: run as root')) });
    expect(o.code).toBe(1);
    expect(o.err).toContain('cannot open the SA database (--backend auto): EPERM: run as root');
  });

  it('opens the database with the backend asked (passing --control through for the daemon), and closes it', async () => {
    let asked: SetkeyOpenOptions | undefined;
    const db = new UserlandSadb();
    const r = await run(['-D', '--backend', 'daemon', '--control', '/run/natt/control.sock'], {
      openSadb: async (o) => {
        asked = o;
        return db;
      },
    });
    expect(r.code).toBe(0);
    expect(asked).toEqual({ backend: 'daemon', control: '/run/natt/control.sock' });
    await expect(db.flush()).rejects.toThrow(/closed/);
  });

  it('the real openSadb with --backend userland: works, and says the database lives in this process only', async () => {
    const r = await run(['--backend', 'userland', '-f', path.join(CORPUS, '27-ipsec-tools-setkey-conf-none.conf')]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/userland SA database lives in this process only/);
  });
});

describe('natt (main) and setkey', () => {
  it('natt setkey ... runs the command; setkey flags given to natt itself get a hint', async () => {
    let out = '';
    let err = '';
    const w = { write: (s: string) => (out += s) };
    const e = { write: (s: string) => (err += s) };
    expect(await main(['setkey', '--help'], w, e)).toBe(0);
    expect(out).toMatch(/^Usage: natt setkey/);
    out = '';
    expect(await main(['-DP'], w, e)).toBe(2);
    expect(err).toMatch(/unknown command -DP \(setkey's flags live under `natt setkey`: natt setkey -DP\)/);
    err = '';
    expect(await main(['-f', 'x.conf'], w, e)).toBe(2);
    expect(err).toContain('natt setkey -f x.conf');
    err = '';
    expect(await main(['frobnicate'], w, e)).toBe(2);
    expect(err).not.toContain("setkey's flags");
  });
});

const ADDON = loadNative() !== null;

describe('natt setkey --backend daemon', () => {
  it.skipIf(!ADDON)(`${ADDON ? '' : '(skipped: the native addon is not built, the control socket needs it) '}applies a file to a running daemon over its control socket and dumps it back (no stand-in: serveControl on a real Unix socket)`, async () => {
    const { serveControl } = await import('../../src/control/server');
    const daemonDb = new UserlandSadb();
    const sock = path.join(tmp, 'daemon.sock');
    const server = await serveControl(daemonDb, { path: sock });
    try {
      const conf = file(
        'daemon.conf',
        `add 192.0.2.1 198.51.100.7 esp-udp 0x1001 -m tunnel -E aes-cbc ${K} -A hmac-sha1 "${'h'.repeat(20)}";\n` +
          'spdadd 10.1.0.0/16 10.2.0.0/16 any -P out ipsec esp/tunnel/192.0.2.1-198.51.100.7/require;\n',
      );
      const r = await run(['--backend', 'daemon', '--control', sock, '-f', conf]);
      expect(r).toMatchObject({ code: 0 });
      expect(await count(daemonDb)).toEqual([1, 1]);
      const d = await run(['--backend', 'daemon', '--control', sock, '-D']);
      expect(d.code).toBe(0);
      expect(d.out).toMatch(/^192\.0\.2\.1\[4500\] 198\.51\.100\.7\[4500\] \n\tesp-udp mode=tunnel spi=4097\(0x00001001\)/);
      expect(d.out).not.toContain('6868');
    } finally {
      await server.close();
      await daemonDb.close();
    }
  });
});
