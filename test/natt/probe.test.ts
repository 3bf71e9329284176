// probe() and kernelEspSupport(): the facts of this host, and the Linux module/config rule on given texts.

import { describe, expect, it } from 'vitest';
import { kernelEspSupport, linuxKernelEsp, probe } from '../../src/probe';
import { chooseSadbBackend } from '../../src/open';

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
