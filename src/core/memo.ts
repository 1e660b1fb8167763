/**
 * Remembers one promise per key so concurrent callers share the work, and forgets a key whose
 * promise rejects, so a failure (a file being written, a missing backend) is retried next time.
 */
export class AsyncMemo<K, V> {
  private readonly entries = new Map<K, Promise<V>>();

  get(key: K, make: () => Promise<V>): Promise<V> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = make();
      this.entries.set(key, entry);
      entry.catch(() => { if (this.entries.get(key) === entry) this.entries.delete(key); });
    }
    return entry;
  }

  delete(key: K): void { this.entries.delete(key); }

  /** Empties the memo and returns what it held (to dispose of it). */
  drain(): Promise<V>[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}

/** The last `keep` values made for string keys, newest first: for work that repeats within a moment. */
export class RecentMemo<V> {
  private readonly entries: Array<{ key: string; value: V }> = [];

  constructor(private readonly keep: number) {}

  get(key: string, make: () => V): V {
    const hit = this.entries.find((e) => e.key === key);
    if (hit) return hit.value;
    const value = make();
    this.set(key, value);
    return value;
  }

  has(key: string): boolean { return this.entries.some((e) => e.key === key); }

  set(key: string, value: V): void {
    const at = this.entries.findIndex((e) => e.key === key);
    if (at >= 0) this.entries.splice(at, 1);
    this.entries.unshift({ key, value });
    this.entries.length = Math.min(this.entries.length, this.keep);
  }
}
