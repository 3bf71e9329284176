// ESP and IKE over TCP (RFC 9329): the framing, one connection, the responder's listener and the initiator's client.

export {
  FrameDecoder,
  encodeFrame,
  frameEsp,
  frameHeader,
  frameIke,
  keepaliveFrame,
  streamPrefix,
  FRAME_DROP_REASONS,
  FRAME_FAIL_REASONS,
  MAX_FRAME_LENGTH,
  type TcpFrame,
  type FrameKind,
  type FrameDropReason,
  type FrameFailReason,
  type FrameDecoderOptions,
  type FrameDecoderStats,
  type FrameDecoderFailure,
} from './framing';
export {
  NattTcpConnection,
  TCP_CLOSE_REASONS,
  type NattTcpConnectionEvents,
  type NattTcpConnectionStats,
  type TcpCloseReason,
  type TcpConnectionLimits,
  type TcpRole,
  type TcpSendDropReason,
} from './connection';
export {
  listenNattTcp,
  NattTcpListener,
  type ListenNattTcpOptions,
  type NattTcpListenerEvents,
  type NattTcpListenerStats,
  type NattTcpServerTlsOptions,
} from './listener';
export {
  connectNattTcp,
  NattTcpClient,
  type ConnectNattTcpOptions,
  type NattTcpClientEvents,
  type NattTcpClientStats,
  type NattTcpClientTlsOptions,
  type NattTcpConnectInfo,
} from './client';
export { LISTENER_DEFAULTS, CLIENT_DEFAULTS, type NattTcpTlsCommonOptions } from './options';
