import type * as vscode from 'vscode';

/** A VS Code CancellationToken as an AbortSignal (the core's cancellation); dispose to stop listening. */
export function abortOn(token: vscode.CancellationToken): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  const listener = token.onCancellationRequested(() => controller.abort());
  return { signal: controller.signal, dispose: () => listener.dispose() };
}
