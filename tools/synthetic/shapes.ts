/**
 * Hyper-parameters of real small chat models (from their published configs), so that synthetic files
 * cost exactly the compute and memory traffic of the real ones.
 */
export interface ModelShape {
  architecture: 'llama' | 'qwen2' | 'qwen3' | 'gemma3';
  name: string;
  vocabSize: number;
  embedding: number;
  layers: number;
  heads: number;
  kvHeads: number;
  feedForward: number;
  contextLength: number;
  ropeFreqBase: number;
  rmsEpsilon: number;
  tiedEmbeddings: boolean;
  /** Biases on the q, k and v projections (Qwen2). */
  qkvBias: boolean;
  /** Width of one attention head when it is not embedding / heads (Qwen3, Gemma 3). */
  headDim?: number;
  /** RMS norms on each head's queries and keys (Qwen3, Gemma 3). */
  qkNorm?: boolean;
  /** Norms after attention and after the feed-forward block (Gemma 3). */
  postNorms?: boolean;
  /** Sliding-window attention width of the local layers (Gemma 3). */
  slidingWindow?: number;
  /** A vocab GGUF in ../shared/models/vocab/ with this exact vocabulary, when one exists. */
  vocab: { file: string; pre: string } | { generatedFrom: string; pre: string };
}

const QWEN25_05B = {
  architecture: 'qwen2', name: 'Qwen2.5 0.5B (synthetic)', vocabSize: 151936, embedding: 896, layers: 24, heads: 14, kvHeads: 2,
  feedForward: 4864, contextLength: 32768, ropeFreqBase: 1000000, rmsEpsilon: 1e-6, tiedEmbeddings: true, qkvBias: true,
  vocab: { generatedFrom: 'ggml-vocab-gpt-2.gguf', pre: 'qwen2' },
} as const satisfies ModelShape;

export const SHAPES = {
  'smollm2-135m': {
    architecture: 'llama', name: 'SmolLM2 135M (synthetic)', vocabSize: 49152, embedding: 576, layers: 30, heads: 9, kvHeads: 3,
    feedForward: 1536, contextLength: 8192, ropeFreqBase: 100000, rmsEpsilon: 1e-5, tiedEmbeddings: true, qkvBias: false,
    vocab: { file: 'ggml-vocab-starcoder.gguf', pre: 'smollm' },
  },
  'smollm2-360m': {
    architecture: 'llama', name: 'SmolLM2 360M (synthetic)', vocabSize: 49152, embedding: 960, layers: 32, heads: 15, kvHeads: 5,
    feedForward: 2560, contextLength: 8192, ropeFreqBase: 100000, rmsEpsilon: 1e-5, tiedEmbeddings: true, qkvBias: false,
    vocab: { file: 'ggml-vocab-starcoder.gguf', pre: 'smollm' },
  },
  'qwen2.5-0.5b': QWEN25_05B,
  'llama-3.2-1b': {
    architecture: 'llama', name: 'Llama 3.2 1B (synthetic)', vocabSize: 128256, embedding: 2048, layers: 16, heads: 32, kvHeads: 8,
    feedForward: 8192, contextLength: 131072, ropeFreqBase: 500000, rmsEpsilon: 1e-5, tiedEmbeddings: true, qkvBias: false,
    vocab: { file: 'ggml-vocab-llama-bpe.gguf', pre: 'llama-bpe' },
  },
  // The same architecture and sizes as Qwen2.5 0.5B; the catalog entry adds its FIM tokens and template.
  'qwen2.5-coder-0.5b': { ...QWEN25_05B, name: 'Qwen2.5 Coder 0.5B (synthetic)' },
  'qwen2.5-coder-1.5b': {
    architecture: 'qwen2', name: 'Qwen2.5 Coder 1.5B (synthetic)', vocabSize: 151936, embedding: 1536, layers: 28, heads: 12, kvHeads: 2,
    feedForward: 8960, contextLength: 32768, ropeFreqBase: 1000000, rmsEpsilon: 1e-6, tiedEmbeddings: true, qkvBias: true,
    vocab: { generatedFrom: 'ggml-vocab-gpt-2.gguf', pre: 'qwen2' },
  },
  'qwen3-0.6b': {
    architecture: 'qwen3', name: 'Qwen3 0.6B (synthetic)', vocabSize: 151936, embedding: 1024, layers: 28, heads: 16, kvHeads: 8,
    feedForward: 3072, contextLength: 40960, ropeFreqBase: 1000000, rmsEpsilon: 1e-6, tiedEmbeddings: true, qkvBias: false,
    headDim: 128, qkNorm: true,
    vocab: { generatedFrom: 'ggml-vocab-gpt-2.gguf', pre: 'qwen2' },
  },
  'gemma-3-1b': {
    architecture: 'gemma3', name: 'Gemma 3 1B (synthetic)', vocabSize: 262144, embedding: 1152, layers: 26, heads: 4, kvHeads: 1,
    feedForward: 6912, contextLength: 32768, ropeFreqBase: 1000000, rmsEpsilon: 1e-6, tiedEmbeddings: true, qkvBias: false,
    headDim: 256, qkNorm: true, postNorms: true, slidingWindow: 512,
    vocab: { generatedFrom: 'ggml-vocab-gpt-2.gguf', pre: 'default' },
  },
} as const satisfies Record<string, ModelShape>;

export type ShapeName = keyof typeof SHAPES;

/** Parameters of a shape, counted the way llama.cpp does (every tensor element). */
export function parameterCount(shape: ModelShape): number {
  const headDim = shape.headDim ?? shape.embedding / shape.heads;
  const qDim = headDim * shape.heads;
  const kvDim = headDim * shape.kvHeads;
  const perLayer = (shape.postNorms ? 4 : 2) * shape.embedding // attention and FFN norms (and post-norms)
    + shape.embedding * qDim * 2                             // q and output projections
    + shape.embedding * kvDim * 2                            // k and v projections
    + (shape.qkvBias ? qDim + 2 * kvDim : 0)
    + (shape.qkNorm ? 2 * headDim : 0)
    + 3 * shape.embedding * shape.feedForward;               // gate, up, down
  return shape.vocabSize * shape.embedding * (shape.tiedEmbeddings ? 1 : 2) + shape.embedding + shape.layers * perLayer;
}
