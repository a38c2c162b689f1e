/**
 * The CPU read roofline: a wasm SIMD loop that only sums a 256 MiB region of shared memory,
 * split over the same worker pool (and the same blocking main thread) the CPU backend uses.
 */
import { cpus } from 'node:os';
import { Arena } from '../src/backend/cpu/arena.js';
import { kernelModule } from '../src/backend/cpu/kernels.js';
import { ThreadPool } from '../src/backend/cpu/threadPool.js';
import { createNodeWorker } from '../bindings/node/cpuWorkers.js';

export interface CpuProbeResult {
  threads: number;
  gbPerSecond: number;
  device: string;
}

export async function cpuReadProbe(threads = cpus().length, bytes = 256 << 20, seconds = 1): Promise<CpuProbeResult> {
  const module = await kernelModule();
  const arena = new Arena(0, module, bytes + (64 << 20));
  const pool = await ThreadPool.create(module, [arena.memory], threads, createNodeWorker);
  try {
    const p = arena.alloc(bytes);
    // distinct page contents (identical pages could be deduplicated by the host and stay cached)
    const u32 = new Uint32Array(arena.memory.buffer, p, bytes >>> 2);
    let x = 0x9e3779b9;
    for (let i = 0; i < u32.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      u32[i] = x;
    }
    const blocks = bytes / 64;
    pool.run(arena, 'readProbe', blocks, 1024, [p]); // warm-up
    let reps = 0;
    const t0 = performance.now();
    let t1 = t0;
    while (t1 - t0 < seconds * 1000) {
      pool.run(arena, 'readProbe', blocks, 1024, [p]);
      reps++;
      t1 = performance.now();
    }
    return { threads: pool.threads, gbPerSecond: (reps * bytes) / ((t1 - t0) / 1000) / 1e9, device: `${cpus()[0]?.model ?? 'cpu'} (wasm simd)` };
  } finally {
    await pool.dispose();
  }
}
