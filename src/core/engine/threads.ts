import fs from 'node:fs';
import os from 'node:os';
import type { LlamaContext } from 'node-llama-cpp' with { 'resolution-mode': 'import' };

/**
 * How many threads each phase of decoding uses. Reading a prompt is compute-bound and scales with
 * every physical core; generating one token at a time is bound by memory bandwidth and suffers most
 * when another program wants a core, so it may use fewer.
 */
export interface ThreadPlan {
  /** Single-token decoding (generation). */
  generation: number;
  /** Batches of prompt tokens (prefill). */
  prompt: number;
  /** The prompt count was chosen by the user: used as is, busy or not. */
  promptFixed?: boolean;
}

/** A batch of at least this many tokens is prompt work (generation batches hold one token per sequence). */
const PROMPT_BATCH_TOKENS = 8;

/**
 * The thread counts used: an explicit `nanochat.threads` sets generation; 0 uses the machine's physical
 * performance cores (llama.cpp's own count, `llama.cpuMathCores`: not logical CPUs, so a 16-thread
 * laptop with 8 cores gets 8, and not efficiency cores). Prompts use every performance core that
 * other programs leave idle (`applyThreadPlan`), unless `nanochat.promptThreads` says otherwise.
 */
export function planThreads(setting: number, performanceCores: number, promptSetting = 0): ThreadPlan {
  const cores = Math.max(1, Math.floor(performanceCores) || 1);
  const generation = setting > 0 ? setting : cores;
  return promptSetting > 0 ? { generation, prompt: promptSetting, promptFixed: true } : { generation, prompt: Math.max(cores, generation) };
}

/** Where freeCpus reads the system's counters (Linux's /proc; tests give their own). */
export interface CpuCounters {
  /** /proc/loadavg */
  loadavg(): string;
  /** The first line of /proc/stat: every CPU's time, in clock ticks. */
  stat(): string;
  /** /proc/self/stat: this process's own CPU time. */
  selfStat(): string;
  /** This process's threads in state R (at least one: the thread asking). */
  ownRunning(): number;
  now(): number;
}

const PROC: CpuCounters = {
  loadavg: () => fs.readFileSync('/proc/loadavg', 'utf8'),
  stat: () => firstLine('/proc/stat'),
  selfStat: () => fs.readFileSync('/proc/self/stat', 'utf8'),
  ownRunning: ownRunningThreads,
  now: () => performance.now(),
};

/** A file's first line, read without the rest (/proc/stat's interrupt counts run to tens of KB on large machines). */
function firstLine(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1024);
    const text = buffer.toString('utf8', 0, fs.readSync(fd, buffer, 0, buffer.length, 0));
    const end = text.indexOf('\n');
    return end < 0 ? text : text.slice(0, end);
  } finally {
    fs.closeSync(fd);
  }
}

/** CPU time in ticks: every CPU's busy and total time, and this process's own. */
interface CpuTimes { at: number; busy: number; total: number; own: number }

/** Readings at least this far apart make a window; older than MAX_WINDOW_MS says little of now. */
const MIN_WINDOW_MS = 100;
const MAX_WINDOW_MS = 2_000;
/** Other programs' average use over a window below which their runnable threads are a moment's work. */
const MOMENTARY_CPUS = 0.5;
/**
 * While freeCpus is in use (the last minute), the counters are read every `recentMs`, so a window is
 * always at hand; while a context with a thread plan is alive (applyThreadPlan), every `heldMs` after
 * that, so the first prompt after a pause finds one too. Mutable for tests only.
 */
export const cpuSampling = { recentMs: 500, keepMs: 60_000, heldMs: 1_500 };

