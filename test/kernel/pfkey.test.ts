// PF_KEY against a real Linux kernel (af_key): SAs with NAT-T, dumps, updates, GETSPI, REGISTER, SPD, ACQUIRE, EXPIRE, NEW_MAPPING.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { networkInterfaces, release } from 'node:os';
import { probe } from '../../src/probe';
import { openSadb } from '../../src/open';
import type { PfKey } from '../../src/pfkey/client';
import type { ExpireEvent, NewMappingEvent, SecurityAssociation } from '../../src/sadb/types';
import { KernelReplyError, NattUnsupportedError } from '../../src/errors';
import { EspTransform } from '../../src/esp';
import { createNattSocket, type NattSocket } from '../../src/natt/socket';
import { nextEvent } from './lib/guest';

function pfkeyMissing(): string | null {
  if (process.platform !== 'linux') return 'not Linux: this suite also drives Linux tools (ip, /proc); on the BSDs test/kernel/contract.test.ts runs PF_KEY';
  if (process.getuid?.() !== 0) return 'not root';
  const f = probe().facts.pfkey;
  return f.ok ? null : `no PF_KEY in this kernel (${f.code})`;
}
const missing = pfkeyMissing();
const [major, minor] = release().split('.').map(Number);
const NON_IKE_GONE = major > 6 || (major === 6 && minor >= 10);

const A = '127.0.0.1';
const B = '127.0.0.2';

/** The first `event` whose argument passes `pred`, or a rejection after `ms`. */
function nextMatching<T>(em: NodeJS.EventEmitter, event: string, pred: (x: T) => boolean, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      em.off(event, on);
      reject(new Error(`no matching '${event}' within ${ms} ms`));
    }, ms);
    const on = (x: T) => {
      if (!pred(x)) return;
      clearTimeout(t);
      em.off(event, on);
      resolve(x);
    };
    em.on(event, on);
  });
}

function natSa(spi: number, extra: Partial<SecurityAssociation> = {}): SecurityAssociation {
  return {
    src: A,
    dst: B,
    spi,
    protocol: 'esp',
    mode: 'transport',
    reqid: 77,
    replayWindow: 32,
    encryption: { algorithm: 'aes-cbc', key: randomBytes(16) },
    integrity: { algorithm: 'hmac-sha1-96', key: randomBytes(20) },
    natt: { type: 'espinudp', sport: 4500, dport: 4500 },
    ...extra,
  };
}

