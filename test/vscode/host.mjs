// Finds (or installs) the VS Code host used by the tests: code-server 4.139.1 (VS Code 1.139.1) with
// Node 24, Debian's Chromium and playwright-core, cached outside the clone so CI reruns skip it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const HOST_DIR = process.env.VSCODE_HOST_DIR || path.join(os.homedir(), '.cache', 'nanochat', 'vscode-host-4.139.1');

/** Environment variables for code-server-test-host.js, installing the host first when asked to. */
export function hostEnv({ install = false } = {}) {
  const envFile = path.join(HOST_DIR, 'env.sh');
  if (!fs.existsSync(envFile)) {
    if (!install) return undefined;
    execFileSync('bash', [path.join(here, 'setup-host.sh')], { stdio: 'inherit', env: { ...process.env, VSCODE_HOST_DIR: HOST_DIR } });
  }
  const env = {};
  for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
    const m = /^export (\w+)="?(.*?)"?$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}
