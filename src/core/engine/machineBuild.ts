import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { NanochatError, errorMessage } from '../errors';
import { silentLogger, type Logger } from '../log';

/**
 * A llama.cpp build for this machine: node-llama-cpp's own source build, from the llama.cpp release
 * it ships, with the CPU features of this processor (GGML_NATIVE), ggml's own thread pool instead of
 * OpenMP, and nanochat's six patches (resources/llama.cpp/):
 * - persistent-threadpool.diff (llama.cpp): each context keeps a persistent, polling thread pool, as
 *   llama-bench and llama-server attach one. Without it, ggml makes a thread pool per decoded token
 *   (measured with a C++ program that decodes from a rotating thread pool: 67–81 tok/s without a
 *   persistent pool, 97 with it, llama-bench 96).
 * - barrier-yield.diff (llama.cpp): ggml's barrier between a graph's operations spins until every
 *   thread arrives; a thread that has waited 4096 spins now yields its CPU instead. With every core
 *   busy elsewhere, a thread that is off its CPU held the others spinning out their time slices at each
 *   of a token's ~300 barriers: two-thread generation under that load ran at 14.4 tok/s (llama-bench,
 *   whose OpenMP barrier sleeps, 21.7); with the yield 31.3, 33.8 and 36.3 (llama-bench 17.9, 8.1 and
 *   19.6), and level alone (a fresh build: prompt 1.0×, generation 1.01× llama-bench, five rounds).
 * - faster-load.diff (llama.cpp): a model's load repacked each large weight for the CPU's kernels on one
 *   thread, into memory faulted in 4 KB at a time: most of the load (a 284 MB q4_0 model: 1.85 s, its
 *   repack 55% of the CPU time). The repack now splits a weight's rows among the cores
 *   (NANOCHAT_REPACK_THREADS, 1 for one thread) and buffers of 32 MB and more are on transparent huge
 *   pages where Linux gives them on request: 1.45 s with the first, 1.1 s with both (two cores here).
 *   A weight copied out of the file's mapping also has its pages dropped from the process (they stay
 *   in the page cache): 589 MB resident after a reply instead of 872 (265 MB of it the file's pages).
 * - gqa-flash-attention.diff (llama.cpp): flash attention over a prompt batch took a tile of 64
 *   positions of one query head; a batch of fewer than 64 tokens (a follow-up turn) took the row-by-row
 *   path, and each tile converted its keys and mask element by element. A tile now holds a few
 *   positions of every query head that shares a KV head, with the scores kept transposed so keys,
 *   values and the softmax are handled as vectors (llama-bench, 2 threads, 900 tokens deep: 56 tokens
 *   257 → 421 tok/s, 64 tokens 401 → 434, 512 tokens 2,048 deep 270 → 332; generation level or
 *   faster; test-backend-ops: all 5,181 flash-attention cases agree with ggml's reference). A single
 *   token takes the same kernel (unless there are fewer KV heads than threads), so a token's attention
 *   no longer depends on the batch it is read in: a reply at temperature 0 is the same whether its
 *   prompt was cached or not. The kernel also prefetches the next tile's keys and values: a generated
 *   token reads the whole cache a row at a time and waited on memory for it (nanochat, one thread, 4,096
 *   tokens deep: 29 → 46 tok/s).
 * - x86-decode.diff (llama.cpp): a generated token multiplies every weight by one row of activations,
 *   and two of ggml's kernels for that were compute-bound, well below what one core can read: q4_0
 *   (repacked, 8 rows interleaved: sign-extended through a shuffle table, then blended and shuffled back
 *   into place) at 23 GB/s, and q5_0 (the type k-quant files fall back to for rows whose length is not a
 *   multiple of 256, most of Qwen2.5 0.5B's weights) at 16 GB/s, where one core reads 36. The new
 *   kernels keep the quants unsigned and multiply them by the activations directly (vpdpbusd; without
 *   VNNI vpmaddubsw), taking the offset out exactly. q4_0 on AVX2 and AVX-512: 36–40 GB/s with AVX-512
 *   VNNI, ~35 with AVX-VNNI, ~28 with plain AVX2 (ggml's: 23, 23, 19); llama-bench, one thread: q4_0
 *   generation 75 → 117–128 tok/s. q5_0 with AVX-512 VNNI: 19–23 GB/s (Q4_K_M generation 45 → 50). The
 *   blocks' integer dot products stay exact; a test multiplies each weight type against a reference in
 *   double precision, on this build and on ggml built for AVX2 with and without VNNI.
 * - addon-context-thread.diff (node-llama-cpp's addon): each context decodes and samples on a thread
 *   of its own ("nanochat-decode") instead of whichever libuv pool thread is free. Under a competing
 *   CPU load the pool's short-lived sleepers used the same CPU time per token as llama-bench but waited
 *   2–4× as long for a core (/proc schedstat); two-thread generation under load went from 0.67× to
 *   0.95× of llama-bench. The same thread decodes each sampled token ahead, while JavaScript receives
 *   it, and rolls it back when the next decode asked for is another (see `decodeAhead` in threads.ts).
 *
 * The options name the build: getLlama finds it in node-llama-cpp's local builds by them, and falls
 * back to the prebuilt binaries when it is not there. NANOCHAT_CONTEXT_THREAD marks builds with the
 * second patch, so an older machine build is not taken for this one.
 */
