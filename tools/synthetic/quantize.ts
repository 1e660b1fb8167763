/** ggml tensor types written by the synthetic models, and their block layouts. */
export const GGML = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type WeightType = 'f16' | 'q8_0' | 'q4_0';
export const FILE_TYPE: Record<WeightType, number> = { f16: 1, q4_0: 2, q8_0: 7 };
export const GGML_TYPE: Record<WeightType, number> = { f16: GGML.F16, q8_0: GGML.Q8_0, q4_0: GGML.Q4_0 };

/** Bytes of `elements` values of a type (elements is a multiple of 32 for the block types). */
export function typeBytes(type: WeightType | 'f32', elements: number): number {
  switch (type) {
    case 'f32': return elements * 4;
    case 'f16': return elements * 2;
    case 'q8_0': return (elements / 32) * 34;
    case 'q4_0': return (elements / 32) * 18;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half precision, round to nearest even (the values here are small and normal). */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exponent = ((x >>> 23) & 0xff) - 127 + 15;
  let mantissa = x & 0x7fffff;
  if (exponent <= 0) return sign;             // flush tiny values to zero
  if (exponent >= 31) return sign | 0x7c00;   // overflow to infinity (never happens for weights)
  const round = mantissa & 0x1fff;
  mantissa >>>= 13;
  let half = sign | (exponent << 10) | mantissa;
  if (round > 0x1000 || (round === 0x1000 && (mantissa & 1))) half++;
  return half;
}

/** Quantizes 32 floats into one block, as ggml's reference quantizers do. */
export function quantizeBlock(type: WeightType, values: Float32Array, out: Buffer, at: number): number {
  if (type === 'f16') {
    for (let i = 0; i < values.length; i++) out.writeUInt16LE(toHalf(values[i]), at + 2 * i);
    return at + 2 * values.length;
  }
  if (type === 'q8_0') {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(values[i]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(toHalf(d), at);
    for (let i = 0; i < 32; i++) out.writeInt8(Math.round(values[i] * id), at + 2 + i);
    return at + 34;
  }
  // q4_0: the value of largest magnitude (with its sign) maps to -8.
  let amax = 0;
  let max = 0;
  for (let i = 0; i < 32; i++) if (Math.abs(values[i]) > amax) { amax = Math.abs(values[i]); max = values[i]; }
  const d = max / -8;
  const id = d ? 1 / d : 0;
  out.writeUInt16LE(toHalf(d), at);
  for (let j = 0; j < 16; j++) {
    const lo = Math.min(15, Math.trunc(values[j] * id + 8.5));
    const hi = Math.min(15, Math.trunc(values[j + 16] * id + 8.5));
    out[at + 2 + j] = lo | (hi << 4);
  }
  return at + 18;
}
