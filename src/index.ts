// Public entry point of natt: re-exports the API of every layer.

export { NattError, NattSystemError, KernelReplyError, NattTimeoutError, NattUnsupportedError, errnoName, errnoNumber } from './errors';
export * from './sadb/types';
export { hideKey, hideSaKeys, withoutKeys } from './sadb/keys';
export { openSadb, chooseSadbBackend, type OpenSadbOptions } from './sadb/open';
export * from './esp';
export {
  createEspTransform,
  nativeCipherStatus,
  type EspCipherChoice,
  type FastEspTransformOptions,
  type NativeCipherStatus,
} from './fastpath';
export {
  UserlandEngine,
  UserlandSadb,
  XFRM_STAT_NAMES,
  formatStats,
  type UserlandEngineOptions,
  type UserlandEngineEvents,
  type UserlandSadbOptions,
  type EngineTraffic,
  type SendResult,
  type EspSocket,
  type RemoteInfo,
  type XfrmStats,
  type XfrmStatName,
} from './userland';
export { createNattSocket, NattSocket, type NattSocketOptions, type NattSocketStats, type NattRemoteInfo, type NattBackend } from './natt/socket';
export { classify, type Classified, type DropReason, type NattEncap } from './natt/demux';
export { probe, kernelEspSupport, type ProbeResult, type Fact, type KernelEspSupport } from './probe';
export {
  xfrm,
  Xfrm,
  XfrmDecodeError,
  probeXfrm,
  type XfrmOptions,
  type XfrmMessage,
  type XfrmAttribute,
  type XfrmProbe,
} from './xfrm';
export { pfkey, PfKeyDecodeError, PfKey, type PfKeyMessage, type PfKeyExtension, type PfKeyOptions, type DialectName as PfKeyDialectName } from './pfkey';
