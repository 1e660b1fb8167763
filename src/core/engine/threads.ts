import os from 'node:os';

/** The thread count actually used: an explicit value, or every core but one. */
export function resolveThreads(threads: number, cores = os.availableParallelism?.() ?? os.cpus().length): number {
  return threads > 0 ? threads : Math.max(1, cores - 1);
}
