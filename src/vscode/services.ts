import type * as vscode from 'vscode';
import type { BackendSwitch } from '../core/chat/backendSwitch';
import type { ServerBackend } from '../core/server/serverBackend';
import type { Downloader } from '../core/modelFiles/download';
import type { ModelLibrary } from '../core/modelFiles/library';
import type { Logger } from '../core/log';
import type { ModelManager } from '../core/engine/models';
import type { TokenCounter } from '../core/tokens/tokenCounter';
import type { SettingsSource } from './settings';

/** The core services every adapter is a view of. */
export interface Services {
  readonly context: vscode.ExtensionContext;
  readonly settings: SettingsSource;
  readonly log: Logger;
  readonly logChannel: vscode.LogOutputChannel;
  readonly models: ModelManager;
  /** Replies, models and token counts: every surface talks to the model through this seam. */
  readonly backend: BackendSwitch;
  /** The OpenAI-compatible server backend (its connection state). */
  readonly server: ServerBackend;
  readonly library: ModelLibrary;
  readonly downloader: Downloader;
  readonly tokens: TokenCounter;
}

export const COMMANDS = {
  openPanel: 'nanochat.openChatPanel',
  download: 'nanochat.downloadModel',
  setToken: 'nanochat.setHuggingFaceToken',
  deleteModel: 'nanochat.deleteModel',
  useLocal: 'nanochat.useLocalModel',
  select: 'nanochat.selectModel',
  unload: 'nanochat.unloadModel',
  countTokens: 'nanochat.countTokens',
  bench: 'nanochat.runBenchmark',
  showBenchReport: 'nanochat.showBenchmarkReport',
  showLogs: 'nanochat.showLogs',
  statusMenu: 'nanochat.statusMenu',
  setServerKey: 'nanochat.setServerApiKey',
  showPrompt: 'nanochat.showPrompt',
  buildLlamaCpp: 'nanochat.buildLlamaCpp',
} as const;
