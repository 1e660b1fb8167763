// Builds llama.cpp's own llama-server and llama-bench from the source node-llama-cpp ships
// (node_modules/node-llama-cpp/llama/gitRelease.bundle), once per machine and llama.cpp commit,
// into a cache outside the clone (~/.cache/nanochat/llama.cpp-<commit>, or $NANOCHAT_LLAMA_CPP_DIR).
// Debian's cmake and g++; about 8 minutes on 2 cores. Used by the server tests and the benchmarks.
//   node tools/llamaCpp.mjs            # build if missing, print the bin folder
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
const TARGETS = ['llama-server', 'llama-bench'];

function bundleCommit() {
  return execFileSync('git', ['ls-remote', bundle], { encoding: 'utf8' }).split(/\s/)[0].slice(0, 12);
}

function cacheDir() {
  return process.env.NANOCHAT_LLAMA_CPP_DIR || path.join(os.homedir(), '.cache', 'nanochat', `llama.cpp-${bundleCommit()}`);
}

/**
 * The bundled llama.cpp source tree (cloned from the bundle once, a few seconds, no build): its
 * models/ folder holds real vocabularies (ggml-vocab-*.gguf) and models' own chat templates.
 */
export function llamaCppSource() {
  const dir = cacheDir();
  const source = path.join(dir, 'src');
  if (!fs.existsSync(path.join(source, 'CMakeLists.txt'))) {
    fs.rmSync(source, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('git', ['clone', '-q', bundle, source], { stdio: 'inherit' });
  }
  return source;
}

/** The folder holding llama-server and llama-bench for the bundled llama.cpp, building it if needed. */
export function llamaCppBin({ build = true, log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const commit = bundleCommit();
  const dir = cacheDir();
  const bin = path.join(dir, 'build', 'bin');
  const ready = () => TARGETS.every((t) => fs.existsSync(path.join(bin, t)));
  if (ready() || !build) return ready() ? bin : undefined;
  const source = llamaCppSource();
  const started = Date.now();
  log(`Building ${TARGETS.join(' and ')} from the bundled llama.cpp (${commit}) into ${dir}; about 8 minutes on 2 cores…`);
  execFileSync('cmake', ['-S', source, '-B', path.join(dir, 'build'), '-DCMAKE_BUILD_TYPE=Release', '-DGGML_NATIVE=ON',
    '-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF', '-DLLAMA_BUILD_TESTS=OFF', '-DLLAMA_BUILD_EXAMPLES=OFF'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('cmake', ['--build', path.join(dir, 'build'), '-j', String(os.availableParallelism?.() ?? 2), '--target', ...TARGETS], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!ready()) throw new Error(`llama.cpp built, but ${TARGETS.join(' / ')} are not in ${bin}`);
  log(`llama.cpp tools built in ${Math.round((Date.now() - started) / 1000)} s.`);
  return bin;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(llamaCppBin());
}
