import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { importNodeLlamaCpp } from '../engine/llama';
import { NanochatError, errorMessage } from '../errors';
import { corpusOfSize } from './corpus';
import type { BenchReport } from './schema';
import { round } from './stats';

const run = promisify(execFile);

type Parity = NonNullable<BenchReport['llamaCpp']>;
interface Speeds { prompt: number; generation: number; generationUnderLoad: number }

/**
 * nanochat beside llama.cpp's own llama-bench (built from the same source node-llama-cpp ships), on
 * the same model, thread counts, prompt and generation lengths, alone and under the same competing
 * CPU load: the ratio says what the in-process engine loses or gains.
 */
export async function compareWithLlamaCpp(options: {
  llamaBench: string; modelPath: string; model: LlamaModel; threads: number[]; quick: boolean; runs: number;
  cpuLoad: () => { stop(): void };
}): Promise<Parity> {
  const promptTokens = options.quick ? 128 : 512;
  const generateTokens = options.quick ? 32 : 128;
  const rows: Parity['threads'] = [];
  for (const threads of options.threads) {
    const ours = await nanochatSpeeds(options.model, threads, promptTokens, generateTokens, options.runs, options.cpuLoad);
    const theirs = await llamaBenchSpeeds(options.llamaBench, options.modelPath, threads, promptTokens, generateTokens, options.runs, options.cpuLoad);
    const pair = (a: number, b: number) => ({ nanochat: round(a), llamaCpp: round(b), ratio: b > 0 ? Math.round((a / b) * 100) / 100 : 0 });
    rows.push({
      threads,
      prompt: pair(ours.prompt, theirs.prompt),
      generation: pair(ours.generation, theirs.generation),
      generationUnderLoad: pair(ours.generationUnderLoad, theirs.generationUnderLoad),
    });
  }
  return { promptTokens, generateTokens, threads: rows };
}

async function nanochatSpeeds(model: LlamaModel, threads: number, promptTokens: number, generateTokens: number, runs: number, cpuLoad: () => { stop(): void }): Promise<Speeds> {
  const { LlamaCompletion, TokenBias } = await importNodeLlamaCpp();
  // Like llama-bench's tg: exactly `generateTokens` tokens, never an early end of text.
  const noEnd = new TokenBias(model.tokenizer);
  for (const token of [model.tokens.eos, model.tokens.eot]) if (token != null) noEnd.set(token, 'never');
  const prompt = model.tokenize(corpusOfSize(promptTokens * 8), false).slice(0, promptTokens);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const context = await model.createContext({ contextSize: Math.max(promptTokens, generateTokens) + 64, threads, batchSize: promptTokens, sequences: 1 });
  try {
    const promptSpeeds: number[] = [];
    for (let i = 0; i < runs; i++) {
      const sequence = context.getSequence();
      const started = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(prompt);
      promptSpeeds.push(promptTokens / ((performance.now() - started) / 1000));
      sequence.dispose();
    }
    const generate = async () => {
      const sequence = context.getSequence();
      try {
        let first = 0;
        let count = 0;
        const completion = new LlamaCompletion({ contextSequence: sequence });
        await completion.generateCompletion(' ', { maxTokens: generateTokens, temperature: 0, tokenBias: noEnd, onToken: () => { count++; first ||= performance.now(); } });
        const seconds = (performance.now() - first) / 1000;
        return count > 1 && seconds > 0 ? (count - 1) / seconds : 0;
      } finally {
        sequence.dispose();
      }
    };
    const alone: number[] = [];
    for (let i = 0; i < runs; i++) alone.push(await generate());
    const load = cpuLoad();
    const loaded: number[] = [];
    try { for (let i = 0; i < runs; i++) loaded.push(await generate()); } finally { load.stop(); }
    return { prompt: median(promptSpeeds), generation: median(alone), generationUnderLoad: median(loaded) };
  } finally {
    await context.dispose();
  }
}

async function llamaBenchSpeeds(bin: string, modelPath: string, threads: number, promptTokens: number, generateTokens: number, runs: number, cpuLoad: () => { stop(): void }): Promise<Speeds> {
  const bench = async (args: string[]) => {
    try {
      const { stdout } = await run(bin, ['-m', modelPath, '-t', String(threads), '-r', String(runs), '-o', 'json', ...args], { maxBuffer: 1e7 });
      const rows = JSON.parse(stdout) as Array<{ n_prompt: number; n_gen: number; avg_ts: number }>;
      return rows;
    } catch (err) {
      throw new NanochatError(`llama-bench failed: ${errorMessage(err).split('\n')[0]}`);
    }
  };
  const alone = await bench(['-p', String(promptTokens), '-n', String(generateTokens)]);
  const load = cpuLoad();
  let loaded: Awaited<ReturnType<typeof bench>>;
  try { loaded = await bench(['-p', '0', '-n', String(generateTokens)]); } finally { load.stop(); }
  return {
    prompt: alone.find((r) => r.n_prompt > 0)?.avg_ts ?? 0,
    generation: alone.find((r) => r.n_gen > 0)?.avg_ts ?? 0,
    generationUnderLoad: loaded.find((r) => r.n_gen > 0)?.avg_ts ?? 0,
  };
}
