// Fuzz: NATT_FUZZ_RUNS (default 10^5) byte streams, random and mutated, randomly chunked, into FrameDecoder.
// No exception escapes; every stream agrees with a whole-buffer reference parser written here (frames, drops, failure
// reason and offset); every failure is counted by reason; and the frames kept re-encode byte for byte.

import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame, streamPrefix, FRAME_FAIL_REASONS, type TcpFrame } from '../../src/tcp/framing';
import { breathe, fuzzTimeout } from '../lib/hostile';
import { reportFuzz } from '../lib/fuzz-report';

const RUNS = Number(process.env.NATT_FUZZ_RUNS ?? 100_000);
const SEED = Number(process.env.NATT_FUZZ_SEED ?? 0x9329);

type Rand = ((n: number) => number) & { u32: () => number };

/** xorshift32, so a failing stream can be replayed from NATT_FUZZ_SEED. */
function rng(seed: number): Rand {
  let x = seed >>> 0 || 1;
  const u32 = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  return Object.assign((n: number) => u32() % n, { u32 });
}

interface RefFrame {
  kind: 'ike' | 'esp' | 'keepalive';
  body: Buffer; // the IKE message, the ESP packet, or empty
  start: number; // the frame's octets in the stream, Length included
  end: number;
}
interface RefResult {
  frames: RefFrame[];
  dropped: { empty: number; short: number; markerOnly: number };
  failure: { reason: string; offset: number } | null;
}

/** RFC 9329 §3/§4 read straight off the whole stream, by offsets: the oracle the streaming decoder must agree with. */
function reference(s: Buffer, expectPrefix: boolean, max: number): RefResult {
  const r: RefResult = { frames: [], dropped: { empty: 0, short: 0, markerOnly: 0 }, failure: null };
  let i = 0;
  if (expectPrefix) {
    const p = Buffer.from('IKETCP');
    for (; i < 6; i++) {
      if (i >= s.length) {
        if (i > 0) r.failure = { reason: 'truncated', offset: 0 };
        return r;
      }
      if (s[i] !== p[i]) {
        r.failure = { reason: 'badPrefix', offset: i };
        return r;
      }
    }
  }
  while (i < s.length) {
    if (i + 2 > s.length) return { ...r, failure: { reason: 'truncated', offset: i } };
    const len = s.readUInt16BE(i);
    if (len < 2) return { ...r, failure: { reason: 'lengthBelowMinimum', offset: i } };
    if (len > max) return { ...r, failure: { reason: 'lengthOverLimit', offset: i } };
    if (i + len > s.length) return { ...r, failure: { reason: 'truncated', offset: i } };
    const body = s.subarray(i + 2, i + len);
    const at = { start: i, end: i + len };
    if (body.length === 0) r.dropped.empty++;
    else if (body.length === 1) body[0] === 0xff ? r.frames.push({ kind: 'keepalive', body: Buffer.alloc(0), ...at }) : r.dropped.short++;
    else if (body.length < 4) r.dropped.short++;
    else if (body.readUInt32BE(0) === 0) body.length === 4 ? r.dropped.markerOnly++ : r.frames.push({ kind: 'ike', body: body.subarray(4), ...at });
    else if (body.length <= 8) r.dropped.short++;
    else r.frames.push({ kind: 'esp', body, ...at });
    i += len;
  }
  return r;
}

function randomBytes(rand: Rand, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) b.writeUInt32LE(rand.u32(), i);
  for (; i < n; i++) b[i] = rand(256);
  return b;
}

