import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import { ConversationStore } from '../../../src/core/chat/conversations';
import type { ToWebview } from '../../../src/protocol/panel';
import { host, type Api } from './helpers';

export function definePanelTests(): void {
  describe('the chat panel and walkthrough in the real extension host', () => {
    let api: Api;
    before(() => { api = host.api; });

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
        assert.ok(deltas.length >= 1 && deltas.map((d) => d.text).join('').length > 20, JSON.stringify(posted.filter((m) => m.type !== 'state')).slice(0, 1500));
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
  });
}
