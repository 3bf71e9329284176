// The package as npm ships it: a prebuild made offline, `npm pack`, an offline install on a PATH without a compiler, the addon loaded from the prebuild.
//
// Steps (beforeAll): take prebuilds/<platform>-<arch>/natt.node when it was made from this checkout's native/ and
// binding.gyp (its sources.sha256; CI runs `npm run prebuild` first), else make one now with scripts/prebuild.js into a temp dir (a scratch build: the checkout's
// build/ is not touched). Stage the files `npm pack` selects from this checkout (its own dry run) with that prebuild, pack
// them, and install the tarball into empty projects with HOME an empty folder (no ~/.npmrc), PATH a folder holding only
// node, npm and sh (no g++, c++, cc, make or python3: the test checks), `--offline`, and, as root, no network at all
// (`unshare -n`). The npm cache is the one `npm ci` filled for this checkout.
//
// Why the empty projects hold a package-lock.json: npm 11 resolves a dependency it has not locked from the FULL packument
// (arborist asks pacote for fullMetadata), while `npm ci` fetches only the abbreviated one (Accept:
// application/vnd.npm.install-v1+json), and npm's cache keeps the two apart. So in an empty project
// `npm install natt-0.1.0.tgz --offline` stops at `ENOTCACHED request to https://registry.npmjs.org/bindings failed` on a
// cache filled by `npm ci` alone. The closest honest variant: the project's lockfile already holds natt's three
// dependencies at the versions of natt's own lockfile (as a project that had them would), and the command is then
// exactly `npm install <tarball> --offline`; natt itself, its install script and its addon come from the tarball.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT as root, ensureDist } from '../lib/dist';

const req = createRequire(__filename);
const { freshPrebuild, onPath } = req('../../scripts/prebuild.js') as {
  freshPrebuild: (dir?: string, src?: string) => string | undefined;
  onPath: (cmd: string, env?: NodeJS.ProcessEnv) => boolean;
};
const { STAMP, prebuildFits, sourcesHash } = req('../../scripts/install.js') as {
  STAMP: string;
  prebuildFits: (dir?: string) => { file?: string; reason?: string };
  sourcesHash: (dir?: string) => string;
};

const plat = `${process.platform}-${process.arch}`;
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string; dependencies?: Record<string, string> }> };
const COMPILERS = ['g++', 'c++', 'cc', 'gcc', 'clang', 'make', 'python3', 'python'];

/** natt's runtime dependencies, transitively, as natt's lockfile has them. */
function runtimeDeps(): Record<string, (typeof lock.packages)[string]> {
  const out: Record<string, (typeof lock.packages)[string]> = {};
  const todo = Object.keys(pkg.dependencies);
  while (todo.length) {
    const name = todo.shift() as string;
    const entry = lock.packages[`node_modules/${name}`];
    if (out[name] || !entry) continue;
    out[name] = entry;
    todo.push(...Object.keys(entry.dependencies ?? {}));
  }
  return out;
}

