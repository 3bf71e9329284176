// A raw control-protocol peer for the tests: frames written and read by hand, so the server is judged by what it sends.

import * as net from 'node:net';

/** One frame: the 4-byte big-endian length, then the bytes (a string or object is sent as its UTF-8 JSON). */
export function frame(body: object | string | Buffer): Buffer {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const h = Buffer.alloc(4);
  h.writeUInt32BE(b.length, 0);
  return Buffer.concat([h, b]);
}

export type Msg = Record<string, any>;

/** A connection that records every frame the server sends, and when it closed. */
export class RawClient {
  readonly messages: Msg[] = [];
  readonly closed: Promise<void>;
  bytesIn = 0;
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk) => {
      this.bytesIn += chunk.length;
      this.#buf = Buffer.concat([this.#buf, chunk]);
      while (this.#buf.length >= 4) {
        const n = this.#buf.readUInt32BE(0);
        if (this.#buf.length < 4 + n) break;
        this.messages.push(JSON.parse(this.#buf.subarray(4, 4 + n).toString('utf8')));
        this.#buf = this.#buf.subarray(4 + n);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    sock.on('error', () => undefined);
    this.closed = new Promise((resolve) => sock.on('close', () => {
      for (const w of this.#waiters.splice(0)) w();
      resolve();
    }));
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
    });
  }

  send(body: object | string | Buffer): void {
    this.sock.write(frame(body));
  }

  sendRaw(bytes: Buffer): void {
    this.sock.write(bytes);
  }

  /** Say hello and wait for the answer. */
  async hello(): Promise<Msg> {
    this.send({ type: 'hello', id: 1, versions: [1] });
    return this.waitFor((m) => m.type === 'hello' && m.id === 1);
  }

  /** The first message (already received or to come) that `pred` accepts; rejects if the connection closes first. */
  async waitFor(pred: (m: Msg) => boolean, ms = 5000): Promise<Msg> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.messages.find(pred);
      if (m) return m;
      if (this.sock.destroyed || Date.now() > deadline) throw new Error(`no such message (got ${JSON.stringify(this.messages).slice(0, 300)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
