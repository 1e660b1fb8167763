import assert from 'node:assert/strict';
import { SuggestionCache } from '../../src/core/completion/cache';
import { CompletionEngine, CompletionUnsupportedError, fimTokensOf } from '../../src/core/completion/completionEngine';
import { buildFimPrompt, headWithin, suggestionComplete, tailWithin, trimSuggestion, type Token } from '../../src/core/completion/fim';
import { importNodeLlamaCpp } from '../../src/core/engine/llama';
import type { Settings } from '../../src/core/settings';
import { likeModel } from '../support/likeModels';
import { testModel } from '../support/models';
import { testSettings } from '../support/settings';

// One token per character (ids are char codes), so budgets are easy to read.
const chars = (text: string) => [...text].map((c) => c.codePointAt(0)!) as unknown as Token[];
const FIM = { prefix: -1, suffix: -2, middle: -3, fileSeparator: -4, repoName: -5 } as unknown as Parameters<typeof buildFimPrompt>[1];

describe('inline completions', () => {
  describe('fill-in-the-middle prompt layout', () => {
    it('puts other files first, then the current file\'s name, then prefix, suffix and middle (Qwen2.5-Coder\'s repository format)', () => {
      const prompt = buildFimPrompt({
        prefix: 'def add(a, b):\n    ', suffix: '\n\nprint(add(1, 2))\n', path: 'src/math.py', repo: 'demo',
        extra: [{ path: 'src/util.py', text: 'X = 1' }, { path: 'src/math.py', text: 'ignored: the current file' }],
      }, FIM, { prefixTokens: 100, suffixTokens: 100, extraTokens: 100 }, chars);
      const text = (prompt.tokens as unknown as number[]).map((t) => (t < 0 ? `[${['', 'PRE', 'SUF', 'MID', 'SEP', 'REPO'][-t]}]` : String.fromCodePoint(t))).join('');
      assert.equal(text, '[REPO]demo\n[SEP]src/util.py\nX = 1\n[SEP]src/math.py\n[PRE]def add(a, b):\n    [SUF]\n\nprint(add(1, 2))\n[MID]');
      assert.deepEqual(prompt.extraFiles, ['src/util.py']);
    });

    it('keeps the end of the prefix and the start of the suffix within their budgets, at line boundaries', () => {
      const prefix = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n') + '\n    x = ';
      assert.equal(tailWithin(prefix, 20, chars, 1), 'line 49\n    x = ');
      // Lines go in steps of 16 from the start, so the window's start stays put while the user types.
      const long = Array.from({ length: 100 }, (_, i) => `line ${String(i).padStart(2, '0')}`).join('\n') + '\n';
      const start = (typed: string) => tailWithin(long + typed, 400, chars).split('\n', 1)[0];
      assert.equal(start(''), 'line 64');
      assert.deepEqual(['a', 'ab', 'abc = 1', 'abc = 12'].map(start), ['line 64', 'line 64', 'line 64', 'line 64']);
      assert.equal(start('x'.repeat(130)), 'line 80', 'moves by a whole step once the budget is exceeded');
      assert.equal(headWithin('a = 1\nb = 2\nc = 3\n', 12, chars), 'a = 1\nb = 2\n');
      const prompt = buildFimPrompt({ prefix, suffix: 'a = 1\nb = 2\nc = 3\n', path: 'f.py', extra: [{ path: 'big.py', text: 'y'.repeat(500) }] },
        FIM, { prefixTokens: 20, suffixTokens: 12, extraTokens: 100 }, chars);
      assert.equal(prompt.prefixChars, '    x = '.length);
      assert.equal(prompt.suffixChars, 12);
      assert.deepEqual(prompt.extraFiles, [], 'a file beyond the extra budget is left out, never cut mid-way');
    });

    it('sends only the current file to a model without repository tokens', () => {
      const { prefix, suffix, middle } = FIM;
      const prompt = buildFimPrompt({ prefix: 'a', suffix: 'b', path: 'f.py', repo: 'r', extra: [{ path: 'g.py', text: 'c' }] },
        { prefix, suffix, middle }, { prefixTokens: 10, suffixTokens: 10, extraTokens: 10 }, chars);
      assert.deepEqual(prompt.tokens, [-1, 97, -2, 98, -3]);
    });
  });

  describe('where a suggestion ends', () => {
    it('at the end of the line when text follows the cursor, without repeating it', () => {
      assert.equal(trimSuggestion('a + b)\nmore', { linePrefix: 'print(', suffix: ')\n' }), 'a + b');
      assert.equal(suggestionComplete('a + b', { linePrefix: 'print(', suffix: ')\n' }), false);
      assert.equal(suggestionComplete('a + b)\n', { linePrefix: 'print(', suffix: ')\n' }), true);
    });

    it('at the end of the block on an empty line: a blank line, or a line indented less than the cursor', () => {
      const context = { linePrefix: '    ', suffix: '\n\nprint(add(1, 2))\n' };
      assert.equal(trimSuggestion('total = a + b\n    return total\n\ndef other():\n', context), 'total = a + b\n    return total');
      assert.equal(trimSuggestion('return a + b\nprint(1)', context), 'return a + b');
      assert.equal(suggestionComplete('total = a + b\n    return total\n\n', context), true);
      assert.equal(suggestionComplete('total = a + b\n    return', context), false);
    });

    it('drops lines that only repeat what follows the cursor', () => {
      assert.equal(trimSuggestion('x = 1\n    return x', { linePrefix: '    ', suffix: '\n    return x\n' }), 'x = 1');
    });
  });

  describe('the suggestion cache', () => {
    it('answers the same position, and the rest of a suggestion the user is typing through', () => {
      const cache = new SuggestionCache();
      cache.put('doc', 'def add(a, b):\n    ', '\n', 'return a + b');
      assert.equal(cache.get('doc', 'def add(a, b):\n    ', '\n'), 'return a + b');
      assert.equal(cache.get('doc', 'def add(a, b):\n    ret', '\n'), 'urn a + b');
      assert.equal(cache.get('doc', 'def add(a, b):\n    rex', '\n'), undefined, 'typed something else');
      assert.equal(cache.get('doc', 'def add(a, b):\n    return a + b', '\n'), undefined, 'typed it all: nothing left');
      assert.equal(cache.get('other', 'def add(a, b):\n    ', '\n'), undefined);
      assert.equal(cache.get('doc', 'def add(a, b):\n    ', '\nchanged'), undefined, 'the text after the cursor changed');
    });

    it('keeps the most recent suggestions only', () => {
      const cache = new SuggestionCache(3);
      for (let i = 0; i < 5; i++) cache.put('doc', `p${i}`, '', `s${i}`);
      assert.equal(cache.size, 3);
      assert.equal(cache.get('doc', 'p0', ''), undefined);
      assert.equal(cache.get('doc', 'p4', ''), 's4');
    });
  });

  describe('with a template-true Qwen2.5-Coder (real vocabulary and FIM tokens)', function () {
    this.timeout(300_000);
    let settings: Settings;
    let engine: CompletionEngine;
    const request = (prefix: string) => ({ prefix, suffix: '\n\nprint(add(1, 2))\n', path: 'math.py', repo: 'demo', extra: [{ path: 'util.py', text: 'def helper():\n    return 42\n' }] });

    before(async () => {
      settings = testSettings({ model: '', 'completions.model': await likeModel('qwen2.5-coder-0.5b-instruct'), 'completions.maxTokens': 24 });
      engine = new CompletionEngine({ settings: () => settings });
    });
    after(async () => { await engine?.dispose(); });

    /** Steers the random weights through `text`, then allows only the end of the text. */
    async function force(text: string | undefined) {
      if (text === undefined) { engine.tokenBias = undefined; return; }
      const { TokenBias } = await importNodeLlamaCpp();
      const loaded = (await engine.models.acquire());
      loaded.dispose();
      const model = loaded.model.model;
      const script = model.tokenize(text, false);
      let step = 0;
      engine.tokenBias = () => {
        const bias = new TokenBias(model.tokenizer);
        if (step < script.length) bias.set(script[step] as never, { logit: 1000 });
        step++;
        return bias;
      };
    }

    it('finds the model\'s FIM and repository tokens', async () => {
      const lease = await engine.models.acquire();
      try {
        const fim = fimTokensOf(lease.model.model)!;
        const text = (t: number) => lease.model.model.detokenize([t as never], true);
        assert.deepEqual([fim.prefix, fim.suffix, fim.middle, fim.fileSeparator!, fim.repoName!].map(text), ['<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|file_sep|>', '<|repo_name|>']);
      } finally {
        lease.dispose();
      }
    });

    it('suggests the middle, stops at the end of the block, and evaluates only what changed on the next keystroke', async () => {
      await force('total = a + b\n    return total\n\ndef unused():\n    pass\n');
      const first = await engine.complete('math.py', request('def add(a, b):\n    '));
      assert.ok(first && !first.cached);
      assert.equal(first.text, 'total = a + b\n    return total');
      assert.ok(first.generatedTokens < 24, `stopped early at the blank line: ${first.generatedTokens} tokens`);
      assert.ok(first.evaluatedTokens >= first.promptTokens - 1, `a cold prompt is evaluated whole: ${first.evaluatedTokens} of ${first.promptTokens}`);

      // Typing through the suggestion: the rest comes from the cache, with no model work.
      const typed = await engine.complete('math.py', request('def add(a, b):\n    tot'));
      assert.deepEqual([typed?.cached, typed?.text], [true, 'al = a + b\n    return total']);

      // A different keystroke: a new request that reuses the cached prompt up to the cursor.
      await force('x');
      const next = await engine.complete('math.py', request('def add(a, b):\n    #'));
      assert.ok(next && !next.cached);
      const suffixAndMiddle = 12;
      assert.ok(next.evaluatedTokens <= suffixAndMiddle, `${next.evaluatedTokens} of ${next.promptTokens} prompt tokens evaluated`);
      await force(undefined);
    });

    it('a keystroke (abort) ends a running completion at once, and the next one works', async () => {
      settings = { ...settings, 'completions.maxTokens': 400 };
      const controller = new AbortController();
      const pending = engine.complete('math.py', { ...request('def long():\n    '), suffix: '' }, controller.signal);
      setTimeout(() => controller.abort(), 150);
      const started = performance.now();
      assert.equal(await pending, undefined);
      assert.ok(performance.now() - started < 5000);
      settings = { ...settings, 'completions.maxTokens': 24 };
      const after = await engine.complete('math.py', request('def mul(a, b):\n    '));
      assert.ok(after && after.promptTokens > 0);
    });

    it('refuses a model without FIM tokens with a clear message', async () => {
      const noFim = new CompletionEngine({ settings: () => testSettings({ model: '', 'completions.model': storyModel }) });
      try {
        await assert.rejects(noFim.complete('a.py', request('x = ')), (err: unknown) => err instanceof CompletionUnsupportedError && /no fill-in-the-middle tokens.*Qwen2\.5-Coder/.test((err as Error).message));
        // Refused again at once, and the model is not kept in memory for nothing.
        await new Promise((r) => setTimeout(r, 50));
        assert.notEqual(noFim.models.state.kind, 'ready');
        await assert.rejects(noFim.complete('a.py', request('x = 1')), CompletionUnsupportedError);
        assert.notEqual(noFim.models.state.kind, 'loading');
      } finally {
        await noFim.dispose();
      }
    });
    let storyModel = '';
    before(async () => { storyModel = await testModel('stories260K.gguf'); });
  });
});
