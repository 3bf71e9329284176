// Key material never shows: a crawl of every output surface of every backend for one recognisable key (0xA5 repeated).
//
// SAs keyed with 0xA5 bytes go through the userland database, PfKey and Xfrm (over scripted kernels that answer with
// the keys, as kernels do), the setkey parser, applier and formatters. Everything they hand back (SAs from get/dump,
// every event of every kind, raw replies, the client objects themselves) and every error they throw for bad input
// carrying the key (as bytes, hex text, base64 text or a list of numbers, in every field) is rendered every way Node
// prints things: util.inspect in each mode, util.format %o %O %j %s, JSON.stringify, String(), message, stack and cause.
// No rendering may contain the pattern as hex, 0x-hex, base64, a decimal list or latin1 text.

import { afterAll, describe, expect, it } from 'vitest';
import { format, inspect } from 'node:util';
import { scriptedTransport } from '../lib/scripted-transport';
import { UserlandSadb } from '../../src/userland/sadb';
import { openSadb } from '../../src/open';
import { PfKey } from '../../src/pfkey/client';
import { decode as pfDecode, encode as pfEncode, type PfKeyExtension, type PfKeyMessage } from '../../src/pfkey/codec';
import { saToMessage } from '../../src/pfkey/convert';
import { DIALECTS, SADB } from '../../src/pfkey/dialects';
import { Xfrm } from '../../src/xfrm/client';
import { decode as xfDecode, encode as xfEncode, type XfrmMessage } from '../../src/xfrm/codec';
import { saToStruct } from '../../src/xfrm/convert';
import { XFRM_MSG } from '../../src/xfrm/constants';
import { EspTransform } from '../../src/esp';
import { pfkey, xfrm } from '../../src/index';
import { applySetkey, formatSadDump, formatSpdDump, opText, parseSetkey, toSetkey } from '../../src/setkey';
import { parseDaemonConfig } from '../../src/daemon/config';
import type { Sadb, SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';

// ---------------------------------------------------------------------------------------------------------------
// The pattern and how it could show

const BYTE = 0xa5;
const ENC = (): Uint8Array => new Uint8Array(32).fill(BYTE); // aes-cbc 256
const INT = (): Uint8Array => new Uint8Array(20).fill(BYTE); // hmac-sha1-96
const HEX = 'a5'.repeat(32);
const B64 = Buffer.alloc(32, BYTE).toString('base64');
const NUMS = (): number[] => Array.from({ length: 32 }, () => BYTE);

/** The key as text in each way a renderer could write bytes (any four bytes in a row count). */
const NEEDLES: [string, RegExp][] = [
  ['hex', /a5[\s,:]?a5[\s,:]?a5[\s,:]?a5/i],
  ['0x hex list', /0xa5\W{1,6}0xa5\W{1,6}0xa5/i],
  ['base64', /paWlpaWl/],
  // Between the numbers: anything but digits, or a JSON index (`{"0":165,"1":165}` is how JSON writes a Uint8Array).
  ['decimal list', /165(?:\D|"\d{1,4}":){1,24}165(?:\D|"\d{1,4}":){1,24}165(?:\D|"\d{1,4}":){1,24}165/],
  ['latin1', /\u00a5{4}/],
];

/** Every way Node turns a value into text. */
const RENDERINGS: [string, (v: unknown) => string][] = [
  ['inspect', (v) => inspect(v)],
  ['inspect showHidden', (v) => inspect(v, { showHidden: true })],
  ['inspect getters', (v) => inspect(v, { getters: true })],
  ['inspect customInspect:false', (v) => inspect(v, { customInspect: false })],
  ['inspect depth:Infinity', (v) => inspect(v, { depth: Infinity })],
  ['inspect showProxy', (v) => inspect(v, { showProxy: true })],
  ['inspect showHidden+getters', (v) => inspect(v, { showHidden: true, getters: true, depth: Infinity })],
  [
    'inspect all options',
    (v) => inspect(v, { showHidden: true, getters: true, customInspect: false, depth: Infinity, showProxy: true, maxArrayLength: Infinity, maxStringLength: Infinity }),
  ],
  ['format %o', (v) => format('%o', v)],
  ['format %O', (v) => format('%O', v)],
  ['format %j', (v) => format('%j', v)],
  ['format %s', (v) => format('%s', v)],
  ['JSON.stringify', (v) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x)) ?? 'undefined'],
  ['String', (v) => String(v)],
];

function attempt(f: () => string): string {
  try {
    return f();
  } catch (e) {
    return `(the rendering threw: ${e instanceof Error ? e.message : typeof e})`;
  }
}

/** The surfaces seen and the ones that showed the key. */
class Crawl {
  surfaces = 0;
  readonly leaks: string[] = [];
  /** Where each leak was seen (the surface, without the rendering), and the refusals among them. */
  readonly where = new Set<string>();
  readonly errorPlaces = new Set<string>();
  #inError = 0;

