// Builds the Linux VM's kernel + initramfs from Debian packages and the host's node, cached under .vm-cache/.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE = path.join(ROOT, '.vm-cache');
const KERNEL_META = 'linux-image-cloud-amd64';
const HOST_TOOLS = { 'qemu-system-x86_64': 'qemu-system-x86', busybox: 'busybox-static', cpio: 'cpio', depmod: 'kmod' };

/** Modules the guest loads, in this order, each after its dependencies (resolved by modprobe --show-depends). */
const MODULES = [
  'virtio', 'virtio_ring', 'virtio_pci', 'virtio_net', 'tun',
  'xfrm_algo', 'xfrm_user', 'af_key', 'esp4', 'esp6', 'xfrm_interface',
  // crypto ESP needs; AES, CBC, HMAC, SHA-1 and SHA-256 are built in (=y) in the cloud kernel.
  'gf128mul', 'ghash_generic', 'ctr', 'gcm', 'authenc', 'authencesn', 'seqiv', 'echainiv',
  'chacha_generic', 'poly1305_generic', 'chacha20poly1305', 'sha512_generic', 'cmac', 'xcbc', 'aesni_intel',
  // what the IV generators need (null skcipher, the default RNG) and the x86 implementations the kernel prefers
  'crypto_null', 'drbg', 'ecb', 'ccm', 'ghash_clmulni_intel', 'chacha_x86_64', 'poly1305_x86_64',
  'sha1_ssse3', 'sha256_ssse3', 'sha512_ssse3',
];

/** Files of the package the guest needs besides node_modules (rebuilt into a small second archive every run); all of
 * test/, since kernel tests may share helpers with the host suites (only test/kernel/ is run). */
const PACKAGE_PATHS = ['package.json', 'dist', 'src', 'test', 'scripts/vm/guest', 'build/Release', 'prebuilds', 'tsconfig.json'];
/** node_modules the guest does not need (the compiler and the native build tools). */
const SKIP_MODULES = new Set(['typescript', 'node-gyp', 'prebuildify', '.cache', '@types']);

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

