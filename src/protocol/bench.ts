import { z } from 'zod';
import { benchReportSchema } from '../core/bench/schema';

/** Messages between the benchmark report webview and the extension host, validated on arrival. */
export const benchToWebviewSchema = z.object({
  type: z.literal('report'),
  report: benchReportSchema,
  previous: benchReportSchema.nullable(),
  /** Earlier runs of the same model, oldest first (the report itself last). */
  history: z.array(z.object({ createdAt: z.string(), generationTokensPerSecond: z.number(), firstTokenMs: z.number() })).max(1000),
});
export type BenchToWebview = z.infer<typeof benchToWebviewSchema>;

export const benchFromWebviewSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready') }),
  z.strictObject({ type: z.literal('exportMarkdown') }),
  z.strictObject({ type: z.literal('copyMarkdown') }),
  z.strictObject({ type: z.literal('runAgain') }),
]);
export type BenchFromWebview = z.infer<typeof benchFromWebviewSchema>;
