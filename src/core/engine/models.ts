import type { ChatWrapper, Llama, LlamaContext, LlamaModel, LlamaText, Token, Tokenizer } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { Emitter, type Disposable } from '../events';
import { ModelLoadError, NanochatError, NoModelError, errorMessage } from '../errors';
import { checkModelFile, type ModelFileInfo } from '../modelFiles/ggufCheck';
import { backendOf, getLlamaFor, importNodeLlamaCpp, loadModelLean, type Backend } from './llama';
import { prepareChatFormat, type ChatFormatResolverOptions, type ChatFormatSource } from './chatFormat';
import { silentLogger, type Logger } from '../log';
import { SequencePool } from './sequencePool';
import { describeTemplate, nanochatWrapper, templateOptions } from './chatTemplate';
import type { Settings } from '../settings';
import { applyThreadPlan, decodeAhead, planThreads, type GenerationThreads, type ThreadPlan } from './threads';
import { RecentMemo } from '../memo';
import { trackLongestBlock } from '../eventLoop';

/** Facts about the model in memory, shown by every surface. */
export interface LoadedModelInfo extends ModelFileInfo {
  contextSize: number;
  sequences: number;
  /** Generation threads (the `nanochat.threads` setting, or the physical performance cores). */
  threads: number;
  /** Prompt (prefill) threads: every physical performance core. */
  promptThreads: number;
  backend: Backend;
  gpuLayers: number;
  totalLayers: number;
  loadMs: number;
  /** Where the load's time went, in order (import, llama.cpp, file check, weights, context, chat format). */
  loadPhases?: Record<string, number>;
  /** The longest event-loop block of each phase (ms). */
  loadPhaseBlocks?: Record<string, number>;
  /** The chat format node-llama-cpp resolved from the model's template, once per load. */
  chatFormat: string;
  /** Where it came from: the cache of an earlier load, a child process, or this process. */
  chatFormatSource: ChatFormatSource;
  /** Whether the model's own chat template writes the prompt, and whether it renders tools. */
  chatTemplate: 'with tools' | 'without tools' | 'none';
}

export type ModelState =
  | { kind: 'none' }
  | { kind: 'loading'; path: string; name: string; progress: number }
  | { kind: 'ready'; info: LoadedModelInfo }
  | { kind: 'error'; path: string; error: NanochatError }
  | { kind: 'unloaded'; path: string; name: string; reason: 'idle' | 'user' };

/** A loaded model and its context; owned by ModelManager, borrowed by chat and bench. */
export interface LoadedModel {
  readonly info: LoadedModelInfo;
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  /** Resolved once per model: resolving it per conversation blocked the event loop each time. */
  readonly chatWrapper: ChatWrapper;
  /** The context's sequences, created and disposed with it. */
  readonly sequences: SequencePool;
  /** The context's thread plan (undefined where node-llama-cpp's internals are not the expected ones). */
  readonly threads?: GenerationThreads;
  /** Set when the manager disposes this model. */
  readonly disposed: boolean;
}

export interface ModelManagerOptions {
  settings: () => Settings;
  /** Persists the selected model (the `nanochat.model` setting); `select()` calls it before loading. */
  persistSelection?: (modelPath: string) => Promise<void>;
  log?: Logger;
  /** Where the chat format is resolved (a child process) and remembered; without it, in this process. */
  chatFormat?: Omit<ChatFormatResolverOptions, 'log'>;
  /** Parallel sequences in the context: conversations that keep their KV cache at once. */
  sequences?: number;
  /** Overrides the OS's free memory in the size check (tests). */
  freeMemoryBytes?: () => number | undefined;
}

/** Settings that only take effect on a fresh load. */
const LOAD_KEYS = ['contextSize', 'threads', 'promptThreads', 'gpu', 'gpuLayers'] as const;

/**
 * The model lifecycle: none → loading → ready | error, and ready → unloaded (idle or by request).
 * Loads run in the background, concurrent requests for one file share a load, loading another file
 * disposes the previous model, and nothing reaches llama.cpp before checkModelFile has passed it.
 */
export class ModelManager implements Disposable {
  private readonly stateEmitter = new Emitter<ModelState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private current: ModelState = { kind: 'none' };
  private loaded: (LoadedModel & { disposed: boolean }) | undefined;
  private pending: { path: string; promise: Promise<LoadedModel> } | undefined;
  private loadGeneration = 0;
  private users = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private loadedWith: Pick<Settings, (typeof LOAD_KEYS)[number]> | undefined;
  private readonly log: Logger;
  private readonly sequenceCount: number;
  private disposed = false;

