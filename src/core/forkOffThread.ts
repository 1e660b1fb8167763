import { Worker } from 'node:worker_threads';

/**
 * Forks a Node.js script from a worker thread, sends it one request and resolves with its first
 * message. fork() copies the calling process's page tables before the child runs: with a model
 * loaded (~0.9 GB resident) that held the event loop 20–40 ms each time (measured here), and more the
 * more memory the process holds. Called from a worker thread, only that thread waits.
 *
 * The child ends when it has answered or when `timeoutMs` passes (SIGKILL).
 * A message with an `error` string rejects with that error.
 */
export function forkOffThread<Request, Answer>(script: string, request: Request, options: { execArgv?: string[]; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = new Worker(FORKER, { eval: true, workerData: { script, request, execArgv: options.execArgv ?? [], env: options.env ?? { ...process.env } } });
    worker.unref();
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => finish(() => {
      // The worker kills the child and ends once it has collected the child's exit status.
      worker.postMessage('kill');
      reject(new Error(`no answer within ${Math.round(options.timeoutMs / 1000)} s`));
    }), options.timeoutMs);
    worker.on('message', (message: { answer?: Answer & { error?: unknown }; failed?: string }) => {
      if (message.failed !== undefined) finish(() => reject(new Error(message.failed)));
      else if (typeof message.answer?.error === 'string') finish(() => reject(new Error(message.answer!.error as string)));
      else finish(() => resolve(message.answer as Answer));
    });
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) => finish(() => reject(new Error(`the worker thread ended (exit code ${code})`))));
  });
}

/**
 * The worker thread: forks, relays the child's first message, ends the child, and ends itself only
 * once the child's exit has been seen (its libuv loop collects the exit status; a thread terminated
 * before that would leave a zombie process behind).
 */
const FORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { fork } = require('node:child_process');
const { script, request, execArgv, env } = workerData;
const child = fork(script, [], { execArgv, env, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], serialization: 'json' });
parentPort.on('message', () => child.kill('SIGKILL'));
child.once('message', (answer) => { parentPort.postMessage({ answer }); child.kill(); });
child.once('error', (err) => parentPort.postMessage({ failed: String(err && err.message || err) }));
child.once('exit', (code, signal) => {
  parentPort.postMessage({ failed: 'the process ended (' + (signal ? 'signal ' + signal : 'exit code ' + code) + ')' });
  parentPort.close();
});
child.send(request);
`;
