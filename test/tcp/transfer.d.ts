// Types of test/tcp/transfer.js (plain JS, so the namespace endpoints can run it on dist/ too).

export interface TransferResult {
  sent: number;
  received: number;
  digest: string;
  expected: string;
  retransmits: number;
  elapsedMs: number;
}
export interface TransferOptions {
  engine: { send(p: Buffer): unknown; on(ev: 'packet', f: (p: Buffer) => void): unknown };
  build: (src: string, sport: number, dst: string, dport: number, data: Uint8Array) => Buffer;
  me: { host: string };
  peer: { host: string };
  id: number;
  peerId: number;
  count: number;
  size: number;
  seed: number;
  peerSeed: number;
  window?: number;
  rtoMs?: number;
  blocked?: () => boolean;
  onUnblock?: (f: () => void) => void;
}
export function createTransfer(o: TransferOptions): {
  start(): Promise<TransferResult>;
  done: Promise<TransferResult>;
  progress(): { acked: number; sent: number; received: number; retransmits: number };
  stop(): void;
};
export function streamDigest(seed: number, count: number, size: number): string;
export function dataOf(seed: number, i: number, size: number): Buffer;