  constructor(private readonly options: ModelManagerOptions) {
    this.log = options.log ?? silentLogger;
    this.sequenceCount = options.sequences ?? 4;
  }

  get state(): ModelState { return this.current; }
  get model(): LoadedModel | undefined { return this.loaded; }

  /** The path the next `acquire()` loads: the loaded or loading model, else the setting. */
  get selectedPath(): string | undefined {
    if (this.pending) return this.pending.path;
    if (this.loaded) return this.loaded.info.path;
    return this.options.settings().model || undefined;
  }

  /** Loads `filePath` (default: the `model` setting). Resolves when ready; rejects with a NanochatError. */
  load(filePath = this.options.settings().model): Promise<LoadedModel> {
    if (this.disposed) return Promise.reject(new NanochatError('nanochat is shutting down.'));
    if (!filePath) {
      const error = new NoModelError();
      return Promise.reject(error);
    }
    if (this.pending?.path === filePath) return this.pending.promise;
    if (this.loaded && !this.loaded.disposed && this.loaded.info.path === filePath && !this.pending) {
      return Promise.resolve(this.loaded);
    }
    const generation = ++this.loadGeneration;
    const promise = this.doLoad(filePath, generation);
    this.pending = { path: filePath, promise };
    const clear = () => { if (this.pending?.promise === promise) this.pending = undefined; };
    promise.then(clear, clear);
    return promise;
  }

  /**
   * Selects a model: the one owner of that decision. Writes the setting, then starts loading in the
   * background (the state shows how it goes; `acquire()` waits for it). A hand edit of the setting
   * reaches the same place through `onSettingsChanged`.
   */
  async select(modelPath: string): Promise<void> {
    await this.options.persistSelection?.(modelPath);
    this.load(modelPath).catch(() => { /* the state shows the error */ });
  }

  /**
   * The model for one unit of work (a reply, a count, a benchmark), loading it if needed. The idle
   * timer is held off until the returned lease is disposed. An abort ends the wait for a load (the
   * load itself goes on for whoever else wants it).
   */
  async acquire(signal?: AbortSignal): Promise<{ model: LoadedModel } & Disposable> {
    const ready = this.loaded && !this.loaded.disposed && !this.pending ? this.loaded : undefined;
    const model = ready ?? await abortable(this.load(this.selectedPath), signal);
    this.users++;
    this.clearIdleTimer();
    let released = false;
    return {
      model,
      dispose: () => {
        if (released) return;
        released = true;
        this.users--;
        this.armIdleTimer();
      },
    };
  }

  /** Work in progress on the loaded model (leases not yet returned). */
  get activeLeases(): number { return this.users; }

  /** Frees the model's native memory; the next `acquire()` loads it again. */
  async unload(reason: 'idle' | 'user' = 'user'): Promise<void> {
    this.loadGeneration++;
    this.pending = undefined;
    const info = this.loaded?.info;
    await this.disposeLoaded();
    if (info) this.setState({ kind: 'unloaded', path: info.path, name: info.name, reason });
    else if (this.current.kind === 'loading') this.setState({ kind: 'none' });
    this.log.info(info ? `Unloaded ${info.name} (${reason}).` : 'Nothing to unload.');
  }

  /**
   * Call when settings change: follows a new `model` setting (a hand edit included), reloads when a
   * load-time setting changed, and re-arms the idle timer.
   */
  onSettingsChanged(): void {
    const settings = this.options.settings();
    this.armIdleTimer();
    const current = this.pending?.path ?? this.loaded?.info.path ?? (this.current.kind === 'error' || this.current.kind === 'unloaded' ? this.current.path : undefined);
    if (current !== undefined && settings.model !== current) {
      if (!settings.model) {
        this.log.info('The model setting was cleared; unloading.');
        void this.unload('user').then(() => this.setState({ kind: 'none' }));
      } else if (this.loaded || this.pending) {
        this.log.info(`The model setting changed to ${settings.model}; loading it.`);
        void this.load(settings.model).catch(() => { /* state shows the error */ });
      } else {
        this.setState({ kind: 'none' });
      }
      return;
    }
    if (this.loaded && this.loadedWith && LOAD_KEYS.some((k) => settings[k] !== this.loadedWith![k])) {
      const filePath = this.loaded.info.path;
      this.log.info('Context, thread or GPU settings changed; reloading the model.');
      void this.unload('user').then(() => this.load(filePath)).catch(() => { /* state shows the error */ });
    }
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.loadGeneration++;
    this.clearIdleTimer();
    await this.disposeLoaded();
    this.stateEmitter.dispose();
  }

