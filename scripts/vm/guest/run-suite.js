// Guest side: runs the package's kernel tests with vitest, then prints each test by name and the count line.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..', '..');
const results = '/tmp/natt-vm-results.json';
const filters = process.argv.slice(2);

const r = spawnSync(
  process.execPath,
  [
    path.join(root, 'node_modules/vitest/vitest.mjs'),
    'run',
    '--root', root,
    '--config', path.join(__dirname, 'vitest.config.mjs'),
    '--reporter=verbose',
    '--reporter=json',
    `--outputFile.json=${results}`,
    ...filters,
  ],
  { stdio: 'inherit', cwd: root, env: process.env },
);

let passed = 0;
let failed = 0;
let skipped = 0;
let report;
try {
  report = JSON.parse(fs.readFileSync(results, 'utf8'));
} catch (err) {
  console.log(`natt-vm: vitest wrote no results (${err.message}); vitest status ${r.status ?? r.signal}`);
}
if (report) {
  console.log('natt-vm: results by name');
  for (const file of report.testResults ?? []) {
    const rel = path.relative(root, file.name);
    if ((file.assertionResults ?? []).length === 0 && file.status === 'failed') {
      failed++;
      console.log(`  FAIL ${rel} (file failed to load: ${String(file.message).split('\n')[0]})`);
    }
    for (const t of file.assertionResults ?? []) {
      const name = `${rel} > ${[...(t.ancestorTitles ?? []), t.title].join(' > ')}`;
      if (t.status === 'passed') passed++;
      else if (t.status === 'failed') failed++;
      else skipped++;
      const tag = t.status === 'passed' ? 'PASS' : t.status === 'failed' ? 'FAIL' : 'SKIP';
      console.log(`  ${tag} ${name}`);
    }
  }
}
if (!report || (r.status !== 0 && failed === 0)) failed++;
// In the VM the kernel has everything the suite needs: a run where nothing passed is a broken image, not a success.
if (process.env.NATT_VM && passed === 0 && failed === 0) {
  console.log('natt-vm: no test passed (all skipped?): the image lacks what the kernel suite needs');
  failed++;
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
