import type { ChatWrapper, LlamaChat, LlamaContext, LlamaContextSequence, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { NanochatError, errorMessage } from '../errors';
import type { Disposable } from '../events';
import { importNodeLlamaCpp } from './llama';

/** A context sequence lent out for one reply, with the LlamaChat that drives it. */
export interface PooledSequence {
  readonly sequence: LlamaContextSequence;
  readonly chat: LlamaChat;
  lastUsed: number;
  busy: boolean;
}

/** How a sequence was chosen: for the log and the tests. */
export interface TakeResult { slot: PooledSequence; reusedTokens: number; reason: 'prefix' | 'new' | 'lru' }

/**
 * A loaded model's context sequences, created and disposed with its context. A reply takes the
 * idle sequence whose cached tokens share the longest prefix with its prompt (as llama-server picks
 * a slot), so a follow-up, a regenerate or another request with the same long preamble (Agent
 * mode's tools) evaluates only what is new. A conversation's identity never matters here: two
 * threads that open with the same words simply share that prefix. With no good match a fresh
 * sequence is created while the context has room, else the least recently used idle one is reused;
 * when every sequence is busy, callers wait in order, and an abort ends the wait.
 */
export class SequencePool implements Disposable {
  private readonly slots: PooledSequence[] = [];
  private readonly waiting: Array<() => void> = [];
  private disposed = false;

  constructor(private readonly context: LlamaContext, private readonly chatWrapper: ChatWrapper,
    private readonly onError: (message: string) => void = () => {}) {}

  async take(prompt: readonly Token[], signal?: AbortSignal): Promise<TakeResult> {
    const { LlamaChat } = await importNodeLlamaCpp();
    for (;;) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new NanochatError('Cancelled.');
      if (this.disposed || this.context.disposed) throw new NanochatError('The model was unloaded.');
      const idle = this.slots.filter((s) => !s.busy && !s.sequence.disposed);
      let best: { slot: PooledSequence; shared: number; cached: number } | undefined;
      for (const slot of idle) {
        const cached = slot.sequence.contextTokens;
        const shared = commonPrefix(cached, prompt);
        if (!best || shared > best.shared) best = { slot, shared, cached: cached.length };
      }
      // A good match: the cache is a prefix of the prompt (nothing of it is lost), or covers most of the prompt.
      if (best && best.shared > 0 && (best.shared === best.cached || best.shared >= prompt.length / 2)) {
        return { slot: this.lend(best.slot), reusedTokens: best.shared, reason: 'prefix' };
      }
      if (this.context.sequencesLeft > 0) {
        const sequence = this.context.getSequence();
        const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: this.chatWrapper, autoDisposeSequence: true });
        const slot: PooledSequence = { sequence, chat, lastUsed: 0, busy: false };
        this.slots.push(slot);
        return { slot: this.lend(slot), reusedTokens: 0, reason: 'new' };
      }
      const lru = idle.sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (lru) return { slot: this.lend(lru), reusedTokens: commonPrefix(lru.sequence.contextTokens, prompt), reason: 'lru' };
      await new Promise<void>((resolve) => {
        const wake = () => { signal?.removeEventListener('abort', wake); resolve(); };
        this.waiting.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  release(slot: PooledSequence): void {
    slot.busy = false;
    slot.lastUsed = performance.now();
    if (slot.sequence.disposed) this.drop(slot);
    for (const wake of this.waiting.splice(0)) wake();
  }

  get size(): number { return this.slots.length; }
  get busyCount(): number { return this.slots.filter((s) => s.busy).length; }

  /** Drops every idle sequence and its cache (the benchmark's cold measurements). */
  clear(): void {
    for (const slot of this.slots.filter((s) => !s.busy)) this.drop(slot);
  }

  /** Disposes every sequence; waiting callers wake and fail. Called when the model's context goes. */
  dispose(): void {
    this.disposed = true;
    for (const slot of [...this.slots]) this.drop(slot);
    for (const wake of this.waiting.splice(0)) wake();
  }

  private lend(slot: PooledSequence): PooledSequence {
    slot.busy = true;
    slot.lastUsed = performance.now();
    return slot;
  }

  private drop(slot: PooledSequence): void {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
    try {
      if (!slot.chat.disposed) slot.chat.dispose({ disposeSequence: true });
    } catch (err) {
      this.onError(`Releasing a context sequence failed: ${errorMessage(err)}`);
    }
  }
}

function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