  private async doLoad(filePath: string, generation: number): Promise<LoadedModel> {
    const settings = this.options.settings();
    const started = performance.now();
    const shownName = filePath.split(/[\\/]/).pop() ?? filePath;
    this.setState({ kind: 'loading', path: filePath, name: shownName, progress: 0 });
    const superseded = () => generation !== this.loadGeneration || this.disposed;
    const blocks = trackLongestBlock(); // for the log: the longest event-loop block of each phase
    try {
      await this.disposeLoaded();
      // Where a load's time goes, for the log (warm start is measured from activation).
      const phases: Array<[name: string, ms: number, longestBlockMs: number]> = [];
      let mark = performance.now();
      const phase = (name: string) => { const now = performance.now(); phases.push([name, Math.round(now - mark), Math.round(blocks.take())]); mark = now; };
      await importNodeLlamaCpp();
      phase('import');
      const llama = await getLlamaFor(settings.gpu, this.log);
      phase('llama.cpp');
      const file = await checkModelFile(filePath, { llama, freeMemoryBytes: this.options.freeMemoryBytes?.() });
      phase('file check');
      if (superseded()) throw new NanochatError('Loading was superseded by another request.');
      this.setState({ kind: 'loading', path: filePath, name: file.name, progress: 0 });
      // Starts now, beside the load: the format comes from the cache or a child process.
      const chatFormat = prepareChatFormat(filePath, { ...this.options.chatFormat, vocabularySize: file.vocabularySize, log: this.log });
      const plan: ThreadPlan = planThreads(settings.threads, llama.cpuMathCores, settings.promptThreads);
      const threads = plan.generation;
      let model: LlamaModel;
      try {
        model = await loadModelLean(llama, {
          modelPath: filePath,
          gpuLayers: settings.gpuLayers < 0 ? 'auto' : settings.gpuLayers,
          onLoadProgress: (progress: number) => {
            if (!superseded()) this.setState({ kind: 'loading', path: filePath, name: file.name, progress });
          },
        });
      } catch (err) {
        throw new ModelLoadError(filePath, `llama.cpp could not load ${file.name}: ${errorMessage(err)}`, { cause: err });
      }
      rememberLongTokenizations(model);
      phase('weights');
      let context: LlamaContext;
      let aheadOn = false;
      let threadPlan: GenerationThreads | undefined;
      // Contexts (chat, completions) that decode at once share the cores instead of oversubscribing them.
      if (llama.gpu === false && llama.maxThreads !== 0) llama.maxThreads = Math.max(llama.cpuMathCores, plan.prompt, plan.generation);
      try {
        const trained = file.trainContextSize ?? settings.contextSize;
        context = await model.createContext({
          contextSize: Math.min(settings.contextSize, trained),
          sequences: this.sequenceCount,
          threads: Math.max(plan.prompt, plan.generation),
        });
        aheadOn = decodeAhead(context);
        threadPlan = applyThreadPlan(context, plan);
        if (!threadPlan) this.log.warn(`Prompts read on ${plan.generation} threads: this node-llama-cpp's context internals are not the expected ones.`);
      } catch (err) {
        await model.dispose();
        throw new ModelLoadError(filePath, `Not enough memory for a ${settings.contextSize}-token context with ${file.name}: ${errorMessage(err)}. Lower nanochat.contextSize.`, { cause: err });
      }
      if (superseded()) {
        await context.dispose();
        await model.dispose();
        throw new NanochatError('Loading was superseded by another request.');
      }
      phase('context');
      // Once per model, and off this event loop where it can be (see chatFormat.ts).
      const resolveStarted = performance.now();
      const { wrapper: resolvedWrapper, source: formatSource } = await chatFormat(model);
      // The model's own template writes the prompt; the resolved wrapper parses what comes back.
      const { wrapper: chatWrapper, template } = nanochatWrapper(resolvedWrapper, model, await importNodeLlamaCpp(), () => templateOptions(this.options.settings()));
      const resolveMs = Math.round(performance.now() - resolveStarted);
      phase('chat format');
      if (superseded()) {
        await context.dispose();
        await model.dispose();
        throw new NanochatError('Loading was superseded by another request.');
      }
      const info: LoadedModelInfo = {
        ...file,
        contextSize: context.contextSize,
        sequences: this.sequenceCount,
        threads,
        promptThreads: plan.prompt,
        backend: backendOf(llama),
        gpuLayers: model.gpuLayers,
        totalLayers: model.fileInsights.totalLayers,
        loadMs: Math.round(performance.now() - started),
        loadPhases: Object.fromEntries(phases.map(([name, ms]) => [name, ms])),
        loadPhaseBlocks: Object.fromEntries(phases.map(([name, , block]) => [name, block])),
        chatFormat: chatWrapper.wrapperName,
        chatTemplate: describeTemplate(template),
        chatFormatSource: formatSource,
      };
      const sequences = new SequencePool(context, chatWrapper, (m) => this.log.warn(m));
      this.loaded = { info, llama, model, context, chatWrapper, sequences, threads: threadPlan, disposed: false };
      this.loadedWith = { contextSize: settings.contextSize, threads: settings.threads, promptThreads: settings.promptThreads, gpu: settings.gpu, gpuLayers: settings.gpuLayers };
      this.log.info(`Loaded ${info.name} in ${info.loadMs} ms: ${info.architecture}, context ${info.contextSize}, ${threads} threads (${plan.prompt} for prompts${aheadOn ? ', decoding a token ahead' : ''}), ${info.backend}${info.backend === 'cpu' ? '' : ` (${info.gpuLayers}/${info.totalLayers} layers offloaded)`}, chat format ${info.chatFormat} (${formatSource === 'cache' ? 'remembered' : formatSource === 'worker' ? 'resolved in the background' : 'resolved here'}, ${resolveMs} ms). Time: ${phases.map(([name, ms, block]) => `${name} ${ms} ms (longest event-loop block ${block} ms)`).join(', ')}.`);
      this.setState({ kind: 'ready', info });
      this.armIdleTimer();
      return this.loaded;
    } catch (err) {
      const error = err instanceof NanochatError ? err : new ModelLoadError(filePath, `Could not load the model: ${errorMessage(err)}`, { cause: err });
      if (!superseded()) {
        this.log.error(`Loading ${filePath} failed: ${error.message}`);
        this.setState({ kind: 'error', path: filePath, error });
      }
      throw error;
    } finally {
      void blocks.stop();
    }
  }

