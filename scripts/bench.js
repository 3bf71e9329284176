// `npm run bench`: runs every scripts/bench/*.js in name order (each prints its own table and a JSON line).

'use strict';
const { readdirSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const dir = path.join(__dirname, 'bench');
const only = process.argv.slice(2); // `node scripts/bench.js esp` runs only scripts/bench/esp.js
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.js'))
  .filter((f) => only.length === 0 || only.includes(path.basename(f, '.js')))
  .sort();
let failed = 0;
for (const f of files) {
  console.log(`\n== ${f} ==`);
  const r = spawnSync(process.execPath, [path.join(dir, f)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.log(`${f} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exitCode = failed ? 1 : 0;
