// The Xfrm client against this host's real XFRM netlink, inside a network namespace the test makes and removes.
// This host has XFRM but no ESP: policies, SPI allocation, dumps, flush, GETSADINFO and ACQUIRE work; an ESP SA is
// refused with advice. The client runs in a child process (`ip netns exec`), bundled from netns-driver.ts by esbuild.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNative } from '../../src/native/binding';
import { bundleDriver } from '../lib/bundle';

function why(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (ip netns needs it)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no iproute2';
  const addon = loadNative();
  if (!addon) return 'native addon not built';
  if (!addon.probe().xfrm.ok) return 'no XFRM netlink in this kernel';
  return undefined;
}
const skip = why();

type Step = { ok: true; value: any } | { ok: false; error: { code?: string; errno?: number; syscall?: string; message: string; name?: string } };

describe.skipIf(skip !== undefined)(`Xfrm on this host's kernel, in a fresh netns${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const ns = `natt-xfrm-${process.pid}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-xfrm-'));
  let r: Record<string, Step> = {};

  beforeAll(async () => {
    const out = await bundleDriver(path.join(__dirname, 'netns-driver.ts'), path.join(dir, 'driver.js'));
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // A veth pair for the ACQUIRE test: traffic over loopback never meets XFRM policies.
    execFileSync('ip', ['-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.9.0.1/24', 'dev', 'v0']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'v0', 'up']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'v1', 'up']);
    const res = spawnSync('ip', ['netns', 'exec', ns, process.execPath, out], { encoding: 'utf8', timeout: 60_000 });
    const line = res.stdout.trim().split('\n').pop() ?? '';
    r = JSON.parse(line || '{}');
    if (r.fatal) throw new Error(`driver failed: ${JSON.stringify(r.fatal)}\n${res.stderr}`);
  });

  afterAll(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const ok = (name: string): any => {
    const s = r[name];
    if (!s) throw new Error(`step ${name} did not run`);
    if (!s.ok) throw new Error(`step ${name} failed: ${JSON.stringify(s.error)}`);
    return s.value;
  };
  const failed = (name: string): { code?: string; errno?: number; syscall?: string; message: string; name?: string } => {
    const s = r[name];
    if (!s || s.ok) throw new Error(`step ${name} should have failed: ${JSON.stringify(s)}`);
    return s.error;
  };

  it('GETSADINFO answers in an empty namespace', () => {
    expect(ok('sadInfo')).toMatchObject({ count: 0 });
    expect(ok('sadInfo').hashMax).toBeGreaterThan(0);
  });

  it('ALLOCSPI gives an SPI in range; the larval SA shows in a dump, get and delete work, then ESRCH', () => {
    const spi = ok('getSpi');
    expect(spi).toBeGreaterThanOrEqual(0x1000);
    expect(spi).toBeLessThanOrEqual(0x1fff);
    expect(ok('dumpAfterGetSpi')).toEqual([{ src: '192.0.2.1', dst: '192.0.2.2', spi, protocol: 'esp' }]);
    expect(ok('getLarval')).toMatchObject({ spi, src: '192.0.2.1', hard: { addSeconds: 30 } });
    ok('deleteLarval');
    expect(failed('getDeleted')).toMatchObject({ code: 'ESRCH', errno: -3, syscall: 'XFRM_MSG_GETSA' });
  });

  it('an ESP NEWSA is refused with advice naming CONFIG_INET_ESP (this kernel has no ESP)', () => {
    const e = failed('addEspCbc');
    expect(e).toMatchObject({ name: 'KernelReplyError', code: 'EPROTONOSUPPORT', errno: -93, syscall: 'XFRM_MSG_NEWSA' });
    expect(e.message).toMatch(/CONFIG_INET_ESP/);
    expect(e.message).toMatch(/esp4/);
  });

  it('an AES-GCM NEWSA is refused: ENOSYS when the kernel lacks the crypto template, else the ESP advice', () => {
    const e = failed('addEspGcm');
    expect(['ENOSYS', 'EPROTONOSUPPORT']).toContain(e.code);
    expect(e.message).toMatch(e.code === 'ENOSYS' ? /CONFIG_CRYPTO_GCM/ : /CONFIG_INET_ESP/);
  });

  it('a bad key length is a RangeError naming the option, before any kernel call', () => {
    expect(failed('addBadKey')).toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(failed('addBadKey').message).toMatch(/encryption\.key/);
  });

  it('NEWPOLICY/GETPOLICY/UPDPOLICY/dump/DELPOLICY round-trip the policy model', () => {
    const p = ok('spdAdd');
    expect(p).toMatchObject({
      selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24', proto: 17 },
      direction: 'out',
      action: 'ipsec',
      templates: [{ protocol: 'esp', mode: 'tunnel', src: '192.0.2.1', dst: '192.0.2.2', reqid: 7, level: 'require' }],
    });
    expect(p.id & 7).toBe(1); // the kernel keeps the direction in the index's low bits
    expect(failed('spdAddAgain')).toMatchObject({ code: 'EEXIST', syscall: 'XFRM_MSG_NEWPOLICY' });
    expect(ok('spdUpdate')).toMatchObject({ priority: 500, id: p.id });
    expect(ok('spdAddIn')).toMatchObject({ direction: 'in', action: 'discard' });
    expect(ok('spdGetBySelector')).toMatchObject({ id: p.id, priority: 500 });
    const dump = ok('spdDump');
    expect(dump).toHaveLength(2);
    expect(dump).toEqual(expect.arrayContaining([expect.objectContaining({ id: p.id, direction: 'out', action: 'ipsec' })]));
    expect(ok('spdAdd6')).toMatchObject({
      selector: { src: '2001:db8:1::/48', dst: '2001:db8:2::/48', proto: 6, dport: 443 },
      direction: 'fwd',
      templates: [{ protocol: 'esp', mode: 'tunnel', src: '2001:db8::1', dst: '2001:db8::2', level: 'use' }],
    });
    ok('spdDeleteById');
    expect(failed('spdGetDeleted')).toMatchObject({ code: 'ENOENT', syscall: 'XFRM_MSG_GETPOLICY' });
    ok('spdDeleteBySelector');
  });

  it('traffic that hits an ESP policy without an SA raises ACQUIRE; getSpi with its seq answers it', () => {
    const { ev, spi } = ok('acquire');
    expect(ev).toMatchObject({
      src: '10.9.0.1',
      dst: '10.9.0.2',
      protocol: 'esp',
      policy: { direction: 'out', selector: { src: '10.9.0.1/32', dst: '10.9.0.2/32', proto: 17 } },
    });
    expect(ev.seq).toBeGreaterThan(0);
    expect(spi).toBeGreaterThanOrEqual(0x5000);
  });

  it('an aborted signal rejects at once; after close() calls fail with ERR_NATT_CLOSED', () => {
    expect(failed('abortedCall').message).toBe('stop');
    expect(failed('afterClose').code).toBe('ERR_NATT_CLOSED');
  });

  it('FLUSHPOLICY and FLUSHSA leave nothing behind', () => {
    expect(ok('flush')).toEqual({ sas: 0, policies: 0 });
  });

  it('a second client saw the SA and policy notifications from the multicast groups, and nothing was dropped', () => {
    const ev: string[] = ok('events');
    expect(ev).toEqual(expect.arrayContaining(['newpolicy', 'updpolicy', 'delpolicy', 'delete']));
    expect(ok('stats').x.drops).toBe(0);
    expect(ok('stats').watcher.drops).toBe(0);
  });
});
