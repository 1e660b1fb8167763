import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatEngine } from '../../src/core/chat/engine';
import { ModelFileError } from '../../src/core/errors';
import { checkModelFile } from '../../src/core/modelFiles/ggufCheck';
import { getLlamaFor } from '../../src/core/engine/llama';
import { silentLogger } from '../../src/core/log';
import { ModelManager } from '../../src/core/engine/models';
import { makeSyntheticModel } from '../../tools/synthetic/generate';
import { typeBytes } from '../../tools/synthetic/quantize';
import { SHAPES, parameterCount, type ModelShape, type ShapeName } from '../../tools/synthetic/shapes';
import { sha256File, vocabDir } from '../support/models';
import { testSettings } from '../support/settings';

describe('synthetic GGUF models of realistic size', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-synthetic-')); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // The shapes the benchmarks use run at full size; the catalog's other architectures (Qwen3, Gemma 3 and the
  // 1.5B coder, 30 s each at full size) with two layers: the same tensors, norms and head widths per layer.
  const FULL: readonly ShapeName[] = ['smollm2-135m', 'smollm2-360m', 'qwen2.5-0.5b', 'llama-3.2-1b'];
  for (const shapeName of Object.keys(SHAPES) as ShapeName[]) {
    const overrides = FULL.includes(shapeName) ? undefined : { layers: 2 };
    it(`${shapeName} (q4_0${overrides ? ', 2 layers' : ''}): loads in llama.cpp, generates, and has the real parameter count and size`, async () => {
      const shape: ModelShape = { ...SHAPES[shapeName], ...overrides };
      const file = path.join(dir, `${shapeName}.gguf`);
      const report = await makeSyntheticModel({ shape: shapeName, type: 'q4_0', out: file, seed: 3, vocabDir: vocabDir(), overrides });
      try {
        const info = await checkModelFile(file, { llama: await getLlamaFor('off', silentLogger) });
        assert.equal(info.architecture, shape.architecture);
        assert.equal(info.parameters, parameterCount(shape));
        assert.equal(report.parameters, parameterCount(shape));
        // Every 2-D weight is q4_0 (18 bytes per 32 values); norms and biases stay f32.
        const headDim = shape.headDim ?? shape.embedding / shape.heads;
        const vectors = shape.embedding * (1 + (shape.postNorms ? 4 : 2) * shape.layers)
          + (shape.qkvBias ? shape.layers * (headDim * shape.heads + 2 * headDim * shape.kvHeads) : 0)
          + (shape.qkNorm ? shape.layers * 2 * headDim : 0);
        const expected = typeBytes('q4_0', parameterCount(shape) - vectors) + typeBytes('f32', vectors);
        assert.equal(info.tensorBytes, expected);
        const overhead = fs.statSync(file).size - expected;
        assert.ok(overhead > 0 && overhead < 12_000_000, `header and alignment: ${overhead} bytes`);

        const settings = testSettings({ model: file, contextSize: 256 });
        const manager = new ModelManager({ settings: () => settings, sequences: 1 });
        const chat = new ChatEngine(manager, () => settings);
        try {
          const reply = chat.reply({ id: 'synthetic', messages: [{ role: 'user', content: 'Hello' }] }, { maxTokens: 4, systemPrompt: null });
          for await (const _ of reply) { /* random weights, random text */ }
          const stats = await reply.stats;
          assert.equal(stats.completionTokens, 4, JSON.stringify(stats));
          assert.equal(stats.stopReason, 'maxTokens');
        } finally {
          chat.dispose();
          await manager.dispose();
        }
      } finally {
        fs.rmSync(file, { force: true });
      }
    });
  }

  it('is byte-identical for the same seed and different for another', async () => {
    const a = path.join(dir, 'a.gguf'), b = path.join(dir, 'b.gguf'), c = path.join(dir, 'c.gguf');
    await makeSyntheticModel({ shape: 'smollm2-135m', type: 'q8_0', out: a, seed: 7, vocabDir: vocabDir(), overrides: { layers: 4 } });
    await makeSyntheticModel({ shape: 'smollm2-135m', type: 'q8_0', out: b, seed: 7, vocabDir: vocabDir(), overrides: { layers: 4 } });
    await makeSyntheticModel({ shape: 'smollm2-135m', type: 'q8_0', out: c, seed: 8, vocabDir: vocabDir(), overrides: { layers: 4 } });
    assert.equal(sha256File(a), sha256File(b));
    assert.notEqual(sha256File(a), sha256File(c));
    assert.equal(fs.statSync(a).size, fs.statSync(c).size);
    for (const f of [a, b, c]) fs.rmSync(f);
  });

  it('writes f16 too, with a vocabulary generated when no vocab file is at hand', async () => {
    const file = path.join(dir, 'f16.gguf');
    const report = await makeSyntheticModel({ shape: 'smollm2-135m', type: 'f16', out: file, seed: 1, overrides: { layers: 2 } });
    assert.equal(report.vocabulary, 'generated');
    const info = await checkModelFile(file, { llama: await getLlamaFor('off', silentLogger) });
    assert.equal(info.tensorBytes, parameterCount({ ...SHAPES['smollm2-135m'], layers: 2 }) * 2 - (576 * 5) * 2 + 576 * 5 * 4);
    fs.rmSync(file);
  });

  it('lets the lifecycle refuse a header that claims more memory than the machine has', async () => {
    const file = path.join(dir, 'huge.gguf');
    await makeSyntheticModel({ shape: 'llama-3.2-1b', type: 'f16', out: file, headerOnly: true, overrides: { feedForward: 1_048_576 } });
    assert.ok(fs.statSync(file).size < 10_000_000, 'only a header');
    const settings = testSettings({ model: file });
    const manager = new ModelManager({ settings: () => settings });
    try {
      await assert.rejects(manager.load(), (err: unknown) => {
        assert.ok(err instanceof ModelFileError);
        assert.equal(err.problem, 'too-large');
        assert.match(err.message, /needs about \d+ GB of memory but only .* is free/);
        return true;
      });
      assert.equal(manager.state.kind, 'error');
    } finally {
      await manager.dispose();
    }
  });
});
