import assert from 'node:assert/strict';
import { ChatEngine, type ChatReply } from '../../src/core/chat/engine';
import { ModelManager } from '../../src/core/engine/models';
import { toChatModelFunctions, toGbnfSchema } from '../../src/core/chat/tools';
import { testModel } from '../support/models';
import { testSettings } from '../support/settings';
import { scriptedBias } from '../support/steer';

async function drain(reply: ChatReply) {
  let text = '';
  for await (const d of reply) text += d;
  return { text, stats: await reply.stats };
}

describe('tool calling', () => {
  it('reduces JSON Schemas to what the grammar builder accepts', () => {
    assert.deepEqual(toGbnfSchema({
      type: 'object', $schema: 'x', additionalProperties: false,
      properties: { path: { type: 'string', format: 'uri', description: 'file' }, n: { type: ['integer', 'null'], minimum: 1 }, mode: { enum: ['a', 'b'] }, tags: { type: 'array', items: { type: 'string' } }, free: {} },
      required: ['path', 'missing'],
    }), {
      type: 'object',
      properties: { path: { type: 'string', description: 'file' }, n: { type: 'integer' }, mode: { enum: ['a', 'b'] }, tags: { type: 'array', items: { type: 'string' } }, free: { type: ['string', 'number', 'integer', 'boolean', 'null'] } },
      required: ['path'],
    });
    const functions = toChatModelFunctions([{ name: 'ping', description: 'no params', parameters: { type: 'object', properties: {} } }]);
    assert.deepEqual(functions, { ping: { description: 'no params' } });
  });

  describe('with the real model', () => {
    let manager: ModelManager;
    let chat: ChatEngine;
    const tools = [{ name: 'getWeather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] } }, required: ['city'] } }];

    before(async () => {
      const settings = testSettings({ model: await testModel('stories260K-chatml.gguf') });
      manager = new ModelManager({ settings: () => settings, sequences: 2 });
      chat = new ChatEngine(manager, () => settings);
    });
    after(async () => { chat.dispose(); await manager.dispose(); });

    it('reports a function call the model makes, with params that match the schema', async () => {
      const lease = await manager.acquire();
      const tokenizer = lease.model.model.tokenizer;
      lease.dispose();
      // A story model never calls tools by itself: steer it through the wrapper's call prefix, one token per step.
      const prefix = tokenizer('||call: ', false);
      const tokenBias = await scriptedBias(tokenizer, prefix);
      const { stats } = await drain(chat.reply({ id: 'tools', messages: [{ role: 'user', content: 'What is the weather in Paris?' }] }, { tools, tokenBias, maxTokens: 120 }));
      assert.equal(stats.stopReason, 'done', JSON.stringify(stats));
      assert.equal(stats.toolCalls?.length, 1, JSON.stringify(stats));
      assert.equal(stats.toolCalls![0].name, 'getWeather');
      assert.ok(['Paris', 'Oslo'].includes((stats.toolCalls![0].params as { city: string }).city), JSON.stringify(stats.toolCalls));

      const after = await drain(chat.reply({ id: 'tools', messages: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { role: 'assistant', content: '', toolCalls: [{ ...stats.toolCalls![0], result: '{"sky":"sunny"}' }] },
      ] }, { tools, maxTokens: 16 }));
      assert.notEqual(after.stats.stopReason, 'error', after.stats.error);
      assert.ok(after.stats.completionTokens > 0);
    });

    it('answers in text when tools are offered but not called', async () => {
      const { text, stats } = await drain(chat.reply({ id: 'no-tools-called', messages: [{ role: 'user', content: 'Once upon a time' }] }, { tools, maxTokens: 16 }));
      assert.equal(stats.toolCalls, undefined);
      assert.ok(text.length > 0);
    });
  });
});
