/**
 * The one narrow table of operations every backend fills in (cf. ggml's backend interface).
 * The Qwen executor is written once against it and never asks which backend runs it.
 *
 * Semantics shared by every implementation:
 * - Ops are *enqueued* and run in call order. A backend may run them at once (cpu) or record
 *   them into a command buffer (webgpu); only the Promise-returning calls (read, argmax, topK,
 *   flush) wait for the queue, so one decode step needs a single host round trip.
 * - Activations are f32 buffers owned by the backend (`Buf`, sizes in elements). Matrices are
 *   row-major; an op on "rows" of a buffer takes a row stride and a column offset so q, k and v
 *   can be addressed inside the fused c_attn output without copies.
 * - Weights are uploaded in their checkpoint encoding (GPTQ int4 stays packed, bf16/f16 stay
 *   16-bit); a backend may re-tile them for its kernels but never widens them to f32.
 */
import { ArgumentError } from '../errors.js';
import type { TensorSource } from '../io/source.js';

/** An f32 activation buffer in backend memory. */
export interface Buf {
  readonly length: number;
}

/** y[rows, out] = x[rows, in] · Wᵀ (+ bias). */
export interface Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Bytes of weight data read by one pass over the matrix (for roofline numbers). */
  readonly bytes: number;
}

/** Embedding table [rows, dim] (f16, bf16 or f32 rows). */
export interface Embedding {
  readonly rows: number;
  readonly dim: number;
}

/** A small f32 vector (norm weights). */
export interface Vec {
  readonly length: number;
}

/** Keys and values of one layer: `capacity` slots of `width` (= heads · headDim) each. */
export interface KVStore {
  readonly capacity: number;
  readonly heads: number;
  readonly headDim: number;
  readonly width: number;
  readonly quant: KVQuant;
}

/** 'f32', or 'int8' with a per-(slot, head) scale and zero (cf. Qwen's use_cache_quantization). */
export type KVQuant = 'f32' | 'int8';

export type LinearSource =
  | {
      kind: 'dense';
      inFeatures: number;
      outFeatures: number;
      /** [out, in] F32, F16 or BF16 (torch Linear layout). */
      weight: TensorSource;
      bias?: TensorSource;
    }
  | {
      kind: 'gptq';
      inFeatures: number;
      outFeatures: number;
      bits: 4;
      groupSize: number;
      /** I32 [in/8, out]: nibble k%8 of row k/8, LSB first. */
      qweight: TensorSource;
      /** I32 [groups, out/8] holding zero − 1 (auto-gptq v1). */
      qzeros: TensorSource;
      /** F16 [groups, out]. */
      scales: TensorSource;
      /** I32 [in]: the group of each input row (desc_act permutes them); absent = k / groupSize. */
      gIdx?: TensorSource;
      bias?: TensorSource;
    };

/** A hint that lets a backend keep one layer's weights, KV and the ops on them together. */
export interface Placement {
  /** Layer index; -1 for the embedding and -2 for ln_f / lm_head. */
  layer: number;
}

/** Row addressing inside a buffer: row r, column c lives at r * stride + offset + c. */
export interface RowView {
  buf: Buf;
  stride: number;
  offset: number;
}

export interface RopeParams {
  heads: number;
  headDim: number;
  /** Number of leading dims of each head that are rotated (rotary_pct · headDim, even). */
  rotaryDim: number;
  /** Absolute position of the first row. */
  pos0: number;
  /** Effective base (already NTK-scaled). inv_freq and angles are computed in f32 as torch does. */
  base: number;
}

export interface AttentionParams {
  /** Query rows in this call. */
  rows: number;
  heads: number;
  headDim: number;
  /** Valid cache slots after this call's keys were written. Query i sees slots [0, kvLen − rows + i]. */
  kvLen: number;
  /** Absolute position of query row 0 (for LogN). */
  pos0: number;
  /** 1/√headDim. */
  scale: number;
  /**
   * LogN: when > 0, a query at absolute position p with p + 1 > lognSeqLength is multiplied by
   * fround(ln(p + 1) / ln(lognSeqLength)) before the dot products; 0 disables it.
   */
  lognSeqLength: number;
}

export interface TopK {
  ids: Int32Array;
  values: Float32Array;
}

/**
 * A token id chosen on the device (argmaxToken). embedToken() takes it before its value reaches
 * the host, so the decode step that feeds it can be enqueued at once; readToken() reads it.
 */
export interface TokenRef {
  readonly kind: 'token';
}

/** The TokenRef of a backend whose ops have run when they return: the id is known at once. */
export class KnownToken implements TokenRef {
  readonly kind = 'token';
  constructor(readonly id: number) {}