const MARKER = 'NANOCHAT_CONTEXT_THREAD';

export const MACHINE_BUILD_CMAKE_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  GGML_NATIVE: 'ON',
  GGML_OPENMP: 'OFF',
  NANOCHAT_THREADPOOL: 'ON',
  [MARKER]: 'ON',
});

export function isMachineBuild(llama: Llama): boolean {
  return llama.buildType === 'localBuild' && llama.cmakeOptions?.[MARKER] === 'ON';
}

/** node-llama-cpp's package folder (its `llama/` holds the build scripts, addon source and local builds). */
export function nodeLlamaCppRoot(): string {
  // The package is ESM-only with exports that hide its files: find its folder on disk instead.
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', 'node-llama-cpp');
    if (fs.existsSync(path.join(candidate, 'llama'))) return candidate;
    if (path.dirname(dir) === dir) throw new NanochatError('node-llama-cpp is not installed beside nanochat.');
  }
}

/** One of nanochat's patches (resources/llama.cpp/), beside the extension's dist/ or the repository's src/. */
function resourcePatch(name: string): string {
  const candidates = [path.resolve(__dirname, '..', 'resources', 'llama.cpp', name), path.resolve(__dirname, '..', '..', '..', 'resources', 'llama.cpp', name)];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) throw new NanochatError(`The llama.cpp patch (resources/llama.cpp/${name}) is missing from this installation.`);
  return found;
}

/**
 * The patches to llama.cpp's source, in the order they are applied (each is described above): a
 * persistent thread pool per context, ggml's barrier yielding the CPU after a long wait, a faster load
 * (the repack on every core, huge pages, copied weights' file pages dropped), flash attention that
 * tiles the query heads sharing a KV head, and x86 kernels for a generated token's q4_0 and q5_0
 * products.
 */
export const llamaCppPatches = (): string[] =>
  ['persistent-threadpool.diff', 'barrier-yield.diff', 'faster-load.diff', 'gqa-flash-attention.diff', 'x86-decode.diff'].map(resourcePatch);
/** The patch to node-llama-cpp's addon source (its `llama/` folder): a decoding thread per context. */
export const contextThreadPatch = () => resourcePatch('addon-context-thread.diff');

export interface MachineBuildOptions {
  /** Where finished builds are kept, outside node_modules, so a reinstall or a fresh clone restores one without compiling. */
  cacheDir: string;
  onProgress?: (message: string, fraction: number) => void;
  signal?: AbortSignal;
  log?: Logger;
}

/** What a build needs on this machine; a missing piece is named with how to get it. */
export async function missingBuildTools(): Promise<string[]> {
  const missing: string[] = [];
  const has = (command: string, args: string[]) => new Promise<boolean>((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore', shell: process.platform === 'win32' });
    child.once('error', () => resolve(false));
    child.once('exit', (code) => resolve(code === 0));
  });
  if (!await has('cmake', ['--version'])) missing.push('cmake');
  if (process.platform !== 'win32' && !(await has('c++', ['--version']) || await has('g++', ['--version']) || await has('clang++', ['--version']))) missing.push('a C++ compiler (g++ or clang++)');
  if (!await has('node', ['--version'])) missing.push('Node.js');
  if (!await has('npm', ['--version'])) missing.push('npm');
  if (!await has('git', ['--version'])) missing.push('git');
  return missing;
}

/** 2: the addon patch is applied outside any enclosing git work tree (recipe 1 could skip it silently). */
const BUILD_RECIPE = 2;

