// The options of listenNattTcp / connectNattTcp read and checked once: limits with their defaults, TLS material, reconnect.

import * as tls from 'node:tls';
import { isIP } from 'node:net';
import { rangeError, typeError } from '../errors';
import { boolOption, callbackOption, durationMs, intOption, oneOf, readOptions, stringOption, type ReadOptions } from '../core/options';
import { MAX_FRAME_LENGTH, MIN_MAX_FRAME_LENGTH } from './framing';
import type { TcpConnectionLimits } from './connection';

/** The limits' defaults, per side: the responder faces strangers, the initiator its one chosen peer. */
export const LISTENER_DEFAULTS = Object.freeze({
  maxConnections: 1024,
  handshakeTimeout: 10_000,
  idleTimeout: 600_000,
  frameTimeout: 30_000,
  maxQueuedBytes: 1024 * 1024,
  maxFrameLength: MAX_FRAME_LENGTH,
  backlog: 511,
});

export const CLIENT_DEFAULTS = Object.freeze({
  connectTimeout: 10_000,
  idleTimeout: 0,
  frameTimeout: 30_000,
  maxQueuedBytes: 1024 * 1024,
  maxFrameLength: MAX_FRAME_LENGTH,
  reconnect: Object.freeze({ minDelay: 100, maxDelay: 30_000, attempts: 20 }),
});

/** The largest send queue one connection may be given (a bound, so nothing grows without one). */
const MAX_QUEUE = 1024 * 1024 * 1024;

export const LIMIT_NAMES = ['handshakeTimeout', 'idleTimeout', 'frameTimeout', 'maxQueuedBytes', 'maxFrameLength'] as const;

/** One connection's limits from read options (ms durations via durationMs, any length: timers are long-safe). */
export function readLimits(o: ReadOptions<(typeof LIMIT_NAMES)[number]>, d: { handshakeTimeout?: number; idleTimeout: number; frameTimeout: number; maxQueuedBytes: number; maxFrameLength: number }): TcpConnectionLimits {
  return {
    handshakeTimeout: d.handshakeTimeout === undefined ? 0 : durationMs(o.handshakeTimeout, 'handshakeTimeout', 0, d.handshakeTimeout),
    idleTimeout: durationMs(o.idleTimeout, 'idleTimeout', 0, d.idleTimeout),
    frameTimeout: durationMs(o.frameTimeout, 'frameTimeout', 0, d.frameTimeout),
    maxQueuedBytes: intOption(o.maxQueuedBytes, 'maxQueuedBytes', MAX_FRAME_LENGTH, MAX_QUEUE, d.maxQueuedBytes),
    maxFrameLength: intOption(o.maxFrameLength, 'maxFrameLength', MIN_MAX_FRAME_LENGTH, MAX_FRAME_LENGTH, d.maxFrameLength),
  };
}

/** A local address of `family` (default the unspecified one). */
export function readAddress(v: unknown, field: string, family: 4 | 6, dflt: string | undefined): string | undefined {
  if (v === undefined) return dflt;
  if (typeof v !== 'string') throw typeError(field, 'a string', v);
  if (isIP(v) !== family) throw rangeError(field, `an IPv${family} address`, v);
  return v;
}

export function readFamily(v: unknown): 4 | 6 {
  return oneOf(v, 'family', [4, 6] as const, 4);
}

export function readPort(v: unknown, field: string, min: number, dflt: number): number {
  return intOption(v, field, min, 65535, dflt);
}

type Pem = string | Buffer | Array<string | Buffer>;

