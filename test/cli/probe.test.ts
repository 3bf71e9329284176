// natt probe's added facts: capabilities, the IKE-socket bypass, crypto templates, the fast path, kernel notes; JSON keeps its old fields.

import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kernelNotes, linuxCryptoTemplates, linuxPrivileges, linuxVersion, probe } from '../../src/probe';
import { formatProbe, probeReport } from '../../src/cli/probe';
import { loadNative } from '../../src/native/binding';
import { ensureDist, ROOT } from '../lib/dist';

describe('capabilities from /proc/self/status', () => {
  it('reads CAP_NET_ADMIN (12), CAP_NET_RAW (13) and CAP_NET_BIND_SERVICE (10) from CapEff', () => {
    const all = linuxPrivileges('Name:\tnode\nCapEff:\t000001ffffffffff\n', 0);
    expect(all).toMatchObject({ netAdmin: true, netRaw: true, netBindService: true });
    expect(all.reason).toMatch(/^root, effective capabilities 0x1ffffffffff: CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE$/);
    const raw = linuxPrivileges('CapEff:\t0000000000002000\n', 1000);
    expect(raw).toMatchObject({ netAdmin: false, netRaw: true, netBindService: false });
    expect(raw.reason).toMatch(/uid 1000.*without CAP_NET_ADMIN .*setcap/);
    expect(linuxPrivileges('CapEff:\t0000000000000000\n', 1000).reason).toMatch(/none of natt's; without CAP_NET_ADMIN .*, CAP_NET_RAW/);
    expect(linuxPrivileges(undefined, 0)).toMatchObject({ netAdmin: null, netRaw: null });
  });
});

describe('crypto templates', () => {
  it('present in /proc/crypto, loadable from the config, else absent; the AEADs listed', () => {
    const crypto = 'name         : rfc4106(gcm(aes))\ndriver       : rfc4106(gcm_base(ctr(aes-aesni),ghash-clmulni))\nname         : cbc(aes)\n';
    const t = linuxCryptoTemplates({ crypto, config: 'CONFIG_CRYPTO_GCM=m\nCONFIG_CRYPTO_CBC=y\nCONFIG_CRYPTO_HMAC=y\nCONFIG_CRYPTO_SHA256=y\n' });
    expect(t.templates).toEqual({
      'rfc4106(gcm(aes))': 'present',
      'rfc4543(gcm(aes))': 'loadable',
      'rfc7539esp(chacha20,poly1305)': 'absent',
      'cbc(aes)': 'present',
      'hmac(sha256)': 'loadable',
      'hmac(sha1)': 'absent',
    });
    expect(t.aead).toEqual(['rfc4106(gcm(aes))', 'rfc4543(gcm(aes))']);
    expect(t.reason).toMatch(/absent: rfc7539esp\(chacha20,poly1305\), hmac\(sha1\)/);
    // Without a config, the module lists decide.
    const m = linuxCryptoTemplates({ crypto: '', dep: 'kernel/crypto/chacha20poly1305.ko.xz: kernel/crypto/chacha20.ko\n' });
    expect(m.templates['rfc7539esp(chacha20,poly1305)']).toBe('loadable');
    expect(m.templates['rfc4106(gcm(aes))']).toBe('absent');
  });
});

describe('kernel notes', () => {
  it('by version: espintcp 5.6 (IPv6 5.8), UDP encap on IPv6 5.8, NAT keepalives 6.10', () => {
    expect(linuxVersion('6.1.0-18-amd64')).toEqual([6, 1]);
    expect(linuxVersion('x')).toBeUndefined();
    const old = kernelNotes('5.4.0-150-generic', 'linux').join('\n');
    expect(old).toMatch(/before 5\.6: no ESP in TCP/);
    expect(old).toMatch(/before 5\.8: no kernel ESP in UDP over IPv6/);
    expect(old).toMatch(/before 6\.10/);
    expect(kernelNotes('5.7.1', 'linux').join('\n')).toMatch(/espintcp for IPv4 only/);
    const bookworm = kernelNotes('6.1.0-18-amd64', 'linux');
    expect(bookworm).toHaveLength(1);
    expect(bookworm[0]).toMatch(/before 6\.10.*keepaliveInterval/);
    expect(kernelNotes('6.12.5', 'linux', false)[0]).toMatch(/this kernel has no ESP/);
    expect(kernelNotes('6.12.5', 'linux').join('\n')).toMatch(/6\.10 and later/);
    expect(kernelNotes('6.12.5', 'freebsd')).toEqual([]);
    expect(kernelNotes('weird', 'linux')[0]).toMatch(/cannot read a version/);
  });
});

describe('probe() and natt probe on this host', () => {
  it('the new facts are there, and every old field keeps its name', () => {
    const p = probeReport();
    for (const k of ['platform', 'release', 'arch', 'node', 'native', 'facts', 'kernelEsp', 'espInTcp', 'auto']) expect(p).toHaveProperty(k);
    for (const k of ['privileges', 'ikeBypass', 'cryptoTemplates', 'kernelNotes', 'fastPath']) expect(p).toHaveProperty(k);
    expect(probe()).not.toHaveProperty('fastPath'); // the fast path sits above probe(): the CLI adds it
    if (process.platform === 'linux' && process.getuid?.() === 0) expect(p.privileges.netAdmin).toBe(true);
    if (process.platform === 'linux' && process.getuid?.() === 0 && loadNative()) expect(p.ikeBypass).toMatchObject({ ok: true });
    expect(p.fastPath.cipher.available).toBe(loadNative() !== null && typeof loadNative()!.EspCipher === 'function');
    const text = formatProbe(p);
    for (const label of ['CAP_NET_ADMIN', 'IKE bypass', 'AEAD templates', 'fast path']) expect(text).toContain(`  ${label}`);
    if (p.kernelNotes.length) expect(text).toContain('  kernel notes    ');
  });

  const canDrop = process.getuid?.() === 0 && spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0 && loadNative() !== null;
  describe.skipIf(!canDrop)(`without privilege (setpriv to nobody)${canDrop ? '' : ' (skipped: needs root, setpriv and the addon)'}`, () => {
    beforeAll(() => ensureDist(), 240_000);
    const asNobody = (args: string[]) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(ROOT, 'bin', 'natt.js'), ...args], { encoding: 'utf8' });

    it('natt probe --json says no CAP_NET_ADMIN and no bypass, with the reason', () => {
      const r = asNobody(['probe', '--json']);
      expect(r.status).toBe(0);
      const p = JSON.parse(r.stdout);
      expect(p.privileges).toMatchObject({ netAdmin: false, netRaw: false });
      expect(p.ikeBypass.ok).toBe(false);
      expect(p.ikeBypass.reason).toMatch(/EPERM.*needs privilege/);
    });

    it('natt capture fails with exit 1 and says CAP_NET_RAW', () => {
      const r = asNobody(['capture', '-w', '/tmp/natt-nobody-never.pcapng', '-c', '1']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^natt capture: .*CAP_NET_RAW/);
      expect(r.stdout).toBe('');
    });
  });
});
