import os from 'node:os';
import path from 'node:path';
import type { GgufInsights, Llama } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ModelFileError, type ModelFileProblem } from '../errors';
import { importNodeLlamaCpp } from '../engine/llama';
import { readGgufInfo } from './ggufReader';

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
  /** Tokens in the vocabulary, when the file lists them. */
  vocabularySize?: number;
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

export async function checkModelFile(filePath: string, options: CheckOptions = {}): Promise<ModelFileInfo> {
  const fail = (problem: ModelFileProblem, message: string, cause?: unknown): never => {
    throw new ModelFileError(problem, filePath, message, cause === undefined ? undefined : { cause });
  };
  const shown = path.basename(filePath) || filePath;
  // Lean: the vocabulary's 300K strings, of which only the count is used here, are never made (their
  // scavenges held the event loop 33–47 ms while a model loaded).
  const { layout, info } = await readGgufInfo(filePath, { lean: true });
  const size = layout.sizeBytes;

  const architecture = String(info.metadata?.general?.architecture ?? '');
  // Many conversions set general.name to the architecture ("llama"), which names nothing: use the file name then.
  const declaredName = String(info.metadata?.general?.name ?? '').trim();
  const name = declaredName && declaredName !== architecture ? declaredName : path.basename(filePath).replace(/\.gguf$/i, '');
  const hasChatTemplate = typeof info.metadata?.tokenizer?.chat_template === 'string';
  const tensors = info.fullTensorInfo ?? info.tensorInfo ?? [];
  if (tensors.length === 0 && !options.allowVocabOnly) {
    fail('no-weights', `${shown} holds only a tokenizer vocabulary, no model weights, so it cannot chat.`);
  }

  // Only with the caller's llama.cpp: without one, GgufInsights loads node-llama-cpp's prebuilt
  // binary as well, after testing it in a forked process (20–55 ms of the event loop, measured).
  let insights: GgufInsights | undefined;
  if (options.llama) {
    const lib = await importNodeLlamaCpp();
    try { insights = await lib.GgufInsights.from(info, options.llama); } catch { insights = undefined; }
  }
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
    parameters: totalParameters(tensors) || undefined,
    trainContextSize: numberOrUndefined((info.architectureMetadata as { context_length?: unknown } | undefined)?.context_length),
    hasChatTemplate, estimatedRamBytes,
    vocabularySize: info.metadata?.tokenizer?.ggml?.tokens?.length,
  };
}

/** The model's parameter count: every tensor's elements (as node-llama-cpp's GgufInsights counts them). */
function totalParameters(tensors: readonly TensorLike[]): number {
  let total = 0n;
  for (const t of tensors) {
    // Dimensions are read as unsigned integers; anything else leaves the count unknown.
    if (!t.dimensions.every((d) => typeof d === 'bigint' || Number.isSafeInteger(d))) return 0;
    total += t.dimensions.reduce<bigint>((n, d) => n * BigInt(d), 1n);
  }
  return Number(total);
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

