// UI end-to-end: real VS Code (code-server 4.139.1 = VS Code 1.139.1) in headless Debian Chromium.
// Loads nanochat from this checkout with the fixture model, selects the nanochat model in the Chat
// view's picker, sends "@nanochat Once upon a time" and waits for streamed story text; saves a
// screenshot under test-results/. Prints "N passed, N failed".
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { testModel } from '../support/models.ts';
import { hostEnv } from './host.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = { ...process.env, ...hostEnv({ install: true }) };
const { chromium } = createRequire(import.meta.url)(env.PLAYWRIGHT_CORE);
const results = path.join(root, 'test-results');
fs.mkdirSync(results, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-e2e-'));
const t0 = Date.now();
const log = (...a) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
let server, browser, page;

async function finish(ok, detail = '') {
  if (detail) console.log(detail);
  console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
  await browser?.close().catch(() => {});
  if (server && server.exitCode === null) { try { process.kill(-server.pid, 'SIGTERM'); } catch { /* gone */ } }
  if (ok) fs.rmSync(tmp, { recursive: true, force: true }); else console.error('logs kept in', tmp);
  process.exit(ok ? 0 : 1);
}

try {
  const model = await testModel('stories260K.gguf');
  fs.mkdirSync(path.join(tmp, 'ud/User'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'ws'));
  fs.writeFileSync(path.join(tmp, 'ud/User/settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'update.mode': 'none', 'telemetry.telemetryLevel': 'off',
    'nanochat.model': model, 'nanochat.threads': 1, 'nanochat.gpu': 'off', 'nanochat.maxTokens': 64, 'nanochat.temperature': 0,
  }));
  fs.writeFileSync(path.join(tmp, 'config.yaml'), 'auth: none\ncert: false\n');
  server = spawn(env.CODE_SERVER_NODE, [env.CODE_SERVER_ENTRY, '--config', path.join(tmp, 'config.yaml'), '--auth', 'none',
    '--bind-addr', '127.0.0.1:0', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--reconnection-grace-time', '10', '--vscode-option', 'enable-smoke-test-driver',
    '--user-data-dir', path.join(tmp, 'ud'), '--extensions-dir', path.join(tmp, 'ext'), path.join(tmp, 'ws')],
  { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  server.stderr.pipe(fs.createWriteStream(path.join(tmp, 'code-server.err')));
  const host = await new Promise((resolve, reject) => {
    let buf = '';
    server.stdout.on('data', (d) => { buf += d; const m = /listening on http:\/\/([0-9.]+:\d+)/.exec(buf); if (m) resolve(m[1]); });
    server.on('exit', (c) => reject(new Error(`code-server exited with ${c}`)));
    setTimeout(() => reject(new Error('code-server did not start in 60 s')), 60_000);
  });
  log('code-server on', host);
  const payload = [['extensionDevelopmentPath', `vscode-remote://${host}${root}`], ['skipWelcome', 'true']];
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`http://${host}/?folder=${encodeURIComponent(path.join(tmp, 'ws'))}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  log('workbench loaded');
  await page.locator('.statusbar').getByText('stories260K').first().waitFor({ timeout: 60_000 });
  log('extension active');
  const input = page.locator('.interactive-input-part .chat-input-container').first();
  if (!(await input.isVisible().catch(() => false))) {
    await page.keyboard.press('F1');
    await page.keyboard.type('Chat: Open Chat');
    await page.waitForTimeout(500);
    await page.keyboard.press('Enter');
  }
  await input.waitFor({ timeout: 30_000 });
  // VS Code attaches a model to every chat request: pick ours in the picker first.
  const modelName = 'stories260K';
  for (let i = 0; i < 20 && !(await input.getByText(modelName).first().isVisible().catch(() => false)); i++) {
    await input.getByText(/Models|Auto|GPT|Claude|Nanochat/).first().click({ force: true, timeout: 1000 }).catch(() => {});
    const item = page.locator('.action-widget').getByText(modelName).first();
    if (await item.waitFor({ timeout: 1500 }).then(() => true, () => false)) await item.click(); else await page.keyboard.press('Escape');
  }
  log('model selected');
  // The input editor takes keystrokes only once the view has settled: type until the text shows.
  for (let attempt = 0; attempt < 10; attempt++) {
    await input.locator('.monaco-editor').first().click({ force: true });
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('@nanochat Once upon a time', { delay: 15 });
    if (/Once upon a time/.test(await input.innerText().catch(() => ''))) break;
    await page.waitForTimeout(1500);
  }
  await page.keyboard.press('Enter');
  const response = page.locator('.interactive-response').last();
  await response.waitFor({ timeout: 60_000 });
  // Streamed story text, then the stats footer that ends every reply.
  await response.getByText(/tok\/s/).first().waitFor({ timeout: 90_000 });
  const text = (await response.innerText()).trim();
  await page.screenshot({ path: path.join(results, 'chat-view.png') });
  log('screenshot', path.join(results, 'chat-view.png'));
  const story = text.replace(/\d+ tokens ·.*$/s, '').trim();
  const ok = story.split(/\s+/).length >= 8 && !/unavailable|could not answer/i.test(text);
  await finish(ok, `reply: ${JSON.stringify(text.slice(0, 300))}`);
} catch (err) {
  console.error(err);
  await page?.screenshot({ path: path.join(results, 'chat-view-failure.png') }).catch(() => {});
  await finish(false);
}
