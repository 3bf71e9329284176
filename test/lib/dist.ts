// For tests that run plain JS children over dist/: compile once when any source is newer than the build.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Make sure dist/ holds the current sources (npm test compiles first; a single test file run may not have). */
export function ensureDist(): void {
  const out = join(ROOT, 'dist', 'index.js');
  if (!existsSync(out) || statSync(out).mtimeMs < newest(join(ROOT, 'src'))) {
    spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'ignore' });
  }
  if (!existsSync(out)) throw new Error('dist/ is missing: run npm run compile');
}
