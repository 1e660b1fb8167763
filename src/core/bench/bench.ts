import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vscodeTools from './vscodeTools.json';
import { trackBlocksAndGc, trackLongestBlock, type BlockFigures } from '../eventLoop';
import { corpusOfSize } from './corpus';
import { compareWithLlamaCpp, inTurn, llamaCppDepthCost } from './parity';
import { EmbeddedBackend, type ChatBackend } from '../chat/backend';
import { ChatEngine, type ReplyStats } from '../chat/engine';
import { ModelLibrary, type KeyValueStore } from '../modelFiles/library';
import { TokenCounter } from '../tokens/tokenCounter';
import { NanochatError } from '../errors';
import { checkModelFile } from '../modelFiles/ggufCheck';
import { backendOf, getLlamaFor, importNodeLlamaCpp, isMachineBuild, loadModelLean } from '../engine/llama';
import { silentLogger, type Logger } from '../log';
import { ModelManager } from '../engine/models';
import { defaultSettings, type Settings } from '../settings';
import { applyThreadPlan, decodeAhead, planThreads, type ThreadPlan } from '../engine/threads';
import { PromptStates } from '../engine/promptStates';
import { measureReadBandwidth } from './bandwidth';
import { benchGoals } from './goals';
import { loadJsTokenizer } from '../tokens/tokenizer';
import { benchReportSchema, type BenchReport } from './schema';
import { LONG_PROMPT, benchPlan, latencies, percentile, round, summary } from './stats';

export { benchReportSchema, type BenchReport } from './schema';

export interface BenchOptions {
  modelPath: string;
  /** Runs per measurement after a warm-up (default 5; 2 with quick). */
  runs?: number;
  /** Fewer and shorter runs: under a minute on a small model. */
  quick?: boolean;
  signal?: AbortSignal;
  onProgress?: (step: string, fraction: number) => void;
  log?: Logger;
  /** llama.cpp's llama-bench: when given, each thread count is compared with it (`llamaCpp` in the report). */
  llamaBench?: string;
}


export class BenchCancelledError extends NanochatError {
  constructor() { super('The benchmark was cancelled.'); }
}


/**
 * Measures a model the way a user feels it: cold start, time to first token, prompt and generation
 * speed, KV-cache reuse across turns, cancellation, request latency alone and under concurrency,
 * tokenizer speed, memory, thread scaling (also with a competing CPU load), and how close generation
 * comes to the machine's memory bandwidth.
 */
