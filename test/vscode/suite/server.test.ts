import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { BenchReport } from '../../../src/core/bench/schema';
import type { ToWebview } from '../../../src/protocol/panel';
import { askThroughChatView, host, noHistory, recordingStream, request, statsOf, token, type Api } from './helpers';

/**
 * Every surface through the server backend, against the real llama-server that run-ext-tests.mjs
 * starts on loopback (NANOCHAT_TEST_SERVER_URL), serving the same fixture model.
 */
export function defineServerTests(): void {
  describe('the server backend (a real llama-server on loopback) in the real extension host', () => {
    let api: Api;
    const url = process.env.NANOCHAT_TEST_SERVER_URL!;
    const config = () => vscode.workspace.getConfiguration('nanochat');

    before(async () => {
      api = host.api;
      assert.ok(url, 'run-ext-tests.mjs started a llama-server');
      const connected = new Promise<void>((resolve) => { const sub = api.services.server.onDidChangeState((s) => { if (s.kind === 'connected') { sub.dispose(); resolve(); } }); });
      await config().update('server.url', url, vscode.ConfigurationTarget.Global);
      await config().update('backend', 'server', vscode.ConfigurationTarget.Global);
      await connected;
    });
    after(async () => {
      await config().update('backend', undefined, vscode.ConfigurationTarget.Global);
      await config().update('server.url', undefined, vscode.ConfigurationTarget.Global);
    });

    it('shows the server in the status bar and offers its model in the picker', async () => {
      assert.match(api.statusBar.text, /\$\(cloud\) stories260K-chatml/);
      const models = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      // llama-server's own template shows the system prompt and framing (/apply-template): they are taken out.
      const systemTokens = (await api.services.tokens.count(host.model, api.services.settings.current.systemPrompt, 'llama')).tokens;
      assert.ok(models.some((m) => m.name === 'stories260K-chatml' && m.maxInputTokens < 1024 - 48 - systemTokens && m.maxInputTokens > 512), models.map((m) => `${m.name} ${m.maxInputTokens}`).join(', '));
    });

    it('answers "@nanochat" sent through the real Chat view from the server', async () => {
      const h = await askThroughChatView('Once upon a time, a server story');
      assert.equal(h.error, undefined);
      assert.equal(h.stats?.model, 'stories260K-chatml');
      assert.ok(h.text.trim().length > 10 && h.stats!.completionTokens > 0, h.text);
    });

    it('answers @nanochat, the model picker and the panel from the server; counts with its tokenizer', async () => {
      const rec = recordingStream();
      const result = await api.participant.handler(request('Once upon a time'), noHistory, rec.stream, token());
      assert.ok(statsOf(result)?.completionTokens > 0, rec.text());
      assert.match(rec.text(), /stories260K-chatml/);

      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User('Once upon a time')], {}, token());
      let text = '';
      for await (const t of response.text) text += t;
      assert.ok(text.length > 10, text);
      assert.equal(await chat.countTokens('Once upon a time'), (await api.services.tokens.count(host.model, 'Once upon a time', 'llama')).tokens, 'the server counts as the embedded engine does');

      const posted: ToWebview[] = [];
      const sub = api.panel.onDidPost((m) => posted.push(m));
      try {
        await vscode.commands.executeCommand('nanochat.openChatPanel');
        await api.panel.receive({ type: 'ready' });
        const state = posted.find((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state')!;
        assert.ok(posted.some((m) => m.type === 'model' && m.model.kind === 'ready' && /server/.test(m.model.name ?? '')));
        await api.panel.receive({ type: 'newConversation' });
        const fresh = posted.filter((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state').at(-1)!;
        assert.notEqual(fresh.activeId, state.activeId);
        await api.panel.receive({ type: 'send', conversationId: fresh.activeId, text: 'Once upon a time' });
        const done = posted.find((m): m is Extract<ToWebview, { type: 'done' }> => m.type === 'done');
        assert.ok(done && done.stats.completionTokens > 0 && done.stats.model === 'stories260K-chatml', JSON.stringify(done));
      } finally {
        sub.dispose();
        api.panel.webviewPanel?.dispose();
      }
    });

    it('16 concurrent chats from the panel and the model picker: every reply intact, none mixed', async () => {
      const prompts = Array.from({ length: 8 }, (_, i) => `Once upon a time, story ${i}, there was a`);
      const [chat] = await vscode.lm.selectChatModels({ vendor: 'nanochat' });
      const ask = async (prompt: string) => {
        const response = await chat.sendRequest([vscode.LanguageModelChatMessage.User(prompt)], {}, token());
        let text = '';
        for await (const t of response.text) text += t;
        return text;
      };
      const alone = await ask(prompts[0]);
      const posted: ToWebview[] = [];
      const sub = api.panel.onDidPost((m) => posted.push(m));
      try {
        await vscode.commands.executeCommand('nanochat.openChatPanel');
        const ids: string[] = [];
        for (let i = 0; i < prompts.length; i++) {
          await api.panel.receive({ type: 'newConversation' });
          ids.push(posted.filter((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state').at(-1)!.activeId);
        }
        assert.equal(new Set(ids).size, prompts.length);
        const [picker] = await Promise.all([
          Promise.all(prompts.map(ask)),
          Promise.all(ids.map((id, i) => api.panel.receive({ type: 'send', conversationId: id, text: prompts[i] }))),
        ]);
        assert.equal(picker[0], alone, 'a reply does not depend on the requests beside it');
        for (const [i, id] of ids.entries()) {
          const streamed = posted.filter((m): m is Extract<ToWebview, { type: 'delta' }> => m.type === 'delta' && m.conversationId === id).map((m) => m.text).join('');
          const done = posted.find((m): m is Extract<ToWebview, { type: 'done' }> => m.type === 'done' && m.conversationId === id);
          assert.ok(done && done.stats.stopReason !== 'error' && streamed.length > 0, `conversation ${i}: ${JSON.stringify(done)}`);
          const saved = (await api.panel.store.get(id))!;
          assert.deepEqual(saved.messages.map((m) => m.role), ['user', 'assistant']);
          assert.equal(saved.messages[0].content, prompts[i]);
          assert.equal(saved.messages[1].content, streamed, `conversation ${i} holds exactly its own stream`);
        }
        for (const text of picker) assert.ok(text.length > 0);
        for (const id of ids) await api.panel.receive({ type: 'deleteConversation', conversationId: id });
      } finally {
        sub.dispose();
        api.panel.webviewPanel?.dispose();
      }
    });

    it('keeps the API key in secret storage under the server\'s origin, and benchmarks the server into the report', async function () {
      this.timeout(240_000);
      const origin = new URL(url).origin;
      assert.equal(await vscode.commands.executeCommand('nanochat.setServerApiKey', 'test-key-123'), true);
      assert.equal(await api.services.context.secrets.get(`nanochat.serverApiKey:${origin}`), 'test-key-123');
      assert.equal(config().get('server.url'), url, 'the key is not a setting');
      assert.ok(!JSON.stringify(config()).includes('test-key-123'));
      const report = await vscode.commands.executeCommand<BenchReport>('nanochat.runBenchmark', { quick: true });
      assert.equal(report.backend, 'server');
      assert.deepEqual(report.concurrency?.map((c) => c.requests), [1, 4, 16]);
      assert.ok(report.generationTokensPerSecond.median > 0);
      assert.equal(api.bench.webviewPanel?.viewType, 'nanochat.benchReport');
      api.bench.webviewPanel?.dispose();
      assert.equal(await vscode.commands.executeCommand('nanochat.setServerApiKey', ''), true);
      assert.equal(await api.services.context.secrets.get(`nanochat.serverApiKey:${origin}`), undefined);
    });

    it('keeps the user\'s message and says what is wrong when the server is down, and works again after', async () => {
      const posted: ToWebview[] = [];
      const sub = api.panel.onDidPost((m) => posted.push(m));
      const store = api.panel.store;
      let id = '';
      await config().update('server.url', 'http://127.0.0.1:9/v1', vscode.ConfigurationTarget.Global);
      try {
        const rec = recordingStream();
        await api.participant.handler(request('Hello'), noHistory, rec.stream, token());
        assert.match(rec.text(), /could not answer.*Cannot reach the server at http:\/\/127\.0\.0\.1:9\/v1/);
        assert.match(api.statusBar.text, /server unreachable/);
        await vscode.commands.executeCommand('nanochat.openChatPanel');
        await api.panel.receive({ type: 'newConversation' });
        id = posted.filter((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state').at(-1)!.activeId;
        await api.panel.receive({ type: 'send', conversationId: id, text: 'Once upon a time' });
        assert.ok(posted.some((m) => m.type === 'error' && /Cannot reach the server/.test(m.message)), 'the panel says why');
        assert.deepEqual((await store.get(id))!.messages.map((m) => m.content), ['Once upon a time'], 'the user\'s message stays');
      } finally {
        await config().update('server.url', url, vscode.ConfigurationTarget.Global);
      }
      try {
        const rec = recordingStream();
        const result = await api.participant.handler(request('Once upon a time'), noHistory, rec.stream, token());
        assert.ok(statsOf(result)?.completionTokens > 0, rec.text());
        await api.panel.receive({ type: 'regenerate', conversationId: id }); // the panel's Retry
        assert.deepEqual((await store.get(id))!.messages.map((m) => m.role), ['user', 'assistant']);
        await api.panel.receive({ type: 'deleteConversation', conversationId: id });
      } finally {
        sub.dispose();
        api.panel.webviewPanel?.dispose();
      }
    });
  });
}
