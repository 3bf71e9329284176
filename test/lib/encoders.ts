// The codecs' encode, checked on every call in dns-packet's way (its testEncoder): encodingLength agrees, and the same
// bytes come out when encoding at an offset into a caller's dirty buffer, leaving the bytes around them alone.

import { expect } from 'vitest';
import * as pfkeyCodec from '../../src/pfkey/codec';
import * as xfrmCodec from '../../src/xfrm/codec';

/** What a caller's buffer holds before encode writes into it: never what an encoder writes by accident. */
const DIRT = 0xa5;
/** An odd offset, so every multi-byte field lands unaligned in the caller's buffer. */
const OFFSET = 7;

/**
 * `expected` (what encode returned) must equal encodingLength, `encode.bytes`, and what encoding into a dirty buffer
 * at an offset writes; a buffer one byte short is refused with a RangeError naming "buf". (Plain checks, not expect():
 * the fuzz tests run this 10^5 times.)
 */
function sameEverywhere(expected: Buffer, length: number, bytes: () => number, into: (buf: Uint8Array, offset: number) => Buffer): void {
  const n = expected.length;
  if (length !== n) expect.fail(`encodingLength says ${length}, encode wrote ${n} bytes`);
  if (bytes() !== n) expect.fail(`encode.bytes says ${bytes()}, encode wrote ${n} bytes`);
  const outer = Buffer.alloc(OFFSET + n + 5, DIRT);
  const view = into(outer, OFFSET);
  if (!view.equals(expected)) expect.fail(`encoding at offset ${OFFSET} gave ${view.toString('hex')}, not ${expected.toString('hex')}`);
  if (view.buffer !== outer.buffer || view.byteOffset !== outer.byteOffset + OFFSET) expect.fail('encoding into a buffer returned no view of it');
  if (bytes() !== n) expect.fail(`encode.bytes says ${bytes()} after encoding at an offset, not ${n}`);
  for (let i = 0; i < OFFSET; i++) if (outer[i] !== DIRT) expect.fail(`byte ${i}, before the offset, was overwritten`);
  for (let i = OFFSET + n; i < outer.length; i++) if (outer[i] !== DIRT) expect.fail(`byte ${i}, after the message, was overwritten`);
  if (n === 0) return;
  let refused: unknown;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0; // the refusal is expected: its stack would cost more than the encoding
  try {
    into(Buffer.alloc(OFFSET + n - 1), OFFSET);
  } catch (e) {
    refused = e;
  } finally {
    Error.stackTraceLimit = limit;
  }
  if (!(refused instanceof RangeError) || !refused.message.startsWith('option "buf"')) expect.fail(`a buffer one byte short gave ${String(refused)}`);
}

/** pfkey's encode(msg, dialect), checked as above on every call; throws what encode throws. */
export function pfkeyEncode(msg: pfkeyCodec.PfKeyMessage, dialect?: Parameters<typeof pfkeyCodec.encode>[1]): Buffer {
  const b = pfkeyCodec.encode(msg, dialect);
  sameEverywhere(
    b,
    pfkeyCodec.encodingLength(msg, dialect),
    () => pfkeyCodec.encode.bytes,
    (buf, offset) => pfkeyCodec.encode(msg, dialect, buf, offset),
  );
  return b;
}

/** xfrm's encode(messages), checked as above on every call; throws what encode throws. */
export function xfrmEncode(messages: xfrmCodec.XfrmMessage | readonly xfrmCodec.XfrmMessage[]): Buffer {
  const b = xfrmCodec.encode(messages);
  sameEverywhere(
    b,
    xfrmCodec.encodingLength(messages),
    () => xfrmCodec.encode.bytes,
    (buf, offset) => xfrmCodec.encode(messages, buf, offset),
  );
  return b;
}
