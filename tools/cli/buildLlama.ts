// npm run build-llama [-- --cache DIR] [--restore-only]
// llama.cpp built for this machine (see src/core/engine/machineBuild.ts): restored from the cache
// outside the clone when it is there (seconds), else compiled with node-llama-cpp's own build
// scripts from the llama.cpp release it ships (about 8 minutes on 2 cores) and kept in the cache.
// The same build the "Nanochat: Build llama.cpp for This Machine" command makes.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildForThisMachine, hasMachineBuild, keepMachineBuild, restoreMachineBuild } from '../../src/core/engine/machineBuild';
import { errorMessage } from '../../src/core/errors';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { cache: { type: 'string' }, 'restore-only': { type: 'boolean', default: false } } });
  const cacheDir = path.resolve(values.cache ?? process.env.NANOCHAT_MACHINE_BUILD_DIR ?? path.join(os.homedir(), '.cache', 'nanochat', 'machine-builds'));
  const log = { trace: () => undefined, info: (m: string) => process.stderr.write(`${m}\n`), warn: (m: string) => process.stderr.write(`${m}\n`), error: (m: string) => process.stderr.write(`${m}\n`), debug: () => undefined };
  if (hasMachineBuild()) {
    keepMachineBuild(cacheDir, log);
    process.stderr.write(`llama.cpp for this machine is in place (kept in ${cacheDir}).\n`);
    return;
  }
  if (restoreMachineBuild(cacheDir, log) === 'restored') {
    process.stderr.write('llama.cpp for this machine is in place.\n');
    return;
  }
  if (values['restore-only']) {
    process.stderr.write(`No build for this machine in ${cacheDir}.\n`);
    process.exitCode = 1;
    return;
  }
  const started = Date.now();
  let last = '';
  await buildForThisMachine({
    cacheDir, log,
    onProgress: (message) => {
      // Compile steps as they come would be hundreds of lines: every 25th, and the last.
      const step = /\((\d+)\/(\d+)\)/.exec(message);
      if (message === last || (step && Number(step[1]) % 25 !== 0 && step[1] !== step[2])) return;
      last = message;
      process.stderr.write(`… ${message}\n`);
    },
  });
  if (!hasMachineBuild()) throw new Error('the build did not leave a usable binary');
  process.stderr.write(`Built llama.cpp for this machine in ${Math.round((Date.now() - started) / 1000)} s; kept in ${cacheDir}.\n`);
}

main().catch((err) => { process.stderr.write(`nanochat build-llama: ${errorMessage(err).split('\n')[0]}\n`); process.exit(1); });
