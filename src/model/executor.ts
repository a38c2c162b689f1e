/**
 * The Qwen (v1) forward pass, written once against the Backend interface (QWenLMHeadModel).
 * Reads top to bottom as the model's math; the backend decides how each op runs.
 *
 *   prefill(ids)          the prompt, in chunks, into the KV cache → last-position logits
 *   decodeOne(id)         one cached step → logits (id may still be on the device: a TokenRef)
 */
import type { Backend, Buf, TokenRef } from '../backend/backend.js';
import { ArgumentError } from '../errors.js';
import { KVCache, UNKNOWN_TOKEN } from '../kv/cache.js';
import type { QwenConfig } from './config.js';
import { ntkAlpha, ntkBase, rotaryDim } from './rotary.js';
import type { QwenWeights } from './weights.js';

/** Activation buffers for up to `rows` tokens at once (one prefill chunk). */
interface RunState {
  rows: number;
  /** residual stream [rows, H] */
  x: Buf;
  /** normed input of a block [rows, H] */
  xb: Buf;
  /** fused q|k|v [rows, 3H] */
  qkv: Buf;
  /** attention output [rows, H] */
  att: Buf;
  /** block output before the residual add [rows, H] */
  out: Buf;
  /** w1(x) and w2(x) [rows, I/2] */
  h1: Buf;
  h2: Buf;
  /** last position's hidden state after ln_f [1, H] */
  last: Buf;
  /** logits [1, V] */
  logits: Buf;
}

export interface ExecutorOptions {
  /** Tokens per prefill chunk (default 256). */
  prefillChunk?: number;
}

export class QwenExecutor {
  private state: RunState;
  /** Tokens per prefill chunk. */
  readonly chunk: number;
  private readonly rotary: number;

  constructor(
    readonly backend: Backend,
    readonly config: QwenConfig,
    readonly weights: QwenWeights,
    options: ExecutorOptions = {},
  ) {
    this.chunk = options.prefillChunk ?? 256;
    if (!(this.chunk >= 1)) throw new ArgumentError(`prefillChunk must be ≥ 1, got ${options.prefillChunk}`);
    this.rotary = rotaryDim(config.headDim, config.rotaryPct);
    this.state = this.allocState(1);
  }

  private allocState(rows: number): RunState {
    const { hiddenSize: H, mlpWidth: I, vocabSize: V } = this.config;
    const b = this.backend;
    const at = { layer: -1 };
    return {
      rows,
      x: b.alloc(rows * H, at),
      xb: b.alloc(rows * H, at),
      qkv: b.alloc(rows * 3 * H, at),
      att: b.alloc(rows * H, at),
      out: b.alloc(rows * H, at),
      h1: b.alloc(rows * I, at),
      h2: b.alloc(rows * I, at),
      last: b.alloc(H, { layer: -2 }),
      logits: b.alloc(V, { layer: -2 }),
    };
  }

  private ensureRows(rows: number): RunState {
    if (this.state.rows < rows) {
      this.freeState();
      this.state = this.allocState(rows);
    }
    return this.state;
  }

  private freeState(): void {
    const s = this.state;
    for (const buf of [s.x, s.xb, s.qkv, s.att, s.out, s.h1, s.h2, s.last, s.logits]) this.backend.free(buf);
  }

  newCache(options: ConstructorParameters<typeof KVCache>[4] = {}): KVCache {
    const c = this.config;
    return new KVCache(this.backend, c.numLayers, c.numHeads, c.headDim, options);
  }

  /**
   * Runs `ids` through the model on top of what `kv` holds and leaves the last position's logits
   * in the logits buffer. When the cache is empty this is the official "forward without cache":
   * it fixes the NTK alpha from `promptLength` (the whole prompt, also when fed in chunks).
   */
  prefill(kv: KVCache, ids: ArrayLike<number>, promptLength = kv.length + ids.length): Buf {
    if (ids.length === 0) throw new ArgumentError('prefill needs at least one token');
    if (kv.length === 0) kv.ntkAlpha = this.ntkAlphaFor(promptLength);
    for (let start = 0; start < ids.length; start += this.chunk) {
      const n = Math.min(this.chunk, ids.length - start);
      this.forwardChunk(kv, Int32Array.from({ length: n }, (_, i) => ids[start + i]));
    }
    return this.state.logits;
  }

  /** The NTK alpha a forward without cache over `promptLength` tokens uses (official get_ntk_alpha). */
  ntkAlphaFor(promptLength: number): number {
    return ntkAlpha(promptLength, this.config.seqLength, this.config.useDynamicNtk);
  }

