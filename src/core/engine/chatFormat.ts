import fs from 'node:fs';
import type { ChatHistoryItem, ChatWrapper, LlamaModel } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { errorMessage } from '../errors';
import { forkOffThread } from '../forkOffThread';
import type { Logger } from '../log';
import type { KeyValueStore } from '../modelFiles/library';
import { importNodeLlamaCpp, type NodeLlamaCpp } from './llama';

/**
 * Which chat format (node-llama-cpp's chat wrapper) a model speaks. Resolving it tests the model's
 * Jinja template against every format node-llama-cpp knows: synchronous work of 0.1–1 s with real
 * vocabularies, which must not run on the extension host's event loop. So it runs once per model
 * file in a child process (or comes from the cache of a previous run), the result crosses over as
 * plain data, and the wrapper rebuilt here must render a sample conversation exactly as the one
 * resolved there did; anything else falls back to resolving here, as node-llama-cpp itself would.
 */
export interface ChatFormat { type: string; settings: Record<string, unknown>; sample: string }
export type ChatFormatSource = 'cache' | 'worker' | 'here';

const SAMPLE: ChatHistoryItem[] = [
  { type: 'system', text: 'You are a helpful assistant.' },
  { type: 'user', text: 'Hello!' },
  { type: 'model', response: ['Hi, how can I help?'] },
  { type: 'user', text: 'What is 2 + 2?' },
  { type: 'model', response: [] },
];

/** The wrapper as plain data: its type in node-llama-cpp's `chatWrappers`, its settings, and how it renders the sample. */
export function describeChatWrapper(wrapper: ChatWrapper, lib: Pick<NodeLlamaCpp, 'chatWrappers'>): ChatFormat | undefined {
  const type = Object.entries(lib.chatWrappers).find(([, Wrapper]) => wrapper.constructor === Wrapper)?.[0];
  if (!type) return undefined;
  const settings: Record<string, unknown> = {};
  if (type !== 'jinjaTemplate') {
    for (const [key, value] of Object.entries(wrapper)) {
      if (key === 'settings' || key === 'wrapperName' || key.startsWith('_')) continue;
      if (value === null || ['string', 'number', 'boolean'].includes(typeof value) || (typeof value === 'object' && isPlain(value))) settings[key] = value;
    }
  }
  return { type, settings, sample: renderSample(wrapper) };
}

function isPlain(value: object): boolean {
  try { return JSON.stringify(value) !== undefined && Object.getPrototypeOf(value) === Object.prototype; } catch { return false; }
}

export function renderSample(wrapper: ChatWrapper): string {
  return JSON.stringify(wrapper.generateContextState({ chatHistory: SAMPLE }).contextText.toJSON());
}

/** Builds the wrapper a ChatFormat describes, or undefined when it does not render the sample the same way. */
export function rebuildChatWrapper(format: ChatFormat, model: LlamaModel, lib: Pick<NodeLlamaCpp, 'chatWrappers' | 'resolveChatWrapper'>): ChatWrapper | undefined {
  try {
    let wrapper: ChatWrapper | undefined;
    if (format.type === 'jinjaTemplate') {
      wrapper = lib.resolveChatWrapper({
        type: 'jinjaTemplate', bosString: model.tokens.bosString, filename: model.filename, fileInfo: model.fileInfo, tokenizer: model.tokenizer, warningLogs: false,
      }) ?? undefined;
    } else {
      const Wrapper = (lib.chatWrappers as Record<string, new (settings?: object) => ChatWrapper>)[format.type];
      wrapper = Wrapper ? new Wrapper(format.settings) : undefined;
    }
    return wrapper && renderSample(wrapper) === format.sample ? wrapper : undefined;
  } catch {
    return undefined;
  }
}

export interface ChatFormatResolverOptions {
  /** dist/chatFormatWorker.js; without it the format is resolved in this process. */
  workerScript?: string;
  execArgv?: string[];
  /** Remembers formats across restarts, by file identity (path, size, modification time). */
  cache?: KeyValueStore;
  /** The model's vocabulary size: a tiny one is resolved in this process (see SMALL_VOCABULARY). */
  vocabularySize?: number;
  log: Logger;
}

