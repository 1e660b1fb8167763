import fs from 'node:fs';
import path from 'node:path';
import type { ModelFileProblem } from '../../src/core/errors';

export interface BadFile { name: string; file: string; expect: ModelFileProblem[] }

/** Writes every kind of broken model file we know of, generated from a real GGUF. */
export function writeBadFiles(dir: string, good: string): BadFile[] {
  const bytes = fs.readFileSync(good);
  const out: BadFile[] = [];
  const add = (name: string, data: Buffer | null, expect: ModelFileProblem[]) => {
    const file = path.join(dir, name);
    if (data) fs.writeFileSync(file, data);
    out.push({ name, file, expect });
  };
  const patched = (offset: number, write: (b: Buffer) => void) => { const b = Buffer.from(bytes); write(b.subarray(offset)); return b; };
  // The architecture string "llama" follows the key "general.architecture" in the metadata.
  const archAt = bytes.indexOf(Buffer.from('general.architecture')) + 'general.architecture'.length + 4 + 8;

  // Length fields that overflow int32 (Node aborts on an fs.read that long) or exceed the file: the
  // walk must refuse them before node-llama-cpp's parser sees the file.
  const valueLengthAt = archAt - 8;
  const tokensKey = Buffer.from('tokenizer.ggml.tokens');
  const tokensCountAt = bytes.indexOf(tokensKey) + tokensKey.length + 4 + 4;
  const tensorName = Buffer.from('token_embd.weight');
  const tensorNameAt = bytes.indexOf(tensorName, tokensCountAt);
  add('string-length-past-int32.gguf', patched(valueLengthAt, (b) => b.writeBigUInt64LE(2_800_000_000n)), ['corrupt']);
  add('string-length-past-file.gguf', patched(valueLengthAt, (b) => b.writeBigUInt64LE(BigInt(bytes.length))), ['corrupt']);
  add('string-length-2-64.gguf', patched(valueLengthAt, (b) => b.writeBigUInt64LE(0xffffffffffffffffn)), ['corrupt']);
  add('key-length-past-int32.gguf', patched(24, (b) => b.writeBigUInt64LE(0x90000000n)), ['corrupt']);
  add('array-count-past-int32.gguf', patched(tokensCountAt, (b) => b.writeBigUInt64LE(0x90000000n)), ['corrupt']);
  add('array-count-past-file.gguf', patched(tokensCountAt, (b) => b.writeBigUInt64LE(BigInt(bytes.length))), ['corrupt']);
  add('tensor-name-length-past-int32.gguf', patched(tensorNameAt - 8, (b) => b.writeBigUInt64LE(0xa0000000n)), ['corrupt']);
  add('tensor-dimensions-99.gguf', patched(tensorNameAt + tensorName.length, (b) => b.writeUInt32LE(99)), ['corrupt']);
  add('tensor-shape-huge.gguf', patched(tensorNameAt + tensorName.length + 4, (b) => b.writeBigUInt64LE(1n << 62n)), ['corrupt']);
  add('missing.gguf', null, ['missing']);
  add('empty.gguf', Buffer.alloc(0), ['empty']);
  add('random.gguf', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)), ['not-gguf']);
  add('wrong-magic.gguf', patched(0, (b) => b.write('GGML', 'latin1')), ['not-gguf']);
  add('html-page.gguf', Buffer.from('<!doctype html><html><body>Repository not found</body></html>'), ['not-gguf']);
  add('version-1.gguf', patched(4, (b) => b.writeUInt32LE(1)), ['unsupported-version']);
  add('version-99.gguf', patched(4, (b) => b.writeUInt32LE(99)), ['corrupt']);
  add('huge-tensor-count.gguf', patched(8, (b) => b.writeBigUInt64LE(1n << 60n)), ['corrupt']);
  add('huge-kv-count.gguf', patched(16, (b) => b.writeBigUInt64LE(0xffffffffffffn)), ['corrupt']);
  add('huge-string-length.gguf', patched(24, (b) => b.writeBigUInt64LE(1n << 40n)), ['corrupt', 'truncated']);
  add('bad-value-type.gguf', patched(24 + 8 + Number(bytes.readBigUInt64LE(24)), (b) => b.writeUInt32LE(77)), ['corrupt', 'truncated']);
  add('unknown-architecture.gguf', patched(archAt, (b) => b.write('zzzzz', 'latin1')), ['unsupported-architecture']);
  for (const at of [2, 10, 23, 24, 40, 200, 2000, 20000, 100000, bytes.length - 1]) {
    add(`truncated-at-${at}.gguf`, bytes.subarray(0, at), ['truncated', 'corrupt']);
  }
  return out;
}
