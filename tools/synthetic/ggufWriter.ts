import fs from 'node:fs';

/** GGUF v3 metadata value types. */
export const GgufType = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

export type MetadataValue =
  | { type: 'u32'; value: number } | { type: 'i32'; value: number } | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean } | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] } | { type: 'i32[]'; value: ArrayLike<number> } | { type: 'f32[]'; value: ArrayLike<number> };

export interface TensorSpec {
  name: string;
  /** ggml order: dims[0] is the innermost (row length). */
  dims: number[];
  ggmlType: number;
  /** Bytes of this tensor's data. */
  bytes: number;
  /** Writes the data in pieces; each piece is written as soon as it is produced. */
  write(sink: (chunk: Uint8Array) => void): void;
}

const ALIGNMENT = 32;

class ByteBuffer {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.chunks.push(b); this.length += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.push(b); }
  i32(v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  f32(v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  u64(v: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const body = Buffer.from(s, 'utf8'); this.u64(body.length); this.push(body); }
  toBuffer(): Buffer { return Buffer.concat(this.chunks); }
}

/**
 * Writes a GGUF v3 file: header, metadata, tensor infos, then each tensor's data at 32-byte aligned
 * offsets, streamed to disk so multi-gigabyte files never sit in memory.
 */
export function writeGguf(file: string, metadata: Record<string, MetadataValue>, tensors: TensorSpec[], options: { headerOnly?: boolean } = {}): { bytes: number } {
  const head = new ByteBuffer();
  head.u32(0x46554747);
  head.u32(3);
  head.u64(tensors.length);
  head.u64(Object.keys(metadata).length);
  for (const [key, entry] of Object.entries(metadata)) {
    head.str(key);
    switch (entry.type) {
      case 'u32': head.u32(GgufType.UINT32); head.u32(entry.value); break;
      case 'i32': head.u32(GgufType.INT32); head.i32(entry.value); break;
      case 'f32': head.u32(GgufType.FLOAT32); head.f32(entry.value); break;
      case 'bool': head.u32(GgufType.BOOL); head.push(Buffer.from([entry.value ? 1 : 0])); break;
      case 'string': head.u32(GgufType.STRING); head.str(entry.value); break;
      case 'string[]': head.u32(GgufType.ARRAY); head.u32(GgufType.STRING); head.u64(entry.value.length); for (const s of entry.value) head.str(s); break;
      case 'i32[]': head.u32(GgufType.ARRAY); numberArray(head, GgufType.INT32, entry.value, (b, v, at) => b.writeInt32LE(v, at)); break;
      case 'f32[]': head.u32(GgufType.ARRAY); numberArray(head, GgufType.FLOAT32, entry.value, (b, v, at) => b.writeFloatLE(v, at)); break;
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(t.ggmlType);
    head.u64(offset);
    offset += align(t.bytes);
  }
  const header = head.toBuffer();
  const fd = fs.openSync(file, 'w');
  let written = 0;
  const put = (chunk: Uint8Array) => { fs.writeSync(fd, chunk); written += chunk.length; };
  try {
    put(header);
    put(Buffer.alloc(align(header.length) - header.length));
    if (!options.headerOnly) {
      tensors.forEach((t, i) => {
        const before = written;
        t.write(put);
        const size = written - before;
        if (size !== t.bytes) throw new Error(`tensor ${t.name} wrote ${size} bytes, expected ${t.bytes}`);
        if (i < tensors.length - 1) put(Buffer.alloc(align(size) - size));
      });
    }
  } finally {
    fs.closeSync(fd);
  }
  return { bytes: written };
}

function numberArray(head: ByteBuffer, type: number, values: ArrayLike<number>, write: (b: Buffer, v: number, at: number) => void): void {
  head.u32(type);
  head.u64(values.length);
  const b = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) write(b, values[i], i * 4);
  head.push(b);
}

function align(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}
