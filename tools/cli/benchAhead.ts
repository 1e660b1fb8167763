// npm run bench:ahead -- --model model.gguf [--threads 1,2] [--rounds 5] [--tokens 128] [--json]
// Decoding a token ahead (the llama.cpp build for this machine) against the same context without it,
// in alternate rounds, alone and with every core busy elsewhere: tokens per second, the decoding
// thread's share of the generation, and whether both gave the same tokens.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compareDecodeAhead } from '../../src/core/bench/decodeAheadBench';
import { configureLlama, getLlamaFor } from '../../src/core/engine/llama';
import { errorMessage } from '../../src/core/errors';
import { silentLogger } from '../../src/core/log';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    model: { type: 'string' }, threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '5' }, tokens: { type: 'string', default: '128' }, json: { type: 'boolean', default: false },
  } });
  if (!values.model) throw new Error('--model <file.gguf> is required');
  configureLlama({ importOrder: path.resolve(__dirname, '..', '..', 'dist', 'node-llama-cpp-modules.json') });
  const llama = await getLlamaFor('off', silentLogger);
  const model = await llama.loadModel({ modelPath: path.resolve(values.model) });
  try {
    const report = await compareDecodeAhead(model, {
      threads: values.threads.split(',').map(Number).filter((n) => n > 0), rounds: Math.max(1, Number(values.rounds)), tokens: Math.max(8, Number(values.tokens)),
      cores: os.availableParallelism(), onProgress: values.json ? undefined : (m) => process.stderr.write(`… ${m}\n`),
    });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    console.log(`${report.tokens} greedy tokens, ${report.rounds} rounds each way; the same tokens with and without: ${report.sameTokens ? 'yes' : 'NO'}`);
    for (const r of report.rows) {
      console.log(`${r.threads} thread${r.threads === 1 ? '' : 's'}${r.underLoad ? ', every core busy' : ''}: ${r.off.median} → ${r.on.median} tok/s (${r.ratio}×); the decoding thread busy ${(r.off.decodeShare * 100).toFixed(1)}% → ${(r.on.decodeShare * 100).toFixed(1)}% of the generation`);
    }
  } finally {
    await model.dispose();
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  console.error(`bench:ahead: ${errorMessage(err)}`);
  process.exit(1);
});
