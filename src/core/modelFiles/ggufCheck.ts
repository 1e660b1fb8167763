import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ModelFileError, errorMessage, type ModelFileProblem } from '../errors';
import { importNodeLlamaCpp } from '../engine/llama';

import { formatBytes } from '../format';

export { formatBytes };

/** What we know about a model file after checking it, without loading its weights. */
export interface ModelFileInfo {
  path: string;
  /** `general.name`, else the file name without `.gguf`. */
  name: string;
  sizeBytes: number;
  ggufVersion: number;
  architecture: string;
  tensorCount: number;
  /** Bytes of tensor data the header describes. */
  tensorBytes: number;
  parameters?: number;
  trainContextSize?: number;
  hasChatTemplate: boolean;
  /** RAM the weights need on the CPU, as llama.cpp estimates it. */
  estimatedRamBytes: number;
}

export interface CheckOptions {
  /** When given, also asks this llama.cpp build whether it can run the architecture. */
  llama?: Llama;
  /** Free memory to compare against (tests pass a number; default: the OS's available memory). */
  freeMemoryBytes?: number;
  /** Allow files without tensors (tokenizers only). */
  allowVocabOnly?: boolean;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const HEADER_BYTES = 24;        // magic u32, version u32, tensor count u64, kv count u64
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
const MIN_KV_BYTES = 8 + 1 + 4 + 1;

/**
 * Checks a file before it is handed to llama.cpp, which may abort the whole process on a malformed
 * file. Every problem becomes a ModelFileError with a sentence a user understands.
 */
export async function checkModelFile(filePath: string, options: CheckOptions = {}): Promise<ModelFileInfo> {
  const fail = (problem: ModelFileProblem, message: string, cause?: unknown): never => {
    throw new ModelFileError(problem, filePath, message, cause === undefined ? undefined : { cause });
  };
  const shown = path.basename(filePath) || filePath;

  if (!filePath || !path.isAbsolute(filePath)) fail('missing', `"${filePath}" is not an absolute path to a GGUF file.`);
  let size = 0;
  try {
    const stat = await fs.stat(filePath);
    if (!stat.isFile()) fail('not-a-file', `${filePath} is not a file.`);
    size = stat.size;
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') fail('missing', `No model file at ${filePath}.`, err);
    fail('unreadable', `Cannot read ${filePath}: ${errorMessage(err)}`, err);
  }
  if (size === 0) fail('empty', `${shown} is empty (0 bytes); it may be an interrupted download.`);

  const head = Buffer.alloc(Math.min(HEADER_BYTES, size));
  try {
    const handle = await fs.open(filePath, 'r');
    try { await handle.read(head, 0, head.length, 0); } finally { await handle.close(); }
  } catch (err) {
    fail('unreadable', `Cannot read ${filePath}: ${errorMessage(err)}`, err);
  }
  if (head.length < 4 || head.readUInt32LE(0) !== GGUF_MAGIC) {
    const looksLikeText = /^\s*[<{]/.test(head.toString('latin1'));
    const magicPrefix = Buffer.from('GGUF').subarray(0, head.length);
    if (head.length < 4 && head.equals(magicPrefix)) fail('truncated', `${shown} ends inside its GGUF header (${size} bytes).`);
    fail('not-gguf', looksLikeText
      ? `${shown} is not a GGUF model: it looks like a web page or JSON, perhaps an error page saved by a failed download.`
      : `${shown} is not a GGUF model (it does not start with the GGUF signature).`);
  }
  if (head.length < HEADER_BYTES) fail('truncated', `${shown} ends inside its GGUF header (${size} bytes).`);
  const version = head.readUInt32LE(4);
  if (version < 2 || version > 3) {
    fail(version === 1 ? 'unsupported-version' : 'corrupt', version === 1
      ? `${shown} uses GGUF version 1, which llama.cpp no longer reads. Download a newer conversion of the model.`
      : `${shown} has an invalid GGUF version (${version}); the file is damaged.`);
  }
  const tensorCount = head.readBigUInt64LE(8);
  const kvCount = head.readBigUInt64LE(16);
  const room = BigInt(size - HEADER_BYTES);
  if (tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) > room || kvCount * BigInt(MIN_KV_BYTES) > room) {
    fail('corrupt', `${shown} has a damaged GGUF header: it claims ${tensorCount} tensors and ${kvCount} metadata entries, more than a ${size}-byte file can hold.`);
  }

  const { readGgufFileInfo, GgufInsights } = await importNodeLlamaCpp();
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    info = await readGgufFileInfo(filePath, { sourceType: 'filesystem', logWarnings: false, ignoreKeys: [] });
  } catch (err) {
    const endOfFile = err instanceof RangeError || /out of range|end of (the )?file|beyond|EOF/i.test(errorMessage(err));
    fail(endOfFile ? 'truncated' : 'corrupt', endOfFile
      ? `${shown} is truncated: its GGUF header ends before the file does. Download it again.`
      : `${shown} has a damaged GGUF header (${errorMessage(err)}).`, err);
  }
  info = info!;

