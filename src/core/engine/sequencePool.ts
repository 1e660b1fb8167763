import type { LlamaChat, LlamaContextSequence } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { errorMessage } from '../errors';
import { importNodeLlamaCpp } from './llama';
import type { LoadedModel } from './models';

/** A context sequence lent to one conversation, with the LlamaChat that remembers its tokens. */
export interface PooledSequence {
  readonly key: string;
  readonly loaded: LoadedModel;
  readonly sequence: LlamaContextSequence;
  readonly chat: LlamaChat;
  lastUsed: number;
  busy: boolean;
}

/**
 * The loaded model's context sequences, shared by everything that generates. A conversation keeps
 * its sequence (and so its KV cache) between replies; when all are taken, the least recently used
 * idle one is reclaimed, and when all are busy, callers wait their turn in order.
 */
export class SequencePool {
  private readonly slots = new Map<string, PooledSequence>();
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly onError: (message: string) => void = () => {}) {}

  async take(key: string, loaded: LoadedModel): Promise<PooledSequence> {
    const { LlamaChat } = await importNodeLlamaCpp();
    for (;;) {
      for (const slot of [...this.slots.values()]) {
        if (!slot.busy && (slot.loaded !== loaded || slot.loaded.disposed || slot.sequence.disposed)) this.drop(slot);
      }
      const own = this.slots.get(key);
      if (own && !own.busy) {
        own.busy = true;
        own.lastUsed = performance.now();
        return own;
      }
      if (!own && !loaded.disposed) {
        if (loaded.context.sequencesLeft === 0) {
          const idle = [...this.slots.values()].filter((s) => !s.busy).sort((a, b) => a.lastUsed - b.lastUsed)[0];
          if (idle) this.drop(idle);
        }
        if (loaded.context.sequencesLeft > 0) {
          const sequence = loaded.context.getSequence();
          const chat = new LlamaChat({ contextSequence: sequence, autoDisposeSequence: true });
          const slot: PooledSequence = { key, loaded, sequence, chat, lastUsed: performance.now(), busy: true };
          this.slots.set(key, slot);
          return slot;
        }
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  release(slot: PooledSequence): void {
    slot.busy = false;
    slot.lastUsed = performance.now();
    if (slot.loaded.disposed || slot.sequence.disposed) this.drop(slot);
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Frees a conversation's sequence (e.g. when the conversation is deleted). */
  forget(key: string): void {
    const slot = this.slots.get(key);
    if (slot && !slot.busy) this.drop(slot);
  }

  /** Drops every idle sequence; busy ones are dropped when released. */
  clear(): void {
    for (const slot of [...this.slots.values()]) if (!slot.busy) this.drop(slot);
    for (const wake of this.waiting.splice(0)) wake();
  }

  get size(): number { return this.slots.size; }

  private drop(slot: PooledSequence): void {
    if (this.slots.get(slot.key) === slot) this.slots.delete(slot.key);
    try {
      if (!slot.chat.disposed) slot.chat.dispose({ disposeSequence: true });
    } catch (err) {
      this.onError(`Releasing a context sequence failed: ${errorMessage(err)}`);
    }
  }
}
