// keepalive() on the wire (RFC 3948 §2.3), both backends: real timers, a plain node:dgram receiver and tshark on lo see
// one-byte 0xFF datagrams from the NAT-T socket's port, one per interval, none after stopKeepalive().

import * as dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';
import { captureLo } from '../lib/tshark-capture';

const native = loadNative();
const encap4 = native?.probe().udpEncap4.ok === true;
const hasTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const noTshark = !hasTshark ? 'tshark not installed' : process.getuid?.() !== 0 ? 'not root: capturing on lo needs CAP_NET_RAW' : '';

const open: (NattSocket | dgram.Socket)[] = [];
// Both kinds take a close callback; each socket here is closed once, by this.
afterEach(() => Promise.all(open.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())))));

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
      const filter = `udp src port ${s.address().port} and udp dst port ${rx.address().port}`;
      const wire = noTshark ? null : (await captureLo(filter, 3, ['udp.length', 'data.data'], 15)).done;
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
