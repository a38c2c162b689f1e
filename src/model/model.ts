/**
 * QwenModel: the public engine object — tokenizer, forward, generate, chat — over one backend,
 * one executor and one KV cache. Calls are serialised (one engine, one sequence at a time); the
 * cache is reused across calls by longest common prefix, so a follow-up chat turn only prefills
 * its new tokens.
 */
import type { Backend } from '../backend/backend.js';
import { DEFAULT_SYSTEM, makeContext } from '../chat/makeContext.js';
import { AbortError, ArgumentError, DeviceLostError } from '../errors.js';
import { resolveOptions, type GenerationOptions, type ResolvedOptions } from '../generate/options.js';
import { argmax, processLogits, SequenceState } from '../generate/processors.js';
import { createConstraint } from '../generate/constrained/index.js';
import { createRng, sample } from '../generate/sampler.js';
import { StopStringMatcher, WhitespaceTrimmer } from '../generate/text.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { KVCache, type KVCacheOptions } from '../kv/cache.js';
import type { QwenTokenizer } from '../tokenizer/index.js';
import type { GenerationConfig, QwenConfig } from './config.js';
import { QwenExecutor } from './executor.js';
import { bytesPerToken, type QwenWeights } from './weights.js';
import { Mutex } from '../util/mutex.js';
import { nextTask } from '../util/nextTask.js';

export type History = Array<[string, string]>;

export interface ChatOptions extends GenerationOptions {
  history?: History;
  system?: string;
}

export interface ChatResult {
  response: string;
  history: History;
  /** Generated token ids (the stop token included when one ended the answer). */
  tokens: number[];
  /** Why generation ended. */
  finishReason: 'stop' | 'length';
}

export interface ModelOptions {
  prefillChunk?: number;
  kvCache?: KVCacheOptions;
  /** Under backend 'auto' on a GPU: builds the CPU engine that takes over after a device loss. */
  fallback?: () => Promise<{ backend: Backend; weights: QwenWeights }>;
  /** Told when the engine moved to the fallback backend. */
  onFailover?: (cause: DeviceLostError) => void;
  /** Runs at dispose (e.g. closes the checkpoint files the fallback would read). */
  onDispose?: () => Promise<void>;
}

export interface GenerationStats {
  promptTokens: number;
  reusedTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
}

export class QwenModel {
  readonly config: QwenConfig;
  readonly generationConfig: GenerationConfig;
  private engine: { backend: Backend; weights: QwenWeights; executor: QwenExecutor };
  private cache: KVCache;
  private readonly mutex = new Mutex();
  private disposed = false;
  /** Timings of the last generate/chat call. */
  lastStats: GenerationStats | undefined;

  constructor(
    backend: Backend,
    readonly tokenizer: QwenTokenizer,
    checkpoint: Pick<Checkpoint, 'config' | 'generationConfig'>,
    weights: QwenWeights,
    readonly options: ModelOptions = {},
  ) {
    this.config = checkpoint.config;
    this.generationConfig = checkpoint.generationConfig;
    this.engine = { backend, weights, executor: new QwenExecutor(backend, this.config, weights, { prefillChunk: options.prefillChunk }) };
    this.cache = this.engine.executor.newCache(options.kvCache);
  }

  get backend(): Backend {
    return this.engine.backend;
  }
  get weights(): QwenWeights {
    return this.engine.weights;
  }
  get executor(): QwenExecutor {
    return this.engine.executor;
  }

  /**
   * After a lost GPU device, moves to the fallback backend (once) with a fresh cache; the caller
   * re-prefills from its token history. Returns false when `e` is not a device loss or no
   * fallback is configured.
   */
  private async failover(e: unknown): Promise<boolean> {
    const fallback = this.options.fallback;
    if (!(e instanceof DeviceLostError) || !fallback || this.failedOver) return false;
    this.failedOver = true;
    const { backend, weights } = await fallback();
    const lost = this.engine.backend;
    this.engine = { backend, weights, executor: new QwenExecutor(backend, this.config, weights, { prefillChunk: this.options.prefillChunk }) };
    this.cache = this.engine.executor.newCache(this.options.kvCache);
    await lost.dispose().catch(() => undefined);
    this.options.onFailover?.(e);
    return true;
  }
  private failedOver = false;

