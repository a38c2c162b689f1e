/**
 * Several wasm memories, one backend.
 *
 * Why: wasm32 memories stop at 4 GiB (Node 20 has no usable memory64), and Qwen-14B-Int4 needs
 * ~9.7 GB. So the CPU backend owns a list of shared memories ("arenas"), each instantiated once per
 * thread (the main thread's instance lives in the Arena; workers instantiate their own, see
 * threadPool.addMemory). An op runs entirely inside one memory:
 *   matmul → the weight's memory, attention/kvWrite → the KV store's, embed → the table's,
 *   rmsNorm → the norm weight's, elementwise ops → where their first input is valid.
 *
 * Placement: weights and KV follow the `Placement` hint. A layer is pinned to one memory when its
 * first tensor arrives: the last opened memory if it still has room for a layer as large as the
 * largest seen so far, else a new memory. A tensor that still does not fit spills into a new
 * memory (correct, just one more hidden-state copy). KV prefers its layer's memory, then any with
 * room, then a new one. Each memory keeps `reserve` bytes free of weights for activations/scratch.
 * Dense matrices and embeddings larger than one memory are cut into row ranges ("parts", each in
 * one memory); a matmul runs each part in its memory and gathers the output columns into the
 * first part's memory. (GPTQ layers are far below 4 GiB and are never cut.)
 *
 * Activations: a Buf has a lazily allocated mirror in each memory it is used in and a "valid in"
 * flag per mirror. Before an op reads (or partly writes) a Buf in memory m, the mirror in m is
 * refreshed from a valid one (a plain memcpy between the two SharedArrayBuffers: hidden states are
 * KBs); after the op only m is valid. A Buf never written reads as zeros.
 */
import { BackendError } from '../../errors.js';
import type { Buf } from '../backend.js';
import { Arena } from './arena.js';
import type { ThreadPool } from './threadPool.js';

export class CpuBuf implements Buf {
  /** Mirror pointer per arena index (-1: none). */
  readonly ptr: number[] = [];
  /** Mirror holds the current value, per arena index. */
  readonly valid: boolean[] = [];
  /** Elements [0, extent) have ever been written (the rest is zero everywhere). */
  extent = 0;
  freed = false;
  constructor(
    readonly length: number,
    /** Arena preferred when the buffer is valid nowhere yet. */
    readonly home: number,
  ) {}
}

export interface MemoryOptions {
  maxMemoryBytes: number;
  reserveBytes: number;
}

export class MemoryManager {
  readonly arenas: Arena[] = [];
  private pool?: ThreadPool;
  private readonly layerArena = new Map<number, number>();
  private readonly layerBytes = new Map<number, number>();
  private maxLayerBytes = 0;
  activationBytes = 0;

  constructor(
    private readonly module: WebAssembly.Module,
    readonly opts: MemoryOptions,
    readonly shared = true,
  ) {
    this.newArena();
  }

  attachPool(pool: ThreadPool): void {
    this.pool = pool;
  }

  newArena(): Arena {
    const a = new Arena(this.arenas.length, this.module, this.opts.maxMemoryBytes, this.shared);
    this.arenas.push(a);
    this.pool?.addMemory(a.memory);
    return a;
  }

  /** Arena of a layer's weights (pinning it on first use). */
  arenaForLayer(layer: number, bytes: number): Arena {
    const known = this.layerArena.get(layer);
    if (known !== undefined) return this.arenas[known];
    const last = this.arenas[this.arenas.length - 1];
    const need = Math.max(bytes, this.maxLayerBytes) + this.opts.reserveBytes;
    const a = last.available() >= need || this.isEmpty(last) ? last : this.newArena();
    this.layerArena.set(layer, a.index);
    return a;
  }

  private isEmpty(a: Arena): boolean {
    return a.used === 0;
  }

  /** The largest weight allocation one memory takes (what row-split tensors are cut to). */
  maxWeightBytes(): number {
    return this.arenas[0].capacity() - this.opts.reserveBytes;
  }

