// `npm run fuzz`: every fuzz and property test of the repo at NATT_FUZZ_RUNS inputs each (10^6 by default), one file at a time; a table of outcomes.
//
//   npm run fuzz                      every file under test/ that reports (imports test/lib/fuzz-report), 10^6 inputs each
//   npm run fuzz -- --runs 20000      fewer (or more) inputs
//   npm run fuzz -- pfkey boundary    only the files whose path contains one of the words
//   npm run fuzz -- --seed 7          NATT_FUZZ_SEED for the tests that take one (boundary, tcp)
//   npm run fuzz -- --cap roundtrip=200000   at most 200,000 inputs for the files whose path contains 'roundtrip'
//                                     (for a file whose tests would take hours at 10^6; the table says what ran)
//
// Each test writes one JSON line with its counts per outcome to the file named by NATT_FUZZ_REPORT (test/lib/fuzz-report.ts);
// this script runs vitest on each file with that variable set, then prints a table (test, inputs, outcomes, time) and
// one JSON line. The exit status is 1 if any file failed: a failure is a finding (fast-check prints the input).
// "time" is the wall time from the previous summary line of the same file (or the file's start) to this one: a test's
// own time, plus any quick non-fuzz tests run between two fuzz tests of a file.

'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const args = process.argv.slice(2);
let runs = 1_000_000;
let seed;
const only = [];
const caps = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--runs') runs = Number(args[++i]);
  else if (args[i] === '--seed') seed = args[++i];
  else if (args[i] === '--cap') {
    const [word, n] = String(args[++i]).split('=');
    if (!word || !Number.isSafeInteger(Number(n)) || Number(n) < 1) {
      console.error(`--cap takes word=N, got ${args[i]}`);
      process.exit(2);
    }
    caps.push([word, Number(n)]);
  }
  else if (args[i] === '--help' || args[i] === '-h') {
    console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(0, 14).join('\n'));
    process.exit(0);
  } else only.push(args[i]);
}
if (!Number.isSafeInteger(runs) || runs < 1) {
  console.error(`--runs must be a positive integer, got ${runs}`);
  process.exit(2);
}

/** Every test file that reports its outcomes: the fuzz and property tests. */
function fuzzFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'kernel' && e.name !== 'lib') walk(p);
      } else if (e.name.endsWith('.test.ts') && /from '\.\.\/lib\/fuzz-report'/.test(fs.readFileSync(p, 'utf8'))) {
        out.push(path.relative(root, p));
      }
    }
  };
  walk(path.join(root, 'test'));
  return out.sort().filter((f) => only.length === 0 || only.some((w) => f.includes(w)));
}

const files = fuzzFiles();
if (files.length === 0) {
  console.error(`no fuzz test file matches ${only.join(', ')}`);
  process.exit(2);
}
const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'natt-fuzz-')), 'report.jsonl');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const started = Date.now();
console.log(`natt fuzz: ${files.length} files, NATT_FUZZ_RUNS=${runs}${seed !== undefined ? `, NATT_FUZZ_SEED=${seed}` : ''}, on ${os.cpus().length} cores (${os.loadavg()[0].toFixed(1)} load)`);

const rows = [];
const failedFiles = [];
for (const file of files) {
  const before = fs.existsSync(report) ? fs.readFileSync(report, 'utf8').split('\n').filter(Boolean).length : 0;
  const t0 = Date.now();
  process.stdout.write(`\n== ${file} (started ${new Date(t0).toISOString().slice(11, 19)})\n`);
  const cap = caps.find(([w]) => file.includes(w));
  const fileRuns = cap ? Math.min(runs, cap[1]) : runs;
  if (cap) console.log(`   (capped: NATT_FUZZ_RUNS=${fileRuns} for this file)`);
  const env = { ...process.env, NATT_FUZZ_RUNS: String(fileRuns), NATT_FUZZ_REPORT: report };
  if (seed !== undefined) env.NATT_FUZZ_SEED = seed;
  const r = spawnSync(process.execPath, [vitest, 'run', file, '--testTimeout=86400000', '--hookTimeout=600000', '--reporter=dot'], { cwd: root, env, stdio: 'inherit' });
  const ms = Date.now() - t0;
  if (r.status !== 0) failedFiles.push({ file, status: r.status ?? r.signal, seconds: Math.round(ms / 1000) });
  const lines = fs.existsSync(report) ? fs.readFileSync(report, 'utf8').split('\n').filter(Boolean).slice(before) : [];
  let prev = t0;
  for (const l of lines) {
    const e = JSON.parse(l);
    rows.push({ file, ...e, capped: cap ? fileRuns : undefined, seconds: Math.round((e.at - prev) / 100) / 10 });
    prev = e.at;
  }
  console.log(`   ${file}: ${r.status === 0 ? 'passed' : `FAILED (${r.status ?? r.signal})`} in ${(ms / 1000).toFixed(0)} s, ${lines.length} summary line(s)`);
}
const wall = Math.round((Date.now() - started) / 1000);

// ---- the table ----
const fmt = (n) => n.toLocaleString('en-US');
const outcomes = (o) =>
  Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${fmt(n)}`)
    .join(', ');
const table = [['test', 'inputs', 'outcomes', 'time']];
for (const r of rows) table.push([r.test, `${fmt(r.runs)}${r.capped ? ' (capped)' : ''}`, outcomes(r.outcomes), `${r.seconds} s`]);
const widths = [0, 1, 3].map((c) => Math.max(...table.map((row) => row[c].length)));
console.log(`\nnatt fuzz at NATT_FUZZ_RUNS=${fmt(runs)}: ${rows.length} tests in ${files.length} files, ${fmt(wall)} s wall\n`);
for (const [i, row] of table.entries()) {
  console.log(`${row[0].padEnd(widths[0])}  ${row[1].padStart(widths[1])}  ${row[3].padStart(widths[2])}  ${row[2]}`);
  if (i === 0) console.log(`${'-'.repeat(widths[0])}  ${'-'.repeat(widths[1])}  ${'-'.repeat(widths[2])}  --------`);
}
if (failedFiles.length) {
  console.log(`\nFAILED: ${failedFiles.map((f) => `${f.file} (exit ${f.status}, ${f.seconds} s)`).join('; ')}`);
}
console.log(
  JSON.stringify({
    fuzz: { runsPerTest: runs, wallSeconds: wall, files: files.length, failed: failedFiles, caps: Object.fromEntries(caps), tests: rows.map(({ test, runs: n, outcomes: o, seconds, file, capped }) => ({ test, file, inputs: n, ...(capped && { capped }), outcomes: o, seconds })) },
  }),
);
process.exitCode = failedFiles.length ? 1 : 0;
