// The shared request layer (src/kernel/requests.ts) over an in-memory transport: matching, timeouts, abort, in-flight
// bound, the send queue on a full transport, serialized dumps with early exit, ref while outstanding, close.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { RequestLayer, type MessageTransport } from '../../src/kernel/requests';
import { NattTimeoutError } from '../../src/errors';

interface Fake extends MessageTransport {
  sent: number[];
  full: boolean;
  refd: boolean;
  writable: (() => void) | null;
}

function fake(): Fake {
  const t: Fake = {
    sent: [],
    full: false,
    refd: false,
    writable: null,
    send(msg) {
      if (t.full) return false;
      t.sent.push(msg[0]);
      return true;
    },
    onceWritable(cb) {
      t.writable = cb;
    },
    ref() {
      t.refd = true;
    },
    unref() {
      t.refd = false;
    },
  };
  return t;
}

function layer(t: Fake, o: { timeout?: number; maxInFlight?: number } = {}): RequestLayer<{ n: number }> {
  return new RequestLayer({ transport: t, closedError: (w) => new Error(`${w}: closed`), timeout: o.timeout ?? 1000, maxInFlight: o.maxInFlight });
}

const spec = (n: number) => ({ what: `REQ${n}`, key: n, bytes: Uint8Array.of(n) });

afterEach(() => vi.useRealTimers());

