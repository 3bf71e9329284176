// Test helper: a small deterministic PRNG (xorshift32), so a failing fuzz case can be replayed from its seed.

/** A function returning integers in [0, n), from `seed`. */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}
