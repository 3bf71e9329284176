// The native cipher itself: Node's own OpenSSL, no key in sight, free/finalizer/workers, layout checks, and how it is chosen.

import { spawnSync } from 'node:child_process';
import { inspect } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EspTransform, EspBatch, ESP_DESC_WORDS } from '../../src/esp';
import { NodeEspCipher, ESP_CIPHER_BAD_LAYOUT } from '../../src/esp/cipher';
import { NativeEspCipher, createEspTransform, nativeCipherStatus, nativeEspCipherFactory } from '../../src/fastpath';
import { UserlandSadb } from '../../src/userland';
import { loadNative, nativeStatus } from '../../src/native/binding';
import { NattUnsupportedError } from '../../src/errors';
import { ALL_SUITES, specFor } from './suites';

const status = nativeCipherStatus();
const disabled = process.env.NATT_DISABLE_NATIVE === '1';
const skipWhy = status.available ? '' : ` (skipped: native cipher not available: ${status.reason})`;
const ctor = loadNative()?.EspCipher;
const gcm = ALL_SUITES.find(([n]) => n === 'aes-gcm-16/128')![1];

describe('choosing the cipher', () => {
  it(`createEspTransform picks ${status.available ? 'native' : 'node'} by default here; 'node' always gives node:crypto`, () => {
    const t = createEspTransform({ spi: 1, ...gcm });
    expect(t.cipherPath).toBe(status.available ? 'native' : 'node');
    expect(createEspTransform({ spi: 1, ...gcm, cipher: 'node' }).cipherPath).toBe('node');
    expect(new EspTransform({ spi: 1, ...gcm }).cipherPath).toBe('node'); // src/esp alone never loads the addon
    expect(inspect(t)).toContain(`cipher: '${t.cipherPath}'`);
  });

  it('options are checked: cipher by value, unknown names (cipherFactory included) refused', () => {
    expect(() => createEspTransform({ spi: 1, ...gcm, cipher: 'fast' as 'auto' })).toThrow(/"cipher"/);
    expect(() => createEspTransform({ spi: 1, ...gcm, cipher: 1 as unknown as 'auto' })).toThrow(TypeError);
    expect(() => createEspTransform({ spi: 1, ...gcm, cipherFactory: nativeEspCipherFactory } as never)).toThrow(/unknown option "cipherFactory"/);
    expect(() => createEspTransform(null as never)).toThrow(/options/);
    expect(() => new EspTransform({ spi: 1, ...gcm, cipherFactory: 'native' as never })).toThrow(/"cipherFactory"/);
    expect(() => new EspTransform({ spi: 1, ...gcm, chiper: 1 } as never)).toThrow(/unknown option "chiper"/);
    expect(() => new UserlandSadb({ cipher: 'fast' as 'auto' })).toThrow(/"cipher"/);
  });

  it('a factory that returns null leaves node:crypto in charge', () => {
    expect(new EspTransform({ spi: 1, ...gcm, cipherFactory: () => null }).cipherPath).toBe('node');
  });

  it.skipIf(!disabled)('NATT_DISABLE_NATIVE=1: not available, auto falls back to node, native refuses with the reason', () => {
    expect(status).toMatchObject({ available: false });
    expect(status.reason).toMatch(/NATT_DISABLE_NATIVE/);
    expect(createEspTransform({ spi: 1, ...gcm }).cipherPath).toBe('node');
    expect(() => createEspTransform({ spi: 1, ...gcm, cipher: 'native' })).toThrow(NattUnsupportedError);
    expect(() => createEspTransform({ spi: 1, ...gcm, cipher: 'native' })).toThrow(/NATT_DISABLE_NATIVE/);
  });

  it.skipIf(!status.available)(`the userland SA database uses the native cipher unless told 'node'${skipWhy}`, async () => {
    const sa = { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x501, mode: 'tunnel' as const, ...gcm };
    for (const [opts, want] of [[{}, 'native'], [{ cipher: 'node' as const }, 'node']] as const) {
      const db = new UserlandSadb(opts);
      await db.add(sa);
      expect(db.bySpi(0x501)![0].transform!.cipherPath).toBe(want);
      await db.flush();
    }
  });
});

