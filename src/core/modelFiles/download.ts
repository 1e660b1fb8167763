import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import { Emitter } from '../events';
import { NanochatError, errorMessage } from '../errors';
import { checkModelFile, formatBytes } from './ggufCheck';
import { silentLogger, type Logger } from '../log';

/** `stopped`: the download failed or was cancelled (a partial file may remain for a resume). */
export type DownloadPhase = 'fetching' | 'downloading' | 'verifying' | 'done' | 'stopped';

export interface DownloadProgress {
  fileName: string;
  phase: DownloadPhase;
  receivedBytes: number;
  totalBytes?: number;
  bytesPerSecond: number;
  secondsLeft?: number;
}

export type DownloadProblem = 'not-found' | 'unauthorized' | 'http' | 'network' | 'integrity' | 'no-space' | 'write' | 'cancelled' | 'invalid';

export class DownloadError extends NanochatError {
  constructor(readonly problem: DownloadProblem, message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface DownloadRequest {
  url: string;
  /** Name of the installed file in the models folder. */
  fileName: string;
  /** A pinned sha256 (catalog); without one, the hash the server advertises is checked. */
  sha256?: string;
}

export interface DownloaderOptions {
  /** The models folder, read at each download (it follows the nanochat.modelsFolder setting). */
  modelsDir: string | (() => string);
  log?: Logger;
  /**
   * The fetch to use. The extension passes VS Code's (it applies the editor's proxy settings);
   * the default honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY, which Node's own fetch ignores.
   */
  fetch?: typeof fetch;
  /** A Hugging Face token, sent only to the Hugging Face host. */
  token?: () => Promise<string | undefined>;
  /** Host names that receive the token (default huggingface.co). */
  tokenHosts?: string[];
  retries?: number;
  backoffMs?: number;
  /** Free bytes where the models live (tests pass their own). */
  freeSpace?: (dir: string) => Promise<number>;
}

interface PartialMeta { url: string; validator?: string; totalBytes?: number; sha256?: string }

const PARTIAL_DIR = '.partial';

/**
 * Downloads model files into the models folder: resumable with HTTP Range (also after a crash, from
 * `.partial/`), verified by sha256 and by a GGUF header check, and moved into place atomically, so a
 * file in the folder is always complete. Concurrent requests for one file share one download.
 */
export class Downloader {
  private readonly active = new Map<string, { promise: Promise<string>; listeners: Set<(p: DownloadProgress) => void> }>();
  private readonly progressEmitter = new Emitter<DownloadProgress>();
  /** Every download's progress, for the status bar. */
  readonly onProgress = this.progressEmitter.event;
  private readonly log: Logger;

  constructor(private readonly options: DownloaderOptions) {
    this.log = options.log ?? silentLogger;
  }

  get modelsDir(): string {
    const dir = this.options.modelsDir;
    return typeof dir === 'string' ? dir : dir();
  }

  get inProgress(): string[] { return [...this.active.keys()]; }

  /** Stops reporting progress (a download under way keeps its partial file and resumes next time). */
  dispose(): void { this.progressEmitter.dispose(); }

  /** Where a partial download of `fileName` is kept. */
  partialPath(fileName: string): string { return path.join(this.modelsDir, PARTIAL_DIR, `${fileName}.part`); }

  download(request: DownloadRequest, options: { signal?: AbortSignal; onProgress?: (p: DownloadProgress) => void } = {}): Promise<string> {
    if (!/^[^\\/]+\.gguf$/i.test(request.fileName) || request.fileName.startsWith('.')) {
      return Promise.reject(new DownloadError('invalid', `"${request.fileName}" is not a valid model file name.`));
    }
    const target = path.join(this.modelsDir, request.fileName);
    let entry = this.active.get(target);
    if (!entry) {
      const listeners = new Set<(p: DownloadProgress) => void>();
      const report = (p: DownloadProgress) => {
        this.progressEmitter.fire(p);
        for (const l of listeners) l(p);
      };
      const promise = this.run(request, target, options.signal, report).catch((err) => {
        report({ fileName: request.fileName, phase: 'stopped', receivedBytes: 0, bytesPerSecond: 0 });
        throw err;
      }).finally(() => this.active.delete(target));
      entry = { promise, listeners };
      this.active.set(target, entry);
    }
    if (options.onProgress) entry.listeners.add(options.onProgress);
    return entry.promise;
  }

  /** Deletes a partial download (the user gave up on it). */
  async discardPartial(fileName: string): Promise<void> {
    await fsp.rm(this.partialPath(fileName), { force: true });
    await fsp.rm(`${this.partialPath(fileName)}.json`, { force: true });
  }

  private async run(request: DownloadRequest, target: string, signal: AbortSignal | undefined, report: (p: DownloadProgress) => void): Promise<string> {
    if (fs.existsSync(target)) return target;
    const partial = this.partialPath(request.fileName);
    const metaFile = `${partial}.json`;
    try {
      await fsp.mkdir(path.dirname(partial), { recursive: true });
    } catch (err) {
      throw writeError(this.modelsDir, err);
    }
    const retries = this.options.retries ?? 4;
    let attempt = 0;
    report({ fileName: request.fileName, phase: 'fetching', receivedBytes: 0, bytesPerSecond: 0 });
    for (;;) {
      try {
        const meta = await this.fetchToPartial(request, partial, metaFile, signal, report);
        return await this.verifyAndInstall(request, partial, metaFile, meta, target, report);
      } catch (err) {
        const error = toDownloadError(err, signal);
        const transient = error.problem === 'network' || (error.problem === 'http' && (error.status === undefined || error.status >= 500 || error.status === 429));
        if (!transient || attempt >= retries) {
          this.log.warn(`Download of ${request.fileName} failed: ${error.message}`);
          throw error;
        }
        const wait = (this.options.backoffMs ?? 1000) * 2 ** attempt++;
        this.log.info(`Download of ${request.fileName} interrupted (${error.message}); retrying in ${wait} ms.`);
        await sleep(wait, signal).catch(() => { throw new DownloadError('cancelled', 'The download was cancelled. It resumes where it stopped next time.'); });
      }
    }
  }

  private async fetchToPartial(request: DownloadRequest, partial: string, metaFile: string, signal: AbortSignal | undefined,
    report: (p: DownloadProgress) => void): Promise<PartialMeta> {
    let meta = readMeta(metaFile);
    let offset = 0;
    if (meta?.url === request.url && fs.existsSync(partial)) offset = fs.statSync(partial).size;
    else await discard(partial, metaFile);
    if (meta && meta.totalBytes !== undefined && offset === meta.totalBytes) return meta; // complete, not yet verified

    const { response, advertised } = await this.request(request.url, offset, signal);
    let append = offset > 0;
    if (response.status === 200 && offset > 0) {
      this.log.info(`${new URL(request.url).host} ignored the Range request; restarting ${request.fileName} from the beginning.`);
      append = false;
      offset = 0;
    } else if (response.status === 206) {
      const start = Number(/bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1]);
      const validator = response.headers.get('etag') ?? response.headers.get('last-modified') ?? undefined;
      if (start !== offset || (meta?.validator && validator && meta.validator !== validator)) {
        await response.body?.cancel();
        await discard(partial, metaFile);
        throw new DownloadError('network', 'The file changed on the server since the download started; starting over.');
      }
    } else if (response.status === 416 && offset > 0) {
      await response.body?.cancel();
      await discard(partial, metaFile);
      throw new DownloadError('network', 'The saved part of the download no longer matches the server; starting over.');
    } else if (response.status !== 200) {
      await response.body?.cancel();
      throw httpError(response.status, request.fileName, request.url);
    }
    const length = Number(response.headers.get('content-length'));
    const rangeTotal = Number(/\/(\d+)$/.exec(response.headers.get('content-range') ?? '')?.[1]);
    const totalBytes = Number.isFinite(rangeTotal) && rangeTotal > 0 ? rangeTotal
      : Number.isFinite(length) && length > 0 ? offset + length : advertised.size;
    meta = {
      url: request.url,
      validator: response.headers.get('etag') ?? response.headers.get('last-modified') ?? undefined,
      totalBytes,
      sha256: request.sha256 ?? advertised.sha256 ?? meta?.sha256,
    };
    if (totalBytes !== undefined) {
      const free = await (this.options.freeSpace ?? freeSpaceOf)(this.modelsDir);
      const needed = totalBytes - offset;
      if (free < needed + 50e6) {
        await response.body?.cancel();
        throw new DownloadError('no-space', `Not enough disk space for ${request.fileName}: it needs ${formatBytes(needed)} more, and ${formatBytes(free)} is free in ${this.modelsDir}.`);
      }
    }
    try {
      fs.writeFileSync(metaFile, JSON.stringify(meta));
    } catch (err) {
      throw writeError(this.modelsDir, err);
    }
    if (!response.body) throw new DownloadError('network', 'The server sent no data.');

    let received = offset;
    const started = performance.now();
    let lastReport = 0;
    const counter = new TransformCounter((n) => {
      received += n;
      const now = performance.now();
      if (now - lastReport < 100) return;
      lastReport = now;
      const rate = (received - offset) / Math.max(0.001, (now - started) / 1000);
      report({ fileName: request.fileName, phase: 'downloading', receivedBytes: received, totalBytes, bytesPerSecond: rate, secondsLeft: totalBytes && rate > 0 ? (totalBytes - received) / rate : undefined });
    });
    let out: fs.WriteStream;
    try {
      out = fs.createWriteStream(partial, { flags: append ? 'a' : 'w' });
      await new Promise<void>((resolve, reject) => { out.once('open', () => resolve()); out.once('error', reject); });
    } catch (err) {
      await response.body.cancel().catch(() => undefined);
      throw writeError(this.modelsDir, err);
    }
    try {
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), counter, out, { signal });
    } catch (err) {
      if (signal?.aborted) throw new DownloadError('cancelled', 'The download was cancelled. It resumes where it stopped next time.');
      if (isWriteFailure(err)) throw writeError(this.modelsDir, err);
      throw new DownloadError('network', `The connection broke after ${formatBytes(received)}: ${errorMessage(err)}`, undefined, { cause: err });
    }
    if (totalBytes !== undefined && received < totalBytes) {
      throw new DownloadError('network', `The connection closed after ${formatBytes(received)} of ${formatBytes(totalBytes)}.`);
    }
    return meta;
  }

  private async verifyAndInstall(request: DownloadRequest, partial: string, metaFile: string, meta: PartialMeta, target: string,
    report: (p: DownloadProgress) => void): Promise<string> {
    const size = fs.statSync(partial).size;
    report({ fileName: request.fileName, phase: 'verifying', receivedBytes: size, totalBytes: size, bytesPerSecond: 0 });
    if (meta.totalBytes !== undefined && size !== meta.totalBytes) {
      await discard(partial, metaFile);
      throw new DownloadError('integrity', `${request.fileName} has ${size} bytes instead of ${meta.totalBytes}; it was deleted.`);
    }
    if (meta.sha256) {
      const actual = await sha256Of(partial);
      if (actual !== meta.sha256.toLowerCase()) {
        await discard(partial, metaFile);
        throw new DownloadError('integrity', `${request.fileName} failed verification (sha256 ${actual.slice(0, 12)}… instead of ${meta.sha256.slice(0, 12)}…); the damaged file was deleted. Try the download again.`);
      }
    } else {
      this.log.warn(`No sha256 known for ${request.fileName}; only its size and GGUF header were checked.`);
    }
    try {
      await checkModelFile(partial, { freeMemoryBytes: Number.MAX_SAFE_INTEGER });
    } catch (err) {
      await discard(partial, metaFile);
      throw new DownloadError('integrity', `The downloaded file is not a usable model: ${errorMessage(err)}`, undefined, { cause: err });
    }
    try {
      await fsp.rename(partial, target);
      await fsp.rm(metaFile, { force: true });
    } catch (err) {
      throw writeError(this.modelsDir, err);
    }
    this.log.info(`Installed ${request.fileName} (${formatBytes(size)}${meta.sha256 ? ', sha256 verified' : ''}).`);
    report({ fileName: request.fileName, phase: 'done', receivedBytes: size, totalBytes: size, bytesPerSecond: 0 });
    return target;
  }

  /** GETs a URL following redirects by hand, to read Hugging Face's x-linked-* headers and keep the token on its host. */
  private async request(url: string, offset: number, signal: AbortSignal | undefined): Promise<{ response: Response; advertised: { sha256?: string; size?: number } }> {
    const doFetch = this.options.fetch ?? environmentFetch();
    const tokenHosts = this.options.tokenHosts ?? ['huggingface.co'];
    const advertised: { sha256?: string; size?: number } = {};
    let current = new URL(url);
    for (let hop = 0; hop < 10; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'nanochat-vscode' };
      if (offset > 0) headers.range = `bytes=${offset}-`;
      if (tokenHosts.includes(current.hostname)) {
        const token = await this.options.token?.();
        if (token) headers.authorization = `Bearer ${token}`;
      }
      let response: Response;
      try {
        response = await doFetch(current, { headers, redirect: 'manual', signal });
      } catch (err) {
        if (signal?.aborted) throw new DownloadError('cancelled', 'The download was cancelled. It resumes where it stopped next time.');
        throw new DownloadError('network', `Cannot reach ${current.host}: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`, undefined, { cause: err });
      }
      const linked = response.headers.get('x-linked-etag')?.replace(/^W\//, '').replace(/"/g, '');
      if (linked && /^[0-9a-f]{64}$/i.test(linked)) advertised.sha256 = linked.toLowerCase();
      const linkedSize = Number(response.headers.get('x-linked-size'));
      if (linkedSize > 0) advertised.size = linkedSize;
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        current = new URL(location, current);
        continue;
      }
      return { response, advertised };
    }
    throw new DownloadError('http', `Too many redirects for ${url}.`);
  }
}

