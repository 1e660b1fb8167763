import type { Llama, LlamaGpuType, LlamaModel, LlamaModelOptions } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import type { Settings } from '../settings';
import type { Logger } from '../log';
import { AsyncMemo } from '../memo';
import type { KeyValueStore } from '../modelFiles/library';
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs/promises';
import nodeModule from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { NODE_LLAMA_CPP_EXPORTS, type NodeLlamaCppExport } from './nodeLlamaCppExports';
import { MACHINE_BUILD_CMAKE_OPTIONS, hasMachineBuild, isMachineBuild, nodeLlamaCppRoot, restoreMachineBuild } from './machineBuild';
import { isTestedPrebuilt, rememberTestedPrebuilt, testedPrebuiltOptions } from './testedPrebuilt';

export { isMachineBuild } from './machineBuild';

/** What nanochat uses of node-llama-cpp: only the names in NODE_LLAMA_CPP_EXPORTS (see importOnce). */
export type NodeLlamaCpp = Pick<typeof import('node-llama-cpp', { with: { 'resolution-mode': 'import' } }), NodeLlamaCppExport>;
export type Backend = 'cpu' | 'cuda' | 'vulkan' | 'metal';

let module: Promise<NodeLlamaCpp> | undefined;

/** node-llama-cpp is ESM-only and heavy: import it on first use, never at activation. */
export function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  module ??= importOnce();
  return module;
}

async function importOnce(): Promise<NodeLlamaCpp> {
  useCompileCache();
  const lib = (importOrderFile && await importModuleByModule(importOrderFile)) || await import('node-llama-cpp');
  await patchGgufReader();
  // Written now: the extension host is often ended without the exit Node.js would write it at.
  if (compileCacheInUse()) (nodeModule as { flushCompileCache?: () => void }).flushCompileCache?.();
  return lib;
}

/** The order Node.js evaluates node-llama-cpp's modules in, written at build time (tools/importOrder.mjs). */
let importOrderFile: string | undefined;
/** The event loop runs at least this often (ms) while node-llama-cpp's modules are imported. */
const IMPORT_SLICE_MS = 25;
/** How many of them have been imported one at a time so far, and whether that was all (for the log). */
let importedAhead = 0;
let importedLean = false;
/** The module whose import took longest (its evaluation, with its import cycle's, and whatever ran in that turn), for the log. */
let longestImport: { file: string; ms: number } | undefined;
export function importedModulesAhead(): number { return importedAhead; }
/** Whether node-llama-cpp came from the modules that define the names nanochat uses, not its index. */
export function importedOnlyWhatIsUsed(): boolean { return importedLean; }

/** A relative path to a JavaScript file inside the extension's folder (the build's list is checked, not trusted). */
const isModulePath = (m: unknown): m is string => typeof m === 'string' && /\.[cm]?js$/.test(m) && !path.isAbsolute(m) && !m.split(/[\\/]/).includes('..');

/**
 * `import('node-llama-cpp')` evaluates its ~400 modules (its own and its dependencies') in one
 * synchronous block: 434–607 ms of the extension host's event loop at every start, 0.31–0.48 s in a
 * plain Node.js 24 with the compile cache. The build's list (tools/importOrder.mjs) names the modules
 * that define the names nanochat uses and the ~300 modules they import, dependencies first, each
 * import cycle as one unit; node-llama-cpp's index, and the ~100 modules only it reaches (its model
 * downloader, CLI helpers), are never evaluated. Importing them one at a time, the event loop running
 * every IMPORT_SLICE_MS, leaves blocks of one module (or one import cycle: the largest, getLlama.js's
 * 11 modules, 17–35 ms; in Node's plain post-order, one step loaded 144 modules, 72–145 ms). The list names files under the extension's folder,
 * in this installation's node_modules layout. Returns the names, each the very value node-llama-cpp's
 * index exports; or nothing (the caller imports the index) for a list of another version, a file that
 * is not there, or a name its module does not export.
 */
