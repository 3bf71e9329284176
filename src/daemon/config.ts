// The natt daemon's configuration file (JSON): the TUN, the NAT-T socket, the control socket, SAs and policies.
//
// Read with own properties only and unknown names refused at every level, so a typo is an error naming its path
// (`tun.adresses`), never a silently ignored setting. SAs and policies are the typed model's JSON form, keys
// as hex strings; each goes through the model's one check (src/sadb/validate.ts).

import { typeError, rangeError } from '../errors';
import { boolOption, intOption, oneOf, readOptions, stringOption, durationSeconds } from '../core/options';
import { checkPolicy, checkSa } from '../sadb/validate';
import { hideSaKeys } from '../sadb/keys';
import type { SecurityAssociation, SecurityPolicy } from '../sadb/types';
import { isIP } from 'node:net';
import { CONTROL_DIR, controlPathFor } from '../control/protocol';

/** Where the control socket lives by default: /run/natt/<tun name>.sock (the constant lives with the protocol). */
export { CONTROL_DIR };

export interface DaemonConfig {
  tun: { name: string; mtu: number; addresses: string[]; routes: Array<{ dst: string; via?: string; metric?: number; table?: number; src?: string }> };
  listen: { family: 4 | 6; address: string; port: number };
  outerMtu: number;
  keepaliveSeconds: number;
  /**
   * The control socket (`natt tunnel status|down`, openSadb({ backend: 'daemon' })): path, file mode, uids served
   * besides root and the daemon's, and whether keys may leave to a client that asks (`natt capture --esp-sa`; off by
   * default: keys then only ever travel inward).
   */
  control: { path: string; mode: number; allowUids: number[]; revealKeys: boolean };
  /**
   * Segmentation offloads, each on by default where the kernel has it (each reported in the log and the status):
   * udpGso / udpGro on the NAT-T socket (UDP_SEGMENT / UDP_GRO), and on the TUN device (IFF_VNET_HDR) tunTso and
   * tunUso (the kernel hands over TCP / UDP superpackets of up to 64 KiB that natt cuts before sealing) and tunGro
   * (natt joins the TCP segments it decrypted into one write). All false: the plain datapath.
   */
  offload: { udpGso: boolean; udpGro: boolean; tunTso: boolean; tunUso: boolean; tunGro: boolean };
  sas: SecurityAssociation[];
  policies: SecurityPolicy[];
}

/** A key in the file: an even number of hex digits, optionally behind 0x. */
function hexKey(v: unknown, field: string): Uint8Array {
  if (typeof v !== 'string') throw typeError(field, 'a hex string (0x...)', v);
  const hex = v.startsWith('0x') || v.startsWith('0X') ? v.slice(2) : v;
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw rangeError(field, 'an even number of hex digits', v);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** An SA from the file: the model's JSON form with keys as hex. */
function saOf(v: unknown, i: number): SecurityAssociation {
  const where = `sas[${i}]`;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw typeError(where, 'an SA object', v);
  const raw = { ...(v as Record<string, unknown>) };
  for (const part of ['encryption', 'integrity'] as const) {
    const p = raw[part];
    if (p !== undefined) {
      const o = readOptions(p, ['algorithm', 'key'] as const, `${where}.${part}`);
      raw[part] = { algorithm: o.algorithm, key: o.key === undefined ? undefined : hexKey(o.key, `${where}.${part}.key`) };
    }
  }
  try {
    return hideSaKeys(checkSa(raw)); // the keys read from the file sit in key holders: a config printed shows none
  } catch (e) {
    throw withPath(e, where);
  }
}

function withPath(e: unknown, where: string): unknown {
  if (e instanceof TypeError || e instanceof RangeError) {
    e.message = e.message.replace(/option "([^"]+)"/, `option "${where}.$1"`);
  }
  return e;
}

function address(v: unknown, field: string, family?: 4 | 6): string {
  const a = stringOption(v, field);
  const f = isIP(a.split('/')[0]);
  if (f === 0 || (family && f !== family)) throw rangeError(field, family ? `an IPv${family} address` : 'an IP address', a);
  return a;
}

/**
 * What JSON.parse said, without the excerpt of the text V8 quotes (`Unexpected token 'a', "{"key": a5a5"... is not
 * valid JSON`): the file holds keys, and an error never shows them. The position is kept where V8 gives one.
 */
function jsonProblem(e: Error): string {
  const m = String(e.message);
  const pos = /at position (\d+)/.exec(m)?.[1];
  // `Unexpected token 'a', <excerpt> is not valid JSON`: keep what comes before the excerpt.
  const head = m.includes(' is not valid JSON') && m.includes(', ') ? m.slice(0, m.indexOf(', ')) : m.replace(/\s*(?:in JSON )?at position \d+.*$/s, '');
  return pos === undefined ? head : `${head} at position ${pos}`;
}

