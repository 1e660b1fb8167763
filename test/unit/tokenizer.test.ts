import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { getLlamaFor } from '../../src/core/engine/llama';
import { silentLogger } from '../../src/core/log';
import { TokenCounter } from '../../src/core/tokens/tokenCounter';
import { countingChunks, loadJsTokenizer, tokenizerFromGgufMetadata, UnsupportedTokenizerError } from '../../src/core/tokens/tokenizer';
import { importNodeLlamaCpp } from '../../src/core/engine/llama';
import { CORPUS_PIECES, corpusOfSize } from '../../src/core/bench/corpus';
import { assertOneLineFailure } from '../support/cli';
import { REPO_ROOT, testModel, vocabDir } from '../support/models';

const run = promisify(execFile);

/** llama.cpp's tokenizer test vectors: `.inp` strings separated by a marker, `.out` ids per line. */
function vectors(gguf: string): Array<{ text: string; ids: number[] }> {
  const inputs = fs.readFileSync(`${gguf}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  if (inputs.at(-1) === '' || inputs.at(-1) === '\n') inputs.pop();
  const outputs = fs.readFileSync(`${gguf}.out`, 'utf8').split('\n');
  return inputs.map((text, i) => ({ text, ids: outputs[i].trim() ? outputs[i].trim().split(/\s+/).map(Number) : [] }));
}

const vocabFiles = (() => {
  const dir = vocabDir();
  return dir ? fs.readdirSync(dir).filter((f) => f.endsWith('.gguf')).sort().map((f) => path.join(dir, f)) : [];
})();

describe('JS tokenizer rebuilt from the GGUF (@huggingface/tokenizers)', () => {
  let llama: Llama;
  before(async function () {
    if (vocabFiles.length === 0) this.skip(); // the vocab GGUFs come with ../shared/models only
    llama = await getLlamaFor('off', silentLogger);
  });

  it('covers the eleven vocabularies of llama.cpp\'s tokenizer tests', () => {
    assert.deepEqual(vocabFiles.map((f) => path.basename(f).replace(/^ggml-vocab-|\.gguf$/g, '')),
      ['bert-bge', 'deepseek-coder', 'deepseek-llm', 'falcon', 'gpt-2', 'llama-bpe', 'llama-spm', 'mpt', 'phi-3', 'refact', 'starcoder']);
  });

  for (const file of vocabFiles) {
    const name = path.basename(file);
    it(`reproduces every test vector of ${name}`, async () => {
      const tokenizer = await loadJsTokenizer(file);
      const cases = vectors(file);
      assert.equal(cases.length, 46);
      const failures = cases.filter((c) => JSON.stringify(tokenizer.encode(c.text)) !== JSON.stringify(c.ids)).map((c) => JSON.stringify(c.text));
      assert.deepEqual(failures, [], `${46 - failures.length}/46`);
    });
  }

  for (const file of [...vocabFiles]) {
    const name = path.basename(file);
    const wordPiece = name.includes('bert');
    it(`agrees with llama.cpp's own tokenizer on a mixed corpus: ${name}`, async () => {
      const js = await loadJsTokenizer(file);
      const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
      try {
        const differing = CORPUS_PIECES.filter((piece) => JSON.stringify(js.encode(piece)) !== JSON.stringify([...model.tokenize(piece, false)]));
        assert.deepEqual(differing, []);
        assert.equal(js.kind, wordPiece ? 'wordpiece' : js.kind);
        const all = corpusOfSize(60_000);
        const expected = [...model.tokenize(all, false)];
        assert.deepEqual(js.encode(all), expected);
        // Counting takes its own path (cached pre-tokens, chunks): it must give the same numbers.
        const miscounted = CORPUS_PIECES.filter((piece) => js.count(piece) !== model.tokenize(piece, false).length);
        assert.deepEqual(miscounted, []);
        assert.equal(js.count(all), expected.length);
        assert.equal(js.count(all + all), model.tokenize(all + all, false).length, 'twice the text, from the caches');
      } finally {
        await model.dispose();
      }
    });
  }

  it('counts text holding each vocabulary\'s user-defined tokens (split out before BPE) as llama.cpp does', async () => {
    const { readGgufFileInfo } = await importNodeLlamaCpp();
    const checked: string[] = [];
    for (const file of vocabFiles) {
      const meta = (await readGgufFileInfo(file, { logWarnings: false, readTensorInfo: false })).metadata as unknown as { tokenizer: { ggml: { tokens: string[]; token_type?: number[] } } };
      const { tokens, token_type: types = [] } = meta.tokenizer.ggml;
      const userDefined = tokens.filter((_, id) => types[id] === 4);
      if (userDefined.length === 0) continue;
      checked.push(`${path.basename(file)}: ${userDefined.length}`);
      // Each user-defined token inside words, after spaces and at line ends, a few of them per line.
      const lines: string[] = [];
      for (let i = 0; i < userDefined.length; i += 3) lines.push(`x${userDefined[i]}y ${userDefined[i + 1] ?? ''} Word${userDefined[i + 2] ?? ''}\n\tcode(${i});`);
      const text = lines.join('\n') + '\n' + corpusOfSize(8_000);
      const js = await loadJsTokenizer(file);
      const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
      try {
        assert.equal(js.count(text), model.tokenize(text, false).length, path.basename(file));
        assert.equal(js.count(text), js.encode(text).length);
      } finally {
        await model.dispose();
      }
    }
    assert.ok(checked.length >= 3, checked.join(', '));
  });

  it('tokenizes and counts random Unicode text exactly as llama.cpp does, for every vocabulary', async () => {
    // Every kind of space (which llama.cpp's regexes and WordPiece treat apart), controls, marks,
    // lone surrogates, CJK in and out of the BMP, Hangul, emoji sequences, punctuation and digits.
    const pool = ['a', 'Z', 'é', 'ß', 'İ', 'ﬁ', 'Ω', 'я', '7', '٣', '½', '.', ',', '(', '»', '_', '\'s', '\'LL', ' ', '  ', '\t', '\n', '\r\n', '\n\n', '\v', '\f',
      '\u00A0', '\u2003', '\u3000', '\u2028', '\uFEFF', '\u200B', '\u200D', '\u0000', '\u001F', '\u0085', '\u0301', '\u20E3', '\uFE0F', '中', '文', '𠀀', '한', '\u1100',
      '\uFFFD', '\uD800', 'ア', '🙂', '👩‍💻', '🇫🇷', 'ก', 'ु', 'א', 'ب', '<s>', '</s>', '[CLS]', 'word', 'Token', 'count()', '    '];
    let seed = 11;
    const random = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
    const sample = (length: number) => Array.from({ length }, () => pool[Math.floor(random() * pool.length)]).join('');
    const texts = Array.from({ length: 300 }, () => sample(1 + Math.floor(random() * 40)));
    const long = Array.from({ length: 40 }, () => sample(60) + '\nline(x);\n').join('');
    assert.ok(long.length > 4000);
    for (const file of vocabFiles) {
      const js = await loadJsTokenizer(file);
      const model = await llama.loadModel({ modelPath: file, vocabOnly: true });
      try {
        const wrong = texts.filter((text) => JSON.stringify(js.encode(text)) !== JSON.stringify([...model.tokenize(text, false)])).map((text) => JSON.stringify(text));
        assert.deepEqual(wrong.slice(0, 5), [], `${path.basename(file)}: ${wrong.length} of ${texts.length} differ`);
        const miscounted = texts.filter((text) => js.count(text) !== model.tokenize(text, false).length).map((text) => JSON.stringify(text));
        assert.deepEqual(miscounted.slice(0, 5), [], `${path.basename(file)}: ${miscounted.length} counts differ`);
        assert.equal(js.count(long), model.tokenize(long, false).length, `${path.basename(file)}: a long text, counted in chunks`);
      } finally {
        await model.dispose();
      }
    }
  });

  it('prefers a tokenizer.json beside the model over the GGUF vocabulary', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-tokjson-'));
    try {
      const story = await testModel('stories260K.gguf');
      const copy = path.join(dir, 'model.gguf');
      fs.copyFileSync(story, copy);
      // Put GPT-2's tokenizer beside the story model: the counts must follow the tokenizer.json.
      const gpt2 = vocabFiles.find((f) => f.includes('gpt-2'))!;
      const { readGgufFileInfo } = await importNodeLlamaCpp();
      const meta = (await readGgufFileInfo(gpt2, { logWarnings: false, readTensorInfo: false })).metadata as unknown as { tokenizer: { ggml: Parameters<typeof tokenizerFromGgufMetadata>[0] } };
      fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerFromGgufMetadata(meta.tokenizer.ggml).json));
      const beside = await loadJsTokenizer(copy);
      assert.equal(beside.source, 'tokenizer.json');
      const text = 'Hello world, a tokenizer.json beside the model wins.';
      assert.deepEqual(beside.encode(text), (await loadJsTokenizer(gpt2)).encode(text));
      assert.notDeepEqual(beside.encode(text), (await loadJsTokenizer(story)).encode(text));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts in cached chunks exactly as a whole-text encode, also after an edit', async () => {
    for (const file of vocabFiles.filter((f) => /llama-bpe|llama-spm|deepseek-llm/.test(f))) {
      const js = await loadJsTokenizer(file);
      const text = corpusOfSize(120_000);
      assert.ok(countingChunks(text).length > 20);
      assert.equal(countingChunks(text).join(''), text);
      assert.equal(js.count(text), js.encode(text).length, path.basename(file));
      const edited = `${text.slice(0, 50_000)}Inserted words, and\n  an indented line.\n${text.slice(50_000)}`;
      assert.equal(js.count(edited), js.encode(edited).length, `${path.basename(file)} after an edit`);
    }
  });
});

