import os from 'node:os';
import type { ReplyStats } from '../chat/engine';
import { NanochatError } from '../errors';
import { ServerBackend } from '../server/serverBackend';
import { defaultSettings, type Settings } from '../settings';
import { BenchCancelledError, measureCopyBandwidth } from './bench';
import { corpusOfSize } from './corpus';
import { benchReportSchema, type BenchReport } from './schema';
import { LONG_PROMPT, benchPlan, latencies, round, summary } from './stats';

export interface ServerBenchOptions {
  /** The server's OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1. */
  url: string;
  /** A model id on the server; default: the first it lists. */
  model?: string;
  apiKey?: string;
  runs?: number;
  quick?: boolean;
  signal?: AbortSignal;
  onProgress?: (step: string, fraction: number) => void;
}

/** Requests at once in the concurrency measurement: a server's point is serving many. */
const CONCURRENCY_LEVELS = [1, 4, 16] as const;

/**
 * The benchmark against an OpenAI-compatible server, in the same report schema as the embedded one:
 * first-token time, prompt and generation speed, multi-turn with and without the server's prompt
 * cache, cancel latency, request latency, and p50/p95/p99 with tokens/s at 1, 4 and 16 requests at
 * once. A server that cannot be reached, or dies during the run, fails with one clear error.
 */
