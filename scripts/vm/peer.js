// Host side of the VM interop tests: natt's UserlandEngine on 127.0.0.1, driven by the guest over a TCP control channel.
'use strict';
//
// Protocol (one JSON object per line; the guest's client is test/kernel/lib/peer-client.ts):
//   request  { id, op, ...args }            reply { id, ok: true, ...result } or { id, ok: false, error }
//   op 'reset'                              new NattSocket (userland backend) + UserlandEngine → { port }
//   op 'addSa'      { sa }                  engine.sadb.add(sa); keys as hex strings
//   op 'addPolicy'  { policy }              engine.sadb.spdAdd(policy)
//   op 'sendUdp'    { src, sport, dst, dport, data }   engine.send(IPv4 UDP packet) → { result }
//   op 'nextPacket' { timeoutMs }           the next 'packet' the engine emitted → { packet (hex), rinfo, checksumOk,
//                                           udp: { src, sport, dst, dport, checksum, data (hex) } | null }
//   op 'sendIke'    { port, address, data } the engine socket's sendIke (non-ESP marker added)
//   op 'nextIke'    { timeoutMs }           the next 'ike' the engine socket received → { data (hex), rinfo }
//   op 'nextKeepalive' { timeoutMs }        the next NAT-keepalive (0xFF) the engine socket received → { rinfo, at (ms) }
//   op 'state'                              { stats, traffic, mappings, socket }
// The tunnel ops (test/kernel/interop-tunnel.test.ts): a real `natt tunnel up` daemon and TCP endpoints, all in the
// network namespace run.js made for this kernel's run (NATT_VM_NETNS), never in the host's own:
//   op 'tunnelCheck'                        { missing: why the host side cannot run (not root, no TUN, no netns) | null }
//   op 'tunnelUp'   { config }              writes the daemon's JSON config (0600, removed once up), starts
//                                           `node bin/natt.js tunnel up --config FILE` → { lines } once it logs
//                                           'tunnel up' (its log lines; the daemon logs no keys)
//   op 'tunnelLog'                          { lines, exited }
//   op 'tunnelDown' { timeoutMs }           SIGTERM → { code, signal, lines, ms, tunPresent, routes }
//   op 'ping'       { dst, count }          ping in the namespace → { status, out }
//   op 'tcpServer'  { address, port, bytes } test/tunnel/tcp-peer.js server, once listening → { endpoint }
//   op 'tcpClient'  { address, port, bytes } test/tunnel/tcp-peer.js client → { endpoint }
//   op 'tcpResult'  { endpoint, timeoutMs } that endpoint's JSON result line { sent, sentHash, received, receivedHash }
//                                           and its run time → { result, ms }
// The guest reaches this server at 10.0.2.2:<ctl port> through slirp; ESP flows between the engine's socket and
// the guest's UDP 4500 (hostfwd 127.0.0.1:<fwd port> → guest 4500, and the NAT mappings slirp makes).

const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { createInterface } = require('node:readline');

const dist = path.resolve(__dirname, '..', '..', 'dist');
const natt = require(dist);
const { buildUdpPacket, l4ChecksumOk, readIpHeader, IpView } = require(path.join(dist, 'ip', 'packet'));

const ctlPort = Number(process.argv[2]);
const fwdPort = Number(process.argv[3]);
const ROOT = path.resolve(__dirname, '..', '..');
/** The namespace run.js started this peer and qemu in (unset: both run in the host's own namespace). */
const NETNS = process.env.NATT_VM_NETNS || '';
/** At most this many daemon log lines are kept per session (a runaway log cannot grow the peer without bound). */
const MAX_LOG_LINES = 2000;

/** Why the daemon cannot run on the host side here, or null. */
function tunnelMissing() {
  if (process.getuid?.() !== 0) return 'host side not root (a TUN needs CAP_NET_ADMIN)';
  if (!NETNS) {
    return `qemu runs in the host's own network namespace (${process.env.NATT_VM_NETNS_MISSING || 'run.js made none'}): ` +
      "the daemon's TUN and routes would land on the shared host";
  }
  if (!fs.existsSync('/dev/net/tun')) return 'no /dev/net/tun on the host (CONFIG_TUN)';
  return null;
}

