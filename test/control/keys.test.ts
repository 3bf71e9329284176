// Key material over the control socket: on the wire only where asked and allowed, never in errors, logs or inspect.

import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonSadb } from '../../src/control/client';
import { controlSkip, sleep, startDaemon, until, type Daemon } from './helpers';
import { RawClient } from './raw';

const KEY = new Uint8Array(16).fill(0xc7);
const AUTH = new Uint8Array(20).fill(0xc7);
const HEX = /c7c7/i;
const sa = (spi: number) => ({
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi,
  encryption: { algorithm: 'aes-cbc' as const, key: KEY },
  integrity: { algorithm: 'hmac-sha1-96' as const, key: AUTH },
});
const SECRET = '5ec12e7' + 'ab'.repeat(16);
const shown = (e: unknown): string => `${(e as Error).message}\n${(e as Error).stack}\n${inspect(e, { depth: 10 })}`;

describe.skipIf(controlSkip !== undefined)(`keys over the control socket${controlSkip ? ` (skipped: ${controlSkip})` : ''}`, () => {
  let d: Daemon | undefined;
  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    await d?.stop();
    d = undefined;
  });

  it('a daemon that does not reveal keys sends none, whoever asks: replies, dumps and events carry empty keys', async () => {
    d = await startDaemon();
    const r = await RawClient.connect(d.path);
    closers.push(() => r.close());
    await r.hello();
    r.send({ type: 'subscribe', id: 2, events: ['add', 'expire'], revealKeys: true });
    await r.waitFor((m) => m.id === 2);
    const c = await DaemonSadb.open({ path: d.path, revealKeys: true });
    closers.push(() => c.close());
    await c.add(sa(0x100));
    r.send({ type: 'request', id: 3, method: 'get', params: { id: { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100 } }, revealKeys: true });
    r.send({ type: 'request', id: 4, method: 'dump', revealKeys: true });
    await r.waitFor((m) => m.id === 4 && m.type === 'end');
    const wire = JSON.stringify(r.messages);
    expect(wire).toContain('"algorithm":"aes-cbc","key":""');
    expect(wire).not.toMatch(HEX);
    expect((await c.get({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100 })).encryption!.key.length).toBe(0);
  });

  it('a daemon that reveals keys sends them to the asking client only, and they come back hidden from inspect', async () => {
    d = await startDaemon({ revealKeys: true });
    const r = await RawClient.connect(d.path);
    closers.push(() => r.close());
    await r.hello();
    await d.db.add(sa(0x200));
    r.send({ type: 'request', id: 2, method: 'get', params: { id: { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x200 } } });
    const plain = await r.waitFor((m) => m.id === 2);
    expect(JSON.stringify(plain)).not.toMatch(HEX);
    r.send({ type: 'request', id: 3, method: 'get', params: { id: { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x200 } }, revealKeys: true });
    expect((await r.waitFor((m) => m.id === 3)).result.encryption.key).toBe('c7'.repeat(16));
    const c = await DaemonSadb.open({ path: d.path });
    closers.push(() => c.close());
    const got = await c.get({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x200 });
    expect(got.encryption!.key).toEqual(KEY);
    expect(inspect(got, { depth: 9, showHidden: false })).not.toMatch(/199|c7/);
    expect(JSON.stringify(got)).not.toMatch(/199|c7/);
    expect(inspect(c, { depth: 9 })).not.toMatch(/199|c7c7/);
  });

  it.each([
    ['a hex string', SECRET],
    ['an array of bytes', [0x5e, 0xc1, 0x2e, 0x7a]],
    ['a number', 0x5ec12e7],
    ['an object holding the key', { hex: SECRET }],
  ])('a key given as %s is refused without being shown, here and at the daemon', async (_what, key) => {
    d = await startDaemon();
    const c = await DaemonSadb.open({ path: d.path });
    closers.push(() => c.close());
    const here = await c.add({ ...sa(0x300), encryption: { algorithm: 'aes-cbc', key: key as unknown as Uint8Array } }).catch((e) => e);
    expect(here).toBeInstanceOf(TypeError);
    const r = await RawClient.connect(d.path);
    closers.push(() => r.close());
    await r.hello();
    r.send({ type: 'request', id: 2, method: 'add', params: { sa: { ...sa(0x300), integrity: undefined, encryption: { algorithm: 'aes-cbc', key } } } });
    const there = await r.waitFor((m) => m.id === 2);
    expect(there.type).toBe('error');
    for (const text of [shown(here), JSON.stringify(there), d.log.join('\n')]) {
      expect(text).not.toContain('5ec12e7');
      expect(text).not.toMatch(/abab|94, ?193|0x5e/i);
      expect(text).not.toContain(String(0x5ec12e7));
    }
  });

  it("events: 'add' keys only to a client that asked, from a daemon that allows, from a database that put them in", async () => {
    d = await startDaemon({ revealKeys: true });
    const asking = await RawClient.connect(d.path);
    const notAsking = await RawClient.connect(d.path);
    closers.push(() => asking.close(), () => notAsking.close());
    for (const [r, keys] of [[asking, true], [notAsking, false]] as const) {
      await r.hello();
      r.send({ type: 'subscribe', id: 2, events: ['add'], revealKeys: keys });
      await r.waitFor((m) => m.id === 2);
    }
    await d.db.add(sa(0x400)); // this UserlandSadb was opened without revealKeys: its 'add' events have no keys
    await until(() => asking.messages.some((m) => m.type === 'event') && notAsking.messages.some((m) => m.type === 'event'));
    await sleep(10);
    expect(JSON.stringify(asking.messages)).not.toMatch(HEX);
    expect(JSON.stringify(notAsking.messages)).not.toMatch(HEX);
  });
});
