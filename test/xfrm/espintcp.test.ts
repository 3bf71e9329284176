// natt.type 'espintcp' in the XFRM backend: XFRMA_ENCAP with encap_type 7 (TCP_ENCAP_ESPINTCP), encoded and decoded
// against a netlink fixture written by hand; the client's advice when a kernel refuses it; PF_KEY's refusal.
//
// Not run against a kernel that takes it: no reachable kernel has CONFIG_INET_ESPINTCP. The two Debian cloud kernels
// the VM boots say "# CONFIG_INET_ESPINTCP is not set" and "# CONFIG_INET6_ESPINTCP is not set" (config-6.1.0-57-
// cloud-amd64 lines 1127/1165, config-6.12.117+deb12-cloud-amd64 lines 1264/1304), and this host (6.18) has no
// CONFIG_INET_ESP at all; test/kernel/xfrm.test.ts checks the refusal there, and the install where espInTcpSupport() is ok.

import { describe, expect, it } from 'vitest';
import { decode, findAttr } from '../../src/xfrm/codec';
import { xfrmEncode as encode } from '../lib/encoders';
import { saToStruct, structToSa, encapTypeName } from '../../src/xfrm/convert';
import { TCP_ENCAP_ESPINTCP } from '../../src/xfrm/constants';
import { Xfrm, type XfrmTransport } from '../../src/xfrm/client';
import type { XfrmMessage } from '../../src/xfrm/codec';
import { KernelReplyError, NattUnsupportedError } from '../../src/errors';
import { saToMessage } from '../../src/pfkey/convert';
import { DIALECTS, SADB } from '../../src/pfkey/dialects';
import { checkSa } from '../../src/sadb/validate';
import { UserlandSadb } from '../../src/userland/sadb';
import type { SecurityAssociation } from '../../src/sadb/types';

const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f10111213', 'hex'); // AES-128-GCM KEYMAT

/** The NEWSA the model SA below must become: nlmsghdr, xfrm_usersa_info (224, x86-64), ALG_AEAD, ENCAP {7, ...}. */
function fixture(): Buffer {
  const len = 16 + 224 + 96 + 28;
  const b = Buffer.alloc(len);
  // nlmsghdr: len, type 16 (NEWSA), flags REQUEST|ACK (5), seq 7, pid 0
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(16, 4);
  b.writeUInt16LE(5, 6);
  b.writeUInt32LE(7, 8);
  const o = 16;
  // xfrm_selector (56): all zero (no selector: the kernel fills the family in from the SA's)
  // xfrm_id @56: daddr 192.0.2.2, spi @72 (network order) 0x5c, proto @76 = 50
  Buffer.from([192, 0, 2, 2]).copy(b, o + 56);
  b.writeUInt32BE(0x5c, o + 72);
  b[o + 76] = 50;
  // saddr @80: 192.0.2.1
  Buffer.from([192, 0, 2, 1]).copy(b, o + 80);
  // lft @96: the four byte/packet limits XFRM_INF (no limit), the rest zero
  for (let i = 0; i < 4; i++) b.writeBigUInt64LE(0xffffffffffffffffn, o + 96 + 8 * i);
  // reqid @208 = 2, family @212 = AF_INET, mode @214 = tunnel (1), replay_window @215 = 32
  b.writeUInt32LE(2, o + 208);
  b.writeUInt16LE(2, o + 212);
  b[o + 214] = 1;
  b[o + 215] = 32;
  // XFRMA_ALG_AEAD (18): xfrm_algo_aead { name[64], key_len bits, icv_len bits, key }
  let a = o + 224;
  b.writeUInt16LE(96, a);
  b.writeUInt16LE(18, a + 2);
  b.write('rfc4106(gcm(aes))', a + 4, 'latin1');
  b.writeUInt32LE(160, a + 68);
  b.writeUInt32LE(128, a + 72);
  KEY.copy(b, a + 76);
  // XFRMA_ENCAP (4): xfrm_encap_tmpl { u16 encap_type = 7, be16 sport, be16 dport, 2 pad, xfrm_address_t oa (0) }
  a += 96;
  b.writeUInt16LE(28, a);
  b.writeUInt16LE(4, a + 2);
  b.writeUInt16LE(7, a + 4);
  b.writeUInt16BE(40123, a + 6);
  b.writeUInt16BE(4500, a + 8);
  return b;
}

const sa: SecurityAssociation = {
  src: '192.0.2.1',
  dst: '192.0.2.2',
  spi: 0x5c,
  mode: 'tunnel',
  reqid: 2,
  encryption: { algorithm: 'aes-gcm-16', key: KEY },
  natt: { type: 'espintcp', sport: 40123, dport: 4500 },
};

