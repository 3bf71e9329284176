// The addon's TUN object on this host's kernel: argument checks, errnos as numbers on the write path, a detached slab,
// close; a worker thread exiting (or terminated) with a TUN open leaves the process alive; EPERM as an unprivileged uid.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nativeStatus } from '../../src/native/binding';
import { NetnsDriver, bundle, netnsSkipReason } from './harness';

const skip = netnsSkipReason();

describe.skipIf(skip !== undefined)(`the addon's Tun, in a fresh netns${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: NetnsDriver;
  let r: Record<string, any>;

  beforeAll(async () => {
    d = await NetnsDriver.start('natt-tunn');
    r = await d.call('nativeChecks');
  });
  afterAll(async () => {
    await d?.stop();
  });

  it("opens with the kernel's name for '' (tunN); bad arguments are TypeErrors / RangeErrors, a long name EINVAL", () => {
    expect(r.name).toMatch(/^tun\d+$/);
    expect(r.badCtor).toMatchObject({ name: 'TypeError' });
    expect(r.badName).toMatchObject({ name: 'NattSystemError', code: 'EINVAL', errno: -22, syscall: 'ioctl' });
    expect(r.badName.message).toMatch(/at most 15 bytes/);
    expect(r.slabType).toMatchObject({ name: 'TypeError' });
    expect(r.slotZero).toMatchObject({ name: 'RangeError' });
    expect(r.slotTooBig).toMatchObject({ name: 'RangeError' });
    expect(r.writeType).toMatchObject({ name: 'TypeError' });
    expect(r.writeRange).toMatchObject({ name: 'RangeError' });
    expect(r.batchRange).toMatchObject({ name: 'RangeError' });
    expect(r.sndbufZero).toMatchObject({ name: 'NattSystemError', code: 'EINVAL', syscall: 'ioctl' });
  });

  it('setSlab returns the slot count: min(slab / slot, lengths)', () => {
    expect(r.slots).toEqual({ returned: 10 });
  });

  it('per-packet write results are errnos, not exceptions: EIO while down, EINVAL for a non-IP packet, EFAULT outside the slab', () => {
    expect(r.writeDown).toEqual({ returned: 5 });
    expect(r.writeGarbage).toEqual({ returned: 22 });
    expect(r.batch).toEqual({ returned: 3 });
    expect(r.batchStatus).toEqual([0, 14, 22]);
  });

  it("a slab whose ArrayBuffer was transferred away is noticed: EFAULT 'read' in Node shape, reading stops", () => {
    expect(r.detachedErrors).toEqual([expect.objectContaining({ name: 'NattSystemError', code: 'EFAULT', errno: -14, syscall: 'read' })]);
  });

  it('close is idempotent; afterwards fd is -1, a write is EBADF (9), resume does nothing, waitWritable is EBADF', () => {
    expect(r.afterClose).toMatchObject({ fd: -1, write: 9, resume: { returned: null } });
    expect(r.afterClose.wait).toMatchObject({ code: 'EBADF' });
  });

  for (const mode of ['exit', 'terminate', 'closed']) {
    const what = mode === 'closed' ? 'closes its TUN and exits at once' : mode === 'exit' ? 'exits with its TUN open' : 'is terminated with its TUN open';
    it(`a worker that is the addon's only user and ${what}: the process survives, the device is gone`, () => {
      const res = spawnSync('ip', ['netns', 'exec', d.ns, process.execPath, path.join(__dirname, 'worker-exit.js'), path.resolve(nativeStatus().path!), mode], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(res.signal).toBeNull(); // SIGSEGV was the bug
      expect(res.status).toBe(0);
      const out = JSON.parse(res.stdout.trim().split('\n').pop()!);
      expect(out).toMatchObject({ mode, alive: true, stillThere: false, exitCode: mode === 'terminate' ? 1 : 0 });
      expect(out.name).toMatch(/^tun\d+$/);
    });
  }
});

describe.skipIf(skip !== undefined)(`without CAP_NET_ADMIN (uid 65534)${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let out: any;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-nobody-'));
    fs.chmodSync(dir, 0o755);
    const js = await bundle(path.join(__dirname, 'unprivileged.ts'), dir);
    fs.chmodSync(js, 0o644);
    const res = spawnSync(process.execPath, [js], { encoding: 'utf8', timeout: 20_000 });
    out = JSON.parse(res.stdout.trim().split('\n').pop() || '{}');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  // /dev/net/tun is 0600 on some hosts (this one): then open(2) already says EACCES; where it is 0666, TUNSETIFF says EPERM.
  const worldOpen = fs.existsSync('/dev/net/tun') && (fs.statSync('/dev/net/tun').mode & 0o006) === 0o006;
  it(`createTun fails in Node shape and says what is missing (${worldOpen ? 'EPERM from ioctl' : 'EACCES from open: /dev/net/tun is not world-accessible here'})`, () => {
    expect(out.uid).toBe(65534);
    if (worldOpen) {
      expect(out.tun).toMatchObject({ name: 'NattSystemError', code: 'EPERM', errno: -1, syscall: 'ioctl' });
      expect(out.tun.message).toMatch(/TUN device needs CAP_NET_ADMIN/);
    } else {
      expect(out.tun).toMatchObject({ name: 'NattSystemError', code: 'EACCES', errno: -13, syscall: 'open' });
      expect(out.tun.message).toMatch(/\/dev\/net\/tun is not open to this user.*CAP_NET_ADMIN/);
    }
  });

  it('the rtnetlink client lists links unprivileged, and a change is a KernelReplyError EPERM with the same advice', () => {
    expect(out.list).toBe(true);
    expect(out.setLink).toMatchObject({ name: 'KernelReplyError', code: 'EPERM', errno: -1, syscall: 'RTM_SETLINK' });
    expect(out.setLink.message).toMatch(/CAP_NET_ADMIN/);
  });
});
