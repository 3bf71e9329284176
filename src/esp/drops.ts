// Why ESP refuses an inbound packet: the drop reasons, each with its own counter.

/** Why `open()` refused a packet. Each has its own counter in `stats().drops`. */
export type EspDropReason =
  /** Shorter than header + IV + trailer + ICV. */
  | 'truncated'
  /** The encrypted part is not a whole number of cipher blocks (CBC). */
  | 'bad-length'
  /** The SPI field is not this SA's. */
  | 'spi-mismatch'
  /** Below the anti-replay window (or sequence number 0). */
  | 'too-old'
  /** Inside the window and already received. */
  | 'replayed'
  /** The ICV did not verify (tampered, wrong key, or wrong inferred ESN high bits). */
  | 'auth-failed'
  /** Pad Length too large, or padding bytes not 1, 2, 3, ... (RFC 4303 §2.4). */
  | 'bad-padding';

/** Every drop reason, in a stable order (for counters and tables). */
export const ESP_DROP_REASONS: readonly EspDropReason[] = [
  'truncated',
  'bad-length',
  'spi-mismatch',
  'too-old',
  'replayed',
  'auth-failed',
  'bad-padding',
];
