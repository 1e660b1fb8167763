// Bundles the extension host code (CommonJS; vscode and node-llama-cpp stay external, the latter is
// ESM-only and loaded with a real dynamic import()) and the webview front end (browser IIFE).
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

/** @type {esbuild.BuildOptions[]} */
const builds = [
  {
    entryPoints: { extension: 'src/extension.ts', tokenWorker: 'src/core/tokens/tokenWorker.ts', benchWorker: 'src/core/bench/worker.ts', chatFormatWorker: 'src/core/engine/chatFormatWorker.ts' },
    outdir: 'dist',
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode', 'node-llama-cpp'],
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
  },
];
for (const [entry, out] of [['webview/main.ts', 'webview'], ['webview/bench.ts', 'bench']]) {
  builds.push({
    entryPoints: { [out]: entry },
    outdir: 'dist',
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    sourcemap: !production,
    minify: production,
    loader: { '.css': 'css', '.ttf': 'file' },
    assetNames: '[name]',
    logLevel: 'warning',
  });
}

if (watch) {
  for (const options of builds) await (await esbuild.context(options)).watch();
} else {
  await Promise.all(builds.map((options) => esbuild.build(options)));
  // esbuild must leave import('node-llama-cpp') alone: a require() of that ESM package fails in the extension host.
  for (const file of ['dist/extension.js', 'dist/benchWorker.js', 'dist/chatFormatWorker.js']) {
    if (/require\(["']node-llama-cpp["']\)/.test(fs.readFileSync(file, 'utf8'))) throw new Error(`${file} requires node-llama-cpp instead of importing it`);
  }
}
// The order node-llama-cpp's modules evaluate in, for the extension host's import one module at a time.
execFileSync(process.execPath, ['tools/importOrder.mjs'], { stdio: ['ignore', 'ignore', 'inherit'] });
