/** Small statistics shared by the embedded and the server benchmark. */
export const percentile = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0; };
export const round = (n: number): number => Math.round(n * 10) / 10;
export const summary = (xs: number[]) => ({ median: round(percentile(xs, 0.5)), p95: round(percentile(xs, 0.95)) });
export const latencies = (xs: number[]) => ({ p50: round(percentile(xs, 0.5)), p95: round(percentile(xs, 0.95)), p99: round(percentile(xs, 0.99)) });
export const LONG_PROMPT = 'Summarize the following notes in two sentences. ' + 'The team met to plan the next release of the editor extension; they reviewed open issues, agreed on priorities, and assigned owners. '.repeat(12);
