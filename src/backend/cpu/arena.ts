/**
 * One shared WebAssembly.Memory with a host-side allocator (first fit over an address-ordered,
 * coalescing free list plus a bump top). The kernels keep no heap of their own: everything above
 * the module's __heap_base belongs to this allocator. The memory grows on demand (pages are only
 * touched, hence resident, when written), never past `maxBytes`.
 */
import { instantiateKernels, type KernelExports } from './kernels.js';

const PAGE = 65536;
const ALIGN = 64;

interface Block {
  ptr: number;
  size: number;
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  /** The main thread's instance over this memory. */
  readonly k: KernelExports;
  private readonly freeList: Block[] = [];
  private readonly sizes = new Map<number, number>();
  private top: number;
  private readonly base: number;
  private bytesView!: Uint8Array;
  private f32View!: Float32Array;
  private i32View!: Int32Array;
  private scratchPtr = new Map<string, { ptr: number; size: number }>();
  /** Bytes currently handed out (incl. scratch). */
  used = 0;

  constructor(
    readonly index: number,
    module: WebAssembly.Module,
    readonly maxBytes: number,
    /** Shared (threads) or a plain memory (no SharedArrayBuffer: one thread; views detach on grow). */
    readonly shared = true,
  ) {
    const maxPages = Math.max(1, Math.floor(maxBytes / PAGE));
    this.memory = new WebAssembly.Memory({ initial: 1, maximum: maxPages, shared });
    this.k = instantiateKernels(module, this.memory);
    this.base = align(this.k.heapBase() >>> 0);
    this.top = this.base;
    this.refresh();
  }

  get u8(): Uint8Array {
    return this.bytesView;
  }
  get f32(): Float32Array {
    return this.f32View;
  }
  get i32(): Int32Array {
    return this.i32View;
  }

  /** Bytes an empty arena can hand out. */
  capacity(): number {
    return Math.floor(this.maxBytes / PAGE) * PAGE - this.base;
  }

  /** Bytes still allocatable (free blocks + room up to the cap). */
  available(): number {
    let free = Math.floor(this.maxBytes / PAGE) * PAGE - this.top;
    for (const b of this.freeList) free += b.size;
    return free;
  }

  /** Allocates `bytes` (64-byte aligned); returns -1 when the memory cannot hold it. */
  alloc(bytes: number): number {
    const size = align(Math.max(bytes, 1));
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i];
      if (b.size >= size) {
        const ptr = b.ptr;
        if (b.size === size) this.freeList.splice(i, 1);
        else {
          b.ptr += size;
          b.size -= size;
        }
        this.sizes.set(ptr, size);
        this.used += size;
        return ptr;
      }
    }
    const end = this.top + size;
    if (end > this.memory.buffer.byteLength && !this.growTo(end)) return -1;
    const ptr = this.top;
    this.top = end;
    this.sizes.set(ptr, size);
    this.used += size;
    return ptr;
  }

  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`arena ${this.index}: double free of ${ptr}`);
    this.sizes.delete(ptr);
    this.used -= size;
    const list = this.freeList;
    let i = 0;
    while (i < list.length && list[i].ptr < ptr) i++;
    list.splice(i, 0, { ptr, size });
    if (i + 1 < list.length && list[i].ptr + list[i].size === list[i + 1].ptr) {
      list[i].size += list[i + 1].size;
      list.splice(i + 1, 1);
    }
    if (i > 0 && list[i - 1].ptr + list[i - 1].size === list[i].ptr) {
      list[i - 1].size += list[i].size;
      list.splice(i, 1);
      i--;
    }
    if (list[i].ptr + list[i].size === this.top) {
      this.top = list[i].ptr;
      list.splice(i, 1);
    }
  }

  /**
   * A named scratch region of at least `bytes`, reused across calls (re-allocated when too small).
   * Returns -1 when the memory cannot hold it.
   */
  scratch(name: string, bytes: number): number {
    const cur = this.scratchPtr.get(name);
    if (cur && cur.size >= bytes) return cur.ptr;
    if (cur) this.free(cur.ptr);
    this.scratchPtr.delete(name);
    let size = Math.max(bytes, cur ? cur.size * 2 : 0);
    let ptr = this.alloc(size);
    if (ptr < 0 && size > bytes) {
      size = bytes;
      ptr = this.alloc(size);
    }
    if (ptr < 0) return -1;
    this.scratchPtr.set(name, { ptr, size });
    return ptr;
  }

  /** Releases a named scratch region (e.g. an upload's staging area). */
  dropScratch(name: string): void {
    const cur = this.scratchPtr.get(name);
    if (cur) {
      this.free(cur.ptr);
      this.scratchPtr.delete(name);
    }
  }

  scratchBytes(): number {
    let n = 0;
    for (const s of this.scratchPtr.values()) n += s.size;
    return n;
  }

  private growTo(end: number): boolean {
    const cap = Math.floor(this.maxBytes / PAGE) * PAGE;
    if (end > cap) return false;
    const cur = this.memory.buffer.byteLength;
    // Grow generously (virtual only until written) but never past the cap.
    const want = Math.min(cap, Math.max(end, cur + Math.min(cur, 256 << 20)));
    this.memory.grow(Math.ceil((want - cur) / PAGE));
    this.refresh();
    return true;
  }

  private refresh(): void {
    const buf = this.memory.buffer;
    this.bytesView = new Uint8Array(buf);
    this.f32View = new Float32Array(buf);
    this.i32View = new Int32Array(buf);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
