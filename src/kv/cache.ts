/**
 * The streaming KV cache: one backend KVStore per layer plus the bookkeeping the executor needs.
 *
 * - `tokens` mirrors the ids whose keys/values occupy the slots, so a follow-up turn can prefill
 *   only what comes after the longest common prefix (see `reusablePrefix`).
 * - Stores are preallocated in chunks and grown (copied into a larger store) as the context grows.
 * - Bounded streaming mode (`window`): once full, the oldest slots after the first `sink` ones are
 *   dropped and the rest slide down, so generation runs forever in fixed memory. Keys keep the
 *   rotation of their absolute position (queries keep counting positions); this is the
 *   attention-sink approximation — exactness against the official code holds only until the
 *   first eviction.
 */
import type { Backend, KVQuant, KVStore } from '../backend/backend.js';
import { ArgumentError } from '../errors.js';

export interface KVCacheOptions {
  /** 'f32' (default) or 'int8' per-(slot, head) quantised keys and values. */
  quant?: KVQuant;
  /** Slots are allocated in multiples of this (default 256). */
  chunk?: number;
  /** Hard upper bound of slots (default: unbounded in normal mode). */
  maxSlots?: number;
  /** Bounded streaming mode: keep `sink` first slots + the most recent ones, `window` slots in all. */
  window?: number;
  sink?: number;
}

/** The id recorded for a slot whose token is still on the device (see resolveLast). */
export const UNKNOWN_TOKEN = -1;

export class KVCache {
  readonly stores: KVStore[] = [];
  /** Token ids whose keys/values are in slots 0..length-1 (normal mode). */
  readonly tokens: number[] = [];
  /** Absolute position of the next token (equals length until the window first slides). */
  position = 0;
  /** NTK alpha the cached keys were rotated with (from the prefill that created them). */
  ntkAlpha = 1;
  /** True once the window has slid: the cache no longer holds a plain prefix. */
  slid = false;
  private capacity = 0;
  readonly quant: KVQuant;
  private readonly chunk: number;

  constructor(
    private readonly backend: Backend,
    readonly layers: number,
    readonly heads: number,
    readonly headDim: number,
    readonly options: KVCacheOptions = {},
  ) {
    this.quant = options.quant ?? 'f32';
    this.chunk = options.chunk ?? 256;
    if (options.window !== undefined) {
      const sink = options.sink ?? 4;
      if (!(options.window > sink + 1)) throw new ArgumentError(`kvCache.window (${options.window}) must exceed kvCache.sink (${sink}) + 1`);
    }
  }

  get length(): number {
    return this.tokens.length;
  }

  /** Slots the next `n` tokens may use before the window must slide. */
  get windowSize(): number | undefined {
    return this.options.window;
  }

  /** Makes room for `n` more tokens: grows the stores, or slides the window in streaming mode. */
  reserve(n: number): void {
    const needed = this.length + n;
    const window = this.options.window;
    if (window !== undefined && needed > window) {
      const sink = this.options.sink ?? 4;
      if (n > window - sink) throw new ArgumentError(`cannot feed ${n} tokens at once into a streaming window of ${window} (sink ${sink})`);
      const drop = needed - window;
      for (const kv of this.stores) this.backend.kvMove(kv, sink, sink + drop, this.length - sink - drop);
      this.tokens.splice(sink, drop);
      this.slid = true;
    }
    const target = Math.min(this.length + n, window ?? Infinity);
    if (this.options.maxSlots !== undefined && target > this.options.maxSlots) {
      throw new ArgumentError(`context of ${target} tokens exceeds kvCache.maxSlots ${this.options.maxSlots}`);
    }
    if (target <= this.capacity) return;
    let capacity = Math.ceil(target / this.chunk) * this.chunk;
    if (window !== undefined) capacity = Math.min(capacity, window);
    if (this.options.maxSlots !== undefined) capacity = Math.min(capacity, this.options.maxSlots);
    for (let l = 0; l < this.layers; l++) {
      const next = this.backend.kvCreate(capacity, this.heads, this.headDim, this.quant, { layer: l });
      const old = this.stores[l];
      if (old) {
        this.backend.kvCopy(next, old, this.length);
        this.backend.kvFree(old);
      }
      this.stores[l] = next;
    }
    this.capacity = capacity;
  }

  /** Records that `ids` now occupy the next slots. */
  append(ids: ArrayLike<number>): void {
    for (let i = 0; i < ids.length; i++) this.tokens.push(ids[i]);
    this.position += ids.length;
  }

  /**
   * Records the id of the last slot, fed as a device token before its value was known
   * (appended as UNKNOWN_TOKEN, which no prefix matches until then).
   */
  resolveLast(id: number): void {
    const i = this.tokens.length - 1;
    if (i < 0 || this.tokens[i] !== UNKNOWN_TOKEN) throw new ArgumentError('resolveLast: the last slot holds no unresolved token');
    this.tokens[i] = id;
  }

  /** Length of the longest prefix of `ids` already cached (0 once the window has slid). */
  reusablePrefix(ids: ArrayLike<number>): number {
    if (this.slid) return 0;
    let n = 0;
    const max = Math.min(ids.length, this.tokens.length);
    while (n < max && this.tokens[n] === ids[n]) n++;
    return n;
  }

  /** Forgets everything from slot n on (keeps storage). */
  truncate(n: number): void {
    if (this.slid && n > 0) throw new ArgumentError('cannot truncate a slid streaming cache except to 0');
    this.tokens.length = Math.min(n, this.tokens.length);
    this.position = this.tokens.length;
    if (n === 0) this.slid = false;
  }

  /** Frees all backend storage. */
  release(): void {
    for (const kv of this.stores) this.backend.kvFree(kv);
    this.stores.length = 0;
    this.capacity = 0;
    this.truncate(0);
  }
}
