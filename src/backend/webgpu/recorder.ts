/**
 * Command recording for the WebGPU backend.
 *
 * Ops are encoded into one GPUCommandEncoder (inside one compute pass while possible) and
 * submitted only when a result is needed (read / argmax / topK / flush) or before a host write,
 * so one decode step is one command buffer. Per-dispatch parameters go into a CPU-side staging
 * ring that is copied to a GPU ring buffer with a single writeBuffer at submit; kernels bind the
 * ring with a dynamic offset, so bind groups depend only on the buffers and are cached.
 *
 * Queue operations (submits and host writes) go out in recording order through `toQueue`. A
 * `block()` entry holds back everything after it until its own write is known: the next decode
 * step is recorded while the GPU still computes the token whose embedding row it starts with.
 */
import { BufferUsage, MAP_READ, STAGE_COMPUTE } from './consts.js';
import { BackendError, DeviceLostError } from '../../errors.js';
import { ReadbackLatency } from './readbackLatency.js';
import type { GpuWaitHooks } from '../../platform.js';

/** A GPU buffer with a stable id (bind-group cache keys). */
export interface GBuf {
  readonly id: number;
  readonly buffer: GPUBuffer;
  readonly size: number;
  /** its whole-buffer binding range, made on first use (see whole) */
  range: BindRange | undefined;
}

export type BindKind = 'r' | 'w' | 'rd';
/** A compiled kernel: pipeline + its bind group layout and binding kinds (binding 0 = params). */
export interface Kernel {
  readonly id: number;
  readonly label: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** binding number → kind, binding 0 excluded; 'rd' = read-only storage with a dynamic offset */
  readonly bindings: ReadonlyMap<number, BindKind>;
  /** the same as two arrays in binding order (iterated per dispatch without allocating) */
  readonly slots: readonly number[];
  readonly kinds: readonly BindKind[];
}

/** A cached bind group: its kernel and bindings (buffer id, offset and size as given, −1 = none) */
interface BindGroupEntry {
  readonly hash: number;
  readonly kernel: Kernel;
  readonly ids: number[];
  readonly offsets: number[];
  readonly sizes: number[];
  readonly bg: GPUBindGroup;
  next: BindGroupEntry | undefined;
}

function sameBindings(e: BindGroupEntry, bufs: Record<number, BindRange>): boolean {
  const slots = e.kernel.slots;
  for (let i = 0; i < slots.length; i++) {
    if (e.ids[i] < 0) continue;
    const r = bufs[slots[i]];
    if (r.buf.id !== e.ids[i] || (r.offset ?? -1) !== e.offsets[i] || (r.size ?? -1) !== e.sizes[i]) return false;
  }
  return true;
}

export interface BindRange {
  buf: GBuf;
  offset?: number;
  size?: number;
}

/**
 * The binding range of all of g, one object per buffer: the dispatchers bind whole buffers a few
 * hundred times a decode step, and a literal each time was garbage for the GC (ranges are only
 * read by the bind-group lookup, never kept).
 */
export function whole(g: GBuf): BindRange {
  return (g.range ??= { buf: g });
}

/** Bytes of one parameter slot (minUniformBufferOffsetAlignment is at most 256). */
export const SLOT = 256;
/** Binding window of a dynamic-offset storage binding into the ring (e.g. embedding ids). */
export const DYN_WINDOW = 64 * 1024;
const RING = 4 * 1024 * 1024;
const MAX_QUERIES = 4096;
const NO_OFFSETS: readonly number[] = [];

/** Marks a parameter as f32 (others are u32). */
export class F32 {
  constructor(readonly v: number) {}
}
export const f32 = (v: number) => new F32(v);
export type Param = number | F32;

/** A held-back queue operation; `ready` = may run once everything before it has. */
interface Deferred {
  ready: boolean;
  run: () => void;
  /** called instead of run when the held work is dropped (abortDeferred) */
  drop?: (e: Error) => void;
}

/** A readback copy recorded but maybe not submitted yet (see readLater). */
interface PendingRead {
  captured: boolean;
  /** when its command buffer was submitted (performance.now()) */
  queuedAt: number;
  queued: () => void;
  dropped: (e: Error) => void;
}

