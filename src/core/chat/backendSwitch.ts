import { Emitter, type Disposable } from '../events';
import type { ServerBackend } from '../server/serverBackend';
import type { Settings } from '../settings';
import type { TokenCount } from '../tokens/tokenCounter';
import type { BackendModel, ChatBackend, EmbeddedBackend } from './backend';
import type { ChatActivity, ChatReply, Conversation, PromptView, ReplyOptions } from './engine';

/**
 * The backend every surface talks to: the embedded engine or the server, as `nanochat.backend`
 * says at the moment of each call. Events of both reach the listeners.
 */
export class BackendSwitch implements ChatBackend {
  private readonly activity = new Emitter<ChatActivity>();
  readonly onDidChangeActivity = this.activity.event;
  private readonly models = new Emitter<void>();
  readonly onDidChangeModels = this.models.event;
  private readonly subscriptions: Disposable[];

  constructor(readonly embedded: EmbeddedBackend, readonly server: ServerBackend, private readonly settings: () => Settings) {
    this.subscriptions = [embedded, server].flatMap((b) => [
      b.onDidChangeActivity((a) => { if (b === this.active) this.activity.fire(a); }),
      b.onDidChangeModels(() => { if (b === this.active) this.models.fire(); }),
    ]);
  }

  get active(): EmbeddedBackend | ServerBackend {
    return this.settings().backend === 'server' ? this.server : this.embedded;
  }

  get kind(): ChatBackend['kind'] { return this.active.kind; }

  onSettingsChanged(): void {
    this.embedded.onSettingsChanged();
    this.server.onSettingsChanged();
    this.models.fire();
  }

  listModels(): Promise<BackendModel[]> { return this.active.listModels(); }
  selectedModel(): BackendModel | undefined { return this.active.selectedModel(); }
  selectModel(id: string): Promise<void> { return this.active.selectModel(id); }
  prepare(signal?: AbortSignal): Promise<BackendModel> { return this.active.prepare(signal); }
  reply(conversation: Conversation, options?: ReplyOptions, signal?: AbortSignal): ChatReply { return this.active.reply(conversation, options, signal); }
  countTokens(text: string, modelId?: string): Promise<TokenCount> { return this.active.countTokens(text, modelId); }
  lastPrompt(): Promise<PromptView | undefined> { return this.active.lastPrompt(); }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.activity.dispose();
    this.models.dispose();
  }
}
