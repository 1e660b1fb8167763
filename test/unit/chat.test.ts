import assert from 'node:assert/strict';
import { ChatEngine, type ChatMessage, type ChatReply, type ReplyStats } from '../../src/core/chat/engine';
import { MessageTooLongError, PromptTooLongError } from '../../src/core/errors';
import { ModelManager } from '../../src/core/engine/models';
import type { Settings } from '../../src/core/settings';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, testModel } from '../support/models';
import { testSettings } from '../support/settings';

async function collect(reply: ChatReply): Promise<{ text: string; deltas: string[]; stats: ReplyStats }> {
  const deltas: string[] = [];
  for await (const d of reply) deltas.push(d);
  return { text: deltas.join(''), deltas, stats: await reply.stats };
}

const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

for (const modelName of ['stories260K.gguf', 'stories260K-chatml.gguf']) {
  describe(`ChatEngine on ${modelName}`, () => {
    let settings: Settings;
    let manager: ModelManager;
    let chat: ChatEngine;

    before(async () => {
      settings = testSettings({ model: await testModel(modelName) });
      manager = new ModelManager({ settings: () => settings, sequences: 2 });
      chat = new ChatEngine(manager, () => settings);
    });
    after(async () => { chat.dispose(); await manager.dispose(); });

    it('streams a non-empty reply, the same each time at temperature 0', async () => {
      const a = await collect(chat.reply({ id: 'det-a', messages: [user('Once upon a time')] }));
      const b = await collect(chat.reply({ id: 'det-b', messages: [user('Once upon a time')] }));
      assert.ok(a.text.trim().length > 10, `reply: ${JSON.stringify(a.text)}`);
      assert.ok(a.deltas.length > 3, 'streamed in several deltas');
      assert.equal(a.text, b.text);
    });

    it('reports consistent stats', async () => {
      const { stats, text } = await collect(chat.reply({ id: 'stats', messages: [user('The little dog')] }, { maxTokens: 20 }));
      assert.equal(stats.stopReason, 'maxTokens');
      assert.equal(stats.completionTokens, 20);
      assert.ok(stats.promptTokens > 3 && stats.evaluatedPromptTokens <= stats.promptTokens);
      assert.ok(stats.timeToFirstTokenMs !== undefined && stats.timeToFirstTokenMs <= stats.totalMs);
      assert.ok(stats.tokensPerSecond > 0);
      assert.ok(stats.model.length > 0);
      assert.ok(text.length > 0);
      assert.equal(stats.droppedMessages, 0);
    });

    it('cancels at once through the AbortSignal, keeps the partial text, and the next reply works', async () => {
      const controller = new AbortController();
      const reply = chat.reply({ id: 'cancel', messages: [user('Once upon a time')] }, { maxTokens: 1000, grammar: await endlessGrammar(manager) }, controller.signal);
      let text = '';
      for await (const d of reply) {
        text += d;
        if (text.length > 20) controller.abort();
      }
      const stats = await reply.stats;
      assert.equal(stats.stopReason, 'cancelled');
      assert.ok(text.length > 20 && stats.completionTokens < 1000, `${stats.completionTokens} tokens after abort`);
      const next = await collect(chat.reply({ id: 'cancel', messages: [user('Once upon a time'), assistant(text), user('Tell me more')] }, { maxTokens: 10 }));
      assert.equal(next.stats.stopReason, 'maxTokens');
      assert.ok(next.text.length > 0);
    });

    it('honours a stop that comes while the model is still loading', async () => {
      const fresh = new ModelManager({ settings: () => settings, sequences: 1 });
      const freshChat = new ChatEngine(fresh, () => settings);
      try {
        const controller = new AbortController();
        const reply = freshChat.reply({ id: 'early-stop', messages: [user('Once upon a time')] }, { maxTokens: 1000, grammar: undefined }, controller.signal);
        await new Promise<void>((resolve) => fresh.onDidChangeState((s) => { if (s.kind === 'loading') { controller.abort(); resolve(); } }));
        const { stats } = await collect(reply);
        assert.equal(stats.stopReason, 'cancelled');
        assert.ok(stats.completionTokens <= 1, `${stats.completionTokens} tokens after a stop during loading`);
      } finally {
        freshChat.dispose();
        await fresh.dispose();
      }
    });

    it('stops a consumer that leaves the loop early', async () => {
      const reply = chat.reply({ id: 'break', messages: [user('Once upon a time')] }, { maxTokens: 1000, grammar: await endlessGrammar(manager) });
      for await (const d of reply) if (d) break;
      const stats = await reply.stats;
      assert.equal(stats.stopReason, 'cancelled');
      assert.ok(stats.completionTokens < 1000);
    });

    it('ends a reply that outlasts the time budget with stop reason "timeout"', async () => {
      // The grammar never lets the model stop, so only the time budget can end this reply.
      const { stats } = await collect(chat.reply({ id: 'timeout', messages: [user('Once upon a time')] }, { maxTokens: 100000, timeoutMs: 300, grammar: await endlessGrammar(manager) }));
      assert.equal(stats.stopReason, 'timeout');
      assert.ok(stats.totalMs >= 300 && stats.completionTokens < 100000);
    });

    it('streams emoji, CJK and accents byte-exactly, never splitting a character', async () => {
      const target = 'Emoji 😀🎉👩‍💻 and CJK 你好世界 and é ñ ü ß';
      const { LlamaGrammar } = await import('node-llama-cpp'); // a name the extension does not use
      const llama = (await manager.acquire());
      const grammar = new LlamaGrammar(llama.model.llama, { grammar: `root ::= ${JSON.stringify(target)}` });
      llama.dispose();
      const { text, deltas } = await collect(chat.reply({ id: 'utf8', messages: [user('Say it')] }, { maxTokens: 200, grammar }));
      assert.equal(text, target);
      assert.ok(deltas.length > 5, `${deltas.length} deltas`);
      for (const d of deltas) {
        assert.ok(!d.includes('\uFFFD'), `delta ${JSON.stringify(d)} holds a replacement character`);
        assert.equal(Buffer.from(d, 'utf8').toString('utf8'), d, `delta ${JSON.stringify(d)} is not well-formed`);
        assert.ok(!/[\uD800-\uDBFF]$|^[\uDC00-\uDFFF]/.test(d), `delta ${JSON.stringify(d)} splits a surrogate pair`);
      }
    });

    it('evaluates only the new tokens of a follow-up (KV cache reuse)', async () => {
      const first = await collect(chat.reply({ id: 'reuse', messages: [user('Once upon a time there was a cat')] }, { maxTokens: 30 }));
      const history = [user('Once upon a time there was a cat'), assistant(first.text), user('What did the cat do next?')];
      const second = await collect(chat.reply({ id: 'reuse', messages: history }, { maxTokens: 10 }));
      // Without the shared system prompt, a conversation that opens differently shares at most its first few tokens.
      const other = await collect(chat.reply({ messages: [user('A dragon flew over the mountains and the sea')] }, { maxTokens: 10, systemPrompt: null }));
      assert.ok(other.stats.evaluatedPromptTokens >= other.stats.promptTokens - 6, `a new conversation evaluates its whole prompt (${other.stats.evaluatedPromptTokens} of ${other.stats.promptTokens})`);
      assert.ok(second.stats.evaluatedPromptTokens < second.stats.promptTokens / 2,
        `follow-up evaluated ${second.stats.evaluatedPromptTokens} of ${second.stats.promptTokens} prompt tokens`);
    });

    it('picks the sequence by shared prefix, not by identity: two threads that open alike run at once and keep their caches', async () => {
      let most = 0;
      const watch = chat.onDidChangeActivity((a) => { most = Math.max(most, a.generating); });
      try {
        // No ids (as the Chat view and the model picker send them); both open with the same words.
        const opening = [user('Hello')];
        const [a1, b1] = await Promise.all([collect(chat.reply({ messages: opening }, { maxTokens: 12 })), collect(chat.reply({ messages: opening }, { maxTokens: 12 }))]);
        assert.equal(most, 2, 'both threads generated at the same time');
        assert.equal(a1.text, b1.text);
        const a = [...opening, assistant(a1.text), user('Tell me about the cat')];
        const b = [...opening, assistant(b1.text), user('Tell me about the big red ball')];
        const [a2, b2] = await Promise.all([collect(chat.reply({ messages: a }, { maxTokens: 12 })), collect(chat.reply({ messages: b }, { maxTokens: 12 }))]);
        const a3 = await collect(chat.reply({ messages: [...a, assistant(a2.text), user('And then?')] }, { maxTokens: 8 }));
        const b3 = await collect(chat.reply({ messages: [...b, assistant(b2.text), user('And then?')] }, { maxTokens: 8 }));
        for (const [name, r] of [['a2', a2], ['b2', b2], ['a3', a3], ['b3', b3]] as const) {
          assert.ok(r.stats.evaluatedPromptTokens < r.stats.promptTokens / 2, `${name} evaluated ${r.stats.evaluatedPromptTokens} of ${r.stats.promptTokens} prompt tokens`);
        }
        const aloneA2 = await collect(chat.reply({ messages: a }, { maxTokens: 12 }));
        assert.equal(a2.text, aloneA2.text, 'the concurrent reply is the one the thread gets alone');
      } finally {
        watch.dispose();
      }
    });

    it('ends at once when stopped while waiting for a busy sequence, and returns every lease', async () => {
      const one = new ModelManager({ settings: () => settings, sequences: 1 });
      const oneChat = new ChatEngine(one, () => settings);
      try {
        const grammar = await endlessGrammar(one);
        const busy = new AbortController();
        const first = oneChat.reply({ messages: [user('Once upon a time')] }, { maxTokens: 100_000, grammar }, busy.signal);
        const iterator = first[Symbol.asyncIterator]();
        await iterator.next(); // generating now, holding the only sequence
        const waiting = new AbortController();
        const second = oneChat.reply({ messages: [user('The big red ball')] }, { maxTokens: 10 }, waiting.signal);
        setTimeout(() => waiting.abort(), 100);
        const stats = await second.stats;
        assert.equal(stats.stopReason, 'cancelled');
        assert.equal(stats.completionTokens, 0);
        assert.equal(one.model!.sequences.busyCount, 1, 'the first reply is still generating');
        busy.abort();
        assert.equal((await first.stats).stopReason, 'cancelled');
        assert.equal(one.activeLeases, 0);
        // A throw while taking a sequence (the model unloaded under a waiting reply) returns the lease too.
        const again = new AbortController();
        const holder = oneChat.reply({ messages: [user('Once upon a time')] }, { maxTokens: 100_000, grammar }, again.signal);
        await holder[Symbol.asyncIterator]().next();
        const starved = oneChat.reply({ messages: [user('A dragon')] }, { maxTokens: 10 });
        await new Promise((r) => setTimeout(r, 50));
        await one.unload('user');
        await assert.rejects(starved.stats, /unloaded/);
        await holder.stats;
        assert.equal(one.activeLeases, 0);
      } finally {
        oneChat.dispose();
        await one.dispose();
      }
    });

    it('drops the oldest turns when the history outgrows the context, and keeps working', async () => {
      const small = testSettings({ model: settings.model, contextSize: 512, maxHistoryMessages: 100 });
      const smallManager = new ModelManager({ settings: () => small, sequences: 1 });
      const smallChat = new ChatEngine(smallManager, () => small);
      try {
        const messages: ChatMessage[] = [];
        for (let i = 0; i < 30; i++) messages.push(user(`Turn ${i}: the cat sat on the mat and looked at the sun.`), assistant(`Reply ${i}: the dog ran in the park.`));
        messages.push(user('And then?'));
        const { stats, text } = await collect(smallChat.reply({ id: 'long', messages }, { maxTokens: 32 }));
        assert.notEqual(stats.stopReason, 'error');
        assert.ok(stats.droppedMessages > 0 && stats.droppedMessages < 60, `dropped ${stats.droppedMessages}`);
        assert.ok(stats.promptTokens <= 512 - 32, `prompt ${stats.promptTokens}`);
        assert.ok(text.length > 0);
        // The cut sits at a checkpoint of the messages themselves, so the next turn keeps it and
        // extends the cached prompt instead of cutting (and re-evaluating) again.
        let last = { dropped: stats.droppedMessages, text };
        const turns: Array<{ dropped: number; evaluated: number; prompt: number }> = [];
        for (let turn = 0; turn < 6; turn++) {
          messages.push(assistant(last.text), user(`And after that? (${turn})`));
          const next = await collect(smallChat.reply({ id: 'long', messages }, { maxTokens: 32 }));
          turns.push({ dropped: next.stats.droppedMessages, evaluated: next.stats.evaluatedPromptTokens, prompt: next.stats.promptTokens });
          last = { dropped: next.stats.droppedMessages, text: next.text };
        }
        // Each cut drops a quarter window at once: (a 512-token window holds little more than a turn of it) half the turns keep the cut, and they evaluate only their new tokens.
        const kept = turns.filter((t, i) => t.dropped === (i === 0 ? stats.droppedMessages : turns[i - 1]!.dropped));
        assert.ok(kept.length >= 3, `turns that kept the cut: ${JSON.stringify(turns)}`);
        for (const t of kept) assert.ok(t.evaluated < t.prompt / 2, `evaluated ${t.evaluated} of ${t.prompt}: ${JSON.stringify(turns)}`);
        await assert.rejects(collect(smallChat.reply({ id: 'huge', messages: [user('word '.repeat(1000))] })), PromptTooLongError);
      } finally {
        smallChat.dispose();
        await smallManager.dispose();
      }
    });

    it('keeps only the configured number of earlier messages', async () => {
      const messages = [user('one'), assistant('two'), user('three'), assistant('four'), user('five')];
      const { stats } = await collect(chat.reply({ id: 'history-limit', messages }, { maxTokens: 4 }));
      assert.equal(stats.droppedMessages, 0);
      const saved = settings;
      settings = { ...settings, maxHistoryMessages: 2 };
      try {
        const r = await collect(chat.reply({ id: 'history-limit-2', messages }, { maxTokens: 4 }));
        assert.equal(r.stats.droppedMessages, 2);
      } finally {
        settings = saved;
      }
    });

    it('trims a long history in steps, so the cached prefix holds across turns (multi-turn stays flat)', async () => {
      const saved = settings;
      settings = { ...settings, maxHistoryMessages: 4 };
      try {
        const history: ChatMessage[] = [];
        const evaluated: Array<{ turn: number; evaluated: number; prompt: number }> = [];
        for (let turn = 1; turn <= 9; turn++) {
          history.push(user(`Turn ${turn}: and then the little dog`));
          const r = await collect(chat.reply({ id: 'long-history', messages: history }, { maxTokens: 8 }));
          evaluated.push({ turn, evaluated: r.stats.evaluatedPromptTokens, prompt: r.stats.promptTokens });
          history.push(assistant(r.text));
        }
        // From turn 4 on the history is trimmed; a cut that slid by one exchange per turn re-evaluated every prompt.
        const whole = evaluated.slice(3).filter((e) => e.evaluated >= e.prompt / 2);
        assert.ok(whole.length <= 3, `turns that re-evaluated most of their prompt: ${JSON.stringify(whole)} of ${JSON.stringify(evaluated)}`);
      } finally {
        settings = saved;
      }
    });

    it('rejects an over-long message with a clear error', async () => {
      const saved = settings;
      settings = { ...settings, maxMessageLength: 100 };
      try {
        const reply = chat.reply({ id: 'too-long', messages: [user('x'.repeat(101))] });
        await assert.rejects(collect(reply), (err: unknown) => err instanceof MessageTooLongError && /101 characters.*limit is 100/.test(err.message));
        await assert.rejects(reply.stats, MessageTooLongError);
      } finally {
        settings = saved;
      }
    });

    it('counts tool schemas in the prompt budget: VS Code\'s 27 tools get nanochat\'s clear message, never llama.cpp\'s', async function () {
      const fixture = path.resolve(REPO_ROOT, '..', 'shared', 'fixtures', 'vscode-1.139.1-lm-tools.json');
      if (!fs.existsSync(fixture)) this.skip();
      const vscodeTools = (JSON.parse(fs.readFileSync(fixture, 'utf8')) as Array<{ name: string; description: string; inputSchema?: object }>)
        .map((t) => ({ name: t.name, description: t.description, parameters: t.inputSchema }));
      const one = [{ name: 'getWeather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
      const plain = await collect(chat.reply({ messages: [user('List the files')] }, { maxTokens: 4 }));
      const withOne = await collect(chat.reply({ messages: [user('List the files')] }, { maxTokens: 4, tools: one }));
      assert.ok(withOne.stats.promptTokens > plain.stats.promptTokens + 20, `one tool schema is counted: ${plain.stats.promptTokens} → ${withOne.stats.promptTokens}`);
      const reply = chat.reply({ messages: [user('List the files in this workspace')] }, { tools: vscodeTools });
      await assert.rejects(reply.stats, (err: unknown) => err instanceof PromptTooLongError && err.tools === 27
        && /with the schemas of 27 tools.*Offer fewer tools or raise nanochat\.contextSize/.test(err.message) && !/context shift/i.test(err.message));
    });

    it('generates two conversations at the same time without mixing their text', async () => {
      const a = [user('Once upon a time')];
      const b = [user('The big red ball')];
      const aloneA = await collect(chat.reply({ id: 'alone-a', messages: a }, { maxTokens: 24 }));
      const aloneB = await collect(chat.reply({ id: 'alone-b', messages: b }, { maxTokens: 24 }));
      const [togetherA, togetherB, third] = await Promise.all([
        collect(chat.reply({ id: 'together-a', messages: a }, { maxTokens: 24 })),
        collect(chat.reply({ id: 'together-b', messages: b }, { maxTokens: 24 })),
        collect(chat.reply({ id: 'together-c', messages: a }, { maxTokens: 24 })), // more conversations than sequences: waits its turn
      ]);
      assert.notEqual(aloneA.text, aloneB.text);
      assert.equal(togetherA.text, aloneA.text);
      assert.equal(togetherB.text, aloneB.text);
      assert.equal(third.text, aloneA.text);
    });
  });
}

/** A grammar that never lets the model stop by itself, so limits and cancellation are what end it. */
async function endlessGrammar(manager: ModelManager) {
  const { LlamaGrammar } = await import('node-llama-cpp'); // a name the extension does not use
  const lease = await manager.acquire();
  lease.dispose();
  return new LlamaGrammar(lease.model.llama, { grammar: 'root ::= [a-z ]+' });
}
