// Dumps in ipsec-tools' pfkey_dump.c layout (setkey -D / -DP), byte for byte, keys hidden unless revealed; toSetkey.

process.env.TZ = 'UTC'; // the lifetime lines print local time, as ctime(3) does

import { describe, expect, it } from 'vitest';
import type { SecurityAssociation, SecurityPolicy } from '../../src/sadb/types';
import { hideSaKeys } from '../../src/sadb/keys';
import { formatSadDump, formatSpdDump, parseSetkey, toSetkey } from '../../src/setkey';
import { priorityText, strTime } from '../../src/setkey/format';

const key = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
const NOW = Date.UTC(2026, 10, 24, 10, 0, 5) / 1000;

const natt: SecurityAssociation = hideSaKeys({
  src: '10.0.1.2',
  dst: '20.0.0.2',
  spi: 10000,
  protocol: 'esp',
  mode: 'transport',
  reqid: 0,
  replayWindow: 0,
  encryption: { algorithm: 'aes-cbc', key: key('a'.repeat(16)) },
  natt: { type: 'espinudp', sport: 9696, dport: 4500 },
  state: 'mature',
  lifetime: { hard: { addSeconds: 3600 }, soft: { addSeconds: 3000 } },
  current: { bytes: 1234, packets: 7, addTime: NOW - 5, useTime: 0 },
});

describe('formatSadDump', () => {
  it("an esp-udp SA exactly as pfkey_sadump prints it, keys revealed", () => {
    expect(formatSadDump([natt], { revealKeys: true, now: NOW, pid: 4242 })).toBe(
      '10.0.1.2[9696] 20.0.0.2[4500] \n' +
        '\tesp-udp mode=transport spi=10000(0x00002710) reqid=0(0x00000000)\n' +
        '\tE: aes-cbc  61616161 61616161 61616161 61616161\n' +
        '\tseq=0x00000000 replay=0 flags=0x00000000 state=mature\n' +
        '\tcreated: Nov 24 10:00:00 2026\tcurrent: Nov 24 10:00:05 2026\n' +
        '\tdiff: 5(s)\thard: 3600(s)\tsoft: 3000(s)\n' +
        `\tlast: ${' '.repeat(20)}\thard: 0(s)\tsoft: 0(s)\n` +
        '\tcurrent: 1234(bytes)\thard: 0(bytes)\tsoft: 0(bytes)\n' +
        '\tallocated: 7\thard: 0\tsoft: 0\n' +
        '\tsadb_seq=0 pid=4242 refcnt=0\n',
    );
  });

  it('keys hidden by default (a deliberate difference from setkey), the algorithm still shown', () => {
    const out = formatSadDump([natt], { now: NOW });
    expect(out).toContain('\tE: aes-cbc  (128-bit key hidden)\n');
    expect(out).not.toContain('6161');
  });

  it('AH, ESP with authentication, IPComp (no newline after C:, as pfkey_dump), long keys wrap every 32 bytes', () => {
    const sas: SecurityAssociation[] = [
      { src: 'fc00::1', dst: 'fc00::2', spi: 0x2711, protocol: 'ah', mode: 'tunnel', reqid: 0x4001, integrity: { algorithm: 'hmac-sha2-512-256', key: key('a'.repeat(64)) } },
      { src: '10.0.0.1', dst: '10.0.0.2', spi: 1, protocol: 'esp', mode: 'any', encryption: { algorithm: 'null', key: new Uint8Array(0) }, integrity: { algorithm: 'hmac-sha1-96', key: key('b'.repeat(20)) }, natt: { type: 'espinudp', sport: 4500, dport: 4500, oa: { initiator: '10.0.0.5' } } },
      { src: '20.0.0.1', dst: '20.0.0.2', spi: 10000, protocol: 'ipcomp', compression: { algorithm: 'deflate' }, state: 'dying' },
    ];
    const out = formatSadDump(sas, { revealKeys: true, pid: 1 });
    expect(out).toBe(
      'fc00::1 fc00::2 \n' +
        '\tah mode=tunnel spi=10001(0x00002711) reqid=16385(0x00004001)\n' +
        `\tA: hmac-sha512 ${' 61616161'.repeat(8)}\n${' 61616161'.repeat(8)}\n` +
        '\tseq=0x00000000 replay=0 flags=0x00000000 state=mature\n' +
        '\tsadb_seq=2 pid=1 refcnt=0\n' +
        '10.0.0.1[4500] 10.0.0.2[4500] \n' +
        '\tesp-udp mode=any spi=1(0x00000001) reqid=0(0x00000000)\n' +
        '\tNAT OA=10.0.0.5\n' +
        '\tA: hmac-sha1  62626262 62626262 62626262 62626262 62626262\n' +
        '\tseq=0x00000000 replay=0 flags=0x00000000 state=mature\n' +
        '\tsadb_seq=1 pid=1 refcnt=0\n' +
        '20.0.0.1 20.0.0.2 \n' +
        '\tipcomp mode=transport spi=10000(0x00002710) reqid=0(0x00000000)\n' +
        '\tC: deflate \tseq=0x00000000 replay=0 flags=0x00000000 state=dying\n' +
        '\tsadb_seq=0 pid=1 refcnt=0\n',
    );
  });

  it('"No SAD entries." when empty; dead SAs only with all', () => {
    expect(formatSadDump([])).toBe('No SAD entries.\n');
    const dead: SecurityAssociation = { ...natt, state: 'dead', current: undefined };
    expect(formatSadDump([dead], { pid: 1 })).toBe('');
    expect(formatSadDump([dead], { all: true, pid: 1 })).toMatch(/state=dead\n\tsadb_seq=0 pid=1 refcnt=0\n$/);
  });

  it('checks its arguments', () => {
    expect(() => formatSadDump({} as unknown as SecurityAssociation[])).toThrow(TypeError);
    expect(() => formatSadDump([], { reveal: true } as never)).toThrow(/unknown option "reveal"/);
  });
});

