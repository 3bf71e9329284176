// When an IKE exchange moves from port 500 to 4500 (RFC 7296 §2.23), and the NAT-D payloads to send: one rule, on natd.
//
// The rule natt follows: float to port 4500 (and put ESP in UDP) exactly when NAT detection finds a NAT on either
// side, as RFC 7296 §2.23 requires (it MUST then, and need not otherwise); with no NAT, IKE stays on 500 and ESP stays
// plain ESP, which any kernel IPsec stack carries with less overhead. A host that cannot receive plain ESP (natt's
// userland engine: ESP-in-UDP only) makes both ends see a NAT instead: natdPayloads({ forceEncapsulation: true })
// sends a source hash that matches no address, as strongSwan's `forceencaps` does, so the peer detects a NAT, floats,
// and encapsulates; the peer's hashes still tell this end the truth about its own side.

import { randomBytes } from 'node:crypto';
import { typeError } from '../errors';
import { boolOption, fieldName, readOptions, readingCallerValue } from '../core/options';
import { natd, type IkeSpi, type NatdEndpoint, type NatdResult } from './natd';

/** What an IKE daemon does after reading the peer's NAT-D payloads (IKE_SA_INIT, RFC 7296 §2.23). */
export interface FloatDecision {
  /** Move IKE to the NAT-T port (4500) from IKE_AUTH on (the initiator moves; the responder follows). */
  float: boolean;
  /** Add the CHILD SAs with UDP encapsulation (SA `natt: { type: 'espinudp', sport, dport }`). */
  encapsulate: boolean;
  /** This end is behind the NAT: it sends NAT-keepalives (RFC 3948 §2.3: the NATed side keeps the mapping). */
  keepalives: boolean;
  /** Why, in plain words. */
  reason: string;
}

/**
 * The float rule. `detected` is natd.detect()'s answer on the peer's NAT-D payloads, or `null` when the peer sent
 * none (it does not do NAT-T: nothing moves). Pure.
 */
export function decideFloat(detected: NatdResult | null): FloatDecision {
  if (detected === null) {
    return {
      float: false,
      encapsulate: false,
      keepalives: false,
      reason: 'the peer sent no NAT_DETECTION payloads: it does not do NAT traversal; IKE stays on port 500 and ESP is plain ESP',
    };
  }
  if (detected === undefined || typeof detected !== 'object') throw typeError('detected', "natd.detect()'s result or null", detected);
  const local = readingCallerValue('detected.localBehindNat', () => detected.localBehindNat === true);
  const remote = readingCallerValue('detected.remoteBehindNat', () => detected.remoteBehindNat === true);
  if (!local && !remote) {
    return {
      float: false,
      encapsulate: false,
      keepalives: false,
      reason: 'no NAT between the peers (both NAT-D hashes match): IKE stays on port 500 and ESP is plain ESP (RFC 7296 §2.23)',
    };
  }
  const where = local && remote ? 'both ends are behind NATs' : local ? 'this end is behind a NAT' : 'the peer is behind a NAT';
  return {
    float: true,
    encapsulate: true,
    keepalives: local,
    reason:
      `${where}: IKE moves to port 4500 from IKE_AUTH on, the CHILD SAs carry ESP in UDP (RFC 7296 §2.23, RFC 3948)` +
      (local ? ', and this end sends NAT-keepalives' : ''),
  };
}

/** Options of natdPayloads(). */
export interface NatdPayloadsOptions {
  spiI: IkeSpi;
  spiR: IkeSpi;
  /** The address(es) and port this end sends from (several when it does not know which one routing picks). */
  local: NatdEndpoint | readonly NatdEndpoint[];
  /** The address and port the message goes to. */
  remote: NatdEndpoint;
  /**
   * Make the peer see a NAT whatever the path (a source hash that matches nothing): for an end that can only do
   * ESP-in-UDP, such as natt's userland engine. Default false.
   */
  forceEncapsulation?: boolean;
}

/**
 * The notification data of the NAT_DETECTION_SOURCE_IP payload(s) (16388) and the NAT_DETECTION_DESTINATION_IP
 * payload (16389) for an IKE_SA_INIT message (RFC 7296 §2.23).
 */
export function natdPayloads(options: NatdPayloadsOptions): { sourceHashes: Buffer[]; destinationHash: Buffer } {
  if (options === undefined) throw typeError('options', 'an object', options);
  const o = readOptions(options, ['spiI', 'spiR', 'local', 'remote', 'forceEncapsulation'] as const);
  const force = boolOption(o.forceEncapsulation, 'forceEncapsulation', false);
  const locals = Array.isArray(o.local) ? (o.local as NatdEndpoint[]) : [o.local as NatdEndpoint];
  if (locals.length === 0) throw typeError('local', 'an endpoint { address, port } or a non-empty array of them', o.local);
  const destinationHash = hashOf(o.spiI, o.spiR, o.remote, 'remote');
  const sourceHashes = locals.map((l, i) => {
    const h = hashOf(o.spiI, o.spiR, l, Array.isArray(o.local) ? `local[${i}]` : 'local'); // checked either way
    return force ? randomBytes(h.length) : h;
  });
  return { sourceHashes, destinationHash };
}

/** natd.ikev2Hash of one endpoint, its mistakes named by where they are (`remote.port`, `local[1].address`). */
function hashOf(spiI: unknown, spiR: unknown, ep: unknown, what: string): Buffer {
  if (ep === undefined) throw typeError(what, 'an object { address, port }', ep);
  const e = readOptions(ep, ['address', 'port'] as const, what);
  try {
    return natd.ikev2Hash(spiI as IkeSpi, spiR as IkeSpi, e.address as string, e.port as number);
  } catch (err) {
    if ((err instanceof TypeError || err instanceof RangeError) && /^option "(address|port)"/.test(err.message)) {
      const named = new (err.constructor as typeof TypeError)(err.message.replace(/^option "(address|port)"/, (_, f: string) => `option "${fieldName(what, f)}"`));
      (named as Error & { code?: unknown }).code = (err as Error & { code?: unknown }).code;
      throw named;
    }
    throw err;
  }
}
