// Hostile values for the boundary property test, and the one rule for how a public call may end.

import fc from 'fast-check';
import { inspect } from 'node:util';
import { NattError } from '../../src/errors';
import { ABSENT, KEY_BYTE, KEY_LOOKALIKES, WRONG_VALUES, anyValue } from '../lib/hostile';

export { ABSENT, KEY_BYTE };

/** What a Proxy trap or a getter of a hostile value throws: natt must turn it into an error naming the field. */
export class TrapError extends Error {
  constructor(what: string) {
    super(`hostile ${what} was called`);
  }
}

/**
 * What a caller's own function throws (a callback, a transport factory) or an aborted signal carries: natt may pass it
 * through as it is (it is the caller's), but nothing else.
 */
export class CallerError extends Error {
  constructor(what: string) {
    super(`the caller's ${what} threw`);
  }
}

/**
 * A value made only when the call is made: fast-check itself looks into the values it generates (`in`, getters), so
 * Proxies and throwing getters travel through it as a Lazy and become themselves in the argument list (materialize()).
 */
export class Lazy {
  constructor(
    readonly what: string,
    readonly make: () => unknown,
  ) {}
  [fc.toStringMethod](): string {
    return `<${this.what}>`;
  }
}

/** The value a Lazy stands for (anything else as it is). */
export const materialize = (v: unknown): unknown => (v instanceof Lazy ? v.make() : v);

/**
 * A Proxy whose traps throw: reading, listing, testing, setting, calling it. `getPrototypeOf` alone answers (with the
 * target's): `instanceof` asks it, and a Proxy that lies there defeats every type check in JavaScript, Node's own too.
 * typeof and Array.isArray see the target.
 */
function trapProxy<T extends object>(target: T): T {
  const trap = (name: string) => () => {
    // Calling it is calling the caller's own function, which threw: that may reach the caller as it is.
    if (name === 'apply' || name === 'construct') throw new CallerError(`Proxy (${name})`);
    throw new TrapError(`Proxy trap ${name}`);
  };
  const names = ['get', 'set', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'defineProperty', 'deleteProperty', 'apply', 'construct', 'isExtensible', 'preventExtensions', 'setPrototypeOf'];
  return new Proxy(target, Object.fromEntries(names.map((n) => [n, trap(n)])) as ProxyHandler<T>);
}

/** An object whose own property `name` is a getter that throws. */
function throwingGetter(name: string, base: object = {}): object {
  const o: Record<string, unknown> = { ...base };
  Object.defineProperty(o, name, {
    enumerable: true,
    configurable: true,
    get() {
      throw new TrapError(`getter ${name}`);
    },
  });
  return o;
}

/** Own properties with the names Object.prototype has (`constructor`, `__proto__`, ...): never options. */
const PROTO_SHAPED: readonly unknown[] = [
  JSON.parse('{"__proto__": {"src": "192.0.2.1"}}'),
  { constructor: 1 },
  { toString: 'x' },
  { valueOf: () => 1 },
  { hasOwnProperty: null },
  { then: (resolve: (v: unknown) => void) => resolve(1) }, // a thenable
  { [Symbol.toPrimitive]: () => { throw new TrapError('Symbol.toPrimitive'); } }, // prettier-ignore
  { toString: () => { throw new TrapError('toString'); }, valueOf: () => { throw new TrapError('valueOf'); } }, // prettier-ignore
  Object.create(null),
  Object.create({ src: '192.0.2.1', spi: 5, timeout: 1 }), // inherited values only
];

const LONG = 'x'.repeat(1 << 20);
const NUMBERS: readonly unknown[] = [-0, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER + 2, -(2 ** 53), 1e21, 2 ** 31, 2 ** 32 - 1, 65536, 0.1];
const BIGINTS: readonly unknown[] = [0n, 1n, -1n, 2n ** 32n, 2n ** 64n, 2n ** 64n - 1n, -(2n ** 63n), 10n ** 30n];
const STRINGS: readonly unknown[] = [
  LONG,
  'é'.repeat(5000),
  '\u0000',
  '\ud800',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'esp',
  'tunnel',
  'espinudp',
  'userland',
  'linux',
  '127.0.0.1',
  '::1',
  '::ffff:127.0.0.1',
  '0.0.0.0',
  '10.0.0.0/8',
  '256.1.1.1',
  '1.2.3.4/33',
  'fe80::1%lo',
  '0x10',
  '1e3',
  ' 1',
];
const OBJECTS: readonly unknown[] = [
  new ArrayBuffer(8),
  new SharedArrayBuffer(8),
  new Float64Array([NaN, -0]),
  new BigUint64Array(2),
  new Int8Array(40),
  Buffer.alloc(70_000),
  new Uint8Array(0),
  new Set([1]),
  new WeakMap(),
  Promise.resolve(1),
  /re/g,
  new AbortController(),
  new AbortController().signal,
  AbortSignal.abort(new CallerError('abort reason')),
  Object.freeze({}),
  [undefined],
  [null, null],
  new Array(5),
  Array.from({ length: 70_000 }, () => 0),
  new Uint8Array(65535),
];
const FUNCTIONS: readonly unknown[] = [
  () => undefined,
  function () {
    throw new CallerError('callback');
  },
  async () => {
    return 1; // an async callback (one that rejected would be the caller's own unhandled rejection)
  },
  class {},
  Symbol,
  Object.assign(() => 1, { send: 1 }),
];

