import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LlamaContextSequence, Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { errorMessage } from '../errors';
import { silentLogger, type Logger } from '../log';
import type { LoadedModel } from './models';

export type PromptStateUse = 'loaded' | 'saved' | 'none';

/**
 * A conversation's evaluated preamble (the system prompt and tool schemas, before the first user
 * message), kept on disk with llama.cpp's own state files (node-llama-cpp's `saveStateToFile`), so
 * the first reply after a restart loads it instead of evaluating it again. A state is only ever
 * loaded into the model, context size and llama.cpp binaries that wrote it (its key says so), and
 * only when the tokens it holds are exactly the prompt's first tokens.
 */
export class PromptStates {
  private readonly log: Logger;

  constructor(private readonly options: {
    dir: string;
    log?: Logger;
    /** Preambles shorter than this are evaluated again (cheap); longer ones are saved. */
    minTokens?: number;
    /** State files kept (newest first). */
    keep?: number;
  }) {
    this.log = options.log ?? silentLogger;
  }

  get minTokens(): number { return this.options.minTokens ?? 512; }

  /**
   * Before a reply: puts the preamble (`prompt`'s first `preambleLength` tokens) into `sequence`,
   * from its state file when there is one, else by evaluating it and writing the file. Leaves the
   * sequence as it is when the preamble is short or already cached there.
   */
  async prepare(loaded: LoadedModel, sequence: LlamaContextSequence, prompt: readonly Token[], preambleLength: number): Promise<PromptStateUse> {
    if (preambleLength < this.minTokens || preambleLength > prompt.length) return 'none';
    const cached = sequence.contextTokens;
    const preamble = prompt.slice(0, preambleLength);
    if (commonPrefix(cached, preamble) >= preambleLength) return 'none';
    const key = stateKey(loaded, preamble);
    const file = path.join(this.options.dir, `${key}.state`);
    if (fs.existsSync(file) && !(await this.intact(file, preambleLength))) {
      // llama.cpp aborts the process on a short or damaged state file: only files that are exactly
      // what was written (size and sha256 in the sidecar) are ever loaded.
      this.log.warn('A saved prompt state was damaged or incomplete; evaluating the preamble instead.');
      this.remove(file);
    }
    if (fs.existsSync(file)) {
      try {
        await sequence.clearHistory();
        await sequence.loadStateFromFile(file, { acceptRisk: true });
        if (commonPrefix(sequence.contextTokens, preamble) === preambleLength && sequence.contextTokens.length === preambleLength) {
          fs.utimesSync(file, new Date(), new Date());
          this.log.debug(`Loaded a ${preambleLength}-token preamble from its saved state.`);
          return 'loaded';
        }
        this.log.warn('A saved prompt state did not hold the tokens its name promised; evaluating the preamble instead.');
      } catch (err) {
        this.log.warn(`Could not load a saved prompt state (${errorMessage(err)}); evaluating the preamble instead.`);
      }
      this.remove(file);
      await sequence.clearHistory();
    }
    // Evaluate exactly the preamble (keeping what the sequence already shares with it), then save it.
    const shared = commonPrefix(sequence.contextTokens, preamble);
    if (shared < sequence.contextTokens.length) await sequence.eraseContextTokenRanges([{ start: shared, end: sequence.contextTokens.length }]);
    await sequence.evaluateWithoutGeneratingNewTokens(preamble.slice(shared));
    try {
      fs.mkdirSync(this.options.dir, { recursive: true });
      const temporary = `${file}.${process.pid}.tmp`;
      await sequence.saveStateToFile(temporary);
      const sidecar: StateSidecar = { tokens: preambleLength, size: fs.statSync(temporary).size, sha256: await sha256(temporary) };
      fs.writeFileSync(`${file}.json`, JSON.stringify(sidecar));
      fs.renameSync(temporary, file);
      this.prune();
      this.log.debug(`Saved the state of a ${preambleLength}-token preamble for the next start.`);
      return 'saved';
    } catch (err) {
      this.log.warn(`Could not save the prompt state: ${errorMessage(err)}`);
      return 'none';
    }
  }

  /** Whether `file` is byte for byte the state its sidecar describes. */
  private async intact(file: string, tokens: number): Promise<boolean> {
    try {
      const sidecar = JSON.parse(fs.readFileSync(`${file}.json`, 'utf8')) as StateSidecar;
      return sidecar.tokens === tokens && fs.statSync(file).size === sidecar.size && await sha256(file) === sidecar.sha256;
    } catch {
      return false;
    }
  }

  private remove(file: string): void {
    fs.rmSync(file, { force: true });
    fs.rmSync(`${file}.json`, { force: true });
  }

  private prune(): void {
    const keep = this.options.keep ?? 16;
    const files = fs.readdirSync(this.options.dir).filter((f) => f.endsWith('.state'))
      .map((f) => ({ f, t: fs.statSync(path.join(this.options.dir, f)).mtimeMs })).sort((a, b) => b.t - a.t);
    for (const { f } of files.slice(keep)) this.remove(path.join(this.options.dir, f));
  }
}

interface StateSidecar { tokens: number; size: number; sha256: string }

/** A file's sha256, read in chunks (the event loop runs between them). */
function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash('sha256');
    fs.createReadStream(file).on('data', (chunk) => hash.update(chunk)).on('error', reject).on('end', () => resolve(hash.digest('hex')));
  });
}

/** The model file, context size and llama.cpp binaries a state belongs to, and its tokens. */
function stateKey(loaded: LoadedModel, preamble: readonly Token[]): string {
  const stat = fs.statSync(loaded.info.path);
  const owner = [loaded.info.path, stat.size, Math.round(stat.mtimeMs), loaded.context.contextSize, loaded.llama.buildType, JSON.stringify(loaded.llama.llamaCppRelease), JSON.stringify(loaded.llama.cmakeOptions ?? {}), loaded.llama.gpu].join('|');
  return crypto.createHash('sha256').update(owner).update(Buffer.from(Uint32Array.from(preamble).buffer)).digest('hex').slice(0, 32);
}

function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
