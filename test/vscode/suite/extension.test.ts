import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import type { activate } from '../../../src/extension';
import { toConversation } from '../../../src/vscode/lmProvider';
import type { HandledRequest } from '../../../src/vscode/participant';
import { writeBadFiles } from '../../support/badFiles';
import { ModelServer } from '../../support/modelServer';
import { startLoopbackProxy } from '../../support/proxy';
import { ConversationStore } from '../../../src/core/chat/conversations';
import type { ToWebview } from '../../../src/protocol/panel';
import { benchReportSchema, readHistory, type BenchReport } from '../../../src/core/bench/bench';

type Api = ReturnType<typeof activate>;

/** A ChatResponseStream that records what the participant writes. */
function recordingStream() {
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

function request(prompt: string, command?: string, references: vscode.ChatPromptReference[] = []): vscode.ChatRequest {
  return { prompt, command, references, toolReferences: [], toolInvocationToken: undefined, model: undefined } as unknown as vscode.ChatRequest;
}

const token = () => new vscode.CancellationTokenSource().token;

/** Sets a selection and waits until the workbench stops sending older selection events back. */
async function select(editor: vscode.TextEditor, selection: vscode.Selection): Promise<void> {
  let stable = 0;
  for (let i = 0; i < 50 && stable < 3; i++) {
    const active = vscode.window.activeTextEditor;
    if (active?.document === editor.document && active.selection.isEqual(selection)) stable++;
    else { stable = 0; (active?.document === editor.document ? active : editor).selection = selection; }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(vscode.window.activeTextEditor?.selection.isEqual(selection), 'the selection was set');
}

export function defineExtensionTests(): void {
  describe('nanochat in the real VS Code extension host', () => {
    let api: Api;
    const model = process.env.NANOCHAT_TEST_MODEL!;

    before(async () => {
      const ext = vscode.extensions.getExtension<Api>('nanochat.nanochat');
      assert.ok(ext, 'the extension is installed');
      api = await ext.activate();
      console.log(`VS Code ${vscode.version}, ${vscode.env.appName}, node ${process.version}`);
    });

    it('activates without loading the model, and registers its commands', async () => {
      assert.ok(model && fs.existsSync(model), `fixture model ${model}`);
      assert.equal(api.services.settings.current.model, model);
      assert.equal(api.participant.participant.id, 'nanochat.chat');
      const commands = await vscode.commands.getCommands(true);
      for (const c of ['openChatPanel', 'downloadModel', 'useLocalModel', 'selectModel', 'unloadModel', 'countTokens', 'runBenchmark', 'showLogs']) {
        assert.ok(commands.includes(`nanochat.${c}`), `command nanochat.${c}`);
      }
      assert.equal(api.statusBar.history[0], '$(hubot) stories260K', 'the selected model is shown before it loads');
      assert.equal(api.services.models.state.kind, 'none', 'activation loads nothing');
    });

    it('offers the local model through vscode.lm and streams real model text', async () => {
      const models = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      assert.ok(models.length >= 1, `got ${models.length} models`);
      const chat = models[0];
      assert.equal(chat.vendor, 'nanochat');
      assert.ok(chat.maxInputTokens > 100 && chat.maxInputTokens <= 1024, `maxInputTokens ${chat.maxInputTokens}`);
      const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time')], {}, token());
      let text = '';
      let chunks = 0;
      for await (const t of response.text) { text += t; chunks++; }
      assert.ok(text.trim().length > 20 && chunks > 3, `streamed ${chunks} chunks: ${JSON.stringify(text)}`);
      assert.equal(api.services.models.state.kind, 'ready');
      assert.ok(api.statusBar.history.some((t) => /loading/.test(t)), `status bar: ${api.statusBar.history.join(' | ')}`);
      assert.ok(api.statusBar.history.some((t) => /generating/.test(t)), `status bar: ${api.statusBar.history.join(' | ')}`);
      assert.match(api.statusBar.text, /hubot/);
      const count = await chat.countTokens('Once upon a time');
      const exact = api.services.models.model!.model.tokenize('Once upon a time', false).length;
      assert.equal(count, exact);
    });

    it('takes tools: answers in text when none is called, and continues after tool results', async () => {
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const tools: vscode.LanguageModelChatTool[] = [{ name: 'getWeather', description: 'Weather of a city', inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
      const plain = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time')], { tools }, token());
      let text = '';
      for await (const part of plain.stream) if (part instanceof vscode.LanguageModelTextPart) text += part.value;
      assert.ok(text.length > 0);

      const history = [
        vscode.LanguageModelChatMessage.User('What is the weather in Paris?'),
        vscode.LanguageModelChatMessage.Assistant([new vscode.LanguageModelToolCallPart('call-1', 'getWeather', { city: 'Paris' })]),
        vscode.LanguageModelChatMessage.User([new vscode.LanguageModelToolResultPart('call-1', [new vscode.LanguageModelTextPart('sunny, 21 C')])]),
      ];
      const conversation = toConversation(history);
      assert.deepEqual(conversation.messages.map((m) => m.role), ['user', 'assistant']);
      assert.deepEqual(conversation.messages[1].toolCalls, [{ id: 'call-1', name: 'getWeather', params: { city: 'Paris' }, result: 'sunny, 21 C' }]);
      const continued = await chat.sendRequest(history, { tools }, token());
      let after = '';
      for await (const part of continued.stream) if (part instanceof vscode.LanguageModelTextPart) after += part.value;
      assert.ok(after.length > 0, 'the model continued after the tool result');
    });

    it('stops generating when the request is cancelled', async () => {
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const source = new vscode.CancellationTokenSource();
      const long = { ...api.services.settings.current };
      await vscode.workspace.getConfiguration('nanochat').update('maxTokens', 2000, vscode.ConfigurationTarget.Global);
      try {
        const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time there was a dragon')], {}, source.token);
        let text = '';
        for await (const t of response.text) {
          text += t;
          if (text.length > 30) source.cancel();
        }
        const outputTokens = api.services.models.model!.model.tokenize(text, false).length;
        assert.ok(outputTokens < 1500, `${outputTokens} tokens came after cancelling`);
      } catch (err) {
        assert.ok(err instanceof vscode.CancellationError || /cancel/i.test(String(err)), String(err));
      } finally {
        await vscode.workspace.getConfiguration('nanochat').update('maxTokens', long.maxTokens, vscode.ConfigurationTarget.Global);
      }
      // The next request works normally.
      const again = await chat.sendRequest([vscode.LanguageModelChatMessage.User('The cat')], {}, token());
      let text = '';
      for await (const t of again.text) text += t;
      assert.ok(text.length > 0);
    });

    it('answers "@nanochat Once upon a time" sent through the real Chat view', async () => {
      const handled = new Promise<HandledRequest>((resolve) => {
        const sub = api.participant.onDidHandle((h) => { if (h.prompt.includes('Once upon a time')) { sub.dispose(); resolve(h); } });
      });
      let result: HandledRequest | 'timeout' = 'timeout';
      for (let attempt = 0; attempt < 10 && result === 'timeout'; attempt++) {
        // The workbench selects a model asynchronously; the first tries can fail with "Language model unavailable".
        await vscode.commands.executeCommand('workbench.action.chat.open', { query: '@nanochat Once upon a time' });
        result = await Promise.race([handled, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000))]);
      }
      assert.notEqual(result, 'timeout', 'the participant never got the request');
      const h = result as HandledRequest;
      assert.equal(h.error, undefined);
      assert.ok(h.text.trim().length > 20, `reply ${JSON.stringify(h.text)}`);
      assert.ok(h.stats && h.stats.completionTokens > 0);
    });

    it('streams through the participant handler with a footer, and cancels', async () => {
      const rec = recordingStream();
      const result = await api.participant.handler(request('Once upon a time'), { history: [] } as vscode.ChatContext, rec.stream, token());
      assert.ok(rec.markdown.length > 3, 'streamed in several parts');
      assert.match(rec.text(), /\*\d+ tokens · [\d.]+ tok\/s/);
      assert.ok((result as vscode.ChatResult).metadata?.stats);

      const source = new vscode.CancellationTokenSource();
      const rec2 = recordingStream();
      await vscode.workspace.getConfiguration('nanochat').update('maxTokens', 2000, vscode.ConfigurationTarget.Global);
      try {
        const origMarkdown = rec2.stream.markdown;
        let seen = 0;
        (rec2.stream as { markdown: unknown }).markdown = (v: string) => { origMarkdown(v); if (++seen === 5) source.cancel(); };
        const r = await api.participant.handler(request('Once upon a time there was a dragon'), { history: [] } as vscode.ChatContext, rec2.stream, source.token);
        const stats = (r as vscode.ChatResult).metadata?.stats;
        assert.equal(stats.stopReason, 'cancelled');
        assert.ok(stats.completionTokens < 2000);
      } finally {
        await vscode.workspace.getConfiguration('nanochat').update('maxTokens', 48, vscode.ConfigurationTarget.Global);
      }
    });

    it('answers /model and /tokens', async () => {
      const model = recordingStream();
      await api.participant.handler(request('', 'model'), { history: [] } as vscode.ChatContext, model.stream, token());
      assert.match(model.text(), /is loaded[\s\S]*\| Context \| \d+ tokens[\s\S]*\| Threads \| 1 \|[\s\S]*\| Backend \| cpu/);
      assert.ok(model.buttons.some((b) => b.command === 'nanochat.selectModel'));

      const tokens = recordingStream();
      await api.participant.handler(request('Once upon a time', 'tokens'), { history: [] } as vscode.ChatContext, tokens.stream, token());
      const expected = api.services.models.model!.model.tokenize('Once upon a time', false).length;
      assert.match(tokens.text(), new RegExp(`\\| Prompt \\| ${expected} \\| 16 \\|`));
    });

    it('benchmarks: /bench, then "Run Benchmark" compared with it in the report webview, history, Markdown export, cancel', async function () {
      this.timeout(240_000);
      fs.rmSync(api.bench.historyFile, { force: true });
      const bench = recordingStream();
      await api.participant.handler(request('', 'bench'), { history: [] } as vscode.ChatContext, bench.stream, token());
      assert.match(bench.text(), /stories260K \(llama, [\d.]+ [KM]B\) on .* cores, CPU\*\*, medians of 2 runs:/);
      assert.match(bench.text(), /\| Generation \(median\) \| [\d.,]+ tok\/s \|/);
      assert.ok(bench.progress.some((p) => /Benchmark: Time to first token/.test(p)), bench.progress.join(' | '));
      assert.ok(bench.buttons.some((b) => b.command === 'nanochat.showBenchmarkReport'));

      const report = await vscode.commands.executeCommand<BenchReport>('nanochat.runBenchmark', { quick: true });
      assert.ok(benchReportSchema.safeParse(report).success);
      assert.equal(report.model.path, model);
      assert.ok(report.extension && report.extension.activationMs > 0 && report.extension.activationMs < 10_000, 'extension activation time');
      assert.ok(report.generationTokensPerSecond.median > 0 && report.firstTokenMs.short.median > 0 && report.load.totalMs > 0);
      const history = readHistory(api.bench.historyFile);
      assert.deepEqual(history.map((r) => r.createdAt), [history[0]!.createdAt, report.createdAt], 'both runs are kept in extension storage');
      assert.equal(api.bench.webviewPanel?.viewType, 'nanochat.benchReport');
      assert.ok(api.bench.webviewPanel?.visible);

      const exported = vscode.Uri.file(path.join(os.tmpdir(), `nanochat-bench-${process.pid}.md`));
      assert.equal((await api.bench.exportMarkdown(exported))?.fsPath, exported.fsPath);
      const markdown = fs.readFileSync(exported.fsPath, 'utf8');
      fs.rmSync(exported.fsPath);
      assert.match(markdown, /\| Section \| Measurement \| Value \| Previous \| Change \|/, 'compared with the /bench run');
      assert.match(markdown, /\| Cold start \| Extension activation \| [\d.]+ ms \|/);
      await api.bench.receive({ type: 'exportMarkdown', path: '/etc/passwd' }); // malformed: dropped, no dialog
      await api.bench.receive({ type: 'nonsense' });

      const source = new vscode.CancellationTokenSource();
      await assert.rejects(api.bench.run({ quick: true }, source.token, (step) => { if (step === 'Loading') source.cancel(); }), /cancelled/);
      assert.equal(readHistory(api.bench.historyFile).length, 2, 'a cancelled run records nothing');
      assert.equal(api.bench.isRunning, false);
      api.bench.webviewPanel?.dispose();
    });

    it('explains the selected code with /explain', async () => {
      const folder = vscode.workspace.workspaceFolders![0].uri;
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.joinPath(folder, 'sample.py'));
      const editor = await vscode.window.showTextDocument(doc);
      await select(editor, new vscode.Selection(0, 0, 2, 16));
      const rec = recordingStream();
      const r = await api.participant.handler(request('', 'explain'), { history: [] } as vscode.ChatContext, rec.stream, token());
      const stats = (r as vscode.ChatResult).metadata?.stats;
      assert.ok(stats && stats.promptTokens > 30, 'the selection went into the prompt');
      // A #file reference goes into the prompt as well, even with no selection.
      await select(editor, new vscode.Selection(0, 0, 0, 0));
      const withFile = recordingStream();
      const fileRef = { id: 'vscode.file', value: doc.uri } as unknown as vscode.ChatPromptReference;
      const r2 = await api.participant.handler(request('What does this do?', undefined, [fileRef]), { history: [] } as vscode.ChatContext, withFile.stream, token());
      const plain = await api.participant.handler(request('What does this do?'), { history: [] } as vscode.ChatContext, recordingStream().stream, token());
      assert.ok((r2 as vscode.ChatResult).metadata?.stats.promptTokens > (plain as vscode.ChatResult).metadata?.stats.promptTokens + 20, `the referenced file went into the prompt: ${withFile.text().slice(0, 300)}`);
      await select(editor, new vscode.Selection(0, 0, 2, 16));
      const counted = await vscode.commands.executeCommand<{ tokens: number; scope: string }>('nanochat.countTokens');
      assert.equal(counted.scope, "selection", JSON.stringify(counted));
      assert.ok(counted.tokens > 0, JSON.stringify(counted));
      let shown: string | undefined;
      for (let i = 0; i < 40 && shown !== `$(symbol-number) ${counted.tokens} tokens`; i++) { await new Promise((r) => setTimeout(r, 100)); shown = api.selectionTokens.text; }
      assert.equal(shown, `$(symbol-number) ${counted.tokens} tokens`, 'the status bar counts the selection');
      assert.equal(counted.tokens, api.services.models.model!.model.tokenize(doc.getText(editor.selection), false).length);
    });

    it('switches model, unloads, and gives a friendly answer for a missing or corrupt model', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-ext-bad-'));
      try {
        const bad = writeBadFiles(dir, model);
        const truncated = bad.find((b) => b.name === 'truncated-at-20000.gguf')!.file;
        assert.equal(await vscode.commands.executeCommand('nanochat.useLocalModel', truncated), undefined, 'a corrupt file is refused');
        assert.equal(api.services.settings.current.model, model, 'the refused file was not selected');

        await vscode.workspace.getConfiguration('nanochat').update('model', truncated, vscode.ConfigurationTarget.Global);
        await api.services.models.unload('user');
        for (const prompt of ['Hello', 'Hello again']) {
          const rec = recordingStream();
          await api.participant.handler(request(prompt), { history: [] } as vscode.ChatContext, rec.stream, token());
          assert.match(rec.text(), /could not answer.*truncated/);
          assert.doesNotMatch(rec.text(), /\n\s+at /, 'no stack trace');
          assert.deepEqual(rec.buttons.map((b) => b.command), ['nanochat.downloadModel', 'nanochat.useLocalModel', 'nanochat.showLogs']);
        }
        assert.match(api.statusBar.text, /error/);

        await vscode.workspace.getConfiguration('nanochat').update('model', path.join(dir, 'nope.gguf'), vscode.ConfigurationTarget.Global);
        const missing = recordingStream();
        await api.participant.handler(request('Hello'), { history: [] } as vscode.ChatContext, missing.stream, token());
        assert.match(missing.text(), /No model file at/);

        await vscode.workspace.getConfiguration('nanochat').update('model', '', vscode.ConfigurationTarget.Global);
        const none = recordingStream();
        await api.participant.handler(request('Hello'), { history: [] } as vscode.ChatContext, none.stream, token());
        assert.match(none.text(), /No model yet/);

        const chatml = path.join(path.dirname(model), 'stories260K-chatml.gguf');
        assert.equal(await vscode.commands.executeCommand('nanochat.useLocalModel', chatml), chatml);
        const rec = recordingStream();
        await api.participant.handler(request('Once upon a time'), { history: [] } as vscode.ChatContext, rec.stream, token());
        assert.match(rec.text(), /stories260K-chatml/);
        assert.equal(await vscode.commands.executeCommand('nanochat.unloadModel'), 'unloaded');
        assert.match(api.statusBar.text, /unloaded/);
        const listed = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
        assert.ok(listed.some((m) => m.name === 'stories260K-chatml'), `models: ${listed.map((m) => m.name).join(', ')}`);
      } finally {
        await vscode.workspace.getConfiguration('nanochat').update('model', model, vscode.ConfigurationTarget.Global);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('downloads a model from a Hugging Face-like server, selects it, and deletes it', async () => {
      const server = await new ModelServer({ 'stories260K.gguf': fs.readFileSync(model) }).start();
      const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-ext-models-'));
      const config = vscode.workspace.getConfiguration('nanochat');
      process.env.HF_ENDPOINT = server.origin;
      await config.update('modelsFolder', folder, vscode.ConfigurationTarget.Global);
      const seenBefore = api.statusBar.history.length;
      try {
        const file = await vscode.commands.executeCommand<string>('nanochat.downloadModel', 'hf:owner/repo/stories260K.gguf');
        assert.equal(file, path.join(folder, 'stories260K.gguf'));
        assert.ok(fs.readFileSync(file).equals(fs.readFileSync(model)));
        assert.deepEqual(fs.readdirSync(folder).filter((f) => !f.startsWith('.')), ['stories260K.gguf']);
        assert.equal(api.services.settings.current.model, file, 'the downloaded model is selected');
        assert.ok(api.services.library.find(file), 'and listed');
        const shown = api.statusBar.history.slice(seenBefore);
        assert.ok(shown.some((t) => /Nanochat: (fetching|downloading|verifying)/.test(t)), `status bar: ${shown.join(' | ')}`);
        const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
        assert.ok(chat);

        assert.equal(await vscode.commands.executeCommand('nanochat.downloadModel', 'hf:owner/repo/missing.gguf'), undefined);
        assert.deepEqual(fs.readdirSync(folder).filter((f) => !f.startsWith('.')), ['stories260K.gguf'], 'a failed download installs nothing');
        assert.doesNotMatch(api.statusBar.text, /downloading|fetching/);

        assert.equal(await vscode.commands.executeCommand('nanochat.deleteModel', file, { confirmed: true }), true);
        assert.ok(!fs.existsSync(file), 'the downloaded file is deleted');
        assert.equal(api.services.library.find(file), undefined);
        assert.equal(api.services.settings.current.model, '');
      } finally {
        delete process.env.HF_ENDPOINT;
        await config.update('modelsFolder', undefined, vscode.ConfigurationTarget.Global);
        await config.update('model', model, vscode.ConfigurationTarget.Global);
        await server.close();
        fs.rmSync(folder, { recursive: true, force: true });
      }
    });

    it("downloads through the proxy in VS Code's http.proxy setting", async function () {
      // The model server is named by a host that only the proxy can resolve: the download succeeds
      // only if VS Code's fetch sends it through the proxy.
      const server = await new ModelServer({ 'stories260K.gguf': fs.readFileSync(model) }).start();
      const port = new URL(server.origin).port;
      const hostName = 'models.nanochat.test';
      const proxy = await startLoopbackProxy();
      const seen = proxy.seen;
      const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-proxy-models-'));
      const nanochat = vscode.workspace.getConfiguration('nanochat');
      const httpConfig = vscode.workspace.getConfiguration('http');
      process.env.HF_ENDPOINT = `http://${hostName}:${port}`;
      await nanochat.update('modelsFolder', folder, vscode.ConfigurationTarget.Global);
      await httpConfig.update('proxy', proxy.url, vscode.ConfigurationTarget.Global);
      try {
        const file = await vscode.commands.executeCommand<string>('nanochat.downloadModel', 'hf:owner/repo/stories260K.gguf');
        assert.equal(file, path.join(folder, 'stories260K.gguf'), `proxy saw: ${seen.join(', ') || 'nothing'}`);
        assert.ok(fs.readFileSync(file).equals(fs.readFileSync(model)));
        assert.ok(seen.some((r) => r.includes(`${hostName}:${port}`)), `proxy saw: ${seen.join(', ')}`);
      } finally {
        delete process.env.HF_ENDPOINT;
        await httpConfig.update('proxy', undefined, vscode.ConfigurationTarget.Global);
        await nanochat.update('modelsFolder', undefined, vscode.ConfigurationTarget.Global);
        await nanochat.update('model', model, vscode.ConfigurationTarget.Global);
        proxy.close();
        await server.close();
        fs.rmSync(folder, { recursive: true, force: true });
      }
    });

    it('chat panel: streams a reply, stops, persists conversations, runs code actions, drops malformed messages', async () => {
      await vscode.commands.executeCommand('nanochat.openChatPanel');
      const panel = api.panel;
      assert.ok(panel.webviewPanel, 'the panel is open');
      assert.equal(panel.webviewPanel!.viewType, 'nanochat.chatPanel');
      assert.match(panel.webviewPanel!.webview.html, /Content-Security-Policy" content="default-src 'none';.*script-src 'nonce-[^']+'/);
      const posted: ToWebview[] = [];
      const sub = panel.onDidPost((m) => posted.push(m));
      const config = vscode.workspace.getConfiguration('nanochat');
      try {
        await panel.receive({ type: 'ready' });
        const state = posted.find((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state')!;
        assert.ok(posted.some((m) => m.type === 'model') && posted.some((m) => m.type === 'settings'));
        const id = state.activeId;

        await panel.receive({ type: 'send', conversationId: id, text: 'Once upon a time' });
        const deltas = posted.filter((m): m is Extract<ToWebview, { type: 'delta' }> => m.type === 'delta');
        assert.ok(deltas.length >= 1 && deltas.map((d) => d.text).join('').length > 20);
        const done = posted.find((m): m is Extract<ToWebview, { type: 'done' }> => m.type === 'done')!;
        assert.ok(done.stats.completionTokens > 0 && done.contextUsed > done.stats.completionTokens);
        const store = new ConversationStore(api.services.context.globalState);
        const saved = store.get(id)!;
        assert.deepEqual(saved.messages.map((m) => m.role), ['user', 'assistant']);
        assert.equal(saved.messages[1].content, deltas.map((d) => d.text).join(''));
        assert.equal(saved.title, 'Once upon a time');

        // Stop mid-stream: at temperature 0 this model does not end its story within 1000 tokens.
        await config.update('maxTokens', 1000, vscode.ConfigurationTarget.Global);
        const firstDelta = new Promise<void>((resolve) => { const s2 = panel.onDidPost((m) => { if (m.type === 'delta') { s2.dispose(); resolve(); } }); });
        const sending = panel.receive({ type: 'send', conversationId: id, text: 'Tell me more' });
        await firstDelta;
        await panel.receive({ type: 'stop', conversationId: id });
        await sending;
        const stopped = store.get(id)!.messages.at(-1)!;
        assert.equal(stopped.stats?.stopReason, 'cancelled');
        assert.ok(stopped.stats!.completionTokens < 1000 && stopped.content.length > 0);

        // Regenerate and edit replace the tail of the conversation.
        await config.update('maxTokens', 8, vscode.ConfigurationTarget.Global);
        await panel.receive({ type: 'regenerate', conversationId: id });
        assert.equal(store.get(id)!.messages.length, 4);
        await panel.receive({ type: 'edit', conversationId: id, index: 0, text: 'The little dog' });
        assert.deepEqual(store.get(id)!.messages.map((m) => m.content.slice(0, 14)).slice(0, 1), ['The little dog']);
        assert.equal(store.get(id)!.messages.length, 2);

        // Malformed messages are dropped without effect.
        const before = posted.length;
        for (const bad of [{ type: 'send' }, { type: 'send', conversationId: id, text: '' }, 'x', null, { type: 'setSetting', key: 'model', value: '/etc/passwd' }]) await panel.receive(bad);
        assert.equal(posted.length, before);
        assert.equal(store.get(id)!.messages.length, 2);

        // Code actions.
        await panel.receive({ type: 'code', action: 'open', code: 'print("hi")', language: 'python' });
        assert.equal(vscode.window.activeTextEditor?.document.getText(), 'print("hi")');
        assert.equal(vscode.window.activeTextEditor?.document.languageId, 'python');
        await panel.receive({ type: 'code', action: 'insert', code: '# inserted\n', language: 'python' });
        assert.match(vscode.window.activeTextEditor!.document.getText(), /# inserted/);
        await panel.receive({ type: 'code', action: 'copy', code: 'copied text', language: '' });
        assert.equal(await vscode.env.clipboard.readText(), 'copied text');

        // Conversations survive the panel closing (and the window reloading: they live in globalState).
        await panel.receive({ type: 'newConversation' });
        await panel.receive({ type: 'renameConversation', conversationId: id, title: 'Dog story' });
        panel.webviewPanel!.dispose();
        assert.equal(panel.webviewPanel, undefined);
        await vscode.commands.executeCommand('nanochat.openChatPanel');
        posted.length = 0;
        await panel.receive({ type: 'switchConversation', conversationId: id });
        const reopened = posted.find((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state')!;
        assert.equal(reopened.activeId, id);
        assert.ok(reopened.conversations.some((c) => c.id === id && c.title === 'Dog story'));
        assert.equal(reopened.messages.length, 2);
        await panel.receive({ type: 'setSetting', key: 'temperature', value: 0.3 });
        assert.equal(api.services.settings.current.temperature, 0.3);
        await panel.receive({ type: 'deleteConversation', conversationId: id });
        assert.equal(store.get(id), undefined);
      } finally {
        sub.dispose();
        await config.update('maxTokens', 48, vscode.ConfigurationTarget.Global);
        await config.update('temperature', 0, vscode.ConfigurationTarget.Global);
        panel.webviewPanel?.dispose();
      }
    });

    it('contributes a walkthrough whose buttons run registered commands and whose pages exist', async () => {
      const ext = vscode.extensions.getExtension('nanochat.nanochat')!;
      const [walkthrough] = ext.packageJSON.contributes.walkthroughs as Array<{ id: string; steps: Array<{ id: string; description: string; media: { markdown: string } }> }>;
      assert.deepEqual(walkthrough!.steps.map((s) => s.id), ['about', 'model', 'chat', 'tokens', 'bench']);
      const registered = new Set(await vscode.commands.getCommands(true));
      for (const step of walkthrough!.steps) {
        assert.ok(fs.existsSync(path.join(ext.extensionPath, step.media.markdown)), step.media.markdown);
        for (const [, id, args] of step.description.matchAll(/\(command:([\w.]+)(?:\?([^)]*))?\)/g)) {
          assert.ok(registered.has(id!), `${step.id}: ${id} is a registered command`);
          if (args) assert.ok(Array.isArray(JSON.parse(decodeURIComponent(args))), `${step.id}: ${id} arguments`);
        }
      }
      const catalog = JSON.parse(fs.readFileSync(path.join(ext.extensionPath, 'models', 'catalog.json'), 'utf8'));
      assert.ok(walkthrough!.steps[1]!.description.includes(encodeURIComponent(JSON.stringify([catalog.defaultModel]))), 'the download button fetches the catalog default');
    });

    it('falls back to the default for an invalid setting', async () => {
      await vscode.workspace.getConfiguration('nanochat').update('temperature', 'hot', vscode.ConfigurationTarget.Global);
      try {
        assert.equal(api.services.settings.current.temperature, 0.7);
      } finally {
        await vscode.workspace.getConfiguration('nanochat').update('temperature', 0, vscode.ConfigurationTarget.Global);
      }
      assert.equal(api.services.settings.current.temperature, 0);
    });
  });
}
