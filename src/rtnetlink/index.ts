// The rtnetlink module's public surface: the `rtnetlink` codec namespace (encode/decode/constants) and the Rtnetlink client.

import * as constants from './constants';
import { attributeNames, decode, encode, findAttr } from './codec';

// The uapi tables are shared with the codec: frozen, so no caller can renumber what the codec writes.
for (const v of Object.values(constants)) if (v !== null && typeof v === 'object') Object.freeze(v);

/** The NETLINK_ROUTE codec and the uapi numbers. Frozen. */
export const rtnetlink = Object.freeze({ encode, decode, findAttr, attributeNames, constants: Object.freeze({ ...constants }) });

export type {
  RtnlMessage,
  RtnlMessageInput,
  RtnlMessageKind,
  RtAttr,
  RtAttrInput,
  RtAttrValue,
  NlHeaderFields,
  IfInfoMsg,
  IfAddrMsg,
  RtMsg,
  IfaCacheinfo,
  QuotedHeader,
} from './codec';
export { RtnetlinkDecodeError } from './errors';
export { Rtnetlink, openRtnetlink, type RtnetlinkOptions } from './client';
export type { Link, InterfaceAddress, Route, AddressSpec, RouteSpec, RouteType, DeviceRef } from './convert';
