// A reliable transfer through two UserlandEngines (a small sliding window with cumulative ACKs), used over TCP and UDP.
'use strict';
//
// Each side runs one sender (its stream id) and one receiver (the peer's id). Inner packets are UDP datagrams whose
// payload is: kind (1 = DATA, 2 = ACK), stream id, sequence number (u32), then DATA bytes. The data of packet i is a
// deterministic function of (seed, i), so both ends know the SHA-256 the stream must have. Lost packets (a connection
// reset mid-transfer, a full queue) are sent again after `rtoMs` without progress. The sender respects backpressure:
// while `blocked()` is true it waits for `onUnblock` (a transport's 'drain') or the next retransmission tick.

const crypto = require('node:crypto');

const DATA = 1;
const ACK = 2;
const HDR = 6;

/** The data of packet `i` of a stream (xorshift32 from seed and i): `size` bytes. */
function dataOf(seed, i, size) {
  const b = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761 + i * 40503 + 1) >>> 0 || 1;
  for (let k = 0; k < size; k++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[k] = x & 0xff;
  }
  return b;
}

/** The SHA-256 (hex) the whole stream must have. */
function streamDigest(seed, count, size) {
  const h = crypto.createHash('sha256');
  for (let i = 0; i < count; i++) h.update(dataOf(seed, i, size));
  return h.digest('hex');
}

/** UDP payload of an IPv4/IPv6 packet (tunnel inner packet), or null. */
function udpPayload(pkt) {
  const v = pkt[0] >> 4;
  if (v === 4) {
    const ihl = (pkt[0] & 15) * 4;
    if (pkt[9] !== 17) return null;
    return pkt.subarray(ihl + 8);
  }
  if (v === 6 && pkt[6] === 17) return pkt.subarray(48);
  return null;
}

/**
 * One side of a two-way transfer. o: { engine, build (buildUdpPacket), me: {host, net}, peer: {host}, id, peerId,
 * count, size, seed, peerSeed, window, rtoMs, blocked?: () => boolean, onUnblock?: (fn) => void }.
 * Returns { start(), done: Promise<{ sent, received, digest, expected, retransmits, elapsedMs }>, progress() }.
 */
function createTransfer(o) {
  const window = o.window ?? 64;
  const rtoMs = o.rtoMs ?? 250;
  const count = o.count;
  const size = o.size;
  const expected = streamDigest(o.peerSeed, count, size); // what we must receive
  const port = 9000;
  const mk = (payload) => o.build(o.me.host, port + o.id, o.peer.host, port + o.peerId, payload);
  // Sender state
  let base = 0; // all below are acknowledged
  let next = 0; // next never-sent
  let sentPackets = 0;
  let retransmits = 0;
  let lastProgress = Date.now();
  let senderDone = count === 0;
  // Receiver state
  let recvNext = 0;
  const pending = new Map(); // out-of-order packets within the window
  const hash = crypto.createHash('sha256');
  let receiverDone = count === 0;
  let digest = receiverDone ? hash.digest('hex') : '';
  let sinceAck = 0;
  let t0 = 0;
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  let timer = null;

  function packet(kind, id, seq, data) {
    const p = Buffer.allocUnsafe(HDR + (data ? data.length : 0));
    p[0] = kind;
    p[1] = id;
    p.writeUInt32BE(seq, 2);
    if (data) data.copy(p, HDR);
    return mk(p);
  }

  function sendData(i) {
    o.engine.send(packet(DATA, o.id, i, dataOf(o.seed, i, size)));
    sentPackets++;
  }

  function pump() {
    while (!senderDone && next < count && next < base + window) {
      if (o.blocked && o.blocked()) return;
      sendData(next++);
    }
  }

  function ack() {
    sinceAck = 0;
    o.engine.send(packet(ACK, o.peerId, recvNext, null));
  }

  function finish() {
    if (!senderDone || !receiverDone) return;
    clearInterval(timer);
    // A last few ACKs so the peer's sender finishes even if one was lost.
    for (let i = 0; i < 3; i++) setTimeout(ack, 50 * i).unref();
    resolveDone({ sent: sentPackets, received: recvNext, digest, expected, retransmits, elapsedMs: Date.now() - t0 });
  }

  o.engine.on('packet', (pkt) => {
    const u = udpPayload(pkt);
    if (!u || u.length < HDR) return;
    const kind = u[0];
    const id = u[1];
    const seq = u.readUInt32BE(2);
    if (kind === ACK && id === o.id) {
      if (seq > base) {
        base = Math.min(seq, count);
        lastProgress = Date.now();
        if (base >= count && !senderDone) {
          senderDone = true;
          finish();
        }
        pump();
      }
      return;
    }
    if (kind !== DATA || id !== o.peerId || receiverDone) {
      if (kind === DATA && receiverDone) ack(); // the peer missed our last ACK
      return;
    }
    if (seq === recvNext) {
      hash.update(u.subarray(HDR));
      recvNext++;
      while (pending.has(recvNext)) {
        hash.update(pending.get(recvNext));
        pending.delete(recvNext);
        recvNext++;
      }
      if (recvNext >= count) {
        receiverDone = true;
        digest = hash.digest('hex');
        ack();
        finish();
        return;
      }
      if (++sinceAck >= 8) ack();
    } else if (seq > recvNext && seq < recvNext + 4 * window) {
      if (!pending.has(seq)) pending.set(seq, Buffer.from(u.subarray(HDR)));
      ack();
    } else {
      ack(); // a duplicate: tell the sender where we are
    }
  });

  if (o.onUnblock) o.onUnblock(() => pump());

  return {
    start() {
      t0 = Date.now();
      timer = setInterval(() => {
        if (!receiverDone && sinceAck > 0) ack();
        if (!senderDone && Date.now() - lastProgress >= rtoMs) {
          // Go back: everything unacknowledged in the window again.
          lastProgress = Date.now();
          next = base;
          retransmits++;
        }
        pump();
      }, Math.max(10, Math.floor(rtoMs / 4)));
      pump();
      if (senderDone && receiverDone) finish();
      return done;
    },
    done,
    progress: () => ({ acked: base, sent: sentPackets, received: recvNext, retransmits }),
    stop: () => clearInterval(timer),
  };
}

module.exports = { createTransfer, streamDigest, dataOf };