/** Every kind of hostile value, for any field or argument (key lookalikes are only for key fields: keyValue). */
export const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: anyValue },
  { weight: 2, arbitrary: fc.constantFrom(...WRONG_VALUES, ...NUMBERS, ...BIGINTS, ...STRINGS) },
  { weight: 2, arbitrary: fc.constantFrom(...PROTO_SHAPED, ...OBJECTS, ...FUNCTIONS) },
  { weight: 1, arbitrary: fc.constantFrom('object', 'array', 'function').map((t) => new Lazy(`a Proxy of an ${t} whose traps throw`, () => trapProxy(t === 'object' ? {} : t === 'array' ? [] : () => 1))) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('src', 'spi', 'key', 'timeout', 'address', 'port', 'constructor', 'length', '0')
      .map((n) => new Lazy(`an object whose getter ${n} throws`, () => throwingGetter(n))),
  },
  { weight: 1, arbitrary: fc.constantFrom(Symbol('hostile'), Symbol.iterator, Symbol.for('natt')) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

/** What a key field may get: hostile values, strings and numbers that look like key material, or nothing. */
export const keyValue: fc.Arbitrary<unknown> = fc.oneof(hostile, fc.constantFrom(...KEY_LOOKALIKES), fc.constant(ABSENT));

/** A hostile value or the field deleted. */
export const fieldValue: fc.Arbitrary<unknown> = fc.oneof({ weight: 8, arbitrary: hostile }, { weight: 1, arbitrary: fc.constant(ABSENT) });

/** Key bytes: every key of a valid example is KEY_BYTE (0xc7) over and over. */
export const key = (n: number): Buffer => Buffer.alloc(n, KEY_BYTE);
const KEY_TRACE = /c7c7c7|c7 c7 c7|199, ?199, ?199|x8fHx8fH|\\xc7\\xc7/i;

/** Messages JavaScript or Node write when natt failed to check something itself. */
const INTERNAL =
  /Cannot read propert|Cannot set propert|Cannot convert|Cannot mix BigInt|is not iterable|is not a function|is not a constructor|Maximum call stack|Invalid array length|out of range\. It must be|outside the bounds|Offset is outside|Invalid typed array length|could not be cloned|Unexpected token|undefined is not|null is not|Invalid time value|toISOString|hostile .* was called|Reduce of empty/i;

export type Outcome = string;

/** How a surface's call ended, or the violation (thrown as an Error for fast-check to shrink). */
export function classifyError(e: unknown): Outcome {
  const what = e instanceof Error ? `${e.constructor.name}: ${e.message}` : `a thrown ${typeof e}: ${inspect(e, { depth: 0 })}`;
  if (e instanceof CallerError) return 'caller-error';
  // A class given where a function goes throws this when natt calls it: the caller's own function failed, as above.
  if (e instanceof TypeError && /^Class constructor .* cannot be invoked without 'new'$|^Class constructors cannot be invoked without 'new'$/.test(e.message)) return 'caller-error';
  if (typeof DOMException !== 'undefined' && e instanceof DOMException) throw new Error(`a DOMException reached the caller: ${what}`);
  if (e instanceof TrapError) throw new Error(`a hostile getter or Proxy trap's own error escaped (name the field instead): ${what}`);
  // An internal constructor (a class only its factory builds) refusing a caller's own `new`: src/core/internal.ts.
  if (e instanceof TypeError && /^use [\w.]+\(\)( or [\w.]+\(\))? to make an? \w+$/.test(e.message)) return 'internal-constructor';
  let label: string;
  if (e instanceof NattError) {
    if (typeof e.code !== 'string' || e.code === '') throw new Error(`a NattError without a code: ${what}`);
    label = `natt:${e.code}`;
  } else if (e instanceof TypeError || e instanceof RangeError) {
    if (!/^(unknown option "[^"]*"|option "[^"]+")/.test(e.message)) throw new Error(`a ${e.constructor.name} that names no field: ${what}`);
    label = e.constructor.name;
  } else {
    throw new Error(`not a NattError, TypeError or RangeError: ${what}`);
  }
  const err = e as Error;
  if (INTERNAL.test(err.message)) throw new Error(`an internal error inside an allowed one: ${what}`);
  for (let c: unknown = err, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
    if (KEY_TRACE.test(c.message) || KEY_TRACE.test(String(c.stack))) throw new Error(`key bytes in an error message or stack: ${what}`);
  }
  return label;
}
