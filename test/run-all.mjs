// npm test: every suite, in order — type check, build, unit tests on the real models (mocha),
// tests inside the real VS Code extension host, and the UI end-to-end tests in Chromium.
// NANOCHAT_SKIP_VSCODE=1 runs only the first four (for a quick loop).
import { spawnSync } from 'node:child_process';

const steps = [
  ['type check', 'npx', ['tsc', '-p', '.']],
  ['architecture rules (dependency-cruiser: src/core without vscode, src/ without test/ and tools/, no cycles)', 'npx', ['depcruise', 'src', 'webview', 'tools', '--config', '.dependency-cruiser.cjs']],
  ['build', 'node', ['esbuild.mjs']],
  ['unit and webview tests (mocha: real models, loopback server, headless Chromium)', 'npx', ['mocha']],
];
if (process.env.NANOCHAT_SKIP_VSCODE !== '1') {
  steps.push(
    ['extension host tests (VS Code 1.139 via code-server)', 'node', ['--import', 'tsx', 'test/vscode/run-ext-tests.mjs']],
    ['UI end-to-end test: Chat view (Chromium)', 'node', ['--import', 'tsx', 'test/vscode/e2e-chat.mjs']],
    ['UI end-to-end test: chat panel (Chromium)', 'node', ['--import', 'tsx', 'test/vscode/e2e-panel.mjs']],
    ['UI end-to-end test: the packaged VSIX installed with --install-extension (Chromium)', 'node', ['--import', 'tsx', 'test/vscode/e2e-vsix.mjs']],
  );
}
const failed = [];
for (const [name, cmd, args] of steps) {
  console.log(`\n=== ${name}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) failed.push(name);
}
console.log(`\nnpm test: ${steps.length - failed.length} of ${steps.length} steps passed${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
process.exit(failed.length ? 1 : 0);
