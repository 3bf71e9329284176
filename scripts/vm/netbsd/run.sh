#!/bin/sh
# NetBSD VM run (as root, from the repository root): build, npm test, then the kernel suite. NOT RUN HERE: see README "VM smoke tests".
set -eu
cd "$(dirname "$0")/../../.."

echo "== host"
uname -a
# GENERIC has had IPsec (and with it PF_KEY) since NetBSD 8; say what this kernel has before the tests do.
sysctl net.inet.ipsec.enabled 2>/dev/null || echo "no net.inet.ipsec sysctl: kernel built without options IPSEC"
modstat 2>/dev/null | grep -i ipsec || true

echo "== build"
export NATT_REQUIRE_NATIVE=1
export MAKE=gmake
npm ci
# Rollup (vite's bundler, under vitest) ships no native binary for NetBSD (rollup 4.68: linux, darwin, win32,
# freebsd, android, ...): put its WebAssembly build in its place for this run only.
if ! node -e "require('rollup')" >/dev/null 2>&1; then
  npm install --no-save 'rollup@npm:@rollup/wasm-node@^4'
fi
npm run -s compile
node bin/natt.js probe || true

echo "== npm test"
npm test

echo "== kernel suite (test/kernel, as root: PF_KEY on NetBSD's own dialect)"
# The same runner the Linux VM uses: prints each test by name and the count line; NATT_VM=1 makes a run in which
# nothing passed a failure. On NetBSD the PF_KEY contract suite (test/kernel/contract.test.ts) is the kernel test:
# the Linux-only suites skip with their reason.
NATT_VM=1 node scripts/vm/guest/run-suite.js
