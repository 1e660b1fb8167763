import path from 'node:path';
import * as vscode from 'vscode';
import { buildForThisMachine } from '../core/engine/machineBuild';
import { NoModelError, errorMessage } from '../core/errors';
import type { BackendModel } from '../core/chat/backend';
import { COMMANDS, type Services } from './services';
import { engineLabel } from '../core/tokens/tokenCounter';

/** Palette commands (category "Nanochat") other than model management (modelCommands.ts) and benchmarks (bench.ts). Each returns a value so tests and other extensions can use it. */
export function registerCommands(services: Services): vscode.Disposable[] {
  const { models, logChannel } = services;

  return [
    vscode.commands.registerCommand(COMMANDS.unload, async () => {
      await models.unload('user');
      return models.state.kind;
    }),

    vscode.commands.registerCommand(COMMANDS.countTokens, async () => {
      const editor = vscode.window.activeTextEditor;
      if (!editor) { void vscode.window.showInformationMessage('Open a file or select text to count its tokens.'); return undefined; }
      let model: BackendModel;
      try {
        model = await services.backend.prepare();
      } catch (err) {
        if (err instanceof NoModelError) void vscode.window.showWarningMessage('Select a model first: token counts depend on its tokenizer.', 'Select Model…').then((c) => c && vscode.commands.executeCommand(COMMANDS.select));
        else void vscode.window.showErrorMessage(`Cannot count tokens: ${errorMessage(err)}`);
        return undefined;
      }
      const scope = editor.selection.isEmpty ? 'document' : 'selection';
      const text = editor.document.getText(editor.selection.isEmpty ? undefined : editor.selection);
      try {
        const { tokens: count, engine } = await services.backend.countTokens(text);
        const contextSize = model.contextSize;
        const result = { tokens: count, characters: text.length, scope, contextSize, engine };
        void vscode.window.showInformationMessage(
          `${count.toLocaleString()} tokens in the ${scope} · ${count ? (text.length / count).toFixed(2) : '0'} characters per token · ${(100 * count / contextSize).toFixed(1)}% of the ${contextSize}-token context (${engineLabel(engine)})`);
        return result;
      } catch (err) {
        void vscode.window.showErrorMessage(`Cannot count tokens: ${errorMessage(err)}`);
        return undefined;
      }
    }),

    vscode.commands.registerCommand(COMMANDS.showLogs, () => logChannel.show(true)),

    // node-llama-cpp's own source build of llama.cpp for this processor, with a persistent thread pool
    // (machineBuild.ts): about 1.4× faster generation on two threads than the prebuilt binaries here.
    vscode.commands.registerCommand(COMMANDS.buildLlamaCpp, async (options?: { confirmed?: boolean }) => {
      if (!options?.confirmed) {
        const choice = await vscode.window.showInformationMessage('Build llama.cpp for this machine?', {
          modal: true,
          detail: 'nanochat compiles llama.cpp for this processor, with a thread pool that keeps its threads between tokens: generation on several threads gets faster. It takes several minutes and needs cmake, a C++ compiler, Node.js, npm and git. Until it finishes, nanochat keeps using the prebuilt binaries.',
        }, 'Build');
        if (choice !== 'Build') return 'cancelled';
      }
      const cacheDir = path.join(services.context.globalStorageUri.fsPath, 'machine-builds');
      try {
        await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Nanochat: building llama.cpp', cancellable: true }, async (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          let done = 0;
          await buildForThisMachine({
            cacheDir, log: services.log, signal: controller.signal,
            onProgress: (message, fraction) => { progress.report({ message, increment: Math.max(0, 100 * fraction - done) }); done = Math.max(done, 100 * fraction); },
          });
        });
      } catch (err) {
        services.log.error(`Building llama.cpp failed: ${errorMessage(err)}`);
        void vscode.window.showErrorMessage(`Building llama.cpp failed: ${errorMessage(err)}`, 'Show Logs').then((c) => c && vscode.commands.executeCommand(COMMANDS.showLogs));
        return 'failed';
      }
      void vscode.window.showInformationMessage('llama.cpp is built for this machine. Reload the window to use it.', 'Reload Window')
        .then((c) => c && vscode.commands.executeCommand('workbench.action.reloadWindow'));
      return 'built';
    }),

    // Exactly what the model evaluated for the last reply: the text (special tokens included) and the token ids.
    vscode.commands.registerCommand(COMMANDS.showPrompt, async () => {
      const prompt = await services.backend.lastPrompt();
      if (!prompt) {
        void vscode.window.showInformationMessage(services.backend.kind === 'server'
          ? 'The server does not show its prompt (llama-server does, through /apply-template). Send a message first.'
          : 'No reply yet: send a message to @nanochat, in the chat panel or through the model picker, then show its prompt.');
        return undefined;
      }
      const content = [
        `# Prompt of the last reply: ${prompt.model}`,
        `# Chat format: ${prompt.chatFormat} · ${prompt.tokens.length} tokens`,
        '',
        prompt.text,
        '',
        '# Token ids',
        JSON.stringify(prompt.tokens),
        '',
      ].join('\n');
      const document = await vscode.workspace.openTextDocument({ content, language: 'plaintext' });
      await vscode.window.showTextDocument(document, { preview: true });
      return prompt;
    }),

    vscode.commands.registerCommand(COMMANDS.statusMenu, async () => {
      const state = models.state;
      type Item = vscode.QuickPickItem & { command: string };
      const items: Item[] = [
        { label: '$(comment-discussion) Open Chat Panel', command: COMMANDS.openPanel },
        { label: '$(list-selection) Select Model…', command: COMMANDS.select },
        { label: '$(cloud-download) Download Model…', command: COMMANDS.download },
        { label: '$(folder-opened) Use Local GGUF File…', command: COMMANDS.useLocal },
        ...(state.kind === 'ready' ? [{ label: '$(debug-stop) Unload Model', command: COMMANDS.unload }] : []),
        ...(services.settings.current.backend === 'server' ? [{ label: '$(key) Set Server API Key', command: COMMANDS.setServerKey }] : []),
        { label: '$(symbol-number) Count Tokens', command: COMMANDS.countTokens },
        { label: '$(code) Show Prompt of the Last Reply', command: COMMANDS.showPrompt },
        { label: '$(sparkle) Toggle Inline Completions', command: 'nanochat.toggleCompletions' },
        { label: '$(sparkle) Select Completion Model…', command: 'nanochat.selectCompletionModel' },
        { label: '$(dashboard) Run Benchmark', command: COMMANDS.bench },
        { label: '$(output) Show Logs', command: COMMANDS.showLogs },
      ];
      const choice = await vscode.window.showQuickPick(items, { title: 'Nanochat' });
      if (choice) await vscode.commands.executeCommand(choice.command);
    }),
  ];
}
