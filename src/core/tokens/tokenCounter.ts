import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { errorMessage } from '../errors';
import { checkModelFile } from '../modelFiles/ggufCheck';
import { getLlamaFor, loadModelLean } from '../engine/llama';
import { AsyncMemo } from '../memo';
import { silentLogger, type Logger } from '../log';
import type { ModelManager } from '../engine/models';
import { loadJsTokenizer, UnsupportedTokenizerError, type JsTokenizer } from './tokenizer';
import type { WorkerCall, WorkerRequest, WorkerResponse } from './tokenWorker';

type Kind = JsTokenizer['kind'];
type Pending = { resolve: (r: WorkerResponse) => void; reject: (e: Error) => void };

export type TokenizerEngine = 'js' | 'llama';
/** Which tokenizer counted: exact ones (the JS rebuild, llama.cpp, a server's /tokenize) or a labelled estimate. */
export interface TokenCount { tokens: number; engine: TokenizerEngine | 'server' | 'estimate' }

/** How a count names its tokenizer to the user. */
export function engineLabel(engine: TokenCount['engine']): string {
  return { js: 'JS tokenizer', llama: 'llama.cpp tokenizer', server: 'server\'s tokenizer', estimate: 'estimate (about 4 characters per token; the server cannot count)' }[engine];
}

export interface TokenCounterOptions {
  models?: ModelManager;
  log?: Logger;
  /** The counting worker (dist/tokenWorker.js). With it, JS tokenizers are built and run on that thread only. */
  workerScript?: string;
}

/**
 * Exact token counts for any model file, never loading its weights. The `auto` engine is the JS
 * tokenizer (@huggingface/tokenizers rebuilt from the GGUF; cached per pre-token and per chunk) for
 * byte-level BPE, SentencePiece BPE and WordPiece models, where it matches llama.cpp token for token;
 * anything it cannot reproduce is counted by llama.cpp itself (a vocabulary-only load). Given a worker script,
 * the JS tokenizer lives on that worker thread, so the extension host never stalls on it.
 */
export class TokenCounter {
  private readonly js = new AsyncMemo<string, JsTokenizer | undefined>();
  private readonly kinds = new AsyncMemo<string, Kind | undefined>();
  private readonly vocabs = new AsyncMemo<string, LlamaModel>();
  private readonly llamaCache = new Map<string, number>();
  private worker: { worker: Worker; pending: Map<number, Pending>; next: number } | undefined;
  private readonly log: Logger;

  constructor(private readonly options: TokenCounterOptions = {}) {
    this.log = options.log ?? silentLogger;
  }

  /** The engine `auto` uses for this model. */
  async engineFor(modelPath: string): Promise<TokenizerEngine> {
    const kind = await this.jsKind(modelPath);
    return kind ? 'js' : 'llama';
  }

  async count(modelPath: string, text: string, engine: TokenizerEngine | 'auto' = 'auto'): Promise<TokenCount> {
    const chosen = engine === 'auto' ? await this.engineFor(modelPath) : engine;
    if (chosen === 'llama') return { tokens: await this.countWithLlama(modelPath, text), engine: 'llama' };
    if (!await this.jsKind(modelPath)) {
      throw new UnsupportedTokenizerError(`The JS tokenizer cannot reproduce the tokenizer of ${path.basename(modelPath)}; use the llama engine.`);
    }
    if (this.options.workerScript) {
      const { tokens } = await this.ask({ op: 'count', modelPath, text });
      return { tokens: tokens!, engine: 'js' };
    }
    return { tokens: (await this.jsTokenizer(modelPath))!.count(text), engine: 'js' };
  }

  /** The JS tokenizer's family for a model, or undefined when only llama.cpp can count it. */
  private jsKind(modelPath: string): Promise<Kind | undefined> {
    return this.kinds.get(modelPath, async () => {
        await checkModelFile(modelPath, { allowVocabOnly: true, freeMemoryBytes: Number.MAX_SAFE_INTEGER });
        if (!this.options.workerScript) return (await this.jsTokenizer(modelPath))?.kind;
        const started = performance.now();
        const response = await this.ask({ op: 'kind', modelPath }).catch((err: Error & { unsupported?: boolean }) => {
          if (!err.unsupported) throw err;
          this.log.info(`${err.message} Counting ${path.basename(modelPath)} with llama.cpp.`);
          return undefined;
        });
        if (response) this.log.info(`JS tokenizer for ${path.basename(modelPath)} (${response.kind}) ready in ${Math.round(performance.now() - started)} ms on the worker.`);
        return response?.kind;
    });
  }

  private jsTokenizer(modelPath: string): Promise<JsTokenizer | undefined> {
    return this.js.get(modelPath, async () => {
        await checkModelFile(modelPath, { allowVocabOnly: true, freeMemoryBytes: Number.MAX_SAFE_INTEGER });
        try {
          const started = performance.now();
          const tokenizer = await loadJsTokenizer(modelPath);
          this.log.info(`JS tokenizer for ${path.basename(modelPath)} (${tokenizer.kind}, from ${tokenizer.source}) ready in ${Math.round(performance.now() - started)} ms.`);
          return tokenizer;
        } catch (err) {
          if (!(err instanceof UnsupportedTokenizerError)) throw err;
          this.log.info(`${errorMessage(err)} Counting ${path.basename(modelPath)} with llama.cpp.`);
          return undefined;
        }
    });
  }

  private async countWithLlama(modelPath: string, text: string): Promise<number> {
    const key = `${modelPath}\u0000${text}`;
    const hit = this.llamaCache.get(key);
    if (hit !== undefined) return hit;
    const loaded = this.options.models?.model;
    let tokenizer: LlamaModel['tokenizer'];
    if (loaded && !loaded.disposed && loaded.info.path === modelPath) {
      tokenizer = loaded.model.tokenizer;
    } else {
      const vocab = await this.vocabs.get(modelPath, async () => {
        const llama = await getLlamaFor('off', this.log);
        await checkModelFile(modelPath, { llama, allowVocabOnly: true, freeMemoryBytes: Number.MAX_SAFE_INTEGER });
        return loadModelLean(llama, { modelPath, vocabOnly: true });
      });
      tokenizer = vocab.tokenizer;
    }
    const count = tokenizer(text, false).length;
    if (this.llamaCache.size >= 2000) this.llamaCache.delete(this.llamaCache.keys().next().value!);
    this.llamaCache.set(key, count);
    return count;
  }

  private ask(request: WorkerCall): Promise<WorkerResponse> {
    if (!this.worker) {
      const worker = new Worker(this.options.workerScript!);
      const state = { worker, pending: new Map<number, Pending>(), next: 0 };
      worker.on('message', (response: WorkerResponse) => {
        const waiter = state.pending.get(response.id);
        state.pending.delete(response.id);
        if (response.error === undefined) waiter?.resolve(response);
        else waiter?.reject(Object.assign(new Error(response.error), { unsupported: response.unsupported }));
      });
      worker.on('error', (err) => {
        for (const w of state.pending.values()) w.reject(err);
        state.pending.clear();
        if (this.worker === state) this.worker = undefined;
      });
      worker.unref();
      this.worker = state;
    }
    const state = this.worker;
    const id = state.next++;
    return new Promise((resolve, reject) => {
      state.pending.set(id, { resolve, reject });
      const message: WorkerRequest = { ...request, id };
      state.worker.postMessage(message);
    });
  }

  async dispose(): Promise<void> {
    await this.worker?.worker.terminate();
    this.worker = undefined;
    for (const v of this.vocabs.drain()) await v.then((m) => m.dispose(), () => undefined);
  }
}