export async function runBenchmark(options: BenchOptions): Promise<BenchReport> {
  const { quick, runs, maxTokens, progress } = benchPlan(options, 9, () => new BenchCancelledError());
  const log = options.log ?? silentLogger;

  progress('Checking the model');
  const importBlocks = trackLongestBlock();
  let t = performance.now();
  const { LlamaCompletion } = await importNodeLlamaCpp();
  const importMs = performance.now() - t;
  const importMaxBlockMs = await importBlocks.stop();
  const file = await checkModelFile(options.modelPath);
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const rssBeforeBytes = process.memoryUsage().rss;

  progress('Loading');
  t = performance.now();
  // The extension's own llama.cpp instance: a build for this machine when there is one.
  const llama = await getLlamaFor('auto', log);
  const llamaMs = performance.now() - t;
  // The extension's defaults: generation and prompt thread counts from the physical performance cores.
  const plan = planThreads(0, llama.cpuMathCores);
  const defaultThreads = plan.generation;
  const settings: Settings = { ...defaultSettings(), model: options.modelPath, gpu: 'auto', temperature: 0, seed: 1, contextSize: 2048, maxTokens, idleUnloadMinutes: 0 };
  t = performance.now();
  // As the extension loads: no vocabulary strings, so none are left as garbage for the timed phases.
  let model = await loadModelLean(llama, { modelPath: options.modelPath });
  const modelMs = performance.now() - t;
  t = performance.now();
  const context = await model.createContext({ contextSize: 512, threads: defaultThreads });
  const contextMs = performance.now() - t;
  await context.dispose();
  const rssAfterBytes = process.memoryUsage().rss;
  // Put away until the phases that measure llama.cpp directly: the extension's load (below, timed for
  // the event loop) happens in a process holding no other model, and a second one in memory makes
  // each fork (the chat format's child process) slower (~40 ms against ~10 here).
  await model.dispose();

  // As in the extension: the chat format is resolved in a child process (a first load: no cache).
  const formatWorker = [path.join(__dirname, 'chatFormatWorker.js'), path.resolve(__dirname, '..', '..', '..', 'dist', 'chatFormatWorker.js')].find((f) => fs.existsSync(f));
  // Resolved chat formats are remembered as the extension remembers them (its global state): the first
  // load of this file resolves it in the child process, every later load (a restart, another window) finds it.
  const formatCache = memoryStore();
  const manager = new ModelManager({ settings: () => settings, sequences: 4, log, chatFormat: { workerScript: formatWorker, cache: formatCache } });
  const chat = new ChatEngine(manager, () => settings, log);
  // Replies go through the same seam as every surface's (the server backend will slot in here).
  const tokenCounter = new TokenCounter({ models: manager, log });
  const backend: ChatBackend = new EmbeddedBackend({
    models: manager, chat, tokens: tokenCounter, settings: () => settings, log,
    library: new ModelLibrary(memoryStore()),
  });
  let conversation = 0;
  const reply = async (messages: Array<{ role: 'user' | 'assistant'; content: string }>, id = `bench-${conversation++}`, extra: { maxTokens?: number; text?: string[] } = {}, signal?: AbortSignal) => {
    const r = backend.reply({ id, messages }, { maxTokens: extra.maxTokens ?? maxTokens, systemPrompt: null }, signal);
    for await (const delta of r) extra.text?.push(delta);
    return r.stats;
  };
  // The longest the event loop stood still while loading and chatting (the extension host does the
  // same work): the tokenizer, thread and bandwidth phases below time synchronous work on purpose.
  // Each phase's longest block is kept apart, so a figure over the goal names where it happened.
  // Each block's garbage-collection pauses are taken out too: the report says which were the collector's.
  const loop = trackBlocksAndGc();
  const blocksByPhase: Array<[string, Promise<BlockFigures>]> = [];
  let loopPhase = 'Load and first reply';
  const phase = (name: string) => {
    blocksByPhase.push([loopPhase, loop.take()]);
    loopPhase = name;
    progress(name);
  };
  try {
    await reply([{ role: 'user', content: 'Warm up.' }], 'warm-up', { maxTokens: 4 });
    chat.clearCaches();

    phase('Time to first token');
    const short: ReplyStats[] = [], long: ReplyStats[] = [];
    for (let i = 0; i < runs; i++) {
      const id = `bench-${conversation++}`;
      short.push(await reply([{ role: 'user', content: 'Hello! Tell me a story.' }], id));
      chat.clearCaches();
      const longId = `bench-${conversation++}`;
      long.push(await reply([{ role: 'user', content: LONG_PROMPT }], longId, { maxTokens: 2 }));
      chat.clearCaches();
    }
    const generation = short.map((s) => s.tokensPerSecond).filter((x) => x > 0);

    phase('Multi-turn with and without KV-cache reuse');
    // The model's own replies go back into the history, as in a real chat: a follow-up must evaluate
    // only its new tokens even though the previous reply is re-tokenized from its text.
    const turns = quick ? 3 : 10;
    // The same conversation `runs` times, each turn's figure the median: one 10-turn run on this noisy
    // machine swung turn 10 ÷ turn 1 from 1.7× to 2.4×. Each turn also says how many threads read its prompt.
    const firstTokenMsRuns: number[][] = [];
    const promptThreadsByTurn: number[][] = [];
    const evaluatedPromptTokensByTurn: number[] = [];
    const promptTokensByTurn: number[] = [];
    let history: Array<{ role: 'user' | 'assistant'; content: string }> = [];
    for (let run = 0; run < runs; run++) {
      history = [];
      const times: number[] = [], threadsRead: number[] = [];
      for (let turn = 0; turn < turns; turn++) {
        history.push({ role: 'user', content: `Turn ${turn + 1}: ${LONG_PROMPT.slice(0, 200)}` });
        const text: string[] = [];
        const threadPlan = manager.model?.threads;
        if (threadPlan) threadPlan.lastPrompt = undefined;
        const stats = await reply(history, `multi-turn-${run}`, { maxTokens: 16, text });
        times.push(firstTokenMs(stats));
        threadsRead.push(threadPlan?.lastPrompt?.threads ?? 0);
        if (run === 0) {
          evaluatedPromptTokensByTurn.push(stats.evaluatedPromptTokens);
          promptTokensByTurn.push(stats.promptTokens);
        }
        history.push({ role: 'assistant', content: text.join('') });
      }
      firstTokenMsRuns.push(times);
      promptThreadsByTurn.push(threadsRead);
      chat.clearCaches();
    }
    const firstTokenMsByTurn = firstTokenMsRuns[0]!.map((_, turn) => round(percentile(firstTokenMsRuns.map((times) => times[turn]!), 0.5)));
    const withReuseMs = firstTokenMsByTurn.at(-1)!;
    history.pop();
    const followUps = firstTokenMsByTurn.slice(1);
    const fresh = await reply(history, 'multi-turn-fresh');
    chat.clearCaches();
    const withoutReuseMs = firstTokenMs(fresh);

    // An agent-sized preamble: the 27 tools VS Code 1.139.1 sends with an Agent-mode request (captured
    // from a real VS Code, src/core/bench/vscodeTools.json). The second request with the same preamble
    // must find it in the KV cache. Full runs only: the first evaluation takes most of a minute on 2 cores.
    let toolPreamble: BenchReport['toolPreamble'];
    if (!quick && Math.min(16384, file.trainContextSize ?? 0) >= 12288) {
      phase('Agent tools preamble');
      toolPreamble = await measureToolPreamble(settings, Math.min(16384, file.trainContextSize ?? 0), log, formatWorker, formatCache);
    }

    // A restart with a long preamble: the first reply of a new session, with the preamble's saved
    // state and without it. Full runs only (it loads the model three more times).
    let restart: BenchReport['restart'];
    if (!quick && (file.trainContextSize ?? 0) >= 4096) {
      phase('First reply after a restart');
      restart = await measureRestart(settings, log, formatWorker, 2000, formatCache);
    }

    phase('Cancellation latency');
    const cancel: number[] = [];
    for (let i = 0; i < runs; i++) {
      const controller = new AbortController();
      const id = `bench-${conversation++}`;
      const r = backend.reply({ id, messages: [{ role: 'user', content: 'Write a very long story.' }] }, { maxTokens: 100_000, systemPrompt: null }, controller.signal);
      let abortedAt = 0;
      for await (const _ of r) { if (!abortedAt) { abortedAt = performance.now(); controller.abort(); } }
      await r.stats;
      cancel.push(performance.now() - (abortedAt || performance.now()));
      chat.clearCaches();
    }

    phase('Request latency');
    const requests = quick ? 4 : 20;
    const single: number[] = [];
    // One request's throughput is the median of these requests' (one ~300 ms request swung it by 1.5×).
    const singleRates: number[] = [];
    for (let i = 0; i < requests; i++) {
      const id = `bench-${conversation++}`;
      const stats = await reply([{ role: 'user', content: `Request ${i}` }], id, { maxTokens: 16 });
      single.push(stats.totalMs);
      singleRates.push(stats.completionTokens / Math.max(1e-3, stats.totalMs / 1000));
      chat.clearCaches();
    }
    const concurrency = 10;
    const started = performance.now();
    let concurrentTokens = 0;
    const concurrent = await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
      const id = `bench-${conversation++}`;
      const stats = await reply([{ role: 'user', content: `Concurrent request ${i}` }], id, { maxTokens: 16 });
      concurrentTokens += stats.completionTokens;
      return performance.now() - started;
    }));
    const concurrentSeconds = (performance.now() - started) / 1000;
    chat.clearCaches();

    progress('Tokenizer');
    blocksByPhase.push([loopPhase, loop.stop()]);
    const eventLoop = eventLoopFigures(await Promise.all(blocksByPhase.map(async ([name, figures]) => [name, await figures] as const)));
    model = await loadModelLean(llama, { modelPath: options.modelPath });

    const text = corpusOfSize(quick ? 200_000 : 1_000_000);
    const js = await loadJsTokenizer(options.modelPath).catch(() => undefined);
    let jsMs = Number.POSITIVE_INFINITY;
    let tokens = 0;
    if (js) { t = performance.now(); tokens = js.count(text); jsMs = performance.now() - t; }
    t = performance.now();
    const llamaTokens = model.tokenize(text, false).length;
    const llamaTokMs = performance.now() - t;

    progress('Threads, alone and under load');
    const threadCounts = [...new Set(quick ? [1, cores] : Array.from({ length: cores }, (_, i) => i + 1))];
    const threads: BenchReport['threads'] = [];
    for (const count of threadCounts) {
      const alone = await completionSpeed(model, LlamaCompletion, count, maxTokens);
      const load = await startCpuLoad(cores);
      const underLoad = await completionSpeed(model, LlamaCompletion, count, maxTokens).finally(() => load.stop());
      threads.push({ threads: count, tokensPerSecond: round(alone), underLoadTokensPerSecond: round(underLoad) });
    }
    const bestUnderLoad = Math.max(...threads.map((x) => x.underLoadTokensPerSecond));
    // The default as the extension runs it: prompts on every performance core, generation on the
    // count that is fastest at the moment (GenerationThreads), alone and under the same load.
    const planned = { tokensPerSecond: round(await completionSpeed(model, LlamaCompletion, defaultThreads, 64, plan)), underLoadTokensPerSecond: 0 };
    {
      const load = await startCpuLoad(cores);
      planned.underLoadTokensPerSecond = round(await completionSpeed(model, LlamaCompletion, defaultThreads, 64, plan).finally(() => load.stop()));
    }
    const defaultUnderLoad = planned.underLoadTokensPerSecond;

    progress('Prompt threads, alone and under load');
    const prefill = await measurePrefill(model, plan, quick ? 256 : 1024, () => startCpuLoad(cores));

    const llamaCpp: BenchReport['llamaCpp'] = options.llamaBench
      ? await compareWithLlamaCpp({ llamaBench: options.llamaBench, modelPath: options.modelPath, model, threads: threadCounts, quick, runs, cpuLoad: () => startCpuLoad(cores) })
      : undefined;
    if (llamaCpp && options.llamaBench && turns >= 2) {
      // The multi-turn goal's floor: llama.cpp reading the last turn's new tokens at its depth ÷ the first turn's.
      progress('llama-bench: the cost of depth');
      const last = { tokens: evaluatedPromptTokensByTurn.at(-1)!, depth: promptTokensByTurn.at(-1)! - evaluatedPromptTokensByTurn.at(-1)! };
      const cost = await llamaCppDepthCost(options.llamaBench, options.modelPath, plan.prompt, { tokens: evaluatedPromptTokensByTurn[0]! }, last);
      llamaCpp.depthCost = { firstTokens: evaluatedPromptTokensByTurn[0]!, lastTokens: last.tokens, depth: last.depth, threads: plan.prompt, ...cost };
    }

    progress('Memory bandwidth');
    const bandwidth = measureCopyBandwidth(quick ? 64 : 256);
    const readBandwidth: NonNullable<BenchReport['bandwidth']> = [];
    for (const t of threads) {
      const read = await measureReadBandwidth(t.threads, quick ? 32 : 128);
      // llama-bench's generation at the same count, beside it: how much of the bandwidth llama.cpp itself uses.
      // nanochat's is then the comparison's own figure, measured the same way (the median of its rounds
      // of 128 tokens, never an early end) rather than the thread scan's one 64-token sample.
      const compared = llamaCpp?.threads.find((x) => x.threads === t.threads)?.generation;
      const theirs = compared?.llamaCpp;
      const ours = compared?.nanochat || t.tokensPerSecond;
      readBandwidth.push({
        threads: t.threads, readBytesPerSecond: Math.round(read), utilisation: Number(((file.tensorBytes * ours) / read).toFixed(4)), tokensPerSecond: ours,
        ...(theirs ? { llamaCppUtilisation: Number(((file.tensorBytes * theirs) / read).toFixed(4)) } : {}),
      });
    }
    options.onProgress?.('Done', 1);

    const shortFirstToken = summary(short.map(firstTokenMs));
    const report: BenchReport = {
      version: 1,
      createdAt: new Date().toISOString(),
      model: { path: options.modelPath, name: file.name, architecture: file.architecture, parameters: file.parameters },
      quick, runs,
      load: { importMs: round(importMs), importMaxBlockMs: round(importMaxBlockMs), llamaMs: round(llamaMs), modelMs: round(modelMs), contextMs: round(contextMs), totalMs: round(importMs + llamaMs + modelMs + contextMs) },
      // Each short-prompt run is a brand-new conversation, timed from the call: the same figure.
      firstTokenMs: { short: shortFirstToken, long: summary(long.map(firstTokenMs)), newConversation: shortFirstToken, followUp: summary(followUps) },
      promptTokens: { short: short[0]?.promptTokens ?? 0, long: long[0]?.promptTokens ?? 0 },
      promptTokensPerSecond: summary(long.map((s) => s.promptTokens / (Math.max(1, firstTokenMs(s)) / 1000))),
      generationTokensPerSecond: summary(generation),
      multiTurn: {
        turns, withReuseMs: round(withReuseMs), withoutReuseMs: round(withoutReuseMs), speedup: round(withoutReuseMs / Math.max(1, withReuseMs)), firstTokenMsByTurn, evaluatedPromptTokensByTurn,
        firstTokenMsRuns: firstTokenMsRuns.map((times) => times.map(round)), promptThreadsByTurn, promptThreads: plan.prompt,
      },
      cancelLatencyMs: summary(cancel),
      latencyMs: latencies(single),
      concurrentLatencyMs: { ...latencies(concurrent), requests: concurrency },
      throughput: { singleTokensPerSecond: round(summary(singleRates).median), concurrentTokensPerSecond: round(concurrentTokens / Math.max(1e-3, concurrentSeconds)) },
      tokenizer: { bytes: Buffer.byteLength(text), tokens: llamaTokens, jsTokensPerSecond: js ? Math.round(tokens / (jsMs / 1000)) : 0, llamaTokensPerSecond: Math.round(llamaTokens / (llamaTokMs / 1000)), ratio: js ? round(llamaTokMs / jsMs) : 0 },
      memory: { rssBeforeBytes, rssAfterBytes, modelBytes: file.sizeBytes },
      threads,
      defaultThreads,
      defaultThreadsWithin80PercentUnderLoad: defaultUnderLoad >= 0.8 * bestUnderLoad,
      defaultPlan: { generation: plan.generation, prompt: plan.prompt, ...planned },
      prefill,
      bandwidth: readBandwidth,
      build: { type: llama.buildType, persistentThreadpool: isMachineBuild(llama) },
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores, backend: backendOf(llama), bandwidthBytesPerSecond: Math.round(bandwidth), node: process.version },
      // The best thread count's share of the read bandwidth its readers reach (see `bandwidth`).
      bandwidthUtilisation: Math.max(0, ...readBandwidth.map((b) => b.utilisation)),
      eventLoop,
      ...(toolPreamble ? { toolPreamble } : {}),
      ...(restart ? { restart } : {}),
      ...(llamaCpp ? { llamaCpp } : {}),
    };
    report.goals = benchGoals(report);
    return benchReportSchema.parse(report);
  } finally {
    void loop.stop();
    backend.dispose();
    chat.dispose();
    await tokenCounter.dispose();
    await manager.dispose();
    await model.dispose();
  }
}

