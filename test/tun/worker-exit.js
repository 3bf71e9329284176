// Run by native.test.ts in a child process inside a netns: a worker thread, the addon's only user, opens a TUN device
// (reading into a slab) and exits, or is terminated, or closes it and exits at once; the process must survive that
// (no SIGSEGV in uv__finish_close) and the device must be gone. Prints one JSON line.
'use strict';
const { Worker } = require('node:worker_threads');
const { execFileSync } = require('node:child_process');
const [file, mode] = process.argv.slice(2);

const code = `
  const { parentPort, workerData } = require('node:worker_threads');
  const addon = require(workerData.file);
  const c = addon.constants;
  const t = new addon.Tun('', c.IFF_TUN | c.IFF_NO_PI, () => {}, () => {}, () => {});
  t.setSlab(Buffer.alloc(8 * 1500), 1500, new Uint32Array(8));
  t.waitWritable();
  if (workerData.mode === 'closed') t.close();
  parentPort.postMessage(t.name);
  if (workerData.mode === 'exit' || workerData.mode === 'closed') process.exit(0);
  setInterval(() => {}, 1000); // 'terminate': busy until the main thread terminates it
`;
const w = new Worker(code, { eval: true, workerData: { file, mode } });
let name;
w.on('message', (m) => {
  name = m;
  if (mode === 'terminate') w.terminate();
});
w.on('error', (e) => console.log(JSON.stringify({ workerError: String(e) })));
w.on('exit', (exitCode) => {
  setTimeout(() => {
    const links = JSON.parse(execFileSync('ip', ['-j', 'link'], { encoding: 'utf8' })).map((l) => l.ifname);
    console.log(JSON.stringify({ mode, name, exitCode, stillThere: links.includes(name), alive: true }));
  }, 100);
});
