/**
 * The WebGPU implementation of the Backend table (host side of wgsl/*.wgsl).
 * Weights keep their checkpoint encoding (re-tiled at upload, split across bindings when a
 * tensor exceeds the device's storage binding size); activations are f32 storage buffers.
 */
import { BufferUsage } from './consts.js';
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
import type { TensorSource } from '../../io/source.js';
import type { GpuWaitHooks } from '../../platform.js';
import { ArgumentError, BackendError, CheckpointError } from '../../errors.js';
import { Recorder, SLOT, f32, whole, type GBuf, type BindRange, type BindKind, type Kernel } from './recorder.js';
import { KernelCache, type KernelSpec } from './kernels.js';
import { TILE, SZ_WORDS, packGptq, denseWordsPerRow, padRows, floatsFrom, ropeTable, lognTable } from './layout.js';
import { DEFAULT_INT4_VARIANT, dispatchDual, dispatchGrouped, Int4Variant, intInput, pairable, quantSet, type GemvContext, type HeldGemv, type HeldNorm, type QuantX } from './gemvInt4.js';

const STORAGE = BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC;
/** Decode attention splits the cache into chunks of this many slots (wgsl/attention.wgsl CH). */
const ATT_CHUNK = 64;
/** Largest k selected on the GPU; larger k reads the slice back and sorts on the host. */
const TOPK_GPU_MAX = 1024;
/** Bytes read from a tensor source per call while uploading. */
const READ_SLAB = 64 * 1024 * 1024;
/** argmaxToken results live in this many 256-byte slots, reused in turn. */
const TOKEN_SLOTS = 64;

export interface WebGpuOptions {
  /** Cap on one weight binding (bytes); tests force a small one to exercise tensor splitting. */
  maxBindingSize?: number;
  /**
   * Submit the recorded commands every this many dispatches (no wait), so the GPU starts while
   * the host still encodes the rest of a step. 0 = only when a result is needed. Default 96.
   */
  submitEvery?: number;
  /**
   * After each wait for the GPU, the first submit comes after this many dispatches and the chunk
   * doubles up to submitEvery, so an idle GPU starts at once. 0 = whole submitEvery chunks. Default 8.
   */
  submitFirst?: number;
  /**
   * Embedding tables of at least this many bytes stay in host memory; embed() uploads only the
   * gathered rows (a table is only ever read by row: Qwen-14B's fp16 wte would be 1.56 GB of GPU
   * memory, which its 10 GB budget for encoding 2048 tokens does not have). A table on the GPU lets
   * greedy decoding run step after step without waiting for the host (the token's row is gathered
   * on the GPU); from host memory each step's row upload waits for the token's readback, until
   * the table's copy (embeddingMirror) is whole.
   * Default 1 GiB (Qwen-1.8B's 622 MB table on the GPU; 7B's and 14B's on the host); 0 keeps
   * every table on the host, Infinity none.
   */
  hostEmbeddingBytes?: number;
  /**
   * A table kept in host memory (hostEmbeddingBytes) is copied to the GPU while the model decodes,
   * `embeddingMirrorSlice` bytes at a time (no step waits for a whole table), and once the copy is whole, decode gathers
   * token rows on the GPU and greedy steps no longer wait for the host between tokens (H200, 14B:
   * −0.26 ms a token, bench/NOTES.md session 7). The copy stays until dispose: a prompt encoded
   * afterwards runs with the table on the GPU (Qwen-14B: +1.56 GB; encoding 2048 tokens then
   * peaks at 10.7 GB instead of 9.1). Default false: with the integer GEMVs the steady-state gain
   * (H200, 14B: p50 5.1–5.6 → 4.9–5.3 ms) no longer outweighs the memory and the slower tokens
   * while it copies (session 8). A copy the device has no memory for is given up, not an error.
   */
  embeddingMirror?: boolean;
  /**
   * Bytes of a host-memory table uploaded at a time while it is being copied. Default 2 MiB:
   * with paced readbacks the slices go into the host's idle time before a token's data is due (as
   * many as fit while more than 1.5 ms remain: Qwen-14B's table is whole within ≈ 250 tokens on
   * the H200, those tokens ≈ 1.2 ms slower on average); uploaded inside the step's recording, 4 MiB
   * cost a 14B step ≈ 1.3 ms and 16 MiB ≈ 3.5 ms.
   */
  embeddingMirrorSlice?: number;
  /**
   * Wait for a decode token's readback only from shortly before the GPU is expected to finish it
   * (a timer, from the measured latency of earlier tokens) instead of at once. Dawn in Node polls
   * with setImmediate while a map is pending, which allocates ≈ 110 KB per ms of waiting; the GC
   * that follows paused decode for 10–80 ms every ≈ 50 tokens. On the H200 (14B, bench/NOTES.md,
   * session 4) it lifted mean decode by 6–8 % at an unchanged median. Default false here; the
   * backend selection turns it on where the platform says so (Platform.gpuPollsEventLoop: Node).
   */
  pacedReadback?: boolean;
  /**
   * How a paced wait ends: 'near' (default) spends the last stretch on the host's own event-loop
   * turns, so that Dawn's polling — whose garbage ends in Mark-Compact pauses — runs only ≈ 0.15 ms
   * a token; 'early' hands the whole end of the wait to Dawn. H200, 14B (bench/NOTES.md, session
   * 6): the 50–100 ms stalls went (max interval 101 → 8 ms), mean 146 → 161 tok/s at context 1 and
   * 140 → 149 at 2048. See Recorder.paceMode.
   */
  paceMode?: 'early' | 'near';
  /** Called around every wait for the GPU (Platform.gpuWaitHooks; Node: patient polling). */
  waitHooks?: GpuWaitHooks;
  /**
   * Decode attention over an int8 cache scores each slot with 4 lanes reading the key row as
   * 16-byte words (4, default) or with one lane per slot (1). Heads of a multiple of 64 dims only;
   * the others always use 1. On the H200, 14B at context 2048: 7.08 vs 7.40 ms per token (NOTES).
   */
  attnKeyLanes?: 1 | 4;
  /**
   * Experimental: where the adapter has the `subgroups` feature, decode attention reduces its
   * scores' max and sum with subgroup operations (one barrier each instead of six). Exact on
   * SwiftShader (tests); not yet measured on a GPU: default false.
   */
  subgroups?: boolean;
  /**
   * Benchmarks: variant of the one-row int4 GEMV — comma-separated options of the grouped kernel
   * ('Q1' = 4 columns per thread, 'RB2' = 2 word rows per unit, 'GS<n>' = at most n unit slots per
   * workgroup, 'PF' = prefetch the next unit's weights (needs Q1, RB2), 'PF2' = two units ahead,
   * 'EL' = the first unit's loads before the fused RMSNorm prologue, 'DPF' / 'DRB2' / 'DGS<n>' =
   * prefetch, 2-row units and the slot cap of the dual kernel, 'SU' = split units (a warp's loads
   * read neighbouring rows), 'NOMATH' = loads only, a diagnostic, 'ID' = integer math on inputs
   * quantised to 24 bits per block of 16 values, f32-grade) or 'rowtable' (the per-row kernel);
   * '' = 8 columns per thread, 4 rows per unit. Unknown tokens are refused (Int4Variant in
   * gemvInt4.ts). The w1+w2 dual kernel runs whenever 'Q1' is set. Default 'Q1,RB2,GS64,PF,ID,DRB2'
   * (H200, 14B: GPU step 5.46 → 4.40 ms against the f32 'Q1,RB2,GS64,PF,SU'; NOTES, session 8).
   */
  int4Variant?: string;
}

interface PendingRope {
  x: RowView;
  rows: number;
  p: RopeParams;
  table: GBuf;
}

/**
 * rope(k) (and rope(q)) + kvWrite as one rope_kv dispatch; a one-row one with q is held back for
 * the decode attention that follows, which can run it in its own pass (ROPEKV).
 */
interface RopeKv {
  s: WKV;
  /** the fused q|k|v rows' buffer, their stride and the offsets of k, v and q (−1: no q rope) */
  x: GBuf;
  stride: number;
  kOff: number;
  vOff: number;
  qOff: number;
  rows: number;
  slot: number;
  rope: RopeParams;
  table: GBuf;
}

class WBuf implements Buf {
  constructor(
    readonly length: number,
    readonly g: GBuf,
  ) {}
}

class WVec implements Vec {
  constructor(
    readonly length: number,
    readonly g: GBuf,
  ) {}
}

type Enc = 'F32' | 'F16' | 'BF16';

interface DenseChunk {
  g: GBuf;
  row0: number;
  rows: number;
}

class WDense implements Linear {
  readonly kind = 'dense' as const;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly bytes: number,
    readonly enc: Enc,
    readonly wpr: number,
    readonly chunks: DenseChunk[],
    readonly bias: GBuf | undefined,
  ) {}
}

export interface GptqChunk {
  qw: GBuf;
  sz: GBuf;
  tile0: number;
  tiles: number;
}

export class WGptq implements Linear {
  readonly kind = 'gptq' as const;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly bytes: number,
    readonly R: number,
    readonly G: number,
    readonly chunks: GptqChunk[],
    readonly rowGroup: GBuf,
    readonly rowsPerGroup: number,
    readonly perm: GBuf | undefined,
    readonly bias: GBuf | undefined,
  ) {}
}

class WEmbedding implements Embedding {
  constructor(
    readonly rows: number,
    readonly dim: number,
    readonly enc: Enc,
    readonly wordsPerRow: number,
    readonly chunks: DenseChunk[],
    /** the table in host memory (checkpoint bytes, rows of dim elements), when not on the GPU */
    readonly host?: Uint8Array,
  ) {}
  /** the GPU copy of a host table, filled slice by slice during decode (WebGpuOptions.embeddingMirror) */
  mirror?: EmbeddingMirror;
}

