// A tiny pcap writer (LINKTYPE_RAW: each record is an IP packet) for handing engine traffic to tshark.

import { writeFileSync } from 'node:fs';

const LINKTYPE_RAW = 101;

/** Write `packets` (whole IP packets) as a classic pcap file, microsecond timestamps 1 ms apart. */
export function writePcap(path: string, packets: Uint8Array[]): void {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeInt32LE(0, 8); // thiszone
  head.writeUInt32LE(0, 12); // sigfigs
  head.writeUInt32LE(65535, 16); // snaplen
  head.writeUInt32LE(LINKTYPE_RAW, 20);
  const parts: Buffer[] = [head];
  packets.forEach((p, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000, 0);
    rec.writeUInt32LE(i * 1000, 4);
    rec.writeUInt32LE(p.length, 8);
    rec.writeUInt32LE(p.length, 12);
    parts.push(rec, Buffer.from(p));
  });
  writeFileSync(path, Buffer.concat(parts));
}
