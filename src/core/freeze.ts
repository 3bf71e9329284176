// Deep freezing of the tables natt hands out (codec constants, dialects): what the library reads, no caller can change.

/** Freeze `v` and every object reachable from its own data properties (functions are left as they are). Returns `v`. */
export function deepFreeze<T>(v: T, seen = new Set<unknown>()): T {
  if (v === null || typeof v !== 'object' || seen.has(v)) return v;
  seen.add(v);
  for (const k of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k);
    if (d && 'value' in d) deepFreeze(d.value, seen);
  }
  return Object.freeze(v);
}
