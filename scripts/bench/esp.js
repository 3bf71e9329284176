// ESP benchmark: seal+open per packet per suite and size: bare node:crypto calls, EspTransform on node:crypto, native, batched.

'use strict';
const crypto = require('node:crypto');
const os = require('node:os');
const { EspBatch } = require('../../dist/esp');
const { encryptionSuite, integritySuite } = require('../../dist/esp/suites');
const { createEspTransform, nativeCipherStatus, NativeEspCipher } = require('../../dist/fastpath');
const { loadNative } = require('../../dist/native/binding');

const SIZES = [64, 512, 1400];
const ROUNDS = Number(process.env.BENCH_ROUNDS || 7); // interleaved rounds (odd: a true median; at least 3)
const CHUNK_MS = Number(process.env.BENCH_CHUNK_MS || 5); // CPU time per function per round
const BATCH = Number(process.env.BENCH_BATCH || 32);
const GOAL_NATIVE = 0.25; // native seal+open ≤ 0.25 × bare node:crypto (issue 12)
const GOAL_NODE = 1.25; // EspTransform on node:crypto ≤ 1.25 × the bare calls

const bytes = (n, base) => Buffer.from(Array.from({ length: n }, (_, i) => (base + i) & 0xff));

// The bare baseline for each kind: the node:crypto calls an ESP implementation cannot avoid, on `len` bytes.
function bareAead(cipher, keyLen, tagLen) {
  const key = crypto.createSecretKey(bytes(keyLen, 1));
  const nonce = bytes(12, 9);
  const aad = bytes(8, 3);
  return (pt) => {
    const c = crypto.createCipheriv(cipher, key, nonce, { authTagLength: tagLen });
    c.setAAD(aad);
    const ct = c.update(pt);
    c.final();
    const tag = c.getAuthTag();
    const d = crypto.createDecipheriv(cipher, key, nonce, { authTagLength: tagLen });
    d.setAAD(aad);
    d.setAuthTag(tag);
    const out = d.update(ct);
    d.final();
    return out;
  };
}
function bareGmac(keyLen) {
  const key = crypto.createSecretKey(bytes(keyLen, 1));
  const cipher = `aes-${keyLen * 8}-gcm`;
  const nonce = bytes(12, 9);
  return (pt) => {
    const c = crypto.createCipheriv(cipher, key, nonce);
    c.setAAD(pt);
    c.final();
    const tag = c.getAuthTag();
    const d = crypto.createDecipheriv(cipher, key, nonce);
    d.setAAD(pt);
    d.setAuthTag(tag);
    d.final();
    return tag;
  };
}
function bareCbcHmac(keyLen, hash, macKeyLen, icvLen) {
  const key = crypto.createSecretKey(bytes(keyLen, 1));
  const mkey = crypto.createSecretKey(bytes(macKeyLen, 5));
  const cipher = `aes-${keyLen * 8}-cbc`;
  const iv = bytes(16, 7);
  return (pt) => {
    const c = crypto.createCipheriv(cipher, key, iv);
    c.setAutoPadding(false);
    const ct = c.update(pt);
    c.final();
    const mac = crypto.createHmac(hash, mkey).update(ct).digest();
    const check = crypto.createHmac(hash, mkey).update(ct).digest();
    if (!crypto.timingSafeEqual(mac.subarray(0, icvLen), check.subarray(0, icvLen))) throw new Error('mac');
    const d = crypto.createDecipheriv(cipher, key, iv);
    d.setAutoPadding(false);
    const out = d.update(ct);
    d.final();
    return out;
  };
}
function bareHmac(hash, macKeyLen, icvLen) {
  const mkey = crypto.createSecretKey(bytes(macKeyLen, 5));
  return (pt) => {
    const mac = crypto.createHmac(hash, mkey).update(pt).digest();
    const check = crypto.createHmac(hash, mkey).update(pt).digest();
    return crypto.timingSafeEqual(mac.subarray(0, icvLen), check.subarray(0, icvLen));
  };
}

