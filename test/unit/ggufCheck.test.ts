import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ModelFileError } from '../../src/core/errors';
import { checkModelFile } from '../../src/core/modelFiles/ggufCheck';
import { getLlamaFor } from '../../src/core/engine/llama';
import { silentLogger } from '../../src/core/log';
import { writeBadFiles, type BadFile } from '../support/badFiles';
import { testModel, vocabDir } from '../support/models';

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

  it('refuses a model larger than the free memory', async () => {
    await assert.rejects(checkModelFile(good, { llama, freeMemoryBytes: 100_000 }), (err: ModelFileError) => {
      assert.equal(err.problem, 'too-large');
      assert.match(err.message, /needs about .* but only 100 KB is free/);
      return true;
    });
  });
});
