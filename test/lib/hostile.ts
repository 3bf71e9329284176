// Hostile input for the public codecs: arbitrary and wrong-typed values, and the one rule for how a codec may fail.

import fc from 'fast-check';

/** Property runs per function: NATT_FUZZ_RUNS if set (a longer `npm run fuzz`), else `fallback` (short, for npm test). */
export function fuzzRuns(fallback = 2000): number {
  const v = process.env.NATT_FUZZ_RUNS;
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`NATT_FUZZ_RUNS must be a positive integer, is ${JSON.stringify(v)}`);
  return n;
}

/** Let the event loop run: vitest's worker answers its RPC there, and a test that blocks it for a minute fails the run. */
export const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * fc.assert over `runs` runs in chunks of at most `chunk`, letting the event loop run between them, so a long fuzz run
 * (npm run fuzz) never blocks the worker. One chunk (npm test's counts) is exactly fc.assert(property, { ...params,
 * numRuns: runs }); with more, chunk i uses seed + i (the seed given, or a random one printed on failure as usual).
 */
export async function assertRuns<T>(property: fc.IRawProperty<T>, runs: number, params: fc.Parameters<T> = {}, chunk = 5000): Promise<void> {
  if (runs <= chunk) return void (await fc.assert(property, { ...params, numRuns: runs }));
  const seed = params.seed ?? Math.floor(Math.random() * 0x7fffffff);
  for (let i = 0, done = 0; done < runs; i++, done += chunk) {
    await fc.assert(property, { ...params, numRuns: Math.min(chunk, runs - done), seed: (seed + i) | 0 });
    await breathe();
  }
}

/** A fuzz test's timeout: `ms` in npm test; under NATT_FUZZ_RUNS (npm run fuzz) a day, as the inputs decide the time. */
export function fuzzTimeout(ms: number): number {
  return process.env.NATT_FUZZ_RUNS ? 86_400_000 : ms;
}

/** Key bytes in the hostile inputs are 0xc7: no error message may show them (hex, or as a list of numbers). */
export const KEY_BYTE = 0xc7;
const KEY_TRACE = /c7c7|199, ?199/i;

/** Internal failures that must never reach a caller of a codec. */
const INTERNAL = /Cannot read propert|Cannot convert|is not iterable|is not a function|Maximum call stack|out of range\. It must be|outside the bounds|Offset is outside/i;

export type Outcome = 'ok' | 'decode-error' | 'TypeError' | 'RangeError';

/**
 * Run `f` and classify how it ended. Allowed: it returns; it throws `decodeError` (only if given: decode functions);
 * or it throws a TypeError/RangeError whose message begins `option "<field>"` and shows no key bytes. Anything else
 * (another class, a message from JavaScript or Node internals, ERR_OUT_OF_RANGE from Buffer, a stack overflow) throws
 * an Error saying what came out, for fast-check to shrink.
 */
export function outcome(f: () => unknown, decodeError?: abstract new (...args: never[]) => Error): Outcome {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (decodeError && e instanceof decodeError) return 'decode-error';
    const what = e instanceof Error ? `${e.constructor.name}: ${e.message}` : `a thrown ${typeof e}`;
    if (!(e instanceof TypeError || e instanceof RangeError)) throw new Error(`not a TypeError/RangeError/decode error: ${what}`);
    if (!/^option "[^"]+"/.test(e.message)) throw new Error(`names no field: ${what}`);
    if (INTERNAL.test(e.message)) throw new Error(`an internal error: ${what}`);
    if (KEY_TRACE.test(e.message)) throw new Error(`shows key bytes: ${what}`);
    return e instanceof TypeError ? 'TypeError' : 'RangeError';
  }
}

/** Values of every wrong type (and the edges of the right ones) to put in any field. */
export const WRONG_VALUES: readonly unknown[] = [
  undefined,
  null,
  true,
  0,
  -1,
  1.5,
  NaN,
  Infinity,
  2 ** 32,
  2 ** 53,
  -(2 ** 31) - 1,
  '',
  '5',
  'not an address',
  '10.0.0.1',
  '2001:db8::1',
  0n,
  -1n,
  2n ** 64n,
  [],
  [1, 2, 3],
  [{}],
  {},
  { length: 3 },
  Object.create(null),
  new Uint8Array(3),
  new Uint8Array(16).fill(KEY_BYTE),
  Buffer.alloc(8, KEY_BYTE),
  new Uint16Array([0xc7c7, 0xc7c7]),
  new DataView(new ArrayBuffer(4)),
  Array.from({ length: 16 }, () => KEY_BYTE),
  Symbol('field'),
  () => 1,
  new Date(0),
  new Map([[1, 2]]),
  new Error('boom'),
];

