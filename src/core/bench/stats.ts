/** Small statistics shared by the embedded and the server benchmark. */
export const percentile = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0; };
export const round = (n: number): number => Math.round(n * 10) / 10;
export const summary = (xs: number[]) => ({ median: round(percentile(xs, 0.5)), p95: round(percentile(xs, 0.95)) });
export const latencies = (xs: number[]) => ({ p50: round(percentile(xs, 0.5)), p95: round(percentile(xs, 0.95)), p99: round(percentile(xs, 0.99)) });
export const LONG_PROMPT = 'Summarize the following notes in two sentences. ' + 'The team met to plan the next release of the editor extension; they reviewed open issues, agreed on priorities, and assigned owners. '.repeat(12);

/**
 * The shared shape of a benchmark run: its sizes from `quick`, and a progress reporter that checks
 * for cancellation at every step (`cancelled` makes the error the caller throws).
 */
export function benchPlan(options: { quick?: boolean; runs?: number; signal?: AbortSignal; onProgress?: (step: string, fraction: number) => void }, steps: number, cancelled: () => Error) {
  const quick = options.quick ?? false;
  let step = 0;
  return {
    quick, runs: options.runs ?? (quick ? 2 : 5), maxTokens: quick ? 24 : 64,
    progress: (name: string) => {
      if (options.signal?.aborted) throw cancelled();
      options.onProgress?.(name, step++ / steps);
    },
  };
}