/** The npm cache and registry this checkout's `npm ci` used, and whether they hold natt's dependencies. */
function npmSetup(): { npm?: string; cache?: string; registry?: string; missing?: string } {
  const npmBin = (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'npm')).find((p) => fs.existsSync(p));
  if (!npmBin) return { missing: 'no npm on PATH' };
  const r = spawnSync(npmBin, ['config', 'get', 'cache', 'registry'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  const conf = Object.fromEntries((r.stdout ?? '').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const { cache, registry } = conf as { cache?: string; registry?: string };
  if (!cache || !registry) return { missing: `\`npm config get cache registry\` said ${JSON.stringify(r.stdout)}` };
  // cacache's index: index-v5/<sha256 of the key, split 2/2/rest>.
  const cached = (key: string): boolean => {
    const h = createHash('sha256').update(key).digest('hex');
    return fs.existsSync(path.join(cache, '_cacache', 'index-v5', h.slice(0, 2), h.slice(2, 4), h.slice(4)));
  };
  const base = registry.endsWith('/') ? registry : `${registry}/`;
  for (const [name, e] of Object.entries(runtimeDeps())) {
    const tgz = `${base}${name}/-/${name.split('/').pop()}-${e.version}.tgz`;
    if (!cached(`make-fetch-happen:request-cache:${base}${name}`) || !cached(`make-fetch-happen:request-cache:${tgz}`)) {
      return { missing: `${name}@${e.version} is not in the npm cache ${cache} (run npm ci once online)` };
    }
  }
  return { npm: fs.realpathSync(npmBin), cache, registry };
}

const npm = npmSetup();
const reuse = freshPrebuild();
const canBuild = onPath('python3') && onPath('make') && (onPath('g++') || onPath('c++'));
const unshare = (process.env.PATH ?? '').split(path.delimiter).map((d) => path.join(d, 'unshare')).find((p) => fs.existsSync(p));
const noNet = process.getuid?.() === 0 && unshare !== undefined && spawnSync(unshare, ['-n', 'true']).status === 0;
const skip = npm.missing ?? (!reuse && !canBuild ? `no prebuild in prebuilds/${plat} made from these sources, and no compiler to make one` : undefined);
// CI (NATT_REQUIRE_NATIVE=1) must not pass by skipping: there a missing precondition fails the tests.
const mustRun = process.env.NATT_REQUIRE_NATIVE === '1';
const how = `${reuse ? `prebuilds/${plat} reused` : 'prebuild made now'}, ${noNet ? 'unshare -n: no network' : '--offline only: not root or no unshare'}`;

let tmp = '';
let prebuild = '';
let tarball = '';
let bare = '';
let packed: string[] = [];
let stage = '';
let env: NodeJS.ProcessEnv = {};

function run(cmd: string, args: string[], cwd: string, timeout = 60_000): SpawnSyncReturns<string> {
  // The command is looked up on env.PATH (the compiler-free one); unshare by its absolute path.
  const [file, argv] = noNet ? [unshare as string, ['-n', '--', cmd, ...args]] : [cmd, args];
  return spawnSync(file, argv, { cwd, env, encoding: 'utf8', timeout });
}

/** Copy what `npm pack` takes from this checkout into a stage (without prebuilds/), add `prebuildFile`, pack it there. */
function pack(name: string, prebuildFile?: string): { stage: string; tarball: string; files: string[] } {
  const stage = path.join(tmp, `stage-${name}`);
  const dry = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  const files = (JSON.parse(dry.stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
  for (const f of files.filter((p) => !p.startsWith('prebuilds/'))) {
    fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(stage, f));
  }
  if (prebuildFile) {
    fs.mkdirSync(path.join(stage, 'prebuilds', plat), { recursive: true });
    for (const f of [path.basename(prebuildFile), STAMP]) fs.copyFileSync(path.join(path.dirname(prebuildFile), f), path.join(stage, 'prebuilds', plat, f));
  }
  const out = path.join(tmp, `out-${name}`);
  fs.mkdirSync(out);
  // --ignore-scripts: prepack (compile, prebuild check) is for releases; dist/ is fresh (ensureDist).
  const r = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { cwd: stage, encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  const j = (JSON.parse(r.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0];
  return { stage, tarball: path.join(out, j.filename), files: j.files.map((f) => f.path) };
}

/** An empty project whose lockfile holds natt's dependencies (see the top of this file); allowScripts as given. */
function project(name: string, tgz: string, allowInstallScript: boolean): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  // npm matches a tarball dependency by its resolved spec: file:<absolute path> (what `npm install-scripts approve` writes).
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, allowScripts: { [`file:${tgz}`]: allowInstallScript } }, null, 2));
  const packages: Record<string, unknown> = { '': { name, version: '1.0.0' } };
  for (const [n, e] of Object.entries(runtimeDeps())) packages[`node_modules/${n}`] = { ...e, extraneous: true };
  fs.writeFileSync(path.join(dir, 'package-lock.json'), JSON.stringify({ name, version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2));
  return dir;
}

function install(dir: string, tgz: string): SpawnSyncReturns<string> {
  return run('npm', ['install', tgz, '--offline', '--no-audit', '--no-fund', '--foreground-scripts'], dir);
}

/** nativeStatus() (probe().native) through require, import and the installed bin. */
function loads(dir: string): { require: unknown; import: unknown; bin: unknown } {
  const r = run('node', ['-e', "console.log(JSON.stringify(require('natt').probe().native))"], dir);
  const i = run('node', ['--input-type=module', '-e', "const n = await import('natt'); console.log(JSON.stringify(n.probe().native))"], dir);
  const b = run(path.join(dir, 'node_modules', '.bin', 'natt'), ['probe', '--json'], dir);
  const parse = (x: SpawnSyncReturns<string>, pick: (v: { native?: unknown }) => unknown = (v) => v) => {
    try {
      return pick(JSON.parse(x.stdout));
    } catch {
      return { status: x.status, stdout: x.stdout, stderr: x.stderr };
    }
  };
  return { require: parse(r), import: parse(i), bin: parse(b, (v) => v.native) };
}

const sha = (f: string): string => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe.skipIf(skip !== undefined && !mustRun)(`the packed tarball installed offline with no compiler on PATH (${skip ? `skipped: ${skip}` : how})`, () => {
  beforeAll(() => {
    if (skip) throw new Error(`cannot run: ${skip}`);
    ensureDist();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-install-'));
    if (reuse) prebuild = reuse;
    else {
      // A scratch build with the compiler of this host, offline too (unshare -n where it can).
      const args = [path.join(root, 'scripts', 'prebuild.js'), '--out', tmp];
      const [file, argv] = noNet ? [unshare as string, ['-n', '--', process.execPath, ...args]] : [process.execPath, args];
      const r = spawnSync(file, argv, { cwd: root, encoding: 'utf8', timeout: 180_000 });
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      prebuild = path.join(tmp, 'prebuilds', plat, 'natt.node');
    }
    const full = pack('with-prebuild', prebuild);
    tarball = full.tarball;
    packed = full.files;
    stage = full.stage;
    bare = pack('source-only').tarball;
    // PATH: node, npm and sh only.
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    fs.symlinkSync(npm.npm as string, path.join(bin, 'npm'));
    fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home);
    // A fresh environment: nothing from `npm test` (npm_config_*, NATT_REQUIRE_NATIVE, CC, PYTHON ...) leaks in.
    env = { HOME: home, PATH: bin, TMPDIR: os.tmpdir(), npm_config_cache: npm.cache, npm_config_registry: npm.registry, npm_config_update_notifier: 'false' };
  }, 240_000);
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it(`npm pack ships prebuilds/${plat}/natt.node, dist/, bin/ and what a source build needs; nothing of the checkout's build/, src/ or test/`, () => {
    for (const f of [`prebuilds/${plat}/natt.node`, `prebuilds/${plat}/${STAMP}`, 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/native/binding.js', 'bin/natt.js', 'scripts/install.js', 'binding.gyp', 'native/addon.cc', 'package.json']) {
      expect(packed).toContain(f);
    }
    expect(packed.filter((f) => /^(build|src|test|node_modules)\//.test(f) || f.endsWith('.tgz'))).toEqual([]);
    // What was packed is an N-API build for this platform that loads here: scripts/install.js will take it.
    expect(prebuildFits(stage)).toEqual({ file: path.join(stage, 'prebuilds', plat, 'natt.node') });
  });

  it('the install PATH has no compiler, make or python, and HOME has no .npmrc', () => {
    const r = spawnSync('/bin/sh', ['-c', `for c in ${COMPILERS.join(' ')}; do command -v $c; done; exit 0`], { env, encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(fs.readdirSync(env.HOME as string)).toEqual([]);
  });

  it('npm install <tarball> --offline (install script allowed): scripts/install.js takes the prebuild, builds nothing; require, import and the bin load it', () => {
    const dir = project('app-allowed', tarball, true);
    const r = install(dir, tarball);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`natt: using the prebuilt addon prebuilds/${plat}/natt.node (no compiler needed)`);
    expect(r.stdout + r.stderr).not.toMatch(/gyp/);
    const natt = path.join(dir, 'node_modules', 'natt');
    expect(fs.existsSync(path.join(natt, 'build'))).toBe(false);
    const file = path.join(fs.realpathSync(natt), 'prebuilds', plat, 'natt.node');
    expect(sha(file)).toBe(sha(prebuild));
    const want = { loaded: true, path: file };
    expect(loads(dir)).toEqual({ require: want, import: want, bin: want });
  });

  it('npm install <tarball> --offline with the install script held back (allowScripts: false): the loader still finds the prebuild', () => {
    const dir = project('app-held-back', tarball, false);
    const r = install(dir, tarball);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).not.toContain('natt: ');
    const natt = fs.realpathSync(path.join(dir, 'node_modules', 'natt'));
    expect(fs.existsSync(path.join(natt, 'build'))).toBe(false);
    const want = { loaded: true, path: path.join(natt, 'prebuilds', plat, 'natt.node') };
    expect(loads(dir)).toEqual({ require: want, import: want, bin: want });
  });

  it('the same install of a tarball without the prebuild tries node-gyp, which cannot build on that PATH: the install succeeds, the addon is missing, userland works', () => {
    const dir = project('app-source-only', bare, true);
    const r = install(dir, bare);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain(`natt: building the addon from source: no prebuild for ${plat} in prebuilds/`);
    expect(r.stderr).toContain('natt: the native addon could not be built (node-gyp needs python3, make and a C++ compiler)');
    const s = run('node', ['-e', "const n = require('natt'); n.createNattSocket({ address: '127.0.0.1', port: 0 }).then((s) => { console.log(JSON.stringify({ native: n.probe().native, backend: s.backend })); s.close(); })"], dir);
    const out = JSON.parse(s.stdout) as { native: { loaded: boolean; reason: string }; backend: string };
    expect(out.native.loaded).toBe(false);
    expect(out.native.reason).toMatch(/bindings/);
    expect(out.backend).toBe('userland');
  });
});

describe('scripts/install.js and scripts/prebuild.js decisions', () => {
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-fits-'));
    fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(dir, 'binding.gyp'));
    fs.cpSync(path.join(root, 'native'), path.join(dir, 'native'), { recursive: true });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('no prebuild, a file that is not an addon, a prebuild of other sources: install builds from source, prepack refuses', () => {
    expect(prebuildFits(dir)).toEqual({ reason: `no prebuild for ${plat} in prebuilds/` });
    const check = () =>
      spawnSync(process.execPath, [path.join(root, 'scripts', 'prebuild.js'), '--check', '--out', dir], { encoding: 'utf8', env: { ...process.env, NATT_PACK_WITHOUT_PREBUILD: '' } });
    const none = check();
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/run `npm run prebuild` first/);
    const file = path.join(dir, 'prebuilds', plat, 'natt.node');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, 'not an ELF file');
    expect(prebuildFits(dir).reason).toMatch(/^the prebuild does not load here: /);
    // No stamp (prebuildify alone): install cannot tell and tries it; prepack wants a stamp.
    expect(freshPrebuild(dir)).toBeUndefined();
    expect(check().status).toBe(1);
    // Stamped from other sources (native/ changed since): stale for install and for prepack, whatever the mtimes.
    fs.writeFileSync(path.join(dir, 'prebuilds', plat, STAMP), `${'0'.repeat(64)}  native/ binding.gyp\n`);
    expect(prebuildFits(dir).reason).toMatch(/^the prebuild was made from other sources/);
    expect(check().status).toBe(1);
    fs.writeFileSync(path.join(dir, 'prebuilds', plat, STAMP), `${sourcesHash(dir)}  native/ binding.gyp\n`);
    expect(freshPrebuild(dir, dir)).toBe(file);
    expect(check().status).toBe(0);
    fs.appendFileSync(path.join(dir, 'native', 'addon.cc'), '\n// changed\n');
    expect(freshPrebuild(dir, dir)).toBeUndefined();
  });
});