/**
 * How many logical CPUs no other program keeps busy, or undefined where the system does not say.
 * Linux: /proc/loadavg counts the runnable threads at this instant, less this process's own running
 * ones (this JavaScript thread, and llama.cpp's workers still polling after the last batch), so
 * nanochat's own work never reads as load. An instant also catches another program's thread that
 * runs for a moment (a kernel worker, a daemon waking up): in a 12-turn chat here one prompt in six
 * was read on one thread for it, 1.6–2× slower. So when other programs used under half a CPU over
 * the last window of 0.1–2 s (/proc/stat, less this process's own time), none is counted busy; a
 * program that keeps a core busy shows in both. While it is in use, the counters are read every
 * 0.5 s (an unreferenced timer), and every 1.5 s after a minute without a call while a context with a
 * thread plan is alive (holdCpuSampling), so that window is at hand.
 */
export function freeCpus(counters: CpuCounters = PROC, memory: CpuMemory = sharedMemory): number | undefined {
  try {
    const runnable = Number(/\s(\d+)\/\d+\s/.exec(counters.loadavg())?.[1]);
    if (!Number.isFinite(runnable)) return undefined;
    const cpus = os.availableParallelism?.() ?? os.cpus().length;
    let others = Math.max(0, runnable - counters.ownRunning());
    // Other programs that used under half a CPU over the last window keep no core busy: what ran at
    // this instant was a moment's work. Otherwise the instant count stands (a busy program's use is
    // less than its demand while nanochat's threads compete with it, so the window would undercount).
    const used = othersSince(counters, memory, cpus);
    if (used !== undefined && used < MOMENTARY_CPUS) others = 0;
    if (memory === sharedMemory && counters === PROC) keepSampling();
    return Math.max(0, cpus - others);
  } catch {
    return undefined;
  }
}

/** The last reading of the CPU counters, with what other programs used over the window it closed (if it closed one). */
export interface CpuMemory { last?: CpuTimes & { others?: number } }
const sharedMemory: CpuMemory = {};
let sampling: { lastCall: number } | undefined;
/** Contexts alive with a thread plan that reads free CPUs (applyThreadPlan). */
let holders = 0;

/** Reads the counters on an unreferenced timer: often while freeCpus was used lately, less often while only held. */
function keepSampling(): void {
  const now = performance.now();
  if (sampling) { sampling.lastCall = now; return; }
  const state = { lastCall: now };
  sampling = state;
  const next = () => {
    if (sampling !== state) return;
    const recent = performance.now() - state.lastCall <= cpuSampling.keepMs;
    if (!recent && holders === 0) { sampling = undefined; return; }
    othersSince(PROC, sharedMemory, os.availableParallelism?.() ?? os.cpus().length);
    setTimeout(next, recent ? cpuSampling.recentMs : cpuSampling.heldMs).unref?.();
  };
  setTimeout(next, cpuSampling.recentMs).unref?.();
}

/**
 * Keeps a window of the CPU counters at hand until the returned function is called (once a context
 * is disposed): without one, the first prompt after a minute's pause had only the instant count,
 * which catches the editor's own threads redrawing as the message is sent, and read on fewer threads.
 */
export function holdCpuSampling(): () => void {
  holders++;
  if (process.platform === 'linux') {
    othersSince(PROC, sharedMemory, os.availableParallelism?.() ?? os.cpus().length);
    keepSampling();
  }
  let held = true;
  return () => {
    if (held) { held = false; holders--; }
  };
}

/** For tests: whether the counters are being read, for how many holders, and how old the last reading is. */
export function cpuSamplingState(): { running: boolean; holders: number; lastReadingAgeMs?: number } {
  const last = sharedMemory.last;
  return { running: sampling !== undefined, holders, ...(last ? { lastReadingAgeMs: performance.now() - last.at } : {}) };
}

/** CPUs other programs used (on average) since the reading an earlier call left, when there is a fitting one. */
function othersSince(counters: CpuCounters, memory: CpuMemory, cpus: number): number | undefined {
  let now: CpuTimes;
  try {
    now = readCpuTimes(counters);
  } catch {
    return undefined;
  }
  const last = memory.last;
  const age = last ? now.at - last.at : Number.POSITIVE_INFINITY;
  // Too close to the last reading for a window of its own: what the window it closed measured.
  if (last && age < MIN_WINDOW_MS) return last.others;
  const others = last && age <= MAX_WINDOW_MS && now.total > last.total
    ? Math.max(0, (now.busy - last.busy) - (now.own - last.own)) / (now.total - last.total) * cpus
    : undefined;
  memory.last = { ...now, others };
  return others;
}

