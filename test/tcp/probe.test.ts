// The espintcp probe fact (tcp_available_ulp and the kernel config) and its `natt probe` line.

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { espInTcpSupport, linuxEspInTcp, probe } from '../../src/probe';
import { formatProbe } from '../../src/cli/main';

const noEsp = { v4: false, v6: false, reason: 'IPv4: the kernel was built without CONFIG_INET_ESP (no esp4)' };
const esp = { v4: true, v6: true, reason: 'IPv4: esp4 is available as a module' };
// The lines of the two Debian cloud kernels the VM boots (boot/config-6.1.0-57-cloud-amd64 and
// boot/config-6.12.117+deb12-cloud-amd64 from linux-image-*-cloud-amd64, unpacked by scripts/vm/image.js).
const DEBIAN_CLOUD = 'CONFIG_INET_ESP=m\nCONFIG_INET_ESP_OFFLOAD=m\n# CONFIG_INET_ESPINTCP is not set\nCONFIG_INET6_ESP=m\n# CONFIG_INET6_ESPINTCP is not set\n';

describe('linuxEspInTcp', () => {
  it('the Debian cloud kernels: no espintcp ULP, config not set: no, with the userland alternative named', () => {
    const f = linuxEspInTcp({ ulp: 'tcp-ulp-placeholder mptcp', config: DEBIAN_CLOUD }, esp);
    expect(f).toMatchObject({ ok: false, ulp: false, config: { v4: false, v6: false } });
    expect(f.reason).toMatch(/no espintcp TCP ULP \(tcp_available_ulp: tcp-ulp-placeholder mptcp\)/);
    expect(f.reason).toMatch(/CONFIG_INET_ESPINTCP not set, CONFIG_INET6_ESPINTCP not set/);
    expect(f.reason).toMatch(/connectNattTcp \/ listenNattTcp/);
  });

  it('a kernel with espintcp and ESP: yes; with espintcp but no ESP: no; no ULP file: no', () => {
    const cfg = 'CONFIG_INET_ESP=m\nCONFIG_INET_ESPINTCP=y\nCONFIG_INET6_ESP=m\nCONFIG_INET6_ESPINTCP=y\n';
    expect(linuxEspInTcp({ ulp: 'espintcp mptcp tls\n', config: cfg }, esp)).toMatchObject({ ok: true, ulp: true, config: { v4: true, v6: true } });
    expect(linuxEspInTcp({ ulp: 'espintcp\n' }, noEsp)).toMatchObject({ ok: false, ulp: true, config: null, reason: expect.stringMatching(/no ESP/) });
    expect(linuxEspInTcp({}, esp)).toMatchObject({ ok: false, ulp: null, reason: expect.stringMatching(/no \/proc\/sys\/net\/ipv4\/tcp_available_ulp/) });
    // 'espintcp' must be a whole name in the list.
    expect(linuxEspInTcp({ ulp: 'espintcpx' }, esp).ulp).toBe(false);
  });

  it.skipIf(process.platform !== 'linux')('this host: the answer agrees with its own tcp_available_ulp; natt probe prints it; --json carries it', () => {
    const list = readFileSync('/proc/sys/net/ipv4/tcp_available_ulp', 'latin1');
    const f = espInTcpSupport();
    expect(f.ulp).toBe(list.split(/\s+/).includes('espintcp'));
    const p = probe();
    expect(p.espInTcp).toEqual(f);
    expect(formatProbe(p)).toMatch(new RegExp(`\\n  ESP in TCP      ${f.ok ? 'yes' : 'no'}   `));
    expect(JSON.parse(JSON.stringify(p)).espInTcp.reason).toBe(f.reason);
  });
});
