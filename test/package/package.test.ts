// The built package as a user gets it: require('natt') and import('natt') of dist/, the bin, and the addon loader.

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIST as dist, ROOT as root, ensureDist } from '../lib/dist';

// `npm test` compiles first; when run alone, or when src/ changed since, compile here.
beforeAll(ensureDist, 150_000);

function node(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(process.execPath, args, { cwd: opts.cwd ?? root, env: { ...process.env, ...opts.env }, encoding: 'utf8', timeout: 30_000 });
}

/** A consumer project whose node_modules/natt links to this package, as after `npm install natt`. */
function consumer(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-consumer-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'natt'), 'dir');
  return dir;
}

// Every runtime export of src/index.ts; the test below also checks that nothing else is exported.
const API = [
  'createNattSocket', 'NattSocket', 'classify', 'probe', 'kernelEspSupport', 'openSadb', 'chooseSadbBackend',
  'NattError', 'NattSystemError', 'KernelReplyError', 'NattTimeoutError', 'NattUnsupportedError', 'errnoName', 'errnoNumber',
  'hideKey', 'hideSaKeys', 'withoutKeys', 'EspTransform', 'ReplayWindow', 'UserlandEngine', 'UserlandSadb', 'formatStats',
  'Xfrm', 'XfrmDecodeError', 'probeXfrm', 'PfKey', 'PfKeyDecodeError', 'EspSequenceExhaustedError',
  'createTun', 'Tun', 'Rtnetlink', 'RtnetlinkDecodeError', 'createTunnel', 'Tunnel',
  'parseSetkey', 'applySetkey', 'formatSadDump', 'formatSpdDump', 'toSetkey', 'SetkeyParseError', 'SetkeyUnsupportedError',
  'EspBatch', 'createEspTransform', 'nativeCipherStatus',
  'listenNattTcp', 'connectNattTcp', 'NattTcpListener', 'NattTcpClient', 'NattTcpConnection', 'FrameDecoder', 'encodeFrame', 'streamPrefix', 'espInTcpSupport',
  'createIkeSockets', 'IkeSockets', 'decideFloat', 'natdPayloads',
  'startCapture', 'PcapngWriter', 'espSaTable', 'writeEspSaFile',
];
/** The runtime exports that are not functions: codec namespaces and constants. */
const VALUES: Record<string, string> = {
  pfkey: 'object', xfrm: 'object', natd: 'object', rtnetlink: 'object', TCP_CLOSE_REASONS: 'object', LISTENER_DEFAULTS: 'object', CLIENT_DEFAULTS: 'object', ESP_DROP_REASONS: 'object', XFRM_STAT_NAMES: 'object',
  REPLAY_TOO_OLD: 'number', REPLAY_REPLAYED: 'number', MAX_REPLAY_WINDOW: 'number',
  ESP_DESC_WORDS: 'number', ESP_META_WORDS: 'number', ESP_BATCH_OK: 'number', ESP_BATCH_SEQ_EXHAUSTED: 'number',
  ESP_BATCH_DROP: 'number', MAX_ESP_BATCH: 'number', LINKTYPE_RAW: 'number',
  BATCH_SENT: 'number', BATCH_BYPASS: 'number', BATCH_BLOCKED: 'number', BATCH_ACQUIRE: 'number', BATCH_DROPPED: 'number', BATCH_TOO_BIG: 'number',
  SEAL_HEADROOM: 'number', SEAL_TAILROOM: 'number', LARGE_SOCKET_BUFFER: 'number', ESP_RUN_HEADROOM: 'number',
  TUN_HEADROOM: 'number', TUN_SLOT_ROOM: 'number', TUN_TX_QUEUE: 'number',
};
const EXPECTED: Record<string, string> = Object.fromEntries([...API.map((k) => [k, 'function']), ...Object.entries(VALUES)].sort());
const typesOf = 'Object.fromEntries(Object.keys(n).filter((k) => k !== "default" && k !== "__esModule").sort().map((k) => [k, typeof n[k]]))';

