import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError, AuthenticationError, PermissionDeniedError } from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { AsyncQueue } from '../asyncQueue';
import { inputLimits, type BackendModel, type ChatBackend } from '../chat/backend';
import type { ChatActivity, ChatMessage, ChatReply, Conversation, PromptView, ReplyOptions, ReplyStats } from '../chat/engine';
import type { StopReason } from '../chat/stopReasons';
import { OVERHEAD_WORD, estimatedPromptOverhead, overheadFrom } from '../chat/prompt';
import type { ToolCall } from '../chat/tools';
import type { CompletionRequest } from '../completion/fim';
import { MessageTooLongError, NanochatError, errorMessage } from '../errors';
import { Emitter } from '../events';
import { silentLogger, type Logger } from '../log';
import type { Settings } from '../settings';
import type { TokenCount } from '../tokens/tokenCounter';

/** What the status bar and the panel show of a server. */
export type ServerState =
  | { kind: 'unconfigured' }
  | { kind: 'connecting'; url: string }
  | { kind: 'connected'; url: string; model: string; latencyMs: number }
  | { kind: 'unreachable'; url: string; message: string }
  | { kind: 'unauthorized'; url: string; message: string };

export class ServerError extends NanochatError {
  constructor(readonly problem: 'unconfigured' | 'unreachable' | 'unauthorized' | 'server' | 'no-model' | 'timeout', message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface ServerBackendOptions {
  settings: () => Settings;
  /** The API key for a server origin (SecretStorage in VS Code); it is sent to that origin only. */
  apiKey?: (origin: string) => Promise<string | undefined>;
  /** Persists the chosen server model (the `nanochat.server.model` setting). */
  persistModel?: (id: string) => Promise<void>;
  /** VS Code's fetch applies the editor's proxy settings. */
  fetch?: typeof globalThis.fetch;
  log?: Logger;
}

/** llama-server's extra fields: per-reply timings in the last chunk. */
interface LlamaServerTimings { prompt_n?: number; predicted_n?: number; predicted_per_second?: number; cache_n?: number }

/**
 * An OpenAI-compatible server (llama-server, vLLM, Ollama, LM Studio) behind the ChatBackend seam.
 * Streaming, SSE parsing, retries and errors are the maintained `openai` client's; this class maps
 * them to nanochat's replies, stats and sentences.
 */
export class ServerBackend implements ChatBackend {
  readonly kind = 'server' as const;
  private readonly stateEmitter = new Emitter<ServerState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private readonly activityEmitter = new Emitter<ChatActivity>();
  readonly onDidChangeActivity = this.activityEmitter.event;
  private readonly modelsChanged = new Emitter<void>();
  readonly onDidChangeModels = this.modelsChanged.event;
  private current: ServerState = { kind: 'unconfigured' };
  private knownUrl: string | undefined;
  private readonly counts = new Map<string, TokenCount>();
  private lastRequest: { model: string; messages: ChatCompletionMessageParam[]; tools?: ChatCompletionTool[] } | undefined;
  private models: BackendModel[] = [];
  private generating = 0;
  private readonly log: Logger;

  constructor(private readonly options: ServerBackendOptions) {
    this.log = options.log ?? silentLogger;
  }

  get state(): ServerState { return this.current; }

  /** Call when settings change: another URL is another server (and another key). */
  onSettingsChanged(): void {
    const url = this.url;
    if (url !== this.knownUrl) {
      this.knownUrl = url;
      this.models = [];
      this.setState(url ? { kind: 'connecting', url } : { kind: 'unconfigured' });
    }
    this.modelsChanged.fire();
  }

  /** Connects (lists the models) unless connected already; failures show in the state. */
  ensureConnected(): void {
    if (this.current.kind !== 'connected') void this.refresh().catch(() => undefined);
  }

  /** Asks the server for its models (and their context sizes); updates the state. */
  async refresh(signal?: AbortSignal): Promise<BackendModel[]> {
    const url = this.url;
    if (!url) {
      this.setState({ kind: 'unconfigured' });
      throw new ServerError('unconfigured', 'No server is set: put its URL in nanochat.server.url (for example http://gpu-box:8080/v1).');
    }
    const started = performance.now();
    try {
      const client = await this.client();
      const page = await client.models.list({ signal });
      const latencyMs = Math.round(performance.now() - started);
      const settings = this.options.settings();
      const listed = page.data;
      const fallbackContext = await this.serverContextSize(signal);
      // llama-server shows its template's framing (/apply-template): exact limits; other servers get an estimate.
      const overhead = (fallbackContext !== undefined && listed.length === 1 ? await this.serverPromptOverhead(settings.systemPrompt, signal).catch((err: unknown) => { this.log.debug(`The server does not show its template's framing (${errorMessage(err)}); estimating it.`); return undefined; }) : undefined)
        ?? estimatedPromptOverhead(settings.systemPrompt);
      this.models = await Promise.all(listed.map(async (m) => {
        const extra = m as unknown as { max_model_len?: number };
        // vLLM names it in the list; llama-server in /props; Ollama per model in /api/show.
        // /api/show only for short lists: not one request per model of a large hosted catalogue.
        const contextSize = extra.max_model_len ?? fallbackContext
          ?? (listed.length <= 20 ? await this.ollamaContextSize(m.id, signal) : undefined) ?? settings.contextSize;
        return { id: m.id, name: shortName(m.id), family: m.owned_by || 'server', contextSize, ...inputLimits(contextSize, settings.maxTokens, overhead) };
      }));
      const selected = this.selectedModel();
      this.setState({ kind: 'connected', url, model: selected?.id ?? '', latencyMs });
      this.log.info(`Server ${url}: ${this.models.length} model(s), ${latencyMs} ms.`);
      this.modelsChanged.fire();
      return this.models;
    } catch (err) {
      throw this.fail(err);
    }
  }

  async listModels(): Promise<BackendModel[]> {
    if (this.models.length > 0) return this.models;
    try {
      return await this.refresh();
    } catch (err) {
      this.log.warn(errorMessage(err));
      return [];
    }
  }

  selectedModel(): BackendModel | undefined {
    const wanted = this.options.settings()['server.model'];
    return this.models.find((m) => m.id === wanted) ?? (wanted ? undefined : this.models[0]);
  }

  async selectModel(id: string): Promise<void> {
    await this.options.persistModel?.(id);
  }

  async prepare(signal?: AbortSignal): Promise<BackendModel> {
    if (this.models.length === 0 || !this.selectedModel()) await this.refresh(signal);
    const chosen = this.selectedModel();
    if (chosen) return chosen;
    const wanted = this.options.settings()['server.model'];
    throw new ServerError('no-model', wanted
      ? `The server at ${this.url} has no model "${wanted}". Pick one with "Nanochat: Select Model…".`
      : `The server at ${this.url} lists no models (GET /v1/models); is one loaded?`);
  }

  reply(conversation: Conversation, options: ReplyOptions = {}, signal?: AbortSignal): ChatReply {
    const requested = performance.now();
    const stop = new AbortController();
    const queue = new AsyncQueue<string>(() => stop.abort('cancelled'));
    const stats = this.run(conversation, options, signal, stop, queue, requested);
    stats.catch((err) => queue.fail(err));
    return { stats, [Symbol.asyncIterator]: () => queue[Symbol.asyncIterator]() };
  }

  /**
   * An inline completion from llama-server's /infill (its own FIM layout, other files as input_extra,
   * the prompt cached in its slot). Servers without /infill answer with an error, said plainly.
   */
  async infill(request: CompletionRequest, options: { maxTokens: number }, signal: AbortSignal): Promise<{ text: string; promptTokens: number; evaluatedTokens: number; generatedTokens: number }> {
    if (!this.origin) throw new ServerError('unconfigured', 'No server is set: put its URL in nanochat.server.url.');
    let answer: { content?: unknown; tokens_evaluated?: number; tokens_predicted?: number; timings?: { prompt_n?: number; predicted_n?: number } };
    try {
      answer = await this.fetchJson(`${this.origin}/infill`, {
        input_prefix: request.prefix, input_suffix: request.suffix,
        input_extra: (request.extra ?? []).map((f) => ({ filename: f.path, text: f.text })),
        n_predict: options.maxTokens, temperature: 0, cache_prompt: true, stream: false,
      }, signal) as typeof answer;
    } catch (err) {
      if (signal.aborted) throw err;
      throw new NanochatError(`The server gave no inline completion (${errorMessage(err)}); llama-server answers /infill for a model with fill-in-the-middle tokens, such as Qwen2.5-Coder.`);
    }
    if (typeof answer?.content !== 'string') throw new NanochatError('The server\'s /infill answer has no text.');
    return {
      text: answer.content,
      promptTokens: answer.tokens_evaluated ?? 0,
      evaluatedTokens: answer.timings?.prompt_n ?? answer.tokens_evaluated ?? 0,
      generatedTokens: answer.timings?.predicted_n ?? answer.tokens_predicted ?? 0,
    };
  }

  /**
   * The server renders its own prompt: llama-server's /apply-template shows it for the last request's
   * messages, and /tokenize gives its tokens. Servers without them have nothing to show.
   */
  async lastPrompt(): Promise<PromptView | undefined> {
    const last = this.lastRequest;
    if (!last || !this.origin) return undefined;
    try {
      const applied = await this.fetchJson(`${this.origin}/apply-template`, { messages: last.messages, ...(last.tools ? { tools: last.tools } : {}) }) as { prompt?: unknown };
      if (typeof applied?.prompt !== 'string') return undefined;
      const tokenized = await this.fetchJson(`${this.origin}/tokenize`, { content: applied.prompt, add_special: true, parse_special: true }) as { tokens?: unknown[] };
      const tokens = Array.isArray(tokenized?.tokens) ? tokenized.tokens.filter((t): t is number => typeof t === 'number') : [];
      return { model: last.model, chatFormat: "the server's own template (/apply-template)", text: applied.prompt, tokens };
    } catch (err) {
      this.log.debug(`The server cannot show its prompt (${errorMessage(err)}).`);
      return undefined;
    }
  }

  async countTokens(text: string): Promise<TokenCount> {
    const origin = this.origin;
    // VS Code asks for the same texts again and again (each message of a request): one request each.
    const key = `${origin}\u0000${this.options.settings()['server.model']}\u0000${text}`;
    const known = this.counts.get(key);
    if (known) return known;
    const count = await this.countOnServer(origin, text);
    if (count.engine === 'server') {
      if (this.counts.size >= 1000) this.counts.delete(this.counts.keys().next().value!);
      this.counts.set(key, count);
    }
    return count;
  }

  private async countOnServer(origin: string | undefined, text: string): Promise<TokenCount> {
    if (origin) {
      try {
        // llama-server's /tokenize (vLLM's takes `prompt`; it answers `count`).
        const response = await this.fetchJson(`${origin}/tokenize`, { content: text, prompt: text, add_special: false, parse_special: false, model: this.selectedModel()?.id });
        const tokens = (response as { tokens?: unknown[]; count?: number } | undefined);
        if (typeof tokens?.count === 'number') return { tokens: tokens.count, engine: 'server' };
        if (Array.isArray(tokens?.tokens)) return { tokens: tokens.tokens.length, engine: 'server' };
      } catch (err) {
        this.log.debug(`The server cannot count tokens (${errorMessage(err)}); estimating.`);
      }
    }
    return { tokens: Math.ceil(text.length / 4), engine: 'estimate' };
  }

  dispose(): void {
    this.stateEmitter.dispose();
    this.activityEmitter.dispose();
    this.modelsChanged.dispose();
  }

  private async run(conversation: Conversation, options: ReplyOptions, signal: AbortSignal | undefined,
    stop: AbortController, queue: AsyncQueue<string>, requested: number): Promise<ReplyStats> {
    const settings = this.options.settings();
    for (const m of conversation.messages) {
      if (m.content.length > settings.maxMessageLength) throw new MessageTooLongError(m.content.length, settings.maxMessageLength);
    }
    const onAbort = () => stop.abort('cancelled');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const timeoutMs = options.timeoutMs ?? settings.generationTimeoutSeconds * 1000;
    let timedOut = false;
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; stop.abort('timeout'); }, timeoutMs) : undefined;
    this.setGenerating(+1);
    let text = '';
    let firstTokenAt: number | undefined;
    let usage: ChatCompletionChunk['usage'] | undefined;
    let timings: LlamaServerTimings | undefined;
    let finish: string | null | undefined;
    let chunks = 0;
    const calls = new Map<number, { id?: string; name: string; args: string }>();
    let model = '';
    try {
      model = (await this.prepare(stop.signal)).id;
      const client = await this.client();
      const turns = conversation.messages.filter((m) => m.role !== 'system');
      // The model provider's requests (keepHistory) go whole: VS Code chose them within maxInputTokens.
      const earlier = options.keepHistory ? turns.slice(0, -1) : settings.maxHistoryMessages > 0 ? turns.slice(0, -1).slice(-settings.maxHistoryMessages) : [];
      const kept = [...earlier, turns.at(-1)!];
      const systemPrompt = options.systemPrompt === undefined ? settings.systemPrompt : options.systemPrompt;
      const system = [systemPrompt ?? '', ...conversation.messages.filter((m) => m.role === 'system').map((m) => m.content)].filter((s) => s.trim()).join('\n\n');
      const messages: ChatCompletionMessageParam[] = [...(system ? [{ role: 'system' as const, content: system }] : []), ...kept.flatMap(toOpenAi)];
      const tools: ChatCompletionTool[] | undefined = options.tools?.length
        ? options.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: (t.parameters ?? { type: 'object', properties: {} }) as Record<string, unknown> } }))
        : undefined;
      this.lastRequest = { model, messages, tools };
      const seed = options.seed ?? settings.seed;
      const body = {
        model, messages, stream: true as const, stream_options: { include_usage: true },
        max_tokens: options.maxTokens ?? settings.maxTokens,
        temperature: options.temperature ?? settings.temperature,
        top_p: options.topP ?? settings.topP,
        ...(seed >= 0 ? { seed } : {}),
        ...(tools ? { tools } : {}),
        // llama-server and vLLM read these too; OpenAI ignores unknown sampling fields.
        top_k: options.topK ?? settings.topK,
        repeat_penalty: options.repeatPenalty ?? settings.repeatPenalty,
      };
      const stream = await client.chat.completions.create(body, { signal: stop.signal, timeout: settings['server.timeoutSeconds'] * 1000 });
      // The server answered: whatever failed before (a restart, a network blip) is over.
      if (this.current.kind !== 'connected' && this.url) this.setState({ kind: 'connected', url: this.url, model, latencyMs: Math.round(performance.now() - requested) });
      for await (const chunk of stream) {
        chunks++;
        const choice = chunk.choices?.[0];
        const delta = choice?.delta;
        // llama-server (with --reasoning-format), vLLM and DeepSeek send a thinking model's thoughts apart.
        const reasoning = (delta as { reasoning_content?: string } | undefined)?.reasoning_content;
        if (reasoning) {
          firstTokenAt ??= performance.now();
          options.onThought?.(reasoning);
        }
        if (delta?.content) {
          firstTokenAt ??= performance.now();
          text += delta.content;
          queue.push(delta.content);
        }
        for (const call of delta?.tool_calls ?? []) {
          firstTokenAt ??= performance.now();
          const entry = calls.get(call.index) ?? { name: '', args: '' };
          if (call.id) entry.id = call.id;
          if (call.function?.name) entry.name += call.function.name;
          if (call.function?.arguments) entry.args += call.function.arguments;
          calls.set(call.index, entry);
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) usage = chunk.usage;
        const extra = (chunk as unknown as { timings?: LlamaServerTimings }).timings;
        if (extra) timings = extra;
      }
      const toolCalls: ToolCall[] = [...calls.values()].map((c) => ({ ...(c.id ? { id: c.id } : {}), name: c.name, params: parseArguments(c.args) }));
      // An abort can end the stream quietly (the client stops reading): it is still a stop, not an end.
      const stopReason: StopReason = stop.signal.aborted ? (timedOut ? 'timeout' : 'cancelled') : finish === 'length' ? 'maxTokens' : 'done';
      return this.stats(model, requested, firstTokenAt, { text, chunks, usage, timings, stopReason, toolCalls, queue });
    } catch (err) {
      if (stop.signal.aborted || err instanceof APIUserAbortError) {
        return this.stats(model, requested, firstTokenAt, { text, chunks, usage, timings, stopReason: timedOut ? 'timeout' : 'cancelled', queue });
      }
      const failure = this.fail(err);
      if (chunks === 0 && !text) throw failure;
      // The stream broke after text arrived (the server died, a malformed event): keep what came.
      this.log.error(`Server reply failed after ${text.length} characters: ${failure.message}`);
      return this.stats(model, requested, firstTokenAt, { text, chunks, usage, timings, stopReason: 'error', error: failure.message, queue });
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      this.setGenerating(-1);
    }
  }

  private stats(model: string, requested: number, firstTokenAt: number | undefined, r: {
    text: string; chunks: number; usage?: ChatCompletionChunk['usage']; timings?: LlamaServerTimings; stopReason: StopReason;
    toolCalls?: ToolCall[]; error?: string; queue: AsyncQueue<string>;
  }): ReplyStats {
    const ended = performance.now();
    const completionTokens = r.usage?.completion_tokens ?? r.timings?.predicted_n ?? 0;
    const seconds = firstTokenAt === undefined ? 0 : (ended - firstTokenAt) / 1000;
    const stats: ReplyStats = {
      model: shortName(model),
      promptTokens: r.usage?.prompt_tokens ?? 0,
      evaluatedPromptTokens: r.timings?.prompt_n ?? r.usage?.prompt_tokens ?? 0,
      completionTokens,
      timeToFirstTokenMs: firstTokenAt === undefined ? undefined : Math.round(firstTokenAt - requested),
      tokensPerSecond: r.timings?.predicted_per_second ?? (seconds > 0 && completionTokens > 1 ? (completionTokens - 1) / seconds : 0),
      totalMs: Math.round(ended - requested),
      stopReason: r.stopReason,
      droppedMessages: 0,
      ...(r.toolCalls?.length ? { toolCalls: r.toolCalls } : {}),
      ...(r.error ? { error: r.error } : {}),
    };
    this.log.info(`Server reply: ${stats.completionTokens} tokens, ${stats.tokensPerSecond.toFixed(1)} tok/s, first token ${stats.timeToFirstTokenMs ?? '-'} ms, prompt ${stats.promptTokens} (${stats.evaluatedPromptTokens} evaluated), ${stats.stopReason}.`);
    r.queue.end();
    return stats;
  }

  /** A clear sentence for every way a server request fails; the state follows it. */
  private fail(err: unknown): ServerError {
    const url = this.url ?? '';
    if (err instanceof ServerError) return err;
    let error: ServerError;
    if (err instanceof AuthenticationError || err instanceof PermissionDeniedError) {
      error = new ServerError('unauthorized', `The server at ${this.origin} refused the request (${err.status}): set its API key with "Nanochat: Set Server API Key".`, { cause: err });
      this.setState({ kind: 'unauthorized', url, message: error.message });
      return error;
    }
    if (err instanceof APIConnectionTimeoutError) {
      error = new ServerError('timeout', `The server at ${url} did not answer within ${this.options.settings()['server.timeoutSeconds']} s (nanochat.server.timeoutSeconds).`, { cause: err });
    } else if (err instanceof APIConnectionError) {
      error = new ServerError('unreachable', `Cannot reach the server at ${url}: ${networkReason(err)}. Is it running, and is nanochat.server.url right?`, { cause: err });
    } else if (err instanceof APIError) {
      error = new ServerError('server', `The server at ${url} answered ${err.status ?? 'with an error'}: ${apiMessage(err)}`, { cause: err });
      this.log.error(error.message);
      return error;
    } else {
      error = new ServerError('server', `The server at ${url} sent something nanochat cannot read: ${errorMessage(err)}`, { cause: err });
      this.log.error(error.message);
      return error;
    }
    this.setState({ kind: 'unreachable', url, message: error.message });
    this.log.warn(error.message);
    return error;
  }

  private get url(): string | undefined {
    return this.options.settings()['server.url'].replace(/\/+$/, '') || undefined;
  }

  /** scheme://host:port of the server: the only place its API key goes. */
  private get origin(): string | undefined {
    const url = this.url;
    try { return url ? new URL(url).origin : undefined; } catch { return undefined; }
  }

  private async client(): Promise<OpenAI> {
    const url = this.url!;
    const key = await this.options.apiKey?.(this.origin!);
    // One retry: a pooled keep-alive socket that the server has just closed fails before the request
    // reaches it (undici's "other side closed"); the client retries only such connection errors, 408/429 and 5xx.
    return new OpenAI({ baseURL: url, apiKey: key || 'no-key', maxRetries: 1, fetch: this.options.fetch, timeout: this.options.settings()['server.timeoutSeconds'] * 1000 });
  }

  /** promptOverhead (../chat/prompt.ts) measured with the server's own template and tokenizer. */
  private async serverPromptOverhead(systemPrompt: string, signal?: AbortSignal): Promise<{ fixed: number; perMessage: number }> {
    const tokens = async (content: string, special: boolean) => {
      const answer = await this.fetchJson(`${this.origin}/tokenize`, { content, add_special: special, parse_special: special }, signal) as { tokens?: unknown[] };
      if (!Array.isArray(answer?.tokens)) throw new Error('no tokens');
      return answer.tokens.length;
    };
    const prompt = async (contents: string[]) => {
      const messages = [...(systemPrompt ? [{ role: 'system', content: systemPrompt }] : []),
        ...contents.map((content, i) => ({ role: i % 2 === 0 ? 'user' : 'assistant', content }))];
      const applied = await this.fetchJson(`${this.origin}/apply-template`, { messages }, signal) as { prompt?: unknown };
      if (typeof applied?.prompt !== 'string') throw new Error('no prompt');
      return tokens(applied.prompt, true);
    };
    const sizes = new Map<string, number>();
    for (const contents of [[''], [OVERHEAD_WORD], [OVERHEAD_WORD, OVERHEAD_WORD, OVERHEAD_WORD]]) sizes.set(contents.join('|'), await prompt(contents));
    // A SentencePiece vocabulary shows its space prefix in the first piece of a text (▁Hello).
    const pieces = await this.fetchJson(`${this.origin}/tokenize`, { content: OVERHEAD_WORD, add_special: false, with_pieces: true }, signal) as { tokens?: Array<{ piece?: unknown }> };
    const first = pieces?.tokens?.[0]?.piece;
    return overheadFrom((contents) => sizes.get(contents.join('|'))!, typeof first === 'string' && /^[\u2581 ]/.test(first));
  }

  /** llama-server's /props: the context a request gets (per slot). Other servers have none. */
  private async serverContextSize(signal?: AbortSignal): Promise<number | undefined> {
    const props = await this.fetchJson(`${this.origin}/props`, undefined, signal).catch(() => undefined) as { default_generation_settings?: { n_ctx?: number } } | undefined;
    const n = props?.default_generation_settings?.n_ctx;
    return typeof n === 'number' && n > 0 ? n : undefined;
  }

  /** Ollama's /api/show: `model_info["<architecture>.context_length"]`. */
  private async ollamaContextSize(model: string, signal?: AbortSignal): Promise<number | undefined> {
    const shown = await this.fetchJson(`${this.origin}/api/show`, { model }, signal).catch(() => undefined) as { model_info?: Record<string, unknown> } | undefined;
    const entry = Object.entries(shown?.model_info ?? {}).find(([key, value]) => key.endsWith('.context_length') && typeof value === 'number');
    return entry ? entry[1] as number : undefined;
  }

  private async fetchJson(url: string, body?: object, signal?: AbortSignal): Promise<unknown> {
    const key = await this.options.apiKey?.(this.origin!);
    const response = await (this.options.fetch ?? globalThis.fetch)(url, {
      method: body ? 'POST' : 'GET', signal: signal ?? AbortSignal.timeout(this.options.settings()['server.timeoutSeconds'] * 1000),
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return response.json();
  }

  private setGenerating(delta: number): void {
    this.generating += delta;
    this.activityEmitter.fire({ generating: this.generating });
  }

  private setState(state: ServerState): void {
    this.current = state;
    this.stateEmitter.fire(state);
  }
}

/** A core message as OpenAI chat messages: an assistant's tool calls are followed by one tool message per result. */
function toOpenAi(m: ChatMessage): ChatCompletionMessageParam[] {
  if (m.role === 'user') return [{ role: 'user', content: m.content }];
  if (m.role === 'system') return [{ role: 'system', content: m.content }];
  const calls = (m.toolCalls ?? []).map((c, i) => ({ ...c, id: c.id ?? `call_${i}` }));
  if (calls.length === 0) return [{ role: 'assistant', content: m.content }];
  return [
    { role: 'assistant', content: m.content || null, tool_calls: calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: JSON.stringify(c.params ?? {}) } })) },
    ...calls.filter((c) => c.result !== undefined).map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: c.result! })),
  ];
}

/** The deepest cause's code or message: "connect ECONNREFUSED 127.0.0.1:9" says more than "fetch failed". */
function networkReason(err: unknown): string {
  let reason = errorMessage(err);
  for (let cause = (err as { cause?: unknown }).cause; cause; cause = (cause as { cause?: unknown }).cause) {
    const code = (cause as { code?: string }).code;
    reason = code ? `${code}${(cause as { address?: string }).address ? ` (${(cause as { address?: string }).address}:${(cause as { port?: number }).port})` : ''}` : errorMessage(cause);
  }
  return reason;
}

function parseArguments(args: string): unknown {
  try { return args ? JSON.parse(args) : {}; } catch { return { raw: args }; }
}

function apiMessage(err: APIError): string {
  const body = err.error as { message?: string; error?: { message?: string } } | undefined;
  return body?.message ?? body?.error?.message ?? err.message;
}

/** llama-server names a model by its file path: show the file name. */
function shortName(id: string): string {
  return id.split(/[\\/]/).pop()!.replace(/\.gguf$/i, '') || id;
}

