// Key material never shows: errors describe wrong values by shape, and key holders read their bytes but never print them.

import { describe, expect, it } from 'vitest';
import { format, inspect } from 'node:util';
import { EspTransform } from '../../src/esp';
import { pfkey } from '../../src/pfkey';
import { openSadb } from '../../src/open';
import { checkKey } from '../../src/sadb/algorithms';
import { rangeError, typeError } from '../../src/errors';
import { KeyHolder, copyHolder, hideKey, hideSaKeys, isKeyHolder, withoutKeys } from '../../src/sadb/keys';
import { readOptions } from '../../src/core/options';
import type { EncryptionParams } from '../../src/sadb/types';

const SECRET = '5ec12e7' + 'ab'.repeat(16);
const forms: [string, unknown][] = [
  ['a hex string', SECRET],
  ['an array of bytes', [0x5e, 0xc1, 0x2e, 0x7a, 0xbb, 0xcc]],
  ['a number', 0x5ec12e7],
  ['an object holding the key', { hex: SECRET }],
];

/** Every way the error could be shown: message, stack, inspect. */
function shown(e: unknown): string {
  return `${(e as Error).message}\n${(e as Error).stack}\n${inspect(e, { depth: 10 })}`;
}

function expectNoSecret(e: unknown): void {
  expect(e).toBeInstanceOf(Error);
  const text = shown(e);
  expect(text).not.toContain('5ec12e7');
  expect(text).not.toMatch(/abab/);
  expect(text).not.toMatch(/5e, ?193|94, ?193|0x5e/i); // array contents, in either base
  expect(text).not.toContain(String(0x5ec12e7));
}