export class Recorder {
  private nextId = 1;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private commands = 0;
  readonly ring: GBuf;
  private readonly stage = new ArrayBuffer(RING);
  private readonly stageU32 = new Uint32Array(this.stage);
  private readonly stageF32 = new Float32Array(this.stage);
  private head = 0;
  private dirtyStart = 0;
  private pendingDestroy: GPUBuffer[] = [];
  private lastPipeline: GPUComputePipeline | null = null;
  private regionLabel: string | null = null;
  private lastPass: GPUComputePassEncoder | null = null;
  /** bind groups by a hash of (kernel, bindings); collisions chained (see bindGroup) */
  private bindGroups = new Map<number, BindGroupEntry>();
  private entriesByBuffer = new Map<number, Set<BindGroupEntry>>();
  private readbackPool: GPUBuffer[] = [];
  lostError: DeviceLostError | null = null;
  private firstError: Error | null = null;
  submits = 0;
  dispatches = 0;
  /** dispatches, writes and copies recorded so far: what changes buffers, in order */
  changes = 0;
  /**
   * Paced readbacks start their wait shortly before the data is expected instead of at once (see
   * WebGpuOptions.pacedReadback); readbackLatency is the running estimate (readbackLatency.ts).
   */
  pacedReadback = false;
  /**
   * How a paced wait ends (WebGpuOptions.paceMode, default 'near'). 'early': a timer to shortly before the
   * estimate (ms resolution, so often 1–2 ms early), then Dawn's event-loop polling. 'near': the
   * timer to ≈ 1.5 ms before the estimate, our own event-loop turns to 0.15 ms before it, then
   * Dawn's polling — Dawn's Node binding makes a new N-API function every polling turn, which
   * outlives the young generation (a weak finalizer): ≈ 200 turns a 14B token filled the old
   * generation, and every 100–250 tokens a Mark-Compact stalled the GPU. (A third mode that woke
   * just after the estimate was measured and dropped: the 14B median rose 0.1–0.3 ms.)
   */
  paceMode: 'early' | 'near' = 'near';
  /**
   * Host work for the idle time of 'near' paced waits (the backend's embedding copy): called while
   * more than 1.5 ms remain before the data is due; returns whether to call it again at once.
   */
  idleWork: (() => boolean) | null = null;
  private readonly readbackLatency = new ReadbackLatency(() => this.paceMode);
  /** Told when every wait for the GPU starts and ends (WebGpuOptions.waitHooks). */
  waitHooks: GpuWaitHooks | undefined;
  /** Benchmarks: paced waits so far (count, ms asleep, ms from the map request to the data). */
  paceStats = { waits: 0, sleptMs: 0, mapMs: 0 };
  /** Benchmarks: host time spent sending held-back work to the queue (block releases). */
  drainMs = 0;
  /** Benchmarks: when set, every timed region pass's GPU begin/end (ns) is appended here. */
  passLog: { label: string; begin: number; end: number }[] | null = null;
  /** Submit (without waiting) after this many recorded commands; 0 = never on count alone. */
  submitEvery = 0;
  /**
   * After a wait (read or flush) the GPU is idle: the first submit comes after this many commands,
   * each later one after twice as many as the one before, up to submitEvery — the GPU starts
   * almost at once instead of after a whole submitEvery chunk of host encoding. 0 = off.
   */
  submitFirst = 0;
  /** Commands due before the next submit (see submitFirst). */
  private chunkLimit = 0;
  private readonly paramOffset = [0];
  /** Queue operations held back behind a block() entry whose write is not known yet, in order. */
  private deferred: Deferred[] = [];
  /** Readbacks whose copy is in the open encoder: told when that command buffer is submitted. */
  private encoderReads: PendingRead[] = [];

  // ---- profiling (timestamp queries, one compute pass per dispatch) ----
  private profiling = false;
  private querySet: GPUQuerySet | null = null;
  private queryLabels: string[] = [];
  private readonly profile = new Map<string, { ns: number; count: number }>();
  private profilePending: Promise<void>[] = [];