/** The local-build folder name node-llama-cpp gives these options, and its cache key. */
function cacheKey(root: string): string {
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version as string;
  const patch = [...llamaCppPatches(), contextThreadPatch()].map((file) => fs.readFileSync(file, 'utf8')).join('');
  let hash = 0;
  // Built for this processor (GGML_NATIVE): another CPU model gets a build of its own.
  // BUILD_RECIPE changes when the way a build is made changes, so a cached build from before is not restored.
  for (const ch of `${BUILD_RECIPE}` + patch + JSON.stringify(MACHINE_BUILD_CMAKE_OPTIONS) + (os.cpus()[0]?.model ?? '')) hash = (Math.imul(hash, 31) + ch.charCodeAt(0)) >>> 0;
  return `node-llama-cpp-${version}-${process.platform}-${process.arch}-${hash.toString(16)}`;
}

/** The name the patched addon gives each context's decoding thread: in the binary when the patch was compiled in. */
const DECODING_THREAD_NAME = 'nanochat-decode';

/** The finished machine builds among node-llama-cpp's local builds (folder names): marked, and with the patched addon. */
function machineBuildFolders(root: string): string[] {
  const builds = path.join(root, 'llama', 'localBuilds');
  if (!fs.existsSync(builds)) return [];
  return fs.readdirSync(builds).filter((name) => {
    const release = path.join(builds, name, 'Release');
    const meta = path.join(release, '_nlcBuildMetadata.json');
    return fs.existsSync(path.join(builds, name, 'buildDone.status')) && fs.existsSync(meta) && fs.readFileSync(meta, 'utf8').includes(`"${MARKER}":"ON"`)
      && hasDecodingThread(path.join(release, 'llama-addon.node'));
  });
}

/** Whether a built addon has the decoding-thread patch compiled in (its thread's name is in the binary; ~0.7 MB read). */
function hasDecodingThread(addon: string): boolean {
  try {
    return fs.readFileSync(addon).includes(DECODING_THREAD_NAME);
  } catch {
    return false;
  }
}

/**
 * In each machine build in node-llama-cpp's local builds: the cache key (node-llama-cpp's version,
 * nanochat's patches and options, the processor) it was made or restored for. node-llama-cpp names a
 * local build by its cmake options only, so a build made before the patches changed sits under the
 * same name: without the key it was taken for the current one (and `npm run build-llama` even kept it
 * under the new key) in a checkout whose node_modules outlived the change.
 */
const KEY_FILE = 'nanochat-build-key';

/**
 * The machine builds in place that were made for the current patches, options and node-llama-cpp. The
 * key is written only to a build that keepMachineBuild checked (marked, the decoding thread compiled
 * in) or restored from one it kept, so a start reads a few bytes here instead of each ~0.7 MB addon.
 */
function currentBuildFolders(root: string, key = cacheKey(root)): string[] {
  const builds = path.join(root, 'llama', 'localBuilds');
  if (!fs.existsSync(builds)) return [];
  return fs.readdirSync(builds).filter((name) => {
    try {
      return fs.readFileSync(path.join(builds, name, KEY_FILE), 'utf8').trim() === key
        && fs.existsSync(path.join(builds, name, 'buildDone.status')) && fs.existsSync(path.join(builds, name, 'Release', 'llama-addon.node'));
    } catch {
      return false;
    }
  });
}

/**
 * Copies the machine build just made (its binaries only, ~13 MB) into `cacheDir` and marks it, in
 * place, as made for the current patches; false when there is none. Call it right after a build (or
 * with a current build in place): a build in place is taken for this one.
 */
export function keepMachineBuild(cacheDir: string, log: Logger = silentLogger): boolean {
  const root = nodeLlamaCppRoot();
  const folders = machineBuildFolders(root);
  if (!folders.length) return false;
  const key = cacheKey(root);
  const cached = path.join(cacheDir, key);
  fs.rmSync(cached, { recursive: true, force: true });
  for (const name of folders) {
    const from = path.join(root, 'llama', 'localBuilds', name);
    const to = path.join(cached, 'localBuilds', name);
    fs.writeFileSync(path.join(from, KEY_FILE), key);
    fs.cpSync(path.join(from, 'Release'), path.join(to, 'Release'), { recursive: true });
    fs.copyFileSync(path.join(from, 'buildDone.status'), path.join(to, 'buildDone.status'));
    fs.copyFileSync(path.join(from, KEY_FILE), path.join(to, KEY_FILE));
  }
  fs.writeFileSync(path.join(cached, MACHINE_FILE), JSON.stringify(thisMachine()));
  pruneOlderBuilds(cacheDir, key, log);
  return true;
}

