import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { importNodeLlamaCpp } from '../engine/llama';
import { decodeAhead } from '../engine/threads';
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
  cpuLoad: () => Promise<{ stop(): void }>;
}): Promise<Parity> {
  const promptTokens = options.quick ? 128 : 512;
  const generateTokens = options.quick ? 32 : 128;
  const rounds = Math.max(3, options.runs);
  const rows: Parity['threads'] = [];
  for (const threads of options.threads) {
    const ours = await nanochatMeter(options.model, threads, promptTokens, generateTokens);
    const theirs = llamaBenchMeter(options.llamaBench, options.modelPath, threads, promptTokens, generateTokens);
    const samples = { ours: [] as Speeds[], theirs: [] as Speeds[] };
    try {
      // Rounds alternate between the two, so a machine that drifts (other VMs, heat) moves both alike;
      // and which goes first alternates too (the first under a fresh load met it warming up).
      for (let round = 0; round < rounds; round++) {
        const a = { prompt: 0, generation: 0, generationUnderLoad: 0 };
        const b = { prompt: 0, generation: 0, generationUnderLoad: 0 };
        await inTurn(round, async () => { a.prompt = await ours.prompt(); a.generation = await ours.generate(); }, async () => { Object.assign(b, await theirs.alone()); });
        const load = await options.cpuLoad();
        try {
          await inTurn(round, async () => { a.generationUnderLoad = await ours.generate(); }, async () => { b.generationUnderLoad = await theirs.generate(); });
        } finally {
          load.stop();
        }
        samples.ours.push(a);
        samples.theirs.push(b);
      }
    } finally {
      await ours.dispose();
    }
    const median = (xs: Speeds[], key: keyof Speeds) => [...xs.map((x) => x[key])].sort((p, q) => p - q)[Math.floor(xs.length / 2)] ?? 0;
    const pair = (key: keyof Speeds) => {
      const a = median(samples.ours, key), b = median(samples.theirs, key);
      return { nanochat: round(a), llamaCpp: round(b), ratio: b > 0 ? Math.round((a / b) * 100) / 100 : 0 };
    };
    rows.push({ threads, prompt: pair('prompt'), generation: pair('generation'), generationUnderLoad: pair('generationUnderLoad') });
  }
  return { promptTokens, generateTokens, threads: rows };
}

/** Runs the two in round `round`'s order: `first` first in even rounds, `second` first in odd ones. */
export async function inTurn(round: number, first: () => Promise<void>, second: () => Promise<void>): Promise<void> {
  if (round % 2 === 0) { await first(); await second(); } else { await second(); await first(); }
}

/**
 * What depth costs llama.cpp itself: the time llama-bench takes to read `last.tokens` prompt tokens
 * after `last.depth` tokens already in the context, ÷ reading `first.tokens` into an empty one. The
 * multi-turn goal (turn N's first token ÷ turn 1's) compares the same two reads, plus nanochat's own
 * fixed work per reply; this is the ratio no engine on llama.cpp can beat. Medians of `reps`.
 */
export async function llamaCppDepthCost(llamaBench: string, modelPath: string, threads: number, first: { tokens: number }, last: { tokens: number; depth: number }, reps = 5): Promise<{ firstMs: number; lastMs: number; ratio: number }> {
  const read = async (tokens: number, depth: number) => {
    try {
      const { stdout } = await run(llamaBench, ['-m', modelPath, '-t', String(threads), '-r', String(reps), '-o', 'json', '-n', '0', '-p', String(Math.max(1, tokens)), '-d', String(depth)], { maxBuffer: 1e7 });
      const rows = JSON.parse(stdout) as Array<{ n_prompt: number; samples_ns?: number[]; avg_ns: number }>;
      const row = rows.find((r) => r.n_prompt > 0);
      const samples = row?.samples_ns?.length ? [...row.samples_ns].sort((a, b) => a - b) : [row?.avg_ns ?? 0];
      return samples[Math.floor(samples.length / 2)]! / 1e6;
    } catch (err) {
      throw new NanochatError(`llama-bench failed: ${errorMessage(err).split('\n')[0]}`);
    }
  };
  const firstMs = await read(first.tokens, 0);
  const lastMs = await read(last.tokens, last.depth);
  return { firstMs: round(firstMs), lastMs: round(lastMs), ratio: firstMs > 0 ? Math.round((lastMs / firstMs) * 100) / 100 : 0 };
}

/** A token bias that never ends the text: a generation of exactly the tokens asked for, as llama-bench's tg. */
export async function neverEnd(model: LlamaModel) {
  const { TokenBias } = await importNodeLlamaCpp();
  const bias = new TokenBias(model.tokenizer);
  for (const token of [model.tokens.eos, model.tokens.eot]) if (token != null) bias.set(token, 'never');
  return bias;
}

/** nanochat's side: one context like the extension's, measured a prompt or a generation at a time. */
async function nanochatMeter(model: LlamaModel, threads: number, promptTokens: number, generateTokens: number) {
  const { LlamaCompletion } = await importNodeLlamaCpp();
  // Like llama-bench's tg: exactly `generateTokens` tokens, never an early end of text.
  const noEnd = await neverEnd(model);
  const prompt = model.tokenize(corpusOfSize(promptTokens * 8), false).slice(0, promptTokens);
  const context = await model.createContext({ contextSize: Math.max(promptTokens, generateTokens) + 64, threads, batchSize: promptTokens, sequences: 1 });
  decodeAhead(context); // as the extension's contexts decode
  return {
    prompt: async () => {
      const sequence = context.getSequence();
      try {
        // As llama-bench does before it times a prompt: the same prompt once, untimed, then cleared. A
        // read straight after other work (the previous round's llama-bench ending) took 8–12% longer than
        // the next one, and only this side paid for it: with the warm-up, 1-thread prompts measured
        // 0.99–1.01× llama-bench's in five interleaved rounds, against 0.89–0.96× without.
        await sequence.evaluateWithoutGeneratingNewTokens(prompt);
        await sequence.clearHistory();
        const started = performance.now();
        await sequence.evaluateWithoutGeneratingNewTokens(prompt);
        return promptTokens / ((performance.now() - started) / 1000);
      } finally {
        sequence.dispose();
      }
    },
    generate: async () => {
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
    },
    dispose: () => context.dispose(),
  };
}

/** llama.cpp's side: llama-bench, one repetition per call. */
function llamaBenchMeter(bin: string, modelPath: string, threads: number, promptTokens: number, generateTokens: number) {
  const bench = async (args: string[]) => {
    try {
      const { stdout } = await run(bin, ['-m', modelPath, '-t', String(threads), '-r', '1', '-o', 'json', ...args], { maxBuffer: 1e7 });
      return JSON.parse(stdout) as Array<{ n_prompt: number; n_gen: number; avg_ts: number }>;
    } catch (err) {
      throw new NanochatError(`llama-bench failed: ${errorMessage(err).split('\n')[0]}`);
    }
  };
  return {
    alone: async () => {
      const rows = await bench(['-p', String(promptTokens), '-n', String(generateTokens)]);
      return { prompt: rows.find((r) => r.n_prompt > 0)?.avg_ts ?? 0, generation: rows.find((r) => r.n_gen > 0)?.avg_ts ?? 0 };
    },
    generate: async () => (await bench(['-p', '0', '-n', String(generateTokens)])).find((r) => r.n_gen > 0)?.avg_ts ?? 0,
  };
}
