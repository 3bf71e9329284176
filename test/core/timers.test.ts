import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS, longInterval, longTimeout } from '../../src/core/timers';

afterEach(() => {
  vi.useRealTimers();
});

describe('long timers', () => {
  it('a 25-day timeout does not fire early (a bare setTimeout would fire after 1 ms)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const fn = vi.fn();
    const days25 = 25 * 86400_000;
    expect(days25).toBeGreaterThan(MAX_TIMER_MS);
    longTimeout(fn, days25);
    vi.advanceTimersByTime(10);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(days25 - MAX_TIMER_MS);
    expect(fn).toHaveBeenCalledTimes(1);
  });
  it('clear() cancels, even between chained parts', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const fn = vi.fn();
    const t = longTimeout(fn, 2 ** 32);
    vi.advanceTimersByTime(MAX_TIMER_MS + 5);
    t.clear();
    vi.advanceTimersByTime(2 ** 32);
    expect(fn).not.toHaveBeenCalled();
    expect(t.done).toBe(true);
  });
  it('a 30-day interval fires once per 30 days, not ~900 times a second', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const fn = vi.fn();
    const month = 30 * 86400_000;
    const t = longInterval(fn, month);
    vi.advanceTimersByTime(1000);
    expect(fn).toHaveBeenCalledTimes(0);
    vi.advanceTimersByTime(month);
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(month);
    expect(fn).toHaveBeenCalledTimes(2);
    t.clear();
    vi.advanceTimersByTime(month * 3);
    expect(fn).toHaveBeenCalledTimes(2);
  });
  it('unref() timers do not keep the loop alive (real timers)', async () => {
    const t = longTimeout(() => {}, 10).unref();
    expect(t.done).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(t.done).toBe(true);
  });
});
