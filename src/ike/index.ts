// What an IKE daemon needs from natt: NAT-D hashes and detection (`natd`), the float rule, the 500/4500 socket pair.

export {
  natd,
  type IkeSpi,
  type NatdAddress,
  type NatdEndpoint,
  type Ikev1HashAlgorithm,
  type NatdResult,
  type NatdDetectOptions,
  type NatdDetectIkev1Options,
} from './natd';
export { decideFloat, natdPayloads, type FloatDecision, type NatdPayloadsOptions } from './float';
export { createIkeSockets, IkeSockets, type IkeSocketsOptions, type IkeSendOptions, type IkeSocketsEvents, type IkeVia } from './sockets';
