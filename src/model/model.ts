/**
 * QwenModel: the public engine object — tokenizer, forward, generate, chat — over one backend,
 * one executor and one KV cache. Calls are serialised (one engine, one sequence at a time); the
 * cache is reused across calls by longest common prefix, so a follow-up chat turn only prefills
 * its new tokens.
 */
import type { Backend } from '../backend/backend.js';
import { DEFAULT_SYSTEM, makeContext } from '../chat/makeContext.js';
import { AbortError, ArgumentError } from '../errors.js';
import { resolveOptions, type GenerationOptions, type ResolvedOptions } from '../generate/options.js';
import { argmax, processLogits } from '../generate/processors.js';
import { createRng, sample } from '../generate/sampler.js';
import { StopStringMatcher, WhitespaceTrimmer } from '../generate/text.js';
import type { Checkpoint } from '../io/checkpoint.js';
import { KVCache, type KVCacheOptions } from '../kv/cache.js';
import type { QwenTokenizer } from '../tokenizer/index.js';
import type { GenerationConfig, QwenConfig } from './config.js';
import { QwenExecutor } from './executor.js';
import { ntkAlpha } from './rotary.js';
import { bytesPerToken, type QwenWeights } from './weights.js';
import { Mutex } from '../util/mutex.js';

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
  readonly executor: QwenExecutor;
  private cache: KVCache;
  private readonly mutex = new Mutex();
  private disposed = false;
  /** Timings of the last generate/chat call. */
  lastStats: GenerationStats | undefined;

  constructor(
    readonly backend: Backend,
    readonly tokenizer: QwenTokenizer,
    checkpoint: Pick<Checkpoint, 'config' | 'generationConfig'>,
    readonly weights: QwenWeights,
    readonly options: { prefillChunk?: number; kvCache?: KVCacheOptions } = {},
  ) {
    this.config = checkpoint.config;
    this.generationConfig = checkpoint.generationConfig;
    this.executor = new QwenExecutor(backend, this.config, weights, { prefillChunk: options.prefillChunk });
    this.cache = this.executor.newCache(options.kvCache);
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
  private prefill(ids: ArrayLike<number>, signal?: AbortSignal): number {
    const c = this.config;
    let reuse = this.cache.reusablePrefix(ids);
    if (reuse > 0 && this.cache.ntkAlpha !== ntkAlpha(ids.length, c.seqLength, c.useDynamicNtk)) reuse = 0;
    if (reuse === ids.length) reuse--; // the last token must run to produce logits
    this.cache.truncate(reuse);
    const rest = Array.prototype.slice.call(ids, reuse) as number[];
    const chunk = this.options.prefillChunk ?? 256;
    for (let start = 0; start < rest.length; start += chunk) {
      if (signal?.aborted) throw new AbortError();
      this.executor.prefill(this.cache, rest.slice(start, start + chunk), ids.length);
    }
    return reuse;
  }

  /** Last-position logits of a forward over `ids` (cache reused by prefix). */
  forward(ids: ArrayLike<number>): Promise<Float32Array> {
    this.checkIds(ids);
    return this.exclusive(async () => {
      try {
        this.prefill(ids);
        return await this.backend.read(this.executor.logits, 0, this.config.vocabSize);
      } catch (e) {
        this.cache.truncate(0);
        throw e;
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
    const seq = { ids: ids.slice(), promptLength: ids.length };
    const random = createRng(o.seed ?? (Math.random() * 2 ** 32) >>> 0);
    const plainArgmax =
      !o.doSample && o.repetitionPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0 && o.logitBias.size === 0 && !o.stopWordsProcessor;
    const t0 = performance.now();
    let t1 = t0;
    const stats: GenerationStats = { promptTokens: ids.length, reusedTokens: 0, generatedTokens: 0, prefillMs: 0, decodeMs: 0 };
    this.lastStats = stats;
    try {
      stats.reusedTokens = this.prefill(ids, o.signal);
      for (let step = 0; step < o.maxNewTokens; step++) {
        if (o.signal?.aborted) throw new AbortError();
        let id: number;
        if (plainArgmax) {
          id = await this.backend.argmax(this.executor.logits, 0, V);
        } else {
          const logits = await this.backend.read(this.executor.logits, 0, V);
          processLogits(logits, seq, o, special);
          id = o.doSample ? sample(logits, o, random) : argmax(logits);
        }
        if (step === 0) {
          t1 = performance.now();
          stats.prefillMs = t1 - t0;
        }
        seq.ids.push(id);
        stats.generatedTokens++;
        stats.decodeMs = performance.now() - t1;
        yield id;
        if (o.stopTokenIds.includes(id)) return;
        if (step + 1 < o.maxNewTokens) {
          if (o.signal?.aborted) throw new AbortError();
          this.executor.decodeOne(this.cache, id);
        }
      }
    } catch (e) {
      // A failed or aborted step may have left a partial chunk: keep only what is consistent.
      this.cache.truncate(0);
      throw e;
    }
  }

  /** Streams the answer's text deltas; the concatenation equals chat()'s response. */
  chatStream(query: string, options: ChatOptions = {}): AsyncGenerator<string> {
    const self = this;
    return (async function* () {
      const result = { value: undefined as ChatResult | undefined };
      yield* self.chatDeltas(query, options, result);
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
  }
}
