/**
 * Fill-in-the-middle prompts, laid out as code models are trained (Qwen2.5-Coder's repository format;
 * StarCoder's is the same with other token names):
 *
 *   <|repo_name|>repo\n<|file_sep|>other.py\n…\n<|file_sep|>current.py\n<|fim_prefix|>before<|fim_suffix|>after<|fim_middle|>
 *
 * The order is chosen for the KV cache too: other files first (stable while the user types), then the
 * text before the cursor (it grows at its end), so each keystroke re-evaluates only from the edit on.
 */
import type { Token } from 'node-llama-cpp' with { 'resolution-mode': 'import' };

export type { Token };

export interface FimTokens {
  prefix: Token;
  suffix: Token;
  middle: Token;
  /** Repository-level context (Qwen2.5-Coder, StarCoder): without them, only the current file is sent. */
  repoName?: Token;
  fileSeparator?: Token;
}

export interface ContextFile { path: string; text: string }

export interface CompletionRequest {
  /** The document's text before the cursor (the builder keeps what fits, from the end). */
  prefix: string;
  /** The document's text after the cursor (the builder keeps what fits, from the start). */
  suffix: string;
  /** The document's workspace-relative path (shown to the model as its file name). */
  path: string;
  /** The workspace's name. */
  repo?: string;
  /** Other files (recently edited, open), most relevant first, each already cut to a window around what matters. */
  extra?: readonly ContextFile[];
}

export interface FimBudget { prefixTokens: number; suffixTokens: number; extraTokens: number }

export interface FimPrompt {
  tokens: Token[];
  /** How many characters of the request's prefix and suffix made it in, and which extra files. */
  prefixChars: number;
  suffixChars: number;
  extraFiles: string[];
}

type Tokenize = (text: string) => Token[];

/**
 * The end of `text` that fits in `budget` tokens. Lines are dropped from the start in steps of
 * `step` lines, so the window's start stays put while the user types at its end (the KV cache of the
 * prompt holds) and moves only when the budget is exceeded; a single over-long line is cut by characters.
 */
export function tailWithin(text: string, budget: number, tokenize: Tokenize, step = 16): string {
  if (budget <= 0 || !text) return '';
  const lines = text.split('\n');
  let first = 0;
  // Skip what certainly does not fit (a token holds at most ~8 characters) without tokenizing it.
  const chars = (from: number) => lines.slice(from).join('\n').length;
  while (first + step < lines.length && chars(first + step) > budget * 8) first += step;
  while (first < lines.length - 1 && tokenize(lines.slice(first).join('\n')).length > budget) first = Math.min(lines.length - 1, first + step);
  let window = lines.slice(first).join('\n');
  while (window && tokenize(window).length > budget) window = window.slice(Math.ceil(window.length / 4));
  return window;
}

/** The start of `text` that fits in `budget` tokens, cut at a line end where it can be. */
export function headWithin(text: string, budget: number, tokenize: Tokenize): string {
  if (budget <= 0 || !text) return '';
  let window = text.slice(0, budget * 8);
  if (window.length < text.length && window.lastIndexOf('\n') > 0) window = window.slice(0, window.lastIndexOf('\n') + 1);
  while (window && tokenize(window).length > budget) {
    const cut = window.lastIndexOf('\n', window.length - 2);
    window = cut > 0 ? window.slice(0, cut + 1) : window.slice(0, Math.floor(window.length * 3 / 4));
  }
  return window;
}

export function buildFimPrompt(request: CompletionRequest, fim: FimTokens, budget: FimBudget, tokenize: Tokenize): FimPrompt {
  const tokens: Token[] = [];
  const extraFiles: string[] = [];
  const repoLevel = fim.fileSeparator !== undefined;
  if (repoLevel) {
    if (fim.repoName !== undefined && request.repo) tokens.push(fim.repoName, ...tokenize(`${request.repo}\n`));
    let left = budget.extraTokens;
    for (const file of request.extra ?? []) {
      if (file.path === request.path || !file.text.trim()) continue;
      const body = tokenize(`${file.path}\n${file.text.endsWith('\n') ? file.text : `${file.text}\n`}`);
      if (body.length + 1 > left) continue;
      tokens.push(fim.fileSeparator!, ...body);
      extraFiles.push(file.path);
      left -= body.length + 1;
    }
    tokens.push(fim.fileSeparator!, ...tokenize(`${request.path}\n`));
  }
  const prefix = tailWithin(request.prefix, budget.prefixTokens, tokenize);
  const suffix = headWithin(request.suffix, budget.suffixTokens, tokenize);
  tokens.push(fim.prefix, ...tokenize(prefix), fim.suffix, ...tokenize(suffix), fim.middle);
  return { tokens, prefixChars: prefix.length, suffixChars: suffix.length, extraFiles };
}

/**
 * Where a suggestion should end. On a line with text after the cursor, at the end of the line; on an
 * empty line, at the end of the block it starts (a blank line, or a line indented less than the
 * cursor's), within `maxLines`. Text that only repeats what follows the cursor is dropped.
 */
export function trimSuggestion(raw: string, context: { linePrefix: string; suffix: string; maxLines?: number }): string {
  const restOfLine = context.suffix.split('\n', 1)[0];
  let text = raw.replace(/\r/g, '');
  if (restOfLine.trim()) {
    text = text.split('\n', 1)[0];
    // Never type again what is already right of the cursor.
    const rest = restOfLine.trimEnd();
    if (rest && text.endsWith(rest)) text = text.slice(0, -rest.length);
    return text.trimEnd();
  }
  const indent = (line: string) => line.length - line.trimStart().length;
  const cursorIndent = indent(`${context.linePrefix}x`);
  const lines = text.split('\n');
  const kept: string[] = [lines[0]];
  for (const line of lines.slice(1)) {
    if (!line.trim()) break;
    if (indent(line) < cursorIndent) break;
    if (kept.length >= (context.maxLines ?? 8)) break;
    kept.push(line);
  }
  // Lines that only repeat what follows the cursor are not new.
  const following = new Set(context.suffix.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim()));
  while (kept.length > 1 && following.has(kept.at(-1)!.trimEnd())) kept.pop();
  return kept.join('\n').trimEnd();
}

/**
 * Whether generation can stop early: the text already holds a whole suggestion (see trimSuggestion),
 * so the tokens after it would be thrown away.
 */
export function suggestionComplete(text: string, context: { linePrefix: string; suffix: string; maxLines?: number }): boolean {
  const singleLine = !!context.suffix.split('\n', 1)[0].trim();
  if (singleLine) return text.includes('\n');
  const lines = text.split('\n');
  if (lines.length > (context.maxLines ?? 8) + 1) return true;
  return lines.slice(1, -1).some((l) => !l.trim());
}
