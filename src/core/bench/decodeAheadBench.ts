import type { LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { importNodeLlamaCpp } from '../engine/llama';
import type { AddonContext } from '../engine/threads';
import { NanochatError } from '../errors';
import { startCpuLoad } from './bench';
import { inTurn, neverEnd } from './parity';
import { percentile } from './stats';

/** One side of the comparison: tokens per second (median of the rounds) and the decoding thread's share of the time. */
export interface DecodeAheadSide { tokensPerSecond: number[]; median: number; decodeShare: number }
export interface DecodeAheadRow { threads: number; underLoad: boolean; off: DecodeAheadSide; on: DecodeAheadSide; ratio: number }
export interface DecodeAheadReport { tokens: number; rounds: number; sameTokens: boolean; rows: DecodeAheadRow[] }

type Addon = AddonContext & { sampleToken(...args: unknown[]): Promise<unknown> };

/**
 * Decoding a token ahead (the machine build) against the same context without it: a greedy generation
 * of `tokens` tokens, never an early end, with and without in alternate rounds, alone and beside a CPU
 * load on every core. Reports tokens per second and how much of the generation the context's thread
 * spent decoding (the rest is the sample and waiting for JavaScript), and whether both gave the same tokens.
 */
export async function compareDecodeAhead(model: LlamaModel, options: { threads: number[]; rounds: number; tokens: number; cores: number; onProgress?: (message: string) => void }): Promise<DecodeAheadReport> {
  const { LlamaCompletion } = await importNodeLlamaCpp();
  const noEnd = await neverEnd(model);
  const rows: DecodeAheadRow[] = [];
  let sameTokens = true;
  for (const threads of options.threads) {
    const context = await model.createContext({ contextSize: options.tokens + 64, threads, batchSize: 64, sequences: 1 });
    try {
      const addon = (context as unknown as { _ctx: Addon })._ctx;
      if (typeof addon.setDecodeAhead !== 'function' || typeof addon.getLastDecode !== 'function') throw new NanochatError('Decoding ahead needs the llama.cpp build for this machine (npm run build-llama).');
      const lastDecode = addon.getLastDecode.bind(addon);
      // Each sample follows a finished decode: sum the decodes' own times.
      let decodeMs = 0;
      let seen = lastDecode().count;
      const sample = addon.sampleToken.bind(addon);
      Object.defineProperty(addon, 'sampleToken', { configurable: true, value: async (...args: unknown[]) => {
        const result = await sample(...args);
        const finished = lastDecode();
        if (finished.count !== seen) { seen = finished.count; decodeMs += finished.ms; }
        return result;
      } });
      const generate = async (ahead: boolean) => {
        addon.setDecodeAhead!(ahead);
        const sequence = context.getSequence();
        try {
          const tokens: number[] = [];
          let first = 0;
          const completion = new LlamaCompletion({ contextSequence: sequence });
          await completion.generateCompletion('Once upon a time', { maxTokens: options.tokens, temperature: 0, tokenBias: noEnd, onToken: (t) => { tokens.push(...t); if (!first) { first = performance.now(); decodeMs = 0; } } });
          const ms = performance.now() - first;
          return { tokens, rate: tokens.length > 1 && ms > 0 ? ((tokens.length - 1) * 1000) / ms : 0, share: ms > 0 ? Math.min(1, decodeMs / ms) : 0 };
        } finally {
          sequence.dispose();
        }
      };
      for (const underLoad of [false, true]) {
        options.onProgress?.(`${threads} thread${threads === 1 ? '' : 's'}${underLoad ? ', every core busy elsewhere' : ''}`);
        const load = underLoad ? await startCpuLoad(options.cores) : undefined;
        const off = { rates: [] as number[], shares: [] as number[] };
        const on = { rates: [] as number[], shares: [] as number[] };
        try {
          for (let round = 0; round < options.rounds; round++) {
            // Which goes first alternates by round, as in the llama.cpp comparison.
            let a!: Awaited<ReturnType<typeof generate>>, b!: Awaited<ReturnType<typeof generate>>;
            await inTurn(round, async () => { a = await generate(false); }, async () => { b = await generate(true); });
            sameTokens &&= a.tokens.length === b.tokens.length && a.tokens.every((t, i) => t === b.tokens[i]);
            off.rates.push(a.rate); off.shares.push(a.share);
            on.rates.push(b.rate); on.shares.push(b.share);
          }
        } finally {
          load?.stop();
        }
        const side = (s: typeof off): DecodeAheadSide => ({ tokensPerSecond: s.rates.map((r) => Math.round(r * 10) / 10), median: Math.round(percentile(s.rates, 0.5) * 10) / 10, decodeShare: Math.round(percentile(s.shares, 0.5) * 1000) / 1000 });
        const row = { threads, underLoad, off: side(off), on: side(on), ratio: 0 };
        row.ratio = row.off.median > 0 ? Math.round((row.on.median / row.off.median) * 100) / 100 : 0;
        rows.push(row);
      }
    } finally {
      await context.dispose();
    }
  }
  return { tokens: options.tokens, rounds: options.rounds, sameTokens, rows };
}
