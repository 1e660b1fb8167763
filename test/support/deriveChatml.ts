import fs from 'node:fs';

/**
 * Rebuilds ../shared/models/stories260K-chatml.gguf from stories260K.gguf, as its README describes:
 * general.name becomes "stories260K-chatml" and a ChatML tokenizer.chat_template is added; tensor
 * infos and data stay byte-identical. The result is checked against the pinned sha256 by the caller.
 */
export const CHATML_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8, ARRAY = 9;

function stringBytes(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  return Buffer.concat([len, body]);
}

function stringKv(key: string, value: string): Buffer {
  const type = Buffer.alloc(4);
  type.writeUInt32LE(STRING);
  return Buffer.concat([stringBytes(key), type, stringBytes(value)]);
}

export async function deriveChatmlModel(source: string, target: string): Promise<void> {
  const buf = fs.readFileSync(source);
  let pos = 24;
  const readString = () => { const n = Number(buf.readBigUInt64LE(pos)); const s = buf.toString('utf8', pos + 8, pos + 8 + n); pos += 8 + n; return s; };
  const skipValue = (type: number): void => {
    if (type === STRING) { readString(); return; }
    if (type === ARRAY) {
      const itemType = buf.readUInt32LE(pos); const count = Number(buf.readBigUInt64LE(pos + 4)); pos += 12;
      for (let i = 0; i < count; i++) skipValue(itemType);
      return;
    }
    pos += SCALAR_BYTES[type];
  };
  const tensorCount = Number(buf.readBigUInt64LE(8));
  const kvCount = Number(buf.readBigUInt64LE(16));
  const kvs: Buffer[] = [];
  let alignment = 32;
  for (let i = 0; i < kvCount; i++) {
    const start = pos;
    const key = readString();
    const type = buf.readUInt32LE(pos); pos += 4;
    const valueStart = pos;
    skipValue(type);
    if (key === 'general.alignment') alignment = buf.readUInt32LE(valueStart);
    kvs.push(key === 'general.name' ? stringKv(key, 'stories260K-chatml') : buf.subarray(start, pos));
  }
  kvs.push(stringKv('tokenizer.chat_template', CHATML_TEMPLATE));
  const tensorInfoStart = pos;
  for (let i = 0; i < tensorCount; i++) {
    readString();
    const dims = buf.readUInt32LE(pos); pos += 4 + dims * 8 + 4 + 8;
  }
  const tensorInfos = buf.subarray(tensorInfoStart, pos);
  const dataStart = Math.ceil(pos / alignment) * alignment;
  const header = Buffer.from(buf.subarray(0, 24));
  header.writeBigUInt64LE(BigInt(kvs.length), 16);
  const body = Buffer.concat([header, ...kvs, tensorInfos]);
  const padding = Buffer.alloc((alignment - (body.length % alignment)) % alignment);
  fs.writeFileSync(target, Buffer.concat([body, padding, buf.subarray(dataStart)]));
}
