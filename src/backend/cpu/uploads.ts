/**
 * Weight uploads: tensors are read in ranges straight into wasm memory (chunks ≤ 64 MiB), kept in
 * their checkpoint encoding. GPTQ qweight is re-tiled (still 4-bit) for the int4 kernel; its
 * scales/zeros are expanded to f32 / i32 per (4-column tile, group), ≈ 1/8 of the int4 bytes.
 */
import { f16BitsToFloat } from '../../io/half.js';
import { BackendError, CheckpointError } from '../../errors.js';
import type { DType, TensorSource } from '../../io/source.js';
import type { Embedding, Linear, LinearSource, Placement, Vec } from '../backend.js';
import type { Arena } from './arena.js';
import type { MemoryManager } from './memoryManager.js';
import type { ThreadPool } from './threadPool.js';

export const CHUNK_BYTES = 64 << 20;

export type FloatKind = 'F32' | 'F16' | 'BF16';

export interface GptqParts {
  /** Rows per quantisation group as the kernel sees it (a divisor of the checkpoint's group). */
  vg: number;
  S: number;
  Z: number;
  /** i32 [in] group-ordered row → checkpoint row, or 0 for the identity. */
  perm: number;
}

/** Output rows [c0, c1) of a dense matrix held in one memory (weights and bias slice). */
export interface DensePart {
  arena: Arena;
  c0: number;
  c1: number;
  w: number;
  bias: number;
}

/** Table rows [r0, r1) of an embedding held in one memory. */
export interface EmbeddingPart {
  arena: Arena;
  r0: number;
  r1: number;
  ptr: number;
}

export class CpuLinear implements Linear {
  /** Set when the matrix was cut across memories (dense only). */
  parts?: DensePart[];
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly bytes: number,
    readonly arena: Arena,
    readonly kind: FloatKind | 'GPTQ',
    /** Weights (dense [out, in] or tiled int4). */
    readonly w: number,
    /** f32 [out] or 0. */
    readonly bias: number,
    readonly gptq?: GptqParts,
    /** Every allocation to release on dispose. */
    readonly blocks: number[] = [],
  ) {}
}

export class CpuEmbedding implements Embedding {
  /** Set when the table was cut across memories. */
  parts?: EmbeddingPart[];
  constructor(
    readonly rows: number,
    readonly dim: number,
    readonly arena: Arena,
    readonly kind: FloatKind,
    readonly ptr: number,
  ) {}
}

export class CpuVec implements Vec {
  constructor(
    readonly length: number,
    readonly arena: Arena,
    readonly ptr: number,
  ) {}
}

const ELEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I32: 4 };

function checkTensor(t: TensorSource, dtypes: DType[], shape: number[], what: string): void {
  if (!dtypes.includes(t.dtype)) {
    throw new CheckpointError(`${t.name}: ${what} must be ${dtypes.join(' or ')}, got ${t.dtype}`, { tensor: t.name });
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new CheckpointError(`${t.name}: ${what} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`, { tensor: t.name });
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (t.byteLength !== n * ELEM[t.dtype]) {
    throw new CheckpointError(`${t.name}: ${t.byteLength} bytes, expected ${n * ELEM[t.dtype]}`, { tensor: t.name });
  }
}

/** Reads bytes [offset, offset + len) of t into wasm memory at ptr, in chunks. */
async function readInto(a: Arena, ptr: number, t: TensorSource, offset: number, len: number): Promise<void> {
  for (let o = 0; o < len; o += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, len - o);
    await readRange(a, ptr + o, t, offset + o, n);
  }
}

/**
 * One read straight into wasm memory. A plain (unshared) memory's buffer is detached when another
 * upload grows it during the await, so there the bytes go through a temporary chunk.
 */
async function readRange(a: Arena, ptr: number, t: TensorSource, offset: number, n: number): Promise<void> {
  if (a.shared) return t.read(offset, new Uint8Array(a.memory.buffer, ptr, n));
  const tmp = new Uint8Array(n);
  await t.read(offset, tmp);
  a.u8.set(tmp, ptr);
}

async function readAll(t: TensorSource): Promise<Uint8Array> {
  const b = new Uint8Array(t.byteLength);
  await t.read(0, b);
  return b;
}

