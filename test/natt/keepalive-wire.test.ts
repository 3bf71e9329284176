// keepalive() on the wire (RFC 3948 §2.3), both backends: real timers, a plain node:dgram receiver and tshark on lo see
// one-byte 0xFF datagrams from the NAT-T socket's port, one per interval, none after stopKeepalive().

import * as dgram from 'node:dgram';
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';

const native = loadNative();
const encap4 = native?.probe().udpEncap4.ok === true;
const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const noTshark = !hasTshark ? 'tshark not installed' : process.getuid?.() !== 0 ? 'not root: capturing on lo needs CAP_NET_RAW' : '';

const open: (NattSocket | dgram.Socket)[] = [];
afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {
      // closed already
    }
  }
});

/** tshark on lo: `count` UDP datagrams from `sport` to `dport`, as "udp length,payload hex" lines. */
async function capture(sport: number, dport: number, count: number): Promise<{ done: Promise<string[]> }> {
  const ts = spawn('tshark', ['-i', 'lo', '-n', '-l', '-f', `udp src port ${sport} and udp dst port ${dport}`, '-c', String(count),
    '-a', 'duration:15', '-T', 'fields', '-E', 'separator=,', '-e', 'udp.length', '-e', 'data.data']);
  let out = '';
  ts.stdout.on('data', (d: Buffer) => (out += d));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    ts.stderr.on('data', (d: Buffer) => {
      err += d;
      if (/Capture started/.test(err)) resolve();
    });
    ts.on('exit', () => reject(new Error(`tshark ended before capturing: ${err}`)));
  });
  return { done: new Promise((resolve) => ts.on('close', () => resolve(out.trim().split('\n').filter(Boolean)))) };
}

const backends = encap4 ? (['userland', 'kernel'] as const) : (['userland'] as const);

describe('NAT-keepalives on the wire', () => {
  for (const backend of backends) {
    it(`${backend}: every 250 ms a 1-byte 0xFF datagram from the socket's port reaches a plain UDP socket; stop ends them${noTshark ? ` (tshark part skipped: ${noTshark})` : ' (tshark agrees)'}`, async () => {
      const s = await createNattSocket({ address: '127.0.0.1', port: 0, backend });
      open.push(s);
      expect(s.kernelEncap).toBe(backend === 'kernel');
      const rx = dgram.createSocket('udp4');
      open.push(rx);
      await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
      const got: { msg: Buffer; port: number; at: number }[] = [];
      rx.on('message', (msg, rinfo) => got.push({ msg, port: rinfo.port, at: Date.now() }));
      const wire = noTshark ? null : (await capture(s.address().port, rx.address().port, 3)).done;
      const t0 = Date.now();
      expect(s.keepalive(rx.address().port, '127.0.0.1', 0.25)).toBe(true);
      // Until the receiver has three and tshark (whose capture may start late after saying so) has three too.
      let seen: string[] | null = null;
      void wire?.then((w) => (seen = w));
      while ((got.length < 3 || (wire && !seen)) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 20));
      expect(s.stopKeepalive(rx.address().port, '127.0.0.1')).toBe(true);
      const n = got.length;
      expect(n).toBeGreaterThanOrEqual(3);
      for (const g of got) {
        expect(g.msg).toEqual(Buffer.from([0xff]));
        expect(g.port).toBe(s.address().port);
      }
      // None before the first interval ran out (a keepalive goes only after an interval with nothing sent).
      expect(got[0].at - t0).toBeGreaterThanOrEqual(200);
      if (wire) expect(await wire).toEqual(['9,ff', '9,ff', '9,ff']); // UDP length 9: 8 header bytes and the one 0xFF
      await new Promise((r) => setTimeout(r, 700));
      expect(got.length).toBe(n);
      expect(s.stats()).toMatchObject({ sentKeepalive: n, keepalivePeers: 0 });
    });
  }
});
