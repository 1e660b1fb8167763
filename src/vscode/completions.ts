import path from 'node:path';
import * as vscode from 'vscode';
import { CompletionUnsupportedError, completionModelPath, type CompletionActivity, type CompletionEngine } from '../core/completion/completionEngine';
import type { CompletionRequest, ContextFile } from '../core/completion/fim';
import { errorMessage } from '../core/errors';
import { abortOn } from './cancellation';
import type { Services } from './services';

export const COMPLETION_COMMANDS = {
  toggle: 'nanochat.toggleCompletions',
  selectModel: 'nanochat.selectCompletionModel',
  accepted: 'nanochat.completionAccepted',
} as const;

/** How much of the document around the cursor is read, in lines; the engine keeps what fits its context. */
const PREFIX_LINES = 512;
const SUFFIX_LINES = 64;
/** Other files: the few most recently edited, a window of lines around the last edit in each. */
const RECENT_FILES = 4;
const WINDOW_LINES = 40;

/** What the completion status item shows (pure, so tests can check it). */
export function completionStatusView(enabled: boolean, modelPath: string, activity: CompletionActivity): { text: string; tooltip: string } {
  if (!enabled) return { text: '$(circle-slash) completions', tooltip: 'Nanochat inline completions are off. Click to turn them on.' };
  const name = modelPath ? path.basename(modelPath).replace(/\.gguf$/i, '') : 'no model';
  if (activity.computing) return { text: '$(loading~spin) completing', tooltip: `${name} is computing a suggestion` };
  if (activity.error) return { text: '$(warning) completions', tooltip: `${activity.error}\nClick to turn inline completions off.` };
  const last = activity.last;
  const timing = last ? `\nLast: ${last.cached ? 'from the cache' : `${last.totalMs} ms, ${last.evaluatedTokens} tokens evaluated, ${last.generatedTokens} generated`}` : '';
  return { text: '$(sparkle) completions', tooltip: `Nanochat inline completions with ${name}.${timing}\nClick to turn them off.` };
}

/**
 * Ghost-text completions for every language from the completion model. Each keystroke cancels the
 * request before it (VS Code's token, bridged to the engine's AbortSignal); a pause of
 * nanochat.completions.debounceMs starts a new one; typing through a suggestion is served from the cache;
 * after an accept, the next suggestion is computed ahead.
 */
