import { parentPort } from 'node:worker_threads';
import { loadJsTokenizer, UnsupportedTokenizerError, type JsTokenizer } from './tokenizer';

/**
 * Builds JS tokenizers and counts with them off the extension host's main thread: building one for a
 * 128K-token vocabulary takes seconds of CPU, and long documents take a while to count.
 */
export type WorkerCall = { op: 'kind'; modelPath: string } | { op: 'count'; modelPath: string; text: string };
export type WorkerRequest = WorkerCall & { id: number };
export type WorkerResponse = { id: number; kind?: JsTokenizer['kind']; tokens?: number; error?: string; unsupported?: boolean };

const tokenizers = new Map<string, Promise<JsTokenizer>>();

parentPort?.on('message', async (request: WorkerRequest) => {
  const reply = (response: Omit<WorkerResponse, 'id'>) => parentPort!.postMessage({ id: request.id, ...response });
  try {
    let tokenizer = tokenizers.get(request.modelPath);
    if (!tokenizer) {
      tokenizer = loadJsTokenizer(request.modelPath);
      tokenizers.set(request.modelPath, tokenizer);
    }
    const loaded = await tokenizer;
    if (request.op === 'kind') reply({ kind: loaded.kind });
    else reply({ tokens: loaded.count(request.text) });
  } catch (err) {
    tokenizers.delete(request.modelPath);
    reply({ error: err instanceof Error ? err.message : String(err), unsupported: err instanceof UnsupportedTokenizerError });
  }
});