  text(label: string, text: string): void {
    this.surfaces++;
    for (const [name, re] of NEEDLES) {
      if (re.test(text)) {
        this.leaks.push(`${label}: ${name}`);
        this.where.add(label.split(' | ')[0]);
        if (this.#inError) this.errorPlaces.add(label.split(' | ')[0]);
        return;
      }
    }
  }

  value(label: string, v: unknown): void {
    for (const [mode, render] of RENDERINGS) this.text(`${label} | ${mode}`, attempt(() => render(v)));
  }

  error(label: string, e: unknown): void {
    this.#inError++;
    try {
      this.#error(label, e);
    } finally {
      this.#inError--;
    }
  }

  #error(label: string, e: unknown): void {
    this.value(label, e);
    let c: unknown = e;
    for (let depth = 0; c instanceof Error && depth < 8; depth++, c = c.cause) {
      const at = depth === 0 ? label : `${label} (cause ${depth})`;
      this.text(`${at} | message`, c.message);
      this.text(`${at} | stack`, String(c.stack));
      if (depth > 0) this.value(at, c);
    }
  }

  /** Run `f`; crawl what it throws or returns. */
  async call(label: string, f: () => unknown): Promise<void> {
    try {
      const r = await f();
      if (r !== undefined && !(r instanceof Uint8Array)) this.value(`${label} (result)`, r); // encode() gives the caller's own bytes
    } catch (e) {
      this.error(label, e);
    }
  }
}

const crawl = new Crawl();

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

const keyed = (spi: number, extra: Partial<SecurityAssociation> = {}): SecurityAssociation => ({
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi,
  protocol: 'esp',
  mode: 'transport',
  reqid: 7,
  encryption: { algorithm: 'aes-cbc', key: ENC() },
  integrity: { algorithm: 'hmac-sha1-96', key: INT() },
  ...extra,
});

const natted = (spi: number): SecurityAssociation => keyed(spi, { src: '198.51.100.7', dst: '192.0.2.1', natt: { type: 'espinudp', sport: 4500, dport: 4500 } });

const policy: SecurityPolicy = {
  selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24' },
  direction: 'out',
  action: 'ipsec',
  templates: [{ protocol: 'esp', mode: 'tunnel', src: '192.0.2.1', dst: '192.0.2.2', reqid: 7 }],
};

/** The key in each form a caller might wrongly pass it. */
const FORMS: [string, () => unknown][] = [
  ['hex text', () => HEX],
  ['0x hex text', () => `0x${HEX}`],
  ['base64 text', () => B64],
  ['a numeric array', NUMS],
  ['bytes of a wrong length', () => new Uint8Array(31).fill(BYTE)],
  ['a Buffer of a wrong length', () => Buffer.alloc(33, BYTE)],
  ['an object holding hex text', () => ({ hex: HEX })],
];

type Bag = Record<string, any>;
const asName = (v: unknown): string => (typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : HEX);

/** Every SA field (and a few sub-fields) a wrong value can be put in. */
const PLACES: [string, (sa: Bag, v: unknown) => void][] = [
  ['encryption', (sa, v) => void (sa.encryption = v)],
  ['encryption.key', (sa, v) => void (sa.encryption.key = v)],
  ['encryption.algorithm', (sa, v) => void (sa.encryption.algorithm = v)],
  ['integrity', (sa, v) => void (sa.integrity = v)],
  ['integrity.key', (sa, v) => void (sa.integrity.key = v)],
  ['integrity.algorithm', (sa, v) => void (sa.integrity.algorithm = v)],
  ['compression.algorithm', (sa, v) => void (sa.compression = { algorithm: v })],
  ['src', (sa, v) => void (sa.src = v)],
  ['dst', (sa, v) => void (sa.dst = v)],
  ['spi', (sa, v) => void (sa.spi = v)],
  ['protocol', (sa, v) => void (sa.protocol = v)],
  ['mode', (sa, v) => void (sa.mode = v)],
  ['reqid', (sa, v) => void (sa.reqid = v)],
  ['replayWindow', (sa, v) => void (sa.replayWindow = v)],
  ['esn', (sa, v) => void (sa.esn = v)],
  ['allowNoIntegrity', (sa, v) => void (sa.allowNoIntegrity = v)],
  ['seq', (sa, v) => void (sa.seq = v)],
  ['natt', (sa, v) => void (sa.natt = v)],
  ['natt.type', (sa, v) => void (sa.natt = { type: v, sport: 4500, dport: 4500 })],
  ['natt.sport', (sa, v) => void (sa.natt = { type: 'espinudp', sport: v, dport: 4500 })],
  ['natt.oa.initiator', (sa, v) => void (sa.natt = { type: 'espinudp', sport: 4500, dport: 4500, oa: { initiator: v } })],
  ['lifetime', (sa, v) => void (sa.lifetime = v)],
  ['lifetime.hard.bytes', (sa, v) => void (sa.lifetime = { hard: { bytes: v } })],
  ['selector', (sa, v) => void (sa.selector = v)],
  ['selector.src', (sa, v) => void (sa.selector = { src: v, dst: '10.2.0.0/24' })],
  ['an unknown option named by the key', (sa, v) => void (sa[asName(v)] = 1)],
  ['an unknown name inside encryption', (sa, v) => void (sa.encryption[asName(v)] = 1)],
];

