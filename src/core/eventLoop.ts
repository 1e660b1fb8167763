import fs from 'node:fs';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
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

/** A window's longest event-loop block, and how much of it was the garbage collector's or the scheduler's. */
export interface BlockFigures {
  /** The longest block (as trackLongestBlock measures it). */
  longestMs: number;
  /** The longest block less the garbage collections inside it. */
  longestLessGcMs: number;
  /** The longest single collection pause of this thread's heap. */
  longestGcMs: number;
  /**
   * The longest block less its collections and less the time this thread waited for a CPU (Linux's
   * schedstat: runnable, not running, as when every core is busy): what the code itself held. Where
   * the wait cannot be read, the same as longestLessGcMs.
   */
  longestOwnMs: number;
}

/** This thread's time waiting for a CPU so far (ms), where Linux says (/proc/thread-self/schedstat). */
function cpuWaitMs(): number | undefined {
  try {
    const wait = Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(wait) ? wait / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/** How long after its block a tick is attributed: Node.js reports a collection a turn or more after it. */
const GC_REPORT_DELAY_MS = 500;

/**
 * trackLongestBlock in windows (a bench's phases), with each block's garbage-collection pauses taken
 * out (Node.js's `gc` performance entries, this thread's heap), so a report can say whether a block
 * was the collector's or the code's. A timer tick's lateness is its block; the collections that
 * overlap the tick's interval are subtracted. Node.js reports a collection after it has ended, so a
 * tick is attributed GC_REPORT_DELAY_MS later: `take()` ends a window at once and returns a promise
 * of its figures, settled that much later (nothing waits for it but the caller's report). On Linux
 * each tick also reads how long this thread waited for a CPU, so a block can be told from the
 * scheduler's (the thread runnable while other threads hold every core).
 */
export function trackBlocksAndGc(intervalMs = 5): { take(): Promise<BlockFigures>; stop(): Promise<BlockFigures> } {
  type Tick = { from: number; to: number; block: number; waited: number; window: number };
  type Window = { start: number; end: number; figures: BlockFigures; settle?: (f: BlockFigures) => void };
  const windows: Window[] = [];
  const open = (start: number) => windows.push({ start, end: Number.POSITIVE_INFINITY, figures: { longestMs: 0, longestLessGcMs: 0, longestGcMs: 0, longestOwnMs: 0 } }) - 1;
  let current = open(performance.now());
  let pauses: Array<{ start: number; end: number }> = [];
  let ticks: Tick[] = [];
  const windowAt = (time: number) => {
    for (let w = windows.length - 1; w > 0; w--) if (windows[w]!.start <= time) return windows[w]!;
    return windows[0]!;
  };
  const record = (entries: readonly PerformanceEntry[]) => {
    for (const e of entries) {
      pauses.push({ start: e.startTime, end: e.startTime + e.duration });
      const figures = windowAt(e.startTime).figures;
      figures.longestGcMs = Math.max(figures.longestGcMs, e.duration);
    }
  };
  const observer = new PerformanceObserver((list) => record(list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  /** Attributes the ticks that ended by `until`, and settles the windows that did. */
  const attribute = (until: number) => {
    record(observer.takeRecords());
    const ready = ticks.filter((t) => t.to <= until);
    ticks = ticks.filter((t) => t.to > until);
    for (const t of ready) {
      const collecting = pauses.reduce((sum, p) => sum + Math.max(0, Math.min(p.end, t.to) - Math.max(p.start, t.from)), 0);
      const figures = windows[t.window]!.figures;
      const lessGc = t.block - Math.min(t.block, collecting);
      figures.longestLessGcMs = Math.max(figures.longestLessGcMs, lessGc);
      figures.longestOwnMs = Math.max(figures.longestOwnMs, lessGc - Math.min(lessGc, t.waited));
    }
    const oldest = ticks.reduce((min, t) => Math.min(min, t.from), until);
    pauses = pauses.filter((p) => p.end >= oldest);
    for (const w of windows) {
      if (w.settle && w.end <= until) {
        w.settle({ ...w.figures });
        w.settle = undefined;
      }
    }
  };
  let last = performance.now();
  let lastWait = cpuWaitMs();
  const tick = () => {
    const now = performance.now();
    const wait = lastWait === undefined ? undefined : cpuWaitMs();
    const block = now - last - intervalMs;
    if (block > 0) {
      const figures = windows[current]!.figures;
      figures.longestMs = Math.max(figures.longestMs, block);
      if (block > figures.longestOwnMs) ticks.push({ from: last, to: now, block, waited: wait === undefined ? 0 : Math.max(0, wait - lastWait!), window: current });
    }
    last = now;
    lastWait = wait;
    attribute(now - GC_REPORT_DELAY_MS);
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref?.();
  const close = () => {
    tick(); // the time since the last tick is this window's too
    const window = windows[current]!;
    window.end = last;
    current = open(last);
    return new Promise<BlockFigures>((resolve) => { window.settle = resolve; });
  };
  return {
    /** Ends this window and starts the next; its figures come GC_REPORT_DELAY_MS later. */
    take: close,
    /** Ends the last window, waits for its figures, and stops watching. */
    async stop() {
      const figures = close();
      await new Promise((resolve) => setTimeout(resolve, GC_REPORT_DELAY_MS));
      clearInterval(timer);
      attribute(Number.POSITIVE_INFINITY);
      observer.disconnect();
      return figures;
    },
  };
}