  /**
   * Runs every kernel of the generation paths once on a scratch cache, where the backend executes
   * asynchronously (a GPU): drivers compile and prepare a kernel at its first use, and a token
   * that paid for it stalled (on the H200 by 20–100 ms the first time a cache passed 64 slots).
   * One-row and 64-row prefills, a decode step over one cache chunk and one over two, fed by a
   * device token. The model's own cache is untouched; loadModel calls this (`warmUp: false` not).
   */
  warmUp(): Promise<void> {
    return this.exclusive(async () => {
      const b = this.backend;
      if (!b.asyncExecution) return;
      const ex = this.executor;
      const V = this.config.vocabSize;
      const room = Math.min(this.options.kvCache?.maxSlots ?? Infinity, this.options.kvCache?.window ?? Infinity);
      const ids = (n: number) => Array.from({ length: n }, (_, i) => (i * 7919 + 13) % V);
      const kv = ex.newCache(this.options.kvCache);
      try {
        ex.prefill(kv, ids(1));
        ex.decodeOne(kv, 1); // one cache chunk
        if (room >= 67) ex.prefill(kv, ids(64)); // many rows; the cache now spans two chunks
        const ref = b.argmaxToken(ex.logits, 0, V);
        ex.decodeOne(kv, ref); // fed by a device token
        kv.resolveLast(await b.readToken(ref));
        await b.argmax(ex.logits, 0, V);
      } finally {
        kv.release();
      }
    });
  }

  /** Weight bytes one decode step reads. */
  get bytesPerToken(): number {
    return bytesPerToken(this.weights);
  }