  const architecture = String(info.metadata?.general?.architecture ?? '');
  // Many conversions set general.name to the architecture ("llama"), which names nothing: use the file name then.
  const declaredName = String(info.metadata?.general?.name ?? '').trim();
  const name = declaredName && declaredName !== architecture ? declaredName : path.basename(filePath).replace(/\.gguf$/i, '');
  const hasChatTemplate = typeof info.metadata?.tokenizer?.chat_template === 'string';
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
  if (tensors.length === 0 && !options.allowVocabOnly) {
    fail('no-weights', `${shown} holds only a tokenizer vocabulary, no model weights, so it cannot chat.`);
  }

  let insights: Awaited<ReturnType<typeof GgufInsights.from>> | undefined;
  try { insights = await GgufInsights.from(info, options.llama); } catch { insights = undefined; }
  if (options.llama && architecture && insights && !insights.isSupportedByLlamaCpp) {
    fail('unsupported-architecture', `${shown} is a "${architecture}" model, which this version of llama.cpp cannot run.`);
  }
  if (!architecture) fail('corrupt', `${shown} does not name its architecture (general.architecture is missing).`);

  const tensorBytes = tensorDataBytes(tensors);
  let estimatedRamBytes = tensorBytes;
  try {
    if (insights && options.llama) estimatedRamBytes = insights.estimateModelResourceRequirements({ gpuLayers: 0 }).cpuRam;
  } catch { /* keep the tensor-size estimate */ }
  const free = options.freeMemoryBytes ?? os.freemem();
  if (estimatedRamBytes > free) {
    fail('too-large', `${shown} needs about ${formatBytes(estimatedRamBytes)} of memory but only ${formatBytes(free)} is free. Close other programs or choose a smaller model.`);
  }

  const alignment = Number(info.metadata?.general?.alignment ?? 32) || 32;
  const dataStart = Math.ceil((info.infoEndOffset ?? 0) / alignment) * alignment;
  const dataEnd = dataStart + tensorEndOffset(tensors);
  if (tensors.length > 0 && dataEnd > size) {
    fail('truncated', `${shown} is truncated: it is ${formatBytes(size)} but its tensors need ${formatBytes(dataEnd)}. Download it again.`);
  }

  return {
    path: filePath, name, sizeBytes: size, ggufVersion: info.version, architecture,
    tensorCount: tensors.length, tensorBytes,
    parameters: insights?.totalParameters || undefined,
    trainContextSize: insights?.trainContextSize ?? numberOrUndefined((info.architectureMetadata as { context_length?: unknown } | undefined)?.context_length),
    hasChatTemplate, estimatedRamBytes,
  };
}

type TensorLike = { dimensions: readonly (number | bigint)[]; ggmlType: number; offset: number | bigint };

/**
 * ggml block layouts (elements per block, bytes per block), from ggml's type traits. Types not
 * listed are counted as 1 byte per element, which only makes the truncation check more lenient.
 */
const BLOCKS: Record<number, [number, number]> = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292],
  16: [256, 66], 17: [256, 74], 18: [256, 98], 19: [256, 50], 20: [32, 18], 21: [256, 110], 22: [256, 82],
  23: [256, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8], 29: [256, 56], 30: [1, 2],
  34: [256, 54], 35: [256, 66], 39: [32, 17],
};

function tensorBytesOf(t: TensorLike): number {
  const elements = t.dimensions.reduce<number>((n, d) => n * Number(d), 1);
  const [perBlock, bytes] = BLOCKS[t.ggmlType] ?? [1, 1];
  return Math.ceil(elements / perBlock) * bytes;
}

function tensorDataBytes(tensors: readonly TensorLike[]): number {
  return tensors.reduce((n, t) => n + tensorBytesOf(t), 0);
}

function tensorEndOffset(tensors: readonly TensorLike[]): number {
  return tensors.reduce((end, t) => Math.max(end, Number(t.offset) + tensorBytesOf(t)), 0);
}

function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

