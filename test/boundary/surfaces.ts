// The boundary table: one row per public surface of src/index.ts (function, constructor, method, namespace member,
// constant), each with a valid example call; boundary.test.ts throws hostile values at every argument and field.
//
// HOW TO ADD A ROW (a new export, a new method, a new namespace member: boundary.test.ts fails until it has one)
//   - name: 'fn' for a function export; 'new C' for a class's constructor, 'C#m' for a method of its prototype,
//     'C.m' for a static one; 'ns.f' for a function (or value) member of a namespace object; 'NAME' for a constant.
//   - make (optional): build a fresh receiver or fixture for one call (fixtures.ts: withSadb, withPfKey, ...), and
//     dispose to release it; args(r): a VALID argument list, built fresh each call (keys: key(n), so they can be
//     recognised in error messages); run(r, args): make the call with exactly these arguments (call()), await it and
//     drain what it returns (drain()), and release what it created (release()).
//   - options: { at, names }: argument `at` is an options object taking `names` (the test adds unknown names,
//     inherited values and a polluted Object.prototype there).
//   - valid: 'error' when the valid example cannot succeed on every host (it must still end in an allowed error).
//   - known: a finding in an area another branch is changing: `skip(args)` says which inputs show it (they are
//     skipped and counted), `reason` says why, and the row's test title carries it. Remove it once that branch fixed it.
//   - value rows: { name, value } for a constant: it must be frozen all the way down (the library reads it).

import * as dgram from 'node:dgram';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import type { Tun } from '../../src/tun';
import type { Rtnetlink } from '../../src/rtnetlink';
import { EspBatch } from '../../src/esp/batch';
import type { NattTcpListener } from '../../src/tcp';
import { UserlandSadb } from '../../src/userland/sadb';
import { UserlandEngine } from '../../src/userland/engine';
import { newStats } from '../../src/userland/counters';
import { PfKey } from '../../src/pfkey/client';
import { Xfrm } from '../../src/xfrm/client';
import * as api from '../../src/index';
import type { NattSocket } from '../../src/natt/socket';
import type { PolicyEntry } from '../../src/userland/spd';
import type { UserlandSa } from '../../src/userland/sa';
import { memoryPair, type MemoryTransport } from '../lib/memory-transport';
import {
  callOptions,
  canTun,
  drain,
  filledSadb,
  gcmSa,
  openDummy,
  openShared,
  openSharedTcp,
  openSharedTun,
  pfkeyAnswering,
  policy,
  policyRef,
  release,
  sa,
  saId,
  shared,
  sharedTun,
  toLoopback,
  tunName,
  withEngine,
  withPfKey,
  withSadb,
  withXfrm,
  xfrmAnswering,
} from './fixtures';
import { ABSENT, CallerError, TrapError, key } from './values';

export interface Known {
  /** Why this case is skipped: the finding, and which branch owns the code. */
  reason: string;
  /** Which inputs show the finding (they are skipped, and counted). */
  skip: (args: unknown[]) => boolean;
  /** The finding is in the options object: the row's unknown-name and prototype checks are skipped too. */
  options?: true;
}

export interface Surface<R = unknown> {
  name: string;
  make?: () => R | Promise<R>;
  dispose?: (r: R) => unknown;
  args: (r: R) => unknown[];
  run: (r: R, args: unknown[]) => unknown;
  options?: { at: number; names: readonly string[] };
  valid?: 'ok' | 'error';
  known?: Known[];
}

export interface ValueSurface {
  name: string;
  value: () => unknown;
  known?: Known[];
}

/** `obj[method](...args)` with exactly these arguments. */
export function call(obj: object, method: string, args: unknown[]): unknown {
  return Reflect.apply((obj as Record<string, (...a: unknown[]) => unknown>)[method], obj, args);
}

/** A constructor call with exactly these arguments. */
const construct = (C: new (...a: never[]) => unknown, args: unknown[]): unknown => Reflect.construct(C, args);

const row = <R>(s: Surface<R>): Surface => s as Surface;

/** The shared socket's port (rows that send use it, so every datagram goes back to the socket itself). */
const ownPort = (): number => shared.socket!.address().port;

/**
 * A caller's callback that natt calls later (a send's completion, close's), tamed: what it throws is the caller's own
 * and would be an uncaught exception of the caller's program, not natt's; the test only checks natt's own behaviour.
 */
function tame(f: unknown): unknown {
  if (typeof f !== 'function') return f;
  return (...args: unknown[]) => {
    try {
      Reflect.apply(f, undefined, args);
    } catch (e) {
      if (!(e instanceof CallerError) && !(e instanceof TrapError)) throw e;
    }
  };
}

/** Is `v` a plain object holding no own 'port' (the default port would be bound: 4500 or 500, maybe in use here)? */
function withoutPort(v: unknown): boolean {
  try {
    if (v === null || typeof v !== 'object' || Object.getPrototypeOf(v) !== Object.prototype) return false;
    const d = Object.getOwnPropertyDescriptor(v, 'port');
    return d === undefined || ('value' in d && d.value === undefined);
  } catch {
    return false; // a Proxy: it goes in as it is
  }
}

/** A copy of a plain object with `port: 0` (getters copied as getters, never called). */
function portZero(v: object): object {
  return Object.defineProperties({}, { ...Object.getOwnPropertyDescriptors(v), port: { value: 0, enumerable: true, writable: true, configurable: true } });
}

const setkeyText = (): string =>
  `add 192.0.2.1 192.0.2.2 esp 0x1000 -m tunnel -E aes-cbc 0x${'c7'.repeat(16)} -A hmac-sha1 0x${'c7'.repeat(20)} ;\n` +
  'spdadd 10.1.0.0/16 10.2.0.0/16 any -P out ipsec esp/tunnel/192.0.2.1-192.0.2.2/require ;\n';

const ipPacket = (): Buffer => {
  // 10.1.0.5 → 10.2.0.7, UDP 1 → 2, 'x' (checksums do not matter to the engine's outbound path).
  const b = Buffer.alloc(29);
  b[0] = 0x45;
  b.writeUInt16BE(29, 2);
  b[8] = 64;
  b[9] = 17;
  Buffer.from([10, 1, 0, 5, 10, 2, 0, 7]).copy(b, 12);
  b.writeUInt16BE(1, 20);
  b.writeUInt16BE(2, 22);
  b.writeUInt16BE(9, 24);
  b[28] = 0x78;
  return b;
};

const pfkeyMessage = () => ({
  type: 3,
  satype: 3,
  seq: 1,
  pid: 7,
  extensions: [
    { name: 'sa', spi: 0x1234, replay: 32, state: 1, auth: 3, encrypt: 12, flags: 0 },
    { name: 'src', proto: 255, prefixlen: 32, addr: { family: 'inet', address: '192.0.2.1', port: 0 } },
    { name: 'dst', proto: 255, prefixlen: 32, addr: { family: 'inet', address: '192.0.2.2', port: 0 } },
    { name: 'keyEncrypt', bits: 128, key: key(16) },
    { name: 'keyAuth', bits: 160, key: key(20) },
    { name: 'nattType', type: 2 },
    { name: 'nattSport', port: 4500 },
    { name: 'nattDport', port: 4500 },
  ],
});

const xfrmMessage = () => ({
  type: 'newsa',
  seq: 1,
  flags: 5,
  sa: {
    sel: { daddr: '10.2.0.0', saddr: '10.1.0.0', dport: 0, dportMask: 0, sport: 0, sportMask: 0, family: 2, prefixlenD: 16, prefixlenS: 16, proto: 0, ifindex: 0, user: 0 },
    id: { daddr: '192.0.2.2', spi: 0x1234, proto: 50 },
    saddr: '192.0.2.1',
    lft: { softByteLimit: 2n ** 64n - 1n, hardByteLimit: 2n ** 64n - 1n, softPacketLimit: 2n ** 64n - 1n, hardPacketLimit: 2n ** 64n - 1n, softAddExpiresSeconds: 0n, hardAddExpiresSeconds: 0n, softUseExpiresSeconds: 0n, hardUseExpiresSeconds: 0n },
    curlft: { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n },
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
    seq: 0,
    reqid: 1,
    family: 2,
    mode: 1,
    replayWindow: 32,
    flags: 0,
  },
  attrs: [
    { kind: 'algAead', name: 'rfc4106(gcm(aes))', keyBits: 160, icvBits: 128, key: key(20) },
    { kind: 'encap', encapType: 2, sport: 4500, dport: 4500, oa: '0.0.0.0' },
  ],
});

const natdV2 = () => ({
  local: { address: '192.0.2.1', port: 500 },
  remote: { address: '198.51.100.7', port: 500 },
  spiI: Buffer.alloc(8, 1),
  spiR: 0n,
  sourceHashes: [Buffer.alloc(20, 2)],
  destinationHash: Buffer.alloc(20, 3),
});

