// Timers that keep their word past Node's 2^31−1 ms limit: long delays are chained, never fired early; unref'd on request.

/** Node's largest setTimeout delay (≈24.8 days); a larger one fires after 1 ms, which natt never lets happen. */
export const MAX_TIMER_MS = 0x7fff_ffff;

/** A cancellable one-shot timer of any length (chained setTimeouts of at most MAX_TIMER_MS each). */
export interface LongTimer {
  /** Cancel; idempotent. */
  clear(): void;
  /** Stop / start keeping the event loop alive. */
  unref(): LongTimer;
  ref(): LongTimer;
  /** True once it fired or was cleared. */
  readonly done: boolean;
}

class Chained implements LongTimer {
  #fn: () => void;
  #due: number;
  #t: NodeJS.Timeout | null = null;
  #refed = true;
  #done = false;

  constructor(fn: () => void, ms: number) {
    this.#fn = fn;
    this.#due = performance.now() + ms;
    this.#arm(ms);
  }

  #arm(ms: number): void {
    this.#t = setTimeout(() => this.#tick(), Math.min(Math.max(0, ms), MAX_TIMER_MS));
    if (!this.#refed) this.#t.unref();
  }

  #tick(): void {
    const left = this.#due - performance.now();
    if (left > 1) {
      this.#arm(left);
      return;
    }
    this.#done = true;
    this.#t = null;
    this.#fn();
  }

  get done(): boolean {
    return this.#done;
  }

  clear(): void {
    this.#done = true;
    if (this.#t) clearTimeout(this.#t);
    this.#t = null;
  }

  unref(): LongTimer {
    this.#refed = false;
    this.#t?.unref();
    return this;
  }

  ref(): LongTimer {
    this.#refed = true;
    this.#t?.ref();
    return this;
  }
}

/** Call `fn` once after `ms` milliseconds (any finite ms ≥ 0; validated by the caller, see core/options.ts durationMs). */
export function longTimeout(fn: () => void, ms: number): LongTimer {
  return new Chained(fn, ms);
}

/** Call `fn` every `ms` milliseconds (any finite ms > 0), each period measured from the previous firing. */
export function longInterval(fn: () => void, ms: number): LongTimer {
  let current: LongTimer;
  let refed = true;
  let stopped = false;
  const handle: LongTimer = {
    clear() {
      stopped = true;
      current.clear();
    },
    unref() {
      refed = false;
      current.unref();
      return handle;
    },
    ref() {
      refed = true;
      current.ref();
      return handle;
    },
    get done() {
      return stopped;
    },
  };
  const schedule = (): void => {
    current = longTimeout(() => {
      if (stopped) return;
      schedule();
      fn();
    }, ms);
    if (!refed) current.unref();
  };
  schedule();
  return handle;
}
