// The API boundary under hostile values: every row of surfaces.ts (every public function, constructor, method,
// namespace member and constant of src/index.ts), every argument and every option field, mutated one at a time, and
// whole random argument lists. A call may only succeed, fail with a NattError that has a code, or throw a
// TypeError/RangeError naming the field; never an internal error, a DOMException, a hang, or a key byte in a message.
// NATT_FUZZ_RUNS sets the inputs for the whole file (spread over the rows); npm test runs a few per row.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as api from '../../src/index';
import { UserlandSadb } from '../../src/userland/sadb';
import { UserlandEngine } from '../../src/userland/engine';
import { PfKey } from '../../src/pfkey/client';
import { Xfrm } from '../../src/xfrm/client';
import { fuzzRuns } from '../lib/hostile';
import { OutcomeCounts, reportFuzz } from '../lib/fuzz-report';
import { release, releaseTunFixtures, shared, openShared } from './fixtures';
import { SURFACES, VALUES, releaseCaptureFixtures, type Surface } from './surfaces';
import { ABSENT, classifyError, fieldValue, hostile, keyValue, materialize, type Outcome } from './values';

/** Inputs per row: NATT_FUZZ_RUNS over the whole file, else a few (npm test stays near 20 s on 2 loaded cores). */
const DEFAULT_PER_ROW = 40;
const PER_ROW = process.env.NATT_FUZZ_RUNS ? Math.max(1, Math.ceil(fuzzRuns() / SURFACES.length)) : DEFAULT_PER_ROW;
const SEED = Number(process.env.NATT_FUZZ_SEED ?? 0xb0da);
/** A call (or its promise) that takes longer than this hangs. */
const HANG_MS = 3000;
/** NATT_BOUNDARY_KNOWN=run: run the skipped cases of known findings too (to see whether their branch fixed them). */
const RUN_KNOWN = process.env.NATT_BOUNDARY_KNOWN === 'run';

/** What an argument builder returns for an input a known finding covers: not run. */
const SKIP = Symbol('skip');

type Path = readonly (string | number)[];

/** Paths into plain objects and arrays only (a fixture such as a database or a socket is a leaf), the arguments first. */
function fieldPaths(v: unknown, prefix: Path = []): Path[] {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return [];
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return [];
  const keys = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
  const out: Path[] = [];
  for (const k of keys) {
    out.push([...prefix, k]);
    out.push(...fieldPaths((v as Record<string | number, unknown>)[k], [...prefix, k]));
  }
  return out;
}

/** Paths whose value is a plain object (where extra option names can be added). */
const objectPaths = (args: unknown[], paths: Path[]): Path[] =>
  paths.filter((p) => {
    const v = get(args, p);
    return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
  });

function get(v: unknown, p: Path): unknown {
  for (const k of p) v = (v as Record<string | number, unknown>)[k];
  return v;
}

/** A copy of a plain object, its own properties as they are (getters stay getters, keys stay non-enumerable) but writable. */
function copyOf(v: object): Record<string | number, unknown> {
  const ds = Object.getOwnPropertyDescriptors(v);
  for (const d of Object.values(ds)) {
    d.configurable = true;
    if ('value' in d) d.writable = true;
  }
  return Object.defineProperties({}, ds);
}

/** A copy of `v` with the field at `path` replaced (or deleted, for ABSENT), keeping non-enumerable keys. */
function withField(v: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const [k, ...rest] = path;
  const copy = (Array.isArray(v) ? [...v] : copyOf(v as object)) as Record<string | number, unknown>;
  if (rest.length === 0 && value === ABSENT) delete copy[k];
  else copy[k] = withField((v as Record<string | number, unknown>)[k], rest, value);
  return copy;
}

/** The object at `path` with extra own properties (defined, so `__proto__` is an own key, not the prototype). */
function withExtra(args: unknown[], path: Path, extra: [string, unknown][]): unknown[] {
  const copy = copyOf(get(args, path) as object);
  for (const [k, x] of extra) Object.defineProperty(copy, k, { value: x, enumerable: true, writable: true, configurable: true });
  return withField(args, path, copy) as unknown[];
}