/** Beside each kept build: the machine it was made for. */
const MACHINE_FILE = 'machine.json';
const thisMachine = () => ({ platform: process.platform, arch: process.arch, cpu: os.cpus()[0]?.model ?? '' });

/**
 * Removes the kept builds made for this very machine (platform, architecture, processor model) by an
 * earlier version of node-llama-cpp or of nanochat's patches: after an update they are never restored
 * again, and each is ~13 MB. A build for another processor (a home folder shared between machines) is
 * another machine's, and a build kept without the file that names its machine (before it was written)
 * cannot be told apart: both stay.
 */
function pruneOlderBuilds(cacheDir: string, key: string, log: Logger): void {
  const me = JSON.stringify(thisMachine());
  for (const name of fs.readdirSync(cacheDir)) {
    if (name === key || !name.startsWith('node-llama-cpp-')) continue;
    try {
      const made = JSON.parse(fs.readFileSync(path.join(cacheDir, name, MACHINE_FILE), 'utf8')) as unknown;
      if (JSON.stringify(made) !== me) continue;
      fs.rmSync(path.join(cacheDir, name), { recursive: true, force: true });
      log.info(`Removed the llama.cpp build for this machine made for an earlier version (${name}).`);
    } catch {
      // No machine named: left as it is.
    }
  }
}

/** Whether node-llama-cpp has a finished build for this machine in place, made for the current patches. */
export function hasMachineBuild(): boolean {
  return machineBuildLibraries() !== undefined;
}

