import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { importNodeLlamaCpp } from '../../../src/core/engine/llama';
import type { CompletionResult } from '../../../src/core/completion/completionEngine';
import { host, type Api } from './helpers';

async function until<T>(what: string, probe: () => T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function defineCompletionTests(): void {
  describe('inline completions in the real extension host (a template-true Qwen2.5-Coder)', () => {
    let api: Api;
    const config = () => vscode.workspace.getConfiguration('nanochat');
    const calls: Array<{ prefix: string; signal?: AbortSignal; result?: CompletionResult; settled: boolean }> = [];
    let original: Api['completions']['complete'];

    before(async () => {
      api = host.api;
      await config().update('completions.model', process.env.NANOCHAT_TEST_CODER_MODEL, vscode.ConfigurationTarget.Global);
      await config().update('completions.debounceMs', 30, vscode.ConfigurationTarget.Global);
      // A spy on the engine: what each request was given and gave back.
      original = api.completions.complete.bind(api.completions);
      api.completions.complete = async (document, request, signal) => {
        const call: (typeof calls)[number] = { prefix: request.prefix, signal, settled: false };
        calls.push(call);
        try { call.result = await original(document, request, signal); return call.result; } finally { call.settled = true; }
      };
    });
    after(async () => {
      api.completions.complete = original;
      api.completions.tokenBias = undefined;
      await config().update('completions.model', undefined, vscode.ConfigurationTarget.Global);
      await config().update('completions.debounceMs', undefined, vscode.ConfigurationTarget.Global);
      await config().update('completions.maxTokens', undefined, vscode.ConfigurationTarget.Global);
      await config().update('completions.enabled', undefined, vscode.ConfigurationTarget.Global);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    async function openAt(text: string, line: number, character: number): Promise<vscode.TextEditor> {
      const folder = vscode.workspace.workspaceFolders![0].uri;
      const uri = vscode.Uri.joinPath(folder, `calc-${Date.now()}.py`);
      await vscode.workspace.fs.writeFile(uri, Buffer.from(text));
      const editor = await vscode.window.showTextDocument(uri);
      editor.selection = new vscode.Selection(line, character, line, character);
      return editor;
    }

    /** Steers the random weights through `text`, one token per step (its last token forever with `repeat`). */
    async function force(text: string, repeat = false): Promise<void> {
      const { TokenBias } = await importNodeLlamaCpp();
      const lease = await api.completions.models.acquire();
      const model = lease.model.model;
      lease.dispose();
      const script = model.tokenize(text, false);
      let step = 0;
      api.completions.tokenBias = () => {
        // A never-ending suggestion is also slowed (5 ms a token), so a keystroke always lands while it runs.
        if (repeat) { const until = performance.now() + 5; while (performance.now() < until) { /* wait */ } }
        const bias = new TokenBias(model.tokenizer);
        if (step < script.length || repeat) bias.set(script[Math.min(step, script.length - 1)] as never, { logit: 1000 });
        step++;
        return bias;
      };
    }

    it('shows the model\'s suggestion as ghost text, and accepting it (Tab) inserts it', async () => {
      const editor = await openAt('def add(a, b):\n    \n\nprint(add(1, 2))\n', 1, 4);
      await force('total = a + b\n    return total\n\nprint(1)\n');
      calls.length = 0;
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      const call = await until('a suggestion', () => calls.find((c) => c.settled && c.result?.text));
      assert.equal(call.result!.text, 'total = a + b\n    return total');
      assert.equal(call.result!.model, 'Qwen2.5 Coder 0.5B (synthetic)');
      // Tab is editor.action.inlineSuggest.commit while ghost text shows; it only inserts a visible suggestion.
      for (let i = 0; i < 100 && !editor.document.getText().includes('return total'); i++) {
        await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(editor.document.getText(), 'def add(a, b):\n    total = a + b\n    return total\n\nprint(add(1, 2))\n');
      // Accepted: the suggestion for the new cursor position is computed ahead, before any keystroke.
      await until('the next suggestion computed ahead', () => calls.some((c) => c.settled && !c.signal && c.prefix.endsWith('    return total')));
      assert.match(api.completions.models.state.kind, /ready/);
    });

    it('a keystroke cancels the request still running, and the next one answers', async () => {
      // A suggestion that never ends on its own: " x" up to completions.maxTokens.
      await force(' x', true);
      await config().update('completions.maxTokens', 512, vscode.ConfigurationTarget.Global);
      const editor = await openAt('def long():\n    \n', 1, 4);
      calls.length = 0;
      // Not awaited: the trigger command resolves only when the suggestion is there.
      void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      const running = await until('a running request', () => calls.find((c) => !c.settled) ?? (calls.length > 0 && assert.fail(`requests ended before the keystroke: ${JSON.stringify(calls.map((c) => ({ aborted: c.signal?.aborted, text: c.result?.text?.slice(0, 40), generated: c.result?.generatedTokens })))}`)), 10_000);
      await vscode.commands.executeCommand('type', { text: 'x' });
      await until('the stale request to end', () => running.settled);
      assert.equal(running.signal?.aborted, true, 'VS Code cancelled it and the engine saw the abort');
      assert.equal(running.result, undefined, 'a cancelled request gives no suggestion');
      assert.equal(editor.document.lineAt(1).text, '    x');
      await config().update('completions.maxTokens', 8, vscode.ConfigurationTarget.Global);
      await until('a request after the keystroke', () => calls.some((c) => c !== running && c.settled), 30_000);
    });

    it('"Nanochat: Select Completion Model…" sets the completion model apart from the chat model', async () => {
      const coder = process.env.NANOCHAT_TEST_CODER_MODEL!;
      assert.equal(await vscode.commands.executeCommand('nanochat.selectCompletionModel', ''), '');
      assert.equal(config().get('completions.model'), '', 'back to the chat model');
      assert.equal(await vscode.commands.executeCommand('nanochat.selectCompletionModel', coder), coder);
      assert.equal(config().get('completions.model'), coder);
      assert.notEqual(api.services.settings.current.model, coder, 'the chat model is untouched');
    });

    it('"Nanochat: Toggle Inline Completions" turns them off and on', async () => {
      assert.equal(await vscode.commands.executeCommand('nanochat.toggleCompletions'), false);
      assert.equal(config().get('completions.enabled'), false);
      await openAt('x = \n', 0, 4);
      calls.length = 0;
      await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(calls.length, 0, 'no request while off');
      assert.equal(await vscode.commands.executeCommand('nanochat.toggleCompletions'), true);
    });
  });
}