/** Rows over every method of a Sadb (the userland database, and the kernel clients over scripted transports). */
function sadbRows<R extends object>(cls: string, make: () => Promise<R>, dispose: (r: R) => unknown, failing: readonly string[] = []): Surface[] {
  const m = (name: string, args: () => unknown[]): Surface =>
    row<R>({ name: `${cls}#${name}`, make, dispose, args, run: (r, a) => drain(call(r, name, a)), valid: failing.includes(name) ? 'error' : 'ok' });
  return [
    m('add', () => [{ ...sa(), spi: 0x5678 }, callOptions()]),
    m('update', () => [sa(), callOptions()]),
    m('get', () => [saId(), callOptions()]),
    m('delete', () => [saId(), callOptions()]),
    m('deleteAll', () => [{ src: '192.0.2.1', dst: '192.0.2.2', protocol: 'esp' }, callOptions()]),
    m('flush', () => ['esp', callOptions()]),
    m('dump', () => ['esp', callOptions()]),
    m('getSpi', () => [{ src: '192.0.2.1', dst: '192.0.2.2', protocol: 'esp', min: 0x100, max: 0x200, mode: 'tunnel', reqid: 1, seq: 1 }, callOptions()]),
    m('register', () => ['esp', callOptions()]),
    m('spdAdd', () => [{ ...policy(), selector: { src: '10.3.0.0/16', dst: '10.4.0.0/16' } }, callOptions()]),
    m('spdUpdate', () => [policy(), callOptions()]),
    m('spdDelete', () => [policyRef(), callOptions()]),
    m('spdGet', () => [policyRef(), callOptions()]),
    m('spdDump', () => [callOptions()]),
    m('spdFlush', () => [callOptions()]),
    m('stats', () => []),
    m('close', () => []),
  ];
}

const closeSocket = (s: NattSocket | dgram.Socket): Promise<void> =>
  new Promise((res) => {
    try {
      s.close(() => res());
    } catch {
      res();
    }
  });

// The capture rows' own files (removed at the end: releaseCaptureFixtures), and whether a packet socket can open here.
const isRoot = process.getuid?.() === 0;
const captureDir = mkdtempSync(join(tmpdir(), 'natt-boundary-'));
const captureFile = join(captureDir, 'capture.pcapng');
const espSaFile = join(captureDir, 'esp_sa');
let devNull = -1;

