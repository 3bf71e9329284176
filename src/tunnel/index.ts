// The tunnel's public surface: createTunnel and the Tunnel it returns.

export { createTunnel, Tunnel, type CreateTunnelOptions, type TunnelCounters, type TunnelStats, type TunnelEvents } from './tunnel';
