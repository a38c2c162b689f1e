/**
 * A plain TypeScript implementation of the Backend interface: float64 accumulation, no tiling,
 * no SIMD — obviously correct rather than fast. Tests use it as the oracle for the wasm and WGSL
 * kernels, and to run the executor against the golden fixtures independently of either backend.
 */
import type {
  AttentionParams,
  Backend,
  Buf,
  Embedding,
  KVQuant,
  KVStore,
  Linear,
  LinearSource,
  MemoryUsage,
  RopeParams,
  RowView,
  TokenRef,
  TopK,
  Vec,
} from '../../src/backend/backend.js';
import { KnownToken } from '../../src/backend/backend.js';
import type { TensorSource } from '../../src/io/source.js';

class RBuf implements Buf {
  constructor(readonly data: Float32Array) {}
  get length() {
    return this.data.length;
  }
}

class RLinear implements Linear {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    /** Dequantised weight, [out, in] row-major. */
    readonly w: Float32Array,
    readonly bias: Float32Array | undefined,
    readonly bytes: number,
  ) {}
}

class REmbedding implements Embedding {
  constructor(readonly rows: number, readonly dim: number, readonly table: Float32Array) {}
}

class RVec implements Vec {
  constructor(readonly data: Float32Array) {}
  get length() {
    return this.data.length;
  }
}

class RKV implements KVStore {
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly width: number;
  constructor(readonly capacity: number, readonly heads: number, readonly headDim: number, readonly quant: KVQuant) {
    this.width = heads * headDim;
    this.k = new Float32Array(capacity * this.width);
    this.v = new Float32Array(capacity * this.width);
  }
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Decodes a float tensor (F32/F16/BF16) or I32 tensor to numbers. */
export async function readTensor(t: TensorSource): Promise<Float32Array | Int32Array> {
  const bytes = new Uint8Array(t.byteLength);
  await t.read(0, bytes);
  const dv = new DataView(bytes.buffer);
  const n = t.shape.reduce((a, b) => a * b, 1);
  switch (t.dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, 0, n).slice();
    case 'I32':
      return new Int32Array(bytes.buffer, 0, n).slice();
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < n; i++) {
        u[0] = dv.getUint16(2 * i, true) << 16;
        out[i] = f[0];
      }
      return out;
    }
    default:
      throw new Error(`reference backend: unsupported dtype ${t.dtype} for ${t.name}`);
  }
}

/** Dequantises a GPTQ linear to W[out, in] in f32 (exact: fp16 scale × small integer). */
export async function dequantGptq(src: Extract<LinearSource, { kind: 'gptq' }>): Promise<Float32Array> {
  const { inFeatures: K, outFeatures: N, groupSize } = src;
  const qweight = (await readTensor(src.qweight)) as Int32Array;
  const qzeros = (await readTensor(src.qzeros)) as Int32Array;
  const scales = (await readTensor(src.scales)) as Float32Array;
  const gIdx = src.gIdx ? ((await readTensor(src.gIdx)) as Int32Array) : undefined;
  const w = new Float32Array(N * K);
  for (let k = 0; k < K; k++) {
    const g = gIdx ? gIdx[k] : Math.floor(k / groupSize);
    for (let c = 0; c < N; c++) {
      const q = (qweight[(k >> 3) * N + c] >>> (4 * (k & 7))) & 15;
      const z = (qzeros[g * (N >> 3) + (c >> 3)] >>> (4 * (c & 7))) & 15;
      w[c * K + k] = Math.fround(scales[g * N + c] * (q - (z + 1)));
    }
  }
  return w;
}

function invFreq(base: number, rotaryDim: number): Float32Array {
  const out = new Float32Array(rotaryDim / 2);
  for (let i = 0; i < out.length; i++) {
    const exponent = Math.fround((2 * i) / rotaryDim);
    out[i] = Math.fround(1 / Math.fround(Math.pow(base, exponent)));
  }
  return out;
}

export function lognFactor(pos: number, seqLength: number): number {
  return seqLength > 0 && pos + 1 > seqLength ? Math.fround(Math.log(pos + 1) / Math.log(seqLength)) : 1;
}

export class ReferenceBackend implements Backend {
  readonly kind = 'cpu' as const;
  readonly asyncExecution = false;
  readonly description = 'reference (plain TypeScript, f64 accumulation)';
  private weightBytes = 0;
  private kvBytes = 0;
  private actBytes = 0;
  private peak = 0;

  private track() {
    this.peak = Math.max(this.peak, this.weightBytes + this.kvBytes + this.actBytes);
  }