type Plan =
  | { kind: 'field'; path: number; value: unknown }
  | { kind: 'extra'; path: number; extra: [string, unknown][] }
  | { kind: 'list'; args: unknown[] }
  | { kind: 'tail'; keep: number; more: unknown[] };

function planArb(paths: Path[], objects: Path[], argc: number): fc.Arbitrary<Plan> {
  const isKey = (p: Path) => p[p.length - 1] === 'key';
  const field = fc
    .nat({ max: Math.max(0, paths.length - 1) })
    .chain((i) => (isKey(paths[i]) ? keyValue : fieldValue).map((value): Plan => ({ kind: 'field', path: i, value })));
  const name = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'then', 'length'));
  const extra = fc
    .tuple(fc.nat({ max: Math.max(0, objects.length - 1) }), fc.array(fc.tuple(name, hostile), { minLength: 1, maxLength: 3 }))
    .map(([i, extra]): Plan => ({ kind: 'extra', path: i, extra }));
  const list = fc.array(hostile, { maxLength: 5 }).map((args): Plan => ({ kind: 'list', args }));
  const tail = fc.tuple(fc.nat({ max: argc }), fc.array(hostile, { maxLength: 3 })).map(([keep, more]): Plan => ({ kind: 'tail', keep, more }));
  const arbs: { arbitrary: fc.Arbitrary<Plan>; weight: number }[] = [
    { arbitrary: list, weight: 2 },
    { arbitrary: tail, weight: 1 },
  ];
  if (paths.length) arbs.push({ arbitrary: field, weight: 6 });
  if (objects.length) arbs.push({ arbitrary: extra, weight: 1 });
  return fc.oneof(...arbs);
}

function applyPlan(plan: Plan, args: unknown[], paths: Path[], objects: Path[]): unknown[] {
  switch (plan.kind) {
    case 'field':
      return withField(args, paths[plan.path], materialize(plan.value)) as unknown[];
    case 'extra':
      return withExtra(args, objects[plan.path], plan.extra.map(([k, v]) => [k, materialize(v)]));
    case 'list':
      return plan.args.map(materialize);
    case 'tail':
      return [...args.slice(0, plan.keep), ...plan.more.map(materialize)];
  }
}

/** Run one call of `row` with `args` on a fresh receiver; how it ended, or throws the violation. */
async function attempt(row: Surface, args: (r: unknown) => unknown[] | typeof SKIP): Promise<Outcome> {
  const r = row.make ? await row.make() : undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    const a = args(r);
    if (a === SKIP) return 'skipped-known';
    const t0 = performance.now();
    let p: unknown;
    try {
      p = row.run(r, a);
    } catch (e) {
      return classifyError(e);
    }
    const ms = performance.now() - t0;
    if (ms > HANG_MS) throw new Error(`a synchronous call took ${ms.toFixed(0)} ms`);
    if (!(p instanceof Promise)) return 'ok';
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${HANG_MS} ms (a hang)`)), HANG_MS);
    });
    try {
      await Promise.race([p, hang]);
      return 'ok';
    } catch (e) {
      if (e instanceof Error && e.message.endsWith('(a hang)')) throw e;
      return classifyError(e);
    }
  } finally {
    clearTimeout(timer);
    if (row.dispose) await row.dispose(r as never);
  }
}

/** Is this input one a known finding (another branch's) covers? */
function knownCase(row: Surface, args: unknown[]): string | undefined {
  if (RUN_KNOWN) return undefined;
  for (const k of row.known ?? []) {
    let hit: boolean;
    try {
      hit = k.skip(args);
    } catch {
      hit = true; // a value the predicate cannot even look at is hostile: the known finding covers it
    }
    if (hit) return k.reason;
  }
  return undefined;
}

const knownTitle = (known?: { reason: string }[]): string => (known?.length && !RUN_KNOWN ? ` (skips the cases of a known finding: ${known.map((k) => k.reason).join('; ')})` : '');

const totals = new OutcomeCounts();

beforeAll(async () => {
  await openShared();
}, 30_000);

afterAll(async () => {
  await releaseTunFixtures();
  await releaseCaptureFixtures();
  await release(shared.socket);
  shared.socket = null;
  reportFuzz('boundary (test/boundary)', totals.counts, { rows: SURFACES.length, perRow: PER_ROW, seed: SEED });
});

// ---- the table covers the whole public surface ----

/** The row names src/index.ts requires: each function, constructor, method, static method, namespace member, constant. */
function requiredRows(): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(api)) {
    if (typeof v === 'function') {
      const isClass = /^class\b/.test(Function.prototype.toString.call(v));
      if (!isClass) {
        out.push(name);
        continue;
      }
      out.push(`new ${name}`);
      for (const m of Object.getOwnPropertyNames(v.prototype)) {
        const d = Object.getOwnPropertyDescriptor(v.prototype, m)!;
        if (m !== 'constructor' && typeof d.value === 'function') out.push(`${name}#${m}`);
      }
      for (const m of Object.getOwnPropertyNames(v)) {
        const d = Object.getOwnPropertyDescriptor(v, m)!;
        if (!['length', 'name', 'prototype'].includes(m) && typeof d.value === 'function') out.push(`${name}.${m}`);
      }
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      // A namespace: each member; and each function inside a table it holds (xfrm.constants.messageTypeName).
      for (const [m, x] of Object.entries(v)) {
        out.push(`${name}.${m}`);
        if (x !== null && typeof x === 'object') for (const [f, y] of Object.entries(x)) if (typeof y === 'function') out.push(`${name}.${m}.${f}`);
      }
    } else out.push(name);
  }
  return out.sort();
}

