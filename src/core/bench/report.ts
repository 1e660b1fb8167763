import type { BenchReport } from './schema';
import { formatBytes } from '../format';

/** One line of the report's table: a measured value, the previous run's, and which way is better. */
export interface BenchRow {
  section: string;
  label: string;
  value: number;
  unit: 'ms' | 'tok/s' | 'bytes' | 'bytes/s' | '%' | '×' | '';
  /** The same measurement in the previous run of this model, when there is one. */
  previous?: number;
  better: 'higher' | 'lower' | 'none';
}

/** Multi-turn prompts read on fewer threads than the plan's most (another program was busy then); undefined in older reports. */
export function promptsOnFewerThreads(r: BenchReport): number | undefined {
  const most = r.multiTurn.promptThreads;
  return most ? (r.multiTurn.promptThreadsByTurn ?? []).flat().filter((t) => t > 0 && t < most).length : undefined;
}

/** Every number of a report as table rows, in reading order, each paired with the previous run's. */
export function benchRows(report: BenchReport, previous?: BenchReport): BenchRow[] {
  const rows: BenchRow[] = [];
  const add = (section: string, label: string, pick: (r: BenchReport) => number | undefined, unit: BenchRow['unit'], better: BenchRow['better']) => {
    const value = pick(report);
    if (value === undefined) return;
    const before = previous ? pick(previous) : undefined;
    rows.push({ section, label, value, unit, better, ...(before === undefined ? {} : { previous: before }) });
  };
  const load = 'Cold start';
  const server = report.backend === 'server';
  if (report.extension) add(load, 'Extension activation', (r) => r.extension?.activationMs, 'ms', 'lower');
  if (report.extension?.readyMs !== undefined) add(load, 'Activation to model ready (loaded on startup)', (r) => r.extension?.readyMs, 'ms', 'lower');
  if (report.extension?.startupMaxBlockMs !== undefined) add(load, 'Startup: longest event-loop block of the extension host', (r) => r.extension?.startupMaxBlockMs, 'ms', 'lower');
  if (report.extension?.startupOwnBlockMs !== undefined) add(load, 'Startup: the same, less garbage collection and waiting for a CPU', (r) => r.extension?.startupOwnBlockMs, 'ms', 'lower');
  if (server) {
    add(load, 'Connect (list the server\'s models)', (r) => r.load.totalMs, 'ms', 'lower');
  } else {
    add(load, 'Import node-llama-cpp', (r) => r.load.importMs, 'ms', 'lower');
    add(load, 'Import: longest event-loop block', (r) => r.load.importMaxBlockMs, 'ms', 'lower');
    add(load, 'Start llama.cpp', (r) => r.load.llamaMs, 'ms', 'lower');
    add(load, 'Load model', (r) => r.load.modelMs, 'ms', 'lower');
    add(load, 'Create context', (r) => r.load.contextMs, 'ms', 'lower');
    add(load, 'Total', (r) => r.load.totalMs, 'ms', 'lower');
  }

  const speed = 'Speed';
  add(speed, `First token, short prompt (${report.promptTokens.short} tokens)`, (r) => r.firstTokenMs.short.median, 'ms', 'lower');
  add(speed, `First token, long prompt (${report.promptTokens.long} tokens)`, (r) => r.firstTokenMs.long.median, 'ms', 'lower');
  add(speed, 'First token, new conversation', (r) => r.firstTokenMs.newConversation?.median, 'ms', 'lower');
  add(speed, 'First token, follow-up', (r) => r.firstTokenMs.followUp?.median, 'ms', 'lower');
  add(speed, 'Prompt processing', (r) => r.promptTokensPerSecond.median, 'tok/s', 'higher');
  add(speed, 'Generation (median)', (r) => r.generationTokensPerSecond.median, 'tok/s', 'higher');
  add(speed, 'Generation (p95)', (r) => r.generationTokensPerSecond.p95, 'tok/s', 'higher');
  add(speed, 'Longest event-loop block (load and chat)', (r) => r.eventLoop?.maxBlockMs, 'ms', 'lower');
  add(speed, 'The same, less garbage collection', (r) => r.eventLoop?.withoutGc?.maxBlockMs, 'ms', 'lower');
  add(speed, 'The same, less that and waiting for a CPU (the code\'s own)', (r) => r.eventLoop?.own?.maxBlockMs, 'ms', 'lower');
  if (!server) add(speed, 'Memory-bandwidth utilisation', (r) => Math.round(r.bandwidthUtilisation * 10000) / 100, '%', 'higher');

  const turns = 'Multi-turn';
  add(turns, `First token at turn ${report.multiTurn.turns}, KV cache reused`, (r) => r.multiTurn.withReuseMs, 'ms', 'lower');
  add(turns, `First token at turn ${report.multiTurn.turns}, history re-evaluated`, (r) => r.multiTurn.withoutReuseMs, 'ms', 'lower');
  add(turns, 'Speed-up from reuse', (r) => r.multiTurn.speedup, '×', 'higher');
  add(turns, `Prompt tokens evaluated at turn ${report.multiTurn.turns}`, (r) => r.multiTurn.evaluatedPromptTokensByTurn?.at(-1), '', 'lower');
  add(turns, 'Prompts read on fewer threads than the plan\'s most (other programs busy)', promptsOnFewerThreads, '', 'none');
  if (report.llamaCpp?.depthCost) add(turns, `llama-bench: reading turn ${report.multiTurn.turns}'s tokens at its depth ÷ turn 1's`, (r) => r.llamaCpp?.depthCost?.ratio, '×', 'none');

  if (report.prefill) {
    const prefill = `Prefill (${report.prefill.tokens}-token prompt)`;
    add(prefill, `${report.prefill.threads} threads`, (r) => r.prefill?.ms, 'ms', 'lower');
    add(prefill, '1 thread', (r) => r.prefill?.oneThreadMs, 'ms', 'lower');
    add(prefill, `${report.prefill.threads} threads, under load`, (r) => r.prefill?.underLoadMs, 'ms', 'lower');
    add(prefill, '1 thread, under load', (r) => r.prefill?.oneThreadUnderLoadMs, 'ms', 'lower');
  }

  if (report.restart) {
    const restart = `After a restart (${report.restart.preambleTokens}-token prompt)`;
    add(restart, 'First token, preamble loaded from its saved state', (r) => r.restart?.firstTokenMs.withState, 'ms', 'lower');
    add(restart, 'First token, preamble evaluated again', (r) => r.restart?.firstTokenMs.without, 'ms', 'lower');
  }

  if (report.toolPreamble) {
    const agent = `Agent tools (${report.toolPreamble.tools} VS Code tools, ${report.toolPreamble.tokens} tokens)`;
    add(agent, 'First token, first request', (r) => r.toolPreamble?.firstTokenMs.first, 'ms', 'lower');
    add(agent, 'First token, same tools again (goal ≤ 0.1×)', (r) => r.toolPreamble?.firstTokenMs.reused, 'ms', 'lower');
    add(agent, 'Prompt tokens evaluated, same tools again', (r) => r.toolPreamble?.evaluatedTokens.reused, '', 'lower');
  }

  const latency = 'Latency';
  add(latency, 'Cancel (median)', (r) => r.cancelLatencyMs.median, 'ms', 'lower');
  for (const p of ['p50', 'p95', 'p99'] as const) add(latency, `Request ${p}`, (r) => r.latencyMs[p], 'ms', 'lower');
  if (report.concurrency) {
    const level = 'Concurrency';
    for (const c of report.concurrency) {
      const at = (r: BenchReport) => r.concurrency?.find((x) => x.requests === c.requests);
      for (const p of ['p50', 'p95', 'p99'] as const) add(level, `${c.requests} at once, latency ${p}`, (r) => at(r)?.[p], 'ms', 'lower');
      add(level, `${c.requests} at once, throughput`, (r) => at(r)?.tokensPerSecond, 'tok/s', 'higher');
    }
  } else {
    for (const p of ['p50', 'p95', 'p99'] as const) add(latency, `${report.concurrentLatencyMs.requests} concurrent requests ${p}`, (r) => r.concurrentLatencyMs[p], 'ms', 'lower');
    add(latency, 'Throughput, one request', (r) => r.throughput?.singleTokensPerSecond, 'tok/s', 'higher');
    add(latency, `Throughput, ${report.concurrentLatencyMs.requests} concurrent requests`, (r) => r.throughput?.concurrentTokensPerSecond, 'tok/s', 'higher');
  }

  const tok = 'Tokenizer';
  add(tok, 'JS (@huggingface/tokenizers)', (r) => r.tokenizer.jsTokensPerSecond || undefined, 'tok/s', 'higher');
  add(tok, server ? 'Server /tokenize' : 'llama.cpp', (r) => r.tokenizer.llamaTokensPerSecond || undefined, 'tok/s', 'higher');
  add(tok, 'JS ÷ llama.cpp', (r) => r.tokenizer.ratio || undefined, '×', 'higher');

  const threads = 'Threads';
  for (const t of report.threads) {
    add(threads, `${t.threads} thread${t.threads === 1 ? '' : 's'}`, (r) => r.threads.find((x) => x.threads === t.threads)?.tokensPerSecond, 'tok/s', 'higher');
    add(threads, `${t.threads} thread${t.threads === 1 ? '' : 's'}, under load`, (r) => r.threads.find((x) => x.threads === t.threads)?.underLoadTokensPerSecond, 'tok/s', 'higher');
  }

  if (report.defaultPlan) {
    add(threads, `Default (up to ${report.defaultPlan.generation}, adaptive)`, (r) => r.defaultPlan?.tokensPerSecond, 'tok/s', 'higher');
    add(threads, `Default (up to ${report.defaultPlan.generation}, adaptive), under load`, (r) => r.defaultPlan?.underLoadTokensPerSecond, 'tok/s', 'higher');
  }
  for (const b of report.bandwidth ?? []) {
    const n = `${b.threads} thread${b.threads === 1 ? '' : 's'}`;
    add(threads, `${n}: read bandwidth`, (r) => r.bandwidth?.find((x) => x.threads === b.threads)?.readBytesPerSecond, 'bytes/s', 'none');
    add(threads, `${n}: bandwidth utilisation`, (r) => { const u = r.bandwidth?.find((x) => x.threads === b.threads)?.utilisation; return u === undefined ? undefined : Math.round(u * 10000) / 100; }, '%', 'higher');
    if (b.llamaCppUtilisation !== undefined) add(threads, `${n}: llama-bench's bandwidth utilisation`, (r) => { const u = r.bandwidth?.find((x) => x.threads === b.threads)?.llamaCppUtilisation; return u === undefined ? undefined : Math.round(u * 10000) / 100; }, '%', 'none');
  }

  if (report.llamaCpp) {
    const parity = 'nanochat ÷ llama.cpp (llama-bench)';
    for (const t of report.llamaCpp.threads) {
      const at = (r: BenchReport) => r.llamaCpp?.threads.find((x) => x.threads === t.threads);
      const n = `${t.threads} thread${t.threads === 1 ? '' : 's'}`;
      add(parity, `${n}: prompt`, (r) => at(r)?.prompt.ratio, '×', 'higher');
      add(parity, `${n}: generation`, (r) => at(r)?.generation.ratio, '×', 'higher');
      add(parity, `${n}: generation under load`, (r) => at(r)?.generationUnderLoad.ratio, '×', 'higher');
    }
  }

  const memory = 'Memory and machine';
  if (!server) {
    add(memory, 'RSS before load', (r) => r.memory.rssBeforeBytes, 'bytes', 'none');
    add(memory, 'RSS after load', (r) => r.memory.rssAfterBytes, 'bytes', 'lower');
    add(memory, 'Model file', (r) => r.memory.modelBytes, 'bytes', 'none');
    add(memory, 'Memory bandwidth (copy)', (r) => r.machine.bandwidthBytesPerSecond, 'bytes/s', 'none');
  }
  return rows;
}

