/**
 * Worker pool over shared wasm memories. Thread 0 is the calling thread; workers 1..N−1 run the
 * same kernel module instantiated on the same memories. A job splits [0, units) into per-thread
 * ranges aligned to `grain`; the caller runs its own range, then blocks in Atomics.wait until every
 * worker has counted itself done (no spinning on the main thread beyond a short grace period).
 */
import type { WorkerLike } from '../../platform.js';
import { BackendError } from '../../errors.js';
import { KERNEL_NAMES, type KernelName } from './kernels.js';
import type { Arena } from './arena.js';
import { CTRL, OP, cpuWorkerSource } from './workerSource.js';

const FN_INDEX = new Map<string, number>(KERNEL_NAMES.map((n, i) => [n, i]));

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
function canBlock(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

export class ThreadPool {
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array;
  private readonly errors: string[] = [];
  /** A browser main thread cannot Atomics.wait: it spins on the DONE counter instead. */
  private readonly blocking = canBlock();

  private constructor(
    private readonly workers: WorkerLike[],
    sab: ArrayBufferLike,
  ) {
    this.ctrl = new Int32Array(sab);
    this.args = new Float64Array(sab, CTRL.ARGS_BYTE, CTRL.MAX_ARGS);
  }

  /** Threads including the caller's. */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * Starts threads − 1 workers with `createWorker`; fewer (down to none) when it returns undefined.
   * Workers that cannot start (a CSP blocking blob: workers, a crash while loading, no answer in
   * 30 s) are not fatal: the pool then runs on the calling thread alone.
   */
  static async create(
    module: WebAssembly.Module,
    memories: WebAssembly.Memory[],
    threads: number,
    createWorker: ((code: string) => WorkerLike | undefined) | undefined,
  ): Promise<ThreadPool> {
    const workers: WorkerLike[] = [];
    const n = Math.min(Math.max(1, Math.floor(threads)), CTRL.MAX_THREADS);
    // without workers the control block is never shared (and SharedArrayBuffer may not exist)
    const sab = n > 1 && createWorker ? new SharedArrayBuffer(CTRL.BYTES) : new ArrayBuffer(CTRL.BYTES);
    if (createWorker && n > 1) {
      for (let i = 1; i < n; i++) {
        let w: WorkerLike | undefined;
        try {
          w = createWorker(cpuWorkerSource);
        } catch {
          w = undefined;
        }
        if (!w) break;
        workers.push(w);
      }
    }
    const pool = new ThreadPool(workers, sab);
    const started = await Promise.all(
      workers.map(
        (w, i) =>
          new Promise<boolean>((resolve) => {
            let ready = false;
            const timer = setTimeout(() => resolve(false), 30000);
            w.onMessage((data) => {
              const m = data as { type: string; message?: string };
              if (m.type === 'ready') {
                ready = true;
                clearTimeout(timer);
                resolve(true);
              } else if (m.type === 'error') pool.errors.push(m.message ?? 'worker error');
            });
            w.onError((e) => {
              pool.errors.push(`cpu worker ${i + 1}: ${String(e)}`);
              if (!ready) {
                clearTimeout(timer);
                resolve(false);
              }
            });
            try {
              w.postMessage({ type: 'init', ctrl: sab, id: i + 1, module, names: [...KERNEL_NAMES], memories });
            } catch (e) {
              pool.errors.push(String(e));
              clearTimeout(timer);
              resolve(false);
            }
          }),
      ),
    );
    if (started.every((ok) => ok)) return pool;
    // worker ids are fixed at init: rather than renumber, fall back to the calling thread alone
    await pool.dispose();
    return new ThreadPool([], new ArrayBuffer(CTRL.BYTES));
  }

  /** Why workers failed to start or failed while running (for diagnostics). */
  get workerErrors(): readonly string[] {
    return this.errors;
  }

  /** Makes every worker instantiate the kernels over a new memory (synchronous: waits for acks). */
  addMemory(memory: WebAssembly.Memory): void {
    if (this.workers.length === 0) return;
    const c = this.ctrl;
    Atomics.store(c, CTRL.ACK, 0);
    for (const w of this.workers) w.postMessage({ type: 'addMemory', memory });
    c[CTRL.OP] = OP.YIELD;
    Atomics.add(c, CTRL.SEQ, 1);
    Atomics.notify(c, CTRL.SEQ);
    const deadline = Date.now() + 30000;
    for (;;) {
      const a = Atomics.load(c, CTRL.ACK);
      if (a >= this.workers.length) break;
      if (Date.now() > deadline) throw new BackendError('cpu workers did not acknowledge a new memory within 30 s');
      if (this.blocking) Atomics.wait(c, CTRL.ACK, a, 1000);
    }
  }

  /** Runs kernel `fn`(lo, hi, tid, ...args) of `arena`'s memory over [0, units) on all threads. */
  run(arena: Arena, fn: KernelName, units: number, grain: number, args: number[]): void {
    if (units <= 0) return;
    const chunks = Math.ceil(units / grain);
    const t = Math.min(this.threads, chunks);
    if (t <= 1) {
      arena.k[fn](0, units, 0, ...args);
      return;
    }
    const c = this.ctrl;
    const range = (i: number): [number, number] => [
      Math.min(units, Math.floor((i * chunks) / t) * grain),
      Math.min(units, Math.floor(((i + 1) * chunks) / t) * grain),
    ];
    for (let i = 1; i < this.threads; i++) {
      const [lo, hi] = i < t ? range(i) : [0, 0];
      c[CTRL.RANGES + 2 * i] = lo;
      c[CTRL.RANGES + 2 * i + 1] = hi;
    }
    if (args.length > CTRL.MAX_ARGS) throw new BackendError(`kernel ${fn}: too many arguments`);
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    c[CTRL.NARGS] = args.length;
    c[CTRL.FN] = FN_INDEX.get(fn)!;
    c[CTRL.MEM] = arena.index;
    c[CTRL.OP] = OP.RUN;
    Atomics.store(c, CTRL.ERR, 0);
    Atomics.store(c, CTRL.DONE, 0);
    Atomics.add(c, CTRL.SEQ, 1);
    Atomics.notify(c, CTRL.SEQ);
    const [lo, hi] = range(0);
    let failure: unknown;
    try {
      arena.k[fn](lo, hi, 0, ...args);
    } catch (e) {
      failure = e;
    }
    const need = this.workers.length;
    let spins = 0;
    let last = -1;
    let since = 0;
    for (;;) {
      const d = Atomics.load(c, CTRL.DONE);
      if (d >= need) break;
      if (++spins > 2000) {
        if (this.blocking) Atomics.wait(c, CTRL.DONE, d, 5000);
        // a worker that died mid-job never counts itself done: fail instead of hanging
        const now = Date.now();
        if (d !== last) [last, since] = [d, now];
        else if (now - since > 120000) throw new BackendError(`cpu kernel ${fn}: a worker made no progress for 120 s`);
      }
    }
    if (failure) throw new BackendError(`cpu kernel ${fn} failed: ${String(failure)}`, { cause: failure });
    if (Atomics.load(c, CTRL.ERR)) throw new BackendError(`cpu kernel ${fn} failed in a worker ${this.errors.at(-1) ?? ''}`);
  }

  async dispose(): Promise<void> {
    if (this.workers.length) {
      this.ctrl[CTRL.OP] = OP.EXIT;
      Atomics.add(this.ctrl, CTRL.SEQ, 1);
      Atomics.notify(this.ctrl, CTRL.SEQ);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
