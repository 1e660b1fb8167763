import type { LlamaCompletion, LlamaContextSequence, LlamaModel, TokenBias } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { Emitter, type Disposable } from '../events';
import { NanochatError, errorMessage } from '../errors';
import { importNodeLlamaCpp } from '../engine/llama';
import { ModelManager, type ModelManagerOptions } from '../engine/models';
import { silentLogger, type Logger } from '../log';
import type { Settings } from '../settings';
import { SuggestionCache } from './cache';
import { buildFimPrompt, suggestionComplete, trimSuggestion, type CompletionRequest, type FimTokens } from './fim';

export class CompletionUnsupportedError extends NanochatError {
  constructor(readonly model: string) {
    super(`${model} has no fill-in-the-middle tokens, so it cannot complete code inline. Choose a code model such as Qwen2.5-Coder in nanochat.completions.model (or "Nanochat: Download Model…").`);
  }
}

export interface CompletionResult {
  /** The suggestion, cut at a sensible end (see trimSuggestion); may be empty. */
  text: string;
  /** From the cache: the rest of an earlier suggestion the user is typing through. */
  cached: boolean;
  /** Tokens of the whole prompt, and those actually evaluated (the rest came from the KV cache). */
  promptTokens: number;
  evaluatedTokens: number;
  generatedTokens: number;
  firstTokenMs?: number;
  totalMs: number;
  model: string;
}

export interface CompletionActivity { computing: boolean; last?: CompletionResult; error?: string }

export interface CompletionEngineOptions {
  settings: () => Settings;
  log?: Logger;
  /** Passed on to the completion model's own ModelManager (chat-format worker and cache). */
  chatFormat?: ModelManagerOptions['chatFormat'];
  /** The server backend's /infill, when nanochat.backend is `server`. */
  infill?: (request: CompletionRequest, options: { maxTokens: number }, signal: AbortSignal) => Promise<{ text: string; promptTokens: number; evaluatedTokens: number; generatedTokens: number }>;
}

/** Most tokens of text after the cursor: a few lines, as llama.vscode sends. */
const SUFFIX_TOKENS = 64;

/** Where the completion model comes from: its own setting, else the chat model. */
export function completionModelPath(settings: Settings): string {
  return settings['completions.model'] || settings.model;
}

/** The model's fill-in-the-middle tokens, and its repository-level ones where it has them. */
export function fimTokensOf(model: LlamaModel): FimTokens | undefined {
  const { prefix, suffix, middle } = model.tokens.infill;
  if (prefix == null || suffix == null || middle == null) return undefined;
  const single = (text: string) => {
    const tokens = model.tokenize(text, true);
    return tokens.length === 1 && model.detokenize(tokens, true) === text ? tokens[0] : undefined;
  };
  const fileSeparator = single('<|file_sep|>') ?? single('<file_sep>');
  const repoName = single('<|repo_name|>') ?? single('<repo_name>');
  return { prefix, suffix, middle, ...(fileSeparator !== undefined ? { fileSeparator } : {}), ...(repoName !== undefined ? { repoName } : {}) };
}

/**
 * Inline completions from a code model: its own model manager and context (one sequence), so chat and
 * completions never evict each other's KV cache. Each request is a fill-in-the-middle prompt whose
 * cached prefix is reused; an abort (a keystroke) ends generation at once; generation stops as soon as
 * the suggestion is whole; a cache of recent suggestions answers typing-through without the model.
 */
export class CompletionEngine implements Disposable {
  readonly models: ModelManager;
  readonly cache = new SuggestionCache();
  private readonly completions = new WeakMap<LlamaContextSequence, LlamaCompletion>();
  private readonly activityEmitter = new Emitter<CompletionActivity>();
  readonly onDidChangeActivity = this.activityEmitter.event;
  private readonly log: Logger;
  private running = 0;
  /** Models found to have no FIM tokens: refused at once, without loading them again. */
  private readonly unsupported = new Map<string, string>();
  /** Steers sampling (tests force a known suggestion out of random weights, as the chat tests do). */
  tokenBias: (() => TokenBias) | undefined;

  constructor(private readonly options: CompletionEngineOptions) {
    this.log = options.log ?? silentLogger;
    const settings = () => {
      const s = options.settings();
      return { ...s, model: completionModelPath(s), contextSize: s['completions.contextSize'] };
    };
    this.models = new ModelManager({ settings, sequences: 1, log: this.log, chatFormat: options.chatFormat });
  }