const SUITES = [
  ['aes-gcm-16/128', { encryption: { algorithm: 'aes-gcm-16', key: bytes(20, 1) } }, bareAead('aes-128-gcm', 16, 16), 16],
  ['aes-gcm-16/256', { encryption: { algorithm: 'aes-gcm-16', key: bytes(36, 1) } }, bareAead('aes-256-gcm', 32, 16), 16],
  ['aes-gmac/128', { encryption: { algorithm: 'aes-gmac', key: bytes(20, 1) } }, bareGmac(16), 4],
  ['chacha20-poly1305', { encryption: { algorithm: 'chacha20-poly1305', key: bytes(36, 1) } }, bareAead('chacha20-poly1305', 32, 16), 4],
  ['aes-cbc/128+hmac-sha1-96', { encryption: { algorithm: 'aes-cbc', key: bytes(16, 1) }, integrity: { algorithm: 'hmac-sha1-96', key: bytes(20, 5) } }, bareCbcHmac(16, 'sha1', 20, 12), 16],
  ['aes-cbc/256+hmac-sha2-256-128', { encryption: { algorithm: 'aes-cbc', key: bytes(32, 1) }, integrity: { algorithm: 'hmac-sha2-256-128', key: bytes(32, 5) } }, bareCbcHmac(32, 'sha256', 32, 16), 16],
  ['aes-cbc/256+hmac-sha2-512-256', { encryption: { algorithm: 'aes-cbc', key: bytes(32, 1) }, integrity: { algorithm: 'hmac-sha2-512-256', key: bytes(64, 5) } }, bareCbcHmac(32, 'sha512', 64, 32), 16],
  ['null+hmac-sha1-96', { encryption: { algorithm: 'null', key: Buffer.alloc(0) }, integrity: { algorithm: 'hmac-sha1-96', key: bytes(20, 5) } }, bareHmac('sha1', 20, 12), 4],
];

/** CPU ns per call of fn over n calls. CPU time (process.cpuUsage), so time the core spends elsewhere does not count. */
function cpuNs(fn, n) {
  const start = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const u = process.cpuUsage(start);
  return ((u.user + u.system) * 1000) / n;
}

const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];

/**
 * Interleaved measurement: ROUNDS rounds, each running every fn for about CHUNK_MS in turn, so load changes on a
 * shared machine hit all sides alike. Per side: the median CPU ns per call over the rounds, and the median of the
 * per-round ratios to fns[0] (the bare node:crypto calls). `perCall[i]` divides side i's time (a batch of 32 → 32).
 */
function compare(fns, perCall) {
  fns.forEach((f, i) => cpuNs(f, Math.max(4, Math.round(2000 / perCall[i])))); // warm-up: let the JIT settle first
  const n = fns.map((f, i) => Math.max(8, Math.round((CHUNK_MS * 1e6) / cpuNs(f, Math.max(4, Math.round(400 / perCall[i]))))));
  const per = fns.map(() => []);
  for (let r = 0; r < ROUNDS; r++) fns.forEach((f, i) => per[i].push(cpuNs(f, n[i]) / perCall[i]));
  return {
    ns: per.map(median),
    ratios: per.map((xs) => median(xs.map((x, r) => x / per[0][r]))),
  };
}

const native = nativeCipherStatus();
const only = process.env.BENCH_SUITES ? process.env.BENCH_SUITES.split(',') : null; // e.g. BENCH_SUITES=aes-gmac/128
const load0 = os.loadavg();
const rows = [];
for (const [name, opts, bare, align] of SUITES.filter(([n]) => !only || only.includes(n))) {
  for (const size of SIZES) {
    const payload = crypto.randomBytes(size);
    const pair = (cipher) => {
      const tx = createEspTransform({ spi: 0x1001, esn: false, ...opts, cipher });
      const rx = createEspTransform({ spi: 0x1001, esn: false, ...opts, cipher });
      return () => {
        const r = rx.open(tx.seal(payload, 4));
        if (!r.ok) throw new Error(`${name} ${cipher}: ${r.reason}`);
      };
    };
    // Batched: BATCH payloads in one slab, sealed in place, then opened in place (which leaves the payloads where they were).
    const batched = (cipher) => {
      const tx = createEspTransform({ spi: 0x1001, esn: false, ...opts, cipher });
      const rx = createEspTransform({ spi: 0x1001, esn: false, ...opts, cipher, replayWindow: 1024 });
      const slot = 2048;
      const b = new EspBatch({ capacity: BATCH, slabSize: BATCH * slot });
      for (let i = 0; i < BATCH; i++) {
        payload.copy(b.slab, i * slot + tx.headroom);
        b.setPayload(i, i * slot + tx.headroom, size, 4);
      }
      b.count = BATCH;
      return () => {
        tx.sealBatch(b);
        if (rx.openBatch(b) !== BATCH) throw new Error(`${name} ${cipher} batch: ${b.reason(0)}`);
      };
    };
    // The bare calls process what ESP encrypts: payload + the minimal trailer, aligned as the suite requires.
    const ptLen = size + 2 + ((align - ((size + 2) % align)) % align);
    const pt = crypto.randomBytes(ptLen);
    // The floor: the native context alone sealing and opening one laid-out packet in place (the crypto and the call).
    const floor = () => {
      const enc = encryptionSuite(opts.encryption.algorithm, opts.encryption.key);
      const integ = opts.integrity ? integritySuite(opts.integrity.algorithm, opts.integrity.key) : null;
      const spec = { encryption: enc, integrity: integ, key: opts.encryption.key.subarray(0, enc.keyLength),
        salt: opts.encryption.key.subarray(enc.keyLength), authKey: opts.integrity ? opts.integrity.key : null, esn: false };
      const c = new NativeEspCipher(loadNative().EspCipher, spec);
      const ptOff = 8 + enc.ivLength;
      const len = ptOff + ptLen + enc.icvLength + (integ ? integ.icvLength : 0);
      const pkt = crypto.randomBytes(len);
      return () => {
        c.seal(pkt, 0, len, 0);
        if (!c.open(pkt, 0, len, 0, pkt, ptOff)) throw new Error(`${name}: floor`);
      };
    };
    const fns = [() => bare(pt), pair('node')];
    const perCall = [1, 1];
    if (native.available) {
      fns.push(pair('native'), batched('native'), floor());
      perCall.push(1, BATCH, 1);
    }
    const { ns, ratios } = compare(fns, perCall);
    rows.push({
      suite: name,
      size,
      bareNs: Math.round(ns[0]),
      nodeNs: Math.round(ns[1]),
      nativeNs: native.available ? Math.round(ns[2]) : null,
      batchNs: native.available ? Math.round(ns[3]) : null,
      floorNs: native.available ? Math.round(ns[4]) : null,
      nodeRatio: +ratios[1].toFixed(3),
      nativeRatio: native.available ? +ratios[2].toFixed(3) : null,
      batchRatio: native.available ? +ratios[3].toFixed(3) : null,
      floorRatio: native.available ? +ratios[4].toFixed(3) : null,
    });
  }
}
const load1 = os.loadavg();

