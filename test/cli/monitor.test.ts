// natt monitor and natt stats: events as lines and JSON (no key bytes), the kernel's XFRM events here, counters read.

import { describe, expect, it } from 'vitest';
import { monitorCommand, type MonitorIo } from '../../src/cli/monitor';
import { statsCommand, parseXfrmStat } from '../../src/cli/stats';
import { runCommand } from '../../src/cli/args';
import { UserlandSadb } from '../../src/userland/sadb';
import { Xfrm } from '../../src/xfrm/client';
import { probe } from '../../src/probe';
import type { SecurityAssociation } from '../../src/sadb/types';

const KEY = Buffer.alloc(20, 0x5a);
const sa: SecurityAssociation = {
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi: 0x4242,
  mode: 'tunnel',
  encryption: { algorithm: 'aes-gcm-16', key: KEY },
  natt: { type: 'espinudp', sport: 4500, dport: 4500 },
};

function collector() {
  const text: string[] = [];
  return { write: (s: string) => void text.push(s), text };
}

async function monitor(argv: string[], io: Partial<MonitorIo>, during: (db: unknown) => Promise<void>) {
  const out = collector();
  const err = collector();
  let stop!: (s: string) => void;
  const stopSignal = new Promise<string>((r) => (stop = r));
  let ready!: (db: unknown) => void;
  const isReady = new Promise<unknown>((r) => (ready = r));
  const code = runCommand(monitorCommand, argv, { out, err, stopSignal, onReady: (db) => ready(db), ...io });
  const db = await isReady;
  await during(db);
  await new Promise((r) => setTimeout(r, 50));
  stop('SIGINT');
  return { code: await code, out: out.text.join(''), err: err.text.join('') };
}

describe('natt monitor', () => {
  it('prints add, expire-less delete and new-mapping events as lines; no key bytes', async () => {
    const db = new UserlandSadb();
    const r = await monitor([], { sadb: db }, async () => {
      await db.add(sa);
      await db.delete(sa);
    });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/add: esp 192\.0\.2\.1 -> 192\.0\.2\.2 spi 0x00004242 tunnel espinudp 4500->4500/);
    expect(r.out).toMatch(/delete: esp 192\.0\.2\.1 -> 192\.0\.2\.2 spi 0x00004242/);
    expect(r.out).not.toMatch(/5a5a|ZZZZ/i);
  });

  it('--json prints one JSON object per event, keys absent', async () => {
    const db = new UserlandSadb();
    const r = await monitor(['--json'], { sadb: db }, async () => {
      await db.add(sa);
    });
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ event: 'add', data: { src: '192.0.2.1', spi: 0x4242 } });
    expect(r.out).not.toContain('5a5a5a');
  });

  it('refuses to watch a userland database from outside, and bad usage exits 2', async () => {
    const err = collector();
    expect(await runCommand(monitorCommand, ['--backend', 'userland'], { out: collector(), err })).toBe(1);
    expect(err.text.join('')).toMatch(/nothing to watch from here/);
    expect(await runCommand(monitorCommand, ['--backend', 'magic'], { out: collector(), err: collector() })).toBe(2);
    expect(await runCommand(monitorCommand, ['--control', '/x'], { out: collector(), err: collector() })).toBe(2);
  });

  const p = probe();
  const xfrmWhy = process.getuid?.() !== 0 ? 'not root' : p.facts.xfrm.ok ? '' : `no XFRM netlink (${p.facts.xfrm.code})`;
  it.skipIf(!!xfrmWhy)(`on this kernel's XFRM: a policy added by another socket is seen${xfrmWhy ? ` (skipped: ${xfrmWhy})` : ''}`, async () => {
    const x = await Xfrm.open();
    const selector = { src: '10.99.0.0/24', dst: '10.98.0.0/24' };
    try {
      const r = await monitor(['--backend', 'xfrm'], {}, async () => {
        await x.spdAdd({ selector, direction: 'out', action: 'discard', priority: 7 });
        await x.spdDelete({ selector, direction: 'out' });
      });
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/watching the xfrm SA database/);
      expect(r.out).toMatch(/message: newpolicy/);
      expect(r.out).toMatch(/message: delpolicy/);
    } finally {
      await x.spdDelete({ selector, direction: 'out' }).catch(() => {});
      await x.close();
    }
  });
});

describe('natt stats', () => {
  it("parses /proc/net/xfrm_stat's layout and prints it in the same format", async () => {
    const text = 'XfrmInError             \t3\nXfrmInNoStates          \t7\nXfrmNewThing\t2\n';
    expect(parseXfrmStat(text)).toMatchObject({ InError: 3, InNoStates: 7, NewThing: 2, OutError: 0 });
    const out = collector();
    expect(await runCommand(statsCommand, [], { out, err: collector(), procText: text })).toBe(0);
    expect(out.text.join('')).toMatch(/^XfrmInError\s+3$/m);
    expect(out.text.join('')).toMatch(/^XfrmNewThing\s+2$/m);
    const j = collector();
    await runCommand(statsCommand, ['--json'], { out: j, err: collector(), procText: text });
    expect(JSON.parse(j.text.join(''))).toMatchObject({ source: '/proc/net/xfrm_stat', counters: { InNoStates: 7 } });
  });

  it.skipIf(process.platform !== 'linux')('reads this kernel\'s counters (or says why not)', async () => {
    const out = collector();
    const err = collector();
    const code = await runCommand(statsCommand, [], { out, err });
    if (code === 0) expect(out.text.join('')).toMatch(/^XfrmOutNoStates\s+\d+$/m);
    else expect(err.text.join('')).toMatch(/CONFIG_XFRM_STATISTICS/);
  });

  it("a daemon's counters, in the same format", async () => {
    const fake = Object.assign(new UserlandSadb(), { call: async () => ({ engine: { InNoStates: 4 } }) });
    const out = collector();
    expect(await runCommand(statsCommand, ['--backend', 'daemon'], { out, err: collector(), sadb: fake })).toBe(0);
    expect(out.text.join('')).toMatch(/^XfrmInNoStates\s+4$/m);
  });
});