export function formatValue(value: number, unit: BenchRow['unit']): string {
  switch (unit) {
    case 'bytes': return formatBytes(value);
    case 'bytes/s': return `${formatBytes(value)}/s`;
    case '×': return `${value}×`;
    case '%': return `${value}%`;
    case '': return String(value);
    default: return `${value.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${unit}`;
  }
}

/** The change from the previous run, e.g. "+12.5% better"; empty without a previous value. */
export function formatChange(row: BenchRow): string {
  if (row.previous === undefined) return '';
  if (row.previous === 0) return row.value === 0 ? '±0%' : 'new';
  const change = (row.value - row.previous) / row.previous;
  const percent = `${change >= 0 ? '+' : '−'}${Math.abs(change * 100).toFixed(1)}%`;
  if (row.better === 'none' || Math.abs(change) < 0.005) return percent;
  const improved = row.better === 'higher' ? change > 0 : change < 0;
  return `${percent} ${improved ? 'better' : 'worse'}`;
}

/** One line saying what was measured where, for titles and exports. */
export function benchTitle(report: BenchReport): string {
  const m = report.machine;
  if (report.backend === 'server') return `${report.model.name} on the server ${report.server?.url ?? ''}`;
  return `${report.model.name} (${report.model.architecture}, ${formatBytes(report.memory.modelBytes)}) on ${m.cpu}, ${m.cores} cores, ${m.backend.toUpperCase()}`;
}

