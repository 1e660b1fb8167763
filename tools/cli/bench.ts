// npm run bench -- --model FILE [--runs N] [--quick] [--json] [--compare-llama-cpp]
//                   --server URL [--model NAME] [--quick] [--json]   (an OpenAI-compatible server; key in NANOCHAT_SERVER_API_KEY)
// Benchmarks a model in this process; with --json, stdout is exactly one report object.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runBenchmark } from '../../src/core/bench/bench';
import { configureLlama } from '../../src/core/engine/llama';
import { runServerBenchmark } from '../../src/core/bench/serverBench';
import { errorMessage } from '../../src/core/errors';
import { formatBytes } from '../../src/core/modelFiles/ggufCheck';
import { testModel } from '../../test/support/models';
import { llamaCppBin } from '../llamaCpp.mjs';
import { needsIsolation, runIsolated, writeReport } from './isolated';

async function main(): Promise<void> {
  if (needsIsolation()) {
    process.exitCode = await runIsolated();
    return;
  }
  const { values } = parseArgs({ options: { model: { type: 'string' }, server: { type: 'string' }, runs: { type: 'string' }, quick: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, 'compare-llama-cpp': { type: 'boolean', default: false } } });
  // llama.cpp's own llama-bench, built once per machine from the source node-llama-cpp ships.
  const llamaBench = values['compare-llama-cpp'] ? path.join(llamaCppBin({ build: true }) as string, 'llama-bench') : undefined;
  const onProgress = values.json ? undefined : (step: string) => process.stderr.write(`… ${step}\n`);
  const runs = values.runs ? Number(values.runs) : undefined;
  // node-llama-cpp imported as the extension host imports it: module by module (`npm run build` lists them).
  configureLlama({ importOrder: path.resolve(__dirname, '..', '..', 'dist', 'node-llama-cpp-modules.json') });
  const report = values.server
    ? await runServerBenchmark({ url: values.server, model: values.model, apiKey: process.env.NANOCHAT_SERVER_API_KEY, quick: values.quick, runs, onProgress })
    : await runBenchmark({ modelPath: path.resolve(values.model ?? await testModel('stories260K.gguf')), quick: values.quick, runs, onProgress, llamaBench });
  if (values.json) {
    writeReport(report);
    return;
  }
  const r = report;
  if (r.backend === 'server') {
    console.log(`${r.model.name} on ${r.server?.url}; medians of ${r.runs} runs${r.quick ? ' (quick)' : ''}; connect ${r.load.totalMs} ms`);
    console.log(`  first token: ${r.firstTokenMs.short.median} ms (${r.promptTokens.short}-token prompt), ${r.firstTokenMs.long.median} ms (${r.promptTokens.long} tokens)`);
    console.log(`  prompt ${r.promptTokensPerSecond.median} tok/s; generation ${r.generationTokensPerSecond.median} tok/s; cancel ${r.cancelLatencyMs.median} ms`);
    console.log(`  multi-turn first token at turn ${r.multiTurn.turns}: ${r.multiTurn.withReuseMs} ms with the prompt cache, ${r.multiTurn.withoutReuseMs} ms without (${r.multiTurn.speedup}×)`);
    for (const c of r.concurrency ?? []) console.log(`  ${c.requests} at once: p50/p95/p99 ${c.p50}/${c.p95}/${c.p99} ms, ${c.tokensPerSecond} tok/s in all`);
    return;
  }
  console.log(`${r.model.name} (${r.model.architecture}, ${formatBytes(r.memory.modelBytes)}) on ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.backend}; medians of ${r.runs} runs${r.quick ? ' (quick)' : ''}`);
  console.log(`  load ${r.load.totalMs} ms (import ${r.load.importMs}, llama ${r.load.llamaMs}, model ${r.load.modelMs}, context ${r.load.contextMs})`);
  console.log(`  first token: ${r.firstTokenMs.short.median} ms (${r.promptTokens.short}-token prompt), ${r.firstTokenMs.long.median} ms (${r.promptTokens.long} tokens)`);
  console.log(`  prompt ${r.promptTokensPerSecond.median} tok/s; generation ${r.generationTokensPerSecond.median} tok/s (p95 ${r.generationTokensPerSecond.p95})`);
  console.log(`  multi-turn first token at turn ${r.multiTurn.turns}: ${r.multiTurn.withReuseMs} ms with KV reuse, ${r.multiTurn.withoutReuseMs} ms without (${r.multiTurn.speedup}×)`);
  if (r.multiTurn.evaluatedPromptTokensByTurn) console.log(`  prompt tokens evaluated by turn: ${r.multiTurn.evaluatedPromptTokensByTurn.join(', ')}; first token by turn: ${r.multiTurn.firstTokenMsByTurn.join(', ')} ms${(r.multiTurn.firstTokenMsRuns?.length ?? 0) > 1 ? ' (medians)' : ''}`);
  for (const [i, times] of (r.multiTurn.firstTokenMsRuns ?? []).entries()) console.log(`    conversation ${i + 1}: ${times.join(', ')} ms; prompts read on ${r.multiTurn.promptThreadsByTurn?.[i]?.join(', ') ?? '?'} threads`);
  if (r.eventLoop) console.log(`  longest event-loop block while loading and chatting: ${r.eventLoop.maxBlockMs} ms`);
  console.log(`  cancel latency ${r.cancelLatencyMs.median} ms; request latency p50/p95/p99 ${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99} ms; ${r.concurrentLatencyMs.requests} concurrent: ${r.concurrentLatencyMs.p50}/${r.concurrentLatencyMs.p95}/${r.concurrentLatencyMs.p99} ms`);
  console.log(`  tokenizer: JS ${r.tokenizer.jsTokensPerSecond} tok/s, llama.cpp ${r.tokenizer.llamaTokensPerSecond} tok/s`);
  console.log(`  memory: RSS ${formatBytes(r.memory.rssBeforeBytes)} → ${formatBytes(r.memory.rssAfterBytes)}; bandwidth ${formatBytes(r.machine.bandwidthBytesPerSecond)}/s, utilisation ${(100 * r.bandwidthUtilisation).toFixed(1)}%`);
  for (const t of r.llamaCpp?.threads ?? []) {
    const show = (p: { nanochat: number; llamaCpp: number; ratio: number }) => `${p.nanochat} vs ${p.llamaCpp} tok/s (${p.ratio}×)`;
    console.log(`  vs llama-bench, ${t.threads} thread(s): prompt ${show(t.prompt)}; generation ${show(t.generation)}; under load ${show(t.generationUnderLoad)}`);
  }
  console.log(`  threads: ${r.threads.map((x) => `${x.threads}: ${x.tokensPerSecond} (${x.underLoadTokensPerSecond} under load)`).join(', ')} tok/s; default ${r.defaultThreads}${r.defaultThreadsWithin80PercentUnderLoad ? '' : ' — NOT within 80% of the best under load'}`);
  if (r.defaultPlan) console.log(`  default plan: generation up to ${r.defaultPlan.generation} threads (adaptive), prompts on ${r.defaultPlan.prompt}: ${r.defaultPlan.tokensPerSecond} tok/s, ${r.defaultPlan.underLoadTokensPerSecond} under load`);
  if (r.prefill) console.log(`  prefill of ${r.prefill.tokens} tokens: ${r.prefill.ms} ms on ${r.prefill.threads} threads vs ${r.prefill.oneThreadMs} ms on one; under load ${r.prefill.underLoadMs} vs ${r.prefill.oneThreadUnderLoadMs} ms`);
  for (const b of r.bandwidth ?? []) console.log(`  ${b.threads} thread(s): read bandwidth ${formatBytes(b.readBytesPerSecond)}/s, utilisation ${(100 * b.utilisation).toFixed(1)}%`);
  if (r.restart) console.log(`  first reply after a restart (${r.restart.preambleTokens}-token prompt): ${r.restart.firstTokenMs.withState} ms with the saved preamble (${r.restart.evaluatedTokens.withState} tokens evaluated), ${r.restart.firstTokenMs.without} ms without (${r.restart.evaluatedTokens.without})`);
  if (r.build) console.log(`  llama.cpp: ${r.build.persistentThreadpool ? 'built for this machine' : `${r.build.type} binaries`}`);
  if (r.goals?.length) {
    console.log('  goals:');
    for (const g of r.goals) console.log(`    ${g.met ? 'met    ' : 'NOT met'}  ${g.name}: ${g.measured} (goal ${g.goal})`);
  }
}

main().catch((err) => { process.stderr.write(`nanochat bench: ${errorMessage(err).split('\n')[0]}\n`); process.exit(1); });