/** A child process whose stdout lines are kept (bounded) and which resolves `exited` with { code, signal }. */
function child(args, onLine) {
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const keep = (prefix) => (l) => {
    if (lines.length < MAX_LOG_LINES) lines.push(prefix + l);
    onLine?.(prefix + l);
  };
  createInterface({ input: proc.stdout }).on('line', keep(''));
  createInterface({ input: proc.stderr }).on('line', keep('stderr: '));
  // 'close', not 'exit': by then every line of its stdout has been read
  const exited = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  return { proc, lines, exited, started: Date.now() };
}

/** Resolve with the first line matching `re`, or reject when the child exits first or `ms` passes. */
async function waitLine(c, re, ms, what) {
  const end = Date.now() + ms;
  let gone = null;
  void c.exited.then((x) => (gone = x));
  for (;;) {
    const l = c.lines.find((x) => re.test(x));
    if (l) return l;
    if (gone) throw new Error(`${what} exited (${gone.code ?? gone.signal}) before ${re}: ${c.lines.join(' | ')}`);
    if (Date.now() > end) throw new Error(`${what}: no ${re} within ${ms} ms: ${c.lines.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

/** Turn hex key strings of the wire format into bytes. */
function reviveSa(sa) {
  const out = { ...sa };
  if (sa.encryption) out.encryption = { ...sa.encryption, key: Buffer.from(sa.encryption.key, 'hex') };
  if (sa.integrity) out.integrity = { ...sa.integrity, key: Buffer.from(sa.integrity.key, 'hex') };
  return out;
}

function describeUdp(pkt) {
  const v = new IpView();
  if (!readIpHeader(pkt, v) || v.proto !== 17) return null;
  const at = v.l4Offset;
  return {
    src: v.version === 4 ? [...pkt.subarray(v.srcOffset, v.srcOffset + 4)].join('.') : 'v6',
    dst: v.version === 4 ? [...pkt.subarray(v.dstOffset, v.dstOffset + 4)].join('.') : 'v6',
    sport: pkt.readUInt16BE(at),
    dport: pkt.readUInt16BE(at + 2),
    checksum: pkt.readUInt16BE(at + 6),
    data: pkt.subarray(at + 8, v.totalLength).toString('hex'),
  };
}

class Session {
  constructor() {
    this.socket = null;
    this.engine = null;
    this.queue = [];
    this.waiters = [];
    this.ike = [];
    this.ikeWaiters = [];
    this.keepalives = [];
    this.keepaliveWaiters = [];
    this.mappings = [];
    this.daemon = null;
    this.tcp = new Map();
    this.tcpId = 0;
    this.dir = null;
  }

  async tunnelUp(config) {
    const missing = tunnelMissing();
    if (missing) throw new Error(`the host side cannot run: ${missing}`);
    if (this.daemon && this.daemon.proc.exitCode === null && this.daemon.proc.signalCode === null) {
      throw new Error('a daemon already runs in this session');
    }
    this.dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'natt-vm-tunnel-'));
    const file = path.join(this.dir, 'tunnel.json');
    fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    const d = child([path.join(ROOT, 'bin', 'natt.js'), 'tunnel', 'up', '--config', file], (l) => console.log(`daemon: ${l}`));
    d.tunName = config?.tun?.name;
    this.daemon = d;
    try {
      await waitLine(d, /^tunnel up/, 15_000, 'natt tunnel up');
    } finally {
      fs.rmSync(file, { force: true }); // the keys live in the daemon now, not on disk
    }
    return { lines: d.lines };
  }

  async tunnelDown(timeoutMs = 15_000) {
    const d = this.daemon;
    if (!d) throw new Error('no daemon in this session');
    const t0 = Date.now();
    d.proc.kill('SIGTERM');
    const { code, signal } = await withTimeout(d.exited, timeoutMs, 'the daemon did not exit after SIGTERM');
    const ms = Date.now() - t0;
    const name = d.tunName;
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
    const routes = spawnSync('ip', ['route', 'show'], { encoding: 'utf8' }).stdout;
    return { code, signal, lines: d.lines, ms, links: links.split('\n').map((l) => l.split(':')[1]?.trim()).filter(Boolean), routes, name };
  }

  /** A TCP endpoint (test/tunnel/tcp-peer.js) in this namespace; its id for tcpResult. */
  async tcpStart(role, address, port, bytes) {
    const missing = tunnelMissing();
    if (missing) throw new Error(`the host side cannot run: ${missing}`);
    if (net.isIP(address) === 0 || !Number.isInteger(port) || !Number.isInteger(bytes) || bytes < 0) {
      throw new Error(`tcp-peer: bad endpoint ${address}:${port} (${bytes} bytes)`);
    }
    const c = child([path.join(ROOT, 'test', 'tunnel', 'tcp-peer.js'), role, address, String(port), String(bytes)]);
    const id = ++this.tcpId;
    this.tcp.set(id, c);
    if (role === 'server') await waitLine(c, /"listening"/, 10_000, 'tcp-peer server');
    return { endpoint: id };
  }

  async tcpResult(id, timeoutMs = 120_000) {
    const c = this.tcp.get(id);
    if (!c) throw new Error(`no TCP endpoint ${id}`);
    const { code, signal } = await withTimeout(c.exited, timeoutMs, `TCP endpoint ${id} did not finish`);
    this.tcp.delete(id);
    const ms = Date.now() - c.started;
    const last = c.lines.map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((o) => o && ('sentHash' in o || 'error' in o));
    if (!last || 'error' in last || code !== 0) throw new Error(`tcp-peer exited ${code ?? signal}: ${c.lines.join(' | ')}`);
    return { result: last, ms };
  }

  async reset() {
    await this.close();
    this.socket = await natt.createNattSocket({ backend: 'userland', address: '127.0.0.1', port: 0 });
    this.engine = new natt.UserlandEngine({ socket: this.socket, keepaliveSeconds: 0 });
    this.engine.on('packet', (pkt, rinfo) => {
      const item = { pkt: Buffer.from(pkt), rinfo: { address: rinfo.address, port: rinfo.port } };
      const w = this.waiters.shift();
      if (w) w(item);
      else this.queue.push(item);
    });
    this.socket.on('ike', (msg, rinfo) => {
      const item = { pkt: Buffer.from(msg), rinfo: { address: rinfo.address, port: rinfo.port } };
      const w = this.ikeWaiters.shift();
      if (w) w(item);
      else this.ike.push(item);
    });
    this.socket.on('keepalive', (rinfo) => {
      const item = { rinfo: { address: rinfo.address, port: rinfo.port }, at: Date.now() };
      const w = this.keepaliveWaiters.shift();
      if (w) w(item);
      else this.keepalives.push(item);
    });
    this.engine.on('newMapping', (ev) => this.mappings.push({ spi: ev.sa.spi, old: ev.old, new: ev.new }));
    this.engine.on('error', (err) => console.log(`engine error: ${err.message}`));
    return { port: this.socket.address().port, fwdPort };
  }

  /** The next item of `queue`, or the next one `waiters` is handed, within timeoutMs. */
  next(timeoutMs, queue = this.queue, waiters = this.waiters, what = 'packet from the engine') {
    const item = queue.shift();
    if (item) return Promise.resolve(item);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(done), 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms (stats ${JSON.stringify(nonZero(this.engine.stats()))})`));
      }, timeoutMs);
      const done = (it) => {
        clearTimeout(t);
        resolve(it);
      };
      waiters.push(done);
    });
  }

  async close() {
    for (const c of this.tcp.values()) c.proc.kill('SIGKILL');
    this.tcp.clear();
    if (this.daemon && this.daemon.proc.exitCode === null && this.daemon.proc.signalCode === null) {
      this.daemon.proc.kill('SIGTERM');
      await withTimeout(this.daemon.exited, 10_000, 'daemon exit').catch(() => this.daemon.proc.kill('SIGKILL'));
    }
    this.daemon = null;
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    if (this.engine) this.engine.close();
    if (this.socket) await new Promise((r) => this.socket.close(r));
    this.engine = this.socket = null;
    this.queue = [];
    this.ike = [];
    this.keepalives = [];
    this.mappings = [];
  }
}