export async function importModuleByModule(listFile: string): Promise<NodeLlamaCpp | undefined> {
  let modules: string[];
  let exports: Record<string, unknown>;
  try {
    const list = JSON.parse(await fs.readFile(listFile, 'utf8')) as { nodeLlamaCpp?: unknown; exports?: unknown; modules?: unknown };
    if (list.nodeLlamaCpp !== await nodeLlamaCppVersion() || !Array.isArray(list.modules) || typeof list.exports !== 'object' || !list.exports) return undefined;
    modules = list.modules.filter(isModulePath);
    exports = list.exports as Record<string, unknown>;
  } catch {
    return undefined;
  }
  // Node.js names each module by its real path: so must these imports, or they would be second copies.
  const root = await fs.realpath(path.dirname(path.dirname(nodeLlamaCppRoot()))).catch(() => undefined);
  if (!root) return undefined;
  const url = (file: string) => pathToFileURL(path.join(root, file)).href;
  let since = performance.now();
  for (const file of modules) {
    const started = performance.now();
    try {
      await import(url(file));
    } catch {
      return undefined;
    }
    const took = performance.now() - started;
    if (took > (longestImport?.ms ?? 0)) longestImport = { file, ms: took };
    importedAhead++;
    // A promise alone would resume before any timer or I/O callback: let the event loop run, every
    // IMPORT_SLICE_MS. In the busy extension host at start-up, each turn waits for the host's other
    // work: a turn every 8 ms made the import end later (median 0.98 s of five starts) than every 25 ms (0.83 s of four).
    if (performance.now() - since >= IMPORT_SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
  const lib: Record<string, unknown> = {};
  for (const name of NODE_LLAMA_CPP_EXPORTS) {
    const file = exports[name];
    if (!isModulePath(file)) return undefined;
    const value = await import(url(file)).then((m: Record<string, unknown>) => m[name], () => undefined);
    if (value === undefined) return undefined;
    lib[name] = value;
  }
  importedLean = true;
  return Object.freeze(lib) as unknown as NodeLlamaCpp;
}

type CompileCacheApi = { enableCompileCache?: (dir?: string) => unknown; getCompileCacheDir?: () => string | undefined };
let compileCacheDir: string | undefined;

/**
 * Importing node-llama-cpp compiles ~220 modules: 340 ms in a plain Node.js here, 450–930 ms in an
 * extension host that is starting up. Node.js's compile cache (V8 code cache on disk, checked against
 * each file's source) brings the plain import to ~210 ms on every start after the first. VS Code
 * enables it itself in some hosts; where it has not (code-server), nanochat enables it in its own
 * storage. It is process-wide, so modules loaded after it, by anyone, use it; NODE_DISABLE_COMPILE_CACHE
 * turns it off.
 */
function useCompileCache(): void {
  const api = nodeModule as unknown as CompileCacheApi;
  if (!compileCacheDir || typeof api.enableCompileCache !== 'function' || process.env.NODE_DISABLE_COMPILE_CACHE) return;
  try {
    if (!api.getCompileCacheDir?.()) api.enableCompileCache(compileCacheDir); // unless already on (VS Code's, or NODE_COMPILE_CACHE)
  } catch {
    // Without the cache the import is only slower.
  }
}

/** Bytes of a GGUF header node-llama-cpp reads, and parses without a break, at a time. */
const GGUF_READ_CHUNK = 128 * 1024;

/**
 * Three changes to node-llama-cpp's GGUF reader, which parses a header in `loadModel` and in its GGUF
 * file-info reader. Its classes are internal, so each is reached by its file, the very module
 * node-llama-cpp itself uses; where a file or method is not there, that change is not made.
 */
async function patchGgufReader(): Promise<void> {
  await readGgufInSmallChunks().catch(() => undefined);
  await growBufferGeometrically().catch(() => undefined);
  await readArraysInWindow().catch(() => undefined);
}

/** A class's prototype from one of node-llama-cpp's GGUF files (dist/gguf/<folder>/<name>.js). */
async function readerPrototype(name: string, folder = 'fileReaders'): Promise<Record<string, unknown> | undefined> {
  const file = path.join(nodeLlamaCppRoot(), 'dist', 'gguf', folder, `${name}.js`);
  const reader = (await import(pathToFileURL(file).href)) as Record<string, { prototype?: Record<string, unknown> } | undefined>;
  return reader[name]?.prototype;
}

/**
 * node-llama-cpp reads a GGUF header in 4 MB reads, each parsed without yielding: with a 150K-token
 * vocabulary that held the extension host's event loop for 100–230 ms at a time (measured). Reading
 * 128 KB at a time keeps each stretch under ~30 ms for ~20% more parse time.
 */
async function readGgufInSmallChunks(): Promise<void> {
  const proto = await readerPrototype('GgufFsFileReader');
  const original = proto?._readToExpandBufferUpToOffset;
  if (!proto || typeof original !== 'function' || proto.__nanochatChunked) return;
  proto._readToExpandBufferUpToOffset = function (this: unknown, endOffset: number, extra?: number) {
    return (original as (end: number, extra: number) => unknown).call(this, endOffset, Math.min(extra ?? GGUF_READ_CHUNK, GGUF_READ_CHUNK));
  };
  proto.__nanochatChunked = true;
}

/**
 * node-llama-cpp's GGUF reader appends each read to its buffer by copying the whole buffer into a new
 * one: with 128 KB reads of a 152K-token vocabulary's ~8 MB header that is ~250 MB of copies and
 * zero-fills, and stretches of 40–50 ms (mostly `Buffer.copy` and garbage collection, in a CPU
 * profile of a model load). This grows a backing buffer by doubling instead and exposes the filled
 * part as the reader's buffer; earlier views (`readByteRange` returns subarrays) keep their bytes.
 */
async function growBufferGeometrically(): Promise<void> {
  const proto = await readerPrototype('GgufFileReader');
  if (!proto || typeof proto._addToBuffer !== 'function' || proto.__nanochatGrowing) return;
  proto._addToBuffer = function (this: { _buffer: Buffer; __nanochatBacking?: Buffer }, added: Buffer) {
    const used = this._buffer.length;
    let backing = this.__nanochatBacking;
    // The reader's buffer must still be the front of the backing one (nothing else replaced it).
    const front = backing !== undefined && this._buffer.buffer === backing.buffer && this._buffer.byteOffset === backing.byteOffset;
    if (!backing || !front || used + added.length > backing.length) {
      const grown = Buffer.allocUnsafe(Math.max(used + added.length, 2 * (front ? backing!.length : used)));
      this._buffer.copy(grown, 0, 0, used);
      backing = grown;
      this.__nanochatBacking = grown;
    }
    added.copy(backing, used);
    this._buffer = backing.subarray(0, used + added.length);
  };
  proto.__nanochatGrowing = true;
}

/** GGUF value types (the format's numbering, as node-llama-cpp's `GgufValueType`). */
const enum GgufType { Uint8, Int8, Uint16, Int16, Uint32, Int32, Float32, Bool, String, Array, Uint64, Int64, Float64 }
const GGUF_TYPE_SIZE: Partial<Record<GgufType, number>> = {
  [GgufType.Uint8]: 1, [GgufType.Int8]: 1, [GgufType.Bool]: 1, [GgufType.Uint16]: 2, [GgufType.Int16]: 2,
  [GgufType.Uint32]: 4, [GgufType.Int32]: 4, [GgufType.Float32]: 4,
  [GgufType.Uint64]: 8, [GgufType.Int64]: 8, [GgufType.Float64]: 8,
};

type ReadOffset = { offset: number };
type GgufParser = { _fileReader: { _buffer: Buffer; readUint32(o: ReadOffset): unknown; readUint64(o: ReadOffset): unknown } };
type ReadValue = (this: GgufParser, type: number, offset: ReadOffset) => unknown;

/**
 * node-llama-cpp reads each element of a GGUF array through its generic value reader: for a string
 * that is about a dozen closures and promise checks around the string itself, ~300K times for a
 * 152K-token vocabulary and its merges. The garbage made its collector pause the event loop for up to
 * 58 ms in each model load (a CPU profile of a restart). This reads the elements already in the
 * reader's buffer directly, with the same conversions (strings as UTF-8, 64-bit integers as bigint,
 * booleans as byte = 1), and leaves any element that needs more of the file, or an array of arrays,
 * to node-llama-cpp's own reader. The arrays' keys are not known here, so every array is read this way.
 */
async function readArraysInWindow(): Promise<void> {
  const proto = await readerPrototype('GgufV2Parser', 'parser');
  const original = proto?._readGgufValue as ReadValue | undefined;
  if (!proto || typeof original !== 'function' || proto.__nanochatArrays) return;
  proto._readGgufValue = function (this: GgufParser, type: number, offset: ReadOffset): unknown {
    if (type !== GgufType.Array || typeof offset !== 'object' || offset === null) return original.call(this, type, offset);
    const read = (elementType: unknown) => {
      const length = this._fileReader.readUint64(offset);
      return length instanceof Promise
        ? length.then((n) => readArray(this, original, Number(elementType), Number(n), offset))
        : readArray(this, original, Number(elementType), Number(length), offset);
    };
    const elementType = this._fileReader.readUint32(offset);
    return elementType instanceof Promise ? elementType.then(read) : read(elementType);
  };
  proto.__nanochatArrays = original; // kept: a test parses the same files both ways
}

/**
 * Set while `loadModelLean` has node-llama-cpp parse a header: arrays of at least LEAN_ARRAY_LENGTH
 * elements (a vocabulary's tokens, merges, types and scores) are walked, not read, and come back as
 * an empty array of their length, all node-llama-cpp reads of them. Scoped to that call's own async
 * work, so a parse anyone else runs meanwhile (token counting) reads every value.
 */
const leanParse = new AsyncLocalStorage<true>();
const LEAN_ARRAY_LENGTH = 4096;

/** Lean parses under way: the store is disabled when none is. */
let leanParses = 0;

/**
 * Runs `parse` (work that has node-llama-cpp parse GGUF headers) with the vocabulary arrays left unread.
 * Before Node.js 24, an AsyncLocalStorage in use keeps a promise hook on for the whole process (the
 * extension host: every extension's promises): in a plain Node.js 20 the generation loop's JavaScript
 * took ~0.1 ms more per token with it (1.13 against 1.03 ms). So the store is disabled (its hook off,
 * unless another store holds it) once the last lean parse has ended.
 */
export async function withLeanGgufParse<T>(parse: () => Promise<T>): Promise<T> {
  leanParses++;
  try {
    return await leanParse.run(true, parse);
  } finally {
    if (--leanParses === 0) leanParse.disable();
  }
}

async function readArray(parser: GgufParser, readValue: ReadValue, type: number, length: number, offset: ReadOffset): Promise<readonly unknown[]> {
  const keep = length < LEAN_ARRAY_LENGTH || leanParse.getStore() !== true;
  const values: unknown[] = [];
  let count = 0; // elements read (kept or passed over)
  const size = GGUF_TYPE_SIZE[type as GgufType];
  while (count < length) {
    const buffer = parser._fileReader._buffer;
    let at = offset.offset;
    if (type === GgufType.String) {
      while (count < length && at + 8 <= buffer.length) {
        const bytes = buffer.readUInt32LE(at) + buffer.readUInt32LE(at + 4) * 2 ** 32;
        if (at + 8 + bytes > buffer.length) break;
        if (keep) values.push(buffer.toString('utf8', at + 8, at + 8 + bytes));
        at += 8 + bytes;
        count++;
      }
    } else if (size !== undefined) {
      const n = Math.min(length - count, Math.floor((buffer.length - at) / size));
      if (keep) for (let i = 0; i < n; i++) values.push(readScalar(buffer, type as GgufType, at + i * size));
      at += n * size;
      count += n;
    }
    offset.offset = at;
    if (count < length) {
      // One element the buffer does not hold (or an array of arrays): node-llama-cpp's reader fetches it.
      const value = readValue.call(parser, type, offset);
      const read = value instanceof Promise ? await value : value;
      if (keep) values.push(read);
      count++;
    }
  }
  return keep ? values : lengthOnly(length);
}

function readScalar(buffer: Buffer, type: GgufType, at: number): unknown {
  switch (type) {
    case GgufType.Uint8: return buffer.readUInt8(at);
    case GgufType.Int8: return buffer.readInt8(at);
    case GgufType.Bool: return buffer.readUInt8(at) === 1;
    case GgufType.Uint16: return buffer.readUInt16LE(at);
    case GgufType.Int16: return buffer.readInt16LE(at);
    case GgufType.Uint32: return buffer.readUInt32LE(at);
    case GgufType.Int32: return buffer.readInt32LE(at);
    case GgufType.Float32: return buffer.readFloatLE(at);
    case GgufType.Uint64: return buffer.readBigUInt64LE(at);
    case GgufType.Int64: return buffer.readBigInt64LE(at);
    default: return buffer.readDoubleLE(at);
  }
}

/** The vocabulary arrays of a GGUF header, by their metadata names under `tokenizer.ggml`. */
const VOCABULARY_ARRAYS = ['tokens', 'merges', 'token_type', 'scores'] as const;

/**
 * `llama.loadModel`, keeping no vocabulary strings: node-llama-cpp keeps the GGUF header it parsed with
 * the model, vocabulary and all, for a 152K-token vocabulary 300K strings and ~13 MB of the extension
 * host's heap per loaded model, which every full garbage collection marks again (pauses of 35–65 ms
 * were measured while a second model loaded). Its tokenizer is native, and of these arrays it reads
 * only their lengths (`tokens.length`, the vocabulary size); nanochat's token counting parses the file
 * itself. Each array is replaced by an empty one of the same length. Every in-process load uses this.
 */
export async function loadModelLean(llama: Llama, options: LlamaModelOptions): Promise<LlamaModel> {
  // Where the array reader is in place, the vocabulary's strings are never made (see leanParse):
  // 300K strings that filled the young generation made scavenges of 36–51 ms during a load.
  const model = await withLeanGgufParse(() => llama.loadModel(options));
  const ggml = (model.fileInfo.metadata as { tokenizer?: { ggml?: Record<string, unknown> } }).tokenizer?.ggml;
  for (const key of VOCABULARY_ARRAYS) {
    const value = ggml?.[key];
    if (ggml && Array.isArray(value) && value.length > 0) ggml[key] = lengthOnly(value.length);
  }
  return model;
}

/** An array of `length` with no elements: sparse (a few bytes), where `new Array(length)` takes 8 bytes per slot. */
function lengthOnly(length: number): readonly undefined[] {
  const empty: undefined[] = [];
  empty[length - 1] = undefined;
  return Object.freeze(empty);
}

const instances = new AsyncMemo<Settings['gpu'], Llama>();

/** Where the backend `gpu: auto` chose on this machine is remembered (the extension's global state). */
let backendMemory: KeyValueStore | undefined;
/** Where builds of llama.cpp for this machine are kept (see machineBuild.ts). */
let machineBuildCache: string | undefined;
/** Told when only a build for another version is kept (after an update): the prebuilt binaries run until it is made again. */
let onStaleMachineBuild: (() => void) | undefined;
const BACKEND_KEY = `nanochat.llamaBackend.${process.platform}-${process.arch}`;

/**
 * Per-machine facts that make the next start fast. `memory` remembers which backend `gpu: auto`
 * found, so the next start loads it directly: probing for a CUDA build that a machine without CUDA
 * cannot load cost 2.3 s of every start (a changed `nanochat.gpu`, or a failed load of the
 * remembered backend, probes again). `machineBuilds` is where a build for this machine is kept; it
 * is put back in place before llama.cpp first loads (an extension update empties node_modules).
 * `importOrder` is the build's list of node-llama-cpp's modules (see importModuleByModule).
 */
export function configureLlama(options: { memory?: KeyValueStore; machineBuilds?: string; onStaleMachineBuild?: () => void; compileCache?: string; importOrder?: string }): void {
  importOrderFile = options.importOrder;
  backendMemory = options.memory;
  machineBuildCache = options.machineBuilds;
  onStaleMachineBuild = options.onStaleMachineBuild;
  compileCacheDir = options.compileCache;
}

/** Whether this process compiles modules through Node.js's compile cache (enabled here or before). */
export function compileCacheInUse(): boolean {
  return Boolean((nodeModule as unknown as CompileCacheApi).getCompileCacheDir?.());
}

/**
 * One Llama instance per GPU setting. The extension host never compiles llama.cpp (`build: 'never'`):
 * it uses a build for this machine when one is in place (the Build llama.cpp command), else the
 * prebuilt binaries; when the requested GPU backend is missing it falls back to the CPU and says so.
 */
export function getLlamaFor(gpu: Settings['gpu'], log: Logger): Promise<Llama> {
  return instances.get(gpu, () => createLlama(gpu, log));
}

async function createLlama(gpu: Settings['gpu'], log: Logger): Promise<Llama> {
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  const started = performance.now();
  const common = {
    build: 'never' as const,
    logLevel: LlamaLogLevel.error,
    logger: (level: unknown, message: string) => {
      const line = message.trim();
      // node-llama-cpp's memory-estimation dry run logs this for vocab-only files; it is harmless.
      if (line && !/missing tensor 'token_embd\.weight'/.test(line)) log.debug(`llama.cpp: ${line}`);
    },
  };
  const wanted: LlamaGpuType | 'auto' = gpu === 'off' ? false : gpu;
  const restored = machineBuildCache && !machineBuildOff() ? restoreMachineBuild(machineBuildCache, log) : undefined;
  if (restored === 'stale') onStaleMachineBuild?.();
  // Restoring looked for a build in place already: not looked for again.
  const { cmakeOptions, tested } = await cmakeOptionsToLoad(restored && (restored === 'in place' || restored === 'restored'));
  const options = { ...common, cmakeOptions };
  const remembered = wanted === 'auto' ? backendMemory?.get<{ backend: Backend; version: string }>(BACKEND_KEY) : undefined;
  const version = await nodeLlamaCppVersion();
  let llama: Llama | undefined;
  let how = '';
  if (remembered && remembered.version === version) {
    llama = await getLlama({ ...options, gpu: remembered.backend === 'cpu' ? false : remembered.backend }).catch((err: unknown) => {
      log.warn(`The remembered backend "${remembered.backend}" did not load (${err instanceof Error ? err.message : err}); detecting again.`);
      return undefined;
    });
    how = llama ? ', remembered' : '';
  }
  if (!llama) {
    try {
      llama = await getLlama({ ...options, gpu: wanted });
    } catch (err) {
      if (wanted === false) throw err;
      log.warn(`GPU backend "${gpu}" is not available here (${err instanceof Error ? err.message : err}); using the CPU.`);
      llama = await getLlama({ ...options, gpu: false });
    }
    // Not awaited: VS Code's storage write takes ~200 ms at startup, and llama.cpp is ready now.
    if (wanted === 'auto') Promise.resolve(backendMemory?.update(BACKEND_KEY, { backend: backendOf(llama), version })).catch((err: unknown) => log.warn(`Could not remember the backend: ${err instanceof Error ? err.message : err}`));
  }
  // Not awaited either: links and a metadata file, for the next start.
  if (tested && llama.buildType === 'prebuilt') void rememberTestedPrebuilt(llama, tested, log);
  log.info(`llama.cpp ready in ${Math.round(performance.now() - started)} ms: backend ${backendOf(llama)}${how}, ${llama.cpuMathCores} performance cores, ${isMachineBuild(llama) ? 'built for this machine' : isTestedPrebuilt(llama) ? 'prebuilt binaries, tested on this machine at an earlier start' : `${llama.buildType} binaries`}${compileCacheInUse() ? '; modules from the compile cache' : ''}${importedAhead ? `; node-llama-cpp imported module by module (${importedAhead}${importedLean ? ', only those that define what nanochat uses' : ''}${longestImport ? `; the longest, ${Math.round(longestImport.ms)} ms, ${path.basename(longestImport.file)}` : ''})` : ''}`);
  return llama;
}

/** NANOCHAT_MACHINE_BUILD=off: the prebuilt binaries even where a build for this machine is in place (to compare). */
const machineBuildOff = () => process.env.NANOCHAT_MACHINE_BUILD === 'off';

/**
 * The cmake options getLlama is asked for: a build for this machine's (see machineBuild.ts) when one
 * is in place, else those that load the prebuilt binaries as a local build when they passed
 * node-llama-cpp's test here before (`tested`, see testedPrebuilt.ts). Either way node-llama-cpp falls
 * back to the prebuilt binaries, tested, when no such build is there. `machineBuildInPlace` when the
 * caller already knows (restoring a build looked); else it is looked for.
 */
export async function cmakeOptionsToLoad(machineBuildInPlace?: boolean): Promise<{ cmakeOptions: Record<string, string>; tested?: Record<string, string> }> {
  const tested = machineBuildOff() || !(machineBuildInPlace ?? hasMachineBuild()) ? await testedPrebuiltOptions() : undefined;
  return { cmakeOptions: tested ?? { ...MACHINE_BUILD_CMAKE_OPTIONS }, ...(tested ? { tested } : {}) };
}

/** Disposes every llama.cpp instance (the extension's deactivate, after models and tokenizers). */
export async function disposeLlamas(): Promise<void> {
  for (const llama of instances.drain()) await llama.then((l) => l.dispose(), () => undefined);
}

let versionMemo: Promise<string> | undefined;
/** node-llama-cpp's version (a remembered backend is only trusted for the binaries that chose it). */
function nodeLlamaCppVersion(): Promise<string> {
  versionMemo ??= (async () => {
    try {
      return (JSON.parse(await fs.readFile(path.join(nodeLlamaCppRoot(), 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  })();
  return versionMemo;
}

export function backendOf(llama: Llama): Backend {
  return llama.gpu === false ? 'cpu' : llama.gpu;
}