/** Call every Sadb method with the key in every form and field; crawl each refusal. */
async function badInput(db: Sadb, label: string): Promise<void> {
  for (const [form, make] of FORMS) {
    for (const [place, put] of PLACES) {
      const sa = keyed(0x2001) as Bag;
      put(sa, make());
      await crawl.call(`${label}: add() with ${form} as ${place}`, () => db.add(sa as SecurityAssociation, { timeout: 50 }));
      await crawl.call(`${label}: update() with ${form} as ${place}`, () => db.update(sa as SecurityAssociation, { timeout: 50 }));
    }
    const v = make();
    const calls: [string, () => unknown][] = [
      ['get() src', () => db.get({ src: v, dst: '192.0.2.2', spi: 1 } as never)],
      ['get() spi', () => db.get({ src: '192.0.2.1', dst: '192.0.2.2', spi: v } as never)],
      ['delete() dst', () => db.delete({ src: '192.0.2.1', dst: v, spi: 1 } as never)],
      ['deleteAll() src', () => db.deleteAll({ src: v, dst: '192.0.2.2' } as never)],
      ['flush() protocol', () => db.flush(v as never)],
      ['dump() protocol', async () => {
        for await (const _ of db.dump(v as never)) void _;
      }],
      ['register() protocol', () => db.register(v as never)],
      ['getSpi() min', () => db.getSpi({ src: '192.0.2.1', dst: '192.0.2.2', min: v } as never)],
      ['getSpi() unknown name', () => db.getSpi({ src: '192.0.2.1', dst: '192.0.2.2', [asName(v)]: 1 } as never)],
      ['spdAdd() selector.src', () => db.spdAdd({ ...policy, selector: { src: v, dst: '10.2.0.0/24' } } as never)],
      ['spdAdd() templates[0].src', () => db.spdAdd({ ...policy, templates: [{ protocol: 'esp', mode: 'tunnel', src: v, dst: '192.0.2.2' }] } as never)],
      ['spdGet() id', () => db.spdGet({ id: v } as never)],
      ['call options timeout', () => db.add(keyed(0x2002), { timeout: v } as never)],
      ['call options signal', () => db.add(keyed(0x2002), { signal: v } as never)],
      ['call options unknown name', () => db.add(keyed(0x2002), { [asName(v)]: 1 } as never)],
      ['call options as the key', () => db.add(keyed(0x2002), v as never)],
      ['the SA as the key', () => db.add(v as never)],
    ];
    for (const [what, f] of calls) await crawl.call(`${label}: ${what} with ${form}`, f);
  }
}