export const SURFACES: Surface[] = [
  // ---- the NAT-T socket (src/natt: branch ike) ----
  row<void>({
    name: 'createNattSocket',
    args: () => [{ family: 4, address: '127.0.0.1', port: 0, encap: 'espinudp', backend: 'userland', zeroChecksum: false }],
    options: { at: 0, names: ['family', 'address', 'port', 'encap', 'backend', 'zeroChecksum', 'gso', 'gro'] },
    run: async (_, a) => {
      // Never the default port (4500/500 may be in use on this shared host): an options object without one gets 0.
      const args = withoutPort(a[0]) ? [portZero(a[0] as object), ...a.slice(1)] : a;
      await release(await Reflect.apply(api.createNattSocket, undefined, args));
    },
  }),
  // An internal constructor: a caller's `new` is refused (src/core/internal.ts), whatever the arguments.
  row<void>({ name: 'new NattSocket', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.NattSocket, a) }),
  ...(['sendIke', 'sendKeepalive', 'sendEsp'] as const).map((m) =>
    row<NattSocket>({
      name: `NattSocket#${m}`,
      make: () => openShared(),
      args: () => [...(m === 'sendKeepalive' ? [] : [m === 'sendIke' ? Buffer.from('ike message') : Buffer.alloc(24, 1)]), ownPort(), '127.0.0.1', () => undefined],
      run: (s, a) => {
        const at = m === 'sendKeepalive' ? 0 : 1;
        const args = [...a];
        [args[at + 1], args[at]] = toLoopback(args[at + 1], args[at], ownPort());
        args[at + 2] = tame(args[at + 2]);
        call(s, m, args);
      },
    }),
  ),
  row<NattSocket>({
    name: 'NattSocket#sendEspBatch',
    make: () => openShared(),
    args: () => [{ count: 1, packets: [Buffer.alloc(24, 1)], ports: [ownPort()], addresses: ['127.0.0.1'] }],
    run: (s, a) => {
      const b = a[0] as { count: unknown; packets: unknown; ports: unknown[]; addresses: unknown[] };
      // Only the valid shape is rewritten to loopback; a hostile batch goes in as it is (it never names a real peer).
      if (b !== null && typeof b === 'object' && Object.getPrototypeOf(b) === Object.prototype && Array.isArray(b.ports) && Array.isArray(b.addresses)) {
        const ports = b.ports.map((p) => toLoopback('127.0.0.1', p, ownPort())[1]);
        const addresses = b.addresses.map((x) => toLoopback(x, 1, ownPort())[0]);
        call(s, 'sendEspBatch', [{ ...b, ports, addresses }, ...a.slice(1)]);
      } else call(s, 'sendEspBatch', a);
    },
    known: [
      {
        reason: 'sendEspBatch reads the batch unchecked: a hostile batch is an internal error (src/natt/socket.ts: branch ike)',
        skip: (a) => {
          const b = a[0] as Record<string, unknown> | null;
          if (!isPlainData(b)) return true;
          const { packets, ports, addresses, count } = b as Record<string, unknown>;
          return !Array.isArray(packets) || !Array.isArray(ports) || !Array.isArray(addresses) || count !== 1 || !(packets[0] instanceof Uint8Array);
        },
      },
    ],
  }),
  ...(['address', 'kernelEncapType', 'stats', 'ref', 'unref'] as const).map((m) =>
    row<NattSocket>({ name: `NattSocket#${m}`, make: () => openShared(), args: () => [], run: (s, a) => void call(s, m, a) }),
  ),
  row<NattSocket>({
    name: 'NattSocket#close',
    make: () => api.createNattSocket({ address: '127.0.0.1', port: 0, backend: 'userland' }),
    dispose: (s) => closeSocket(s),
    args: () => [() => undefined],
    run: (s, a) => void call(s, 'close', [tame(a[0]), ...a.slice(1)]),
  }),
  row<void>({
    name: 'classify',
    args: () => [Buffer.from([0, 0, 0, 0, 1]), 'espinudp'],
    run: (_, a) => void Reflect.apply(api.classify, undefined, a),
  }),

  // ---- host facts ----
  row<void>({ name: 'probe', args: () => [], run: (_, a) => void Reflect.apply(api.probe, undefined, a) }),
  row<void>({ name: 'kernelEspSupport', args: () => [], run: (_, a) => void Reflect.apply(api.kernelEspSupport, undefined, a) }),
  row<void>({ name: 'chooseSadbBackend', args: () => [], run: (_, a) => void Reflect.apply(api.chooseSadbBackend, undefined, a) }),
  row<void>({
    name: 'probeXfrm',
    args: () => [{ askKernel: false, timeout: 500 }],
    options: { at: 0, names: ['askKernel', 'timeout'] },
    run: (_, a) => Reflect.apply(api.probeXfrm, undefined, a),
  }),

  // ---- the SA database selector ----
  row<void>({
    name: 'openSadb',
    args: () => [{ backend: 'userland', dialect: 'linux', revealKeys: false, timeout: 1000 }],
    options: { at: 0, names: ['backend', 'dialect', 'revealKeys', 'timeout'] },
    run: async (_, a) => release(await Reflect.apply(api.openSadb, undefined, a)),
  }),

  // ---- errors ----
  row<void>({ name: 'errnoName', args: () => [1], run: (_, a) => void Reflect.apply(api.errnoName, undefined, a) }),
  row<void>({ name: 'errnoNumber', args: () => ['EPERM'], run: (_, a) => void Reflect.apply(api.errnoNumber, undefined, a) }),
  row<void>({ name: 'new NattError', args: () => ['ERR_TEST', 'a message', { cause: new Error('the cause') }], run: (_, a) => void construct(api.NattError, a) }),
  row<void>({ name: 'new NattSystemError', args: () => [1, 'bind', 'run as root', { port: 4500 }], run: (_, a) => void construct(api.NattSystemError, a) }),
  row<void>({ name: 'new KernelReplyError', args: () => [17, 'SADB_ADD', 'delete it first'], run: (_, a) => void construct(api.KernelReplyError, a) }),
  row<void>({ name: 'new NattTimeoutError', args: () => ['SADB_ADD', 5000], run: (_, a) => void construct(api.NattTimeoutError, a) }),
  row<void>({ name: 'new NattUnsupportedError', args: () => ['not here'], run: (_, a) => void construct(api.NattUnsupportedError, a) }),
  row<void>({ name: 'new PfKeyDecodeError', args: () => [8, 'a rule'], run: (_, a) => void construct(api.PfKeyDecodeError, a) }),
  row<void>({ name: 'new XfrmDecodeError', args: () => [8, 'a rule'], run: (_, a) => void construct(api.XfrmDecodeError, a) }),
  row<void>({
    name: 'new EspSequenceExhaustedError',
    args: () => [0x1234, false],
    run: (_, a) => void construct(api.EspSequenceExhaustedError, a),
    known: [{ reason: 'the constructor formats its spi unchecked (src/esp/transform.ts: branch cipher)', skip: (a) => typeof a[0] !== 'number' }],
  }),
  row<void>({
    name: 'new SetkeyParseError',
    args: () => [{ file: 'x.conf', line: 1, column: 2 }, 'a reason', 'what was expected', 'what was found'],
    run: (_, a) => void construct(api.SetkeyParseError, a),
  }),
  row<void>({
    name: 'new SetkeyUnsupportedError',
    args: () => [[{ at: { file: 'x.conf', line: 1, column: 2 }, feature: '-ctx', reason: 'no labels here' }], 'userland'],
    run: (_, a) => void construct(api.SetkeyUnsupportedError, a),
  }),

  // ---- key hygiene ----
  ...(['hideKey', 'hideSaKeys', 'withoutKeys'] as const).map((f) =>
    row<void>({
      name: f,
      args: () => [f === 'hideKey' ? { algorithm: 'aes-cbc', key: key(16) } : sa()],
      run: (_, a) => void Reflect.apply(api[f], undefined, a),
      known: [
        {
          reason: `${f}() reads its argument unchecked: anything but an object is an internal error (src/sadb/keys.ts: branch keys)`,
          skip: (a) => {
            const v = a[0] as Record<string, unknown>;
            if (!isPlainData(v)) return true;
            const obj = (x: unknown) => x === undefined || (x !== null && typeof x === 'object');
            return f === 'hideKey' ? false : !obj(v.encryption) || !obj(v.integrity);
          },
        },
      ],
    }),
  ),

  // ---- ESP (src/esp: EspTransform is being reworked on branch cipher) ----
  row<void>({
    name: 'new EspTransform',
    args: () => [
      {
        spi: 0x1234,
        encryption: { algorithm: 'aes-cbc', key: key(16) },
        integrity: { algorithm: 'hmac-sha1-96', key: key(20) },
        esn: false,
        replayWindow: 64,
        outboundSeq: 0,
        allowNoIntegrity: false,
      },
    ],
    options: { at: 0, names: ['spi', 'encryption', 'integrity', 'esn', 'replayWindow', 'outboundSeq', 'allowNoIntegrity'] },
    run: (_, a) => void construct(api.EspTransform, a),
  }),
  ...(['seal', 'open', 'sealedLength', 'stats'] as const).map((m) =>
    row<InstanceType<typeof api.EspTransform>>({
      name: `EspTransform#${m}`,
      make: () => new api.EspTransform({ spi: 0x1234, encryption: { algorithm: 'aes-cbc', key: key(16) }, integrity: { algorithm: 'hmac-sha1-96', key: key(20) } }),
      args: (t) =>
        m === 'seal'
          ? [Buffer.from('a payload'), 4, { iv: Buffer.alloc(16, 1), seq: 5, padLength: 5, into: Buffer.alloc(256), offset: 3 }]
          : m === 'open'
            ? [t.seal(Buffer.from('a payload'), 4)]
            : m === 'sealedLength'
              ? [100]
              : [],
      options: m === 'seal' ? { at: 2, names: ['iv', 'seq', 'padLength', 'into', 'offset'] } : undefined,
      run: (t, a) => void call(t, m, a),
      known:
        m === 'seal'
            ? [
                {
                  reason: 'seal() checks nextHeader and its options unchecked: a Symbol is an internal error, options are read from the prototype (src/esp/transform.ts: branch cipher)',
                  skip: (a) => typeof a[1] !== 'number' || !isPlainSealOptions(a[2]),
                  options: true,
                },
              ]
            : undefined,
    }),
  ),
  row<void>({ name: 'new ReplayWindow', args: () => [{ size: 64, esn: false }], options: { at: 0, names: ['size', 'esn'] }, run: (_, a) => void construct(api.ReplayWindow, a) }),
  ...(
    [
      ['check', () => [5]],
      ['commit', () => [5, 0]],
      ['reset', () => [3]],
    ] as const
  ).map(([m, args]) =>
    row<InstanceType<typeof api.ReplayWindow>>({
      name: `ReplayWindow#${m}`,
      make: () => new api.ReplayWindow({ size: 64 }),
      args: () => [...args()],
      run: (w, a) => void call(w, m, a),
    }),
  ),

  // ---- the userland database and engine ----
  row<void>({
    name: 'new UserlandSadb',
    args: () => [{ revealKeys: false, acquireSeconds: 30, larvalSeconds: 30 }],
    options: { at: 0, names: ['revealKeys', 'acquireSeconds', 'larvalSeconds'] },
    run: async (_, a) => release(construct(UserlandSadb, a)),
  }),
  ...sadbRows('UserlandSadb', filledSadb, (db) => db.close()),
  row<UserlandSadb>({
    name: 'UserlandSadb#addStatsSource',
    make: filledSadb,
    dispose: (db) => db.close(),
    args: () => [() => newStats()],
    run: (db, a) => {
      const off = call(db, 'addStatsSource', a);
      db.stats(); // the source is called here: what it gave must have been checked when it was added
      if (typeof off === 'function') off();
    },
  }),
  row<UserlandSadb>({ name: 'UserlandSadb#bySpi', make: filledSadb, dispose: (db) => db.close(), args: () => [0x1234], run: (db, a) => void call(db, 'bySpi', a) }),
  row<UserlandSadb>({ name: 'UserlandSadb#entries', make: filledSadb, dispose: (db) => db.close(), args: () => [], run: (db, a) => void [...(call(db, 'entries', a) as Iterable<unknown>)] }),
  row<UserlandSadb>({
    name: 'UserlandSadb#acquire',
    make: filledSadb,
    dispose: (db) => db.close(),
    args: (db) => [db.policies.all()[0] as PolicyEntry, '10.1.0.5', '10.2.0.7'],
    run: (db, a) => void call(db, 'acquire', a),
  }),
  row<UserlandSadb>({
    name: 'UserlandSadb#newMapping',
    make: filledSadb,
    dispose: (db) => db.close(),
    args: (db) => [db.bySpi(0x1234)![0] as UserlandSa, '192.0.2.9', 4501],
    run: (db, a) => void call(db, 'newMapping', a),
  }),
  row<{ t: MemoryTransport; db: UserlandSadb }>({
    name: 'new UserlandEngine',
    make: () => ({ t: memoryPair({ address: '192.0.2.1', port: 4500 }, { address: '192.0.2.2', port: 4500 })[0], db: new UserlandSadb() }),
    dispose: (r) => r.db.close(),
    args: (r) => [{ socket: r.t, sadb: r.db, keepaliveSeconds: 20 }],
    options: { at: 0, names: ['socket', 'sadb', 'keepaliveSeconds'] },
    run: async (_, a) => release(construct(UserlandEngine, a)),
  }),
  ...(
    [
      ['send', () => [ipPacket()]],
      ['receive', () => [Buffer.alloc(40, 1), { address: '192.0.2.2', port: 4500 }]],
      ['stats', () => []],
      ['traffic', () => []],
      ['close', () => []],
    ] as const
  ).map(([m, args]) =>
    row<void>({ name: `UserlandEngine#${m}`, args: () => [...args()], run: (_, a) => withEngine((e) => void call(e, m, a)) }),
  ),
  row<void>({
    name: 'formatStats',
    args: () => [newStats()],
    run: (_, a) => void Reflect.apply(api.formatStats, undefined, a),
  }),

  // ---- the kernel clients, over scripted transports that answer every request ----
  row<void>({
    name: 'new PfKey',
    args: () => [{ dialect: 'linux', revealKeys: false, timeout: 500, transport: pfkeyAnswering().transport }],
    options: { at: 0, names: ['dialect', 'revealKeys', 'timeout', 'transport'] },
    valid: 'ok',
    run: async (_, a) => release(construct(PfKey, a)),
  }),
  // The scripted kernels answer with an echo or an ACK and hold nothing: what must find something ends in ESRCH/ENOENT.
  ...sadbRows<PfKey>('PfKey', async () => new PfKey({ dialect: 'linux', transport: pfkeyAnswering().transport, timeout: 500 }), (p) => p.close(), ['getSpi', 'spdGet']),
  row<void>({ name: 'PfKey#promisc', args: () => [true, callOptions()], run: (_, a) => withPfKey((p) => call(p, 'promisc', a)) }),
  row<void>({ name: 'PfKey#send', args: () => [{ type: 9, satype: 3, extensions: [] }, callOptions()], run: (_, a) => withPfKey((p) => call(p, 'send', a)) }),
  row<void>({
    name: 'Xfrm.open',
    args: () => [{ revealKeys: false, timeout: 500, groups: [1, 2], transport: xfrmAnswering().transport }],
    options: { at: 0, names: ['revealKeys', 'timeout', 'groups', 'transport'] },
    run: async (_, a) => release(await Reflect.apply(Xfrm.open, Xfrm, a)),
  }),
  row<void>({
    name: 'new Xfrm',
    args: () => [{ revealKeys: false, timeout: 500, groups: [1, 2], transport: xfrmAnswering().transport }],
    options: { at: 0, names: ['revealKeys', 'timeout', 'groups', 'transport'] },
    run: async (_, a) => release(construct(Xfrm as unknown as new (...a: never[]) => unknown, a)),
  }),
  ...sadbRows<Xfrm>('Xfrm', () => Xfrm.open({ transport: xfrmAnswering().transport, timeout: 500 }), (x) => x.close(), ['get', 'getSpi', 'spdAdd', 'spdUpdate', 'spdGet']),
  row<void>({ name: 'Xfrm#sadInfo', args: () => [callOptions()], valid: 'error', run: (_, a) => withXfrm((x) => call(x, 'sadInfo', a)) }),
  row<void>({ name: 'Xfrm#raw', args: () => [{ type: 'flushsa', proto: 50, attrs: [] }, -1, callOptions()], run: (_, a) => withXfrm((x) => call(x, 'raw', a)) }),

  // ---- the codecs ----
  row<void>({ name: 'pfkey.encode', args: () => [pfkeyMessage(), 'linux', Buffer.alloc(400), 4], run: (_, a) => void Reflect.apply(api.pfkey.encode, undefined, a) }),
  row<void>({ name: 'pfkey.encodingLength', args: () => [pfkeyMessage(), 'netbsd'], run: (_, a) => void Reflect.apply(api.pfkey.encodingLength, undefined, a) }),
  row<void>({ name: 'pfkey.decode', args: () => [api.pfkey.encode(pfkeyMessage() as never, 'freebsd'), 'freebsd'], run: (_, a) => void Reflect.apply(api.pfkey.decode, undefined, a) }),
  row<void>({ name: 'pfkey.findExt', args: () => [pfkeyMessage(), 'sa'], run: (_, a) => void Reflect.apply(api.pfkey.findExt, undefined, a) }),
  row<void>({ name: 'pfkey.defaultDialect', args: () => [], run: (_, a) => void Reflect.apply(api.pfkey.defaultDialect, undefined, a) }),
  row<void>({ name: 'pfkey.messageName', args: () => [3, api.pfkey.dialects.linux], run: (_, a) => void Reflect.apply(api.pfkey.messageName, undefined, a) }),
  row<void>({ name: 'xfrm.constants.messageTypeName', args: () => [16], run: (_, a) => void Reflect.apply(api.xfrm.constants.messageTypeName, undefined, a) }),
  row<void>({ name: 'xfrm.constants.attributeName', args: () => [2], run: (_, a) => void Reflect.apply(api.xfrm.constants.attributeName, undefined, a) }),
  row<void>({ name: 'xfrm.encode', args: () => [[xfrmMessage()], Buffer.alloc(600), 8], run: (_, a) => void Reflect.apply(api.xfrm.encode, undefined, a) }),
  row<void>({ name: 'xfrm.encodingLength', args: () => [xfrmMessage()], run: (_, a) => void Reflect.apply(api.xfrm.encodingLength, undefined, a) }),
  row<void>({ name: 'xfrm.decode', args: () => [api.xfrm.encode(xfrmMessage() as never)], run: (_, a) => void Reflect.apply(api.xfrm.decode, undefined, a) }),
  row<void>({ name: 'xfrm.findAttr', args: () => [xfrmMessage().attrs, 'encap'], run: (_, a) => void Reflect.apply(api.xfrm.findAttr, undefined, a) }),
  row<void>({ name: 'natd.ikev2Hash', args: () => [Buffer.alloc(8, 1), 0n, '192.0.2.1', 500], run: (_, a) => void Reflect.apply(api.natd.ikev2Hash, undefined, a) }),
  row<void>({ name: 'natd.ikev1Hash', args: () => ['sha256', Buffer.alloc(8, 1), Buffer.alloc(8, 2), '2001:db8::1', 4500], run: (_, a) => void Reflect.apply(api.natd.ikev1Hash, undefined, a) }),
  row<void>({
    name: 'natd.detect',
    args: () => [natdV2()],
    options: { at: 0, names: ['local', 'remote', 'spiI', 'spiR', 'sourceHashes', 'destinationHash'] },
    run: (_, a) => void Reflect.apply(api.natd.detect, undefined, a),
  }),
  row<void>({
    name: 'natd.detectIkev1',
    args: () => {
      const { spiI, spiR, ...rest } = natdV2();
      return [{ ...rest, hash: 'sha1', cookieI: spiI, cookieR: spiR }];
    },
    options: { at: 0, names: ['hash', 'local', 'remote', 'cookieI', 'cookieR', 'sourceHashes', 'destinationHash'] },
    run: (_, a) => void Reflect.apply(api.natd.detectIkev1, undefined, a),
  }),

  // ---- setkey ----
  row<void>({
    name: 'parseSetkey',
    args: () => [setkeyText(), { file: 'x.conf', platform: 'userland', semantics: 'kernel', family: 4 }],
    options: { at: 1, names: ['file', 'platform', 'semantics', 'family'] },
    run: (_, a) => void Reflect.apply(api.parseSetkey, undefined, a),
  }),
  row<UserlandSadb>({
    name: 'applySetkey',
    make: () => new UserlandSadb(),
    dispose: (db) => db.close(),
    args: (db) => [api.parseSetkey(setkeyText(), { platform: 'userland' }), db, { revealKeys: false, stopOnError: false, platform: 'userland', timeout: 1000, signal: new AbortController().signal, onOp: () => undefined, now: 0, pid: 1 }],
    options: { at: 2, names: ['revealKeys', 'stopOnError', 'platform', 'timeout', 'signal', 'onOp', 'now', 'pid'] },
    run: (_, a) => Reflect.apply(api.applySetkey, undefined, a),
  }),
  row<void>({
    name: 'formatSadDump',
    args: () => [[{ ...sa(), state: 'mature', current: { bytes: 1, packets: 1, addTime: 1_700_000_000, useTime: 0 } }], { revealKeys: false, all: true, now: 1_700_000_100, pid: 1 }],
    options: { at: 1, names: ['revealKeys', 'all', 'now', 'pid'] },
    run: (_, a) => void Reflect.apply(api.formatSadDump, undefined, a),
  }),
  row<void>({
    name: 'formatSpdDump',
    args: () => [[{ ...policy(), id: 9, current: { addTime: 1_700_000_000, useTime: 0 } }], { now: 1_700_000_100, pid: 1 }],
    options: { at: 1, names: ['now', 'pid'] },
    run: (_, a) => void Reflect.apply(api.formatSpdDump, undefined, a),
  }),
  row<void>({
    name: 'toSetkey',
    args: () => [[sa(), gcmSa()], [policy()], { revealKeys: false, platform: 'any' }],
    options: { at: 2, names: ['revealKeys', 'platform'] },
    run: (_, a) => void Reflect.apply(api.toSetkey, undefined, a),
  }),

  // ---- merged later: the IKE sockets and the float rule (src/ike) ----
  row<void>({
    name: 'createIkeSockets',
    args: () => [{ family: 4, address: '127.0.0.1', port: 0, nattPort: 0, backend: 'userland', bypass: false, zeroChecksum: false }],
    options: { at: 0, names: ['family', 'address', 'port', 'nattPort', 'backend', 'bypass', 'zeroChecksum'] },
    run: async (_, a) => release(await Reflect.apply(api.createIkeSockets, undefined, [ephemeralPorts(a[0], ['port', 'nattPort']), ...a.slice(1)])),
  }),
  row<void>({ name: 'new IkeSockets', args: () => [{}, {}], valid: 'error', run: (_, a) => void construct(api.IkeSockets, a) }),
  ...(
    [
      ['socket', () => ['natt']],
      ['sendIke', () => [Buffer.from('ike'), { via: 'natt', port: 1, address: '127.0.0.1', localAddress: '127.0.0.1', callback: () => undefined }]],
      ['reply', () => [Buffer.from('ike'), { address: '127.0.0.1', family: 'IPv4', port: 1, size: 3 }, 'plain', () => undefined]],
      ['close', () => [() => undefined]],
      ['ref', () => []],
      ['unref', () => []],
    ] as const
  ).map(([m, args]) =>
    row<InstanceType<typeof api.IkeSockets>>({
      name: `IkeSockets#${m}`,
      make: () => api.createIkeSockets({ address: '127.0.0.1', port: 0, nattPort: 0, backend: 'userland' }),
      dispose: (s) => release(s),
      args: () => [...args()],
      run: (s, a) => {
        const own = s.socket('natt').address().port;
        const args = a.map((x) => (typeof x === 'function' ? tame(x) : x));
        if (m === 'sendIke' || m === 'reply') args[1] = loopbackEndpoint(args[1], own, 'callback');
        call(s, m, args);
      },
    }),
  ),
  row<void>({ name: 'decideFloat', args: () => [{ localBehindNat: true, remoteBehindNat: false }], run: (_, a) => void Reflect.apply(api.decideFloat, undefined, a) }),
  row<void>({
    name: 'natdPayloads',
    args: () => [{ spiI: Buffer.alloc(8, 1), spiR: 0n, local: [{ address: '192.0.2.1', port: 500 }], remote: { address: '198.51.100.7', port: 500 }, forceEncapsulation: false }],
    options: { at: 0, names: ['spiI', 'spiR', 'local', 'remote', 'forceEncapsulation'] },
    run: (_, a) => void Reflect.apply(api.natdPayloads, undefined, a),
  }),
  ...(['keepalive', 'stopKeepalive'] as const).map((m) =>
    row<NattSocket>({
      name: `NattSocket#${m}`,
      make: () => openShared(),
      args: () => [1, '127.0.0.1', ...(m === 'keepalive' ? [20] : [])],
      run: (s, a) => {
        const args = [...a];
        [args[1], args[0]] = toLoopback(args[1], args[0], ownPort());
        call(s, m, args);
        s.stopKeepalive(ownPort(), '127.0.0.1');
      },
    }),
  ),

  // ---- merged later: batches and the native cipher (src/esp, src/fastpath) ----
  row<void>({
    name: 'createEspTransform',
    args: () => [
      { spi: 0x1234, encryption: { algorithm: 'aes-gcm-16', key: key(20) }, esn: false, replayWindow: 64, outboundSeq: 0, allowNoIntegrity: false, cipher: 'auto' },
    ],
    options: { at: 0, names: ['spi', 'encryption', 'integrity', 'esn', 'replayWindow', 'outboundSeq', 'allowNoIntegrity', 'cipher'] },
    run: (_, a) => {
      const t = Reflect.apply(api.createEspTransform, undefined, a) as { dispose(): void };
      t.dispose();
    },
  }),
  row<void>({ name: 'nativeCipherStatus', args: () => [], run: (_, a) => void Reflect.apply(api.nativeCipherStatus, undefined, a) }),
  ...(['sealBatch', 'openBatch', 'tailroom', 'dispose'] as const).map((m) =>
    row<InstanceType<typeof api.EspTransform>>({
      name: `EspTransform#${m}`,
      make: () => api.createEspTransform({ spi: 0x1234, encryption: { algorithm: 'aes-gcm-16', key: key(20) } }),
      dispose: (t) => t.dispose(),
      args: (t) => (m === 'tailroom' ? [100] : m === 'dispose' ? [] : [m === 'sealBatch' ? payloadBatch(t) : packetBatch(t)]),
      run: (t, a) => void call(t, m, a),
    }),
  ),
  row<void>({
    name: 'new EspBatch',
    args: () => [{ capacity: 4, slabSize: 8192 }],
    options: { at: 0, names: ['capacity', 'slabSize', 'slab'] },
    run: (_, a) => void construct(EspBatch, a),
  }),
  ...(
    [
      ['setPayload', () => [0, 64, 100, 4]],
      ['setPacket', () => [0, 0, 100]],
      ['packet', () => [0]],
      ['ok', () => [0]],
      ['reason', () => [0]],
      ['payload', () => [0]],
      ['nextHeader', () => [0]],
      ['seq', () => [0]],
    ] as const
  ).map(([m, args]) =>
    row<EspBatch>({
      name: `EspBatch#${m}`,
      make: () => new EspBatch({ capacity: 2, slabSize: 4096 }),
      args: () => [...args()],
      run: (b, a) => void call(b, m, a),
    }),
  ),

  // ---- merged later: ESP in TCP (src/tcp), on loopback ----
  row<void>({
    name: 'new FrameDecoder',
    args: () => [{ expectPrefix: true, maxFrameLength: 2048 }],
    options: { at: 0, names: ['expectPrefix', 'maxFrameLength'] },
    run: (_, a) => void construct(api.FrameDecoder, a),
  }),
  ...(
    [
      ['push', () => [Buffer.concat([api.streamPrefix(), api.encodeFrame('ike', Buffer.from('an ike message'))])]],
      ['end', () => []],
      ['stats', () => []],
    ] as const
  ).map(([m, args]) =>
    row<InstanceType<typeof api.FrameDecoder>>({
      name: `FrameDecoder#${m}`,
      make: () => new api.FrameDecoder({ expectPrefix: true }),
      args: () => [...args()],
      run: (d, a) => void call(d, m, a),
    }),
  ),
  row<void>({ name: 'encodeFrame', args: () => ['esp', Buffer.alloc(24, 1), Buffer.alloc(64), 4], run: (_, a) => void Reflect.apply(api.encodeFrame, undefined, a) }),
  row<void>({ name: 'streamPrefix', args: () => [], run: (_, a) => void Reflect.apply(api.streamPrefix, undefined, a) }),
  row<void>({ name: 'espInTcpSupport', args: () => [], run: (_, a) => void Reflect.apply(api.espInTcpSupport, undefined, a) }),
  row<void>({
    name: 'listenNattTcp',
    args: () => [{ family: 4, address: '127.0.0.1', port: 0, maxConnections: 8, backlog: 8, route: 'address', handshakeTimeout: 1000, idleTimeout: 1000, frameTimeout: 1000, maxQueuedBytes: 65536, maxFrameLength: 4096 }],
    options: { at: 0, names: ['family', 'address', 'port', 'tls', 'maxConnections', 'backlog', 'route', 'handshakeTimeout', 'idleTimeout', 'frameTimeout', 'maxQueuedBytes', 'maxFrameLength'] },
    run: async (_, a) => release(await Reflect.apply(api.listenNattTcp, undefined, [ephemeralPorts(a[0], ['port']), ...a.slice(1)])),
  }),
  row<NattTcpListener>({
    name: 'connectNattTcp',
    make: () => openSharedTcp(),
    args: (l) => [{ host: '127.0.0.1', port: l.address().port, family: 4, connectTimeout: 1000, idleTimeout: 1000, frameTimeout: 1000, maxQueuedBytes: 65536, maxFrameLength: 4096 }],
    options: { at: 0, names: ['host', 'port', 'family', 'localAddress', 'tls', 'connectTimeout', 'reconnect', 'idleTimeout', 'frameTimeout', 'maxQueuedBytes', 'maxFrameLength'] },
    run: async (l, a) => release(await Reflect.apply(api.connectNattTcp, undefined, [loopbackEndpoint(a[0], l.address().port, 'none', 'host'), ...a.slice(1)])),
  }),
  row<void>({ name: 'new NattTcpListener', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.NattTcpListener, a) }),
  row<void>({ name: 'new NattTcpClient', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.NattTcpClient, a) }),
  row<void>({ name: 'new NattTcpConnection', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.NattTcpConnection, a) }),
  ...tcpRows('NattTcpListener', async () => ({ t: await api.listenNattTcp({ address: '127.0.0.1', port: 0 }), port: 1 }), [
    ['connectionTo', () => [1, '127.0.0.1']],
    ['connections', () => []],
  ]),
  ...tcpRows('NattTcpClient', async () => {
    const l = await openSharedTcp();
    return { t: await api.connectNattTcp({ host: '127.0.0.1', port: l.address().port }), port: l.address().port };
  }),
  ...tcpRows('NattTcpConnection', async () => {
    const l = await openSharedTcp();
    const c = await api.connectNattTcp({ host: '127.0.0.1', port: l.address().port });
    return { t: (c as unknown as { connection: InstanceType<typeof api.NattTcpConnection> }).connection, port: l.address().port, also: c };
  }, [['destroy', () => ['local']]]),

  // ---- merged later: TUN devices, the tunnel, rtnetlink (root and /dev/net/tun; the rows touch only their own devices) ----
  row<void>({
    name: 'createTun',
    args: () => [
      { name: tunName(), mtu: 1400, addresses: ['198.51.100.1/32'], routes: [], up: false, batch: 16, queue: 64, timeout: 2000, sndbuf: 65536, txQueueLength: 1000, offload: { tso: true, uso: false, gro: true } },
    ],
    options: { at: 0, names: ['name', 'mtu', 'addresses', 'routes', 'up', 'batch', 'queue', 'timeout', 'sndbuf', 'txQueueLength', 'offload'] },
    valid: canTun ? 'ok' : 'error',
    run: async (_, a) => release(await Reflect.apply(api.createTun, undefined, a)),
  }),
  row<void>({ name: 'new Tun', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.Tun, a) }),
  ...(
    [
      ['onPackets', () => [() => undefined]],
      ['write', () => [ipPacket(), 0, 29]],
      ['writeBatch', () => [Buffer.concat([ipPacket(), ipPacket()]), Uint32Array.of(0, 29), Uint32Array.of(29, 29), 2]],
      ['pause', () => []],
      ['resume', () => []],
      ['ref', () => []],
      ['unref', () => []],
      ['stats', () => []],
    ] as const
  ).map(([m, args]) =>
    row<Tun | null>({
      name: `Tun#${m}`,
      make: () => openSharedTun(),
      args: () => [...args()],
      run: (t, a) => {
        if (!t) return; // no TUN on this host (not root, or no /dev/net/tun)
        try {
          call(t, m, a);
        } finally {
          t.onPackets(null);
          t.unref();
        }
      },
    }),
  ),
  row<Tun | null>({
    name: 'Tun#close',
    make: () => (canTun ? api.createTun({ name: tunName(), up: false }) : null),
    dispose: (t) => t?.close(),
    args: () => [],
    run: (t, a) => t && call(t, 'close', a),
  }),
  row<{ tun: Tun | null; db: UserlandSadb }>({
    name: 'createTunnel',
    make: async () => ({ tun: await openSharedTun(), db: new UserlandSadb() }),
    dispose: (r) => r.db.close(),
    args: (r) => [{ tun: r.tun, socket: shared.socket, sadb: r.db, outerMtu: 1500, keepaliveSeconds: 0 }],
    options: { at: 0, names: ['tun', 'socket', 'sadb', 'outerMtu', 'keepaliveSeconds'] },
    valid: canTun ? 'ok' : 'error',
    run: async (_, a) => release(Reflect.apply(api.createTunnel, undefined, a)),
  }),
  row<void>({ name: 'new Tunnel', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.Tunnel, a) }),
  ...(['stats', 'close'] as const).map((m) =>
    row<{ tunnel: InstanceType<typeof api.Tunnel> | null; db: UserlandSadb }>({
      name: `Tunnel#${m}`,
      make: async () => {
        const tun = await openSharedTun();
        const db = new UserlandSadb();
        return { tunnel: tun ? api.createTunnel({ tun, socket: await openShared(), sadb: db, keepaliveSeconds: 0 }) : null, db };
      },
      dispose: (r) => {
        r.tunnel?.close();
        return r.db.close();
      },
      args: () => [],
      run: (r, a) => r.tunnel && void call(r.tunnel, m, a),
    }),
  ),
  row<void>({ name: 'Rtnetlink.open', args: () => [{ timeout: 1000 }], options: { at: 0, names: ['timeout'] }, run: async (_, a) => release(await Reflect.apply(api.Rtnetlink.open, api.Rtnetlink, a)) }),
  row<void>({ name: 'new Rtnetlink', args: () => [1000], valid: 'error', run: (_, a) => void construct(api.Rtnetlink as unknown as new (...a: never[]) => unknown, a) }),
  row<void>({ name: 'new RtnetlinkDecodeError', args: () => [8, 'a rule'], run: (_, a) => void construct(api.RtnetlinkDecodeError, a) }),
  ...rtnetlinkRows(),
  row<void>({ name: 'rtnetlink.encode', args: () => [rtnlLink()], run: (_, a) => void Reflect.apply(api.rtnetlink.encode, undefined, a) }),
  row<void>({ name: 'rtnetlink.decode', args: () => [api.rtnetlink.encode(rtnlLink() as never)], run: (_, a) => void Reflect.apply(api.rtnetlink.decode, undefined, a) }),
  row<void>({
    name: 'rtnetlink.findAttr',
    args: () => [[{ name: 'mtu', value: 1500 }], 'mtu'],
    run: (_, a) => void Reflect.apply(api.rtnetlink.findAttr, undefined, a),
  }),
  row<void>({ name: 'rtnetlink.constants.messageTypeName', args: () => [16], run: (_, a) => void Reflect.apply(api.rtnetlink.constants.messageTypeName, undefined, a) }),

  // ---- merged at the end (branches fastbatch, capture): the batched paths, the pcapng writer, the capture, esp_sa ----
  row<NattSocket>({
    name: 'NattSocket#onEspBatch',
    make: () => openShared(),
    args: () => [() => undefined],
    run: (s, a) => {
      try {
        call(s, 'onEspBatch', a);
      } finally {
        s.onEspBatch(null); // the shared socket's other rows get 'esp' events as before
      }
    },
  }),
  row<NattSocket>({
    name: 'NattSocket#sendEspRun',
    make: () => openShared(),
    // Two packets of 24 bytes, each with ESP_RUN_HEADROOM (8) bytes in front; sent to the socket itself.
    args: () => [Buffer.alloc(64, 1), Uint32Array.of(8, 40), Uint32Array.of(24, 24), 2, ownPort(), '127.0.0.1'],
    run: (s, a) => {
      const args = [...a];
      [args[5], args[4]] = toLoopback(args[5], args[4], ownPort());
      call(s, 'sendEspRun', args);
    },
  }),
  row<void>({ name: 'UserlandEngine#onPackets', args: () => [() => undefined], run: (_, a) => withEngine((e) => void call(e, 'onPackets', a)) }),
  row<void>({
    name: 'UserlandEngine#sendBatch',
    // Two packets in slots of 64 bytes (no headroom lent: they take the one-at-a-time way), over the memory transport.
    args: () => {
      const slab = Buffer.alloc(128);
      ipPacket().copy(slab, 0);
      ipPacket().copy(slab, 64);
      return [slab, Uint32Array.of(29, 29), 2, 64, new Uint8Array(2), 0, new Uint32Array(2)];
    },
    run: (_, a) => withEngine((e) => void call(e, 'sendBatch', a)),
  }),
  row<void>({
    name: 'new PcapngWriter',
    args: () => [() => undefined, { hardware: 'x86_64', os: 'Linux', application: 'natt test', comment: 'a comment' }],
    options: { at: 1, names: ['hardware', 'os', 'application', 'comment'] },
    run: (_, a) => void construct(api.PcapngWriter, [pcapSink(a[0]), ...a.slice(1)]),
  }),
  ...(
    [
      ['addInterface', () => [{ linkType: api.LINKTYPE_RAW, snapLength: 65535, name: 'lo', description: 'loopback' }]],
      ['packet', () => [0, 1_700_000_000, 5, ipPacket(), 29, 'in']],
      ['statistics', () => [0, 1_700_000_000_000_000_000n, { received: 1n, dropped: 0n, osDropped: 0n, delivered: 1n, startNs: 1n, endNs: 2n }]],
      ['close', () => []],
    ] as const
  ).map(([m, args]) =>
    row<InstanceType<typeof api.PcapngWriter>>({
      name: `PcapngWriter#${m}`,
      make: () => {
        const w = new api.PcapngWriter(() => undefined);
        w.addInterface({ linkType: api.LINKTYPE_RAW });
        return w;
      },
      args: () => [...args()],
      options: m === 'addInterface' ? { at: 0, names: ['linkType', 'snapLength', 'name', 'description'] } : m === 'statistics' ? { at: 2, names: ['received', 'dropped', 'osDropped', 'delivered', 'startNs', 'endNs'] } : undefined,
      run: (w, a) => void call(w, m, a),
    }),
  ),
  row<void>({
    name: 'startCapture',
    // Root with CAP_NET_RAW opens the packet socket (loopback only, a port nothing uses, stopped at once); elsewhere the
    // valid example ends in the socket's EPERM and only the checks before it run.
    args: () => [
      { out: captureFile, interface: 'lo', udpPorts: [9], tcpPorts: [9], snapLength: 65535, count: 10, onPacket: () => undefined, onStop: () => undefined, ref: false },
    ],
    options: { at: 0, names: ['out', 'interface', 'udpPorts', 'tcpPorts', 'snapLength', 'count', 'onPacket', 'onStop', 'ref'] },
    valid: isRoot ? 'ok' : 'error',
    run: async (_, a) => {
      const c = Reflect.apply(api.startCapture, undefined, [captureOptions(a[0]), ...a.slice(1)]) as { stop(): Promise<unknown> };
      await c.stop();
    },
  }),
  row<void>({ name: 'espSaTable', args: () => [[sa(), gcmSa()]], run: (_, a) => void Reflect.apply(api.espSaTable, undefined, a) }),
  row<void>({
    name: 'writeEspSaFile',
    args: () => [espSaFile, [sa(), gcmSa()]],
    // Any file name becomes this test's own file (a hostile string never names a file elsewhere).
    run: (_, a) => void Reflect.apply(api.writeEspSaFile, undefined, [typeof a[0] === 'string' ? espSaFile : a[0], ...a.slice(1)]),
  }),

  // ---- merged at the end (branches ike, control, daemonctl): mapping follow, the control socket, DaemonSadb ----
  row<{ db: UserlandSadb; sa: UserlandSa }>({
    name: 'followMapping',
    make: async () => {
      const db = await filledSadb();
      return { db, sa: db.bySpi(0x1234)![0] as UserlandSa };
    },
    dispose: (r) => r.db.close(),
    args: (r) => [r.db, { sa: { src: '192.0.2.1', dst: '192.0.2.2', spi: 0x1234, protocol: 'esp' }, old: { address: '192.0.2.1', port: 4500 }, new: { address: '192.0.2.9', port: 4501 } }],
    run: (_, a) => Reflect.apply(api.followMapping, undefined, a),
  }),
  row<void>({
    name: 'serveControl',
    make: () => undefined,
    args: () => [new UserlandSadb(), { path: controlPath(), mode: 0o600, allowUids: [0], maxClients: 4, maxFrame: 65536, maxRequests: 8, maxQueued: 1 << 20, stallMs: 1000, helloMs: 1000, revealKeys: false }],
    options: { at: 1, names: ['path', 'mode', 'allowUids', 'maxClients', 'maxFrame', 'maxRequests', 'maxQueued', 'stallMs', 'helloMs', 'revealKeys'] },
    run: async (_, a) => {
      // Any absolute path becomes one of this test's own (a hostile path never names a socket elsewhere).
      const o = isPlainOptions(a[1]) ? { ...(a[1] as Record<string, unknown>) } : a[1];
      if (isPlainOptions(o) && typeof (o as { path?: unknown }).path === 'string' && (o as { path: string }).path.startsWith('/')) (o as { path: string }).path = controlPath();
      try {
        await release(await Reflect.apply(api.serveControl, undefined, [a[0], o, ...a.slice(2)]));
      } finally {
        if (a[0] instanceof UserlandSadb) await a[0].close();
      }
    },
  }),
  row<void>({
    name: 'DaemonSadb.open',
    args: () => [{ path: sharedDaemonPath(), timeout: 1000, revealKeys: false, client: 'boundary', maxFrame: 65536 }],
    options: { at: 0, names: ['path', 'timeout', 'revealKeys', 'client', 'maxFrame'] },
    run: async (_, a) => {
      await openSharedDaemon();
      await release(await Reflect.apply(api.DaemonSadb.open, api.DaemonSadb, a));
    },
  }),
  row<void>({ name: 'new DaemonSadb', args: () => [{}], valid: 'error', run: (_, a) => void construct(api.DaemonSadb as unknown as new (...a: never[]) => unknown, a) }),
  ...sadbRows<api.DaemonSadb>('DaemonSadb', openDaemonClient, closeDaemonClient),
  ...(
    [
      ['call', () => ['notAMethod', {}, callOptions()]],
      ['ref', () => []],
      ['unref', () => []],
      ['removeAllListeners', () => ['add']],
    ] as const
  ).map(([m, args]) =>
    row<api.DaemonSadb>({
      name: `DaemonSadb#${m}`,
      make: openDaemonClient,
      dispose: closeDaemonClient,
      args: () => [...args()],
      valid: m === 'call' ? 'error' : 'ok', // this daemon (serveControl over a database) has no methods of its own
      run: (d, a) => drain(call(d, m, a)),
    }),
  ),
  row<void>({ name: 'controlPathFor', args: () => ['natt0'], run: (_, a) => void Reflect.apply(api.controlPathFor, undefined, a) }),
  row<void>({ name: 'new ControlProtocolError', args: () => ['a bad frame'], run: (_, a) => void construct(api.ControlProtocolError, a) }),
  row<void>({ name: 'new ControlFrameError', args: () => [70000, 65536, 'received'], run: (_, a) => void construct(api.ControlFrameError, a) }),
];

