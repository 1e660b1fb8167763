import { Worker } from 'node:worker_threads';
import { percentile } from './stats';

/**
 * Memory read bandwidth with `threads` readers at once, as decoding reads the weights: each reader
 * compares two buffers of its own with memcmp (native code, reads only), all start together, and the
 * bytes read by all of them are divided by the time the slowest took. Median of `rounds`.
 */
export async function measureReadBandwidth(threads: number, megabytesPerReader = 64, rounds = 5): Promise<number> {
  const start = new SharedArrayBuffer(4);
  const flag = new Int32Array(start);
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const flag = new Int32Array(workerData.start);
    const a = Buffer.alloc(workerData.bytes, 1);
    const b = Buffer.alloc(workerData.bytes, 1);
    a.compare(b); // fault the pages in
    parentPort.postMessage('ready');
    parentPort.on('message', (round) => {
      Atomics.wait(flag, 0, round - 1);
      const t = performance.now();
      a.compare(b);
      parentPort.postMessage({ ms: performance.now() - t, bytes: 2 * workerData.bytes });
    });`;
  const bytes = megabytesPerReader * 1024 * 1024;
  const workers = Array.from({ length: Math.max(1, threads) }, () => new Worker(source, { eval: true, workerData: { start, bytes } }));
  const next = (w: Worker) => new Promise<unknown>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  try {
    await Promise.all(workers.map(next));
    const samples: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const done = workers.map(next) as Array<Promise<{ ms: number; bytes: number }>>;
      for (const w of workers) w.postMessage(round);
      await new Promise((r) => setTimeout(r, 20)); // every reader is waiting on the flag
      Atomics.store(flag, 0, round);
      Atomics.notify(flag, 0);
      const results = await Promise.all(done);
      const slowest = Math.max(...results.map((r) => r.ms));
      samples.push(results.reduce((sum, r) => sum + r.bytes, 0) / (slowest / 1000));
    }
    return percentile(samples, 0.5);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
