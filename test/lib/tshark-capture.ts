// tshark on lo for tests: capture a few UDP datagrams matching a filter and give the fields asked for, one line each.

import { spawn } from 'node:child_process';

/**
 * Start tshark on lo with capture filter `filter`, stopping after `count` packets or `seconds`; resolves once tshark
 * says the capture started, with `done`: the lines of `fields` (comma-separated), once tshark has exited.
 */
export async function captureLo(filter: string, count: number, fields: string[], seconds = 20): Promise<{ done: Promise<string[]> }> {
  const args = ['-i', 'lo', '-n', '-l', '-f', filter, '-c', String(count), '-a', `duration:${seconds}`, '-T', 'fields', '-E', 'separator=,'];
  const ts = spawn('tshark', [...args, ...fields.flatMap((f) => ['-e', f])]);
  let out = '';
  ts.stdout.on('data', (d: Buffer) => (out += d));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    ts.stderr.on('data', (d: Buffer) => {
      err += d;
      if (/Capture started/.test(err)) resolve(); // printed once the filter is on the interface
    });
    ts.on('exit', () => reject(new Error(`tshark ended before capturing: ${err}`)));
  });
  // 'close', not 'exit': stdout is read to its end first.
  return { done: new Promise((resolve) => ts.on('close', () => resolve(out.trim().split('\n').filter(Boolean)))) };
}
