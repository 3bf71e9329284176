// Xfrm client logic over a scripted transport: seq matching, timeouts, abort, errno advice, dumps, event normalisation.

import { describe, expect, it, vi } from 'vitest';
import { inspect } from 'node:util';
import { MAX_IN_FLIGHT, Xfrm, type XfrmTransport } from '../../src/xfrm/client';
import { decode, encode, type XfrmMessage } from '../../src/xfrm/codec';
import { saToStruct } from '../../src/xfrm/convert';
import { KernelReplyError, NattTimeoutError } from '../../src/errors';
import type { NewMappingEvent, SecurityAssociation } from '../../src/sadb/types';

/** A transport that records requests and lets the test answer them. */
function scripted(answer?: (req: XfrmMessage, push: (m: XfrmMessage | Uint8Array) => void) => void) {
  let deliver!: (b: Buffer) => void;
  const sent: XfrmMessage[] = [];
  const bound: Uint8Array[] = [];
  const transport = (onMessage: (b: Buffer) => void): XfrmTransport => {
    deliver = onMessage;
    return {
      bind: (sa) => void bound.push(sa),
      send: (b) => {
        const [m] = decode(b);
        sent.push(m);
        const push = (x: XfrmMessage | Uint8Array): void => {
          const bytes = x instanceof Uint8Array ? Buffer.from(x) : encode(x);
          setImmediate(() => deliver(bytes));
        };
        answer?.(m, push);
        return b.length;
      },
      ref: () => undefined,
      unref: () => undefined,
      close: () => undefined,
    };
  };
  return { transport, sent, bound, push: (m: XfrmMessage) => deliver(encode(m)) };
}

const ack = (req: XfrmMessage, error = 0): XfrmMessage => ({
  type: 'error',
  seq: req.seq,
  pid: 1,
  error,
  request: { len: 16, type: 16, flags: 5, seq: req.seq ?? 0, pid: 0 },
  data: new Uint8Array(0),
});

const gcm: SecurityAssociation = {
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi: 0x1234,
  mode: 'tunnel',
  reqid: 3,
  encryption: { algorithm: 'aes-gcm-16', key: new Uint8Array(20).fill(0xab) },
  natt: { type: 'espinudp', sport: 4500, dport: 4500 },
};