describe('the boundary table', () => {
  it('has a row for every runtime export of src/index.ts, and every method and member of each (add one: surfaces.ts)', () => {
    const have = new Set([...SURFACES.map((s) => s.name), ...VALUES.map((v) => v.name)]);
    const missing = requiredRows().filter((n) => !have.has(n));
    expect(missing, 'public surfaces without a boundary row').toEqual([]);
  });

  it('has no row for a surface that does not exist, and no row twice', () => {
    const required = new Set(requiredRows());
    const names = [...SURFACES.map((s) => s.name), ...VALUES.map((v) => v.name)];
    expect(names.filter((n) => !required.has(n)), 'rows for nothing').toEqual([]);
    expect(names.filter((n, i) => names.indexOf(n) !== i), 'rows twice').toEqual([]);
  });
});

// ---- constants: frozen all the way down ----

/** Objects reachable from `v` that are not frozen (functions are rows of their own, not data). */
function unfrozen(v: unknown, path: string, seen = new Set<unknown>()): string[] {
  if (v === null || typeof v !== 'object' || seen.has(v)) return [];
  seen.add(v);
  const out = Object.isFrozen(v) ? [] : [path];
  for (const k of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k)!;
    if ('value' in d) out.push(...unfrozen(d.value, `${path}.${String(k)}`, seen));
  }
  return out;
}

describe('constants', () => {
  for (const v of VALUES) {
    const skip = v.known?.length && !RUN_KNOWN;
    it.skipIf(skip)(`${v.name} is frozen all the way down (the library reads it)${knownTitle(v.known)}`, () => {
      expect(unfrozen(v.value(), v.name)).toEqual([]);
    });
  }
});

// ---- every surface under hostile input ----