async function caught(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('key material never appears in errors', () => {
  it.each(forms)('typeError/rangeError on a key option describe %s by its shape only', (_what, key) => {
    expectNoSecret(typeError('encryption.key', 'a Uint8Array', key));
    expectNoSecret(rangeError('integrity.key', '20 bytes', key));
    expect(typeError('encryption.key', 'a Uint8Array', key).message).toMatch(/^option "encryption\.key" must be a Uint8Array, got an? /);
  });

  it('an SA object in an error shows its property names, not its values', () => {
    const e = typeError('sa', 'an SA object with dst', { encryption: { algorithm: 'aes-cbc', key: SECRET }, key: SECRET });
    expectNoSecret(e);
    expect(e.message).toContain('properties encryption, key');
  });

  it.each(forms)('checkKey (both kernel backends) refuses %s without printing it', (_what, key) => {
    expectNoSecret(captureSync(() => checkKey({ algorithm: 'aes-cbc', key }, 'encryption')));
  });

  it.each(forms)('the userland SADB refuses %s as a key without printing it', async (_what, key) => {
    const db = await openSadb({ backend: 'userland' });
    try {
      const e = await caught(() =>
        db.add({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100, encryption: { algorithm: 'aes-cbc', key: key as Uint8Array }, integrity: { algorithm: 'hmac-sha1-96', key: new Uint8Array(20) } }),
      );
      expectNoSecret(e);
    } finally {
      await db.close();
    }
  });

  it.each(forms)('EspTransform refuses %s as a key without printing it', (_what, key) => {
    expectNoSecret(captureSync(() => new EspTransform({ spi: 0x100, encryption: { algorithm: 'aes-gcm-16', key: key as Uint8Array } })));
  });

  it.each(forms)('pfkey.encode refuses %s in a key extension without printing it', (_what, key) => {
    const msg = { type: 'add', satype: 'esp', seq: 1, pid: 1, extensions: [{ name: 'keyEncrypt', key }] };
    expectNoSecret(captureSync(() => pfkey.encode(msg as never, 'linux')));
  });

  it.each(forms)('the xfrm SA conversion refuses %s as a key without printing it', async (_what, key) => {
    const { saToStruct } = await import('../../src/xfrm/convert');
    const sa = { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100, encryption: { algorithm: 'aes-gcm-16', key } };
    expectNoSecret(captureSync(() => saToStruct(sa as never)));
  });
});

function captureSync(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('key holders (src/sadb/keys.ts): readable as .key, never printed', () => {
  const k16 = (): Uint8Array => new Uint8Array(16).fill(0x5e);
  const MODES = [{}, { showHidden: true }, { getters: true }, { customInspect: false }, { showHidden: true, getters: true, customInspect: false, depth: Infinity, showProxy: true }];

  it('a holder reads its bytes, shows `key: [hidden N bytes]` (or no key at all), and JSON shows the length only', () => {
    const h = new KeyHolder({ algorithm: 'aes-cbc' }, k16()) as unknown as EncryptionParams;
    expect(h.key).toEqual(k16());
    expect(h.algorithm).toBe('aes-cbc');
    expect(isKeyHolder(h)).toBe(true);
    expect(inspect(h)).toBe("{ algorithm: 'aes-cbc', key: [hidden 16 bytes] }");
    for (const opts of MODES) expect(inspect({ sa: { encryption: h } }, opts)).not.toMatch(/94|5e/);
    expect(format('%o %O %j %s', h, h, h, h)).not.toMatch(/94|5e/);
    expect(JSON.stringify(h)).toBe('{"algorithm":"aes-cbc","key":"[hidden 16 bytes]"}');
    expect(String(h)).toBe('[object Object]');
  });

  it('copies made by structuredClone or a spread drop the key (only reading .key gets it out); natt copies keep it', () => {
    const h = new KeyHolder({ algorithm: 'aes-cbc' }, k16()) as unknown as EncryptionParams;
    expect(structuredClone(h)).toEqual({ algorithm: 'aes-cbc' });
    expect({ ...h }).toEqual({ algorithm: 'aes-cbc' });
    const c = copyHolder(h, true);
    expect(c.key).toEqual(k16());
    expect(c.key).not.toBe(h.key);
    expect(copyHolder(h, false).key).toHaveLength(0);
  });

  it('key can be set to another Uint8Array; anything else is a TypeError that describes, not prints, it', () => {
    const h = new KeyHolder({ algorithm: 'aes-cbc' }, k16()) as unknown as EncryptionParams;
    h.key = new Uint8Array(24);
    expect(h.key).toHaveLength(24);
    const e = captureSync(() => void ((h as { key: unknown }).key = SECRET));
    expect(e).toBeInstanceOf(TypeError);
    expectNoSecret(e);
  });

  it('hideKey changes the object in place (same object, no own key, .key still reads); a frozen one gives a new holder', () => {
    const p = { algorithm: 'aes-cbc' as const, key: k16() };
    expect(hideKey(p)).toBe(p);
    expect(Object.keys(p)).toEqual(['algorithm']);
    expect(Object.getOwnPropertyNames(p)).toEqual(['algorithm']);
    expect(p.key).toEqual(k16());
    expect(hideKey(p)).toBe(p);
    const frozen = Object.freeze({ algorithm: 'aes-cbc' as const, key: k16() });
    const h = hideKey(frozen);
    expect(h).not.toBe(frozen);
    expect(h.key).toEqual(k16());
    expect(inspect(h, { showHidden: true })).not.toMatch(/94/);
  });

  it('hideSaKeys makes both params holders; withoutKeys copies with 0-byte keys', () => {
    const sa = hideSaKeys({ src: '192.0.2.1', dst: '192.0.2.2', spi: 1, encryption: { algorithm: 'aes-cbc', key: k16() }, integrity: { algorithm: 'hmac-sha1-96', key: new Uint8Array(20).fill(0x5e) } });
    expect(isKeyHolder(sa.encryption)).toBe(true);
    expect(isKeyHolder(sa.integrity)).toBe(true);
    const bare = withoutKeys(sa);
    expect(bare.encryption?.key).toHaveLength(0);
    expect(bare.integrity?.algorithm).toBe('hmac-sha1-96');
    expect(sa.encryption?.key).toEqual(k16());
  });

  it('only natt makes holders: an object with KeyHolder.prototype but no entry reads no key and is no holder', () => {
    const fake = Object.create(KeyHolder.prototype) as { key: Uint8Array };
    expect(isKeyHolder(fake)).toBe(false);
    expect(fake.key).toHaveLength(0);
    expect(isKeyHolder({ algorithm: 'aes-cbc', key: k16() })).toBe(false);
  });

  it('an SA from get() goes back into add()/update() with its keys (the boundary reads a holder’s key)', async () => {
    const a = await openSadb({ backend: 'userland' });
    const b = await openSadb({ backend: 'userland' });
    try {
      await a.add({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100, encryption: { algorithm: 'aes-cbc', key: k16() }, integrity: { algorithm: 'hmac-sha1-96', key: new Uint8Array(20) } });
      const sa = await a.get({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x100 });
      await b.add(sa);
      await a.update(sa);
      expect((await b.get(sa)).encryption?.key).toEqual(k16());
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('errors describe every value by its shape, whatever the field', () => {
  it('strings, arrays, bytes and objects by shape in any field; numbers, booleans, null and undefined as they are', () => {
    expect(typeError('src', 'an address', SECRET).message).toBe(`option "src" must be an address, got a string of ${SECRET.length} characters`);
    expect(typeError('mode', 'x', '').message).toMatch(/got an empty string$/);
    expect(typeError('spi', 'x', [1, 2]).message).toMatch(/got an Array of 2 items$/);
    expect(typeError('spi', 'x', Buffer.alloc(3)).message).toMatch(/got a Buffer of 3 bytes$/);
    expect(typeError('spi', 'x', new ArrayBuffer(5)).message).toMatch(/got an ArrayBuffer of 5 bytes$/);
    expect(typeError('spi', 'x', new Map([[1, 2]])).message).toMatch(/got a Map of 1 entries$/);
    expect(rangeError('spi', 'x', 70000).message).toMatch(/got 70000$/);
    expect(rangeError('seq', 'x', -1n).message).toMatch(/got -1n$/);
    expect(rangeError('encryption.key', 'x', 5n).message).toMatch(/got a bigint$/);
    expect(typeError('esn', 'x', null).message).toMatch(/got null$/);
    expect(typeError('esn', 'x', Symbol('k')).message).toMatch(/got a symbol$/);
    expect(typeError('esn', 'x', () => SECRET).message).toMatch(/got a function$/);
  });

  it('property and class names that could be key text are described by their length', () => {
    const e = typeError('natt', 'x', { type: 1, [SECRET]: 1 });
    expectNoSecret(e);
    expect(e.message).toContain(`properties type, <a name of ${SECRET.length} characters>`);
    class Sneaky5ec12e7abababababababab {}
    expect(typeError('natt', 'x', new Sneaky5ec12e7abababababababab()).message).toMatch(/got an object with no properties$/);
    const unknown = captureSync(() => readOptions({ [SECRET]: 1 }, ['timeout']));
    expectNoSecret(unknown);
    expect((unknown as Error).message).toContain(`unknown option "<a name of ${SECRET.length} characters>"`);
  });
});
