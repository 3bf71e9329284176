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
// The guest reaches this server at 10.0.2.2:<ctl port> through slirp; ESP flows between the engine's socket and
// the guest's UDP 4500 (hostfwd 127.0.0.1:<fwd port> → guest 4500, and the NAT mappings slirp makes).

const net = require('node:net');
const path = require('node:path');

const dist = path.resolve(__dirname, '..', '..', 'dist');
const natt = require(dist);
const { buildUdpPacket, l4ChecksumOk, readIpHeader, IpView } = require(path.join(dist, 'ip', 'packet'));

const ctlPort = Number(process.argv[2]);
const fwdPort = Number(process.argv[3]);

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
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

const server = net.createServer((conn) => {
  const s = new Session();
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
        (r) => conn.write(JSON.stringify({ id: req.id, ok: true, ...r }) + '\n'),
        (err) => conn.write(JSON.stringify({ id: req.id, ok: false, error: String(err && err.message) }) + '\n'),
      );
    }
  });
  conn.on('close', () => void s.close());
  conn.on('error', () => void s.close());
});
server.listen(ctlPort, '127.0.0.1', () => console.log('peer ready'));
process.on('SIGTERM', () => process.exit(0));
