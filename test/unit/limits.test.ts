import assert from 'node:assert/strict';
import { EmbeddedBackend } from '../../src/core/chat/backend';
import { ChatEngine, type ChatMessage } from '../../src/core/chat/engine';
import { ModelManager } from '../../src/core/engine/models';
import { PromptTooLongError } from '../../src/core/errors';
import { ModelLibrary, type KeyValueStore } from '../../src/core/modelFiles/library';
import { TokenCounter } from '../../src/core/tokens/tokenCounter';
import type { Settings } from '../../src/core/settings';
import { likeModel } from '../support/likeModels';
import { testSettings } from '../support/settings';

describe('exact limits for the model provider (a template-true Qwen2.5)', function () {
  this.timeout(300_000);
  let settings: Settings;
  let manager: ModelManager;
  let chat: ChatEngine;
  let tokens: TokenCounter;
  let backend: EmbeddedBackend;

  before(async () => {
    settings = testSettings({ model: await likeModel('qwen2.5-0.5b-instruct'), contextSize: 512, maxTokens: 64 });
    const data = new Map<string, unknown>();
    const store: KeyValueStore = { get: <T>(k: string) => data.get(k) as T | undefined, update: async (k, v) => { data.set(k, v); } };
    manager = new ModelManager({ settings: () => settings, sequences: 1 });
    chat = new ChatEngine(manager, () => settings);
    tokens = new TokenCounter();
    backend = new EmbeddedBackend({ models: manager, chat, tokens, library: new ModelLibrary(store), settings: () => settings });
  });
  after(async () => { backend?.dispose(); chat?.dispose(); await tokens?.dispose(); await manager?.dispose(); });

  /** What VS Code does with maxInputTokens: count each message (text + framing) and fill up to the limit. */
  async function fill(extra: number): Promise<ChatMessage[]> {
    const model = backend.selectedModel()!;
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Summarise this file for me.' },
      { role: 'assistant', content: 'It defines a parser and two helpers.' },
      { role: 'user', content: 'Which helper is slower?' },
    ];
    const counted = async () => (await Promise.all(messages.map(async (m) => (await backend.countTokens(m.content)).tokens + model.messageOverhead))).reduce((a, b) => a + b, 0);
    const room = model.maxInputTokens - await counted() + extra;
    messages[0] = { role: 'user', content: `Summarise this file for me.${' a'.repeat(room)}` };
    assert.equal(await counted(), model.maxInputTokens + extra, 'one token per " a"');
    return messages;
  }

  it('advertises what the messages may hold once the system prompt, the framing and the reply are taken out', async () => {
    const estimated = backend.selectedModel()!;
    assert.ok(estimated.maxInputTokens < 512 - 64, 'before loading: an estimate below the window');
    await manager.load();
    const exact = backend.selectedModel()!;
    assert.equal(exact.maxOutputTokens, 64);
    assert.equal(exact.messageOverhead, 5, '<|im_start|>role\\n … <|im_end|>\\n');
    const systemTokens = (await backend.countTokens(settings.systemPrompt)).tokens;
    assert.ok(exact.maxInputTokens < 512 - 64 - systemTokens, `${exact.maxInputTokens}: the system prompt is taken out`);
  });

  it('a request filled exactly to maxInputTokens fits, whole, to the last token of the window\'s prompt share', async () => {
    const reply = backend.reply({ messages: await fill(0) }, { keepHistory: true, maxTokens: 1 });
    for await (const _ of reply) { /* one token */ }
    const stats = await reply.stats;
    assert.notEqual(stats.stopReason, 'error', stats.error);
    assert.equal(stats.droppedMessages, 0);
    assert.equal(stats.promptTokens, 512 - 64, 'the limit is exact, not a safety margin');
  });

  it('one token more is refused with a clear message, never answered from a truncated history', async () => {
    const reply = backend.reply({ messages: await fill(1) }, { keepHistory: true });
    await assert.rejects(reply.stats, (err: unknown) => err instanceof PromptTooLongError && /The request needs 449 tokens .* only 448 fit .* raise nanochat\.contextSize/.test((err as Error).message));
  });

  it('the same history through @nanochat or the panel drops the oldest turns instead, and says so', async () => {
    const reply = backend.reply({ messages: await fill(40) });
    for await (const _ of reply) { /* text */ }
    const stats = await reply.stats;
    assert.notEqual(stats.stopReason, 'error', stats.error);
    assert.ok(stats.droppedMessages > 0);
  });
});
