import type { ChatHistoryItem, ChatModelFunctions, LlamaGrammar, Token, TokenBias } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { AsyncQueue } from '../asyncQueue';
import { Emitter, type Disposable } from '../events';
import { MessageTooLongError, PromptTooLongError, errorMessage } from '../errors';
import { silentLogger, type Logger } from '../log';
import type { LoadedModel, ModelManager } from '../engine/models';
import type { PooledSequence, TakeResult } from '../engine/sequencePool';
import type { PromptStates } from '../engine/promptStates';
import type { Settings } from '../settings';
import type { StopReason } from './stopReasons';
import { assertAnswerable, promptTokensPausing, systemText, toChatHistory } from './prompt';
import { toChatModelFunctions, type ToolCall, type ToolDefinition } from './tools';

export type ChatRole = 'system' | 'user' | 'assistant';
export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Tools an assistant message called, with their results. */
  toolCalls?: ToolCall[];
}
/**
 * A conversation. It ends with the user's message to answer, or with an assistant message whose
 * tool calls have results, which the model then continues. With an `id`, replies in one
 * conversation run one after another; the KV cache a reply reuses is chosen by its prompt's
 * tokens, never by the id.
 */
export interface Conversation { id?: string; messages: readonly ChatMessage[] }

export interface ReplyOptions {
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repeatPenalty?: number;
  seed?: number;
  /** Overrides nanochat.generationTimeoutSeconds, in milliseconds; 0 means no limit. */
  timeoutMs?: number;
  /** Overrides nanochat.systemPrompt; null sends no system prompt. */
  systemPrompt?: string | null;
  /** Constrains the output (used by tests and structured answers). */
  grammar?: LlamaGrammar;
  /** Tools the model may call instead of answering; calls end the reply and are listed in its stats. */
  tools?: readonly ToolDefinition[];
  /** Most tool calls in one reply (formats that allow several at once); unset leaves node-llama-cpp's default. */
  maxToolCalls?: number;
  /** Biases sampling, re-read before every token when given as a function. */
  tokenBias?: TokenBias | (() => TokenBias);
  /**
   * The caller sent exactly the history it wants (the model provider: VS Code budgets it with
   * maxInputTokens): nothing is left out, and a prompt that does not fit is refused with a clear message.
   */
  keepHistory?: boolean;
  /** Receives a thinking model's thoughts as they stream; they are never part of the reply's text. */
  onThought?: (text: string) => void;
}

export { STOP_REASONS, type StopReason } from './stopReasons';

export interface ReplyStats {
  model: string;
  /** Tokens of the whole prompt as the model saw it (system prompt, kept history, new message). */
  promptTokens: number;
  /** Prompt tokens actually evaluated for this reply; the rest came from the KV cache. */
  evaluatedPromptTokens: number;
  completionTokens: number;
  /** Of the completion tokens, those spent thinking (models that think, e.g. Qwen3). */
  thoughtTokens?: number;
  timeToFirstTokenMs: number | undefined;
  tokensPerSecond: number;
  totalMs: number;
  stopReason: StopReason;
  /** Earlier messages left out because the context window could not hold them. */
  droppedMessages: number;
  /** Tool calls the model made; the caller runs them and sends the results back. */
  toolCalls?: ToolCall[];
  error?: string;
}

export interface ChatReply extends AsyncIterable<string> {
  /** Resolves when the reply ends (also when cancelled); rejects only if it never started. */
  readonly stats: Promise<ReplyStats>;
}

export interface ChatActivity { generating: number; tokensPerSecond?: number }

/** Exactly what the model evaluated for a reply: "Nanochat: Show Prompt" and `npm run prompt` show it. */
export interface PromptView {
  model: string;
  /** node-llama-cpp's chat wrapper, and whether the model's own template wrote the text. */
  chatFormat: string;
  text: string;
  tokens: number[];
}

/**
 * Streams replies from the loaded model. Each conversation keeps its own context sequence, so a
 * follow-up evaluates only its new tokens; conversations beyond the context's sequences take the
 * least recently used one, and wait their turn when all are busy.
 */
