// npm run test:vm: build the VM image, start the host-side interop peer, boot the guest, stream its console, report.
'use strict';

const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { StringDecoder } = require('node:string_decoder');
const { buildImage, selectKernels } = require('./image');

const ROOT = path.resolve(__dirname, '..', '..');
/** Hard bound on the whole guest run (boot + suite); a hung guest is killed and the run fails. */
const TIMEOUT_S = Number(process.env.NATT_VM_TIMEOUT ?? 900);
const EXIT_MARK = /^NATT-VM-EXIT (\d+)/m;
const COUNT_LINE = /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/m;

const log = (msg) => process.stdout.write(`[vm-host] ${msg}\n`);

/** A free port on 127.0.0.1 (TCP or UDP) for the control channel and the hostfwd. */
function freePort(kind) {
  return new Promise((resolve, reject) => {
    if (kind === 'tcp') {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
      s.on('error', reject);
    } else {
      const s = require('node:dgram').createSocket('udp4');
      s.bind(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
      s.on('error', reject);
    }
  });
}

/** Namespaces of this script are named natt-vm-<pid>-<kernel>; one whose pid is gone is a leftover of a killed run. */
const NETNS_PREFIX = 'natt-vm-';

/** argv to run `cmd args` inside `ns` (or as is when ns is null). `ip netns exec` execs, so the pid is cmd's own. */
const inNetns = (ns, cmd, args) => (ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args]);

/**
 * A network namespace of its own for one kernel's run (qemu, its slirp sockets, the host peer and the tunnel daemon
 * it starts), with lo up; or { ns: null, why } where none can be made (not root, no ip): the run then stays in the
 * host's namespace and the tunnel test skips. Leftovers of killed runs (natt-vm-<dead pid>-*) are removed first.
 */
function makeNetns(spec, klog) {
  if (process.getuid?.() !== 0) return { ns: null, why: 'run.js is not root' };
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (list.status !== 0) return { ns: null, why: `ip netns list failed: ${(list.stderr || list.error?.message || '').trim()}` };
  for (const line of list.stdout.split('\n')) {
    const m = new RegExp(`^(${NETNS_PREFIX}(\\d+)-\\S+)`).exec(line);
    if (!m) continue;
    let alive = true;
    try {
      process.kill(Number(m[2]), 0);
    } catch (e) {
      alive = e.code === 'EPERM';
    }
    if (!alive) {
      klog(`removing the namespace ${m[1]} of an earlier run that is gone`);
      spawnSync('ip', ['netns', 'del', m[1]]);
    }
  }
  const ns = `${NETNS_PREFIX}${process.pid}-${spec.name.replace(/\W/g, '')}`;
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  for (const args of [['netns', 'add', ns], ['-n', ns, 'link', 'set', 'lo', 'up']]) {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      return { ns: null, why: `ip ${args.join(' ')} failed: ${(r.stderr || '').trim()}` };
    }
  }
  return { ns, why: null };
}

/** The host peer (scripts/vm/peer.js) as a child process, in `ns` when given; resolves once it listens. */
function startPeer(ctlPort, fwdPort, ns, why) {
  return new Promise((resolve, reject) => {
    const [cmd, args] = inNetns(ns, process.execPath, [path.join(__dirname, 'peer.js'), String(ctlPort), String(fwdPort)]);
    const env = { ...process.env, NATT_VM_NETNS: ns ?? '', NATT_VM_NETNS_MISSING: why ?? '' };
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'peer ready') resolve(child);
        process.stdout.write(`[vm-peer] ${line}\n`);
      }
    });
    child.on('exit', (code) => reject(new Error(`peer exited early (${code})`)));
  });
}

