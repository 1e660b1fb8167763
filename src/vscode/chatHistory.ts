import type { ChatMessage, ReplyStats } from '../core/chat/engine';
import { STOP_REASON_LABELS } from '../core/chat/stopReasons';

/**
 * What @nanochat keeps of each answered turn in `ChatResult.metadata` (as VS Code's chat-sample
 * does): the user message exactly as the model saw it (references included) and the reply without
 * its footer. Follow-ups rebuild the history from it, so the model still sees the file a thread
 * started with, and the cached prefix matches token for token. Plain data: no `vscode` import.
 */
export interface NanochatTurn { prompt: string; reply: string; stats?: ReplyStats }
export interface NanochatResultMetadata { nanochat: NanochatTurn }

export function isNanochatMetadata(metadata: unknown): metadata is NanochatResultMetadata {
  const turn = (metadata as { nanochat?: unknown } | undefined)?.nanochat as Partial<NanochatTurn> | undefined;
  return !!turn && typeof turn.prompt === 'string' && typeof turn.reply === 'string';
}

/** A Chat view turn reduced to what the history needs (the adapter maps VS Code's turn classes to it). */
export type TurnView =
  | { kind: 'request'; participant: string; prompt: string }
  | { kind: 'response'; participant: string; metadata: unknown };

/** The earlier messages of a thread, from the metadata of this participant's answered turns. */
export function historyFromTurns(turns: readonly TurnView[], participantId: string, limit: number): ChatMessage[] {
  const messages: ChatMessage[] = [];
  for (const turn of turns) {
    if (turn.kind !== 'response' || turn.participant !== participantId || !isNanochatMetadata(turn.metadata)) continue;
    const { prompt, reply } = turn.metadata.nanochat;
    messages.push({ role: 'user', content: prompt });
    if (reply) messages.push({ role: 'assistant', content: reply });
  }
  return limit > 0 ? messages.slice(-limit) : [];
}

export function footer(stats: ReplyStats): string {
  const parts = [`${stats.completionTokens} tokens`, ...(stats.thoughtTokens ? [`${stats.thoughtTokens} thinking`] : []), `${stats.tokensPerSecond.toFixed(1)} tok/s`];
  if (stats.timeToFirstTokenMs !== undefined) parts.push(`first token ${stats.timeToFirstTokenMs} ms`);
  if (stats.stopReason !== 'done' && stats.stopReason !== 'error') parts.push(STOP_REASON_LABELS[stats.stopReason]);
  if (stats.droppedMessages > 0) parts.push(`${stats.droppedMessages} older messages left out`);
  parts.push(stats.model);
  return parts.join(' · ');
}
