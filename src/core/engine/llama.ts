import type { Llama, LlamaGpuType } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { Settings } from '../settings';
import type { Logger } from '../log';
import { AsyncMemo } from '../memo';

export type NodeLlamaCpp = typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' } });
export type Backend = 'cpu' | 'cuda' | 'vulkan' | 'metal';

let module: Promise<NodeLlamaCpp> | undefined;

/** node-llama-cpp is ESM-only and heavy: import it on first use, never at activation. */
export function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  module ??= import('node-llama-cpp');
  return module;
}

const instances = new AsyncMemo<Settings['gpu'], Llama>();

/**
 * One Llama instance per GPU setting. The extension host never compiles llama.cpp (`build: 'never'`):
 * it uses the prebuilt binaries, and when the requested GPU backend is missing it falls back to the
 * CPU and says so in the log.
 */
export function getLlamaFor(gpu: Settings['gpu'], log: Logger): Promise<Llama> {
  return instances.get(gpu, () => createLlama(gpu, log));
}

async function createLlama(gpu: Settings['gpu'], log: Logger): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  const started = performance.now();
  const common = {
    build: 'never' as const,
    logLevel: LlamaLogLevel.error,
    logger: (level: unknown, message: string) => {
      const line = message.trim();
      // node-llama-cpp's memory-estimation dry run logs this for vocab-only files; it is harmless.
      if (line && !/missing tensor 'token_embd\.weight'/.test(line)) log.debug(`llama.cpp: ${line}`);
    },
  };
  const wanted: LlamaGpuType | 'auto' = gpu === 'off' ? false : gpu;
  let llama: Llama;
  try {
    llama = await getLlama({ ...common, gpu: wanted });
  } catch (err) {
    if (wanted === false) throw err;
    log.warn(`GPU backend "${gpu}" is not available here (${err instanceof Error ? err.message : err}); using the CPU.`);
    llama = await getLlama({ ...common, gpu: false });
  }
  log.info(`llama.cpp ready in ${Math.round(performance.now() - started)} ms: backend ${backendOf(llama)}, ${llama.cpuMathCores} math cores`);
  return llama;
}

/** Disposes every llama.cpp instance (the extension's deactivate, after models and tokenizers). */
export async function disposeLlamas(): Promise<void> {
  for (const llama of instances.drain()) await llama.then((l) => l.dispose(), () => undefined);
}

export function backendOf(llama: Llama): Backend {
  return llama.gpu === false ? 'cpu' : llama.gpu;
}