interface EmbeddingMirror {
  chunks: DenseChunk[];
  /** rows uploaded so far (in order from row 0) */
  rows: number;
  /** a new chunk's allocation is being checked for out-of-memory: no uploads until it is */
  checking: boolean;
  /** the device had no memory for it: the table stays on the host */
  failed: boolean;
  /** the copy's next step, as the recorder's idle work (one closure per table, not per token) */
  step: () => boolean;
}

/** A token id in slot `at` of the device tokens buffer (argmaxToken). */
class WToken implements TokenRef {
  readonly kind = 'token';
  value?: Promise<number>;
  constructor(
    readonly owner: WebGpuBackend,
    readonly seq: number,
    readonly at: number,
    /** reads the id back (call once: see tokenValue) */
    readonly read: () => Promise<ArrayBuffer>,
  ) {}
}

class WKV implements KVStore {
  readonly width: number;
  constructor(
    readonly capacity: number,
    readonly heads: number,
    readonly headDim: number,
    readonly quant: KVQuant,
    readonly k: GBuf,
    readonly v: GBuf,
    readonly km: GBuf | undefined,
    readonly vm: GBuf | undefined,
  ) {
    this.width = heads * headDim;
    this.binds = { k: whole(k), v: whole(v), km: km && whole(km), vm: vm && whole(vm) };
  }
  get bytes(): number {
    return this.k.size + this.v.size + (this.km?.size ?? 0) + (this.vm?.size ?? 0);
  }
  /** the store's buffers as bind ranges, built once (kernels bind them on every decode step) */
  readonly binds: { k: BindRange; v: BindRange; km?: BindRange; vm?: BindRange };
}

interface PosTable {
  g: GBuf;
  positions: number;
}

export class WebGpuBackend implements Backend {
  readonly kind = 'webgpu' as const;
  readonly asyncExecution = true;
  readonly rec: Recorder;
  private readonly kernels: KernelCache;
  /** Largest storage binding / buffer the device allows (bytes, multiple of 256). */
  readonly maxBinding: number;
  /** Largest binding used for one chunk of a weight tensor (≤ maxBinding). */
  readonly maxWeightBinding: number;
  private readonly dummy: GBuf;
  private weightBytes = 0;
  private kvBytes = 0;
  private actBytes = 0;
  private peak = 0;
  private scratch = new Map<string, GBuf>();
  private ropeTables = new Map<string, PosTable>();
  private lognTables = new Map<number, PosTable>();
  private owned = new Set<GBuf>();
  private disposed = false;
  /** A residual add held back so that a following rmsNorm of the same rows can fuse it. */
  private pendingAdd: { x: GBuf; y: GBuf; n: number } | null = null;
  /** RoPE calls held back so that q and k rotate in one dispatch, fused with a following kvWrite. */
  private pendingRopes: PendingRope[] = [];
  private heldRopeKv: RopeKv | null = null;
  /** A one-row int4 GEMV held back so that a following swiglu on its output becomes its epilogue. */
  private pendingMatmul: HeldGemv | null = null;
  /** A second one-row int4 GEMV on the same x (w2 after w1): a following swiglu fuses all three. */
  private pendingPair: HeldGemv | null = null;
  /** A one-row RMSNorm held back: the next int4 GEMV on its output runs it as a prologue. */
  private pendingNorm: HeldNorm | null = null;
  /**
   * A dual w1+w2 GEMV held back: if the next op is an integer GEMV on its output, the dual's
   * epilogue quantises that input (no quantisation dispatch).
   */
  private pendingDual: { a: HeldGemv; b: HeldGemv } | null = null;
  /**
   * The last decode attention's output, also quantised for an integer GEMV (QOUT): valid for
   * a GEMV on `x` while nothing has been recorded since (rec.changes; checked after settle, so
   * that an op held in between counts).
   */
  private attnQuant: { x: GBuf; width: number; q: QuantX; at: number } | null = null;
  /** what the int4 GEMV dispatchers (gemvInt4.ts) use of this backend */
  private readonly gemv: GemvContext;
  /** Kernels of the hot paths by a short key (KernelCache keys are costly to build per dispatch). */
  private hot = new Map<string | number, Kernel>();
  private readonly hostEmbeddingBytes: number;
  private readonly embeddingMirror: boolean;
  private readonly mirrorSlice: number;
  /** argmaxToken results (TOKEN_SLOTS slots) and how many argmaxToken calls there were */
  private tokens: GBuf | null = null;
  private tokenSeq = 0;
  /** see WebGpuOptions.attnKeyLanes (settable for benchmarks) */
  attnKeyLanes: 1 | 4;
  /** see WebGpuOptions.subgroups (settable for benchmarks; takes effect only with the feature) */
  useSubgroups: boolean;
  /** see WebGpuOptions.int4Variant (parsed once; settable for benchmarks) */
  private variant: Int4Variant;
  get int4Variant(): string {
    return this.variant.text;
  }
  set int4Variant(v: string) {
    this.variant = new Int4Variant(v);
  }

  constructor(
    readonly device: GPUDevice,
    readonly description: string,
    readonly features: { subgroups: boolean; timestamps: boolean; f16: boolean },
    opts: WebGpuOptions = {},
  ) {
    this.rec = new Recorder(device, features.timestamps);
    this.rec.submitEvery = opts.submitEvery ?? 96;
    this.rec.submitFirst = opts.submitFirst ?? 8;
    this.rec.pacedReadback = opts.pacedReadback ?? false;
    this.rec.paceMode = opts.paceMode ?? 'near';
    this.rec.waitHooks = opts.waitHooks;
    this.attnKeyLanes = opts.attnKeyLanes ?? 4;
    this.useSubgroups = opts.subgroups ?? false;
    this.kernels = new KernelCache(device);
    const self = this;
    this.gemv = {
      rec: this.rec,
      limits: device.limits,
      kernel: (key, spec) => this.hk(key, spec),
      get dummy() {
        return self.dummy;
      },
      get variant() {
        return self.variant;
      },
      scratch: (name, bytes) => this.scratchBuf(name, bytes),
      quantSets: [undefined, undefined],
    };
    const lim = device.limits;
    const max = Math.min(lim.maxStorageBufferBindingSize, lim.maxBufferSize);
    this.maxBinding = Math.floor(max / 256) * 256;
    this.maxWeightBinding = Math.floor(Math.min(max, opts.maxBindingSize ?? max) / 256) * 256;
    this.dummy = this.rec.createBuffer(16, STORAGE, 'dummy');
    this.hostEmbeddingBytes = opts.hostEmbeddingBytes ?? 1024 * 1024 * 1024;
    this.embeddingMirror = opts.embeddingMirror ?? false;
    this.mirrorSlice = opts.embeddingMirrorSlice ?? 2 * 1024 * 1024;
    this.variant = new Int4Variant(opts.int4Variant ?? DEFAULT_INT4_VARIANT);
  }

  // ------------------------------------------------------------------ memory bookkeeping

  private track(): void {
    this.peak = Math.max(this.peak, this.weightBytes + this.kvBytes + this.actBytes);
  }

  private buffer(bytes: number, label: string, what: 'weight' | 'kv' | 'act'): GBuf {
    if (this.disposed) throw new BackendError('webgpu: backend is disposed');
    if (bytes > this.maxBinding) {
      throw new BackendError(`webgpu: ${label} needs ${bytes} bytes in one binding; this device allows ${this.maxBinding}`);
    }
    const g = this.rec.createBuffer(bytes, STORAGE, label);
    this.owned.add(g);
    if (what === 'weight') this.weightBytes += g.size;
    else if (what === 'kv') this.kvBytes += g.size;
    else this.actBytes += g.size;
    this.track();
    return g;
  }

  private drop(g: GBuf | undefined, what: 'weight' | 'kv' | 'act'): void {
    if (!g || !this.owned.delete(g)) return;
    if (what === 'weight') this.weightBytes -= g.size;
    else if (what === 'kv') this.kvBytes -= g.size;
    else this.actBytes -= g.size;
    this.rec.release(g);
  }

  /** Records the held-back ops, if any (every op calls this first unless it fuses them). */
  private settle(): void {
    // in the order they were held: a GEMV (or pair, or dual) can be held before a norm of its
    // residual sum (see rmsNorm), never after one; an add is held only with nothing else
    const d = this.pendingDual;
    if (d) {
      this.pendingDual = null;
      dispatchDual(this.gemv, d.a, d.b);
    }
    const m = this.pendingMatmul;
    if (m) {
      this.pendingMatmul = null;
      dispatchGrouped(this.gemv, m, undefined);
    }
    const m2 = this.pendingPair;
    if (m2) {
      this.pendingPair = null;
      dispatchGrouped(this.gemv, m2, undefined);
    }
    const nrm = this.pendingNorm;
    if (nrm) {
      this.pendingNorm = null;
      this.rmsNormNow(nrm.out, nrm.x, nrm.w, 1, nrm.eps, nrm.cols);
    }
    const a = this.pendingAdd;
    if (a) {
      this.pendingAdd = null;
      if (a.x === a.y) this.ew('add_self', ['SELF'], a.n, [0, 0], { 1: whole(a.x) });
      else this.ew('add', [], a.n, [0, 0], { 1: whole(a.x), 2: whole(a.y) });
    }
    if (this.pendingRopes.length) this.flushRopes();
    const rk = this.heldRopeKv;
    if (rk) {
      this.heldRopeKv = null;
      this.dispatchRopeKv(rk);
    }
  }

  /**
   * A hot-path kernel, memoised by `key` (which must determine `spec`): a string, or a number where
   * even building a short string per dispatch is worth avoiding (attention below 1 << 20, rope+kv
   * write from 1 << 20).
   */
  private hk(key: string | number, spec: () => KernelSpec): Kernel {
    let k = this.hot.get(key);
    if (!k) {
      k = this.kernels.get(spec());
      this.hot.set(key, k);
    }
    return k;
  }

  private upload(g: GBuf, data: ArrayBufferView, offset = 0): void {
    this.settle();
    this.rec.write(g.buffer, offset, data);
  }

