// The one "until SIGINT or SIGTERM" of the long-running commands (monitor, capture, tunnel up).

/** Resolves with the name of the first SIGINT or SIGTERM; both listeners are removed then. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => (): void => {
      process.off('SIGINT', int);
      process.off('SIGTERM', term);
      resolve(sig);
    };
    const int = on('SIGINT');
    const term = on('SIGTERM');
    process.once('SIGINT', int);
    process.once('SIGTERM', term);
  });
}