describe('TokenCounter and `npm run tokens`', () => {
  let story: string;
  before(async () => { story = await testModel('stories260K.gguf'); });

  it('counts a real model\'s text with the JS engine, exactly as llama.cpp does', async () => {
    const counter = new TokenCounter();
    try {
      assert.equal(await counter.engineFor(story), 'js');
      const text = corpusOfSize(20_000);
      const js = await counter.count(story, text);
      const llama = await counter.count(story, text, 'llama');
      assert.deepEqual(js, { tokens: llama.tokens, engine: 'js' });
      assert.equal(llama.engine, 'llama');
    } finally {
      await counter.dispose();
    }
  });

  it('counts on a worker thread (the bundled dist/tokenWorker.js) with the same result', async () => {
    execFileSync(process.execPath, ['esbuild.mjs'], { cwd: REPO_ROOT });
    const counter = new TokenCounter({ workerScript: path.join(REPO_ROOT, 'dist', 'tokenWorker.js') });
    try {
      const text = corpusOfSize(50_000);
      const viaWorker = await counter.count(story, text);
      const direct = await new TokenCounter().count(story, text);
      assert.deepEqual(viaWorker, direct);
      assert.equal(await counter.engineFor(story), 'js');
      const bert = vocabFiles.find((f) => f.includes('bert'));
      if (bert) assert.equal(await counter.engineFor(bert), 'js', 'the worker builds WordPiece too');
    } finally {
      await counter.dispose();
    }
  });

  it('falls back to llama.cpp for a tokenizer the JS side does not reproduce, and says so', async function () {
    // llama.cpp knows the "bloom" pre-tokenizer; the JS side does not: the GPT-2 vocabulary relabelled.
    const gpt2 = vocabFiles.find((f) => f.includes('gpt-2'));
    if (!gpt2) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-bloom-'));
    const file = path.join(dir, 'bloom-vocab.gguf');
    const bytes = fs.readFileSync(gpt2!);
    const key = Buffer.from('tokenizer.ggml.pre');
    const at = bytes.indexOf(key) + key.length + 4 + 8; // the key, its value type, the string length
    assert.equal(bytes.toString('utf8', at, at + 5), 'gpt-2');
    bytes.write('bloom', at, 'utf8');
    fs.writeFileSync(file, bytes);
    const counter = new TokenCounter();
    try {
      await assert.rejects(loadJsTokenizer(file), UnsupportedTokenizerError);
      assert.equal(await counter.engineFor(file), 'llama');
      const text = 'Hello world, counted by llama.cpp itself.';
      const model = await (await getLlamaFor('off', silentLogger)).loadModel({ modelPath: file, vocabOnly: true });
      try {
        assert.deepEqual(await counter.count(file, text), { tokens: model.tokenize(text, false).length, engine: 'llama' });
      } finally {
        await model.dispose();
      }
    } finally {
      await counter.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints exactly one JSON object, and a one-line error for a bad model', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-tokens-'));
    try {
      const a = path.join(dir, 'a.txt');
      const b = path.join(dir, 'b.py');
      fs.writeFileSync(a, 'Once upon a time, there was a little cat.');
      fs.writeFileSync(b, 'def add(a, b):\n    return a + b\n');
      const cli = ['--import', 'tsx', path.join(REPO_ROOT, 'tools', 'cli', 'tokens.ts')];
      const { stdout } = await run(process.execPath, [...cli, '--model', story, '--json', a, b], { cwd: REPO_ROOT });
      const report = JSON.parse(stdout);
      assert.deepEqual(Object.keys(report), ['model', 'engine', 'files']);
      assert.equal(report.engine, 'js');
      const counter = new TokenCounter();
      assert.deepEqual(report.files, [
        { path: a, tokens: (await counter.count(story, fs.readFileSync(a, 'utf8'), 'llama')).tokens, chars: 41 },
        { path: b, tokens: (await counter.count(story, fs.readFileSync(b, 'utf8'), 'llama')).tokens, chars: 32 },
      ]);
      await counter.dispose();
      const llama = JSON.parse((await run(process.execPath, [...cli, '--model', story, '--engine', 'llama', '--json', a], { cwd: REPO_ROOT })).stdout);
      assert.equal(llama.engine, 'llama');
      assert.equal(llama.files[0].tokens, report.files[0].tokens);

      const bad = path.join(dir, 'bad.gguf');
      fs.writeFileSync(bad, 'not a model');
      await assertOneLineFailure(run(process.execPath, [...cli, '--model', bad, '--json', a], { cwd: REPO_ROOT }), /not a GGUF model/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