/** The report as a Markdown document: a summary line and one table, with a comparison column when a previous run exists. */
export function benchMarkdown(report: BenchReport, previous?: BenchReport): string {
  const rows = benchRows(report, previous);
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    `# nanochat benchmark: ${cell(report.model.name)}`,
    '',
    `${cell(benchTitle(report))}. ${report.quick ? 'Quick run' : 'Full run'}: medians of ${report.runs} runs after a warm-up, ${new Date(report.createdAt).toISOString()}, Node ${report.machine.node}.`,
    ...(previous ? ['', `Compared with the previous run of this model on ${new Date(previous.createdAt).toISOString()}.`] : []),
    '',
    previous ? '| Section | Measurement | Value | Previous | Change |' : '| Section | Measurement | Value |',
    previous ? '|---|---|--:|--:|---|' : '|---|---|--:|',
  ];
  for (const row of rows) {
    const base = `| ${cell(row.section)} | ${cell(row.label)} | ${formatValue(row.value, row.unit)} |`;
    lines.push(previous ? `${base} ${row.previous === undefined ? '' : formatValue(row.previous, row.unit)} | ${formatChange(row)} |` : base);
  }
  if (report.goals?.length) {
    lines.push('', '## Goals', '', '| Goal | Measured | Target | Met |', '|---|---|---|---|');
    for (const g of report.goals) lines.push(`| ${cell(g.name)} | ${cell(g.measured)} | ${cell(g.goal)} | ${g.met ? 'yes' : '**no**'} |`);
  }
  if (report.build) lines.push('', `llama.cpp: ${report.build.persistentThreadpool ? 'built for this machine (persistent thread pool)' : `${report.build.type} binaries`}.`);
  lines.push('', `Default threads: ${report.defaultThreads}${report.defaultThreadsWithin80PercentUnderLoad ? ' (within 80% of the best setting under load)' : ' (NOT within 80% of the best setting under load)'}.`, '');
  return lines.join('\n');
}