  /** Allocates weight bytes for `layer` ({arena, ptr}); spills to a new memory when full. */
  allocWeight(bytes: number, layer: number, what: string): { arena: Arena; ptr: number } {
    const usable = this.maxWeightBytes();
    if (bytes > usable) {
      throw new BackendError(`${what}: ${bytes} bytes do not fit one wasm memory (cap ${this.opts.maxMemoryBytes} bytes)`);
    }
    let a = this.arenaForLayer(layer, bytes);
    let ptr = a.available() - bytes >= this.opts.reserveBytes ? a.alloc(bytes) : -1;
    if (ptr < 0) {
      a = this.newArena();
      this.layerArena.set(layer, a.index);
      ptr = a.alloc(bytes);
      if (ptr < 0) throw new BackendError(`${what}: out of wasm memory for ${bytes} bytes`);
    }
    const total = (this.layerBytes.get(layer) ?? 0) + bytes;
    this.layerBytes.set(layer, total);
    if (layer >= 0) this.maxLayerBytes = Math.max(this.maxLayerBytes, total);
    return { arena: a, ptr };
  }

  /** KV storage: the layer's memory if it has room, else any memory with room, else a new one. */
  allocKV(bytes: number, layer: number): { arena: Arena; ptr: number } {
    const pref = this.layerArena.get(layer);
    const order = pref !== undefined ? [this.arenas[pref], ...this.arenas.filter((a) => a.index !== pref)] : [...this.arenas];
    for (const a of order) {
      if (a.available() - bytes >= this.opts.reserveBytes / 2) {
        const ptr = a.alloc(bytes);
        if (ptr >= 0) return { arena: a, ptr };
      }
    }
    const a = this.newArena();
    const ptr = a.alloc(bytes);
    if (ptr < 0) throw new BackendError(`KV cache: ${bytes} bytes do not fit one wasm memory (cap ${this.opts.maxMemoryBytes} bytes)`);
    return { arena: a, ptr };
  }

  homeFor(layer: number): number {
    return this.layerArena.get(layer) ?? 0;
  }

  // ---- activation mirrors ----

  /** Pointer of buf's mirror in arena a, made current when `read` (or when partly written). */
  at(buf: CpuBuf, a: Arena, read: boolean): number {
    if (buf.freed) throw new BackendError('use of a freed buffer');
    let p = buf.ptr[a.index];
    if (p === undefined || p < 0) {
      p = a.alloc(buf.length * 4);
      if (p < 0) throw new BackendError(`out of wasm memory: activation of ${buf.length} floats in memory ${a.index}`);
      buf.ptr[a.index] = p;
      this.activationBytes += buf.length * 4;
      // reused blocks hold stale bytes: a mirror starts as the zeros a never-written Buf reads as
      a.f32.fill(0, p >>> 2, (p >>> 2) + buf.length);
    }
    if (read && !buf.valid[a.index]) {
      const src = buf.valid.findIndex((v) => v);
      if (src >= 0 && buf.extent > 0) {
        const s = this.arenas[src];
        const sp = buf.ptr[src];
        a.u8.set(s.u8.subarray(sp, sp + buf.extent * 4), p);
      }
      buf.valid[a.index] = true;
    }
    return p;
  }

  /** Marks buf as written in arena a over [0, end) (other mirrors become stale). */
  written(buf: CpuBuf, a: Arena, end: number): void {
    for (let i = 0; i < buf.valid.length; i++) buf.valid[i] = false;
    buf.valid[a.index] = true;
    buf.extent = Math.max(buf.extent, Math.min(end, buf.length));
  }

  /** An arena where buf is valid (its home when it is valid nowhere). */
  validArena(buf: CpuBuf): Arena {
    const i = buf.valid.findIndex((v) => v);
    return this.arenas[i >= 0 ? i : Math.min(buf.home, this.arenas.length - 1)];
  }

  isValidIn(buf: CpuBuf, a: Arena): boolean {
    return buf.valid[a.index] === true || (buf.extent === 0 && !buf.valid.some((v) => v));
  }

  release(buf: CpuBuf): void {
    if (buf.freed) return;
    buf.freed = true;
    buf.ptr.forEach((p, i) => {
      if (p !== undefined && p >= 0) {
        this.arenas[i].free(p);
        this.activationBytes -= buf.length * 4;
      }
    });
  }
}
