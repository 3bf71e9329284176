// The shared SA/policy model ⇄ PF_KEY messages in each dialect: algorithms, NAT-T, refusals with advice, events.
import { describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { randomBytes } from 'node:crypto';
import { decode, encode, findExt } from '../../src/pfkey/codec';
import { DIALECTS, SADB, type DialectName } from '../../src/pfkey/dialects';
import {
  getSpiToMessage,
  messageToAcquire,
  messageToNewMapping,
  messageToPolicy,
  messageToSa,
  policyToMessage,
  saToMessage,
} from '../../src/pfkey/convert';
import { replyAdvice } from '../../src/pfkey/client';
import { NattUnsupportedError } from '../../src/errors';
import type { SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';

const dialects: DialectName[] = ['linux', 'netbsd', 'freebsd'];

/** SA → message → bytes → message → SA. */
function through(sa: SecurityAssociation, d: DialectName): SecurityAssociation {
  return messageToSa(decode(encode(saToMessage(sa, SADB.ADD, DIALECTS[d], 5, 99), d), d), DIALECTS[d]);
}

function base(): SecurityAssociation {
  return {
    src: '192.0.2.1',
    dst: '198.51.100.7',
    spi: 0xc0ffee01,
    protocol: 'esp',
    mode: 'tunnel',
    reqid: 12,
    replayWindow: 64,
    encryption: { algorithm: 'aes-cbc', key: randomBytes(32) },
    integrity: { algorithm: 'hmac-sha1-96', key: randomBytes(20) },
    natt: { type: 'espinudp', sport: 4500, dport: 31337 },
    lifetime: { soft: { bytes: 1000, addSeconds: 10 }, hard: { packets: 99, addSeconds: 20 } },
  };
}

describe.each(dialects)('SA mapping (%s)', (d) => {
  it('an ESP SA with NAT-T, keys and lifetimes comes back with the same fields', () => {
    const sa = base();
    const back = through(sa, d);
    expect(back).toMatchObject({
      src: sa.src,
      dst: sa.dst,
      spi: sa.spi,
      protocol: 'esp',
      mode: 'tunnel',
      reqid: 12,
      replayWindow: 64,
      natt: sa.natt,
      lifetime: sa.lifetime,
      seq: 5,
    });
    expect(back.encryption?.algorithm).toBe('aes-cbc');
    expect(Buffer.from(back.encryption!.key)).toEqual(Buffer.from(sa.encryption!.key));
    expect(back.integrity?.algorithm).toBe('hmac-sha1-96');
    expect(Buffer.from(back.integrity!.key)).toEqual(Buffer.from(sa.integrity!.key));
  });

  it('a hard lifetime alone also sends an all-zero LIFETIME_SOFT (Linux takes both or neither), and back', () => {
    const m = saToMessage({ ...base(), lifetime: { hard: { addSeconds: 2 } } }, SADB.ADD, DIALECTS[d], 1, 1);
    expect(findExt(m, 'lifetimeHard')).toEqual({ name: 'lifetimeHard', allocations: 0, bytes: 0n, addtime: 2n, usetime: 0n });
    expect(findExt(m, 'lifetimeSoft')).toEqual({ name: 'lifetimeSoft', allocations: 0, bytes: 0n, addtime: 0n, usetime: 0n });
    expect(findExt(saToMessage({ ...base(), lifetime: { soft: { bytes: 9 } } }, SADB.ADD, DIALECTS[d], 1, 1), 'lifetimeHard')?.addtime).toBe(0n);
    expect(findExt(saToMessage({ ...base(), lifetime: undefined }, SADB.ADD, DIALECTS[d], 1, 1), 'lifetimeHard')).toBeUndefined();
    expect(through({ ...base(), lifetime: { hard: { addSeconds: 2 } } }, d).lifetime).toEqual({ hard: { addSeconds: 2 }, soft: {} });
  });

  it('IPv6 addresses, NAT-OA, AH and IPComp', () => {
    const v6 = through({ ...base(), src: '2001:db8::1', dst: '2001:db8::2', natt: { type: 'espinudp', sport: 4500, dport: 4500, oa: { initiator: '10.0.0.1' } } }, d);
    expect(v6).toMatchObject({ src: '2001:db8::1', dst: '2001:db8::2', natt: { oa: { initiator: '10.0.0.1' } } });
    const ah = through({ src: '10.0.0.1', dst: '10.0.0.2', spi: 9, protocol: 'ah', integrity: { algorithm: 'hmac-sha2-512-256', key: randomBytes(64) } }, d);
    expect(ah).toMatchObject({ protocol: 'ah', integrity: { algorithm: 'hmac-sha2-512-256' } });
    expect(ah.encryption).toBeUndefined();
    const comp = through({ src: '10.0.0.1', dst: '10.0.0.2', spi: 0x4000, protocol: 'ipcomp', compression: { algorithm: 'deflate' } }, d);
    expect(comp).toMatchObject({ protocol: 'ipcomp', compression: { algorithm: 'deflate' } });
  });

  it('the wire carries SATYPE_ESP, sadb_x_sa2 mode/reqid, NAT-T type 2 and the ports in network order', () => {
    const b = encode(saToMessage(base(), SADB.ADD, DIALECTS[d], 1, 1), d);
    const m = decode(b, d);
    expect(m.satype).toBe(3);
    expect(findExt(m, 'sa2')).toMatchObject({ mode: 2, reqid: 12 });
    expect(findExt(m, 'nattType')?.type).toBe(2);
    const dport = m.extensions.findIndex((e) => e.name === 'nattDport');
    // 31337 = 0x7a69, big-endian in the 8-byte extension after its 4-byte header.
    let off = 16;
    for (let i = 0; i < dport; i++) off += b.readUInt16LE(off) * 8;
    expect(b.subarray(off + 4, off + 6)).toEqual(Buffer.from([0x7a, 0x69]));
  });

  it('policies: selector with ports and protocol, tunnel template, priority', () => {
    const p: SecurityPolicy = {
      selector: { src: '10.1.0.0/16', dst: '10.2.3.0/24', proto: 6, sport: 0, dport: 443 },
      direction: 'out',
      action: 'ipsec',
      priority: d === 'netbsd' ? undefined : 100,
      templates: [{ protocol: 'esp', mode: 'tunnel', src: '192.0.2.1', dst: '198.51.100.7', level: 'unique', reqid: 5 }],
    };
    const back = messageToPolicy(decode(encode(policyToMessage(p, SADB.X_SPDADD, DIALECTS[d], 1, 1), d), d));
    expect(back).toEqual({ ...p, selector: { src: '10.1.0.0/16', dst: '10.2.3.0/24', proto: 6, dport: 443 }, id: 0, ...(p.priority === undefined && { priority: undefined }) });
  });
});

describe('algorithms and platform facts per dialect', () => {
  const aead = (algorithm: 'aes-gcm-16' | 'aes-gmac' | 'chacha20-poly1305', len: number): SecurityAssociation => ({
    ...base(),
    encryption: { algorithm, key: randomBytes(len) },
    integrity: undefined,
  });

  it('Linux PF_KEY refuses AEAD before sending, advising the xfrm backend', () => {
    for (const [alg, len] of [['aes-gcm-16', 20], ['aes-gmac', 36], ['chacha20-poly1305', 36]] as const) {
      let err: unknown;
      try {
        saToMessage(aead(alg, len), SADB.ADD, DIALECTS.linux, 1, 1);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NattUnsupportedError);
      expect((err as Error).message).toMatch(/backend: 'xfrm'/);
    }
  });

  it('every dialect refuses natt.keepaliveInterval (PF_KEY has no such field) instead of dropping it', () => {
    for (const d of ['linux', 'netbsd', 'freebsd'] as const) {
      const sa: SecurityAssociation = { ...base(), natt: { type: 'espinudp', sport: 4500, dport: 4500, keepaliveInterval: 20 } };
      expect(() => saToMessage(sa, SADB.ADD, DIALECTS[d], 1, 1)).toThrow(NattUnsupportedError);
      expect(() => saToMessage(sa, SADB.ADD, DIALECTS[d], 1, 1)).toThrow(/keepaliveInterval.*sendKeepalive/);
      expect(() => saToMessage({ ...sa, natt: { ...sa.natt!, keepaliveInterval: 0 } }, SADB.ADD, DIALECTS[d], 1, 1)).not.toThrow();
    }
  });

  it('Linux: hmac-sha2-256-128 refused (96-bit truncation), hmac-sha2-256-96 sent as id 5; the BSDs the other way round', () => {
    const sha = (algorithm: 'hmac-sha2-256-128' | 'hmac-sha2-256-96'): SecurityAssociation => ({ ...base(), integrity: { algorithm, key: randomBytes(32) } });
    expect(() => saToMessage(sha('hmac-sha2-256-128'), SADB.ADD, DIALECTS.linux, 1, 1)).toThrow(/96-bit truncation/);
    expect(findExt(saToMessage(sha('hmac-sha2-256-96'), SADB.ADD, DIALECTS.linux, 1, 1), 'sa')?.auth).toBe(5);
    expect(through(sha('hmac-sha2-256-96'), 'linux').integrity?.algorithm).toBe('hmac-sha2-256-96');
    for (const d of ['netbsd', 'freebsd'] as const) {
      expect(findExt(saToMessage(sha('hmac-sha2-256-128'), SADB.ADD, DIALECTS[d], 1, 1), 'sa')?.auth).toBe(5);
      expect(() => saToMessage(sha('hmac-sha2-256-96'), SADB.ADD, DIALECTS[d], 1, 1)).toThrow(RangeError);
    }
  });

  it('BSD AEADs: KEYMAT as the key; FreeBSD pairs GCM with the GMAC auth id of the key size, ChaCha20 with 15/14', () => {
    const f = (sa: SecurityAssociation) => findExt(saToMessage(sa, SADB.ADD, DIALECTS.freebsd, 1, 1), 'sa')!;
    expect(f(aead('aes-gcm-16', 20))).toMatchObject({ encrypt: 20, auth: 11 });
    expect(f(aead('aes-gcm-16', 28))).toMatchObject({ encrypt: 20, auth: 12 });
    expect(f(aead('aes-gcm-16', 36))).toMatchObject({ encrypt: 20, auth: 13 });
    expect(f(aead('chacha20-poly1305', 36))).toMatchObject({ encrypt: 15, auth: 14 });
    expect(findExt(saToMessage(aead('aes-gcm-16', 36), SADB.ADD, DIALECTS.freebsd, 1, 1), 'keyEncrypt')?.bits).toBe(288);
    expect(findExt(saToMessage(aead('aes-gcm-16', 20), SADB.ADD, DIALECTS.netbsd, 1, 1), 'sa')).toMatchObject({ encrypt: 20, auth: 0 });
    expect(() => saToMessage(aead('chacha20-poly1305', 36), SADB.ADD, DIALECTS.netbsd, 1, 1)).toThrow(RangeError);
    // Decoding: the AEAD's auth id is not reported as a separate integrity transform.
    const back = through(aead('chacha20-poly1305', 36), 'freebsd');
    expect(back.encryption?.algorithm).toBe('chacha20-poly1305');
    expect(back.integrity).toBeUndefined();
  });

  it('the id collision: encrypt 15 is ChaCha20-Poly1305 on FreeBSD and AES-CCM-12 on Linux', () => {
    const msg = (d: DialectName) =>
      decode(
        encode({ type: SADB.GET, satype: 3, extensions: [
          { name: 'sa', spi: 1, replay: 0, state: 1, auth: 0, encrypt: 15, flags: 0 },
          { name: 'src', proto: 0, prefixlen: 32, addr: { family: 'inet', address: '10.0.0.1', port: 0 } },
          { name: 'dst', proto: 0, prefixlen: 32, addr: { family: 'inet', address: '10.0.0.2', port: 0 } },
        ] }, d),
        d,
      );
    expect(messageToSa(msg('freebsd'), DIALECTS.freebsd).encryption?.algorithm).toBe('chacha20-poly1305');
    expect(messageToSa(msg('linux'), DIALECTS.linux).encryption?.algorithm).toBe('aes-ccm-12');
  });

  it('ESN: FreeBSD flag 0x400; Linux refuses with advice', () => {
    expect(findExt(saToMessage({ ...base(), esn: true }, SADB.ADD, DIALECTS.freebsd, 1, 1), 'sa')?.flags).toBe(0x400);
    expect(through({ ...base(), esn: true }, 'freebsd').esn).toBe(true);
    expect(() => saToMessage({ ...base(), esn: true }, SADB.ADD, DIALECTS.linux, 1, 1)).toThrow(/xfrm/);
  });

  it('NAT-OA: one OA extension on Linux (23), OAI/OAR on the BSDs (23/24)', () => {
    const sa = { ...base(), natt: { type: 'espinudp' as const, sport: 4500, dport: 4500, oa: { initiator: '10.0.0.1', responder: '10.0.0.2' } } };
    expect(saToMessage(sa, SADB.ADD, DIALECTS.linux, 1, 1).extensions.map((e) => e.name)).toContain('nattOa');
    const bsd = saToMessage(sa, SADB.ADD, DIALECTS.netbsd, 1, 1).extensions.map((e) => e.name);
    expect(bsd).toEqual(expect.arrayContaining(['nattOai', 'nattOar']));
    expect(through(sa, 'freebsd').natt?.oa).toEqual({ initiator: '10.0.0.1', responder: '10.0.0.2' });
  });

  it('caller mistakes are TypeError/RangeError naming the option', () => {
    expect(() => saToMessage({ ...base(), spi: -1 }, SADB.ADD, DIALECTS.linux, 1, 1)).toThrow(/"spi"/);
    expect(() => saToMessage({ ...base(), src: 'nowhere' }, SADB.ADD, DIALECTS.linux, 1, 1)).toThrow(TypeError);
    expect(() => saToMessage({ ...base(), natt: { type: 'espinudp', sport: 0, dport: 4500 } }, SADB.ADD, DIALECTS.linux, 1, 1)).toThrow(/natt.sport/);
    expect(() => saToMessage({ ...base(), replayWindow: 1000 }, SADB.ADD, DIALECTS.linux, 1, 1)).toThrow(RangeError);
    expect(() => getSpiToMessage({ src: '10.0.0.1', dst: '10.0.0.2', min: 10, max: 5 }, 1, 1)).toThrow(/"min"/);
    expect(() =>
      policyToMessage({ selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'fwd', action: 'none' }, SADB.X_SPDADD, DIALECTS.freebsd, 1, 1),
    ).toThrow(/direction/);
    expect(() =>
      policyToMessage(
        { selector: { src: '10.0.0.0/8', dst: '10.0.0.0/8' }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'tunnel', reqid: 70000, src: '1.1.1.1', dst: '2.2.2.2' }] },
        SADB.X_SPDADD,
        DIALECTS.netbsd,
        1,
        1,
      ),
    ).toThrow(/reqid/);
  });

  it('key bytes never show in util.inspect of a decoded message', () => {
    const key = Buffer.from('5ec2e75ec2e75ec2e75ec2e75ec2e75e', 'hex');
    const m = decode(encode(saToMessage({ ...base(), encryption: { algorithm: 'aes-cbc', key } }, SADB.ADD, DIALECTS.linux, 1, 1), 'linux'), 'linux');
    const shown = inspect(m, { depth: 10 });
    expect(shown).not.toMatch(/94, 194|0x5e|5ec2/);
    expect(Buffer.from(findExt(m, 'keyEncrypt')!.key)).toEqual(key);
  });
});

