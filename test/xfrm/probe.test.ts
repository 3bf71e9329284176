// probeXfrm and the XFRM part of chooseSadbBackend: the verdict from facts, /proc/crypto parsing, and this host.

import { describe, expect, it } from 'vitest';
import { probeXfrm } from '../../src/xfrm/probe';
import { cryptoTemplates, xfrmPreferred, xfrmVerdict } from '../../src/probe';
import { linuxKernelEsp } from '../../src/probe';
import { loadNative } from '../../src/native/binding';

const facts = (xfrmOk: boolean) => ({
  pfkey: { ok: true },
  xfrm: xfrmOk ? { ok: true } : { ok: false, code: 'EPROTONOSUPPORT', reason: 'this kernel has no XFRM netlink: CONFIG_XFRM_USER' },
  udpEncap4: { ok: true },
  udpEncap6: { ok: true },
  tun: { ok: true },
});

describe('XFRM probe', () => {
  it('XFRM is preferred on Linux when the socket opens and the kernel has ESP; otherwise it says why', () => {
    const esp = linuxKernelEsp('6.1.0', { modules: 'esp4 28672 0 - Live 0x0\nesp6 1 0 - Live 0\n' });
    const none = linuxKernelEsp('6.18.0', { config: 'CONFIG_XFRM_USER=y\n# CONFIG_INET_ESP is not set\n' });
    expect(xfrmPreferred({ platform: 'linux', facts: facts(true), kernelEsp: esp })).toMatchObject({ backend: 'xfrm' });
    expect(xfrmVerdict({ platform: 'linux', facts: facts(true), kernelEsp: none })).toMatchObject({ canDoEsp: false, reason: expect.stringMatching(/CONFIG_INET_ESP/) });
    expect(xfrmPreferred({ platform: 'linux', facts: facts(false), kernelEsp: esp })).toBeUndefined();
    expect(xfrmVerdict({ platform: 'linux', facts: facts(false), kernelEsp: esp }).reason).toMatch(/CONFIG_XFRM_USER/);
    // PF_KEY-only systems keep their own backend.
    expect(xfrmPreferred({ platform: 'netbsd', facts: facts(true), kernelEsp: esp })).toBeUndefined();
    expect(xfrmPreferred({ platform: 'freebsd', facts: facts(true), kernelEsp: esp })).toBeUndefined();
  });

  it('/proc/crypto: which of the templates natt maps are listed now', () => {
    const text = 'name         : rfc4106(gcm(aes))\ndriver       : rfc4106-gcm-aesni\n\nname         : cbc(aes)\ndriver       : cbc-aes-aesni\n';
    expect(cryptoTemplates(text)).toMatchObject({ 'rfc4106(gcm(aes))': true, 'cbc(aes)': true, 'rfc7539esp(chacha20,poly1305)': false });
    expect(Object.values(cryptoTemplates(undefined)).every((v) => v === false)).toBe(true);
  });

  it.skipIf(process.platform !== 'linux' || !loadNative())('on this host: a verdict with its reason, never a throw', async () => {
    const p = await probeXfrm({ timeout: 2000 });
    expect(typeof p.canDoEsp).toBe('boolean');
    expect(p.reason.length).toBeGreaterThan(10);
    if (p.netlink.ok && process.getuid?.() === 0) expect(p.sadInfo ?? p.sadInfoError).toBeDefined();
    if (!p.kernelEsp.v4) expect(p.canDoEsp).toBe(false);
  });
});
