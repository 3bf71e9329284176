// The real-world setkey corpus: each file's outcome against INDEX.md, then the OK ones applied to a real
// UserlandSadb and checked against what the file says, and their dumps turned back into files that install the same.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserlandSadb } from '../../src/userland';
import type { SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';
import {
  SetkeyParseError,
  SetkeyUnsupportedError,
  applySetkey,
  formatSadDump,
  formatSpdDump,
  parseSetkey,
  toSetkey,
  type SetkeyOp,
  type SetkeyPlatform,
} from '../../src/setkey';

const DIR = path.join(__dirname, '..', 'fixtures', 'setkey-corpus');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.conf')).sort();
const read = (f: string): string => fs.readFileSync(path.join(DIR, f), 'utf8');

/** INDEX.md's table: file → the outcome it names first (OK, REJECT or PLATFORM). */
function index(): Map<string, 'OK' | 'REJECT' | 'PLATFORM'> {
  const out = new Map<string, 'OK' | 'REJECT' | 'PLATFORM'>();
  for (const line of fs.readFileSync(path.join(DIR, 'INDEX.md'), 'utf8').split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length < 6 || !/^\d\d-.*\.conf$/.test(cols[1])) continue;
    const m = /\b(OK|REJECT|PLATFORM)\b/.exec(cols[4]);
    if (m) out.set(cols[1], m[1] as 'OK' | 'REJECT' | 'PLATFORM');
  }
  return out;
}

type Outcome = { ops: SetkeyOp[] } | { parse: SetkeyParseError } | { unsupported: SetkeyUnsupportedError };
function outcome(f: string, platform: SetkeyPlatform = 'any', semantics?: 'rfc' | 'kernel'): Outcome {
  try {
    return { ops: parseSetkey(read(f), { file: f, platform, ...(semantics && { semantics }) }) };
  } catch (e) {
    if (e instanceof SetkeyUnsupportedError) return { unsupported: e };
    if (e instanceof SetkeyParseError) return { parse: e };
    throw e;
  }
}
const features = (o: Outcome): string[] => ('unsupported' in o ? [...new Set(o.unsupported.features.map((x) => x.feature))] : []);

/** Where real setkey stops on the REJECT files (its `line N: ... at [token]`). */
const REJECT_AT: Record<string, { line: number; reason: RegExp }> = {
  '01-freebsd-sample-cf.conf': { line: 160, reason: /encryption algorithm.*got 'rc5-cbc'/ },
  '04-ipsec-tools-setkey8-gre-INVALID.conf': { line: 3, reason: /expected -P/ },
  '22-lab-backslash-continuation-REJECTED.conf': { line: 9, reason: /backslash/ },
};

/** INDEX OK files that natt reads as valid setkey but whose content natt's model cannot hold (platform 'any'). */
const OK_BUT_UNSUPPORTED: Record<string, { features: string[]; parsesOn?: SetkeyPlatform }> = {
  '02-ipsec-tools-setkey8-examples.conf': { features: ['des-cbc', 'host names', 'tcp', '-ctx'] },
  '07-netbsd-tunnel-ipv4-esp.conf': { features: ['camellia-cbc'], parsesOn: 'pfkey-netbsd' },
  '25-ipsec-tools-sample-policy01.conf': { features: ['des-cbc'], parsesOn: 'pfkey-linux' },
  '26-ipsec-tools-sample-policy02-unique.conf': { features: ['des-cbc'], parsesOn: 'pfkey-netbsd' },
};

/** The PLATFORM files: a platform that refuses the feature by name, and one that takes the file (if natt has one). */
const PLATFORM: Record<string, { refusedOn: SetkeyPlatform[]; feature: string; acceptedOn?: SetkeyPlatform }> = {
  '16-freebsd-tests-tunnel-v6-chacha.conf': { refusedOn: ['pfkey-linux', 'pfkey-netbsd'], feature: 'chacha20-poly1305', acceptedOn: 'userland' },
  '17-audit-test-lspp-ctx.conf': { refusedOn: ['any', 'userland', 'xfrm', 'pfkey-linux', 'pfkey-netbsd', 'pfkey-freebsd'], feature: '-ctx' },
  '39-rancher-cattle-priority-none.conf': { refusedOn: ['pfkey-netbsd'], feature: 'priority', acceptedOn: 'userland' },
};