describe('kernel messages become normalised events', () => {
  it('NEW_MAPPING: old address/port from SRC/SPORT, new from DST/DPORT', () => {
    const m = decode(
      encode({ type: SADB.X_NAT_T_NEW_MAPPING, satype: 3, seq: 4, pid: 0, extensions: [
        { name: 'sa', spi: 0x1234, replay: 0, state: 0, auth: 0, encrypt: 0, flags: 0 },
        { name: 'src', proto: 0, prefixlen: 32, addr: { family: 'inet', address: '198.51.100.7', port: 0 } },
        { name: 'nattSport', port: 4500 },
        { name: 'dst', proto: 0, prefixlen: 32, addr: { family: 'inet', address: '203.0.113.9', port: 0 } },
        { name: 'nattDport', port: 60000 },
      ] }, 'linux'),
      'linux',
    );
    expect(messageToNewMapping(m)).toEqual({
      sa: { src: '198.51.100.7', dst: '', spi: 0x1234, protocol: 'esp' },
      old: { address: '198.51.100.7', port: 4500 },
      new: { address: '203.0.113.9', port: 60000 },
    });
  });

  it('ACQUIRE: seq to echo, addresses, the policy id and direction', () => {
    const m = {
      type: SADB.ACQUIRE,
      satype: 3,
      seq: 77,
      pid: 0,
      extensions: [
        { name: 'src' as const, proto: 17, prefixlen: 32, addr: { family: 'inet' as const, address: '10.0.0.1', port: 0 } },
        { name: 'dst' as const, proto: 17, prefixlen: 32, addr: { family: 'inet' as const, address: '10.0.0.2', port: 0 } },
        { name: 'policy' as const, policyType: 2, dir: 2, id: 9, priority: 0, requests: [] },
      ],
    };
    expect(messageToAcquire(m)).toEqual({ seq: 77, src: '10.0.0.1', dst: '10.0.0.2', protocol: 'esp', policy: { id: 9, direction: 'out' } });
  });

  it('kernel errnos get advice naming what to do', () => {
    const add = saToMessage({ ...base(), natt: { type: 'espinudp-non-ike', sport: 500, dport: 500 } }, SADB.ADD, DIALECTS.linux, 1, 1);
    expect(replyAdvice(SADB.ADD, 'EINVAL', add)).toMatch(/6\.10.*'espinudp'/);
    expect(replyAdvice(SADB.ADD, 'ENOSYS')).toMatch(/xfrm/);
    expect(replyAdvice(SADB.ADD, 'EPROTONOSUPPORT')).toMatch(/CONFIG_INET_ESP/);
    expect(replyAdvice(SADB.X_MIGRATE, 'ENOPROTOOPT')).toMatch(/CONFIG_NET_KEY_MIGRATE/);
    expect(replyAdvice(SADB.GET, 'EPERM')).toMatch(/CAP_NET_ADMIN/);
    expect(replyAdvice(SADB.DUMP, 'EBUSY')).toMatch(/dump/);
  });
});

