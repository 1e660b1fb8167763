/**
 * BERT's WordPiece as llama.cpp runs it (src/llama-vocab.cpp, llm_tokenizer_wpm_session), which is
 * not the Hugging Face pipeline: it splits words on Unicode White_Space before dropping controls
 * (so \v, \f and U+0085 separate words), treats CJK outside the BMP as CJK, has no word-length
 * limit, reads text through a one-to-one NFD table, and lowercases code point by code point. The
 * words it makes go to the library's WordPiece model, which finds the same longest pieces.
 */

export interface WordPieceOptions {
  /** tokenizer.ggml.normalizer.lowercase (llama.cpp's default: true). */
  readonly lowercase: boolean;
  /** tokenizer.ggml.normalizer.strip_accents (default: as lowercase): NFD heads only, marks dropped. */
  readonly stripAccents: boolean;
}

/** Unicode White_Space, as llama.cpp lists it (src/unicode-data.cpp, unicode_set_whitespace). */
const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
  0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** The same set as a regex: the words of a text, which llama.cpp's preprocessing never joins. */
export const WORDPIECE_WORD = /[^\t\n\v\f\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+/g;

const enum Kind { Space = 1, Drop = 2, Alone = 3, Append = 4 }

/** llama.cpp's is_chinese_char (with its 0x2B920 quirk, which follows Hugging Face's Rust code). */
function isChinese(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df)
    || (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf)
    || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

const kinds = new Map<number, Kind>();
const nfdHeads = new Map<number, number>();
const lowered = new Map<number, string>();

function kindOf(cp: number, stripAccents: boolean): Kind {
  const key = stripAccents ? -cp - 1 : cp;
  let kind = kinds.get(key);
  if (kind === undefined) {
    const ch = String.fromCodePoint(cp);
    // llama.cpp's "control" is \p{C} less unassigned code points, which its tables mark undefined.
    if (WHITESPACE.has(cp)) kind = Kind.Space;
    else if (cp === 0 || cp === 0xfffd || /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u.test(ch) || (stripAccents && /\p{M}/u.test(ch))) kind = Kind.Drop;
    else if (/\p{P}/u.test(ch) || (cp < 0x7f && /\p{S}/u.test(ch)) || isChinese(cp)) kind = Kind.Alone;
    else kind = Kind.Append;
    kinds.set(key, kind);
  }
  return kind;
}

/** The first code point of the canonical decomposition: llama.cpp's one-to-one NFD table. */
function nfdHead(cp: number): number {
  if (cp < 0xc0) return cp;
  let head = nfdHeads.get(cp);
  if (head === undefined) {
    head = String.fromCodePoint(cp).normalize('NFD').codePointAt(0)!;
    nfdHeads.set(cp, head);
  }
  return head;
}

/** Simple (one-to-one) lowercase, as llama.cpp's table: U+0130 becomes "i", not "i̇". */
function lower(cp: number): string {
  if (cp < 0x80) return String.fromCharCode(cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp);
  let s = lowered.get(cp);
  if (s === undefined) {
    s = String.fromCodePoint(String.fromCodePoint(cp).toLowerCase().codePointAt(0)!);
    lowered.set(cp, s);
  }
  return s;
}

/** The words llama.cpp's WordPiece preprocessing makes of a text. */
export function wordPieceWords(text: string, options: WordPieceOptions): string[] {
  const words: string[] = [];
  let word = '';
  for (const ch of text) {
    let cp = ch.codePointAt(0)!;
    if (options.stripAccents) cp = nfdHead(cp);
    const kind = kindOf(cp, options.stripAccents);
    if (kind === Kind.Space) {
      if (word) { words.push(word); word = ''; }
      continue;
    }
    if (kind === Kind.Drop) continue;
    const s = options.lowercase ? lower(cp) : String.fromCodePoint(cp);
    if (kind === Kind.Alone) {
      if (word) { words.push(word); word = ''; }
      words.push(s);
    } else {
      word += s;
    }
  }
  if (word) words.push(word);
  return words;
}

/** A WordPiece model: words in, pieces out (the library's WordPieceTokenizer). */
export type WordPieceModel = ((words: string[]) => string[]) & { tokens_to_ids: Map<string, number>; unk_token_id?: number };

/** Token ids of a text. */
export function wordPieceEncode(model: WordPieceModel, options: WordPieceOptions, text: string): number[] {
  return model(wordPieceWords(text, options)).map((piece) => model.tokens_to_ids.get(piece) ?? model.unk_token_id ?? 0);
}

/**
 * Counts by whitespace-separated word, each counted once and remembered (a word's count does not
 * depend on its neighbours), and each of llama.cpp's words once within them.
 */
export function wordPieceCounter(model: WordPieceModel, options: WordPieceOptions): (text: string) => number {
  const rawWords = new Map<string, number>();
  const words = new Map<string, number>();
  const regex = new RegExp(WORDPIECE_WORD.source, 'g');
  const countRaw = (raw: string): number => {
    let n = 0;
    for (const word of wordPieceWords(raw, options)) {
      let c = words.get(word);
      if (c === undefined) {
        c = model([word]).length;
        if (words.size >= 500_000) words.clear();
        words.set(word, c);
      }
      n += c;
    }
    return n;
  };
  return (text) => {
    let sum = 0;
    regex.lastIndex = 0;
    for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
      const raw = m[0];
      let n = rawWords.get(raw);
      if (n === undefined) {
        n = countRaw(raw);
        if (rawWords.size >= 500_000) rawWords.clear();
        rawWords.set(raw, n);
      }
      sum += n;
    }
    return sum;
  };
}
