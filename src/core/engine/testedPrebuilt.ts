import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { errorMessage } from '../errors';
import { silentLogger, type Logger } from '../log';
import { nodeLlamaCppRoot } from './machineBuild';

/**
 * On Linux, node-llama-cpp tests a prebuilt binary before every load: it forks a child process that
 * loads it, so that a binary this machine cannot run fails there and not in the editor. Measured here,
 * `getLlama` took 550 ms with the prebuilt binaries against 32 ms for the same binaries laid out as
 * below, in a plain Node.js; 660–1,040 ms in code-server's extension host at a first start.
 *
 * node-llama-cpp loads a local build it finds for the options asked without that test, when the build
 * was made on this platform (distribution and version). So once the prebuilt binaries have passed the
 * test and loaded in this process, nanochat lays them out as such a local build, each file a link to
 * the prebuilt one, under a name that only this binary on this machine asks for: the option
 * NANOCHAT_TESTED_PREBUILT is a hash of the prebuilt files (path, inode, size, modification time), the
 * system (distribution and version), processor (model and feature flags), kernel and Node.js version. An update of node-llama-cpp,
 * Electron or the kernel, or another machine sharing the home folder, asks for another name, and its
 * first start tests the binaries again. Only the CPU backend (the GPU backends' test also checks a
 * driver, which changes by itself).
 */
export const TESTED_PREBUILT_OPTION = 'NANOCHAT_TESTED_PREBUILT';

/** Whether `llama` is the prebuilt binaries loaded as tested before on this machine. */
export function isTestedPrebuilt(llama: Llama): boolean {
  return llama.buildType === 'localBuild' && typeof llama.cmakeOptions?.[TESTED_PREBUILT_OPTION] === 'string';
}

/** node-llama-cpp's own functions for the names and places of builds (internal modules getLlama itself imports). */
interface BuildInternals {
  getBuildFolderNameForBuildOptions(options: BuildOptions): Promise<{ withCustomCmakeOptions: string }>;
  getPrebuiltBinaryPath(options: BuildOptions, folderName: string): Promise<{ binaryPath: string; folderPath: string } | null>;
  getPlatformInfo(): Promise<{ name: string; version: string }>;
  localBuilds: string;
}
interface BuildOptions {
  platform: string; arch: string; gpu: false; customCmakeOptions: Map<string, string>;
  llamaCpp: { repo: string; release: string }; platformInfo?: { name: string; version: string };
}
interface BuildMetadata { buildOptions: Omit<BuildOptions, 'customCmakeOptions'> & { customCmakeOptions: Record<string, string> } }

async function internals(): Promise<BuildInternals | undefined> {
  try {
    const dist = path.join(nodeLlamaCppRoot(), 'dist');
    const load = (file: string) => import(pathToFileURL(path.join(dist, file)).href) as Promise<Record<string, unknown>>;
    const [names, compile, platform] = await Promise.all([
      load('bindings/utils/getBuildFolderNameForBuildOptions.js'), load('bindings/utils/compileLLamaCpp.js'), load('bindings/utils/getPlatformInfo.js'),
    ]);
    const found = {
      getBuildFolderNameForBuildOptions: names.getBuildFolderNameForBuildOptions,
      getPrebuiltBinaryPath: compile.getPrebuiltBinaryPath,
      getPlatformInfo: platform.getPlatformInfo,
    };
    if (!Object.values(found).every((f) => typeof f === 'function')) return undefined;
    return { ...found, localBuilds: path.join(nodeLlamaCppRoot(), 'llama', 'localBuilds') } as BuildInternals;
  } catch {
    return undefined;
  }
}

const METADATA = '_nlcBuildMetadata.json';

/** The prebuilt CPU binaries node-llama-cpp would load here: their folder and build metadata. */
async function prebuiltCpu(lib: BuildInternals): Promise<{ folder: string; metadata: BuildMetadata } | undefined> {
  const base: BuildOptions = { platform: 'linux', arch: process.arch, gpu: false, customCmakeOptions: new Map(), llamaCpp: { repo: '', release: '' } };
  const name = `linux-${process.arch}`;
  const found = await lib.getPrebuiltBinaryPath(base, name);
  if (!found) return undefined;
  const metadata = JSON.parse(await fs.promises.readFile(path.join(found.folderPath, METADATA), 'utf8')) as BuildMetadata;
  if (metadata.buildOptions?.gpu !== false || !metadata.buildOptions.llamaCpp) return undefined;
  return { folder: await fs.promises.realpath(found.folderPath), metadata };
}