describe('Xfrm client over a scripted transport', () => {
  it('binds the event groups (ACQUIRE, EXPIRE, SA, POLICY, MAPPING → mask 0x8f)', async () => {
    const t = scripted();
    const x = await Xfrm.open({ transport: t.transport });
    expect(Buffer.from(t.bound[0]).readUInt32LE(8)).toBe(0x8f);
    expect(Buffer.from(t.bound[0]).readUInt16LE(0)).toBe(16);
    await x.close();
  });

  it('add sends NEWSA with REQUEST|ACK, rfc4106 with a 128-bit ICV and the encap template', async () => {
    const t = scripted((req, push) => push(ack(req)));
    const x = await Xfrm.open({ transport: t.transport });
    await x.add(gcm);
    const m = t.sent[0];
    expect(m).toMatchObject({ type: 'newsa', flags: 5 });
    if (m.type !== 'newsa') throw new Error('type');
    expect(m.sa).toMatchObject({ reqid: 3, mode: 1, family: 2, id: { spi: 0x1234, proto: 50 } });
    expect(m.attrs.map((a) => a.kind)).toEqual(['algAead', 'encap']);
    expect(m.attrs[0]).toMatchObject({ name: 'rfc4106(gcm(aes))', keyBits: 160, icvBits: 128 });
    expect(m.attrs[1]).toMatchObject({ encapType: 2, sport: 4500, dport: 4500 });
    await x.close();
  });

  it('every model algorithm maps to its kernel template (authenc is the kernel’s own business)', () => {
    const attrsOf = (sa: Partial<SecurityAssociation>) => saToStruct({ src: '10.0.0.1', dst: '10.0.0.2', spi: 1, ...sa }).attrs;
    expect(attrsOf({ encryption: { algorithm: 'chacha20-poly1305', key: new Uint8Array(36) } })[0]).toMatchObject({
      kind: 'algAead',
      name: 'rfc7539esp(chacha20,poly1305)',
      icvBits: 128,
    });
    expect(attrsOf({ encryption: { algorithm: 'aes-gmac', key: new Uint8Array(20) } })[0]).toMatchObject({ name: 'rfc4543(gcm(aes))' });
    const cbc = attrsOf({
      encryption: { algorithm: 'aes-cbc', key: new Uint8Array(32) },
      integrity: { algorithm: 'hmac-sha2-256-128', key: new Uint8Array(32) },
    });
    expect(cbc).toMatchObject([
      { kind: 'algCrypt', name: 'cbc(aes)', keyBits: 256 },
      { kind: 'algAuthTrunc', name: 'hmac(sha256)', truncBits: 128 },
    ]);
    const esn = saToStruct({ src: '10.0.0.1', dst: '10.0.0.2', spi: 1, esn: true, replayWindow: 1024, encryption: { algorithm: 'aes-gcm-16', key: new Uint8Array(36) } });
    expect(esn.sa.flags & 128).toBe(128);
    expect(esn.attrs[1]).toMatchObject({ kind: 'replayEsnVal', replayWindow: 1024 });
    expect(() => attrsOf({ encryption: { algorithm: 'aes-gcm-16', key: new Uint8Array(16) } })).toThrow(RangeError);
    expect(() => attrsOf({ encryption: { algorithm: 'rot13' as 'null', key: new Uint8Array(0) } })).toThrow(/encryption\.algorithm/);
    expect(() => attrsOf({ natt: { type: 'espinudp', sport: 70000, dport: 4500 } })).toThrow(/natt\.sport/);
  });

  it('a kernel errno becomes a KernelReplyError naming the message, with advice', async () => {
    const t = scripted((req, push) => push(ack(req, req.type === 'newsa' ? -93 : -1)));
    const x = await Xfrm.open({ transport: t.transport });
    const e = await x.add(gcm).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(KernelReplyError);
    expect(e).toMatchObject({ code: 'EPROTONOSUPPORT', errno: -93, syscall: 'XFRM_MSG_NEWSA', messageType: 'XFRM_MSG_NEWSA' });
    expect((e as Error).message).toMatch(/CONFIG_INET_ESP/);
    const p = await x.spdFlush().catch((err: unknown) => err);
    expect(p).toMatchObject({ code: 'EPERM', messageType: 'XFRM_MSG_FLUSHPOLICY' });
    expect((p as Error).message).toMatch(/CAP_NET_ADMIN/);
    await x.close();
  });

  it('no answer → NattTimeoutError; an abort → the signal’s reason; close() fails what is pending', async () => {
    const t = scripted();
    const x = await Xfrm.open({ transport: t.transport });
    await expect(x.sadInfo({ timeout: 20 })).rejects.toBeInstanceOf(NattTimeoutError);
    const ac = new AbortController();
    const p = x.sadInfo({ signal: ac.signal });
    ac.abort(new Error('enough'));
    await expect(p).rejects.toThrow('enough');
    const q = x.sadInfo();
    await x.close();
    await expect(q).rejects.toMatchObject({ code: 'ERR_NATT_CLOSED' });
    expect(x.stats().pending).toBe(0);
  });

  it('get collects the NEWSA before the ACK; a NEWSA notification with another seq is an event, keys redacted', async () => {
    const { sa, attrs } = saToStruct(gcm);
    const t = scripted((req, push) => {
      push({ type: 'newsa', seq: (req.seq ?? 0) + 1000, pid: 0, sa, attrs });
      push({ type: 'newsa', seq: req.seq, pid: 1, sa, attrs });
      push(ack(req));
    });
    const x = await Xfrm.open({ transport: t.transport });
    const added: SecurityAssociation[] = [];
    x.on('add', (s) => added.push(s));
    const got = await x.get({ src: gcm.src, dst: gcm.dst, spi: gcm.spi });
    expect(got).toMatchObject({ spi: 0x1234, mode: 'tunnel', reqid: 3, encryption: { algorithm: 'aes-gcm-16' }, natt: { type: 'espinudp', sport: 4500, dport: 4500 } });
    expect(Buffer.from(got.encryption!.key).toString('hex')).toBe('ab'.repeat(20));
    expect(inspect(got, { depth: 5 })).not.toMatch(/abab/);
    expect(added).toHaveLength(1);
    expect(added[0].encryption!.key).toHaveLength(0);
    await x.close();
  });

  it('dumps stream every multipart item until NLMSG_DONE, one dump at a time', async () => {
    const { sa, attrs } = saToStruct(gcm);
    const t = scripted((req, push) => {
      for (let i = 0; i < 3; i++) push({ type: 'newsa', seq: req.seq, pid: 1, flags: 2, sa: { ...sa, id: { ...sa.id, spi: 100 + i } }, attrs });
      push({ type: 'done', seq: req.seq, pid: 1, flags: 2, data: new Uint8Array(4) });
    });
    const x = await Xfrm.open({ transport: t.transport });
    const list = async (): Promise<number[]> => {
      const spis: number[] = [];
      for await (const s of x.dump()) spis.push(s.spi);
      return spis;
    };
    const [a, b] = await Promise.all([list(), list()]);
    expect(a).toEqual([100, 101, 102]);
    expect(b).toEqual([100, 101, 102]);
    expect(t.sent.map((m) => m.type)).toEqual(['getsaDump', 'getsaDump']);
    expect(t.sent[0].flags).toBe(0x301);
    await x.close();
  });

  it('a consumer that leaves a dump early: the rest is read and dropped, and only then does the next dump start', async () => {
    const { sa, attrs } = saToStruct(gcm);
    // Like the kernel: one dump at a time per socket (a second one is EBUSY until the first one's NLMSG_DONE),
    // its items spread over several datagrams.
    let running = false;
    const order: string[] = [];
    const t = scripted((req, push) => {
      if (req.type === 'getsa') {
        push({ type: 'newsa', seq: req.seq, pid: 1, sa, attrs });
        push(ack(req));
        return;
      }
      if (req.type !== 'getsaDump') return;
      order.push(`dump ${t.sent.length}`);
      if (running) return void push(ack(req, -16));
      running = true;
      let i = 0;
      const next = (): void => {
        if (i < 4) {
          push({ type: 'newsa', seq: req.seq, pid: 1, flags: 2, sa: { ...sa, id: { ...sa.id, spi: 100 + i } }, attrs });
          i++;
          setTimeout(next, 3);
        } else {
          running = false;
          order.push('done');
          push({ type: 'done', seq: req.seq, pid: 1, flags: 2, data: new Uint8Array(4) });
        }
      };
      next();
    });
    const x = await Xfrm.open({ transport: t.transport });
    const first: number[] = [];
    for await (const s of x.dump()) {
      first.push(s.spi);
      break;
    }
    // A plain request meanwhile is answered (matched by its own seq, not mixed with the dump's items).
    expect((await x.get({ src: gcm.src, dst: gcm.dst, spi: gcm.spi })).spi).toBe(0x1234);
    const second: number[] = [];
    for await (const s of x.dump()) second.push(s.spi);
    expect(first).toEqual([100]);
    expect(second).toEqual([100, 101, 102, 103]);
    expect(order).toEqual(['dump 1', 'done', 'dump 3', 'done']);
    expect(x.stats()).toEqual({ drops: 0, pending: 0, mappingFailures: 0 });
    await x.close();
  });

  it("MAPPING → newMapping (old/new address and port; mapping 'notify': at once, in order), EXPIRE → expire without keys, DELSA → delete, ACQUIRE → acquire", async () => {
    const t = scripted();
    const x = await Xfrm.open({ transport: t.transport, mapping: 'notify' });
    const events: Array<[string, unknown]> = [];
    for (const name of ['newMapping', 'expire', 'delete', 'acquire', 'message'] as const) x.on(name, (e: unknown) => events.push([name, e]));
    const { sa, attrs } = saToStruct(gcm);
    t.push({
      type: 'mapping',
      mapping: { id: { daddr: '192.0.2.2', spi: 0x1234, family: 2, proto: 50 }, reqid: 3, oldSaddr: '192.0.2.1', newSaddr: '192.0.2.1', oldSport: 4500, newSport: 31000 },
      attrs: [],
    });
    t.push({ type: 'expire', sa, hard: false, attrs });
    t.push({ type: 'delsa', id: { daddr: '192.0.2.2', spi: 0x1234, family: 2, proto: 50 }, attrs: [{ kind: 'sa', sa }] });
    t.push({
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
    t.push({ type: 'flushpolicy', attrs: [] });
    expect(events[0]).toEqual([
      'newMapping',
      {
        sa: { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1234, protocol: 'esp' },
        reqid: 3,
        old: { address: '192.0.2.1', port: 4500 },
        new: { address: '192.0.2.1', port: 31000 },
        followed: false,
      },
    ]);
    expect(events[1][0]).toBe('expire');
    expect(events[1][1]).toMatchObject({ kind: 'soft', sa: { spi: 0x1234, encryption: { algorithm: 'aes-gcm-16' } } });
    expect((events[1][1] as { sa: SecurityAssociation }).sa.encryption!.key).toHaveLength(0);
    expect(events[2]).toEqual(['delete', { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1234, protocol: 'esp' }]);
    expect(events[3]).toEqual([
      'acquire',
      { seq: 77, src: '192.0.2.1', dst: '192.0.2.2', protocol: 'esp', policy: { id: 9, direction: 'out', selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24' } } },
    ]);
    expect(events[4][0]).toBe('message');
    await x.close();
  });

  it("mapping 'follow' (default) that cannot reach the SAs: 'newMapping' with followed: false after the try, the error, a counted failure; repeats held", async () => {
    const t = scripted(); // answers nothing: the dump of the follow times out
    const x = await Xfrm.open({ transport: t.transport, timeout: 30 });
    const got: NewMappingEvent[] = [];
    const errors: Error[] = [];
    x.on('newMapping', (e) => got.push(e));
    x.on('error', (e) => errors.push(e));
    const mapping = { id: { daddr: '192.0.2.2', spi: 0x1234, family: 2, proto: 50 }, reqid: 3, oldSaddr: '192.0.2.1', newSaddr: '192.0.2.1', oldSport: 4500, newSport: 31000 };
    for (let i = 0; i < 3; i++) t.push({ type: 'mapping', mapping, attrs: [] }); // the kernel repeats it per packet
    await vi.waitFor(() => expect(got).toHaveLength(1), { timeout: 5000 });
    expect(got[0]).toMatchObject({ sa: { dst: '192.0.2.2', spi: 0x1234 }, new: { port: 31000 }, followed: false });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(NattTimeoutError);
    expect(x.stats().mappingFailures).toBe(1);
    expect(t.sent.map((m) => m.type)).toEqual(['getsaDump']);
    await x.close();
  });

  it('a malformed datagram from the kernel is a counted drop (and an error event when someone listens), never a throw', async () => {
    const bad = Buffer.alloc(20);
    bad.writeUInt32LE(400, 0); // nlmsg_len past the end
    const errors: Error[] = [];
    const raw = scripted((_req, push) => push(bad));
    const y = await Xfrm.open({ transport: raw.transport });
    await expect(y.sadInfo({ timeout: 30 })).rejects.toBeInstanceOf(NattTimeoutError);
    expect(y.stats().drops).toBe(1);
    y.on('error', (e) => errors.push(e));
    await expect(y.sadInfo({ timeout: 30 })).rejects.toBeInstanceOf(NattTimeoutError);
    expect(y.stats().drops).toBe(2);
    expect(errors[0]).toMatchObject({ name: 'XfrmDecodeError', code: 'ERR_XFRM_DECODE' });
    await y.close();
  });

  it('at most MAX_IN_FLIGHT requests wait for the kernel at once; the rest queue and all complete', async () => {
    let outstanding = 0;
    let most = 0;
    const t = scripted((req, push) => {
      outstanding++;
      most = Math.max(most, outstanding);
      setTimeout(() => {
        outstanding--;
        push({ type: 'newsadinfo', seq: req.seq, pid: 1, sadFlags: 0, attrs: [{ kind: 'sadCnt', value: 1 }] });
        push(ack(req));
      }, 1);
    });
    const x = await Xfrm.open({ transport: t.transport });
    const all = await Promise.all(Array.from({ length: 300 }, () => x.sadInfo()));
    expect(all).toHaveLength(300);
    expect(all.every((r) => r.count === 1)).toBe(true);
    expect(most).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    expect(x.stats().pending).toBe(0);
    await x.close();
  });

  it('bad options are TypeError/RangeError naming the option', async () => {
    await expect(Xfrm.open({ timeout: -1, transport: scripted().transport })).rejects.toThrow(/"timeout"/);
    const x = await Xfrm.open({ transport: scripted().transport });
    await expect(x.getSpi({ src: '10.0.0.1', dst: 'nope', min: 1, max: 2 })).rejects.toThrow(/"dst"/);
    await expect(x.getSpi({ src: '10.0.0.1', dst: '10.0.0.2', min: 5, max: 2 })).rejects.toThrow(RangeError);
    await expect(x.spdDelete({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'up' as 'in' })).rejects.toThrow(/"direction"/);
    await expect(x.add({ src: '10.0.0.1', dst: '2001:db8::1', spi: 1 })).rejects.toThrow(/"dst"/);
    await x.close();
  });
});
