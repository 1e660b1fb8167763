// npm start: opens a real VS Code with nanochat loaded from this checkout.
// - With the `code` CLI: an Extension Development Host window.
// - Without it: the local code-server host (VS Code 1.139.1, works offline); open the printed URL.
// NANOCHAT_MODEL=/path/model.gguf preselects a model. PORT picks code-server's port (default 8080).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostEnv } from '../test/vscode/host.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const build = spawnSync('node', ['esbuild.mjs'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const dataDir = path.join(os.homedir(), '.cache', 'nanochat', 'dev-profile');
const settingsFile = path.join(dataDir, 'User', 'settings.json');
fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
const settings = fs.existsSync(settingsFile) ? JSON.parse(fs.readFileSync(settingsFile, 'utf8')) : { 'workbench.startupEditor': 'none', 'telemetry.telemetryLevel': 'off' };
if (process.env.NANOCHAT_MODEL) settings['nanochat.model'] = path.resolve(process.env.NANOCHAT_MODEL);
fs.writeFileSync(settingsFile, JSON.stringify(settings, null, 2));
const workspace = process.argv[2] ? path.resolve(process.argv[2]) : root;

const hasCode = spawnSync('code', ['--version'], { stdio: 'ignore' }).status === 0;
if (hasCode && !process.env.NANOCHAT_USE_CODE_SERVER) {
  const child = spawn('code', ['--new-window', `--extensionDevelopmentPath=${root}`, `--user-data-dir=${dataDir}`, workspace], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  const env = { ...process.env, ...hostEnv({ install: true }) };
  const port = process.env.PORT || '8080';
  const config = path.join(dataDir, 'code-server.yaml');
  fs.writeFileSync(config, 'auth: none\ncert: false\n');
  const server = spawn(env.CODE_SERVER_NODE, [env.CODE_SERVER_ENTRY, '--config', config, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', '--vscode-option', 'enable-smoke-test-driver',
    '--user-data-dir', dataDir, '--extensions-dir', path.join(dataDir, 'extensions'), workspace], { stdio: ['ignore', 'pipe', 'inherit'], env });
  server.stdout.on('data', (d) => {
    const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(String(d));
    if (!m) return;
    const payload = encodeURIComponent(JSON.stringify([['extensionDevelopmentPath', `vscode-remote://${m[1].slice(7)}${root}`]]));
    console.log(`\nnanochat is running in VS Code ${'1.139.1'} (code-server). Open:\n\n  ${m[1]}/?folder=${encodeURIComponent(workspace)}&payload=${payload}\n\nCtrl+C stops it.`);
  });
  process.on('SIGINT', () => { server.kill('SIGTERM'); process.exit(0); });
  server.on('exit', (code) => process.exit(code ?? 0));
}