export class ChatEngine implements Disposable {
  private readonly conversationLocks = new Map<string, Promise<unknown>>();
  private readonly activityEmitter = new Emitter<ChatActivity>();
  readonly onDidChangeActivity = this.activityEmitter.event;
  private generating = 0;
  private readonly log: Logger;
  /** The prompt of the most recent reply. */
  lastPrompt: PromptView | undefined;

  constructor(private readonly models: ModelManager, private readonly settings: () => Settings, log?: Logger,
    private readonly promptStates?: PromptStates) {
    this.log = log ?? silentLogger;
  }

  reply(conversation: Conversation, options: ReplyOptions = {}, signal?: AbortSignal): ChatReply {
    const requested = performance.now();
    const stop = new AbortController();
    const queue = new AsyncQueue<string>(() => stop.abort('cancelled'));
    const task = () => this.run(conversation, options, signal, stop, queue, requested);
    const stats = conversation.id === undefined ? task() : this.serialize(conversation.id, task);
    stats.catch((err) => queue.fail(err));
    return { stats, [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator]() };
  }

  /** Forgets every idle KV cache, so the next reply evaluates its whole prompt (benchmarks). */
  clearCaches(): void {
    this.models.model?.sequences.clear();
  }

  dispose(): void {
    this.activityEmitter.dispose();
  }

