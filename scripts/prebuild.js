#!/usr/bin/env node
// `npm run prebuild`: prebuildify --napi --strip for this platform, offline (the running node's headers), in a scratch copy so build/ is left alone.
//
//   node scripts/prebuild.js              make prebuilds/<platform>-<arch>/natt.node
//   node scripts/prebuild.js --out DIR    put it in DIR/prebuilds/<platform>-<arch>/ instead (the install test does this)
//   node scripts/prebuild.js --check      exit 1 unless prebuilds/ holds one for this platform made from these sources (prepack)
//
// Why a wrapper: prebuildify --napi asks node-gyp for the newest node it knows (it passed --target=26.0.0 here), and
// node-gyp then downloads that node's headers. N-API addons need only one build, against any node with the N-API
// version binding.gyp asks for, so this builds for the running node with --nodedir at its own headers, which needs no
// network. The scratch copy (native/, binding.gyp, package.json, node_modules linked) is there because prebuildify
// runs `node-gyp rebuild` (which deletes build/) and then moves the .node file out of build/Release: done in place, it
// would take away the build that `npm test` and a running test suite load. Beside the prebuild goes sources.sha256, the
// hash of native/ and binding.gyp it was made from: scripts/install.js and --check take a prebuild only while the
// sources still hash the same (mtimes cannot tell: npm sets every file's mtime to the time it unpacks the package).
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { STAMP, nodeHeadersDir, prebuildFile, sourcesHash, stampOf } = require('./install.js');

const root = path.join(__dirname, '..');

/** The prebuild for this platform in <dir>/prebuilds/ when it was made from the sources in `src` (default: this checkout). */
function freshPrebuild(dir = root, src = root) {
  const file = prebuildFile(dir);
  return file && stampOf(file) === sourcesHash(src) ? file : undefined;
}

function onPath(cmd, env = process.env) {
  return (env.PATH ?? '').split(path.delimiter).some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Build the prebuild into <out>/prebuilds/<platform>-<arch>/; returns its path. Throws with what went wrong. */
function prebuild(out = root) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-prebuild-'));
  try {
    fs.cpSync(path.join(root, 'native'), path.join(scratch, 'native'), { recursive: true });
    fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(scratch, 'binding.gyp'));
    fs.copyFileSync(path.join(root, 'package.json'), path.join(scratch, 'package.json'));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(scratch, 'node_modules'), 'dir');
    const hash = sourcesHash(scratch); // of the very files built
    const env = { ...process.env };
    const headers = nodeHeadersDir();
    if (!env.npm_config_nodedir && headers) env.npm_config_nodedir = headers;
    if (!env.npm_config_nodedir) {
      console.warn(`natt: no node headers beside ${process.execPath} (include/node): node-gyp will try to download them`);
    }
    const strip = onPath('strip');
    if (!strip) console.warn('natt: no `strip` on PATH (binutils): the prebuild keeps its symbols');
    const bin = require.resolve('prebuildify/bin.js', { paths: [root] });
    const args = [bin, '--napi', `--target=node@${process.versions.node}`, ...(strip ? ['--strip'] : []), `--out=${scratch}`];
    const r = spawnSync(process.execPath, args, { cwd: scratch, env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`prebuildify failed (exit ${r.status ?? r.signal}): see its output above`);
    const made = prebuildFile(scratch);
    if (!made) throw new Error('prebuildify ran but left no .node file in prebuilds/');
    const dest = path.join(out, 'prebuilds', `${process.platform}-${process.arch}`);
    fs.mkdirSync(dest, { recursive: true });
    // Only the file made now: an older one with another name would be chosen over it.
    for (const n of fs.readdirSync(dest)) if (n.endsWith('.node') || n === STAMP) fs.rmSync(path.join(dest, n));
    const file = path.join(dest, path.basename(made));
    fs.copyFileSync(made, file);
    fs.writeFileSync(path.join(dest, STAMP), `${hash}  native/ binding.gyp\n`);
    return file;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function main(argv) {
  const outAt = argv.findIndex((a) => a === '--out' || a.startsWith('--out='));
  const out = outAt < 0 ? root : path.resolve(argv[outAt].includes('=') ? argv[outAt].slice(6) : argv[outAt + 1]);
  if (argv.includes('--check')) {
    if (process.env.NATT_PACK_WITHOUT_PREBUILD === '1') return 0;
    const file = freshPrebuild(out);
    if (file) {
      console.log(`natt: packing with the prebuild ${path.relative(root, file)}`);
      return 0;
    }
    console.error(
      `natt: no prebuild for ${process.platform}-${process.arch} made from these native/ and binding.gyp in prebuilds/: run \`npm run prebuild\` ` +
        'first (or set NATT_PACK_WITHOUT_PREBUILD=1 to pack a package that builds from source on install)',
    );
    return 1;
  }
  try {
    const file = prebuild(out);
    console.log(`natt: prebuild ${path.relative(process.cwd(), file)} (N-API, node ${process.versions.node} headers, offline)`);
    return 0;
  } catch (e) {
    console.error(`natt: ${e.message}`);
    return 1;
  }
}

module.exports = { freshPrebuild, prebuild, onPath };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
