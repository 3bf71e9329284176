// NattSocket on real loopback sockets: the shared table through the kernel (UDP_ENCAP) and userland backends, errors.

import * as dgram from 'node:dgram';
import { constants as osConstants } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { loadNative } from '../../src/native/binding';
import { NattSystemError } from '../../src/errors';
import { rows, seenKernel, seenUserland, type Seen } from './table';

const native = loadNative();
const facts = native?.probe();
const noEncap4 = !facts?.udpEncap4.ok;
const noEncap6 = !facts?.udpEncap6.ok;
const why4 = native ? `UDP_ENCAP: ${facts?.udpEncap4.code}` : 'native addon not loaded';
// The kernel columns of the table are Linux's receive rules (FreeBSD passes keepalives up, NetBSD's ESP threshold differs).
const notLinux = process.platform !== 'linux';
const why6 = native ? `UDP_ENCAP on IPv6: ${facts?.udpEncap6.code}` : 'native addon not loaded';

const open: (NattSocket | dgram.Socket)[] = [];
afterEach(() => {
  for (const s of open.splice(0)) {
    try {
      s.close();
    } catch {
      // already closed
    }
  }
});

async function natt(opts: Parameters<typeof createNattSocket>[0]): Promise<NattSocket> {
  const s = await createNattSocket(opts);
  open.push(s);
  return s;
}

