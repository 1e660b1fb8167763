import fs from 'node:fs';
import path from 'node:path';
import { readGgufInfo } from '../../src/core/modelFiles/ggufReader';
import { bundledCatalog } from '../../src/core/modelFiles/catalog';
import type { MetadataValue } from './ggufWriter';
import type { ShapeName } from './shapes';

/** llama.cpp token types. */
const CONTROL = 3, USER_DEFINED = 4;

/**
 * What makes a synthetic model "like" a catalog model: the catalog entry's architecture and shape,
 * its real vocabulary and special tokens, and its own chat template. Where the bundled llama.cpp
 * source lacks the exact vocabulary or template, `standIn` says what replaces it and why.
 */
export interface LikeRecipe {
  catalogId: string;
  shape: ShapeName;
  /** A vocab GGUF in llama.cpp's models/ folder. */
  vocab: string;
  /** The model's added tokens at their real ids: [id, text, token type]. They replace what the vocab file has there. */
  tokens: Array<[number, string, number]>;
  bos: string;
  eos: string;
  addBos: boolean;
  pre?: string;
  /** A template in llama.cpp's models/templates/, or `nanochat:<file>` for one transcribed in tools/synthetic/templates/. */
  template: string;
  standIn?: string;
}

// Qwen2.5's added tokens (tokenizer_config.json, added_tokens_decoder); the bundled ggml-vocab-qwen2.gguf
// is Qwen2's, which stops at <|im_end|>. <tool_call> and the FIM tokens are not special (type 4).
const QWEN25_ADDED: Array<[number, string, number]> = [
  [151643, '<|endoftext|>', CONTROL], [151644, '<|im_start|>', CONTROL], [151645, '<|im_end|>', CONTROL],
  [151646, '<|object_ref_start|>', CONTROL], [151647, '<|object_ref_end|>', CONTROL], [151648, '<|box_start|>', CONTROL],
  [151649, '<|box_end|>', CONTROL], [151650, '<|quad_start|>', CONTROL], [151651, '<|quad_end|>', CONTROL],
  [151652, '<|vision_start|>', CONTROL], [151653, '<|vision_end|>', CONTROL], [151654, '<|vision_pad|>', CONTROL],
  [151655, '<|image_pad|>', CONTROL], [151656, '<|video_pad|>', CONTROL],
  [151657, '<tool_call>', USER_DEFINED], [151658, '</tool_call>', USER_DEFINED],
  [151659, '<|fim_prefix|>', USER_DEFINED], [151660, '<|fim_middle|>', USER_DEFINED], [151661, '<|fim_suffix|>', USER_DEFINED],
  [151662, '<|fim_pad|>', USER_DEFINED], [151663, '<|repo_name|>', USER_DEFINED], [151664, '<|file_sep|>', USER_DEFINED],
];
const QWEN3_ADDED: Array<[number, string, number]> = [
  ...QWEN25_ADDED,
  [151665, '<tool_response>', USER_DEFINED], [151666, '</tool_response>', USER_DEFINED],
  [151667, '<think>', USER_DEFINED], [151668, '</think>', USER_DEFINED],
];
const QWEN_STAND_IN = "ggml-vocab-qwen2.gguf is Qwen2's vocabulary: the same 151,643 BPE tokens and pre-tokenizer as Qwen2.5 and Qwen3, without the later added tokens, which are set at their real ids";
const SMOLLM2_ADDED: Array<[number, string, number]> = [
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<repo_name>', '<reponame>', '<file_sep>', '<filename>', '<gh_stars>', '<issue_start>',
  '<issue_comment>', '<issue_closed>', '<jupyter_start>', '<jupyter_text>', '<jupyter_code>', '<jupyter_output>', '<jupyter_script>', '<empty_output>',
].map((text, id) => [id, text, CONTROL]);
const SMOLLM2_STAND_IN = "SmolLM2's own vocabulary is not in the bundle; StarCoder's stands in (the same size, 49,152, and the same byte-level BPE family SmolLM2's was trained like), with SmolLM2's 17 special tokens at their real ids 0–16";

