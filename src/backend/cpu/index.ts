/**
 * The CPU backend: AssemblyScript SIMD kernels (assembly/index.ts) over shared WebAssembly
 * memories, a worker pool (threadPool.ts) and several memories past 4 GiB (memoryManager.ts).
 * Ops run immediately on the calling thread (which blocks while workers help), so the
 * Promise-returning calls only hand back results.
 */
import { ArgumentError, BackendError } from '../../errors.js';
import type { Platform } from '../../platform.js';
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
  Placement,
  RopeParams,
  RowView,
  TokenRef,
  TopK,
  Vec,
} from '../backend.js';
import { KnownToken } from '../backend.js';
import type { TensorSource } from '../../io/source.js';
import type { Arena } from './arena.js';
import { kernelModule, type KernelName } from './kernels.js';
import { CpuBuf, MemoryManager } from './memoryManager.js';
import { ThreadPool } from './threadPool.js';
import { CpuEmbedding, CpuLinear, CpuVec, uploadEmbedding, uploadLinear, uploadVector, type UploadContext } from './uploads.js';
import { topKOf, argmaxOf } from './select.js';
import { ropeTable, lognTable } from './rotary.js';

export interface CpuBackendOptions {
  /** Threads incl. the calling one (default platform.hardwareConcurrency(); 1 without workers). */
  threads?: number;
  /** Provides createWorker (threads) and hardwareConcurrency. */
  platform?: Platform;
  /** Cap of each wasm memory in bytes (default 4 GiB − 64 KiB); more memories are opened as needed. */
  maxMemoryBytes?: number;
  /** Bytes of each memory kept free of weights for activations and scratch (default min(256 MiB, cap/8)). */
  reserveBytes?: number;
  /**
   * Activations of the int4 matmul (all use the packed 4-bit weights as they are):
   * - 'split16' (default): x = s·(hi + lo/32768) with two int16 parts per value and integer dot
   *   products; as precise as f32 accumulation (error ≤ 2^-30 of the group's max |x|).
   * - 'int16': one int16 part, fastest; error up to max|x|/65534 per value (≈3e-5 relative),
   *   about the size of the fixtures' 1e-4 logits tolerance, so not the default.
   * - 'f32': f32 products of the dequantised nibbles (slowest).
   */
  gptqActivations?: GptqActivations;
  /**
   * Shared wasm memories (needed for threads). Default true where SharedArrayBuffer exists; false
   * forces plain memories and one thread (what a page without crossOriginIsolated gets anyway).
   */
  sharedMemory?: boolean;
}

export type GptqActivations = 'split16' | 'int16' | 'f32';

const DEFAULT_CAP = 65535 * 65536;

export async function createCpuBackend(opts: CpuBackendOptions = {}): Promise<Backend> {
  // No SharedArrayBuffer (a browser page without crossOriginIsolated): plain memories, one thread.
  const shared = (opts.sharedMemory ?? true) && typeof SharedArrayBuffer !== 'undefined';
  const module = await kernelModule(shared);
  const cap = Math.min(opts.maxMemoryBytes ?? DEFAULT_CAP, DEFAULT_CAP);
  if (!(cap >= 2 * 65536)) throw new ArgumentError(`maxMemoryBytes must be ≥ 128 KiB, got ${opts.maxMemoryBytes}`);
  const reserve = opts.reserveBytes ?? Math.min(256 << 20, Math.floor(cap / 8));
  const mm = new MemoryManager(module, { maxMemoryBytes: cap, reserveBytes: reserve }, shared);
  const platform = opts.platform;
  let threads = opts.threads ?? platform?.hardwareConcurrency() ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new ArgumentError(`threads must be a positive integer, got ${opts.threads}`);
  const createWorker = shared ? platform?.createWorker?.bind(platform) : undefined;
  if (!createWorker) threads = 1;
  const pool = await ThreadPool.create(module, mm.arenas.map((a) => a.memory), threads, createWorker);
  mm.attachPool(pool);
  const mode = opts.gptqActivations ?? 'split16';
  if (!['split16', 'int16', 'f32'].includes(mode)) throw new ArgumentError(`gptqActivations must be 'split16', 'int16' or 'f32', got ${String(mode)}`);
  return new CpuBackend(mm, pool, mode);
}