/**
 * An agent-sized preamble: the 27 tools VS Code 1.139.1 sends with an Agent-mode request (captured from a
 * real VS Code, vscodeTools.json), on a context of its own. The second request with the same preamble
 * must find it in the KV cache (goal: its first token ≤ 0.1 × the first's).
 */
export async function measureToolPreamble(settings: Settings, contextSize: number, log: Logger, formatWorker?: string, formatCache?: KeyValueStore): Promise<NonNullable<BenchReport['toolPreamble']>> {
  const wide: Settings = { ...settings, contextSize };
  const models = new ModelManager({ settings: () => wide, sequences: 1, log, chatFormat: { workerScript: formatWorker, cache: formatCache } });
  const chat = new ChatEngine(models, () => wide, log);
  try {
    const tools = (vscodeTools as Array<{ name: string; description?: string; inputSchema?: object }>).map((t) => ({ name: t.name, description: t.description, parameters: t.inputSchema }));
    const ask = async (content: string) => {
      const r = chat.reply({ messages: [{ role: 'user', content }] }, { tools, maxTokens: 1, systemPrompt: settings.systemPrompt, timeoutMs: 0 });
      for await (const _ of r) { /* one token */ }
      return r.stats;
    };
    const first = await ask('List the files in this workspace.');
    const reused = await ask('What does sample.py do?');
    return {
      tools: tools.length, tokens: first.promptTokens,
      firstTokenMs: { first: round(firstTokenMs(first)), reused: round(firstTokenMs(reused)) },
      evaluatedTokens: { first: first.evaluatedPromptTokens, reused: reused.evaluatedPromptTokens },
      ratio: Number((firstTokenMs(reused) / Math.max(1, firstTokenMs(first))).toFixed(3)),
    };
  } finally {
    chat.dispose();
    await models.dispose();
  }
}

