// Builds the Linux VM's kernel + initramfs from Debian packages and the host's node, cached under .vm-cache/.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const CACHE = path.join(ROOT, '.vm-cache');
const HOST_TOOLS = { 'qemu-system-x86_64': 'qemu-system-x86', busybox: 'busybox-static', cpio: 'cpio', depmod: 'kmod', xz: 'xz-utils' };
/** Debian's security archive, where a host's own apt sources lack a kernel (NATT_VM_DEBIAN_SECURITY_MIRROR overrides). */
const SECURITY_MIRROR = process.env.NATT_VM_DEBIAN_SECURITY_MIRROR || 'http://deb.debian.org/debian-security';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

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
  // what setkey files ask of the kernel besides ESP (test/kernel/setkey.test.ts): AH, IPComp (with the IPIP / IPv6
  // tunnel SAs tunnel-mode IPComp attaches), and the PF_KEY-era ciphers (DES, 3DES, Blowfish, CAST, Camellia,
  // Twofish), RIPEMD-160 and deflate (built into 6.1, a module on 6.12)
  'ah4', 'ah6', 'xfrm_ipcomp', 'ipcomp', 'ipcomp6', 'tunnel4', 'tunnel6', 'xfrm4_tunnel', 'xfrm6_tunnel',
  'des_generic', 'blowfish_generic', 'cast5_generic', 'camellia_generic', 'twofish_generic', 'rmd160', 'deflate',
];

/**
 * The kernels the VM suite boots, by the name NATT_VM_KERNEL picks: Debian 12's two cloud kernels, each behind a
 * meta package of bookworm-security (6.1: `linux-image-cloud-amd64`, the release's kernel, also in bookworm;
 * 6.12: `linux-image-6.12-cloud-amd64`, the newer kernel bookworm carries for its long-term support). Looked up in the
 * host's own apt sources first; where they lack it (or name another series), in a private apt state under
 * .vm-cache/apt-<suite>/ with only that suite (its own sources list, package lists and cache: the host's sources,
 * lists and installed packages are not touched). Both ship every module of MODULES, as a file or built in (6.12's
 * files are xz-compressed: unpacked on the host). Not bookworm-backports' 6.12 (6.12.95-1~bpo12+1): that build
 * oopses while unpacking the initramfs under qemu 7.2 TCG in most boots.
 */
const KERNELS = {
  '6.1': { name: '6.1', meta: 'linux-image-cloud-amd64', suite: 'bookworm-security' },
  '6.12': { name: '6.12', meta: 'linux-image-6.12-cloud-amd64', suite: 'bookworm-security' },
};

/** Files of the package the guest needs besides node_modules (rebuilt into a small second archive every run); all of
 * test/, since kernel tests may share helpers with the host suites (only test/kernel/ is run). */
const PACKAGE_PATHS = ['package.json', 'bin', 'dist', 'src', 'test', 'scripts/vm/guest', 'build/Release', 'prebuilds', 'tsconfig.json'];
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

