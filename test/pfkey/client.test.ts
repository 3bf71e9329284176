// The PfKey client on this host: opening it where the kernel has no PF_KEY gives EAFNOSUPPORT with advice; bad options.
import { describe, expect, it } from 'vitest';
import { openSadb } from '../../src/sadb/open';
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
