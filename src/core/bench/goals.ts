import type { BenchReport } from './schema';
import { promptsOnFewerThreads } from './report';

export type Goal = NonNullable<BenchReport['goals']>[number];

const ms = (n: number) => `${Math.round(n)} ms`;
const x = (n: number) => `${Math.round(n * 100) / 100}×`;

/**
 * The speed goals beside what this report measured: each as ratios within one run, so the machine's
 * noise cancels. A goal whose measurement the report lacks (a quick run, no llama-bench) is left out.
 */
export function benchGoals(r: BenchReport): Goal[] {
  const goals: Goal[] = [];
  const add = (name: string, measured: string, goal: string, met: boolean) => goals.push({ name, measured, goal, met });
  if (r.extension?.readyMs !== undefined) add('Activation to model ready (warm start)', ms(r.extension.readyMs) + (r.extension.startupCpuMs === undefined ? '' : ` (${ms(r.extension.startupCpuMs)} of CPU)`), '≤ 1,000 ms (fixture model)', r.extension.readyMs <= 1000);
  if (r.eventLoop) {
    const worst = Object.entries(r.eventLoop.byPhase ?? {}).sort((a, b) => b[1] - a[1])[0];
    const where = worst && worst[1] >= r.eventLoop.maxBlockMs ? ` (${worst[0].toLowerCase()})` : '';
    // Whether the longest block was the garbage collector's, the scheduler's or the code's: the goal counts all.
    const { withoutGc, own } = r.eventLoop;
    const parts = [
      withoutGc && withoutGc.maxBlockMs < r.eventLoop.maxBlockMs ? `${ms(withoutGc.maxBlockMs)} less garbage collection` : '',
      own && own.maxBlockMs < (withoutGc?.maxBlockMs ?? r.eventLoop.maxBlockMs) ? `${ms(own.maxBlockMs)} less that and waiting for a CPU` : '',
    ].filter(Boolean);
    add('Longest event-loop block (load, new conversations, replies, concurrency)', ms(r.eventLoop.maxBlockMs) + where + parts.map((p) => `; ${p}`).join(''), '≤ 50 ms', r.eventLoop.maxBlockMs <= 50);
  }
  const fresh = r.firstTokenMs.newConversation?.median;
  const followUp = r.firstTokenMs.followUp?.median;
  if (fresh !== undefined && followUp) {
    add('First token of a new conversation ÷ a follow-up\'s', `${x(fresh / followUp)} (${ms(fresh)} vs ${ms(followUp)})`, '≤ 1.5×', fresh <= 1.5 * followUp);
  }
  if (r.backend !== 'server') {
    const alone = r.latencyMs.p50;
    if (alone > 0) {
      const ratio = r.concurrentLatencyMs.p50 / alone;
      add(`p50 latency of ${r.concurrentLatencyMs.requests} concurrent requests ÷ one alone`, `${x(ratio)} (${ms(r.concurrentLatencyMs.p50)} vs ${ms(alone)})`, `≤ ${r.concurrentLatencyMs.requests}×`, ratio <= r.concurrentLatencyMs.requests);
    }
    if (r.throughput) {
      const { singleTokensPerSecond: one, concurrentTokensPerSecond: all } = r.throughput;
      add('Throughput of the concurrent requests ÷ one request\'s', `${x(all / Math.max(1e-9, one))} (${all} vs ${one} tok/s)`, '≥ 1×', all >= one);
    }
  }
  for (const t of r.llamaCpp?.threads ?? []) {
    const worst = Math.min(t.prompt.ratio, t.generation.ratio, t.generationUnderLoad.ratio);
    add(`nanochat ÷ llama-bench at ${t.threads} thread${t.threads === 1 ? '' : 's'} (prompt, generation, generation under load)`,
      `${x(t.prompt.ratio)}, ${x(t.generation.ratio)}, ${x(t.generationUnderLoad.ratio)}`, '≥ 0.9× each', worst >= 0.9);
  }
  if (r.prefill) {
    const p = r.prefill;
    add(`Long prompt (${p.tokens} tokens) read as the default plan does (up to ${p.threads} threads, the idle ones) ÷ on one`, x(p.ms / Math.max(1e-9, p.oneThreadMs)), '≤ 0.6×', p.ms <= 0.6 * p.oneThreadMs);
    add('The same under load', x(p.underLoadMs / Math.max(1e-9, p.oneThreadUnderLoadMs)), '≤ 1× (no loss)', p.underLoadMs <= p.oneThreadUnderLoadMs * 1.05);
  }
  if (r.threads.length > 1 && r.defaultPlan) {
    const best = Math.max(...r.threads.map((t) => t.tokensPerSecond));
    const bestLoaded = Math.max(...r.threads.map((t) => t.underLoadTokensPerSecond));
    const d = r.defaultPlan;
    add(`Default threads (up to ${d.generation}, adaptive) ÷ the best fixed count, alone and under load`, `${x(d.tokensPerSecond / best)}, ${x(d.underLoadTokensPerSecond / Math.max(1e-9, bestLoaded))}`, '≥ 0.8× both',
      d.tokensPerSecond >= 0.8 * best && d.underLoadTokensPerSecond >= 0.8 * bestLoaded);
  }
  const byTurn = r.multiTurn.firstTokenMsByTurn;
  if (byTurn.length >= 10 && byTurn[0]) {
    const floor = r.llamaCpp?.depthCost;
    const theirs = floor ? `; llama-bench reading the same tokens at the same depth: ${x(floor.ratio)} (${floor.lastTokens} after ${floor.depth} vs ${floor.firstTokens})` : '';
    const runs = r.multiTurn.firstTokenMsRuns?.length ?? 1;
    // Turns whose prompt was read on fewer threads than the plan's most (another program busy at that moment).
    const most = r.multiTurn.promptThreads;
    const fewer = promptsOnFewerThreads(r) ?? 0;
    const read = fewer ? `; ${fewer} of ${runs * byTurn.length} prompts read on fewer than ${most} threads` : '';
    add(`First token at turn ${byTurn.length} ÷ turn 1${runs > 1 ? ` (medians of ${runs} conversations)` : ''}`, `${x(byTurn.at(-1)! / byTurn[0])} (${ms(byTurn.at(-1)!)} vs ${ms(byTurn[0])})${read}${theirs}`, '≤ 1.2×', byTurn.at(-1)! <= 1.2 * byTurn[0]);
  }
  if (r.bandwidth?.length && r.memory.modelBytes >= 250e6) {
    const best = r.bandwidth.reduce((a, b) => (b.utilisation > a.utilisation ? b : a));
    const theirs = Math.max(0, ...r.bandwidth.map((b) => b.llamaCppUtilisation ?? 0));
    add('Memory-bandwidth utilisation at the best thread count (read bandwidth, same thread count)', `${Math.round(best.utilisation * 100)}% at ${best.threads}${theirs ? `; llama-bench's generation: ${Math.round(theirs * 100)}% at its best` : ''}`, '≥ 70%', best.utilisation >= 0.7);
  }
  if (r.restart) {
    add(`First reply after a restart with a ${r.restart.preambleTokens}-token prompt: saved preamble ÷ evaluated again`, `${x(r.restart.ratio)} (${ms(r.restart.firstTokenMs.withState)} vs ${ms(r.restart.firstTokenMs.without)})`, 'faster (< 1×)', r.restart.ratio < 1);
  }
  if (r.toolPreamble) {
    add('First token with the same agent tools again ÷ the first time', x(r.toolPreamble.ratio), '≤ 0.1×', r.toolPreamble.ratio <= 0.1);
  }
  return goals;
}