  private serialize<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.conversationLocks.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(task);
    const settled = next.catch(() => undefined);
    this.conversationLocks.set(id, settled);
    void settled.then(() => { if (this.conversationLocks.get(id) === settled) this.conversationLocks.delete(id); });
    return next;
  }

  private async run(conversation: Conversation, options: ReplyOptions, signal: AbortSignal | undefined,
    stop: AbortController, queue: AsyncQueue<string>, requested: number): Promise<ReplyStats> {
    const settings = this.settings();
    assertAnswerable(conversation);
    for (const m of conversation.messages) {
      if (m.content.length > settings.maxMessageLength) throw new MessageTooLongError(m.content.length, settings.maxMessageLength);
    }
    const label = conversation.id ?? 'a request';
    const onAbort = () => stop.abort('cancelled');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    let lease: ({ model: LoadedModel } & Disposable) | undefined;
    let slot: PooledSequence | undefined;
    let timer: NodeJS.Timeout | undefined;
    this.setGenerating(+1);
    try {
      // Stopped while the model was loading or every sequence was busy: nothing was generated.
      const cancelled = () => { queue.end(); return emptyStats(lease?.model.info.name ?? '', 'cancelled'); };
      try { lease = await this.models.acquire(stop.signal); } catch (err) { if (stop.signal.aborted) return cancelled(); throw err; }
      const loaded = lease.model;
      const maxTokens = options.maxTokens ?? settings.maxTokens;
      const functions = options.tools?.length ? toChatModelFunctions(options.tools) : undefined;
      // Converting VS Code's tool list and rendering its 9K-token prompt are ~10-30 ms each: the
      // event loop runs between the steps (see yieldToLoop).
      await yieldToLoop();
      const { history, promptTokens, tokens, dropped } = await fitHistory(loaded, conversation, options, settings, maxTokens, functions);
      if (dropped > 0) this.log.debug(`Conversation ${label}: ${dropped} earlier messages left out to fit the context.`);
      this.lastPrompt = describePrompt(loaded, tokens);
      // Rendering and tokenizing an agent-sized prompt (9K tokens) takes ~20 ms, and node-llama-cpp does
      // its own next: let the event loop run in between.
      await yieldToLoop();
      let taken: TakeResult;
      try {
        taken = await loaded.sequences.take(tokens, stop.signal);
        slot = taken.slot;
        this.log.debug(`Reply in ${label}: sequence by ${taken.reason}, ${taken.reusedTokens} of ${tokens.length} prompt tokens cached.`);
      } catch (err) { if (stop.signal.aborted) return cancelled(); throw err; }
      const sequence = slot.sequence;
      const meterBefore = sequence.tokenMeter.getState();
      // A long preamble (system prompt, tool schemas) the sequence lacks: from its saved state when
      // an earlier session left one, else evaluated once and saved for the next start.
      if (this.promptStates && taken.reusedTokens < this.promptStates.minTokens && tokens.length >= this.promptStates.minTokens) {
        const preamble = await preambleLength(loaded, conversation, options, settings, tokens, functions);
        await yieldToLoop();
        const use = await this.promptStates.prepare(loaded, sequence, tokens, preamble);
        if (use !== 'none') this.log.debug(`Reply in ${label}: the ${preamble}-token preamble was ${use === 'loaded' ? 'loaded from its saved state' : 'evaluated and saved'}.`);
      }
      const timeoutMs = options.timeoutMs ?? settings.generationTimeoutSeconds * 1000;
      let timedOut = false;
      timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; stop.abort('timeout'); }, timeoutMs) : undefined;
      let firstTokenAt: number | undefined;
      let lastActivity = 0;
      let stopReason: StopReason = 'done';
      let error: string | undefined;
      let toolCalls: ToolCall[] | undefined;
      let thoughtTokens = 0;
      const thinkingBudget = settings.thinking === 'off' ? 0 : settings.thinkingBudget > 0 ? settings.thinkingBudget : undefined;
      try {
        const seed = options.seed ?? settings.seed;
        const toolsOrGrammar = functions
          ? { functions, documentFunctionParams: true, ...(options.maxToolCalls ? { maxParallelFunctionCalls: options.maxToolCalls } : {}) }
          : { grammar: options.grammar };
        await yieldToLoop();
        const response = await slot.chat.generateResponse(history, {
          ...toolsOrGrammar,
          signal: stop.signal,
          stopOnAbortSignal: true,
          maxTokens,
          temperature: options.temperature ?? settings.temperature,
          topK: options.topK ?? settings.topK,
          topP: options.topP ?? settings.topP,
          seed: seed >= 0 ? seed : undefined,
          repeatPenalty: (options.repeatPenalty ?? settings.repeatPenalty) > 1
            ? { penalty: options.repeatPenalty ?? settings.repeatPenalty } : false,
          tokenBias: options.tokenBias,
          ...(thinkingBudget !== undefined ? { budgets: { thoughtTokens: thinkingBudget } } : {}),
          onResponseChunk: (chunk) => {
            if (chunk.type !== 'segment' || chunk.segmentType !== 'thought') return;
            thoughtTokens += chunk.tokens.length;
            firstTokenAt ??= performance.now();
            if (chunk.text) options.onThought?.(chunk.text);
          },
          onTextChunk: (text: string) => {
            if (!text) return;
            firstTokenAt ??= performance.now();
            queue.push(text);
            const now = performance.now();
            if (now - lastActivity > 250) {
              lastActivity = now;
              const produced = sequence.tokenMeter.getState().usedOutputTokens - meterBefore.usedOutputTokens;
              const seconds = (now - firstTokenAt) / 1000;
              this.activityEmitter.fire({ generating: this.generating, tokensPerSecond: seconds > 0 ? produced / seconds : undefined });
            }
          },
        });
        if (response.functionCalls?.length) {
          toolCalls = response.functionCalls.map((c) => ({ name: c.functionName, params: c.params }));
        }
        const reason = response.metadata.stopReason;
        stopReason = reason === 'abort' ? (timedOut ? 'timeout' : 'cancelled') : reason === 'maxTokens' ? 'maxTokens' : 'done';
      } catch (err) {
        if (stop.signal.aborted) {
          stopReason = timedOut ? 'timeout' : 'cancelled';
        } else {
          stopReason = 'error';
          error = errorMessage(err);
          this.log.error(`Generation failed in ${label}: ${error}`);
        }
      }
      const meterAfter = sequence.disposed ? meterBefore : sequence.tokenMeter.getState();
      const ended = performance.now();
      const completionTokens = meterAfter.usedOutputTokens - meterBefore.usedOutputTokens;
      const generationSeconds = firstTokenAt === undefined ? 0 : (ended - firstTokenAt) / 1000;
      const stats: ReplyStats = {
        model: loaded.info.name,
        promptTokens,
        evaluatedPromptTokens: meterAfter.usedInputTokens - meterBefore.usedInputTokens,
        completionTokens,
        ...(thoughtTokens > 0 ? { thoughtTokens } : {}),
        // From the request, not from when a sequence was free: what the user waited.
        timeToFirstTokenMs: firstTokenAt === undefined ? undefined : Math.round(firstTokenAt - requested),
        tokensPerSecond: generationSeconds > 0 && completionTokens > 1 ? (completionTokens - 1) / generationSeconds : 0,
        totalMs: Math.round(ended - requested),
        stopReason,
        droppedMessages: dropped,
        ...(toolCalls ? { toolCalls } : {}),
        ...(error ? { error } : {}),
      };
      this.log.info(`Reply in ${label}: ${stats.completionTokens} tokens${thoughtTokens ? ` (${thoughtTokens} thinking)` : ''}, ${stats.tokensPerSecond.toFixed(1)} tok/s, first token ${stats.timeToFirstTokenMs ?? '-'} ms, prompt ${stats.promptTokens} (${stats.evaluatedPromptTokens} evaluated), ${stats.stopReason}.`);
      queue.end();
      return stats;
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (slot) lease?.model.sequences.release(slot);
      lease?.dispose();
      this.setGenerating(-1);
    }
  }

  private setGenerating(delta: number): void {
    this.generating += delta;
    this.activityEmitter.fire({ generating: this.generating });
  }
}

