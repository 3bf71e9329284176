// Which packets a NAT-T capture keeps (UDP and TCP ports), as a TypeScript test and as the classic BPF program the kernel runs first.
//
// Both look at a network-layer packet (what a SOCK_DGRAM packet socket reads): IPv4 (any header length; fragments
// after the first carry no ports and are left out) or IPv6 with UDP or TCP as the first next header. A packet is
// kept when its source or destination port is one of the ports for its protocol. The kernel's filter spares the
// process every other packet on the host (the socket receives nothing before it is attached); the TypeScript test is
// applied again to what arrives, as a guard, and counts what it would have left out.

import * as os from 'node:os';
import { rangeError, typeError } from '../errors';

/** The ports a capture keeps. */
export interface CapturePorts {
  udp: readonly number[];
  tcp: readonly number[];
}

/** Where the IP packet's UDP or TCP header starts and what it is, or undefined for anything else. */
export function transportOf(p: Uint8Array): { proto: 6 | 17; offset: number } | undefined {
  if (p.length < 20) return undefined;
  const version = p[0] >> 4;
  if (version === 4) {
    const ihl = (p[0] & 0x0f) * 4;
    if (ihl < 20 || p.length < ihl + 4) return undefined;
    if (((p[6] << 8) | p[7]) & 0x1fff) return undefined; // a later fragment: no ports
    const proto = p[9];
    return proto === 6 || proto === 17 ? { proto, offset: ihl } : undefined;
  }
  if (version === 6) {
    if (p.length < 44) return undefined;
    const proto = p[6];
    return proto === 6 || proto === 17 ? { proto, offset: 40 } : undefined;
  }
  return undefined;
}

/** Whether a capture with these ports keeps packet `p`. */
export function matchesPorts(p: Uint8Array, ports: CapturePorts): boolean {
  const t = transportOf(p);
  if (!t) return false;
  const list = t.proto === 17 ? ports.udp : ports.tcp;
  const sport = (p[t.offset] << 8) | p[t.offset + 1];
  const dport = (p[t.offset + 2] << 8) | p[t.offset + 3];
  return list.includes(sport) || list.includes(dport);
}

/** Checks a port list: integers 1..65535, at most 32 of them (the filter's jumps are 8-bit). */
export function checkPorts(v: unknown, field: string): number[] {
  if (!Array.isArray(v)) throw typeError(field, 'an array of ports', v);
  if (v.length > 32) throw rangeError(field, 'at most 32 ports', v.length);
  for (const [i, p] of v.entries()) {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw rangeError(`${field}[${i}]`, 'a port 1..65535', p);
  }
  return [...new Set(v as number[])];
}

// Classic BPF opcodes (linux/filter.h, the same on every Linux).
const LD_B_ABS = 0x30;
const LD_H_ABS = 0x28;
const LD_H_IND = 0x48;
const LDX_B_MSH = 0xb1;
const LDX_IMM = 0x01;
const ALU_AND_K = 0x54;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;

type Insn = { code: number; k: number; jt?: string; jf?: string } | { label: string };

/**
 * The classic BPF program (struct sock_filter[], host byte order) that keeps what matchesPorts() keeps, each packet
 * cut to `snapLength` bytes.
 */
export function captureFilter(ports: CapturePorts, snapLength: number): Uint8Array {
  const prog: Insn[] = [];
  const emit = (code: number, k: number, jt?: string, jf?: string): void => {
    prog.push({ code, k, jt, jf });
  };
  const label = (name: string): void => {
    prog.push({ label: name });
  };
  // Tests of the two ports at X (+0 source, +2 destination) for one protocol's list.
  const portTests = (list: readonly number[]): void => {
    if (list.length === 0) {
      emit(RET_K, 0);
      return;
    }
    for (const off of [0, 2]) {
      emit(LD_H_IND, off);
      for (const p of list) emit(JEQ_K, p, 'keep');
    }
    emit(RET_K, 0);
  };
  emit(LD_B_ABS, 0);
  emit(ALU_AND_K, 0xf0);
  emit(JEQ_K, 0x40, 'v4');
  emit(JEQ_K, 0x60, 'v6', 'drop');
  label('v4');
  emit(LD_H_ABS, 6);
  emit(JSET_K, 0x1fff, 'drop');
  emit(LDX_B_MSH, 0);
  emit(LD_B_ABS, 9);
  emit(JEQ_K, 17, 'udp');
  emit(JEQ_K, 6, 'tcp', 'drop');
  label('v6');
  emit(LDX_IMM, 40);
  emit(LD_B_ABS, 6);
  emit(JEQ_K, 17, 'udp');
  emit(JEQ_K, 6, 'tcp', 'drop');
  label('udp');
  portTests(ports.udp);
  label('tcp');
  portTests(ports.tcp);
  label('keep');
  emit(RET_K, snapLength);
  label('drop');
  emit(RET_K, 0);

  // Resolve labels: a jump's offset counts the instructions between it and its target.
  const where = new Map<string, number>();
  let n = 0;
  for (const i of prog) {
    if ('label' in i) where.set(i.label, n);
    else n++;
  }
  const out = Buffer.alloc(n * 8);
  const le = os.endianness() === 'LE';
  let pc = 0;
  for (const i of prog) {
    if ('label' in i) continue;
    const jump = (l: string | undefined): number => {
      if (l === undefined) return 0;
      const d = where.get(l)! - pc - 1;
      if (d < 0 || d > 255) throw rangeError('ports', 'fewer ports (the filter program jumps too far)', d);
      return d;
    };
    const at = pc * 8;
    if (le) out.writeUInt16LE(i.code, at);
    else out.writeUInt16BE(i.code, at);
    out[at + 2] = jump(i.jt);
    out[at + 3] = jump(i.jf);
    if (le) out.writeUInt32LE(i.k >>> 0, at + 4);
    else out.writeUInt32BE(i.k >>> 0, at + 4);
    pc++;
  }
  return out;
}
