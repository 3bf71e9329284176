// vitest settings for the kernel suite inside the Linux VM: test/kernel only, one file at a time (they share the SADB).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/kernel/**/*.test.ts'],
    exclude: ['node_modules/**'],
    pool: 'forks',
    fileParallelism: false,
    poolOptions: { forks: { singleFork: true } },
    // TCG emulation is slow; these bound hangs, they are not timing assertions.
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
