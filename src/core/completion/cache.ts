/**
 * Recent suggestions, by what preceded and followed the cursor. Typing the start of a suggestion
 * consumes it: the rest is offered at once, with no request to the model (llama.vscode's trick).
 */
export interface CachedSuggestion { document: string; prefix: string; suffix: string; text: string }

export class SuggestionCache {
  private readonly entries: CachedSuggestion[] = [];

  constructor(private readonly capacity = 64, private readonly prefixKeyChars = 2000, private readonly suffixKeyChars = 200) {}

  private key(prefix: string, suffix: string): { prefix: string; suffix: string } {
    return { prefix: prefix.slice(-this.prefixKeyChars), suffix: suffix.slice(0, this.suffixKeyChars) };
  }

  put(document: string, prefix: string, suffix: string, text: string): void {
    if (!text) return;
    const key = this.key(prefix, suffix);
    const at = this.entries.findIndex((e) => e.document === document && e.prefix === key.prefix && e.suffix === key.suffix);
    if (at >= 0) this.entries.splice(at, 1);
    this.entries.push({ document, ...key, text });
    if (this.entries.length > this.capacity) this.entries.shift();
  }

  /**
   * A suggestion for this position: one made here, or one made a few characters earlier whose start
   * the user has since typed (the rest of it). The most recent match wins, and is kept fresh.
   */
  get(document: string, prefix: string, suffix: string): string | undefined {
    const key = this.key(prefix, suffix);
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i];
      if (e.document !== document || e.suffix !== key.suffix) continue;
      if (e.prefix === key.prefix) return this.touch(i);
      // Typed since: the current prefix is the cached one plus the first `typed` characters of its suggestion.
      for (let typed = 1; typed < e.text.length && typed <= key.prefix.length; typed++) {
        if (!key.prefix.endsWith(e.text.slice(0, typed))) continue;
        const before = key.prefix.slice(0, key.prefix.length - typed);
        const truncated = key.prefix.length === this.prefixKeyChars;
        if (truncated ? e.prefix.endsWith(before) : e.prefix === before) return e.text.slice(typed);
      }
    }
    return undefined;
  }

  clear(document?: string): void {
    if (document === undefined) { this.entries.length = 0; return; }
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].document === document) this.entries.splice(i, 1);
  }

  get size(): number { return this.entries.length; }

  private touch(i: number): string {
    const [e] = this.entries.splice(i, 1);
    this.entries.push(e);
    return e.text;
  }
}