/** Record every event a Sadb emits. */
function listen(db: Sadb, label: string, into: Array<[string, unknown]>): void {
  for (const name of ['add', 'delete', 'expire', 'acquire', 'newMapping', 'message', 'register', 'error'] as const) {
    db.on(name, (e: unknown) => void into.push([`${label} '${name}' event`, e]));
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** An SA natt handed out still reads its keys: `sa.encryption.key` and `sa.integrity.key` are the bytes. */
function readable(sa: SecurityAssociation): void {
  expect(Buffer.from(sa.encryption?.key ?? [])).toEqual(Buffer.from(ENC()));
  expect(Buffer.from(sa.integrity?.key ?? [])).toEqual(Buffer.from(INT()));
}

/** 'add' events carry the keys (readable) with revealKeys, and none without. */
function addEventKeys(events: Array<[string, unknown]>, reveal: boolean): void {
  const adds = events.filter(([w]) => w.endsWith("'add' event")).map(([, e]) => e as SecurityAssociation);
  expect(adds.length).toBeGreaterThan(0);
  for (const sa of adds) {
    if (reveal) expect(sa.encryption?.key).toEqual(ENC());
    else expect(sa.encryption?.key).toHaveLength(0);
  }
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------------
// Scripted kernels that answer with the keys, as kernels do

const L = DIALECTS.linux;
const v4 = (address: string, port = 0) => ({ family: 'inet' as const, address, port });
const addr = (name: 'src' | 'dst', address: string): PfKeyExtension => ({ name, proto: 0, prefixlen: 32, addr: v4(address) });

function pfkeyKernel() {
  return scriptedTransport((bytes, push) => {
    const req = pfDecode(bytes, L);
    const reply = (m: PfKeyMessage): void => push(pfEncode(m, L));
    const seq = req.seq ?? 0;
    const pid = req.pid ?? 0;
    switch (req.type) {
      case SADB.GET:
        return reply(saToMessage(natted(0x3001), SADB.GET, L, seq, pid));
      case SADB.DUMP:
        return reply(saToMessage(natted(0x3001), SADB.DUMP, L, 0, pid));
      case SADB.GETSPI:
        return reply({ type: SADB.GETSPI, satype: 3, seq, pid, extensions: [{ name: 'sa', spi: 0x3002, replay: 0, state: 0, auth: 0, encrypt: 0, flags: 0 }, addr('src', '192.0.2.1'), addr('dst', '192.0.2.2')] });
      case SADB.X_SPDADD:
      case SADB.X_SPDUPDATE:
        return reply({ ...req, extensions: req.extensions.map((e) => (e.name === 'policy' ? { ...e, id: 9 } : e)) });
      default:
        return reply(req); // ADD/UPDATE/DELETE/FLUSH/REGISTER: the kernel answers with the request (ADD's keys included)
    }
  });
}

function xfrmKernel() {
  return scriptedTransport((bytes, push) => {
    const [req] = xfDecode(bytes);
    const reply = (m: XfrmMessage): void => push(xfEncode(m));
    const ack: XfrmMessage = { type: 'error', seq: req.seq, pid: 1, error: 0, request: { len: 16, type: 16, flags: 5, seq: req.seq ?? 0, pid: 0 }, data: new Uint8Array(0) };
    const { sa, attrs } = saToStruct(natted(0x4001));
    switch (req.type) {
      case 'getsa':
      case 'allocspi':
        reply({ type: 'newsa', seq: req.seq, pid: 1, sa, attrs });
        return reply(ack);
      case 'getsaDump':
        reply({ type: 'newsa', seq: req.seq, pid: 1, flags: 2, sa, attrs });
        return reply({ type: 'done', seq: req.seq, pid: 1, flags: 2, data: new Uint8Array(4) });
      case 'getpolicyDump':
        return reply({ type: 'done', seq: req.seq, pid: 1, flags: 2, data: new Uint8Array(4) });
      case 'getpolicy':
        return reply(ack);
      default:
        return reply(ack);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------

describe('no key byte in any output (a crawl of every surface of every backend)', () => {
  afterAll(() => {
    // The figures for the record: how many surfaces were rendered, how many showed the key.
    console.log(
      `key crawl: ${crawl.surfaces} surfaces rendered, ${crawl.leaks.length} showed the key, in ${crawl.where.size} places ` +
        `(${crawl.errorPlaces.size} of them errors, ${crawl.where.size - crawl.errorPlaces.size} other outputs)`,
    );
    if (process.env.NATT_KEY_CRAWL_LIST) for (const w of crawl.where) console.log(`  ${w}`);
  });

  it('the userland database: get/dump, every event, the database and its entries, every refusal', async () => {
    for (const reveal of [false, true]) {
      const label = `userland${reveal ? ' (revealKeys)' : ''}`;
      const db = new UserlandSadb({ revealKeys: reveal });
      const events: Array<[string, unknown]> = [];
      listen(db, label, events);
      await db.add(keyed(0x1001));
      await db.update(keyed(0x1001, { replayWindow: 64 }));
      await db.add(natted(0x1002));
      await db.add(keyed(0x1003, { lifetime: { soft: { addSeconds: 0.01 }, hard: { addSeconds: 0.02 } } }));
      const spi = await db.getSpi({ src: '192.0.2.1', dst: '192.0.2.2' });
      await db.update(keyed(spi));
      const got = await db.get({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1001 });
      readable(got);
      crawl.value(`${label} get()`, got);
      crawl.value(`${label} dump()`, await collect(db.dump()));
      await db.register('esp');
      await db.spdAdd(policy);
      const p = db.policies.find(policy);
      if (p) db.acquire(p, '192.0.2.1', '192.0.2.2');
      const entry = [...db.entries()].find((e) => e.sa.natt);
      if (entry) db.newMapping(entry, '203.0.113.9', 60000);
      crawl.value(`${label} entries()`, [...db.entries()]);
      await tick(1100); // the lifetimes run out (the tracker counts from the second the SA was added)
      await db.delete({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1001 });
      await db.deleteAll({ src: '192.0.2.1', dst: '192.0.2.2' });
      crawl.value(`${label} the database object`, db);
      for (const [what, e] of events) crawl.value(what, e);
      addEventKeys(events, reveal);
      const kinds = new Set(events.map(([w]) => w.replace(/^.*'(\w+)' event$/, '$1')));
      for (const k of ['add', 'delete', 'expire', 'acquire', 'newMapping', 'register']) expect(kinds, `${label} emitted '${k}'`).toContain(k);
      await badInput(db, label);
      await db.close();
    }
    const viaOpen = await openSadb({ backend: 'userland' });
    await viaOpen.add(keyed(0x1101));
    crawl.value('openSadb userland get()', await viaOpen.get({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1101 }));
    await viaOpen.close();
    for (const [form, make] of FORMS) {
      const v = make();
      await crawl.call(`openSadb() backend as ${form}`, () => openSadb({ backend: v } as never));
      await crawl.call(`openSadb() unknown name ${form}`, () => openSadb({ [asName(v)]: 1 } as never));
      await crawl.call(`new UserlandSadb() acquireSeconds as ${form}`, () => new UserlandSadb({ acquireSeconds: v } as never));
    }
  });

  it('PfKey over a scripted kernel: replies, broadcasts, promiscuous copies, raw send(), every refusal', async () => {
    for (const reveal of [false, true]) {
      const label = `pfkey${reveal ? ' (revealKeys)' : ''}`;
      const t = pfkeyKernel();
      const p = new PfKey({ dialect: 'linux', transport: t.transport, revealKeys: reveal, timeout: 200 });
      const events: Array<[string, unknown]> = [];
      listen(p, label, events);
      await p.add(keyed(0x3001));
      await p.update(keyed(0x3001));
      const got = await p.get({ src: '198.51.100.7', dst: '192.0.2.1', spi: 0x3001 });
      readable(got);
      crawl.value(`${label} get()`, got);
      crawl.value(`${label} dump()`, await collect(p.dump()));
      await p.getSpi({ src: '192.0.2.1', dst: '192.0.2.2' });
      await p.register('esp');
      await p.delete({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x3001 });
      await p.spdAdd(policy);
      const raw = await p.send({ type: SADB.GET, satype: 3, extensions: [{ name: 'sa', spi: 0x3001, replay: 0, state: 0, auth: 0, encrypt: 0, flags: 0 }, addr('src', '198.51.100.7'), addr('dst', '192.0.2.1')] });
      crawl.value(`${label} send() reply`, raw);
      // What other sockets and the kernel send: a broadcast ADD with keys, an EXPIRE (keys included, though Linux
      // sends none), an ACQUIRE, a NEW_MAPPING, another process's GET reply (promiscuous copy), a policy broadcast.
      const sa = natted(0x3003);
      const broadcast = (m: PfKeyMessage): void => t.deliver(pfEncode(m, L));
      broadcast(saToMessage(sa, SADB.ADD, L, 0, 0));
      const exp = saToMessage(sa, SADB.EXPIRE, L, 0, 0);
      exp.extensions.push({ name: 'lifetimeHard', allocations: 0, bytes: 0n, addtime: 1n, usetime: 0n });
      broadcast(exp);
      broadcast({ type: SADB.ACQUIRE, satype: 3, seq: 5, pid: 0, extensions: [addr('src', '192.0.2.1'), addr('dst', '192.0.2.2')] });
      broadcast({
        type: SADB.X_NAT_T_NEW_MAPPING,
        satype: 3,
        seq: 9,
        pid: 0,
        extensions: [{ name: 'sa', spi: 0x3001, replay: 0, state: 1, auth: 3, encrypt: 12, flags: 0 }, addr('src', '198.51.100.7'), { name: 'nattSport', port: 4500 }, addr('dst', '203.0.113.9'), { name: 'nattDport', port: 60000 }],
      });
      broadcast(saToMessage(sa, SADB.GET, L, 77, 4242));
      broadcast({ type: SADB.DELETE, satype: 3, seq: 0, pid: 0, extensions: [addr('src', '192.0.2.1'), addr('dst', '192.0.2.2')] });
      await tick(50);
      for (const [what, e] of events) crawl.value(what, e);
      addEventKeys(events, reveal);
      const kinds = new Set(events.map(([w]) => w.replace(/^.*'(\w+)' event$/, '$1')));
      for (const k of ['add', 'delete', 'expire', 'acquire', 'newMapping', 'register', 'message']) expect(kinds, `${label} emitted '${k}'`).toContain(k);
      crawl.value(`${label} the client object`, p);
      await badInput(p, label);
      await p.close();
    }
    for (const [form, make] of FORMS) {
      const v = make();
      await crawl.call(`new PfKey() dialect as ${form}`, () => new PfKey({ dialect: v } as never));
      await crawl.call(`new PfKey() timeout as ${form}`, () => new PfKey({ timeout: v } as never));
      await crawl.call(`pfkey.encode() key extension holding ${form}`, () =>
        pfkey.encode({ type: SADB.ADD, satype: 3, seq: 1, pid: 1, extensions: [{ name: 'keyEncrypt', bits: 256, key: v }] } as never, 'linux'),
      );
      await crawl.call(`pfkey.encode() extension named by ${form}`, () => pfkey.encode({ type: SADB.ADD, satype: 3, seq: 1, pid: 1, extensions: [{ name: asName(v) }] } as never, 'linux'));
    }
    await crawl.call('pfkey.decode() of a datagram of key bytes', () => pfkey.decode(Buffer.alloc(64, BYTE), 'linux'));
    const bytes = pfEncode(saToMessage(keyed(0x3009), SADB.ADD, L, 1, 1), L);
    await crawl.call('pfkey.decode() of an ADD with keys', () => pfkey.decode(bytes, 'linux'));
    await crawl.call('pfkey.decode() of an ADD with keys, cut short', () => pfkey.decode(bytes.subarray(0, bytes.length - 8), 'linux'));
  });

  it('Xfrm over a scripted kernel: replies, multicast events, late NACKs, raw(), decode errors, every refusal', async () => {
    for (const reveal of [false, true]) {
      const label = `xfrm${reveal ? ' (revealKeys)' : ''}`;
      const t = xfrmKernel();
      const x = await Xfrm.open({ transport: t.transport, revealKeys: reveal, timeout: 200 });
      const events: Array<[string, unknown]> = [];
      listen(x, label, events);
      await x.add(keyed(0x4001));
      await x.update(keyed(0x4001));
      const got = await x.get({ src: '198.51.100.7', dst: '192.0.2.1', spi: 0x4001 });
      readable(got);
      crawl.value(`${label} get()`, got);
      crawl.value(`${label} dump()`, await collect(x.dump()));
      await x.getSpi({ src: '192.0.2.1', dst: '192.0.2.2' });
      await x.register('esp');
      await x.delete({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x4001 });
      crawl.value(`${label} raw() reply`, await x.raw({ type: 'getsa', id: { daddr: '192.0.2.1', spi: 0x4001, family: 2, proto: 50 }, attrs: [] }, XFRM_MSG.NEWSA));
      const { sa, attrs } = saToStruct(natted(0x4003));
      const multicast = (m: XfrmMessage): void => t.deliver(xfEncode(m));
      multicast({ type: 'newsa', seq: 0, pid: 0, sa, attrs });
      multicast({ type: 'updsa', seq: 0, pid: 0, sa, attrs });
      multicast({ type: 'expire', seq: 0, pid: 0, sa, hard: true, attrs });
      multicast({
        type: 'mapping',
        mapping: { id: { daddr: '192.0.2.1', spi: 0x4003, family: 2, proto: 50 }, reqid: 7, oldSaddr: '198.51.100.7', newSaddr: '203.0.113.9', oldSport: 4500, newSport: 60000 },
        attrs: [],
      });
      multicast({ type: 'delsa', id: { daddr: '192.0.2.1', spi: 0x4003, family: 2, proto: 50 }, attrs: [{ kind: 'sa', sa }] });
      multicast({
        type: 'acquire',
        acquire: {
          id: { daddr: '192.0.2.2', spi: 0, proto: 50 },
          saddr: '192.0.2.1',
          sel: { ...sa.sel, daddr: '10.2.0.0', saddr: '10.1.0.0', prefixlenD: 24, prefixlenS: 24, family: 2 },
          policy: { sel: sa.sel, lft: sa.lft, curlft: sa.curlft, priority: 0, index: 9, dir: 1, action: 0, flags: 0, share: 0 },
          aalgos: 0,
          ealgos: 0,
          calgos: 0,
          seq: 77,
        },
        attrs: [],
      });
      multicast({ type: 'flushpolicy', attrs: [] });
      // A message natt does not turn into an event but that carries algorithm keys, and a late NACK echoing a NEWSA
      // request (the kernel puts the request after the errno): both go out as 'message'.
      multicast({ type: 'getsa', seq: 0, pid: 0, id: { daddr: '192.0.2.1', spi: 0x4003, family: 2, proto: 50 }, attrs });
      const newsa = xfEncode({ type: 'newsa', seq: 31337, flags: 5, sa, attrs });
      multicast({ type: 'error', seq: 31337, pid: 0, error: -17, request: { len: newsa.length, type: XFRM_MSG.NEWSA, flags: 5, seq: 31337, pid: 0 }, data: newsa.subarray(16) });
      // A datagram that does not decode, made of key bytes: an 'error' event.
      t.deliver(Buffer.concat([Buffer.from([40, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(64, BYTE)]));
      await tick(20);
      for (const [what, e] of events) crawl.value(what, e);
      addEventKeys(events, reveal);
      const kinds = new Set(events.map(([w]) => w.replace(/^.*'(\w+)' event$/, '$1')));
      for (const k of ['add', 'delete', 'expire', 'acquire', 'newMapping', 'register', 'message', 'error']) expect(kinds, `${label} emitted '${k}'`).toContain(k);
      crawl.value(`${label} the client object`, x);
      await badInput(x, label);
      await x.close();
    }
    for (const [form, make] of FORMS) {
      const v = make();
      await crawl.call(`Xfrm.open() timeout as ${form}`, () => Xfrm.open({ timeout: v } as never));
      await crawl.call(`Xfrm.open() groups as ${form}`, () => Xfrm.open({ groups: v } as never));
      await crawl.call(`xfrm.encode() algCrypt key holding ${form}`, () =>
        xfrm.encode({ type: 'newsa', ...saToStruct(keyed(1)), attrs: [{ kind: 'algCrypt', name: 'cbc(aes)', keyBits: 256, key: v }] } as never),
      );
      await crawl.call(`xfrm.encode() algCrypt name as ${form}`, () =>
        xfrm.encode({ type: 'newsa', ...saToStruct(keyed(1)), attrs: [{ kind: 'algCrypt', name: v, keyBits: 256, key: ENC() }] } as never),
      );
    }
    const bytes = xfEncode({ type: 'newsa', seq: 1, ...saToStruct(keyed(0x4009)) });
    await crawl.call('xfrm.decode() of a NEWSA with keys', () => xfrm.decode(bytes));
    await crawl.call('xfrm.decode() of a NEWSA with keys, cut short', () => xfrm.decode(bytes.subarray(0, bytes.length - 4)));
  });

  it('setkey: parsed operations, the applier, the formatters without revealKeys, parse errors about keys', async () => {
    const file =
      `add 192.0.2.1 192.0.2.2 esp 0x5001 -E aes-cbc 0x${HEX} -A hmac-sha1 0x${'a5'.repeat(20)};\n` +
      `add 192.0.2.1 192.0.2.2 esp 0x5002 -E aes-cbc 0x${'a5'.repeat(16)} -A hmac-sha1 0x${'a5'.repeat(20)};\n` +
      'get 192.0.2.1 192.0.2.2 esp 0x5001;\ndump esp;\n';
    const ops = parseSetkey(file, { platform: 'userland' });
    crawl.value('parseSetkey() operations', ops);
    for (const op of ops) crawl.text(`opText(${op.op})`, opText(op));
    const db = new UserlandSadb();
    const applied: unknown[] = [];
    const result = await applySetkey(ops, db, { onOp: (e) => void applied.push(e), now: 0, pid: 1 });
    crawl.value('applySetkey() result', result);
    crawl.text('applySetkey() output', result.output);
    crawl.value('applySetkey() onOp events', applied);
    const sas = await collect(db.dump());
    crawl.text('formatSadDump()', formatSadDump(sas, { now: 0, pid: 1 }));
    crawl.text('formatSpdDump()', formatSpdDump([policy], { now: 0, pid: 1 }));
    crawl.text('toSetkey()', toSetkey(sas, [policy]));
    await db.close();
    const bad: [string, string][] = [
      ['a hex key of the wrong length', `0x${HEX.slice(2)}`],
      ['a quoted key of the wrong length', `"${B64}"`],
      ['a bare hex word as the key', HEX],
      ['a bare base64 word as the key', B64.replace(/[+/=]/g, 'A')],
    ];
    for (const [what, key] of bad) {
      await crawl.call(`parseSetkey() with ${what}`, () => parseSetkey(`add 192.0.2.1 192.0.2.2 esp 0x5003 -E aes-cbc ${key} -A hmac-sha1 0x${'a5'.repeat(20)};`));
      await crawl.call(`parseSetkey() with ${what} for -A`, () => parseSetkey(`add 192.0.2.1 192.0.2.2 esp 0x5003 -E aes-cbc 0x${HEX} -A hmac-sha1 ${key};`));
    }
    for (const [form, make] of FORMS) {
      const v = make();
      await crawl.call(`formatSadDump() of ${form}`, () => formatSadDump(v as never));
      await crawl.call(`formatSadDump() options as ${form}`, () => formatSadDump([], v as never));
      await crawl.call(`toSetkey() of ${form}`, () => toSetkey(v as never));
      await crawl.call(`parseSetkey() of ${form}`, () => parseSetkey(v as never));
      await crawl.call(`applySetkey() of ${form}`, () => applySetkey(v as never, db));
    }
  });

  it('the daemon configuration: the parsed SAs, and every refusal of a file with keys in it', async () => {
    const sa = (enc: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      src: '192.0.2.1',
      dst: '192.0.2.2',
      spi: 0x7001,
      encryption: { algorithm: 'aes-cbc', key: enc },
      integrity: { algorithm: 'hmac-sha1-96', key: `0x${'a5'.repeat(20)}` },
      ...extra,
    });
    const good = parseDaemonConfig(JSON.stringify({ sas: [sa(`0x${HEX}`)] }));
    expect(Buffer.from(good.sas[0].encryption?.key ?? [])).toEqual(Buffer.from(ENC()));
    crawl.value('parseDaemonConfig() result', good);
    const texts: [string, string][] = [
      ['a syntax error right after a key', `{"sas": [{"encryption": {"key": "0x${HEX}" x}}]}`],
      ['a key without quotes', `{"sas": [{"encryption": {"key": ${HEX}}}]}`],
      ['a key without quotes, 0x', `{"sas": [{"encryption": {"key": 0x${HEX}}}]}`],
      ['an unterminated key', `{"sas": [{"encryption": {"key": "0x${HEX}`],
    ];
    for (const [what, text] of texts) await crawl.call(`parseDaemonConfig() with ${what}`, () => parseDaemonConfig(text));
    for (const [form, make] of FORMS) {
      const v = make();
      await crawl.call(`parseDaemonConfig() key as ${form}`, () => parseDaemonConfig({ sas: [sa(v)] }));
      await crawl.call(`parseDaemonConfig() spi as ${form}`, () => parseDaemonConfig({ sas: [sa(`0x${HEX}`, { spi: v })] }));
      await crawl.call(`parseDaemonConfig() tun.name as ${form}`, () => parseDaemonConfig({ tun: { name: v } }));
      await crawl.call(`parseDaemonConfig() an unknown name ${form}`, () => parseDaemonConfig({ [asName(v)]: 1 }));
    }
  });

  it('EspTransform: its inspection and every refusal of a key', async () => {
    const t = new EspTransform({ spi: 0x6001, encryption: { algorithm: 'aes-cbc', key: ENC() }, integrity: { algorithm: 'hmac-sha1-96', key: INT() } });
    crawl.value('EspTransform', t);
    for (const [form, make] of FORMS) {
      const v = make();
      await crawl.call(`EspTransform encryption.key as ${form}`, () => new EspTransform({ spi: 1, encryption: { algorithm: 'aes-gcm-16', key: v } } as never));
      await crawl.call(`EspTransform integrity.key as ${form}`, () => new EspTransform({ spi: 1, encryption: { algorithm: 'aes-cbc', key: ENC() }, integrity: { algorithm: 'hmac-sha1-96', key: v } } as never));
      await crawl.call(`EspTransform encryption.algorithm as ${form}`, () => new EspTransform({ spi: 1, encryption: { algorithm: v, key: ENC() } } as never));
      await crawl.call(`EspTransform spi as ${form}`, () => new EspTransform({ spi: v, encryption: { algorithm: 'aes-cbc', key: ENC() } } as never));
    }
  });

  it('the crawl can fail: every needle finds the key where it is printed, and a plain keyed SA shows it', () => {
    const c = new Crawl();
    const key = Buffer.from(ENC());
    c.value('the bare key bytes', ENC());
    c.value('the key as a Buffer', key);
    c.text('hex text', key.toString('hex'));
    c.text('hex dump', key.toString('hex').replace(/(.{8})/g, '$1 '));
    c.text('0x list', [...key].map((b) => `0x${b.toString(16)}`).join(', '));
    c.text('base64 text', B64);
    c.text('latin1 text', key.toString('latin1'));
    c.text('decimal list', [...key].join(','));
    c.error('an error printing the key', new TypeError(`bad key ${key.toString('hex')}`));
    c.error('an error whose cause holds the key', new Error('outer', { cause: { key: ENC() } }));
    for (const group of ['the bare key bytes', 'the key as a Buffer', 'hex text', 'hex dump', '0x list', 'base64 text', 'latin1 text', 'decimal list', 'an error printing the key', 'an error whose cause holds the key']) {
      expect([...c.where], group).toContain(group);
    }
    // Every rendering of the bare bytes shows them.
    expect(c.leaks.filter((l) => l.startsWith('the bare key bytes |'))).toHaveLength(RENDERINGS.length);
    const plain = new Crawl();
    plain.value('an SA with its keys as plain properties', keyed(1));
    // All but String() ('[object Object]') and %s (which inspects one level deep only).
    const silent = RENDERINGS.map(([mode]) => mode).filter((mode) => !plain.leaks.some((l) => l.includes(`| ${mode}:`)));
    expect(silent).toEqual(['format %s', 'String']);
  });

  it('no surface showed the key', () => {
    expect(crawl.surfaces).toBeGreaterThan(10_000);
    const sample = crawl.leaks.slice(0, 60).join('\n');
    expect(crawl.leaks.length, `${crawl.leaks.length} of ${crawl.surfaces} surfaces showed the key, in ${crawl.where.size} places; first ones:\n${sample}`).toBe(0);
  });
});
