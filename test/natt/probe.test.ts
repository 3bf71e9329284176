// probe() and kernelEspSupport(): the facts of this host, and the Linux module/config rule on given texts.

import { describe, expect, it } from 'vitest';
import { kernelEspSupport, linuxKernelEsp, probe } from '../../src/probe';
import { chooseSadbBackend } from '../../src/open';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createNattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';
import { formatProbe } from '../../src/cli/probe';
import { ensureDist } from '../lib/dist';

describe('kernelEspSupport on Linux texts', () => {
  const rel = '6.1.0-test';
  it('a loaded module counts', () => {
    expect(linuxKernelEsp(rel, { modules: 'esp4 24576 0 - Live 0x0\nesp6 1 0 - Live 0\n' })).toMatchObject({ v4: true, v6: true });
  });
  it('built in (modules.builtin) counts', () => {
    expect(linuxKernelEsp(rel, { builtin: 'kernel/net/ipv4/esp4.ko\n' })).toMatchObject({ v4: true, v6: false });
  });
  it('an autoloadable module (modules.dep, compressed) counts', () => {
    const dep = 'kernel/net/ipv6/esp6.ko.xz: kernel/net/xfrm/xfrm_algo.ko.xz\nkernel/net/ipv4/esp4.ko.zst:\n';
    expect(linuxKernelEsp(rel, { dep })).toMatchObject({ v4: true, v6: true });
  });
  it('esp4 named as a dependency counts; esp4_offload loaded alone does not', () => {
    expect(linuxKernelEsp(rel, { dep: 'kernel/net/ipv4/esp4_offload.ko: kernel/net/ipv4/esp4.ko\n' }).v4).toBe(true);
    expect(linuxKernelEsp(rel, { modules: 'esp4_offload 1 0 - Live 0\n' }).v4).toBe(false);
  });
  it('the config decides when no module list tells: =y yes, =m without modules no, unset no', () => {
    expect(linuxKernelEsp(rel, { config: 'CONFIG_INET_ESP=y\nCONFIG_INET6_ESP=m\n' })).toMatchObject({ v4: true, v6: false });
    const none = linuxKernelEsp(rel, { config: '# CONFIG_INET_ESP is not set\n' });
    expect(none).toMatchObject({ v4: false, v6: false });
    expect(none.reason).toMatch(/without CONFIG_INET_ESP/);
    expect(linuxKernelEsp(rel, {}).reason).toMatch(/no esp4 found/);
  });
});

describe('probe() on this host', () => {
  it('has the facts, kernel ESP and the choices of auto, consistent with each other', () => {
    const p = probe();
    expect(p.kernelEsp).toEqual(kernelEspSupport());
    if (!p.kernelEsp.v4) {
      expect(p.auto.nattSocket.backend).toBe('userland');
      expect(p.auto.sadb.backend).toBe('userland');
    }
    if (!p.facts.udpEncap4.ok) expect(p.auto.nattSocket.backend).toBe('userland');
    expect(chooseSadbBackend()).toEqual(p.auto.sadb);
    expect(p.auto.nattSocket.reason.length).toBeGreaterThan(10);
  });
});

describe('probe().ipsecBypass: whether the IKE sockets get their per-socket IPsec bypass', () => {
  const native = loadNative();
  it.skipIf(!native)(`says what a NattSocket gets, per family${native ? '' : ' (skipped: the native addon is not built)'}`, async () => {
    const p = probe();
    for (const family of [4, 6] as const) {
      const s = await createNattSocket({ family, address: family === 4 ? '127.0.0.1' : '::1', port: 0, backend: 'userland' });
      expect(p.ipsecBypass[`v${family}`]).toEqual(s.bypass);
      await new Promise<void>((r) => s.close(() => r()));
    }
    expect(formatProbe(p)).toMatch(/IPsec bypass IPv4 (yes|no )/);
  });

  const why = !native ? 'the native addon is not built' : process.getuid?.() !== 0 ? 'not root' : !existsSync('/usr/bin/setpriv') ? 'no setpriv' : '';
  it.skipIf(!!why || process.platform !== 'linux')(`without CAP_NET_ADMIN: not active, and why${why ? ` (skipped: ${why})` : ''}`, () => {
    ensureDist();
    const script = `console.log(JSON.stringify(require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'probe'))}).probe().ipsecBypass))`;
    const r = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    const b = JSON.parse(r.stdout) as { v4: { active: boolean; reason: string } };
    expect(b.v4.active).toBe(false);
    expect(b.v4.reason).toMatch(/refused.*(EPERM|CAP_NET_ADMIN|privilege)/i);
  });
});
