// `natt probe [--json]`: what this host's kernel offers for NAT-T and what 'auto' picks, for people or as JSON.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { linuxVersion, probe, type Fact, type ProbeResult } from '../probe';
import { nativeCipherStatus, type NativeCipherStatus } from '../fastpath';
import { probeSocketBuffers, probeUdpOffload, type SocketBuffers } from '../natt/socket';
import type { Command } from './args';

/** natt's version, from its package.json. */
export function version(): string {
  const pkg = path.join(__dirname, '..', '..', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

function line(label: string, f: Fact): string {
  return `  ${label.padEnd(16)}${f.ok ? 'yes' : `no   ${f.code}: ${f.reason}`}\n`;
}

/** Which datapath the userland engine takes here: the native cipher, batched I/O, the socket buffers it gets. */
export interface FastPathFacts {
  cipher: NativeCipherStatus;
  /** recvmmsg / sendmmsg on the NAT-T socket, batched TUN reads and writes (the native addon). */
  batchedIo: { ok: boolean; reason: string };
  /** What a NAT-T socket gets (null without the addon). */
  buffers: SocketBuffers | null;
  /**
   * Segmentation offloads: UDP GSO/GRO as a scratch socket finds them; TUN TSO/USO as this kernel's version says
   * (TSO since long before 4.x, USO from 6.2; the tunnel daemon's log says what its device took).
   */
  offload: { udpGso: boolean; udpGro: boolean; tunTso: boolean; tunUso: boolean; reason: string };
}

/** The fast-path facts of this host. */
export function fastPathFacts(p: ProbeResult): FastPathFacts {
  const batchedIo = p.native.loaded
    ? { ok: true, reason: process.platform === 'linux' ? 'recvmmsg / sendmmsg, TUN reads and writes in batches' : 'one sendmsg / recvmsg at a time (no *mmsg here), TUN batches' }
    : { ok: false, reason: `node:dgram, one datagram per call: the native addon is not loaded (${p.native.reason})` };
  const u = probeUdpOffload();
  const [maj, min] = linuxVersion(os.release()) ?? [0, 0];
  const linux = process.platform === 'linux' && p.native.loaded;
  const tunUso = linux && (maj > 6 || (maj === 6 && min >= 2));
  const reasons = [u.reason, linux && !tunUso ? 'TUN USO needs Linux 6.2' : '', !linux ? 'TUN offloads need Linux and the addon' : ''].filter((x) => x);
  return {
    cipher: nativeCipherStatus(),
    batchedIo,
    buffers: probeSocketBuffers(),
    offload: { udpGso: u.gso, udpGro: u.gro, tunTso: linux, tunUso, reason: reasons.join('; ') },
  };
}

/** The "fast path" line of the report. */
export function formatFastPath(f: FastPathFacts): string {
  const cipher = f.cipher.available ? `native cipher (reused OpenSSL contexts, ${f.cipher.openssl})` : `node:crypto (${f.cipher.reason})`;
  const io = f.batchedIo.ok ? `batched I/O (${f.batchedIo.reason})` : f.batchedIo.reason;
  const b = f.buffers;
  const buf = b ? `buffers rcv ${b.receive} / snd ${b.send} bytes${b.forced ? ' (forced)' : ` (${b.reason})`}` : "buffers: the kernel's default (node:dgram)";
  const o = f.offload;
  const yn = (v: boolean): string => (v ? 'yes' : 'no');
  const off = `offloads: udp gso ${yn(o.udpGso)}, udp gro ${yn(o.udpGro)}, tun tso ${yn(o.tunTso)}, tun uso ${yn(o.tunUso)}${o.reason ? ` (${o.reason})` : ''}`;
  return `  fast path       ${cipher}; ${io}; ${buf}\n  segmentation    ${off}\n`;
}

/** What `natt probe --json` prints: probe()'s result and the fast path's facts (src/fastpath/, above probe()'s floor). */
export interface ProbeReport extends ProbeResult {
  fastPath: FastPathFacts;
}

/** probe() and the fast-path facts. */
export function probeReport(): ProbeReport {
  const p = probe();
  return { ...p, fastPath: fastPathFacts(p) };
}

const yesNo = (v: boolean | null): string => (v === null ? 'unknown' : v ? 'yes' : 'no');

/** The human-readable report of a probe. */
export function formatProbe(p: ProbeResult): string {
  let s = `natt ${version()} on ${p.platform} ${p.release} (${p.arch}), node ${p.node}\n`;
  s += `  native addon    ${p.native.loaded ? `loaded from ${p.native.path}` : `not loaded: ${p.native.reason}`}\n`;
  s += line('PF_KEY', p.facts.pfkey);
  s += line('XFRM netlink', p.facts.xfrm);
  s += line('UDP_ENCAP IPv4', p.facts.udpEncap4);
  s += line('UDP_ENCAP IPv6', p.facts.udpEncap6);
  s += line('/dev/net/tun', p.facts.tun);
  s += `  kernel ESP      IPv4 ${p.kernelEsp.v4 ? 'yes' : 'no'}, IPv6 ${p.kernelEsp.v6 ? 'yes' : 'no'} (${p.kernelEsp.reason})\n`;
  s += `  ESP in TCP      ${p.espInTcp.ok ? 'yes' : 'no'}   ${p.espInTcp.reason}\n`;
  const v = p.privileges;
  s += `  CAP_NET_ADMIN   ${yesNo(v.netAdmin)}   (CAP_NET_RAW ${yesNo(v.netRaw)}, CAP_NET_BIND_SERVICE ${yesNo(v.netBindService)}) ${v.reason}\n`;
  for (const [v, b] of [['IPv4', p.ipsecBypass.v4], ['IPv6', p.ipsecBypass.v6]] as const) {
    s += `  IPsec bypass ${v} ${b.active ? 'yes' : 'no '}  ${b.reason}\n`;
  }
  const t = p.cryptoTemplates;
  s += `  AEAD templates  ${t.aead.length ? t.aead.join(', ') : 'none'}\n`;
  s += `  crypto          ${Object.entries(t.templates).map(([n, st]) => `${n} ${st}`).join(', ')}; ${t.reason}\n`;
  for (const [i, n] of p.kernelNotes.entries()) s += `  ${i === 0 ? 'kernel notes    ' : '                '}${n}\n`;
  s += `backend 'auto' picks:\n`;
  s += `  NAT-T socket    ${p.auto.nattSocket.backend}: ${p.auto.nattSocket.reason}\n`;
  s += `  SA database     ${p.auto.sadb.backend}: ${p.auto.sadb.reason}\n`;
  s += formatFastPath(fastPathFacts(p));
  return s;
}

const PROBE_OPTIONS = {
  json: { type: 'boolean' },
} as const;

export const probeCommand: Command<typeof PROBE_OPTIONS> = {
  name: 'probe',
  synopsis: '[--json]',
  summary: "what this host's kernel offers for IPsec NAT-T (PF_KEY, XFRM, UDP_ENCAP, TUN,\nkernel ESP in UDP and in TCP, the IKE sockets' IPsec bypass), which backends 'auto' picks, and why",
  usage: `Usage: natt probe [--json]

What this host's kernel offers for IPsec NAT-T: whether PF_KEY, XFRM netlink, UDP_ENCAP (IPv4, IPv6) and
/dev/net/tun can be opened (the errno and what to do where not), whether the kernel can do ESP, whether a NAT-T
socket gets its per-socket IPsec bypass (IKE exempt from the kernel's policies) and why not, whether the native
addon loaded and from which file, and which backend 'auto' picks for the NAT-T socket and the SA database, and why.
Also: CAP_NET_ADMIN (and CAP_NET_RAW, CAP_NET_BIND_SERVICE) in this process, whether an IKE socket can be exempted
from the kernel's IPsec policies (the bypass), which kernel crypto templates natt's XFRM suites need are there (the
AEADs named), the fast path (native cipher contexts, batched I/O, socket buffers), and what this kernel version
means for natt. Opens and closes a few sockets; changes nothing.

  --json             print probe()'s result as JSON (for programs; fields may be added, never renamed)
  -h, --help         show this help

Exit status: 0 done, 1 a failure, 2 a usage error.
`,
  options: PROBE_OPTIONS,
  run({ values }, io) {
    const p = probeReport();
    io.out.write(values.json ? `${JSON.stringify(p, null, 2)}\n` : formatProbe(p));
    return 0;
  },
};