function readCpuTimes(counters: CpuCounters): CpuTimes {
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
  const [user, nice, system, idle, iowait, irq, softirq, steal] = counters.stat().trim().split(/\s+/).slice(1, 9).map(Number) as number[];
  const busy = user! + nice! + system! + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  const total = busy + idle! + (iowait ?? 0);
  // "pid (name) state ppid … utime stime …": utime and stime are the 12th and 13th fields after the name.
  const self = counters.selfStat();
  const fields = self.slice(self.lastIndexOf(')') + 2).split(' ');
  const own = Number(fields[11]) + Number(fields[12]);
  if (![busy, total, own].every(Number.isFinite)) throw new Error('unreadable CPU counters');
  return { at: counters.now(), busy, total, own };
}

/** This process's threads in state R (at least one: the thread asking). */
function ownRunningThreads(): number {
  let running = 0;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // "tid (name) S …": the name may hold spaces and parentheses, the state follows the last ")".
      if (stat.charAt(stat.lastIndexOf(')') + 2) === 'R') running++;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return Math.max(1, running);
}

/** The parts of node-llama-cpp's native context nanochat uses (`LlamaContext._ctx`). */
export interface AddonContext {
  initBatch(size: number): void;
  setThreads(threads: number): void;
  decodeBatch(): Promise<void>;
  /** The machine build's decoding ahead (addon-context-thread.diff); absent from node-llama-cpp's prebuilt binaries. */
  setDecodeAhead?(on: boolean): boolean;
  /** The last decode the context's thread finished: how long it took, on how many threads, for how many tokens. */
  getLastDecode?(): FinishedDecode;
}

export interface FinishedDecode { count: number; ms: number; threads: number; tokens: number; ahead: boolean }

/**
 * Turns on decoding a token ahead where the machine build has it (addon-context-thread.diff): once a
 * generated token is sampled, the context's thread decodes it at once, while JavaScript receives it,
 * and the sample of the next token runs right after that decode. JavaScript's handling of each token
 * (node-llama-cpp's generation loop, nanochat's stream) then runs beside the decoding instead of between
 * decodes; anything other than the expected next decode rolls the token back first. Measured here at
 * one thread (`npm run bench:ahead`, five runs): the decoding thread busy 98% of a generation instead
 * of 92%, 1.03–1.07× the tokens per second alone and 1.05–1.15× with every core busy elsewhere in four
 * runs of five each; level at two threads on 2 cores. NANOCHAT_DECODE_AHEAD=off leaves it off (to
 * compare). Returns whether it is on.
 */
export function decodeAhead(context: LlamaContext): boolean {
  const addon = (context as unknown as { _ctx?: AddonContext })._ctx;
  if (process.env.NANOCHAT_DECODE_AHEAD === 'off' || typeof addon?.setDecodeAhead !== 'function') return false;
  try {
    return addon.setDecodeAhead(true) === true;
  } catch {
    return false;
  }
}

/**
 * Picks the generation thread count from how fast tokens actually come. With every core busy
 * elsewhere (a build, an indexer), ggml's spinning barriers make two threads far slower than one
 * (measured here: 5.9 vs 28 tok/s), while on an idle machine two are faster (85 vs 52). So single
 * tokens run on the count with the lowest median time of its recent tokens; the others are tried
 * again now and then (a warm-up token, then three measured), less often while they keep losing, so
 * a change of load is noticed without paying much for the tries. A try of more threads waits while
 * other programs keep the CPUs busy (where the system says so, `freeCpus`): one token on threads that
 * must wait for a core can take seconds (measured here: 0.5–2.7 s against 30 ms on one thread).
 */
