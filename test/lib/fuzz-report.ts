// The one summary line each fuzz and property test writes: its name, inputs run, and counts per outcome (npm run fuzz).

import * as fs from 'node:fs';

/**
 * Append `{ test, runs, outcomes, ...extra, at }` (at: when, in ms since the epoch) as one JSON line to the file named by NATT_FUZZ_REPORT (scripts/fuzz.js
 * collects them into its table). Without NATT_FUZZ_REPORT (npm test) nothing is written.
 */
export function reportFuzz(test: string, outcomes: Record<string, number>, extra: Record<string, unknown> = {}): void {
  const file = process.env.NATT_FUZZ_REPORT;
  if (!file) return;
  // Inputs run: `extra.runs` where an input has several outcomes (a walk of packets), else the sum of the counts.
  const runs = typeof extra.runs === 'number' ? extra.runs : Object.values(outcomes).reduce((a, b) => a + b, 0);
  fs.appendFileSync(file, `${JSON.stringify({ test, runs, outcomes, ...extra, at: Date.now() })}\n`);
}

/** Counts per outcome, as reportFuzz takes them. */
export class OutcomeCounts {
  readonly counts: Record<string, number> = {};
  add(outcome: string, n = 1): void {
    this.counts[outcome] = (this.counts[outcome] ?? 0) + n;
  }
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
}

/** A Set of outcomes that also counts how often each was added (for tests that assert on the set of outcomes seen). */
export class CountingSet<T extends string> extends Set<T> {
  readonly counts: Record<string, number> = {};
  override add(v: T): this {
    this.counts[v] = (this.counts[v] ?? 0) + 1;
    return super.add(v);
  }
}
