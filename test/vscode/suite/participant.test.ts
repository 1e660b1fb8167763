import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { HandledRequest } from '../../../src/vscode/participant';
import { askThroughChatView, host, mostAtOnce, noHistory, recordingStream, request, select, statsOf, token, type Api } from './helpers';

export function defineParticipantTests(): void {
  describe('@nanochat in the real extension host', () => {
    let api: Api;
    before(() => { api = host.api; });

    it('answers "@nanochat Once upon a time" sent through the real Chat view', async () => {
      const h = await askThroughChatView('Once upon a time');
      assert.equal(h.error, undefined);
      assert.ok(h.text.trim().length > 20, `reply ${JSON.stringify(h.text)}`);
      assert.ok(h.stats && h.stats.completionTokens > 0);
    });

    it('streams through the participant handler with a footer, and cancels', async () => {
      const rec = recordingStream();
      const result = await api.participant.handler(request('Once upon a time'), noHistory, rec.stream, token());
      assert.ok(rec.markdown.length > 3, 'streamed in several parts');
      assert.match(rec.text(), /\*\d+ tokens · [\d.]+ tok\/s/);
      assert.ok(statsOf(result));

      const source = new vscode.CancellationTokenSource();
      const rec2 = recordingStream();
      await vscode.workspace.getConfiguration('nanochat').update('maxTokens', 2000, vscode.ConfigurationTarget.Global);
      try {
        const origMarkdown = rec2.stream.markdown;
        let seen = 0;
        (rec2.stream as { markdown: unknown }).markdown = (v: string) => { origMarkdown(v); if (++seen === 5) source.cancel(); };
        const r = await api.participant.handler(request('Once upon a time there was a dragon'), noHistory, rec2.stream, source.token);
        const stats = statsOf(r);
        assert.equal(stats.stopReason, 'cancelled');
        assert.ok(stats.completionTokens < 2000);
      } finally {
        await vscode.workspace.getConfiguration('nanochat').update('maxTokens', 48, vscode.ConfigurationTarget.Global);
      }
    });

    it('answers /model and /tokens', async () => {
      const model = recordingStream();
      await api.participant.handler(request('', 'model'), noHistory, model.stream, token());
      assert.match(model.text(), /is loaded[\s\S]*\| Context \| \d+ tokens[\s\S]*\| Threads \| 1 \|[\s\S]*\| Backend \| cpu/);
      assert.ok(model.buttons.some((b) => b.command === 'nanochat.selectModel'));

      const tokens = recordingStream();
      await api.participant.handler(request('Once upon a time', 'tokens'), noHistory, tokens.stream, token());
      const expected = api.services.models.model!.model.tokenize('Once upon a time', false).length;
      assert.match(tokens.text(), new RegExp(`\\| Prompt \\| ${expected} \\| 16 \\|`));
    });

    it('explains the selected code with /explain', async () => {
      const folder = vscode.workspace.workspaceFolders![0].uri;
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'sample.py'));
      const editor = await vscode.window.showTextDocument(doc);
      await select(editor, new vscode.Selection(0, 0, 2, 16));
      const rec = recordingStream();
      const r = await api.participant.handler(request('', 'explain'), noHistory, rec.stream, token());
      const stats = statsOf(r);
      assert.ok(stats && stats.promptTokens > 30, 'the selection went into the prompt');
      // A #file reference goes into the prompt as well, even with no selection.
      await select(editor, new vscode.Selection(0, 0, 0, 0));
      const withFile = recordingStream();
      const fileRef = { id: 'vscode.file', value: doc.uri } as unknown as vscode.ChatPromptReference;
      const r2 = await api.participant.handler(request('What does this do?', undefined, [fileRef]), noHistory, withFile.stream, token());
      const plain = await api.participant.handler(request('What does this do?'), noHistory, recordingStream().stream, token());
      assert.ok(statsOf(r2).promptTokens > statsOf(plain).promptTokens + 20, `the referenced file went into the prompt: ${withFile.text().slice(0, 300)}`);
      await select(editor, new vscode.Selection(0, 0, 2, 16));
      const counted = await vscode.commands.executeCommand<{ tokens: number; scope: string }>('nanochat.countTokens');
      assert.equal(counted.scope, "selection", JSON.stringify(counted));
      assert.ok(counted.tokens > 0, JSON.stringify(counted));
      let shown: string | undefined;
      for (let i = 0; i < 40 && shown !== `$(symbol-number) ${counted.tokens} tokens`; i++) { await new Promise((r) => setTimeout(r, 100)); shown = api.selectionTokens.text; }
      assert.equal(shown, `$(symbol-number) ${counted.tokens} tokens`, 'the status bar counts the selection');
      assert.equal(counted.tokens, api.services.models.model!.model.tokenize(doc.getText(editor.selection), false).length);
    });

    it('runs two Chat view threads that open with the same words at once', async () => {
      const results: Array<vscode.ChatResult | void | null | undefined> = [];
      const most = await mostAtOnce(async () => {
        results.push(...await Promise.all([0, 1].map(() => api.participant.handler(request('Hello'), noHistory, recordingStream().stream, token()))));
      });
      assert.equal(most, 2, 'the second thread did not wait for the first');
      assert.ok(results.every((r) => statsOf(r)?.completionTokens > 0));
    });

    it('keeps #file context in follow-ups (ChatResult.metadata) and evaluates only the new tokens', async () => {
      const folder = vscode.workspace.workspaceFolders![0].uri;
      const file = vscode.Uri.joinPath(folder, 'sample.py');
      const fileRef = { id: 'vscode.file', value: file } as unknown as vscode.ChatPromptReference;
      const first = recordingStream();
      const turn1 = await api.participant.handler(request('What does this file do?', undefined, [fileRef]), noHistory, first.stream, token()) as vscode.ChatResult;
      const kept = turn1.metadata?.nanochat;
      assert.match(kept.prompt, /def add\(a, b\)/, 'the metadata keeps the message as the model saw it');
      assert.ok(!/tok\/s/.test(kept.reply), 'the kept reply has no footer');
      // VS Code hands the earlier turns back in context.history (its classes, built here as VS Code builds them).
      const RequestTurn = vscode.ChatRequestTurn as unknown as new (...args: unknown[]) => vscode.ChatRequestTurn;
      const ResponseTurn = vscode.ChatResponseTurn as unknown as new (...args: unknown[]) => vscode.ChatResponseTurn;
      const history = [
        new RequestTurn('What does this file do?', undefined, [fileRef], 'nanochat.chat', []),
        new ResponseTurn([new vscode.ChatResponseMarkdownPart(first.text())], turn1, 'nanochat.chat'),
      ];
      const handled = new Promise<HandledRequest>((resolve) => { const sub = api.participant.onDidHandle((h) => { sub.dispose(); resolve(h); }); });
      const turn2 = await api.participant.handler(request('And what does it return?'), { history } as unknown as vscode.ChatContext, recordingStream().stream, token());
      const sent = (await handled).sent!;
      assert.deepEqual(sent.map((m) => m.role), ['user', 'assistant', 'user']);
      assert.match(sent[0].content, /def add\(a, b\)/, 'turn 2 still carries the file');
      assert.equal(sent[1].content, kept.reply);
      const stats = statsOf(turn2);
      assert.ok(stats.evaluatedPromptTokens < stats.promptTokens / 2, `turn 2 evaluated ${stats.evaluatedPromptTokens} of ${stats.promptTokens} prompt tokens`);
    });
  });
}
