import path from 'node:path';
import { runBenchmark, type BenchOptions } from './bench';
import { configureLlama } from '../engine/llama';
import { errorMessage } from '../errors';

/**
 * The benchmark's own process (forked by benchRunner.ts): it loads a second copy of the model, busies
 * every core for the thread test and counts a megabyte of text, none of which may slow or endanger
 * the extension host. It takes one request and answers with progress messages and one report.
 */
export type BenchWorkerRequest = Pick<BenchOptions, 'modelPath' | 'quick' | 'runs'>;
export type BenchWorkerMessage =
  | { type: 'progress'; step: string; fraction: number }
  | { type: 'report'; report: unknown }
  | { type: 'error'; message: string };

const send = (message: BenchWorkerMessage) => new Promise<void>((resolve) => process.send!(message, undefined, undefined, () => resolve()));

// node-llama-cpp imported as the extension host imports it (the list is beside this file in dist/).
configureLlama({ importOrder: path.join(__dirname, 'node-llama-cpp-modules.json') });

process.once('message', (request: BenchWorkerRequest) => {
  void (async () => {
    try {
      const report = await runBenchmark({ ...request, onProgress: (step, fraction) => void send({ type: 'progress', step, fraction }) });
      await send({ type: 'report', report });
    } catch (err) {
      await send({ type: 'error', message: errorMessage(err).split('\n')[0]! });
    }
    process.exit(0);
  })();
});
// The parent going away (window closed) ends the benchmark too.
process.on('disconnect', () => process.exit(0));