export function registerInlineCompletions(services: Services, engine: CompletionEngine): vscode.Disposable[] {
  const { settings, log } = services;
  const recent = new Map<string, { uri: vscode.Uri; line: number }>();
  let activity: CompletionActivity = { computing: false };
  let warnedUnsupported = '';

  const status = vscode.window.createStatusBarItem('nanochat.completions', vscode.StatusBarAlignment.Right, 99);
  status.name = 'Nanochat Completions';
  status.command = COMPLETION_COMMANDS.toggle;
  const render = () => {
    const view = completionStatusView(settings.current['completions.enabled'], completionModelPath(settings.current), activity);
    status.text = view.text;
    status.tooltip = view.tooltip;
    if (settings.current['completions.enabled'] && completionModelPath(settings.current)) status.show(); else status.hide();
  };
  render();

  const extraFiles = (current: vscode.Uri): ContextFile[] => {
    const files: ContextFile[] = [];
    for (const { uri, line } of [...recent.values()].reverse()) {
      if (uri.toString() === current.toString()) continue;
      const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
      if (!document) continue;
      const start = Math.max(0, line - WINDOW_LINES / 2);
      const end = Math.min(document.lineCount, start + WINDOW_LINES);
      files.push({ path: vscode.workspace.asRelativePath(uri), text: document.getText(new vscode.Range(start, 0, end, 0)) });
      if (files.length >= RECENT_FILES) break;
    }
    return files;
  };

  const requestAt = (document: vscode.TextDocument, position: vscode.Position): CompletionRequest => {
    // The prefix starts at a line that moves in steps of 64 lines, so it stays put while the user types
    // (the engine keeps what fits from there, and the KV cache of the prompt holds).
    const firstLine = Math.max(0, Math.floor((position.line - PREFIX_LINES) / 64) * 64);
    const suffixEnd = document.validatePosition(new vscode.Position(position.line + SUFFIX_LINES, 0));
    return {
      prefix: document.getText(new vscode.Range(firstLine, 0, position.line, position.character)),
      suffix: document.getText(new vscode.Range(position, suffixEnd)),
      path: vscode.workspace.asRelativePath(document.uri),
      repo: vscode.workspace.name,
      extra: extraFiles(document.uri),
    };
  };

  const provider: vscode.InlineCompletionItemProvider = {
    async provideInlineCompletionItems(document, position, _context, token) {
      const current = settings.current;
      if (!current['completions.enabled'] || !completionModelPath(current) && current.backend !== 'server') return undefined;
      const request = requestAt(document, position);
      const key = document.uri.toString();
      // Typing through a suggestion: no pause, no model.
      const cached = engine.cache.get(key, request.prefix, request.suffix);
      if (cached === undefined) {
        await new Promise((resolve) => setTimeout(resolve, current['completions.debounceMs']));
        if (token.isCancellationRequested) return undefined;
      }
      const cancel = abortOn(token);
      try {
        const result = await engine.complete(key, request, cancel.signal);
        if (!result?.text || token.isCancellationRequested) return undefined;
        const item = new vscode.InlineCompletionItem(result.text, new vscode.Range(position, position), {
          title: 'Nanochat: suggestion accepted', command: COMPLETION_COMMANDS.accepted, arguments: [key],
        });
        return [item];
      } catch (err) {
        if (err instanceof CompletionUnsupportedError) {
          if (warnedUnsupported !== err.model) {
            warnedUnsupported = err.model;
            void vscode.window.showWarningMessage(err.message, 'Open Settings').then((c) => c && vscode.commands.executeCommand('workbench.action.openSettings', 'nanochat.completions'));
          }
        } else {
          log.warn(`Inline completion failed: ${errorMessage(err)}`);
        }
        return undefined;
      } finally {
        cancel.dispose();
      }
    },
  };

  return [
    status,
    vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider),
    engine.onDidChangeActivity((a) => { activity = { ...activity, ...a, ...(a.last ? { error: undefined } : {}) }; render(); }),
    settings.onDidChange(() => { engine.onSettingsChanged(); render(); }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.scheme !== 'file' && e.document.uri.scheme !== 'untitled') return;
      const change = e.contentChanges[0];
      if (!change) return;
      const key = e.document.uri.toString();
      recent.delete(key);
      recent.set(key, { uri: e.document.uri, line: change.range.start.line });
      while (recent.size > 16) recent.delete(recent.keys().next().value!);
    }),
    vscode.commands.registerCommand(COMPLETION_COMMANDS.toggle, async () => {
      const next = !settings.current['completions.enabled'];
      await vscode.workspace.getConfiguration('nanochat').update('completions.enabled', next, vscode.ConfigurationTarget.Global);
      void vscode.window.setStatusBarMessage(`Nanochat inline completions ${next ? 'on' : 'off'}`, 2500);
      return next;
    }),
    // The completion model, apart from the chat model: an installed one, a file, or the chat model itself.
    vscode.commands.registerCommand(COMPLETION_COMMANDS.selectModel, async (choice?: string) => {
      if (typeof choice !== 'string') {
        type Item = vscode.QuickPickItem & { value: string };
        const current = settings.current['completions.model'];
        const items: Item[] = [
          { label: '$(link) Same as the chat model', description: current ? '' : 'current', value: '' },
          ...services.library.list().map((m) => ({ label: m.name, description: m.path === current ? 'current' : '', detail: m.path, value: m.path })),
          { label: '$(folder-opened) Choose a GGUF file…', value: '\u0000browse' },
        ];
        const picked = await vscode.window.showQuickPick(items, { title: 'Nanochat: Completion Model', placeHolder: 'A code model with fill-in-the-middle tokens, such as Qwen2.5-Coder' });
        if (!picked) return undefined;
        choice = picked.value;
        if (choice === '\u0000browse') {
          const file = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Use for completions', filters: { 'GGUF models': ['gguf'] } });
          if (!file?.[0]) return undefined;
          choice = file[0].fsPath;
        }
      }
      await vscode.workspace.getConfiguration('nanochat').update('completions.model', choice || undefined, vscode.ConfigurationTarget.Global);
      warnedUnsupported = '';
      return choice;
    }),

    // After an accept, the suggestion for the new cursor position is computed ahead, into the cache.
    vscode.commands.registerCommand(COMPLETION_COMMANDS.accepted, async (key: string) => {
      const editor = vscode.window.activeTextEditor;
      if (!editor || editor.document.uri.toString() !== key || !settings.current['completions.enabled']) return;
      try {
        await engine.complete(key, requestAt(editor.document, editor.selection.active));
      } catch (err) {
        log.debug(`Computing the next suggestion ahead failed: ${errorMessage(err)}`);
      }
    }),
  ];
}