  /** The id of `t`, which must come from a synchronous backend. */
  static idOf(t: TokenRef, op: string): number {
    if (!(t instanceof KnownToken)) throw new ArgumentError(`${op}: the token ref comes from another backend`);
    return t.id;
  }
}

export interface MemoryUsage {
  weightBytes: number;
  kvBytes: number;
  activationBytes: number;
  /** Peak of the three together since the backend was created. */
  peakBytes: number;
}

export interface Backend {
  readonly kind: 'cpu' | 'webgpu';
  /** e.g. "wasm simd, 2 threads, 3 memories" or the GPU adapter's name. */
  readonly description: string;
  /**
   * Ops return before they run (recorded for a device): the host may enqueue the next decode
   * step while the device still works on this one. false = every op has run when it returns.
   */
  readonly asyncExecution: boolean;

  // ---- weights (checkpoint encoding kept) ----
  uploadLinear(src: LinearSource, at: Placement): Promise<Linear>;
  uploadEmbedding(src: TensorSource, at: Placement): Promise<Embedding>;
  /** Norm weights: any float dtype, kept as f32. */
  uploadVector(src: TensorSource, at: Placement): Promise<Vec>;

  // ---- activation buffers ----
  alloc(length: number, at: Placement): Buf;
  free(buf: Buf): void;
  write(buf: Buf, data: Float32Array, offset?: number): void;
  read(buf: Buf, offset: number, length: number): Promise<Float32Array>;
  /** dst[dstOffset + i] = src[srcOffset + i] for i < length. */
  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, length: number): void;

  // ---- KV cache storage (bookkeeping lives in src/kv) ----
  kvCreate(capacity: number, heads: number, headDim: number, quant: KVQuant, at: Placement): KVStore;
  kvFree(kv: KVStore): void;
  /** Stores k and v of `rows` rows into slots [slot, slot + rows). */
  kvWrite(kv: KVStore, k: RowView, v: RowView, rows: number, slot: number): void;
  /** Moves slots [src, src + n) to [dst, dst + n) (overlap allowed); used by the sliding window. */
  kvMove(kv: KVStore, dst: number, src: number, n: number): void;
  /** Copies the first n slots of `from` into `to` (growth into a larger store). */
  kvCopy(to: KVStore, from: KVStore, n: number): void;

  // ---- ops ----
  /** out[r] = table[ids[r]] as f32. */
  embed(out: Buf, table: Embedding, ids: Int32Array): void;
  /** out[0] = table[t] as f32, for a token that may not have reached the host yet. */
  embedToken(out: Buf, table: Embedding, t: TokenRef): void;
  /** out[r] = x[r] · rsqrt(mean(x[r]²) + eps) · w, over w.length columns. */
  rmsNorm(out: Buf, x: Buf, w: Vec, rows: number, eps: number): void;
  /** out[rows, out] = x[rows, in] · Wᵀ + bias. */
  matmul(out: Buf, x: Buf, w: Linear, rows: number): void;
  /** Rotate-half RoPE in place on `heads` heads starting at view.offset of each row. */
  rope(x: RowView, rows: number, p: RopeParams): void;
  /** Causal attention of q (rows × heads · headDim) over the first kvLen cache slots → out (dense rows). */
  attention(out: Buf, q: RowView, kv: KVStore, p: AttentionParams): void;
  /** out[i] = a[i] · silu(b[i]) for i < n (Qwen: a = w1(x), b = w2(x)). */
  swiglu(out: Buf, a: Buf, b: Buf, n: number): void;
  /** x[i] += y[i] for i < n. */
  add(x: Buf, y: Buf, n: number): void;

  // ---- results (wait for the queue) ----
  /** Index of the largest of x[offset .. offset + n) (first one on ties). */
  argmax(x: Buf, offset: number, n: number): Promise<number>;
  /**
   * argmax as an op: the index stays on the device (embedToken can feed it to the next step
   * before anything waits) until readToken. A ref is valid for embedToken until 64 later
   * argmaxToken calls.
   */
  argmaxToken(x: Buf, offset: number, n: number): TokenRef;
  /** The id of a TokenRef (waits for the queue up to its argmax). */
  readToken(t: TokenRef): Promise<number>;
  /** The k largest of x[offset .. offset + n), descending (lower index first on ties). */
  topK(x: Buf, offset: number, n: number, k: number): Promise<TopK>;
  /** Waits until every enqueued op has run. */
  flush(): Promise<void>;

  memoryUsage(): MemoryUsage;
  dispose(): Promise<void>;
}