describe('ESP with NULL encryption carries an empty SADB_EXT_KEY_ENCRYPT (as setkey sends it; Linux af_key needs one)', () => {
  for (const d of dialects) {
    it(`${d}: -E null (with and without -A), and ESP with no encryption object`, () => {
      const id = { src: '192.0.2.1', dst: '198.51.100.7', spi: 0x1234, protocol: 'esp' as const };
      for (const sa of [
        { ...id, encryption: { algorithm: 'null' as const, key: new Uint8Array(0) }, integrity: { algorithm: 'hmac-sha1-96' as const, key: randomBytes(20) } },
        { ...id, encryption: { algorithm: 'null' as const, key: new Uint8Array(0) }, allowNoIntegrity: true },
        { ...id, integrity: { algorithm: 'hmac-sha1-96' as const, key: randomBytes(20) } },
      ] as SecurityAssociation[]) {
        const msg = decode(encode(saToMessage(sa, SADB.ADD, DIALECTS[d], 1, 2), d), d);
        const ke = findExt(msg, 'keyEncrypt');
        expect(ke, JSON.stringify(Object.keys(sa))).toBeDefined();
        expect(ke?.bits).toBe(0);
        expect(findExt(msg, 'sa')?.encrypt).toBe(DIALECTS[d].algorithms.encrypt.null);
      }
    });
  }
});
