// For tunnel tests: `natt tunnel up --config FILE` (the built bin) inside a network namespace, its log lines collected.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const NATT = join(__dirname, '..', '..', 'bin', 'natt.js');

/** A daemon started in namespace `ns` from `config`, written as JSON to `file`. */
export class TunnelDaemon {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  constructor(ns: string, file: string, config: object) {
    writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, NATT, 'tunnel', 'up', '--config', file]);
    createInterface({ input: this.proc.stdout }).on('line', (l) => this.lines.push(l));
    createInterface({ input: this.proc.stderr }).on('line', (l) => this.lines.push(`stderr: ${l}`));
    this.exited = new Promise((res) => this.proc.on('exit', (code) => res(code)));
  }

  /** The first log line matching `re` (already logged or to come); fails after `ms` with the whole log. */
  async waitFor(re: RegExp, ms = 15_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const l = this.lines.find((x) => re.test(x));
      if (l) return l;
      if (Date.now() > end) throw new Error(`daemon log has no ${re}: ${this.lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
