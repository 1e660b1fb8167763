import { createHash } from 'node:crypto';
import type { LoadedModel, ModelManager } from '../engine/models';
import { NoModelError, errorMessage } from '../errors';
import { Emitter, type Disposable, type Event } from '../events';
import { silentLogger, type Logger } from '../log';
import type { InstalledModel, ModelLibrary } from '../modelFiles/library';
import type { Settings } from '../settings';
import type { TokenCount, TokenCounter } from '../tokens/tokenCounter';
import { promptBudget, replyRoom, type ChatActivity, type ChatEngine, type ChatReply, type Conversation, type PromptView, type ReplyOptions } from './engine';
import { estimatedPromptOverhead, promptOverhead } from './prompt';

/** A model a backend can answer with, as every surface shows it. */
export interface BackendModel {
  /** Stable across restarts: the model picker remembers it. */
  id: string;
  name: string;
  /** The architecture, or the server's model family. */
  family: string;
  /** The GGUF file (embedded models). */
  path?: string;
  sizeBytes?: number;
  /** Tokens a request may hold: prompt (system prompt and tool schemas included) plus reply. */
  contextSize: number;
  /** Most tokens one reply may generate within that window. */
  maxOutputTokens: number;
  /**
   * Most tokens of message text a request may carry, each message counted as its text plus
   * `messageOverhead`: the system prompt and the template's framing are already taken out (exact once
   * the model is loaded, a safe estimate before). Tool schemas come on top and are checked per request.
   */
  maxInputTokens: number;
  messageOverhead: number;
}

/** maxInputTokens and messageOverhead of a model, from its context, reply room and prompt overhead. */
export function inputLimits(contextSize: number, maxTokens: number, overhead: { fixed: number; perMessage: number }): Pick<BackendModel, 'maxInputTokens' | 'maxOutputTokens' | 'messageOverhead'> {
  const maxOutputTokens = replyRoom(contextSize, maxTokens);
  return {
    maxOutputTokens,
    maxInputTokens: Math.max(1, promptBudget(contextSize, maxTokens) - overhead.fixed + overhead.perMessage),
    messageOverhead: overhead.perMessage,
  };
}

/**
 * What every surface (the participant, the model provider, the panel, the benchmark) asks of a
 * model runtime. The embedded node-llama-cpp engine is the first implementation; an
 * OpenAI-compatible server is the next. Cancelling is the AbortSignal given to `reply`.
 */
export interface ChatBackend extends Disposable {
  readonly kind: 'embedded' | 'server';
  /** Models to offer, the selected one first where it is known. */
  listModels(): Promise<BackendModel[]>;
  /** The model replies go to now, without loading anything. */
  selectedModel(): BackendModel | undefined;
  /** The selected model, connecting first where that is needed (a server); never loads weights. Throws a NanochatError that says what is missing. */
  prepare(signal?: AbortSignal): Promise<BackendModel>;
  /** Makes a listed model the one replies go to (persisted, then loaded). */
  selectModel(id: string): Promise<void>;
  /** Streams a reply: text deltas, then stats (tokens, timings, tool calls, stop reason). */
  reply(conversation: Conversation, options?: ReplyOptions, signal?: AbortSignal): ChatReply;
  /** What the model evaluated for the most recent reply: text, token ids and chat format ("Nanochat: Show Prompt"). */
  lastPrompt(): Promise<PromptView | undefined>;
  /** Exact token count of `text` for a model (default: the selected one); says which tokenizer counted. */
  countTokens(text: string, modelId?: string): Promise<TokenCount>;
  readonly onDidChangeActivity: Event<ChatActivity>;
  readonly onDidChangeModels: Event<void>;
}

export interface EmbeddedBackendOptions {
  models: ModelManager;
  chat: ChatEngine;
  tokens: TokenCounter;
  library: ModelLibrary;
  settings: () => Settings;
  log?: Logger;
}

/** Stable model ids for embedded files: a hash of the path (the picker must not show paths as ids). */
export function embeddedModelId(filePath: string): string {
  return `nanochat-${createHash('sha256').update(filePath).digest('hex').slice(0, 16)}`;
}

/** The in-process node-llama-cpp engine behind the ChatBackend seam. */
export class EmbeddedBackend implements ChatBackend {
  readonly kind = 'embedded' as const;
  private readonly modelsChanged = new Emitter<void>();
  readonly onDidChangeModels = this.modelsChanged.event;
  readonly onDidChangeActivity: Event<ChatActivity>;
  /** Configured paths already refused, so that VS Code's frequent model queries do not check them again. */
  private readonly refused = new Set<string>();
  private readonly subscriptions: Disposable[];
  private readonly log: Logger;