describe("natt.type 'espintcp' ⇄ XFRM (TCP_ENCAP_ESPINTCP = 7)", () => {
  it('encodes to the hand-made NEWSA byte for byte, and the fixture decodes back to the same SA', () => {
    expect(TCP_ENCAP_ESPINTCP).toBe(7);
    const { sa: info, attrs } = saToStruct(sa);
    expect(attrs.map((x) => x.kind)).toEqual(['algAead', 'encap']);
    expect(findAttr(attrs, 'encap')).toEqual({ kind: 'encap', encapType: 7, sport: 40123, dport: 4500, oa: '' });
    const m: XfrmMessage = { type: 'newsa', flags: 5, seq: 7, pid: 0, sa: info, attrs };
    const got = encode(m);
    const want = fixture();
    const diff = [...want].map((v, i) => (v === got[i] ? '' : `@${i}: ${got[i]} != ${v}`)).filter(Boolean);
    expect(diff).toEqual([]);
    expect(got.equals(want)).toBe(true);
    const [back] = decode(fixture());
    if (back.type !== 'newsa') throw new Error(`decoded ${String(back.type)}`);
    expect(findAttr(back.attrs, 'encap')).toMatchObject({ encapType: 7, sport: 40123, dport: 4500 });
    const model = structToSa(back.sa, back.attrs);
    expect(model).toMatchObject({ src: '192.0.2.1', dst: '192.0.2.2', spi: 0x5c, mode: 'tunnel', reqid: 2, natt: { type: 'espintcp', sport: 40123, dport: 4500 } });
    expect(model.natt).not.toHaveProperty('oa');
  });

  it('every encap type reads back as itself: 1, 2, 7 by name; an unknown one as encap-<n>, never as espinudp', () => {
    expect([1, 2, 7, 3, 100].map(encapTypeName)).toEqual(['espinudp-non-ike', 'espinudp', 'espintcp', 'encap-3', 'encap-100']);
  });

  it("a kernel's EINVAL for an espintcp SA comes with advice naming CONFIG_INET_ESPINTCP and the userland alternative", async () => {
    let deliver!: (b: Buffer) => void;
    const transport = (onMessage: (b: Buffer) => void): XfrmTransport => {
      deliver = onMessage;
      return {
        bind: () => undefined,
        send: (bytes) => {
          const [req] = decode(bytes);
          const err = { type: 'error', seq: req.seq, pid: 1, error: -22, request: { len: 16, type: 16, flags: 5, seq: req.seq ?? 0, pid: 0 }, data: new Uint8Array(0) };
          setImmediate(() => deliver(Buffer.from(encode(err as XfrmMessage))));
          return bytes.length;
        },
        ref: () => undefined,
        unref: () => undefined,
        close: () => undefined,
      };
    };
    const x = await Xfrm.open({ transport });
    const e = await x.add(sa).catch((err: unknown) => err);
    await x.close();
    expect(e).toBeInstanceOf(KernelReplyError);
    expect(e).toMatchObject({ code: 'EINVAL', errno: -22, messageType: 'XFRM_MSG_NEWSA' });
    expect((e as Error).message).toMatch(/CONFIG_INET_ESPINTCP/);
    expect((e as Error).message).toMatch(/connectNattTcp/);
  });

  it('PF_KEY has no espintcp: refused in every dialect with NattUnsupportedError naming XFRM', () => {
    const cbc: SecurityAssociation = {
      ...sa,
      encryption: { algorithm: 'aes-cbc', key: Buffer.alloc(16, 1) },
      integrity: { algorithm: 'hmac-sha1-96', key: Buffer.alloc(20, 2) },
    };
    expect(() => saToMessage({ ...cbc, natt: { type: 'espinudp', sport: 4500, dport: 4500 } }, SADB.ADD, DIALECTS.netbsd, 1, 1)).not.toThrow();
    for (const d of ['linux', 'netbsd', 'freebsd'] as const) {
      expect(() => saToMessage(cbc, SADB.ADD, DIALECTS[d], 1, 1)).toThrow(NattUnsupportedError);
      expect(() => saToMessage(cbc, SADB.ADD, DIALECTS[d], 1, 1)).toThrow(/PF_KEY has no ESP-in-TCP.*backend 'xfrm'/);
    }
  });
});

describe("natt.type 'espintcp' in the model", () => {
  it('is validated: the three types pass, a fourth is refused naming the field; a keepalive interval is refused with it', async () => {
    for (const type of ['espinudp', 'espinudp-non-ike', 'espintcp'] as const) {
      expect(checkSa({ ...sa, natt: { type, sport: 1, dport: 2 } }).natt!.type).toBe(type);
    }
    expect(() => checkSa({ ...sa, natt: { type: 'esp-in-tcp', sport: 1, dport: 2 } })).toThrow(/"natt.type" must be 'espinudp', 'espinudp-non-ike' or 'espintcp'/);
    expect(() => checkSa({ ...sa, natt: { type: 'espintcp', sport: 1, dport: 2, keepaliveInterval: 20 } })).toThrow(/"natt.keepaliveInterval".*RFC 9329/);
    expect(checkSa({ ...sa, natt: { type: 'espintcp', sport: 1, dport: 2, keepaliveInterval: 0 } }).natt!.keepaliveInterval).toBe(0);
    // The userland database keeps it (its engine decides per transport at send time).
    const db = new UserlandSadb();
    await db.add(sa);
    expect((await db.get(sa)).natt).toEqual({ type: 'espintcp', sport: 40123, dport: 4500 });
  });
});
