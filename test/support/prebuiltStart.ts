// One start of llama.cpp as the extension makes it, in a process of its own (a native addon loads once
// per process): `node --import tsx test/support/prebuiltStart.ts <model.gguf>`. Counts the binary tests
// node-llama-cpp forks (its testBindingBinary.js child), loads the model, generates greedily, waits for
// whatever nanochat remembers after the start, and prints one JSON line.
import childProcess from 'node:child_process';
import nodeModule from 'node:module';
import path from 'node:path';
import { configureLlama, getLlamaFor, importNodeLlamaCpp, loadModelLean } from '../../src/core/engine/llama';
import type { Logger } from '../../src/core/log';
import { REPO_ROOT } from './models';

const binaryTests: string[] = [];
const fork = childProcess.fork;
// node-llama-cpp imports `fork` by name: syncing the built-in module's ESM exports reaches that binding.
(childProcess as { fork: typeof fork }).fork = ((modulePath: string | URL, ...rest: unknown[]) => {
  if (/testBindingBinary/.test(String(modulePath))) binaryTests.push(String(modulePath));
  return (fork as (...args: unknown[]) => childProcess.ChildProcess)(modulePath, ...rest);
}) as typeof fork;
nodeModule.syncBuiltinESMExports();

const lines: string[] = [];
const log: Logger = {
  debug: () => undefined,
  info: (m: string) => { lines.push(m); },
  warn: (m: string) => { lines.push(`warn: ${m}`); },
  error: (m: string) => { lines.push(`error: ${m}`); },
} as unknown as Logger;

void (async () => {
  configureLlama({ importOrder: path.join(REPO_ROOT, 'dist', 'node-llama-cpp-modules.json') });
  const llama = await getLlamaFor('off', log);
  const model = await loadModelLean(llama, { modelPath: process.argv[2]! });
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  const { LlamaCompletion } = await importNodeLlamaCpp();
  const text = await new LlamaCompletion({ contextSequence: context.getSequence() }).generateCompletion('Once upon a time', { maxTokens: 16, temperature: 0 });
  // What nanochat remembers after a start is written in the background: wait for its log line.
  const end = Date.now() + 10_000;
  while (llama.buildType === 'prebuilt' && !lines.some((l) => /passed node-llama-cpp's test|Could not remember/.test(l)) && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(JSON.stringify({ buildType: llama.buildType, cmakeOptions: llama.cmakeOptions, binaryTests: binaryTests.length, text, log: lines }));
  process.exit(0);
})();
