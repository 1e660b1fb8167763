/** Why a reply ended: the one list the engine, the protocol and the views share. */
export const STOP_REASONS = ['done', 'maxTokens', 'cancelled', 'timeout', 'error'] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/** How the views name a reply's ending ('done' needs no words). */
export const STOP_REASON_LABELS: Record<StopReason, string> = {
  done: '', maxTokens: 'stopped at max tokens', cancelled: 'stopped', timeout: 'stopped at the time limit', error: 'error',
};
