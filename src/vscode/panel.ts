import * as vscode from 'vscode';
import type { ReplyStats } from '../core/chat/engine';
import type { ConversationStore, StoredConversation } from '../core/chat/conversations';
import type { DownloadProgress } from '../core/modelFiles/download';
import { Emitter } from '../core/events';
import { NanochatError, NoModelError, errorMessage } from '../core/errors';
import { fromWebviewSchema, type FromWebview, type ModelView, type PanelMessage, type ToWebview } from '../protocol/panel';
import { panelHtml } from '../../webview/html';
import { COMMANDS, type Services } from './services';
import { attachWebview } from './webview';

export const PANEL_VIEW_TYPE = 'nanochat.chatPanel';

/**
 * The chat panel's host side: owns the webview, persists conversations through the store, runs
 * replies through the core chat engine, and keeps the view in step with the model state.
 */
export class ChatPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly generating = new Map<string, AbortController>();
  private readonly subscriptions: vscode.Disposable[] = [];
  private download: DownloadProgress | undefined;
  private lastEditor: vscode.TextEditor | undefined = vscode.window.activeTextEditor;
  private readonly posted = new Emitter<ToWebview>();
  /** Every message sent to the webview (tests and diagnostics). */
  readonly onDidPost = this.posted.event;

  constructor(private readonly services: Services, readonly store: ConversationStore) {
    this.subscriptions.push(
      vscode.window.registerWebviewPanelSerializer(PANEL_VIEW_TYPE, { deserializeWebviewPanel: async (panel) => this.attach(panel) }),
      services.models.onDidChangeState(() => this.postModel()),
      services.server.onDidChangeState(() => this.postModel()),
      services.downloader.onProgress((p) => { this.download = p.phase === 'done' || p.phase === 'stopped' ? undefined : p; this.postModel(); }),
      services.settings.onDidChange(() => { this.postSettings(); this.postModel(); }),
      vscode.window.onDidChangeActiveTextEditor((e) => { if (e) this.lastEditor = e; }),
    );
  }

  get webviewPanel(): vscode.WebviewPanel | undefined { return this.panel; }

  show(): vscode.WebviewPanel {
    if (this.panel) {
      this.panel.reveal();
      return this.panel;
    }
    const panel = vscode.window.createWebviewPanel(PANEL_VIEW_TYPE, 'Nanochat', vscode.ViewColumn.Active, {});
    this.attach(panel);
    return panel;
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    attachWebview(panel, this.services.context.extensionUri, { html: panelHtml, script: 'webview.js', style: 'webview.css' },
      (raw) => void this.receive(raw), () => { if (this.panel === panel) this.panel = undefined; });
  }

  /** Validates and handles one message from the webview; malformed ones are dropped and logged. */
  async receive(raw: unknown): Promise<void> {
    const parsed = fromWebviewSchema.safeParse(raw);
    if (!parsed.success) {
      this.services.log.warn(`Dropped a malformed message from the chat panel: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'message'}: ${i.message}`).join('; ').slice(0, 300)}`);
      return;
    }
    try {
      await this.handle(parsed.data);
    } catch (err) {
      this.services.log.error(`Chat panel: ${errorMessage(err)}`);
      this.post({ type: 'error', message: errorMessage(err).slice(0, 2000) });
    }
  }

  private async handle(message: FromWebview): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.postSettings();
        this.postModel();
        await this.postState();
        return;
      case 'send':
        return this.reply(message.conversationId, (messages) => [...messages, { role: 'user', content: message.text, createdAt: Date.now() }]);
      case 'stop':
        this.generating.get(message.conversationId)?.abort();
        return;
      case 'regenerate':
        return this.reply(message.conversationId, (current) => {
          const messages = [...current];
          while (messages.at(-1)?.role === 'assistant') messages.pop();
          return messages.length ? messages : undefined;
        });
      case 'edit':
        return this.reply(message.conversationId, (messages) => {
          const original = messages[message.index];
          return original?.role === 'user' ? [...messages.slice(0, message.index), { ...original, content: message.text, createdAt: Date.now() }] : undefined;
        });
      case 'newConversation':
        await this.store.create();
        return this.postState();
      case 'switchConversation':
        if (await this.store.get(message.conversationId)) await this.store.setActive(message.conversationId);
        return this.postState();
      case 'renameConversation':
        await this.store.rename(message.conversationId, message.title);
        return this.postState();
      case 'deleteConversation':
        this.generating.get(message.conversationId)?.abort();
        await this.store.delete(message.conversationId);
        return this.postState();
      case 'setSetting':
        // The protocol checked the value against the setting's own schema.
        await this.services.settings.update(message.key, message.value as never);
        return;
      case 'code':
        return this.codeAction(message.action, message.code, message.language);
      case 'command': {
        const commands = { download: COMMANDS.download, useLocal: COMMANDS.useLocal, select: COMMANDS.select, logs: COMMANDS.showLogs } as const;
        if (message.command === 'retry') {
          if (this.services.settings.current.backend === 'server') void this.services.server.refresh().catch(() => undefined);
          else void this.services.models.load(this.services.models.selectedPath).catch(() => undefined);
          return;
        }
        await vscode.commands.executeCommand(commands[message.command]);
        return;
      }
    }
  }

  /**
   * Changes a conversation's messages (a message sent, edited, or answers taken back) and generates the
   * reply to them. One reply at a time per conversation: the place is taken before anything is awaited,
   * so a second Send or Regenerate that arrives meanwhile (a double Enter) is ignored, not interleaved.
   */
  private async reply(conversationId: string, change: (messages: readonly PanelMessage[]) => PanelMessage[] | undefined): Promise<void> {
    if (this.generating.has(conversationId)) return;
    const controller = new AbortController();
    this.generating.set(conversationId, controller);
    try {
      const conversation = await this.store.updateMessages(conversationId, change);
      if (conversation) await this.generate(conversation, controller);
    } finally {
      if (this.generating.get(conversationId) === controller) this.generating.delete(conversationId);
    }
  }

  private async generate(conversation: StoredConversation, controller: AbortController): Promise<void> {
    const conversationId = conversation.id;
    await this.postState();
    let text = '';
    let pending = '';
    let thoughts = '';
    let pendingThought = '';
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (pendingThought) this.post({ type: 'thought', conversationId, text: pendingThought });
      if (pending) this.post({ type: 'delta', conversationId, text: pending });
      pending = '';
      pendingThought = '';
    };
    try {
      const reply = this.services.backend.reply({
        id: panelKey(conversationId),
        messages: conversation.messages.map((m) => ({ role: m.role, content: m.content })),
      }, {
        onThought: (thought) => {
          thoughts += thought;
          pendingThought += thought;
          timer ??= setTimeout(flush, 50);
        },
      }, controller.signal);
      for await (const delta of reply) {
        text += delta;
        pending += delta;
        timer ??= setTimeout(flush, 50); // batch deltas: at most one message every 50 ms
      }
      flush();
      const stats = await reply.stats;
      const assistant: PanelMessage = { role: 'assistant', content: text, ...(thoughts ? { thoughts } : {}), stats: panelStats(stats), createdAt: Date.now() };
      await this.store.updateMessages(conversationId, (messages) => [...messages, assistant]);
      this.post({ type: 'done', conversationId, stats: panelStats(stats), contextUsed: stats.promptTokens + stats.completionTokens });
    } catch (err) {
      flush();
      if (!(err instanceof NoModelError)) this.post({ type: 'error', message: errorMessage(err).slice(0, 2000) });
      if (!(err instanceof NanochatError)) this.services.log.error(err instanceof Error ? err : errorMessage(err));
    } finally {
      this.generating.delete(conversationId);
      await this.postState();
    }
  }

  private async codeAction(action: 'copy' | 'insert' | 'open', code: string, language: string): Promise<void> {
    if (action === 'copy') {
      await vscode.env.clipboard.writeText(code);
      return;
    }
    if (action === 'insert') {
      const editor = vscode.window.activeTextEditor ?? this.lastEditor ?? vscode.window.visibleTextEditors[0];
      if (!editor) {
        void vscode.window.showInformationMessage('Open an editor to insert the code into.');
        return;
      }
      await editor.edit((edit) => edit.replace(editor.selection, code));
      return;
    }
    const known = await vscode.languages.getLanguages();
    const document = await vscode.workspace.openTextDocument({ content: code, language: known.includes(language) ? language : undefined });
    await vscode.window.showTextDocument(document, vscode.ViewColumn.Beside);
  }

  private async postState(): Promise<void> {
    if (!this.panel) return;
    const active: StoredConversation = await this.store.active();
    const lastStats = [...active.messages].reverse().find((m) => m.stats)?.stats;
    this.post({
      type: 'state',
      conversations: await this.store.list(),
      activeId: active.id,
      messages: active.messages,
      generating: this.generating.has(active.id),
      contextUsed: lastStats ? lastStats.promptTokens + lastStats.completionTokens : 0,
    });
  }

  private postModel(): void {
    this.post({ type: 'model', model: this.modelView() });
  }

  private modelView(): ModelView {
    if (this.download) {
      const d = this.download;
      return { kind: 'downloading', name: d.fileName, progress: d.totalBytes ? Math.min(1, d.receivedBytes / d.totalBytes) : 0 };
    }
    if (this.services.settings.current.backend === 'server') return this.serverView();
    const state = this.services.models.state;
    const contextSize = state.kind === 'ready' ? state.info.contextSize : this.services.settings.current.contextSize;
    switch (state.kind) {
      case 'ready': return { kind: 'ready', name: state.info.name, contextSize };
      case 'loading': return { kind: 'loading', name: state.name, progress: Math.max(0, Math.min(1, state.progress)), contextSize };
      case 'error': return { kind: 'error', error: state.error.message, contextSize };
      case 'unloaded': return { kind: 'unloaded', name: state.name, contextSize };
      case 'none': {
        const selected = this.services.models.selectedPath;
        return selected ? { kind: 'unloaded', name: selected.split(/[\\/]/).pop()!.replace(/\.gguf$/i, ''), contextSize } : { kind: 'none', contextSize };
      }
    }
  }

  /** The server backend as the panel's model line: connected is ready, unreachable or refused is an error with Retry. */
  private serverView(): ModelView {
    const state = this.services.server.state;
    const model = this.services.backend.selectedModel();
    switch (state.kind) {
      case 'connected': return { kind: 'ready', name: `${model?.name ?? 'server'} (server)`, contextSize: model?.contextSize };
      case 'unreachable': case 'unauthorized': return { kind: 'error', error: state.message };
      case 'unconfigured': return { kind: 'error', error: 'nanochat.backend is "server" but nanochat.server.url is empty.' };
      case 'connecting': return { kind: 'loading', name: state.url, progress: 0 };
    }
  }

  private postSettings(): void {
    const s = this.services.settings.current;
    this.post({ type: 'settings', settings: { temperature: s.temperature, maxTokens: s.maxTokens, systemPrompt: s.systemPrompt } });
  }

  private post(message: ToWebview): void {
    this.posted.fire(message);
    void this.panel?.webview.postMessage(message);
  }

  dispose(): void {
    for (const controller of this.generating.values()) controller.abort();
    this.subscriptions.forEach((s) => s.dispose());
    this.panel?.dispose();
    this.posted.dispose();
  }
}

function panelKey(conversationId: string): string {
  return `panel:${conversationId}`;
}

function panelStats(stats: ReplyStats): NonNullable<PanelMessage['stats']> {
  return {
    model: stats.model, promptTokens: stats.promptTokens, completionTokens: stats.completionTokens,
    ...(stats.thoughtTokens ? { thoughtTokens: stats.thoughtTokens } : {}),
    timeToFirstTokenMs: stats.timeToFirstTokenMs, tokensPerSecond: stats.tokensPerSecond, totalMs: stats.totalMs,
    stopReason: stats.stopReason, ...(stats.error ? { error: stats.error } : {}),
  };
}
