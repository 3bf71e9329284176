// The daemon's control socket: the protocol, the server (serveControl) and the client (DaemonSadb).

export {
  CONTROL_DIR,
  DEFAULT_CONTROL_PATH,
  DEFAULT_MAX_FRAME,
  PROTOCOL_VERSIONS,
  SADB_EVENTS,
  SADB_METHODS,
  ControlFrameError,
  ControlProtocolError,
  controlPathFor,
  type HelloReply,
  type WireError,
} from './protocol';
export {
  serveControl,
  type ServeControlOptions,
  type ControlServer,
  type ControlServerStats,
  type ControlMethod,
  type ControlCallContext,
} from './server';
export { DaemonSadb, openDaemonSadb, type DaemonSadbOptions, type DaemonInfo } from './client';
export type { PeerCred } from './peer';
