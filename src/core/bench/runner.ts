import { fork } from 'node:child_process';
import { BenchCancelledError, benchReportSchema, type BenchReport } from './bench';
import type { BenchWorkerMessage, BenchWorkerRequest } from './worker';
import { NanochatError } from '../errors';
import { silentLogger, type Logger } from '../log';

export interface BenchRunOptions extends BenchWorkerRequest {
  /** The worker script: dist/benchWorker.js in the extension; src/core/bench/worker.ts with tsx in tests. */
  workerScript: string;
  execArgv?: string[];
  signal?: AbortSignal;
  onProgress?: (step: string, fraction: number) => void;
  /** Called with the child's process id once it is started. */
  onStart?: (pid: number) => void;
  log?: Logger;
}

/**
 * Runs the benchmark in a child process and resolves with its validated report. Cancelling kills
 * the child at once (no waiting for the current step); a crash of the native code ends the child,
 * never the caller, and becomes an error that quotes the child's last output.
 */
export function runBenchmarkInChild(options: BenchRunOptions): Promise<BenchReport> {
  const log = options.log ?? silentLogger;
  return new Promise<BenchReport>((resolve, reject) => {
    if (options.signal?.aborted) { reject(new BenchCancelledError()); return; }
    const child = fork(options.workerScript, [], {
      execArgv: options.execArgv ?? [],
      // In desktop VS Code process.execPath is Electron: this makes it behave as plain Node.
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    if (child.pid) options.onStart?.(child.pid);
    let settled = false;
    let tail = '';
    const output = (chunk: Buffer) => {
      const text = chunk.toString();
      tail = (tail + text).slice(-2000);
      for (const line of text.split('\n')) if (line.trim()) log.debug(`bench: ${line.trim()}`);
    };
    child.stdout?.on('data', output);
    child.stderr?.on('data', output);
    const finish = (error: Error | undefined, report?: BenchReport) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener('abort', abort);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (error) reject(error); else resolve(report!);
    };
    const abort = () => finish(new BenchCancelledError());
    options.signal?.addEventListener('abort', abort, { once: true });
    child.on('message', (message: BenchWorkerMessage) => {
      if (message.type === 'progress') options.onProgress?.(message.step, message.fraction);
      else if (message.type === 'error') finish(new NanochatError(message.message));
      else if (message.type === 'report') {
        const parsed = benchReportSchema.safeParse(message.report);
        finish(parsed.success ? undefined : new NanochatError(`The benchmark returned a malformed report: ${parsed.error.issues[0]?.message}`), parsed.data);
      }
    });
    child.on('error', (err) => finish(new NanochatError(`Cannot start the benchmark process: ${err.message}`)));
    child.on('exit', (code, signal) => finish(new NanochatError(`The benchmark process ended unexpectedly (${signal ?? `exit code ${code}`})${tail.trim() ? `: ${tail.trim().split('\n').at(-1)}` : ''}`)));
    const request: BenchWorkerRequest = { modelPath: options.modelPath, quick: options.quick, runs: options.runs };
    child.send(request);
  });
}