export class GenerationThreads {
  private readonly candidates: number[];
  private readonly samples = new Map<number, number[]>();
  private readonly interval = new Map<number, number>();
  private readonly nextTry = new Map<number, number>();
  private tokens = 0;
  private current: number;
  private trying: { count: number; warmUp: boolean; left: number } | undefined;
  private static readonly FIRST_TRY = 1;
  private static readonly INTERVAL = 32;
  private static readonly MAX_INTERVAL = 512;
  private static readonly KEPT = 5;
  /** The last prompt batch: its tokens and the threads it was read on (the bench's multi-turn figures name it). */
  lastPrompt: { tokens: number; threads: number } | undefined;

  constructor(max: number, private readonly free: () => number | undefined = freeCpus) {
    this.candidates = [...new Set([max, Math.ceil(max / 2), 1].filter((n) => n >= 1))];
    // Start on the fewest threads: on a busy machine one token on many threads can take seconds
    // (a spinning barrier waits out the other programs' time slices); on an idle one the first try,
    // after one token, moves up.
    this.current = this.candidates.at(-1)!;
    for (const c of this.candidates) {
      this.interval.set(c, GenerationThreads.INTERVAL);
      this.nextTry.set(c, GenerationThreads.FIRST_TRY);
    }
  }

  /** The count for the next single-token decode. */
  next(): number {
    if (this.trying) return this.trying.count;
    // Another count is due for a try at its time, or at once when the current one has become much
    // slower than that count was when it last ran.
    const now = this.score(this.current);
    const due = this.candidates.find((c) => c !== this.current && (this.tokens >= (this.nextTry.get(c) ?? 0) || now > 2 * this.score(c)));
    if (due !== undefined && due > this.current && (this.free() ?? due) < due) {
      // Not enough idle CPUs for the try: ask again a little later, without counting it as lost.
      this.nextTry.set(due, this.tokens + GenerationThreads.INTERVAL);
      return this.current;
    }
    if (due !== undefined) {
      // The first token after a switch wakes the other threads: it is not counted.
      this.trying = { count: due, warmUp: true, left: 3 };
      this.samples.set(due, []);
      return due;
    }
    return this.current;
  }

  /** What one single-token decode on `count` threads took. */
  record(count: number, ms: number): void {
    this.tokens++;
    const trying = this.trying?.count === count ? this.trying : undefined;
    if (trying?.warmUp) {
      trying.warmUp = false;
      // Even the warm-up token shows a plainly losing count (seconds, not milliseconds).
      if (ms <= 4 * this.score(this.current)) return;
      this.lose(count);
      return;
    }
    const kept = this.samples.get(count) ?? [];
    kept.push(ms);
    if (kept.length > GenerationThreads.KEPT) kept.shift();
    this.samples.set(count, kept);
    // A try that is plainly losing (a spinning barrier under load can take half a second) ends at once.
    const hopeless = trying !== undefined && ms > 2 * this.score(this.current);
    if (trying && (--trying.left <= 0 || hopeless)) {
      this.trying = undefined;
      const won = !hopeless && this.score(count) < this.score(this.current);
      if (won) {
        // The previous count gets tried again soon: the load that made it lose may pass.
        this.nextTry.set(this.current, this.tokens + GenerationThreads.INTERVAL);
        this.interval.set(this.current, GenerationThreads.INTERVAL);
        this.current = count;
      } else {
        this.lose(count);
      }
    }
  }

  /** A tried count lost: it waits twice as long for its next try. */
  private lose(count: number): void {
    this.trying = undefined;
    const interval = Math.min(GenerationThreads.MAX_INTERVAL, 2 * (this.interval.get(count) ?? GenerationThreads.INTERVAL));
    this.interval.set(count, interval);
    this.nextTry.set(count, this.tokens + interval);
  }

  /** The count generation uses now. */
  best(): number {
    return this.current;
  }

