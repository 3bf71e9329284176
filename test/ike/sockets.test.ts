// createIkeSockets on loopback (the 500/4500 pair as one event stream, replies on the socket and from the address a
// request came to), and the float rule with the NAT-D payloads it reads: decideFloat, natdPayloads.

import * as dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { createIkeSockets, decideFloat, natd, natdPayloads, type IkeSockets, type IkeVia } from '../../src/ike';
import { createNattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';
import type { RemoteInfo } from '../../src/transport';

const open: { close(): void }[] = [];
afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {
      // closed already
    }
  }
});

async function pair(o: Parameters<typeof createIkeSockets>[0] = {}): Promise<IkeSockets> {
  const s = await createIkeSockets({ address: '0.0.0.0', port: 0, nattPort: 0, backend: 'userland', ...o });
  open.push(s);
  return s;
}

async function peer(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  open.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

const nextIke = (s: IkeSockets) => new Promise<[Buffer, RemoteInfo, IkeVia]>((r) => s.once('ike', (p, ri, via) => r([p, ri, via])));
const nextMsg = (s: dgram.Socket) => new Promise<[Buffer, dgram.RemoteInfo]>((r) => s.once('message', (m, ri) => r([m, ri])));

describe('createIkeSockets', () => {
  it('one stream for both ports, each event saying which socket; the NAT-T one removes the marker', async () => {
    const ike = await pair();
    expect(ike.plain).toMatchObject({ encap: 'none', backend: 'userland' });
    expect(ike.natt).toMatchObject({ encap: 'espinudp' });
    expect(ike.plain.address().port).not.toBe(ike.natt.address().port);
    const p = await peer();
    const a = nextIke(ike);
    p.send(Buffer.from('IKE_SA_INIT'), ike.plain.address().port, '127.0.0.1');
    const [m1, r1, via1] = await a;
    expect([m1.toString(), via1, r1.port]).toEqual(['IKE_SA_INIT', 'plain', p.address().port]);
    const b = nextIke(ike);
    p.send(Buffer.concat([Buffer.alloc(4), Buffer.from('IKE_AUTH')]), ike.natt.address().port, '127.0.0.1');
    const [m2, , via2] = await b;
    expect([m2.toString(), via2]).toEqual(['IKE_AUTH', 'natt']);
    const ka = new Promise<RemoteInfo>((r) => ike.once('keepalive', r));
    p.send(Buffer.from([0xff]), ike.natt.address().port, '127.0.0.1');
    expect((await ka).port).toBe(p.address().port);
  });

  it.skipIf(!loadNative())('reply() answers on the socket the request came in on, from the local address it came to', async () => {
    const ike = await pair();
    const p = await peer();
    for (const via of ['plain', 'natt'] as const) {
      const got = nextIke(ike);
      const to = via === 'plain' ? ike.plain.address().port : ike.natt.address().port;
      p.send(via === 'plain' ? Buffer.from('req') : Buffer.concat([Buffer.alloc(4), Buffer.from('req')]), to, '127.0.0.9');
      const [, rinfo, v] = await got;
      expect(v).toBe(via);
      expect(rinfo).toMatchObject({ localAddress: '127.0.0.9', localPort: to });
      const back = nextMsg(p);
      ike.reply(Buffer.from('resp'), rinfo, v);
      const [m, ri] = await back;
      expect(ri).toMatchObject({ address: '127.0.0.9', port: to });
      expect(m.toString('hex')).toBe((via === 'natt' ? '00000000' : '') + Buffer.from('resp').toString('hex'));
    }
  });

  it('sendIke needs `via`; options are checked at once, naming the option', async () => {
    const ike = await pair({ address: '127.0.0.1' });
    const p = await peer();
    const back = nextMsg(p);
    ike.sendIke(Buffer.from('x'), { via: 'natt', port: p.address().port, address: '127.0.0.1' });
    expect((await back)[0].toString('hex')).toBe('0000000078');
    expect(() => ike.sendIke(Buffer.from('x'), { port: 500, address: '127.0.0.1' } as never)).toThrow(/option "via"/);
    expect(() => ike.sendIke(Buffer.from('x'), { via: 'tcp', port: 500, address: '127.0.0.1' } as never)).toThrow(/option "via"/);
    expect(() => ike.sendIke(Buffer.from('x'), { via: 'plain', port: 500, address: '127.0.0.1', lokal: 1 } as never)).toThrow(/unknown option "lokal"/);
    expect(() => createIkeSockets({ port: 4500, nattPort: 4500 })).toThrow(/option "nattPort"/);
    expect(() => createIkeSockets({ family: 6, address: '127.0.0.1' })).toThrow(/option "address"/);
    expect(() => createIkeSockets({ encap: 'none' } as never)).toThrow(/unknown option "encap"/);
  });

  it('when the NAT-T port is taken the promise rejects and the plain socket is closed again (its port free)', async () => {
    const taken = await createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' });
    open.push(taken);
    const free = await createNattSocket({ address: '127.0.0.1', port: 0, encap: 'none' });
    const port = free.address().port;
    await new Promise<void>((r) => free.close(() => r()));
    const err = await createIkeSockets({ address: '127.0.0.1', port, nattPort: taken.address().port }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EADDRINUSE' });
    await new Promise((r) => setTimeout(r, 20));
    const again = await createNattSocket({ address: '127.0.0.1', port, encap: 'none' });
    open.push(again);
    expect(again.address().port).toBe(port);
  });

  it("close() closes both and emits 'close' once; errors with no listener are counted, never thrown", async () => {
    const ike = await pair({ address: '127.0.0.1' });
    let closes = 0;
    ike.on('close', () => closes++);
    ike.natt.emit('error', new Error('from the socket'));
    expect(ike.unheardErrors).toBe(1);
    await new Promise<void>((r) => ike.close(() => r()));
    ike.close();
    await new Promise((r) => setTimeout(r, 10));
    expect(closes).toBe(1);
  });
});

const spiI = Buffer.from('0102030405060708', 'hex');
const spiR = Buffer.alloc(8);

describe('the float rule (RFC 7296 §2.23)', () => {
  it('no NAT-D from the peer, or no NAT: stay on 500 with plain ESP; a NAT on either side: float, encapsulate', () => {
    expect(decideFloat(null)).toMatchObject({ float: false, encapsulate: false, keepalives: false, reason: expect.stringMatching(/no NAT_DETECTION/) });
    expect(decideFloat({ localBehindNat: false, remoteBehindNat: false })).toMatchObject({ float: false, encapsulate: false });
    expect(decideFloat({ localBehindNat: false, remoteBehindNat: true })).toMatchObject({ float: true, encapsulate: true, keepalives: false });
    expect(decideFloat({ localBehindNat: true, remoteBehindNat: false })).toMatchObject({ float: true, encapsulate: true, keepalives: true });
    expect(decideFloat({ localBehindNat: true, remoteBehindNat: true }).reason).toMatch(/both ends/);
    expect(() => decideFloat(undefined as never)).toThrow(/option "detected"/);
  });

  it('natdPayloads makes what natd.detect reads on the other side: no NAT when the addresses survive', () => {
    const initiator = { address: '192.0.2.1', port: 500 };
    const responder = { address: '198.51.100.7', port: 500 };
    const out = natdPayloads({ spiI, spiR, local: [{ address: '10.0.0.1', port: 500 }, initiator], remote: responder });
    expect(out.sourceHashes).toHaveLength(2);
    expect(out.destinationHash.equals(natd.ikev2Hash(spiI, spiR, responder.address, 500))).toBe(true);
    const seen = natd.detect({ local: responder, remote: initiator, spiI, spiR, ...out });
    expect(seen).toEqual({ localBehindNat: false, remoteBehindNat: false });
    // The same message after a NAT rewrote the source: the responder sees the initiator behind it.
    expect(natd.detect({ local: responder, remote: { address: '203.0.113.5', port: 40123 }, spiI, spiR, ...out })).toEqual({
      localBehindNat: false,
      remoteBehindNat: true,
    });
  });

  it('forceEncapsulation: the peer detects a NAT on a path without one (so both float and encapsulate ESP)', () => {
    const initiator = { address: '192.0.2.1', port: 500 };
    const responder = { address: '198.51.100.7', port: 500 };
    const out = natdPayloads({ spiI, spiR, local: initiator, remote: responder, forceEncapsulation: true });
    const seen = natd.detect({ local: responder, remote: initiator, spiI, spiR, ...out });
    expect(seen).toEqual({ localBehindNat: false, remoteBehindNat: true });
    expect(decideFloat(seen).float).toBe(true);
  });

  it('mistakes are named by where they are', () => {
    const ok = { address: '192.0.2.1', port: 500 };
    expect(() => natdPayloads({ spiI, spiR, local: ok, remote: { address: 'nope', port: 1 } })).toThrow(/option "remote.address"/);
    expect(() => natdPayloads({ spiI, spiR, local: [ok, { address: '192.0.2.2', port: 0 }], remote: ok })).toThrow(/option "local\[1\].port"/);
    expect(() => natdPayloads({ spiI, spiR, local: [], remote: ok })).toThrow(/option "local"/);
    expect(() => natdPayloads({ spiI, spiR, local: ok, remote: ok, forceEncapsulation: 1 } as never)).toThrow(/option "forceEncapsulation"/);
    expect(() => natdPayloads({ spiI: Buffer.alloc(8), spiR, local: ok, remote: ok })).toThrow(/option "spiI"/);
  });
});