/** fetch that goes through the proxy named by the usual environment variables, when one is set. */
export function environmentFetch(env: NodeJS.ProcessEnv = process.env): typeof fetch {
  if (!['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy'].some((k) => env[k])) return fetch;
  const dispatcher = new EnvHttpProxyAgent();
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    undiciFetch(input as Parameters<typeof undiciFetch>[0], { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher })) as unknown as typeof fetch;
}

/** A pass-through stream that counts the bytes flowing to disk. */
class TransformCounter extends Transform {
  constructor(private readonly onBytes: (n: number) => void) { super(); }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void): void {
    this.onBytes(chunk.length);
    done(null, chunk);
  }
}

function httpError(status: number, fileName: string, url: string): DownloadError {
  if (status === 404) return new DownloadError('not-found', `${fileName} was not found at ${url} (HTTP 404). Check the repository and file name.`, status);
  if (status === 401 || status === 403) {
    return new DownloadError('unauthorized', `Access to ${fileName} was refused (HTTP ${status}). Gated models need a Hugging Face token: run "Nanochat: Set Hugging Face Token" and accept the model's license on its page.`, status);
  }
  return new DownloadError('http', `The server answered HTTP ${status} for ${fileName}.`, status);
}

function toDownloadError(err: unknown, signal?: AbortSignal): DownloadError {
  if (err instanceof DownloadError) return err;
  if (signal?.aborted) return new DownloadError('cancelled', 'The download was cancelled. It resumes where it stopped next time.');
  return new DownloadError('network', errorMessage(err), undefined, { cause: err });
}

function isWriteFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return !!code && ['ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EDQUOT', 'EIO'].includes(code);
}

function writeError(dir: string, err: unknown): DownloadError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = code === 'ENOSPC' ? 'the disk is full' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'it is not writable' : errorMessage(err);
  return new DownloadError('write', `Cannot save the model in ${dir}: ${reason}. Choose another folder with the setting nanochat.modelsFolder.`, undefined, { cause: err });
}

function readMeta(file: string): PartialMeta | undefined {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as PartialMeta; } catch { return undefined; }
}

async function discard(partial: string, metaFile: string): Promise<void> {
  await fsp.rm(partial, { force: true });
  await fsp.rm(metaFile, { force: true });
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

async function freeSpaceOf(dir: string): Promise<number> {
  const stats = await fsp.statfs(dir);
  return stats.bavail * stats.bsize;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('aborted'));
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); reject(new Error('aborted')); }, { once: true });
  });
}
