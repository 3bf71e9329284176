// The userland ESP layer's public surface: EspTransform (seal/open for one SA) and the anti-replay window.

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
export { ReplayWindow, REPLAY_TOO_OLD, REPLAY_REPLAYED, MAX_REPLAY_WINDOW, type ReplayWindowOptions } from './replay';