// ---- fixtures of the control rows: daemons of this test only, on sockets in its own directory ----

let controlSeq = 0;
const controlPath = (): string => join(captureDir, `c${controlSeq++}.sock`);
const daemons = new WeakMap<object, { server: { close(): Promise<void> }; db: UserlandSadb }>();

/** A fresh daemon (serveControl over a filled userland database) and a DaemonSadb connected to it. */
async function openDaemonClient(): Promise<api.DaemonSadb> {
  const db = await filledSadb();
  const path = controlPath();
  const server = await api.serveControl(db, { path, revealKeys: true });
  const client = await api.DaemonSadb.open({ path, timeout: 1000, revealKeys: true });
  daemons.set(client, { server, db });
  return client;
}

async function closeDaemonClient(c: api.DaemonSadb): Promise<void> {
  await c.close();
  const d = daemons.get(c);
  if (d) {
    await d.server.close();
    await d.db.close();
  }
}

/** The daemon DaemonSadb.open's row connects to (one for the whole file). */
const sharedDaemon: { path: string; server: { close(): Promise<void> } | null; db: UserlandSadb | null } = { path: '', server: null, db: null };
function sharedDaemonPath(): string {
  if (!sharedDaemon.path) sharedDaemon.path = controlPath();
  return sharedDaemon.path;
}
async function openSharedDaemon(): Promise<void> {
  if (sharedDaemon.server) return;
  sharedDaemon.db = await filledSadb();
  sharedDaemon.server = await api.serveControl(sharedDaemon.db, { path: sharedDaemonPath() });
}