/**
 * Vocabularies up to this size have their format resolved in this process: 1–30 ms measured (512
 * tokens), where starting the child process costs ~2 s. SmolLM2's 49K tokens took 600 ms here.
 */
const SMALL_VOCABULARY = 4096;

const CACHE_KEY = 'nanochat.chatFormats';

/**
 * Starts finding a model file's chat format (from the cache, else in a child process) while the
 * caller loads the model; the returned function gives the wrapper for the loaded model, and where it
 * came from. It never throws: the last resort is node-llama-cpp's own resolution, here.
 */
export function prepareChatFormat(modelPath: string, options: ChatFormatResolverOptions): (model: LlamaModel) => Promise<{ wrapper: ChatWrapper; source: ChatFormatSource }> {
  const identity = fileIdentity(modelPath);
  const cached = identity ? options.cache?.get<Record<string, ChatFormat>>(CACHE_KEY)?.[identity] : undefined;
  const small = options.vocabularySize !== undefined && options.vocabularySize <= SMALL_VOCABULARY;
  const background = !cached && !small && options.workerScript
    ? resolveInChild(modelPath, options.workerScript, options.execArgv).then((format) => ({ format }), (error: unknown) => ({ error }))
    : undefined;
  return async (model) => {
    const lib = await importNodeLlamaCpp();
    const fromCache = cached && rebuildChatWrapper(cached, model, lib);
    if (fromCache) return { wrapper: fromCache, source: 'cache' };
    const answer = await background;
    if (answer && 'format' in answer && answer.format) {
      const wrapper = rebuildChatWrapper(answer.format, model, lib);
      if (wrapper) {
        remember(options.cache, identity, answer.format, options.log);
        return { wrapper, source: 'worker' };
      }
      options.log.warn(`The chat format resolved in the background (${answer.format.type}) could not be rebuilt exactly; resolving it here.`);
    } else if (answer) {
      options.log.warn(`Resolving the chat format in the background failed (${'error' in answer ? errorMessage(answer.error) : 'no format'}); resolving it here.`);
    }
    const wrapper = lib.resolveChatWrapper(model);
    const format = describeChatWrapper(wrapper, lib);
    if (format && rebuildChatWrapper(format, model, lib)) remember(options.cache, identity, format, options.log);
    return { wrapper, source: 'here' };
  };
}

function fileIdentity(modelPath: string): string | undefined {
  try {
    const stat = fs.statSync(modelPath);
    return `${modelPath}|${stat.size}|${Math.round(stat.mtimeMs)}`;
  } catch {
    return undefined;
  }
}

/**
 * Stores the format for the next start. Not awaited: VS Code's globalState.update resolves only when
 * the storage has been written (~200 ms at startup, measured), and the model is ready before that.
 */
function remember(cache: KeyValueStore | undefined, identity: string | undefined, format: ChatFormat, log: Logger): void {
  if (!cache || !identity) return;
  const all = { ...(cache.get<Record<string, ChatFormat>>(CACHE_KEY) ?? {}) };
  all[identity] = format;
  const kept = Object.fromEntries(Object.entries(all).slice(-50));
  Promise.resolve(cache.update(CACHE_KEY, kept)).catch((err: unknown) => log.warn(`Could not remember the chat format: ${errorMessage(err)}`));
}

/**
 * Runs dist/chatFormatWorker.js on the (already checked) model file and returns its answer. The child
 * is forked from a worker thread: fork() held the event loop 20–40 ms with a model loaded.
 */
function resolveInChild(modelPath: string, workerScript: string, execArgv: string[] = []): Promise<ChatFormat | undefined> {
  return forkOffThread<{ modelPath: string }, { format?: ChatFormat }>(workerScript, { modelPath }, {
    execArgv, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeoutMs: 60_000,
  }).then((answer) => answer.format);
}
