import assert from 'node:assert/strict';
import { ChatEngine, type ChatReply } from '../../src/core/chat/engine';
import { fromOpenAiConversation } from '../../src/core/chat/prompt';
import { importNodeLlamaCpp } from '../../src/core/engine/llama';
import { ModelManager, type LoadedModel } from '../../src/core/engine/models';
import { bundledCatalog } from '../../src/core/modelFiles/catalog';
import { likeModel } from '../support/likeModels';
import { REFERENCE_CONVERSATION, REFERENCE_CONVERSATION_NO_TOOLS, renderReference } from '../support/referencePrompt';
import { testSettings } from '../support/settings';
import { scriptedBias } from '../support/steer';
import type { OpenAiConversation } from '../../src/core/chat/prompt';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { assertOneLineFailure } from '../support/cli';
import { REPO_ROOT } from '../support/models';
import { ChatTemplate } from '../../src/core/engine/chatTemplate';
import { llamaCppSource } from '../../tools/llamaCpp.mjs';

const run = promisify(execFile);

/** Each catalog model's end-of-turn token, and whether its own template has a tool syntax. */
const EXPECTED: Record<string, { endOfTurn: string; templateTools: boolean }> = {
  'smollm2-135m-instruct': { endOfTurn: '<|im_end|>', templateTools: false },
  'smollm2-360m-instruct': { endOfTurn: '<|im_end|>', templateTools: false },
  'qwen2.5-0.5b-instruct': { endOfTurn: '<|im_end|>', templateTools: true },
  'qwen3-0.6b': { endOfTurn: '<|im_end|>', templateTools: true },
  'gemma-3-1b-it': { endOfTurn: '<end_of_turn>', templateTools: false },
  'llama-3.2-1b-instruct': { endOfTurn: '<|eot_id|>', templateTools: true },
  'qwen2.5-coder-0.5b-instruct': { endOfTurn: '<|im_end|>', templateTools: true },
  'qwen2.5-coder-1.5b-instruct': { endOfTurn: '<|im_end|>', templateTools: true },
};

async function drain(reply: ChatReply) {
  let text = '';
  for await (const d of reply) text += d;
  return { text, stats: await reply.stats };
}

function vocabularySize(loaded: LoadedModel): number {
  return (loaded.model.fileInfo.metadata as unknown as { tokenizer: { ggml: { tokens: unknown[] } } }).tokenizer.ggml.tokens.length;
}

/** Fails on the first differing token and shows both sides around it, as text and ids. */
function assertSameTokens(ours: readonly number[], reference: readonly number[], detokenize: (t: readonly number[]) => string): void {
  let i = 0;
  while (i < ours.length && i < reference.length && ours[i] === reference[i]) i++;
  if (i === ours.length && i === reference.length) return;
  const around = (t: readonly number[]) => `${JSON.stringify(detokenize(t.slice(Math.max(0, i - 8), i + 12)))} ${JSON.stringify(t.slice(Math.max(0, i - 8), i + 12))}`;
  assert.fail(`prompts differ at token ${i} (nanochat ${ours.length} tokens, template ${reference.length}):\n  nanochat: ${around(ours)}\n  template: ${around(reference)}`);
}

describe('a chat template renders a prompt once per reply', function () {
  it('gives the same text for the same history and tools (remembered), and never an earlier one for another', () => {
    const qwen = fs.readFileSync(path.join(llamaCppSource(), 'models', 'templates', 'Qwen-Qwen2.5-7B-Instruct.jinja'), 'utf8');
    const template = new ChatTemplate(qwen, { bos: '', eos: '<|im_end|>' });
    const functions = { read_file: { description: 'Read a file', params: { type: 'object', properties: { path: { type: 'string' } } } } } as never;
    const a = [{ type: 'user' as const, text: 'Hello' }, { type: 'model' as const, response: [] }];
    const b = [{ type: 'user' as const, text: 'Hello!' }, { type: 'model' as const, response: [] }];
    const first = template.render(a, functions);
    const other = template.render(b, functions);
    const noTools = template.render(a, undefined);
    assert.notEqual(first, other);
    assert.notEqual(first, noTools);
    assert.match(first, /read_file/);
    assert.doesNotMatch(noTools, /read_file/);
    assert.equal(template.render(a, functions), first);
    assert.equal(template.render(structuredClone(b), functions), other, 'an equal history from another object');
    // Many renders later (more than it remembers), the first history still renders the same text.
    for (let i = 0; i < 10; i++) template.render([{ type: 'user', text: `message ${i}` }, { type: 'model', response: [] }], functions);
    assert.equal(template.render(a, functions), first);
  });
});

