import type { ChatHistoryItem, ChatModelFunctions, ChatModelResponse, ChatWrapper, LlamaModel, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { z } from 'zod';
import { NanochatError } from '../errors';
import type { ChatMessage, Conversation } from './engine';
import { toChatModelFunctions, type ToolDefinition } from './tools';
import { tokenizeTextPausing } from '../engine/models';

/**
 * The history node-llama-cpp's chat wrapper renders: the system prompt, the kept turns and the new
 * message, then an empty model turn for the reply (after tool results the model continues its own
 * turn instead). Consecutive assistant messages (a tool call, its result, then the answer) are one
 * model turn, in order, as chat templates render them.
 */
export function toChatHistory(system: string, kept: readonly ChatMessage[], current: ChatMessage): ChatHistoryItem[] {
  const items: ChatHistoryItem[] = system ? [{ type: 'system', text: system }] : [];
  for (const m of [...kept, current]) {
    if (m.role === 'system') continue;
    if (m.role === 'user') { items.push({ type: 'user', text: m.content }); continue; }
    const previous = items.at(-1);
    if (previous?.type === 'model') previous.response.push(...modelResponse(m));
    else items.push({ type: 'model', response: modelResponse(m) });
  }
  if (current.role === 'user') items.push({ type: 'model', response: [] });
  return items;
}

function modelResponse(m: ChatMessage): ChatModelResponse['response'] {
  const calls = (m.toolCalls ?? []).map((c) => ({ type: 'functionCall' as const, name: c.name, params: c.params, result: c.result ?? '' }));
  return [...(m.content ? [m.content] : []), ...calls];
}

/** The system prompt a reply uses: the setting (or the caller's override) and the conversation's own. */
export function systemText(conversation: Conversation, systemPrompt: string | null | undefined): string {
  const explicit = conversation.messages.filter((m) => m.role === 'system').map((m) => m.content);
  return [systemPrompt ?? '', ...explicit].filter((s) => s.trim().length > 0).join('\n\n');
}

/** A conversation a reply can answer: it ends with the user's message, or with tool calls that all have results. */
export function assertAnswerable(conversation: Conversation): void {
  const last = conversation.messages.at(-1);
  const continuesTools = last?.role === 'assistant' && !!last.toolCalls?.length && last.toolCalls.every((c) => c.result !== undefined);
  if (!last || (last.role !== 'user' && !continuesTools)) throw new NanochatError('A conversation must end with a user message, or with tool results.');
}

/**
 * The whole prompt of a conversation, untrimmed: what the engine evaluates when it fits the
 * context (`npm run prompt`, and the tests that compare it with the model's own template).
 */
export function conversationPrompt(model: LlamaModel, wrapper: ChatWrapper, conversation: Conversation,
  options: { systemPrompt: string | null; tools?: readonly ToolDefinition[] }): Token[] {
  assertAnswerable(conversation);
  const turns = conversation.messages.filter((m) => m.role !== 'system');
  const history = toChatHistory(systemText(conversation, options.systemPrompt), turns.slice(0, -1), turns.at(-1)!);
  return promptTokens(model, wrapper, history, options.tools?.length ? toChatModelFunctions(options.tools) : undefined);
}

/**
 * Tokens a prompt holds beyond its messages' own text, measured with the model's template: `fixed`
 * (the system prompt, the first message's framing and the reply's header) and `perMessage` (each further
 * message's role header and end marker). A caller that counts each message as its text plus
 * `perMessage` and stays within `budget - fixed + perMessage` always fits the budget.
 */
export function promptOverhead(model: LlamaModel, wrapper: ChatWrapper, systemPrompt: string | null): { fixed: number; perMessage: number } {
  const tokenizer = (model.fileInfo.metadata as { tokenizer?: { ggml?: { model?: string; add_space_prefix?: boolean } } }).tokenizer?.ggml;
  return overheadFrom((contents) => conversationPrompt(model, wrapper, {
    messages: contents.map((content, i) => ({ role: i % 2 === 0 ? 'user' as const : 'assistant' as const, content })),
  }, { systemPrompt }).length, tokenizer?.model === 'llama' && tokenizer.add_space_prefix !== false);
}

export const OVERHEAD_WORD = 'Hello';

/**
 * The arithmetic of promptOverhead, for any way of measuring a prompt of given message texts (the
 * engine's own, or a server's /apply-template). A SentencePiece vocabulary that prefixes a space to
 * each text counts a message's first word differently alone than inside the prompt, so it gets a
 * token of margin per message and once more, and the limit still holds; byte-level BPE vocabularies
 * (every catalog model) are counted exactly.
 */
export function overheadFrom(measure: (contents: string[]) => number, spacePrefix: boolean): { fixed: number; perMessage: number } {
  const w = OVERHEAD_WORD;
  const empty = measure(['']);
  const one = measure([w]);
  const three = measure([w, w, w]);
  const word = one - empty;
  const margin = spacePrefix ? 1 : 0;
  const fixed = one - word;
  return { fixed: fixed + margin, perMessage: Math.max(1, Math.ceil((three - 3 * word - fixed) / 2)) + margin };
}

/** Before a model is loaded (or on a server, which renders its own prompt): a safe guess of the same. */
export function estimatedPromptOverhead(systemPrompt: string | null): { fixed: number; perMessage: number } {
  return { fixed: Math.ceil((systemPrompt?.length ?? 0) / 3) + 24, perMessage: 8 };
}

/** The tokens a chat wrapper gives a history: what the engine evaluates. */
export function promptTokens(model: LlamaModel, wrapper: ChatWrapper, history: ChatHistoryItem[], functions?: ChatModelFunctions): Token[] {
  return renderPrompt(wrapper, history, functions).tokenize(model.tokenizer);
}

/** The same, letting the event loop run between rendering and tokenizing (each ~10-20 ms with VS Code's 27 tools). */
export async function promptTokensPausing(model: LlamaModel, wrapper: ChatWrapper, history: ChatHistoryItem[], functions: ChatModelFunctions | undefined,
  pause: () => Promise<void>): Promise<Token[]> {
  const text = renderPrompt(wrapper, history, functions);
  await pause();
  return tokenizeTextPausing(model, text, pause);
}

function renderPrompt(wrapper: ChatWrapper, history: ChatHistoryItem[], functions?: ChatModelFunctions) {
  return wrapper.generateContextState({ chatHistory: history, availableFunctions: functions, documentFunctionParams: functions ? true : undefined }).contextText;
}

// OpenAI's chat format (the shape Hugging Face chat templates take too), for `npm run prompt`.
const openAiToolCall = z.object({
  id: z.string().optional(),
  type: z.literal('function').optional(),
  function: z.object({ name: z.string().min(1), arguments: z.union([z.string(), z.record(z.string(), z.unknown())]) }),
});
const openAiMessage = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.string() }),
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({ role: z.literal('assistant'), content: z.string().nullable().optional(), tool_calls: z.array(openAiToolCall).optional() }),
  z.object({ role: z.literal('tool'), content: z.string(), tool_call_id: z.string().optional() }),
]);
export const openAiConversationSchema = z.object({
  messages: z.array(openAiMessage).min(1),
  tools: z.array(z.object({
    type: z.literal('function'),
    function: z.object({ name: z.string().min(1), description: z.string().optional(), parameters: z.record(z.string(), z.unknown()).optional() }),
  })).optional(),
});
export type OpenAiConversation = z.infer<typeof openAiConversationSchema>;

