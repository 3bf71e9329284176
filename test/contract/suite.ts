// The Sadb contract: one suite of application-level behaviour that every backend (pfkey, xfrm, userland, daemon) must pass.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import type { Sadb, SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';

export interface ContractOptions {
  /** Skip the whole suite, with this reason in its title. */
  skip?: string;
  /** The backend can install AEAD SAs (Linux PF_KEY cannot). */
  aead?: boolean;
  /** Addresses the SAs use (the kernel ones need addresses, not necessarily local). */
  local?: string;
  remote?: string;
  /** Run after the suite closed the Sadb (e.g. stop the daemon the client talked to). */
  teardown?: () => Promise<void>;
}

/** Define the contract suite for one backend. `open` gives a fresh Sadb; the suite closes it. */
export function defineSadbContract(name: string, open: () => Promise<Sadb>, opts: ContractOptions = {}): void {
  const title = `Sadb contract: ${name}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`;
  describe.skipIf(opts.skip !== undefined)(title, () => {
    const A = opts.local ?? '192.0.2.1';
    const B = opts.remote ?? '192.0.2.2';
    let db: Sadb;

    beforeAll(async () => {
      db = await open();
    });
    afterAll(async () => {
      await db?.flush().catch(() => undefined);
      await db?.spdFlush().catch(() => undefined);
      await db?.close();
      await opts.teardown?.();
    });
    beforeEach(async () => {
      await db.flush();
      await db.spdFlush();
    });

    const cbcSa = (spi: number): SecurityAssociation => ({
      src: A,
      dst: B,
      spi,
      protocol: 'esp',
      mode: 'tunnel',
      reqid: 11,
      encryption: { algorithm: 'aes-cbc', key: new Uint8Array(16).fill(0x11) },
      integrity: { algorithm: 'hmac-sha1-96', key: new Uint8Array(20).fill(0x22) },
      natt: { type: 'espinudp', sport: 4500, dport: 4500 },
    });

    it('the backend names itself', () => {
      expect(db.backend).toBe(name);
    });

    it('add then get returns the same SA (algorithms, keys, NAT-T ports, mode, reqid)', async () => {
      await db.add(cbcSa(0x2001));
      const got = await db.get({ src: A, dst: B, spi: 0x2001, protocol: 'esp' });
      expect(got).toMatchObject({
        src: A,
        dst: B,
        spi: 0x2001,
        protocol: 'esp',
        mode: 'tunnel',
        reqid: 11,
        encryption: { algorithm: 'aes-cbc' },
        integrity: { algorithm: 'hmac-sha1-96' },
        natt: { type: 'espinudp', sport: 4500, dport: 4500 },
      });
      expect(Buffer.from(got.encryption!.key).toString('hex')).toBe('11'.repeat(16));
      expect(Buffer.from(got.integrity!.key).toString('hex')).toBe('22'.repeat(20));
      expect(inspect(got, { depth: 5 })).not.toContain('1111');
    });

    const gcmSa = (keymat: Uint8Array): SecurityAssociation =>
      ({ src: A, dst: B, spi: 0x2002, encryption: { algorithm: 'aes-gcm-16', key: keymat }, natt: { type: 'espinudp', sport: 4500, dport: 31000 } });

    if (opts.aead === false) {
      it('an AES-GCM-16 SA is refused before any kernel call, with advice to use XFRM (this PF_KEY cannot carry AEAD)', async () => {
        await expect(db.add(gcmSa(new Uint8Array(20)))).rejects.toMatchObject({ name: 'NattUnsupportedError', message: expect.stringMatching(/xfrm/i) });
        for await (const sa of db.dump()) expect.fail(`nothing should have been installed, found SPI ${sa.spi}`);
      });
    } else it('an AES-GCM-16 SA with NAT-T keeps its KEYMAT (key + salt)', async () => {
      const keymat = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
      await db.add(gcmSa(keymat));
      const got = await db.get({ src: A, dst: B, spi: 0x2002 });
      expect(got.encryption?.algorithm).toBe('aes-gcm-16');
      expect(Buffer.from(got.encryption!.key)).toEqual(Buffer.from(keymat));
      expect(got.natt).toMatchObject({ sport: 4500, dport: 31000 });
    });

    it('adding the same SA twice is refused with EEXIST', async () => {
      await db.add(cbcSa(0x2003));
      await expect(db.add(cbcSa(0x2003))).rejects.toMatchObject({ code: 'EEXIST' });
    });

    it('update moves the NAT-T destination port', async () => {
      await db.add(cbcSa(0x2004));
      await db.update({ ...cbcSa(0x2004), natt: { type: 'espinudp', sport: 4500, dport: 4501 } });
      expect((await db.get({ src: A, dst: B, spi: 0x2004 })).natt?.dport).toBe(4501);
    });

    it('dump lists the SAs; delete removes one (get then fails); deleteAll and flush empty the table', async () => {
      await db.add(cbcSa(0x2005));
      await db.add(cbcSa(0x2006));
      const spis = async (): Promise<number[]> => {
        const out: number[] = [];
        for await (const sa of db.dump('esp')) out.push(sa.spi);
        return out.sort();
      };
      expect(await spis()).toEqual([0x2005, 0x2006]);
      await db.delete({ src: A, dst: B, spi: 0x2005, protocol: 'esp' });
      await expect(db.get({ src: A, dst: B, spi: 0x2005 })).rejects.toMatchObject({ code: expect.stringMatching(/^(ESRCH|ENOENT)$/) });
      await db.deleteAll({ src: A, dst: B, protocol: 'esp' });
      expect(await spis()).toEqual([]);
      await db.add(cbcSa(0x2007));
      await db.flush('esp');
      expect(await spis()).toEqual([]);
    });

    it('getSpi allocates inside the range asked for', async () => {
      const spi = await db.getSpi({ src: A, dst: B, protocol: 'esp', min: 0x3000, max: 0x30ff });
      expect(spi).toBeGreaterThanOrEqual(0x3000);
      expect(spi).toBeLessThanOrEqual(0x30ff);
    });

    it('register answers the ESP algorithms, AES-CBC among them', async () => {
      const r = await db.register('esp');
      expect(r.protocol).toBe('esp');
      expect(r.encryption.map((e) => e.algorithm)).toContain('aes-cbc');
    });

    it("'add' events carry the SA without its keys", async () => {
      const seen: SecurityAssociation[] = [];
      const on = (sa: SecurityAssociation): void => void seen.push(sa);
      db.on('add', on);
      await db.add(cbcSa(0x2008));
      await new Promise((r) => setTimeout(r, 50));
      db.off('add', on);
      const mine = seen.filter((s) => s.spi === 0x2008);
      expect(mine.length).toBeGreaterThanOrEqual(1);
      for (const s of mine) expect(s.encryption?.key?.length ?? 0).toBe(0);
    });

    it('policies: add, get by id and by selector, update, dump, delete, flush', async () => {
      const pol: SecurityPolicy = {
        selector: { src: '10.1.0.0/24', dst: '10.2.0.0/24' },
        direction: 'out',
        action: 'ipsec',
        templates: [{ protocol: 'esp', mode: 'tunnel', src: A, dst: B, reqid: 11 }],
      };
      const added = await db.spdAdd(pol);
      expect(added.id).toBeGreaterThan(0);
      expect(added).toMatchObject({ direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', src: A, dst: B }] });
      expect((await db.spdGet({ id: added.id! })).selector).toMatchObject({ src: '10.1.0.0/24', dst: '10.2.0.0/24' });
      expect((await db.spdGet({ selector: pol.selector, direction: 'out' })).id).toBe(added.id);
      const updated = await db.spdUpdate({ ...pol, priority: 300 });
      expect(updated.priority).toBe(300);
      await db.spdAdd({ selector: { src: '10.2.0.0/24', dst: '10.1.0.0/24' }, direction: 'in', action: 'discard' });
      const all: SecurityPolicy[] = [];
      for await (const p of db.spdDump()) all.push(p);
      expect(all.map((p) => p.direction).sort()).toEqual(['in', 'out']);
      await db.spdDelete({ id: added.id! });
      await expect(db.spdGet({ id: added.id! })).rejects.toMatchObject({ code: expect.stringMatching(/^(ENOENT|ESRCH)$/) });
      await db.spdFlush();
      const left: SecurityPolicy[] = [];
      for await (const p of db.spdDump()) left.push(p);
      expect(left).toEqual([]);
    });

    it('bad input is a TypeError/RangeError naming the option, not a kernel call', async () => {
      await expect(db.add({ ...cbcSa(0x2009), dst: 'not-an-address' })).rejects.toThrow(/dst/);
      await expect(db.add({ ...cbcSa(0x200a), encryption: { algorithm: 'aes-cbc', key: new Uint8Array(3) } })).rejects.toBeInstanceOf(RangeError);
    });
  });
}
