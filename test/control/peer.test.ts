// The native peer-credential call: who is on the other end of a Unix socket, and errors in Node's shape with advice.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getPeerCred } from '../../src/native/binding';
import { handleFd, peerOf } from '../../src/control/peer';
import { controlSkip } from './helpers';
import { spawnSync } from 'node:child_process';
import { ensureDist } from '../lib/dist';

describe.skipIf(controlSkip !== undefined)(`getPeerCred${controlSkip ? ` (skipped: ${controlSkip})` : ''}`, () => {
  it("an accepted connection's peer is this process: pid, uid, gid as the kernel recorded them", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-peer-'));
    const p = path.join(dir, 's.sock');
    const accepted = new Promise<net.Socket>((resolve) => {
      const srv = net.createServer((s) => {
        srv.close();
        resolve(s);
      });
      srv.listen(p);
    });
    await new Promise((r) => setTimeout(r, 20));
    const c = net.connect(p);
    const s = await accepted;
    const fd = handleFd(s);
    expect(fd).toBeGreaterThan(2);
    expect(getPeerCred(fd!)).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    expect(peerOf(s).pid).toBe(process.pid);
    c.destroy();
    s.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a bad fd or one that is not a socket: NattSystemError in Node shape', () => {
    expect(() => getPeerCred(-1)).toThrow(expect.objectContaining({ name: 'NattSystemError', code: 'EBADF', errno: -9, syscall: 'getsockopt' }));
    const fd = fs.openSync(__filename, 'r');
    try {
      expect(() => getPeerCred(fd)).toThrow(expect.objectContaining({ code: 'ENOTSOCK', syscall: 'getsockopt' }));
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('without the native addon', () => {
  it('serveControl refuses to serve (peers cannot be checked), ERR_NATT_NO_NATIVE with what to do', () => {
    ensureDist();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-nonative-'));
    const code = `
      const { serveControl } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'control'))});
      const { UserlandSadb } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'userland'))});
      serveControl(new UserlandSadb(), { path: ${JSON.stringify(path.join(dir, 'c.sock'))} }).then(
        () => console.log(JSON.stringify({ served: true })),
        (e) => console.log(JSON.stringify({ code: e.code, message: e.message })),
      );`;
    const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, NATT_DISABLE_NATIVE: '1' }, encoding: 'utf8', timeout: 20_000 });
    const out = JSON.parse(r.stdout.trim());
    expect(out.code).toBe('ERR_NATT_NO_NATIVE');
    expect(out.message).toMatch(/native addon is not available/);
    expect(fs.existsSync(path.join(dir, 'c.sock'))).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 150_000);
});