describe('RequestLayer', () => {
  it('sends, matches by key, settles, and holds the loop only while something is outstanding', async () => {
    const t = fake();
    const l = layer(t);
    const p = l.request<string>(spec(1), undefined, { n: 1 });
    expect(t.sent).toEqual([1]);
    expect(t.refd).toBe(true);
    expect(l.find(1)?.ctx).toEqual({ n: 1 });
    l.find(1)!.resolve('answer');
    await expect(p).resolves.toBe('answer');
    expect(t.refd).toBe(false);
    expect(l.size).toBe(0);
  });

  it('sequence numbers are 32-bit and never 0', () => {
    const l = new RequestLayer({ transport: fake(), closedError: () => new Error('x'), timeout: 10, seqStart: 0xffff_fffe });
    expect([l.nextSeq(), l.nextSeq(), l.nextSeq()]).toEqual([0xffff_ffff, 1, 2]);
  });

  it('bad call options reject at once and leave nothing armed (D2, D6)', async () => {
    vi.useFakeTimers();
    const t = fake();
    const l = layer(t);
    const ac = new AbortController();
    await expect(l.request(spec(1), { signal: {} }, { n: 0 })).rejects.toThrow(/option "signal" must be an AbortSignal/);
    await expect(l.request(spec(1), { signal: ac }, { n: 0 })).rejects.toThrow(TypeError);
    await expect(l.request(spec(1), { timeout: NaN }, { n: 0 })).rejects.toThrow(RangeError);
    await expect(l.request(spec(1), { timeout: '30s' }, { n: 0 })).rejects.toThrow(TypeError);
    await expect(l.request(spec(1), { tiemout: 5 }, { n: 0 })).rejects.toThrow(/unknown option "tiemout"/);
    expect(t.sent).toEqual([]);
    expect(l.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    const it = l.dump(() => spec(2), { signal: {} }, { n: 0 })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow(/signal/);
    // The dump turn was not taken: a good dump runs at once.
    const it2 = l.dump<number>(() => spec(3), undefined, { n: 0 })[Symbol.asyncIterator]();
    const first = it2.next();
    await Promise.resolve();
    await Promise.resolve();
    expect(t.sent).toEqual([3]);
    l.currentDump!.resolve(undefined);
    await expect(first).resolves.toEqual({ done: true, value: undefined });
  });

  it('times out with NattTimeoutError; a timeout past 2^31 ms does not fire early', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const t = fake();
    const l = layer(t, { timeout: 50 });
    const p = l.request(spec(1), undefined, { n: 0 });
    const q = l.request(spec(2), { timeout: 2 ** 32 }, { n: 0 });
    const pr = expect(p).rejects.toBeInstanceOf(NattTimeoutError);
    vi.advanceTimersByTime(60);
    await pr;
    vi.advanceTimersByTime(2 ** 31);
    expect(l.find(2)).toBeDefined();
    vi.advanceTimersByTime(2 ** 32);
    await expect(q).rejects.toThrow(/REQ2 got no reply within 4294967296 ms/);
    expect(l.size).toBe(0);
  });

  it('abort before and during a request', async () => {
    const t = fake();
    const l = layer(t);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(l.request(spec(1), { signal: ac.signal }, { n: 0 })).rejects.toThrow('stop');
    expect(t.sent).toEqual([]);
    const ac2 = new AbortController();
    const p = l.request(spec(2), { signal: ac2.signal }, { n: 0 });
    ac2.abort();
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(l.size).toBe(0);
    expect(t.refd).toBe(false);
  });

  it('at most maxInFlight are sent; the rest wait unsent and go in order as slots free', async () => {
    const t = fake();
    const l = layer(t, { maxInFlight: 2 });
    const ps = [1, 2, 3, 4].map((n) => l.request<number>(spec(n), undefined, { n }));
    expect(t.sent).toEqual([1, 2]);
    expect(l.size).toBe(4);
    l.find(1)!.resolve(1);
    expect(t.sent).toEqual([1, 2, 3]);
    l.find(2)!.resolve(2);
    l.find(3)!.resolve(3);
    l.find(4)!.resolve(4);
    await expect(Promise.all(ps)).resolves.toEqual([1, 2, 3, 4]);
  });

  it('a full transport takes nothing: requests queue in order and go when it is writable; nothing throws', async () => {
    const t = fake();
    const l = layer(t);
    t.full = true;
    const ps = [1, 2, 3].map((n) => l.request<number>(spec(n), undefined, { n }));
    expect(t.sent).toEqual([]);
    expect(t.writable).not.toBeNull();
    t.full = false;
    const w = t.writable!;
    t.writable = null;
    w();
    expect(t.sent).toEqual([1, 2, 3]);
    for (const n of [1, 2, 3]) l.find(n)!.resolve(n);
    await expect(Promise.all(ps)).resolves.toEqual([1, 2, 3]);
  });

  it('a queued request that times out is not sent later', async () => {
    vi.useFakeTimers();
    const t = fake();
    const l = layer(t, { timeout: 10 });
    t.full = true;
    const p = l.request(spec(1), undefined, { n: 0 });
    const pr = expect(p).rejects.toBeInstanceOf(NattTimeoutError);
    vi.advanceTimersByTime(20);
    await pr;
    t.full = false;
    t.writable!();
    expect(t.sent).toEqual([]);
  });

  it('a throwing transport fails that request only', async () => {
    const t = fake();
    const l = layer(t);
    t.send = () => {
      throw new Error('EBADF');
    };
    await expect(l.request(spec(1), undefined, { n: 0 })).rejects.toThrow('EBADF');
    expect(l.size).toBe(0);
  });

  it('dumps run one at a time; items stream; an early exit drains the rest before the next dump', async () => {
    const t = fake();
    const l = layer(t);
    const got: number[] = [];
    const first = (async () => {
      for await (const v of l.dump<number>(() => spec(10), undefined, { n: 10 })) {
        got.push(v);
        if (v === 2) break;
      }
    })();
    const second = (async () => {
      const out: number[] = [];
      for await (const v of l.dump<number>(() => spec(20), undefined, { n: 20 })) out.push(v);
      return out;
    })();
    await new Promise((r) => setImmediate(r));
    expect(t.sent).toEqual([10]);
    const d = l.currentDump!;
    d.item(1);
    d.item(2);
    await first;
    d.item(3); // read and dropped
    await new Promise((r) => setImmediate(r));
    expect(t.sent).toEqual([10]); // the second dump waits for the first to end
    d.resolve(undefined);
    await new Promise((r) => setImmediate(r));
    expect(t.sent).toEqual([10, 20]);
    l.currentDump!.item(7);
    l.currentDump!.resolve(undefined);
    expect(await second).toEqual([7]);
    expect(got).toEqual([1, 2]);
  });

  it("a dump's timeout is re-armed by each item; a failing dump throws from the iterator", async () => {
    vi.useFakeTimers();
    const t = fake();
    const l = layer(t, { timeout: 100 });
    const out: number[] = [];
    const run = (async () => {
      for await (const v of l.dump<number>(() => spec(1), undefined, { n: 0 })) out.push(v);
    })();
    await vi.advanceTimersByTimeAsync(0);
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(80);
      l.currentDump!.item(i);
    }
    const failed = expect(run).rejects.toBeInstanceOf(NattTimeoutError);
    await vi.advanceTimersByTimeAsync(150);
    await failed;
    expect(out).toEqual([0, 1, 2, 3, 4]);
  });

  it('close() fails everything outstanding and every later call', async () => {
    const t = fake();
    const l = layer(t, { maxInFlight: 1 });
    const a = l.request(spec(1), undefined, { n: 0 });
    const b = l.request(spec(2), undefined, { n: 0 });
    l.close(new Error('closed now'));
    await expect(a).rejects.toThrow('closed now');
    await expect(b).rejects.toThrow('closed now');
    await expect(l.request(spec(3), undefined, { n: 0 })).rejects.toThrow('REQ3: closed');
    expect(t.refd).toBe(false);
    const it = l.dump(() => spec(4), undefined, { n: 0 })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow('dump: closed');
  });
});
