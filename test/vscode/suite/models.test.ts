import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as vscode from 'vscode';
import { writeBadFiles } from '../../support/badFiles';
import { ModelServer } from '../../support/modelServer';
import { startLoopbackProxy } from '../../support/proxy';
import { host, nanochatLogTail, noHistory, recordingStream, request, token, type Api } from './helpers';

export function defineModelTests(): void {
  describe('model management in the real extension host', () => {
    let api: Api;
    const model = host.model;
    before(() => { api = host.api; });

    it('follows a hand edit of nanochat.model while a model is loaded', async () => {
      const lease = await api.services.models.acquire();
      lease.dispose();
      assert.equal(api.services.models.model?.info.path, model);
      const chatml = path.join(path.dirname(model), 'stories260K-chatml.gguf');
      const config = vscode.workspace.getConfiguration('nanochat');
      const ready = new Promise<string>((resolve) => {
        const sub = api.services.models.onDidChangeState((s) => { if (s.kind === 'ready') { sub.dispose(); resolve(s.info.path); } });
      });
      try {
        await config.update('model', chatml, vscode.ConfigurationTarget.Global);
        assert.equal(await ready, chatml, 'the edited setting is the model that loads');
        const rec = recordingStream();
        await api.participant.handler(request('Once upon a time'), noHistory, rec.stream, token());
        assert.match(rec.text(), /stories260K-chatml/);
      } finally {
        await config.update('model', model, vscode.ConfigurationTarget.Global);
      }
    });

    it('switches model, unloads, and gives a friendly answer for a missing or corrupt model', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-ext-bad-'));
      try {
        const bad = writeBadFiles(dir, model);
        const truncated = bad.find((b) => b.name === 'truncated-at-20000.gguf')!.file;
        assert.equal(await vscode.commands.executeCommand('nanochat.useLocalModel', truncated), undefined, 'a corrupt file is refused');
        assert.equal(api.services.settings.current.model, model, 'the refused file was not selected');

        // A hand edit of the setting is followed (no unload needed first).
        await vscode.workspace.getConfiguration('nanochat').update('model', truncated, vscode.ConfigurationTarget.Global);
        for (const prompt of ['Hello', 'Hello again']) {
          const rec = recordingStream();
          await api.participant.handler(request(prompt), noHistory, rec.stream, token());
          assert.match(rec.text(), /could not answer.*truncated/);
          assert.doesNotMatch(rec.text(), /\n\s+at /, 'no stack trace');
          assert.deepEqual(rec.buttons.map((b) => b.command), ['nanochat.downloadModel', 'nanochat.useLocalModel', 'nanochat.showLogs']);
        }
        // Once no load is under way (CI once saw one still starting here: the log is printed if it recurs).
        if (api.services.models.state.kind === 'loading') {
          console.log(`      a load still under way after the answer (status bar: ${api.statusBar.history.slice(-8).join(' | ')}); the log:\n${nanochatLogTail(30)}`);
          for (let i = 0; i < 100 && api.services.models.state.kind === 'loading'; i++) await new Promise((r) => setTimeout(r, 100));
        }
        assert.match(api.statusBar.text, /error/, `status bar: ${api.statusBar.history.slice(-8).join(' | ')}`);

        await vscode.workspace.getConfiguration('nanochat').update('model', path.join(dir, 'nope.gguf'), vscode.ConfigurationTarget.Global);
        const missing = recordingStream();
        await api.participant.handler(request('Hello'), noHistory, missing.stream, token());
        assert.match(missing.text(), /No model file at/);

        await vscode.workspace.getConfiguration('nanochat').update('model', '', vscode.ConfigurationTarget.Global);
        const none = recordingStream();
        await api.participant.handler(request('Hello'), noHistory, none.stream, token());
        assert.match(none.text(), /No model yet/);

        const chatml = path.join(path.dirname(model), 'stories260K-chatml.gguf');
        assert.equal(await vscode.commands.executeCommand('nanochat.useLocalModel', chatml), chatml);
        const rec = recordingStream();
        await api.participant.handler(request('Once upon a time'), noHistory, rec.stream, token());
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
      api.statusBar.history.length = 0; // keeps the newest 200 texts: start from empty to read this download's
      try {
        const file = await vscode.commands.executeCommand<string>('nanochat.downloadModel', 'hf:owner/repo/stories260K.gguf');
        assert.equal(file, path.join(folder, 'stories260K.gguf'));
        assert.ok(fs.readFileSync(file).equals(fs.readFileSync(model)));
        assert.deepEqual(fs.readdirSync(folder).filter((f) => !f.startsWith('.')), ['stories260K.gguf']);
        assert.equal(api.services.settings.current.model, file, 'the downloaded model is selected');
        assert.ok(api.services.library.find(file), 'and listed');
        const shown = [...api.statusBar.history];
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