class CpuKV implements KVStore {
  readonly width: number;
  constructor(
    readonly capacity: number,
    readonly heads: number,
    readonly headDim: number,
    readonly quant: KVQuant,
    readonly arena: Arena,
    /** K then V, each [capacity][width] (f32, or u8 for int8), then int8 params [2][capacity][heads][2] f32. */
    readonly ptr: number,
    readonly bytes: number,
  ) {
    this.width = heads * headDim;
  }
  get elem(): number {
    return this.quant === 'f32' ? 4 : 1;
  }
  get k(): number {
    return this.ptr;
  }
  get v(): number {
    return this.ptr + align64(this.capacity * this.width * this.elem);
  }
  get kPar(): number {
    return this.ptr + 2 * align64(this.capacity * this.width * this.elem);
  }
  get vPar(): number {
    return this.kPar + this.capacity * this.heads * 8;
  }
  freed = false;
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

const FLOAT_KERNEL = { F32: 'denseF32', F16: 'denseF16', BF16: 'denseBF16' } as const;
const EMBED_KERNEL = { F32: 'embedF32', F16: 'embedF16', BF16: 'embedBF16' } as const;

class CpuBackend implements Backend {
  readonly kind = 'cpu' as const;
  readonly asyncExecution = false;
  private weightBytes = 0;
  private kvBytes = 0;
  private peak = 0;
  private disposed = false;
  private readonly ctx: UploadContext;

  constructor(
    private readonly mm: MemoryManager,
    private readonly pool: ThreadPool,
    private readonly gptqMode: GptqActivations,
  ) {
    this.ctx = {
      mm,
      pool,
      track: (bytes) => {
        this.weightBytes += bytes;
        this.trackPeak();
      },
    };
  }

  get description(): string {
    const n = this.mm.arenas.length;
    const kind = this.mm.shared ? '' : ' unshared';
    return `wasm simd, ${this.pool.threads} thread${this.pool.threads > 1 ? 's' : ''}, ${n}${kind} memor${n > 1 ? 'ies' : 'y'}`;
  }

  private trackPeak(): void {
    this.peak = Math.max(this.peak, this.weightBytes + this.kvBytes + this.activationBytes());
  }

  private activationBytes(): number {
    let s = this.mm.activationBytes;
    for (const a of this.mm.arenas) s += a.scratchBytes();
    return s;
  }

  private live(): void {
    if (this.disposed) throw new BackendError('the CPU backend was disposed');
  }

  // ---- weights ----

  uploadLinear(src: LinearSource, at: Placement): Promise<Linear> {
    this.live();
    return uploadLinear(this.ctx, src, at);
  }
  uploadEmbedding(src: TensorSource, at: Placement): Promise<Embedding> {
    this.live();
    return uploadEmbedding(this.ctx, src, at);
  }
  uploadVector(src: TensorSource, at: Placement): Promise<Vec> {
    this.live();
    return uploadVector(this.ctx, src, at);
  }

  // ---- activations ----

  alloc(length: number, at: Placement): Buf {
    this.live();
    if (!(Number.isInteger(length) && length > 0)) throw new ArgumentError(`alloc: length must be a positive integer, got ${length}`);
    const b = new CpuBuf(length, this.mm.homeFor(at.layer));
    // materialise the home mirror now so usage numbers mean something
    this.mm.at(b, this.mm.arenas[b.home], false);
    this.trackPeak();
    return b;
  }

  free(buf: Buf): void {
    this.mm.release(asBuf(buf));
  }

  write(buf: Buf, data: Float32Array, offset = 0): void {
    const b = asBuf(buf);
    checkRange('write', b, offset, data.length);
    const a = this.mm.validArena(b);
    const p = this.outPtr(b, a, offset, offset + data.length);
    a.f32.set(data, (p >>> 2) + offset);
    this.mm.written(b, a, offset + data.length);
  }

  async read(buf: Buf, offset: number, length: number): Promise<Float32Array> {
    return this.readNow(buf, offset, length);
  }