const pad = (s, n) => String(s).padStart(n);
const fmt = (x) => (x === null ? '-' : x.toFixed(2));
const la = (l) => l.map((x) => x.toFixed(2)).join(' ');
console.log(`ESP seal+open per packet: bare node:crypto calls, EspTransform on node:crypto, and on the native path`);
console.log(`(node ${process.version}, OpenSSL ${process.versions.openssl}; CPU ns per packet, median of ${ROUNDS} interleaved rounds;`);
console.log(`ratios are medians of per-round ratios to "bare"; batch = ${BATCH} packets per sealBatch+openBatch; floor = the native`);
console.log(`context alone on one laid-out packet, no ESP around it; load average ${la(load0)} → ${la(load1)})`);
if (!native.available) console.log(`native path not available: ${native.reason}`);
console.log(
  `${'suite'.padEnd(30)} ${pad('bytes', 5)} ${pad('bare', 7)} ${pad('node', 7)} ${pad('native', 7)} ${pad('batch', 7)} ${pad('floor', 7)} ${pad('node/b', 6)} ${pad('nat/b', 6)} ${pad('bat/b', 6)} ${pad('flr/b', 6)}`,
);
for (const r of rows) {
  console.log(
    `${r.suite.padEnd(30)} ${pad(r.size, 5)} ${pad(r.bareNs, 7)} ${pad(r.nodeNs, 7)} ${pad(r.nativeNs ?? '-', 7)} ${pad(r.batchNs ?? '-', 7)} ${pad(r.floorNs ?? '-', 7)} ${pad(fmt(r.nodeRatio), 6)} ${pad(fmt(r.nativeRatio), 6)} ${pad(fmt(r.batchRatio), 6)} ${pad(fmt(r.floorRatio), 6)}`,
  );
}
const worst = (key) => rows.reduce((a, b) => ((b[key] ?? 0) > (a[key] ?? 0) ? b : a));
const count = (key, goal) => rows.filter((r) => r[key] !== null && r[key] <= goal).length;
if (native.available) {
  for (const key of ['nativeRatio', 'batchRatio']) {
    const w = worst(key);
    console.log(`goal ${key === 'nativeRatio' ? 'native' : 'batch '} ≤ ${GOAL_NATIVE}: ${count(key, GOAL_NATIVE)}/${rows.length} rows meet it; worst ${fmt(w[key])} (${w.suite} @ ${w.size} B)`);
  }
}
const wn = worst('nodeRatio');
console.log(`goal node   ≤ ${GOAL_NODE}: ${count('nodeRatio', GOAL_NODE)}/${rows.length} rows meet it; worst ${fmt(wn.nodeRatio)} (${wn.suite} @ ${wn.size} B)`);
console.log(
  JSON.stringify({
    bench: 'esp',
    node: process.version,
    openssl: process.versions.openssl,
    native: native.available,
    rounds: ROUNDS,
    batch: BATCH,
    loadavg: { start: load0, end: load1 },
    goals: { native: GOAL_NATIVE, node: GOAL_NODE },
    rows,
  }),
);
