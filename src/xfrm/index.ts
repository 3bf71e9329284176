// The XFRM backend's public surface: the `xfrm` codec namespace (encode/decode/constants), the Xfrm client, its probe.

import * as constants from './constants';
import { deepFreeze } from '../core/freeze';
import { decode, encode, encodingLength, findAttr } from './codec';

// The uapi tables are shared with the codec: frozen all the way down, so no caller can renumber what the codec writes.
for (const v of Object.values(constants)) deepFreeze(v);

/** `import { xfrm } from 'natt'`: the netlink/XFRM codec (x86-64 structure layouts) and the uapi numbers. Frozen. */
export const xfrm = Object.freeze({ encode, encodingLength, decode, findAttr, constants: Object.freeze({ ...constants }) });

export type { XfrmMessage, XfrmMessageType, XfrmAttribute, XfrmAttributeKind, NlHeaderFields } from './codec';
export type * from './structs';
export { XfrmDecodeError } from './errors';
export { Xfrm, openXfrm, xfrmAdvice, DEFAULT_GROUPS, type XfrmOptions, type XfrmTransport } from './client';
export { probeXfrm, type XfrmProbe } from './probe';
