// What an IKE daemon needs from natt: NAT-D hashes and NAT detection (`natd`).

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