  /** Runs `fn` after every earlier call has finished (one sequence at a time). */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      if (this.disposed) throw new ArgumentError('model is disposed');
      return await fn();
    } finally {
      release();
    }
  }

  private checkIds(ids: ArrayLike<number>): void {
    if (ids.length === 0) throw new ArgumentError('input ids are empty');
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      if (!Number.isInteger(ids[i]) || ids[i] < 0 || ids[i] >= V) throw new ArgumentError(`input id ${ids[i]} at index ${i} is outside 0..${V - 1}`);
    }
  }

  /**
   * Prefills `ids` on top of the longest cached prefix. A cache whose NTK alpha differs from what
   * a fresh prefill of `ids` would use is recomputed from scratch, so results equal a fresh prefill.
   */
  private async prefill(ids: ArrayLike<number>, signal?: AbortSignal): Promise<number> {
    let reuse = this.cache.reusablePrefix(ids);
    if (reuse > 0 && this.cache.ntkAlpha !== this.executor.ntkAlphaFor(ids.length)) reuse = 0;
    if (reuse === ids.length) reuse--; // the last token must run to produce logits
    this.cache.truncate(reuse);
    const rest = Array.prototype.slice.call(ids, reuse) as number[];
    const chunk = this.executor.chunk;
    for (let start = 0; start < rest.length; start += chunk) {
      // Yield between chunks: on the CPU a chunk runs synchronously, so without this an abort
      // (Ctrl-C, a client disconnect) could only be seen once the whole prompt was prefilled.
      if (start > 0) await nextTask();
      if (signal?.aborted) throw new AbortError();
      this.executor.prefill(this.cache, rest.slice(start, start + chunk), ids.length);
    }
    return reuse;
  }

  /** Last-position logits of a forward over `ids` (cache reused by prefix). */
  forward(ids: ArrayLike<number>): Promise<Float32Array> {
    this.checkIds(ids);
    return this.exclusive(async () => {
      for (;;) {
        try {
          await this.prefill(ids);
          return await this.backend.read(this.executor.logits, 0, this.config.vocabSize);
        } catch (e) {
          this.cache.truncate(0);
          if (!(await this.failover(e))) throw e;
        }
      }
    });
  }

  /** Streams generated token ids (see GenerationOptions for stopping rules). */
  generate(inputIds: ArrayLike<number>, options: GenerationOptions = {}): AsyncGenerator<number> {
    this.checkIds(inputIds);
    const o = resolveOptions(options, this.generationConfig, this.config.vocabSize);
    return this.lockedStream(() => this.decodeLoop(Array.from(inputIds), o));
  }

  /** Wraps an async generator so it holds the engine lock from its first pull until it ends. */
  private async *lockedStream<T>(make: () => AsyncGenerator<T>): AsyncGenerator<T> {
    const release = await this.mutex.lock();
    try {
      if (this.disposed) throw new ArgumentError('model is disposed');
      yield* make();
    } finally {
      release();
    }
  }

  private async *decodeLoop(ids: number[], o: ResolvedOptions): AsyncGenerator<number> {
    const { vocabSize: V } = this.config;
    const tok = this.tokenizer;
    const special = { eos: this.generationConfig.eosTokenId, imEnd: tok.imEnd, imStart: tok.imStart };
    const seq = new SequenceState(ids);
    const random = createRng(o.seed ?? (Math.random() * 2 ** 32) >>> 0);
    // responseFormat: a per-call constraint masks the host logits (next step: a GPU-side bitmask)
    const constraint = o.responseFormat
      ? createConstraint(o.responseFormat, tok, { vocabSize: V, endIds: [...new Set([special.eos, tok.imEnd, ...o.stopTokenIds.filter((x) => x >= tok.endOfText)])] })
      : undefined;
    const plainArgmax =
      !o.doSample && o.repetitionPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0 && o.logitBias.size === 0 && !o.stopWordsProcessor && !constraint;
    const t0 = performance.now();
    let t1 = t0;
    const stats: GenerationStats = { promptTokens: ids.length, reusedTokens: 0, generatedTokens: 0, prefillMs: 0, decodeMs: 0 };
    this.lastStats = stats;
    // `fresh`: the cache does not hold seq.ids yet (start, or after a failover) → prefill them.
    let fresh = true;
    // Greedy decoding on an asynchronous backend keeps the token on the device: the step that
    // feeds it is enqueued at once and runs while the id is read back ("chained").
    const deviceTokens = plainArgmax && this.backend.asyncExecution;
    for (let step = 0; step < o.maxNewTokens; ) {
      let id: number;
      let chained = false;
      try {
        if (o.signal?.aborted) throw new AbortError();
        if (fresh) {
          const reused = await this.prefill(seq.ids, o.signal);
          if (step === 0) stats.reusedTokens = reused;
          fresh = false;
        }
        if (deviceTokens) {
          // (If the token ends the answer or the caller stops, the cache holds its K/V too: its
          // token list says so, and prefix reuse stays exact.)
          const ref = this.backend.argmaxToken(this.executor.logits, 0, V);
          chained = step + 1 < o.maxNewTokens;
          if (chained) this.executor.decodeOne(this.cache, ref);
          id = await this.backend.readToken(ref);
          if (chained) this.cache.resolveLast(id);
        } else if (plainArgmax) {
          id = await this.backend.argmax(this.executor.logits, 0, V);
        } else {
          const logits = await this.backend.read(this.executor.logits, 0, V);
          processLogits(logits, seq, o, special);
          constraint?.mask(logits);
          id = o.doSample ? sample(logits, o, random) : argmax(logits);
        }
      } catch (e) {
        // A failed or aborted step may have left a partial chunk: keep only what is consistent.
        this.cache.truncate(0);
        if (await this.failover(e)) {
          fresh = true;
          continue;
        }
        throw e;
      }
      if (step === 0) {
        t1 = performance.now();
        stats.prefillMs = t1 - t0;
      }
      seq.push(id);
      constraint?.advance(id);
      stats.generatedTokens++;
      stats.decodeMs = performance.now() - t1;
      step++;
      const stop = o.stopTokenIds.includes(id);
      const more = !stop && step < o.maxNewTokens;
      // A backend that runs ops asynchronously gets the next step before the token goes out, so
      // the device works on it while the caller handles this one. (If the caller stops early, the
      // cache holds this token's K/V too: its token list says so, and prefix reuse stays exact.)
      // A synchronous backend would only delay the token by a step.
      const ahead = more && !chained && this.backend.asyncExecution && !o.signal?.aborted;
      if (ahead && !(await this.enqueueDecode(id))) fresh = true;
      // Let the event loop run between tokens: on a synchronous backend every step settles at
      // once, and without this a whole answer would run in one task (no streaming, no Ctrl-C, no
      // disconnects). An asynchronous backend's readback already waits in the event loop, and an
      // extra turn there costs ≈ 3 ms per token with Dawn (bench/NOTES.md), so it gets none.
      if (!this.backend.asyncExecution) await nextTask();
      yield id;
      if (!more) return;
      if (o.signal?.aborted) {
        this.cache.truncate(0);
        throw new AbortError();
      }
      if (!ahead && !chained && !(await this.enqueueDecode(id))) fresh = true;
    }
  }

  /**
   * Enqueues the decode step that feeds `id`. false: it failed and the engine failed over to
   * another backend, so the caller must re-prefill the token history there.
   */
  private async enqueueDecode(id: number): Promise<boolean> {
    try {
      this.executor.decodeOne(this.cache, id);
      return true;
    } catch (e) {
      this.cache.truncate(0);
      if (!(await this.failover(e))) throw e;
      return false;
    }
  }

  /**
   * Streams the answer's text deltas; their concatenation equals chat()'s response, and the
   * generator's return value is the same ChatResult chat() resolves to.
   */
  chatStream(query: string, options: ChatOptions = {}): AsyncGenerator<string, ChatResult> {
    const self = this;
    return (async function* () {
      const result = { value: undefined as ChatResult | undefined };
      yield* self.chatDeltas(query, options, result);
      return result.value!;
    })();
  }

  async chat(query: string, options: ChatOptions = {}): Promise<ChatResult> {
    const result = { value: undefined as ChatResult | undefined };
    for await (const _ of this.chatDeltas(query, options, result)) {
      /* drain */
    }
    return result.value!;
  }

  private async *chatDeltas(query: string, options: ChatOptions, out: { value: ChatResult | undefined }): AsyncGenerator<string> {
    if (typeof query !== 'string') throw new ArgumentError('query must be a string');
    const history = options.history ?? [];
    const o = resolveOptions(options, this.generationConfig, this.config.vocabSize);
    const { contextTokens } = makeContext(this.tokenizer, query, {
      history,
      system: options.system ?? DEFAULT_SYSTEM,
      maxWindowSize: o.maxWindowSize,
    });
    const tok = this.tokenizer;
    // The answer ends at the first <|im_end|>, <|im_start|> or <|endoftext|>; what follows is not text.
    const endIds = new Set([tok.imEnd, tok.imStart, tok.endOfText, ...o.stopTokenIds]);
    const decoder = tok.createStreamDecoder();
    const trimmer = new WhitespaceTrimmer();
    const stopper = new StopStringMatcher(o.stop);
    const tokens: number[] = [];
    let ended = false;
    let stoppedByString = false;
    let finishReason: ChatResult['finishReason'] = 'length';
    let response = '';
    const emit = (text: string) => {
      const safe = trimmer.push(text);
      response += safe;
      return safe;
    };
    for await (const id of this.lockedStream(() => this.decodeLoop(contextTokens, o))) {
      tokens.push(id);
      if (ended) continue; // e.g. the EOS that Qwen's stop-word processor forces after <|im_end|>
      if (endIds.has(id)) {
        ended = true;
        finishReason = 'stop';
        continue;
      }
      const piece = stopper.push(decoder.push(id));
      const d = emit(piece.text);
      if (d) yield d;
      if (piece.stopped) {
        stoppedByString = true;
        finishReason = 'stop';
        break;
      }
    }
    if (!stoppedByString) {
      // bytes of an incomplete character decode as U+FFFD, as the official decode does
      const d = emit(stopper.flush(decoder.flush()));
      if (d) yield d;
    }
    out.value = { response, history: [...history, [query, response]], tokens, finishReason };
  }

  /** Drops the cached context (the next call prefills from scratch). */
  reset(): void {
    this.cache.truncate(0);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    const release = await this.mutex.lock();
    this.disposed = true;
    release();
    this.cache.release();
    this.executor.dispose();
    await this.backend.dispose();
    await this.options.onDispose?.();
  }
}
