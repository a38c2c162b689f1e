/**
 * CPU kernel benchmark: the wasm read roofline and GEMV speed (GB/s of weights streamed) for the
 * int4 GPTQ shapes of Qwen-1.8B/14B and an f16 lm_head, with 1 and 2 threads.
 *
 *   node dist/bench/cpu.js [--threads 1,2] [--modes split16,int16,f32] [--shapes 1.8b,14b,lm]
 *                          [--seconds 1] [--out bench/out/cpu.jsonl]
 *
 * Prints one JSON line per measurement and a table at the end.
 */
import { parseArgs } from 'node:util';
import { appendJsonl } from './jsonl.js';
import { createCpuBackend, type GptqActivations } from '../src/backend/cpu/index.js';
import type { Backend, Linear, LinearSource } from '../src/backend/backend.js';
import type { DType, TensorSource } from '../src/io/source.js';
import type { Platform } from '../src/platform.js';
import { createNodeWorker } from '../bindings/node/cpuWorkers.js';
import { cpuReadProbe } from './cpuProbe.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    modes: { type: 'string', default: 'split16,int16,f32' },
    shapes: { type: 'string', default: '1.8b,14b,lm' },
    seconds: { type: 'string', default: '1' },
    out: { type: 'string', default: 'bench/out/cpu.jsonl' },
  },
});
const threadList = values.threads!.split(',').map(Number);
const modes = values.modes!.split(',') as GptqActivations[];
const seconds = Number(values.seconds);
const shapeSets = new Set(values.shapes!.split(','));

const rows: Record<string, unknown>[] = [];
function emit(row: Record<string, unknown>): void {
  rows.push(row);
  appendJsonl(values.out!, row);
}

/** A tensor of pseudo-random bytes (xorshift), generated on the fly in ranges. */
function randomTensor(name: string, dtype: DType, shape: number[], elem: number, fill?: (i: number) => number): TensorSource {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    name,
    dtype,
    shape,
    byteLength: n * elem,
    async read(offset, dst) {
      if (fill) {
        const dv = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
        for (let i = 0; i < dst.length; i += elem) {
          const v = fill((offset + i) / elem);
          if (elem === 4) dv.setInt32(i, v, true);
          else dv.setUint16(i, v, true);
        }
        return;
      }
      let s = (offset * 2654435761) >>> 0 || 1;
      const u = new Uint32Array(dst.buffer, dst.byteOffset, dst.length >>> 2);
      for (let i = 0; i < u.length; i++) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        u[i] = s >>> 0;
      }
    },
  };
}

function gptq(inF: number, outF: number): LinearSource {
  const G = inF / 128;
  return {
    kind: 'gptq',
    inFeatures: inF,
    outFeatures: outF,
    bits: 4,
    groupSize: 128,
    qweight: randomTensor('qweight', 'I32', [inF / 8, outF], 4),
    qzeros: randomTensor('qzeros', 'I32', [G, outF / 8], 4, () => 0x77777777),
    // f16 scales around 0.01 (0x2000 ≈ 0.0078) with varied mantissas
    scales: randomTensor('scales', 'F16', [G, outF], 2, (i) => 0x2000 + ((i * 7919) & 0x3ff)),
  };
}

function f16Dense(inF: number, outF: number): LinearSource {
  // small finite halves: exponent fixed at 2^-6, random mantissa and sign
  return { kind: 'dense', inFeatures: inF, outFeatures: outF, weight: randomTensor('lm_head', 'F16', [outF, inF], 2, (i) => ((Math.imul(i, 2654435761) >>> 16) & 0x83ff) | 0x2400) };
}

/** GB/s of weights streamed; cpu_per_wall shows whether the threads really ran in parallel. */
async function timeGemv(b: Backend, l: Linear): Promise<{ gbs: number; ms: number; cpuPerWall: number }> {
  const x = b.alloc(l.inFeatures, { layer: 0 });
  b.write(x, Float32Array.from({ length: l.inFeatures }, (_, i) => Math.sin(i) * 2));
  const y = b.alloc(l.outFeatures, { layer: 0 });
  b.matmul(y, x, l, 1);
  for (let i = 0; i < 20; i++) b.matmul(y, x, l, 1);
  let reps = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let t1 = t0;
  while (t1 - t0 < seconds * 1000 || reps < 3) {
    b.matmul(y, x, l, 1);
    reps++;
    t1 = performance.now();
  }
  const cpu = process.cpuUsage(c0);
  await b.read(y, 0, 1);
  b.free(x);
  b.free(y);
  const ms = (t1 - t0) / reps;
  return { gbs: l.bytes / (ms / 1000) / 1e9, ms, cpuPerWall: (cpu.user + cpu.system) / 1000 / (t1 - t0) };
}

const shapes: { name: string; set: string; src: () => LinearSource }[] = [
  { name: 'int4 2048x2048 (1.8B c_proj)', set: '1.8b', src: () => gptq(2048, 2048) },
  { name: 'int4 2048x5504 (1.8B w1/w2)', set: '1.8b', src: () => gptq(2048, 5504) },
  { name: 'int4 5504x2048 (1.8B mlp.c_proj)', set: '1.8b', src: () => gptq(5504, 2048) },
  { name: 'int4 5120x13696 (14B w1/w2)', set: '14b', src: () => gptq(5120, 13696) },
  { name: 'int4 13696x5120 (14B mlp.c_proj)', set: '14b', src: () => gptq(13696, 5120) },
  { name: 'f16 2048x151936 (1.8B lm_head)', set: 'lm', src: () => f16Dense(2048, 151936) },
];

const platform = { name: 'node', hardwareConcurrency: () => 2, createWorker: createNodeWorker } as unknown as Platform;

for (const threads of threadList) {
  const probe = await cpuReadProbe(threads, 256 << 20, seconds);
  emit({ kind: 'probe', threads: probe.threads, read_gb_s: +probe.gbPerSecond.toFixed(2), device: probe.device });
  for (const s of shapes) {
    if (!shapeSets.has(s.set)) continue;
    const src = s.src();
    for (const mode of src.kind === 'gptq' ? modes : (['-'] as const)) {
      const b = await createCpuBackend({ threads, platform, gptqActivations: mode === '-' ? undefined : mode });
      const l = await b.uploadLinear(src, { layer: 0 });
      const r = await timeGemv(b, l);
      emit({
        kind: 'gemv',
        shape: s.name,
        mode,
        threads,
        bytes: l.bytes,
        ms: +r.ms.toFixed(3),
        gb_s: +r.gbs.toFixed(2),
        of_probe: +(r.gbs / probe.gbPerSecond).toFixed(3),
        cpu_per_wall: +r.cpuPerWall.toFixed(2),
      });
      await b.dispose();
    }
  }
}

console.log('\n| kernel | mode | threads | ms | GB/s | of read probe | cpu/wall |\n|---|---|---|---|---|---|---|');
for (const r of rows) {
  if (r.kind === 'probe') console.log(`| read probe | - | ${r.threads} | - | ${r.read_gb_s} | 1 | - |`);
  else console.log(`| ${r.shape} | ${r.mode} | ${r.threads} | ${r.ms} | ${r.gb_s} | ${r.of_probe} | ${r.cpu_per_wall} |`);
}