/** A valid stream: the prefix (if expected), then 0..8 frames, mostly IKE/ESP, sometimes keepalive or a droppable frame. */
function validStream(rand: Rand, prefix: boolean, max: number): Buffer {
  const parts: Buffer[] = prefix ? [streamPrefix()] : [];
  for (let k = rand(9); k > 0; k--) {
    const big = rand(500) === 0;
    switch (rand(8)) {
      case 0:
      case 1:
      case 2: {
        const n = 1 + (big ? rand(max - 6) : rand(120));
        parts.push(encodeFrame('ike', randomBytes(rand, n)));
        break;
      }
      case 3:
      case 4:
      case 5: {
        const p = randomBytes(rand, 9 + (big ? rand(max - 2 - 9) : rand(120)));
        if (p.readUInt32BE(0) === 0) p[0] = 1;
        parts.push(encodeFrame('esp', p));
        break;
      }
      case 6:
        parts.push(encodeFrame('keepalive'));
        break;
      default: {
        const junk = [Buffer.from([0, 2]), Buffer.from([0, 3, rand(255)]), Buffer.from([0, 6, 0, 0, 0, 0]), Buffer.from([0, 10, 1, 2, 3, 4, 5, 6, 7, 8])];
        parts.push(junk[rand(junk.length)]);
      }
    }
  }
  return Buffer.concat(parts);
}

function mutate(rand: Rand, s: Buffer): Buffer {
  if (s.length === 0) return randomBytes(rand, 1 + rand(8));
  let b = Buffer.from(s);
  for (let m = 1 + rand(3); m > 0; m--) {
    switch (rand(5)) {
      case 0: // flip a bit
        b[rand(b.length)] ^= 1 << rand(8);
        break;
      case 1: // set an octet
        b[rand(b.length)] = rand(256);
        break;
      case 2: // truncate
        b = b.subarray(0, rand(b.length + 1));
        break;
      case 3: {
        // insert junk
        const at = rand(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), randomBytes(rand, 1 + rand(6)), b.subarray(at)]);
        break;
      }
      default: {
        // delete a run
        const at = rand(b.length);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(6))]);
      }
    }
    if (b.length === 0) break;
  }
  return b;
}

/** Cut a stream into random chunks: mostly small, sometimes one octet each, sometimes whole. */
function chunks(rand: Rand, s: Buffer): Buffer[] {
  let style = rand(4);
  if (style === 0) return [s];
  if (style === 1 && s.length > 2048) style = 2; // one octet at a time, on the shorter streams
  const out: Buffer[] = [];
  for (let i = 0; i < s.length; ) {
    const n = style === 1 ? 1 : style === 2 ? 1 + rand(16) : 1 + rand(s.length);
    out.push(s.subarray(i, i + n));
    i += n;
  }
  if (rand(8) === 0) out.splice(rand(out.length + 1), 0, Buffer.alloc(0)); // empty chunks are legal
  return out;
}

