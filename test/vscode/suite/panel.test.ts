import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import * as vscode from 'vscode';
import { ConversationStore, LEGACY_KEY } from '../../../src/core/chat/conversations';
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
        const store = api.panel.store;
        const saved = (await store.get(id))!;
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
        const stopped = (await store.get(id))!.messages.at(-1)!;
        assert.equal(stopped.stats?.stopReason, 'cancelled');
        assert.ok(stopped.stats!.completionTokens < 1000 && stopped.content.length > 0);

        // Regenerate and edit replace the tail of the conversation.
        await config.update('maxTokens', 8, vscode.ConfigurationTarget.Global);
        await panel.receive({ type: 'regenerate', conversationId: id });
        assert.equal((await store.get(id))!.messages.length, 4);
        await panel.receive({ type: 'edit', conversationId: id, index: 0, text: 'The little dog' });
        assert.deepEqual((await store.get(id))!.messages.map((m) => m.content.slice(0, 14)).slice(0, 1), ['The little dog']);
        assert.equal((await store.get(id))!.messages.length, 2);

        // Malformed messages are dropped without effect.
        const before = posted.length;
        for (const bad of [{ type: 'send' }, { type: 'send', conversationId: id, text: '' }, 'x', null, { type: 'setSetting', key: 'model', value: '/etc/passwd' }]) await panel.receive(bad);
        assert.equal(posted.length, before);
        assert.equal((await store.get(id))!.messages.length, 2);

        // Code actions.
        await panel.receive({ type: 'code', action: 'open', code: 'print("hi")', language: 'python' });
        assert.equal(vscode.window.activeTextEditor?.document.getText(), 'print("hi")');
        assert.equal(vscode.window.activeTextEditor?.document.languageId, 'python');
        await panel.receive({ type: 'code', action: 'insert', code: '# inserted\n', language: 'python' });
        assert.match(vscode.window.activeTextEditor!.document.getText(), /# inserted/);
        await panel.receive({ type: 'code', action: 'copy', code: 'copied text', language: '' });
        assert.equal(await vscode.env.clipboard.readText(), 'copied text');

        // Conversations survive the panel closing (and the window reloading: they live in files in global storage).
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
        assert.equal(await store.get(id), undefined);
      } finally {
        sub.dispose();
        await config.update('maxTokens', 48, vscode.ConfigurationTarget.Global);
        await config.update('temperature', 0, vscode.ConfigurationTarget.Global);
        panel.webviewPanel?.dispose();
      }
    });

    it('chat panel: a second Send while the first is being saved (a double Enter) starts no second reply', async () => {
      const panel = api.panel;
      await vscode.commands.executeCommand('nanochat.openChatPanel');
      const posted: ToWebview[] = [];
      const sub = panel.onDidPost((m) => posted.push(m));
      try {
        await panel.receive({ type: 'newConversation' });
        const id = posted.filter((m): m is Extract<ToWebview, { type: 'state' }> => m.type === 'state').at(-1)!.activeId;
        await Promise.all([panel.receive({ type: 'send', conversationId: id, text: 'Once upon a time' }), panel.receive({ type: 'send', conversationId: id, text: 'Once upon a time' })]);
        assert.deepEqual((await panel.store.get(id))!.messages.map((m) => m.role), ['user', 'assistant']);
        assert.equal(posted.filter((m) => m.type === 'done').length, 1);
        await panel.receive({ type: 'deleteConversation', conversationId: id });
      } finally {
        sub.dispose();
        panel.webviewPanel?.dispose();
      }
    });

    it('keeps the panel\'s conversations in files: 200 of them (11 MB) move out of globalState once, and a save writes only its own', async function () {
      this.timeout(120_000);
      const globalState = api.services.context.globalState;
      const words = 'word '.repeat(560);
      const conversations = Array.from({ length: 200 }, (_, c) => ({
        id: `00000000-0000-4000-8000-${String(c).padStart(12, '0')}`, title: `Old ${c}`, createdAt: c, updatedAt: 1000 - c,
        messages: Array.from({ length: 20 }, (_, m) => ({ role: m % 2 ? 'assistant' : 'user', content: `${c}.${m} ${words}`, createdAt: m })),
      }));
      // What every save cost before: the whole history through VS Code's globalState, on this thread.
      const oldSave = await longestGap(() => Promise.resolve(globalState.update(LEGACY_KEY, conversations)));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-host-conversations-'));
      try {
        const store = new ConversationStore(dir, globalState);
        assert.equal((await store.list()).length, 200);
        assert.equal(globalState.get(LEGACY_KEY), undefined, 'moved out of globalState');
        const target = conversations[100]!.id;
        const mtimes = () => new Map(fs.readdirSync(dir).map((n) => [n, fs.statSync(path.join(dir, n)).mtimeMs]));
        const before = mtimes();
        await new Promise((r) => setTimeout(r, 20));
        const newSave = await longestGap(async () => { await store.setMessages(target, [...(await store.get(target))!.messages, { role: 'user', content: words, createdAt: 1 }]); });
        const after = mtimes();
        assert.deepEqual([...after].filter(([n, t]) => before.get(n) !== t).map(([n]) => n).sort(), [`${target}.json`, 'index.json'].sort());
        console.log(`      a save among 200 conversations (11 MB): longest event-loop gap ${oldSave.toFixed(0)} ms through globalState, ${newSave.toFixed(0)} ms to its own file`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        await globalState.update(LEGACY_KEY, undefined);
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

/** The longest gap of a 1 ms timer while `work` runs: how long the extension host's event loop was held. */
async function longestGap(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => { const now = performance.now(); longest = Math.max(longest, now - last); last = now; }, 1);
  try {
    await new Promise((r) => setTimeout(r, 10));
    longest = 0;
    last = performance.now();
    await work();
    await new Promise((r) => setTimeout(r, 50));
    return longest;
  } finally {
    clearInterval(timer);
  }
}
