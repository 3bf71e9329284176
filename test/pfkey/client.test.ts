// The PfKey client on this host: no-PF_KEY advice, bad options, dialect choice, and its logic over a scripted transport.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inspect } from 'node:util';
import { scriptedTransport } from '../lib/scripted-transport';
import { decode, encode, type PfKeyExtension, type PfKeyMessage } from '../../src/pfkey/codec';
import { saToMessage } from '../../src/pfkey/convert';
import { DIALECTS, SADB, defaultDialectName, type Dialect } from '../../src/pfkey/dialects';
import { NattTimeoutError } from '../../src/errors';
import type { NewMappingEvent, SaId, SecurityAssociation, SupportedAlgorithms, ExpireEvent } from '../../src/sadb/types';
import { openSadb } from '../../src/open';
import { PfKey } from '../../src/pfkey/client';
import { loadNative } from '../../src/native/binding';
import { NattSystemError } from '../../src/errors';
import { pfkey, PfKeyDecodeError, PfKey as ExportedPfKey } from '../../src/index';

const native = loadNative();
const pfkeyFact = native?.probe().pfkey;
const noPfKey = native !== null && pfkeyFact?.ok === false && pfkeyFact.code === 'EAFNOSUPPORT';

describe('PfKey where the kernel has no PF_KEY', () => {
  it.skipIf(!noPfKey)(
    `openSadb({ backend: 'pfkey' }) rejects with EAFNOSUPPORT naming CONFIG_NET_KEY and modprobe af_key${noPfKey ? '' : ' (skipped: this host has PF_KEY or no native addon)'}`,
    async () => {
      const err = await openSadb({ backend: 'pfkey' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NattSystemError);
      expect(err).toMatchObject({ code: 'EAFNOSUPPORT', errno: -97, syscall: 'socket' });
      expect((err as Error).message).toMatch(/CONFIG_NET_KEY/);
      expect((err as Error).message).toMatch(/modprobe af_key/);
    },
  );
});

describe('PfKey options are checked before any socket is opened', () => {
  it('bad dialect → RangeError naming "dialect"; bad timeout → TypeError naming "timeout"', () => {
    expect(() => new PfKey({ dialect: 'solaris' as 'linux' })).toThrow(/"dialect"/);
    expect(() => new PfKey({ dialect: 'solaris' as 'linux' })).toThrow(RangeError);
    expect(() => new PfKey({ timeout: -1 })).toThrow(/"timeout"/);
  });
});

describe("the public surface: import { pfkey, PfKeyDecodeError, PfKey } from 'natt'", () => {
  it('pfkey.encode/decode with a dialect, dialect tables and constants', () => {
    const b = pfkey.encode({ type: pfkey.constants.SADB.FLUSH, satype: pfkey.constants.SATYPE.ESP, seq: 1, pid: 2, extensions: [] }, 'freebsd');
    expect(b).toEqual(Buffer.from('0209000302000000' + '0100000002000000', 'hex'));
    expect(pfkey.decode(b, 'netbsd')).toMatchObject({ type: 9, satype: 3, seq: 1, pid: 2 });
    expect(pfkey.dialects.freebsd.udpEncapOption).toBe(1);
    expect(pfkey.dialects.linux.udpEncapOption).toBe(100);
    expect(pfkey.dialects.linux.ipsecRequestSize).toBe(16);
    expect(pfkey.dialects.netbsd.ipsecRequestSize).toBe(8);
    expect(pfkey.messageName(23)).toBe('SADB_X_NAT_T_NEW_MAPPING');
    expect(() => pfkey.decode(Buffer.alloc(3))).toThrow(PfKeyDecodeError);
    expect(ExportedPfKey).toBe(PfKey);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Over a scripted transport

const PID = process.pid >>> 0;
const L = DIALECTS.linux;
const v4 = (address: string, port = 0) => ({ family: 'inet' as const, address, port });
const addr = (name: 'src' | 'dst', address: string): PfKeyExtension => ({ name, proto: 0, prefixlen: 32, addr: v4(address) });
const saExt = (spi: number): PfKeyExtension => ({ name: 'sa', spi, replay: 0, state: 1, auth: 3, encrypt: 12, flags: 0 });
const secret = Buffer.from('5ec2e75ec2e75ec2e75ec2e75ec2e75e', 'hex');

const natSa = (spi: number): SecurityAssociation => ({
  src: '198.51.100.7',
  dst: '192.0.2.1',
  spi,
  protocol: 'esp',
  mode: 'transport',
  reqid: 9,
  encryption: { algorithm: 'aes-cbc', key: secret },
  integrity: { algorithm: 'hmac-sha1-96', key: Buffer.alloc(20, 0x5e) },
  natt: { type: 'espinudp', sport: 4500, dport: 4500 },
});

/** Linux's NEW_MAPPING for `spi` (kernel-interfaces.md §2.7): old peer 198.51.100.7:4500, new 203.0.113.9:60000. */
const newMapping = (spi: number): PfKeyMessage => ({
  type: SADB.X_NAT_T_NEW_MAPPING,
  satype: 3,
  seq: 9,
  pid: 0,
  extensions: [saExt(spi), addr('src', '198.51.100.7'), { name: 'nattSport', port: 4500 }, addr('dst', '203.0.113.9'), { name: 'nattDport', port: 60000 }],
});

/** A PfKey over a scripted transport that answers with `answer(request)` (undefined: no answer). */
function scriptedPfKey(answer?: (req: PfKeyMessage) => PfKeyMessage | PfKeyMessage[] | undefined, opts: { revealKeys?: boolean; timeout?: number; dialect?: Dialect } = {}) {
  const t = scriptedTransport((bytes, push) => {
    const r = answer?.(decode(bytes, opts.dialect ?? L));
    for (const m of r === undefined ? [] : Array.isArray(r) ? r : [r]) push(encode(m, opts.dialect ?? L));
  });
  const p = new PfKey({ dialect: opts.dialect ?? 'linux', transport: t.transport, revealKeys: opts.revealKeys, timeout: opts.timeout });
  return { p, t, sent: () => t.sent.map((b) => decode(b, opts.dialect ?? L)), push: (m: PfKeyMessage) => t.push(encode(m, opts.dialect ?? L)) };
}

describe('PfKey over a scripted transport', () => {
  it('no answer → NattTimeoutError naming the message; the request is no longer pending and the socket unref’d', async () => {
    const { p, t } = scriptedPfKey();
    const call = p.flush('esp', { timeout: 20 });
    expect(p.stats().pending).toBe(1);
    expect(t.state.refd).toBe(true);
    const e = await call.catch((err: unknown) => err);
    expect(e).toBeInstanceOf(NattTimeoutError);
    expect((e as Error).message).toMatch(/SADB_FLUSH/);
    expect(p.stats().pending).toBe(0);
    expect(t.state.refd).toBe(false);
    // The client's own default timeout applies when the call gives none.
    const q = scriptedPfKey(undefined, { timeout: 15 });
    await expect(q.p.register('esp')).rejects.toBeInstanceOf(NattTimeoutError);
    expect(q.p.stats().pending).toBe(0);
    await p.close();
    await q.p.close();
    expect(t.state.closed).toBe(true);
  });

  it('a reply is matched by type, seq and pid: another pid’s or another seq’s answer is ignored', async () => {
    const { p, sent, t } = scriptedPfKey();
    const call = p.get({ src: '198.51.100.7', dst: '192.0.2.1', spi: 0x1234 });
    const req = sent()[0];
    expect(req).toMatchObject({ type: SADB.GET, pid: PID });
    const reply = (seq: number, pid: number, spi: number) => saToMessage(natSa(spi), SADB.GET, L, seq, pid);
    const seen: unknown[] = [];
    p.on('message', (m) => seen.push(m));
    t.deliver(encode(reply(req.seq!, (PID + 1) >>> 0, 0x1111), L)); // someone else's GET with our seq
    t.deliver(encode(reply((req.seq! + 1) >>> 0, PID, 0x2222), L)); // ours, another seq
    t.deliver(encode({ type: SADB.DELETE, satype: 3, seq: req.seq, pid: PID, extensions: [] }, L)); // our seq, another type
    expect(p.stats().pending).toBe(1);
    expect(seen).toHaveLength(3); // not answers: passed on as messages
    t.deliver(encode(reply(req.seq!, PID, 0x1234), L));
    const sa = await call;
    expect(sa).toMatchObject({ spi: 0x1234, dst: '192.0.2.1', natt: { sport: 4500 } });
    expect(Buffer.from(sa.encryption!.key)).toEqual(secret); // get returns keys, in key holders
    expect(inspect(sa, { depth: 5 })).not.toMatch(/5ec2|94, 194/);
    expect(p.stats().pending).toBe(0);
    await p.close();
  });

  it('an AbortSignal that fires mid-flight rejects with its reason and drops the pending request', async () => {
    const { p } = scriptedPfKey();
    const ac = new AbortController();
    const call = p.getSpi({ src: '198.51.100.7', dst: '192.0.2.1' }, { signal: ac.signal });
    expect(p.stats().pending).toBe(1);
    setTimeout(() => ac.abort(new Error('caller gave up')), 5);
    await expect(call).rejects.toThrow('caller gave up');
    expect(p.stats().pending).toBe(0);
    await p.close();
  });

  it("a hard EXPIRE (LIFETIME_HARD) → 'expire' kind 'hard', the SA without keys; a soft one → kind 'soft'", async () => {
    const { p, push } = scriptedPfKey();
    const got: ExpireEvent[] = [];
    p.on('expire', (e) => got.push(e));
    const lt = (name: 'lifetimeCurrent' | 'lifetimeHard' | 'lifetimeSoft', add: bigint): PfKeyExtension => ({ name, allocations: 0, bytes: 0n, addtime: add, usetime: 0n });
    const expire = (soft: boolean): PfKeyMessage => {
      const m = saToMessage(natSa(0x4242), SADB.EXPIRE, L, 0, 0);
      // The kernel sends no keys in EXPIRE; it sends CURRENT and the lifetime that ran out.
      m.extensions = m.extensions.filter((x) => x.name !== 'keyAuth' && x.name !== 'keyEncrypt' && !x.name.startsWith('lifetime'));
      m.extensions.push(lt('lifetimeCurrent', 1700000000n), soft ? lt('lifetimeSoft', 1n) : lt('lifetimeHard', 2n));
      return m;
    };
    push(expire(false));
    push(expire(true));
    await new Promise((r) => setTimeout(r, 10));
    expect(got.map((e) => e.kind)).toEqual(['hard', 'soft']);
    expect(got[0].sa).toMatchObject({ spi: 0x4242, src: '198.51.100.7', dst: '192.0.2.1', natt: { sport: 4500, dport: 4500 } });
    expect(got[0].sa.encryption?.key.length ?? 0).toBe(0);
    await p.close();
  });

  it("NEW_MAPPING → 'newMapping' with XFRM's shape: the SA's dst and reqid found in a dump, old and new address/port", async () => {
    const inbound = { ...natSa(0xc0ffee01), src: '198.51.100.7', dst: '192.0.2.1', reqid: 31 };
    const { p, push, sent } = scriptedPfKey((req) => {
      if (req.type !== SADB.DUMP) return undefined;
      // Two SAs: another SPI, then the one that moved (last message of a dump has seq 0).
      return [saToMessage({ ...inbound, spi: 0x99 }, SADB.DUMP, L, 1, req.pid!), saToMessage(inbound, SADB.DUMP, L, 0, req.pid!)];
    });
    const ev = new Promise<NewMappingEvent>((r) => p.once('newMapping', r));
    push(newMapping(0xc0ffee01));
    expect(await ev).toEqual({
      sa: { src: '198.51.100.7', dst: '192.0.2.1', spi: 0xc0ffee01, protocol: 'esp' },
      reqid: 31,
      old: { address: '198.51.100.7', port: 4500 },
      new: { address: '203.0.113.9', port: 60000 },
    });
    expect(sent().map((m) => m.type)).toEqual([SADB.DUMP]);
    await p.close();
  });

  it("NEW_MAPPING for an SA that is gone (empty dump, ENOENT) still raises 'newMapping', sa.dst ''", async () => {
    const { p, push } = scriptedPfKey((req) => (req.type === SADB.DUMP ? { type: SADB.DUMP, errno: 2, satype: 3, seq: req.seq, pid: req.pid, extensions: [] } : undefined));
    const ev = new Promise<NewMappingEvent>((r) => p.once('newMapping', r));
    push(newMapping(7));
    expect(await ev).toEqual({ sa: { src: '198.51.100.7', dst: '', spi: 7, protocol: 'esp' }, old: { address: '198.51.100.7', port: 4500 }, new: { address: '203.0.113.9', port: 60000 } });
    await p.close();
  });

  it("a REGISTER broadcast (another socket registered) → 'register' with the algorithms by name", async () => {
    const { p, push } = scriptedPfKey();
    const ev = new Promise<SupportedAlgorithms>((r) => p.once('register', r));
    push({
      type: SADB.REGISTER,
      satype: 3,
      seq: 3,
      pid: 4242,
      extensions: [
        { name: 'supportedAuth', algs: [{ id: 3, ivlen: 0, minbits: 160, maxbits: 160 }] },
        { name: 'supportedEncrypt', algs: [{ id: 12, ivlen: 8, minbits: 128, maxbits: 256 }] },
      ],
    });
    expect(await ev).toEqual({
      protocol: 'esp',
      encryption: [{ algorithm: 'aes-cbc', id: 12, minBits: 128, maxBits: 256, ivBits: 64 }],
      integrity: [{ algorithm: 'hmac-sha1-96', id: 3, minBits: 160, maxBits: 160 }],
    });
    await p.close();
  });

  it("'add' and 'delete' broadcasts: keys removed by default, present (but never printed) with revealKeys: true", async () => {
    for (const revealKeys of [false, true]) {
      const { p, push } = scriptedPfKey(undefined, { revealKeys });
      const add = new Promise<SecurityAssociation>((r) => p.once('add', r));
      const del = new Promise<SaId>((r) => p.once('delete', r));
      // Linux broadcasts another socket's ADD to every PF_KEY socket, keys included (kernel-interfaces.md §3.3).
      push(saToMessage(natSa(0x5151), SADB.ADD, L, 12, 4242));
      push({ type: SADB.DELETE, satype: 3, seq: 13, pid: 4242, extensions: [saExt(0x5151), addr('src', '198.51.100.7'), addr('dst', '192.0.2.1')] });
      const sa = await add;
      expect(sa).toMatchObject({ spi: 0x5151, reqid: 9, natt: { sport: 4500 }, encryption: { algorithm: 'aes-cbc' } });
      if (revealKeys) expect(Buffer.from(sa.encryption!.key)).toEqual(secret);
      else expect(sa.encryption!.key.length).toBe(0);
      expect(inspect(sa, { depth: 5 }) + JSON.stringify(sa)).not.toMatch(/5ec2|94, 194|94, 94/);
      expect(await del).toEqual({ src: '198.51.100.7', dst: '192.0.2.1', spi: 0x5151, protocol: 'esp' });
      await p.close();
    }
  });

  it('an undecodable message is counted and dropped; an undecodable answer to a pending request fails it at once', async () => {
    const { p, t, sent } = scriptedPfKey();
    const errors: unknown[] = [];
    p.on('error', (e) => errors.push(e));
    t.deliver(Buffer.from('not a pf_key message'));
    t.deliver(Buffer.alloc(3));
    expect(p.stats()).toEqual({ decodeErrors: 2, badEvents: 0, pending: 0 });
    // A decodable message missing what its event needs (EXPIRE without addresses) is counted too.
    t.deliver(encode({ type: SADB.EXPIRE, satype: 3, seq: 0, pid: 0, extensions: [saExt(1)] }, L));
    expect(p.stats().badEvents).toBe(1);
    const call = p.flush();
    const req = sent()[0];
    const bad = encode({ type: SADB.FLUSH, satype: 0, seq: req.seq, pid: PID, extensions: [] }, L);
    bad[0] = 1; // version 1
    t.deliver(bad);
    await expect(call).rejects.toThrow(/version must be 2/);
    expect(p.stats()).toMatchObject({ decodeErrors: 3, pending: 0 });
    expect(errors).toEqual([]);
    await p.close();
  });

  it('transport must be a function; a socket error is reported as an error event', async () => {
    expect(() => new PfKey({ transport: 42 as never })).toThrow(/"transport"/);
    const t = scriptedTransport();
    const p = new PfKey({ transport: t.transport });
    const errs: Error[] = [];
    p.on('error', (e) => errs.push(e));
    t.fail(new Error('ENOBUFS'));
    expect(errs.map((e) => e.message)).toEqual(['ENOBUFS']);
    await p.close();
  });
});

describe('dialect selection', () => {
  const realPlatform = process.platform;
  const setPlatform = (p: string) => Object.defineProperty(process, 'platform', { value: p, configurable: true });
  afterEach(() => setPlatform(realPlatform));

  it('the default dialect follows process.platform (anything but NetBSD/FreeBSD is Linux)', () => {
    for (const [platform, want] of [
      ['netbsd', 'netbsd'],
      ['freebsd', 'freebsd'],
      ['linux', 'linux'],
      ['darwin', 'linux'],
    ] as const) {
      setPlatform(platform);
      expect(defaultDialectName()).toBe(want);
      expect(pfkey.defaultDialect()).toBe(want);
      const c = new PfKey({ transport: scriptedTransport().transport });
      expect(c.dialect).toBe(pfkey.dialects[want]);
      void c.close();
    }
  });

  it('UDP_ENCAP option numbers: Linux 100, NetBSD 100, FreeBSD 1', () => {
    expect(pfkey.dialects.linux.udpEncapOption).toBe(100);
    expect(pfkey.dialects.netbsd.udpEncapOption).toBe(100);
    expect(pfkey.dialects.freebsd.udpEncapOption).toBe(1);
  });

  it('a custom Dialect object is used as given by encode/decode and the client', async () => {
    // A Linux-like OS whose PF_KEY numbers extension 23 as an OAR address and has no NEW_MAPPING.
    const custom: Dialect = { ...DIALECTS.linux, msgMax: 22, extMax: 23, extensions: { 23: 'nattOar' } };
    const m: PfKeyMessage = { type: SADB.ADD, satype: 3, seq: 1, pid: 2, extensions: [{ name: 'nattOar', proto: 0, prefixlen: 32, addr: v4('10.0.0.9') }] };
    const b = pfkey.encode(m, custom);
    expect(b.readUInt16LE(18)).toBe(23);
    expect(b.readUInt16LE(24)).toBe(2); // Linux-style u16 family
    expect(pfkey.decode(b, custom).extensions[0]).toMatchObject({ name: 'nattOar', addr: { address: '10.0.0.9' } });
    expect(pfkey.decode(b, 'linux').extensions[0].name).toBe('nattOa');
    expect(() => pfkey.encode(m, 'linux')).toThrow(/"extensions"/);
    // The client speaks it: NEW_MAPPING (23) is past this dialect's SADB_MAX, so it is a plain 'message'.
    const t = scriptedTransport();
    const p = new PfKey({ dialect: custom, transport: t.transport });
    expect(p.dialect).toBe(custom);
    const msgs: unknown[] = [];
    let mapped = false;
    p.on('message', (x) => msgs.push(x));
    p.on('newMapping', () => (mapped = true));
    t.deliver(pfkey.encode({ type: 23, satype: 3, seq: 1, pid: 0, extensions: [saExt(1)] }, custom));
    expect(msgs).toHaveLength(1);
    expect(mapped).toBe(false);
    await p.close();
  });
});