/** Files that parse for 'any' but use what the userland engine lacks (they parse for xfrm). */
const NOT_ON_USERLAND: Record<string, string> = {
  '06-netbsd-natt-ipv6.conf': 'aes-ctr',
  '12-netbsd-misc-spdupdate-delete.conf': 'null without integrity',
  '23-lab-ah-esp-bundle-noeol.conf': '3des-cbc',
  '32-ltp-output-ipsec-conf-esp-tunnel.conf': '3des-cbc',
};

describe('the setkey corpus (test/fixtures/setkey-corpus, 35 files) against INDEX.md', () => {
  const idx = index();

  it('INDEX.md names every file and only those', () => {
    expect(files).toHaveLength(35);
    expect([...idx.keys()].sort()).toEqual(files);
  });

  it('REJECT: natt fails where real setkey fails (same line)', () => {
    const rejects = files.filter((f) => idx.get(f) === 'REJECT');
    expect(rejects).toEqual(Object.keys(REJECT_AT));
    for (const f of rejects) {
      for (const platform of ['any', 'userland', 'xfrm', 'pfkey-linux', 'pfkey-netbsd', 'pfkey-freebsd'] as const) {
        const o = outcome(f, platform);
        expect('parse' in o, `${f} on ${platform}`).toBe(true);
        if (!('parse' in o)) continue;
        expect(o.parse.line, f).toBe(REJECT_AT[f].line);
        expect(o.parse.file).toBe(f);
        expect(o.parse.reason).toMatch(REJECT_AT[f].reason);
      }
    }
  });

  it('OK: the grammar takes the whole file; it parses into operations or names what natt cannot hold', () => {
    const oks = files.filter((f) => idx.get(f) === 'OK');
    expect(oks).toHaveLength(28);
    let full = 0;
    for (const f of oks) {
      const o = outcome(f);
      expect('parse' in o ? `${f}: ${o.parse.message}` : '', f).toBe('');
      if ('ops' in o) {
        full++;
        expect(o.ops.length, f).toBeGreaterThan(0);
        expect(OK_BUT_UNSUPPORTED[f], f).toBeUndefined();
      } else {
        expect(features(o), f).toEqual(OK_BUT_UNSUPPORTED[f].features);
        const on = OK_BUT_UNSUPPORTED[f].parsesOn;
        if (on) expect('ops' in outcome(f, on), `${f} on ${on}`).toBe(true);
      }
    }
    expect(full).toBe(28 - Object.keys(OK_BUT_UNSUPPORTED).length);
  });

  it('PLATFORM: a clear "not supported on <backend>" naming the feature, and the file taken where natt can', () => {
    const plats = files.filter((f) => idx.get(f) === 'PLATFORM');
    expect(plats).toEqual(['14-freebsd-setkey8-examples.conf', ...Object.keys(PLATFORM)]);
    for (const [f, want] of Object.entries(PLATFORM)) {
      for (const platform of want.refusedOn) {
        const o = outcome(f, platform);
        expect('unsupported' in o, `${f} on ${platform}`).toBe(true);
        if (!('unsupported' in o)) continue;
        expect(o.unsupported.feature).toBe(want.feature);
        expect(o.unsupported.platform).toBe(platform);
        expect(o.unsupported.message).toMatch(new RegExp(`^${f}:\\d+:\\d+: .*${want.feature.replace(/[-.]/g, '\\$&')}.* not supported`));
      }
      if (want.acceptedOn) expect('ops' in outcome(f, want.acceptedOn), `${f} on ${want.acceptedOn}`).toBe(true);
    }
  });

  it('PLATFORM 14 (FreeBSD man page): every setkey rejects its 20-byte hmac-sha2-256 key (line 7); its FreeBSD aes-gcm-16 SA alone is PLATFORM', () => {
    const f = '14-freebsd-setkey8-examples.conf';
    const o = outcome(f, 'pfkey-freebsd');
    expect('parse' in o && o.parse.line).toBe(7);
    expect('parse' in o && o.parse.reason).toMatch(/hmac-sha2-256 must be 32 bytes, got 20/);
    const first = read(f).split('\n').slice(0, 4).join('\n'); // the header comments and the aes-gcm-16 add
    expect(() => parseSetkey(first, { platform: 'pfkey-freebsd' })).not.toThrow();
    expect(() => parseSetkey(first, { platform: 'pfkey-linux' })).toThrow(/aes-gcm-16 is not supported on Linux PF_KEY/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Applying the files to a real UserlandSadb

/** An independent reading of the operations: what the database must hold afterwards, and which must fail. */
function oracle(ops: SetkeyOp[]): { sas: Map<string, SecurityAssociation & { larval?: boolean }>; spd: Map<string, SecurityPolicy>; failLines: number[] } {
  const sas = new Map<string, SecurityAssociation & { larval?: boolean }>();
  const spd = new Map<string, SecurityPolicy>();
  const failLines: number[] = [];
  const saKey = (p: string | undefined, dst: string, spi: number): string => `${p ?? 'esp'}/${dst}/${spi}`;
  const spKey = (dir: string, sel: object): string => `${dir}/${JSON.stringify(sel)}`;
  for (const op of ops) {
    const fail = (): number => failLines.push(op.at.line);
    switch (op.op) {
      case 'add': {
        const k = saKey(op.sa.protocol, op.sa.dst, op.sa.spi);
        if (sas.has(k)) fail();
        else sas.set(k, op.sa);
        break;
      }
      case 'update': {
        const k = saKey(op.sa.protocol, op.sa.dst, op.sa.spi);
        if (!sas.has(k)) fail();
        else sas.set(k, op.sa);
        break;
      }
      case 'getspi':
        sas.set(saKey(op.request.protocol, op.request.dst, op.request.min as number), { src: op.request.src, dst: op.request.dst, spi: op.request.min as number, protocol: op.request.protocol, larval: true });
        break;
      case 'delete': {
        const k = saKey(op.id.protocol, op.id.dst, op.id.spi);
        if (!sas.delete(k)) fail();
        break;
      }
      case 'deleteall':
        for (const [k, sa] of sas) if (sa.src === op.match.src && sa.dst === op.match.dst && (sa.protocol ?? 'esp') === op.match.protocol) sas.delete(k);
        break;
      case 'flush':
        for (const [k, sa] of sas) if (!op.protocol || (sa.protocol ?? 'esp') === op.protocol) sas.delete(k);
        break;
      case 'spdadd':
        if (spd.has(spKey(op.policy.direction, op.policy.selector))) fail();
        else spd.set(spKey(op.policy.direction, op.policy.selector), op.policy);
        break;
      case 'spdupdate':
        spd.set(spKey(op.policy.direction, op.policy.selector), op.policy);
        break;
      case 'spddelete':
        if (!spd.delete(spKey(op.direction, op.selector))) fail();
        break;
      case 'spdflush':
        spd.clear();
        break;
      default:
        break;
    }
  }
  return { sas, spd, failLines };
}

async function contents(db: UserlandSadb): Promise<{ sas: SecurityAssociation[]; policies: SecurityPolicy[] }> {
  const sas: SecurityAssociation[] = [];
  for await (const sa of db.dump()) sas.push(sa);
  const policies: SecurityPolicy[] = [];
  for await (const p of db.spdDump()) policies.push(p);
  return { sas, policies };
}

/** An SA as a comparable plain object, keys as hex (the stored ones sit in key holders). */
function plainSa(sa: SecurityAssociation): Record<string, unknown> {
  const hex = (k?: Uint8Array): string | undefined => (k ? Buffer.from(k).toString('hex') : undefined);
  return {
    src: sa.src,
    dst: sa.dst,
    spi: sa.spi,
    protocol: sa.protocol ?? 'esp',
    mode: sa.mode ?? 'transport',
    reqid: sa.reqid,
    replayWindow: sa.replayWindow,
    encryption: sa.encryption && { algorithm: sa.encryption.algorithm, key: hex(sa.encryption.key) },
    integrity: sa.integrity && { algorithm: sa.integrity.algorithm, key: hex(sa.integrity.key) },
    compression: sa.compression,
    natt: sa.natt,
    lifetime: sa.lifetime,
  };
}

function plainPolicy(p: SecurityPolicy): Record<string, unknown> {
  return { selector: p.selector, direction: p.direction, action: p.action, priority: p.priority ?? 0, templates: p.templates ?? [] };
}

const byKey = (a: { k: string }, b: { k: string }): number => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0);
const sortedSas = (list: SecurityAssociation[]) => list.map((sa) => ({ k: `${sa.protocol}/${sa.dst}/${sa.spi}`, v: plainSa(sa) })).sort(byKey);
const sortedPolicies = (list: SecurityPolicy[]) => list.map((p) => ({ k: `${p.direction}/${JSON.stringify(p.selector)}`, v: plainPolicy(p) })).sort(byKey);

const APPLY_FAILURES: Record<string, number[]> = {
  '05-netbsd-natt-ipv4.conf': [13], // two hosts' inputs in one file: the remote host's SPI 10000 to 20.0.0.2 exists (EEXIST)
  '28-racoon-roadwarrior-client-up-natt.conf': [10], // spddelete -P fwd: no fwd twin under kernel semantics (ENOENT)
  '29-racoon-roadwarrior-client-down.conf': [6, 8], // tears down policies an empty database does not have
  '30-racoon-roadwarrior-server-down.conf': [6, 8],
};

describe('the corpus applied to a real UserlandSadb', () => {
  const applicable = files.filter((f) => 'ops' in outcome(f, 'userland'));

  it('which files apply on the userland backend, and why the others do not', () => {
    expect(applicable).toEqual([
      '03-ipsec-tools-setkey8-inline.conf',
      '05-netbsd-natt-ipv4.conf',
      '08-netbsd-tunnel-ipv6-ah.conf',
      '09-netbsd-tunnel-ipcomp.conf',
      '10-netbsd-misc-lifetime-update.conf',
      '11-netbsd-misc-getspi-update.conf',
      '13-netbsd-spflags-ipv4-upperspec.conf',
      '15-freebsd-tests-tunnel-v4-aescbc-sha256.conf',
      '16-freebsd-tests-tunnel-v6-chacha.conf',
      '18-openwrt-l2tp-transport-port.conf',
      '19-freebsd-ansible-tunnel-use.conf',
      '20-aws-vpc-tunnel-indent.conf',
      '21-lab-placeholders-noeol.conf',
      '24-libreswan-freebsd-setkey-reqid.conf',
      '27-ipsec-tools-setkey-conf-none.conf',
      '28-racoon-roadwarrior-client-up-natt.conf',
      '29-racoon-roadwarrior-client-down.conf',
      '30-racoon-roadwarrior-server-down.conf',
      '31-racoon-ipsec-tools-spdconf-natt.conf',
      '33-ltp-output-ipsec-conf-ipcomp-ipv6.conf',
      '34-mandriva-default-ipsec-conf.conf',
      '39-rancher-cattle-priority-none.conf',
    ]);
    for (const [f, alg] of Object.entries(NOT_ON_USERLAND)) {
      const o = outcome(f, 'userland');
      expect(features(o), f).toEqual([alg]);
      expect('ops' in outcome(f, 'xfrm'), `${f} on xfrm`).toBe(true);
    }
  });

  for (const f of applicable) {
    it(`${f}: installs what the file says, and its dump read back as a file installs the same`, async () => {
      const ops = parseSetkey(read(f), { file: f, platform: 'userland' });
      const db = new UserlandSadb();
      const r = await applySetkey(ops, db);
      const want = oracle(ops);
      expect(r.failed.map((x) => x.at.line), f).toEqual(want.failLines);
      expect(want.failLines).toEqual(APPLY_FAILURES[f] ?? []);
      for (const x of r.failed) expect(x.message).toMatch(new RegExp(`^${f}:${x.at.line}:\\d+: .*(EEXIST|ENOENT|ESRCH)`));
      expect(r.applied + r.failed.length).toBe(ops.length);

      const got = await contents(db);
      // SAs: what the file's operations leave, field by field (keys included).
      expect(sortedSas(got.sas)).toEqual(sortedSas([...want.sas.values()].map((sa) => ({ ...sa, larval: undefined }) as SecurityAssociation)));
      for (const sa of got.sas) expect(sa.state).toBe([...want.sas.values()].find((w) => w.spi === sa.spi && w.dst === sa.dst)?.larval ? 'larval' : 'mature');
      expect(sortedPolicies(got.policies)).toEqual(sortedPolicies([...want.spd.values()]));

      // The dumps in setkey's layout: one block per entry.
      const sad = formatSadDump(got.sas);
      const spdText = formatSpdDump(got.policies);
      expect((sad.match(/^\t(esp|esp-udp|ah|ipcomp) mode=/gm) ?? []).length).toBe(got.sas.length);
      expect((spdText.match(/^\tspid=\d+ seq=\d+ pid=\d+$/gm) ?? []).length).toBe(got.policies.length);
      if (!got.sas.length) expect(sad).toBe('No SAD entries.\n');
      if (!got.policies.length) expect(spdText).toBe('No SPD entries.\n');

      // Round trip: the dump as a setkey file (keys revealed), parsed and applied to a fresh database.
      const file = toSetkey(got.sas, got.policies, { revealKeys: true });
      const again = parseSetkey(file, { file: 'roundtrip', platform: 'userland', semantics: 'kernel' });
      const db2 = new UserlandSadb();
      const r2 = await applySetkey(again, db2);
      expect(r2.failed.map((x) => x.message)).toEqual([]);
      const got2 = await contents(db2);
      const mature = got.sas.filter((sa) => sa.state !== 'larval');
      expect(sortedSas(got2.sas)).toEqual(sortedSas(mature));
      expect(sortedPolicies(got2.policies)).toEqual(sortedPolicies(got.policies));
      // Without revealKeys the file carries no key and cannot be loaded by mistake.
      if (mature.some((sa) => sa.encryption?.key.length || sa.integrity?.key.length)) {
        const hidden = toSetkey(got.sas, got.policies);
        expect(hidden).not.toMatch(/0x[0-9a-f]{16}/);
        expect(() => parseSetkey(hidden)).toThrow(/key was hidden/);
      }
      await db.close();
      await db2.close();
    });
  }

  it('05 (NAT-T over IPv4): esp-udp SAs with their NAT ports, and the transport policies', async () => {
    const db = new UserlandSadb();
    await applySetkey(parseSetkey(read('05-netbsd-natt-ipv4.conf')), db);
    const { sas, policies } = await contents(db);
    const nat = sas.find((sa) => sa.dst === '20.0.0.1');
    expect(nat).toMatchObject({ src: '20.0.0.2', spi: 10001, protocol: 'esp', natt: { type: 'espinudp', sport: 4500, dport: 9696 }, replayWindow: 0 });
    expect(Buffer.from(nat?.encryption?.key ?? []).toString()).toBe('a'.repeat(16));
    expect(nat?.encryption?.algorithm).toBe('aes-cbc');
    expect(policies.map((p) => `${p.direction} ${p.selector.src} ${p.selector.dst} ${p.templates?.[0].protocol}/${p.templates?.[0].mode}/${p.templates?.[0].level}`).sort()).toEqual([
      'in 10.0.1.2 20.0.0.2 esp/transport/require',
      'in 20.0.0.2 10.0.1.2 esp/transport/require',
      'out 10.0.1.2 20.0.0.2 esp/transport/require',
      'out 20.0.0.2 20.0.0.1 esp/transport/require',
    ]);
    const dump = formatSadDump(sas, { revealKeys: true });
    expect(dump).toContain('20.0.0.2[4500] 20.0.0.1[9696] \n\tesp-udp mode=transport spi=10001(0x00002711) reqid=0(0x00000000)\n\tE: aes-cbc  61616161 61616161 61616161 61616161\n');
  });

  it('03, 09, 11, 24, 39: ICMPv6 type, IPComp bundles, getspi then update, reqids, priorities', async () => {
    const run = async (f: string, semantics?: 'rfc') => {
      const db = new UserlandSadb();
      const r = await applySetkey(parseSetkey(read(f), { platform: 'userland', ...(semantics && { semantics }) }), db);
      expect(r.failed).toEqual([]);
      return contents(db);
    };
    const p03 = (await run('03-ipsec-tools-setkey8-inline.conf')).policies;
    expect(p03.find((p) => p.direction === 'in')).toMatchObject({ selector: { src: '::/0', dst: '::/0', proto: 58, sport: 135 }, action: 'none' });
    expect(formatSpdDump(p03)).toMatch(/^::\/0 ::\/0 icmp6 135,0\n\tin prio def none\n/m);
    const s09 = await run('09-netbsd-tunnel-ipcomp.conf');
    expect(s09.sas.filter((sa) => sa.protocol === 'ipcomp').map((sa) => sa.compression?.algorithm)).toEqual(['deflate', 'deflate']);
    expect(s09.policies[0].templates).toEqual([
      { protocol: 'ipcomp', mode: 'tunnel', src: expect.any(String), dst: expect.any(String), level: 'require' },
      { protocol: 'esp', mode: 'transport', level: 'require' },
    ]);
    const s11 = await run('11-netbsd-misc-getspi-update.conf');
    expect(s11.sas.map((sa) => [sa.spi, sa.protocol, sa.state, sa.integrity?.algorithm])).toEqual([
      [10000, 'ah', 'mature', 'hmac-sha1-96'],
      [10001, 'ah', 'mature', 'hmac-sha1-96'],
    ]);
    const s24 = await run('24-libreswan-freebsd-setkey-reqid.conf');
    expect(s24.sas.map((sa) => [sa.mode, sa.reqid])).toEqual([['tunnel', 100], ['tunnel', 100]]);
    const s39 = await run('39-rancher-cattle-priority-none.conf');
    expect(s39.policies.filter((p) => p.priority === 0x7fff_ffff)).toHaveLength(2);
    expect(formatSpdDump(s39.policies)).toContain('\tin prio def + 1 none\n');
    // 28 with setkey's RFC semantics (its Linux default): the explicit spddelete -P fwd removes the fwd twin.
    const s28 = await run('28-racoon-roadwarrior-client-up-natt.conf', 'rfc');
    expect(s28.policies.map((p) => p.direction).sort()).toEqual(['in', 'out']);
  });

  it('a client up (28) and down (29) on one database leave it empty', async () => {
    const db = new UserlandSadb();
    expect((await applySetkey(parseSetkey(read('28-racoon-roadwarrior-client-up-natt.conf'), { semantics: 'rfc' }), db)).failed).toEqual([]);
    expect((await applySetkey(parseSetkey(read('29-racoon-roadwarrior-client-down.conf')), db)).failed).toEqual([]);
    expect(await contents(db)).toEqual({ sas: [], policies: [] });
  });
});
