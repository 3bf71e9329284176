import { describe, expect, it } from 'vitest';
import {
  boolOption,
  callbackOption,
  durationMs,
  durationSeconds,
  intOption,
  oneOf,
  readCallOptions,
  readOptions,
  signalOption,
  stringOption,
} from '../../src/core/options';

describe('readOptions: own properties only, unknown names refused', () => {
  it('undefined is an empty object; non-objects are TypeErrors naming the options', () => {
    expect(Object.keys(readOptions(undefined, ['a']))).toEqual([]);
    for (const bad of [null, 5, 'x', [], () => 1, true]) expect(() => readOptions(bad, ['a'], 'natt')).toThrow(/option "natt" must be an object/);
  });
  it('an unknown name is a TypeError that names it and lists the known ones', () => {
    expect(() => readOptions({ adress: '127.0.0.1' }, ['address', 'port'])).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/unknown option "adress": options takes address, port/) }),
    );
    expect(() => readOptions({ sprot: 1 }, ['sport'], 'natt')).toThrow(/unknown option "natt.sprot"/);
  });
  it('never reads a property from the prototype chain', () => {
    const proto = { replayWindow: 0, esn: true };
    const o = Object.create(proto) as Record<string, unknown>;
    o.spi = 5;
    const r = readOptions(o, ['spi', 'replayWindow', 'esn']);
    expect(r.spi).toBe(5);
    expect(r.replayWindow).toBeUndefined();
    expect(r.esn).toBeUndefined();
    (Object.prototype as Record<string, unknown>).transport = () => 1;
    try {
      expect(readOptions({}, ['transport']).transport).toBeUndefined();
    } finally {
      delete (Object.prototype as Record<string, unknown>).transport;
    }
  });
  it('the result has no prototype, undefined values count as absent, symbols are ignored, a throwing getter is a TypeError', () => {
    const r = readOptions({ a: undefined, b: 1, [Symbol('x')]: 2 }, ['a', 'b']);
    expect(Object.getPrototypeOf(r)).toBeNull();
    expect(Object.keys(r)).toEqual(['b']);
    const g = Object.defineProperty({}, 'a', { get() { throw new Error('boom'); }, enumerable: true });
    expect(() => readOptions(g, ['a'])).toThrow(TypeError);
    const p = new Proxy({}, { ownKeys() { throw new Error('trap'); } });
    expect(() => readOptions(p, ['a'])).toThrow(TypeError);
  });
});

describe('value checks name the field', () => {
  it('intOption', () => {
    expect(intOption(undefined, 'reqid', 0, 10, 3)).toBe(3);
    expect(intOption(7, 'reqid', 0, 10)).toBe(7);
    expect(() => intOption('7', 'reqid', 0, 10)).toThrow(expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/"reqid"/) }));
    for (const bad of [-5, NaN, 1.5, 2 ** 40, Infinity]) expect(() => intOption(bad, 'reqid', 0, 10)).toThrow(RangeError);
    expect(() => intOption(undefined, 'reqid', 0, 10)).toThrow(TypeError);
  });
  it('boolOption refuses truthy and falsy non-booleans', () => {
    expect(boolOption(undefined, 'esn', false)).toBe(false);
    for (const bad of [0, 1, 'false', null, {}]) expect(() => boolOption(bad, 'esn')).toThrow(/option "esn" must be true or false/);
  });
  it('oneOf: wrong type TypeError, wrong value RangeError, and prototype names are not values', () => {
    expect(oneOf(undefined, 'direction', ['in', 'out'] as const, 'in')).toBe('in');
    expect(() => oneOf('constructor', 'direction', ['in', 'out'] as const)).toThrow(RangeError);
    expect(() => oneOf(5, 'direction', ['in', 'out'] as const)).toThrow(TypeError);
  });
  it('stringOption refuses the empty string unless allowed', () => {
    expect(() => stringOption('', 'address')).toThrow(RangeError);
    expect(stringOption('', 'address', { allowEmpty: true })).toBe('');
  });
  it('callbackOption and signalOption', () => {
    expect(callbackOption(undefined, 'cb')).toBeUndefined();
    expect(() => callbackOption(1, 'cb')).toThrow(/option "cb" must be a function/);
    const ac = new AbortController();
    expect(signalOption(ac.signal)).toBe(ac.signal);
    for (const bad of [{}, ac, { aborted: false, addEventListener() {} }]) expect(() => signalOption(bad)).toThrow(/option "signal" must be an AbortSignal/);
  });
  it('durations: past 2^31 ms accepted; NaN, strings, negatives, Infinity refused', () => {
    expect(durationMs(2 ** 32, 'timeout', 1)).toBe(2 ** 32);
    expect(durationSeconds(30 * 86400, 'keepaliveSeconds')).toBe(30 * 86400);
    for (const bad of [NaN, -1, Infinity, 2 ** 60]) expect(() => durationMs(bad, 'timeout')).toThrow(RangeError);
    expect(() => durationMs('30s', 'timeout')).toThrow(TypeError);
    expect(() => durationSeconds(NaN, 'lifetime.hard.addSeconds')).toThrow(/lifetime.hard.addSeconds/);
  });
  it('readCallOptions', () => {
    expect(readCallOptions(undefined, 5000)).toEqual({ timeout: 5000, signal: undefined });
    expect(() => readCallOptions({ timeout: NaN }, 5000)).toThrow(/"timeout"/);
    expect(() => readCallOptions({ signal: {} }, 5000)).toThrow(/"signal"/);
    expect(() => readCallOptions({ timout: 1 }, 5000)).toThrow(/unknown option "timout"/);
  });
});