function describePrompt(loaded: LoadedModel, tokens: readonly Token[]): PromptView {
  let text: string | undefined;
  return {
    model: loaded.info.name,
    chatFormat: `${loaded.info.chatFormat}${loaded.info.chatTemplate === 'none' ? '' : ', model\'s own template'}`,
    // Detokenized when someone looks (Show Prompt): an agent's 9K-token prompt costs milliseconds.
    get text() { return (text ??= loaded.model.detokenize(tokens, true)); },
    tokens: [...tokens],
  };
}

/**
 * Builds the chat history for node-llama-cpp and drops the oldest turns (never the system prompt
 * or the new message) until the prompt (tool schemas included) leaves room for the reply in the
 * context window. Returns the prompt's tokens too: the sequence pool matches them against its caches.
 */
async function fitHistory(loaded: LoadedModel, conversation: Conversation, options: ReplyOptions, settings: Settings, maxTokens: number,
  functions?: ChatModelFunctions): Promise<{ history: ChatHistoryItem[]; promptTokens: number; tokens: Token[]; dropped: number }> {
  const system = systemText(conversation, options.systemPrompt === undefined ? settings.systemPrompt : options.systemPrompt);
  const turns = conversation.messages.filter((m) => m.role !== 'system');
  const current = turns.at(-1)!;
  let earlier = turns.slice(0, -1);
  let dropped = 0;
  if (earlier.length > settings.maxHistoryMessages && !options.keepHistory) {
    dropped = historyCut(earlier.length, settings.maxHistoryMessages);
    earlier = earlier.slice(dropped);
  }
  const budget = promptBudget(loaded.context.contextSize, maxTokens);
  const build = (kept: readonly ChatMessage[]) => toChatHistory(system, kept, current);
  const measure = (history: ChatHistoryItem[]) => promptTokensPausing(loaded.model, loaded.chatWrapper, history, functions, yieldToLoop);
  let history = build(earlier);
  let tokens = await measure(history);
  if (tokens.length > budget && earlier.length > 0 && !options.keepHistory) {
    // Cut at checkpoints that depend only on the earlier messages themselves (each quarter of the
    // window's worth of their tokens, at the start of an exchange): the same cut holds turn after
    // turn, so later turns extend a cached prefix, and the next cut comes a quarter window later.
    // Cutting only what overflows would move the start, and re-evaluate every prompt, each turn.
    const checkpoints = cutCheckpoints(earlier, (m) => loaded.model.tokenize(m.content, false).length, Math.max(16, Math.floor(budget / 4)));
    // The smallest cut that fits, by bisection: each try renders and tokenizes the whole prompt, and a
    // long conversation has many checkpoints (the last one, everything, always counts as fitting).
    const fits = new Map<number, { history: ChatHistoryItem[]; tokens: Token[] }>();
    const tryCut = async (i: number) => {
      const kept = earlier.slice(checkpoints[i]);
      const built = build(kept);
      const result = { history: built, tokens: await measure(built) };
      fits.set(i, result);
      await yieldToLoop();
      return result.tokens.length <= budget;
    };
    let low = 0;
    let high = checkpoints.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (await tryCut(middle)) high = middle; else low = middle + 1;
    }
    if (!fits.has(low)) await tryCut(low);
    const chosen = fits.get(low)!;
    history = chosen.history;
    tokens = chosen.tokens;
    earlier = earlier.slice(checkpoints[low]);
    dropped += checkpoints[low]!;
  }
  if (tokens.length > budget) throw new PromptTooLongError(tokens.length, budget, Object.keys(functions ?? {}).length, options.keepHistory && earlier.length > 0);
  return { history, promptTokens: tokens.length, tokens, dropped };
}

