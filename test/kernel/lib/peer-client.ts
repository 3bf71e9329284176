// Guest side of the interop protocol: a client for the host peer (scripts/vm/peer.js) over TCP at 10.0.2.2.
import * as net from 'node:net';

/** The host peer's address as the host passed it on the kernel command line, or null outside the VM run. */
export function peerAddress(): { host: string; port: number } | null {
  const v = process.env.NATT_VM_CTL;
  if (!v) return null;
  const [host, port] = v.split(':');
  return { host, port: Number(port) };
}

export interface WireSa {
  src: string;
  dst: string;
  spi: number;
  mode: 'tunnel' | 'transport';
  reqid?: number;
  replayWindow?: number;
  encryption: { algorithm: string; key: string };
  integrity?: { algorithm: string; key: string };
  natt?: { type: 'espinudp'; sport: number; dport: number; oa?: { initiator?: string; responder?: string } };
}

export interface PeerPacket {
  packet: string;
  rinfo: { address: string; port: number };
  checksumOk: boolean;
  udp: { src: string; sport: number; dst: string; dport: number; checksum: number; data: string } | null;
}

/** What test/tunnel/tcp-peer.js prints when done: bytes and SHA-256 of each direction. */
export interface TcpResult {
  sent: number;
  sentHash: string;
  received: number;
  receivedHash: string;
}

export interface TunnelDown {
  code: number | null;
  signal: string | null;
  lines: string[];
  /** From SIGTERM to the exit, on the host. */
  ms: number;
  /** The interface names of the host namespace after the exit, and its routes (`ip route show`). */
  links: string[];
  routes: string;
  name: string;
}

/** One control connection = one session on the peer (its own NattSocket and UserlandEngine). */
export class PeerClient {
  #sock: net.Socket;
  #buf = '';
  #id = 0;
  #pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  private constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.#buf += d;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(this.#buf.slice(0, i));
        this.#buf = this.#buf.slice(i + 1);
        const p = this.#pending.get(msg.id);
        if (!p) continue;
        this.#pending.delete(msg.id);
        if (msg.ok) p.resolve(msg);
        else p.reject(new Error(`peer: ${msg.error}`));
      }
    });
    const fail = (err: Error) => {
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('peer connection closed')));
  }

  static connect(addr = peerAddress()): Promise<PeerClient> {
    if (!addr) return Promise.reject(new Error('NATT_VM_CTL is not set: not inside `npm run test:vm`'));
    return new Promise((resolve, reject) => {
      const s = net.connect(addr.port, addr.host, () => {
        s.off('error', reject);
        resolve(new PeerClient(s));
      });
      s.once('error', reject);
    });
  }

  call<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#sock.write(JSON.stringify({ id, op, ...args }) + '\n');
    });
  }

  /** A fresh NattSocket + UserlandEngine on the host; returns the engine socket's UDP port and the hostfwd port. */
  reset(): Promise<{ port: number; fwdPort: number }> {
    return this.call('reset');
  }

  addSa(sa: WireSa): Promise<unknown> {
    return this.call('addSa', { sa });
  }

  addPolicy(policy: Record<string, unknown>): Promise<unknown> {
    return this.call('addPolicy', { policy });
  }

  sendUdp(p: { src: string; sport: number; dst: string; dport: number; data: string }): Promise<{ result: string }> {
    return this.call('sendUdp', p);
  }

  nextPacket(timeoutMs = 10_000): Promise<PeerPacket> {
    return this.call('nextPacket', { timeoutMs });
  }

  /** The host's NattSocket sends IKE (marker added) to `address`:`port` as the host sees it. */
  sendIke(port: number, address: string, data: string): Promise<unknown> {
    return this.call('sendIke', { port, address, data });
  }

  nextIke(timeoutMs = 10_000): Promise<{ data: string; rinfo: { address: string; port: number } }> {
    return this.call('nextIke', { timeoutMs });
  }

  /** The next NAT-keepalive (one 0xFF byte) the host's NattSocket received, as the host saw its source; `at` in ms. */
  nextKeepalive(timeoutMs = 10_000): Promise<{ rinfo: { address: string; port: number }; at: number }> {
    return this.call('nextKeepalive', { timeoutMs });
  }

  state(): Promise<{ stats: Record<string, number>; traffic: Record<string, number>; socket: { keepalive: number }; mappings: Array<{ spi: number; old: { address: string; port: number }; new: { address: string; port: number } }> }> {
    return this.call('state');
  }

  /** Why the host cannot run the tunnel daemon (not root, no TUN, no network namespace of the run's own), or null. */
  tunnelCheck(): Promise<{ missing: string | null; netns: string | null }> {
    return this.call('tunnelCheck');
  }

  /** Start `natt tunnel up` on the host with this configuration (keys as hex); resolves once it logged 'tunnel up'. */
  tunnelUp(config: Record<string, unknown>): Promise<{ lines: string[] }> {
    return this.call('tunnelUp', { config });
  }

  /** The daemon's log so far. */
  tunnelLog(): Promise<{ lines: string[]; exited: boolean }> {
    return this.call('tunnelLog');
  }

  /** SIGTERM to the daemon: its exit, its whole log, and the host namespace's links and routes afterwards. */
  tunnelDown(timeoutMs = 15_000): Promise<TunnelDown> {
    return this.call('tunnelDown', { timeoutMs });
  }

  /** ping from the host's namespace (through the daemon's TUN when `dst` is behind it). */
  ping(dst: string, count = 3): Promise<{ status: number | null; out: string }> {
    return this.call('ping', { dst, count });
  }

  /** A test/tunnel/tcp-peer.js endpoint on the host ('server' resolves once it listens); its number for tcpResult. */
  tcpStart(role: 'server' | 'client', address: string, port: number, bytes: number): Promise<{ endpoint: number }> {
    return this.call(role === 'server' ? 'tcpServer' : 'tcpClient', { address, port, bytes });
  }

  /** That endpoint's result line and how long it ran on the host. */
  tcpResult(endpoint: number, timeoutMs = 120_000): Promise<{ result: TcpResult; ms: number }> {
    return this.call('tcpResult', { endpoint, timeoutMs });
  }

  close(): void {
    this.#sock.end();
  }
}