/** A small float tensor (F32/F16/BF16) decoded to f32. */
export async function readFloats(t: TensorSource, what: string, length: number): Promise<Float32Array> {
  checkTensor(t, ['F32', 'F16', 'BF16'], [length], what);
  const b = await readAll(t);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(length);
  if (t.dtype === 'F32') for (let i = 0; i < length; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (t.dtype === 'F16') for (let i = 0; i < length; i++) out[i] = f16BitsToFloat(dv.getUint16(2 * i, true));
  else {
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    for (let i = 0; i < length; i++) {
      u[0] = dv.getUint16(2 * i, true) << 16;
      out[i] = f[0];
    }
  }
  return out;
}

export interface UploadContext {
  mm: MemoryManager;
  pool: ThreadPool;
  /** Adds weight bytes to the usage counters. */
  track(bytes: number): void;
}

export async function uploadVector(ctx: UploadContext, src: TensorSource, at: Placement): Promise<CpuVec> {
  if (src.shape.length !== 1) throw new CheckpointError(`${src.name}: a vector must be 1-D, got [${src.shape.join(', ')}]`, { tensor: src.name });
  const n = src.shape[0];
  const data = await readFloats(src, 'vector', n);
  const { arena, ptr } = ctx.mm.allocWeight(n * 4, at.layer, src.name);
  arena.f32.set(data, ptr >>> 2);
  ctx.track(n * 4);
  return new CpuVec(n, arena, ptr);
}

export async function uploadEmbedding(ctx: UploadContext, src: TensorSource, at: Placement): Promise<CpuEmbedding> {
  if (src.shape.length !== 2) throw new CheckpointError(`${src.name}: an embedding must be 2-D, got [${src.shape.join(', ')}]`, { tensor: src.name });
  const [rows, dim] = src.shape;
  checkTensor(src, ['F32', 'F16', 'BF16'], [rows, dim], 'embedding');
  const rowBytes = dim * ELEM[src.dtype];
  if (src.byteLength > ctx.mm.maxWeightBytes()) {
    const per = Math.floor(ctx.mm.maxWeightBytes() / rowBytes);
    if (per < 1) throw new BackendError(`${src.name}: one row of ${rowBytes} bytes does not fit a wasm memory`);
    const parts: EmbeddingPart[] = [];
    for (let r0 = 0; r0 < rows; r0 += per) {
      const r1 = Math.min(rows, r0 + per);
      const { arena, ptr } = ctx.mm.allocWeight((r1 - r0) * rowBytes, at.layer, src.name);
      await readInto(arena, ptr, src, r0 * rowBytes, (r1 - r0) * rowBytes);
      parts.push({ arena, r0, r1, ptr });
    }
    ctx.track(src.byteLength);
    const e = new CpuEmbedding(rows, dim, parts[0].arena, src.dtype as FloatKind, parts[0].ptr);
    e.parts = parts;
    return e;
  }
  const { arena, ptr } = ctx.mm.allocWeight(src.byteLength, at.layer, src.name);
  await readInto(arena, ptr, src, 0, src.byteLength);
  ctx.track(src.byteLength);
  return new CpuEmbedding(rows, dim, arena, src.dtype as FloatKind, ptr);
}

export async function uploadLinear(ctx: UploadContext, src: LinearSource, at: Placement): Promise<CpuLinear> {
  const { inFeatures: K, outFeatures: N } = src;
  if (!(Number.isInteger(K) && K > 0 && Number.isInteger(N) && N > 0)) {
    throw new CheckpointError(`linear ${src.kind === 'dense' ? src.weight.name : src.qweight.name}: bad shape in=${K} out=${N}`);
  }
  return src.kind === 'dense' ? uploadDense(ctx, src, at) : uploadGptq(ctx, src, at);
}

async function uploadDense(ctx: UploadContext, src: Extract<LinearSource, { kind: 'dense' }>, at: Placement): Promise<CpuLinear> {
  const { inFeatures: K, outFeatures: N, weight } = src;
  checkTensor(weight, ['F32', 'F16', 'BF16'], [N, K], 'dense weight');
  const bias = src.bias ? await readFloats(src.bias, 'bias', N) : undefined;
  const rowBytes = K * ELEM[weight.dtype];
  if (weight.byteLength + N * 4 + 64 > ctx.mm.maxWeightBytes()) {
    const per = Math.floor(ctx.mm.maxWeightBytes() / (rowBytes + 4) / 4) * 4 - 16;
    if (per < 4) throw new BackendError(`${weight.name}: rows of ${rowBytes} bytes are too large for a wasm memory`);
    const parts: DensePart[] = [];
    for (let c0 = 0; c0 < N; c0 += per) {
      const c1 = Math.min(N, c0 + per);
      const wb = align64((c1 - c0) * rowBytes);
      const { arena, ptr } = ctx.mm.allocWeight(wb + (bias ? (c1 - c0) * 4 : 0), at.layer, weight.name);
      await readInto(arena, ptr, weight, c0 * rowBytes, (c1 - c0) * rowBytes);
      if (bias) arena.f32.set(bias.subarray(c0, c1), (ptr + wb) >>> 2);
      parts.push({ arena, c0, c1, w: ptr, bias: bias ? ptr + wb : 0 });
    }
    ctx.track(weight.byteLength + (bias ? N * 4 : 0));
    const l = new CpuLinear(K, N, weight.byteLength, parts[0].arena, weight.dtype as FloatKind, parts[0].w, parts[0].bias, undefined, parts.map((p) => p.w));
    l.parts = parts;
    return l;
  }
  const wBytes = align64(weight.byteLength);
  const total = wBytes + (bias ? N * 4 : 0);
  const { arena, ptr } = ctx.mm.allocWeight(total, at.layer, weight.name);
  await readInto(arena, ptr, weight, 0, weight.byteLength);
  let bp = 0;
  if (bias) {
    bp = ptr + wBytes;
    arena.f32.set(bias, bp >>> 2);
  }
  ctx.track(total);
  return new CpuLinear(K, N, weight.byteLength, arena, weight.dtype as FloatKind, ptr, bp, undefined, [ptr]);
}

/** Largest multiple of 32 dividing gs that keeps the kernel's int32 group sums exact (≤ 2048). */
function kernelGroup(gs: number): number {
  for (let d = Math.min(64, gs / 32); d >= 1; d--) if ((gs / 32) % d === 0) return 32 * d;
  return 32;
}

async function uploadGptq(ctx: UploadContext, src: Extract<LinearSource, { kind: 'gptq' }>, at: Placement): Promise<CpuLinear> {
  const { inFeatures: K, outFeatures: N, qweight, qzeros, scales } = src;
  const name = qweight.name;
  if (src.bits !== 4) throw new CheckpointError(`${name}: only 4-bit GPTQ is supported, got ${src.bits} bits`, { tensor: name });
  const gs = src.groupSize > 0 ? src.groupSize : K;
  if (K % gs !== 0) throw new CheckpointError(`${name}: in_features ${K} is not a multiple of group_size ${gs}`, { tensor: name });
  if (N % 8 !== 0) throw new CheckpointError(`${name}: out_features ${N} is not a multiple of 8`, { tensor: name });
  if (gs % 32 !== 0) throw new BackendError(`${name}: the CPU int4 kernel needs group_size to be a multiple of 32, got ${gs}`);
  const G = K / gs;
  checkTensor(qweight, ['I32'], [K / 8, N], 'qweight');
  checkTensor(qzeros, ['I32'], [G, N / 8], 'qzeros');
  checkTensor(scales, ['F16'], [G, N], 'scales');
  const gIdx = src.gIdx ? await readInt32(src.gIdx, K) : undefined;
  const bias = src.bias ? await readFloats(src.bias, 'bias', N) : undefined;

  // group-contiguous row order (desc_act): a stable counting sort of the rows by g_idx
  let perm: Int32Array | undefined;
  if (gIdx) {
    const count = new Int32Array(G);
    for (let k = 0; k < K; k++) {
      const g = gIdx[k];
      if (!(g >= 0 && g < G)) throw new CheckpointError(`${src.gIdx!.name}: g_idx[${k}] = ${g} outside [0, ${G})`, { tensor: src.gIdx!.name });
      count[g]++;
    }
    for (let g = 0; g < G; g++) {
      if (count[g] !== gs) throw new CheckpointError(`${src.gIdx!.name}: group ${g} has ${count[g]} rows, expected group_size ${gs}`, { tensor: src.gIdx!.name });
    }
    perm = new Int32Array(K);
    const next = Int32Array.from({ length: G }, (_, g) => g * gs);
    let identity = true;
    for (let k = 0; k < K; k++) {
      const j = next[gIdx[k]]++;
      perm[j] = k;
      if (j !== k) identity = false;
    }
    if (identity) perm = undefined;
  }

  const vg = kernelGroup(gs);
  const VG = K / vg;
  const tiles = N / 4;
  const wBytes = K * N / 2;
  const szBytes = tiles * VG * 16;
  const permBytes = perm ? align64(K * 4) : 0;
  const total = wBytes + 2 * szBytes + permBytes + (bias ? N * 4 : 0);
  const { arena: a, ptr: base } = ctx.mm.allocWeight(total, at.layer, name);
  const S = base + wBytes;
  const Z = S + szBytes;
  const P = Z + szBytes;
  const B = bias ? P + permBytes : 0;

  // scales and zero+1 per (tile, kernel group, column in tile)
  const sc = await readAll(scales);
  const sv = new DataView(sc.buffer, sc.byteOffset, sc.byteLength);
  const qz = await readInt32(qzeros, G * (N / 8));
  const f32 = a.f32;
  const i32 = a.i32;
  for (let v = 0; v < VG; v++) {
    const g = Math.floor((v * vg) / gs);
    for (let c = 0; c < N; c++) {
      const o = ((S + (((c >> 2) * VG + v) << 4)) >>> 2) + (c & 3);
      f32[o] = f16BitsToFloat(sv.getUint16(2 * (g * N + c), true));
      i32[o + ((Z - S) >>> 2)] = ((qz[g * (N / 8) + (c >> 3)] >>> (4 * (c & 7))) & 15) + 1;
    }
  }
  if (perm) i32.set(perm, P >>> 2);
  if (bias) f32.set(bias, B >>> 2);

  // qweight: stage column chunks (whole rows when it fits) and re-tile them in wasm
  const rowBytes = N * 4;
  let stageBytes = Math.min(qweight.byteLength, CHUNK_BYTES);
  let stage = a.alloc(stageBytes);
  while (stage < 0 && stageBytes > (K / 8) * 16) {
    stageBytes = Math.max((K / 8) * 16, stageBytes >> 1);
    stage = a.alloc(stageBytes);
  }
  if (stage < 0) throw new BackendError(`${name}: no room in wasm memory to stage qweight`);
  try {
    const colsPerChunk = Math.max(4, Math.floor(stageBytes / ((K / 8) * 4) / 4) * 4);
    for (let c0 = 0; c0 < N; c0 += colsPerChunk) {
      const cols = Math.min(colsPerChunk, N - c0);
      if (cols === N) await readInto(a, stage, qweight, 0, qweight.byteLength);
      else {
        for (let r = 0; r < K / 8; r++) {
          await readRange(a, stage + r * cols * 4, qweight, r * rowBytes + c0 * 4, cols * 4);
        }
      }
      ctx.pool.run(a, 'gptqRetile', cols / 4, 1, [K, stage, cols, c0 / 4, perm ? P : 0, base]);
    }
  } finally {
    a.free(stage);
  }
  ctx.track(total);
  return new CpuLinear(K, N, qweight.byteLength + qzeros.byteLength + scales.byteLength, a, 'GPTQ', base, B, { vg, S, Z, perm: perm ? P : 0 }, [base]);
}

async function readInt32(t: TensorSource, n: number): Promise<Int32Array> {
  if (t.dtype !== 'I32' || t.byteLength !== n * 4) {
    throw new CheckpointError(`${t.name}: expected I32 with ${n} elements, got ${t.dtype} [${t.shape.join(', ')}]`, { tensor: t.name });
  }
  const b = await readAll(t);
  return new Int32Array(b.buffer, b.byteOffset, n).slice();
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}