describe(`every public surface under hostile values (${PER_ROW} inputs per row, seed ${SEED})`, () => {
  for (const row of SURFACES) {
    describe(`${row.name}${knownTitle(row.known)}`, () => {
      it(`the valid example ${row.valid === 'error' ? 'ends in an allowed error or succeeds' : 'succeeds'}`, async () => {
        const out = await attempt(row, (r) => row.args(r));
        if (row.valid !== 'error') expect(out).toBe('ok');
      });

      if (row.options) {
        const { at, names } = row.options;
        const skip = !RUN_KNOWN && (row.known ?? []).some((k) => k.options);
        it.skipIf(skip)(`options (argument ${at}): an unknown name is refused; inherited values and a polluted Object.prototype are never read`, async () => {
          const unknown = await attempt(row, (r) => withExtra(row.args(r), [at], [['notAnOption', 1]]));
          expect(unknown).toBe('TypeError');
          const empty = await attempt(row, (r) => withField(row.args(r), [at], {}) as unknown[]);
          const inherited = await attempt(row, (r) => withField(row.args(r), [at], Object.create(row.args(r)[at] as object)) as unknown[]);
          expect(inherited, 'options inherited from a prototype are read').toBe(empty);
          const proto = Object.prototype as Record<string, unknown>;
          for (const name of names) {
            proto[name] = Symbol('polluted');
            let polluted: Outcome;
            try {
              polluted = await attempt(row, (r) => withField(row.args(r), [at, name], ABSENT) as unknown[]);
            } finally {
              delete proto[name];
            }
            const clean = await attempt(row, (r) => withField(row.args(r), [at, name], ABSENT) as unknown[]);
            expect(polluted, `Object.prototype.${name} is read`).toBe(clean);
          }
        });
      }

      it(`hostile arguments and fields: only success, a NattError with a code, or a TypeError/RangeError naming the field`, async () => {
        const sample = await (async () => {
          const r = row.make ? await row.make() : undefined;
          try {
            return row.args(r);
          } finally {
            if (row.dispose) await row.dispose(r as never);
          }
        })();
        const paths = fieldPaths(sample);
        const objects = objectPaths(sample, paths);
        const counts = new OutcomeCounts();
        await fc.assert(
          fc.asyncProperty(planArb(paths, objects, sample.length), async (plan) => {
            const out = await attempt(row, (r) => {
              const a = applyPlan(plan, row.args(r), paths, objects);
              return knownCase(row, a) ? SKIP : a;
            });
            counts.add(out);
          }),
          { numRuns: PER_ROW, seed: SEED ^ hash(row.name), endOnFailure: true, includeErrorInReport: true },
        );
        for (const [k, n] of Object.entries(counts.counts)) totals.add(k, n);
      }, 120_000);
    });
  }
});

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// ---- each finding of the property test, pinned (the random inputs above need not hit it again) ----