  /** Ops have run when they return, so a read needs no wait. */
  private readNow(buf: Buf, offset: number, length: number): Float32Array {
    const b = asBuf(buf);
    checkRange('read', b, offset, length);
    if (!b.valid.some((v) => v)) return new Float32Array(length);
    const a = this.mm.validArena(b);
    const p = b.ptr[a.index];
    return a.f32.slice((p >>> 2) + offset, (p >>> 2) + offset + length);
  }

  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, length: number): void {
    const d = asBuf(dst);
    const s = asBuf(src);
    checkRange('copy (dst)', d, dstOffset, length);
    checkRange('copy (src)', s, srcOffset, length);
    const a = this.mm.validArena(s);
    const sp = this.mm.at(s, a, true);
    const dp = this.outPtr(d, a, dstOffset, dstOffset + length);
    const from = (sp >>> 2) + srcOffset;
    a.f32.copyWithin((dp >>> 2) + dstOffset, from, from + length);
    this.mm.written(d, a, dstOffset + length);
  }

  /** Pointer of an output mirror in a for a write of [start, end) (refreshed when partly written). */
  private outPtr(b: CpuBuf, a: Arena, start: number, end: number): number {
    const partial = start > 0 || end < b.extent;
    return this.mm.at(b, a, partial);
  }

  // ---- KV ----

  kvCreate(capacity: number, heads: number, headDim: number, quant: KVQuant, at: Placement): KVStore {
    this.live();
    for (const [n, v] of [
      ['capacity', capacity],
      ['heads', heads],
      ['headDim', headDim],
    ] as const) {
      if (!(Number.isInteger(v) && v > 0)) throw new ArgumentError(`kvCreate: ${n} must be a positive integer, got ${v}`);
    }
    if (quant !== 'f32' && quant !== 'int8') throw new ArgumentError(`kvCreate: quant must be 'f32' or 'int8', got ${String(quant)}`);
    const width = heads * headDim;
    const elem = quant === 'f32' ? 4 : 1;
    const bytes = 2 * align64(capacity * width * elem) + (quant === 'int8' ? 2 * capacity * heads * 8 : 0);
    const { arena, ptr } = this.mm.allocKV(bytes, at.layer);
    arena.u8.fill(0, ptr, ptr + bytes);
    this.kvBytes += bytes;
    this.trackPeak();
    return new CpuKV(capacity, heads, headDim, quant, arena, ptr, bytes);
  }

  kvFree(kv: KVStore): void {
    const s = asKV(kv);
    if (s.freed) return;
    s.freed = true;
    s.arena.free(s.ptr);
    this.kvBytes -= s.bytes;
  }

  kvWrite(kv: KVStore, k: RowView, v: RowView, rows: number, slot: number): void {
    const s = asKV(kv);
    if (!(Number.isInteger(rows) && rows >= 0 && Number.isInteger(slot) && slot >= 0 && slot + rows <= s.capacity)) {
      throw new ArgumentError(`kvWrite: slots [${slot}, ${slot + rows}) outside capacity ${s.capacity}`);
    }
    if (rows === 0) return;
    const a = s.arena;
    for (const [view, dst, par] of [
      [k, s.k, s.kPar],
      [v, s.v, s.vPar],
    ] as const) {
      const b = asBuf(view.buf);
      checkRange('kvWrite', b, view.offset, (rows - 1) * view.stride + s.width);
      const p = this.mm.at(b, a, true);
      if (s.quant === 'f32') {
        const f = a.f32;
        for (let r = 0; r < rows; r++) {
          const from = (p >>> 2) + r * view.stride + view.offset;
          f.copyWithin((dst >>> 2) + (slot + r) * s.width, from, from + s.width);
        }
      } else {
        this.pool.run(a, 'kvQuant', rows, 1, [s.heads, s.headDim, p, view.stride, view.offset, slot, dst, par]);
      }
    }
  }

  kvMove(kv: KVStore, dst: number, src: number, n: number): void {
    const s = asKV(kv);
    if (!(n >= 0 && src >= 0 && dst >= 0 && src + n <= s.capacity && dst + n <= s.capacity)) {
      throw new ArgumentError(`kvMove: [${src}, ${src + n}) → [${dst}, ${dst + n}) outside capacity ${s.capacity}`);
    }
    const u8 = s.arena.u8;
    const row = s.width * s.elem;
    for (const base of [s.k, s.v]) u8.copyWithin(base + dst * row, base + src * row, base + (src + n) * row);
    if (s.quant === 'int8') {
      const pr = s.heads * 8;
      for (const base of [s.kPar, s.vPar]) u8.copyWithin(base + dst * pr, base + src * pr, base + (src + n) * pr);
    }
  }