/** Build the image for one kernel, boot it, run the suite; resolves with the guest's status and count line. */
async function runKernel(spec, filter) {
  const t0 = Date.now();
  const tag = `[vm-host ${spec.name}]`;
  const klog = (msg) => process.stdout.write(`${tag} ${msg}\n`);
  const image = buildImage(spec, klog);
  klog(`image ready: ${image.kernelPackage} ${image.packageVersion} (${image.kernelVersion}), ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const ctlPort = await freePort('tcp');
  const fwdPort = await freePort('udp');
  const { ns, why } = makeNetns(spec, klog);
  klog(ns ? `network namespace ${ns}: qemu, the host peer and the tunnel daemon run there` : `no network namespace (${why}): qemu and the peer run in the host's, the tunnel test skips`);
  const dropNetns = () => ns && spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  process.once('exit', dropNetns); // even when a signal or an error ends the run early
  try {
    return await boot(spec, filter, image, { t0, klog, ctlPort, fwdPort, ns, why });
  } finally {
    dropNetns();
    process.off('exit', dropNetns);
  }
}

/** Start the peer and qemu (in `ns` when given), stream the console, and collect the guest's status. */
async function boot(spec, filter, image, { t0, klog, ctlPort, fwdPort, ns, why }) {
  const peer = await startPeer(ctlPort, fwdPort, ns, why);

  const append = ['console=ttyS0', 'panic=-1', 'quiet', 'loglevel=4', `natt.ctl=${ctlPort}`, `natt.fwd=${fwdPort}`];
  if (filter) append.push(`natt.filter=${filter}`);
  const args = [
    // NATT_VM_ACCEL=kvm where KVM works (it hangs at boot on the dev hosts, so TCG is the default)
    '-accel', process.env.NATT_VM_ACCEL || 'tcg', '-cpu', 'max', '-m', '2G', '-smp', '2', '-nographic', '-no-reboot',
    '-kernel', image.kernel, '-initrd', image.initrd, '-append', append.join(' '),
    '-netdev', `user,id=n0,net=10.0.2.0/24,host=10.0.2.2,hostfwd=udp:127.0.0.1:${fwdPort}-:4500`,
    '-device', 'virtio-net-pci,netdev=n0',
  ];
  const [qcmd, qargs] = inNetns(ns, 'qemu-system-x86_64', args);
  klog(`${qcmd} ${qargs.join(' ')}`);
  const tBoot = Date.now();
  const qemu = spawn(qcmd, qargs, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let console_ = '';
  let partial = '';
  const utf8 = new StringDecoder('utf8'); // a chunk may end inside a multi-byte character
  // whole lines only, so the peer's log lines do not cut the guest's in half
  const onData = (d) => {
    const text = partial + (typeof d === 'string' ? d : utf8.write(d)).replace(/\r/g, '').replace(/\x1b(?:\[[0-9;?]*[A-Za-z]|c)/g, '');
    const end = text.lastIndexOf('\n') + 1;
    partial = text.slice(end);
    console_ += text.slice(0, end);
    process.stdout.write(text.slice(0, end));
  };
  qemu.stdout.on('data', onData);
  qemu.stderr.on('data', onData);
  // Ctrl-C or a CI cancel: take qemu and the peer down with us.
  const onSignal = () => {
    qemu.kill('SIGKILL');
    peer.kill('SIGTERM');
    process.exit(130); // the 'exit' handler removes the namespace
  };
  for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, onSignal);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    klog(`guest did not finish within ${TIMEOUT_S} s: killing qemu`);
    qemu.kill('SIGKILL');
  }, TIMEOUT_S * 1000);
  const code = await new Promise((resolve) => qemu.on('exit', (c, sig) => resolve(c ?? sig)));
  clearTimeout(timer);
  for (const sig of ['SIGINT', 'SIGTERM']) process.off(sig, onSignal);
  // the peer takes down any daemon or TCP endpoint it started before it exits (bounded), then the namespace goes
  const peerGone = peer.exitCode !== null || peer.signalCode !== null ? Promise.resolve() : new Promise((r) => peer.once('exit', r));
  peer.kill('SIGTERM');
  await Promise.race([peerGone, new Promise((r) => setTimeout(r, 15_000))]);
  if (partial) onData('\n');

  const exit = EXIT_MARK.exec(console_);
  const counts = [...console_.matchAll(new RegExp(COUNT_LINE.source, 'gm'))].pop();
  let status;
  if (timedOut) status = 124;
  else if (!exit) status = 1;
  else status = Number(exit[1]);
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const qemuSecs = ((Date.now() - tBoot) / 1000).toFixed(1);
  klog(
    `qemu exited (${code}) after ${qemuSecs} s (${secs} s with the image); guest status ` +
      `${exit ? exit[1] : timedOut ? 'none (killed at the time bound)' : 'none (no exit mark: boot or init failed)'}`,
  );
  return {
    spec,
    image,
    status: status === 0 && counts ? 0 : status || 1,
    counts: counts ? counts[0] : '0 passed, 1 failed, 0 skipped',
    secs,
    qemuSecs,
  };
}

async function main() {
  const t0 = Date.now();
  const filter = process.argv.slice(2).join(',');
  const kernels = selectKernels();
  log(`kernels: ${kernels.map((k) => k.name).join(', ')} (NATT_VM_KERNEL=${kernels.map((k) => k.name).join(',')} picks)`);
  const results = [];
  // One after the other: each guest takes both cores under TCG, and a failing kernel does not stop the next.
  for (const spec of kernels) {
    try {
      results.push(await runKernel(spec, filter));
    } catch (err) {
      console.error(`[vm-host ${spec.name}] ${err.stack || err}`);
      results.push({ spec, image: null, status: 1, counts: '0 passed, 1 failed, 0 skipped', secs: '-', qemuSecs: '-' });
    }
  }
  log(`all kernels done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  for (const r of results) {
    const what = r.image ? `${r.image.kernelVersion} (${r.image.kernelPackage} ${r.image.packageVersion})` : '(no image)';
    console.log(`kernel ${r.spec.name}: ${r.counts}; ${what}; ${r.secs} s, qemu ${r.qemuSecs} s; status ${r.status}`);
  }
  const failed = results.find((r) => r.status !== 0);
  process.exit(failed ? failed.status : 0);
}

main().catch((err) => {
  console.error(`[vm-host] ${err.stack || err}`);
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
});
