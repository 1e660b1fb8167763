/**
 * The longest the event loop stood still from now until `stop()`, in ms: the lateness of a short
 * repeating timer. (perf_hooks' monitorEventLoopDelay records nothing before its timer first runs, so
 * it missed a block that began at once: an import started in the same turn went unseen.)
 */
export function trackLongestBlock(intervalMs = 5): { take(): number; stop(): Promise<number> } {
  let longest = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last - intervalMs);
    last = now;
  }, intervalMs);
  timer.unref?.();
  return {
    /** The longest block so far (the time since the timer last ran included), and start again. */
    take() {
      const now = performance.now();
      const result = Math.max(0, longest, now - last - intervalMs);
      longest = 0;
      last = now;
      return result;
    },
    async stop() {
      // A block that is just over shows when the timer next runs.
      await new Promise((resolve) => setTimeout(resolve, intervalMs + 1));
      clearInterval(timer);
      return Math.max(0, longest);
    },
  };
}