  kvCopy(to: KVStore, from: KVStore, n: number): void {
    const t = asKV(to);
    const f = asKV(from);
    if (t.heads !== f.heads || t.headDim !== f.headDim || t.quant !== f.quant) {
      throw new ArgumentError('kvCopy: stores differ in heads, headDim or quant');
    }
    if (!(n >= 0 && n <= f.capacity && n <= t.capacity)) throw new ArgumentError(`kvCopy: ${n} slots exceed a capacity`);
    const row = f.width * f.elem;
    const pairs: [number, number, number][] = [
      [t.k, f.k, row],
      [t.v, f.v, row],
    ];
    if (f.quant === 'int8') pairs.push([t.kPar, f.kPar, f.heads * 8], [t.vPar, f.vPar, f.heads * 8]);
    for (const [dp, sp, r] of pairs) t.arena.u8.set(f.arena.u8.subarray(sp, sp + n * r), dp);
  }

  // ---- ops ----

  embedToken(out: Buf, table: Embedding, t: TokenRef): void {
    this.embed(out, table, Int32Array.of(KnownToken.idOf(t, 'embedToken')));
  }

  embed(out: Buf, table: Embedding, ids: Int32Array): void {
    const t = asEmbedding(table);
    const o = asBuf(out);
    const rows = ids.length;
    if (rows === 0) return;
    checkRange('embed', o, 0, rows * t.dim);
    for (let i = 0; i < rows; i++) {
      if (!(Number.isInteger(ids[i]) && ids[i] >= 0 && ids[i] < t.rows)) throw new ArgumentError(`embed: token id ${ids[i]} outside [0, ${t.rows})`);
    }
    if (t.parts) return this.embedParts(o, t, ids);
    const a = t.arena;
    const ip = a.scratch('ids', rows * 4);
    if (ip < 0) throw oom(a);
    a.i32.set(ids, ip >>> 2);
    const op = this.outPtr(o, a, 0, rows * t.dim);
    this.pool.run(a, EMBED_KERNEL[t.kind], rows, 1, [t.dim, t.ptr, ip, op]);
    this.mm.written(o, a, rows * t.dim);
  }

  /** A table cut across memories: rows are gathered on the host into the first part's memory. */
  private embedParts(o: CpuBuf, t: CpuEmbedding, ids: Int32Array): void {
    const F = t.parts![0].arena;
    const dim = t.dim;
    const op = this.outPtr(o, F, 0, ids.length * dim);
    const dst = F.f32;
    for (let r = 0; r < ids.length; r++) {
      const part = t.parts!.find((p) => ids[r] >= p.r0 && ids[r] < p.r1)!;
      const at = (op >>> 2) + r * dim;
      const buf = part.arena.memory.buffer;
      if (t.kind === 'F32') dst.set(new Float32Array(buf, part.ptr + (ids[r] - part.r0) * dim * 4, dim), at);
      else {
        const h = new Uint16Array(buf, part.ptr + (ids[r] - part.r0) * dim * 2, dim);
        const table = t.kind === 'F16' ? f16Table() : undefined;
        const u = new Uint32Array(dst.buffer, dst.byteOffset + at * 4, dim);
        if (table) for (let i = 0; i < dim; i++) dst[at + i] = table[h[i]];
        else for (let i = 0; i < dim; i++) u[i] = h[i] << 16;
      }
    }
    this.mm.written(o, F, ids.length * dim);
  }

  rmsNorm(out: Buf, x: Buf, w: Vec, rows: number, eps: number): void {
    const v = asVec(w);
    const o = asBuf(out);
    const xb = asBuf(x);
    const n = v.length;
    checkRange('rmsNorm (x)', xb, 0, rows * n);
    checkRange('rmsNorm (out)', o, 0, rows * n);
    const a = v.arena;
    const xp = this.mm.at(xb, a, true);
    const op = this.outPtr(o, a, 0, rows * n);
    this.pool.run(a, 'rmsNorm', rows, 1, [n, xp, v.ptr, eps, op]);
    this.mm.written(o, a, rows * n);
  }

