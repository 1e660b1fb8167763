import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { PanelHtmlOptions } from '../../webview/html';

/**
 * Sets up one of nanochat's webview panels: scripts on, resources only from dist/, a fresh nonce for
 * the page's CSP, and the page itself. Returns a disposable for the message listener, which also
 * goes when the panel is closed.
 */
export function attachWebview(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, page: { html: (o: PanelHtmlOptions) => string; script: string; style: string },
  onMessage: (raw: unknown) => void, onDispose: () => void): void {
  const dist = vscode.Uri.joinPath(extensionUri, 'dist');
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'nanochat.png');
  panel.webview.options = { enableScripts: true, localResourceRoots: [dist] };
  panel.webview.html = page.html({
    cspSource: panel.webview.cspSource,
    nonce: randomBytes(16).toString('base64'),
    scriptUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, page.script)).toString(),
    styleUri: panel.webview.asWebviewUri(vscode.Uri.joinPath(dist, page.style)).toString(),
  });
  const listener = panel.webview.onDidReceiveMessage(onMessage);
  panel.onDidDispose(() => {
    listener.dispose();
    onDispose();
  });
}
