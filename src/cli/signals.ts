// The one "until SIGINT or SIGTERM" of the long-running commands (monitor, capture, tunnel up).

/**
 * Resolves with the name of the first SIGINT or SIGTERM; both listeners are removed then, or when `signal` aborts
 * (the command stopped for another reason: `natt tunnel down`), and the promise then stays pending.
 */
export function untilSignal(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const off = (): void => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
    };
    const on = (sig: string) => (): void => {
      off();
      signal?.removeEventListener('abort', off);
      resolve(sig);
    };
    const int = on('SIGINT');
    const term = on('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
    signal?.addEventListener('abort', off, { once: true });
  });
}
