#!/usr/bin/env node
// Install step: use the prebuilt addon in prebuilds/<platform>-<arch>/ when it fits and loads, else build from source with node-gyp (offline: Node's own headers).
//
// "Fits" means: a .node file for this platform and arch, made from these sources (scripts/prebuild.js writes the hash
// of native/ and binding.gyp beside it: in a checkout where they changed since, the prebuild is stale), a node whose
// N-API version is at least the one binding.gyp builds for, glibc on Linux (the prebuilds are glibc builds), and the
// file actually loads in this node. Anything else, or `npm install --build-from-source`, builds from source. The loader (src/native/binding.ts) needs none of
// this: it finds prebuilds/ by itself, so an install whose scripts npm held back (allowScripts) still gets the addon.
// scripts/prebuild.js reuses the helpers exported here; this file is the only script shipped in the package.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { createHash } = require('crypto');

const root = path.join(__dirname, '..');

/** The N-API version binding.gyp compiles for (its NAPI_VERSION define). */
function napiVersion(dir = root) {
  const m = /NAPI_VERSION=(\d+)/.exec(fs.readFileSync(path.join(dir, 'binding.gyp'), 'utf8'));
  return m ? Number(m[1]) : 8;
}

/** The folder whose include/node holds the running node's headers (node-gyp's --nodedir), or undefined. */
function nodeHeadersDir() {
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? prefix : undefined;
}

/**
 * The prebuild that src/native/binding.ts would load from <dir>/prebuilds/<platform>-<arch>/ (the same choice:
 * a name with "napi" first, then by name), or undefined.
 */
function prebuildFile(dir = root) {
  const folder = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
  let names;
  try {
    names = fs.readdirSync(folder).filter((n) => n.endsWith('.node'));
  } catch {
    return undefined;
  }
  names.sort((a, b) => Number(b.includes('napi')) - Number(a.includes('napi')) || a.localeCompare(b));
  return names.length ? path.join(folder, names[0]) : undefined;
}

/** The name of the file beside a prebuild that holds sourcesHash() of what it was made from. */
const STAMP = 'sources.sha256';

/** sha256 over the names and bytes of native/* and binding.gyp: what the addon is built from. */
function sourcesHash(dir = root) {
  const h = createHash('sha256');
  const files = ['binding.gyp', ...fs.readdirSync(path.join(dir, 'native')).sort().map((n) => `native/${n}`)];
  for (const f of files) h.update(`${f}\0`).update(fs.readFileSync(path.join(dir, f))).update('\0');
  return h.digest('hex');
}

/** The hash a prebuild was stamped with (undefined: no stamp, as from prebuildify alone). */
function stampOf(file) {
  try {
    return fs.readFileSync(path.join(path.dirname(file), STAMP), 'utf8').split(/\s/)[0];
  } catch {
    return undefined;
  }
}

/** Whether the prebuild fits this node: `{ file }` when it does, `{ reason }` when it does not. */
function prebuildFits(dir = root) {
  const file = prebuildFile(dir);
  if (!file) return { reason: `no prebuild for ${process.platform}-${process.arch} in prebuilds/` };
  const stamp = stampOf(file);
  if (stamp !== undefined && stamp !== sourcesHash(dir)) {
    return { reason: `the prebuild was made from other sources (native/ or binding.gyp changed since \`npm run prebuild\`)` };
  }
  const need = napiVersion(dir);
  const have = Number(process.versions.napi ?? 0);
  if (have < need) return { reason: `the prebuild needs N-API ${need}, this node has ${have}` };
  if (process.platform === 'linux') {
    const report = process.report?.getReport?.();
    if (report && !report.header?.glibcVersionRuntime) return { reason: 'the prebuild is a glibc build and this system has another C library (musl?)' };
  }
  try {
    require(file);
  } catch (e) {
    return { reason: `the prebuild does not load here: ${String(e.message).split('\n')[0]}` };
  }
  return { file };
}

function findNodeGyp() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })];
  } catch {
    // npm puts its bundled node-gyp on PATH while it runs install scripts.
    return ['node-gyp'];
  }
}

function buildFromSource() {
  // Offline: build against the headers of the node that runs us unless npm names a nodedir; without this node-gyp
  // would try to download them.
  const args = ['rebuild'];
  const headers = nodeHeadersDir();
  if (!process.env.npm_config_nodedir && headers) args.push(`--nodedir=${headers}`);
  const [cmd, ...pre] = findNodeGyp();
  const r = spawnSync(cmd, [...pre, ...args], { cwd: root, stdio: 'inherit' });
  if (r.status === 0) return 0;
  console.warn(
    'natt: the native addon could not be built (node-gyp needs python3, make and a C++ compiler).\n' +
      '      The userland backend still works; kernel NAT-T sockets, PF_KEY and XFRM do not.\n' +
      '      Set NATT_REQUIRE_NATIVE=1 to make this failure fatal.',
  );
  return process.env.NATT_REQUIRE_NATIVE === '1' ? 1 : 0;
}

function main() {
  const fromSource = process.env.npm_config_build_from_source;
  if (fromSource && fromSource !== 'false') {
    console.log('natt: --build-from-source: building the addon with node-gyp');
    return buildFromSource();
  }
  const fit = prebuildFits();
  if (fit.file) {
    console.log(`natt: using the prebuilt addon ${path.relative(root, fit.file)} (no compiler needed)`);
    return 0;
  }
  console.log(`natt: building the addon from source: ${fit.reason}`);
  return buildFromSource();
}

module.exports = { STAMP, napiVersion, nodeHeadersDir, prebuildFile, prebuildFits, sourcesHash, stampOf };

if (require.main === module) process.exitCode = main();
