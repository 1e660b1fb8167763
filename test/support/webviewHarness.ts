import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { PanelHtmlOptions } from '../../webview/html';
import { REPO_ROOT } from './models';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * A webview page as VS Code serves it, in headless Chromium: the real HTML (with its CSP and nonce)
 * from a loopback server that serves only dist/, and a fake `acquireVsCodeApi` that records what the
 * page posts. Every request to any other origin, and every CSP violation, is recorded.
 */
export class WebviewHarness {
  private browser: Browser | undefined;
  private server: http.Server | undefined;
  origin = '';
  readonly external: string[] = [];

  constructor(private readonly html: (options: PanelHtmlOptions) => string, private readonly script: string, private readonly style: string) {}

  async start(): Promise<void> {
    execFileSync('node', ['esbuild.mjs'], { cwd: REPO_ROOT, stdio: 'inherit' });
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(this.html({ cspSource: this.origin, nonce: 'test-nonce-123', scriptUri: `${this.origin}/dist/${this.script}`, styleUri: `${this.origin}/dist/${this.style}` }));
        return;
      }
      const file = path.join(REPO_ROOT, 'dist', path.basename(url.pathname));
      if (!url.pathname.startsWith('/dist/') || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
      const type = file.endsWith('.js') ? 'text/javascript' : file.endsWith('.css') ? 'text/css' : 'font/ttf';
      res.writeHead(200, { 'content-type': type });
      fs.createReadStream(file).pipe(res);
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  }

  async stop(): Promise<void> {
    await this.browser?.close();
    this.server?.close();
  }

  /** A fresh page, loaded and past its 'ready' message. `state` is what getState() returns. */
  async open(state?: unknown, viewport = { width: 1200, height: 900 }): Promise<Page> {
    const page = await this.browser!.newPage({ viewport });
    // A string, not a function: tsx's keep-names helper would not exist inside the page.
    await page.addInitScript(`
      window.__posted = [];
      window.__violations = [];
      window.__state = ${JSON.stringify(state ?? null)} || undefined;
      window.acquireVsCodeApi = function () {
        return {
          postMessage: function (m) { window.__posted.push(m); },
          getState: function () { return window.__state; },
          setState: function (s) { window.__state = s; },
        };
      };
      window.__deliveries = {};
      window.addEventListener('message', function (e) {
        var id = e.data && e.data.__delivered;
        if (typeof id !== 'string') return;
        e.stopImmediatePropagation();
        var done = window.__deliveries[id];
        delete window.__deliveries[id];
        if (done) done();
      });
      document.addEventListener('securitypolicyviolation', function (e) { window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber + ':' + e.columnNumber); });
    `);
    page.on('request', (r) => { if (!r.url().startsWith(this.origin) && !r.url().startsWith('data:')) this.external.push(r.url()); });
    await page.goto(this.origin);
    await waitForPosted(page, 'ready');
    return page;
  }
}

export const posted = (page: Page) => page.evaluate(() => (window as unknown as { __posted: Array<Record<string, unknown>> }).__posted);
export const violations = (page: Page) => page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);

/**
 * Posts messages to the page as the extension would, and resolves once the page has handled them.
 * window.postMessage dispatches later, in order, to listeners in the order they were added; the init
 * script's listener comes before the page's own, so it takes the sentinel posted after the messages
 * (hiding it from the page) only when every message before it has been handled.
 */
export async function deliver(page: Page, ...messages: unknown[]): Promise<void> {
  await page.evaluate((list) => new Promise<void>((resolve) => {
    const id = String(Math.random());
    (window as unknown as { __deliveries: Record<string, () => void> }).__deliveries[id] = resolve;
    for (const m of list) window.postMessage(m, '*');
    window.postMessage({ __delivered: id }, '*');
  }), messages);
}

export async function waitForPosted(page: Page, type: string): Promise<void> {
  // The page's CSP forbids eval, so the predicate is a plain function with its argument.
  await page.waitForFunction((t) => (window as unknown as { __posted: Array<{ type: string }> }).__posted.some((m) => m.type === t), type, { timeout: 10_000 });
}