export async function runServerBenchmark(options: ServerBenchOptions): Promise<BenchReport> {
  const { quick, runs, maxTokens, progress } = benchPlan(options, 7, () => new BenchCancelledError());
  const settings: Settings = {
    ...defaultSettings(), backend: 'server', 'server.url': options.url, 'server.model': options.model ?? '',
    temperature: 0, seed: 1, maxTokens, systemPrompt: '',
  };
  const backend = new ServerBackend({ settings: () => settings, apiKey: async () => options.apiKey });
  // Every request checks: a server that dies mid-run ends the benchmark with its error.
  const reply = async (content: string, extra: { maxTokens?: number; history?: Array<{ role: 'user' | 'assistant'; content: string }> } = {}, signal?: AbortSignal): Promise<ReplyStats> => {
    const r = backend.reply({ messages: [...(extra.history ?? []), { role: 'user', content }] }, { maxTokens: extra.maxTokens ?? maxTokens, systemPrompt: null }, signal ?? options.signal);
    for await (const _ of r) { /* drain */ }
    const stats = await r.stats;
    if (options.signal?.aborted) throw new BenchCancelledError();
    if (stats.stopReason === 'error') throw new NanochatError(stats.error ?? 'The server failed during the benchmark.');
    return stats;
  };
  const firstToken = (s: ReplyStats) => s.timeToFirstTokenMs ?? s.totalMs;
  try {
    progress('Connecting');
    let t = performance.now();
    await backend.refresh(options.signal);
    const connectMs = performance.now() - t;
    const model = await backend.prepare(options.signal);
    await reply('Warm up.', { maxTokens: 4 });

    progress('Time to first token');
    const short: ReplyStats[] = [];
    const long: ReplyStats[] = [];
    for (let i = 0; i < runs; i++) {
      // A fresh nonce each run, so the server's prompt cache does not answer for it.
      short.push(await reply(`(${i}-${Date.now()}) Hello! Tell me a story.`));
      long.push(await reply(`(${i}-${Date.now()}) ${LONG_PROMPT}`, { maxTokens: 2 }));
    }
    const generation = short.map((s) => s.tokensPerSecond).filter((x) => x > 0);

    progress('Multi-turn with and without the prompt cache');
    const turns = quick ? 3 : 5;
    const history: Array<{ role: 'user' | 'assistant'; content: string }> = [];
    const firstTokenMsByTurn: number[] = [];
    for (let turn = 0; turn < turns; turn++) {
      const content = `Turn ${turn + 1}: ${LONG_PROMPT.slice(0, 200)}`;
      firstTokenMsByTurn.push(firstToken(await reply(content, { history })));
      history.push({ role: 'user', content }, { role: 'assistant', content: `Answer ${turn + 1}.` });
    }
    const withReuseMs = firstTokenMsByTurn.at(-1)!;
    // The same history behind a new first line: nothing of it is cached.
    const fresh = history.slice(0, -2).map((m, i) => (i === 0 ? { ...m, content: `(${Date.now()}) ${m.content}` } : m));
    const withoutReuseMs = firstToken(await reply(history.at(-2)!.content, { history: fresh }));

    progress('Cancellation latency');
    const cancel: number[] = [];
    for (let i = 0; i < runs; i++) {
      const controller = new AbortController();
      const r = backend.reply({ messages: [{ role: 'user', content: `(${i}) Write a very long story.` }] }, { maxTokens: 100_000, systemPrompt: null }, controller.signal);
      let abortedAt = 0;
      for await (const _ of r) { if (!abortedAt) { abortedAt = performance.now(); controller.abort(); } }
      await r.stats;
      cancel.push(performance.now() - (abortedAt || performance.now()));
    }

    progress('Request latency and concurrency');
    const single: number[] = [];
    for (let i = 0; i < (quick ? 4 : 20); i++) single.push((await reply(`Request ${i}`, { maxTokens: 16 })).totalMs);
    const concurrency: NonNullable<BenchReport['concurrency']> = [];
    for (const requests of CONCURRENCY_LEVELS) {
      const started = performance.now();
      const all = await Promise.all(Array.from({ length: requests }, (_, i) => reply(`Concurrent request ${i} of ${requests}`, { maxTokens: 16 })));
      const wall = (performance.now() - started) / 1000;
      const tokens = all.reduce((n, s) => n + s.completionTokens, 0);
      concurrency.push({ requests, ...latencies(all.map((s) => s.totalMs)), tokensPerSecond: round(tokens / wall) });
    }
    const most = concurrency.at(-1)!;

    progress('Tokenizer');
    const text = corpusOfSize(quick ? 50_000 : 200_000);
    t = performance.now();
    const counted = await backend.countTokens(text);
    const tokenizeMs = performance.now() - t;

    progress('Memory bandwidth');
    const bandwidth = measureCopyBandwidth(quick ? 64 : 256);
    options.onProgress?.('Done', 1);
    const rss = process.memoryUsage().rss;
    const report: BenchReport = {
      version: 1,
      createdAt: new Date().toISOString(),
      backend: 'server',
      server: { url: options.url },
      model: { path: `${options.url}#${model.id}`, name: model.name, architecture: model.family },
      quick, runs,
      load: { importMs: 0, llamaMs: 0, modelMs: 0, contextMs: 0, totalMs: round(connectMs) },
      firstTokenMs: { short: summary(short.map(firstToken)), long: summary(long.map(firstToken)) },
      promptTokens: { short: short[0]?.promptTokens ?? 0, long: long[0]?.promptTokens ?? 0 },
      promptTokensPerSecond: summary(long.map((s) => s.promptTokens / (Math.max(1, firstToken(s)) / 1000))),
      generationTokensPerSecond: summary(generation),
      multiTurn: { turns, withReuseMs: round(withReuseMs), withoutReuseMs: round(withoutReuseMs), speedup: round(withoutReuseMs / Math.max(1, withReuseMs)), firstTokenMsByTurn },
      cancelLatencyMs: summary(cancel),
      latencyMs: latencies(single),
      concurrentLatencyMs: { p50: most.p50, p95: most.p95, p99: most.p99, requests: most.requests },
      concurrency,
      tokenizer: { bytes: Buffer.byteLength(text), tokens: counted.tokens, jsTokensPerSecond: 0, llamaTokensPerSecond: counted.engine === 'server' ? Math.round(counted.tokens / (tokenizeMs / 1000)) : 0, ratio: 0 },
      memory: { rssBeforeBytes: rss, rssAfterBytes: rss, modelBytes: 0 },
      threads: [],
      defaultThreads: 0,
      defaultThreadsWithin80PercentUnderLoad: true,
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism?.() ?? os.cpus().length, backend: 'server', bandwidthBytesPerSecond: Math.round(bandwidth), node: process.version },
      bandwidthUtilisation: 0,
    };
    return benchReportSchema.parse(report);
  } finally {
    backend.dispose();
  }
}