  matmul(out: Buf, x: Buf, w: Linear, rows: number): void {
    const l = asLinear(w);
    const o = asBuf(out);
    const xb = asBuf(x);
    const K = l.inFeatures;
    const N = l.outFeatures;
    if (!(Number.isInteger(rows) && rows >= 1)) throw new ArgumentError(`matmul: rows must be ≥ 1, got ${rows}`);
    if (o === xb) throw new ArgumentError('matmul: out and x must be different buffers');
    checkRange('matmul (x)', xb, 0, rows * K);
    checkRange('matmul (out)', o, 0, rows * N);
    if (l.parts) return this.matmulParts(o, xb, l, rows);
    const a = l.arena;
    const xp = this.mm.at(xb, a, true);
    if (l.kind === 'GPTQ') {
      const g = l.gptq!;
      const VG = K / g.vg;
      if (this.gptqMode === 'split16') {
        const xq = a.scratch('xq', rows * K * 4);
        const xs = a.scratch('xs', rows * VG * 4);
        const xsum = a.scratch('xsum', rows * VG * 8);
        if (xq < 0 || xs < 0 || xsum < 0) throw oom(a);
        const op = this.outPtr(o, a, 0, rows * N);
        this.pool.run(a, 'gptqPrepS16', rows, 1, [K, g.vg, xp, g.perm, xq, xs, xsum]);
        if (rows === 1) {
          this.pool.run(a, 'gptqMatmulS16', N / 4, 1, [rows, K, N, g.vg, l.w, g.S, g.Z, xq, xs, xsum, l.bias, op]);
        } else {
          // several rows: unpack each weight tile once per thread (same bits as the 1-row kernel)
          const stride = (g.vg / 32) * 256;
          const us = a.scratch('unpack', stride * this.pool.threads);
          if (us < 0) throw oom(a);
          this.pool.run(a, 'gptqMatmulS16M', N / 4, 1, [rows, K, N, g.vg, l.w, g.S, g.Z, xq, xs, xsum, l.bias, op, us, stride]);
        }
      } else if (this.gptqMode === 'int16') {
        const xq = a.scratch('xq', rows * K * 2);
        const xs = a.scratch('xs', rows * VG * 4);
        const xsum = a.scratch('xsum', rows * VG * 4);
        if (xq < 0 || xs < 0 || xsum < 0) throw oom(a);
        const op = this.outPtr(o, a, 0, rows * N);
        this.pool.run(a, 'gptqPrepI16', rows, 1, [K, g.vg, xp, g.perm, xq, xs, xsum]);
        this.pool.run(a, 'gptqMatmulI16', N / 4, 1, [rows, K, N, g.vg, l.w, g.S, g.Z, xq, xs, xsum, l.bias, op]);
      } else {
        const xf = a.scratch('xf', rows * K * 4);
        if (xf < 0) throw oom(a);
        const op = this.outPtr(o, a, 0, rows * N);
        this.pool.run(a, 'gptqPrepF32', rows, 1, [K, xp, g.perm, xf]);
        this.pool.run(a, 'gptqMatmulF32', N / 4, 1, [rows, K, N, g.vg, l.w, g.S, g.Z, xf, l.bias, op]);
      }
    } else {
      const [kernel, xin] = this.denseInput(a, l.kind, xp, rows * K);
      const op = this.outPtr(o, a, 0, rows * N);
      this.pool.run(a, kernel, N, 4, [rows, K, N, l.w, xin, l.bias, op]);
    }
    this.mm.written(o, a, rows * N);
  }

  /**
   * The kernel and input of a dense matmul. f16 weights take activations prescaled by 2^112 when
   * max |x| < 2^15 (no overflow), which saves the f16 rebias multiply and gives the same products.
   */
  private denseInput(a: Arena, kind: keyof typeof FLOAT_KERNEL, xp: number, n: number): [KernelName, number] {
    if (kind !== 'F16' || !(a.k.absMax(0, n, 0, xp) < 32768)) return [FLOAT_KERNEL[kind], xp];
    const xs = a.scratch('x112', n * 4);
    if (xs < 0) return [FLOAT_KERNEL[kind], xp];
    a.k.scaleInto(0, n, 0, xp, 2 ** 112, xs);
    return ['denseF16x', xs];
  }

