/** Every failure a user can meet has a named class and a sentence they understand. */
export class NanochatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export type ModelFileProblem =
  | 'missing'            // no file at the path
  | 'not-a-file'         // a directory or something else
  | 'unreadable'         // permissions, I/O error
  | 'empty'
  | 'not-gguf'           // wrong magic
  | 'unsupported-version'
  | 'corrupt'            // header does not parse or has impossible values
  | 'truncated'          // header or tensor data ends before the file does
  | 'no-weights'         // a vocabulary-only GGUF
  | 'unsupported-architecture'
  | 'too-large';         // more than the machine's free memory

export class ModelFileError extends NanochatError {
  constructor(readonly problem: ModelFileProblem, readonly path: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class ModelLoadError extends NanochatError {
  constructor(readonly path: string, message: string, options?: { cause?: unknown }) { super(message, options); }
}

export class NoModelError extends NanochatError {
  constructor() { super('No model is selected. Download a model or choose a local GGUF file.'); }
}

export class MessageTooLongError extends NanochatError {
  constructor(readonly length: number, readonly limit: number) {
    super(`The message is ${length.toLocaleString('en-US')} characters long; the limit is ${limit.toLocaleString('en-US')} (setting nanochat.maxMessageLength).`);
  }
}

export class PromptTooLongError extends NanochatError {
  /** `tools`: how many tool schemas the prompt carries (they are counted too). */
  constructor(readonly tokens: number, readonly budget: number, readonly tools = 0, readonly wholeRequest = false) {
    super(tools > 0
      ? `The prompt needs ${tokens} tokens with the schemas of ${tools} tool${tools === 1 ? '' : 's'}, but only ${budget} fit in the context window (the rest is kept for the reply). Offer fewer tools or raise nanochat.contextSize.`
      : wholeRequest
        ? `The request needs ${tokens} tokens (system prompt and every message included), but only ${budget} fit in the context window (the rest is kept for the reply). Send less, or raise nanochat.contextSize.`
        : `The message alone needs ${tokens} tokens but only ${budget} fit in the context window. Shorten it or raise nanochat.contextSize.`);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