  private async disposeLoaded(): Promise<void> {
    const loaded = this.loaded;
    if (!loaded) return;
    this.loaded = undefined;
    this.loadedWith = undefined;
    loaded.disposed = true;
    loaded.sequences.dispose();
    try {
      await loaded.context.dispose();
      await loaded.model.dispose();
    } catch (err) {
      this.log.warn(`Disposing ${loaded.info.name} failed: ${errorMessage(err)}`);
    }
  }

  private armIdleTimer(): void {
    this.clearIdleTimer();
    const minutes = this.options.settings().idleUnloadMinutes;
    if (!this.loaded || this.users > 0 || minutes <= 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.users === 0 && this.loaded) void this.unload('idle');
    }, minutes * 60_000);
    this.idleTimer.unref?.();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private setState(state: ModelState): void {
    this.current = state;
    this.stateEmitter.fire(state);
  }
}

/** Texts this long are tokenized once per prompt and remembered (and, where it is exact, in pieces). */
const LONG_TEXT = 4000;
/** The most characters tokenized without a pause: ~5 ms with a 152K-token vocabulary here. */
const TOKENIZE_PIECE = 4000;

type PrepareTokens = (text: string, specialTokens: boolean, options: 'trimLeadingSpace' | undefined, pause: () => Promise<void>) => Promise<void>;
/** For each tokenizer `rememberLongTokenizations` made: tokenizes a long text, pausing, into its memory. */
const preparers = new WeakMap<Tokenizer, PrepareTokens>();

/**
 * The last few long texts the model tokenized, and their tokens. A reply's prompt is tokenized to fit
 * it in the window and again by node-llama-cpp as it evaluates it: with an agent's 27 tool schemas
 * that is 9K tokens, ~20 ms on the event loop each time. The second time is now a lookup, and
 * `tokenizeTextPausing` fills it in pieces with the loop running between them.
 */
