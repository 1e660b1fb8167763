import fs from 'node:fs';
import path from 'node:path';
import { makeSyntheticModel } from '../../tools/synthetic/generate';
import { llamaCppSource } from '../../tools/llamaCpp.mjs';
import { REPO_ROOT } from './models';

/**
 * A template-true test model of a catalog entry (`npm run make-model -- --like ID --layers 1`): its
 * architecture, real vocabulary, special tokens and chat template, one layer of random weights (or `layers`).
 * Made once per checkout into .cache/models/synthetic (the same options always give the same bytes).
 */
export async function likeModel(catalogId: string, layers = 1): Promise<string> {
  const file = path.join(REPO_ROOT, '.cache', 'models', 'synthetic', `like-${catalogId}-${layers}l-q4_0-seed1.gguf`);
  if (fs.existsSync(file)) return file;
  const part = `${file}.${process.pid}.part`;
  await makeSyntheticModel({ like: catalogId, type: 'q4_0', out: part, seed: 1, overrides: { layers }, llamaCppModels: path.join(llamaCppSource(), 'models') });
  fs.renameSync(part, file);
  return file;
}
