/**
 * Hyper-parameters of real small chat models (from their published configs), so that synthetic files
 * cost exactly the compute and memory traffic of the real ones.
 */
export interface ModelShape {
  architecture: 'llama' | 'qwen2';
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
  /** A vocab GGUF in ../shared/models/vocab/ with this exact vocabulary, when one exists. */
  vocab: { file: string; pre: string } | { generatedFrom: string; pre: string };
}

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
  'qwen2.5-0.5b': {
    architecture: 'qwen2', name: 'Qwen2.5 0.5B (synthetic)', vocabSize: 151936, embedding: 896, layers: 24, heads: 14, kvHeads: 2,
    feedForward: 4864, contextLength: 32768, ropeFreqBase: 1000000, rmsEpsilon: 1e-6, tiedEmbeddings: true, qkvBias: true,
    vocab: { generatedFrom: 'ggml-vocab-gpt-2.gguf', pre: 'qwen2' },
  },
  'llama-3.2-1b': {
    architecture: 'llama', name: 'Llama 3.2 1B (synthetic)', vocabSize: 128256, embedding: 2048, layers: 16, heads: 32, kvHeads: 8,
    feedForward: 8192, contextLength: 131072, ropeFreqBase: 500000, rmsEpsilon: 1e-5, tiedEmbeddings: true, qkvBias: false,
    vocab: { file: 'ggml-vocab-llama-bpe.gguf', pre: 'llama-bpe' },
  },
} as const satisfies Record<string, ModelShape>;

export type ShapeName = keyof typeof SHAPES;

/** Parameters of a shape, counted the way llama.cpp does (every tensor element). */
export function parameterCount(shape: ModelShape): number {
  const headDim = shape.embedding / shape.heads;
  const kvDim = headDim * shape.kvHeads;
  const perLayer = 2 * shape.embedding                       // attention and FFN norms
    + shape.embedding * shape.embedding * 2                  // q and output projections
    + shape.embedding * kvDim * 2                            // k and v projections
    + (shape.qkvBias ? shape.embedding + 2 * kvDim : 0)
    + 3 * shape.embedding * shape.feedForward;               // gate, up, down
  return shape.vocabSize * shape.embedding * (shape.tiedEmbeddings ? 1 : 2) + shape.embedding + shape.layers * perLayer;
}
