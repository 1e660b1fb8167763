#!/usr/bin/env node
// A stand-in "VS Code executable" for @vscode/test-electron's runTests({ vscodeExecutablePath }).
// It accepts the same CLI flags VS Code gets (--extensionDevelopmentPath=, --extensionTestsPath=,
// --user-data-dir=, --extensions-dir=, [folder]), starts code-server (real VS Code 1.139 server + Node
// extension host), opens it in headless Debian Chromium with the test payload, and exits with the
// extension tests' exit code (reported by the workbench through window.codeAutomationExit).
// Adapted from ../shared/vscode-host/code-server-test-host.js.
// Env: CODE_SERVER_ENTRY (code-server/out/node/entry.js), CODE_SERVER_NODE (node >= 24 binary),
//      CHROMIUM (default /usr/bin/chromium), PLAYWRIGHT_CORE (module path), TEST_HOST_TIMEOUT_MS, TEST_HOST_VERBOSE=1
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const util = require('util');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const argv = process.argv.slice(2);
const opt = (name) => { const a = argv.filter(x => x.startsWith(`--${name}=`)).map(x => x.slice(name.length + 3)); return a; };
const devPaths = opt('extensionDevelopmentPath');
const testsPath = opt('extensionTestsPath')[0];
const folder = argv.find(a => !a.startsWith('-'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cs-test-host-'));
const userDataDir = opt('user-data-dir')[0] || path.join(tmp, 'user-data');
const extensionsDir = opt('extensions-dir')[0] || path.join(tmp, 'extensions');
const timeoutMs = +(process.env.TEST_HOST_TIMEOUT_MS || 300000);
const verbose = process.env.TEST_HOST_VERBOSE === '1';
const trust = process.env.NANOCHAT_TEST_WORKSPACE_TRUST === '1';
const NOISE = /^\[(ChatModelSelection|AgentHost|AccountPolicyGate|Service Worker|reconnection-grace-time)|^(Resolving|Resolved) connection token|^Creating a socket|^Updating additional builtin|ENOTFOUND|getaddrinfo/;

fs.mkdirSync(userDataDir, { recursive: true });
fs.mkdirSync(extensionsDir, { recursive: true });
// Quiet, offline-friendly defaults, plus the test's own settings from NANOCHAT_TEST_SETTINGS (JSON),
// written afresh for every run: what a test changed (or a failed one left behind) never carries over.
const settingsFile = path.join(userDataDir, 'User', 'settings.json');
{
  fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
  fs.writeFileSync(settingsFile, JSON.stringify({
    'workbench.startupEditor': 'none', 'extensions.autoCheckUpdates': false, 'extensions.autoUpdate': false,
    'update.mode': 'none', 'telemetry.telemetryLevel': 'off', 'workbench.enableExperiments': false,
    ...JSON.parse(process.env.NANOCHAT_TEST_SETTINGS || '{}'),
    // NANOCHAT_TEST_WORKSPACE_TRUST=1: a folder opens untrusted (Restricted Mode) without a prompt.
    ...(trust ? { 'security.workspace.trust.enabled': true, 'security.workspace.trust.startupPrompt': 'never', 'security.workspace.trust.emptyWindow': false } : {}),
  }, null, 2));
}
fs.writeFileSync(path.join(tmp, 'config.yaml'), 'auth: none\ncert: false\n');

let server, ctx, finished = false;
async function finish(code) {
  if (finished) return; finished = true;
  if (ctx) await ctx.close().catch(() => {});
  if (server && server.exitCode === null) { try { process.kill(-server.pid, 'SIGTERM'); } catch {} }
  fs.rmSync(path.join(tmp, 'chrome'), { recursive: true, force: true });
  if (code === 0) setTimeout(() => { fs.rmSync(tmp, { recursive: true, force: true }); process.exit(0); }, 1000);  // keep logs on failure
  else process.exit(code);
}
process.on('SIGINT', () => finish(130));
process.on('SIGTERM', () => finish(143));

(async () => {
  const t0 = Date.now();
  const node = process.env.CODE_SERVER_NODE || 'node';
  const entry = process.env.CODE_SERVER_ENTRY;
  if (!entry) throw new Error('set CODE_SERVER_ENTRY to .../code-server/out/node/entry.js');
  server = spawn(node, [entry, '--config', path.join(tmp, 'config.yaml'), '--auth', 'none', '--bind-addr', '127.0.0.1:0',
    '--disable-telemetry', '--disable-update-check', ...(trust ? [] : ['--disable-workspace-trust']), '--disable-getting-started-override',
    '--reconnection-grace-time', '10', '--vscode-option', 'enable-smoke-test-driver',
    '--user-data-dir', userDataDir, '--extensions-dir', extensionsDir, ...(folder ? [folder] : [])],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: path.dirname(node) + path.delimiter + process.env.PATH } });
  const serverLog = fs.createWriteStream(path.join(tmp, 'code-server.log'));
  server.stderr.pipe(serverLog);
  const host = await new Promise((resolve, reject) => {
    let buf = '';
    server.stdout.on('data', d => { serverLog.write(d); buf += d; const m = /HTTP server listening on http:\/\/([0-9.]+:\d+)/.exec(buf); if (m) resolve(m[1]); });
    server.on('exit', c => reject(new Error('code-server exited early with ' + c + '; see ' + path.join(tmp, 'code-server.log'))));
    setTimeout(() => reject(new Error('code-server did not start in 60s')), 60000);
  });
  console.log(`[test-host] code-server on ${host} after ${Date.now() - t0} ms (logs: ${tmp})`);
  const payload = [...devPaths.map(p => ['extensionDevelopmentPath', `vscode-remote://${host}${path.resolve(p)}`]), ['skipWelcome', 'true']];
  if (testsPath) payload.push(['extensionTestsPath', `vscode-remote://${host}${path.resolve(testsPath)}`]);
  const where = folder ? `folder=${encodeURIComponent(path.resolve(folder))}` : 'ew=true';
  const url = `http://${host}/?${where}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
  ctx = await chromium.launchPersistentContext(path.join(tmp, 'chrome'), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  let resolveExit; const exited = new Promise(r => (resolveExit = r));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const line = util.format(...(args || []));
    if (verbose || !NOISE.test(line)) (type === 'error' ? process.stderr : process.stdout).write(line + '\n');
  });
  await page.exposeFunction('codeAutomationExit', (code) => resolveExit(code));
  page.on('pageerror', e => verbose && console.error('[pageerror]', e.message));
  await page.goto(url);
  const code = await Promise.race([exited, new Promise(r => setTimeout(() => r('timeout'), timeoutMs))]);
  if (code === 'timeout') { console.error(`[test-host] no result after ${timeoutMs} ms (is extensionTestsPath right? logs: ${tmp})`); return finish(1); }
  console.log(`[test-host] extension tests exited with ${code} after ${Date.now() - t0} ms`);
  await finish(code);
})().catch(e => { console.error('[test-host]', e); finish(2); });