/** apt-get/apt-cache options of a private apt state that knows only `suite` (created on first use). */
function privateApt(suite) {
  const dir = path.join(CACHE, `apt-${suite}`);
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const list = path.join(dir, 'sources.list');
  const line = `deb [signed-by=${KEYRING}] ${SECURITY_MIRROR} ${suite} main\n`;
  if (!fs.existsSync(list) || fs.readFileSync(list, 'utf8') !== line) {
    fs.writeFileSync(list, line);
    fs.rmSync(path.join(dir, 'lists'), { recursive: true, force: true });
    fs.mkdirSync(path.join(dir, 'lists/partial'), { recursive: true });
  }
  return [
    '-o', `Dir::Etc::SourceList=${list}`,
    '-o', `Dir::Etc::SourceParts=${path.join(dir, 'sources.list.d')}`,
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`,
    '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
    '-o', 'Dir::State::status=/dev/null',
  ];
}

/** The versioned package `spec.meta` depends on in one apt view, updating its lists once if they do not name it. */
function resolveKernel(spec, opts, where, log) {
  const depends = () => {
    try {
      return /Depends:\s*(linux-image-[0-9][^\s]*-cloud-amd64)/.exec(sh('apt-cache', [...opts, 'depends', spec.meta]))?.[1] ?? null;
    } catch {
      return null;
    }
  };
  let pkg = depends();
  if (!pkg) {
    log(`apt-get update of ${where}: no package list names ${spec.meta} yet`);
    try {
      sh('apt-get', [...opts, 'update', '-q']);
    } catch (err) {
      log(`apt-get update of ${where} failed: ${String(err.stderr || err.message).trim().split('\n').pop()}`);
    }
    pkg = depends();
  }
  if (pkg && !pkg.startsWith(`linux-image-${spec.name}.`)) {
    log(`${spec.meta} in ${where} depends on ${pkg}, not a ${spec.name} kernel`);
    return null;
  }
  return pkg;
}

/** The versioned kernel package of `spec`, downloaded and unpacked once into .vm-cache/<package>/. */
function fetchKernel(spec, log) {
  let opts = [];
  let where = "the host's apt sources";
  let pkg = resolveKernel(spec, opts, where, log);
  if (!pkg) {
    opts = privateApt(spec.suite);
    where = `${spec.suite} (private apt state in .vm-cache/apt-${spec.suite})`;
    pkg = resolveKernel(spec, opts, where, log);
  }
  if (!pkg) throw new Error(`kernel ${spec.name}: no ${spec.meta} naming a ${spec.name} kernel, neither in the host's apt sources nor in ${spec.suite}`);
  const dir = path.join(CACHE, pkg);
  const done = path.join(dir, '.unpacked');
  if (!fs.existsSync(done)) {
    log(`downloading ${pkg} from ${where}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    try {
      sh('apt-get', [...opts, 'download', pkg], { cwd: dir });
    } catch (err) {
      throw new Error(
        `kernel ${spec.name}: apt-get download ${pkg} from ${where} failed (package lists older than the archive? apt-get update): ` +
          String(err.stderr || err.message).trim().split('\n').pop(),
      );
    }
    const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb'));
    sh('dpkg-deb', ['-x', path.join(dir, deb), path.join(dir, 'root')]);
    fs.writeFileSync(done, pkg);
  }
  const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb')) ?? '';
  const version = decodeURIComponent(/_([^_]+)_[^_]+\.deb$/.exec(deb)?.[1] ?? 'unknown');
  const root = path.join(dir, 'root');
  const release = fs.readdirSync(path.join(root, 'lib', 'modules'))[0];
  return { name: spec.name, pkg, pkgVersion: version, root, version: release, vmlinuz: path.join(root, 'boot', `vmlinuz-${release}`) };
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

/**
 * The module files MODULES needs on this kernel, each after its dependencies (modprobe --show-depends on a depmod tree),
 * and the names the kernel has built in (no file to load).
 */
function modulePaths(kernel) {
  sh('depmod', ['-b', kernel.root, kernel.version]);
  const seen = new Set();
  const order = [];
  const builtin = [];
  for (const mod of MODULES) {
    let out;
    try {
      out = sh('modprobe', ['-d', kernel.root, '-S', kernel.version, '--show-depends', mod]);
    } catch (err) {
      throw new Error(`kernel ${kernel.version} has no module ${mod} (neither a file nor built in): ${String(err.stderr || err.message).trim()}`);
    }
    for (const line of out.split('\n')) {
      const m = /^insmod\s+(\S+)/.exec(line);
      if (m && !seen.has(m[1])) {
        seen.add(m[1]);
        order.push(m[1]);
      }
      if (/^builtin\s/.test(line)) builtin.push(mod);
    }
  }
  return { order, builtin };
}

/** Copy a module into the staging tree uncompressed (busybox insmod and modprobe take plain .ko); returns the new path. */
function stageModule(kernel, stage, file) {
  const rel = path.relative(kernel.root, file);
  const plain = rel.replace(/\.ko\.(xz|gz|zst)$/, '.ko');
  const dst = path.join(stage, plain);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  const kind = /\.ko\.(xz|gz|zst)$/.exec(rel)?.[1];
  if (!kind) fs.copyFileSync(file, dst);
  else if (kind === 'gz') fs.writeFileSync(dst, require('node:zlib').gunzipSync(fs.readFileSync(file)));
  else fs.writeFileSync(dst, execFileSync(kind === 'xz' ? 'xz' : 'zstd', ['-dc', file], { maxBuffer: 64 << 20 }));
  return '/' + plain;
}

/** The base archive: busybox, node + libs, ip + libs, kernel modules, node_modules. Cached by its inputs. */
function buildBase(kernel, log) {
  const node = fs.realpathSync(process.execPath);
  const lock = fs.existsSync(path.join(ROOT, 'package-lock.json')) ? fs.readFileSync(path.join(ROOT, 'package-lock.json')) : '';
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify([kernel.pkg, node, fs.statSync(node).size, MODULES, [...SKIP_MODULES], 4]))
    .update(lock)
    .digest('hex')
    .slice(0, 16);
  const out = path.join(CACHE, `base-${kernel.name}-${key}.cpio.gz`);
  if (fs.existsSync(out)) return out;
  log(`building the base initramfs for ${kernel.version} (busybox, node, ip, modules, node_modules)`);
  const stage = path.join(CACHE, `stage-base-${kernel.name}`);
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
  const { order, builtin } = modulePaths(kernel);
  if (builtin.length) log(`built into ${kernel.version}: ${builtin.join(' ')}`);
  const modRoot = `lib/modules/${kernel.version}`;
  const mods = order.map((p) => stageModule(kernel, stage, p));
  for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
    fs.copyFileSync(path.join(kernel.root, modRoot, f), path.join(stage, modRoot, f));
  }
  sh('depmod', ['-b', stage, kernel.version]);
  fs.writeFileSync(path.join(stage, 'etc/natt-modules'), mods.join('\n') + '\n');
  // node_modules (vitest and what it needs), and the libraries of native modules in it
  copyTree(path.join(ROOT, 'node_modules'), path.join(stage, 'natt/node_modules'), SKIP_MODULES);
  const natives = sh('find', [path.join(stage, 'natt/node_modules'), '-name', '*.node', '-type', 'f']).split('\n').filter(Boolean);
  for (const f of natives) copyLibs(stage, f);
  packCpio(stage, out);
  fs.rmSync(stage, { recursive: true, force: true });
  // older base archives of this kernel (another kernel's stay); base-<hash> is the layout before there were two kernels
  for (const f of fs.readdirSync(CACHE)) {
    const mine = f.startsWith(`base-${kernel.name}-`) || /^base-[0-9a-f]{16}\.cpio\.gz$/.test(f);
    if (mine && path.join(CACHE, f) !== out) fs.rmSync(path.join(CACHE, f));
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

/** The kernels NATT_VM_KERNEL names (a comma list of KERNELS' names; unset: all, oldest first). */
function selectKernels(value = process.env.NATT_VM_KERNEL) {
  if (!value) return Object.values(KERNELS);
  return value.split(',').map((n) => {
    const k = KERNELS[n.trim()];
    if (!k) throw new Error(`NATT_VM_KERNEL=${value}: unknown kernel ${JSON.stringify(n.trim())} (one of ${Object.keys(KERNELS).join(', ')})`);
    return k;
  });
}

/** Build (or reuse) everything for one kernel; returns its kernel path and the initrd (base + package archives). */
function buildImage(spec = KERNELS['6.1'], log = () => {}) {
  fs.mkdirSync(CACHE, { recursive: true });
  ensureHostTools(log);
  const kernel = fetchKernel(spec, log);
  const base = buildBase(kernel, log);
  const pkg = buildPackage(log);
  const initrd = path.join(CACHE, `initrd-${kernel.name}.cpio.gz`);
  fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(base), fs.readFileSync(pkg)]));
  return {
    name: kernel.name,
    kernel: kernel.vmlinuz,
    initrd,
    kernelVersion: kernel.version,
    kernelPackage: kernel.pkg,
    packageVersion: kernel.pkgVersion,
  };
}

module.exports = { buildImage, selectKernels, KERNELS, MODULES };
