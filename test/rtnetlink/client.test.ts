// The Rtnetlink client against this host's kernel, inside a fresh network namespace (a veth pair to work on): links,
// MTU, up/down, IPv4/IPv6 addresses and routes, dumps, refusals with advice and the kernel's words, bad arguments.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { NetnsDriver, netnsSkipReason } from '../tun/harness';

const skip = netnsSkipReason();

describe.skipIf(skip !== undefined)(`Rtnetlink in a fresh netns${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: NetnsDriver;
  const rt = (method: string, ...args: unknown[]) => d.call('rt', { method, args });
  const rtFails = (method: string, ...args: unknown[]) => d.fails('rt', { method, args });

  beforeAll(async () => {
    d = await NetnsDriver.start('natt-rtnl');
    execFileSync('ip', ['-n', d.ns, 'link', 'add', 've0', 'type', 'veth', 'peer', 'name', 've1']);
  });
  afterAll(async () => {
    await d?.stop();
  });

  it('lists the links; finds one by name and by index', async () => {
    const links = await rt('links');
    expect(links.map((l: any) => l.name).sort()).toEqual(['lo', 've0', 've1']);
    const ve0 = await rt('getLink', 've0');
    expect(ve0).toMatchObject({ name: 've0', type: 1, up: false, mtu: 1500 });
    expect(ve0.address).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(await rt('linkIndex', 've0')).toBe(ve0.index);
    expect((await rt('getLink', ve0.index)).name).toBe('ve0');
  });

  it('an unknown name is a KernelReplyError ENODEV with advice', async () => {
    const e = await rtFails('linkIndex', 'nope0');
    expect(e).toMatchObject({ name: 'KernelReplyError', code: 'ENODEV', errno: -19, syscall: 'RTM_GETLINK' });
    expect(e.message).toMatch(/no such interface/);
  });

  it('sets the MTU and brings links up and down (one RTM_SETLINK can do both)', async () => {
    await rt('setMtu', 've0', 1300);
    await rt('setUp', 've1', true);
    await rt('setLink', 've0', { up: true, mtu: 1280 });
    const [l] = d.ip('link', 'show', 've0');
    expect(l.mtu).toBe(1280);
    expect(l.flags).toContain('UP');
    await rt('setUp', 've1', false);
    expect(d.ip('link', 'show', 've1')[0].flags).not.toContain('UP');
    await rt('setUp', 've1', true);
  });

  it("an MTU past the device's maximum is EINVAL with the kernel's own words", async () => {
    const e = await rtFails('setMtu', 've0', 100_000_000);
    expect(e).toMatchObject({ name: 'KernelReplyError', code: 'EINVAL', syscall: 'RTM_SETLINK' });
    expect(e.message).toMatch(/the kernel says "mtu greater than device maximum"/);
  });

  it('adds IPv4 and IPv6 addresses (a peer, no DAD, a prefix-route metric) and lists them', async () => {
    await rt('addAddress', { dev: 've0', address: '10.80.1.1/24', metric: 50 });
    await rt('addAddress', { dev: 've0', address: '10.80.9.1/32', peer: '10.80.9.2' });
    await rt('addAddress', { dev: 've0', address: 'fd00:80::1/64', nodad: true, noprefixroute: true });
    const [a] = d.ip('addr', 'show', 'dev', 've0');
    const info = a.addr_info.filter((x: any) => x.scope === 'global');
    expect(info).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ local: '10.80.1.1', prefixlen: 24 }),
        expect.objectContaining({ local: '10.80.9.1', address: '10.80.9.2', prefixlen: 32 }),
        expect.objectContaining({ local: 'fd00:80::1', prefixlen: 64, nodad: true, noprefixroute: true }),
      ]),
    );
    expect(d.ip('route', 'show', '10.80.1.0/24')[0]).toMatchObject({ metric: 50 });
    expect(d.ip('-6', 'route', 'show', 'fd00:80::/64')).toEqual([]); // noprefixroute
    const listed = await rt('addresses', { dev: 've0' });
    expect(listed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ family: 4, address: '10.80.1.1', prefixLength: 24 }),
        expect.objectContaining({ family: 4, address: '10.80.9.1', peer: '10.80.9.2' }),
        expect.objectContaining({ family: 6, address: 'fd00:80::1', prefixLength: 64 }),
      ]),
    );
    expect((await rt('addresses', { family: 6, dev: 've0' })).every((x: any) => x.family === 6)).toBe(true);
  });

  it('adding an address twice is EEXIST, deleting a missing one EADDRNOTAVAIL, with advice', async () => {
    const e = await rtFails('addAddress', { dev: 've0', address: '10.80.1.1/24' });
    expect(e).toMatchObject({ name: 'KernelReplyError', code: 'EEXIST', syscall: 'RTM_NEWADDR' });
    expect(e.message).toMatch(/already on the interface/);
    await rt('deleteAddress', { dev: 've0', address: '10.80.9.1/32', peer: '10.80.9.2' });
    const g = await rtFails('deleteAddress', { dev: 've0', address: '10.80.9.1/32', peer: '10.80.9.2' });
    expect(g).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'RTM_DELADDR' });
  });

  it('adds routes: via a gateway with a metric, on a device in table 1000, IPv6, a blackhole; lists a table', async () => {
    await rt('addRoute', { dst: '10.81.0.0/16', via: '10.80.1.254', metric: 20 });
    await rt('addRoute', { dst: '10.82.0.0/24', dev: 've0', table: 1000 });
    await rt('addRoute', { dst: 'fd00:81::/48', dev: 've0', via: 'fe80::fe', metric: 9 });
    await rt('addRoute', { dst: '10.83.0.0/24', type: 'blackhole' });
    await rt('addRoute', { dst: 'default', dev: 've0', table: 1000, src: '10.80.1.1' });
    expect(d.ip('route', 'show', '10.81.0.0/16')[0]).toMatchObject({ gateway: '10.80.1.254', dev: 've0', metric: 20, protocol: 'static' });
    expect(d.ip('route', 'show', 'table', '1000')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: '10.82.0.0/24', dev: 've0', scope: 'link' }),
        expect.objectContaining({ dst: 'default', dev: 've0', prefsrc: '10.80.1.1' }),
      ]),
    );
    expect(d.ip('-6', 'route', 'show', 'fd00:81::/48')[0]).toMatchObject({ gateway: 'fe80::fe', metric: 9 });
    expect(d.ip('route', 'show', 'type', 'blackhole')[0]).toMatchObject({ dst: '10.83.0.0/24', type: 'blackhole' });
    const t1000 = await rt('routes', { family: 4, table: 1000 });
    expect(t1000.map((r: any) => r.dst).sort()).toEqual(['0.0.0.0/0', '10.82.0.0/24']);
    expect(t1000.every((r: any) => r.table === 1000 && r.protocol === 4)).toBe(true);
    const six = await rt('routes', { family: 6 });
    expect(six).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'fd00:81::/48', gateway: 'fe80::fe', priority: 9 })]));
  });

  it('refusals: a route twice (EEXIST), an unreachable gateway (ENETUNREACH), a missing route (ESRCH)', async () => {
    expect(await rtFails('addRoute', { dst: '10.81.0.0/16', via: '10.80.1.254', metric: 20 })).toMatchObject({ code: 'EEXIST', syscall: 'RTM_NEWROUTE' });
    const u = await rtFails('addRoute', { dst: '10.84.0.0/16', via: '10.99.0.1' });
    expect(u).toMatchObject({ code: 'ENETUNREACH' });
    expect(u.message).toMatch(/the kernel says "Nexthop has invalid gateway"; the gateway is not on a network/);
    expect(await rtFails('deleteRoute', { dst: '10.85.0.0/16', dev: 've0' })).toMatchObject({ code: 'ESRCH', syscall: 'RTM_DELROUTE' });
    // IPv6: a gateway off every on-link prefix (fd00:80::/64 has no prefix route) is EHOSTUNREACH, same advice.
    const h = await rtFails('addRoute', { dst: 'fd00:86::/48', via: 'fd00:80::fe' });
    expect(h).toMatchObject({ code: 'EHOSTUNREACH' });
    expect(h.message).toMatch(/the gateway is not on a network/);
  });

  it('deletes routes by what identifies them', async () => {
    await rt('deleteRoute', { dst: '10.81.0.0/16', via: '10.80.1.254', metric: 20 });
    await rt('deleteRoute', { dst: '10.82.0.0/24', table: 1000, dev: 've0' });
    await rt('deleteRoute', { dst: 'default', table: 1000 });
    await rt('deleteRoute', { dst: 'fd00:81::/48', via: 'fe80::fe', metric: 9 });
    await rt('deleteRoute', { dst: '10.83.0.0/24', type: 'blackhole' });
    expect(d.ip('route', 'show', 'table', '1000')).toEqual([]);
    expect(d.ip('route', 'show', '10.81.0.0/16')).toEqual([]);
    expect(d.ip('-6', 'route', 'show', 'fd00:81::/48')).toEqual([]);
  });

  it('bad arguments are TypeErrors / RangeErrors naming the field, before anything is sent', async () => {
    const cases: [string, unknown[], RegExp][] = [
      ['addAddress', [{ dev: 've0', adress: '10.0.0.1/24' }], /unknown option "address.adress"/],
      ['addAddress', [{ dev: 've0', address: '10.0.0.1/33' }], /"address.address" must be a prefix length from 0 to 32/],
      ['addAddress', [{ dev: 've0', address: '10.0.0.1/24', peer: 'fd00::1' }], /"address.peer" must be an IPv4 address/],
      ['addAddress', [{ address: '10.0.0.1/24' }], /"address.dev"/],
      ['addAddress', [{ dev: 'a/b', address: '10.0.0.1/24' }], /"address.dev" must be an interface name/],
      ['addRoute', [{ dst: '10.0.0.1/24', dev: 've0' }], /"route.dst" must be a network prefix without host bits/],
      ['addRoute', [{ dst: '10.0.0.0/24' }], /a unicast route needs dev, via or both/],
      ['addRoute', [{ dst: '10.0.0.0/24', via: 'fd00::1' }], /"route.via" must be an IPv4 address/],
      ['addRoute', [{ dst: '10.0.0.0/24', dev: 've0', table: 0 }], /"route.table"/],
      ['addRoute', [{ dst: '10.0.0.0/24', dev: 've0', metric: -1 }], /"route.metric"/],
      ['addRoute', [{ dst: '10.0.0.0/24', dev: 've0', type: 'nat' }], /"route.type" must be 'unicast', 'blackhole'/],
      ['addRoute', [{ dst: '10.0.0.0/24', dev: 've0', type: 'blackhole' }], /"route.type" must be 'unicast' for a route with dev or via/],
      ['setLink', ['ve0', {}], /mtu, up or both/],
      ['setLink', ['ve0', { mtu: 10 }], /"mtu"/],
      ['setLink', ['ve0', { up: 'yes' }], /"up" must be true or false/],
      ['setMtu', ['ve0', 1400, { timeout: 'soon' }], /"timeout"/],
      ['getLink', [0], /"dev"/],
      ['routes', [{ table: -1 }], /"filter.table"/],
    ];
    for (const [method, args, re] of cases) {
      const e = await rtFails(method, ...args);
      expect(e.name, `${method} ${JSON.stringify(args)}`).toMatch(/^(TypeError|RangeError)$/);
      expect(e.message, `${method} ${JSON.stringify(args)}`).toMatch(re);
    }
    expect(d.ip('link', 'show', 've0')[0].mtu).toBe(1280); // nothing changed
    expect(await d.call('rtStats')).toEqual({ drops: 0, pending: 0 });
  });
});
