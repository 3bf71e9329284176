// A child process in a network namespace driven by JSON lines (commands on stdin, events on stdout), for netns tests.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Msg {
  ev: string;
  [k: string]: unknown;
}

/** `node script cfg` inside namespace `ns`: every stdout line is a JSON message, kept in order. */
export class Endpoint {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly msgs: Msg[] = [];
  readonly stderr: string[] = [];
  #waiters: Array<() => void> = [];
  constructor(ns: string, script: string, cfg: unknown) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, script, JSON.stringify(cfg)]);
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      try {
        this.msgs.push(JSON.parse(l) as Msg);
      } catch {
        this.stderr.push(l);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.proc.stderr.on('data', (d) => this.stderr.push(String(d)));
  }
  /** Resolve with the first message (from index `from`) matching `pred`; bounded. */
  async wait(pred: (m: Msg) => boolean, from = 0, ms = 10_000): Promise<Msg> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this.msgs.slice(from).find(pred);
      if (m) return m;
      if (Date.now() > end) throw new Error(`endpoint: nothing matched; saw ${JSON.stringify(this.msgs)} ${this.stderr.join('')}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 100);
        this.#waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }
  cmd(o: unknown): void {
    this.proc.stdin.write(`${JSON.stringify(o)}\n`);
  }
  kill(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}
