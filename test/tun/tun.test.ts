// createTun on this host's kernel, inside a fresh network namespace: configuration seen from outside with `ip -j`,
// packets through the batch path and the 'packet' event, writes reaching sockets, real EAGAIN backpressure (tc), close.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { NetnsDriver, netnsSkipReason } from './harness';

const skip = netnsSkipReason();

/** IPv4/IPv6 + UDP header fields of a hex packet. */
function udp(hex: string): { version: number; src: string; dst: string; sport: number; dport: number; payload: string; length: number } {
  const p = Buffer.from(hex, 'hex');
  const version = p[0] >> 4;
  const ip6 = (o: number): string => {
    const g: string[] = [];
    for (let i = 0; i < 8; i++) g.push(p.readUInt16BE(o + 2 * i).toString(16));
    return g.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  };
  const hl = version === 4 ? (p[0] & 15) * 4 : 40;
  return {
    version,
    src: version === 4 ? [...p.subarray(12, 16)].join('.') : ip6(8),
    dst: version === 4 ? [...p.subarray(16, 20)].join('.') : ip6(24),
    sport: p.readUInt16BE(hl),
    dport: p.readUInt16BE(hl + 2),
    payload: p.subarray(hl + 8).toString(),
    length: p.length,
  };
}

describe.skipIf(skip !== undefined)(`createTun in a fresh netns${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let d: NetnsDriver;
  let tun: { id: number; name: string; index: number; mtu: number; slotSize: number; slots: number };

  beforeAll(async () => {
    d = await NetnsDriver.start('natt-tun');
    tun = await d.call('create', {
      options: {
        name: 'natt0',
        addresses: ['10.10.1.1/32', 'fd00:1::1/128'],
        routes: [{ dst: '10.10.2.0/24' }, { dst: 'fd00:2::/64', metric: 7 }, { dst: '10.10.3.0/24', table: 100, metric: 3 }],
      },
    });
  });

  afterAll(async () => {
    await d?.stop();
  });

  it('opens the device under the name asked for, sets the default MTU (1400) and brings it up', () => {
    expect(tun).toMatchObject({ name: 'natt0', mtu: 1400, slots: 64 });
    expect(tun.slotSize).toBeGreaterThanOrEqual(1400);
    const [link] = d.ip('link', 'show', 'natt0');
    expect(link).toMatchObject({ ifname: 'natt0', ifindex: tun.index, mtu: 1400, link_type: 'none' });
    expect(link.flags).toEqual(expect.arrayContaining(['UP', 'LOWER_UP', 'POINTOPOINT', 'NOARP']));
  });

  it('adds the IPv4 and IPv6 addresses (IPv6 without DAD: usable at once)', () => {
    const [a] = d.ip('addr', 'show', 'dev', 'natt0');
    const mine = a.addr_info.filter((x: any) => x.scope === 'global').map((x: any) => `${x.local}/${x.prefixlen}`);
    expect(mine.sort()).toEqual(['10.10.1.1/32', 'fd00:1::1/128']);
    const v6 = a.addr_info.find((x: any) => x.local === 'fd00:1::1');
    expect(v6.nodad).toBe(true);
    expect(v6.tentative).toBeUndefined();
  });

  it('adds the routes through it: IPv4, IPv6 with a metric, and one in table 100', () => {
    const main = d.ip('route', 'show', 'dev', 'natt0');
    expect(main).toEqual(expect.arrayContaining([expect.objectContaining({ dst: '10.10.2.0/24', protocol: 'static', scope: 'link' })]));
    const six = d.ip('-6', 'route', 'show', 'dev', 'natt0');
    expect(six).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'fd00:2::/64', metric: 7, protocol: 'static' })]));
    const t100 = d.ip('route', 'show', 'table', '100');
    expect(t100).toEqual([expect.objectContaining({ dst: '10.10.3.0/24', dev: 'natt0', metric: 3 })]);
  });

  it('a UDP datagram to an address routed into the TUN arrives as an IPv4 packet through the batch path', async () => {
    await d.call('clearSeen', { id: tun.id });
    await d.call('udpSend', { family: 4, address: '10.10.2.9', port: 5000, texts: ['hello over tun v4'] });
    const seen = await d.until(async () => {
      const s = await d.call('seen', { id: tun.id });
      return s.packets.length ? s : null;
    });
    const p = udp(seen.packets[0]);
    expect(p).toMatchObject({ version: 4, src: '10.10.1.1', dst: '10.10.2.9', dport: 5000, payload: 'hello over tun v4' });
    expect(seen.batches.every((n: number) => n >= 1 && n <= tun.slots)).toBe(true);
  });

  it('and to an IPv6 address routed into it, as an IPv6 packet', async () => {
    await d.call('clearSeen', { id: tun.id });
    await d.call('udpSend', { family: 6, address: 'fd00:2::9', port: 5001, texts: ['hello over tun v6'] });
    const seen = await d.until(async () => {
      const s = await d.call('seen', { id: tun.id });
      return s.packets.length ? s : null;
    });
    expect(udp(seen.packets[0])).toMatchObject({ version: 6, src: 'fd00:1::1', dst: 'fd00:2::9', dport: 5001, payload: 'hello over tun v6' });
  });

  it('many packets at once: every one arrives, whole and in order', async () => {
    await d.call('clearSeen', { id: tun.id });
    const texts = Array.from({ length: 200 }, (_, i) => `n${i}`);
    await d.call('udpSend', { family: 4, address: '10.10.2.77', port: 6000, texts, size: 1000 });
    const seen = await d.until(async () => {
      const s = await d.call('seen', { id: tun.id });
      return s.packets.length >= 200 ? s : null;
    });
    expect(seen.packets.map((h: string) => udp(h).payload.replace(/\.+$/, ''))).toEqual(texts);
    expect(seen.packets.every((h: string) => udp(h).length === 20 + 8 + 1000)).toBe(true);
    const stats = await d.call('stats', { id: tun.id });
    expect(stats.drops).toMatchObject({ oversize: 0, noHandler: 0 });
  });

  it('a packet written into the TUN reaches a UDP socket (IPv4 and IPv6), via writeBatch; a non-IP one is refused and counted', async () => {
    const s4 = await d.call('udpListen', { family: 4, address: '10.10.1.1' });
    const s6 = await d.call('udpListen', { family: 6, address: 'fd00:1::1' });
    const n4 = await d.call('writeUdp', { id: tun.id, src: '10.10.2.9', dst: '10.10.1.1', dport: s4.port, texts: ['in-a', 'in-b'], garbageAt: 1 });
    const n6 = await d.call('writeUdp', { id: tun.id, src: 'fd00:2::9', dst: 'fd00:1::1', dport: s6.port, texts: ['in-6'] });
    expect(n4).toBe(2); // of 3: the garbage in the middle was refused
    expect(n6).toBe(1);
    const got4 = await d.until(async () => {
      const g = await d.call('udpReceived', { id: s4.id });
      return g.length >= 2 ? g : null;
    });
    expect(got4).toEqual([
      { data: 'in-a', address: '10.10.2.9', port: 40000 },
      { data: 'in-b', address: '10.10.2.9', port: 40000 },
    ]);
    const got6 = await d.until(async () => {
      const g = await d.call('udpReceived', { id: s6.id });
      return g.length ? g : null;
    });
    expect(got6).toEqual([{ data: 'in-6', address: 'fd00:2::9', port: 40000 }]);
    const stats = await d.call('stats', { id: tun.id });
    expect(stats.drops.refused).toBe(1);
    expect(stats.lastRefusal).toBe('EINVAL');
    expect(stats.packetsOut).toBe(3);
  });

  it("the 'packet' event gives copies; a TUN nobody reads from counts its packets as noHandler drops", async () => {
    const ev = await d.call('create', { options: { addresses: ['10.20.1.1/32'], routes: [{ dst: '10.20.2.0/24' }] }, watch: 'event' });
    const none = await d.call('create', { options: { addresses: ['10.21.1.1/32'], routes: [{ dst: '10.21.2.0/24' }] }, watch: 'none' });
    expect(ev.name).toMatch(/^tun\d+$/); // no name: the kernel's choice
    await d.call('udpSend', { family: 4, address: '10.20.2.5', port: 7000, texts: ['by event'] });
    await d.call('udpSend', { family: 4, address: '10.21.2.5', port: 7000, texts: ['to nobody'] });
    const s = await d.until(async () => {
      const x = await d.call('seen', { id: ev.id });
      return x.events.length ? x : null;
    });
    expect(udp(s.events[0]).payload).toBe('by event');
    await d.until(async () => (await d.call('stats', { id: none.id })).drops.noHandler >= 1);
    await d.call('close', { id: ev.id });
    await d.call('close', { id: none.id });
  });

  it('reads at most `batch` packets per wake: 40 packets queued while paused come in bursts of ≤ 4', async () => {
    const b = await d.call('create', { options: { batch: 4, addresses: ['10.30.1.1/32'], routes: [{ dst: '10.30.2.0/24' }] } });
    await d.call('pause', { id: b.id });
    const texts = Array.from({ length: 40 }, (_, i) => `b${i}`);
    await d.call('udpSend', { family: 4, address: '10.30.2.5', port: 7100, texts });
    await new Promise((r) => setTimeout(r, 100));
    expect((await d.call('seen', { id: b.id })).packets).toEqual([]); // paused: nothing read
    await d.call('resume', { id: b.id });
    const s = await d.until(async () => {
      const x = await d.call('seen', { id: b.id });
      return x.packets.length >= 40 ? x : null;
    });
    expect(s.packets.map((h: string) => udp(h).payload)).toEqual(texts);
    expect(Math.max(...s.batches)).toBe(4);
    expect(s.batches.reduce((a: number, n: number) => a + n, 0)).toBeGreaterThanOrEqual(40);
    await d.call('close', { id: b.id });
  });

  it('a packet longer than a slot (the MTU raised behind its back) is dropped whole and counted; the next one arrives', async () => {
    const m = await d.call('create', { options: { mtu: 1280, addresses: ['10.40.1.1/32'], routes: [{ dst: '10.40.2.0/24' }] } });
    expect(d.ip('link', 'show', m.name)[0].mtu).toBe(1280);
    // At the MTU exactly: one packet of 1280 bytes.
    await d.call('udpSend', { family: 4, address: '10.40.2.5', port: 7200, texts: ['full'], size: 1280 - 28 });
    await d.until(async () => (await d.call('seen', { id: m.id })).packets.length === 1);
    expect(udp((await d.call('seen', { id: m.id })).packets[0]).length).toBe(1280);
    execFileSync('ip', ['-n', d.ns, 'link', 'set', m.name, 'mtu', '3000']);
    await d.call('udpSend', { family: 4, address: '10.40.2.5', port: 7200, texts: ['big', 'small'], size: 2000 });
    await d.call('udpSend', { family: 4, address: '10.40.2.5', port: 7200, texts: ['after'] });
    const s = await d.until(async () => {
      const x = await d.call('seen', { id: m.id });
      return x.packets.length >= 2 ? x : null;
    });
    expect(udp(s.packets[1]).payload).toBe('after');
    expect((await d.call('stats', { id: m.id })).drops.oversize).toBe(2);
    await d.call('close', { id: m.id });
  });

  it('EAGAIN is real backpressure: writes queue (bounded), the rest are counted, and the queue drains on writability', async () => {
    // The device's send buffer is small and its packets are held in a slow tbf queue (mirred from its ingress):
    // the kernel charges them to the TUN until they leave, so write(2) meets EAGAIN, and POLLOUT comes as they drain.
    const q = await d.call('create', { options: { name: 'nattq', sndbuf: 20000, queue: 32, addresses: ['10.50.1.1/24'] } });
    execFileSync('ip', ['-n', d.ns, 'link', 'add', 'slow0', 'type', 'veth', 'peer', 'name', 'slow1']);
    execFileSync('ip', ['-n', d.ns, 'link', 'set', 'slow0', 'up']);
    execFileSync('ip', ['-n', d.ns, 'link', 'set', 'slow1', 'up']);
    execFileSync('tc', ['-n', d.ns, 'qdisc', 'add', 'dev', 'slow0', 'root', 'tbf', 'rate', '20mbit', 'burst', '1600', 'limit', '1000000']);
    execFileSync('tc', ['-n', d.ns, 'qdisc', 'add', 'dev', 'nattq', 'ingress']);
    execFileSync('tc', ['-n', d.ns, 'filter', 'add', 'dev', 'nattq', 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u32', '0', '0',
      'action', 'mirred', 'egress', 'redirect', 'dev', 'slow0']);
    const f = await d.call('flood', { id: q.id, count: 300, size: 1000, src: '10.50.1.2', dst: '10.50.1.1' });
    // Some went straight through, 32 queued, the rest dropped as queueFull: nothing unbounded, nothing thrown.
    expect(f.stats.queued).toBe(32);
    expect(f.stats.drops.queueFull).toBe(300 - f.accepted);
    expect(f.accepted).toBe(f.stats.packetsOut + 32);
    expect(f.stats.packetsOut).toBeLessThan(100);
    const after = await d.until(async () => {
      const s = await d.call('stats', { id: q.id });
      return s.queued === 0 ? s : null;
    }, 10_000, 'the queue to drain');
    expect(after.packetsOut).toBe(f.accepted);
    expect(after.drops.queueFull).toBe(300 - f.accepted);
    await d.call('close', { id: q.id });
  });

  it('a name in use is EBUSY in Node shape with advice; nothing is left behind', async () => {
    const e = await d.fails('create', { options: { name: 'natt0' } });
    expect(e).toMatchObject({ name: 'NattSystemError', code: 'EBUSY', errno: -16, syscall: 'ioctl' });
    expect(e.message).toMatch(/name is in use/);
  });

  it('a failure half way (an unreachable gateway) undoes everything: the device is gone', async () => {
    const before = d.ip('link').length;
    const e = await d.fails('create', { options: { name: 'nattbad', addresses: ['10.60.1.1/32'], routes: [{ dst: '10.60.2.0/24', via: '10.99.9.9' }] } });
    expect(e).toMatchObject({ name: 'KernelReplyError', code: 'ENETUNREACH', syscall: 'RTM_NEWROUTE' });
    expect(e.message).toMatch(/gateway/);
    expect(d.ip('link').length).toBe(before);
    expect(d.ip('link').some((l: any) => l.ifname === 'nattbad')).toBe(false);
  });

  it('close() removes the routes, the addresses and the device; it is idempotent; a write after it is a counted drop', async () => {
    const r = await d.call('close', { id: tun.id });
    expect(r).toMatchObject({ same: true, closed: true, writeAfter: false });
    expect(r.stats.drops.closed).toBe(1);
    expect(d.ip('link').some((l: any) => l.ifname === 'natt0')).toBe(false);
    expect(d.ip('route', 'show', 'table', '100')).toEqual([]);
    expect(d.ip('-6', 'route', 'show', 'table', 'all').some((x: any) => String(x.dst).startsWith('fd00:2::'))).toBe(false);
    expect(d.ip('addr').some((l: any) => (l.addr_info ?? []).some((a: any) => a.local === '10.10.1.1'))).toBe(false);
  });
});
