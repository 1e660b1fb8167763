import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { NanochatError } from '../errors';
import { readGgufInfo } from '../modelFiles/ggufReader';
import { wordPieceCounter, wordPieceEncode, type WordPieceModel, type WordPieceOptions } from './wordPiece';

/**
 * Exact token counts without model weights: a @huggingface/tokenizers tokenizer rebuilt from the
 * GGUF's own vocabulary (or the tokenizer.json beside the model). It mirrors llama.cpp's tokenizers:
 * SentencePiece BPE (llama, phi-3, …), byte-level BPE with llama.cpp's pre-tokenizer regexes per
 * `tokenizer.ggml.pre`, and WordPiece (BERT). User text is encoded without special tokens, as
 * llama.cpp does with parse_special off.
 */
export interface JsTokenizer {
  readonly engine: 'js';
  readonly source: 'gguf' | 'tokenizer.json';
  /** The tokenizer family: byte-level BPE, SentencePiece BPE, WordPiece, or whatever a tokenizer.json holds. */
  readonly kind: 'bpe' | 'spm' | 'wordpiece' | 'tokenizer.json';
  encode(text: string): number[];
  /** encode(text).length, by chunks whose counts are cached: re-counting an edited document is cheap. */
  count(text: string): number;
}

export class UnsupportedTokenizerError extends NanochatError {}

const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3_REGEX = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/**
 * llama.cpp runs regexes without \p{…} on the text with every non-ASCII space turned into \v, so
 * its explicit ranges never match a space: they are left out of the ranges here (U+1680, U+2000-200A,
 * U+2028-2029, U+202F, U+205F, U+3000).
 */
const CJK = '[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+';
/**
 * deepseek-llm's letter class, as code points: copies of the source in literal characters lose some
 * of them to Unicode normalization (U+1F7D becomes U+03CE, U+212A becomes K), which breaks the ranges.
 */
const DEEPSEEK_LETTERS = 'A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}';

/** llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp), applied in sequence, each isolating its matches. */
const PRE_TOKENIZER_REGEXES: Record<string, string[]> = {
  'gpt-2': [GPT2_REGEX], mpt: [GPT2_REGEX], olmo: [GPT2_REGEX], jais: [GPT2_REGEX],
  'llama-bpe': [LLAMA3_REGEX], 'llama3': [LLAMA3_REGEX], dbrx: [LLAMA3_REGEX], smaug: [LLAMA3_REGEX], chatglm4: [LLAMA3_REGEX],
  qwen2: [QWEN2_REGEX], stablelm2: [QWEN2_REGEX],
  'deepseek-llm': [
    '[\r\n]',
    `\\s?[${DEEPSEEK_LETTERS}]+`,
    '\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+',
    '\\s+$',
    CJK,
    '\\p{N}+',
  ],
  'deepseek-coder': ['[\r\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', CJK, '\\p{N}'],
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2_REGEX, '[0-9][0-9][0-9]'],
  starcoder: ['\\p{N}', GPT2_REGEX], refact: ['\\p{N}', GPT2_REGEX], 'command-r': ['\\p{N}', GPT2_REGEX], smollm: ['\\p{N}', GPT2_REGEX],
  codeshell: ['\\p{N}', GPT2_REGEX], exaone: ['\\p{N}', GPT2_REGEX], minerva: ['\\p{N}', GPT2_REGEX],
};
/** Pre-tokenizers after which llama.cpp looks a whole word up in the vocabulary before merging. */
const IGNORE_MERGES = new Set(['llama-bpe', 'llama3']);

type Metadata = {
  model?: string; pre?: string; tokens?: string[]; scores?: number[]; token_type?: number[]; merges?: string[];
  unknown_token_id?: number; add_space_prefix?: boolean; normalizer?: { lowercase?: boolean; strip_accents?: boolean };
};

