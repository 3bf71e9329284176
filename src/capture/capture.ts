// startCapture(): NAT-T traffic (ESP-in-UDP, IKE, ESP-in-TCP) read from a Linux packet socket into a pcapng file.
//
// One AF_PACKET socket (SOCK_DGRAM, every protocol, one interface or all) with a BPF filter on the ports; each packet
// the filter keeps is written at once as an enhanced packet block on the interface it was seen on (an interface
// description block is written the first time an interface shows up), with the kernel's receive time. On loopback
// a packet passes twice (sent, then received): only the received copy is kept, as libpcap does. stop() writes an
// interface statistics block per interface (packets kept; the kernel's drops) and closes the file.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { NattError } from '../errors';
import { boolOption, callbackOption, intOption, readOptions, stringOption } from '../core/options';
import { ifNameToIndex, openPacketSocket, requireNative, type NativePacketSocket } from '../native/binding';
import { captureFilter, checkPorts, matchesPorts, type CapturePorts } from './filter';
import { LINKTYPE_RAW, PcapngWriter, type PacketDirection } from './pcapng';

/** What startCapture() takes. */
export interface CaptureOptions {
  /** The pcapng file to write (created or truncated, mode 0644 unless it exists). */
  out: string;
  /** One interface by name (default: every interface of this network namespace). */
  interface?: string;
  /** UDP ports whose packets are kept, source or destination (default [500, 4500]: IKE and ESP-in-UDP). */
  udpPorts?: number[];
  /** TCP ports (default [4500]: ESP and IKE in TCP, RFC 9329). */
  tcpPorts?: number[];
  /** Longest part of a packet kept, bytes (default 262144: whole packets). */
  snapLength?: number;
  /** Stop by itself after this many packets (default: no limit). */
  count?: number;
  /** Called after each packet written (for a live count); must not throw (a throw is ignored). */
  onPacket?: (info: CapturedPacketInfo) => void;
  /** Called once when the capture stopped by itself (count reached, or a socket error: then `err`). */
  onStop?: (stats: CaptureStats, err?: Error) => void;
  /** Keep the event loop alive while capturing (default true). */
  ref?: boolean;
}

/** One packet written. */
export interface CapturedPacketInfo {
  interface: string;
  length: number;
  direction: PacketDirection;
}

/** What a capture did. */
export interface CaptureStats {
  /** Packets written to the file. */
  packets: number;
  /** Bytes of packets written (captured bytes). */
  bytes: number;
  /** Packets the kernel dropped for this capture (its socket buffer was full), over its life. */
  kernelDrops: number;
  /** Packets the socket delivered that the port test left out (the kernel's filter should leave none: 0). */
  filtered: number;
  /** Interfaces seen, by name. */
  interfaces: string[];
}

/** A running capture. */
export interface NattCapture {
  readonly out: string;
  /** The counts so far. */
  stats(): CaptureStats;
  /** Stop, write the statistics blocks, close the file; resolves with the final counts. Idempotent. */
  stop(): Promise<CaptureStats>;
}

const PACKET_OUTGOING = 4;
const ARPHRD_LOOPBACK = 772;
const OPTION_NAMES = ['out', 'interface', 'udpPorts', 'tcpPorts', 'snapLength', 'count', 'onPacket', 'onStop', 'ref'] as const;

