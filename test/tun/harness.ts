// Test harness: a fresh network namespace per run, driver.ts bundled and run inside it, commands over its stdin/stdout,
// and `ip -j` / `tc` to look at the namespace from outside.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadNative, nativeStatus } from '../../src/native/binding';
import { bundleDriver } from '../lib/bundle';

/** Why the netns tests cannot run here, or undefined when they can. */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (ip netns and TUN need it)';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no iproute2';
  const addon = loadNative();
  if (!addon) return `native addon not built (${nativeStatus().reason})`;
  const tun = addon.probe().tun;
  if (!tun.ok) return `no /dev/net/tun (${tun.code})`;
  return undefined;
}

export interface Failure {
  name: string;
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
}

export type Reply = { ok: true; value: any } | { ok: false; error: Failure };

/** Bundle a test TS file (and what it imports from src/) into one .js for a child process; returns its path. */
export async function bundle(entry: string, dir: string): Promise<string> {
  return bundleDriver(entry, path.join(dir, `${path.basename(entry, '.ts')}.js`));
}

export class NetnsDriver {
  readonly ns: string;
  readonly dir: string;
  #child: ChildProcess | null = null;
  #n = 0;
  readonly #waiting = new Map<number, (r: Reply) => void>();
  #stderr = '';

  private constructor(ns: string, dir: string) {
    this.ns = ns;
    this.dir = dir;
  }

  /** A new namespace (lo up) with the driver running in it. */
  static async start(prefix: string): Promise<NetnsDriver> {
    const ns = `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    const d = new NetnsDriver(ns, dir);
    const js = await bundle(path.join(__dirname, 'driver.ts'), dir);
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, js], { stdio: ['pipe', 'pipe', 'pipe'] });
    d.#child = child;
    let buf = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let r: { n: number } & Reply;
        try {
          r = JSON.parse(line);
        } catch {
          continue;
        }
        d.#waiting.get(r.n)?.(r);
        d.#waiting.delete(r.n);
      }
    });
    child.stderr!.on('data', (c) => (d.#stderr += String(c)));
    child.on('exit', (code) => {
      for (const [, w] of d.#waiting) w({ ok: false, error: { name: 'Exit', message: `driver exited (${code}): ${d.#stderr}` } });
      d.#waiting.clear();
    });
    return d;
  }

  /** Send a command; the reply, success or failure. */
  try(cmd: string, args: unknown = {}, timeoutMs = 20_000): Promise<Reply> {
    const n = ++this.#n;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#waiting.delete(n);
        resolve({ ok: false, error: { name: 'Timeout', message: `${cmd} got no reply in ${timeoutMs} ms; stderr: ${this.#stderr}` } });
      }, timeoutMs);
      this.#waiting.set(n, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      this.#child!.stdin!.write(`${JSON.stringify({ n, cmd, args })}\n`);
    });
  }

  /** Send a command; its value, or a thrown Error carrying the driver's error shape. */
  async call(cmd: string, args: unknown = {}, timeoutMs?: number): Promise<any> {
    const r = await this.try(cmd, args, timeoutMs);
    if (r.ok) return r.value;
    throw Object.assign(new Error(`${cmd} failed: ${r.error.name}: ${r.error.message}`), { shape: r.error });
  }

  /** A failure's shape (throws when the command succeeded). */
  async fails(cmd: string, args: unknown = {}): Promise<Failure> {
    const r = await this.try(cmd, args);
    if (r.ok) throw new Error(`${cmd} should have failed, gave ${JSON.stringify(r.value)}`);
    return r.error;
  }

  /** `ip -j -n <ns> <args>` parsed. */
  ip(...args: string[]): any {
    const out = execFileSync('ip', ['-j', '-n', this.ns, ...args], { encoding: 'utf8' });
    return out.trim() ? JSON.parse(out) : [];
  }

  /** Run a command inside the namespace. */
  exec(file: string, ...args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.ns, file, ...args], { encoding: 'utf8' });
  }

  /** Poll `fn` (driver calls allowed) until it returns a truthy value, or fail after `ms`. */
  async until<T>(fn: () => Promise<T> | T, ms = 5000, what = 'condition'): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (this.#child && this.#child.exitCode === null) {
      await this.try('exit', {}, 5000);
      await new Promise((r) => setTimeout(r, 50));
      if (this.#child.exitCode === null) this.#child.kill('SIGKILL');
    }
    spawnSync('ip', ['netns', 'del', this.ns]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