  /** A scratch buffer of at least `bytes`, grown (never shrunk) per purpose. */
  private scratchBuf(name: string, bytes: number): GBuf {
    let g = this.scratch.get(name);
    if (!g || g.size < bytes) {
      if (g) this.drop(g, 'act');
      g = this.buffer(Math.max(bytes, g ? g.size * 2 : 0), `scratch ${name}`, 'act');
      this.scratch.set(name, g);
    }
    return g;
  }

  private k(spec: KernelSpec) {
    return this.kernels.get(spec);
  }

  // ------------------------------------------------------------------ weights

  async uploadLinear(src: LinearSource, _at: Placement): Promise<Linear> {
    return src.kind === 'dense' ? this.uploadDense(src) : this.uploadGptq(src);
  }

  private async uploadBias(src: TensorSource | undefined, n: number, name: string): Promise<GBuf | undefined> {
    if (!src) return undefined;
    const count = src.shape.reduce((a, b) => a * b, 1);
    if (count !== n) throw new CheckpointError(`${src.name}: bias has ${count} values, expected ${n}`, { tensor: src.name });
    const bytes = new Uint8Array(src.byteLength);
    await src.read(0, bytes);
    const g = this.buffer(4 * n, `${name} bias`, 'weight');
    this.upload(g, floatsFrom(src.dtype, bytes, n, src.name));
    return g;
  }

  private encOf(t: TensorSource): Enc {
    if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') return t.dtype;
    throw new CheckpointError(`${t.name}: dtype ${t.dtype} unsupported (F32, F16 or BF16 expected)`, { tensor: t.name });
  }

  /** Uploads a row-major [rows, K] float matrix as chunks of whole rows padded to wpr words. */
  private async uploadRows(t: TensorSource, rows: number, K: number, label: string): Promise<{ enc: Enc; wpr: number; chunks: DenseChunk[] }> {
    const enc = this.encOf(t);
    const eb = enc === 'F32' ? 4 : 2;
    if (t.byteLength !== rows * K * eb) {
      throw new CheckpointError(`${t.name}: ${t.byteLength} bytes, expected ${rows}×${K} ${enc}`, { tensor: t.name });
    }
    const wpr = denseWordsPerRow(K, eb as 2 | 4);
    const rowBytes = wpr * 4;
    const perChunk = Math.floor(this.maxWeightBinding / rowBytes);
    if (perChunk < 1) throw new BackendError(`webgpu: one row of ${t.name} (${rowBytes} bytes) exceeds the binding size ${this.maxWeightBinding}`);
    const chunks: DenseChunk[] = [];
    const slabRows = Math.max(1, Math.floor(READ_SLAB / rowBytes));
    for (let row0 = 0; row0 < rows; row0 += perChunk) {
      const n = Math.min(perChunk, rows - row0);
      const g = this.buffer(n * rowBytes, `${label} [${row0}..${row0 + n})`, 'weight');
      for (let r = 0; r < n; r += slabRows) {
        const m = Math.min(slabRows, n - r);
        const raw = new Uint8Array(m * K * eb);
        await t.read((row0 + r) * K * eb, raw);
        let data = raw;
        if (K * eb !== rowBytes) {
          data = new Uint8Array(m * rowBytes);
          padRows(raw, m, K, eb, wpr, data);
        }
        this.upload(g, data, r * rowBytes);
      }
      chunks.push({ g, row0, rows: n });
    }
    return { enc, wpr, chunks };
  }

  private async uploadDense(src: Extract<LinearSource, { kind: 'dense' }>): Promise<Linear> {
    const { inFeatures: K, outFeatures: N } = src;
    const shape = src.weight.shape;
    if (shape.length !== 2 || shape[0] !== N || shape[1] !== K) {
      throw new CheckpointError(`${src.weight.name}: shape [${shape}] but expected [${N}, ${K}]`, { tensor: src.weight.name });
    }
    const { enc, wpr, chunks } = await this.uploadRows(src.weight, N, K, src.weight.name);
    const bias = await this.uploadBias(src.bias, N, src.weight.name);
    return new WDense(K, N, src.weight.byteLength, enc, wpr, chunks, bias);
  }

  private async uploadGptq(src: Extract<LinearSource, { kind: 'gptq' }>): Promise<Linear> {
    const { inFeatures: K, outFeatures: N, groupSize } = src;
    const name = src.qweight.name.replace(/\.qweight$/, '');
    const read = async (t: TensorSource, dtype: string, expect: number) => {
      if (t.dtype !== dtype) throw new CheckpointError(`${t.name}: dtype ${t.dtype}, expected ${dtype}`, { tensor: t.name });
      if (t.byteLength !== expect) throw new CheckpointError(`${t.name}: ${t.byteLength} bytes, expected ${expect}`, { tensor: t.name });
      const b = new Uint8Array(t.byteLength);
      await t.read(0, b);
      return b;
    };
    if (src.bits !== 4) throw new CheckpointError(`${name}: only 4-bit GPTQ is supported (bits=${src.bits})`, { tensor: name });
    if (!(groupSize > 0) || groupSize % 8 !== 0) throw new CheckpointError(`${name}: group_size ${groupSize} must be a positive multiple of 8`, { tensor: name });
    const G = Math.ceil(K / groupSize);
    const qweight = await read(src.qweight, 'I32', (K / 8) * N * 4);
    const gIdxBytes = src.gIdx ? await read(src.gIdx, 'I32', K * 4) : undefined;
    const gIdx = gIdxBytes ? new Int32Array(gIdxBytes.buffer, 0, K) : undefined;
    let groups = G;
    if (gIdx) for (let k = 0; k < K; k++) groups = Math.max(groups, gIdx[k] + 1);
    const qzeros = await read(src.qzeros, 'I32', groups * (N / 8) * 4);
    const scales = await read(src.scales, 'F16', groups * N * 2);
    const packed = packGptq(
      name,
      K,
      N,
      groupSize,
      new Uint32Array(qweight.buffer, 0, qweight.byteLength / 4),
      new Uint32Array(qzeros.buffer, 0, qzeros.byteLength / 4),
      new Uint16Array(scales.buffer, 0, scales.byteLength / 2),
      gIdx,
    );
    const { R, tiles } = packed;
    const tileBytes = R * TILE * 4;
    const perChunk = Math.floor(this.maxWeightBinding / tileBytes);
    if (perChunk < 1) throw new BackendError(`webgpu: one ${TILE}-column tile of ${name} (${tileBytes} bytes) exceeds the binding size ${this.maxWeightBinding}`);
    const chunks: GptqChunk[] = [];
    for (let t0 = 0; t0 < tiles; t0 += perChunk) {
      const n = Math.min(perChunk, tiles - t0);
      const qw = this.buffer(n * tileBytes, `${name}.qweight tiles [${t0}..${t0 + n})`, 'weight');
      this.upload(qw, packed.qw.subarray(t0 * R * TILE, (t0 + n) * R * TILE));
      const szWords = packed.G * SZ_WORDS;
      const sz = this.buffer(n * szWords * 4, `${name}.scales tiles [${t0}..${t0 + n})`, 'weight');
      this.upload(sz, packed.sz.subarray(t0 * szWords, (t0 + n) * szWords));
      chunks.push({ qw, sz, tile0: t0, tiles: n });
    }
    const rowGroup = this.buffer(4 * R, `${name} row groups`, 'weight');
    this.upload(rowGroup, packed.rowGroup);
    let perm: GBuf | undefined;
    if (packed.perm) {
      perm = this.buffer(4 * K, `${name} act-order permutation`, 'weight');
      this.upload(perm, packed.perm);
    }
    const bias = await this.uploadBias(src.bias, N, name);
    const bytes = src.qweight.byteLength + src.qzeros.byteLength + src.scales.byteLength;
    return new WGptq(K, N, bytes, R, packed.G, chunks, rowGroup, packed.rowsPerGroup, perm, bias);
  }

  async uploadEmbedding(src: TensorSource, _at: Placement): Promise<Embedding> {
    if (src.shape.length !== 2) throw new CheckpointError(`${src.name}: embedding must be 2-D, got [${src.shape}]`, { tensor: src.name });
    const [rows, dim] = src.shape;
    const enc = this.encOf(src);
    const eb = enc === 'F32' ? 4 : 2;
    if (src.byteLength >= this.hostEmbeddingBytes) {
      if (src.byteLength !== rows * dim * eb) {
        throw new CheckpointError(`${src.name}: ${src.byteLength} bytes, expected ${rows}×${dim} ${enc}`, { tensor: src.name });
      }
      const host = new Uint8Array(src.byteLength);
      for (let off = 0; off < host.length; off += READ_SLAB) await src.read(off, host.subarray(off, Math.min(host.length, off + READ_SLAB)));
      return new WEmbedding(rows, dim, enc, denseWordsPerRow(dim, eb as 2 | 4), [], host);
    }
    const { wpr, chunks } = await this.uploadRows(src, rows, dim, src.name);
    return new WEmbedding(rows, dim, enc, wpr, chunks);
  }

  async uploadVector(src: TensorSource, _at: Placement): Promise<Vec> {
    const n = src.shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(src.byteLength);
    await src.read(0, bytes);
    const g = this.buffer(4 * n, src.name, 'weight');
    this.upload(g, floatsFrom(src.dtype, bytes, n, src.name));
    return new WVec(n, g);
  }

  // ------------------------------------------------------------------ activations

  alloc(length: number, _at: Placement): Buf {
    return new WBuf(length, this.buffer(4 * Math.max(1, length), `activation[${length}]`, 'act'));
  }

  free(buf: Buf): void {
    this.settle();
    this.drop((buf as WBuf).g, 'act');
  }

  write(buf: Buf, data: Float32Array, offset = 0): void {
    const b = buf as WBuf;
    if (offset < 0 || offset + data.length > b.length) throw new ArgumentError(`write: ${data.length} values at ${offset} exceed the buffer (${b.length})`);
    this.upload(b.g, data, 4 * offset);
  }