  /** A dense matrix cut across memories: each part in its memory, columns gathered into the first. */
  private matmulParts(o: CpuBuf, xb: CpuBuf, l: CpuLinear, rows: number): void {
    const N = l.outFeatures;
    const F = l.parts![0].arena;
    const opF = this.outPtr(o, F, 0, rows * N);
    for (const part of l.parts!) {
      const A = part.arena;
      const xp = this.mm.at(xb, A, true);
      const op = A === F ? opF : this.mm.at(o, A, false);
      const [kernel, xin] = this.denseInput(A, l.kind as keyof typeof FLOAT_KERNEL, xp, rows * l.inFeatures);
      this.pool.run(A, kernel, part.c1 - part.c0, 4, [rows, l.inFeatures, N, part.w, xin, part.bias, op + part.c0 * 4]);
      if (A !== F) {
        const src = A.f32;
        const dst = F.f32;
        for (let r = 0; r < rows; r++) {
          const s0 = (op >>> 2) + r * N + part.c0;
          dst.set(src.subarray(s0, s0 + part.c1 - part.c0), (opF >>> 2) + r * N + part.c0);
        }
      }
    }
    this.mm.written(o, F, rows * N);
  }

  rope(x: RowView, rows: number, p: RopeParams): void {
    const b = asBuf(x.buf);
    const { heads, headDim, rotaryDim: rd } = p;
    if (!(rd > 0 && rd % 2 === 0 && rd <= headDim)) throw new ArgumentError(`rope: rotaryDim must be even and in (0, headDim], got ${rd}`);
    if (rows === 0) return;
    const end = (rows - 1) * x.stride + x.offset + heads * headDim;
    checkRange('rope', b, 0, end);
    const a = this.mm.validArena(b);
    const xp = this.mm.at(b, a, true);
    const table = ropeTable(p.base, rd, p.pos0, rows);
    const cs = a.scratch('rope', table.byteLength);
    if (cs < 0) throw oom(a);
    a.f32.set(table, cs >>> 2);
    this.pool.run(a, 'rope', rows, 1, [heads, x.stride, x.offset, headDim, rd, xp, cs]);
    this.mm.written(b, a, end);
  }

  attention(out: Buf, q: RowView, kv: KVStore, p: AttentionParams): void {
    const s = asKV(kv);
    const o = asBuf(out);
    const qb = asBuf(q.buf);
    const { rows, heads, headDim, kvLen } = p;
    if (o === qb) throw new ArgumentError('attention: out and q must be different buffers');
    if (heads !== s.heads || headDim !== s.headDim) throw new ArgumentError(`attention: heads/headDim ${heads}/${headDim} differ from the KV store's ${s.heads}/${s.headDim}`);
    if (!(rows >= 1 && kvLen >= rows && kvLen <= s.capacity)) throw new ArgumentError(`attention: kvLen ${kvLen} must be in [rows=${rows}, capacity=${s.capacity}]`);
    const W = heads * headDim;
    checkRange('attention (q)', qb, 0, (rows - 1) * q.stride + q.offset + W);
    checkRange('attention (out)', o, 0, rows * W);
    const a = s.arena;
    const qp = this.mm.at(qb, a, true);
    const ln = lognTable(p.pos0, rows, p.lognSeqLength);
    const lp = a.scratch('logn', rows * 4);
    const stride = align64((kvLen + headDim) * 4);
    const sp = a.scratch('attn', stride * this.pool.threads);
    if (lp < 0 || sp < 0) throw oom(a);
    a.f32.set(ln, lp >>> 2);
    const op = this.outPtr(o, a, 0, rows * W);
    this.pool.run(a, 'attention', rows * heads, 1, [
      rows, heads, headDim, kvLen, qp, q.stride, q.offset, s.k, s.v, s.quant === 'f32' ? 0 : 1, s.kPar, s.vPar, op, p.scale, lp, sp, stride,
    ]);
    this.mm.written(o, a, rows * W);
  }