// ---- fixtures of the capture rows: this test's own files, never a caller's descriptor ----

/** A sink as the writer row passes it: a descriptor number becomes /dev/null's (never stdout, never a worker's pipe). */
function pcapSink(v: unknown): unknown {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return v;
  if (devNull < 0) devNull = openSync('/dev/null', 'w');
  return devNull;
}

/** Capture options as the row passes them: `out` (a string) becomes this test's own file; the callbacks are tamed. */
function captureOptions(v: unknown): unknown {
  if (!isPlainOptions(v)) return v;
  const o = { ...(v as Record<string, unknown>) };
  if (typeof o.out === 'string') o.out = captureFile;
  for (const f of ['onPacket', 'onStop']) if (Object.hasOwn(o, f)) o[f] = tame(o[f]);
  return o;
}

/** Close the shared daemon, remove the capture and control rows' files (boundary.test.ts calls it at the end). */
export async function releaseCaptureFixtures(): Promise<void> {
  if (sharedDaemon.server) await sharedDaemon.server.close();
  if (sharedDaemon.db) await sharedDaemon.db.close();
  sharedDaemon.server = null;
  sharedDaemon.db = null;
  if (devNull >= 0) closeSync(devNull);
  devNull = -1;
  rmSync(captureDir, { recursive: true, force: true });
}

