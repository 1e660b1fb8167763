import fs from 'node:fs/promises';
import path from 'node:path';
import type { GgufFileInfo } from 'node-llama-cpp' with { 'resolution-mode': 'import' };
import { ModelFileError, errorMessage, type ModelFileProblem } from '../errors';
import { importNodeLlamaCpp, withLeanGgufParse } from '../engine/llama';

/**
 * The one door to a GGUF file. Native code (node-llama-cpp's GGUF parser and llama.cpp) trusts the
 * lengths and counts a file declares: a metadata string that claims 2.8 GB makes Node abort the whole
 * process on an fs.read past int32. So every file is first walked here, in JS, with every length and
 * count bounded by the bytes that remain; only a file that passes reaches anything else.
 */

/** What the walk learned: enough for the early checks, and where the tensor data starts. */
export interface GgufLayout {
  sizeBytes: number;
  version: number;
  tensorCount: number;
  kvCount: number;
  /** Offset of the first byte after the tensor infos. */
  infoEndOffset: number;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const HEADER_BYTES = 24; // magic u32, version u32, tensor count u64, kv count u64
/** No real metadata string comes near this (chat templates are kilobytes); past it a length is damage, not data. */
const MAX_STRING_BYTES = 64 * 1024 * 1024;
const MAX_ARRAY_DEPTH = 4;
const MAX_TENSOR_DIMS = 4; // GGML_MAX_DIMS
const MAX_GGML_TYPE = 63;
/** Byte sizes of GGUF's fixed-size value types (8 string and 9 array are walked). */
const FIXED: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;
const WINDOW = 4 * 1024 * 1024;
/** Array elements walked between two turns of the event loop (1–3 ms of work on the window's fast path). */
const YIELD_EVERY = 4096;

class Damaged extends Error {
  constructor(readonly problem: ModelFileProblem, message: string) { super(message); }
}

/** Reads a file forward through a window, never asking for more than the file holds. */
class BoundedCursor {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  offset = 0;

  constructor(private readonly handle: fs.FileHandle, readonly size: number) {}

  get remaining(): number { return this.size - this.offset; }

  private async ensure(bytes: number, what: string): Promise<void> {
    if (bytes > this.remaining) throw new Damaged('truncated', `the file ends inside ${what}`);
    const end = this.offset + bytes;
    if (this.offset >= this.windowStart && end <= this.windowStart + this.window.length) return;
    const length = Math.min(Math.max(bytes, WINDOW), this.remaining);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, this.offset);
    if (bytesRead < bytes) throw new Damaged('truncated', `the file ends inside ${what}`);
    this.window = buffer.subarray(0, bytesRead);
    this.windowStart = this.offset;
  }

  private at(): number { return this.offset - this.windowStart; }

  async u32(what: string): Promise<number> {
    await this.ensure(4, what);
    const v = this.window.readUInt32LE(this.at());
    this.offset += 4;
    return v;
  }

  async u64(what: string): Promise<bigint> {
    await this.ensure(8, what);
    const v = this.window.readBigUInt64LE(this.at());
    this.offset += 8;
    return v;
  }

  /** A count or length that must fit in what is left of the file at `minBytesEach` bytes apiece. */
  async count(what: string, minBytesEach: number): Promise<number> {
    const n = await this.u64(what);
    if (n * BigInt(Math.max(1, minBytesEach)) > BigInt(this.remaining)) {
      throw new Damaged('corrupt', `${what} claims ${n}, more than the ${this.remaining} bytes left in the file can hold`);
    }
    return Number(n);
  }

  async skip(bytes: number, what: string): Promise<void> {
    if (bytes > this.remaining) throw new Damaged('truncated', `the file ends inside ${what}`);
    this.offset += bytes;
  }

  /**
   * Skips a string whose length is already in the window, without a promise: a vocabulary is 150K
   * strings, and four awaits apiece held the event loop ~100 ms per slice. False when the length
   * must be read into the window first (`string` does that).
   */
  skipStringInWindow(what: string): boolean {
    if (this.offset < this.windowStart || this.offset + 8 > this.windowStart + this.window.length || this.remaining < 8) return false;
    const length = this.window.readBigUInt64LE(this.at());
    if (length > BigInt(this.remaining - 8)) {
      throw new Damaged('corrupt', `the length of ${what} claims ${length}, more than the ${this.remaining - 8} bytes left in the file can hold`);
    }
    if (length > MAX_STRING_BYTES) throw new Damaged('corrupt', `${what} claims ${length} bytes, far more than any real model holds`);
    this.offset += 8 + Number(length);
    return true;
  }

  async string(what: string): Promise<void> {
    if (this.skipStringInWindow(what)) return;
    await this.ensure(8, `the length of ${what}`);
    this.skipStringInWindow(what);
  }

  async keyName(index: number): Promise<string> {
    const what = `metadata key ${index}`;
    const length = await this.count(`the length of ${what}`, 1);
    if (length > 65_535) throw new Damaged('corrupt', `${what} claims a ${length}-byte name`);
    await this.ensure(length, what);
    const name = this.window.toString('utf8', this.at(), this.at() + length);
    this.offset += length;
    return name;
  }
}