describe('what the property test found, pinned', () => {
  const proxy = <T extends object>(t: T): T =>
    new Proxy(t, {
      get() {
        throw new Error('trap');
      },
      ownKeys() {
        throw new Error('trap');
      },
      getOwnPropertyDescriptor() {
        throw new Error('trap');
      },
    });
  const named = (f: () => unknown, field: RegExp) => expect(f).toThrow(field);

  it('errors: constructors check their arguments; errnoName/errnoNumber refuse what is not an errno', () => {
    named(() => new api.NattError(Symbol() as never, 'x'), /option "code"/);
    named(() => new api.NattError('E', proxy(() => 1) as never), /option "message"/);
    named(() => new api.NattError('E', 'x', proxy({}) as never), /option "options"/);
    named(() => new api.NattSystemError(1, 'bind', undefined, proxy([]) as never), /option "extra"/);
    named(() => new api.NattTimeoutError('x', Symbol() as never), /option "ms"/);
    named(() => new api.PfKeyDecodeError(Symbol() as never, 'r'), /option "offset"/);
    named(() => new api.XfrmDecodeError(0, 5 as never), /option "rule"/);
    named(() => new api.SetkeyParseError(null as never, 'r'), /option "at"/);
    named(() => new api.SetkeyUnsupportedError([] as never, 'userland'), /option "features"/);
    named(() => api.errnoName(Symbol() as never), /option "errno"/);
    expect(api.errnoNumber('constructor')).toBeUndefined();
    expect(api.errnoNumber('toString')).toBeUndefined();
  });

  it('a hostile value in an error message is described, never read (an array Proxy, a getter)', async () => {
    const db = new UserlandSadb();
    await expect(db.get(proxy([]) as never)).rejects.toThrow(/option "sa" must be .*got an object that cannot be inspected/);
    await expect(db.spdAdd({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'out', action: 'ipsec', templates: proxy([]) as never })).rejects.toThrow(/option "templates"/);
    await db.close();
  });

  it('codecs: findExt, findAttr, messageName, messageTypeName, attributeName check their arguments; a throwing getter is named', () => {
    named(() => api.pfkey.findExt(null as never, 'sa'), /option "msg"/);
    named(() => api.xfrm.findAttr(5 as never, 'encap'), /option "attrs"/);
    expect(api.pfkey.messageName(3)).toBe('SADB_ADD');
    named(() => api.pfkey.messageName('constructor' as never), /option "type"/);
    named(() => api.xfrm.constants.messageTypeName(Symbol() as never), /option "type"/);
    named(() => api.xfrm.constants.attributeName('constructor' as never), /option "type"/);
    named(() => api.pfkey.encode(proxy({}) as never, 'linux'), /option "msg"/);
    named(() => api.xfrm.encodingLength(proxy({}) as never), /option "messages"/);
    named(() => api.pfkey.decode(Buffer.alloc(16), proxy({}) as never), /option "dialect"/);
  });

  it('ReplayWindow, probeXfrm, new Xfrm: own options only, unknown names refused, arguments checked', async () => {
    named(() => new api.ReplayWindow({ size: 64, sise: 1 } as never), /unknown option "sise"/);
    expect(new api.ReplayWindow(Object.create({ size: 0 })).size).toBe(64);
    named(() => new api.ReplayWindow().check(Symbol() as never), /option "seqLow"/);
    named(() => new api.ReplayWindow().commit(1, Symbol() as never), /option "seqHigh"/);
    await expect(api.probeXfrm({ askKernel: 'no' } as never)).rejects.toThrow(/option "askKernel"/);
    named(() => Reflect.construct(Xfrm, [{ revealKeys: 1 }]), /option "revealKeys"/);
  });

  it('a transport factory must build a socket; UserlandSadb engine hooks and formatStats check what they get', async () => {
    named(() => new PfKey({ dialect: 'linux', transport: () => 1 as never }), /option "transport"/);
    const db = new UserlandSadb();
    named(() => db.addStatsSource(5 as never), /option "source"/);
    named(() => db.acquire({ id: 9 } as never, '10.0.0.1', '10.0.0.2'), /option "policy"/);
    named(() => db.newMapping({} as never, '10.0.0.1', 4500), /option "sa"/);
    named(() => api.formatStats(null as never), /option "stats"/);
    named(() => api.formatStats({ InError: 'x' } as never), /option "stats.InError"/);
    expect(api.formatStats({ InError: 2 } as never)).toMatch(/^XfrmInError +2$/m);
    await expect(db.spdGet({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'constructor' as never })).rejects.toThrow(/option "direction"/);
    await db.close();
    const [t] = (await import('../lib/memory-transport')).memoryPair({ address: '192.0.2.1', port: 1 }, { address: '192.0.2.2', port: 1 });
    named(() => new UserlandEngine({ socket: proxy({}) as never }), /option "socket"/);
    const e = new UserlandEngine({ socket: t, keepaliveSeconds: 0 });
    named(() => e.receive(Buffer.alloc(20), proxy({}) as never), /option "rinfo"/);
    e.close();
  });

  it('setkey: formatters and applySetkey check their items; parseSetkey never reads a polluted prototype', async () => {
    named(() => api.formatSadDump([{ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, current: { addTime: Symbol() } }] as never), /option "sas\[0\]"/);
    named(() => api.formatSpdDump([{ selector: { src: new Map(), dst: '10.0.0.0/8' } }] as never), /option "policies\[0\]"/);
    named(() => api.toSetkey([], [{ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'out', action: 'ipsec', templates: 5n }] as never), /option "policies\[0\]"/);
    await expect(api.applySetkey([{ op: 'flush', at: null }] as never, new UserlandSadb())).rejects.toThrow(/option "ops\[0\]/);
    await expect(api.applySetkey(proxy([]) as never, new UserlandSadb())).rejects.toThrow(/option "ops"/);
    const proto = Object.prototype as Record<string, unknown>;
    proto.family = Symbol('polluted');
    try {
      expect(api.parseSetkey('add 192.0.2.1 192.0.2.2 esp 0x1000 -E null -A hmac-sha1 "aaaaaaaaaaaaaaaaaaaa" ;', {})).toHaveLength(1);
    } finally {
      delete proto.family;
    }
  });

  it('natd: a Proxy for the hash list is a TypeError naming it', () => {
    const o = { local: { address: '192.0.2.1', port: 500 }, remote: { address: '192.0.2.2', port: 500 }, spiI: Buffer.alloc(8, 1), spiR: 0n, destinationHash: Buffer.alloc(20) };
    named(() => api.natd.detect({ ...o, sourceHashes: proxy([]) as never }), /option "sourceHashes"/);
  });
});