  constructor(readonly device: GPUDevice, readonly timestamps: boolean) {
    this.ring = this.createBuffer(RING + DYN_WINDOW, BufferUsage.UNIFORM | BufferUsage.STORAGE | BufferUsage.COPY_DST, 'params ring');
    device.lost.then((info) => {
      this.lostError = new DeviceLostError(`webgpu: device lost (${info.reason}): ${info.message}`);
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (!this.firstError) this.firstError = new BackendError(`webgpu: ${err.message}`);
    });
  }

  /** Whether dispatches are timed one by one (labels matter only then). */
  get profilingOn(): boolean {
    return this.profiling;
  }

  checkAlive(): void {
    if (this.lostError) throw this.lostError;
  }

  /** Throws the first uncaptured GPU error (validation, out of memory) seen so far. */
  checkErrors(): void {
    this.checkAlive();
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      throw e;
    }
  }

  createBuffer(size: number, usage: number, label: string, mapped = false): GBuf {
    this.checkAlive();
    const bytes = Math.max(16, Math.ceil(size / 16) * 16);
    const buffer = this.device.createBuffer({ size: bytes, usage, label, mappedAtCreation: mapped });
    return { id: this.nextId++, buffer, size: bytes, range: undefined };
  }

  /** Destroys a buffer once no recorded command can still reference it. */
  release(g: GBuf): void {
    const entries = this.entriesByBuffer.get(g.id);
    if (entries) {
      // (unlinking deletes from this set too: a Set's iterator allows deleting the current entry)
      for (const e of entries) this.unlinkBindGroup(e);
      this.entriesByBuffer.delete(g.id);
    }
    if (this.commands > 0 || this.deferred.length > 0) this.pendingDestroy.push(g.buffer);
    else g.buffer.destroy();
  }

  get hasPending(): boolean {
    return this.commands > 0;
  }

  // ---- queue order (see block) ----

  /** Runs a queue operation now, or after the held-back ones before it. */
  private toQueue(run: () => void, drop?: (e: Error) => void): void {
    if (this.deferred.length === 0) run();
    else this.deferred.push({ ready: true, run, drop });
  }

  private drain(): void {
    const t0 = performance.now();
    while (this.deferred.length > 0 && this.deferred[0].ready) this.deferred.shift()!.run();
    this.drainMs += performance.now() - t0;
  }

  /**
   * Holds back every later queue operation (submits, writes) until the returned function is
   * called with the write that must come first. Work recorded before is submitted now.
   */
  block(): (first: () => void) => void {
    this.submit();
    // the GPU will be idle when the block opens: the work after it goes out in small chunks first
    this.idle();
    const e: Deferred = { ready: false, run: () => undefined };
    this.deferred.push(e);
    return (first) => {
      if (!this.deferred.includes(e)) return; // dropped meanwhile
      e.run = first;
      e.ready = true;
      this.drain();
    };
  }

  /** Resolves once everything submitted so far has reached the queue (no held-back work before it). */
  private queued(): Promise<void> {
    if (this.deferred.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.deferred.push({ ready: true, run: resolve, drop: reject }));
  }

  /** Drops all held-back work (its token could not be read): the caller must reset what it fed. */
  abortDeferred(e: Error): void {
    const held = this.deferred;
    this.deferred = [];
    for (const d of held) d.drop?.(e);
  }

  /** A host write into a buffer, ordered with the recorded work (submits what is pending first). */
  write(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.checkAlive();
    this.changes++;
    if (this.commands > 0) this.submit();
    if (this.deferred.length === 0) {
      this.device.queue.writeBuffer(buffer, offset, data.buffer, data.byteOffset, data.byteLength);
      return;
    }
    const copy = new Uint8Array(data.byteLength);
    copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.toQueue(() => this.device.queue.writeBuffer(buffer, offset, copy));
  }

  private wrap(): void {
    this.submit();
    this.head = 0;
    this.dirtyStart = 0;
  }

  /** Reserves `bytes` in the parameter ring; returns the byte offset. */
  private reserve(bytes: number): number {
    const size = Math.ceil(bytes / SLOT) * SLOT;
    if (this.head + size > RING) this.wrap();
    const at = this.head;
    this.head += size;
    return at;
  }

  /** Writes params into a fresh slot; returns its byte offset. */
  params(values: readonly Param[]): number {
    const at = this.reserve(Math.max(4 * values.length, 16));
    const base = at / 4;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v instanceof F32) this.stageF32[base + i] = v.v;
      else this.stageU32[base + i] = v >>> 0;
    }
    return at;
  }

  /** Copies u32 data (≤ DYN_WINDOW bytes) into the ring; returns its byte offset. */
  data(values: Uint32Array | Int32Array | Float32Array): number {
    const bytes = values.byteLength;
    if (bytes > DYN_WINDOW) throw new BackendError(`webgpu: inline data of ${bytes} bytes exceeds ${DYN_WINDOW}`);
    // keep room for the dispatch's own params so they cannot wrap the ring after this data
    if (this.head + Math.ceil(bytes / SLOT) * SLOT + SLOT > RING) this.wrap();
    const at = this.reserve(bytes);
    new Uint8Array(this.stage, at, bytes).set(new Uint8Array(values.buffer, values.byteOffset, bytes));
    return at;
  }

  private ensurePass(): GPUComputePassEncoder {
    this.checkAlive();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) {
      const label = this.regionLabel;
      if (label !== null && this.querySet) {
        // a timed region: the whole pass (many dispatches) between two timestamps
        if (this.queryLabels.length * 2 + 2 > MAX_QUERIES) {
          this.submit();
          this.encoder = this.device.createCommandEncoder();
        }
        const i = this.queryLabels.length;
        this.queryLabels.push(label);
        this.pass = this.encoder.beginComputePass({
          timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
        });
      } else {
        this.pass = this.encoder.beginComputePass();
      }
    }
    return this.pass;
  }

  /**
   * Benchmarks: GPU time of everything recorded until endRegion(), as whole compute passes
   * (dispatches back to back, as in normal recording) under one label; read with takeProfile.
   * Copies and submits inside the region split it into several timed passes.
   */
  beginRegion(label: string): void {
    if (!this.timestamps) throw new BackendError('webgpu: timestamp-query is not available on this adapter');
    this.endPass();
    if (!this.querySet) this.querySet = this.device.createQuerySet({ type: 'timestamp', count: MAX_QUERIES });
    this.regionLabel = label;
  }

  endRegion(): void {
    this.endPass();
    this.regionLabel = null;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private bindGroup(k: Kernel, bufs: Record<number, BindRange>): GPUBindGroup {
    // a hit (every dispatch after the first step) allocates nothing: the (kernel, bindings) pair
    // is hashed to an integer and compared field by field with the entries under that hash
    const slots = k.slots;
    let h = k.id | 0;
    for (let i = 0; i < slots.length; i++) {
      if (k.kinds[i] === 'rd') continue;
      const r = bufs[slots[i]];
      if (!r) throw new BackendError(`webgpu: kernel ${k.label} needs binding ${slots[i]}`);
      h = Math.imul(h ^ r.buf.id, 0x01000193);
      h = Math.imul(h ^ (r.offset ?? -1), 0x01000193);
      h = Math.imul(h ^ (r.size ?? -1), 0x01000193);
    }
    const head = this.bindGroups.get(h);
    for (let e = head; e; e = e.next) {
      if (e.kernel === k && sameBindings(e, bufs)) return e.bg;
    }
    const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.ring.buffer, offset: 0, size: SLOT } }];
    const ids: number[] = [];
    const offsets: number[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < slots.length; i++) {
      const binding = slots[i];
      const r = k.kinds[i] === 'rd' ? undefined : bufs[binding];
      if (r) entries.push({ binding, resource: { buffer: r.buf.buffer, offset: r.offset ?? 0, size: r.size ?? r.buf.size - (r.offset ?? 0) } });
      else entries.push({ binding, resource: { buffer: this.ring.buffer, offset: 0, size: DYN_WINDOW } });
      ids.push(r ? r.buf.id : -1);
      offsets.push(r?.offset ?? -1);
      sizes.push(r?.size ?? -1);
    }
    const bg = this.device.createBindGroup({ layout: k.layout, entries, label: k.label });
    const entry: BindGroupEntry = { hash: h, kernel: k, ids, offsets, sizes, bg, next: head };
    this.bindGroups.set(h, entry);
    for (const id of entry.ids) {
      if (id < 0) continue;
      let set = this.entriesByBuffer.get(id);
      if (!set) this.entriesByBuffer.set(id, (set = new Set()));
      set.add(entry);
    }
    return bg;
  }

  /** Removes a cached bind group (one of its buffers is released) from the cache and the index. */
  private unlinkBindGroup(e: BindGroupEntry): void {
    for (const id of e.ids) this.entriesByBuffer.get(id)?.delete(e);
    let cur = this.bindGroups.get(e.hash);
    if (cur === e) {
      if (e.next) this.bindGroups.set(e.hash, e.next);
      else this.bindGroups.delete(e.hash);
      return;
    }
    while (cur && cur.next !== e) cur = cur.next;
    if (cur) cur.next = e.next;
  }

  /**
   * Records one dispatch. `groups` may exceed maxComputeWorkgroupsPerDimension in x: it is folded
   * into x·y (kernels flatten with num_workgroups). `dyn` = byte offsets of 'rd' bindings.
   */
  dispatch(k: Kernel, params: readonly Param[], bufs: Record<number, BindRange>, groups: [number, number?, number?], dyn: readonly number[] = NO_OFFSETS, label: string = k.label): void {
    const at = this.params(params);
    const bg = this.bindGroup(k, bufs);
    // (indexed, not destructured: destructuring runs the array iterator, an allocation a dispatch)
    let x = groups[0];
    let y = groups[1] ?? 1;
    const z = groups[2] ?? 1;
    if (x === 0 || y === 0 || z === 0) return;
    if (x > 65535) {
      if (y !== 1) throw new BackendError(`webgpu: grid ${x}×${y} too large for ${k.label}`);
      y = Math.ceil(x / 65535);
      x = Math.ceil(x / y);
      // kernels that fold x·y guard against the extra workgroups
    }
    let pass: GPUComputePassEncoder;
    if (this.profiling && this.querySet) {
      if (this.queryLabels.length * 2 + 2 > MAX_QUERIES) this.submit();
      this.endPass();
      if (!this.encoder) this.encoder = this.device.createCommandEncoder();
      const i = this.queryLabels.length;
      this.queryLabels.push(label);
      pass = this.encoder.beginComputePass({
        timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
      });
      this.pass = pass;
    } else {
      pass = this.ensurePass();
    }
    if (this.lastPipeline !== k.pipeline || this.lastPass !== pass) {
      pass.setPipeline(k.pipeline);
      this.lastPipeline = k.pipeline;
      this.lastPass = pass;
    }
    // (the offsets are copied by the call: one array serves every dispatch without extra offsets)
    if (dyn.length) pass.setBindGroup(0, bg, [at, ...dyn]);
    else {
      this.paramOffset[0] = at;
      pass.setBindGroup(0, bg, this.paramOffset);
    }
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiling) this.endPass();
    this.commands++;
    this.dispatches++;
    this.changes++;
    // (chunks also while queue work is held back: Dawn translates a command buffer when it is
    // submitted, so at the release a small first chunk starts the GPU sooner than one whole step)
    if (this.submitEvery > 0 && this.commands >= (this.chunkLimit || this.submitEvery)) {
      this.submit();
      if (this.chunkLimit) this.chunkLimit = this.chunkLimit * 2 >= this.submitEvery ? 0 : this.chunkLimit * 2;
    }
  }

  /** The GPU will be idle after this wait: start the next batch with a small chunk. */
  private idle(): void {
    this.chunkLimit = this.submitFirst > 0 && this.submitFirst < this.submitEvery ? this.submitFirst : 0;
  }

  copyBuffer(src: GBuf, srcOffset: number, dst: GBuf, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.checkAlive();
    this.endPass();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
    this.commands++;
    this.changes++;
  }

  /** Submits everything recorded so far (no wait; behind held-back work, see block). */
  submit(): void {
    this.checkAlive();
    this.endPass();
    let ring: Uint8Array<ArrayBuffer> | null = null;
    let ringAt = 0;
    if (this.head > this.dirtyStart) {
      ringAt = this.dirtyStart;
      // a held-back submit copies its params: the staging ring may wrap before it goes out
      ring = new Uint8Array(this.stage, ringAt, this.head - ringAt);
      if (this.deferred.length > 0) ring = ring.slice();
      this.dirtyStart = this.head;
    }
    let cb: GPUCommandBuffer | null = null;
    let resolve: GPUBuffer | null = null;
    let labels: string[] = [];
    if (this.encoder) {
      const n = this.queryLabels.length;
      if (this.querySet && n > 0) {
        const q = this.device.createBuffer({ size: 16 * n, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
        resolve = this.device.createBuffer({ size: 16 * n, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
        this.encoder.resolveQuerySet(this.querySet, 0, 2 * n, q, 0);
        this.encoder.copyBufferToBuffer(q, 0, resolve, 0, 16 * n);
        this.pendingDestroy.push(q);
      }
      cb = this.encoder.finish();
      this.encoder = null;
      labels = this.queryLabels;
      this.queryLabels = [];
    }
    const reads = this.encoderReads;
    this.encoderReads = [];
    for (const r of reads) r.captured = true;
    this.commands = 0;
    const destroy = this.pendingDestroy;
    this.pendingDestroy = [];
    if (!ring && !cb && destroy.length === 0) return;
    this.toQueue(
      () => {
        if (ring) this.device.queue.writeBuffer(this.ring.buffer, ringAt, ring);
        if (cb) {
          this.device.queue.submit([cb]);
          this.submits++;
        }
        for (const r of reads) r.queued();
        if (resolve) this.readProfile(resolve, labels);
        for (const b of destroy) b.destroy();
      },
      (e) => {
        for (const r of reads) r.dropped(e);
        resolve?.destroy();
        for (const b of destroy) b.destroy();
      },
    );
  }

  private readProfile(buf: GPUBuffer, labels: string[]): void {
    this.profilePending.push(
      this.gpuWait(() => buf.mapAsync(MAP_READ)).then(() => {
        const t = new BigUint64Array(buf.getMappedRange());
        for (let i = 0; i < labels.length; i++) {
          const ns = Number(t[2 * i + 1] - t[2 * i]);
          this.passLog?.push({ label: labels[i], begin: Number(t[2 * i]), end: Number(t[2 * i + 1]) });
          const e = this.profile.get(labels[i]) ?? { ns: 0, count: 0 };
          e.ns += ns;
          e.count++;
          this.profile.set(labels[i], e);
        }
        buf.unmap();
        buf.destroy();
      }),
    );
  }

  private takeReadback(bytes: number): GPUBuffer {
    const i = this.readbackPool.findIndex((b) => b.size >= bytes);
    if (i >= 0) return this.readbackPool.splice(i, 1)[0];
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(bytes)));
    return this.device.createBuffer({ size, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST, label: 'readback' });
  }

  /** Copies `bytes` from src into a mappable buffer, submits, and resolves with the bytes. */
  async readBytes(src: GBuf, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.checkErrors();
    if (bytes === 0) return new ArrayBuffer(0);
    return this.readLater(src, offset, bytes)();
  }

  /**
   * Records a copy of `bytes` from src into a mappable buffer without submitting; the returned
   * function (call it once) submits if the copy is still unsubmitted, then waits for the bytes.
   * `paced`: one of a series of like readbacks (decode tokens), whose wait may start late (see
   * pacedReadback).
   */
  readLater(src: GBuf, offset: number, bytes: number, paced = false): () => Promise<ArrayBuffer> {
    this.checkErrors();
    const rb = this.takeReadback(bytes);
    this.endPass();
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.encoder.copyBufferToBuffer(src.buffer, offset, rb, 0, bytes);
    this.commands++;
    let pending!: PendingRead;
    const inQueue = new Promise<void>((queued, dropped) => {
      pending = {
        captured: false,
        queuedAt: 0,
        queued: () => {
          pending.queuedAt = performance.now();
          queued();
        },
        dropped,
      };
    });
    inQueue.catch(() => undefined); // observed below; no unhandled rejection if never read
    this.encoderReads.push(pending);
    return async () => {
      // everything recorded goes out before the wait, not only up to the copy: a held-back tail
      // (the rest of the next decode step) would leave the GPU idle until the wait ends
      const captured = pending.captured;
      if (!captured || this.commands > 0) this.submit();
      if (!captured) this.idle();
      try {
        await inQueue;
        const pace = paced && this.pacedReadback;
        const t0 = performance.now();
        if (pace) await this.pace(pending.queuedAt);
        const asked = performance.now();
        await this.gpuWait(() => rb.mapAsync(MAP_READ, 0, bytes));
        if (pace) {
          const done = performance.now();
          this.readbackLatency.learn(pending.queuedAt, asked, done);
          this.paceStats.waits++;
          this.paceStats.sleptMs += asked - t0;
          this.paceStats.mapMs += done - asked;
        }
      } catch (e) {
        this.checkAlive();
        throw new BackendError(`webgpu: readback failed: ${(e as Error).message}`, { cause: e });
      }
      const out = rb.getMappedRange(0, bytes).slice(0);
      rb.unmap();
      this.readbackPool.push(rb);
      this.checkErrors();
      return out;
    };
  }

  /** Paced readback: waits (a timer; with paceMode near then event-loop turns) until shortly before the data is expected. */
  private async pace(queuedAt: number): Promise<void> {
    const turn = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
    if (this.paceMode === 'near' && turn) {
      const target = queuedAt + this.readbackLatency.ms - 0.15;
      let wait = target - performance.now();
      // time to spare before the data is due: idle work first (e.g. the embedding copy's slices)
      while (wait > 1.5 && this.runIdleWork()) wait = target - performance.now();
      if (wait > 2) await new Promise((resolve) => setTimeout(resolve, Math.floor(wait - 1.5)));
      // one promise and one callback for the whole stretch: a turn allocates only its Immediate
      // (a promise and an await per turn were ≈ 20 % of what survived scavenges on SwiftShader)
      await new Promise<void>((resolve) => {
        const step = () => (performance.now() < target ? turn(step) : resolve());
        step();
      });
      return;
    }
    const wait = queuedAt + 0.9 * this.readbackLatency.ms - 0.5 - performance.now();
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, Math.floor(wait)));
  }

  /** Starts a GPU wait (a map, a queue drain), the wait hooks told before it starts and when it settles. */
  private gpuWait<T>(start: () => Promise<T>): Promise<T> {
    const hooks = this.waitHooks;
    if (!hooks) return start();
    hooks.enter();
    let p: Promise<T>;
    try {
      p = start();
    } catch (e) {
      hooks.leave();
      throw e;
    }
    return p.finally(() => hooks.leave());
  }

  /** One call of idleWork; work that throws (e.g. a lost device) is dropped, not the wait. */
  private runIdleWork(): boolean {
    try {
      return this.idleWork?.() ?? false;
    } catch {
      this.idleWork = null;
      return false;
    }
  }

  async flush(): Promise<void> {
    this.submit();
    this.idle();
    await this.queued();
    await this.gpuWait(() => this.device.queue.onSubmittedWorkDone());
    this.checkErrors();
  }

  setProfiling(on: boolean): void {
    if (on && !this.timestamps) throw new BackendError('webgpu: timestamp-query is not available on this adapter');
    this.submit();
    this.profiling = on;
    if (on && !this.querySet) this.querySet = this.device.createQuerySet({ type: 'timestamp', count: MAX_QUERIES });
  }

  /** Per-label GPU time (ns) and dispatch counts since the last reset. */
  async takeProfile(): Promise<Map<string, { ns: number; count: number }>> {
    await this.flush();
    await Promise.all(this.profilePending);
    this.profilePending = [];
    const out = new Map(this.profile);
    this.profile.clear();
    return out;
  }

  destroy(): void {
    this.abortDeferred(new BackendError('webgpu: backend disposed'));
    for (const b of this.readbackPool) b.destroy();
    this.readbackPool = [];
    this.bindGroups.clear();
    this.entriesByBuffer.clear();
    this.querySet?.destroy();
  }
}
