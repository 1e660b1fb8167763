import { z } from 'zod';

const stat = z.object({ median: z.number().nonnegative(), p95: z.number().nonnegative() });
const ratioPair = z.object({ nanochat: z.number().nonnegative(), llamaCpp: z.number().nonnegative(), ratio: z.number().nonnegative() });
const latency = z.object({ p50: z.number().nonnegative(), p95: z.number().nonnegative(), p99: z.number().nonnegative() });

/** The benchmark report; `npm run bench -- --json` prints exactly this object. */
export const benchReportSchema = z.object({
  version: z.literal(1),
  createdAt: z.string(),
  model: z.object({ path: z.string(), name: z.string(), architecture: z.string(), parameters: z.number().optional() }),
  quick: z.boolean(),
  runs: z.number().int().positive(),
  load: z.object({
    importMs: z.number(), llamaMs: z.number(), modelMs: z.number(), contextMs: z.number(), totalMs: z.number(),
    /** The longest the event loop stood still while node-llama-cpp was imported (module by module where the build listed them). */
    importMaxBlockMs: z.number().nonnegative().optional(),
  }),
  firstTokenMs: z.object({
    short: stat, long: stat,
    /** A brand-new conversation each time, timed from the call (goal: ≤ 1.5 × a follow-up's). */
    newConversation: stat.optional(),
    /** A follow-up turn of a conversation whose history is in the KV cache. */
    followUp: stat.optional(),
  }),
  promptTokens: z.object({ short: z.number(), long: z.number() }),
  promptTokensPerSecond: stat,
  generationTokensPerSecond: stat,
  multiTurn: z.object({
    turns: z.number(), withReuseMs: z.number(), withoutReuseMs: z.number(), speedup: z.number(), firstTokenMsByTurn: z.array(z.number()),
    /** Prompt tokens each turn evaluated (the rest came from the KV cache): flat when follow-ups reuse it. */
    evaluatedPromptTokensByTurn: z.array(z.number()).optional(),
    /** Each run of the conversation's first-token times by turn (firstTokenMsByTurn is their median). */
    firstTokenMsRuns: z.array(z.array(z.number())).optional(),
    /** Threads each turn's prompt was read on, per run (0 where no prompt batch was read, or the thread plan is not in place), and the plan's most. */
    promptThreadsByTurn: z.array(z.array(z.number().int().nonnegative())).optional(),
    promptThreads: z.number().int().positive().optional(),
  }),
  cancelLatencyMs: stat,
  latencyMs: latency,
  concurrentLatencyMs: latency.extend({ requests: z.number() }),
  /** Tokens per second: one request alone, and all of the concurrent requests together (goal: ≥ alone). */
  throughput: z.object({ singleTokensPerSecond: z.number().nonnegative(), concurrentTokensPerSecond: z.number().nonnegative() }).optional(),
  tokenizer: z.object({ bytes: z.number(), tokens: z.number(), jsTokensPerSecond: z.number(), llamaTokensPerSecond: z.number(), ratio: z.number() }),
  memory: z.object({ rssBeforeBytes: z.number(), rssAfterBytes: z.number(), modelBytes: z.number() }),
  threads: z.array(z.object({ threads: z.number().int().positive(), tokensPerSecond: z.number(), underLoadTokensPerSecond: z.number() })),
  defaultThreads: z.number().int().nonnegative(),
  defaultThreadsWithin80PercentUnderLoad: z.boolean(),
  /** The default as the extension runs it: prompt threads, and generation on the fastest count up to `generation`. */
  defaultPlan: z.object({ generation: z.number().int().positive(), prompt: z.number().int().positive(), tokensPerSecond: z.number(), underLoadTokensPerSecond: z.number() }).optional(),
  /** Prefill: the long prompt read as the default plan reads it (up to `threads`, the idle ones) vs one thread, alone and under load. */
  prefill: z.object({
    tokens: z.number().int().positive(), threads: z.number().int().positive(),
    ms: z.number().nonnegative(), underLoadMs: z.number().nonnegative(),
    oneThreadMs: z.number().nonnegative(), oneThreadUnderLoadMs: z.number().nonnegative(),
  }).optional(),
  /** Read bandwidth with as many readers as decoding threads, and the share of it generation uses. */
  bandwidth: z.array(z.object({
    threads: z.number().int().positive(), readBytesPerSecond: z.number().positive(), utilisation: z.number().nonnegative(),
    /** The generation speed the utilisation is of: with `--compare-llama-cpp`, the median the comparison measured (as llama-bench's beside it). */
    tokensPerSecond: z.number().nonnegative().optional(),
    /** `--compare-llama-cpp`: the same for llama-bench's generation at this count. */
    llamaCppUtilisation: z.number().nonnegative().optional(),
  })).optional(),
  /** Which llama.cpp binary ran: node-llama-cpp's prebuilt one or a build for this machine. */
  build: z.object({ type: z.string(), persistentThreadpool: z.boolean() }).optional(),
  machine: z.object({ cpu: z.string(), cores: z.number().int().positive(), backend: z.string(), bandwidthBytesPerSecond: z.number().positive(), node: z.string() }),
  bandwidthUtilisation: z.number().nonnegative(),
  /** `--compare-llama-cpp`: nanochat beside llama-bench, same model, threads and lengths, alone and under load. */
  llamaCpp: z.object({
    promptTokens: z.number().int().positive(),
    generateTokens: z.number().int().positive(),
    threads: z.array(z.object({ threads: z.number().int().positive(), prompt: ratioPair, generation: ratioPair, generationUnderLoad: ratioPair })),
    /**
     * What depth costs llama.cpp itself: llama-bench reading the multi-turn run's last-turn tokens at its
     * depth (ms) ÷ its first-turn tokens into an empty context: the floor of the turn-N ÷ turn-1 goal.
     */
    depthCost: z.object({
      firstTokens: z.number().int().nonnegative(), lastTokens: z.number().int().nonnegative(), depth: z.number().int().nonnegative(), threads: z.number().int().positive(),
      firstMs: z.number().nonnegative(), lastMs: z.number().nonnegative(), ratio: z.number().nonnegative(),
    }).optional(),
  }).optional(),
  /** The longest event-loop block while loading and chatting (goal: 50 ms; the chat format is resolved synchronously at load). */
  eventLoop: z.object({
    maxBlockMs: z.number().nonnegative(),
    byPhase: z.record(z.string(), z.number().nonnegative()).optional(),
    /** The same blocks less the garbage collections inside them (the code's own), and each phase's longest collection pause. */
    withoutGc: z.object({ maxBlockMs: z.number().nonnegative(), byPhase: z.record(z.string(), z.number().nonnegative()) }).optional(),
    /** Less the collections and less the time the thread waited for a CPU (Linux): what the code itself held the loop. */
    own: z.object({ maxBlockMs: z.number().nonnegative(), byPhase: z.record(z.string(), z.number().nonnegative()) }).optional(),
    longestGcByPhase: z.record(z.string(), z.number().nonnegative()).optional(),
  }).optional(),
  /**
   * Agent-sized tools preamble (VS Code 1.139.1's 27 tools): prompt tokens, and first-token time of the
   * first request and of a second one with the same preamble (goal: reused ≤ 0.1 × first). Full runs of
   * models with a ≥ 12K context only.
   */
  toolPreamble: z.object({
    tools: z.number().int().positive(), tokens: z.number().int().positive(),
    firstTokenMs: z.object({ first: z.number().nonnegative(), reused: z.number().nonnegative() }),
    evaluatedTokens: z.object({ first: z.number().int().nonnegative(), reused: z.number().int().nonnegative() }),
    ratio: z.number().nonnegative(),
  }).optional(),
  /**
   * The first reply after a restart with a ~2,000-token preamble: with its saved state (the preamble
   * loaded from disk) and without (evaluated again). Full runs of models with a ≥ 4K context only.
   */
  restart: z.object({
    preambleTokens: z.number().int().positive(),
    firstTokenMs: z.object({ withState: z.number().nonnegative(), without: z.number().nonnegative() }),
    evaluatedTokens: z.object({ withState: z.number().int().nonnegative(), without: z.number().int().nonnegative() }),
    ratio: z.number().nonnegative(),
  }).optional(),
  /** `server`: a benchmark of an OpenAI-compatible server (load is the time to list its models; no threads). */
  backend: z.enum(['embedded', 'server']).optional(),
  server: z.object({ url: z.string() }).optional(),
  /** A server's point: latency and throughput at 1, 4 and 16 requests at once. */
  concurrency: z.array(latency.extend({ requests: z.number().int().positive(), tokensPerSecond: z.number().nonnegative() })).optional(),
  /** Each goal of the speed work beside what was measured (see goals.ts). */
  goals: z.array(z.object({ name: z.string(), measured: z.string(), goal: z.string(), met: z.boolean() })).optional(),
  /** Added when the benchmark runs from the extension: how long nanochat took to activate. */
  extension: z.object({
    activationMs: z.number().nonnegative(),
    /** From activation to the selected model ready, when it loaded on startup (goal: ≤ 1 s for the fixture model). */
    readyMs: z.number().nonnegative().optional(),
    /** The extension host's CPU time over the same span (all its threads). */
    startupCpuMs: z.number().nonnegative().optional(),
    /** The longest event-loop block of the extension host over the same span. */
    startupMaxBlockMs: z.number().nonnegative().optional(),
    /** The same, less garbage collection and waiting for a CPU (Linux): what the extension host's code held. */
    startupOwnBlockMs: z.number().nonnegative().optional(),
  }).optional(),
});
export type BenchReport = z.infer<typeof benchReportSchema>;
