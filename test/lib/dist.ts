// For tests that run the built package (plain JS children over dist/, npm pack): compile once when any source is newer than the build.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

// dist/index.mjs is written last (scripts/build-esm.js after tsc).
const fresh = (): boolean => existsSync(join(DIST, 'index.js')) && existsSync(join(DIST, 'index.mjs')) && statSync(join(DIST, 'index.mjs')).mtimeMs >= newest(join(ROOT, 'src'));

const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Make sure dist/ holds the current sources, CommonJS and the ES-module entry (npm test compiles first; a single test
 * file run may not have). tsc then build-esm, without deleting dist/ first; a lock folder keeps test files that
 * vitest runs at once from compiling over each other (a lock left by a crashed run is taken over after 3 minutes).
 */
export function ensureDist(): void {
  if (fresh()) return;
  const lock = join(tmpdir(), `natt-compile-lock-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`);
  const until = Date.now() + 140_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* gone meanwhile */
      }
      if (Date.now() > until) break;
      sleep(200);
    }
  }
  try {
    if (!fresh()) {
      spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'ignore', timeout: 120_000 });
      spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-esm.js')], { stdio: 'ignore', timeout: 60_000 });
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  if (!existsSync(join(DIST, 'index.js')) || !existsSync(join(DIST, 'index.mjs'))) throw new Error('dist/ is missing: run npm run compile');
}
