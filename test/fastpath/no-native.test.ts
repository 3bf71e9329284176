// Without the addon (NATT_DISABLE_NATIVE=1, in a child vitest): every ESP, userland and fast-path test still runs, on node:crypto.

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
const inChild = process.env.NATT_DISABLE_NATIVE === '1';

describe.skipIf(inChild)('the node:crypto path alone', () => {
  it('test/esp, test/userland and test/fastpath pass with NATT_DISABLE_NATIVE=1 (cipherPath node everywhere)', async () => {
    const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
    // Asynchronously: a spawnSync would block this worker's event loop past vitest's RPC timeout.
    const child = spawn(
      process.execPath,
      [vitest, 'run', 'test/esp', 'test/userland', 'test/fastpath', '--exclude', 'test/fastpath/no-native.test.ts', '--reporter', 'dot'],
      { cwd: root, env: { ...process.env, NATT_DISABLE_NATIVE: '1', NO_COLOR: '1', FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    const code = await new Promise<number | null>((res) => child.on('close', res));
    clearTimeout(killer);
    expect(code, out.slice(-4000)).toBe(0);
    // It really ran (and the native-only parts said why they skipped).
    const passed = Number(/Tests\s+(\d+) passed/.exec(out)?.[1] ?? 0);
    expect(passed).toBeGreaterThan(300);
    expect(out).not.toMatch(/\bfailed\b/);
  }, 320_000);
});
