// The `pfkey` namespace of natt: the PF_KEY v2 codec, its dialect tables and constants, and the PfKey client class.

import { decode, encode, encodingLength, findExt } from './codec';
import { deepFreeze } from '../core/freeze';
import { DIALECTS, IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY, SADB, SASTATE, SATYPE, defaultDialectName, messageName } from './dialects';

export { PfKeyDecodeError } from './codec';
export type { PfKeyMessage, PfKeyExtension, Sockaddr, IpsecRequest, Comb, Alg } from './codec';
export type { Dialect, DialectName, ExtensionName } from './dialects';
export { PfKey, openPfKey, type PfKeyOptions, type PfKeyStats, type PfKeyTransport } from './client';

/** PF_KEY v2 constants shared by every dialect. */
export const constants = deepFreeze({ SADB, SATYPE, SASTATE, IPSEC_MODE, IPSEC_DIR, IPSEC_POLICY, IPSEC_LEVEL });

/** `import { pfkey } from 'natt'`: encode/decode PF_KEY messages in the 'linux', 'netbsd' or 'freebsd' dialect. */
export const pfkey = Object.freeze({ encode, encodingLength, decode, findExt, dialects: deepFreeze(DIALECTS), defaultDialect: defaultDialectName, messageName, constants });