async function sender(type: 'udp4' | 'udp6'): Promise<dgram.Socket> {
  const s = dgram.createSocket(type);
  open.push(s);
  await new Promise<void>((r) => s.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  return s;
}

const SENTINEL = Buffer.from('00000000' + 'ee'.repeat(28), 'hex'); // IKE that marks the end of a row
const SENTINEL_NON_IKE = Buffer.from('ee'.repeat(28), 'hex');

/**
 * Send one row's datagram, then a sentinel IKE message from the same socket; loopback keeps their order, so when the
 * sentinel arrives the row's datagram has been delivered, dropped, or taken by the kernel. Returns what was seen.
 */
async function seenFor(sock: NattSocket, from: dgram.Socket, bytes: Buffer): Promise<{ seen: Seen; data?: Buffer }> {
  const before = sock.stats();
  const { port, address } = sock.address();
  const sentinel = sock.encap === 'espinudp' ? SENTINEL : SENTINEL_NON_IKE;
  let event: { seen: Seen; data?: Buffer } | undefined;
  const onIke = (p: Buffer) => {
    if (!p.equals(sentinel.subarray(sock.encap === 'espinudp' ? 4 : 0))) event = { seen: 'ike', data: Buffer.from(p) };
  };
  const onKa = () => (event = { seen: 'keepalive' });
  const onEsp = (p: Buffer) => (event = { seen: 'esp', data: Buffer.from(p) });
  sock.on('ike', onIke).on('keepalive', onKa).on('esp', onEsp);
  try {
    await new Promise<void>((resolve, reject) => {
      const done = (p: Buffer) => {
        if (p.equals(sentinel.subarray(sock.encap === 'espinudp' ? 4 : 0))) {
          sock.off('ike', done);
          resolve();
        }
      };
      sock.on('ike', done);
      from.send(bytes, port, address, (err) => {
        if (err) return reject(err);
        from.send(sentinel, port, address, (e2) => e2 && reject(e2));
      });
    });
  } finally {
    sock.off('ike', onIke).off('keepalive', onKa).off('esp', onEsp);
  }
  if (event) return event;
  const after = sock.stats();
  for (const [reason, n] of Object.entries(after.dropped)) {
    if (n !== before.dropped[reason as keyof typeof before.dropped]) return { seen: `drop:${reason}` };
  }
  return { seen: 'nothing' };
}

function payloadOf(row: (typeof rows)[number]): Buffer | undefined {
  const c = row.expect;
  return c.kind === 'ike' || c.kind === 'esp' ? row.bytes.subarray(c.offset) : undefined;
}

describe('NattSocket, userland backend: the shared table', () => {
  for (const encap of ['espinudp', 'espinudp-non-ike'] as const) {
    it(`${encap}: every row shows the same as classify()`, async () => {
      const sock = await natt({ address: '127.0.0.1', port: 0, encap, backend: 'userland' });
      expect(sock.kernelEncap).toBe(false);
      const from = await sender('udp4');
      for (const row of rows.filter((r) => r.encap === encap)) {
        const got = await seenFor(sock, from, row.bytes);
        expect(got.seen, row.name).toBe(seenUserland(row));
        if (got.data) expect(got.data.equals(payloadOf(row)!), row.name).toBe(true);
      }
    });
  }
});

describe.skipIf(noEncap4)(`NattSocket, kernel backend (UDP_ENCAP) on IPv4${noEncap4 ? ` (skipped: ${why4})` : ''}`, () => {
  it.skipIf(notLinux)(`every espinudp row shows what Linux passes up: IKE without its marker, never keepalives or ESP${notLinux ? ' (skipped: the table holds Linux rules)' : ''}`, async () => {
    const sock = await natt({ address: '127.0.0.1', port: 0, backend: 'kernel' });
    expect(sock.kernelEncap).toBe(true);
    const from = await sender('udp4');
    for (const row of rows.filter((r) => r.encap === 'espinudp')) {
      const got = await seenFor(sock, from, row.bytes);
      expect(got.seen, row.name).toBe(seenKernel(row));
      if (got.data) expect(got.data.equals(payloadOf(row)!), row.name).toBe(true);
    }
  });

  it('getsockopt reads UDP_ENCAP_ESPINUDP (2) back (NetBSD cannot: ENOPROTOOPT)', async () => {
    const sock = await natt({ address: '127.0.0.1', port: 0, backend: 'kernel' });
    if (process.platform === 'netbsd') {
      expect(() => sock.kernelEncapType()).toThrow(expect.objectContaining({ code: 'ENOPROTOOPT', syscall: 'getsockopt' }));
      return;
    }
    expect(sock.kernelEncapType()).toBe(2);
    const plain = native!.openEncapSocket(4, '127.0.0.1', 0, 0);
    try {
      expect(native!.getEncap(plain)).toBe(0);
    } finally {
      native!.closeFd(plain);
    }
  });

  it("the non-IKE encapsulation is refused by this kernel with advice, and 'auto' falls back to userland", async () => {
    const err = await createNattSocket({ address: '127.0.0.1', port: 0, encap: 'espinudp-non-ike', backend: 'kernel' }).catch((e) => e);
    if (err instanceof NattSystemError) {
      // Linux >= 6.10 removed the type (ENOPROTOOPT, advice names 6.10); the BSDs never had it (EINVAL).
      expect(err.code).toBe(process.platform === 'linux' ? 'ENOPROTOOPT' : 'EINVAL');
      expect(err.errno).toBeLessThan(0);
      expect(err.syscall).toBe('setsockopt');
      if (process.platform === 'linux') expect(err.message).toMatch(/6\.10/);
      const auto = await natt({ address: '127.0.0.1', port: 0, encap: 'espinudp-non-ike' });
      expect(auto.kernelEncap).toBe(false);
    } else {
      // An older kernel still has it: then it is a working kernel socket.
      open.push(err as NattSocket);
      expect((err as NattSocket).kernelEncapType()).toBe(1);
    }
  });

  it('IKE goes both ways between a kernel socket and a userland socket, keepalives reach only userland', async () => {
    const k = await natt({ address: '127.0.0.1', port: 0, backend: 'kernel' });
    const u = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    const gotK = new Promise<Buffer>((r) => k.once('ike', (p) => r(Buffer.from(p))));
    const gotU = new Promise<Buffer>((r) => u.once('ike', (p) => r(Buffer.from(p))));
    const kaU = new Promise<void>((r) => u.once('keepalive', () => r()));
    k.sendKeepalive(u.address().port, '127.0.0.1');
    u.sendIke(Buffer.from('to kernel'), k.address().port, '127.0.0.1');
    k.sendIke(Buffer.from('to userland'), u.address().port, '127.0.0.1');
    expect((await gotK).toString()).toBe('to kernel');
    expect((await gotU).toString()).toBe('to userland');
    await kaU;
    expect(() => k.sendEsp(Buffer.alloc(16, 1), u.address().port, '127.0.0.1')).toThrow(/userland/);
  });
});

describe.skipIf(noEncap6 || notLinux)(`NattSocket, kernel backend on IPv6${noEncap6 ? ` (skipped: ${why6})` : notLinux ? ' (skipped: the table holds Linux rules)' : ''}`, () => {
  it('IKE arrives without the marker, a keepalive and ESP never reach the socket, getsockopt reads 2', async () => {
    const sock = await natt({ family: 6, address: '::1', port: 0, backend: 'kernel' });
    expect(sock.family).toBe(6);
    expect(sock.kernelEncapType()).toBe(2);
    const from = await sender('udp6');
    for (const row of rows.filter((r) => r.encap === 'espinudp')) {
      expect((await seenFor(sock, from, row.bytes)).seen, row.name).toBe(seenKernel(row));
    }
  });
});

describe('NattSocket, userland on IPv6', () => {
  it('sendIke / sendEsp / sendKeepalive arrive as ike / esp / keepalive, counted in stats()', async () => {
    const a = await natt({ family: 6, address: '::1', port: 0, backend: 'userland' });
    const b = await natt({ family: 6, address: '::1', port: 0, backend: 'userland' });
    const seen: string[] = [];
    const all = new Promise<void>((resolve) => {
      const note = (s: string) => {
        seen.push(s);
        if (seen.length === 3) resolve();
      };
      b.on('ike', (p) => note(`ike:${p.toString()}`));
      b.on('esp', (p) => note(`esp:${p.toString('hex')}`));
      b.on('keepalive', (r) => note(`keepalive:${r.address}`));
    });
    const port = b.address().port;
    a.sendIke(Buffer.from('hi'), port, '::1');
    a.sendEsp(Buffer.from('0000100000000001cafe', 'hex'), port, '::1');
    a.sendKeepalive(port, '::1');
    await all;
    expect(seen.sort()).toEqual(['esp:0000100000000001cafe', 'ike:hi', 'keepalive:::1']);
    expect(a.stats()).toMatchObject({ sentIke: 1, sentEsp: 1, sentKeepalive: 1 });
    expect(b.stats()).toMatchObject({ ike: 1, esp: 1, keepalive: 1 });
  });

  it('non-IKE mode puts the 8-byte marker before ESP on the wire and sends IKE bare', async () => {
    const a = await natt({ address: '127.0.0.1', port: 0, encap: 'espinudp-non-ike', backend: 'userland' });
    const raw = await sender('udp4');
    const wire: Buffer[] = [];
    const two = new Promise<void>((r) => raw.on('message', (m) => wire.push(m) === 2 && r()));
    const port = raw.address().port;
    a.sendIke(Buffer.from('1122334455667788', 'hex'), port, '127.0.0.1');
    a.sendEsp(Buffer.from('0000100000000001ab', 'hex'), port, '127.0.0.1');
    await two;
    expect(wire.map((b) => b.toString('hex')).sort()).toEqual(['00000000000000000000100000000001ab', '1122334455667788']);
  });
});

describe('NattSocket errors', () => {
  it('a port in use rejects with EADDRINUSE and advice (userland)', async () => {
    const a = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    const err = await createNattSocket({ address: '127.0.0.1', port: a.address().port, backend: 'userland' }).catch((e) => e);
    expect(err).toBeInstanceOf(NattSystemError);
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind' });
    expect(err.errno).toBeLessThan(0);
    expect(err.message).toMatch(/pick another port or stop it/);
  });

  it.skipIf(noEncap4)(`a port in use rejects with EADDRINUSE (kernel)${noEncap4 ? ` (skipped: ${why4})` : ''}`, async () => {
    const a = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    const err = await createNattSocket({ address: '127.0.0.1', port: a.address().port, backend: 'kernel' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', errno: -osConstants.errno.EADDRINUSE });
    expect(err.message).toMatch(/port \d+/);
  });

  const bad: [string, object, RegExp, typeof TypeError | typeof RangeError][] = [
    ['family', { family: 5 }, /"family"/, RangeError],
    ['address type', { address: 7 }, /"address"/, TypeError],
    ['address family', { family: 6, address: '127.0.0.1' }, /"address" must be an IPv6 address/, RangeError],
    ['port type', { port: '4500' }, /"port"/, TypeError],
    ['port fraction', { port: 1.5 }, /"port"/, RangeError],
    ['port range', { port: 70000 }, /"port"/, RangeError],
    ['encap', { encap: 'esp' }, /"encap"/, RangeError],
    ['backend', { backend: 'magic' }, /"backend"/, RangeError],
  ];
  for (const [what, opts, msg, cls] of bad) {
    it(`bad option (${what}) throws synchronously, naming the option`, () => {
      expect(() => createNattSocket(opts as never)).toThrow(cls);
      expect(() => createNattSocket(opts as never)).toThrow(msg);
    });
  }
  it('options must be an object', () => {
    expect(() => createNattSocket(null as never)).toThrow(/"options"/);
  });

  it('send arguments are checked, naming the argument; a closed socket refuses to send', async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    expect(() => s.sendIke('x' as never, 500, '127.0.0.1')).toThrow(/"payload"/);
    expect(() => s.sendIke(Buffer.alloc(1), 0, '127.0.0.1')).toThrow(RangeError);
    expect(() => s.sendKeepalive(500, '::1')).toThrow(/"address"/);
    expect(() => s.sendEsp(Buffer.alloc(8, 1), 500, '127.0.0.1')).toThrow(/"espPacket"/);
    const closed = new Promise<void>((r) => s.once('close', r));
    s.close();
    s.close(); // idempotent
    await closed;
    expect(() => s.sendKeepalive(500, '127.0.0.1')).toThrow(/closed/);
    const err = await new Promise((r) => s.sendKeepalive(500, '127.0.0.1', r));
    expect(err).toMatchObject({ code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  });

  it('unref() lets the process exit; ref() returns the socket', async () => {
    const s = await natt({ address: '127.0.0.1', port: 0, backend: 'userland' });
    expect(s.unref()).toBe(s);
    expect(s.ref()).toBe(s);
  });
});
