// Runs inside a fresh network namespace (started by netns.test.ts): drives the Xfrm client and prints a JSON report.

import * as dgram from 'node:dgram';
import { Xfrm } from '../../src/xfrm/client';
import type { AcquireEvent, SecurityPolicy } from '../../src/sadb/types';

type Step = { ok: true; value: unknown } | { ok: false; error: Record<string, unknown> };
const report: Record<string, Step> = {};

async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    report[name] = { ok: true, value: await fn() };
  } catch (e) {
    const err = e as Error & Record<string, unknown>;
    report[name] = { ok: false, error: { name: err.name, message: err.message, code: err.code, errno: err.errno, syscall: err.syscall, messageType: err.messageType } };
  }
}

async function main(): Promise<void> {
  const x = await Xfrm.open();
  const watcher = await Xfrm.open();
  const seen: string[] = [];
  watcher.on('message', (m) => seen.push(String((m as { type: unknown }).type)));
  watcher.on('add', () => seen.push('add'));
  watcher.on('delete', () => seen.push('delete'));

  await step('sadInfo', () => x.sadInfo());
  let spi = 0;
  await step('getSpi', async () => (spi = await x.getSpi({ src: '192.0.2.1', dst: '192.0.2.2', min: 0x1000, max: 0x1fff })));
  await step('dumpAfterGetSpi', async () => {
    const out = [];
    for await (const sa of x.dump('esp')) out.push({ src: sa.src, dst: sa.dst, spi: sa.spi, protocol: sa.protocol });
    return out;
  });
  await step('getLarval', async () => {
    const sa = await x.get({ src: '192.0.2.1', dst: '192.0.2.2', spi, protocol: 'esp' });
    return { src: sa.src, dst: sa.dst, spi: sa.spi, hard: sa.lifetime?.hard };
  });
  await step('deleteLarval', () => x.delete({ src: '192.0.2.1', dst: '192.0.2.2', spi, protocol: 'esp' }));
  await step('getDeleted', () => x.get({ src: '192.0.2.1', dst: '192.0.2.2', spi, protocol: 'esp' }));

  const natt = { type: 'espinudp' as const, sport: 4500, dport: 4500 };
  await step('addEspCbc', () =>
    x.add({
      src: '192.0.2.1',
      dst: '192.0.2.2',
      spi: 0x1001,
      mode: 'tunnel',
      encryption: { algorithm: 'aes-cbc', key: new Uint8Array(16).fill(7) },
      integrity: { algorithm: 'hmac-sha2-256-128', key: new Uint8Array(32).fill(8) },
      natt,
    }),
  );
  await step('addEspGcm', () =>
    x.add({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1002, encryption: { algorithm: 'aes-gcm-16', key: new Uint8Array(20).fill(9) }, natt }),
  );
  await step('addBadKey', () => x.add({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, encryption: { algorithm: 'aes-cbc', key: new Uint8Array(5) } }));

  const out: SecurityPolicy = {
    selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24', proto: 17 },
    direction: 'out',
    action: 'ipsec',
    templates: [{ protocol: 'esp', mode: 'tunnel', src: '192.0.2.1', dst: '192.0.2.2', reqid: 7 }],
  };
  let outId = 0;
  await step('spdAdd', async () => {
    const p = await x.spdAdd(out);
    outId = p.id ?? 0;
    return p;
  });
  await step('spdAddAgain', () => x.spdAdd(out));
  await step('spdUpdate', () => x.spdUpdate({ ...out, priority: 500 }));
  await step('spdAddIn', () => x.spdAdd({ selector: { src: '10.2.0.0/24', dst: '10.1.0.0/24' }, direction: 'in', action: 'discard' }));
  await step('spdGetBySelector', () => x.spdGet({ selector: out.selector, direction: 'out' }));
  await step('spdDump', async () => {
    const ps = [];
    for await (const p of x.spdDump()) ps.push({ id: p.id, direction: p.direction, action: p.action, priority: p.priority });
    return ps;
  });
  await step('spdAdd6', () =>
    x.spdAdd({
      selector: { src: '2001:db8:1::/48', dst: '2001:db8:2::/48', proto: 6, dport: 443 },
      direction: 'fwd',
      action: 'ipsec',
      templates: [{ protocol: 'esp', mode: 'tunnel', src: '2001:db8::1', dst: '2001:db8::2', level: 'use' }],
    }),
  );
  await step('spdDeleteById', () => x.spdDelete({ id: outId }));
  await step('spdGetDeleted', () => x.spdGet({ id: outId }));
  await step('spdDeleteBySelector', () => x.spdDelete({ selector: { src: '10.2.0.0/24', dst: '10.1.0.0/24' }, direction: 'in' }));

  // ACQUIRE: a policy that wants ESP for 10.9.0.1 → 10.9.0.2 UDP (a veth: loopback never does XFRM), and a datagram.
  await step('acquire', async () => {
    await x.spdAdd({
      selector: { src: '10.9.0.1/32', dst: '10.9.0.2/32', proto: 17 },
      direction: 'out',
      action: 'ipsec',
      templates: [{ protocol: 'esp', mode: 'transport' }],
    });
    const got = new Promise<AcquireEvent>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no acquire within 5000 ms')), 5000);
      watcher.once('acquire', (ev) => {
        clearTimeout(t);
        resolve(ev);
      });
    });
    const s = dgram.createSocket('udp4');
    s.on('error', () => undefined);
    s.send(Buffer.from('hello'), 9999, '10.9.0.2');
    try {
      const ev = await got;
      // Answer as an IKE daemon would: an SPI for the larval SA the acquire made.
      const spi = await x.getSpi({ src: ev.src, dst: ev.dst, seq: ev.seq, min: 0x5000, max: 0x50ff });
      return { ev, spi };
    } finally {
      s.close();
    }
  });
  await step('abortedCall', () => x.sadInfo({ signal: AbortSignal.abort(new Error('stop')) }));
  await step('flush', async () => {
    await x.spdFlush();
    await x.flush();
    const n = await x.sadInfo();
    let p = 0;
    for await (const _ of x.spdDump()) p++;
    return { sas: n.count, policies: p };
  });
  await new Promise((r) => setTimeout(r, 100));
  report.events = { ok: true, value: seen };
  report.stats = { ok: true, value: { x: x.stats(), watcher: watcher.stats() } };
  await x.close();
  await watcher.close();
  await step('afterClose', () => x.sadInfo());
}

main()
  .catch((e) => {
    report.fatal = { ok: false, error: { message: String((e as Error).stack ?? e) } };
  })
  .finally(() => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  });
