#!/usr/bin/env node
// Before `npm start` / `npm test` on a fresh clone: install the locked dependencies (npm ci) when node_modules is missing or stale.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const lock = path.join(root, 'package-lock.json');
const installed = path.join(root, 'node_modules', '.package-lock.json');

/** Why an install is needed, or null when node_modules matches package-lock.json. */
function stale() {
  if (!fs.existsSync(installed)) return 'node_modules is missing';
  if (fs.statSync(lock).mtimeMs > fs.statSync(installed).mtimeMs) return 'package-lock.json is newer than node_modules';
  for (const dep of ['typescript', 'vitest', 'node-addon-api']) {
    if (!fs.existsSync(path.join(root, 'node_modules', dep, 'package.json'))) return `node_modules lacks ${dep}`;
  }
  return null;
}

const why = stale();
if (why) {
  console.error(`natt: ${why}: running npm ci first (once)`);
  const npm = process.env.npm_execpath
    ? [process.execPath, [process.env.npm_execpath]]
    : [process.platform === 'win32' ? 'npm.cmd' : 'npm', []];
  const r = spawnSync(npm[0], [...npm[1], 'ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('natt: npm ci failed (see above); it needs the npm registry, and python3, make and a C++ compiler for the addon');
    process.exit(r.status ?? 1);
  }
}
