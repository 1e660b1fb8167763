import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConversationStore, LEGACY_KEY } from '../../src/core/chat/conversations';
import type { Logger } from '../../src/core/log';
import type { KeyValueStore } from '../../src/core/modelFiles/library';
import { fromWebviewSchema, toWebviewSchema, type PanelMessage } from '../../src/protocol/panel';

/** A Memento-like store that round-trips through JSON, as VS Code's globalState does. */
function memoryStore(): KeyValueStore & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get: <T>(key: string) => (data.has(key) ? JSON.parse(data.get(key)!) as T : undefined),
    update: async (key: string, value: unknown) => { if (value === undefined) data.delete(key); else data.set(key, JSON.stringify(value)); },
  };
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (m: string | Error) => { lines.push(String(m)); };
  return { lines, trace: add, debug: add, info: add, warn: add, error: add };
}

const folders: string[] = [];
function folder(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-conversations-'));
  folders.push(dir);
  return path.join(dir, 'conversations');
}
after(() => { for (const dir of folders) fs.rmSync(dir, { recursive: true, force: true }); });

const turn = (i: number, words = 8): PanelMessage[] => [
  { role: 'user', content: `question ${i} ${'word '.repeat(words)}`, createdAt: i },
  { role: 'assistant', content: `answer ${i} ${'word '.repeat(words)}`, createdAt: i, stats: { model: 'm', promptTokens: 10, completionTokens: 20, tokensPerSecond: 50, totalMs: 400, stopReason: 'done' } },
];

