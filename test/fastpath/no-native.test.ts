// Without the addon (NATT_DISABLE_NATIVE=1, in a child vitest): every ESP, userland and fast-path test still runs, on node:crypto.

import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', '..');
const inChild = process.env.NATT_DISABLE_NATIVE === '1';

describe.skipIf(inChild)('the node:crypto path alone', () => {
  it('test/esp, test/userland and test/fastpath pass with NATT_DISABLE_NATIVE=1 (cipherPath node everywhere)', () => {
    const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const r = spawnSync(
      process.execPath,
      [vitest, 'run', 'test/esp', 'test/userland', 'test/fastpath', '--exclude', 'test/fastpath/no-native.test.ts', '--reporter', 'dot'],
      { cwd: root, encoding: 'utf8', env: { ...process.env, NATT_DISABLE_NATIVE: '1', NO_COLOR: '1', FORCE_COLOR: '0' }, timeout: 300_000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out.slice(-4000)).toBe(0);
    // It really ran (and the native-only parts said why they skipped).
    const passed = Number(/Tests\s+(\d+) passed/.exec(out)?.[1] ?? 0);
    expect(passed).toBeGreaterThan(300);
    expect(out).not.toMatch(/\bfailed\b/);
  }, 320_000);
});