  swiglu(out: Buf, a: Buf, b: Buf, n: number): void {
    const ob = asBuf(out);
    const ab = asBuf(a);
    const bb = asBuf(b);
    for (const [w, x] of [
      ['out', ob],
      ['a', ab],
      ['b', bb],
    ] as const) checkRange(`swiglu (${w})`, x, 0, n);
    const m = this.mm.validArena(ab);
    const ap = this.mm.at(ab, m, true);
    const bp = this.mm.at(bb, m, true);
    const op = this.outPtr(ob, m, 0, n);
    this.pool.run(m, 'swiglu', n, 2048, [op, ap, bp]);
    this.mm.written(ob, m, n);
  }

  add(x: Buf, y: Buf, n: number): void {
    const xb = asBuf(x);
    const yb = asBuf(y);
    checkRange('add (x)', xb, 0, n);
    checkRange('add (y)', yb, 0, n);
    const m = this.mm.validArena(xb);
    const xp = this.mm.at(xb, m, true);
    const yp = this.mm.at(yb, m, true);
    this.pool.run(m, 'addInPlace', n, 4096, [xp, yp]);
    this.mm.written(xb, m, n);
  }

  // ---- results ----

  async argmax(x: Buf, offset: number, n: number): Promise<number> {
    if (!(n >= 1)) throw new ArgumentError(`argmax: n must be ≥ 1, got ${n}`);
    return argmaxOf(this.readNow(x, offset, n));
  }

  argmaxToken(x: Buf, offset: number, n: number): TokenRef {
    if (!(n >= 1)) throw new ArgumentError(`argmaxToken: n must be ≥ 1, got ${n}`);
    return new KnownToken(argmaxOf(this.readNow(x, offset, n)));
  }

  async readToken(t: TokenRef): Promise<number> {
    return KnownToken.idOf(t, 'readToken');
  }

  async topK(x: Buf, offset: number, n: number, k: number): Promise<TopK> {
    if (!(Number.isInteger(k) && k >= 1 && k <= n)) throw new ArgumentError(`topK: k must be in [1, n=${n}], got ${k}`);
    return topKOf(await this.read(x, offset, n), k);
  }

  async flush(): Promise<void> {}

  memoryUsage(): MemoryUsage {
    this.trackPeak();
    return { weightBytes: this.weightBytes, kvBytes: this.kvBytes, activationBytes: this.activationBytes(), peakBytes: this.peak };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.pool.dispose();
  }
}

let f16Lut: Float32Array | undefined;
/** f16 bits → f32 for every bit pattern (host-side gathers from cut embeddings). */
function f16Table(): Float32Array {
  if (!f16Lut) {
    f16Lut = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const s = h & 0x8000 ? -1 : 1;
      f16Lut[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  return f16Lut;
}

function oom(a: Arena): BackendError {
  return new BackendError(`out of wasm memory for scratch in memory ${a.index}`);
}

function checkRange(op: string, b: CpuBuf, offset: number, length: number): void {
  if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 && offset + length <= b.length)) {
    throw new ArgumentError(`${op}: range [${offset}, ${offset + length}) outside a buffer of ${b.length}`);
  }
}

function asBuf(b: Buf): CpuBuf {
  if (!(b instanceof CpuBuf)) throw new ArgumentError('buffer does not belong to the CPU backend');
  return b;
}
function asKV(k: KVStore): CpuKV {
  if (!(k instanceof CpuKV)) throw new ArgumentError('KV store does not belong to the CPU backend');
  if (k.freed) throw new ArgumentError('KV store was freed');
  return k;
}
function asLinear(l: Linear): CpuLinear {
  if (!(l instanceof CpuLinear)) throw new ArgumentError('linear does not belong to the CPU backend');
  return l;
}
function asEmbedding(e: Embedding): CpuEmbedding {
  if (!(e instanceof CpuEmbedding)) throw new ArgumentError('embedding does not belong to the CPU backend');
  return e;
}
function asVec(v: Vec): CpuVec {
  if (!(v instanceof CpuVec)) throw new ArgumentError('vector does not belong to the CPU backend');
  return v;
}
