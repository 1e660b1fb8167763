// npm run bench:completion -- --model FILE.gguf [--threads N] [--json]
// Inline-completion latency over a scripted typing sequence (warm: KV and suggestion caches as typing
// leaves them; cold: nothing cached), prompt tokens evaluated per keystroke and suggestion length.
// Make a model with: npm run make-model -- --like qwen2.5-coder-0.5b-instruct
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runCompletionBenchmark } from '../../src/core/bench/completionBench';
import { errorMessage } from '../../src/core/errors';
import { checkModelFile } from '../../src/core/modelFiles/ggufCheck';
import { needsIsolation, runIsolated, writeReport } from './isolated';

async function main(): Promise<void> {
  if (needsIsolation()) {
    process.exitCode = await runIsolated();
    return;
  }
  const { values } = parseArgs({ options: { model: { type: 'string' }, threads: { type: 'string' }, keystrokes: { type: 'string' }, json: { type: 'boolean', default: false } } });
  if (!values.model) throw new Error('usage: npm run bench:completion -- --model FILE.gguf [--threads N] [--json]');
  const modelPath = path.resolve(values.model);
  await checkModelFile(modelPath);
  const report = await runCompletionBenchmark({
    modelPath, threads: values.threads ? Number(values.threads) : undefined, keystrokes: values.keystrokes ? Number(values.keystrokes) : undefined,
    onProgress: values.json ? undefined : (step) => process.stderr.write(`… ${step}\n`),
  });
  if (values.json) { writeReport(report); return; }
  console.log(`${report.model}, ${report.threads} thread(s), ${report.keystrokes} keystrokes`);
  console.log(`  warm: p50 ${report.warm.p50Ms} ms, p95 ${report.warm.p95Ms} ms (${report.warm.cacheHits} from the suggestion cache); goal p50 < ${report.goal.warmP50Ms} ms: ${report.goal.met ? 'met' : 'not met'}`);
  console.log(`  cold: p50 ${report.cold.p50Ms} ms for a ${report.cold.promptTokens}-token prompt`);
  console.log(`  ${report.evaluatedTokensPerKeystroke} prompt tokens evaluated per keystroke; ${report.suggestionTokens}-token suggestions`);
}

main().catch((err) => { process.stderr.write(`bench:completion: ${errorMessage(err).split('\n')[0]}\n`); process.exit(1); });
