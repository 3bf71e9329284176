#!/usr/bin/env node
// Install step: use a prebuilt addon from prebuilds/<platform>-<arch>/ when one fits, else build from source with node-gyp (offline: Node's own headers).
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const prebuilt = fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith('.node'));
if (prebuilt && !process.env.npm_config_build_from_source) {
  console.log(`natt: using the prebuilt addon in ${path.relative(root, dir)}`);
  process.exit(0);
}

function findNodeGyp() {
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] })];
  } catch {
    // npm puts its bundled node-gyp on PATH while it runs install scripts.
    return ['node-gyp'];
  }
}
// Offline: build against the headers of the node that runs us (<prefix>/include/node) unless npm names a nodedir;
// without this node-gyp would try to download them.
const prefix = path.dirname(path.dirname(process.execPath));
const args = ['rebuild'];
if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
const [cmd, ...pre] = findNodeGyp();
const r = spawnSync(cmd, [...pre, ...args], { cwd: root, stdio: 'inherit' });
if (r.status === 0) process.exit(0);

const msg =
  'natt: the native addon could not be built (node-gyp needs python3, make and a C++ compiler).\n' +
  '      The userland backend still works; kernel NAT-T sockets, PF_KEY and XFRM do not.\n' +
  '      Set NATT_REQUIRE_NATIVE=1 to make this failure fatal.';
console.warn(msg);
process.exit(process.env.NATT_REQUIRE_NATIVE === '1' ? 1 : 0);
