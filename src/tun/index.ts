// The TUN module's public surface: createTun and the Tun device (the lead re-exports it from src/index.ts).

export { createTun, Tun, TUN_HEADROOM, TUN_SLOT_ROOM, TUN_TX_QUEUE, type CreateTunOptions, type TunRouteSpec, type TunBatchHandler, type TunStats, type TunEvents, type TunOffload, type TunOffloadOptions, type TunOffloadStats } from './tun';
