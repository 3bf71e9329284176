// The native EspCipher (reused OpenSSL contexts from the addon), its availability, and createEspTransform() which picks it.

import { inspect } from 'node:util';
import { NattUnsupportedError } from '../errors';
import { oneOf, readOptions } from '../core/options';
import { loadNative, nativeStatus } from '../native/binding';
import type { NativeEspCipher as NativeContext, NativeEspCipherConstructor } from '../native/types';
import { EspTransform, type EspTransformOptions } from '../esp';
import { NodeEspCipher, type EspCipher, type EspCipherFactory, type EspCipherSpec } from '../esp/cipher';
import { encryptionSuite, integritySuite } from '../esp/suites';

/** Which cipher createEspTransform() uses: the native one where it can ('auto'), the native one or an error, node:crypto. */
export type EspCipherChoice = 'auto' | 'native' | 'node';

/** EspTransform's options, with the cipher chosen by name instead of by factory. */
export interface FastEspTransformOptions extends Omit<EspTransformOptions, 'cipherFactory'> {
  /** Default 'auto': native where the addon loads and the suite is served, else node:crypto. */
  cipher?: EspCipherChoice;
}

/** Whether the native cipher path can be used here, and if not, why. */
export interface NativeCipherStatus {
  available: boolean;
  /** Why not (addon missing or disabled, built without the cipher, self-test failed). */
  reason?: string;
  /** The OpenSSL the addon runs on (Node's own: `process.versions.openssl`). */
  openssl?: string;
}

/** The native cipher step for one SA: thin calls into a native context; keys live only there. */
export class NativeEspCipher implements EspCipher {
  readonly path = 'native' as const;
  readonly #ctx: NativeContext;
  readonly #what: string;

  constructor(ctor: NativeEspCipherConstructor, spec: EspCipherSpec) {
    const enc = spec.encryption;
    const integ = spec.integrity;
    this.#ctx = new ctor(
      enc.kind,
      enc.cipher,
      spec.key,
      spec.salt,
      enc.icvLength,
      integ ? integ.hash : '',
      integ ? spec.authKey : null,
      integ ? integ.icvLength : 0,
      spec.esn,
    );
    this.#what = `encryption: '${enc.algorithm}', integrity: '${integ?.algorithm ?? 'none'}', esn: ${spec.esn}`;
  }

  seal(buf: Uint8Array, off: number, len: number, seqHi: number): void {
    this.#ctx.seal(buf, off, len, seqHi);
  }

  open(buf: Uint8Array, off: number, len: number, seqHi: number, out: Uint8Array, outOff: number): boolean {
    return this.#ctx.open(buf, off, len, seqHi, out, outOff);
  }

  sealBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number {
    return this.#ctx.sealBatch(slab, desc, count, status);
  }

  openBatch(slab: Uint8Array, desc: Uint32Array, count: number, status: Uint8Array): number {
    return this.#ctx.openBatch(slab, desc, count, status);
  }

  dispose(): void {
    this.#ctx.free();
  }

  /** What util.inspect shows: the path and the suite, never a key. */
  [inspect.custom](): string {
    return `NativeEspCipher { ${this.#what} }`;
  }
}

let status: NativeCipherStatus | undefined;

/**
 * One packet per kind of suite sealed natively and by node:crypto with the same key, IV and sequence number; the
 * native path is used only if every pair is byte-equal and opens on the other side (a wrong OpenSSL ABI, say,
 * would show here once instead of corrupting traffic).
 */