/** The folder holding the current machine build's libraries (ggml's among them), when there is one. */
export function machineBuildLibraries(): string | undefined {
  try {
    const root = nodeLlamaCppRoot();
    const name = currentBuildFolders(root)[0];
    return name ? path.join(root, 'llama', 'localBuilds', name, 'Release') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What restoring found: a build already in place, one restored from the cache, only builds made for
 * another version of nanochat's patches or node-llama-cpp (or another processor) — an update makes
 * those, and the prebuilt binaries run until the build is made again — or none.
 */
export type MachineBuildRestore = 'in place' | 'restored' | 'stale' | 'none';

/** Copies a cached machine build back into node-llama-cpp's local builds; says what it found. */
export function restoreMachineBuild(cacheDir: string, log: Logger = silentLogger): MachineBuildRestore {
  try {
    const root = nodeLlamaCppRoot();
    const key = cacheKey(root);
    if (currentBuildFolders(root, key).length) return 'in place';
    const cached = path.join(cacheDir, key, 'localBuilds');
    if (!fs.existsSync(cached)) {
      // A build made for another node-llama-cpp or another version of nanochat's patches is not used.
      const older = fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).filter((name) => name.startsWith('node-llama-cpp-') && name !== key) : [];
      if (!older.length) return 'none';
      log.info(`The llama.cpp build for this machine in ${cacheDir} was made for another version of nanochat or node-llama-cpp; using the prebuilt binaries until "Nanochat: Build llama.cpp for This Machine" builds it again (about 7 minutes).`);
      return 'stale';
    }
    for (const name of fs.readdirSync(cached)) {
      const to = path.join(root, 'llama', 'localBuilds', name);
      // A build in place made for earlier patches (the same name: the same options) is removed first,
      // not written over: another process that has its libraries loaded keeps its own files. (cpSync
      // unlinks a file it replaces in Node.js 20, but writes into it in Node.js 24, code-server's host.)
      fs.rmSync(to, { recursive: true, force: true });
      fs.cpSync(path.join(cached, name), to, { recursive: true });
      fs.writeFileSync(path.join(to, KEY_FILE), key); // kept before the key was written beside it
    }
    log.info(`Restored the llama.cpp build for this machine from ${cached}.`);
    return currentBuildFolders(root, key).length > 0 ? 'restored' : 'none';
  } catch (err) {
    log.warn(`Could not restore the llama.cpp build for this machine: ${errorMessage(err)}`);
    return 'none';
  }
}

/**
 * Builds llama.cpp for this machine with node-llama-cpp's own scripts: fetches the source of the
 * release it ships (from its bundled git bundle when there is one, else from GitHub), applies the
 * patch, compiles with MACHINE_BUILD_CMAKE_OPTIONS, and keeps the result in `cacheDir`. Takes minutes.
 */
export async function buildForThisMachine(options: MachineBuildOptions): Promise<void> {
  const log = options.log ?? silentLogger;
  const progress = options.onProgress ?? (() => undefined);
  const missing = await missingBuildTools();
  if (missing.length) throw new NanochatError(`Building llama.cpp for this machine needs ${missing.join(', ')} on PATH.`);
  const root = nodeLlamaCppRoot();
  const cli = path.join(root, 'dist', 'cli', 'cli.js');
  const env: NodeJS.ProcessEnv = { ...process.env, ELECTRON_RUN_AS_NODE: undefined, NODE_OPTIONS: undefined };
  for (const [key, value] of Object.entries(MACHINE_BUILD_CMAKE_OPTIONS)) env[`NODE_LLAMA_CPP_CMAKE_OPTION_${key}`] = value;
  // Offline machines with Node's headers installed (Debian's nodejs) build against them.
  if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node_api.h')) env.npm_config_nodedir = '/usr';
  // node-llama-cpp's scripts run on the Node.js and npm on PATH (the editor's own runtime is Electron).
  const node = 'node';

  progress('Fetching the llama.cpp source', 0.02);
  await run(node, [cli, 'source', 'download', '--gpu', 'false', '--skipBuild', '--noUsageExample'], root, env, log, options.signal);

  progress('Applying nanochat\'s patches', 0.05);
  for (const patch of llamaCppPatches()) await applyOnce(patch, path.join(root, 'llama', 'llama.cpp'), env, log, options.signal);
  // The addon's source ships in node-llama-cpp's package; its own builds compile it from there.
  await applyOnce(contextThreadPatch(), path.join(root, 'llama'), env, log, options.signal);

  progress('Compiling llama.cpp (several minutes)', 0.08);
  await run(node, [cli, 'source', 'build', '--gpu', 'false', '--noUsageExample'], root, env, log, options.signal, (line) => {
    const step = /^\[(\d+)\/(\d+)\]/.exec(line);
    if (step) progress(`Compiling llama.cpp (${step[1]}/${step[2]})`, 0.08 + 0.9 * (Number(step[1]) / Number(step[2])));
  });

  progress('Keeping the build', 0.99);
  if (!keepMachineBuild(options.cacheDir, log)) throw new NanochatError('The build finished, but node-llama-cpp did not leave a build with nanochat\'s options and its decoding thread.');
  const cached = path.join(options.cacheDir, cacheKey(root));
  log.info(`Built llama.cpp for this machine (${os.cpus()[0]?.model ?? 'this CPU'}); kept in ${cached}.`);
}

/**
 * The environment for `git apply` in `dir`: git must not take `dir` for part of a work tree above it
 * (node_modules inside a cloned repository, an extensions folder in a home directory kept in git).
 * There, `git apply` skips every file outside the subdirectory it runs in, says so only with
 * --verbose, and exits 0: the patch is silently not applied.
 */
export function gitApplyEnv(dir: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, GIT_CEILING_DIRECTORIES: path.dirname(path.resolve(dir)) };
}

/** Applies a patch in `dir` unless it is already applied there; afterwards it must be. */
async function applyOnce(patch: string, dir: string, env: NodeJS.ProcessEnv, log: Logger, signal?: AbortSignal): Promise<void> {
  const gitEnv = gitApplyEnv(dir, env);
  const applied = () => run('git', ['apply', '--reverse', '--check', patch], dir, gitEnv, log, signal).then(() => true, () => false);
  if (await applied()) return;
  await run('git', ['apply', patch], dir, gitEnv, log, signal);
  if (!await applied()) throw new NanochatError(`The patch ${path.basename(patch)} did not apply in ${dir}.`);
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, log: Logger, signal?: AbortSignal, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
    const tail: string[] = [];
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split(/\r?\n/)) {
        if (!line.trim()) continue;
        onLine?.(line);
        tail.push(line);
        if (tail.length > 20) tail.shift();
        log.debug(`build: ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const abort = () => child.kill();
    signal?.addEventListener('abort', abort, { once: true });
    child.once('error', (err) => reject(new NanochatError(`Could not run ${command}: ${err.message}`)));
    child.once('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      if (signal?.aborted) reject(new NanochatError('The build was cancelled.'));
      else if (code === 0) resolve();
      else reject(new NanochatError(`${path.basename(command)} ${args.slice(1, 3).join(' ')} failed (exit ${code}): ${tail.slice(-3).join(' | ')}`));
    });
  });
}