/**
 * Lets the event loop go round once: timers, I/O (VS Code's messages), then on. One setImmediate is
 * not enough from an I/O callback: it runs in the same turn, and two long stretches of work on either
 * side of it (fitting the history, finding the preamble: ~20-30 ms each with 27 tools) become one.
 */
function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * How many of the prompt's first tokens are its preamble: everything before the first user message's
 * text (the system prompt, the tool schemas, the template's opening), the same in every conversation
 * that shares them.
 */
async function preambleLength(loaded: LoadedModel, conversation: Conversation, options: ReplyOptions, settings: Settings, tokens: readonly Token[], functions?: ChatModelFunctions): Promise<number> {
  const system = systemText(conversation, options.systemPrompt === undefined ? settings.systemPrompt : options.systemPrompt);
  const bare = await promptTokensPausing(loaded.model, loaded.chatWrapper, toChatHistory(system, [], { role: 'user', content: '' }), functions, yieldToLoop);
  let i = 0;
  while (i < bare.length && i < tokens.length && bare[i] === tokens[i]) i++;
  return i;
}

/**
 * Where a history may be cut: after each `quarter` tokens of its messages (counted by `size`), moved
 * forward to the start of an exchange (a user message), then everything. Depends only on the
 * messages, so a conversation that grows keeps the same cut until it overflows again.
 */
export function cutCheckpoints(earlier: readonly ChatMessage[], size: (m: ChatMessage) => number, quarter: number): number[] {
  const cuts: number[] = [];
  let total = 0;
  let next = quarter;
  for (let i = 0; i < earlier.length; i++) {
    total += size(earlier[i]!) + 4;
    if (total < next) continue;
    let cut = i + 1;
    while (cut < earlier.length && earlier[cut]!.role !== 'user') cut++;
    if (cut !== cuts.at(-1)) cuts.push(cut);
    while (next <= total) next += quarter;
  }
  if (cuts.at(-1) !== earlier.length) cuts.push(earlier.length);
  return cuts;
}

/** Room for the reply (the most it may generate, at most half the window); the prompt gets the rest. */
export function replyRoom(contextSize: number, maxTokens: number): number {
  return Math.min(maxTokens, Math.floor(contextSize / 2));
}

export function promptBudget(contextSize: number, maxTokens: number): number {
  return contextSize - replyRoom(contextSize, maxTokens);
}

/**
 * How many of the oldest messages to leave out so that at most `limit` remain. The cut moves in
 * steps of half the limit (whole exchanges), not one message per turn: a history that slides by one
 * message each turn changes the prompt's start every turn, and every turn then re-evaluates its whole
 * prompt; with steps, the cached prefix holds for several turns in a row.
 */
export function historyCut(messages: number, limit: number): number {
  const overflow = messages - limit;
  if (overflow <= 0) return 0;
  // At least two exchanges, else half the limit (rounded to whole exchanges).
  const step = limit < 4 ? 2 : Math.max(4, 2 * Math.ceil(limit / 4));
  return Math.min(messages, Math.ceil(overflow / step) * step);
}

function emptyStats(model: string, stopReason: StopReason): ReplyStats {
  return { model, promptTokens: 0, evaluatedPromptTokens: 0, completionTokens: 0, timeToFirstTokenMs: undefined, tokensPerSecond: 0, totalMs: 0, stopReason, droppedMessages: 0 };
}