async function walkValue(cursor: BoundedCursor, type: number, key: string, depth: number): Promise<void> {
  const fixed = FIXED[type];
  if (fixed !== undefined) return cursor.skip(fixed, `the value of ${key}`);
  if (type === STRING) return cursor.string(`the value of ${key}`);
  if (type !== ARRAY) throw new Damaged('corrupt', `${key} has an unknown value type ${type}`);
  if (depth >= MAX_ARRAY_DEPTH) throw new Damaged('corrupt', `${key} nests arrays more than ${MAX_ARRAY_DEPTH} deep`);
  const elementType = await cursor.u32(`the element type of ${key}`);
  const elementBytes = FIXED[elementType];
  const n = await cursor.count(`the array ${key}`, elementBytes ?? 8);
  if (elementBytes !== undefined) return cursor.skip(n * elementBytes, `the array ${key}`);
  const what = `the value of ${key}`;
  for (let i = 0; i < n; i++) {
    if (elementType !== STRING || !cursor.skipStringInWindow(what)) await walkValue(cursor, elementType, key, depth + 1);
    // A vocabulary is 150K strings: let the event loop run between slices of it.
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Walks the whole header of a GGUF file (metadata and tensor infos) with every length and count
 * bounded by the file. Throws a ModelFileError with a sentence a user understands.
 */
export async function checkGgufLayout(filePath: string): Promise<GgufLayout> {
  const shown = path.basename(filePath) || filePath;
  const fail = (problem: ModelFileProblem, message: string, cause?: unknown): never => {
    throw new ModelFileError(problem, filePath, message, cause === undefined ? undefined : { cause });
  };
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

  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, 'r');
  } catch (err) {
    return fail('unreadable', `Cannot read ${filePath}: ${errorMessage(err)}`, err);
  }
  try {
    const head = Buffer.alloc(Math.min(HEADER_BYTES, size));
    await handle.read(head, 0, head.length, 0);
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
    const cursor = new BoundedCursor(handle, size);
    cursor.offset = 8;
    let tensorCount = 0;
    let kvCount = 0;
    try {
      // A tensor info takes at least 8+1 (name) + 4 (dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes; a KV entry 8+1+4+1.
      tensorCount = await cursor.count('the tensor count', 33);
      kvCount = await cursor.count('the metadata count', 14);
    } catch (err) {
      if (!(err instanceof Damaged)) throw err;
      fail('corrupt', `${shown} has a damaged GGUF header: it claims ${head.readBigUInt64LE(8)} tensors and ${head.readBigUInt64LE(16)} metadata entries, more than a ${size}-byte file can hold.`);
    }
    try {
      for (let i = 0; i < kvCount; i++) {
        const key = await cursor.keyName(i);
        const type = await cursor.u32(`the type of ${key}`);
        await walkValue(cursor, type, key, 0);
      }
      for (let i = 0; i < tensorCount; i++) {
        await cursor.string(`the name of tensor ${i}`);
        const dims = await cursor.u32(`the dimensions of tensor ${i}`);
        if (dims < 1 || dims > MAX_TENSOR_DIMS) throw new Damaged('corrupt', `tensor ${i} claims ${dims} dimensions`);
        let elements = 1n;
        for (let d = 0; d < dims; d++) {
          const extent = await cursor.u64(`the shape of tensor ${i}`);
          if (extent === 0n) throw new Damaged('corrupt', `tensor ${i} has an empty dimension`);
          elements *= extent;
        }
        // Whether the data fits the file is checkModelFile's question (after the memory check); here only impossible shapes.
        if (elements > BigInt(Number.MAX_SAFE_INTEGER)) throw new Damaged('corrupt', `tensor ${i} claims ${elements} elements`);
        const type = await cursor.u32(`the type of tensor ${i}`);
        if (type > MAX_GGML_TYPE) throw new Damaged('corrupt', `tensor ${i} has an unknown type ${type}`);
        await cursor.skip(8, `the offset of tensor ${i}`);
      }
    } catch (err) {
      if (!(err instanceof Damaged)) throw err;
      fail(err.problem, err.problem === 'truncated'
        ? `${shown} is truncated: ${err.message}. Download it again.`
        : `${shown} has a damaged GGUF header: ${err.message}.`);
    }
    return { sizeBytes: size, version, tensorCount, kvCount, infoEndOffset: cursor.offset };
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    return fail('unreadable', `Cannot read ${filePath}: ${errorMessage(err)}`, err);
  } finally {
    await handle.close();
  }
}

/**
 * node-llama-cpp's parse of a GGUF header, for a file that passed `checkGgufLayout` first. Every
 * caller that wants metadata (the model check, the JS tokenizer, the worker, the bench) reads here.
 */
export async function readGgufInfo(filePath: string, options: { readTensorInfo?: boolean; lean?: boolean } = {}): Promise<{ layout: GgufLayout; info: GgufFileInfo }> {
  const layout = await checkGgufLayout(filePath);
  const { readGgufFileInfo } = await importNodeLlamaCpp();
  try {
    const read = () => readGgufFileInfo(filePath, { sourceType: 'filesystem', logWarnings: false, ignoreKeys: [], readTensorInfo: options.readTensorInfo ?? true });
    // lean: arrays of ≥ 4096 elements (a vocabulary's tokens, merges, types) come back as their length only.
    const info = options.lean ? await withLeanGgufParse(read) : await read();
    return { layout, info };
  } catch (err) {
    const shown = path.basename(filePath);
    const endOfFile = err instanceof RangeError || /out of range|end of (the )?file|beyond|EOF/i.test(errorMessage(err));
    throw new ModelFileError(endOfFile ? 'truncated' : 'corrupt', filePath, endOfFile
      ? `${shown} is truncated: its GGUF header ends before the file does. Download it again.`
      : `${shown} has a damaged GGUF header (${errorMessage(err)}).`, { cause: err });
  }
}
