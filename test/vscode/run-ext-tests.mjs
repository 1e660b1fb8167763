// Runs the mocha suites inside the real VS Code extension host through @vscode/test-electron's runTests,
// with code-server standing in for desktop VS Code (which cannot be downloaded here). On a machine with
// internet, NANOCHAT_DESKTOP_VSCODE=1 runs the same suites in downloaded desktop VS Code instead.
import { runTests } from '@vscode/test-electron';
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { testModel } from '../support/models.ts';
import { hostEnv } from './host.mjs';
import { LlamaServer } from '../support/llamaServer.ts';
import { likeModel } from '../support/likeModels.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
await esbuild.build({
  entryPoints: { suite: 'test/vscode/suite/index.ts' }, outdir: 'out/test', bundle: true, platform: 'node', format: 'cjs',
  target: 'node20', external: ['vscode', 'mocha', 'node-llama-cpp'], sourcemap: true, logLevel: 'warning', absWorkingDir: root,
});
const model = await testModel('stories260K.gguf');
// A template-true Qwen2.5-Coder (real vocabulary with FIM tokens, one layer) for inline completions.
const coder = await likeModel('qwen2.5-coder-0.5b-instruct');
// And a template-true Qwen2.5 Instruct (its own template with tool calls) for @nanochat as an agent.
const agent = await likeModel('qwen2.5-0.5b-instruct');
// And a template-true Qwen3, which thinks.
const thinker = await likeModel('qwen3-0.6b');
const settings = { 'nanochat.model': model, 'nanochat.threads': 1, 'nanochat.gpu': 'off', 'nanochat.temperature': 0, 'nanochat.maxTokens': 48, 'nanochat.contextSize': 1024 };
const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-ws-'));
fs.writeFileSync(path.join(workspace, 'sample.py'), 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n');

const desktop = process.env.NANOCHAT_DESKTOP_VSCODE === '1';
const env = desktop ? {} : hostEnv({ install: true });

/** One extension-host run: the main suites, or the Restricted Mode suite in an untrusted workspace. */
async function run(suite, folder, extraEnv = {}) {
  await runTests({
    ...(desktop ? {} : { vscodeExecutablePath: path.join(root, 'test', 'vscode', 'code-server-test-host.js') }),
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(root, 'out', 'test', 'suite.js'),
    launchArgs: [folder],
    extensionTestsEnv: { ...env, ...extraEnv, NANOCHAT_TEST_GREP: process.env.NANOCHAT_TEST_GREP ?? '', NANOCHAT_TEST_SUITE: suite, NANOCHAT_TEST_SETTINGS: JSON.stringify(settings), NANOCHAT_TEST_MODEL: model },
  });
}

// A cloned repository that tries to steer nanochat: its own model file and a models folder inside it.
const untrusted = fs.mkdtempSync(path.join(os.tmpdir(), 'nanochat-untrusted-'));
fs.mkdirSync(path.join(untrusted, '.vscode'));
fs.copyFileSync(model, path.join(untrusted, 'evil.gguf'));
fs.writeFileSync(path.join(untrusted, '.vscode', 'settings.json'), JSON.stringify({
  'nanochat.model': path.join(untrusted, 'evil.gguf'), 'nanochat.modelsFolder': path.join(untrusted, 'models'), 'nanochat.maxHistoryMessages': 3,
  'nanochat.backend': 'server', 'nanochat.server.url': 'http://attacker.invalid:8080/v1',
}));
// A real llama-server on loopback for the server-backend suite (built once per machine from the bundled llama.cpp).
const server = new LlamaServer(path.join(path.dirname(model), 'stories260K-chatml.gguf'));
try {
  await server.start();
  await run('main', workspace, { NANOCHAT_TEST_SERVER_URL: server.url, NANOCHAT_TEST_CODER_MODEL: coder, NANOCHAT_TEST_AGENT_MODEL: agent, NANOCHAT_TEST_THINKING_MODEL: thinker });
  // The same profile started again, as a user's every start after the first is (NANOCHAT_TEST_WARM=1:
  // also after a filtered run, to measure the start).
  if (!desktop && (!process.env.NANOCHAT_TEST_GREP || process.env.NANOCHAT_TEST_WARM)) await run('warm', workspace);
  if (!desktop) await run('restricted', untrusted, { NANOCHAT_TEST_WORKSPACE_TRUST: '1' });
} catch (err) {
  console.error('Extension host tests failed:', err.message ?? err);
  process.exitCode = 1;
} finally {
  await server.stop();
  fs.rmSync(workspace, { recursive: true, force: true });
  fs.rmSync(untrusted, { recursive: true, force: true });
}
