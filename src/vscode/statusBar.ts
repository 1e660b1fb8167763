import * as vscode from 'vscode';
import type { ChatActivity } from '../core/chat/engine';
import type { DownloadProgress } from '../core/modelFiles/download';
import { formatBytes } from '../core/modelFiles/ggufCheck';
import type { ModelState } from '../core/engine/models';
import type { ServerState } from '../core/server/serverBackend';
import { COMMANDS, type Services } from './services';
import { engineLabel } from '../core/tokens/tokenCounter';

export interface StatusView { text: string; tooltip: string; error: boolean }

/** What the status bar shows for a model state and generation activity (pure, so tests can check it). */
export function statusView(state: ModelState, activity: ChatActivity, selectedPath?: string, download?: DownloadProgress): StatusView {
  if (download && download.phase !== 'done' && download.phase !== 'stopped') {
    const label = download.phase === 'fetching' ? 'fetching…' : download.phase === 'verifying' ? 'verifying…'
      : `downloading ${download.totalBytes ? Math.floor((100 * download.receivedBytes) / download.totalBytes) : 0}%`;
    return { text: `$(cloud-download) Nanochat: ${label}`, tooltip: `Downloading ${download.fileName}`, error: false };
  }
  if (activity.generating > 0 && state.kind === 'ready') {
    const rate = activity.tokensPerSecond ? ` ${activity.tokensPerSecond.toFixed(0)} tok/s` : '';
    return { text: `$(sync~spin) Nanochat: generating${rate}`, tooltip: `${state.info.name} is generating`, error: false };
  }
  switch (state.kind) {
    case 'none':
      if (selectedPath) {
        const name = selectedPath.split(/[\\/]/).pop()!.replace(/\.gguf$/i, '');
        return { text: `$(hubot) ${name}`, tooltip: `${selectedPath}\nLoads in the background with the first message.`, error: false };
      }
      return { text: '$(circle-slash) Nanochat: no model', tooltip: 'No model selected. Click to download one or choose a GGUF file.', error: false };
    case 'loading':
      return { text: `$(loading~spin) Nanochat: loading ${Math.round(state.progress * 100)}%`, tooltip: `Loading ${state.name}`, error: false };
    case 'ready': {
      const i = state.info;
      return {
        text: `$(hubot) ${i.name}`,
        tooltip: [`${i.name} — ready`, i.path, `${formatBytes(i.sizeBytes)} · context ${i.contextSize} · ${i.threads} threads · ${i.backend}${i.backend === 'cpu' ? '' : ` (${i.gpuLayers}/${i.totalLayers} layers)`}`].join('\n'),
        error: false,
      };
    }
    case 'error':
      return { text: '$(error) Nanochat: error', tooltip: state.error.message, error: true };
    case 'unloaded':
      return { text: `$(debug-pause) ${state.name} (unloaded)`, tooltip: `${state.name} was unloaded${state.reason === 'idle' ? ' after being idle' : ''}; it loads again with the next message.`, error: false };
  }
}

/** What the status bar shows for the server backend: connected (model, latency), unreachable, refused. */
export function serverStatusView(state: ServerState, activity: ChatActivity): StatusView {
  switch (state.kind) {
    case 'unconfigured':
      return { text: '$(circle-slash) Nanochat: no server', tooltip: 'nanochat.backend is "server" but nanochat.server.url is empty.', error: false };
    case 'connecting':
      return { text: '$(sync~spin) Nanochat: connecting', tooltip: `Connecting to ${state.url}`, error: false };
    case 'connected': {
      const name = state.model.split(/[\\/]/).pop()!.replace(/\.gguf$/i, '') || 'server';
      if (activity.generating > 0) return { text: `$(sync~spin) Nanochat: generating${activity.tokensPerSecond ? ` ${activity.tokensPerSecond.toFixed(0)} tok/s` : ''}`, tooltip: `${name} on ${state.url} is generating`, error: false };
      return { text: `$(cloud) ${name}`, tooltip: `${name} on ${state.url} — connected, ${state.latencyMs} ms`, error: false };
    }
    case 'unreachable':
      return { text: '$(error) Nanochat: server unreachable', tooltip: state.message, error: true };
    case 'unauthorized':
      return { text: '$(error) Nanochat: server refused the key', tooltip: state.message, error: true };
  }
}

/** The status-bar item: a view of the core's model (or server) state and chat activity. */
export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('nanochat.status', vscode.StatusBarAlignment.Right, 100);
  private activity: ChatActivity = { generating: 0 };
  private download: DownloadProgress | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  /** Every text shown, in order (tests read the transitions). */
  readonly history: string[] = [];

  constructor(private readonly services: Services) {
    this.item.name = 'Nanochat';
    this.item.command = COMMANDS.statusMenu;
    this.subscriptions.push(
      services.models.onDidChangeState(() => this.render()),
      services.server.onDidChangeState(() => this.render()),
      services.backend.onDidChangeActivity((a) => { this.activity = a; this.render(); }),
      services.settings.onDidChange(() => this.render()),
      services.downloader.onProgress((p) => {
        this.download = p.phase === 'done' || p.phase === 'stopped' ? undefined : p;
        this.render();
      }),
    );
    this.render();
    this.item.show();
  }

  get text(): string { return this.item.text; }

  private render(): void {
    const view = this.services.settings.current.backend === 'server'
      ? serverStatusView(this.services.server.state, this.activity)
      : statusView(this.services.models.state, this.activity, this.services.models.selectedPath, this.download);
    if (view.text === this.item.text) return;
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.history.push(view.text);
    if (this.history.length > 200) this.history.shift();
  }

  dispose(): void {
    this.subscriptions.forEach((s) => s.dispose());
    this.item.dispose();
  }
}

/**
 * The token count of the current selection, next to the model item. Debounced, so it never slows
 * typing; long selections are counted on the counter's worker thread.
 */
export class SelectionTokenCount implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('nanochat.selectionTokens', vscode.StatusBarAlignment.Right, 99);
  private readonly subscriptions: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;

  constructor(private readonly services: Services) {
    this.item.name = 'Nanochat: Selection Tokens';
    this.item.command = COMMANDS.countTokens;
    this.subscriptions.push(
      vscode.window.onDidChangeTextEditorSelection(() => this.schedule()),
      vscode.window.onDidChangeActiveTextEditor(() => this.schedule()),
      services.settings.onDidChange(() => this.schedule()),
    );
    this.schedule();
  }

  get text(): string | undefined { return this.item.text || undefined; }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.update(), 300);
  }

  private async update(): Promise<void> {
    const run = ++this.generation;
    const editor = vscode.window.activeTextEditor;
    if (!editor || !this.services.backend.selectedModel() || editor.selections.every((s) => s.isEmpty)) {
      this.item.hide();
      return;
    }
    const text = editor.selections.map((s) => editor.document.getText(s)).join('\n');
    try {
      const { tokens, engine } = await this.services.backend.countTokens(text);
      if (run !== this.generation) return;
      this.item.text = `$(symbol-number) ${tokens.toLocaleString()} tokens`;
      this.item.tooltip = `${tokens.toLocaleString()} tokens in the selection (${text.length.toLocaleString()} characters), ${engineLabel(engine)}. Click for details.`;
      this.item.show();
    } catch (err) {
      this.services.log.debug(`Selection count failed: ${err instanceof Error ? err.message : err}`);
      this.item.hide();
    }
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.subscriptions.forEach((s) => s.dispose());
    this.item.dispose();
  }
}