  async read(buf: Buf, offset: number, length: number): Promise<Float32Array> {
    this.settle();
    const b = buf as WBuf;
    if (offset < 0 || offset + length > b.length) throw new ArgumentError(`read: [${offset}, ${offset + length}) exceeds the buffer (${b.length})`);
    return new Float32Array(await this.rec.readBytes(b.g, 4 * offset, 4 * length));
  }

  private ew(entry: string, defines: string[], n: number, params: number[], bufs: Record<number, BindRange>): void {
    const k = this.hk(`ew|${entry}|${defines.join(',')}`, () => {
      const bindings: Record<number, 'r' | 'w'> = { 1: 'w' };
      if (!defines.includes('SELF')) bindings[2] = 'r';
      if (defines.includes('TWO') || defines.includes('GATHER')) bindings[3] = 'r';
      return { file: 'elementwise', entry, defines, bindings };
    });
    this.rec.dispatch(k, [n, ...params, 0, 0, 0, 0, 0, 0, 0].slice(0, 8), bufs, [Math.ceil(n / 256)]);
  }

  copy(dst: Buf, dstOffset: number, src: Buf, srcOffset: number, length: number): void {
    this.settle();
    const d = dst as WBuf;
    const s = src as WBuf;
    if (length <= 0) return;
    if (dstOffset + length > d.length || srcOffset + length > s.length) throw new ArgumentError('copy: range exceeds a buffer');
    if (d.g !== s.g) {
      this.ew('copy', [], length, [dstOffset, srcOffset], { 1: whole(d.g), 2: whole(s.g) });
    } else if (dstOffset === srcOffset) {
      return;
    } else if (Math.abs(dstOffset - srcOffset) >= length) {
      this.ew('copy_self', ['SELF'], length, [dstOffset, srcOffset], { 1: whole(d.g) });
    } else {
      const tmp = this.scratchBuf('copy', 4 * length);
      this.ew('copy', [], length, [0, srcOffset], { 1: whole(tmp), 2: whole(s.g) });
      this.ew('copy', [], length, [dstOffset, 0], { 1: whole(d.g), 2: whole(tmp) });
    }
  }

  // ------------------------------------------------------------------ KV cache

  kvCreate(capacity: number, heads: number, headDim: number, quant: KVQuant, _at: Placement): KVStore {
    const width = heads * headDim;
    if (headDim % 4 !== 0) throw new ArgumentError(`kvCreate: headDim ${headDim} must be a multiple of 4 on WebGPU`);
    if (quant === 'f32') {
      const k = this.buffer(capacity * width * 4, `kv K [${capacity}×${width}]`, 'kv');
      const v = this.buffer(capacity * width * 4, `kv V [${capacity}×${width}]`, 'kv');
      return new WKV(capacity, heads, headDim, quant, k, v, undefined, undefined);
    }
    if (quant !== 'int8') throw new ArgumentError(`kvCreate: quant must be 'f32' or 'int8', got ${String(quant)}`);
    const k = this.buffer(capacity * width, `kv K int8 [${capacity}×${width}]`, 'kv');
    const v = this.buffer(capacity * width, `kv V int8 [${capacity}×${width}]`, 'kv');
    const km = this.buffer(capacity * heads * 8, `kv K meta`, 'kv');
    const vm = this.buffer(capacity * heads * 8, `kv V meta`, 'kv');
    return new WKV(capacity, heads, headDim, quant, k, v, km, vm);
  }

  kvFree(kv: KVStore): void {
    this.settle();
    const s = kv as WKV;
    for (const g of [s.k, s.v, s.km, s.vm]) this.drop(g, 'kv');
  }

  private slotBytes(s: WKV): { main: number; meta: number } {
    return { main: s.quant === 'f32' ? 4 * s.width : s.width, meta: 8 * s.heads };
  }

  kvWrite(kv: KVStore, k: RowView, v: RowView, rows: number, slot: number): void {
    const s = kv as WKV;
    if (rows > 0 && this.pendingRopes.length && this.ropeKv(s, k, v, rows, slot)) return;
    this.settle();
    if (rows <= 0) return;
    if (slot < 0 || slot + rows > s.capacity) throw new ArgumentError(`kvWrite: slots [${slot}, ${slot + rows}) exceed capacity ${s.capacity}`);
    const kb = (k.buf as WBuf).g;
    const vb = (v.buf as WBuf).g;
    const params = [rows, s.width, slot, k.stride, k.offset, v.stride, v.offset, s.headDim, s.heads, 0, 0, 0];
    if (s.quant === 'f32') {
      const kern = this.hk('kv|F32', () => ({ file: 'kv', entry: 'main', defines: ['F32'], bindings: { 1: 'w', 2: 'w', 3: 'r', 6: 'r' } }));
      this.rec.dispatch(kern, params, { 1: whole(s.k), 2: whole(s.v), 3: whole(kb), 6: whole(vb) }, [Math.ceil((rows * s.width) / 256)]);
    } else {
      const kern = this.hk('kv|I8', () => ({ file: 'kv', entry: 'main', defines: ['I8'], bindings: { 1: 'w', 2: 'w', 3: 'r', 4: 'w', 5: 'w', 6: 'r' } }));
      this.rec.dispatch(kern, params, { 1: whole(s.k), 2: whole(s.v), 3: whole(kb), 4: whole(s.km!), 5: whole(s.vm!), 6: whole(vb) }, [rows, s.heads, 2]);
    }
  }

  /**
   * kvWrite fused with the held-back rope of k (and of q): one dispatch rotates q and k in place
   * and stores k and v. Returns false (nothing recorded) when the views do not allow it.
   */
  private ropeKv(s: WKV, k: RowView, v: RowView, rows: number, slot: number): boolean {
    const rs = this.pendingRopes;
    let kr: PendingRope | undefined;
    let qr: PendingRope | undefined;
    for (const r of rs) {
      if (!kr && r.x.buf === k.buf && r.x.offset === k.offset && r.x.stride === k.stride) kr = r;
      else qr ??= r;
    }
    if (!kr || kr.rows !== rows || k.buf !== v.buf || v.stride !== k.stride) return false;
    if (kr.p.heads !== s.heads || kr.p.headDim !== s.headDim || s.headDim > 512) return false;
    if (qr && (qr.p.heads !== s.heads || qr.x.stride !== k.stride)) return false;
    if (slot < 0 || slot + rows > s.capacity) return false; // the plain path reports it
    const last = (rows - 1) * k.stride + Math.max(k.offset, v.offset) + s.width;
    if (last > k.buf.length) return false;
    rs.length = 0;
    const x = (k.buf as WBuf).g;
    const op: RopeKv = { s, x, stride: k.stride, kOff: k.offset, vOff: v.offset, qOff: qr ? qr.x.offset : -1, rows, slot, rope: kr.p, table: kr.table };
    // a decode step: held for the attention over this store, which can do it in its own dispatch
    if (rows === 1 && qr && (qr.x.buf as WBuf).g === x) this.heldRopeKv = op;
    else this.dispatchRopeKv(op);
    return true;
  }

  private dispatchRopeKv(r: RopeKv): void {
    const s = r.s;
    const b = s.binds;
    const withQ = r.qOff >= 0;
    const params = [r.rows, s.width, r.slot, r.stride, r.kOff, r.vOff, withQ ? r.qOff : 0, s.headDim, s.heads, r.rope.rotaryDim / 2, r.rope.pos0, 0];
    const bufs = { 1: whole(r.x), 2: whole(r.table), 3: b.k, 4: b.v, 5: b.km, 6: b.vm } as Record<number, BindRange>;
    const f = s.quant === 'f32';
    const kern = this.hk((1 << 20) + (f ? 0 : 1), () => ({
      file: 'rope_kv',
      entry: 'main',
      defines: [f ? 'F32' : 'I8'],
      bindings: (f ? { 1: 'w', 2: 'r', 3: 'w', 4: 'w' } : { 1: 'w', 2: 'r', 3: 'w', 4: 'w', 5: 'w', 6: 'w' }) as Record<number, BindKind>,
    }));
    this.rec.dispatch(kern, params, bufs, [r.rows, s.heads, withQ ? 3 : 2], [], 'rope+kv write');
  }

  /** The held rope+kv write when this decode attention can run it itself (then no longer held). */
  private takeRopeKv(q: RowView, s: WKV, p: AttentionParams): RopeKv | null {
    const h = this.heldRopeKv;
    if (!h || p.rows !== 1 || h.s !== s || h.x !== (q.buf as WBuf).g || h.qOff !== q.offset || h.slot !== p.kvLen - 1) return null;
    // only while the cache fits one chunk: over several, both forms measured were slower (the
    // cache bound read-write, 14B at 2048: 6.27 → 6.62 ms a step; read-only with the combine pass
    // storing the new slot: +1 ms), while at context 1 it went 5.56 → 5.45 ms (bench/NOTES.md)
    if (p.kvLen > ATT_CHUNK) return null;
    if (h.rope.headDim !== s.headDim || h.rope.heads !== s.heads) return null;
    this.heldRopeKv = null;
    return h;
  }

  kvMove(kv: KVStore, dst: number, src: number, n: number): void {
    this.settle();
    const s = kv as WKV;
    if (n <= 0 || dst === src) return;
    if (Math.min(dst, src) < 0 || Math.max(dst, src) + n > s.capacity) throw new ArgumentError('kvMove: slots exceed capacity');
    const { main, meta } = this.slotBytes(s);
    const pairs: [GBuf, number][] = [
      [s.k, main],
      [s.v, main],
    ];
    if (s.km && s.vm) pairs.push([s.km, meta], [s.vm, meta]);
    for (const [g, per] of pairs) {
      // same-buffer copies must not overlap: go through a scratch buffer
      const tmp = this.scratchBuf('kvmove', n * per);
      this.rec.copyBuffer(g, src * per, tmp, 0, n * per);
      this.rec.copyBuffer(tmp, 0, g, dst * per, n * per);
    }
  }