/** The TLS options both ends take (RFC 9329 Appendix A); PEM or DER, a string, a Buffer or an array of them. */
export interface NattTcpTlsCommonOptions {
  key?: Pem;
  cert?: Pem;
  ca?: Pem;
  pfx?: Pem;
  passphrase?: string;
  ciphers?: string;
  /** Default 'TLSv1.2'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  rejectUnauthorized?: boolean;
}

/** PEM/DER material: a string, bytes, or an array of those. Described by shape only in errors (never printed). */
function material(v: unknown, field: string): Pem | undefined {
  if (v === undefined) return undefined;
  const one = (x: unknown): x is string | Uint8Array => typeof x === 'string' || x instanceof Uint8Array;
  const buf = (x: string | Uint8Array): string | Buffer => (typeof x === 'string' ? x : Buffer.isBuffer(x) ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  if (one(v)) return buf(v);
  if (Array.isArray(v) && v.length > 0 && v.every(one)) return v.map(buf);
  throw typeError(field, 'a PEM string, a Buffer, or an array of them', v);
}

const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
const COMMON_TLS = ['key', 'cert', 'ca', 'pfx', 'passphrase', 'ciphers', 'minVersion', 'maxVersion', 'rejectUnauthorized'] as const;

function commonTls(o: ReadOptions<(typeof COMMON_TLS)[number]>): tls.SecureContextOptions & { rejectUnauthorized?: boolean } {
  const out: tls.SecureContextOptions & { rejectUnauthorized?: boolean } = {};
  const key = material(o.key, 'tls.key');
  if (key !== undefined) out.key = key;
  const cert = material(o.cert, 'tls.cert');
  if (cert !== undefined) out.cert = cert;
  const ca = material(o.ca, 'tls.ca');
  if (ca !== undefined) out.ca = ca;
  const pfx = material(o.pfx, 'tls.pfx');
  if (pfx !== undefined) out.pfx = pfx;
  if (o.passphrase !== undefined) out.passphrase = stringOption(o.passphrase, 'tls.passphrase', { allowEmpty: true });
  if (o.ciphers !== undefined) out.ciphers = stringOption(o.ciphers, 'tls.ciphers');
  // RFC 9329 Appendix A allows any TLS; natt asks for 1.2 at least (older versions are deprecated, RFC 8996).
  out.minVersion = oneOf(o.minVersion, 'tls.minVersion', TLS_VERSIONS, 'TLSv1.2');
  if (o.maxVersion !== undefined) out.maxVersion = oneOf(o.maxVersion, 'tls.maxVersion', TLS_VERSIONS);
  if (o.rejectUnauthorized !== undefined) out.rejectUnauthorized = boolOption(o.rejectUnauthorized, 'tls.rejectUnauthorized');
  return out;
}

/** What the listener keeps of its `tls` option: a secure context made once, and the client-certificate policy. */
export interface ServerTls {
  context: tls.SecureContext;
  requestCert: boolean;
  rejectUnauthorized: boolean;
}

/**
 * The listener's `tls`: `{ key, cert }` or `{ pfx }` (and ca, passphrase, ciphers, minVersion, maxVersion,
 * requestCert, rejectUnauthorized). The secure context is made at once, so bad key material throws here.
 */
export function readServerTls(v: unknown): ServerTls | null {
  if (v === undefined) return null;
  const o = readOptions(v, [...COMMON_TLS, 'requestCert'] as const, 'tls');
  const c = commonTls(o);
  if (c.pfx === undefined && (c.key === undefined || c.cert === undefined)) {
    throw typeError(c.key === undefined ? 'tls.key' : 'tls.cert', 'the server key and certificate (or tls.pfx)', c.key === undefined ? o.key : o.cert);
  }
  const requestCert = boolOption(o.requestCert, 'tls.requestCert', false);
  const { rejectUnauthorized, ...ctx } = c;
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext(ctx);
  } catch (e) {
    // OpenSSL's reason ("bad decrypt", "no start line") names no key bytes.
    const err = new TypeError(`option "tls" could not make a TLS context: ${(e as Error).message}`) as TypeError & { code: string };
    err.code = 'ERR_INVALID_ARG_VALUE';
    throw err;
  }
  return { context, requestCert, rejectUnauthorized: rejectUnauthorized ?? requestCert };
}

/** The initiator's `tls`: `true` (system CAs, server name = host) or `{ ca, cert, key, pfx, servername, ... }`. */
export function readClientTls(v: unknown, host: string): tls.ConnectionOptions | null {
  if (v === undefined || v === false) return null;
  const servername = isIP(host) === 0 ? host : undefined;
  if (v === true) return { servername, minVersion: 'TLSv1.2' };
  const o = readOptions(v, [...COMMON_TLS, 'servername', 'checkServerIdentity'] as const, 'tls');
  const out: tls.ConnectionOptions = commonTls(o);
  const name = stringOption(o.servername, 'tls.servername', undefined, servername);
  if (name !== undefined) out.servername = name;
  const check = callbackOption<NonNullable<tls.ConnectionOptions['checkServerIdentity']>>(o.checkServerIdentity, 'tls.checkServerIdentity');
  if (check) out.checkServerIdentity = check;
  return out;
}

export interface ReconnectPolicy {
  minDelay: number;
  maxDelay: number;
  /** Consecutive failed attempts before giving up. */
  attempts: number;
}

/** `reconnect`: `false`, `true` (the defaults) or `{ minDelay, maxDelay, attempts }` (ms; attempts 1..10^6). */
export function readReconnect(v: unknown): ReconnectPolicy | null {
  if (v === false) return null;
  const d = CLIENT_DEFAULTS.reconnect;
  if (v === undefined || v === true) return { ...d };
  const o = readOptions(v, ['minDelay', 'maxDelay', 'attempts'] as const, 'reconnect');
  const minDelay = durationMs(o.minDelay, 'reconnect.minDelay', 0, d.minDelay);
  const maxDelay = durationMs(o.maxDelay, 'reconnect.maxDelay', 0, Math.max(d.maxDelay, minDelay));
  if (maxDelay < minDelay) throw rangeError('reconnect.maxDelay', `at least reconnect.minDelay (${minDelay})`, maxDelay);
  return { minDelay, maxDelay, attempts: intOption(o.attempts, 'reconnect.attempts', 1, 1_000_000, d.attempts) };
}