/** Reads a conversation in OpenAI's chat format; tool results join the call they answer (by id, else in order). */
export function fromOpenAiConversation(raw: unknown): { conversation: Conversation; tools: ToolDefinition[] } {
  const parsed = openAiConversationSchema.safeParse(raw);
  if (!parsed.success) {
    throw new NanochatError(`Not a conversation in OpenAI's chat format: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const messages: ChatMessage[] = [];
  for (const m of parsed.data.messages) {
    if (m.role === 'tool') {
      const call = [...messages].reverse().flatMap((x) => x.toolCalls ?? []).reverse()
        .find((c) => (m.tool_call_id !== undefined ? c.id === m.tool_call_id : true) && c.result === undefined);
      if (!call) throw new NanochatError(`A tool result${m.tool_call_id ? ` (${m.tool_call_id})` : ''} answers no tool call before it.`);
      call.result = m.content;
    } else if (m.role === 'assistant') {
      const toolCalls = m.tool_calls?.map((c) => ({
        id: c.id, name: c.function.name,
        params: typeof c.function.arguments === 'string' ? parseArguments(c.function.arguments) : c.function.arguments,
      }));
      messages.push({ role: 'assistant', content: m.content ?? '', ...(toolCalls?.length ? { toolCalls } : {}) });
    } else {
      messages.push({ role: m.role, content: m.content });
    }
  }
  const tools = (parsed.data.tools ?? []).map((t) => ({ name: t.function.name, description: t.function.description, parameters: t.function.parameters }));
  return { conversation: { messages }, tools };
}

function parseArguments(text: string): unknown {
  try { return JSON.parse(text); } catch { throw new NanochatError(`Tool call arguments are not JSON: ${text.slice(0, 80)}`); }
}