  kvCopy(to: KVStore, from: KVStore, n: number): void {
    this.settle();
    const a = to as WKV;
    const b = from as WKV;
    if (n <= 0) return;
    if (a.width !== b.width || a.quant !== b.quant || a.heads !== b.heads) throw new ArgumentError('kvCopy: stores differ in shape or quantisation');
    if (n > a.capacity || n > b.capacity) throw new ArgumentError('kvCopy: n exceeds a capacity');
    const { main, meta } = this.slotBytes(a);
    this.rec.copyBuffer(b.k, 0, a.k, 0, n * main);
    this.rec.copyBuffer(b.v, 0, a.v, 0, n * main);
    if (a.km && b.km && a.vm && b.vm) {
      this.rec.copyBuffer(b.km, 0, a.km, 0, n * meta);
      this.rec.copyBuffer(b.vm, 0, a.vm, 0, n * meta);
    }
  }

  // ------------------------------------------------------------------ ops

  embedToken(out: Buf, table: Embedding, token: TokenRef): void {
    this.settle();
    const t = table as WEmbedding;
    const o = out as WBuf;
    const tk = this.ownToken(token, 'embedToken');
    if (t.dim > o.length) throw new ArgumentError(`embedToken: ${t.dim} values exceed the output buffer (${o.length})`);
    const kern = this.hk(`embedTok|${t.enc}`, () => ({ file: 'embed', entry: 'main', defines: [t.enc], bindings: { 1: 'w', 2: 'r', 3: 'r' } }));
    const groups: [number] = [Math.ceil(t.dim / 256)];
    const onGpu = t.host ? this.mirrored(t) : t.chunks;
    if (onGpu) {
      // the id never leaves the GPU: the gather reads it where argmax wrote it
      if (this.tokenSeq - tk.seq > TOKEN_SLOTS) throw new ArgumentError(`embedToken: the token ref is stale (more than ${TOKEN_SLOTS} argmaxToken calls since)`);
      for (const c of onGpu) {
        this.rec.dispatch(kern, [1, t.dim, c.row0, c.rows, t.wordsPerRow, 0, 0, 0], { 1: { buf: o.g, size: 4 * t.dim }, 2: whole(c.g), 3: { buf: this.tokens!, offset: tk.at, size: 16 } }, groups);
      }
      return;
    }
    // A table in host memory: the row is uploaded once the id is read back, and every queue
    // operation recorded after this one waits for that upload (Recorder.block), so the rest of
    // the step is recorded while the GPU still computes the id.
    const host = t.host!;
    const eb = t.enc === 'F32' ? 4 : 2;
    const rowBytes = t.dim * eb;
    const row = this.scratchBuf('embedding token row', t.wordsPerRow * 4);
    const idBuf = this.scratchBuf('embedding token id', 16);
    const value = this.tokenValue(tk);
    const open = this.rec.block();
    value.then(
      (id) => {
        if (!(id < t.rows)) return this.rec.abortDeferred(new ArgumentError(`embedToken: token id ${id} outside the vocabulary (0..${t.rows - 1})`));
        const staged = new Uint8Array(t.wordsPerRow * 4);
        staged.set(host.subarray(id * rowBytes, (id + 1) * rowBytes));
        open(() => this.device.queue.writeBuffer(row.buffer, 0, staged));
      },
      (e: Error) => this.rec.abortDeferred(e),
    );
    this.rec.dispatch(kern, [1, t.dim, 0, 1, t.wordsPerRow, 0, 0, 0], { 1: { buf: o.g, size: 4 * t.dim }, 2: whole(row), 3: whole(idBuf) }, groups);
  }

  /**
   * A host table's GPU copy once it is whole; until then undefined, and the copy goes on: where
   * decode readbacks are paced, a slice at a time in the host's idle time before each token's
   * data is due (Recorder.idleWork), else a slice per call.
   */
  private mirrored(t: WEmbedding): DenseChunk[] | undefined {
    if (!this.embeddingMirror || !t.host) return undefined;
    const m = (t.mirror ??= { chunks: [], rows: 0, checking: false, failed: false, step: () => this.mirrorStep(t) });
    if (m.rows === t.rows) return m.chunks;
    if (m.failed) return undefined;
    if (this.rec.pacedReadback) this.rec.idleWork = m.step;
    else m.step();
    return undefined;
  }