  constructor(private readonly options: EmbeddedBackendOptions) {
    this.log = options.log ?? silentLogger;
    this.onDidChangeActivity = options.chat.onDidChangeActivity;
    this.subscriptions = [
      options.library.onDidChange(() => this.modelsChanged.fire()),
      options.models.onDidChangeState((s) => { if (s.kind === 'ready') this.modelsChanged.fire(); }),
    ];
  }

  /** Call when settings change: a refused path may have been fixed. */
  onSettingsChanged(): void {
    this.refused.clear();
    this.modelsChanged.fire();
  }

  async listModels(): Promise<BackendModel[]> {
    await this.registerConfiguredModel();
    return this.installed().map((m) => this.describe(m));
  }

  selectedModel(): BackendModel | undefined {
    const selected = this.options.models.selectedPath;
    if (!selected) return undefined;
    const known = this.installed().find((m) => m.path === selected);
    return known ? this.describe(known) : this.describe({ path: selected, name: selected.split(/[\\/]/).pop()!.replace(/\.gguf$/i, ''), sizeBytes: 0, architecture: 'gguf', hasChatTemplate: false, addedAt: 0 });
  }

  async prepare(): Promise<BackendModel> {
    const model = this.selectedModel();
    if (!model) throw new NoModelError();
    return model;
  }

  async selectModel(id: string): Promise<void> {
    const model = (await this.listModels()).find((m) => m.id === id || m.path === id);
    if (!model?.path) throw new Error(`No model with id ${id}.`);
    if (this.options.models.selectedPath === model.path && this.options.models.state.kind !== 'error') return;
    await this.options.library.touch(model.path);
    await this.options.models.select(model.path);
  }

  reply(conversation: Conversation, options?: ReplyOptions, signal?: AbortSignal): ChatReply {
    return this.options.chat.reply(conversation, options, signal);
  }

  async lastPrompt(): Promise<PromptView | undefined> {
    return this.options.chat.lastPrompt;
  }

  async countTokens(text: string, modelId?: string): Promise<TokenCount> {
    const path = modelId ? this.installed().find((m) => embeddedModelId(m.path) === modelId || m.path === modelId)?.path : this.options.models.selectedPath;
    if (!path) throw new Error(modelId ? `No model with id ${modelId}.` : 'No model is selected.');
    return this.options.tokens.count(path, text);
  }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.modelsChanged.dispose();
  }

  /** The library's models, plus the loaded one if it is not in the library yet. */
  private installed(): InstalledModel[] {
    const models = this.options.library.list();
    const state = this.options.models.state;
    if (state.kind === 'ready' && !models.some((m) => m.path === state.info.path)) {
      const i = state.info;
      models.unshift({ path: i.path, name: i.name, sizeBytes: i.sizeBytes, architecture: i.architecture, trainContextSize: i.trainContextSize, hasChatTemplate: i.hasChatTemplate, addedAt: Date.now() });
    }
    return models;
  }

  private describe(m: InstalledModel): BackendModel {
    const settings = this.options.settings();
    const state = this.options.models.state;
    const loadedContext = state.kind === 'ready' && state.info.path === m.path ? state.info.contextSize : undefined;
    const contextSize = loadedContext ?? Math.min(settings.contextSize, m.trainContextSize ?? settings.contextSize);
    const loaded = this.options.models.model;
    const overhead = loaded && !loaded.disposed && loaded.info.path === m.path
      ? this.overhead(loaded, settings.systemPrompt)
      : estimatedPromptOverhead(settings.systemPrompt);
    return {
      id: embeddedModelId(m.path), name: m.name, family: m.architecture, path: m.path, sizeBytes: m.sizeBytes,
      contextSize, ...inputLimits(contextSize, settings.maxTokens, overhead),
    };
  }

  private readonly overheads = new WeakMap<LoadedModel, { systemPrompt: string; value: { fixed: number; perMessage: number } }>();

  /** The loaded model's exact prompt overhead for the current system prompt (measured once per change). */
  private overhead(loaded: LoadedModel, systemPrompt: string): { fixed: number; perMessage: number } {
    const known = this.overheads.get(loaded);
    if (known?.systemPrompt === systemPrompt) return known.value;
    const value = promptOverhead(loaded.model, loaded.chatWrapper, systemPrompt);
    this.overheads.set(loaded, { systemPrompt, value });
    return value;
  }

  /** A model path set by hand in the settings joins the library once its header checks out. */
  private async registerConfiguredModel(): Promise<void> {
    const configured = this.options.settings().model;
    if (!configured || this.options.library.find(configured) || this.refused.has(configured)) return;
    try {
      await this.options.library.add(configured);
    } catch (err) {
      this.refused.add(configured);
      this.log.warn(`The configured model is not usable: ${errorMessage(err)}`);
    }
  }
}