  /**
   * One cached decode step: feeds `id`, reusing the prefill's NTK alpha. A TokenRef (the device's
   * own argmax) lets the step be enqueued before the id reaches the host; the cache records it
   * as UNKNOWN_TOKEN until the caller resolves it (KVCache.resolveLast).
   */
  decodeOne(kv: KVCache, id: number | TokenRef): Buf {
    this.forwardChunk(kv, typeof id === 'number' ? Int32Array.of(id) : id);
    return this.state.logits;
  }

  /** All positions' logits of one chunk (tests and diagnostics), [n, V]. */
  allLogits(kv: KVCache, ids: ArrayLike<number>): Promise<Float32Array> {
    const n = ids.length;
    const V = this.config.vocabSize;
    if (kv.length === 0) kv.ntkAlpha = this.ntkAlphaFor(n);
    const s = this.ensureRows(n);
    this.forwardChunk(kv, Int32Array.from(ids));
    const H = this.config.hiddenSize;
    const normed = this.backend.alloc(n * H, { layer: -2 });
    const logits = this.backend.alloc(n * V, { layer: -2 });
    this.backend.rmsNorm(normed, s.x, this.weights.lnF, n, this.config.layerNormEps);
    this.backend.matmul(logits, normed, this.weights.lmHead, n);
    return this.backend.read(logits, 0, n * V).finally(() => {
      this.backend.free(normed);
      this.backend.free(logits);
    });
  }

  /** The hidden state after ln_f of the last position of the last forward. */
  get lastHidden(): Buf {
    return this.state.last;
  }

  get logits(): Buf {
    return this.state.logits;
  }

  private forwardChunk(kv: KVCache, ids: Int32Array | TokenRef): void {
    const { backend: b, weights: w, config: c } = this;
    const n = ids instanceof Int32Array ? ids.length : 1;
    const H = c.hiddenSize;
    const s = this.ensureRows(n);
    kv.reserve(n);
    const slot = kv.length;
    const pos0 = kv.position;
    const base = ntkBase(c.rotaryBase, kv.ntkAlpha, this.rotary);
    const q = { buf: s.qkv, stride: 3 * H, offset: 0 };
    const k = { buf: s.qkv, stride: 3 * H, offset: H };
    const v = { buf: s.qkv, stride: 3 * H, offset: 2 * H };
    const rope = { heads: c.numHeads, headDim: c.headDim, rotaryDim: this.rotary, pos0, base };

    // token embeddings
    if (ids instanceof Int32Array) b.embed(s.x, w.wte, ids);
    else b.embedToken(s.x, w.wte, ids);
    for (let l = 0; l < c.numLayers; l++) {
      const layer = w.layers[l];
      // attention rmsnorm
      b.rmsNorm(s.xb, s.x, layer.ln1, n, c.layerNormEps);
      // qkv matmul (fused c_attn, with bias)
      b.matmul(s.qkv, s.xb, layer.cAttn, n);
      // RoPE on q and k with the NTK-scaled base
      b.rope(q, n, rope);
      b.rope(k, n, rope);
      // save key, value to the cache
      b.kvWrite(kv.stores[l], k, v, n, slot);
      // causal attention over the cache (LogN scaling of late queries)
      b.attention(s.att, q, kv.stores[l], {
        rows: n,
        heads: c.numHeads,
        headDim: c.headDim,
        kvLen: slot + n,
        pos0,
        scale: 1 / Math.sqrt(c.headDim),
        lognSeqLength: c.useLognAttn ? c.seqLength : 0,
      });
      // output projection and residual
      b.matmul(s.out, s.att, layer.cProj, n);
      b.add(s.x, s.out, n * H);
      // ffn rmsnorm
      b.rmsNorm(s.xb, s.x, layer.ln2, n, c.layerNormEps);
      // w1(x) · silu(w2(x)), then c_proj, then residual
      b.matmul(s.h1, s.xb, layer.w1, n);
      b.matmul(s.h2, s.xb, layer.w2, n);
      b.swiglu(s.h1, s.h1, s.h2, n * c.mlpWidth);
      b.matmul(s.out, s.h1, layer.mlpProj, n);
      b.add(s.x, s.out, n * H);
    }
    kv.append(ids instanceof Int32Array ? ids : [UNKNOWN_TOKEN]);
    // final rmsnorm of the last position, classifier into logits
    b.copy(s.out, 0, s.x, (n - 1) * H, H);
    b.rmsNorm(s.last, s.out, w.lnF, 1, c.layerNormEps);
    b.matmul(s.logits, s.last, w.lmHead, 1);
  }

  dispose(): void {
    this.freeState();
  }
}
