// npm run make-model -- --shape smollm2-135m|smollm2-360m|qwen2.5-0.5b|llama-3.2-1b --type f16|q8_0|q4_0 [--out FILE] [--seed N]
// Writes a synthetic GGUF of a real model's size (random weights, real vocabulary) for benchmarks.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatBytes } from '../../src/core/modelFiles/ggufCheck';
import { makeSyntheticModel } from '../synthetic/generate';
import { SHAPES, type ShapeName } from '../synthetic/shapes';
import type { WeightType } from '../synthetic/quantize';
import { REPO_ROOT, vocabDir } from '../../test/support/models';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { shape: { type: 'string' }, type: { type: 'string', default: 'q4_0' }, out: { type: 'string' }, seed: { type: 'string', default: '1' } } });
  const shape = values.shape as ShapeName;
  if (!shape || !(shape in SHAPES)) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
  if (!['f16', 'q8_0', 'q4_0'].includes(values.type!)) throw new Error('--type must be f16, q8_0 or q4_0');
  const out = values.out ?? path.join(REPO_ROOT, '.cache', 'models', 'synthetic', `${shape}-${values.type}-seed${values.seed}.gguf`);
  const started = performance.now();
  const report = await makeSyntheticModel({ shape, type: values.type as WeightType, out, seed: Number(values.seed), vocabDir: vocabDir() });
  console.log(`${report.file}: ${formatBytes(report.bytes)}, ${(report.parameters / 1e6).toFixed(1)}M parameters, vocabulary from ${report.vocabulary}, written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err) => { process.stderr.write(`make-model: ${err instanceof Error ? err.message : err}\n`); process.exit(1); });
