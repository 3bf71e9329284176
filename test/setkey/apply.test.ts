// applySetkey on a real UserlandSadb (checked whole first, failures recorded and the run goes on, dumps, getspi,
// exit, abort), and the per-backend capability table checked against the backends' own algorithm tables.

import { describe, expect, it } from 'vitest';
import { UserlandSadb } from '../../src/userland';
import { EspTransform, MAX_REPLAY_WINDOW } from '../../src/esp';
import { DIALECTS } from '../../src/pfkey/dialects';
import { ENCRYPTION as XFRM_ENCRYPTION, INTEGRITY as XFRM_INTEGRITY } from '../../src/xfrm/algorithms';
import { ENCRYPTION_KEY_BYTES, INTEGRITY_KEY_BYTES } from '../../src/sadb/algorithms';
import type { EncryptionAlgorithm, IntegrityAlgorithm, SecurityAssociation } from '../../src/sadb/types';
import { NattUnsupportedError } from '../../src/errors';
import { SetkeyUnsupportedError, applySetkey, parseSetkey, platformCaps, platformOf, type ApplyEvent } from '../../src/setkey';

const A16 = `"${'a'.repeat(16)}"`;
const A32 = `"${'h'.repeat(32)}"`;

async function sas(db: UserlandSadb): Promise<SecurityAssociation[]> {
  const out: SecurityAssociation[] = [];
  for await (const sa of db.dump()) out.push(sa);
  return out;
}

describe('applySetkey', () => {
  it("runs every operation in order; a refusal is recorded with its line and the run goes on, as setkey's does", async () => {
    const db = new UserlandSadb();
    const events: ApplyEvent[] = [];
    const r = await applySetkey(
      parseSetkey(
        `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16} -A hmac-sha256 ${A32};
         add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16} -A hmac-sha256 ${A32};
         delete 10.0.0.1 10.0.0.2 esp 0x999;
         getspi 10.0.0.1 10.0.0.2 esp 0x2000;
         get 10.0.0.1 10.0.0.2 esp 0x100;
         dump esp;
         spdadd 10.1.0.0/16 10.2.0.0/16 any -P out ipsec esp/tunnel/10.0.0.1-10.0.0.2/require;
         spddump;
         spddelete 10.9.0.0/16 10.2.0.0/16 any -P out;`,
        { file: 'f.conf' },
      ),
      db,
      { onOp: (e) => events.push(e), pid: 1, now: 1 },
    );
    expect(r.applied).toBe(6);
    expect(r.failed.map((f) => [f.at.line, f.op, (f.error as { code?: string }).code])).toEqual([
      [2, 'add', 'EEXIST'],
      [3, 'delete', 'ESRCH'],
      [9, 'spddelete', 'ENOENT'],
    ]);
    expect(r.failed[0].message).toMatch(/^f\.conf:2:10: SADB_ADD failed: EEXIST/);
    expect(r.spis).toEqual([{ at: { file: 'f.conf', line: 4, column: 10 }, spi: 0x2000 }]);
    expect(r.dumps.map((d) => [d.kind, d.sas?.length ?? d.policies?.length])).toEqual([['sad', 1], ['sad', 2], ['spd', 1]]);
    // get prints the SA, dump esp both (the larval one from getspi too), spddump the policy; keys hidden.
    expect(r.output.match(/^\tesp mode=/gm)).toHaveLength(3);
    expect(r.output).toContain('state=larval');
    expect(r.output).toContain('(128-bit key hidden)');
    expect(r.output).toContain('\tout prio def ipsec\n\tesp/tunnel/10.0.0.1-10.0.0.2/require\n');
    expect(events.map((e) => (e.error ? `${e.op.op}!` : e.op.op))).toEqual(['add', 'add!', 'delete!', 'getspi', 'get', 'dump', 'spdadd', 'spddump', 'spddelete!']);
    expect(events[3].spi).toBe(0x2000);
    expect(r.stopped).toBe(false);
  });

  it('stopOnError stops at the first refusal; exit; stops there too', async () => {
    const db = new UserlandSadb();
    const ops = parseSetkey(`delete 10.0.0.1 10.0.0.2 esp 0x999; add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16} -A hmac-sha256 ${A32};`);
    const r = await applySetkey(ops, db, { stopOnError: true });
    expect(r).toMatchObject({ applied: 0, stopped: true });
    expect(await sas(db)).toEqual([]);
    const r2 = await applySetkey(parseSetkey('flush; exit; flush;'), db);
    expect(r2).toMatchObject({ applied: 1, stopped: true });
  });

  it('checks all operations against the database before the first runs: nothing is applied if one cannot be done', async () => {
    const db = new UserlandSadb();
    const ops = parseSetkey(
      `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16} -A hmac-sha256 ${A32};
       add 10.0.0.1 10.0.0.2 esp 0x101 -E aes-ctr "aaaaaaaaaaaaaaaaaaaa";`,
      { platform: 'xfrm' },
    );
    await expect(applySetkey(ops, db)).rejects.toThrow(SetkeyUnsupportedError);
    await expect(applySetkey(ops, db)).rejects.toThrow(/<input>:2:8: aes-ctr is not supported on the userland backend/);
    expect(await sas(db)).toEqual([]);
    // The same ops, checked for another platform: Linux PF_KEY has no AEAD, nor RFC 4868's HMAC-SHA2-256.
    await expect(applySetkey(ops, db, { platform: 'pfkey-linux' })).rejects.toThrow(/hmac-sha2-256-128 is not supported on Linux PF_KEY/);
    await expect(applySetkey(parseSetkey('spdadd 10.0.0.0/8 10.1.0.0/8 any -P fwd none;'), db, { platform: 'pfkey-freebsd' })).rejects.toThrow(/fwd.*FreeBSD PF_KEY/);
    expect(await sas(db)).toEqual([]);
  });

  it('an abort ends the run at the operation in flight', async () => {
    const db = new UserlandSadb();
    const ac = new AbortController();
    const ops = parseSetkey('flush; flush; flush;');
    const r = await applySetkey(ops, db, { signal: ac.signal, onOp: () => ac.abort() });
    expect(r).toMatchObject({ applied: 1, stopped: true, failed: [] });
  });

  it('checks its arguments', async () => {
    const db = new UserlandSadb();
    await expect(applySetkey('flush;' as never, db)).rejects.toThrow(TypeError);
    await expect(applySetkey([{}] as never, db)).rejects.toThrow(/ops\[0\]/);
    await expect(applySetkey([], {} as never)).rejects.toThrow(/sadb\.add/);
    await expect(applySetkey([], db, { stopOnErorr: true } as never)).rejects.toThrow(/unknown option "stopOnErorr"/);
    await expect(applySetkey([], db, { platform: 'vms' } as never)).rejects.toThrow(/platform/);
    await expect(applySetkey([], db, { timeout: -1 })).rejects.toThrow(RangeError);
  });
});

