// npm run package [-- --target linux-x64 --target darwin-arm64 …] [--out DIR]
//
// Builds one platform-specific VSIX per VS Code target with `vsce package --target`. Each holds the
// minified dist/, media/, the model catalog, and node-llama-cpp with only its own platform's prebuilt
// binaries: the CPU build plus the GPU build that covers most of that platform's GPUs in little space
// (Metal is part of the macOS arm64 build; Vulkan on Linux x64 and Windows x64). The CUDA builds are
// several hundred MB: README.md says how a user adds them. No dev files, sources maps or test models.
//
// Binaries come from this checkout's node_modules when npm installed them here (the host platform),
// otherwise from the npm registry (`npm pack`): nothing else is needed on the network.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const llamaVersion = manifest.dependencies['node-llama-cpp'];

/** VS Code target → the @node-llama-cpp packages it carries. */
const TARGETS = {
  'linux-x64': ['linux-x64', 'linux-x64-vulkan'],
  'linux-arm64': ['linux-arm64'],
  'linux-armhf': ['linux-armv7l'],
  'darwin-arm64': ['mac-arm64-metal'],
  'darwin-x64': ['mac-x64'],
  'win32-x64': ['win-x64', 'win-x64-vulkan'],
  'win32-arm64': ['win-arm64'],
};
const DEFAULT_TARGETS = ['linux-x64', 'linux-arm64', 'darwin-arm64', 'darwin-x64', 'win32-x64'];
const LIMIT_BYTES = 120 * 1024 * 1024;

const { values } = parseArgs({ options: { target: { type: 'string', multiple: true }, out: { type: 'string' }, 'skip-build': { type: 'boolean', default: false } } });
const targets = values.target?.length ? values.target : DEFAULT_TARGETS;
for (const t of targets) if (!TARGETS[t]) fail(`unknown target ${t}; known: ${Object.keys(TARGETS).join(', ')}`);
const out = path.resolve(values.out ?? path.join(root, 'out', 'vsix'));
const work = path.join(root, 'out', 'package');
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });

function fail(message) {
  console.error(`nanochat package: ${message}`);
  process.exit(1);
}

if (!values['skip-build']) run(process.execPath, ['esbuild.mjs', '--production']);
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

// 1. node-llama-cpp and its runtime dependencies, without any platform binaries, installed once.
const base = path.join(work, 'base');
fs.mkdirSync(base, { recursive: true });
fs.writeFileSync(path.join(base, 'package.json'), JSON.stringify({ name: 'nanochat-deps', private: true, dependencies: { 'node-llama-cpp': llamaVersion } }));
console.log(`Installing node-llama-cpp ${llamaVersion} without binaries…`);
run('npm', ['install', '--omit=dev', '--omit=optional', '--ignore-scripts', '--no-package-lock', '--loglevel=error'], base);

// 2. The extension's own files, and a manifest without dev dependencies or scripts.
const { devDependencies, scripts, ...kept } = manifest;
const packagedManifest = { ...kept, dependencies: { 'node-llama-cpp': llamaVersion } };
const ignore = [
  // Type declarations and source maps are for editors and debuggers, not for running.
  '**/*.map', '**/*.ts', '**/*.mts', '**/*.cts', '**/*.gguf',
  // The llama.cpp source (34 MB): "Build llama.cpp for This Machine" fetches the release from GitHub
  // instead. The build scripts, addon source and patches it needs (under 1 MB) stay in.
  'node_modules/node-llama-cpp/llama/gitRelease.bundle', 'node_modules/node-llama-cpp/templates/**',
  'node_modules/**/*.md', 'node_modules/**/*.markdown', 'node_modules/**/test/**', 'node_modules/**/docs/**',
];

const sizes = [];
for (const target of targets) {
  const stage = path.join(work, target);
  fs.cpSync(base, stage, { recursive: true });
  for (const entry of ['dist', 'media', 'models', 'resources', 'README.md', 'CHANGELOG.md', 'LICENSE']) {
    fs.cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true, filter: (src) => !src.endsWith('.map') });
  }
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(packagedManifest, null, 2));
  // node-llama-cpp's modules in this VSIX's own node_modules layout (npm may place them otherwise here).
  run(process.execPath, [path.join(root, 'tools', 'importOrder.mjs'), stage]);
  fs.writeFileSync(path.join(stage, '.vscodeignore'), ignore.join('\n') + '\n');
  for (const binary of TARGETS[target]) addBinary(binary, path.join(stage, 'node_modules', '@node-llama-cpp', binary));
  const file = path.join(out, `nanochat-${target}-${manifest.version}.vsix`);
  console.log(`Packaging ${path.basename(file)}…`);
  run(process.execPath, [path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--target', target, '--out', file, '--no-rewrite-relative-links'], stage);
  const bytes = fs.statSync(file).size;
  sizes.push({ target, file, bytes });
  if (bytes > LIMIT_BYTES) fail(`${path.basename(file)} is ${(bytes / 1048576).toFixed(1)} MiB, over the 120 MiB limit`);
}
console.log('\nVSIX sizes:');
for (const s of sizes) console.log(`  ${s.target.padEnd(13)} ${(s.bytes / 1048576).toFixed(1).padStart(6)} MiB  ${path.relative(root, s.file)}`);
fs.writeFileSync(path.join(out, 'sizes.json'), JSON.stringify(sizes.map(({ target, bytes, file }) => ({ target, bytes, file: path.basename(file) })), null, 2) + '\n');

/** Copies @node-llama-cpp/<name> from node_modules when this checkout has the right version, else fetches it with npm pack. */
function addBinary(name, destination) {
  const local = path.join(root, 'node_modules', '@node-llama-cpp', name);
  const localVersion = fs.existsSync(path.join(local, 'package.json')) ? JSON.parse(fs.readFileSync(path.join(local, 'package.json'), 'utf8')).version : undefined;
  if (localVersion === llamaVersion) {
    fs.cpSync(local, destination, { recursive: true });
    return;
  }
  const cache = path.join(root, 'out', 'binaries');
  fs.mkdirSync(cache, { recursive: true });
  const tarball = path.join(cache, `node-llama-cpp-${name}-${llamaVersion}.tgz`);
  if (!fs.existsSync(tarball)) {
    console.log(`Fetching @node-llama-cpp/${name}@${llamaVersion}…`);
    const packed = execFileSync('npm', ['pack', `@node-llama-cpp/${name}@${llamaVersion}`, '--pack-destination', cache, '--loglevel=error'], { cwd: cache, encoding: 'utf8' }).trim().split('\n').at(-1);
    fs.renameSync(path.join(cache, packed), tarball);
  }
  fs.mkdirSync(destination, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', destination, '--strip-components=1']);
}