function have(cmd) {
  try {
    sh('sh', ['-c', `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/** apt-get install what is missing, waiting while another dpkg holds the lock. */
function ensureHostTools(log) {
  const missing = Object.entries(HOST_TOOLS).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')} with apt-get`);
  for (let attempt = 0; ; attempt++) {
    try {
      sh('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      return;
    } catch (err) {
      const text = String(err.stderr || err.message);
      if (attempt < 60 && /lock/i.test(text)) {
        sh('sleep', ['5']);
        continue;
      }
      if (attempt === 0 && /Unable to locate|has no installation candidate/.test(text)) {
        sh('apt-get', ['update']);
        continue;
      }
      throw new Error(`apt-get install ${missing.join(' ')} failed: ${text.trim().split('\n').pop()}`);
    }
  }
}

/** The kernel package the meta package depends on, downloaded and unpacked once. */
function fetchKernel(log) {
  const depends = () => {
    try {
      return /Depends:\s*(linux-image-[0-9][^\s]*-cloud-amd64)/.exec(sh('apt-cache', ['depends', KERNEL_META]));
    } catch {
      return null;
    }
  };
  let m = depends();
  if (!m) {
    log('apt-get update (no package lists name the kernel yet)');
    sh('apt-get', ['update', '-q']);
    m = depends();
  }
  if (!m) throw new Error(`cannot find the versioned kernel package of ${KERNEL_META} (apt-get update?)`);
  const pkg = m[1];
  const dir = path.join(CACHE, pkg);
  const done = path.join(dir, '.unpacked');
  if (!fs.existsSync(done)) {
    log(`downloading ${pkg}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    sh('apt-get', ['download', pkg], { cwd: dir });
    const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'));
    sh('dpkg-deb', ['-x', path.join(dir, deb), path.join(dir, 'root')]);
    fs.writeFileSync(done, pkg);
  }
  const root = path.join(dir, 'root');
  const version = fs.readdirSync(path.join(root, 'lib', 'modules'))[0];
  return { pkg, root, version, vmlinuz: path.join(root, 'boot', `vmlinuz-${version}`) };
}

/** Copy a host file into the staging tree at the same path (following symlinks). */
function copyHostFile(stage, file) {
  const dst = path.join(stage, file);
  if (fs.existsSync(dst)) return;
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(fs.realpathSync(file), dst);
  fs.chmodSync(dst, fs.statSync(fs.realpathSync(file)).mode & 0o7777);
}

/** A binary and the shared libraries ldd names for it. */
function copyWithLibs(stage, file, as = file) {
  const dst = path.join(stage, as);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(fs.realpathSync(file), dst);
  fs.chmodSync(dst, 0o755);
  copyLibs(stage, file);
}

function copyLibs(stage, file) {
  let out = '';
  try {
    out = sh('ldd', [file]);
  } catch {
    return; // static binary
  }
  for (const line of out.split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) copyHostFile(stage, m[1]);
  }
}

function copyTree(src, dst, skip) {
  fs.cpSync(src, dst, {
    recursive: true,
    dereference: true,
    filter: (p) => !(skip && skip.has(path.basename(p)) && path.dirname(p) === src),
  });
}

/** Pack a staging directory as a gzip'd newc cpio archive. */
function packCpio(stage, out) {
  sh('sh', ['-c', `cd "${stage}" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -1 > "${out}.tmp" && mv "${out}.tmp" "${out}"`]);
}

function modulePaths(kernel) {
  sh('depmod', ['-b', kernel.root, kernel.version]);
  const seen = new Set();
  const order = [];
  for (const mod of MODULES) {
    const out = sh('modprobe', ['-d', kernel.root, '-S', kernel.version, '--show-depends', mod]);
    for (const line of out.split('\n')) {
      const m = /^insmod\s+(\S+)/.exec(line);
      if (m && !seen.has(m[1])) {
        seen.add(m[1]);
        order.push(m[1]);
      }
    }
  }
  return order;
}

/** The base archive: busybox, node + libs, ip + libs, kernel modules, node_modules. Cached by its inputs. */
function buildBase(kernel, log) {
  const node = fs.realpathSync(process.execPath);
  const lock = fs.existsSync(path.join(ROOT, 'package-lock.json')) ? fs.readFileSync(path.join(ROOT, 'package-lock.json')) : '';
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify([kernel.pkg, node, fs.statSync(node).size, MODULES, [...SKIP_MODULES], 3]))
    .update(lock)
    .digest('hex')
    .slice(0, 16);
  const out = path.join(CACHE, `base-${key}.cpio.gz`);
  if (fs.existsSync(out)) return out;
  log('building the base initramfs (busybox, node, ip, modules, node_modules)');
  const stage = path.join(CACHE, 'stage-base');
  fs.rmSync(stage, { recursive: true, force: true });
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'root', 'natt']) {
    fs.mkdirSync(path.join(stage, d), { recursive: true });
  }
  copyWithLibs(stage, sh('sh', ['-c', 'command -v busybox']).trim(), '/bin/busybox');
  copyWithLibs(stage, node, '/usr/bin/node');
  copyWithLibs(stage, '/usr/sbin/ip');
  fs.writeFileSync(path.join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(stage, 'etc/group'), 'root:x:0:\n');
  fs.writeFileSync(path.join(stage, 'etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  // modules, plus depmod output so the kernel's own request_module (crypto templates) finds them
  const mods = modulePaths(kernel);
  const modRoot = `lib/modules/${kernel.version}`;
  for (const p of mods) {
    const rel = path.relative(kernel.root, p);
    fs.mkdirSync(path.join(stage, path.dirname(rel)), { recursive: true });
    fs.copyFileSync(p, path.join(stage, rel));
  }
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    fs.copyFileSync(path.join(kernel.root, modRoot, f), path.join(stage, modRoot, f));
  }
  sh('depmod', ['-b', stage, kernel.version]);
  fs.writeFileSync(path.join(stage, 'etc/natt-modules'), mods.map((p) => '/' + path.relative(kernel.root, p)).join('\n') + '\n');
  // node_modules (vitest and what it needs), and the libraries of native modules in it
  copyTree(path.join(ROOT, 'node_modules'), path.join(stage, 'natt/node_modules'), SKIP_MODULES);
  const natives = sh('find', [path.join(stage, 'natt/node_modules'), '-name', '*.node', '-type', 'f']).split('\n').filter(Boolean);
  for (const f of natives) copyLibs(stage, f);
  packCpio(stage, out);
  fs.rmSync(stage, { recursive: true, force: true });
  for (const f of fs.readdirSync(CACHE)) {
    if (f.startsWith('base-') && path.join(CACHE, f) !== out) fs.rmSync(path.join(CACHE, f));
  }
  return out;
}

/** The package archive: the built package, its kernel tests and the guest scripts (small, rebuilt every run). */
function buildPackage(log) {
  const stage = path.join(CACHE, 'stage-pkg');
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(path.join(stage, 'natt'), { recursive: true });
  for (const p of PACKAGE_PATHS) {
    const src = path.join(ROOT, p);
    if (fs.existsSync(src)) copyTree(src, path.join(stage, 'natt', p));
  }
  for (const f of sh('find', [path.join(stage, 'natt'), '-name', '*.node', '-type', 'f']).split('\n').filter(Boolean)) {
    copyLibs(stage, f);
  }
  const init = path.join(stage, 'init');
  fs.copyFileSync(path.join(__dirname, 'guest', 'init.sh'), init);
  fs.chmodSync(init, 0o755);
  const out = path.join(CACHE, 'package.cpio.gz');
  packCpio(stage, out);
  fs.rmSync(stage, { recursive: true, force: true });
  log('package archive rebuilt');
  return out;
}

/** Build (or reuse) everything; returns the kernel path and the initrd (base + package archives concatenated). */
function buildImage(log = () => {}) {
  fs.mkdirSync(CACHE, { recursive: true });
  ensureHostTools(log);
  const kernel = fetchKernel(log);
  const base = buildBase(kernel, log);
  const pkg = buildPackage(log);
  const initrd = path.join(CACHE, 'initrd.cpio.gz');
  fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(base), fs.readFileSync(pkg)]));
  return { kernel: kernel.vmlinuz, initrd, kernelVersion: kernel.version, kernelPackage: kernel.pkg };
}

module.exports = { buildImage, MODULES };
