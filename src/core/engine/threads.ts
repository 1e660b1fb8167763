import type { LlamaContext } from 'node-llama-cpp' with { 'resolution-mode': 'import' };

/**
 * How many threads each phase of decoding uses. Reading a prompt is compute-bound and scales with
 * every physical core; generating one token at a time is bound by memory bandwidth and suffers most
 * when another program wants a core, so it may use fewer.
 */
export interface ThreadPlan {
  /** Single-token decoding (generation). */
  generation: number;
  /** Batches of prompt tokens (prefill). */
  prompt: number;
}

/** A batch of at least this many tokens is prompt work (generation batches hold one token per sequence). */
export const PROMPT_BATCH_TOKENS = 8;

/**
 * The thread counts used: an explicit `nanochat.threads` sets generation; 0 uses the machine's physical
 * performance cores (llama.cpp's own count, `llama.cpuMathCores`: not logical CPUs, so a 16-thread
 * laptop with 8 cores gets 8, and not efficiency cores). Prompts use every performance core unless
 * `nanochat.promptThreads` says otherwise.
 */
export function planThreads(setting: number, performanceCores: number, promptSetting = 0): ThreadPlan {
  const cores = Math.max(1, Math.floor(performanceCores) || 1);
  const generation = setting > 0 ? setting : cores;
  return { generation, prompt: promptSetting > 0 ? promptSetting : Math.max(cores, generation) };
}

interface AddonContext {
  initBatch(size: number): void;
  setThreads(threads: number): void;
  decodeBatch(): Promise<void>;
}

/**
 * Picks the generation thread count from how fast tokens actually come. With every core busy
 * elsewhere (a build, an indexer), ggml's spinning barriers make two threads far slower than one
 * (measured here: 6.6 vs 28 tok/s), while on an idle machine two are faster (76 vs 53). So single
 * tokens run on the count with the lowest recent time per token; the others are tried again now and
 * then (two tokens each), less often while they keep losing, so a change of load is noticed.
 */
export class GenerationThreads {
  private readonly candidates: number[];
  private readonly msPerToken = new Map<number, number>();
  private readonly interval = new Map<number, number>();
  private readonly nextTry = new Map<number, number>();
  private tokens = 0;
  private trying: { count: number; left: number } | undefined;
  private static readonly FIRST_TRY = 3;
  private static readonly INTERVAL = 16;
  private static readonly MAX_INTERVAL = 512;

  constructor(max: number) {
    this.candidates = [...new Set([max, Math.ceil(max / 2), 1].filter((n) => n >= 1))];
    for (const c of this.candidates) {
      this.interval.set(c, GenerationThreads.INTERVAL);
      this.nextTry.set(c, c === max ? 0 : GenerationThreads.FIRST_TRY);
    }
  }

  /** The count for the next single-token decode. */
  next(): number {
    if (this.trying) return this.trying.count;
    const best = this.best();
    const due = this.candidates.find((c) => c !== best && this.tokens >= (this.nextTry.get(c) ?? 0));
    if (due !== undefined && this.candidates.length > 1) {
      this.trying = { count: due, left: 2 };
      return due;
    }
    return best;
  }

  /** What one single-token decode on `count` threads took. */
  record(count: number, ms: number): void {
    this.tokens++;
    const before = this.msPerToken.get(count);
    // A try starts afresh: its count's old time may be from a load that has gone.
    const fresh = before === undefined || (this.trying?.count === count && this.trying.left === 2);
    this.msPerToken.set(count, fresh ? ms : 0.7 * before + 0.3 * ms);
    if (this.trying?.count === count && --this.trying.left <= 0) {
      this.trying = undefined;
      // A count that lost waits twice as long for its next try; one that won is tried again soon.
      const lost = count !== this.best();
      const interval = lost ? Math.min(GenerationThreads.MAX_INTERVAL, 2 * (this.interval.get(count) ?? GenerationThreads.INTERVAL)) : GenerationThreads.INTERVAL;
      this.interval.set(count, interval);
      this.nextTry.set(count, this.tokens + interval);
    }
  }

  best(): number {
    let best = this.candidates[0]!;
    for (const c of this.candidates) {
      const ms = this.msPerToken.get(c);
      const bestMs = this.msPerToken.get(best);
      if (ms !== undefined && (bestMs === undefined || ms < bestMs)) best = c;
    }
    return best;
  }
}

/**
 * Gives each decode batch its phase's thread count. node-llama-cpp sets one count per context and
 * calls `setThreads` with its thread splitter's share before every batch; this wraps the context's
 * native calls so a prompt batch runs on `plan.prompt` threads and a generation batch on the count
 * `GenerationThreads` finds fastest (at most `plan.generation`; never more than the share, so
 * contexts that decode at once still split the cores). Create the context with
 * `threads: max(plan.prompt, plan.generation)`. Returns undefined (and changes nothing) when the
 * context's internals are not the ones this was written against.
 */
export function applyThreadPlan(context: LlamaContext, plan: ThreadPlan): GenerationThreads | undefined {
  const addon = (context as unknown as { _ctx?: AddonContext })._ctx;
  if (!addon || typeof addon.initBatch !== 'function' || typeof addon.setThreads !== 'function' || typeof addon.decodeBatch !== 'function') return undefined;
  const initBatch = addon.initBatch.bind(addon);
  const setThreads = addon.setThreads.bind(addon);
  const decodeBatch = addon.decodeBatch.bind(addon);
  const generation = new GenerationThreads(plan.generation);
  let batchTokens = 0;
  let used = 0;
  const apply = (share: number) => {
    const wanted = batchTokens >= PROMPT_BATCH_TOKENS ? plan.prompt : generation.next();
    used = Math.max(1, Math.min(share, wanted));
    setThreads(used);
  };
  try {
    Object.defineProperty(addon, 'initBatch', {
      configurable: true,
      value: (size: number) => {
        batchTokens = size;
        initBatch(size);
        apply(Number.POSITIVE_INFINITY);
      },
    });
    Object.defineProperty(addon, 'setThreads', { configurable: true, value: (share: number) => apply(share) });
    Object.defineProperty(addon, 'decodeBatch', {
      configurable: true,
      value: async () => {
        const started = performance.now();
        await decodeBatch();
        if (batchTokens === 1) generation.record(used, performance.now() - started);
      },
    });
  } catch {
    return undefined;
  }
  return generation;
}