describe('ConversationStore', () => {
  it('keeps every reply when several conversations are written at once', async () => {
    const store = new ConversationStore(folder());
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await store.create()).id);
    await Promise.all(ids.map((id, i) => store.setMessages(id, turn(i))));
    const reopened = new ConversationStore(store['dir']);
    for (const [i, id] of ids.entries()) assert.deepEqual((await reopened.get(id))!.messages.map((m) => m.content), turn(i).map((m) => m.content));
  });

  it('creates, titles, renames, switches and deletes conversations that persist, one file each', async () => {
    const dir = folder();
    const store = new ConversationStore(dir);
    const first = await store.active();
    assert.equal(first.title, 'New chat');
    await store.setMessages(first.id, [{ role: 'user', content: 'How do I reverse a list in Python?\nThanks', createdAt: 1 }]);
    assert.equal((await store.get(first.id))!.title, 'How do I reverse a list in Python?');
    const second = await store.create();
    assert.equal((await store.active()).id, second.id);
    await store.rename(second.id, '  Notes  ');
    await store.setActive(first.id);
    assert.deepEqual(fs.readdirSync(dir).sort(), [`${first.id}.json`, `${second.id}.json`, 'index.json'].sort());

    const reopened = new ConversationStore(dir); // a window reload
    assert.equal((await reopened.active()).id, first.id);
    assert.deepEqual((await reopened.list()).map((c) => c.title), ['Notes', 'How do I reverse a list in Python?']);
    assert.equal((await reopened.get(first.id))!.messages[0].content, 'How do I reverse a list in Python?\nThanks');
    await reopened.delete(first.id);
    assert.deepEqual((await reopened.list()).map((c) => c.id), [second.id]);
    assert.equal((await reopened.active()).id, second.id, 'falls back to a remaining conversation');
    assert.equal(fs.existsSync(path.join(dir, `${first.id}.json`)), false);
    assert.equal(await reopened.get('../index'), undefined);
  });

  it('lists a conversation whose file the index does not name (another window wrote the index after it)', async () => {
    const dir = folder();
    const one = new ConversationStore(dir);
    const other = new ConversationStore(dir); // a second window, its index read before the first one's write
    await other.list();
    const mine = await one.create();
    await one.setMessages(mine.id, turn(1));
    const theirs = await other.create(); // writes its index, without `mine`
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')).conversations.map((c: { id: string }) => c.id), [theirs.id]);
    const reloaded = new ConversationStore(dir);
    assert.deepEqual((await reloaded.list()).map((c) => c.id).sort(), [mine.id, theirs.id].sort());
    assert.deepEqual((await reloaded.get(mine.id))!.messages, turn(1));
  });

  it('applies changes made at once to the same conversation one after another, and one that changes nothing writes nothing', async () => {
    const dir = folder();
    const store = new ConversationStore(dir);
    const c = await store.create();
    await Promise.all(['a', 'b', 'c'].map((text, i) => store.updateMessages(c.id, (messages) => [...messages, { role: 'user', content: text, createdAt: i }])));
    assert.deepEqual((await new ConversationStore(dir).get(c.id))!.messages.map((m) => m.content).sort(), ['a', 'b', 'c']);
    const written = fs.statSync(path.join(dir, `${c.id}.json`)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(await store.updateMessages(c.id, () => undefined), undefined);
    assert.equal(fs.statSync(path.join(dir, `${c.id}.json`)).mtimeMs, written);
  });

  it('keeps a long title short and an empty rename harmless', async () => {
    const store = new ConversationStore(folder());
    const c = await store.create();
    await store.setMessages(c.id, [{ role: 'user', content: 'x'.repeat(100), createdAt: 1 }]);
    assert.equal((await store.get(c.id))!.title.length, 48);
    await store.rename(c.id, '   ');
    assert.equal((await store.get(c.id))!.title, 'New chat');
  });

  it('moves the conversations earlier versions kept in globalState into files, once, leaving what it cannot read', async () => {
    const legacy = memoryStore();
    const old = [0, 1, 2].map((i) => ({ id: randomUUID(), title: `Old ${i}`, createdAt: i, updatedAt: 10 - i, messages: turn(i) }));
    await legacy.update(LEGACY_KEY, [...old, { id: 'broken', messages: 'not a list' }]);
    await legacy.update('nanochat.activeConversation', old[1]!.id);
    const dir = folder();
    const store = new ConversationStore(dir, legacy);
    assert.deepEqual((await store.list()).map((c) => c.title), ['Old 0', 'Old 1', 'Old 2']);
    assert.equal((await store.active()).id, old[1]!.id, 'the active conversation stays active');
    assert.deepEqual((await store.get(old[2]!.id))!.messages, old[2]!.messages);
    assert.deepEqual(legacy.get(LEGACY_KEY), [{ id: 'broken', messages: 'not a list' }], 'only what could not be read is left');
    assert.equal(legacy.get('nanochat.activeConversation'), undefined);
    const again = new ConversationStore(dir, legacy);
    assert.equal((await again.list()).length, 3, 'nothing is moved twice');
  });

  it('sets an unreadable file aside (never deletes it), rebuilds an unreadable index, and refuses a crafted one', async () => {
    const dir = folder();
    const store = new ConversationStore(dir);
    const a = await store.create();
    const b = await store.create();
    await store.setMessages(a.id, turn(1));
    await store.setMessages(b.id, turn(2));
    fs.writeFileSync(path.join(dir, `${b.id}.json`), '{"id": "truncated', 'utf8');
    fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ version: 1, conversations: [{ id: '../../../etc/passwd', title: 'x', createdAt: 1, updatedAt: 1 }] }));
    const log = recordingLogger();
    const reopened = new ConversationStore(dir, undefined, log);
    assert.deepEqual((await reopened.list()).map((c) => c.id), [a.id], 'rebuilt from the readable files');
    assert.deepEqual((await reopened.get(a.id))!.messages, turn(1));
    const names = fs.readdirSync(dir);
    assert.ok(names.some((n) => n.startsWith('index.json.unreadable-')), names.join(', '));
    assert.ok(names.some((n) => n.startsWith(`${b.id}.json.unreadable-`)), names.join(', '));
    assert.match(log.lines.join('\n'), /index .* could not be read; it was set aside and rebuilt/);
    assert.match(log.lines.join('\n'), new RegExp(`${b.id}\\.json could not be read; it was set aside`));
  });

  it('says where and why when its folder cannot be made, and works once it can', async () => {
    const parent = path.dirname(folder());
    fs.writeFileSync(path.join(parent, 'blocker'), 'a file where the folder should be');
    const store = new ConversationStore(path.join(parent, 'blocker', 'conversations'));
    await assert.rejects(store.create(), /Could not keep the chat panel's conversations in .*blocker.*: ENOTDIR/);
    fs.rmSync(path.join(parent, 'blocker'));
    assert.equal((await store.active()).title, 'New chat');
  });

  it('keeps a change it could not write (a full disk) and saves it with the next one that can be', async () => {
    const dir = folder();
    const store = new ConversationStore(dir);
    const c = await store.create();
    await store.setMessages(c.id, turn(1));
    // The folder becomes a file: every write in it fails, as on a full or read-only disk.
    fs.renameSync(dir, `${dir}.away`);
    fs.writeFileSync(dir, 'not a folder');
    await assert.rejects(store.setMessages(c.id, [...turn(1), ...turn(2)]), /Could not save the chat panel's conversations in .*: ENOTDIR.*kept while VS Code runs/);
    assert.deepEqual((await store.get(c.id))!.messages, [...turn(1), ...turn(2)], 'the reply is still there');
    for (let i = 0; i < 10; i++) await store.create().catch(() => undefined); // more than the cache holds
    assert.deepEqual((await store.get(c.id))!.messages, [...turn(1), ...turn(2)], 'and stays while other conversations come and go');
    fs.rmSync(dir);
    fs.renameSync(`${dir}.away`, dir);
    await store.rename(c.id, 'Saved at last');
    const reopened = new ConversationStore(dir);
    assert.deepEqual((await reopened.get(c.id))!.messages, [...turn(1), ...turn(2)]);
    assert.equal((await reopened.get(c.id))!.title, 'Saved at last');
    assert.equal((await reopened.list()).length, 11, 'the conversations made while nothing could be written are saved too');
  });

  it('at 200 conversations of 20 messages (11 MB), a save writes its own conversation and the index, and the 201st drops the oldest', async function () {
    this.timeout(120_000);
    const dir = folder();
    const store = new ConversationStore(dir);
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const c = await store.create();
      await store.setMessages(c.id, Array.from({ length: 10 }, (_, t) => turn(t, 560)).flat());
      ids.push(c.id);
    }
    const total = fs.readdirSync(dir).reduce((sum, n) => sum + fs.statSync(path.join(dir, n)).size, 0);
    assert.ok(total > 10e6, `${total} bytes`);
    const before = new Map(fs.readdirSync(dir).map((n) => [n, fs.statSync(path.join(dir, n)).mtimeMs]));
    await new Promise((r) => setTimeout(r, 20));
    const target = ids[100]!;
    await store.setMessages(target, [...(await store.get(target))!.messages, ...turn(99, 560)]);
    const changed = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).mtimeMs !== before.get(n)).sort();
    assert.deepEqual(changed, [`${target}.json`, 'index.json'].sort());
    assert.ok(fs.statSync(path.join(dir, 'index.json')).size < 64 * 1024);
    assert.equal((await store.list())[0]!.id, target, 'the saved conversation is listed first');
    const newest = await store.create();
    const listed = (await store.list()).map((c) => c.id);
    assert.equal(listed.length, 200);
    assert.equal(listed[0], newest.id);
    assert.ok(!listed.includes(ids[0]!) && !fs.existsSync(path.join(dir, `${ids[0]}.json`)), 'the least recently updated conversation is dropped');
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
