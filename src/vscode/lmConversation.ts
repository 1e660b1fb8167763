import type { ChatMessage, Conversation } from '../core/chat/engine';
import type { ToolCall } from '../core/chat/tools';

/** A language-model request message reduced to plain data (the provider maps VS Code's part classes to it). */
export type PartView =
  | { kind: 'text'; value: string }
  | { kind: 'toolCall'; callId: string; name: string; input: unknown }
  | { kind: 'toolResult'; callId: string; text: string };
export interface MessageView { role: ChatMessage['role']; parts: readonly PartView[] }

/**
 * Messages as a core conversation: runs of one role merged, tool calls and their results paired (a
 * result comes back in the next user message, under the call's id). It ends with the user's message,
 * or with an assistant turn whose calls all have results (the model continues); otherwise a
 * "Continue." is added. No id: which cached prefix a request reuses is the sequence pool's choice.
 */
export function conversationFrom(messages: readonly MessageView[]): Conversation {
  const out: ChatMessage[] = [];
  const calls = new Map<string, ToolCall>();
  for (const message of messages) {
    const role = message.role;
    let content = '';
    const toolCalls: ToolCall[] = [];
    for (const part of message.parts) {
      if (part.kind === 'toolCall' && role === 'assistant') {
        const call: ToolCall = { id: part.callId, name: part.name, params: part.input };
        calls.set(part.callId, call);
        toolCalls.push(call);
      } else if (part.kind === 'toolResult' && calls.has(part.callId)) {
        calls.get(part.callId)!.result = part.text;
      } else if (part.kind === 'text') {
        content += part.value;
      } else if (part.kind === 'toolResult') {
        content += part.text;
      }
    }
    const last = out.at(-1);
    if (!content && toolCalls.length === 0) continue;
    if (last && last.role === role) {
      last.content = [last.content, content].filter(Boolean).join('\n\n');
      if (toolCalls.length) last.toolCalls = [...(last.toolCalls ?? []), ...toolCalls];
    } else {
      out.push({ role, content, ...(toolCalls.length ? { toolCalls } : {}) });
    }
  }
  const last = out.at(-1);
  const awaitsContinuation = last?.role === 'assistant' && !!last.toolCalls?.length && last.toolCalls.every((c) => c.result !== undefined);
  if (last?.role !== 'user' && !awaitsContinuation) out.push({ role: 'user', content: 'Continue.' });
  return { messages: out };
}
