// Test helper for test/package/: make sure dist/ is compiled from the current src/ (once, even when test files run at once).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';

export const root = path.join(__dirname, '..', '..');
export const dist = path.join(root, 'dist');

/** Newest mtime of the .ts files under a folder. */
export function newestTs(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestTs(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}

const fresh = (): boolean => {
  const mjs = path.join(dist, 'index.mjs');
  return fs.existsSync(mjs) && fs.statSync(mjs).mtimeMs >= newestTs(path.join(root, 'src'));
};

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * `npm test` compiles first; when a test file runs alone, or src/ changed since, compile here (tsc still emits on
 * type errors). A lock folder keeps two test files (vitest runs them in parallel) from deleting each other's dist/.
 */
export function ensureDist(): void {
  if (fresh()) return;
  const lock = path.join(os.tmpdir(), `natt-compile-lock-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`);
  const until = Date.now() + 140_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // Someone else compiles (or a crashed run left the lock: taken over after 3 minutes).
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 180_000) fs.rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > until) break;
      sleep(200);
    }
  }
  try {
    if (!fresh()) spawnSync('npm', ['run', '-s', 'compile'], { cwd: root, stdio: 'ignore', timeout: 120_000 });
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
  expect(fs.existsSync(path.join(dist, 'index.mjs'))).toBe(true);
}