describe('formatSpdDump', () => {
  const policies: SecurityPolicy[] = [
    {
      selector: { src: '10.0.11.0/24', dst: '10.0.11.33/32', proto: 6, dport: 110 },
      direction: 'out',
      action: 'ipsec',
      priority: 0x8000_0000,
      id: 9,
      templates: [
        { protocol: 'esp', mode: 'tunnel', src: '192.168.0.1', dst: '192.168.1.2', level: 'require' },
        { protocol: 'ah', mode: 'transport', level: 'unique', reqid: 2 },
        { protocol: 'esp', mode: 'transport', level: 'unique', reqid: 28000 },
      ],
    },
    { selector: { src: '::/0', dst: '::/0', proto: 58, sport: 135 }, direction: 'in', action: 'none', priority: 0x7fff_ffff, id: 16 },
    { selector: { src: '0.0.0.0/0', dst: '0.0.0.0/0', proto: 47, sport: 0, dport: 1234 }, direction: 'fwd', action: 'discard', id: 18, current: { bytes: 0, packets: 0, addTime: NOW, useTime: 0 } },
  ];

  it('the layout of pfkey_spdump and ipsec_dump_policy: selector, prio, rules (: or # before a reqid)', () => {
    expect(formatSpdDump(policies, { pid: 7 })).toBe(
      '10.0.11.0/24[any] 10.0.11.33[110] tcp\n' +
        '\tout prio def ipsec\n' +
        '\tesp/tunnel/192.168.0.1-192.168.1.2/require\n' +
        '\tah/transport//unique:2\n' +
        '\tesp/transport//unique#28000\n' +
        '\tspid=9 seq=2 pid=7\n' +
        '\trefcnt=1\n' +
        '::/0 ::/0 icmp6 135,0\n' +
        '\tin prio def + 1 none\n' +
        '\tspid=16 seq=1 pid=7\n' +
        '\trefcnt=1\n' +
        '0.0.0.0/0 0.0.0.0/0 gre 1234\n' +
        '\tfwd discard\n' +
        `\tcreated: Nov 24 10:00:05 2026  lastused: ${' '.repeat(20)}\n` +
        '\tlifetime: 0(s) validtime: 0(s)\n' +
        '\tspid=18 seq=0 pid=7\n' +
        '\trefcnt=1\n',
    );
    expect(formatSpdDump([])).toBe('No SPD entries.\n');
  });

  it('priorities are written back as libipsec reads them', () => {
    for (const [value, text] of [
      [0, ''],
      [0x8000_0000, 'prio def'],
      [0x7fff_ffff, 'prio def + 1'],
      [0x8000_0005, 'prio def - 5'],
      [0x4000_0000, 'prio high'],
      [0x3fff_0000, 'prio high + 65536'],
      [0xc000_0010, 'prio low - 16'],
      [0xa000_0000, 'prio low + 536870912'],
    ] as const) {
      expect(priorityText(value), String(value)).toBe(text);
      if (text) {
        const ops = parseSetkey(`spdadd 10.0.0.1 10.0.0.2 any -P in ${text} none;`);
        expect(ops[0].op === 'spdadd' && ops[0].policy.priority, text).toBe(value);
      }
    }
  });

  it('strTime is ctime from its 5th character: the day padded with a space, 20 spaces for 0', () => {
    expect(strTime(Date.UTC(2026, 5, 3, 1, 2, 3) / 1000)).toBe('Jun  3 01:02:03 2026');
    expect(strTime(0)).toBe(' '.repeat(20));
  });
});

