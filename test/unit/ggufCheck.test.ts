import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ModelFileError } from '../../src/core/errors';
import { checkModelFile } from '../../src/core/modelFiles/ggufCheck';
import { ModelManager } from '../../src/core/engine/models';
import { TokenCounter } from '../../src/core/tokens/tokenCounter';
import { loadJsTokenizer } from '../../src/core/tokens/tokenizer';
import { runBenchmark } from '../../src/core/bench/bench';
import { testSettings } from '../support/settings';
import { execFileSync } from 'node:child_process';
import { getLlamaFor, importNodeLlamaCpp } from '../../src/core/engine/llama';
import { readGgufInfo } from '../../src/core/modelFiles/ggufReader';
import { silentLogger } from '../../src/core/log';
import { writeBadFiles, type BadFile } from '../support/badFiles';
import { REPO_ROOT, testModel, vocabDir } from '../support/models';

describe('checkModelFile', () => {
  let dir: string;
  let good: string;
  let bad: BadFile[];
  let llama: Llama;

  before(async () => {
    good = await testModel('stories260K.gguf');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-bad-'));
    bad = writeBadFiles(dir, good);
    llama = await getLlamaFor('off', silentLogger);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('describes a real model without loading it', async () => {
    const info = await checkModelFile(good, { llama });
    assert.equal(info.architecture, 'llama');
    assert.equal(info.ggufVersion, 3);
    assert.equal(info.sizeBytes, fs.statSync(good).size);
    assert.equal(info.trainContextSize, 2048);
    assert.equal(info.hasChatTemplate, false);
    assert.ok(info.tensorBytes > 1_000_000 && info.tensorBytes < info.sizeBytes, `tensor bytes ${info.tensorBytes}`);
    assert.ok(info.parameters! > 200_000 && info.parameters! < 400_000, `parameters ${info.parameters}`);
    const chatml = await checkModelFile(await testModel('stories260K-chatml.gguf'), { llama });
    assert.equal(chatml.hasChatTemplate, true);
    assert.equal(chatml.name, 'stories260K-chatml');
  });

  it('without a llama.cpp of its own, loads no native binary and forks no process (a fresh process, as the bench and the library call it)', () => {
    const script = `
      const cp = require('node:child_process'); const fs = require('node:fs');
      let forks = 0; const fork = cp.fork; cp.fork = (...a) => { forks++; return fork(...a); }; require('node:module').syncBuiltinESMExports();
      const { checkModelFile } = require('./src/core/modelFiles/ggufCheck');
      checkModelFile(process.argv[1]).then((info) => {
        const addons = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.endsWith('.node')).length;
        console.log(JSON.stringify({ forks, addons, parameters: info.parameters, trainContextSize: info.trainContextSize }));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '-e', script, good], { cwd: REPO_ROOT, encoding: 'utf8' }).trim().split('\n').pop()!);
    assert.deepEqual(out, { forks: 0, addons: 0, parameters: out.parameters, trainContextSize: 2048 });
    return (async () => {
      const { GgufInsights } = await importNodeLlamaCpp();
      assert.equal(out.parameters, (await GgufInsights.from((await readGgufInfo(good)).info, llama)).totalParameters, "the same count as node-llama-cpp's");
    })();
  });

  it('gives each broken file its typed error with a readable sentence', async () => {
    const seen: string[] = [];
    for (const b of bad) {
      await assert.rejects(checkModelFile(b.file, { llama }), (err: unknown) => {
        assert.ok(err instanceof ModelFileError, `${b.name}: ${err}`);
        assert.ok(b.expect.includes(err.problem), `${b.name}: got ${err.problem} (${err.message}), expected ${b.expect.join('|')}`);
        assert.ok(err.message.length > 20 && !/\n\s+at /.test(err.message), `${b.name}: message "${err.message}"`);
        seen.push(`${b.name}: ${err.problem}`);
        return true;
      });
    }
    assert.equal(seen.length, bad.length);
  });

  it('refuses a relative path, a directory and a vocabulary-only file', async () => {
    await assert.rejects(checkModelFile('models/x.gguf'), { problem: 'missing' });
    await assert.rejects(checkModelFile(dir), { problem: 'not-a-file' });
    const vocab = vocabDir();
    if (vocab) await assert.rejects(checkModelFile(path.join(vocab, 'ggml-vocab-llama-spm.gguf')), { problem: 'no-weights' });
  });

  it("counts a real vocabulary without making its strings (the check's parse is lean)", async function () {
    const vocab = vocabDir();
    if (!vocab) this.skip();
    const file = path.join(vocab!, 'ggml-vocab-llama-bpe.gguf');
    type Ggml = { tokens: unknown[]; merges: unknown[] };
    const full = (await readGgufInfo(file)).info.metadata.tokenizer.ggml as unknown as Ggml;
    const lean = (await readGgufInfo(file, { lean: true })).info.metadata.tokenizer.ggml as unknown as Ggml;
    assert.ok(full.tokens.length > 100_000 && typeof full.tokens[0] === 'string', `${full.tokens.length} tokens`);
    assert.equal(lean.tokens.length, full.tokens.length);
    assert.equal(lean.merges.length, full.merges.length);
    assert.equal(lean.tokens.filter((t) => t !== undefined).length, 0, 'no token string was made');
    assert.equal((await checkModelFile(file, { allowVocabOnly: true })).vocabularySize, full.tokens.length);
  });

  it('refuses a model larger than the free memory', async () => {
    await assert.rejects(checkModelFile(good, { llama, freeMemoryBytes: 100_000 }), (err: ModelFileError) => {
      assert.equal(err.problem, 'too-large');
      assert.match(err.message, /needs about .* but only 100 KB is free/);
      return true;
    });
  });

  it('never lets a crafted length field reach native code: every path that reads a GGUF refuses it', async () => {
    // Before the bounded walk, a 2.8 GB string length made node-llama-cpp's reader call fs.read past
    // int32, and Node aborted the whole process (exit 134): this test would not have finished.
    execFileSync(process.execPath, ['esbuild.mjs'], { cwd: REPO_ROOT });
    const crafted = bad.filter((b) => /past-int32|past-file|2-64|dimensions-99|shape-huge/.test(b.name));
    assert.ok(crafted.length >= 8, `${crafted.length} crafted files`);
    const inline = new TokenCounter();
    const worker = new TokenCounter({ workerScript: path.join(REPO_ROOT, 'dist', 'tokenWorker.js') });
    let settings = testSettings({});
    const manager = new ModelManager({ settings: () => settings });
    try {
      for (const b of crafted) {
        const refused = (what: string) => (err: unknown) => {
          assert.ok(err instanceof ModelFileError, `${b.name} via ${what}: ${err}`);
          assert.ok(b.expect.includes(err.problem), `${b.name} via ${what}: ${err.problem}`);
          return true;
        };
        await assert.rejects(checkModelFile(b.file, { llama }), refused('checkModelFile'));
        await assert.rejects(loadJsTokenizer(b.file), refused('the JS tokenizer'));
        await assert.rejects(inline.count(b.file, 'hello'), refused('counting (JS engine)'));
        await assert.rejects(inline.count(b.file, 'hello', 'llama'), refused('counting (llama.cpp engine)'));
        await assert.rejects(worker.count(b.file, 'hello'), refused('counting on the worker'));
        settings = testSettings({ model: b.file });
        await assert.rejects(manager.load(b.file), refused('loading'));
        await assert.rejects(runBenchmark({ modelPath: b.file, quick: true }), refused('the benchmark'));
      }
    } finally {
      await inline.dispose();
      await worker.dispose();
      await manager.dispose();
    }
  });

  it('is the only caller of node-llama-cpp\'s GGUF parser in src/ and tools/', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        // nodeLlamaCppExports.ts lists the name among those nanochat imports; it calls nothing.
        else if (/\.ts$/.test(entry.name) && !file.endsWith(path.join('modelFiles', 'ggufReader.ts')) && !file.endsWith(path.join('engine', 'nodeLlamaCppExports.ts')) && /readGgufFileInfo/.test(fs.readFileSync(file, 'utf8'))) offenders.push(path.relative(REPO_ROOT, file));
      }
    };
    walk(path.join(REPO_ROOT, 'src'));
    walk(path.join(REPO_ROOT, 'tools'));
    assert.deepEqual(offenders, []);
  });
});