/**
 * The first reply after a restart, with a 2,000-token preamble (a long system prompt): each session
 * is a new model load and context, as a new window is; the reply's first token is timed from the
 * call, after the load. The first session evaluates the preamble and saves its state; the next
 * loads it. Without a saved state, the preamble is evaluated again.
 */
export async function measureRestart(settings: Settings, log: Logger, formatWorker?: string, preambleTokens = 2000, formatCache: KeyValueStore = memoryStore()): Promise<NonNullable<BenchReport['restart']>> {
  const wide: Settings = { ...settings, contextSize: 4096 };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-prompt-states-'));
  const states = new PromptStates({ dir, log });
  const session = async (withStates: boolean, system: string) => {
    // Each session finds the chat format the first one resolved, as a restarted extension does.
    const models = new ModelManager({ settings: () => wide, sequences: 1, log, chatFormat: { workerScript: formatWorker, cache: formatCache } });
    const chat = new ChatEngine(models, () => wide, log, withStates ? states : undefined);
    try {
      await models.load();
      const r = chat.reply({ messages: [{ role: 'user', content: 'What does the guide say about releases?' }] }, { systemPrompt: system, maxTokens: 1, timeoutMs: 0 });
      for await (const _ of r) { /* one token */ }
      return r.stats;
    } finally {
      chat.dispose();
      await models.dispose();
    }
  };
  try {
    // A system prompt of about `preambleTokens` tokens (about four characters each; the report gives the exact count).
    const system = corpusOfSize(preambleTokens * 4);
    await session(true, system); // evaluates the preamble and saves its state
    const withState = await session(true, system);
    const without = await session(false, system);
    return {
      preambleTokens: withState.promptTokens,
      firstTokenMs: { withState: round(firstTokenMs(withState)), without: round(firstTokenMs(without)) },
      evaluatedTokens: { withState: withState.evaluatedPromptTokens, without: without.evaluatedPromptTokens },
      ratio: Number((firstTokenMs(withState) / Math.max(1, firstTokenMs(without))).toFixed(3)),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The report's event-loop figures from each phase's: the longest block, less garbage collection, less that and waiting for a CPU, the longest collection. */
export function eventLoopFigures(phases: ReadonlyArray<readonly [string, BlockFigures]>): NonNullable<BenchReport['eventLoop']> {
  const by = (pick: (f: BlockFigures) => number) => {
    const out: Record<string, number> = {};
    for (const [name, figures] of phases) out[name] = round(Math.max(out[name] ?? 0, pick(figures)));
    return out;
  };
  const byPhase = by((f) => f.longestMs);
  const lessGc = by((f) => f.longestLessGcMs);
  const own = by((f) => f.longestOwnMs);
  return {
    maxBlockMs: Math.max(0, ...Object.values(byPhase)),
    byPhase,
    withoutGc: { maxBlockMs: Math.max(0, ...Object.values(lessGc)), byPhase: lessGc },
    own: { maxBlockMs: Math.max(0, ...Object.values(own)), byPhase: own },
    longestGcByPhase: by((f) => f.longestGcMs),
  };
}

/** A key-value store in memory, as the extension's global state is on disk. */
function memoryStore(): KeyValueStore {
  const values = new Map<string, unknown>();
  return { get: <T>(key: string) => values.get(key) as T | undefined, update: async (key, value) => { values.set(key, value); } };
}

/**
 * Time until the first token was sampled. A model that samples end-of-generation first (random
 * weights can) produces no text token: then the reply's end is that moment.
 */
function firstTokenMs(stats: ReplyStats): number {
  return stats.timeToFirstTokenMs ?? stats.totalMs;
}

/** Generation tokens per second of a plain completion with a given thread count. */
async function completionSpeed(model: import('node-llama-cpp', { with: { 'resolution-mode': 'import' } }).LlamaModel,
  Completion: typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' } }).LlamaCompletion, threads: number, maxTokens: number, plan?: ThreadPlan): Promise<number> {
  const context = await model.createContext({ contextSize: 512, threads: plan ? Math.max(plan.prompt, plan.generation) : threads });
  decodeAhead(context); // as the extension's contexts decode
  if (plan) applyThreadPlan(context, plan);
  try {
    const completion = new Completion({ contextSequence: context.getSequence() });
    let first = 0;
    let count = 0;
    await completion.generateCompletion('Once upon a time', { maxTokens, temperature: 0, onToken: () => { count++; first ||= performance.now(); } });
    const seconds = (performance.now() - first) / 1000;
    return count > 1 && seconds > 0 ? (count - 1) / seconds : 0;
  } finally {
    await context.dispose();
  }
}

/**
 * A long prompt read as the extension reads it (the default plan: every performance core that other
 * programs leave idle) and on one thread, alone and under load: it must gain alone and not lose when
 * other programs are busy.
 */
async function measurePrefill(model: import('node-llama-cpp', { with: { 'resolution-mode': 'import' } }).LlamaModel, plan: ThreadPlan, tokens: number,
  cpuLoad: () => Promise<{ stop(): void }>): Promise<NonNullable<BenchReport['prefill']>> {
  const prompt = model.tokenize(corpusOfSize(tokens * 8), false).slice(0, tokens);
  const planned = await model.createContext({ contextSize: tokens + 64, threads: plan.prompt, batchSize: 512, sequences: 1 });
  applyThreadPlan(planned, plan);
  const single = await model.createContext({ contextSize: tokens + 64, threads: 1, batchSize: 512, sequences: 1 });
  const read = async (context: typeof planned) => {
    const sequence = context.getSequence();
    try {
      const started = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(prompt);
      return performance.now() - started;
    } finally {
      sequence.dispose();
    }
  };
  // The two alternate, read by read, under one load: a machine that drifts moves both alike; which
  // goes first alternates too.
  const rounds = async () => {
    const a: number[] = [], b: number[] = [];
    for (let i = 0; i < 3; i++) await inTurn(i, async () => { a.push(await read(planned)); }, async () => { b.push(await read(single)); });
    return { planned: round(percentile(a, 0.5)), single: round(percentile(b, 0.5)) };
  };
  try {
    const alone = await rounds();
    const load = await cpuLoad();
    const loaded = await rounds().finally(() => load.stop());
    return { tokens: prompt.length, threads: plan.prompt, ms: alone.planned, underLoadMs: loaded.planned, oneThreadMs: alone.single, oneThreadUnderLoadMs: loaded.single };
  } finally {
    await planned.dispose();
    await single.dispose();
  }
}

/** Busy worker threads on every core, as an editor compiling or indexing would be. */
export async function startCpuLoad(cores: number): Promise<{ stop: () => void }> {
  // Other processes, as a compiler or an indexer is: the same load for nanochat and for llama-bench.
  const busy = Array.from({ length: cores }, () => spawn(process.execPath, ['-e', 'const end = Date.now() + 600000; while (Date.now() < end) {}'], {
    stdio: 'ignore', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', NODE_OPTIONS: '' },
  }));
  for (const child of busy) child.on('error', () => undefined);
  await new Promise((resolve) => setTimeout(resolve, 150));
  return { stop: () => { for (const child of busy) child.kill('SIGKILL'); } };
}

/** Memory bandwidth from a plain buffer copy: bytes read plus bytes written, per second. */
export function measureCopyBandwidth(megabytes: number): number {
  const source = Buffer.alloc(megabytes * 1024 * 1024, 1);
  const target = Buffer.alloc(source.length);
  source.copy(target);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    source.copy(target);
    samples.push((2 * source.length) / ((performance.now() - started) / 1000));
  }
  return percentile(samples, 0.5);
}

/** Reports in a history file (JSON lines), oldest first; broken lines are skipped. */
export function readHistory(file: string): BenchReport[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((line) => {
    try {
      const parsed = benchReportSchema.safeParse(JSON.parse(line));
      return parsed.success ? [parsed.data] : [];
    } catch { return []; }
  });
}

/** The most recent report of the same model in a history, before `report` when it is given. */
export function previousRun(history: BenchReport[], modelPath: string, before?: BenchReport): BenchReport | undefined {
  const end = before ? history.findIndex((r) => r.createdAt === before.createdAt && r.model.path === before.model.path) : -1;
  return (end >= 0 ? history.slice(0, end) : [...history]).reverse().find((r) => r.model.path === modelPath);
}

/**
 * Writes a report to a history file (JSON lines, the newest `keep` kept) and returns the previous
 * report of the same model for comparison.
 */
export function appendHistory(file: string, report: BenchReport, keep = 200): BenchReport | undefined {
  const history = readHistory(file);
  const previous = previousRun(history, report.model.path);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const kept = [...history, report].slice(-keep);
  const temporary = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temporary, kept.map((r) => JSON.stringify(r)).join('\n') + '\n');
  fs.renameSync(temporary, file);
  return previous;
}