function nonZero(o) {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));
}

async function handle(s, req) {
  switch (req.op) {
    case 'reset':
      return s.reset();
    case 'addSa':
      await s.engine.sadb.add(reviveSa(req.sa));
      return {};
    case 'addPolicy':
      await s.engine.sadb.spdAdd(req.policy);
      return {};
    case 'sendUdp': {
      const pkt = buildUdpPacket(req.src, req.sport, req.dst, req.dport, Buffer.from(req.data, 'hex'));
      return { result: s.engine.send(pkt) };
    }
    case 'nextPacket': {
      const { pkt, rinfo } = await s.next(req.timeoutMs ?? 10_000);
      return { packet: pkt.toString('hex'), rinfo, checksumOk: l4ChecksumOk(pkt), udp: describeUdp(pkt) };
    }
    case 'sendIke':
      await new Promise((resolve, reject) =>
        s.socket.sendIke(Buffer.from(req.data, 'hex'), req.port, req.address, (err) => (err ? reject(err) : resolve())),
      );
      return {};
    case 'nextIke': {
      const { pkt, rinfo } = await s.next(req.timeoutMs ?? 10_000, s.ike, s.ikeWaiters, "'ike' on the engine's socket");
      return { data: pkt.toString('hex'), rinfo };
    }
    case 'nextKeepalive':
      return s.next(req.timeoutMs ?? 10_000, s.keepalives, s.keepaliveWaiters, "NAT-keepalive on the engine's socket");
    case 'state':
      return {
        stats: nonZero(s.engine.stats()),
        traffic: s.engine.traffic(),
        mappings: s.mappings,
        socket: s.socket.stats(),
      };
    case 'tunnelCheck':
      return { missing: tunnelMissing(), netns: NETNS || null };
    case 'tunnelUp':
      return s.tunnelUp(req.config);
    case 'tunnelLog':
      if (!s.daemon) throw new Error('no daemon in this session');
      return { lines: s.daemon.lines, exited: s.daemon.proc.exitCode !== null || s.daemon.proc.signalCode !== null };
    case 'tunnelDown':
      return s.tunnelDown(req.timeoutMs);
    case 'ping': {
      const missing = tunnelMissing();
      if (missing) throw new Error(`the host side cannot run: ${missing}`);
      if (net.isIP(String(req.dst)) === 0) throw new Error('ping: dst is not an IP address');
      const count = Math.min(Math.max(Number(req.count) || 3, 1), 20);
      return new Promise((resolve) => {
        const p = spawn('ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '5', String(req.dst)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (out += d));
        p.on('exit', (code) => resolve({ status: code, out }));
      });
    }
    case 'tcpServer':
    case 'tcpClient':
      return s.tcpStart(req.op === 'tcpServer' ? 'server' : 'client', String(req.address), Number(req.port), Number(req.bytes));
    case 'tcpResult':
      return s.tcpResult(req.endpoint, req.timeoutMs);
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

/** Every open session: SIGTERM closes them all, so no daemon or TCP endpoint outlives the peer. */
const sessions = new Set();

const server = net.createServer((conn) => {
  const s = new Session();
  sessions.add(s);
  let buf = '';
  conn.setEncoding('utf8');
  conn.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let req;
      try {
        req = JSON.parse(line);
      } catch {
        conn.write(JSON.stringify({ id: null, ok: false, error: 'bad JSON' }) + '\n');
        continue;
      }
      // Log the operation only: SAs carry keys.
      console.log(`${req.op}${req.op === 'sendUdp' ? ` ${req.src}:${req.sport} -> ${req.dst}:${req.dport}` : ''}`);
      handle(s, req).then(
        (r) => conn.write(JSON.stringify({ ...r, id: req.id, ok: true }) + '\n'), // a result's own fields never replace these
        (err) => conn.write(JSON.stringify({ id: req.id, ok: false, error: String(err && err.message) }) + '\n'),
      );
    }
  });
  const end = () => {
    sessions.delete(s);
    void s.close();
  };
  conn.on('close', end);
  conn.on('error', end);
});
server.listen(ctlPort, '127.0.0.1', () => console.log('peer ready'));
process.on('SIGTERM', () => {
  const t = setTimeout(() => process.exit(0), 12_000); // bounded: a daemon that ignores SIGTERM gets SIGKILL in close()
  void Promise.allSettled([...sessions].map((s) => s.close())).then(() => {
    clearTimeout(t);
    process.exit(0);
  });
});