describe('npm run prompt', function () {
  this.timeout(120_000);
  const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'tools', 'cli', 'prompt.ts'), ...args], { cwd: REPO_ROOT });
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-prompt-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prints the exact text and token ids of a conversation in OpenAI\'s format, from the vocabulary and template alone', async () => {
    const model = await likeModel('qwen2.5-0.5b-instruct');
    const file = path.join(dir, 'conversation.json');
    fs.writeFileSync(file, JSON.stringify(REFERENCE_CONVERSATION));
    const { stdout } = await cli(['--model', model, '--messages', file, '--json', '--no-system-prompt']);
    const shown = JSON.parse(stdout) as { model: string; chatFormat: string; text: string; tokens: number[] };
    assert.deepEqual(Object.keys(shown), ['model', 'chatFormat', 'text', 'tokens']);
    assert.equal(shown.chatFormat, 'Qwen, model\'s own template');
    const lib = await importNodeLlamaCpp();
    const llama = await lib.getLlama({ gpu: false, build: 'never' });
    const vocab = await llama.loadModel({ modelPath: model, vocabOnly: true });
    try {
      const template = (vocab.fileInfo.metadata as unknown as { tokenizer: { chat_template: string } }).tokenizer.chat_template;
      const expected = renderReference(template, REFERENCE_CONVERSATION, { bos: vocab.tokens.bosString ?? '', eos: vocab.tokens.eosString ?? '' });
      assert.equal(shown.text, expected);
      assertSameTokens(shown.tokens, vocab.tokenize(expected, true), (t) => vocab.detokenize(t as never, true));
    } finally {
      await vocab.dispose();
    }
    // Without --no-system-prompt, nanochat's own system prompt comes first, as in the editor.
    const withSystem = JSON.parse((await cli(['--model', model, '--messages', file, '--json'])).stdout) as { text: string };
    assert.ok(withSystem.text.startsWith('<|im_start|>system\nYou are nanochat'), withSystem.text.slice(0, 60));
  });

  it('refuses a malformed conversation, a crafted GGUF and a missing file with one line each', async () => {
    const model = await likeModel('qwen2.5-0.5b-instruct');
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ messages: [{ role: 'wizard', content: 'hi' }] }));
    await assertOneLineFailure(cli(['--model', model, '--messages', bad]), /not a conversation in OpenAI's chat format/i);
    const orphan = path.join(dir, 'orphan.json');
    fs.writeFileSync(orphan, JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'x', content: '1' }] }));
    await assertOneLineFailure(cli(['--model', model, '--messages', orphan]), /answers no tool call/);
    const good = path.join(dir, 'good.json');
    fs.writeFileSync(good, JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }));
    const crafted = path.join(dir, 'crafted.gguf');
    const bytes = fs.readFileSync(model).subarray(0, 64 * 1024);
    bytes.writeBigUInt64LE(0xffffffffn, 16); // a metadata count far beyond the file
    fs.writeFileSync(crafted, bytes);
    await assertOneLineFailure(cli(['--model', crafted, '--messages', good]), /nanochat prompt: /);
    await assertOneLineFailure(cli(['--model', path.join(dir, 'nope.gguf'), '--messages', good]), /nanochat prompt: /);
  });
});

