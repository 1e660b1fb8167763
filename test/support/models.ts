import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { deriveChatmlModel } from './deriveChatml';

/**
 * Finds the real test models: $NANOCHAT_TEST_MODELS, else ../shared/models beside the checkout,
 * else a cache folder filled from the files' upstream (checked against pinned sha256 values).
 */
export const REPO_ROOT = findRoot(typeof __dirname === 'string' ? __dirname : process.cwd());

function findRoot(start: string): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'nanochat') return dir;
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

const PINNED: Record<string, { sha256: string; url?: string }> = {
  'stories260K.gguf': {
    sha256: '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d',
    url: 'https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf',
  },
  'stories260K-chatml.gguf': { sha256: '4f0907fb7200976c7265149deb2eec129f76ec6b041cfced88767cb4273af2bb' },
};

function candidates(): string[] {
  return [process.env.NANOCHAT_TEST_MODELS, path.resolve(REPO_ROOT, '..', 'shared', 'models'), path.join(REPO_ROOT, '.cache', 'models')]
    .filter((d): d is string => !!d);
}

export function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Path of a test model, downloading (and verifying) it when no local copy exists. */
export async function testModel(name: keyof typeof PINNED | string): Promise<string> {
  for (const dir of candidates()) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  const pin = PINNED[name];
  const cacheDir = path.join(REPO_ROOT, '.cache', 'models');
  const target = path.join(cacheDir, name);
  if (name === 'stories260K-chatml.gguf') {
    fs.mkdirSync(cacheDir, { recursive: true });
    await deriveChatmlModel(await testModel('stories260K.gguf'), target);
  } else if (pin?.url) {
    const response = await fetch(pin.url).catch((err: Error) => {
      throw new Error(`Test model ${name} is not in ${candidates().join(', ')} and could not be downloaded from ${pin.url} (${err.cause ?? err.message}). Set NANOCHAT_TEST_MODELS to a folder that holds it.`);
    });
    if (!response.ok) throw new Error(`Cannot download ${name} from ${pin.url}: HTTP ${response.status}`);
    fs.mkdirSync(cacheDir, { recursive: true });
    fs.writeFileSync(target + '.part', Buffer.from(await response.arrayBuffer()));
    fs.renameSync(target + '.part', target);
  } else {
    throw new Error(`Test model ${name} not found in ${candidates().join(', ')}; set NANOCHAT_TEST_MODELS.`);
  }
  if (pin && sha256File(target) !== pin.sha256) {
    fs.rmSync(target);
    throw new Error(`Test model ${name} does not match its pinned sha256.`);
  }
  return target;
}

/** The vocab-only GGUF folder with llama.cpp's tokenizer test vectors, if present. */
export function vocabDir(): string | undefined {
  return candidates().map((d) => path.join(d, 'vocab')).find((d) => fs.existsSync(d));
}
