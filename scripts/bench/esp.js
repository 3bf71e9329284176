// ESP benchmark: EspTransform seal+open per packet for each suite and size, beside the bare node:crypto calls of the same size.

'use strict';
const crypto = require('node:crypto');
const { EspTransform } = require('../../dist/esp');

const SIZES = [64, 512, 1400];
const ROUNDS = Number(process.env.BENCH_ROUNDS || 41); // interleaved rounds (odd: a true median)
const CHUNK_MS = Number(process.env.BENCH_CHUNK_MS || 4); // CPU time per function per round

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
const gcmRef = bareAead('aes-128-gcm', 16, 16);

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
 * shared machine hit all sides alike. Noise only ever adds time, so each side's fastest round is its cost
 * (`ns`, and `ratio` to fns[1]); the median of the per-round ratios is kept too, as a check on that estimate.
 */
function compare(fns) {
  const n = Math.max(64, Math.round((CHUNK_MS * 1e6) / cpuNs(fns[0], 2000))); // calibrate on the ESP side
  const per = fns.map(() => []);
  for (let r = 0; r < ROUNDS; r++) fns.forEach((f, i) => per[i].push(cpuNs(f, n)));
  const best = per.map((xs) => Math.min(...xs));
  return {
    ns: best,
    ratios: best.map((b) => b / best[1]),
    medianRatios: per.map((xs) => median(xs.map((x, r) => x / per[1][r]))),
  };
}

const only = process.env.BENCH_SUITES ? process.env.BENCH_SUITES.split(',') : null; // e.g. BENCH_SUITES=aes-gmac/128
const rows = [];
for (const [name, opts, bare, align] of SUITES.filter(([n]) => !only || only.includes(n))) {
  for (const size of SIZES) {
    const tx = new EspTransform({ spi: 0x1001, esn: false, ...opts });
    const rx = new EspTransform({ spi: 0x1001, esn: false, ...opts });
    const payload = crypto.randomBytes(size);
    const ours = () => {
      const r = rx.open(tx.seal(payload, 4));
      if (!r.ok) throw new Error(`${name}: ${r.reason}`);
    };
    // The bare calls process what ESP encrypts: payload + the minimal trailer, aligned as the suite requires.
    const ptLen = size + 2 + ((align - ((size + 2) % align)) % align);
    const pt = crypto.randomBytes(ptLen);
    const gpt = crypto.randomBytes(size);
    const gcm = () => gcmRef(gpt);
    const { ns, ratios, medianRatios } = compare([ours, () => bare(pt), gcm]);
    rows.push({
      suite: name,
      size,
      espNs: Math.round(ns[0]),
      bareNs: Math.round(ns[1]),
      ratio: +ratios[0].toFixed(3),
      medianRatio: +medianRatios[0].toFixed(3),
      gcm128Ns: Math.round(ns[2]),
      ratioVsGcm128: +(ns[0] / ns[2]).toFixed(3),
    });
  }
}

const pad = (s, n) => String(s).padStart(n);
console.log(`ESP seal+open per packet vs the same node:crypto calls (node ${process.version}; CPU ns per packet, fastest of`);
console.log(`${ROUNDS} interleaved rounds; "med" = median of per-round ratios; "vs gcm" = against a bare aes-128-gcm encrypt+decrypt)`);
console.log(`${'suite'.padEnd(30)} ${pad('bytes', 5)} ${pad('esp ns', 8)} ${pad('bare ns', 8)} ${pad('ratio', 6)} ${pad('med', 5)} ${pad('gcm128 ns', 9)} ${pad('vs gcm', 6)}`);
for (const r of rows) {
  console.log(
    `${r.suite.padEnd(30)} ${pad(r.size, 5)} ${pad(r.espNs, 8)} ${pad(r.bareNs, 8)} ${pad(r.ratio.toFixed(2), 6)} ${pad(r.medianRatio.toFixed(2), 5)} ${pad(r.gcm128Ns, 9)} ${pad(r.ratioVsGcm128.toFixed(2), 6)}`,
  );
}
const worst = rows.reduce((a, b) => (b.ratio > a.ratio ? b : a));
console.log(`goal: ratio ≤ 1.25; worst ${worst.ratio.toFixed(2)} (${worst.suite} @ ${worst.size} B); ${rows.filter((r) => r.ratio <= 1.25).length}/${rows.length} rows meet it`);
console.log(JSON.stringify({ bench: 'esp', node: process.version, goal: 1.25, rows }));
