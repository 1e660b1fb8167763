import type { LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { checkModelFile } from './ggufCheck';
import { getLlamaFor } from './llama';
import { silentLogger, type Logger } from './log';
import type { ModelManager } from './models';

export type TokenizerEngine = 'llama';

/**
 * Exact token counts for any model file without loading its weights: the loaded model's own
 * tokenizer when it is that file, else a vocabulary-only load of the file (checked first), kept
 * for reuse. Recent counts are cached, since VS Code asks for the same texts again and again.
 */
export class TokenCounter {
  private readonly vocabs = new Map<string, Promise<LlamaModel>>();
  private readonly cache = new Map<string, number>();
  private static readonly CACHE_ENTRIES = 2000;

  constructor(private readonly models: ModelManager, private readonly log: Logger = silentLogger) {}

  readonly engine: TokenizerEngine = 'llama';

  async count(modelPath: string, text: string): Promise<number> {
    const key = `${modelPath}\u0000${text}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const tokenizer = await this.tokenizerFor(modelPath);
    const count = tokenizer(text, false).length;
    this.cache.set(key, count);
    if (this.cache.size > TokenCounter.CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    return count;
  }

  async tokenizerFor(modelPath: string): Promise<LlamaModel['tokenizer']> {
    const loaded = this.models.model;
    if (loaded && !loaded.disposed && loaded.info.path === modelPath) return loaded.model.tokenizer;
    let vocab = this.vocabs.get(modelPath);
    if (!vocab) {
      vocab = (async () => {
        const llama = await getLlamaFor('off', this.log);
        await checkModelFile(modelPath, { llama, allowVocabOnly: true, freeMemoryBytes: Number.MAX_SAFE_INTEGER });
        return llama.loadModel({ modelPath, vocabOnly: true });
      })();
      this.vocabs.set(modelPath, vocab);
      vocab.catch(() => this.vocabs.delete(modelPath));
    }
    return (await vocab).tokenizer;
  }

  async dispose(): Promise<void> {
    const vocabs = [...this.vocabs.values()];
    this.vocabs.clear();
    for (const v of vocabs) await v.then((m) => m.dispose(), () => undefined);
  }
}
