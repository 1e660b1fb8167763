import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { activate } from '../../../src/extension';
import type { HandledRequest } from '../../../src/vscode/participant';

export type Api = Awaited<ReturnType<typeof activate>>;

/** The activated extension, shared by every suite (index.ts activates it once). */
export const host = { api: undefined as unknown as Api, model: process.env.NANOCHAT_TEST_MODEL! };

export async function activateNanochat(): Promise<Api> {
  const ext = vscode.extensions.getExtension<Api>('nanochat.nanochat');
  assert.ok(ext, 'the extension is installed');
  host.api = await ext.activate();
  console.log(`VS Code ${vscode.version}, ${vscode.env.appName}, node ${process.version}, workspace trusted: ${vscode.workspace.isTrusted}`);
  return host.api;
}

/** The last lines of the "Nanochat" log channel's file (found beside the extension's log folder). */
export function nanochatLogTail(lines: number): string {
  try {
    const root = path.dirname(host.api.services.context.logUri.fsPath);
    const files = (fs.readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith('Nanochat.log'));
    if (files.length === 0) return `(no Nanochat log under ${root})`;
    const text = fs.readFileSync(path.join(root, files[files.length - 1]), 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch (err) {
    return `(the log could not be read: ${err instanceof Error ? err.message : err})`;
  }
}

/** A ChatResponseStream that records what the participant writes. */
export function recordingStream() {
  const markdown: string[] = [];
  const buttons: vscode.Command[] = [];
  const progress: string[] = [];
  const stream = {
    markdown: (v: string | vscode.MarkdownString) => { markdown.push(typeof v === 'string' ? v : v.value); },
    button: (c: vscode.Command) => { buttons.push(c); },
    progress: (v: string) => { progress.push(v); },
    reference: () => {}, anchor: () => {}, filetree: () => {}, push: () => {},
  } as unknown as vscode.ChatResponseStream;
  return { stream, markdown, buttons, progress, text: () => markdown.join('') };
}

export function request(prompt: string, command?: string, references: vscode.ChatPromptReference[] = []): vscode.ChatRequest {
  return { prompt, command, references, toolReferences: [], toolInvocationToken: undefined, model: undefined } as unknown as vscode.ChatRequest;
}

export const noHistory = { history: [] } as unknown as vscode.ChatContext;

export const token = () => new vscode.CancellationTokenSource().token;

/** The stats @nanochat keeps in a turn's ChatResult.metadata. */
export function statsOf(result: vscode.ChatResult | void | null | undefined) {
  return (result ?? undefined)?.metadata?.nanochat?.stats;
}

/** The highest number of replies generating at once while `work` runs. */
export async function mostAtOnce(work: () => Promise<unknown>): Promise<number> {
  let most = 0;
  const sub = host.api.services.backend.onDidChangeActivity((a) => { most = Math.max(most, a.generating); });
  try { await work(); } finally { sub.dispose(); }
  return most;
}

/**
 * Sets a selection and waits until the workbench stops sending older selection events back. The
 * document is compared by URI: when its editor was closed meanwhile (the Chat view took the place),
 * showing it again gives a new TextDocument object for the same file (a CI run failed on that).
 */
export async function select(editor: vscode.TextEditor, selection: vscode.Selection): Promise<void> {
  const uri = editor.document.uri.toString();
  const isThis = (e: vscode.TextEditor | undefined) => e?.document.uri.toString() === uri;
  let stable = 0;
  for (let i = 0; i < 50 && stable < 3; i++) {
    const active = vscode.window.activeTextEditor;
    if (isThis(active) && active!.selection.isEqual(selection)) stable++;
    else if (isThis(active)) { stable = 0; active!.selection = selection; }
    // Another editor (or none: the Chat view took the focus) is active: show this one again, selected.
    else { stable = 0; await vscode.window.showTextDocument(editor.document.uri, { selection, preserveFocus: false, viewColumn: editor.viewColumn }); }
    await new Promise((r) => setTimeout(r, 100));
  }
  const active = vscode.window.activeTextEditor;
  assert.ok(isThis(active) && active!.selection.isEqual(selection), `the selection was set (active editor: ${active ? `${active.document.uri.path} ${JSON.stringify(active.selection)}` : 'none'})`);
}

/**
 * Sends `@nanochat <prompt>` through the real Chat view and resolves with what the participant
 * handled. The workbench selects a model asynchronously, so the first tries can fail with
 * "Language model unavailable": it asks again, up to ten times.
 */
export async function askThroughChatView(prompt: string): Promise<HandledRequest> {
  const handled = new Promise<HandledRequest>((resolve) => {
    const sub = host.api.participant.onDidHandle((h) => { if (h.prompt.includes(prompt)) { sub.dispose(); resolve(h); } });
  });
  let result: HandledRequest | 'timeout' = 'timeout';
  for (let attempt = 0; attempt < 10 && result === 'timeout'; attempt++) {
    await vscode.commands.executeCommand('workbench.action.chat.open', { query: `@nanochat ${prompt}` });
    result = await Promise.race([handled, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000))]);
  }
  assert.notEqual(result, 'timeout', 'the participant never got the request');
  return result as HandledRequest;
}
