// npm run make-model -- --shape smollm2-135m|smollm2-360m|qwen2.5-0.5b|qwen2.5-coder-1.5b|qwen3-0.6b|gemma-3-1b|llama-3.2-1b
//                       [--type f16|q8_0|q4_0] [--out FILE] [--seed N]
// npm run make-model -- --like <catalog id> [--layers N] [--type …] [--out FILE] [--seed N]
// Writes a synthetic GGUF of a real model's size (random weights, real vocabulary) for benchmarks. With
// --like, the catalog model's architecture and shape, its real vocabulary and special tokens and its own
// chat template (from the llama.cpp source node-llama-cpp ships); --layers N makes a test-size copy.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes } from '../../src/core/modelFiles/ggufCheck';
import { makeSyntheticModel } from '../synthetic/generate';
import { LIKE } from '../synthetic/like';
import { SHAPES, type ShapeName } from '../synthetic/shapes';
import type { WeightType } from '../synthetic/quantize';
import { REPO_ROOT, vocabDir } from '../../test/support/models';
import { llamaCppSource } from '../llamaCpp.mjs';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    shape: { type: 'string' }, like: { type: 'string' }, layers: { type: 'string' },
    type: { type: 'string', default: 'q4_0' }, out: { type: 'string' }, seed: { type: 'string', default: '1' },
  } });
  const shape = values.shape as ShapeName | undefined;
  if (values.like === undefined && (!shape || !(shape in SHAPES))) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')} (or --like <catalog id>)`);
  if (values.like !== undefined && !(values.like in LIKE)) throw new Error(`--like must be one of ${Object.keys(LIKE).join(', ')}`);
  if (!['f16', 'q8_0', 'q4_0'].includes(values.type!)) throw new Error('--type must be f16, q8_0 or q4_0');
  const layers = values.layers === undefined ? undefined : Number(values.layers);
  if (layers !== undefined && !(Number.isInteger(layers) && layers >= 1)) throw new Error('--layers must be a whole number ≥ 1');
  const name = values.like ? `like-${values.like}${layers ? `-${layers}l` : ''}` : shape;
  const out = values.out ?? path.join(REPO_ROOT, '.cache', 'models', 'synthetic', `${name}-${values.type}-seed${values.seed}.gguf`);
  const started = performance.now();
  const report = await makeSyntheticModel({
    shape, like: values.like, type: values.type as WeightType, out, seed: Number(values.seed), vocabDir: vocabDir(),
    llamaCppModels: values.like ? path.join(llamaCppSource(), 'models') : undefined,
    overrides: layers ? { layers } : undefined,
  });
  console.log(`${report.file}: ${formatBytes(report.bytes)}, ${(report.parameters / 1e6).toFixed(1)}M parameters, vocabulary from ${report.vocabulary}, written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err) => { process.stderr.write(`make-model: ${err instanceof Error ? err.message : err}\n`); process.exit(1); });
