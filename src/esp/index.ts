// The userland ESP layer's public surface: EspTransform (seal/open for one SA), its cipher seam, batches, the replay window.

export {
  EspTransform,
  EspSequenceExhaustedError,
  ESP_DROP_REASONS,
  type EspDropReason,
  type EspOpenResult,
  type EspTransformOptions,
  type EspSealOptions,
  type EspExpireEvent,
  type EspTransformEvents,
  type EspStats,
} from './transform';
// The cipher seam's types (for a cipherFactory); its implementations and status codes stay in ./cipher.
export { ESP_DESC_WORDS, type EspCipher, type EspCipherFactory, type EspCipherPath, type EspCipherSpec } from './cipher';
export {
  EspBatch,
  ESP_META_WORDS,
  ESP_BATCH_OK,
  ESP_BATCH_SEQ_EXHAUSTED,
  ESP_BATCH_DROP,
  MAX_ESP_BATCH,
  type EspBatchOptions,
} from './batch';
export { ReplayWindow, REPLAY_TOO_OLD, REPLAY_REPLAYED, MAX_REPLAY_WINDOW, type ReplayWindowOptions } from './replay';