// ---- helpers of the rows merged later ----

/** A plain options object with each of `ports` it does not set itself set to 0 (never a default port: 500, 4500). */
function ephemeralPorts(v: unknown, ports: readonly string[]): unknown {
  if (!isPlainOptions(v)) return v;
  const d = Object.getOwnPropertyDescriptors(v as object);
  for (const p of ports) {
    if (!Object.hasOwn(d, p) || d[p].value === undefined) d[p] = { value: 0, enumerable: true, writable: true, configurable: true };
  }
  return Object.defineProperties({}, d);
}

/** A plain object whose properties are all data (no getters, no Proxy): the shape the loopback rewrite may copy. */
function isPlainOptions(v: unknown): boolean {
  try {
    return v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype && Object.values(Object.getOwnPropertyDescriptors(v)).every((d) => 'value' in d);
  } catch {
    return false;
  }
}

/**
 * An endpoint object ({ address | host, port, ... }) as the row sends to: a valid IPv4 address becomes 127.0.0.1 and a
 * valid port `own`, so traffic goes back to this test's own socket; `fn` names a callback field to tame; anything not a
 * plain data object goes in as it is.
 */
function loopbackEndpoint(v: unknown, own: number, fn: string, addressField = 'address'): unknown {
  if (!isPlainOptions(v)) return v;
  // Own properties only: an absent field stays absent (a polluted Object.prototype must reach natt as it is).
  const o = { ...(v as Record<string, unknown>) };
  if (Object.hasOwn(o, addressField)) {
    o[addressField] = toLoopback(o[addressField], 1, own)[0];
    if (typeof o[addressField] === 'string' && isIP(o[addressField] as string)) o[addressField] = '127.0.0.1';
  }
  if (Object.hasOwn(o, 'port')) o.port = toLoopback('127.0.0.1', o.port, own)[1];
  if (Object.hasOwn(o, fn)) o[fn] = tame(o[fn]);
  return o;
}