function selfTest(ctor: NativeEspCipherConstructor): string | undefined {
  const bytes = (n: number, b: number) => Buffer.from(Array.from({ length: n }, (_, i) => (b + i * 7) & 0xff));
  const cases: Array<[string, Uint8Array, string?, Uint8Array?, boolean?]> = [
    ['aes-gcm-16', bytes(20, 1)],
    ['chacha20-poly1305', bytes(36, 2), undefined, undefined, true],
    ['aes-gmac', bytes(36, 3), undefined, undefined, true],
    ['aes-cbc', bytes(16, 4), 'hmac-sha2-256-128', bytes(32, 5), true],
    ['null', Buffer.alloc(0), 'hmac-sha1-96', bytes(20, 6)],
  ];
  for (const [alg, key, integAlg, authKey, esn] of cases) {
    const enc = encryptionSuite(alg, key);
    const integ = integAlg ? integritySuite(integAlg, authKey) : null;
    const spec: EspCipherSpec = {
      encryption: enc,
      integrity: integ,
      key: key.subarray(0, enc.keyLength),
      salt: key.subarray(enc.keyLength),
      authKey: authKey ?? null,
      esn: esn === true,
    };
    const ptLen = enc.kind === 'cbc' ? 48 : 46;
    const len = 8 + enc.ivLength + ptLen + enc.icvLength + (integ ? integ.icvLength : 0);
    const a = bytes(len, 9);
    const b = Buffer.from(a);
    let native: NativeEspCipher;
    try {
      native = new NativeEspCipher(ctor, spec);
    } catch (e) {
      return `the native ${alg} context could not be made: ${(e as Error).message}`;
    }
    const node = new NodeEspCipher(spec);
    try {
      native.seal(a, 0, len, 5);
      node.seal(b, 0, len, 5);
      if (!a.equals(b)) return `self-test: native ${alg} output differs from node:crypto's`;
      const c = Buffer.from(a);
      if (!native.open(a, 0, len, 5, a, 8 + enc.ivLength) || !node.open(c, 0, len, 5, c, 8 + enc.ivLength) || !a.equals(c)) {
        return `self-test: native ${alg} does not open node:crypto's packet`;
      }
    } catch (e) {
      return `self-test: native ${alg} failed: ${(e as Error).message}`;
    } finally {
      native.dispose();
    }
  }
  return undefined;
}

/** Whether the native cipher path is available (addon loaded, built with the cipher, self-test passed), or why not. */
export function nativeCipherStatus(): NativeCipherStatus {
  if (status) return { ...status };
  const addon = loadNative();
  if (!addon) status = { available: false, reason: `the native addon is not loaded: ${nativeStatus().reason}` };
  else if (typeof addon.EspCipher !== 'function') {
    status = { available: false, reason: 'the loaded addon has no EspCipher (an old prebuild? rebuild with `npm rebuild natt`)' };
  } else {
    const why = selfTest(addon.EspCipher);
    status = why ? { available: false, reason: why, openssl: addon.opensslVersion } : { available: true, openssl: addon.opensslVersion };
  }
  return { ...status };
}

/**
 * The native cipher factory: a NativeEspCipher for every suite EspTransform accepts, or null (node:crypto then)
 * when the native path is not available here or cannot make this suite's context.
 */
export const nativeEspCipherFactory: EspCipherFactory = (spec) => {
  if (!nativeCipherStatus().available) return null;
  try {
    return new NativeEspCipher(loadNative()!.EspCipher!, spec);
  } catch {
    return null;
  }
};

/** For cipher 'native': the native context or the reason it cannot be had. */
const strictNativeFactory: EspCipherFactory = (spec) => {
  const s = nativeCipherStatus();
  if (!s.available) throw new NattUnsupportedError(`cipher 'native' is not available here: ${s.reason}; use cipher 'auto' or 'node'`);
  try {
    return new NativeEspCipher(loadNative()!.EspCipher!, spec);
  } catch (e) {
    throw new NattUnsupportedError(`cipher 'native' cannot serve ${spec.encryption.algorithm}: ${(e as Error).message}`);
  }
};

const OPTION_NAMES = ['spi', 'encryption', 'integrity', 'esn', 'replayWindow', 'outboundSeq', 'allowNoIntegrity', 'cipher'] as const;

/**
 * An EspTransform whose cipher step is native where possible: `cipher: 'auto'` (default) takes the native context
 * when the addon loads (NATT_DISABLE_NATIVE=1 turns it off) and passes its self-test, else node:crypto; 'native'
 * insists (NattUnsupportedError if it cannot); 'node' never uses it. `transform.cipherPath` says which one runs.
 */
export function createEspTransform(opts: FastEspTransformOptions): EspTransform {
  const o = readOptions(opts, OPTION_NAMES);
  const choice = oneOf(o.cipher, 'cipher', ['auto', 'native', 'node'] as const, 'auto');
  const rest: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) if (name !== 'cipher' && o[name] !== undefined) rest[name] = o[name];
  if (choice !== 'node') rest.cipherFactory = choice === 'native' ? strictNativeFactory : nativeEspCipherFactory;
  return new EspTransform(rest as unknown as EspTransformOptions);
}
