// Key material never shows in errors: keys passed in a wrong form (hex string, array, number) are described, not printed.

import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { EspTransform } from '../../src/esp';
import { pfkey } from '../../src/pfkey';
import { openSadb } from '../../src/open';
import { checkKey } from '../../src/sadb/algorithms';
import { rangeError, typeError } from '../../src/errors';

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