describe.skipIf(missing !== null)(`PF_KEY on the kernel${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let sadb: PfKey;
  beforeAll(async () => {
    sadb = (await openSadb({ backend: 'pfkey' })) as PfKey;
  });
  afterAll(async () => {
    await sadb?.flush();
    await sadb?.spdFlush();
    await sadb?.close();
  });
  beforeEach(async () => {
    await sadb.flush();
    await sadb.spdFlush();
  });

  it('register lists the kernel algorithms (AES-CBC, HMAC-SHA1; no AEAD over Linux PF_KEY)', async () => {
    const algs = await sadb.register('esp');
    expect(algs.protocol).toBe('esp');
    expect(algs.encryption.map((a) => a.algorithm)).toContain('aes-cbc');
    expect(algs.integrity.map((a) => a.algorithm)).toContain('hmac-sha1-96');
    expect(algs.encryption.find((a) => a.algorithm === 'aes-cbc')).toMatchObject({ id: 12, minBits: 128, maxBits: 256 });
    console.log(`kernel ESP algorithms via PF_KEY: ${algs.encryption.map((a) => a.algorithm).join(', ')} | ${algs.integrity.map((a) => a.algorithm).join(', ')}`);
  });

  it('add an ESP SA with NAT-T type 2 and ports 4500/4500, get it back with the same fields', async () => {
    const sa = natSa(0x1001);
    await sadb.add(sa);
    const got = await sadb.get({ src: A, dst: B, spi: 0x1001 });
    expect(got).toMatchObject({ src: A, dst: B, spi: 0x1001, protocol: 'esp', mode: 'transport', reqid: 77, replayWindow: 32, state: 'mature' });
    expect(got.natt).toEqual({ type: 'espinudp', sport: 4500, dport: 4500 });
    expect(got.encryption?.algorithm).toBe('aes-cbc');
    expect(Buffer.from(got.encryption!.key)).toEqual(Buffer.from(sa.encryption!.key));
    expect(got.integrity?.algorithm).toBe('hmac-sha1-96');
    expect(Buffer.from(got.integrity!.key)).toEqual(Buffer.from(sa.integrity!.key));
  });

  it('dump lists the SAs and ends (seq 0); an empty table is an empty dump (ENOENT)', async () => {
    let n = 0;
    for await (const _ of sadb.dump('esp')) n++;
    expect(n).toBe(0);
    await sadb.add(natSa(0x2001));
    await sadb.add(natSa(0x2002, { natt: { type: 'espinudp', sport: 4500, dport: 31000 } }));
    const spis: number[] = [];
    for await (const s of sadb.dump('esp')) spis.push(s.spi);
    expect(spis.sort()).toEqual([0x2001, 0x2002]);
  });

  it('update changes the NAT-T destination port', async () => {
    const sa = natSa(0x3001);
    await sadb.add(sa);
    await sadb.update({ ...sa, natt: { type: 'espinudp', sport: 4500, dport: 4501 } });
    expect((await sadb.get({ src: A, dst: B, spi: 0x3001 })).natt).toEqual({ type: 'espinudp', sport: 4500, dport: 4501 });
  });

  it('delete removes the SA; get then fails with a KernelReplyError naming SADB_GET', async () => {
    await sadb.add(natSa(0x4001));
    await sadb.delete({ src: A, dst: B, spi: 0x4001 });
    const err = await sadb.get({ src: A, dst: B, spi: 0x4001 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelReplyError);
    expect((err as KernelReplyError).messageType).toBe('SADB_GET');
    expect(['ESRCH', 'ENOENT']).toContain((err as KernelReplyError).code);
    expect((err as KernelReplyError).errno).toBeLessThan(0);
  });

  it('add of an existing SPI → EEXIST with advice', async () => {
    await sadb.add(natSa(0x4101));
    const err = await sadb.add(natSa(0x4101)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EEXIST', messageType: 'SADB_ADD' });
    expect(String((err as Error).message)).toMatch(/update/);
  });

  it('getSpi allocates an SPI within the range asked for', async () => {
    const spi = await sadb.getSpi({ src: A, dst: B, min: 0x5000, max: 0x50ff });
    expect(spi).toBeGreaterThanOrEqual(0x5000);
    expect(spi).toBeLessThanOrEqual(0x50ff);
  });

  it(`NAT-T type 1 (non-IKE): ${NON_IKE_GONE ? 'this kernel (>= 6.10) refuses it with EINVAL and advice' : 'this kernel takes it'}`, async () => {
    const p = sadb.add(natSa(0x6001, { natt: { type: 'espinudp-non-ike', sport: 500, dport: 500 } }));
    if (NON_IKE_GONE) {
      const err = await p.catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EINVAL', messageType: 'SADB_ADD' });
      expect(String((err as Error).message)).toMatch(/non-IKE.*espinudp/);
    } else {
      await p;
      expect((await sadb.get({ src: A, dst: B, spi: 0x6001 })).natt?.type).toBe('espinudp-non-ike');
    }
  });

  it('AEAD and hmac-sha2-256-128 are refused before anything is sent, with advice to use xfrm', async () => {
    await expect(sadb.add(natSa(0x6101, { encryption: { algorithm: 'aes-gcm-16', key: randomBytes(20) }, integrity: undefined }))).rejects.toThrow(
      NattUnsupportedError,
    );
    await expect(sadb.add(natSa(0x6102, { integrity: { algorithm: 'hmac-sha2-256-128', key: randomBytes(32) } }))).rejects.toThrow(/xfrm/);
    // The 96-bit form is what Linux PF_KEY does install.
    await sadb.add(natSa(0x6103, { integrity: { algorithm: 'hmac-sha2-256-96', key: randomBytes(32) } }));
    expect((await sadb.get({ src: A, dst: B, spi: 0x6103 })).integrity?.algorithm).toBe('hmac-sha2-256-96');
  });

  it("a second socket sees the 'add' broadcast, keys removed", async () => {
    const other = (await openSadb({ backend: 'pfkey' })) as PfKey;
    try {
      const ev = nextEvent<[SecurityAssociation]>(other, 'add');
      await sadb.add(natSa(0x7001));
      const [sa] = await ev;
      expect(sa.spi).toBe(0x7001);
      expect(sa.natt).toEqual({ type: 'espinudp', sport: 4500, dport: 4500 });
      expect(sa.encryption?.key.length).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('IPv6 SA with NAT-T comes back the same', async () => {
    const sa = natSa(0x7101, { src: '2001:db8::1', dst: '2001:db8::2', natt: { type: 'espinudp', sport: 4500, dport: 40000 } });
    await sadb.add(sa);
    expect(await sadb.get({ src: '2001:db8::1', dst: '2001:db8::2', spi: 0x7101 })).toMatchObject({
      src: '2001:db8::1',
      dst: '2001:db8::2',
      natt: { type: 'espinudp', sport: 4500, dport: 40000 },
    });
  });

  it('deleteAll removes every SA from src to dst and leaves the reverse direction; a dump left early does not block the next', async () => {
    await sadb.add(natSa(0x7201));
    await sadb.add(natSa(0x7202));
    await sadb.add(natSa(0x7203, { src: B, dst: A }));
    for await (const _ of sadb.dump('esp')) break; // stop after the first entry
    await sadb.deleteAll({ src: A, dst: B });
    const left: number[] = [];
    for await (const s of sadb.dump('esp')) left.push(s.spi);
    expect(left).toEqual([0x7203]);
  });

  it("a second socket sees the 'delete' broadcast; a promiscuous one sees other sockets' requests", async () => {
    const other = (await openSadb({ backend: 'pfkey' })) as PfKey;
    try {
      await other.promisc(true);
      const seen: number[] = [];
      other.on('message', (m) => seen.push((m as { type: number }).type));
      await sadb.add(natSa(0x7301));
      const del = nextEvent<[{ spi: number; dst: string }]>(other, 'delete');
      await sadb.delete({ src: A, dst: B, spi: 0x7301 });
      expect((await del)[0]).toMatchObject({ spi: 0x7301, dst: B });
      await sadb.getSpi({ src: A, dst: B, min: 0x7400, max: 0x74ff });
      // GETSPI is answered only to its sender: the promiscuous socket saw the request itself.
      expect(seen).toContain(1);
      await other.promisc(false);
    } finally {
      await other.close();
    }
  });

  it('an abort after the request went out rejects with its reason; the late answer is ignored and the socket stays usable', async () => {
    await sadb.add(natSa(0x7501));
    const ac = new AbortController();
    const late: unknown[] = [];
    const onMessage = (m: unknown) => late.push(m);
    sadb.on('message', onMessage);
    try {
      const call = sadb.get({ src: A, dst: B, spi: 0x7501 }, { signal: ac.signal });
      expect(sadb.stats().pending).toBe(1); // sent; the kernel's answer is not read before this turn ends
      ac.abort(new Error('caller gave up mid-flight'));
      await expect(call).rejects.toThrow('caller gave up mid-flight');
      expect(sadb.stats().pending).toBe(0);
      // The kernel still answers: with nobody waiting, the reply is passed on as a plain 'message'.
      await new Promise((r) => setTimeout(r, 200));
      expect(late).toContainEqual(expect.objectContaining({ type: 5, pid: process.pid }));
      expect((await sadb.get({ src: A, dst: B, spi: 0x7501 })).spi).toBe(0x7501);
    } finally {
      sadb.off('message', onMessage);
    }
  });

  it('an aborted signal rejects the call with its reason and nothing is left pending', async () => {
    const ac = new AbortController();
    ac.abort(new Error('caller gave up'));
    await expect(sadb.get({ src: A, dst: B, spi: 1 }, { signal: ac.signal })).rejects.toThrow('caller gave up');
    await expect(sadb.register('ah').catch((e: { code?: string }) => (e.code === 'EEXIST' ? null : Promise.reject(e)))).resolves.toBeDefined();
  });

  it('without CAP_NET_ADMIN (uid 65534) opening PF_KEY gives EPERM naming the capability', () => {
    const root = path.resolve(__dirname, '..', '..');
    const script =
      `require(${JSON.stringify(path.join(root, 'dist', 'index.js'))}).openSadb({ backend: 'pfkey' })` +
      `.then((s) => { console.log('OPENED'); return s.close(); }, (e) => console.log(JSON.stringify({ code: e.code, errno: e.errno, syscall: e.syscall, message: e.message })))`;
    const out = execFileSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' }).trim();
    const err = JSON.parse(out) as { code: string; errno: number; syscall: string; message: string };
    expect(err).toMatchObject({ code: 'EPERM', errno: -1, syscall: 'socket' });
    expect(err.message).toMatch(/CAP_NET_ADMIN/);
  });

  it('SPD: spdAdd, spdGet by id, spdDump, spdDelete', async () => {
    const p = await sadb.spdAdd({
      selector: { src: '10.9.0.0/16', dst: '10.8.0.0/16', proto: 17 },
      direction: 'out',
      action: 'ipsec',
      templates: [{ protocol: 'esp', mode: 'tunnel', src: A, dst: B, level: 'require' }],
    });
    expect(p.id).toBeGreaterThan(0);
    const got = await sadb.spdGet({ id: p.id! });
    expect(got).toMatchObject({ direction: 'out', action: 'ipsec', selector: { src: '10.9.0.0/16', dst: '10.8.0.0/16', proto: 17 } });
    expect(got.templates).toEqual([{ protocol: 'esp', mode: 'tunnel', src: A, dst: B, level: 'require' }]);
    const ids: number[] = [];
    for await (const x of sadb.spdDump()) ids.push(x.id!);
    expect(ids).toContain(p.id);
    // By selector: SPDGET takes only an id, so the client finds it in a dump.
    expect((await sadb.spdGet({ selector: { src: '10.9.0.0/16', dst: '10.8.0.0/16', proto: 17 }, direction: 'out' })).id).toBe(p.id);
    const up = await sadb.spdUpdate({ ...got, priority: 1234 });
    expect(up.priority).toBe(1234);
    await sadb.spdDelete({ id: p.id! });
    await expect(sadb.spdGet({ id: p.id! })).rejects.toBeInstanceOf(KernelReplyError);
    // By selector and direction.
    await sadb.spdAdd({ selector: { src: '10.7.0.0/16', dst: '10.6.0.0/16' }, direction: 'in', action: 'none' });
    await sadb.spdDelete({ selector: { src: '10.7.0.0/16', dst: '10.6.0.0/16' }, direction: 'in' });
    let n = 0;
    for await (const _ of sadb.spdDump()) n++;
    expect(n).toBe(0);
  });

  it('an out/ipsec/esp/transport/require policy makes the kernel send ACQUIRE on traffic', async () => {
    await sadb.register('esp').catch((e: { code?: string }) => {
      if (e.code !== 'EEXIST') throw e; // already registered by an earlier test
    });
    // Not on lo: loopback has disable_xfrm/disable_policy set, so the guest's own interface address is the source.
    const here = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    expect(here, 'a non-loopback IPv4 address in the guest').toBeDefined();
    const peer = here!.replace(/\.\d+$/, '.123');
    await sadb.spdAdd({
      selector: { src: `${here}/32`, dst: `${peer}/32`, proto: 17, dport: 39999 },
      direction: 'out',
      action: 'ipsec',
      templates: [{ protocol: 'esp', mode: 'transport', level: 'require' }],
    });
    const ev = nextEvent<[{ seq: number; src: string; dst: string; protocol: string }]>(sadb, 'acquire', 15_000);
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, here, () => r()));
    s.send(Buffer.from('trigger'), 39999, peer, () => undefined); // dropped or EAGAIN while the SA is larval: either is fine
    try {
      const [acq] = await ev;
      expect(acq).toMatchObject({ src: here, dst: peer, protocol: 'esp', policy: { direction: 'out' } });
      expect(acq.seq).toBeGreaterThan(0);
      // Answer it as an IKE daemon does: GETSPI and UPDATE carrying the ACQUIRE's seq turn the larval SA mature.
      const spi = await sadb.getSpi({ src: here!, dst: peer, seq: acq.seq, min: 0x9000, max: 0x90ff });
      expect((await sadb.get({ src: here!, dst: peer, spi })).state).toBe('larval');
      await sadb.update({ ...natSa(spi), src: here!, dst: peer, seq: acq.seq });
      expect(await sadb.get({ src: here!, dst: peer, spi })).toMatchObject({ state: 'mature', natt: { sport: 4500, dport: 4500 } });
    } finally {
      s.close();
    }
  });

  it('a 1-second soft lifetime makes the kernel send a soft EXPIRE', async () => {
    await sadb.register('esp').catch((e: { code?: string }) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const ev = nextEvent<[{ kind: string; sa: SecurityAssociation }]>(sadb, 'expire', 20_000);
    await sadb.add(natSa(0x8001, { lifetime: { soft: { addSeconds: 1 }, hard: { addSeconds: 30 } } }));
    const [x] = await ev;
    expect(x.kind).toBe('soft');
    expect(x.sa.spi).toBe(0x8001);
    expect(x.sa.natt?.sport).toBe(4500);
  });
  it("a 2-second hard add-time lifetime makes the kernel send a hard EXPIRE ('expire' kind 'hard') and remove the SA", async () => {
    await sadb.register('esp').catch((e: { code?: string }) => {
      if (e.code !== 'EEXIST') throw e;
    });
    const ev = nextMatching<ExpireEvent>(sadb, 'expire', (x) => x.sa.spi === 0x8101, 20_000);
    await sadb.add(natSa(0x8101, { lifetime: { hard: { addSeconds: 2 } } }));
    const x = await ev;
    expect(x.kind).toBe('hard');
    expect(x.sa).toMatchObject({ spi: 0x8101, src: A, dst: B, natt: { sport: 4500, dport: 4500 } });
    expect(x.sa.lifetime?.hard?.addSeconds).toBe(2);
    expect(x.sa.encryption?.key.length ?? 0).toBe(0);
    const gone = await sadb.get({ src: A, dst: B, spi: 0x8101 }).catch((e: unknown) => e);
    expect(gone).toMatchObject({ messageType: 'SADB_GET' });
    expect(['ESRCH', 'ENOENT']).toContain((gone as KernelReplyError).code);
  });

  describe('NEW_MAPPING', () => {
    let sock: NattSocket;
    let oldPeer: dgram.Socket;
    let newPeer: dgram.Socket;
    const bindAt = (port: number) =>
      new Promise<dgram.Socket>((r) => {
        const s = dgram.createSocket('udp4');
        s.bind(port, B, () => r(s));
      });
    beforeAll(async () => {
      sock = await createNattSocket({ address: A, port: 4500, backend: 'kernel' });
      oldPeer = await bindAt(4501);
      newPeer = await bindAt(4600);
    });
    afterAll(() => {
      sock?.close();
      oldPeer?.close();
      newPeer?.close();
    });

    it("ESP-in-UDP from the SA's peer port, then from a new one: SADB_X_NAT_T_NEW_MAPPING → 'newMapping' with old and new port", async () => {
      await sadb.register('esp').catch((e: { code?: string }) => {
        if (e.code !== 'EEXIST') throw e;
      });
      // Inbound SA from B's NAT-T port 4501 to our kernel-encap socket on A:4500 (SPORT is the peer's port, §2.7).
      const spi = 0x8201;
      const encryption = { algorithm: 'aes-cbc' as const, key: randomBytes(16) };
      const integrity = { algorithm: 'hmac-sha1-96' as const, key: randomBytes(20) };
      await sadb.add(natSa(spi, { src: B, dst: A, reqid: 78, encryption, integrity, natt: { type: 'espinudp', sport: 4501, dport: 4500 } }));
      const esp = new EspTransform({ spi, encryption, integrity });
      const udp = Buffer.alloc(8 + 5);
      udp.writeUInt16BE(1234, 0);
      udp.writeUInt16BE(5555, 2);
      udp.writeUInt16BE(13, 4);
      udp.write('hello', 8);
      const mappings: NewMappingEvent[] = [];
      const onMapping = (e: NewMappingEvent) => mappings.push(e);
      sadb.on('newMapping', onMapping);
      try {
        // From the port the SA names: the kernel takes it (the SA counts a packet) and reports no mapping.
        oldPeer.send(esp.seal(udp, 17), 4500, A);
        const deadline = Date.now() + 10_000;
        while (((await sadb.get({ src: B, dst: A, spi })).current?.packets ?? 0) < 1) {
          if (Date.now() > deadline) throw new Error('the kernel did not take the ESP packet from the SA’s own port');
          await new Promise((r) => setTimeout(r, 50));
        }
        await new Promise((r) => setTimeout(r, 200));
        expect(mappings).toEqual([]);
        // From a new source port: the peer's NAT moved.
        const got = nextEvent<[NewMappingEvent]>(sadb, 'newMapping', 15_000);
        newPeer.send(esp.seal(udp, 17), 4500, A);
        const [ev] = await got;
        expect(ev).toEqual({
          sa: { src: B, dst: A, spi, protocol: 'esp' },
          reqid: 78,
          old: { address: B, port: 4501 },
          new: { address: B, port: 4600 },
          followed: true, // mapping 'follow' (the default) re-pointed the SA before the event
        });
      } finally {
        sadb.off('newMapping', onMapping);
      }
    });
  });
});