/** Parse and check a daemon configuration (the file's text, or an already parsed object). */
export function parseDaemonConfig(input: string | unknown): DaemonConfig {
  let json: unknown = input;
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input);
    } catch (e) {
      throw new SyntaxError(`the configuration is not valid JSON: ${jsonProblem(e as Error)}`);
    }
  }
  const o = readOptions(json, ['tun', 'listen', 'outerMtu', 'keepaliveSeconds', 'control', 'offload', 'sas', 'policies'] as const, 'config');
  if (json === undefined) throw typeError('config', 'an object', json);
  const t = readOptions(o.tun, ['name', 'mtu', 'addresses', 'routes'] as const, 'tun');
  const name = stringOption(t.name, 'tun.name', undefined, 'natt0');
  if (Buffer.byteLength(name) > 15 || !/^[A-Za-z0-9_.-]+$/.test(name)) throw rangeError('tun.name', 'an interface name of at most 15 letters, digits, _ . -', name);
  const addresses = t.addresses === undefined ? [] : arrayOf(t.addresses, 'tun.addresses').map((a, i) => address(a, `tun.addresses[${i}]`));
  const routes = (t.routes === undefined ? [] : arrayOf(t.routes, 'tun.routes')).map((r, i) => {
    const f = `tun.routes[${i}]`;
    const ro = readOptions(r, ['dst', 'via', 'metric', 'table', 'src'] as const, f);
    const route: DaemonConfig['tun']['routes'][number] = { dst: ro.dst === 'default' ? 'default' : address(ro.dst, `${f}.dst`) };
    if (ro.via !== undefined) route.via = address(ro.via, `${f}.via`);
    if (ro.src !== undefined) route.src = address(ro.src, `${f}.src`);
    if (ro.metric !== undefined) route.metric = intOption(ro.metric, `${f}.metric`, 0, 0xffff_ffff);
    if (ro.table !== undefined) route.table = intOption(ro.table, `${f}.table`, 1, 0xffff_ffff);
    return route;
  });
  const l = readOptions(o.listen, ['family', 'address', 'port'] as const, 'listen');
  const family = oneOf(l.family, 'listen.family', [4, 6] as const, 4);
  const listen = {
    family,
    address: l.address === undefined ? (family === 4 ? '0.0.0.0' : '::') : address(l.address, 'listen.address', family),
    port: intOption(l.port, 'listen.port', 0, 65535, 4500),
  };
  const c = readOptions(o.control, ['path', 'mode', 'allowUids', 'revealKeys'] as const, 'control');
  const control = {
    path: stringOption(c.path, 'control.path', undefined, controlPathFor(name)),
    mode: fileMode(c.mode, 'control.mode', 0o600),
    allowUids: (c.allowUids === undefined ? [] : arrayOf(c.allowUids, 'control.allowUids')).map((u, i) => intOption(u, `control.allowUids[${i}]`, 0, 0xffff_ffff)),
    revealKeys: boolOption(c.revealKeys, 'control.revealKeys', false),
  };
  const f = readOptions(o.offload, ['udpGso', 'udpGro', 'tunTso', 'tunUso', 'tunGro'] as const, 'offload');
  const offload = {
    udpGso: boolOption(f.udpGso, 'offload.udpGso', true),
    udpGro: boolOption(f.udpGro, 'offload.udpGro', true),
    tunTso: boolOption(f.tunTso, 'offload.tunTso', true),
    tunUso: boolOption(f.tunUso, 'offload.tunUso', true),
    tunGro: boolOption(f.tunGro, 'offload.tunGro', true),
  };
  const sas = (o.sas === undefined ? [] : arrayOf(o.sas, 'sas')).map(saOf);
  const policies = (o.policies === undefined ? [] : arrayOf(o.policies, 'policies')).map((p, i) => {
    try {
      return checkPolicy(p);
    } catch (e) {
      throw withPath(e, `policies[${i}]`);
    }
  });
  return {
    tun: { name, mtu: intOption(t.mtu, 'tun.mtu', 576, 65535, 1400), addresses, routes },
    listen,
    outerMtu: intOption(o.outerMtu, 'outerMtu', 576, 65535, 1500),
    keepaliveSeconds: durationSeconds(o.keepaliveSeconds, 'keepaliveSeconds', 0, 20),
    control,
    offload,
    sas,
    policies,
  };
}

/** A file mode: a number (0o660 is 432) or an octal string ("0660", "660"). */
function fileMode(v: unknown, field: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v === 'string') {
    if (!/^0?[0-7]{3}$/.test(v)) throw rangeError(field, 'a file mode: an octal string such as "0600", or a number', v);
    return parseInt(v, 8);
  }
  return intOption(v, field, 0, 0o777);
}

function arrayOf(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) throw typeError(field, 'an array', v);
  if (v.length > 100_000) throw rangeError(field, 'at most 100000 entries', v);
  return v;
}
