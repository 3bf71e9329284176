// createTun's options, checked before anything is opened: own properties only, unknown names refused, every field named.

import { describe, expect, it } from 'vitest';
import { createTun, Tun } from '../../src/tun';
import { readTunOptions } from '../../src/tun/tun';

describe('createTun options', () => {
  const bad: [unknown, RegExp, 'TypeError' | 'RangeError'][] = [
    [null, /"options" must be an object/, 'TypeError'],
    [{ adresses: [] }, /unknown option "adresses": options takes name, mtu, addresses/, 'TypeError'],
    [{ mtu: 10 }, /"mtu" must be an integer from 68 to 65535/, 'RangeError'],
    [{ mtu: '1400' }, /"mtu"/, 'TypeError'],
    [{ offload: 'yes' }, /"offload" must be a boolean or \{ tso\?, uso\?, gro\? \}/, 'TypeError'],
    [{ offload: { tsp: true } }, /unknown option "offload.tsp"/, 'TypeError'],
    [{ offload: { gro: 1 } }, /"offload.gro" must be true or false/, 'TypeError'],
    [{ name: 'x'.repeat(16) }, /"name" must be an interface name of at most 15 bytes/, 'RangeError'],
    [{ name: 'a b' }, /"name"/, 'RangeError'],
    [{ name: 'a/b' }, /"name"/, 'RangeError'],
    [{ name: 'nat%s' }, /"name" must be a template with '%d'/, 'RangeError'],
    [{ name: 5 }, /"name" must be a string/, 'TypeError'],
    [{ addresses: '10.0.0.1/32' }, /"addresses" must be an array/, 'TypeError'],
    [{ addresses: ['10.0.0.1/33'] }, /"addresses\[0\]" must be a prefix length from 0 to 32/, 'RangeError'],
    [{ addresses: ['10.0.0.1/32', 'nonsense'] }, /"addresses\[1\]"/, 'RangeError'],
    [{ addresses: [7] }, /"addresses\[0\]"/, 'TypeError'],
    [{ routes: {} }, /"routes" must be an array/, 'TypeError'],
    [{ routes: [{ dst: '10.0.2.1/24' }] }, /"routes\[0\].dst" must be a network prefix without host bits/, 'RangeError'],
    [{ routes: [{ dst: '10.0.2.0/24', dev: 'eth0' }] }, /unknown option "routes\[0\].dev"/, 'TypeError'],
    [{ routes: [{ dst: '10.0.2.0/24', type: 'blackhole' }] }, /unknown option "routes\[0\].type"/, 'TypeError'],
    [{ routes: [{ dst: '10.0.2.0/24', via: 'fd00::1' }] }, /"routes\[0\].via" must be an IPv4 address/, 'RangeError'],
    [{ routes: [{ dst: '10.0.2.0/24', table: 0 }] }, /"routes\[0\].table"/, 'RangeError'],
    [{ routes: [{ dst: '10.0.2.0/24', metric: 2 ** 32 }] }, /"routes\[0\].metric"/, 'RangeError'],
    [{ routes: [{ via: '10.0.0.1' }] }, /"routes\[0\].dst"/, 'TypeError'],
    [{ routes: [null] }, /"routes\[0\]" must be an object/, 'TypeError'],
    [{ up: 'yes' }, /"up" must be true or false/, 'TypeError'],
    [{ batch: 0 }, /"batch" must be an integer from 1 to 1024/, 'RangeError'],
    [{ batch: 2000 }, /"batch"/, 'RangeError'],
    [{ queue: 0 }, /"queue"/, 'RangeError'],
    [{ timeout: -1 }, /"timeout"/, 'RangeError'],
    [{ sndbuf: 0 }, /"sndbuf"/, 'RangeError'],
  ];
  for (const [opts, re, kind] of bad) {
    it(`${JSON.stringify(opts)} is a ${kind}`, async () => {
      await expect(createTun(opts as never)).rejects.toThrow(re);
      await expect(createTun(opts as never)).rejects.toBeInstanceOf(kind === 'TypeError' ? TypeError : RangeError);
    });
  }

  it('reads own properties only: an inherited mtu is not seen; undefined means absent', () => {
    const o = readTunOptions(Object.assign(Object.create({ mtu: 10, name: 'x'.repeat(40) }), { addresses: undefined }));
    expect(o).toMatchObject({ name: '', mtu: 1400, addresses: [], routes: [], up: true, batch: 64, queue: 256, timeout: 5000 });
    expect(o.sndbuf).toBeUndefined();
  });

  it('keeps host bits of an address, normalises IPv6 text, and takes a template name', () => {
    const o = readTunOptions({ name: 'natt%d', addresses: ['10.10.1.1/24', 'FD00:0:0::1'], routes: [{ dst: 'default', via: 'fd00::9' }] });
    expect(o.addresses).toEqual([
      { family: 4, address: '10.10.1.1', prefixLength: 24 },
      { family: 6, address: 'fd00::1', prefixLength: 128 },
    ]);
    expect(o.routes).toEqual([{ family: 6, dst: '::', dstLen: 0, table: 254, type: 'unicast', via: 'fd00::9' }]);
  });

  it('a Tun cannot be constructed directly', () => {
    expect(() => new (Tun as any)(Symbol('x'), {})).toThrow(/use createTun\(\)/);
  });
});
