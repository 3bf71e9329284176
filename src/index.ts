// Public entry point of natt: re-exports the API of every layer.

export { NattError, NattSystemError, KernelReplyError, NattTimeoutError, NattUnsupportedError, errnoName, errnoNumber } from './errors';
export * from './sadb/types';
export { hideKey, hideSaKeys, withoutKeys } from './sadb/keys';
export { followMapping, type FollowResult, type MappingMode } from './sadb/mapping';
export { openSadb, chooseSadbBackend, type OpenSadbOptions } from './open';
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
  type UserlandCounters,
  type UserlandCounterName,
  type XfrmStats,
  type XfrmStatName,
  type PacketBatchHandler,
  BATCH_SENT,
  BATCH_BYPASS,
  BATCH_BLOCKED,
  BATCH_ACQUIRE,
  BATCH_DROPPED,
  BATCH_TOO_BIG,
  SEAL_HEADROOM,
  SEAL_TAILROOM,
} from './userland';
export {
  createNattSocket,
  NattSocket,
  MAX_KEEPALIVE_PEERS,
  type NattSocketOptions,
  type NattSocketStats,
  type NattSocketOffload,
  type NattSocketOffloadStats,
  type NattRemoteInfo,
  type NattBackend,
  type NattSendOptions,
  type NattSendToOptions,
  type BypassState,
  type SocketBuffers,
  LARGE_SOCKET_BUFFER,
} from './natt/socket';
export { classify, type Classified, type DropReason, type NattEncap, type NattEncapType, type NattSocketEncap } from './natt/demux';
export type { EspTransport, EspBatch, EspBatchHandler, EspSources, RemoteInfo, SendCallback } from './transport';
export { ESP_RUN_HEADROOM } from './transport';
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
export {
  natd,
  type IkeSpi,
  type NatdAddress,
  type NatdEndpoint,
  type Ikev1HashAlgorithm,
  type NatdResult,
  type NatdDetectOptions,
  type NatdDetectIkev1Options,
  createIkeSockets,
  IkeSockets,
  decideFloat,
  natdPayloads,
  type IkeSocketsOptions,
  type IkeSendOptions,
  type IkeSocketsEvents,
  type IkeVia,
  type FloatDecision,
  type NatdPayloadsOptions,
} from './ike';
export {
  parseSetkey,
  applySetkey,
  formatSadDump,
  formatSpdDump,
  toSetkey,
  SetkeyParseError,
  SetkeyUnsupportedError,
  type ParseSetkeyOptions,
  type SetkeyOp,
  type SetkeyPlatform,
  type SourcePos as SetkeySourcePos,
  type UnsupportedFeature as SetkeyUnsupportedFeature,
  type ApplySetkeyOptions,
  type ApplyResult as SetkeyApplyResult,
  type ApplyFailure as SetkeyApplyFailure,
  type ApplyDump as SetkeyApplyDump,
  type ApplyEvent as SetkeyApplyEvent,
  type SadDumpOptions,
  type SpdDumpOptions,
  type ToSetkeyOptions,
} from './setkey';
export { createTun, Tun, TUN_HEADROOM, TUN_SLOT_ROOM, TUN_TX_QUEUE, type CreateTunOptions, type TunRouteSpec, type TunBatchHandler, type TunStats, type TunEvents, type TunOffload, type TunOffloadOptions, type TunOffloadStats } from './tun';
export { rtnetlink, Rtnetlink, RtnetlinkDecodeError, type RtnetlinkOptions } from './rtnetlink';
export { createTunnel, Tunnel, type CreateTunnelOptions, type TunnelCounters, type TunnelStats, type TunnelEvents } from './tunnel';
export {
  listenNattTcp,
  connectNattTcp,
  NattTcpListener,
  NattTcpClient,
  NattTcpConnection,
  TCP_CLOSE_REASONS,
  LISTENER_DEFAULTS,
  CLIENT_DEFAULTS,
  FrameDecoder,
  encodeFrame,
  streamPrefix,
  type ListenNattTcpOptions,
  type ConnectNattTcpOptions,
  type NattTcpServerTlsOptions,
  type NattTcpClientTlsOptions,
  type NattTcpListenerStats,
  type NattTcpClientStats,
  type NattTcpConnectionStats,
  type TcpCloseReason,
  type TcpFrame,
  type FrameDecoderOptions,
} from './tcp';
export { espInTcpSupport, type EspInTcpSupport } from './probe';
export {
  startCapture,
  PcapngWriter,
  espSaTable,
  writeEspSaFile,
  LINKTYPE_RAW,
  type CaptureOptions,
  type CaptureStats,
  type CapturedPacketInfo,
  type NattCapture,
  type EspSaTable,
} from './capture';
export {
  serveControl,
  DaemonSadb,
  controlPathFor,
  CONTROL_DIR,
  DEFAULT_CONTROL_PATH,
  ControlFrameError,
  ControlProtocolError,
  type ServeControlOptions,
  type ControlServer,
  type ControlServerStats,
  type ControlMethod,
  type ControlCallContext,
  type DaemonSadbOptions,
  type DaemonInfo,
  type PeerCred,
  type HelloReply as ControlHelloReply,
  type WireError as ControlWireError,
} from './control';
export type { DaemonStatus, DaemonSaStatus, DaemonStats } from './daemon/status';
