/** Why a reply ended: the one list the engine, the protocol and the views share. */
export const STOP_REASONS = ['done', 'maxTokens', 'cancelled', 'timeout', 'error'] as const;
export type StopReason = (typeof STOP_REASONS)[number];
