import assert from 'node:assert/strict';
import { ChatEngine } from '../../src/core/chat/engine';
import { importNodeLlamaCpp } from '../../src/core/engine/llama';
import { ModelManager, type LoadedModel } from '../../src/core/engine/models';
import type { Settings } from '../../src/core/settings';
import { likeModel } from '../support/likeModels';
import { testSettings } from '../support/settings';

describe('thinking models (a template-true Qwen3)', function () {
  this.timeout(300_000);
  let settings: Settings;
  let manager: ModelManager;
  let chat: ChatEngine;
  let loaded: LoadedModel;

  before(async () => {
    settings = testSettings({ model: await likeModel('qwen3-0.6b'), contextSize: 1024 });
    manager = new ModelManager({ settings: () => settings, sequences: 1 });
    chat = new ChatEngine(manager, () => settings);
    loaded = await manager.load();
  });
  after(async () => { chat?.dispose(); await manager?.dispose(); });
  afterEach(() => { settings = { ...settings, thinking: 'on', thinkingBudget: 0 }; });

  /** Steers the random weights through `script` one token per step, then allows only the end of the turn. */
  async function scripted(script: number[]) {
    const { TokenBias } = await importNodeLlamaCpp();
    const tokenizer = loaded.model.tokenizer;
    const [endOfTurn] = tokenizer('<|im_end|>', true);
    const vocabulary = (loaded.model.fileInfo.metadata as unknown as { tokenizer: { ggml: { tokens: unknown[] } } }).tokenizer.ggml.tokens.length;
    const barred = new TokenBias(tokenizer);
    for (let t = 0; t < vocabulary; t++) if (t !== endOfTurn) barred.set(t as never, 'never');
    let step = 0;
    return () => {
      if (step >= script.length) return barred;
      const bias = new TokenBias(tokenizer);
      bias.set(script[step++] as never, { logit: 1000 });
      return bias;
    };
  }

  it('streams thoughts apart from the answer and counts them apart', async () => {
    const t = (text: string) => loaded.model.tokenizer(text, true) as number[];
    const tokenBias = await scripted([...t('<think>'), ...t('\nThe user greets me.\n'), ...t('</think>'), ...t('\n\nHello there')]);
    const thoughts: string[] = [];
    const reply = chat.reply({ messages: [{ role: 'user', content: 'Hi' }] }, { systemPrompt: null, maxTokens: 40, tokenBias, onThought: (x) => thoughts.push(x) });
    let text = '';
    for await (const d of reply) text += d;
    const stats = await reply.stats;
    assert.equal(stats.stopReason, 'done', JSON.stringify(stats));
    assert.equal(text.trim(), 'Hello there');
    assert.ok(thoughts.join('').includes('The user greets me.'), JSON.stringify(thoughts));
    assert.ok(!text.includes('greets'), 'thoughts are not the answer');
    assert.ok((stats.thoughtTokens ?? 0) >= t('The user greets me.').length, JSON.stringify(stats));
    assert.ok(stats.completionTokens > stats.thoughtTokens!);
  });

  it('leaves earlier thoughts out of the history, as the template does', async () => {
    const reply = chat.reply({ messages: [
      { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there' }, { role: 'user', content: 'Bye' },
    ] }, { systemPrompt: null, maxTokens: 1 });
    for await (const _ of reply) { /* one token */ }
    await reply.stats;
    assert.ok(!chat.lastPrompt!.text.includes('<think>'), chat.lastPrompt!.text);
  });

  it('stops thinking at the nanochat.thinkingBudget and answers', async () => {
    settings = { ...settings, thinkingBudget: 4 };
    const t = (text: string) => loaded.model.tokenizer(text, true) as number[];
    const { TokenBias } = await importNodeLlamaCpp();
    const tokenizer = loaded.model.tokenizer;
    const [think] = t('<think>');
    const [word] = t(' hmm');
    let step = 0;
    // Think forever if allowed: <think>, then " hmm" at every step.
    const tokenBias = () => { const b = new TokenBias(tokenizer); b.set((step++ === 0 ? think : word) as never, { logit: 1000 }); return b; };
    const thoughts: string[] = [];
    const reply = chat.reply({ messages: [{ role: 'user', content: 'Think hard' }] }, { systemPrompt: null, maxTokens: 24, tokenBias, onThought: (x) => thoughts.push(x) });
    let text = '';
    for await (const d of reply) text += d;
    const stats = await reply.stats;
    assert.ok((stats.thoughtTokens ?? 0) <= 4 + 1, JSON.stringify(stats));
    assert.ok(stats.completionTokens > (stats.thoughtTokens ?? 0), `answered after thinking: ${JSON.stringify({ text, thoughts, stats })}`);
  });

  it('with nanochat.thinking off, the template skips thinking (Qwen3\'s enable_thinking=false)', async () => {
    settings = { ...settings, thinking: 'off' };
    const reply = chat.reply({ messages: [{ role: 'user', content: 'Hi' }] }, { systemPrompt: null, maxTokens: 4 });
    for await (const _ of reply) { /* random text */ }
    const stats = await reply.stats;
    assert.ok(chat.lastPrompt!.text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'), JSON.stringify(chat.lastPrompt!.text.slice(-60)));
    assert.equal(stats.thoughtTokens, undefined);
  });
});
