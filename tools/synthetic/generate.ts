import fs from 'node:fs';
import path from 'node:path';
import { readGgufInfo } from '../../src/core/modelFiles/ggufReader';
import { writeGguf, type MetadataValue, type TensorSpec } from './ggufWriter';
import { LIKE, likeTokenizer } from './like';
import { FILE_TYPE, GGML, GGML_TYPE, quantizeBlock, typeBytes, type WeightType } from './quantize';
import { SHAPES, parameterCount, type ModelShape, type ShapeName } from './shapes';

export interface SyntheticModelOptions {
  /** A shape; optional with `like`, which brings the catalog model's own. */
  shape?: ShapeName;
  /** A catalog id: its shape, its real vocabulary and special tokens and its own chat template (see like.ts). */
  like?: string;
  /** llama.cpp's models/ folder (vocab GGUFs and templates/); needed with `like`. */
  llamaCppModels?: string;
  type: WeightType;
  out: string;
  seed?: number;
  /** Folder of llama.cpp's vocab GGUFs; without it (or the file) a vocabulary of the right size is generated. */
  vocabDir?: string;
  /** Write only the header: a file that claims its tensors but holds none (for size checks). */
  headerOnly?: boolean;
  /** Changes to the shape (tests use a header that claims more memory than any machine has). */
  overrides?: Partial<Pick<ModelShape, 'layers' | 'feedForward' | 'embedding'>>;
}

export interface SyntheticModelReport { file: string; bytes: number; parameters: number; vocabulary: string }

const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * Writes a GGUF v3 with a real architecture's hyper-parameters and tensor shapes, seeded random
 * weights (std 0.02) quantized to the requested block format, and a real vocabulary where one is
 * available. The same options always give the same bytes.
 */