describe('the capability table agrees with the backends', () => {
  it('platformOf: the backend, and for PF_KEY its dialect', () => {
    expect(platformOf(new UserlandSadb())).toBe('userland');
    expect(platformOf({ backend: 'xfrm' } as never)).toBe('xfrm');
    for (const d of ['linux', 'netbsd', 'freebsd'] as const) expect(platformOf({ backend: 'pfkey', dialect: DIALECTS[d] } as never)).toBe(`pfkey-${d}`);
    expect(platformOf({ backend: 'daemon' } as never)).toBe('any');
  });

  it('PF_KEY: each dialect table has every algorithm the table lets through (Linux: no AEAD)', () => {
    for (const d of ['linux', 'netbsd', 'freebsd'] as const) {
      const caps = platformCaps(`pfkey-${d}`);
      const t = DIALECTS[d].algorithms;
      for (const e of caps.encryption) expect(t.encrypt, `${d} ${e}`).toHaveProperty([e]);
      for (const a of caps.integrity) expect(t.auth, `${d} ${a}`).toHaveProperty([a]);
      for (const c of caps.compression) expect(t.compress, `${d} ${c}`).toHaveProperty([c]);
      expect(caps.forwardPolicies).toBe(d === 'linux');
      expect(caps.maxTemplateReqid).toBe(DIALECTS[d].ipsecRequestSize === 16 ? 0xffff_ffff : 0xffff);
    }
    for (const aead of ['aes-gcm-16', 'aes-gmac', 'chacha20-poly1305']) expect(platformCaps('pfkey-linux').encryption.has(aead)).toBe(false);
  });

  it('XFRM: every algorithm the table lets through has a kernel template', () => {
    const caps = platformCaps('xfrm');
    for (const e of caps.encryption) expect(XFRM_ENCRYPTION, e).toHaveProperty([e]);
    for (const a of caps.integrity) if (a !== 'none') expect(XFRM_INTEGRITY, a).toHaveProperty([a]);
  });

  it('userland: exactly the algorithms the ESP engine builds a transform for', () => {
    const caps = platformCaps('userland');
    expect(caps.maxReplay).toBe(MAX_REPLAY_WINDOW);
    const build = (encryption: EncryptionAlgorithm, integrity: IntegrityAlgorithm): boolean => {
      try {
        const ekey = new Uint8Array(ENCRYPTION_KEY_BYTES[encryption][0]);
        const ikey = integrity === 'none' ? new Uint8Array(0) : new Uint8Array(INTEGRITY_KEY_BYTES[integrity][0]);
        new EspTransform({ spi: 0x100, allowNoIntegrity: true, encryption: { algorithm: encryption, key: ekey }, ...(integrity !== 'none' && { integrity: { algorithm: integrity, key: ikey } }) });
        return true;
      } catch (e) {
        expect(e instanceof NattUnsupportedError || e instanceof RangeError || e instanceof TypeError).toBe(true);
        return false;
      }
    };
    for (const e of Object.keys(ENCRYPTION_KEY_BYTES) as EncryptionAlgorithm[]) {
      expect(build(e, e === 'null' ? 'hmac-sha1-96' : 'none'), e).toBe(caps.encryption.has(e));
    }
    for (const i of Object.keys(INTEGRITY_KEY_BYTES) as Exclude<IntegrityAlgorithm, 'none'>[]) expect(build('aes-cbc', i), i).toBe(caps.integrity.has(i));
    expect(build('null', 'none')).toBe(caps.nullWithoutIntegrity);
  });
});
