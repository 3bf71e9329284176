// The native peer-credential call: who is on the other end of a Unix socket, and errors in Node's shape with advice.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getPeerCred } from '../../src/native/binding';
import { handleFd, peerOf } from '../../src/control/peer';
import { controlSkip } from './helpers';

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