describe('the catalog models\' real chat formats, token for token', function () {
  this.timeout(300_000);
  assert.deepEqual(Object.keys(EXPECTED).sort(), bundledCatalog().models.map((m) => m.id).sort(), 'every catalog model is checked');

  for (const entry of bundledCatalog().models) {
    describe(entry.id, () => {
      const expected = EXPECTED[entry.id];
      let manager: ModelManager;
      let chat: ChatEngine;
      let loaded: LoadedModel;
      let template: string;

      before(async () => {
        const settings = testSettings({ model: await likeModel(entry.id), contextSize: 2048 });
        manager = new ModelManager({ settings: () => settings, sequences: 1 });
        chat = new ChatEngine(manager, () => settings);
        loaded = await manager.load();
        template = (loaded.model.fileInfo.metadata as unknown as { tokenizer: { chat_template: string } }).tokenizer.chat_template;
      });
      after(async () => { chat?.dispose(); await manager?.dispose(); });

      const reference = (conversation: OpenAiConversation) => loaded.model.tokenize(
        renderReference(template, conversation, { bos: loaded.model.tokens.bosString ?? '', eos: loaded.model.tokens.eosString ?? '' }), true);

      async function checkPrompt(conversation: OpenAiConversation): Promise<void> {
        const { conversation: ours, tools } = fromOpenAiConversation(conversation);
        const expectedTokens = reference(conversation);
        const { stats } = await drain(chat.reply(ours, { systemPrompt: null, maxTokens: 1, tools: tools.length ? tools : undefined }));
        assert.notEqual(stats.stopReason, 'error', stats.error);
        assertSameTokens(chat.lastPrompt!.tokens, expectedTokens, (t) => loaded.model.detokenize(t as never, true));
        assert.equal(stats.promptTokens, expectedTokens.length);
        // What the context now holds starts with exactly those tokens: they are what was evaluated.
        const { slot, reusedTokens } = await loaded.sequences.take(expectedTokens as never);
        loaded.sequences.release(slot);
        assert.equal(reusedTokens, expectedTokens.length);
      }

      it('resolves to the chat format the catalog records, and its template writes the prompt', () => {
        assert.equal(loaded.info.chatFormat, entry.chatFormat);
        assert.equal(loaded.info.chatTemplate, expected.templateTools ? 'with tools' : 'without tools');
      });

      it('evaluates the model\'s own template, token for token: system prompt and three turns', async () => {
        await checkPrompt(REFERENCE_CONVERSATION_NO_TOOLS);
      });

      if (expected.templateTools) {
        it('evaluates the model\'s own template with tools, a tool call and its result', async () => {
          await checkPrompt(REFERENCE_CONVERSATION);
        });
      } else {
        it('has no tool syntax in its template, so tools use node-llama-cpp\'s own format', async () => {
          const rendered = (() => { try { return renderReference(template, REFERENCE_CONVERSATION, { bos: '', eos: '' }); } catch (err) { return String(err); } })();
          assert.ok(!rendered.includes('get_weather'), 'the template cannot show tools to the model');
          const { conversation, tools } = fromOpenAiConversation(REFERENCE_CONVERSATION);
          const { stats } = await drain(chat.reply(conversation, { systemPrompt: null, maxTokens: 1, tools }));
          assert.notEqual(stats.stopReason, 'error', stats.error);
          assert.ok(chat.lastPrompt!.text.includes('get_weather'), 'the tools are in the prompt');
          const [first, second] = chat.lastPrompt!.tokens;
          assert.notEqual(first, second, `the prompt starts with one BOS, not two: ${JSON.stringify(chat.lastPrompt!.text.slice(0, 40))}`);
          // The same prompt start as the template gives without tools.
          assert.equal(first, reference(REFERENCE_CONVERSATION_NO_TOOLS)[0]);
        });
      }

      it(`stops generating at its end-of-turn token ${expected.endOfTurn}`, async () => {
        const { TokenBias } = await importNodeLlamaCpp();
        const tokenizer = loaded.model.tokenizer;
        const [endOfTurn] = tokenizer(expected.endOfTurn, true);
        assert.equal(loaded.model.detokenize([endOfTurn], true), expected.endOfTurn);
        const word = tokenizer('Sure', false);
        // node-llama-cpp will not bias end-of-generation tokens up, so after the word every other token is barred.
        const barred = new TokenBias(tokenizer);
        for (let t = 0; t < vocabularySize(loaded); t++) if (t !== endOfTurn) barred.set(t as never, 'never');
        let step = 0;
        const tokenBias = () => {
          if (step >= word.length) return barred;
          const bias = new TokenBias(tokenizer);
          bias.set(word[step++], { logit: 1000 });
          return bias;
        };
        const { text, stats } = await drain(chat.reply({ messages: [{ role: 'user', content: 'Say sure.' }] }, { systemPrompt: null, maxTokens: 16, tokenBias }));
        assert.equal(stats.stopReason, 'done', JSON.stringify(stats));
        assert.equal(text, 'Sure');
        assert.equal(stats.completionTokens, word.length + 1);
      });

      it('parses a tool call written in its native syntax', async () => {
        const { LlamaText } = await importNodeLlamaCpp();
        const tokenizer = loaded.model.tokenizer;
        const prefix = LlamaText(loaded.chatWrapper.settings.functions.call.prefix).tokenize(tokenizer);
        if (expected.templateTools) {
          // The call syntax node-llama-cpp parses is the one the template teaches the model.
          const taught = renderReference(template, REFERENCE_CONVERSATION, { bos: '', eos: '' });
          const written = loaded.model.detokenize(prefix, true).trim();
          assert.ok(taught.includes(written.split('\n')[0]), `the template shows calls as ${JSON.stringify(written)}`);
        }
        const tokenBias = await scriptedBias(tokenizer, prefix);
        const tools = [{ name: 'get_weather', description: 'Current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] } }, required: ['city'] } }];
        const { stats } = await drain(chat.reply({ messages: [{ role: 'user', content: 'Weather in Paris?' }] }, { systemPrompt: null, maxTokens: 64, tools, tokenBias }));
        // Random weights may go on to a second call (these formats allow parallel calls); each must parse.
        assert.ok((stats.toolCalls?.length ?? 0) >= 1, JSON.stringify(stats));
        for (const call of stats.toolCalls!) {
          assert.equal(call.name, 'get_weather');
          assert.ok(['Paris', 'Oslo'].includes((call.params as { city: string }).city), JSON.stringify(call));
        }
      });
    });
  }
});