export async function makeSyntheticModel(options: SyntheticModelOptions): Promise<SyntheticModelReport> {
  const recipe = options.like === undefined ? undefined : LIKE[options.like];
  if (options.like !== undefined && !recipe) throw new Error(`--like must be a catalog id: ${Object.keys(LIKE).join(', ')}`);
  const shapeName = options.shape ?? recipe?.shape;
  const base: ModelShape | undefined = shapeName ? SHAPES[shapeName] : undefined;
  if (!base) throw new Error(`Unknown shape "${options.shape}"; known: ${Object.keys(SHAPES).join(', ')}`);
  const shape: ModelShape = { ...base, ...options.overrides };
  const arch = shape.architecture;
  const headDim = shape.headDim ?? shape.embedding / shape.heads;
  const qDim = headDim * shape.heads;
  const kvDim = headDim * shape.kvHeads;
  let tokenizer: Record<string, MetadataValue>;
  let source: string;
  if (recipe) {
    if (!options.llamaCppModels) throw new Error('--like needs llama.cpp\'s models/ folder (node tools/llamaCpp.mjs clones it)');
    const like = await likeTokenizer(recipe, shape.vocabSize, options.llamaCppModels);
    tokenizer = { ...like.metadata, 'tokenizer.chat_template': { type: 'string', value: like.template } };
    source = like.source;
  } else {
    const vocab = await vocabulary(shape, options.vocabDir);
    source = vocab.source;
    tokenizer = {
      'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
      'tokenizer.ggml.pre': { type: 'string', value: vocab.pre },
      'tokenizer.ggml.tokens': { type: 'string[]', value: vocab.tokens },
      'tokenizer.ggml.token_type': { type: 'i32[]', value: vocab.types },
      'tokenizer.ggml.merges': { type: 'string[]', value: vocab.merges },
      'tokenizer.ggml.bos_token_id': { type: 'u32', value: vocab.bos },
      'tokenizer.ggml.eos_token_id': { type: 'u32', value: vocab.eos },
      'tokenizer.ggml.add_bos_token': { type: 'bool', value: false },
      'tokenizer.chat_template': { type: 'string', value: CHATML },
    };
  }
  const metadata: Record<string, MetadataValue> = {
    'general.architecture': { type: 'string', value: arch },
    'general.name': { type: 'string', value: shape.name },
    'general.file_type': { type: 'u32', value: FILE_TYPE[options.type] },
    'general.quantization_version': { type: 'u32', value: 2 },
    [`${arch}.context_length`]: { type: 'u32', value: shape.contextLength },
    [`${arch}.embedding_length`]: { type: 'u32', value: shape.embedding },
    [`${arch}.block_count`]: { type: 'u32', value: shape.layers },
    [`${arch}.feed_forward_length`]: { type: 'u32', value: shape.feedForward },
    [`${arch}.attention.head_count`]: { type: 'u32', value: shape.heads },
    [`${arch}.attention.head_count_kv`]: { type: 'u32', value: shape.kvHeads },
    [`${arch}.attention.layer_norm_rms_epsilon`]: { type: 'f32', value: shape.rmsEpsilon },
    [`${arch}.rope.freq_base`]: { type: 'f32', value: shape.ropeFreqBase },
    [`${arch}.rope.dimension_count`]: { type: 'u32', value: headDim },
    [`${arch}.vocab_size`]: { type: 'u32', value: shape.vocabSize },
    ...(shape.headDim ? {
      [`${arch}.attention.key_length`]: { type: 'u32', value: headDim } as MetadataValue,
      [`${arch}.attention.value_length`]: { type: 'u32', value: headDim } as MetadataValue,
    } : {}),
    ...(shape.slidingWindow ? { [`${arch}.attention.sliding_window`]: { type: 'u32', value: shape.slidingWindow } as MetadataValue } : {}),
    ...tokenizer,
  };

  const seed = options.seed ?? 1;
  const tensors: TensorSpec[] = [];
  const weight = (name: string, cols: number, rows: number) => tensors.push(randomTensor(name, cols, rows, options.type, seed, tensors.length));
  const norm = (name: string, n: number) => tensors.push(constantTensor(name, n, 1));
  const bias = (name: string, n: number) => tensors.push(constantTensor(name, n, 0));
  weight('token_embd.weight', shape.embedding, shape.vocabSize);
  for (let i = 0; i < shape.layers; i++) {
    norm(`blk.${i}.attn_norm.weight`, shape.embedding);
    weight(`blk.${i}.attn_q.weight`, shape.embedding, qDim);
    weight(`blk.${i}.attn_k.weight`, shape.embedding, kvDim);
    weight(`blk.${i}.attn_v.weight`, shape.embedding, kvDim);
    if (shape.qkvBias) {
      bias(`blk.${i}.attn_q.bias`, qDim);
      bias(`blk.${i}.attn_k.bias`, kvDim);
      bias(`blk.${i}.attn_v.bias`, kvDim);
    }
    if (shape.qkNorm) {
      norm(`blk.${i}.attn_q_norm.weight`, headDim);
      norm(`blk.${i}.attn_k_norm.weight`, headDim);
    }
    weight(`blk.${i}.attn_output.weight`, qDim, shape.embedding);
    if (shape.postNorms) norm(`blk.${i}.post_attention_norm.weight`, shape.embedding);
    norm(`blk.${i}.ffn_norm.weight`, shape.embedding);
    weight(`blk.${i}.ffn_gate.weight`, shape.embedding, shape.feedForward);
    weight(`blk.${i}.ffn_up.weight`, shape.embedding, shape.feedForward);
    weight(`blk.${i}.ffn_down.weight`, shape.feedForward, shape.embedding);
    if (shape.postNorms) norm(`blk.${i}.post_ffw_norm.weight`, shape.embedding);
  }
  norm('output_norm.weight', shape.embedding);
  if (!shape.tiedEmbeddings) weight('output.weight', shape.embedding, shape.vocabSize);

  fs.mkdirSync(path.dirname(path.resolve(options.out)), { recursive: true });
  const { bytes } = writeGguf(options.out, metadata, tensors, { headerOnly: options.headerOnly });
  return { file: options.out, bytes, parameters: parameterCount(shape), vocabulary: source };
}