describe.skipIf(!status.available)(`the native context${skipWhy}`, () => {
  it("runs on Node's own OpenSSL: same version, and the addon links no libcrypto of its own", () => {
    expect(status.openssl).toContain(process.versions.openssl);
    const file = nativeStatus().path!;
    const ldd = spawnSync('ldd', [file], { encoding: 'utf8' });
    if (ldd.status === 0) expect(ldd.stdout).not.toMatch(/libcrypto|libssl/);
    const nm = spawnSync('nm', ['-D', '--undefined-only', file], { encoding: 'utf8' });
    if (nm.status === 0) expect(nm.stdout).toMatch(/ EVP_EncryptInit_ex2\n/); // resolved at load time from node
  });

  it('shows no key in util.inspect (any mode), JSON or String, for every suite', () => {
    for (const [, o] of ALL_SUITES) {
      const spec = specFor(o, false);
      const n = new NativeEspCipher(ctor!, spec);
      const t = createEspTransform({ spi: 9, ...o });
      const raw = new ctor!(spec.encryption.kind, spec.encryption.cipher, spec.key, spec.salt, spec.encryption.icvLength,
        spec.integrity?.hash ?? '', spec.authKey, spec.integrity?.icvLength ?? 0, false);
      let shown = '';
      for (const x of [n, t, raw]) {
        for (const mode of [{}, { showHidden: true, depth: Infinity, getters: true }, { customInspect: false, showHidden: true, depth: 10 }]) {
          shown += inspect(x, mode);
        }
        shown += JSON.stringify(x) + String(x);
      }
      expect(inspect(raw)).toBe('EspCipher {}');
      for (const key of [o.encryption.key, o.integrity?.key].filter((x): x is Buffer => !!x && x.length > 0)) {
        for (const form of [key.toString('hex'), Array.from(key).slice(0, 6).join(', '), key.toString('base64').slice(0, 12), key.subarray(0, 6).toString('hex').match(/../g)!.join(' ')]) {
          expect(shown).not.toContain(form);
        }
      }
      n.dispose();
      t.dispose();
      raw.free();
    }
  });

  it('free()/dispose(): keys wiped, later use is a clear error, freeing twice is harmless', () => {
    const t = createEspTransform({ spi: 9, ...gcm });
    const pkt = t.seal(Buffer.from('x'), 4);
    t.dispose();
    t.dispose();
    expect(() => t.seal(Buffer.from('x'), 4)).toThrow(/used after free/);
    expect(() => t.open(pkt)).toThrow(/used after free/);
  });

  it('refuses bad constructor arguments, naming what is wrong', () => {
    const k16 = Buffer.alloc(16, 1);
    const salt = Buffer.alloc(4);
    const loose = ctor as unknown as new (...a: unknown[]) => unknown;
    expect(() => new loose('aead', 'aes-128-gcm', k16, salt, 16, '', null, 0)).toThrow(TypeError);
    expect(() => new loose('aead', 'aes-128-gcm', 'key', salt, 16, '', null, 0, false)).toThrow(TypeError);
    expect(() => new ctor!('stream', 'aes-128-gcm', k16, salt, 16, '', null, 0, false)).toThrow(/kind/);
    expect(() => new ctor!('aead', 'aes-128-gcm', Buffer.alloc(15), salt, 16, '', null, 0, false)).toThrow(/key length/);
    expect(() => new ctor!('aead', 'aes-128-cbc', k16, salt, 16, '', null, 0, false)).toThrow(/does not serve/);
    expect(() => new ctor!('aead', 'des-ede3-cbc', k16, salt, 16, '', null, 0, false)).toThrow(/does not serve/);
    expect(() => new ctor!('aead', 'aes-128-gcm', k16, salt, 10, '', null, 0, false)).toThrow(/ICV/);
    expect(() => new ctor!('aead', 'aes-128-gcm', k16, Buffer.alloc(3), 16, '', null, 0, false)).toThrow(/salt/);
    expect(() => new ctor!('null', '', Buffer.alloc(0), Buffer.alloc(0), 0, '', null, 0, false)).toThrow(/NULL needs/);
    expect(() => new ctor!('cbc', 'aes-128-cbc', k16, Buffer.alloc(0), 0, 'md5', k16, 12, false)).toThrow(/hash/);
    expect(() => new ctor!('cbc', 'aes-128-cbc', k16, Buffer.alloc(0), 0, 'sha1', k16, 21, false)).toThrow(/macIcvLength/);
  });

  it('checks every layout: bounds, suite sizes, overlap; a bad batch entry is a status, not a crash', () => {
    const spec = specFor(ALL_SUITES.find(([n]) => n === 'aes-cbc/128+hmac-sha1-96')![1], false);
    const c = new ctor!('cbc', 'aes-128-cbc', spec.key, Buffer.alloc(0), 0, 'sha1', spec.authKey, 12, false);
    const buf = Buffer.alloc(100);
    const len = 8 + 16 + 32 + 12;
    expect(() => c.seal(buf, 0, len - 1, 0)).toThrow(RangeError); // not whole blocks
    expect(() => c.seal(buf, 40, len, 0)).toThrow(RangeError); // past the end
    expect(() => c.seal(buf, 0, len, 2 ** 32)).toThrow(RangeError);
    expect(() => c.seal(buf, -1, len, 0)).toThrow(RangeError);
    expect(() => c.seal(buf, 0.5, len, 0)).toThrow(RangeError);
    expect(() => c.seal(new Uint16Array(50) as unknown as Uint8Array, 0, len, 0)).toThrow(TypeError);
    c.seal(buf, 0, len, 0);
    expect(() => c.open(buf, 0, len, 0, buf, 10)).toThrow(/overlaps/);
    expect(() => c.open(buf, 0, len, 0, Buffer.alloc(31), 0)).toThrow(/room/);
    expect(c.open(buf, 0, len, 0, Buffer.alloc(32), 0)).toBe(true);
    const desc = new Uint32Array(3 * ESP_DESC_WORDS);
    desc.set([0, len, 0, 0, 90, len, 0, 0, 0, 20, 0, 0]);
    const st = new Uint8Array(3);
    expect(c.openBatch(buf, desc, 3, st)).toBe(1);
    expect(Array.from(st)).toEqual([1, ESP_CIPHER_BAD_LAYOUT, ESP_CIPHER_BAD_LAYOUT]);
    expect(() => c.openBatch(buf, desc, 4, new Uint8Array(4))).toThrow(/count/);
    expect(() => c.openBatch(buf, new Int32Array(12) as unknown as Uint32Array, 1, st)).toThrow(TypeError);
    c.free();
  });

  it('EspTransform batches refuse descriptors outside the slab or without room, before using a sequence number', () => {
    const t = createEspTransform({ spi: 3, ...gcm });
    const b = new EspBatch({ capacity: 4, slabSize: 256 });
    b.setPayload(0, 0, 10, 4); // no headroom
    b.count = 1;
    expect(() => t.sealBatch(b)).toThrow(/batch payload 0/);
    b.setPayload(0, 16, 230, 4); // no tailroom
    expect(() => t.sealBatch(b)).toThrow(/batch payload 0/);
    expect(t.outboundSeq).toBe(0n);
    b.count = 5;
    expect(() => t.sealBatch(b)).toThrow(/"batch.count"/);
    expect(() => b.setPayload(4, 0, 1, 4)).toThrow(/"index"/);
    expect(() => b.setPacket(0, 250, 10)).toThrow(/"length"/);
    b.desc[0] = 250;
    b.desc[1] = 10;
    b.count = 1;
    expect(() => t.openBatch(b)).toThrow(/batch packet 0/);
    expect(() => new EspBatch({ capacity: 0 })).toThrow(/"capacity"/);
    expect(() => new EspBatch({ slots: 3 } as never)).toThrow(/unknown option/);
  });

  it('the sequence numbers running out mid-batch: the rest are marked, expire is raised once', async () => {
    const t = createEspTransform({ spi: 3, ...gcm, outboundSeq: 0xffff_fffe });
    let expired = 0;
    t.on('expire', () => expired++);
    const b = new EspBatch({ capacity: 4 });
    for (let i = 0; i < 4; i++) b.setPayload(i, i * 2048 + t.headroom, 20, 4);
    b.count = 4;
    expect(t.sealBatch(b)).toBe(1);
    expect([0, 1, 2, 3].map((i) => b.reason(i))).toEqual([null, 'seq-exhausted', 'seq-exhausted', 'seq-exhausted']);
    await new Promise((r) => setImmediate(r));
    expect(expired).toBe(1);
    expect(t.stats().sealed).toBe(1);
  });

  it('works in worker threads; a worker that exits with live contexts is cleaned up at env teardown', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.file);
      const keep = [];
      for (let i = 0; i < 50; i++) keep.push(new addon.EspCipher('aead', 'aes-256-gcm', Buffer.alloc(32, 7), Buffer.alloc(4, 1), 16, '', null, 0, false));
      const pkt = Buffer.alloc(8 + 8 + 20 + 16);
      pkt.writeUInt32BE(0x99, 0);
      keep[0].seal(pkt, 0, pkt.length, 0);
      parentPort.postMessage(pkt);
      // exit with every context still alive
    `;
    const w = new Worker(code, { eval: true, workerData: { file: path.resolve(nativeStatus().path!) } });
    const [pkt, exit] = await Promise.all([
      new Promise<Uint8Array>((res) => w.once('message', res)),
      new Promise<number>((res) => w.once('exit', res)),
    ]);
    expect(exit).toBe(0);
    const c = new ctor!('aead', 'aes-256-gcm', Buffer.alloc(32, 7), Buffer.alloc(4, 1), 16, '', null, 0, false);
    const p = Buffer.from(pkt);
    expect(c.open(p, 0, p.length, 0, p, 16)).toBe(true);
    expect(p.subarray(16, 36)).toEqual(Buffer.alloc(20));
    c.free();
  });

  it('contexts dropped without free() are finalized (memory stays bounded over 40,000 of them)', () => {
    const script = `
      const addon = require(${JSON.stringify(path.resolve(nativeStatus().path!))});
      const key = Buffer.alloc(32, 5), salt = Buffer.alloc(4);
      const make = (n) => { for (let i = 0; i < n; i++) new addon.EspCipher('aead', 'aes-256-gcm', key, salt, 16, '', null, 0, false); };
      (async () => {
        make(2000); gc(); await new Promise((r) => setImmediate(r)); gc();
        const base = process.memoryUsage().rss;
        for (let r = 0; r < 20; r++) { make(2000); gc(); await new Promise((r) => setImmediate(r)); }
        gc(); await new Promise((r) => setImmediate(r));
        console.log(JSON.stringify({ growth: process.memoryUsage().rss - base }));
      })();
    `;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const { growth } = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(growth).toBeLessThan(40 * 1024 * 1024); // 40,000 leaked contexts would be ~100 MB
  });

  it('a node:crypto cipher and a native one agree on the NodeEspCipher self-description (no keys there either)', () => {
    const spec = specFor(gcm, true);
    expect(inspect(new NodeEspCipher(spec))).toBe("NodeEspCipher { encryption: 'aes-gcm-16', integrity: 'none', esn: true }");
    const n = new NativeEspCipher(ctor!, spec);
    expect(inspect(n)).toBe("NativeEspCipher { encryption: 'aes-gcm-16', integrity: 'none', esn: true }");
    n.dispose();
  });
});
