// Starts a real VS Code (code-server 4.139.1 = VS Code 1.139.1) with nanochat loaded from this checkout,
// in headless Debian Chromium, for the UI end-to-end tests. The user-data folder lives as long as the
// workbench, so a page reload is a real window reload.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { hostEnv } from './host.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const results = path.join(root, 'test-results');

export async function launchWorkbench(settings, { statusText }) {
  const env = { ...process.env, ...hostEnv({ install: true }) };
  const { chromium } = createRequire(import.meta.url)(env.PLAYWRIGHT_CORE);
  fs.mkdirSync(results, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-e2e-'));
  const t0 = Date.now();
  const log = (...a) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
  fs.mkdirSync(path.join(tmp, 'ud/User'), { recursive: true });
  fs.mkdirSync(path.join(tmp, 'ws'));
  fs.writeFileSync(path.join(tmp, 'ud/User/settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'update.mode': 'none', 'telemetry.telemetryLevel': 'off', ...settings,
  }));
  fs.writeFileSync(path.join(tmp, 'config.yaml'), 'auth: none\ncert: false\n');
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
    if (server.exitCode === null) { try { process.kill(-server.pid, 'SIGTERM'); } catch { /* gone */ } }
    if (ok) fs.rmSync(tmp, { recursive: true, force: true }); else console.error('logs kept in', tmp);
    process.exit(ok ? 0 : 1);
  };
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
  const url = `http://${host}/?folder=${encodeURIComponent(path.join(tmp, 'ws'))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const open = async () => {
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    await page.locator('.statusbar').getByText(statusText).first().waitFor({ timeout: 60_000 });
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
  return { page, log, finish, runCommand, reload };
}