/**
 * Wrong values that look like key material, for key fields only (in any other field a caller's value may be echoed):
 * an error about a key field describes it by type and length, never by content.
 */
export const KEY_LOOKALIKES: readonly unknown[] = ['c7c7c7c7c7c7c7c7', 0xc7c7c7c7, -0xc7c7c7, 0xc7c7n * 0x10001n, { bytes: 'c7c7c7c7' }];

/** Whether the field at `path` holds key material. */
export const isKeyPath = (path: readonly (string | number)[]): boolean => path[path.length - 1] === 'key';

/** Any value at all, and the wrong values above. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, withMap: true, withSet: true, withBoxedValues: true, withSparseArray: true, maxDepth: 3 }),
  fc.constantFrom(...WRONG_VALUES),
  fc.integer(),
  fc.bigInt(),
);

type Path = readonly (string | number)[];

/** Every path to a field of `v` (into plain objects and arrays; byte arrays are leaves), the object's own ones first. */
export function fieldPaths(v: unknown, prefix: Path = []): Path[] {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return [];
  const out: Path[] = [];
  const keys = Array.isArray(v) ? v.map((_, i) => i) : Reflect.ownKeys(v).filter((k): k is string => typeof k === 'string');
  for (const k of keys) {
    out.push([...prefix, k]);
    out.push(...fieldPaths((v as Record<string | number, unknown>)[k], [...prefix, k]));
  }
  return out;
}

/** Marks a field to delete rather than replace. */
export const ABSENT = Symbol('absent');

/** A copy of `v` with the field at `path` replaced by `value` (or deleted, for ABSENT); what it does not touch is shared. */
export function withField<T>(v: T, path: Path, value: unknown): T {
  if (path.length === 0) return value as T;
  const [k, ...rest] = path;
  const copy = (Array.isArray(v) ? [...v] : { ...(v as object) }) as Record<string | number, unknown>;
  // A decoded key extension is a key holder (its key is no own property, so the spread dropped it): carry it over.
  if (!Array.isArray(v) && v !== null && typeof v === 'object' && 'key' in v && !('key' in copy)) copy.key = (v as { key: unknown }).key;
  if (rest.length === 0 && value === ABSENT) delete copy[k];
  else copy[k] = withField((v as Record<string | number, unknown>)[k], rest, value);
  return copy as T;
}

/** `template` with one field (at any depth) replaced by any value or deleted, or with extra random fields. */
export function mutated<T>(templates: readonly T[]): fc.Arbitrary<T> {
  return fc.constantFrom(...templates).chain((t) => {
    const paths = fieldPaths(t);
    const value = (p: Path) => (isKeyPath(p) ? fc.oneof(anyValue, fc.constantFrom(...KEY_LOOKALIKES), fc.constant(ABSENT)) : fc.oneof(anyValue, fc.constant(ABSENT)));
    const replace = fc.constantFrom(...paths).chain((p) => value(p).map((x) => withField(t, p, x)));
    const extra = fc.dictionary(fc.string({ maxLength: 8 }), anyValue, { maxKeys: 3 }).map((d) => ({ ...d, ...t }) as T);
    return paths.length ? fc.oneof({ arbitrary: replace, weight: 4 }, { arbitrary: extra, weight: 1 }) : extra;
  });
}

/** What decode may be given: any value, random bytes, or one of `valid` with a byte changed. */
export function decodeInput(valid: readonly Buffer[], maxLength: number): fc.Arbitrary<unknown> {
  const flipped = fc.tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([b, at, v]) => {
    const c = Buffer.from(b);
    c[at % c.length] = v;
    return c;
  });
  return fc.oneof(anyValue, fc.uint8Array({ maxLength }), flipped);
}

/** A caller's `buf` and `offset` for encode: any values, or buffers of any size and offsets up to past their end. */
export function callerBuffer(maxLength: number): fc.Arbitrary<[unknown, unknown]> {
  const buf = fc.oneof(anyValue, fc.nat({ max: maxLength }).map((n) => Buffer.alloc(n)), fc.nat({ max: maxLength }).map((n) => new Uint8Array(n)));
  return fc.tuple(buf, fc.oneof(anyValue, fc.nat({ max: maxLength + 20 })));
}
