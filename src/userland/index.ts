// The userland engine's public surface: UserlandSadb, UserlandEngine, counters, and the openSadb factory.

import type { SadbFactory } from '../sadb/types';
import { UserlandSadb } from './sadb';

export { UserlandSadb, type UserlandSadbOptions } from './sadb';
export {
  UserlandEngine,
  type UserlandEngineOptions,
  type UserlandEngineEvents,
  type EngineTraffic,
  type SendResult,
  type EspSocket,
  type RemoteInfo,
  type PacketBatchHandler,
  BATCH_SENT,
  BATCH_BYPASS,
  BATCH_BLOCKED,
  BATCH_ACQUIRE,
  BATCH_DROPPED,
  BATCH_TOO_BIG,
  SEAL_HEADROOM,
  SEAL_TAILROOM,
} from './engine';
export { XFRM_STAT_NAMES, formatStats, type UserlandCounters, type UserlandCounterName, type XfrmStats, type XfrmStatName } from './counters';
export type { UserlandSa } from './sa';

/** openSadb({ backend: 'userland' }) lands here. */
export const createUserlandSadb: SadbFactory<UserlandSadb> = async (opts) => new UserlandSadb({ revealKeys: opts.revealKeys });