describe('the built package', () => {
  it("require('natt') loads the CommonJS build with the public API", () => {
    const dir = consumer();
    try {
      fs.writeFileSync(path.join(dir, 'a.cjs'), `const n = require('natt'); console.log(JSON.stringify(${typesOf}));`);
      const r = node(['a.cjs'], { cwd: dir });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual(EXPECTED);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("import('natt') loads the ES-module entry, with the same classes as require (one copy)", () => {
    const dir = consumer();
    try {
      const code = `
        import * as n from 'natt';
        import def from 'natt';
        import { createRequire } from 'node:module';
        const cjs = createRequire(import.meta.url)('natt');
        console.log(JSON.stringify({ types: ${typesOf}, same: n.NattSocket === cjs.NattSocket && def === cjs,
          kind: n.classify(Buffer.from([0xff])).kind }));`;
      fs.writeFileSync(path.join(dir, 'b.mjs'), code);
      const r = node(['b.mjs'], { cwd: dir });
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({ types: EXPECTED, same: true, kind: 'keepalive' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bin/natt.js probe --json prints JSON and exits 0; --version is package.json’s', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'bin', 'natt.js'), 'probe', '--json'], { encoding: 'utf8' });
    expect(JSON.parse(out).facts).toBeTruthy();
    const v = execFileSync(process.execPath, [path.join(root, 'bin', 'natt.js'), '--version'], { encoding: 'utf8' }).trim();
    expect(v).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
    expect(node([path.join(root, 'bin', 'natt.js'), 'nope']).status).toBe(2);
  });
});

describe('the addon loader (dist/native/binding.js)', () => {
  const built = path.join(root, 'build', 'Release', 'natt.node');
  const haveBuild = fs.existsSync(built);

  /** A copy of the package without build/: dist, package.json, node_modules linked; optionally a prebuild. */
  function bare(prebuildName?: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'natt-bare-'));
    fs.cpSync(dist, path.join(dir, 'dist'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    if (prebuildName) {
      const pre = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
      fs.mkdirSync(pre, { recursive: true });
      fs.copyFileSync(built, path.join(pre, prebuildName));
    }
    return dir;
  }
  const status = `const b = require('./dist/native/binding.js'); const s = b.nativeStatus();
    let e; try { b.requireNative(); } catch (x) { e = { code: x.code, message: x.message }; }
    console.log(JSON.stringify({ s, e }));`;

  it.skipIf(!haveBuild)(
    `uses prebuilds/<platform>-<arch>/natt.node (prebuildify --napi's name) when there is no build/${haveBuild ? '' : ' (skipped: no build/Release/natt.node)'}`,
    () => {
      const dir = bare('natt.node');
      try {
        const r = JSON.parse(node(['-e', status], { cwd: dir }).stdout);
        expect(r.s.loaded).toBe(true);
        expect(r.s.path).toBe(path.join(fs.realpathSync(dir), 'prebuilds', `${process.platform}-${process.arch}`, 'natt.node'));
        expect(r.e).toBeUndefined();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!haveBuild)(
    `a prebuild and a local build: the newer file loads, so a stale prebuild never shadows a fresh build/ (nor the reverse)${haveBuild ? '' : ' (skipped: no build/Release/natt.node)'}`,
    () => {
      const dir = bare('natt.node');
      try {
        const real = fs.realpathSync(dir);
        const pre = path.join(real, 'prebuilds', `${process.platform}-${process.arch}`, 'natt.node');
        const local = path.join(real, 'build', 'Release', 'natt.node');
        fs.mkdirSync(path.dirname(local), { recursive: true });
        fs.copyFileSync(built, local);
        const old = new Date(Date.now() - 3600_000);
        fs.utimesSync(pre, old, old);
        expect(JSON.parse(node(['-e', status], { cwd: dir }).stdout).s).toEqual({ loaded: true, path: local });
        fs.utimesSync(local, new Date(Date.now() - 7200_000), new Date(Date.now() - 7200_000));
        expect(JSON.parse(node(['-e', status], { cwd: dir }).stdout).s).toEqual({ loaded: true, path: pre });
        // The newer one does not load (not an addon): the other is the fallback.
        fs.writeFileSync(pre, 'not an ELF file');
        expect(JSON.parse(node(['-e', status], { cwd: dir }).stdout).s).toEqual({ loaded: true, path: local });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('without any addon: loadNative() is null with the reason, requireNative() throws ERR_NATT_NO_NATIVE with advice, userland still works', () => {
    const dir = bare();
    try {
      const r = JSON.parse(node(['-e', status], { cwd: dir }).stdout);
      expect(r.s.loaded).toBe(false);
      expect(r.s.reason).toMatch(/bindings/);
      expect(r.e.code).toBe('ERR_NATT_NO_NATIVE');
      expect(r.e.message).toMatch(/npm rebuild natt.*userland/);
      const demux = node(
        ['-e', `require('./dist').createNattSocket({ address: '127.0.0.1', port: 0 }).then((s) => { console.log(s.backend); s.close(); })`],
        { cwd: dir },
      );
      expect(demux.stdout.trim()).toBe('userland');
      const kernel = node(
        ['-e', `require('./dist').createNattSocket({ address: '127.0.0.1', port: 0, backend: 'kernel' }).catch((e) => console.log(e.code))`],
        { cwd: dir },
      );
      expect(kernel.stdout.trim()).toBe('ERR_NATT_NO_NATIVE');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('NATT_DISABLE_NATIVE=1 turns the addon off (for testing the userland path)', () => {
    const r = JSON.parse(node(['-e', status], { env: { NATT_DISABLE_NATIVE: '1' } }).stdout);
    expect(r.s).toEqual({ loaded: false, reason: 'disabled by NATT_DISABLE_NATIVE=1' });
  });
});
