// The setkey grammar statement by statement: what each form becomes on the model, and where and how errors point.

import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { NattUnsupportedError } from '../../src/errors';
import { PRIORITY_DEFAULT, SetkeyParseError, SetkeyUnsupportedError, parseSetkey, type ParseSetkeyOptions, type SetkeyOp } from '../../src/setkey';

const A16 = `"${'a'.repeat(16)}"`;
const A20 = `"${'a'.repeat(20)}"`;
const A32 = `"${'a'.repeat(32)}"`;
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

function one(text: string, opts?: ParseSetkeyOptions): SetkeyOp {
  const ops = parseSetkey(text, opts);
  expect(ops).toHaveLength(1);
  return ops[0];
}

function parseError(text: string, opts?: ParseSetkeyOptions): SetkeyParseError {
  try {
    parseSetkey(text, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(SetkeyParseError);
    return e as SetkeyParseError;
  }
  throw new Error('expected a SetkeyParseError');
}

function unsupported(text: string, opts?: ParseSetkeyOptions): SetkeyUnsupportedError {
  try {
    parseSetkey(text, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(SetkeyUnsupportedError);
    expect(e).toBeInstanceOf(NattUnsupportedError);
    expect((e as SetkeyUnsupportedError).code).toBe('ERR_NATT_UNSUPPORTED');
    return e as SetkeyUnsupportedError;
  }
  throw new Error('expected a SetkeyUnsupportedError');
}

describe('setkey SA statements', () => {
  it('add esp: addresses, SPI, rijndael-cbc with a quoted key; setkey defaults (replay 0, mode left to the backend)', () => {
    const op = one(`add 10.0.0.1 10.0.0.2 esp 0x1001 -E rijndael-cbc ${A16};`, { file: 'x.conf' });
    expect(op).toMatchObject({ op: 'add', at: { file: 'x.conf', line: 1, column: 1 } });
    if (op.op !== 'add') throw new Error();
    expect(op.sa).toMatchObject({ src: '10.0.0.1', dst: '10.0.0.2', spi: 0x1001, protocol: 'esp', replayWindow: 0 });
    expect(op.sa.mode).toBeUndefined();
    expect(op.sa.encryption?.algorithm).toBe('aes-cbc');
    expect(op.sa.encryption?.key).toEqual(bytes('a'.repeat(16)));
    // Keys sit in key holders: inspect and JSON show their length only.
    expect(inspect(op, { depth: 10, showHidden: true })).not.toMatch(/61, 61|aaaa/);
    expect(JSON.stringify(op)).not.toMatch(/aaaa|97,97/);
    expect(JSON.stringify(op)).toContain('"key":"[hidden 16 bytes]"');
  });

  it('esp-udp (NAT-T): addr[port] and addr [port], 4500 by default, an optional NAT-OA address', () => {
    const a = one(`add 10.0.1.2 [9696] 20.0.0.2 [4500] esp-udp 10000 -E rijndael-cbc ${A16};`);
    const b = one(`add 10.0.1.2[4500] 20.0.0.2 esp-udp 10.0.0.5 0x2000 -m transport -E null -A hmac-sha1 ${A20} ;`);
    if (a.op !== 'add' || b.op !== 'add') throw new Error();
    expect(a.sa.natt).toEqual({ type: 'espinudp', sport: 9696, dport: 4500 });
    expect(b.sa.natt).toEqual({ type: 'espinudp', sport: 4500, dport: 4500, oa: { initiator: '10.0.0.5' } });
    expect(b.sa).toMatchObject({ spi: 0x2000, mode: 'transport', encryption: { algorithm: 'null' }, integrity: { algorithm: 'hmac-sha1-96' } });
  });

  it('extensions in any order: -m -u -r -lh -ls -bh -bs; -f flags are notes', () => {
    const op = one(`add 10.0.11.41 10.0.11.33 esp 0x10001 -m tunnel -u 5 -r 32 -lh 3600 -ls 3000 -bh 100000 -bs 50000 -f seq-pad -f nocyclic-seq
      -E rijndael-cbc 0x0123456789abcdef0123456789abcdef
      -A hmac-sha256 0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ;`);
    if (op.op !== 'add') throw new Error();
    expect(op.sa).toMatchObject({
      mode: 'tunnel',
      reqid: 5,
      replayWindow: 32,
      lifetime: { hard: { addSeconds: 3600, bytes: 100000 }, soft: { addSeconds: 3000, bytes: 50000 } },
      integrity: { algorithm: 'hmac-sha2-256-128' },
    });
    expect(op.sa.encryption?.key).toEqual(Uint8Array.from(Buffer.from('0123456789abcdef0123456789abcdef', 'hex')));
    expect(op.notes?.join(' ')).toMatch(/seq-pad.*nocyclic-seq/);
  });

  it('hmac-sha256 is RFC 4868 (128-bit ICV), but what Linux PF_KEY installs (96 bits) when read for pfkey-linux', () => {
    const text = `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16} -A hmac-sha2-256 ${A32};`;
    for (const [platform, alg] of [['any', 'hmac-sha2-256-128'], ['userland', 'hmac-sha2-256-128'], ['pfkey-netbsd', 'hmac-sha2-256-128'], ['pfkey-linux', 'hmac-sha2-256-96']] as const) {
      const op = one(text, { platform });
      if (op.op !== 'add') throw new Error();
      expect(op.sa.integrity?.algorithm, platform).toBe(alg);
    }
  });

  it('algorithm names as setkey spells them, mapped to the model', () => {
    const cases: Array<[string, string, string]> = [
      ['-E aes-ctr "aaaaaaaaaaaaaaaaaaaa"', 'encryption', 'aes-ctr'],
      ['-E aes-gcm-16 0x3ffe050148193ffe050148193ffe050148193ffe', 'encryption', 'aes-gcm-16'],
      ['-E aes-gmac 0x3ffe050148193ffe050148193ffe050148193ffe', 'encryption', 'aes-gmac'],
      [`-E chacha20-poly1305 "${'1'.repeat(36)}"`, 'encryption', 'chacha20-poly1305'],
      [`-E 3des-cbc "${'k'.repeat(24)}"`, 'encryption', '3des-cbc'],
      [`-E null -A hmac-md5 "${'k'.repeat(16)}"`, 'integrity', 'hmac-md5-96'],
      [`-E null -A hmac-sha384 "${'k'.repeat(48)}"`, 'integrity', 'hmac-sha2-384-192'],
      [`-E null -A hmac-sha2-512 "${'k'.repeat(64)}"`, 'integrity', 'hmac-sha2-512-256'],
      [`-E null -A aes-xcbc-mac "${'k'.repeat(16)}"`, 'integrity', 'aes-xcbc-96'],
      ['-E null -A null', 'integrity', 'none'],
      ['-E simple', 'encryption', 'null'],
    ];
    for (const [alg, field, model] of cases) {
      const op = one(`add 10.0.0.1 10.0.0.2 esp 0x100 ${alg} ;`);
      if (op.op !== 'add') throw new Error();
      expect((op.sa as unknown as Record<string, { algorithm: string }>)[field].algorithm, alg).toBe(model);
    }
  });

  it('hex keys: an odd number of digits makes the first digit its own byte (setkey does so)', () => {
    const op = one('add 10.0.0.1 10.0.0.2 esp 0x100 -E blowfish-cbc 0x1234567890a ;', { platform: 'pfkey-netbsd' });
    if (op.op !== 'add') throw new Error();
    expect(op.sa.encryption).toMatchObject({ algorithm: 'blowfish-cbc' });
    expect([...(op.sa.encryption?.key ?? [])]).toEqual([0x01, 0x23, 0x45, 0x67, 0x89, 0x0a]);
    expect(op.sa.mode).toBe('any'); // the BSDs' default SA mode
  });

  it('AH and IPComp', () => {
    const ah = one(`add fc00::1 fc00::2 ah 10000 -A hmac-sha512 "${'a'.repeat(64)}";`);
    const ipc = one('add 20.0.0.1 20.0.0.2 ipcomp 10000 -C deflate -R ;');
    if (ah.op !== 'add' || ipc.op !== 'add') throw new Error();
    expect(ah.sa).toMatchObject({ protocol: 'ah', src: 'fc00::1', integrity: { algorithm: 'hmac-sha2-512-256' } });
    expect(ah.sa.encryption).toBeUndefined();
    expect(ipc.sa).toMatchObject({ protocol: 'ipcomp', spi: 10000, compression: { algorithm: 'deflate' } });
    expect(ipc.notes?.join()).toMatch(/-R/);
  });

  it('update, getspi (with and without an SPI), get, delete, deleteall, flush, dump', () => {
    const ops = parseSetkey(`
      update 10.0.0.1 10.0.0.2 esp 10000 -E rijndael-cbc ${A16};
      getspi 10.0.0.1 10.0.0.2 ah 10000 -lh 100 -ls 100 ;
      getspi -4 10.0.0.1 10.0.0.2 esp 0 -m tunnel -u 7;
      get 3ffe:501:4819::1 3ffe:501:481d::1 ah 123456 ;
      delete 10.0.0.1 10.0.0.2 esp 10010;
      deleteall 10.0.0.1 10.0.0.2 esp;
      flush; flush ah ; dump ; dump esp-udp;
    `);
    expect(ops.map((o) => o.op)).toEqual(['update', 'getspi', 'getspi', 'get', 'delete', 'deleteall', 'flush', 'flush', 'dump', 'dump']);
    expect(ops[1]).toMatchObject({ request: { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'ah', min: 10000, max: 10000 } });
    expect(ops[1].notes?.join()).toMatch(/-lh -ls ignored by getspi/);
    expect(ops[2]).toMatchObject({ request: { protocol: 'esp', mode: 'tunnel', reqid: 7 } });
    expect((ops[2] as { request: object }).request).not.toHaveProperty('min');
    expect(ops[3]).toMatchObject({ id: { src: '3ffe:501:4819::1', dst: '3ffe:501:481d::1', spi: 123456, protocol: 'ah' }, at: { line: 5 } });
    expect(ops[5]).toMatchObject({ match: { src: '10.0.0.1', dst: '10.0.0.2', protocol: 'esp' } });
    expect(ops[6]).not.toHaveProperty('protocol');
    expect(ops[7]).toMatchObject({ protocol: 'ah' });
    expect(ops[9]).toMatchObject({ protocol: 'esp' });
  });

  it('exit (and quit, bye) ends the input: what follows is not even read, as in setkey', () => {
    const ops = parseSetkey('flush;\nexit;\nthis is not setkey \\ at all');
    expect(ops.map((o) => o.op)).toEqual(['flush', 'exit']);
    expect(parseSetkey('quit ;').map((o) => o.op)).toEqual(['exit']);
  });
});

describe('setkey SPD statements', () => {
  const sp = (text: string, opts?: ParseSetkeyOptions) => {
    const op = one(text, opts);
    if (op.op !== 'spdadd' && op.op !== 'spdupdate') throw new Error(op.op);
    return op.policy;
  };

  it('prefixes, [any] and [port], upper-layer protocols, a transport rule', () => {
    const p = sp('spdadd 10.0.11.41/32[21] 10.0.11.33/32[any] tcp -P out ipsec esp/transport//require ;');
    expect(p).toEqual({
      selector: { src: '10.0.11.41/32', dst: '10.0.11.33/32', proto: 6, sport: 21 },
      direction: 'out',
      action: 'ipsec',
      priority: PRIORITY_DEFAULT,
      templates: [{ protocol: 'esp', mode: 'transport', level: 'require' }],
    });
    expect(sp('spdadd ::/0 ::/0 any -P in none;').selector).toEqual({ src: '::/0', dst: '::/0' });
    expect(sp('spdadd 10.0.0.1 10.0.0.2 udp -P in none;').selector.proto).toBe(17);
    expect(sp('spdadd 10.0.0.1 10.0.0.2 ipv4 -P in none;').selector.proto).toBe(4);
    expect(sp('spdadd 10.0.0.1 10.0.0.2 ip4 -P in none;').selector.proto).toBe(4);
    expect(sp('spdadd 10.0.0.1 10.0.0.2 50 -P in none;').selector.proto).toBe(50);
    expect(sp('spdadd 10.0.0.1 10.0.0.2 255 -P in none;').selector.proto).toBeUndefined();
    expect(sp('spdadd fec0:0:0:1::/64 fec0:0000:0:2::0/64 any -P out discard;').selector).toEqual({ src: 'fec0:0:0:1::/64', dst: 'fec0:0:0:2::/64' });
  });

  it('ICMP type,code and GRE keys go into the port fields, as setkey keeps them', () => {
    expect(sp('spdadd ::/0 ::/0 icmp6 135,0 -P in none ;').selector).toEqual({ src: '::/0', dst: '::/0', proto: 58, sport: 135 });
    expect(sp('spdadd 0.0.0.0/0 0.0.0.0/0 icmp 8 -P in none ;').selector).toEqual({ src: '0.0.0.0/0', dst: '0.0.0.0/0', proto: 1, sport: 8 });
    expect(sp('spdadd 0.0.0.0 0.0.0.0 gre 1.2.3.4 -P out none ;').selector).toMatchObject({ proto: 47, sport: 0x0102, dport: 0x0304 });
    expect(sp('spdadd 0.0.0.0 0.0.0.0 gre 1234 -P out none ;').selector).toMatchObject({ proto: 47, dport: 1234 });
  });

  it('tunnel rules, bundles over several lines, levels unique:N / unique / use / default / none given', () => {
    const p = sp(`spdadd 10.0.1.0/24 10.0.2.0/24 any -P out ipsec
        ipcomp/tunnel/20.0.0.1-20.0.0.2/use
        esp/transport//unique:28000
        ah/transport//unique
        esp/transport//default
        esp/transport
        ah/tunnel/fec0::1-fec0::2;`);
    expect(p.templates).toEqual([
      { protocol: 'ipcomp', mode: 'tunnel', src: '20.0.0.1', dst: '20.0.0.2', level: 'use' },
      { protocol: 'esp', mode: 'transport', level: 'unique', reqid: 28000 },
      { protocol: 'ah', mode: 'transport', level: 'unique' },
      { protocol: 'esp', mode: 'transport', level: 'default' },
      { protocol: 'esp', mode: 'transport', level: 'default' },
      { protocol: 'ah', mode: 'tunnel', src: 'fec0::1', dst: 'fec0::2', level: 'default' },
    ]);
  });

  it('NAT-T ports in tunnel endpoints are dropped with a note (Linux ignores them too)', () => {
    const op = one('spdadd 10.0.11.0/24[any] 10.0.11.33/32[any] any -P out ipsec\n    esp/tunnel/192.168.0.1[4500]-192.168.1.2[30000]/require ;');
    if (op.op !== 'spdadd') throw new Error();
    expect(op.policy.templates).toEqual([{ protocol: 'esp', mode: 'tunnel', src: '192.168.0.1', dst: '192.168.1.2', level: 'require' }]);
    expect(op.notes?.join()).toMatch(/192\.168\.0\.1\[4500\].*dropped/);
  });

  it('priorities: default def on Linux-like platforms, none on the BSDs; every spelling libipsec has', () => {
    expect(sp('spdadd 10.0.0.1 10.0.0.2 any -P in none;').priority).toBe(0x8000_0000);
    expect(sp('spdadd 10.0.0.1 10.0.0.2 any -P in none;', { platform: 'pfkey-freebsd' }).priority).toBeUndefined();
    const prio = (p: string): number | undefined => sp(`spdadd 10.0.0.1 10.0.0.2 any -P in ${p} none;`).priority;
    expect(prio('priority def+1')).toBe(0x7fff_ffff);
    expect(prio('prio def + 1')).toBe(0x7fff_ffff);
    expect(prio('prio low - 5')).toBe(0xc000_0005);
    expect(prio('prio high')).toBe(0x4000_0000);
    expect(prio('priority 2000')).toBe(0x8000_0000 - 2000);
    expect(prio('priority -3')).toBe(0x8000_0003);
    expect(prio('priority 2147483648')).toBe(0);
    expect(parseError('spdadd 10.0.0.1 10.0.0.2 any -P in prio high + 1073741825 none;').reason).toMatch(/out of range/);
  });

  it('spddelete: direction only, or the full policy (ignored past the direction)', () => {
    expect(one('spddelete fec0:0:0:1::/64 fec0:0:0:2::/64 any -P out;')).toMatchObject({
      op: 'spddelete',
      selector: { src: 'fec0:0:0:1::/64', dst: 'fec0:0:0:2::/64' },
      direction: 'out',
    });
    const d = one('spddelete 10.99.99.1/32[any] 0.0.0.0/0[any] any -P out ipsec esp/tunnel/192.168.1.10-203.0.113.1/require;');
    expect(d).toMatchObject({ op: 'spddelete', direction: 'out' });
    expect(d.notes?.join()).toMatch(/not compared/);
  });

  it("RFC semantics (setkey -r, its Linux default) add a fwd twin to every in policy; unique becomes require", () => {
    const ops = parseSetkey('spdadd 10.0.0.0/8 10.1.0.0/16 any -P in ipsec esp/tunnel/1.1.1.1-2.2.2.2/unique:5 ah/transport//unique:6;', { semantics: 'rfc' });
    expect(ops).toHaveLength(2);
    expect(ops[1]).toMatchObject({ op: 'spdadd', implicit: true, policy: { direction: 'fwd' } });
    if (ops[1].op !== 'spdadd') throw new Error();
    expect(ops[1].policy.templates).toEqual([
      { protocol: 'esp', mode: 'tunnel', src: '1.1.1.1', dst: '2.2.2.2', level: 'require' },
      { protocol: 'ah', mode: 'transport', level: 'unique', reqid: 6 },
    ]);
    expect(parseSetkey('spdadd 10.0.0.0/8 10.1.0.0/16 any -P in none;', { platform: 'xfrm' })).toHaveLength(2); // xfrm: rfc by default
    expect(parseSetkey('spdadd 10.0.0.0/8 10.1.0.0/16 any -P in none;', { platform: 'xfrm', semantics: 'kernel' })).toHaveLength(1);
    expect(parseSetkey('spddelete 10.0.0.0/8 10.1.0.0/16 any -P in;', { semantics: 'rfc' }).map((o) => o.op)).toEqual(['spddelete', 'spddelete']);
  });
});

describe('setkey layout', () => {
  it('comments, statements over several lines, several per line, blank lines, CRLF, no final newline', () => {
    const text = '#!/usr/sbin/setkey -f\r\n# a comment\r\nflush; spdflush;   # after a statement\r\n\r\n\t\t  spdadd 10.1.0.0/24 10.2.0.0/24 any -P out ipsec\r\nesp/tunnel/198.51.100.1-198.51.100.2/require;dump';
    expect(() => parseSetkey(text)).toThrow(SetkeyParseError); // the last statement has no ';'
    const ops = parseSetkey(`${text};`);
    expect(ops.map((o) => `${o.op}@${o.at.line}:${o.at.column}`)).toEqual(['flush@3:1', 'spdflush@3:8', 'spdadd@5:5', 'dump@6:46']);
  });

  it('address flags -4 -6 -n in any combination; -4/-6 check the family', () => {
    expect(one(`add -n4 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16};`).op).toBe('add');
    expect(one(`add -4 -n 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16};`).op).toBe('add');
    const e = parseError(`add -6 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16};`);
    expect(e).toMatchObject({ line: 1, column: 8 });
    expect(e.reason).toMatch(/IPv4 address, but -6/);
    expect(parseError(`add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16};`, { family: 6 }).reason).toMatch(/-6/);
  });

  it('an empty input, or one of comments only, is no operation', () => {
    expect(parseSetkey('')).toEqual([]);
    expect(parseSetkey('# nothing\n\n   \t# more\n')).toEqual([]);
  });
});

describe('setkey errors: line, column, what was expected', () => {
  it('an unknown algorithm points at its name and lists what setkey knows', () => {
    const e = parseError(`add ::1 ::1 esp 10013 -m tunnel\n\t-E rc5-cbc "testtest1234" ;`, { file: 'sample.cf' });
    expect(e).toMatchObject({ file: 'sample.cf', line: 2, column: 5, found: "'rc5-cbc'" });
    expect(e.message).toMatch(/^sample\.cf:2:5: expected an encryption algorithm after -E \(des-cbc, 3des-cbc, .*rijndael-cbc.*\), got 'rc5-cbc'$/);
    expect(e.expected).toMatch(/encryption algorithm/);
  });

  it('the errors of setkey itself, at the right token', () => {
    const cases: Array<[string, number, number, RegExp]> = [
      ['flush', 1, 6, /expected ';'/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100000000 -E null;', 1, 27, /SPI too big/],
      ['add 10.0.0.1 10.0.0.2 esp 0 -E null;', 1, 27, /SPI 0/],
      [`add 10.0.0.1 10.0.0.2 esp 0x100\n  -E aes-cbc "short";`, 2, 14, /key for aes-cbc must be 16, 24, 32 bytes, got 5 bytes/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-gcm-16 0x0011223344556677;', 1, 47, /20, 28, 36 bytes \(the key and then a 4-byte salt/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc;', 1, 43, /the key for aes-cbc/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -E null "x";', 1, 41, /null takes no key/],
      [`add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc ${A16} -m tunnel;`, 1, 63, /extensions such as -m come before -E/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -A hmac-sha1 "aaaaaaaaaaaaaaaaaaaa";', 1, 33, /ESP needs -E first.*-E null -A hmac-sha1/],
      ['add 10.0.0.1 10.0.0.2 ah 0x100 -E null;', 1, 32, /AH only authenticates/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-gcm-16 "aaaaaaaaaaaaaaaaaaaa" -A null;', 1, 70, /AEAD/],
      ['add 10.0.0.256 10.0.0.2 esp 0x100 -E null;', 1, 5, /not an IPv4 address/],
      ['add 10.0.0.1 ::2 esp 0x100 -E null;', 1, 14, /different families/],
      ['add 10.0.0.1 10.0.0.2 foo 0x100 -E null;', 1, 23, /expected a protocol/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -m beet -E null;', 1, 36, /a mode after -m/],
      ['get 10.0.0.1 10.0.0.2 esp 0x100 -E null;', 1, 33, /get takes no algorithms/],
      ['deleteall 10.0.0.1[500] 10.0.0.2 esp;', 1, 19, /deleteall takes no \[port\]/],
      ['spdadd 0.0.0.0 0.0.0.0 gre 1234 ipsec esp/transport//require ;', 1, 33, /expected -P/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out;', 1, 33, /expected an action after -P out.*discard policy/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out ipsec;', 1, 37, /at least one rule/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out none esp/transport//require;', 1, 42, /rules follow only ipsec/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel//require;', 1, 43, /tunnel-mode rule needs its endpoints/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//;', 1, 58, /a level/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/transport//require # no\n;', 1, 66, /'#' inside the policy/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P up ipsec;', 1, 33, /direction \(in, out or fwd\)/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel/a.example-10.0.0.2/require;', 1, 54, /tunnel endpoints are numeric/],
      ['spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel/10.0.0.1[4500]-10.0.0.2/require;', 1, 69, /both tunnel endpoints/],
      ['spdadd 10.0.0.1/33 10.0.0.2 any -P out none;', 1, 17, /prefix length \/33/],
      ['spdadd 10.0.0.1[70000] 10.0.0.2 any -P out none;', 1, 17, /port 70000 is out of range/],
      ['spdadd 10.0.0.1[80-90] 10.0.0.2 any -P out none;', 1, 17, /port ranges/],
      ['spdadd 10.0.0.1 10.0.0.2 esp -P out none;', 1, 26, /setkey reserves 'esp': write its number/],
      ['spdadd 10.0.0.1 10.0.0.2 bogus -P out none;', 1, 26, /invalid upper layer protocol/],
      ['spdadd 10.0.0.1 10.0.0.2 tcp 8,0 -P out none;', 1, 30, /only icmp, icmp6, mobility-header .* and gre/],
      ['spdadd 10.0.0.1[80] 10.0.0.2 icmp 8,0 -P out none;', 1, 35, /takes no \[ports\]/],
      ['add 10.0.0.1 10.0.0.2 esp 0x1565785 -m tunnel \\\n -E null;', 1, 47, /no backslash line continuation/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc "unterminated;', 1, 44, /quoted string is not closed/],
      ['add 10.0.0.1 10.0.0.2 esp 0x100 -x;', 1, 33, /unknown option '-x'/],
      ['flush;\rdump;', 1, 7, /carriage return/],
      ['frobnicate;', 1, 1, /expected a command/],
    ];
    for (const [text, line, column, re] of cases) {
      const e = parseError(text);
      expect({ text, line: e.line, column: e.column }).toEqual({ text, line, column });
      expect(e.reason, text).toMatch(re);
      expect(e.message).toBe(`<input>:${line}:${column}: ${e.reason}`);
      expect(e.code).toBe('ERR_NATT_SETKEY_PARSE');
    }
  });

  it('error messages never carry key material: quoted and hex strings are described by their size', () => {
    const secret = 'SECRETSECRETSECRET';
    for (const text of [
      `"${secret}";`,
      `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc "${secret}";`,
      `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc 0x${'ab'.repeat(17)};`,
      `add 10.0.0.1 10.0.0.2 esp 0x100 -E null "${secret}";`,
      `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-cbc "${'k'.repeat(16)}" "${secret}";`,
    ]) {
      const e = parseError(text);
      expect(e.message).not.toContain(secret);
      expect(e.message).not.toContain('abab');
      expect(`${e.found} ${e.expected}`).not.toContain(secret);
    }
    expect(parseError(`"${secret}";`).found).toBe('a quoted string of 18 characters');
  });

  it('a real error anywhere wins over what natt cannot do earlier in the file; both come after the whole file reads', () => {
    const e = parseError(`add 10.0.0.1 10.0.0.2 esp 0x100 -E des-cbc "12345678";\nflush;\nadd 10.0.0.1 10.0.0.2 esp 0x101 -E aes-cbc "short";`);
    expect(e.line).toBe(3);
  });
});

describe('what natt cannot do: SetkeyUnsupportedError (a NattUnsupportedError) naming the feature', () => {
  it('model limits, every place listed', () => {
    const e = unsupported(`add 10.0.0.1 10.0.0.2 esp 0x100 -E des-cbc "12345678";
      add 10.0.0.1 10.0.0.2 esp-old 0x101 -E null;
      add -6 myhost.example.com yourhost.example.com ah 123456 -A hmac-sha1 "AH SA configuration!" ;
      add 10.1.10.34 10.1.10.36 tcp 0x1000 -A tcp-md5 "TCP-MD5 BGP secret" ;
      add 10.0.0.1 10.0.0.2 esp 0x102 -ctx 1 1 "system_u:system_r:unconfined_t" -E null;
      spdadd 10.0.0.1 10.0.0.2 any -ctx 1 1 "x" -P out none;
      spdadd tagged "mytag" -P out none;
      spdadd 10.0.0.1 10.0.0.2 any -P out bypass;
      spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel/me-any/require;
      add 10.0.0.1 10.0.0.2 ipcomp 0x10000 -C deflate;
      spdadd 10.0.0.1[http] 10.0.0.2 any -P out none;
      add 10.0.0.1 10.0.0.2 esp 0x103 -E des-deriv "12345678";`);
    expect(e.features.map((f) => `${f.at.line}:${f.feature}`)).toEqual([
      '1:des-cbc',
      '2:esp-old',
      '3:host names',
      '3:host names',
      '4:tcp',
      '5:-ctx',
      '6:-ctx',
      '7:tagged',
      '8:bypass',
      '9:me-any',
      '10:IPComp CPI',
      '11:service names',
      '12:des-deriv',
    ]);
    expect(e).toMatchObject({ line: 1, column: 36, feature: 'des-cbc', platform: 'any' });
    expect(e.message).toMatch(/^<input>:1:36: des-cbc is not supported on natt's SA model: .*\(and 12 more places natt cannot do\)$/);
  });

  it('backend limits: the same file is fine for one platform and not for another', () => {
    const gcm = `add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-gcm-16 0x3ffe050148193ffe050148193ffe050148193ffe ;`;
    expect(one(gcm, { platform: 'xfrm' }).op).toBe('add');
    expect(unsupported(gcm, { platform: 'pfkey-linux' }).message).toMatch(/aes-gcm-16 is not supported on Linux PF_KEY: .*AEAD.*--backend xfrm/);
    const fwd = 'spdadd 10.0.0.0/8 10.1.0.0/16 any -P fwd none;';
    expect(one(fwd, { platform: 'pfkey-linux' }).op).toBe('spdadd');
    expect(unsupported(fwd, { platform: 'pfkey-netbsd' })).toMatchObject({ feature: 'fwd', platform: 'pfkey-netbsd' });
    const prio = 'spdadd 10.0.0.0/8 10.1.0.0/16 any -P in priority def+1 none;';
    expect(unsupported(prio, { platform: 'pfkey-netbsd' })).toMatchObject({ feature: 'priority', column: 41 });
    expect(one(prio, { platform: 'pfkey-freebsd' }).op).toBe('spdadd');
    const ports = 'spdadd 10.0.0.0/8 10.1.0.0/16 any -P out ipsec esp/tunnel/1.1.1.1[4500]-2.2.2.2[4500]/require;';
    expect(unsupported(ports, { platform: 'pfkey-freebsd' }).feature).toBe('ports in tunnel endpoints');
    const reqid = 'spdadd 10.0.0.0/8 10.1.0.0/16 any -P out ipsec esp/transport//unique:70000;';
    expect(unsupported(reqid, { platform: 'pfkey-netbsd' }).feature).toBe('reqid');
    const ctr = 'add 10.0.0.1 10.0.0.2 esp 0x100 -E aes-ctr "aaaaaaaaaaaaaaaaaaaa";';
    expect(unsupported(ctr, { platform: 'userland' }).message).toMatch(/userland ESP engine implements .*--backend xfrm has aes-ctr/);
    const replay = `add 10.0.0.1 10.0.0.2 esp 0x100 -r 1024 -E aes-cbc ${A16};`;
    expect(one(replay, { platform: 'userland' }).op).toBe('add');
    expect(unsupported(replay, { platform: 'xfrm' }).feature).toBe('replay window');
    const bare = 'add 10.0.0.1 10.0.0.2 esp 0x100 -E null;';
    expect(one(bare, { platform: 'xfrm' }).op).toBe('add');
    expect(unsupported(bare, { platform: 'userland' })).toMatchObject({ feature: 'null without integrity', column: 36 });
    const pad = 'add 10.0.0.1 10.0.0.2 esp 0x100 -f random-pad -E null;';
    expect(one(pad).notes?.join()).toMatch(/random-pad is ignored/);
    expect(unsupported(pad, { platform: 'pfkey-netbsd' }).feature).toBe('-f random-pad');
  });
});

describe('parseSetkey checks its own arguments', () => {
  it('refuses a non-string input, unknown options and bad option values, naming them', () => {
    expect(() => parseSetkey(42 as unknown as string)).toThrow(TypeError);
    expect(() => parseSetkey('', { platfrom: 'xfrm' } as unknown as ParseSetkeyOptions)).toThrow(/unknown option "platfrom"/);
    expect(() => parseSetkey('', { platform: 'solaris' } as unknown as ParseSetkeyOptions)).toThrow(/platform/);
    expect(() => parseSetkey('', { semantics: 'loose' } as unknown as ParseSetkeyOptions)).toThrow(/semantics/);
    expect(() => parseSetkey('', { family: 5 } as unknown as ParseSetkeyOptions)).toThrow(/family/);
  });
});