export const LIKE: Record<string, LikeRecipe> = {
  'smollm2-135m-instruct': {
    catalogId: 'smollm2-135m-instruct', shape: 'smollm2-135m', vocab: 'ggml-vocab-starcoder.gguf', tokens: SMOLLM2_ADDED, pre: 'smollm',
    bos: '<|im_start|>', eos: '<|im_end|>', addBos: false, template: 'nanochat:smollm2-instruct.jinja', standIn: SMOLLM2_STAND_IN,
  },
  'smollm2-360m-instruct': {
    catalogId: 'smollm2-360m-instruct', shape: 'smollm2-360m', vocab: 'ggml-vocab-starcoder.gguf', tokens: SMOLLM2_ADDED, pre: 'smollm',
    bos: '<|im_start|>', eos: '<|im_end|>', addBos: false, template: 'nanochat:smollm2-instruct.jinja', standIn: SMOLLM2_STAND_IN,
  },
  'qwen2.5-0.5b-instruct': {
    catalogId: 'qwen2.5-0.5b-instruct', shape: 'qwen2.5-0.5b', vocab: 'ggml-vocab-qwen2.gguf', tokens: QWEN25_ADDED,
    bos: '<|endoftext|>', eos: '<|im_end|>', addBos: false, template: 'Qwen-Qwen2.5-7B-Instruct.jinja',
    standIn: `${QWEN_STAND_IN}; the Qwen2.5 instruct models share one template, the bundle's copy is the 7B's`,
  },
  'qwen2.5-coder-0.5b-instruct': {
    catalogId: 'qwen2.5-coder-0.5b-instruct', shape: 'qwen2.5-coder-0.5b', vocab: 'ggml-vocab-qwen2.gguf', tokens: QWEN25_ADDED,
    bos: '<|endoftext|>', eos: '<|im_end|>', addBos: false, template: 'Qwen-Qwen2.5-7B-Instruct.jinja',
    standIn: `${QWEN_STAND_IN}; Qwen2.5-Coder-Instruct uses the Qwen2.5-Instruct template`,
  },
  'qwen2.5-coder-1.5b-instruct': {
    catalogId: 'qwen2.5-coder-1.5b-instruct', shape: 'qwen2.5-coder-1.5b', vocab: 'ggml-vocab-qwen2.gguf', tokens: QWEN25_ADDED,
    bos: '<|endoftext|>', eos: '<|im_end|>', addBos: false, template: 'Qwen-Qwen2.5-7B-Instruct.jinja',
    standIn: `${QWEN_STAND_IN}; Qwen2.5-Coder-Instruct uses the Qwen2.5-Instruct template`,
  },
  'qwen3-0.6b': {
    catalogId: 'qwen3-0.6b', shape: 'qwen3-0.6b', vocab: 'ggml-vocab-qwen2.gguf', tokens: QWEN3_ADDED,
    bos: '<|endoftext|>', eos: '<|im_end|>', addBos: false, template: 'Qwen-Qwen3-0.6B.jinja', standIn: QWEN_STAND_IN,
  },
  'llama-3.2-1b-instruct': {
    catalogId: 'llama-3.2-1b-instruct', shape: 'llama-3.2-1b', vocab: 'ggml-vocab-llama-bpe.gguf', tokens: [],
    bos: '<|begin_of_text|>', eos: '<|eot_id|>', addBos: true, template: 'meta-llama-Llama-3.2-3B-Instruct.jinja',
    standIn: 'the Llama 3.2 instruct models share one template; the bundle has the 3B\'s',
  },
  'gemma-3-1b-it': {
    catalogId: 'gemma-3-1b-it', shape: 'gemma-3-1b', vocab: 'ggml-vocab-gemma-4.gguf',
    tokens: [[105, '<start_of_turn>', CONTROL], [106, '<end_of_turn>', CONTROL]],
    bos: '<bos>', eos: '<end_of_turn>', addBos: true, template: 'nanochat:gemma-3-it.jinja',
    standIn: "Gemma 3's vocabulary is not in the bundle; Gemma 4's stands in (the same 262,144 entries and <pad>/<eos>/<bos> ids, a BPE form of the same SentencePiece family), with Gemma 3's turn markers at their real ids 105 and 106; the template is transcribed from google/gemma-3-1b-it (tools/synthetic/templates/)",
  },
};