describe('toSetkey', () => {
  it('writes add and spdadd lines setkey reads back; keys only when revealed, <hidden> otherwise', () => {
    const pol: SecurityPolicy = { selector: { src: '10.0.0.0/24', dst: '10.0.1.0/24', proto: 50 }, direction: 'out', action: 'ipsec', templates: [{ protocol: 'esp', mode: 'transport', level: 'require', reqid: 5 }] };
    const text = toSetkey([natt], [pol], { revealKeys: true });
    expect(text).toContain('add 10.0.1.2[9696] 20.0.0.2[4500] esp-udp 0x2710 -m transport -u 0 -lh 3600 -ls 3000 -E aes-cbc 0x61616161616161616161616161616161 ;\n');
    // protocol 50 is written as a number (setkey reserves 'esp'); priority 0 explicitly (Linux setkey's default is def)
    expect(text).toContain('# note: template 0: reqid 5 with level require has no setkey spelling');
    expect(text).toContain('spdadd 10.0.0.0/24 10.0.1.0/24 50 -P out priority 2147483648 ipsec esp/transport//require ;\n');
    const ops = parseSetkey(text);
    expect(ops.map((o) => o.op)).toEqual(['add', 'spdadd']);
    expect(ops[1].op === 'spdadd' && ops[1].policy.priority).toBe(0);
    const hidden = toSetkey([natt], []);
    expect(hidden).toContain('-E aes-cbc <hidden> ;');
    expect(hidden).not.toContain('0x6161');
    expect(() => parseSetkey(hidden)).toThrow(/2:\d+: this key was hidden when the file was written/);
  });

  it("Linux PF_KEY's spellings: hmac-sha256 is the 96-bit SA there, the 128-bit one needs natt's own name", () => {
    const sa = (algorithm: 'hmac-sha2-256-96' | 'hmac-sha2-256-128'): SecurityAssociation =>
      hideSaKeys({ src: '1.1.1.1', dst: '2.2.2.2', spi: 256, protocol: 'esp', encryption: { algorithm: 'aes-cbc', key: key('k'.repeat(16)) }, integrity: { algorithm, key: key('h'.repeat(32)) } });
    expect(toSetkey([sa('hmac-sha2-256-96')], [], { platform: 'pfkey-linux', revealKeys: true })).toMatch(/-A hmac-sha256 0x/);
    expect(toSetkey([sa('hmac-sha2-256-128')], [], { platform: 'pfkey-linux', revealKeys: true })).toMatch(/-A hmac-sha2-256-128 0x/);
    expect(toSetkey([sa('hmac-sha2-256-96')], [], { revealKeys: true })).toMatch(/-A hmac-sha2-256-96 0x/);
    for (const alg of ['hmac-sha2-256-96', 'hmac-sha2-256-128'] as const) {
      for (const platform of ['pfkey-linux', 'any'] as const) {
        if (platform === 'pfkey-linux' && alg === 'hmac-sha2-256-128') continue; // Linux PF_KEY cannot install it
        const ops = parseSetkey(toSetkey([sa(alg)], [], { platform, revealKeys: true }), { platform });
        expect(ops[0].op === 'add' && ops[0].sa.integrity?.algorithm, `${alg} ${platform}`).toBe(alg);
      }
    }
  });

  it('says what setkey cannot express, as comments', () => {
    const sa: SecurityAssociation = { ...natt, esn: true, natt: { type: 'espinudp-non-ike', sport: 4500, dport: 4500, keepaliveInterval: 20 } };
    const text = toSetkey([sa], [], { revealKeys: true });
    expect(text).toMatch(/# note: natt\.type espinudp-non-ike/);
    expect(text).toMatch(/# note: natt\.keepaliveInterval 20/);
    expect(text).toMatch(/# note: esn/);
    expect(toSetkey([{ ...natt, state: 'larval' }], [])).toMatch(/# note: a larval SA .* is not written/);
  });
});
