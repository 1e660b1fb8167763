/** A vscode-free event emitter with VS Code's `Event` shape, so adapters can pass events straight through. */
export interface Disposable { dispose(): void }
export type Event<T> = (listener: (e: T) => void) => Disposable;

export class Emitter<T> implements Disposable {
  private listeners = new Set<(e: T) => void>();

  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => { this.listeners.delete(listener); } };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) {
      try { listener(value); } catch (err) { queueMicrotask(() => { throw err; }); }
    }
  }

  dispose(): void { this.listeners.clear(); }
}