  private score(count: number): number {
    const kept = [...(this.samples.get(count) ?? [])].sort((a, b) => a - b);
    return kept.length ? kept[Math.floor(kept.length / 2)]! : Number.POSITIVE_INFINITY;
  }
}

/**
 * The threads for a batch of prompt tokens: the plan's count, or as many CPUs as other programs leave
 * idle when that is fewer (at least one). With every core busy elsewhere, a prompt read on all of
 * them waits at ggml's barriers for the other programs' time slices (measured here: 1.17–1.39× the
 * time one thread takes).
 */
export function promptThreads(plan: ThreadPlan, free: () => number | undefined = freeCpus): number {
  if (plan.promptFixed) return plan.prompt;
  return Math.max(1, Math.min(plan.prompt, free() ?? plan.prompt));
}

/**
 * Gives each decode batch its phase's thread count. node-llama-cpp sets one count per context and
 * calls `setThreads` with its thread splitter's share before every batch; this wraps the context's
 * native calls so a prompt batch runs on `promptThreads` threads and a generation batch on the count
 * `GenerationThreads` finds fastest (at most `plan.generation`; never more than the share, so
 * contexts that decode at once still split the cores). Create the context with
 * `threads: max(plan.prompt, plan.generation)`. Returns undefined (and changes nothing) when the
 * context's internals are not the ones this was written against.
 */
export function applyThreadPlan(context: LlamaContext, plan: ThreadPlan, free: () => number | undefined = freeCpus): GenerationThreads | undefined {
  const addon = (context as unknown as { _ctx?: AddonContext })._ctx;
  if (!addon || typeof addon.initBatch !== 'function' || typeof addon.setThreads !== 'function' || typeof addon.decodeBatch !== 'function') return undefined;
  const initBatch = addon.initBatch.bind(addon);
  const setThreads = addon.setThreads.bind(addon);
  const decodeBatch = addon.decodeBatch.bind(addon);
  const generation = new GenerationThreads(plan.generation, free);
  let batchTokens = 0;
  let wanted = 1;
  let used = 0;
  const apply = (share: number) => {
    used = Math.max(1, Math.min(share, wanted));
    setThreads(used);
  };
  // With decoding ahead, a decode resolves as soon as it is claimed, before it ends: its time and thread
  // count come from the context's thread when it has finished (by the next batch at the latest).
  const lastDecode = typeof addon.getLastDecode === 'function' ? addon.getLastDecode.bind(addon) : undefined;
  let recorded = lastDecode?.().count ?? 0;
  const recordFinished = () => {
    const finished = lastDecode!();
    if (finished.count === recorded) return;
    recorded = finished.count;
    if (finished.tokens === 1) generation.record(finished.threads, finished.ms);
  };
  try {
    Object.defineProperty(addon, 'initBatch', {
      configurable: true,
      value: (size: number) => {
        if (lastDecode) recordFinished();
        batchTokens = size;
        initBatch(size);
        // Decided once per batch (node-llama-cpp then calls setThreads with its splitter's share).
        wanted = size >= PROMPT_BATCH_TOKENS ? promptThreads(plan, free) : generation.next();
        apply(Number.POSITIVE_INFINITY);
      },
    });
    Object.defineProperty(addon, 'setThreads', { configurable: true, value: (share: number) => apply(share) });
    Object.defineProperty(addon, 'decodeBatch', {
      configurable: true,
      value: async () => {
        const started = performance.now();
        await decodeBatch();
        if (batchTokens >= PROMPT_BATCH_TOKENS) generation.lastPrompt = { tokens: batchTokens, threads: used };
        if (lastDecode) recordFinished();
        else if (batchTokens === 1) generation.record(used, performance.now() - started);
      },
    });
  } catch {
    return undefined;
  }
  if (free === freeCpus) {
    const release = holdCpuSampling();
    if (context.disposed) release();
    else context.onDispose.createListener(release);
  }
  return generation;
}
