// ESP in TCP inside TLS (RFC 9329 Appendix A): a self-signed certificate made here with openssl, one engine pair over it.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { UserlandEngine } from '../../src/userland/engine';
import { UserlandSadb } from '../../src/userland/sadb';
import { buildUdpPacket } from '../../src/ip/packet';
import { listenNattTcp, type NattTcpListener } from '../../src/tcp/listener';
import { connectNattTcp } from '../../src/tcp/client';
import { streamPrefix } from '../../src/tcp/framing';
import { KEY_CS, KEY_SC, closeAll, installTunnel, until } from './helpers';
import { createTransfer } from './transfer.js';

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const LO = '127.0.0.1';

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

describe.skipIf(!hasOpenssl)(`ESP in TCP inside TLS${hasOpenssl ? '' : ' (skipped: no openssl to make a certificate; apt-get install openssl)'}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'natt-tls-'));
  let key: Buffer;
  let cert: Buffer;
  let otherCert: Buffer;
  beforeAll(() => {
    const mk = (name: string, cn: string): void => {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:responder.test',
        '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
      ], { stdio: 'pipe' });
    };
    mk('responder', 'responder.test');
    mk('other', 'other.test');
    key = readFileSync(join(dir, 'responder.key'));
    cert = readFileSync(join(dir, 'responder.crt'));
    otherCert = readFileSync(join(dir, 'other.crt'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function tlsListener(): Promise<NattTcpListener> {
    const l = await listenNattTcp({ address: LO, port: 0, tls: { key, cert }, handshakeTimeout: 2000 });
    cleanup.push(() => closeAll(l));
    return l;
  }

  it('one engine pair over TLS: 1000 packets each way, SHA-256 equal; the TLS key never shows', async () => {
    const listener = await tlsListener();
    const client = await connectNattTcp({ host: LO, port: listener.address().port, tls: { ca: cert, servername: 'responder.test' } });
    cleanup.push(() => closeAll(client));
    expect(client.tls && listener.tls).toBe(true);
    const sPort = listener.address().port;
    const cPort = client.address().port;
    const dbC = new UserlandSadb();
    const dbS = new UserlandSadb();
    await installTunnel(dbC, { address: LO, port: cPort, net: '10.10.0.0/16' }, { address: LO, port: sPort, net: '10.20.0.0/16' }, { out: 0xa1, in: 0xb1 }, { out: KEY_CS, in: KEY_SC });
    await installTunnel(dbS, { address: LO, port: sPort, net: '10.20.0.0/16' }, { address: LO, port: cPort, net: '10.10.0.0/16' }, { out: 0xb1, in: 0xa1 }, { out: KEY_SC, in: KEY_CS });
    const ec = new UserlandEngine({ socket: client, sadb: dbC, keepaliveSeconds: 0 });
    const es = new UserlandEngine({ socket: listener, sadb: dbS, keepaliveSeconds: 0 });
    cleanup.push(() => ec.close(), () => es.close());
    const common = { build: buildUdpPacket, count: 1000, size: 800, window: 64, rtoMs: 400 };
    const [rc, rs] = await Promise.all([
      createTransfer({ ...common, engine: ec, me: { host: '10.10.0.5' }, peer: { host: '10.20.0.7' }, id: 1, peerId: 2, seed: 5, peerSeed: 6 }).start(),
      createTransfer({ ...common, engine: es, me: { host: '10.20.0.7' }, peer: { host: '10.10.0.5' }, id: 2, peerId: 1, seed: 6, peerSeed: 5 }).start(),
    ]);
    expect([rc.received, rs.received]).toEqual([1000, 1000]);
    expect(rc.digest).toBe(rc.expected);
    expect(rs.digest).toBe(rs.expected);
    const conn = listener.connections()[0];
    expect(conn.tls).toBe(true);
    expect(listener.stats().esp).toBe(es.traffic().inPackets);
    // A clean close after the handshake is the peer's FIN, not a TLS failure.
    await closeAll(client);
    await until(() => listener.stats().closed.peerEnd === 1, 3000, 'the responder to see the close');
    expect(listener.stats().closed.tlsError).toBe(0);
    // The TLS key is the listener's secret: nothing of it in inspect, in any mode.
    const pem = key.toString().split('\n')[1];
    for (const text of [inspect(listener, { showHidden: true, depth: 5 }), inspect(listener.stats()), JSON.stringify(listener.stats())]) {
      expect(text).not.toContain(pem);
    }
  }, 60_000);

  it('the stream inside TLS is the RFC 9329 stream: a raw TLS client that sends "IKETCP" and frames is understood', async () => {
    const listener = await tlsListener();
    const s = tls.connect({ host: LO, port: listener.address().port, ca: cert, servername: 'responder.test' });
    cleanup.push(() => s.destroy());
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    expect(s.getProtocol()).toMatch(/TLSv1\.[23]/);
    let got = '';
    listener.on('ike', (p) => (got = p.toString()));
    s.write(Buffer.concat([streamPrefix(), Buffer.from([0, 11, 0, 0, 0, 0]), Buffer.from('hello')]));
    await until(() => got === 'hello', 3000, 'the IKE message');
  });

  it('an initiator that does not trust the certificate is refused at connect; a plaintext peer is closed as tlsError', async () => {
    const listener = await tlsListener();
    await expect(connectNattTcp({ host: LO, port: listener.address().port, tls: { ca: otherCert }, reconnect: false })).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    const plain = net.connect({ host: LO, port: listener.address().port });
    plain.on('error', () => {});
    cleanup.push(() => plain.destroy());
    plain.write(Buffer.concat([streamPrefix(), Buffer.from([0, 11, 0, 0, 0, 0]), Buffer.from('hello')]));
    await until(() => listener.stats().closed.tlsError >= 2, 3000, 'the TLS errors to be counted');
    expect(listener.stats().ike).toBe(0);
  });
});