/** A mulberry32 stream: fast, and the same numbers for the same seed on every machine. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTensor(name: string, cols: number, rows: number, type: WeightType, seed: number, index: number): TensorSpec {
  const elements = cols * rows;
  const bytes = typeBytes(type, elements);
  return {
    name, dims: [cols, rows], ggmlType: GGML_TYPE[type], bytes,
    write(sink) {
      const next = random(Math.imul(seed, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b));
      const spread = 0.02 * Math.sqrt(3); // uniform values with a standard deviation of 0.02
      const block = new Float32Array(32);
      const chunkBlocks = 32768;
      const chunk = Buffer.alloc(typeBytes(type, 32) * chunkBlocks);
      let at = 0;
      for (let b = 0; b < elements / 32; b++) {
        for (let i = 0; i < 32; i++) block[i] = (next() * 2 - 1) * spread;
        at = quantizeBlock(type, block, chunk, at);
        if (at === chunk.length) { sink(chunk); at = 0; }
      }
      if (at > 0) sink(chunk.subarray(0, at));
    },
  };
}

function constantTensor(name: string, n: number, value: number): TensorSpec {
  return {
    name, dims: [n], ggmlType: GGML.F32, bytes: n * 4,
    write(sink) { const b = Buffer.alloc(n * 4); for (let i = 0; i < n; i++) b.writeFloatLE(value, i * 4); sink(b); },
  };
}

interface Vocabulary { tokens: string[]; types: number[]; merges: string[]; bos: number; eos: number; pre: string; source: string }

async function vocabulary(shape: ModelShape, vocabDir?: string): Promise<Vocabulary> {
  const fromFile = 'file' in shape.vocab ? shape.vocab.file : shape.vocab.generatedFrom;
  const file = vocabDir ? path.join(vocabDir, fromFile) : undefined;
  let tokens: string[] = [];
  let types: number[] = [];
  let merges: string[] = [];
  let source = 'generated';
  if (file && fs.existsSync(file)) {
    const { info } = await readGgufInfo(file, { readTensorInfo: false });
    const g = (info.metadata as unknown as { tokenizer: { ggml: { tokens: string[]; token_type: number[]; merges?: string[] } } }).tokenizer.ggml;
    tokens = [...g.tokens];
    types = [...g.token_type];
    merges = [...(g.merges ?? [])];
    source = path.basename(file);
  } else {
    // Without a vocab file: GPT-2's 256 byte-level symbols, so any text still tokenizes.
    for (let byte = 0; byte < 256; byte++) tokens.push(byteSymbol(byte));
    types = tokens.map(() => 1);
  }
  tokens = tokens.slice(0, shape.vocabSize);
  types = types.slice(0, shape.vocabSize);
  const special = new Set(['<|im_start|>', '<|im_end|>', '<|endoftext|>']);
  for (const s of special) if (!tokens.includes(s) && tokens.length < shape.vocabSize) { tokens.push(s); types.push(3); }
  // Padding as llama.cpp's converter writes it ([PAD<id>], type UNUSED): control-typed padding made
  // every special-token scan walk ~100K entries, which real models never do.
  while (tokens.length < shape.vocabSize) { tokens.push(`[PAD${tokens.length}]`); types.push(5); }
  const known = new Set(tokens);
  merges = merges.filter((m) => { const [a, b] = m.split(' '); return known.has(a) && known.has(b) && known.has(a + b); });
  // The vocabulary's own markers where it has them (Llama 3 is full at 128,256 and has no ChatML ones).
  const first = (names: string[]) => Math.max(0, ...names.map((n) => tokens.indexOf(n)).filter((i) => i >= 0).slice(0, 1));
  const eos = first(['<|im_end|>', '<|eot_id|>', '<|end_of_text|>', '<|endoftext|>']);
  const bos = first(['<|begin_of_text|>', '<|endoftext|>', '<|im_start|>']);
  return { tokens, types, merges, bos, eos, pre: shape.vocab.pre, source };
}

function byteSymbol(byte: number): string {
  const printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
  if (printable) return String.fromCharCode(byte);
  let n = 0;
  for (let b = 0; b < byte; b++) if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) n++;
  return String.fromCharCode(256 + n);
}