/** A batch with one payload placed with room around it (for sealBatch). */
function payloadBatch(t: InstanceType<typeof api.EspTransform>): EspBatch {
  const b = new EspBatch({ capacity: 2, slabSize: 4096 });
  b.setPayload(0, 64, 100, 4);
  b.count = 1;
  void t;
  return b;
}

/** A batch holding one packet sealed by `t` (for openBatch). */
function packetBatch(t: InstanceType<typeof api.EspTransform>): EspBatch {
  const b = new EspBatch({ capacity: 2, slabSize: 4096 });
  const p = t.seal(Buffer.alloc(100, 1), 4);
  p.copy(b.slab, 0);
  b.setPacket(0, 0, p.length);
  b.count = 1;
  return b;
}

type TcpEnd = { t: object & { close(cb?: () => void): void }; port: number; also?: { close(cb?: () => void): void } };

/** Rows over the sending surface every ESP-in-TCP end shares, plus `extra` methods of its own; peers rewritten to loopback. */
function tcpRows(cls: string, make: () => Promise<TcpEnd>, extra: readonly (readonly [string, () => unknown[]])[] = []): Surface[] {
  const common: (readonly [string, () => unknown[]])[] = [
    ['sendIke', () => [Buffer.from('an ike message'), 1, '127.0.0.1', () => undefined]],
    ['sendEsp', () => [Buffer.alloc(24, 1), 1, '127.0.0.1', () => undefined]],
    ['sendEspBatch', () => [{ count: 1, packets: [Buffer.alloc(24, 1)], ports: [1], addresses: ['127.0.0.1'] }]],
    ['sendKeepalive', () => [1, '127.0.0.1', () => undefined]],
    ['address', () => []],
    ['stats', () => []],
    ['ref', () => []],
    ['unref', () => []],
    ['close', () => [() => undefined]],
  ];
  return [...common, ...extra].map(([m, args]) =>
    row<TcpEnd>({
      name: `${cls}#${m}`,
      make,
      dispose: async (e) => {
        await release(e.t);
        if (e.also) await release(e.also);
      },
      args: () => [...args()],
      run: (e, a) => {
        const args = a.map((x) => (typeof x === 'function' ? tame(x) : x));
        const at = m === 'sendKeepalive' || m === 'connectionTo' ? 0 : 1;
        if (m.startsWith('send') && m !== 'sendEspBatch') [args[at + 1], args[at]] = toLoopback(args[at + 1], args[at], e.port);
        if (m === 'connectionTo') [args[1], args[0]] = toLoopback(args[1], args[0], e.port);
        if (m === 'sendEspBatch' && isPlainData(args[0])) {
          const b = args[0] as { ports: unknown[]; addresses: unknown[] };
          if (Array.isArray(b.ports) && Array.isArray(b.addresses)) {
            args[0] = { ...b, ports: b.ports.map((p) => toLoopback('127.0.0.1', p, e.port)[1]), addresses: b.addresses.map((x) => toLoopback(x, 1, e.port)[0]) };
          }
        }
        return drain(call(e.t, m, args));
      },
      known:
        m === 'sendEspBatch'
          ? [
              {
                reason: 'sendEspBatch reads the batch unchecked: a hostile batch is an internal error (src/tcp: branch tcp)',
                skip: (a) => {
                  const b = a[0] as Record<string, unknown> | null;
                  if (!isPlainData(b)) return true;
                  const { packets, ports, addresses, count } = b as Record<string, unknown>;
                  return !Array.isArray(packets) || !Array.isArray(ports) || !Array.isArray(addresses) || count !== 1 || !(packets[0] instanceof Uint8Array);
                },
              },
            ]
          : undefined,
    }),
  );
}

