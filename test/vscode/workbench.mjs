// Starts a real VS Code (code-server 4.139.1 = VS Code 1.139.1) with nanochat loaded from this checkout,
// in headless Debian Chromium, for the UI end-to-end tests. The user-data folder lives as long as the
// workbench, so a page reload is a real window reload.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { hostEnv } from './host.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const results = path.join(root, 'test-results');

/**
 * Starts code-server and opens its workbench. By default nanochat loads from this checkout as an
 * extension under development; with `vsix`, that file is installed the way a user installs it
 * (`--install-extension`) and the checkout plays no part. Without `statusText` no model is expected.
 * `prepare(userDataDir)` writes what the profile holds before the start (global storage, say).
 */
export async function launchWorkbench(settings, { statusText, vsix, prepare } = {}) {
  const env = { ...process.env, ...hostEnv({ install: true }) };
  const { chromium } = createRequire(import.meta.url)(env.PLAYWRIGHT_CORE);
  fs.mkdirSync(results, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-e2e-'));
  const t0 = Date.now();
  const log = (...a) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
  fs.mkdirSync(path.join(tmp, 'ud/User'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'ws'));
  /** Writes the user settings; the running workbench picks changes up as a user's edit. */
  const writeSettings = (values) => fs.writeFileSync(path.join(tmp, 'ud/User/settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'update.mode': 'none', 'telemetry.telemetryLevel': 'off', ...values,
  }));
  writeSettings(settings);
  // What a user's profile already holds before this start (prepare gets the user data folder).
  prepare?.(path.join(tmp, 'ud'));
  fs.writeFileSync(path.join(tmp, 'config.yaml'), 'auth: none\ncert: false\n');
  if (vsix) {
    log('installing', path.basename(vsix));
    const installed = spawnSync(env.CODE_SERVER_NODE, [env.CODE_SERVER_ENTRY, '--user-data-dir', path.join(tmp, 'ud'), '--extensions-dir', path.join(tmp, 'ext'), '--install-extension', vsix], { env, encoding: 'utf8' });
    log((installed.stdout + installed.stderr).trim().split('\n').filter(Boolean).slice(-2).join(' / '));
    if (installed.status !== 0) throw new Error(`--install-extension failed with ${installed.status}`);
  }
  const server = spawn(env.CODE_SERVER_NODE, [env.CODE_SERVER_ENTRY, '--config', path.join(tmp, 'config.yaml'), '--auth', 'none',
    '--bind-addr', '127.0.0.1:0', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
    '--disable-getting-started-override', '--reconnection-grace-time', '10', '--vscode-option', 'enable-smoke-test-driver',
    '--user-data-dir', path.join(tmp, 'ud'), '--extensions-dir', path.join(tmp, 'ext'), path.join(tmp, 'ws')],
  { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  server.stderr.pipe(fs.createWriteStream(path.join(tmp, 'code-server.err')));
  let browser;
  let page;
  const finish = async (ok, detail = '', screenshotName = 'failure.png') => {
    if (detail) console.log(detail);
    if (!ok) await page?.screenshot({ path: path.join(results, screenshotName) }).catch(() => {});
    console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
    await browser?.close().catch(() => {});
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      try { process.kill(-server.pid, 'SIGTERM'); } catch { /* gone */ }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    // The extension host may still be writing as it exits (Node.js's compile cache): retry, and never
    // let tidying up fail a test that passed.
    if (ok) {
      try { fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); } catch (err) { console.error(`could not remove ${tmp}: ${err.message}`); }
    } else console.error('logs kept in', tmp);
    process.exit(ok ? 0 : 1);
  };
  const host = await new Promise((resolve, reject) => {
    let buf = '';
    server.stdout.on('data', (d) => { buf += d; const m = /listening on http:\/\/([0-9.]+:\d+)/.exec(buf); if (m) resolve(m[1]); });
    server.on('exit', (c) => reject(new Error(`code-server exited with ${c}`)));
    setTimeout(() => reject(new Error('code-server did not start in 60 s')), 60_000);
  });
  log('code-server on', host);
  const payload = [...(vsix ? [] : [['extensionDevelopmentPath', `vscode-remote://${host}${root}`]]), ['skipWelcome', 'true']];
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const url = `http://${host}/?folder=${encodeURIComponent(path.join(tmp, 'ws'))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const open = async () => {
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.locator('.statusbar').getByText(statusText ?? 'nanochat').first().waitFor({ timeout: 60_000 });
  };
  await page.goto(url);
  await open();
  log('workbench loaded, extension active');
  /** Runs a command from the palette, by its title. */
  const runCommand = async (title) => {
    await page.keyboard.press('F1');
    await page.locator('.quick-input-widget input').waitFor({ timeout: 10_000 });
    await page.keyboard.type(title, { delay: 10 });
    await page.locator('.quick-input-list .monaco-list-row').filter({ hasText: title }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press('Enter');
  };
  const reload = async () => { await page.reload(); await open(); };
  return { page, log, finish, runCommand, reload, writeSettings, extensionsDir: path.join(tmp, 'ext') };
}

/**
 * Sends "@nanochat <prompt>" through the Chat view with the nanochat model picked in the model
 * picker, and returns the response text once its stats footer (tok/s) has arrived.
 */
export async function askNanochat(page, runCommand, log, modelName, prompt) {
  const input = page.locator('.interactive-input-part .chat-input-container').first();
  if (!(await input.isVisible().catch(() => false))) await runCommand('Chat: Open Chat');
  await input.waitFor({ timeout: 30_000 });
  // VS Code attaches a model to every chat request: pick ours in the picker first.
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
    await page.keyboard.type(`@nanochat ${prompt}`, { delay: 15 });
    if (new RegExp(prompt).test(await input.innerText().catch(() => ''))) break;
    await page.waitForTimeout(1500);
  }
  await page.keyboard.press('Enter');
  const response = page.locator('.interactive-response').last();
  await response.waitFor({ timeout: 60_000 });
  await response.getByText(/tok\/s/).first().waitFor({ timeout: 90_000 });
  return (await response.innerText()).trim();
}