const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** Builds tokenizer.json and tokenizer_config.json objects from `tokenizer.ggml.*` metadata. */
export function tokenizerFromGgufMetadata(g: Metadata): { json: object; config: object } {
  const tokens = g.tokens;
  if (!tokens?.length) throw new UnsupportedTokenizerError('The model file has no tokenizer vocabulary.');
  const types = g.token_type ?? [];
  if (g.model === 'gpt2') {
    const regexes = PRE_TOKENIZER_REGEXES[g.pre ?? 'default'];
    if (!regexes) throw new UnsupportedTokenizerError(`The "${g.pre}" pre-tokenizer is not reproduced by the JS tokenizer.`);
    return {
      json: {
        version: '1.0', added_tokens: userDefinedTokens(tokens, types), normalizer: null, post_processor: null, decoder: { type: 'ByteLevel' },
        pre_tokenizer: {
          type: 'Sequence',
          pretokenizers: [
            ...regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        },
        model: {
          type: 'BPE', vocab: vocabMap(tokens), merges: (g.merges ?? []).map((m) => splitMerge(m)),
          ignore_merges: IGNORE_MERGES.has(g.pre ?? ''), byte_fallback: false, fuse_unk: false, unk_token: null,
        },
      },
      config: {},
    };
  }
  if (g.model === 'llama') {
    // SentencePiece BPE: merges come from the scores, as Hugging Face's converter derives them.
    const vocab = vocabMap(tokens);
    const scores = g.scores ?? tokens.map((_, i) => -i);
    const merges: Array<[string, string, number, number, number]> = [];
    for (let id = 0; id < tokens.length; id++) {
      if (types[id] !== undefined && types[id] !== TOKEN_TYPE.normal && types[id] !== TOKEN_TYPE.userDefined) continue;
      const piece = tokens[id];
      const chars = [...piece];
      for (let i = 1; i < chars.length; i++) {
        const left = chars.slice(0, i).join('');
        const right = chars.slice(i).join('');
        const l = vocab[left];
        const r = vocab[right];
        if (l !== undefined && r !== undefined) merges.push([left, right, scores[id], l, r]);
      }
    }
    merges.sort((a, b) => b[2] - a[2] || a[3] - b[3] || a[4] - b[4]);
    const unk = tokens[g.unknown_token_id ?? 0] ?? '<unk>';
    // SentencePiece treats the whole text as one word, which makes JS BPE slow on long texts. When no
    // token has "▁" after another character, no merge can cross the start of a "▁"-word, so splitting
    // there first (and caching per word) gives the same tokens, much faster.
    const splittable = !tokens.some((t) => /[^▁]▁/.test(t));
    return {
      json: {
        version: '1.0', added_tokens: userDefinedTokens(tokens, types), post_processor: null, decoder: null,
        pre_tokenizer: splittable ? { type: 'Split', pattern: { Regex: '▁*[^▁]+|▁+' }, behavior: 'Isolated', invert: false } : null,
        normalizer: g.add_space_prefix === false
          ? { type: 'Replace', pattern: { String: ' ' }, content: '▁' }
          : { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
        model: { type: 'BPE', vocab, merges: merges.map(([l, r]) => [l, r]), byte_fallback: true, fuse_unk: true, unk_token: unk, ignore_merges: false },
      },
      config: {},
    };
  }
  if (g.model === 'bert') {
    // llama.cpp's converter marks word starts with "▁" and strips "##"; WordPiece wants the reverse.
    const vocab: Record<string, number> = {};
    tokens.forEach((t, id) => {
      const name = types[id] === TOKEN_TYPE.control || /^\[.*\]$/.test(t) ? t : t.startsWith('▁') ? t.slice(1) : `##${t}`;
      if (!(name in vocab)) vocab[name] = id;
    });
    const unk = tokens[g.unknown_token_id ?? 100] ?? '[UNK]';
    return {
      json: {
        version: '1.0', added_tokens: [], post_processor: null, decoder: null,
        // The nearest Hugging Face pipeline, for a tokenizer.json; nanochat itself splits words as
        // llama.cpp does (see wordPiece.ts) and uses only the model, which has no word-length limit there.
        normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
        pre_tokenizer: { type: 'BertPreTokenizer' },
        model: { type: 'WordPiece', vocab, unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: Number.MAX_SAFE_INTEGER },
      },
      config: {},
    };
  }
  throw new UnsupportedTokenizerError(`The "${g.model}" tokenizer type is not reproduced by the JS tokenizer.`);
}

/**
 * Texts llama.cpp (src/llama-vocab.cpp, "auto-detect special tokens by text") makes control tokens
 * whatever their type in the file: end-of-turn/-generation and fill-in-the-middle markers.
 */
const CONTROL_LOOKING = new Set([
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]',
  '<｜end▁of▁sentence｜>', '<end_of_utterance>', '<|eom_id|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '</s>', '<eos>',
  '<turn|>', '<|tool_response>', '[e~[',
  '<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>',
  '<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>',
  '<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>',
  '<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]', '<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<|file_sep|>',
]);
/** …and texts it always makes user-defined (gpt-oss's channel markers). */
const ALWAYS_USER_DEFINED = new Set(['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']);

/**
 * llama.cpp matches user-defined tokens (runs of spaces in MPT, chat markers) in the raw text before
 * BPE, even with special-token parsing off; control tokens only with it on, which counting never uses.
 */
function userDefinedTokens(tokens: string[], types: number[]): object[] {
  const added: object[] = [];
  tokens.forEach((content, id) => {
    const userDefined = (types[id] === TOKEN_TYPE.userDefined && !CONTROL_LOOKING.has(content)) || ALWAYS_USER_DEFINED.has(content);
    if (userDefined) added.push({ id, content, special: false, normalized: false, lstrip: false, rstrip: false, single_word: false });
  });
  return added;
}

function vocabMap(tokens: string[]): Record<string, number> {
  const vocab: Record<string, number> = Object.create(null);
  tokens.forEach((t, id) => { if (!(t in vocab)) vocab[t] = id; });
  return vocab;
}

function splitMerge(merge: string): [string, string] {
  const at = merge.indexOf(' ', 1);
  return [merge.slice(0, at), merge.slice(at + 1)];
}

/**
 * Splits text where every supported pre-tokenizer splits anyway: after a newline between two
 * characters other than whitespace. No token spans such a point, so counts add up exactly. Where to
 * cut depends only on the text around the point (a hash of the next line's start), not on offsets,
 * so after an edit the chunks realign at once and all but the edited ones come from the cache.
 */
export function countingChunks(text: string, minLength = 400, maxLength = 8000): string[] {
  const chunks: string[] = [];
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < text.length - 1; i = text.indexOf('\n', i + 1)) {
    const next = i + 1;
    // "x\ny" only: at the end of a text a whitespace run is one pre-token, in the middle GPT-2's
    // regex leaves its last character on its own, so a cut after "\n\n" would count differently.
    if (/\s/.test(text[next]) || i === 0 || /\s/.test(text[i - 1])) continue;
    const length = next - start;
    if (length < minLength) continue;
    if (length >= maxLength || lineHash(text, next) % 8 === 0) {
      chunks.push(text.slice(start, next));
      start = next;
    }
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

function lineHash(text: string, at: number): number {
  let h = 2166136261;
  for (let i = at; i < at + 24 && i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The parts of a @huggingface/tokenizers Tokenizer that counting reaches into (see pieceCounter). */
interface TokenizerInternals {
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: (Stage & { tokenizers?: Stage[] }) | null;
  model: ((tokens: string[]) => string[]) & { fuse_unk?: boolean; byte_fallback?: boolean };
  added_tokens?: Array<{ content: string; lstrip?: boolean; rstrip?: boolean }>;
  added_tokens_map?: Map<string, unknown>;
  splitter_unnormalized?: { split(text: string): string[] };
  splitter_normalized?: { split(text: string): string[] };
  remove_space?: boolean;
  do_lowercase_and_remove_accent?: boolean;
}
interface Stage { pre_tokenize_text(text: string): string[]; pattern?: unknown; byte_encoder?: unknown; use_regex?: boolean; add_prefix_space?: boolean; config?: { type?: string; behavior?: string; invert?: boolean } }

/** One pre-tokenizer stage as a function that hands each piece it makes to the next stage. */
type Splitter = (text: string, emit: (piece: string) => void) => void;

/**
 * A stage as a Splitter. Split stages that isolate their matches, and BERT's (whose pieces are the
 * matches of its pattern: they never hold the whitespace its trim() removes), run on a regex of our
 * own with exec(): the library splits with String.matchAll, which clones the regex on every call and
 * builds arrays of pieces, and that dominated counting with several stages over many small pieces.
 * The pieces are the same (see isolate); the tokenizer tests hold the counts to llama.cpp's.
 */
function splitterOf(stage: Stage): Splitter {
  const c = stage.config;
  const p = stage.pattern;
  if (p instanceof RegExp && p.global) {
    const regex = new RegExp(p.source, p.flags);
    if (c?.type === 'Split' && !c.invert && c.behavior?.toLowerCase() !== 'removed') return (text, emit) => isolate(text, regex, emit);
    if (c?.type === 'BertPreTokenizer') {
      return (text, emit) => {
        regex.lastIndex = 0;
        for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
          if (m[0].length > 0) emit(m[0]);
          else regex.lastIndex = advance(text, m.index, regex);
        }
      };
    }
  }
  return (text, emit) => { for (const piece of stage.pre_tokenize_text(text)) emit(piece); };
}

/** Where matchAll goes on after an empty match. */
const advance = (text: string, at: number, regex: RegExp) => at + (regex.unicode && (text.codePointAt(at) ?? 0) > 0xffff ? 2 : 1);

/** The library's regex_split: each match and the text between matches, empty pieces dropped. */
function isolate(text: string, regex: RegExp, emit: (piece: string) => void): void {
  let prev = 0;
  regex.lastIndex = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    const match = m[0];
    if (prev < m.index) emit(text.slice(prev, m.index));
    if (match.length > 0) emit(match);
    else regex.lastIndex = advance(text, m.index, regex);
    prev = m.index + match.length;
  }
  if (prev < text.length) emit(text.slice(prev));
}

/**
 * Counting without the encoder's per-call work: the text goes through the steps of encode() (added
 * tokens split out, the normalizer, each pre-tokenizer stage), and the count of each distinct
 * pre-token (BPE over its bytes, or WordPiece) is remembered, so a word seen before costs one map
 * lookup. Both models work on each pre-token alone, so the sum is exactly encode(text).length; the
 * tokenizer tests hold it to llama.cpp's counts. Returns undefined for pipelines it does not know (a
 * byte-level stage that splits by itself, unknown pieces that fuse), which then count with encode().
 */
function pieceCounter(tokenizer: Tokenizer): ((text: string) => number) | undefined {
  const t = tokenizer as unknown as TokenizerInternals;
  if (t.remove_space || t.do_lowercase_and_remove_accent || typeof t.model !== 'function') return undefined;
  if (t.model.fuse_unk && !t.model.byte_fallback) return undefined; // unknown pieces would fuse across pre-tokens
  const stages = t.pre_tokenizer ? (t.pre_tokenizer.tokenizers ?? [t.pre_tokenizer]) : [];
  const last = stages.at(-1);
  const byteLevel = last?.byte_encoder && last.use_regex === false && !last.add_prefix_space ? last : undefined;
  // Every other stage runs over the whole text, as in encode(); only the byte mapping is per piece.
  const splits = byteLevel ? stages.slice(0, -1) : stages;
  if (!splits.every((stage) => typeof stage.pre_tokenize_text === 'function' && !stage.byte_encoder)) return undefined;
  // Added tokens (chat markers, MPT's space runs, DeepSeek's single characters) split the text
  // first, with the library's own splitters, as encode() does; stripping around them is not mirrored.
  const addedMap = t.added_tokens_map ?? new Map<string, unknown>();
  const raw = t.splitter_unnormalized;
  const normalized = t.splitter_normalized;
  if (addedMap.size && (!raw || !normalized || t.added_tokens?.some((a) => a.lstrip || a.rstrip))) return undefined;
  const counts = new Map<string, number>();
  const pieceCount = (piece: string): number => {
    let n = counts.get(piece);
    if (n === undefined) {
      n = t.model(byteLevel ? byteLevel.pre_tokenize_text(piece) : [piece]).length;
      if (counts.size >= 500_000) counts.clear();
      counts.set(piece, n);
    }
    return n;
  };
  const normalize = t.normalizer;
  // The stages chained: each piece goes through the next stage, and the last adds up the counts.
  let total = 0;
  let chain = (piece: string) => { if (piece) total += pieceCount(piece); };
  for (const stage of [...splits].reverse()) {
    const split = splitterOf(stage);
    const next = chain;
    chain = (piece) => split(piece, next);
  }
  const countSection = (section: string): number => {
    total = 0;
    chain(section);
    return total;
  };
  return (text) => {
    if (!addedMap.size) return countSection(normalize ? normalize(text) : text);
    let sum = 0;
    for (const section of raw!.split(text)) {
      if (!section) continue;
      if (addedMap.has(section)) { sum++; continue; }
      const norm = normalize ? normalize(section) : section;
      for (const sub of norm ? normalized!.split(norm) : []) {
        if (sub) sum += addedMap.has(sub) ? 1 : countSection(sub);
      }
    }
    return sum;
  };
}

/** Lone surrogates become U+FFFD, as in the UTF-8 that llama.cpp is given. */
function wellFormed(text: string): string {
  const s = text as string & { isWellFormed?(): boolean; toWellFormed?(): string };
  if (s.isWellFormed && s.toWellFormed) return s.isWellFormed() ? text : s.toWellFormed();
  return /[\uD800-\uDFFF]/.test(text) ? text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD') : text;
}

/** The counting functions of a tokenizer: for a whole text, and for text that continues a document. */
interface Counting { encode(text: string): number[]; countWhole(text: string): number; countRest?: (text: string) => number }

function counting(tokenizer: Tokenizer, chunkable: Tokenizer | undefined): Counting {
  const counter = (t: Tokenizer) => pieceCounter(t) ?? ((text: string) => t.encode(text, { add_special_tokens: false }).ids.length);
  return {
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
    countWhole: counter(tokenizer),
    countRest: chunkable ? counter(chunkable) : undefined,
  };
}

function wrap(source: JsTokenizer['source'], kind: JsTokenizer['kind'], { encode, countWhole, countRest }: Counting): JsTokenizer {
  const cache = new Map<string, number>();
  const cached = (chunk: string, first: boolean): number => {
    const key = (first ? '1' : '0') + chunk;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const n = first ? countWhole(chunk) : countRest!(chunk);
    if (cache.size >= 50_000) cache.delete(cache.keys().next().value!);
    cache.set(key, n);
    return n;
  };
  return {
    engine: 'js', source, kind,
    encode: (text) => (text ? encode(wellFormed(text)) : []),
    count: (text) => {
      if (!text) return 0;
      text = wellFormed(text);
      if (!countRest || text.length < 4000) return countWhole(text);
      return countingChunks(text).reduce((sum, chunk, i) => sum + cached(chunk, i === 0), 0);
    },
  };
}

/** A tokenizer for text that continues a document: SentencePiece's leading "▁" belongs to the start of the text only. */
function continuationTokenizer(json: Record<string, unknown>, config: object): Tokenizer | undefined {
  const normalizer = json.normalizer as { type?: string; normalizers?: Array<{ type: string }> } | null;
  if (normalizer?.type !== 'Sequence' || normalizer.normalizers?.[0]?.type !== 'Prepend') return new Tokenizer(json, config);
  return new Tokenizer({ ...json, normalizer: { ...normalizer, normalizers: normalizer.normalizers.slice(1) } }, config);
}

/**
 * The JS tokenizer for a model file: tokenizer.json beside it when present, else rebuilt from the
 * GGUF header (read in plain JS, no native code, no weights). Throws UnsupportedTokenizerError for
 * tokenizers it cannot reproduce exactly; callers then fall back to llama.cpp.
 */
export async function loadJsTokenizer(modelPath: string): Promise<JsTokenizer> {
  const beside = path.join(path.dirname(modelPath), 'tokenizer.json');
  if (fs.existsSync(beside)) {
    const json = JSON.parse(await fs.promises.readFile(beside, 'utf8'));
    const configFile = path.join(path.dirname(modelPath), 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? JSON.parse(await fs.promises.readFile(configFile, 'utf8')) : {};
    // A tokenizer.json may do anything (normalizers that look across lines): count it whole.
    return wrap('tokenizer.json', 'tokenizer.json', counting(new Tokenizer(json, config), undefined));
  }
  const { info } = await readGgufInfo(modelPath, { readTensorInfo: false });
  const metadata = ((info.metadata as unknown as { tokenizer?: { ggml?: Metadata } }).tokenizer?.ggml ?? {}) as Metadata;
  const { json, config } = tokenizerFromGgufMetadata(metadata);
  const tokenizer = new Tokenizer(json, config);
  if (metadata.model === 'bert') {
    const lowercase = metadata.normalizer?.lowercase ?? true;
    const options: WordPieceOptions = { lowercase, stripAccents: metadata.normalizer?.strip_accents ?? lowercase };
    const model = (tokenizer as unknown as { model: WordPieceModel }).model;
    const count = wordPieceCounter(model, options);
    return wrap('gguf', 'wordpiece', { encode: (text) => wordPieceEncode(model, options, text), countWhole: count, countRest: count });
  }
  const kind = metadata.model === 'llama' ? 'spm' : 'bpe';
  return wrap('gguf', kind, counting(tokenizer, continuationTokenizer(json as Record<string, unknown>, config)));
}