const NONE = Buffer.alloc(0);
/** The frame's body as a Buffer view (no copy). */
function bodyOf(f: TcpFrame): Buffer {
  const u = f.kind === 'ike' ? f.payload : f.kind === 'esp' ? f.packet : NONE;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
/** One slab for every re-encoding: the encoder's write-into-a-caller's-buffer path. */
const SLAB = Buffer.alloc(1 << 20);

describe(`fuzz: ${RUNS} byte streams into FrameDecoder (seed ${SEED})`, () => {
  it('no exception escapes; agrees with the reference; failures counted by reason; kept frames re-encode exactly', async () => {
    const rand = rng(SEED);
    const cpu0 = process.cpuUsage();
    const outcome: Record<string, number> = { clean: 0, cleanWithDrops: 0 };
    for (const r of FRAME_FAIL_REASONS) outcome[r] = 0;
    const sources = { random: 0, valid: 0, mutated: 0 };
    let frames = 0;
    let bytes = 0;
    for (let run = 0; run < RUNS; run++) {
      if ((run & 0x1fff) === 0x1fff) await breathe();
      const prefix = rand(2) === 0;
      const max = rand(4) === 0 ? 34 + rand(400) : 65535;
      let s: Buffer;
      const kind = rand(10);
      if (kind === 0) {
        sources.random++;
        s = randomBytes(rand, rand(64));
        if (prefix && rand(2) === 0) s = Buffer.concat([streamPrefix(), s]);
      } else if (kind < 4) {
        sources.valid++;
        s = validStream(rand, prefix, max);
      } else {
        sources.mutated++;
        s = mutate(rand, validStream(rand, prefix, max));
      }
      bytes += s.length;
      const ref = reference(s, prefix, max);
      const d = new FrameDecoder({ expectPrefix: prefix, maxFrameLength: max });
      const got: TcpFrame[] = [];
      let failure;
      try {
        for (const c of chunks(rand, s)) {
          for (const f of d.push(c)) got.push(f);
          if (d.buffered >= max) throw new Error(`holds ${d.buffered} octets, limit ${max}`);
        }
        failure = d.end();
      } catch (e) {
        throw new Error(`run ${run} (seed ${SEED}): exception escaped: ${(e as Error).message}; stream ${s.toString('hex').slice(0, 200)}`);
      }
      const ctx = () => `run ${run} (seed ${SEED}), stream ${s.toString('hex').slice(0, 120)}`;
      if (got.length !== ref.frames.length) expect.fail(`${ctx()}: ${got.length} frames, the reference has ${ref.frames.length}`);
      for (let k = 0; k < got.length; k++) {
        if (got[k].kind !== ref.frames[k].kind || !bodyOf(got[k]).equals(ref.frames[k].body)) expect.fail(`${ctx()}: frame ${k} differs`);
      }
      if ((failure?.reason ?? null) !== (ref.failure?.reason ?? null) || (failure?.offset ?? -1) !== (ref.failure?.offset ?? -1)) {
        expect.fail(`${ctx()}: failure ${JSON.stringify(failure)}, the reference has ${JSON.stringify(ref.failure)}`);
      }
      const st = d.stats();
      if (JSON.stringify(st.dropped) !== JSON.stringify(ref.dropped)) expect.fail(`${ctx()}: drops ${JSON.stringify(st.dropped)} vs ${JSON.stringify(ref.dropped)}`);
      if (st.ike + st.esp + st.keepalive !== got.length || st.bytes + st.ignored !== s.length || st.failed !== (failure?.reason ?? null)) {
        expect.fail(`${ctx()}: stats ${JSON.stringify(st)} do not add up`);
      }
      frames += got.length;
      // Re-encode what was kept, into one slab: it must be the stream with the dropped frames, and everything from a
      // failure on, cut out (for a clean stream without drops: the stream itself, byte for byte).
      const prefixKept = prefix && ref.failure?.reason !== 'badPrefix' && s.length >= 6;
      let off = 0;
      if (prefixKept) off += streamPrefix().copy(SLAB, 0);
      for (const f of got) off += (f.kind === 'ike' ? encodeFrame('ike', f.payload, SLAB, off) : f.kind === 'esp' ? encodeFrame('esp', f.packet, SLAB, off) : encodeFrame('keepalive', undefined, SLAB, off)).length;
      const again = SLAB.subarray(0, off);
      let pos = 0;
      if (prefixKept) {
        if (!again.subarray(0, 6).equals(s.subarray(0, 6))) expect.fail(`${ctx()}: the prefix does not re-encode`);
        pos = 6;
      }
      for (const f of ref.frames) {
        if (!again.subarray(pos, pos + f.end - f.start).equals(s.subarray(f.start, f.end))) expect.fail(`${ctx()}: re-encoding differs at frame ${f.start}`);
        pos += f.end - f.start;
      }
      if (pos !== off) expect.fail(`${ctx()}: re-encoding has ${off} octets, the kept frames ${pos}`);
      const drops = ref.dropped.empty + ref.dropped.short + ref.dropped.markerOnly;
      if (failure) outcome[failure.reason]++;
      else {
        outcome[drops ? 'cleanWithDrops' : 'clean']++;
        if (!drops && !again.equals(s)) expect.fail(`${ctx()}: a clean stream does not re-encode byte for byte`);
      }
    }
    const total = Object.values(outcome).reduce((a, b) => a + b, 0);
    expect(total).toBe(RUNS);
    for (const r of FRAME_FAIL_REASONS) expect(outcome[r], `no stream failed with ${r}`).toBeGreaterThan(0);
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `framing fuzz: ${RUNS} streams (${JSON.stringify(sources)}), ${bytes} octets, ${frames} frames; outcomes ${JSON.stringify(outcome)}; ` +
        `${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU`,
    );
    reportFuzz('tcp FrameDecoder (test/tcp/fuzz)', outcome, { sources, frames, bytes });
  }, fuzzTimeout(120_000));
});