  /** One step of a table's copy (a chunk allocated, or a slice uploaded); whether to go on now. */
  private mirrorStep(t: WEmbedding): boolean {
    const m = t.mirror!;
    if (this.disposed || m.failed || m.rows === t.rows) {
      if (this.rec.idleWork === m.step) this.rec.idleWork = null;
      return false;
    }
    if (m.checking) return false;
    const rowBytes = t.wordsPerRow * 4;
    const c = m.chunks[m.chunks.length - 1];
    if (!c || m.rows === c.row0 + c.rows) {
      // a new chunk (≤ 256 MiB, so GPU memory grows with the copy), checked for out-of-memory
      // before anything is written to it
      const perChunk = Math.max(1, Math.floor(Math.min(this.maxWeightBinding, 256 * 1024 * 1024) / rowBytes));
      const n = Math.min(perChunk, t.rows - m.rows);
      this.device.pushErrorScope('out-of-memory');
      let g: GBuf;
      try {
        g = this.buffer(n * rowBytes, `embedding copy [${m.rows}..${m.rows + n})`, 'weight');
      } catch (e) {
        void this.device.popErrorScope();
        throw e;
      }
      m.chunks.push({ g, row0: m.rows, rows: n });
      m.checking = true;
      this.device.popErrorScope().then(
        (err) => {
          m.checking = false;
          if (err) this.dropMirror(t);
        },
        () => this.dropMirror(t),
      );
      return false;
    }
    const eb = t.enc === 'F32' ? 4 : 2;
    const hostRow = t.dim * eb;
    const n = Math.min(Math.max(1, Math.floor(this.mirrorSlice / rowBytes)), c.row0 + c.rows - m.rows);
    let data = t.host!.subarray(m.rows * hostRow, (m.rows + n) * hostRow);
    if (hostRow !== rowBytes) {
      const padded = new Uint8Array(n * rowBytes);
      padRows(data, n, t.dim, eb, t.wordsPerRow, padded);
      data = padded;
    }
    // straight to the queue, not behind held-back work: nothing reads the copy before it is
    // whole, and the steps that will are recorded (so queued) after this write
    this.device.queue.writeBuffer(c.g.buffer, (m.rows - c.row0) * rowBytes, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    m.rows += n;
    return m.rows < t.rows;
  }

  private dropMirror(t: WEmbedding): void {
    const m = t.mirror;
    if (!m) return;
    m.failed = true;
    m.checking = false;
    for (const c of m.chunks) this.drop(c.g, 'weight');
    m.chunks = [];
  }

  embed(out: Buf, table: Embedding, ids: Int32Array): void {
    this.settle();
    const t = table as WEmbedding;
    const o = out as WBuf;
    const rows = ids.length;
    if (rows === 0) return;
    if (rows * t.dim > o.length) throw new ArgumentError(`embed: ${rows}×${t.dim} values exceed the output buffer (${o.length})`);
    for (let i = 0; i < rows; i++) {
      if (!(ids[i] >= 0 && ids[i] < t.rows)) throw new ArgumentError(`embed: token id ${ids[i]} outside the vocabulary (0..${t.rows - 1})`);
    }
    const kern = this.hk(`embed|${t.enc}`, () => ({ file: 'embed', entry: 'main', defines: [t.enc], bindings: { 1: 'w', 2: 'r', 3: 'rd' } }));
    const maxRows = 16384;
    if (t.host) {
      // gather the rows on the host, upload them (queue-ordered after everything recorded so far)
      // and widen them on the GPU as a table of n rows addressed by 0..n-1
      const eb = t.enc === 'F32' ? 4 : 2;
      const rowBytes = t.dim * eb;
      const stride = t.wordsPerRow * 4;
      for (let r0 = 0; r0 < rows; r0 += maxRows) {
        const n = Math.min(maxRows, rows - r0);
        const staged = new Uint8Array(n * stride);
        for (let i = 0; i < n; i++) {
          const id = ids[r0 + i];
          staged.set(t.host.subarray(id * rowBytes, (id + 1) * rowBytes), i * stride);
        }
        const g = this.scratchBuf('embedding rows', staged.byteLength);
        this.upload(g, staged);
        const at = this.rec.data(Int32Array.from({ length: n }, (_, i) => i));
        this.rec.dispatch(
          kern,
          [n, t.dim, 0, n, t.wordsPerRow, 0, 0, 0],
          { 1: { buf: o.g, offset: 4 * r0 * t.dim, size: 4 * n * t.dim }, 2: whole(g) },
          [Math.ceil((n * t.dim) / 256)],
          [at],
        );
      }
      return;
    }
    for (let r0 = 0; r0 < rows; r0 += maxRows) {
      const n = Math.min(maxRows, rows - r0);
      const at = this.rec.data(ids.subarray(r0, r0 + n));
      for (const c of t.chunks) {
        this.rec.dispatch(
          kern,
          [n, t.dim, c.row0, c.rows, t.wordsPerRow, 0, 0, 0],
          { 1: { buf: o.g, offset: 4 * r0 * t.dim, size: 4 * n * t.dim } , 2: whole(c.g) },
          [Math.ceil((n * t.dim) / 256)],
          [at],
        );
      }
    }
  }

  rmsNorm(out: Buf, x: Buf, w: Vec, rows: number, eps: number): void {
    const o = out as WBuf;
    const xi = x as WBuf;
    const cols = w.length;
    if (rows <= 0) return;
    if (rows * cols > o.length || rows * cols > xi.length) throw new ArgumentError(`rmsNorm: ${rows}×${cols} exceeds a buffer`);
    const a = this.pendingAdd;
    const fuse = a !== null && a.x === xi.g && a.y !== a.x && a.n === rows * cols && o.g !== a.x && o.g !== a.y;
    const m = this.pendingMatmul;
    if (rows === 1 && m?.resid === xi.g && !this.pendingPair && !this.pendingNorm && this.variant.idot && o.g !== xi.g && o.g !== m.out && o.g !== m.x && cols === m.w.outFeatures && cols % 16 === 0) {
      // the held GEMV computes x (its residual epilogue): both stay held, so that if an integer
      // GEMV on `out` follows, that epilogue quantises x·w for it (see matmul)
      this.pendingNorm = { out: o.g, x: xi.g, w: (w as WVec).g, eps, cols };
      return;
    }
    if (!fuse) this.settle();
    this.pendingAdd = null;
    if (rows === 1 && !fuse && o.g !== xi.g && cols % 8 === 0) {
      // held back: a following one-row int4 GEMV on `out` computes it in its prologue
      this.pendingNorm = { out: o.g, x: xi.g, w: (w as WVec).g, eps, cols };
      return;
    }
    this.rmsNormNow(o.g, xi.g, (w as WVec).g, rows, eps, cols, fuse ? a.y : undefined);
  }

  /** Dispatches RMSNorm of `rows` rows; with `y`, fused after the residual add x += y. */
  private rmsNormNow(og: GBuf, xg: GBuf, wg: GBuf, rows: number, eps: number, cols: number, y?: GBuf): void {
    const fuse = y !== undefined;
    const inplace = og === xg;
    const defines = fuse ? ['ADD'] : inplace ? ['INPLACE'] : [];
    if (cols % 4 === 0) defines.push('VEC');
    // big workgroups for one row (decode), 256 for many rows (prefill, and CPU adapters)
    const wgSize = rows === 1 ? Math.min(1024, this.device.limits.maxComputeInvocationsPerWorkgroup, this.device.limits.maxComputeWorkgroupSizeX) : 256;
    const kern = this.hk(`rms|${defines.join(',')}|${wgSize}`, () => ({
      file: 'rmsnorm',
      entry: 'main',
      defines,
      values: { WG: wgSize },
      bindings: (fuse ? { 1: 'w', 2: 'r', 3: 'w', 4: 'r' } : inplace ? { 1: 'w', 2: 'r' } : { 1: 'w', 2: 'r', 3: 'r' }) as Record<number, BindKind>,
    }));
    const bufs: Record<number, BindRange> = { 1: whole(og), 2: whole(wg), 3: whole(xg) };
    if (y) bufs[4] = whole(y);
    this.rec.dispatch(kern, [cols, f32(eps), 0, 0], bufs, [rows], [], fuse ? 'add+rmsnorm' : kern.label);
  }

  matmul(out: Buf, x: Buf, w: Linear, rows: number): void {
    const held = this.pendingMatmul;
    if (held && !held.resid && !this.pendingPair && !this.pendingNorm && rows === 1 && w instanceof WGptq && pairable(this.variant, held, (out as WBuf).g, (x as WBuf).g, out.length, w)) {
      // w2 after w1 on the same x: held too, a following swiglu makes one dual dispatch of both
      this.pendingPair = { out: (out as WBuf).g, x: held.x, w };
      return;
    }
    // the input is a held-back RMSNorm's output: this GEMV computes the norm in its prologue
    let norm: HeldNorm | undefined;
    let pre: HeldGemv['pre'];
    const pn = this.pendingNorm;
    const og = (out as WBuf).g;
    const xg0 = (x as WBuf).g;
    // a held GEMV that computes the norm's input (its residual epilogue) and may quantise it
    const producer = pn && this.pendingMatmul?.resid === pn.x ? this.pendingMatmul : null;
    if (
      pn &&
      rows === 1 &&
      w instanceof WGptq &&
      !w.perm &&
      w.rowsPerGroup > 0 &&
      !this.variant.rowTable &&
      pn.out === xg0 &&
      pn.cols === w.inFeatures &&
      og !== pn.x &&
      og !== pn.out &&
      !this.pendingAdd &&
      (!this.pendingMatmul || (producer && intInput(this.variant, w) && og !== producer.out && og !== producer.x)) &&
      !this.pendingPair &&
      this.pendingRopes.length === 0
    ) {
      norm = pn;
      this.pendingNorm = null;
      if (producer) {
        // its epilogue quantises x·γ for this GEMV
        this.pendingMatmul = null;
        pre = dispatchGrouped(this.gemv, producer, undefined, { gamma: pn.w });
      }
    }
    const pd = this.pendingDual;
    if (pd && rows === 1 && w instanceof WGptq && pd.a.out === xg0 && w.inFeatures === pd.a.w.outFeatures && intInput(this.variant, w) && og !== pd.a.out && og !== pd.b.out && og !== pd.a.x) {
      // the held dual's epilogue quantises its output for this GEMV
      this.pendingDual = null;
      pre = dispatchDual(this.gemv, pd.a, pd.b, {});
    }
    this.settle();
    // the decode attention's output, quantised by it, if nothing since has touched it
    const aq = this.attnQuant;
    this.attnQuant = null;
    if (!pre && aq?.x === xg0 && aq.at === this.rec.changes && rows === 1 && w instanceof WGptq && w.inFeatures === aq.width && intInput(this.variant, w)) pre = aq.q;
    const o = out as WBuf;
    let xi = (x as WBuf).g;
    const K = w.inFeatures;
    const N = w.outFeatures;
    if (rows <= 0) return;
    if (rows * K > x.length || rows * N > out.length) throw new ArgumentError(`matmul: ${rows}×${K} → ${rows}×${N} exceeds a buffer`);
    if (o.g === xi) throw new ArgumentError('matmul: out must not alias x');
    const bias = (w as WDense | WGptq).bias;
    const hasBias = bias ? 1 : 0;
    const biasBuf = bias ?? this.dummy;
    if (w instanceof WGptq) {
      if (w.perm) {
        const xp = this.scratchBuf('act-order x', 4 * rows * K);
        this.ew('gather_cols', ['GATHER'], rows * K, [0, 0, 0, K], { 1: whole(xp), 2: whole(xi), 3: whole(w.perm) });
        xi = xp;
      }
      if (rows === 1 && w.rowsPerGroup > 0 && !this.variant.rowTable) {
        // held back: a following swiglu(·, ·, out) becomes its epilogue
        this.pendingMatmul = { out: o.g, x: xi, w, norm, pre };
        return;
      }
      if (rows === 1) {
        const kern = this.k({ file: 'gemv_int4', entry: 'main', bindings: { 1: 'w', 2: 'r', 3: 'r', 4: 'r', 5: 'r', 6: 'r' } });
        for (const c of w.chunks) {
          this.rec.dispatch(
            kern,
            [w.R, w.G, N, c.tile0, hasBias, 0, w.rowsPerGroup, 0],
            { 1: whole(o.g), 2: whole(c.qw), 3: whole(c.sz), 4: whole(w.rowGroup), 5: whole(xi), 6: whole(biasBuf) },
            [c.tiles],
            [],
            `gemv_int4 ${K}x${N}`,
          );
        }
      } else {
        const kern = this.k({ file: 'gemm', entry: 'main', defines: ['INT4'], bindings: { 1: 'w', 2: 'r', 3: 'r', 4: 'r', 5: 'r', 6: 'r' } });
        for (const c of w.chunks) {
          const n0 = c.tile0 * TILE;
          const nChunk = Math.min(N - n0, c.tiles * TILE);
          this.rec.dispatch(
            kern,
            [rows, K, N, n0, nChunk, w.R, w.G, 0, hasBias, 0, 0, 0],
            { 1: whole(o.g), 2: whole(c.qw), 3: whole(xi), 4: whole(biasBuf), 5: whole(c.sz), 6: whole(w.rowGroup) },
            [Math.ceil(nChunk / 64), Math.ceil(rows / 64)],
            [],
            `gemm_int4 ${K}x${N}`,
          );
        }
      }
      return;
    }
    const d = w as WDense;
    if (rows === 1) {
      const vec = d.enc === 'F32' ? K % 4 === 0 : K % 8 === 0;
      // short rows: one thread per row (no reduction); long rows: 64 threads per row
      const rowLoop = d.wpr <= 256;
      const kern = this.hk(`gemvd|${d.enc}|${rowLoop ? 1 : 0}|${vec ? 1 : 0}`, () => ({
        file: 'gemv_dense',
        entry: rowLoop ? 'rowloop' : 'main',
        defines: vec ? [d.enc, 'VEC'] : [d.enc],
        bindings: { 1: 'w', 2: 'r', 3: 'r', 4: 'r' },
      }));
      for (const c of d.chunks) {
        this.rec.dispatch(
          kern,
          [K, d.wpr / 4, c.rows, c.row0, hasBias, 0, 0, 0],
          { 1: whole(o.g), 2: whole(c.g), 3: whole(xi), 4: whole(biasBuf) },
          [Math.ceil(c.rows / (rowLoop ? 64 : 4))],
          [],
          this.rec.profilingOn ? `gemv_${d.enc.toLowerCase()} ${K}x${N}` : undefined,
        );
      }
    } else {
      const defines = d.enc === 'F32' ? ['F32'] : [d.enc, 'HALF'];
      const kern = this.k({ file: 'gemm', entry: 'main', defines, bindings: { 1: 'w', 2: 'r', 3: 'r', 4: 'r' } });
      for (const c of d.chunks) {
        this.rec.dispatch(
          kern,
          [rows, K, N, c.row0, c.rows, 0, 0, d.wpr, hasBias, 0, 0, 0],
          { 1: whole(o.g), 2: whole(c.g), 3: whole(xi), 4: whole(biasBuf) },
          [Math.ceil(c.rows / 64), Math.ceil(rows / 64)],
          [],
          `gemm_${d.enc.toLowerCase()} ${K}x${N}`,
        );
      }
    }
  }

  /** A GPU table with at least `positions` rows for (key); rebuilt larger when needed. */
  private posTable(map: Map<string, PosTable> | Map<number, PosTable>, key: string | number, positions: number, build: (n: number) => Float32Array, label: string): GBuf {
    const m = map as Map<string | number, PosTable>;
    let t = m.get(key);
    if (!t || t.positions < positions) {
      if (t) this.drop(t.g, 'act');
      const n = Math.max(positions, t ? 2 * t.positions : 0, 4096);
      const data = build(n);
      const g = this.buffer(data.byteLength, label, 'act');
      this.upload(g, data);
      t = { g, positions: n };
      m.set(key, t);
      if (m.size > 8) {
        const [oldKey, old] = m.entries().next().value as [string | number, PosTable];
        if (oldKey !== key) {
          this.drop(old.g, 'act');
          m.delete(oldKey);
        }
      }
    }
    return t.g;
  }

  rope(x: RowView, rows: number, p: RopeParams): void {
    if (this.pendingRopes.length === 0) this.settle();
    if (rows <= 0) return;
    const half = p.rotaryDim / 2;
    if (p.rotaryDim % 2 !== 0 || p.rotaryDim > p.headDim) throw new ArgumentError(`rope: rotaryDim ${p.rotaryDim} must be even and ≤ headDim ${p.headDim}`);
    if (half === 0) return;
    const b = x.buf as WBuf;
    const last = (rows - 1) * x.stride + x.offset + p.heads * p.headDim;
    if (last > b.length) throw new ArgumentError('rope: rows exceed the buffer');
    const table = this.posTable(this.ropeTables, `${p.base}|${p.rotaryDim}`, p.pos0 + rows, (n) => ropeTable(p.base, p.rotaryDim, n), `rope table base ${p.base}`);
    // held back (at most two, same buffer/rows/params): q and k rotate in one dispatch, or
    // together with a following kvWrite of k
    const prev = this.pendingRopes[0];
    if (prev && !(this.pendingRopes.length === 1 && sameRope(prev, x, rows, p, table))) this.flushRopes();
    this.pendingRopes.push({ x, rows, p, table });
  }

  /** Dispatches the held-back ropes (two adjacent ones as one). */
  private flushRopes(): void {
    const rs = this.pendingRopes;
    this.pendingRopes = [];
    const kern = this.hk('rope', () => ({ file: 'rope', entry: 'main', bindings: { 1: 'w', 2: 'r' } }));
    const one = (r: PendingRope, heads: number) => {
      const half = r.p.rotaryDim / 2;
      this.rec.dispatch(kern, [r.rows, heads, r.p.headDim, half, r.x.stride, r.x.offset, r.p.pos0, 0], { 1: whole((r.x.buf as WBuf).g), 2: whole(r.table) }, [
        Math.ceil((r.rows * heads * half) / 256),
      ]);
    };
    if (rs.length === 2) {
      const [a, b] = rs[0].x.offset < rs[1].x.offset ? rs : [rs[1], rs[0]];
      if (b.x.offset === a.x.offset + a.p.heads * a.p.headDim) {
        one(a, 2 * a.p.heads);
        return;
      }
    }
    for (const r of rs) one(r, r.p.heads);
  }

  attention(out: Buf, q: RowView, kv: KVStore, p: AttentionParams): void {
    const s = kv as WKV;
    const o = out as WBuf;
    const qb = (q.buf as WBuf).g;
    if (p.rows <= 0) {
      this.settle();
      return;
    }
    if (p.heads !== s.heads || p.headDim !== s.headDim) throw new ArgumentError(`attention: ${p.heads}×${p.headDim} heads do not match the KV store (${s.heads}×${s.headDim})`);
    if (p.kvLen < p.rows || p.kvLen > s.capacity) throw new ArgumentError(`attention: kvLen ${p.kvLen} must be in [rows=${p.rows}, capacity=${s.capacity}]`);
    if (o.g === qb) throw new ArgumentError('attention: out must not alias q');
    if (p.rows * s.width > o.length) throw new ArgumentError('attention: output buffer too small');
    const HD = s.headDim;
    if (HD > 128 || 64 % (HD / 4) !== 0) throw new ArgumentError(`attention: headDim ${HD} must be 4·2^i ≤ 128 on WebGPU`);
    const nChunks = Math.ceil(p.kvLen / ATT_CHUNK);
    if (p.rows === 1 && nChunks > 1024) throw new ArgumentError(`attention: kvLen ${p.kvLen} exceeds ${1024 * ATT_CHUNK} slots on WebGPU`);
    // (checked before anything runs.) A held decode-step rope+kv write runs inside the decode
    // pass (ROPEKV); anything else held runs before it
    const rk = this.takeRopeKv(q, s, p);
    this.settle();
    const lognOn = p.lognSeqLength > 0 ? 1 : 0;
    const lg = lognOn
      ? this.posTable(this.lognTables, p.lognSeqLength, p.pos0 + p.rows, (n) => lognTable(p.lognSeqLength, n), `logn table ${p.lognSeqLength}`)
      : this.dummy;
    const kvDef = s.quant === 'f32' ? 'F32' : 'I8';
    // kernel specs are built on the first use only; the bindings are one literal for every pass
    // (4: the partials, set below where there are several chunks; 7, 8 only bound for int8 caches)
    // (with ROPEKV q|k|v and the cache are written too: 2 and 5..8 read-write, 9 the rope table)
    const kvKinds = (m: 'r' | 'w'): Record<number, 'r' | 'w'> => (s.km ? { 5: m, 6: m, 7: m, 8: m } : { 5: m, 6: m });
    const b = s.binds;
    const bufs = { 1: whole(o.g), 2: whole(qb), 3: whole(lg), 4: undefined as BindRange | undefined, 5: b.k, 6: b.v, 7: b.km, 8: b.vm, 9: rk ? whole(rk.table) : undefined, 19: undefined as BindRange | undefined } as Record<number, BindRange>;
    // the access mode of q and of the cache (ROPEKV writes both)
    const values = (acc: 'read' | 'read_write') => ({ HD, ACC: acc });
    if (p.rows === 1) {
      const lanes4 = this.attnKeyLanes === 4 && kvDef === 'I8' && HD % 64 === 0;
      const sg = this.useSubgroups && this.features.subgroups;
      const single = nChunks === 1;
      // (takeRopeKv gives one only while the cache fits one chunk)
      const fused = rk !== null;
      const params = [1, p.heads, p.kvLen, p.pos0, f32(p.scale), lognOn, q.stride, q.offset, nChunks, s.width, rk?.kOff ?? 0, rk?.vOff ?? 0, rk?.rope.pos0 ?? 0, rk ? rk.rope.rotaryDim / 2 : 0, 0, 0];
      // hot-path kernels memoised by a number: (head dim, int8, 4 lanes, subgroups, fused, pass);
      // the spec (defines, bindings) is built on the first use only
      const key = ((((HD * 2 + (kvDef === 'I8' ? 1 : 0)) * 2 + (lanes4 ? 1 : 0)) * 2 + (sg ? 1 : 0)) * 2 + (fused ? 1 : 0)) * 4;
      // the output also quantised for an integer GEMV that reads it next (c_proj)
      const qout = this.variant.idot && HD % 16 === 0;
      const qx = qout ? quantSet(this.gemv, 0, (p.heads * HD) / 8) : undefined;
      bufs[19] = qx?.xq as BindRange;
      const part = this.hk(key + (single ? (qout ? 2 : 0) : 1), () => ({
        file: 'attention',
        entry: 'decode_part',
        defines: ['PART', ...(single ? ['SINGLE'] : []), kvDef, ...(lanes4 ? ['LANES4'] : []), ...(sg ? ['SG'] : []), ...(fused ? ['ROPEKV'] : []), ...(single && qout ? ['QOUT'] : [])],
        values: values(fused ? 'read_write' : 'read'),
        bindings: {
          ...(single ? { 1: 'w' } : { 4: 'w' }),
          2: fused ? 'w' : 'r',
          3: 'r',
          ...kvKinds(fused ? 'w' : 'r'),
          ...(fused ? { 9: 'r' } : {}),
          ...(single && qout ? { 19: 'w' } : {}),
        } as Record<number, BindKind>,
      }));
      if (single) {
        // one chunk holds the whole cache: normalised in the same pass (same arithmetic as combine)
        this.rec.dispatch(part, params, bufs, [1, p.heads]);
        if (qx) this.noteAttnQuant(o.g, p.heads * HD, qx);
        return;
      }
      // partials sized for the whole store at once (a regrown buffer means new bind groups mid-run)
      const partials = this.scratchBuf('attention partials', 4 * p.heads * Math.max(nChunks, Math.ceil(s.capacity / ATT_CHUNK)) * (HD + 2));
      bufs[4] = whole(partials);
      this.rec.dispatch(part, params, bufs, [nChunks, p.heads]);
      const combine = this.hk((1 << 19) + (qout ? 1 << 18 : 0) + HD, () => ({
        file: 'attention',
        entry: 'decode_combine',
        defines: ['COMBINE', ...(qout ? ['QOUT'] : [])],
        values: values('read'),
        bindings: (qout ? { 1: 'w', 4: 'r', 19: 'w' } : { 1: 'w', 4: 'r' }) as Record<number, BindKind>,
      }));
      this.rec.dispatch(combine, params, bufs, [p.heads]);
      if (qx) this.noteAttnQuant(o.g, p.heads * HD, qx);
    } else {
      const params = [p.rows, p.heads, p.kvLen, p.pos0, f32(p.scale), lognOn, q.stride, q.offset, 0, s.width, 0, 0, 0, 0, 0, 0];
      const kern = this.k({ file: 'attention', entry: 'prefill', defines: ['PREFILL', kvDef], values: values('read'), bindings: { 1: 'w', 2: 'r', 3: 'r', ...kvKinds('r') } });
      this.rec.dispatch(kern, params, bufs, [Math.ceil(p.rows / 16), p.heads]);
    }
  }

  /** The decode attention's output `x` was also quantised into `q` (see attnQuant). */
  private noteAttnQuant(x: GBuf, width: number, q: QuantX): void {
    this.attnQuant = { x, width, q, at: this.rec.changes };
  }

  swiglu(out: Buf, a: Buf, b: Buf, n: number): void {
    const o = (out as WBuf).g;
    const ag = (a as WBuf).g;
    const bg = (b as WBuf).g;
    const m1 = this.pendingMatmul;
    const m2 = this.pendingPair;
    if (m1 && m2 && m1.out === ag && o === ag && m2.out === bg && n === m2.w.outFeatures && n <= out.length) {
      // out = w1(x) · silu(w2(x)) with both GEMVs still held: one dual dispatch, itself held
      // when an integer GEMV may read its output next (see matmul)
      this.pendingMatmul = null;
      this.pendingPair = null;
      if (intInput(this.variant, m1.w) && n % 16 === 0) this.pendingDual = { a: m1, b: m2 };
      else dispatchDual(this.gemv, m1, m2);
      return;
    }
    if (m2) this.settle();
    const m = this.pendingMatmul;
    if (m && !m.resid && m.out === bg && o === ag && o !== bg && o !== m.x && n === m.w.outFeatures && n <= out.length) {
      // b = w2(x) is being computed: out = a · silu(b) in the GEMV's epilogue
      this.pendingMatmul = null;
      dispatchGrouped(this.gemv, m, o);
      return;
    }
    this.settle();
    if (n <= 0) return;
    if (n > out.length || n > a.length || n > b.length) throw new ArgumentError('swiglu: n exceeds a buffer');
    if (o === ag && o === bg) this.ew('swiglu_self', ['SELF'], n, [0, 0, 0], { 1: whole(o) });
    else if (o === ag) this.ew('swiglu_da', [], n, [0, 0, 0], { 1: whole(o), 2: whole(bg) });
    else if (o === bg) this.ew('swiglu_db', [], n, [0, 0, 0], { 1: whole(o), 2: whole(ag) });
    else this.ew('swiglu', ['TWO'], n, [0, 0, 0], { 1: whole(o), 2: whole(ag), 3: whole(bg) });
  }

  add(x: Buf, y: Buf, n: number): void {
    const xg = (x as WBuf).g;
    const yg = (y as WBuf).g;
    if (n <= 0) return;
    if (n > x.length || n > y.length) throw new ArgumentError('add: n exceeds a buffer');
    const m = this.pendingMatmul;
    if (m && !this.pendingPair && !this.pendingNorm && !m.norm && !m.resid && m.out === yg && xg !== yg && xg !== m.x && n === m.w.outFeatures) {
      // y is the held GEMV's output: x += y becomes its epilogue
      m.resid = xg;
      return;
    }
    this.settle();
    this.pendingAdd = { x: xg, y: yg, n };
  }

  // ------------------------------------------------------------------ results

  private selectParts(n: number): { parts: number; chunk: number } {
    const parts = Math.max(1, Math.min(64, Math.ceil(n / 4096)));
    return { parts, chunk: Math.ceil(n / parts) };
  }

  async argmax(x: Buf, offset: number, n: number): Promise<number> {
    this.settle();
    const xb = x as WBuf;
    if (n <= 0 || offset < 0 || offset + n > xb.length) throw new ArgumentError(`argmax: [${offset}, ${offset + n}) outside the buffer (${xb.length})`);
    const { parts, chunk } = this.selectParts(n);
    const cand = this.scratchBuf('select candidates', 8 * parts);
    const res = this.scratchBuf('select result', 8);
    const k1 = this.hk('argmax', () => ({ file: 'select', entry: 'argmax', defines: ['ARGMAX'], bindings: { 1: 'w', 2: 'r' } }));
    this.rec.dispatch(k1, [n, offset, chunk, parts, 1, f32(Infinity), 0, 0], { 1: whole(cand), 2: whole(xb.g) }, [parts]);
    const k2 = this.hk('argmax|final', () => ({ file: 'select', entry: 'argmax', defines: ['ARGMAX', 'FINAL'], bindings: { 1: 'w', 2: 'r' } }));
    this.rec.dispatch(k2, [parts, 0, parts, 1, 1, f32(Infinity), 0, 0], { 1: whole(res), 2: { buf: cand, size: 8 * parts } }, [1]);
    return new Uint32Array(await this.rec.readBytes(res, 0, 4))[0];
  }

  argmaxToken(x: Buf, offset: number, n: number): TokenRef {
    this.settle();
    const xb = x as WBuf;
    if (n <= 0 || offset < 0 || offset + n > xb.length) throw new ArgumentError(`argmaxToken: [${offset}, ${offset + n}) outside the buffer (${xb.length})`);
    const { parts, chunk } = this.selectParts(n);
    const cand = this.scratchBuf('select candidates', 8 * parts);
    const seq = this.tokenSeq++;
    const at = (seq % TOKEN_SLOTS) * SLOT;
    this.tokens ??= this.buffer(TOKEN_SLOTS * SLOT, 'device tokens', 'act');
    const k1 = this.hk('argmax', () => ({ file: 'select', entry: 'argmax', defines: ['ARGMAX'], bindings: { 1: 'w', 2: 'r' } }));
    this.rec.dispatch(k1, [n, offset, chunk, parts, 1, f32(Infinity), 0, 0], { 1: whole(cand), 2: whole(xb.g) }, [parts]);
    const k2 = this.hk('argmax|final', () => ({ file: 'select', entry: 'argmax', defines: ['ARGMAX', 'FINAL'], bindings: { 1: 'w', 2: 'r' } }));
    this.rec.dispatch(k2, [parts, 0, parts, 1, 1, f32(Infinity), 0, 0], { 1: { buf: this.tokens, offset: at, size: 8 }, 2: { buf: cand, size: 8 * parts } }, [1]);
    return new WToken(this, seq, at, this.rec.readLater(this.tokens, at, 4, true));
  }

  readToken(t: TokenRef): Promise<number> {
    return this.tokenValue(this.ownToken(t, 'readToken'));
  }

  private ownToken(t: TokenRef, op: string): WToken {
    if (!(t instanceof WToken) || t.owner !== this) throw new ArgumentError(`${op}: the token ref comes from another backend`);
    return t;
  }

  private tokenValue(t: WToken): Promise<number> {
    t.value ??= t.read().then((b) => new Uint32Array(b)[0]);
    return t.value;
  }

  async topK(x: Buf, offset: number, n: number, k: number): Promise<TopK> {
    this.settle();
    const xb = x as WBuf;
    if (n <= 0 || offset < 0 || offset + n > xb.length) throw new ArgumentError(`topK: [${offset}, ${offset + n}) outside the buffer (${xb.length})`);
    k = Math.min(Math.max(0, Math.floor(k)), n);
    if (k === 0) return { ids: new Int32Array(0), values: new Float32Array(0) };
    if (k > TOPK_GPU_MAX) {
      const xs = await this.read(x, offset, n);
      const idx = Array.from({ length: n }, (_, i) => i);
      idx.sort((a, b) => xs[b] - xs[a] || a - b);
      const ids = Int32Array.from(idx.slice(0, k));
      return { ids, values: Float32Array.from(ids, (i) => xs[i]) };
    }
    const { parts, chunk } = this.selectParts(n);
    const cand = this.scratchBuf('select candidates', 8 * parts * k);
    const res = this.scratchBuf('select result', 8 * k);
    const k1 = this.k({ file: 'select', entry: 'topk', defines: ['TOPK'], bindings: { 1: 'w', 2: 'r' } });
    this.rec.dispatch(k1, [n, offset, chunk, parts, k, f32(Infinity), 0, 0], { 1: whole(cand), 2: whole(xb.g) }, [parts]);
    const k2 = this.k({ file: 'select', entry: 'topk', defines: ['TOPK', 'FINAL'], bindings: { 1: 'w', 2: 'r' } });
    const m = parts * k;
    this.rec.dispatch(k2, [m, 0, m, 1, k, f32(Infinity), 0, 0], { 1: whole(res), 2: { buf: cand, size: 8 * m } }, [1]);
    const raw = await this.rec.readBytes(res, 0, 8 * k);
    const ids = new Int32Array(raw, 0, k).slice();
    const values = new Float32Array(raw, 4 * k, k).slice();
    return { ids, values };
  }

  flush(): Promise<void> {
    this.settle();
    return this.rec.flush();
  }

  /** Benchmarks: restarts the peak from the current usage. */
  resetPeak(): void {
    this.peak = this.weightBytes + this.kvBytes + this.actBytes;
  }

  memoryUsage(): MemoryUsage {
    return { weightBytes: this.weightBytes, kvBytes: this.kvBytes, activationBytes: this.actBytes, peakBytes: this.peak };
  }

  /** GPU time per kernel label from timestamp queries (see setProfiling). */
  setProfiling(on: boolean): void {
    this.settle();
    this.rec.setProfiling(on);
  }

  takeProfile(): Promise<Map<string, { ns: number; count: number }>> {
    this.settle();
    return this.rec.takeProfile();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    try {
      if (!this.rec.lostError) await this.rec.flush();
    } finally {
      this.disposed = true;
      for (const g of this.owned) g.buffer.destroy();
      this.owned.clear();
      this.dummy.buffer.destroy();
      this.rec.destroy();
      this.device.destroy();
    }
  }
}

/** Whether a rope call can join a held-back one (same buffer, rows, table and geometry). */
function sameRope(a: PendingRope, x: RowView, rows: number, p: RopeParams, table: GBuf): boolean {
  return (
    a.x.buf === x.buf &&
    a.x.stride === x.stride &&
    a.rows === rows &&
    a.table === table &&
    a.p.heads === p.heads &&
    a.p.headDim === p.headDim &&
    a.p.rotaryDim === p.rotaryDim &&
    a.p.pos0 === p.pos0 &&
    a.p.base === p.base
  );
}
