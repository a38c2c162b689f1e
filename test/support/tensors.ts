/**
 * Test helpers: TensorSources over in-memory bytes, seeded random data, f16/bf16 encodings,
 * GPTQ packing (auto-gptq v1 layout) and a tiny safetensors reader for the fixtures.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DType, TensorSource } from '../../src/io/source.js';
import { floatToBf16Bits, floatToF16Bits, f16BitsToFloat, bf16BitsToFloat } from '../../src/io/half.js';

/** A TensorSource reading from `bytes` (counts reads so tests can check chunking). */
export function tensorFrom(name: string, dtype: DType, shape: number[], bytes: Uint8Array): TensorSource & { reads: number } {
  const src = {
    name,
    dtype,
    shape,
    byteLength: bytes.byteLength,
    reads: 0,
    async read(offset: number, dst: Uint8Array): Promise<void> {
      if (offset < 0 || offset + dst.length > bytes.byteLength) throw new Error(`${name}: read past the end`);
      src.reads++;
      dst.set(bytes.subarray(offset, offset + dst.length));
    },
  };
  return src;
}

/** Float data encoded as F32, F16 or BF16 bytes, plus the values as actually stored. */
export function encodeFloats(values: ArrayLike<number>, dtype: 'F32' | 'F16' | 'BF16'): { bytes: Uint8Array; stored: Float32Array } {
  const n = values.length;
  const stored = new Float32Array(n);
  if (dtype === 'F32') {
    stored.set(values);
    return { bytes: new Uint8Array(stored.slice().buffer), stored };
  }
  const u16 = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    u16[i] = dtype === 'F16' ? floatToF16Bits(values[i]) : floatToBf16Bits(values[i]);
    stored[i] = dtype === 'F16' ? f16BitsToFloat(u16[i]) : bf16BitsToFloat(u16[i]);
  }
  return { bytes: new Uint8Array(u16.buffer), stored };
}

export function floatTensor(name: string, dtype: 'F32' | 'F16' | 'BF16', shape: number[], values: ArrayLike<number>) {
  const { bytes, stored } = encodeFloats(values, dtype);
  return { src: tensorFrom(name, dtype, shape, bytes), stored };
}

export function i32Tensor(name: string, shape: number[], values: Int32Array): TensorSource & { reads: number } {
  return tensorFrom(name, 'I32', shape, new Uint8Array(values.slice().buffer));
}

/** Deterministic uniform(-1, 1) values (mulberry32). */
export function randoms(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export function randomInts(n: number, seed: number, max: number): Int32Array {
  const r = randoms(n, seed);
  return Int32Array.from(r, (v) => Math.min(max - 1, Math.floor(((v + 1) / 2) * max)));
}

export interface GptqCase {
  inFeatures: number;
  outFeatures: number;
  groupSize: number;
  qweight: Int32Array;
  qzeros: Int32Array;
  scales: Float32Array; // f16-representable
  gIdx?: Int32Array;
  /** W[k, c] = scale[g(k), c] · (q − (z + 1)), [in, out] row-major. */
  dequant: Float32Array;
}

/**
 * A random GPTQ linear: q and stored zeros uniform in [0, 15] (asym) or zeros 7 (sym); desc_act
 * shuffles the rows' groups.
 */
export function makeGptq(inF: number, outF: number, groupSize: number, seed: number, opts: { sym?: boolean; descAct?: boolean } = {}): GptqCase {
  const G = inF / groupSize;
  const q = randomInts(inF * outF, seed, 16);
  const z = opts.sym ? new Int32Array(G * outF).fill(7) : randomInts(G * outF, seed + 1, 16);
  const scales = encodeFloats(Float32Array.from(randoms(G * outF, seed + 2), (v) => 0.002 + Math.abs(v) * 0.05), 'F16').stored;
  let gIdx: Int32Array | undefined;
  if (opts.descAct) {
    const order = Array.from({ length: inF }, (_, k) => k);
    const r = randoms(inF, seed + 3);
    order.sort((a, b) => r[a] - r[b]);
    gIdx = new Int32Array(inF);
    order.forEach((k, j) => (gIdx![k] = Math.floor(j / groupSize)));
  }
  const qweight = new Int32Array((inF / 8) * outF);
  for (let k = 0; k < inF; k++) for (let c = 0; c < outF; c++) qweight[(k >> 3) * outF + c] |= q[k * outF + c] << (4 * (k & 7));
  const qzeros = new Int32Array(G * (outF / 8));
  for (let g = 0; g < G; g++) for (let c = 0; c < outF; c++) qzeros[g * (outF / 8) + (c >> 3)] |= z[g * outF + c] << (4 * (c & 7));
  const dequant = new Float32Array(inF * outF);
  for (let k = 0; k < inF; k++) {
    const g = gIdx ? gIdx[k] : Math.floor(k / groupSize);
    for (let c = 0; c < outF; c++) dequant[k * outF + c] = Math.fround(scales[g * outF + c] * (q[k * outF + c] - (z[g * outF + c] + 1)));
  }
  return { inFeatures: inF, outFeatures: outF, groupSize, qweight, qzeros, scales, gIdx, dequant };
}

export function gptqSource(c: GptqCase, bias?: Float32Array) {
  const G = c.inFeatures / c.groupSize;
  return {
    kind: 'gptq' as const,
    inFeatures: c.inFeatures,
    outFeatures: c.outFeatures,
    bits: 4 as const,
    groupSize: c.groupSize,
    qweight: i32Tensor('t.qweight', [c.inFeatures / 8, c.outFeatures], c.qweight),
    qzeros: i32Tensor('t.qzeros', [G, c.outFeatures / 8], c.qzeros),
    scales: floatTensor('t.scales', 'F16', [G, c.outFeatures], c.scales).src,
    gIdx: c.gIdx ? i32Tensor('t.g_idx', [c.inFeatures], c.gIdx) : undefined,
    bias: bias ? floatTensor('t.bias', 'F16', [c.outFeatures], bias).src : undefined,
  };
}

/** A minimal safetensors reader: every tensor of a file as a TensorSource. */
export function readSafetensors(path: string): Map<string, TensorSource & { reads: number }> {
  const file = readFileSync(path);
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: DType; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, TensorSource & { reads: number }>();
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [a, b] = t.data_offsets;
    out.set(name, tensorFrom(name, t.dtype, t.shape, bytes.slice(8 + n + a, 8 + n + b)));
  }
  return out;
}

/** All elements of a float or int tensor. */
export async function tensorValues(t: TensorSource): Promise<Float32Array | Int32Array> {
  const b = new Uint8Array(t.byteLength);
  await t.read(0, b);
  if (t.dtype === 'I32') return new Int32Array(b.buffer);
  if (t.dtype === 'F32') return new Float32Array(b.buffer);
  const u = new Uint16Array(b.buffer);
  return Float32Array.from(u, (h) => (t.dtype === 'F16' ? f16BitsToFloat(h) : bf16BitsToFloat(h)));
}

/** The shared fixtures folder (../shared/fixtures relative to the project root). */
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

/** y[r, c] = Σ_k x[r, k] · W[k, c] + bias[c] in f64, W given [in, out]. */
export function matmulInOut(x: Float32Array, w: Float32Array, rows: number, inF: number, outF: number, bias?: Float32Array): Float64Array {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < outF; c++) {
      let s = bias ? bias[c] : 0;
      for (let k = 0; k < inF; k++) s += x[r * inF + k] * w[k * outF + c];
      y[r * outF + c] = s;
    }
  }
  return y;
}
