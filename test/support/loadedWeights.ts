// One load of a model on the machine build, in a process of its own (a native addon, and the repack's
// thread count, are set once per process): `node --import tsx test/support/loadedWeights.ts <model.gguf>`.
// Generates greedily and prints one JSON line: the tokens, how much of the process's anonymous memory
// is on transparent huge pages (Linux's smaps_rollup), and how much of the model file's mapping is
// resident once the model is loaded (smaps).
import fs from 'node:fs';
import path from 'node:path';
import { getLlamaFor, importNodeLlamaCpp, isMachineBuild } from '../../src/core/engine/llama';
import { silentLogger } from '../../src/core/log';

void (async () => {
  const llama = await getLlamaFor('off', silentLogger);
  const model = await llama.loadModel({ modelPath: process.argv[2]! });
  const rollup = fs.readFileSync('/proc/self/smaps_rollup', 'utf8');
  const anonHugeKb = Number(/^AnonHugePages:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
  const fileRssKb = fs.readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
    .filter((mapping) => mapping.split('\n')[0]!.endsWith(path.basename(process.argv[2]!)))
    .reduce((sum, mapping) => sum + Number(/^Rss:\s+(\d+) kB/m.exec(mapping)?.[1] ?? 0), 0);
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  const { LlamaCompletion } = await importNodeLlamaCpp();
  const tokens: number[] = [];
  await new LlamaCompletion({ contextSequence: context.getSequence() }).generateCompletion('Once upon a time', {
    maxTokens: 24, temperature: 0, onToken: (chunk) => { tokens.push(...chunk); },
  });
  console.log(JSON.stringify({ machineBuild: isMachineBuild(llama), tokens, anonHugeKb, fileRssKb }));
  process.exit(0);
})();