/** ifindex → name, from /sys/class/net (a name the kernel gave later is picked up on a miss). */
function interfaceNames(): Map<number, string> {
  const m = new Map<number, string>();
  try {
    for (const name of fs.readdirSync('/sys/class/net')) {
      try {
        const idx = Number.parseInt(fs.readFileSync(`/sys/class/net/${name}/ifindex`, 'latin1'), 10);
        if (Number.isInteger(idx)) m.set(idx, name);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no sysfs: interfaces are named by index
  }
  return m;
}

/** struct sockaddr_ll for bind(): family and ifindex in host order, the protocol (ETH_P_*) in network order. */
function sockaddrLl(family: number, protocol: number, ifindex: number): Uint8Array {
  const b = Buffer.alloc(20);
  const le = os.endianness() === 'LE';
  if (le) b.writeUInt16LE(family, 0);
  else b.writeUInt16BE(family, 0);
  b.writeUInt16BE(protocol, 2);
  if (le) b.writeInt32LE(ifindex, 4);
  else b.writeInt32BE(ifindex, 4);
  return b;
}

/**
 * Start capturing NAT-T traffic into a pcapng file (Linux, CAP_NET_RAW). The file holds packets as IPv4/IPv6
 * (LINKTYPE_RAW): Wireshark and tshark decode UDP port 4500 as ESP-in-UDP (and IKE with the non-ESP marker), port
 * 500 as IKE; for other ports tell them (`-d udp.port==P,udpencap`). Keys are never written here: see espSaTable().
 */
export function startCapture(opts: CaptureOptions): NattCapture {
  const o = readOptions(opts, OPTION_NAMES, 'options');
  const out = stringOption(o.out, 'out');
  const ifname = stringOption(o.interface, 'interface', undefined, undefined);
  const ports: CapturePorts = {
    udp: o.udpPorts === undefined ? [500, 4500] : checkPorts(o.udpPorts, 'udpPorts'),
    tcp: o.tcpPorts === undefined ? [4500] : checkPorts(o.tcpPorts, 'tcpPorts'),
  };
  const snap = intOption(o.snapLength, 'snapLength', 64, 262144, 262144);
  const limit = intOption(o.count, 'count', 1, Number.MAX_SAFE_INTEGER, Infinity);
  const onPacket = callbackOption<(i: CapturedPacketInfo) => void>(o.onPacket, 'onPacket');
  const onStop = callbackOption<(s: CaptureStats, e?: Error) => void>(o.onStop, 'onStop');
  const ref = boolOption(o.ref, 'ref', true);

  const addon = requireNative();
  const c = addon.constants;
  let ifindex = 0;
  if (ifname !== undefined) {
    ifindex = ifNameToIndex(ifname);
    if (ifindex === 0) throw new NattError('ERR_NATT_NO_INTERFACE', `no interface named ${JSON.stringify(ifname.slice(0, 15))} here (ip link shows them)`);
  }

  const names = interfaceNames();
  const ids = new Map<number, number>(); // ifindex → pcapng interface id
  const kept = new Map<number, number>(); // ifindex → packets written
  const startNs = BigInt(Date.now()) * 1_000_000n;
  const counts = { packets: 0, bytes: 0, kernelDrops: 0, filtered: 0 };
  let sock: NativePacketSocket | undefined;
  let stopped: Promise<CaptureStats> | undefined;

  let fd = -1;
  let writer: PcapngWriter;

  const nameOf = (idx: number): string => {
    let n = names.get(idx);
    if (n === undefined) {
      for (const [i, name] of interfaceNames()) names.set(i, name);
      n = names.get(idx) ?? `if${idx}`;
    }
    return n;
  };

  const stats = (): CaptureStats => ({ ...counts, interfaces: [...ids.keys()].map(nameOf) });

  const readDrops = (): void => {
    if (!sock || (c.SOL_PACKET ?? -1) < 0) return;
    try {
      const st = sock.getsockoptBytes(c.SOL_PACKET!, c.PACKET_STATISTICS!, 8); // struct tpacket_stats: packets, drops (reset on read)
      if (st.length >= 8) counts.kernelDrops += st.readUInt32LE(4);
    } catch {
      // counters unavailable: drops stay unknown (0)
    }
  };

  const finish = (err?: Error): Promise<CaptureStats> => {
    if (stopped) return stopped;
    readDrops();
    sock?.close();
    sock = undefined;
    const endNs = BigInt(Date.now()) * 1_000_000n;
    try {
      for (const [idx, id] of ids) {
        writer.statistics(id, endNs, {
          startNs,
          endNs,
          received: BigInt(kept.get(idx) ?? 0),
          delivered: BigInt(kept.get(idx) ?? 0),
          dropped: ids.size === 1 ? BigInt(counts.kernelDrops) : undefined,
        });
      }
      writer.close();
    } finally {
      fs.closeSync(fd);
    }
    const s = stats();
    stopped = Promise.resolve(s);
    if (onStop && (err || counts.packets >= limit)) {
      try {
        onStop(s, err);
      } catch {
        // a listener's throw never reaches the socket's callback
      }
    }
    return stopped;
  };

  const onData = (bytes: Buffer, from: Buffer, seconds: number, nanoseconds: number, length: number): void => {
    if (stopped) return;
    // struct sockaddr_ll: family u16, protocol u16 (BE), ifindex i32, hatype u16, pkttype u8, halen u8, addr[8].
    if (from.length < 12) return;
    const le = os.endianness() === 'LE';
    const idx = le ? from.readInt32LE(4) : from.readInt32BE(4);
    const hatype = le ? from.readUInt16LE(8) : from.readUInt16BE(8);
    const pkttype = from[10];
    if (hatype === ARPHRD_LOOPBACK && pkttype === PACKET_OUTGOING) return; // its received copy follows
    if (!matchesPorts(bytes, ports)) {
      counts.filtered++;
      return;
    }
    let id = ids.get(idx);
    if (id === undefined) {
      id = writer.addInterface({ linkType: LINKTYPE_RAW, snapLength: snap, name: nameOf(idx), description: `ifindex ${idx}` });
      ids.set(idx, id);
    }
    const direction: PacketDirection = hatype === ARPHRD_LOOPBACK ? undefined : pkttype === PACKET_OUTGOING ? 'out' : 'in';
    try {
      writer.packet(id, seconds, nanoseconds, bytes, length, direction);
    } catch (e) {
      void finish(e as Error);
      return;
    }
    counts.packets++;
    counts.bytes += Math.min(bytes.length, snap);
    kept.set(idx, (kept.get(idx) ?? 0) + 1);
    if (onPacket) {
      try {
        onPacket({ interface: nameOf(idx), length, direction });
      } catch {
        // ignored: see onPacket
      }
    }
    if (counts.packets >= limit) void finish();
  };

  try {
    sock = openPacketSocket(onData, (err) => void finish(err));
    // Filter first, then bind with a protocol (ifindex 0: every interface): only then does the socket receive.
    sock.attachFilter(captureFilter(ports, snap));
    sock.bind(sockaddrLl(c.AF_PACKET!, c.ETH_P_ALL!, ifindex));
    // The file only once the socket is there: a capture that cannot start leaves the file as it was.
    fd = fs.openSync(out, 'w', 0o644);
    writer = new PcapngWriter(fd, { os: `${os.type()} ${os.release()}`, application: 'natt capture', hardware: os.arch() });
    if (!ref) sock.unref();
  } catch (e) {
    sock?.close();
    sock = undefined;
    if (fd >= 0) fs.closeSync(fd);
    throw e;
  }

  return {
    out,
    stats,
    stop: () => finish(),
  };
}
