// A full send buffer (EAGAIN) on the native path: sends wait in order and complete later, counted; past the queue's
// bound they fail with ENOBUFS, counted, never silently. A rate-limited veth (tbf) between two namespaces fills it.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { have, sh } from '../lib/nat-topology';
import { Endpoint, type Msg } from '../lib/ns-endpoint';
import { loadNative } from '../../src/native/binding';
import { ensureDist } from '../lib/dist';
import { MAX_SEND_QUEUE } from '../../src/natt/native-io';

const SCRIPT = join(__dirname, '..', 'lib', 'socket-endpoint.js');
const tag = `${process.pid % 10000}`;
const NS = { a: `natt-sqa${tag}`, b: `natt-sqb${tag}` };
const DEV = { a: `sqa${tag}`, b: `sqb${tag}` };

function unavailable(): string {
  if (process.platform !== 'linux') return 'Linux only (tc)';
  if (process.getuid?.() !== 0) return 'not root';
  if (!loadNative()) return 'the native addon is not built (node:dgram queues in libuv instead)';
  if (!have('ip', ['-V']) || !have('tc', ['-V'])) return 'needs ip and tc';
  return '';
}
const why = unavailable();
const teardown = (): void => {
  for (const n of Object.values(NS)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
};

describe.skipIf(!!why)(`send queue on EAGAIN (a rate-limited veth)${why ? ` (skipped: ${why})` : ''}`, () => {
  let a: Endpoint;
  let b: Endpoint;
  let rx: Msg;
  let tx: Msg;
  const run = async (ep: Endpoint, cmd: object, ev: string, ms = 20_000): Promise<Msg> => {
    const mark = ep.msgs.length;
    ep.cmd(cmd);
    return ep.wait((x) => x.ev === ev || (x.ev === 'error' && x.name === undefined), mark, ms); // a socket's own 'error' is named
  };

  beforeAll(async () => {
    ensureDist(); // the endpoints are plain JS over dist/
    process.once('exit', teardown);
    teardown();
    sh(['ip', 'netns', 'add', NS.a]);
    sh(['ip', 'netns', 'add', NS.b]);
    sh(['ip', 'link', 'add', DEV.a, 'netns', NS.a, 'type', 'veth', 'peer', 'name', DEV.b, 'netns', NS.b]);
    sh(['ip', 'addr', 'add', '10.89.0.1/24', 'dev', DEV.a], NS.a);
    sh(['ip', 'addr', 'add', '10.89.0.2/24', 'dev', DEV.b], NS.b);
    sh(['ip', 'link', 'set', DEV.a, 'up'], NS.a);
    sh(['ip', 'link', 'set', DEV.b, 'up'], NS.b);
    // 8 Mbit/s with a deep queue: the qdisc holds datagrams, each charged to the sender's small send buffer.
    sh(['tc', 'qdisc', 'add', 'dev', DEV.a, 'root', 'tbf', 'rate', '8mbit', 'burst', '4kb', 'limit', '4mb'], NS.a);
    a = new Endpoint(NS.a, SCRIPT, {});
    b = new Endpoint(NS.b, SCRIPT, {});
    await a.wait((m) => m.ev === 'ready');
    await b.wait((m) => m.ev === 'ready');
    rx = await run(b, { cmd: 'open', name: 'rx', options: { address: '10.89.0.2', port: 0, backend: 'userland', receiveBufferSize: 4 << 20 } }, 'opened');
    tx = await run(a, { cmd: 'open', name: 'tx', options: { port: 0, backend: 'userland', sendBufferSize: 4096 } }, 'opened');
  }, 60_000);
  afterAll(() => {
    a?.kill();
    b?.kill();
    teardown();
  });

  const received = async (): Promise<number> => ((await run(b, { cmd: 'stats', name: 'rx' }, 'stats')).stats as { ike: number }).ike;

  it('a burst larger than the send buffer: the sends that met EAGAIN wait and all complete, all arrive', async () => {
    const n = 400;
    const r = await run(a, { cmd: 'burst', name: 'tx', port: rx.port, address: '10.89.0.2', count: n, size: 1000 }, 'burst');
    expect(r.errors).toEqual([]);
    expect(r.sent).toBe(n);
    expect(r.stats).toMatchObject({ sentIke: n, sendErrors: 0 });
    expect((r.stats as { sendDeferred: number }).sendDeferred).toBeGreaterThan(n / 2); // most of them waited
    const end = Date.now() + 10_000;
    while ((await received()) < n && Date.now() < end) await new Promise((res) => setTimeout(res, 100));
    expect(await received()).toBe(n);
  });

  it(`past ${MAX_SEND_QUEUE} waiting datagrams a send fails with ENOBUFS, counted; every other one is sent`, async () => {
    const before = await received();
    const n = MAX_SEND_QUEUE + 300;
    const r = await run(a, { cmd: 'burst', name: 'tx', port: rx.port, address: '10.89.0.2', count: n, size: 1000 }, 'burst', 30_000);
    if (r.ev === 'error') throw new Error(String(r.message));
    const errors = r.errors as string[];
    expect(errors.length).toBeGreaterThan(0);
    expect(new Set(errors)).toEqual(new Set(['ENOBUFS']));
    expect(Number(r.sent) + errors.length).toBe(n);
    const st = r.stats as { sentIke: number; sendErrors: number };
    expect(st.sendErrors).toBe(errors.length);
    const end = Date.now() + 10_000;
    while ((await received()) - before < Number(r.sent) && Date.now() < end) await new Promise((res) => setTimeout(res, 100));
    expect((await received()) - before).toBe(Number(r.sent));
  }, 40_000);
});