export function rememberLongTokenizations(model: LlamaModel, keep = 4): void {
  const original = model.tokenizer;
  const recent = new RecentMemo<readonly Token[]>(keep);
  const keyOf = (text: string, specialTokens: unknown, options: unknown) => `${specialTokens ? 1 : 0}|${options ?? ''}|${text}`;
  const remembering = ((text: string, specialTokens?: boolean, options?: 'trimLeadingSpace') => {
    if (typeof text !== 'string' || text.length < LONG_TEXT) return original(text, specialTokens as false, options);
    // Callers get their own copy: the remembered array is never handed out.
    return recent.get(keyOf(text, specialTokens, options), () => original(text, specialTokens as false, options)).slice();
  }) as Tokenizer;
  Object.assign(remembering, { detokenize: original.detokenize, isSpecialToken: original.isSpecialToken, isEogToken: original.isEogToken });
  Object.freeze(remembering);
  const inPieces = splitsAtLines(model);
  preparers.set(remembering, async (text, specialTokens, options, pause) => {
    const key = keyOf(text, specialTokens, options);
    if (recent.has(key)) return;
    const pieces = inPieces ? linePieces(text, TOKENIZE_PIECE) : [text];
    const tokens: Token[] = [];
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) await pause();
      // Only the first piece starts the text: the options (trimLeadingSpace) apply to it alone.
      for (const t of original(pieces[i]!, specialTokens as false, i === 0 ? options : undefined)) tokens.push(t);
    }
    recent.set(key, tokens);
  });
  Object.defineProperty(model, 'tokenizer', { value: remembering, configurable: true });
}

/**
 * BPE pre-tokenizers (GGUF `tokenizer.ggml.pre`) whose rules never join a line break to the line after
 * it (they split `\s*[\r\n]+` off first), so merges never cross it: Llama 3, Qwen2 and later, DeepSeek.
 * A test checks each on llama.cpp's vocabularies; the others it has (GPT-2, MPT, Falcon, StarCoder,
 * Refact) do join them, around blank lines or indentation.
 */
const LINE_SPLITTING_PRE = new Set(['llama-bpe', 'qwen2', 'deepseek-llm', 'deepseek-coder']);

/**
 * Whether a text of this model's vocabulary tokenizes the same in pieces that end at a line break
 * (before a line that is not blank) as whole, with or without special tokens in it (llama.cpp splits
 * those off first; none of these vocabularies' special tokens holds a line break). Other vocabularies'
 * long texts are tokenized whole.
 */
export function splitsAtLines(model: LlamaModel): boolean {
  const ggml = (model.fileInfo.metadata as { tokenizer?: { ggml?: { model?: string; pre?: string } } }).tokenizer?.ggml;
  return ggml?.model === 'gpt2' && LINE_SPLITTING_PRE.has(ggml.pre ?? '');
}

/** A line that has a character other than white space (after any indentation). */
const LINE_START = /[ \t]*[^\s]/y;

/** `text` in pieces of about `size` characters, each after a line break that starts a non-blank line. */
export function linePieces(text: string, size: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > size) {
    let cut = -1;
    for (let at = text.indexOf('\n', start + size / 2); at >= 0 && at + 1 < text.length; at = text.indexOf('\n', at + 1)) {
      LINE_START.lastIndex = at + 1;
      if (LINE_START.test(text)) { cut = at + 1; break; }
    }
    if (cut < 0) break;
    pieces.push(text.slice(start, cut));
    start = cut;
  }
  pieces.push(text.slice(start));
  return pieces;
}

/**
 * Tokenizes a rendered prompt as `text.tokenize(model.tokenizer)` does, with the event loop running
 * while its long texts are tokenized: they are found with a trial pass (which tokenizes nothing long),
 * tokenized in pieces between pauses into the tokenizer's memory, then the real pass reads them there.
 */
export async function tokenizeTextPausing(model: LlamaModel, text: LlamaText, pause: () => Promise<void>): Promise<Token[]> {
  const tokenizer = model.tokenizer;
  const prepare = preparers.get(tokenizer);
  if (prepare) {
    const long: Array<{ text: string; specialTokens: boolean; options: 'trimLeadingSpace' | undefined }> = [];
    const finding = Object.assign((t: string, specialTokens?: boolean | 'builtin', options?: 'trimLeadingSpace') => {
      if (typeof t === 'string' && t.length >= LONG_TEXT && specialTokens !== 'builtin') {
        long.push({ text: t, specialTokens: Boolean(specialTokens), options });
        return [0 as Token]; // any non-empty result: the pass decides later options by whether it has tokens
      }
      return tokenizer(t, specialTokens as false, options);
    }, { detokenize: tokenizer.detokenize, isSpecialToken: tokenizer.isSpecialToken, isEogToken: tokenizer.isEogToken }) as Tokenizer;
    text.tokenize(finding);
    for (const l of long) {
      await pause();
      await prepare(l.text, l.specialTokens, l.options, pause);
    }
  }
  return text.tokenize(tokenizer);
}

/** Waits for `promise`, or rejects as soon as `signal` aborts (the work itself goes on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