/** This processor's model and feature flags (the first one's, from the head of /proc/cpuinfo). */
function processor(): string {
  try {
    const fd = fs.openSync('/proc/cpuinfo', 'r');
    try {
      const buffer = Buffer.alloc(16 * 1024);
      const text = buffer.toString('utf8', 0, fs.readSync(fd, buffer, 0, buffer.length, 0));
      const first = text.split(/\n\s*\n/)[0] ?? '';
      return first.split('\n').filter((line) => /^(vendor_id|model name|cpu family|model|flags|Features|CPU implementer|CPU part)\s*:/.test(line)).join('\n');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

/** The identity the option names: the prebuilt files, this system (as node-llama-cpp names it), processor, kernel and runtime. */
async function identity(folder: string, platform: { name: string; version: string }): Promise<string> {
  const hash = crypto.createHash('sha256');
  hash.update(`${folder}\n${platform.name} ${platform.version}\n${processor()}\n${os.release()}\n${process.arch}\n${process.versions.node}\n${process.versions.electron ?? ''}\n`);
  for (const file of (await fs.promises.readdir(folder)).sort()) {
    const stat = await fs.promises.stat(path.join(folder, file));
    hash.update(`${file}:${stat.ino}:${stat.size}:${Math.round(stat.mtimeMs)}\n`);
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The cmake options to ask getLlama for: with them it loads the prebuilt binaries as a local build
 * when they were tested here before (see `rememberTestedPrebuilt`), and the prebuilt binaries, tested,
 * otherwise. Undefined off Linux (node-llama-cpp tests CPU binaries only there), or where
 * node-llama-cpp's internals are not the ones this was written against.
 */
export async function testedPrebuiltOptions(): Promise<Record<string, string> | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const lib = await internals();
    const prebuilt = lib && await prebuiltCpu(lib);
    return prebuilt ? { [TESTED_PREBUILT_OPTION]: await identity(prebuilt.folder, await lib.getPlatformInfo()) } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this process has the native file mapped (loaded), by its real path. */
async function loadedInThisProcess(file: string): Promise<boolean> {
  try {
    return (await fs.promises.readFile('/proc/self/maps', 'utf8')).split('\n').some((line) => line.endsWith(` ${file}`));
  } catch {
    return false;
  }
}

/**
 * After node-llama-cpp loaded the prebuilt CPU binaries (which it tested first), lays them out as the
 * local build `options` name (see the top of this file), replacing any other such layout, so the next
 * start loads them without the test. Only when this process has that very binary loaded. Written in
 * a temporary folder and renamed into place: a start that reads it half-written is not possible.
 * Returns the folder made, or undefined (and logs why) when nothing was.
 */
export async function rememberTestedPrebuilt(llama: Llama, options: Record<string, string> | undefined, log: Logger = silentLogger): Promise<string | undefined> {
  const id = options?.[TESTED_PREBUILT_OPTION];
  if (!id || llama.buildType !== 'prebuilt' || llama.gpu !== false) return undefined;
  let temporary: string | undefined;
  try {
    const lib = await internals();
    const prebuilt = lib && await prebuiltCpu(lib);
    if (!lib || !prebuilt) return undefined;
    const addon = path.join(prebuilt.folder, 'llama-addon.node');
    const platformInfo = await lib.getPlatformInfo();
    if (!await loadedInThisProcess(addon) || await identity(prebuilt.folder, platformInfo) !== id) return undefined;
    const buildOptions = { ...prebuilt.metadata.buildOptions, customCmakeOptions: { [TESTED_PREBUILT_OPTION]: id }, platformInfo };
    const name = (await lib.getBuildFolderNameForBuildOptions({ ...buildOptions, customCmakeOptions: new Map(Object.entries(buildOptions.customCmakeOptions)) })).withCustomCmakeOptions;
    const target = path.join(lib.localBuilds, name);
    // A layout of that name that is there did not load (node-llama-cpp fell back to the prebuilt
    // binaries): it is made again, as are any made for other binaries or another machine.
    forgetTestedPrebuilts(log);
    await fs.promises.mkdir(lib.localBuilds, { recursive: true });
    temporary = await fs.promises.mkdtemp(path.join(lib.localBuilds, '.nanochat-tested-'));
    await fs.promises.chmod(temporary, 0o755); // as node-llama-cpp's own builds (mkdtemp makes it private)
    const release = path.join(temporary, 'Release');
    await fs.promises.mkdir(release);
    for (const file of await fs.promises.readdir(prebuilt.folder)) {
      if (file !== METADATA) await fs.promises.symlink(path.join(prebuilt.folder, file), path.join(release, file));
    }
    await fs.promises.writeFile(path.join(release, METADATA), JSON.stringify({ ...prebuilt.metadata, buildOptions }));
    await fs.promises.writeFile(path.join(temporary, 'buildDone.status'), '');
    await fs.promises.rename(temporary, target).catch((err: NodeJS.ErrnoException) => {
      // Another window made it first.
      if (!fs.existsSync(path.join(target, 'buildDone.status'))) throw err;
    });
    temporary = fs.existsSync(temporary) ? temporary : undefined;
    log.info(`The prebuilt llama.cpp binaries passed node-llama-cpp's test on this machine: later starts load them without it (${path.basename(target)}).`);
    return target;
  } catch (err) {
    log.warn(`Could not remember that the prebuilt llama.cpp binaries passed their test here: ${errorMessage(err)}`);
    return undefined;
  } finally {
    if (temporary) await fs.promises.rm(temporary, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Removes every layout of tested prebuilt binaries (their links and metadata; the binaries stay). Returns how many. */
export function forgetTestedPrebuilts(log: Logger = silentLogger): number {
  let removed = 0;
  try {
    const builds = path.join(nodeLlamaCppRoot(), 'llama', 'localBuilds');
    if (!fs.existsSync(builds)) return 0;
    for (const name of fs.readdirSync(builds)) {
      const folder = path.join(builds, name);
      // Another window's layout being written is left to it (renamed within moments, or removed by it).
      let tested = name.startsWith('.nanochat-tested-') && Date.now() - fs.statSync(folder).mtimeMs > 60_000;
      try {
        tested ||= TESTED_PREBUILT_OPTION in ((JSON.parse(fs.readFileSync(path.join(folder, 'Release', METADATA), 'utf8')) as BuildMetadata).buildOptions.customCmakeOptions ?? {});
      } catch {
        // Not a build with readable metadata: not one of these.
      }
      if (!tested) continue;
      fs.rmSync(folder, { recursive: true, force: true });
      removed++;
    }
  } catch (err) {
    log.warn(`Could not remove an earlier layout of the tested prebuilt binaries: ${errorMessage(err)}`);
  }
  return removed;
}