  async uploadLinear(src: LinearSource): Promise<Linear> {
    let w: Float32Array;
    let bytes: number;
    if (src.kind === 'dense') {
      w = (await readTensor(src.weight)) as Float32Array;
      bytes = src.weight.byteLength;
    } else {
      w = await dequantGptq(src);
      bytes = src.qweight.byteLength + src.qzeros.byteLength + src.scales.byteLength;
    }
    const bias = src.bias ? ((await readTensor(src.bias)) as Float32Array) : undefined;
    this.weightBytes += w.byteLength;
    this.track();
    return new RLinear(src.inFeatures, src.outFeatures, w, bias, bytes);
  }

  async uploadEmbedding(src: TensorSource): Promise<Embedding> {
    const t = (await readTensor(src)) as Float32Array;
    this.weightBytes += t.byteLength;
    this.track();
    return new REmbedding(src.shape[0], src.shape[1], t);
  }

  async uploadVector(src: TensorSource): Promise<Vec> {
    return new RVec((await readTensor(src)) as Float32Array);
  }

  alloc(length: number): Buf {
    this.actBytes += 4 * length;
    this.track();
    return new RBuf(new Float32Array(length));
  }
  free(buf: Buf): void {
    this.actBytes -= 4 * buf.length;
  }
  write(buf: Buf, data: Float32Array, offset = 0): void {
    (buf as RBuf).data.set(data, offset);
  }
  async read(buf: Buf, offset: number, length: number): Promise<Float32Array> {
    return (buf as RBuf).data.slice(offset, offset + length);
  }
  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, length: number): void {
    (dst as RBuf).data.set((src as RBuf).data.subarray(srcOffset, srcOffset + length), dstOffset);
  }

  kvCreate(capacity: number, heads: number, headDim: number, quant: KVQuant): KVStore {
    this.kvBytes += 8 * capacity * heads * headDim;
    this.track();
    return new RKV(capacity, heads, headDim, quant);
  }
  kvFree(kv: KVStore): void {
    this.kvBytes -= 8 * kv.capacity * kv.width;
  }
  kvWrite(kv: KVStore, k: RowView, v: RowView, rows: number, slot: number): void {
    const s = kv as RKV;
    if (slot + rows > s.capacity) throw new Error('kvWrite past capacity');
    for (let r = 0; r < rows; r++) {
      for (const [view, dst] of [
        [k, s.k],
        [v, s.v],
      ] as const) {
        const src = (view.buf as RBuf).data;
        for (let c = 0; c < s.width; c++) {
          dst[(slot + r) * s.width + c] = quantizeKV(s.quant, src, r * view.stride + view.offset, s.headDim, c);
        }
      }
    }
  }
  kvMove(kv: KVStore, dst: number, src: number, n: number): void {
    const s = kv as RKV;
    s.k.copyWithin(dst * s.width, src * s.width, (src + n) * s.width);
    s.v.copyWithin(dst * s.width, src * s.width, (src + n) * s.width);
  }
  kvCopy(to: KVStore, from: KVStore, n: number): void {
    const a = to as RKV;
    const b = from as RKV;
    a.k.set(b.k.subarray(0, n * b.width));
    a.v.set(b.v.subarray(0, n * b.width));
  }

  embed(out: Buf, table: Embedding, ids: Int32Array): void {
    const t = table as REmbedding;
    for (let r = 0; r < ids.length; r++) {
      (out as RBuf).data.set(t.table.subarray(ids[r] * t.dim, (ids[r] + 1) * t.dim), r * t.dim);
    }
  }

  embedToken(out: Buf, table: Embedding, t: TokenRef): void {
    this.embed(out, table, Int32Array.of(KnownToken.idOf(t, 'embedToken')));
  }

  rmsNorm(out: Buf, x: Buf, w: Vec, rows: number, eps: number): void {
    const d = w.length;
    const xs = (x as RBuf).data;
    const os = (out as RBuf).data;
    const ws = (w as RVec).data;
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let c = 0; c < d; c++) ss += xs[r * d + c] * xs[r * d + c];
      const inv = 1 / Math.sqrt(ss / d + eps);
      for (let c = 0; c < d; c++) os[r * d + c] = xs[r * d + c] * inv * ws[c];
    }
  }

  matmul(out: Buf, x: Buf, w: Linear, rows: number): void {
    const l = w as RLinear;
    const K = l.inFeatures;
    const N = l.outFeatures;
    const xs = (x as RBuf).data;
    const os = (out as RBuf).data;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < N; c++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += xs[r * K + k] * l.w[c * K + k];
        os[r * N + c] = acc + (l.bias ? l.bias[c] : 0);
      }
    }
  }

  rope(x: RowView, rows: number, p: RopeParams): void {
    const inv = invFreq(p.base, p.rotaryDim);
    const half = p.rotaryDim / 2;
    const data = (x.buf as RBuf).data;
    for (let r = 0; r < rows; r++) {
      const pos = p.pos0 + r;
      for (let h = 0; h < p.heads; h++) {
        const base = r * x.stride + x.offset + h * p.headDim;
        for (let i = 0; i < half; i++) {
          const angle = Math.fround(pos * inv[i]);
          const cos = Math.fround(Math.cos(angle));
          const sin = Math.fround(Math.sin(angle));
          const a = data[base + i];
          const b = data[base + i + half];
          data[base + i] = a * cos - b * sin;
          data[base + i + half] = b * cos + a * sin;
        }
      }
    }
  }

  attention(out: Buf, q: RowView, kv: KVStore, p: AttentionParams): void {
    const s = kv as RKV;
    const qs = (q.buf as RBuf).data;
    const os = (out as RBuf).data;
    const W = p.heads * p.headDim;
    const scores = new Float64Array(p.kvLen);
    for (let r = 0; r < p.rows; r++) {
      const visible = p.kvLen - p.rows + r + 1;
      const qScale = lognFactor(p.pos0 + r, p.lognSeqLength) * p.scale;
      for (let h = 0; h < p.heads; h++) {
        const qo = r * q.stride + q.offset + h * p.headDim;
        let max = -Infinity;
        for (let j = 0; j < visible; j++) {
          let dot = 0;
          for (let d = 0; d < p.headDim; d++) dot += qs[qo + d] * s.k[j * W + h * p.headDim + d];
          scores[j] = dot * qScale;
          if (scores[j] > max) max = scores[j];
        }
        let sum = 0;
        for (let j = 0; j < visible; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        for (let d = 0; d < p.headDim; d++) {
          let acc = 0;
          for (let j = 0; j < visible; j++) acc += scores[j] * s.v[j * W + h * p.headDim + d];
          os[r * W + h * p.headDim + d] = acc / sum;
        }
      }
    }
  }

  swiglu(out: Buf, a: Buf, b: Buf, n: number): void {
    const as = (a as RBuf).data;
    const bs = (b as RBuf).data;
    const os = (out as RBuf).data;
    for (let i = 0; i < n; i++) os[i] = as[i] * (bs[i] / (1 + Math.exp(-bs[i])));
  }

  add(x: Buf, y: Buf, n: number): void {
    const xs = (x as RBuf).data;
    const ys = (y as RBuf).data;
    for (let i = 0; i < n; i++) xs[i] += ys[i];
  }

  async argmax(x: Buf, offset: number, n: number): Promise<number> {
    return this.argmaxNow(x, offset, n);
  }

  private argmaxNow(x: Buf, offset: number, n: number): number {
    const xs = (x as RBuf).data;
    let best = 0;
    for (let i = 1; i < n; i++) if (xs[offset + i] > xs[offset + best]) best = i;
    return best;
  }

  argmaxToken(x: Buf, offset: number, n: number): TokenRef {
    return new KnownToken(this.argmaxNow(x, offset, n));
  }

  async readToken(t: TokenRef): Promise<number> {
    return KnownToken.idOf(t, 'readToken');
  }

  async topK(x: Buf, offset: number, n: number, k: number): Promise<TopK> {
    const xs = (x as RBuf).data.subarray(offset, offset + n);
    const idx = Array.from({ length: n }, (_, i) => i);
    idx.sort((a, b) => xs[b] - xs[a] || a - b);
    const ids = Int32Array.from(idx.slice(0, k));
    return { ids, values: Float32Array.from(ids, (i) => xs[i]) };
  }

  async flush(): Promise<void> {}

  memoryUsage(): MemoryUsage {
    return { weightBytes: this.weightBytes, kvBytes: this.kvBytes, activationBytes: this.actBytes, peakBytes: this.peak };
  }

  async dispose(): Promise<void> {}
}

/**
 * int8 K/V: asymmetric 8-bit per (slot, head): scale = (max − min)/255, q = round((x − min)/scale),
 * stored value = min + q·scale. The reference keeps the dequantised value so attention is shared.
 */
function quantizeKV(quant: KVQuant, src: Float32Array, rowStart: number, headDim: number, c: number): number {
  const value = src[rowStart + c];
  if (quant === 'f32') return value;
  const h0 = rowStart + c - (c % headDim);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < headDim; i++) {
    lo = Math.min(lo, src[h0 + i]);
    hi = Math.max(hi, src[h0 + i]);
  }
  const scale = (hi - lo) / 255 || 1;
  return lo + Math.round((value - lo) / scale) * scale;
}