export interface LikeTokenizer {
  metadata: Record<string, MetadataValue>;
  template: string;
  /** Where the vocabulary came from, and what stands in for what. */
  source: string;
}

/** The catalog model's tokenizer metadata and chat template, built from the bundled llama.cpp source's models/ folder. */
export async function likeTokenizer(recipe: LikeRecipe, vocabSize: number, llamaCppModels: string): Promise<LikeTokenizer> {
  if (!bundledCatalog().models.some((m) => m.id === recipe.catalogId)) throw new Error(`${recipe.catalogId} is not in the catalog`);
  const vocabFile = path.join(llamaCppModels, recipe.vocab);
  const { info } = await readGgufInfo(vocabFile, { readTensorInfo: false });
  const g = (info.metadata as unknown as { tokenizer: { ggml: Record<string, unknown> } }).tokenizer.ggml;
  const tokens = [...(g.tokens as string[])].slice(0, vocabSize);
  const types = [...(g.token_type as number[])].slice(0, vocabSize);
  const scores = g.scores ? [...(g.scores as number[])].slice(0, vocabSize) : undefined;
  for (const [id, text, type] of recipe.tokens) {
    const elsewhere = tokens.indexOf(text);
    if (elsewhere >= 0 && elsewhere !== id) { tokens[elsewhere] = `[UNUSED${elsewhere}]`; types[elsewhere] = 5; }
    while (tokens.length <= id) { tokens.push(`[PAD${tokens.length}]`); types.push(5); scores?.push(0); }
    tokens[id] = text;
    types[id] = type;
  }
  while (tokens.length < vocabSize) { tokens.push(`[PAD${tokens.length}]`); types.push(5); scores?.push(0); }
  const id = (text: string) => {
    const at = tokens.indexOf(text);
    if (at < 0) throw new Error(`${recipe.vocab} has no ${text}`);
    return at;
  };
  const templateFile = recipe.template.startsWith('nanochat:')
    ? path.join(__dirname, 'templates', recipe.template.slice('nanochat:'.length))
    : path.join(llamaCppModels, 'templates', recipe.template);
  const metadata: Record<string, MetadataValue> = {
    'tokenizer.ggml.model': { type: 'string', value: String(g.model) },
    'tokenizer.ggml.pre': { type: 'string', value: recipe.pre ?? String(g.pre ?? 'default') },
    'tokenizer.ggml.tokens': { type: 'string[]', value: tokens },
    'tokenizer.ggml.token_type': { type: 'i32[]', value: types },
    ...(scores ? { 'tokenizer.ggml.scores': { type: 'f32[]', value: scores } as MetadataValue } : {}),
    ...(g.merges ? { 'tokenizer.ggml.merges': { type: 'string[]', value: g.merges as string[] } as MetadataValue } : {}),
    'tokenizer.ggml.bos_token_id': { type: 'u32', value: id(recipe.bos) },
    'tokenizer.ggml.eos_token_id': { type: 'u32', value: id(recipe.eos) },
    'tokenizer.ggml.add_bos_token': { type: 'bool', value: recipe.addBos },
  };
  for (const key of ['padding_token_id', 'unknown_token_id'] as const) {
    if (typeof g[key] === 'number') metadata[`tokenizer.ggml.${key}`] = { type: 'u32', value: g[key] as number };
  }
  if (typeof g.add_space_prefix === 'boolean') metadata['tokenizer.ggml.add_space_prefix'] = { type: 'bool', value: g.add_space_prefix };
  return {
    metadata,
    template: fs.readFileSync(templateFile, 'utf8'),
    source: `${recipe.vocab}${recipe.standIn ? ` (${recipe.standIn})` : ''}, template ${recipe.template.replace('nanochat:', 'tools/synthetic/templates/')}`,
  };
}