const rtnlLink = () => ({ kind: 'link', type: 18, flags: 1, seq: 1, link: { family: 0, type: 0, index: 1, flags: 0, change: 0 }, attrs: [{ name: 'mtu', value: 1500 }] });

/**
 * Rows over every method of an Rtnetlink client. The calls that change something act on this test's own dummy link
 * only: a device a hostile input names (a string or a number) becomes that link, anything else goes in as it is.
 */
function rtnetlinkRows(): Surface[] {
  const dummy = sharedTun.dummy;
  const dev = (v: unknown): unknown => (typeof v === 'string' || typeof v === 'number' ? dummy : v);
  const spec = (v: unknown): unknown => {
    if (!isPlainOptions(v)) return v;
    const o = { ...(v as Record<string, unknown>) };
    o.dev = 'dev' in o ? dev(o.dev) : dummy;
    return o;
  };
  const methods: (readonly [string, () => unknown[], (a: unknown[]) => unknown[]])[] = [
    ['getLink', () => [dummy, callOptions()], (a) => [dev(a[0]), ...a.slice(1)]],
    ['linkIndex', () => [dummy, callOptions()], (a) => a],
    ['setLink', () => [dummy, { mtu: 1400, up: false }, callOptions()], (a) => [dev(a[0]), ...a.slice(1)]],
    ['setMtu', () => [dummy, 1400, callOptions()], (a) => [dev(a[0]), ...a.slice(1)]],
    ['setUp', () => [dummy, false, callOptions()], (a) => [dev(a[0]), ...a.slice(1)]],
    ['links', () => [callOptions()], (a) => a],
    ['addAddress', () => [{ dev: dummy, address: '198.51.100.77/32' }, callOptions()], (a) => [spec(a[0]), ...a.slice(1)]],
    ['deleteAddress', () => [{ dev: dummy, address: '198.51.100.78/32' }, callOptions()], (a) => [spec(a[0]), ...a.slice(1)]],
    ['addresses', () => [{ dev: dummy, family: 4 }, callOptions()], (a) => a],
    ['addRoute', () => [{ dst: '198.51.100.128/26', dev: dummy }, callOptions()], (a) => [spec(a[0]), ...a.slice(1)]],
    ['deleteRoute', () => [{ dst: '198.51.100.192/26', dev: dummy }, callOptions()], (a) => [spec(a[0]), ...a.slice(1)]],
    ['routes', () => [{ family: 4, table: 254 }, callOptions()], (a) => a],
    ['stats', () => [], (a) => a],
    ['close', () => [], (a) => a],
  ];
  return methods.map(([m, args, safe]) =>
    row<Rtnetlink | null>({
      name: `Rtnetlink#${m}`,
      make: async () => {
        if (!canTun || openDummy() === null) return null;
        return api.Rtnetlink.open({ timeout: 1000 });
      },
      dispose: (r) => r?.close(),
      args: () => [...args()],
      // deleteAddress/deleteRoute of what is not there: ESRCH/EADDRNOTAVAIL, a KernelReplyError with a code
      valid: canTun && !m.startsWith('delete') ? 'ok' : 'error',
      run: (r, a) => r && drain(call(r, m, safe(a))),
    }),
  );
}

/** A plain object (or array) all the way down: no getters, no Proxies, no other prototypes (byte arrays are leaves). */
function isPlainData(v: unknown, depth = 0): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (ArrayBuffer.isView(v)) return true;
  if (depth > 4 || (!Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype)) return false;
  return Object.values(Object.getOwnPropertyDescriptors(v)).every((d) => 'value' in d && (typeof d.value !== 'object' || d.value === null || isPlainData(d.value, depth + 1)));
}

/** seal()'s third argument as the table's valid example has it (a plain object with no getters), or absent. */
function isPlainSealOptions(v: unknown): boolean {
  if (v === undefined) return true;
  if (v === null || typeof v !== 'object' || Object.getPrototypeOf(v) !== Object.prototype) return false;
  return Object.values(Object.getOwnPropertyDescriptors(v)).every((d) => 'value' in d);
}

export const VALUES: ValueSurface[] = [
  {
    name: 'ESP_DROP_REASONS',
    value: () => api.ESP_DROP_REASONS,
    known: [{ reason: 'the array is not frozen: a caller can change the reasons the transforms count (src/esp: branch cipher moves it)', skip: () => true }],
  },
  { name: 'XFRM_STAT_NAMES', value: () => api.XFRM_STAT_NAMES },
  { name: 'REPLAY_TOO_OLD', value: () => api.REPLAY_TOO_OLD },
  { name: 'REPLAY_REPLAYED', value: () => api.REPLAY_REPLAYED },
  { name: 'MAX_REPLAY_WINDOW', value: () => api.MAX_REPLAY_WINDOW },
  { name: 'pfkey.dialects', value: () => api.pfkey.dialects },
  { name: 'pfkey.constants', value: () => api.pfkey.constants },
  { name: 'xfrm.constants', value: () => api.xfrm.constants },
  // merged later
  ...(['ESP_BATCH_DROP', 'ESP_BATCH_OK', 'ESP_BATCH_SEQ_EXHAUSTED', 'ESP_DESC_WORDS', 'ESP_META_WORDS', 'MAX_ESP_BATCH', 'TCP_CLOSE_REASONS'] as const).map((n) => ({
    name: n,
    value: () => api[n],
  })),
  // The defaults tables are namespaces of numbers (and the reconnect policy): each member a row, each frozen.
  ...(['CLIENT_DEFAULTS', 'LISTENER_DEFAULTS'] as const).flatMap((t) =>
    Object.keys(api[t]).map((m) => ({ name: `${t}.${m}`, value: () => (api[t] as Record<string, unknown>)[m] })),
  ),
  // merged at the end (branches fastbatch, capture): the constants; the functions and classes still need rows
  ...(['BATCH_ACQUIRE', 'BATCH_BLOCKED', 'BATCH_BYPASS', 'BATCH_DROPPED', 'BATCH_SENT', 'BATCH_TOO_BIG', 'ESP_RUN_HEADROOM', 'LARGE_SOCKET_BUFFER', 'LINKTYPE_RAW', 'SEAL_HEADROOM', 'SEAL_TAILROOM', 'TUN_HEADROOM', 'TUN_SLOT_ROOM', 'TUN_TX_QUEUE'] as const).map((n) => ({
    name: n,
    value: () => (api as Record<string, unknown>)[n],
  })),
  ...(['CONTROL_DIR', 'DEFAULT_CONTROL_PATH', 'MAX_KEEPALIVE_PEERS'] as const).map((n) => ({ name: n, value: () => api[n] })),
  { name: 'rtnetlink.attributeNames', value: () => api.rtnetlink.attributeNames },
  { name: 'rtnetlink.constants', value: () => api.rtnetlink.constants },
];

export { ABSENT };