  /**
   * A suggestion for the cursor, or undefined when the request was cancelled. `document` keys the
   * cache (a URI). Throws CompletionUnsupportedError for a model without FIM tokens.
   */
  async complete(document: string, request: CompletionRequest, signal?: AbortSignal): Promise<CompletionResult | undefined> {
    const started = performance.now();
    const cached = this.cache.get(document, request.prefix, request.suffix);
    if (cached !== undefined) {
      return { text: cached, cached: true, promptTokens: 0, evaluatedTokens: 0, generatedTokens: 0, totalMs: Math.round(performance.now() - started), model: '' };
    }
    this.setRunning(+1);
    try {
      const result = this.options.settings().backend === 'server' && this.options.infill
        ? await this.viaServer(request, signal, started)
        : await this.embedded(request, signal, started);
      if (result) {
        this.cache.put(document, request.prefix, request.suffix, result.text);
        this.log.info(`Completion in ${result.totalMs} ms${result.firstTokenMs !== undefined ? ` (first token ${result.firstTokenMs} ms)` : ''}: ${result.evaluatedTokens} of ${result.promptTokens} prompt tokens evaluated, ${result.generatedTokens} generated, ${result.text.length} characters suggested.`);
        this.activityEmitter.fire({ computing: this.running > 1, last: result });
      }
      return result;
    } catch (err) {
      if (signal?.aborted) return undefined;
      this.activityEmitter.fire({ computing: this.running > 1, error: errorMessage(err) });
      throw err;
    } finally {
      this.setRunning(-1);
    }
  }

  private async embedded(request: CompletionRequest, signal: AbortSignal | undefined, started: number): Promise<CompletionResult | undefined> {
    const settings = this.options.settings();
    const maxTokens = settings['completions.maxTokens'];
    const refused = this.unsupported.get(completionModelPath(settings));
    if (refused) throw new CompletionUnsupportedError(refused);
    let lease;
    try { lease = await this.models.acquire(signal); } catch (err) { if (signal?.aborted) return undefined; throw err; }
    const loaded = lease.model;
    let slot;
    try {
      const fim = fimTokensOf(loaded.model);
      if (!fim) {
        this.unsupported.set(loaded.info.path, loaded.info.name);
        // Its memory is better spent elsewhere: it cannot complete code.
        setTimeout(() => void this.models.unload('user').catch(() => undefined), 0);
        throw new CompletionUnsupportedError(loaded.info.name);
      }
      const room = loaded.context.contextSize - maxTokens - 8;
      const prompt = buildFimPrompt(request, fim, {
        // The suffix is evaluated again at every keystroke (it follows the cursor in the prompt): keep it short.
        prefixTokens: Math.floor(room * 0.6), suffixTokens: Math.min(SUFFIX_TOKENS, Math.floor(room * 0.15)), extraTokens: Math.floor(room * 0.3),
      }, (text) => loaded.model.tokenize(text, false));
      try { slot = (await loaded.sequences.take(prompt.tokens, signal)).slot; } catch (err) { if (signal?.aborted) return undefined; throw err; }
      const sequence = slot.sequence;
      let completion = this.completions.get(sequence);
      if (!completion) {
        const { LlamaCompletion } = await importNodeLlamaCpp();
        completion = new LlamaCompletion({ contextSequence: sequence });
        this.completions.set(sequence, completion);
      }
      const stop = new AbortController();
      const onAbort = () => stop.abort('cancelled');
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      const linePrefix = request.prefix.slice(request.prefix.lastIndexOf('\n') + 1);
      const shape = { linePrefix, suffix: request.suffix };
      const before = sequence.tokenMeter.getState();
      let text = '';
      let firstTokenAt: number | undefined;
      try {
        await completion.generateCompletionWithMeta(prompt.tokens, {
          maxTokens, signal: stop.signal, stopOnAbortSignal: true, temperature: 0, repeatPenalty: false,
          tokenBias: this.tokenBias,
          onTextChunk: (chunk) => {
            firstTokenAt ??= performance.now();
            text += chunk;
            // The suggestion is whole: what follows would be thrown away.
            if (suggestionComplete(text, shape)) stop.abort('complete');
          },
        });
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      if (signal?.aborted) return undefined;
      const after = sequence.tokenMeter.getState();
      return {
        text: trimSuggestion(text, shape), cached: false,
        promptTokens: prompt.tokens.length, evaluatedTokens: after.usedInputTokens - before.usedInputTokens,
        generatedTokens: after.usedOutputTokens - before.usedOutputTokens,
        firstTokenMs: firstTokenAt === undefined ? undefined : Math.round(firstTokenAt - started),
        totalMs: Math.round(performance.now() - started), model: loaded.info.name,
      };
    } finally {
      if (slot) loaded.sequences.release(slot);
      lease.dispose();
    }
  }

  private async viaServer(request: CompletionRequest, signal: AbortSignal | undefined, started: number): Promise<CompletionResult | undefined> {
    const controller = new AbortController();
    const onAbort = () => controller.abort('cancelled');
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    try {
      const answer = await this.options.infill!(request, { maxTokens: this.options.settings()['completions.maxTokens'] }, controller.signal);
      const linePrefix = request.prefix.slice(request.prefix.lastIndexOf('\n') + 1);
      return { ...answer, text: trimSuggestion(answer.text, { linePrefix, suffix: request.suffix }), cached: false, totalMs: Math.round(performance.now() - started), model: 'server' };
    } catch (err) {
      if (signal?.aborted) return undefined;
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  onSettingsChanged(): void {
    this.models.onSettingsChanged();
  }

  async dispose(): Promise<void> {
    this.activityEmitter.dispose();
    await this.models.dispose();
  }

  private setRunning(delta: number): void {
    this.running += delta;
    this.activityEmitter.fire({ computing: this.running > 0 });
  }
}
