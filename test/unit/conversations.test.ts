import assert from 'node:assert/strict';
import { ConversationStore } from '../../src/core/chat/conversations';
import type { KeyValueStore } from '../../src/core/modelFiles/library';
import { fromWebviewSchema, toWebviewSchema } from '../../src/protocol/panel';

/** A Memento-like store that round-trips through JSON, as VS Code's globalState does. */
function memoryStore(): KeyValueStore & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get: <T>(key: string) => (data.has(key) ? JSON.parse(data.get(key)!) as T : undefined),
    update: async (key: string, value: unknown) => { data.set(key, JSON.stringify(value)); },
  };
}

describe('ConversationStore', () => {
  it('keeps every reply when several conversations are written at once, even if the store applies writes later', async () => {
    // A store whose writes land after a turn of the event loop, as a remote Memento's may.
    const data = new Map<string, string>();
    const slow: KeyValueStore = {
      get: <T>(key: string) => (data.has(key) ? JSON.parse(data.get(key)!) as T : undefined),
      update: (key: string, value: unknown) => new Promise<void>((resolve) => setTimeout(() => { data.set(key, JSON.stringify(value)); resolve(); }, 1)),
    };
    const store = new ConversationStore(slow);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await store.create()).id);
    await Promise.all(ids.map((id, i) => store.setMessages(id, [{ role: 'user', content: `question ${i}`, createdAt: i }, { role: 'assistant', content: `answer ${i}`, createdAt: i }])));
    for (const [i, id] of ids.entries()) assert.deepEqual(store.get(id)!.messages.map((m) => m.content), [`question ${i}`, `answer ${i}`]);
  });

  it('creates, titles, renames, switches and deletes conversations that persist', async () => {
    const backing = memoryStore();
    const store = new ConversationStore(backing);
    const first = await store.active();
    assert.equal(first.title, 'New chat');
    await store.setMessages(first.id, [{ role: 'user', content: 'How do I reverse a list in Python?\nThanks', createdAt: 1 }]);
    assert.equal(store.get(first.id)!.title, 'How do I reverse a list in Python?');
    const second = await store.create();
    assert.equal((await store.active()).id, second.id);
    await store.rename(second.id, '  Notes  ');
    await store.setActive(first.id);

    const reopened = new ConversationStore(backing); // a window reload
    assert.equal((await reopened.active()).id, first.id);
    assert.deepEqual(reopened.list().map((c) => c.title), ['Notes', 'How do I reverse a list in Python?']);
    assert.equal(reopened.get(first.id)!.messages[0].content, 'How do I reverse a list in Python?\nThanks');
    await reopened.delete(first.id);
    assert.deepEqual(reopened.list().map((c) => c.id), [second.id]);
    assert.equal((await reopened.active()).id, second.id, 'falls back to a remaining conversation');
  });

  it('keeps a long title short and an empty rename harmless', async () => {
    const store = new ConversationStore(memoryStore());
    const c = await store.create();
    await store.setMessages(c.id, [{ role: 'user', content: 'x'.repeat(100), createdAt: 1 }]);
    assert.equal(store.get(c.id)!.title.length, 48);
    await store.rename(c.id, '   ');
    assert.equal(store.get(c.id)!.title, 'New chat');
  });
});

describe('panel protocol', () => {
  it('accepts well-formed messages and rejects malformed ones', () => {
    assert.ok(fromWebviewSchema.safeParse({ type: 'send', conversationId: 'c1', text: 'hi' }).success);
    for (const bad of [{ type: 'send', conversationId: 'c1', text: '' }, { type: 'send' }, { type: 'setSetting', key: 'model', value: '/etc/passwd' },
      { type: 'code', action: 'run', code: 'rm -rf /', language: 'sh' }, { type: 'edit', conversationId: 'c1', index: -1, text: 'x' }, null, 'ready', { type: 'unknown' }]) {
      assert.equal(fromWebviewSchema.safeParse(bad).success, false, JSON.stringify(bad));
    }
    assert.ok(toWebviewSchema.safeParse({ type: 'delta', conversationId: 'c1', text: 'x' }).success);
    assert.equal(toWebviewSchema.safeParse({ type: 'model', model: { kind: 'hacked' } }).success, false);
  });
});
