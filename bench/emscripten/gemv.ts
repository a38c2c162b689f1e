/**
 * Toolchain baseline (issue F): the int4 GPTQ GEMV in C compiled by emscripten vs qwen-rt's
 * AssemblyScript kernel, same weights, same shapes, same process, 1 thread each, alternating runs.
 *
 *   bench/emscripten/build.sh && npm run build
 *   node dist/bench/emscripten/gemv.js [--shapes 2048x2048,2048x5504,5504x2048,5120x13696]
 *                                      [--seconds 1] [--reps 3] [--out bench/results/cpu-gemv.jsonl]
 *
 * Pairs (same arithmetic class): ours f32 ↔ C gemv_f32 (f32 dequantise-then-multiply, exact),
 * ours split16 (default, f32-grade) ↔ C gemv_f32, ours int16 ↔ C gemv_i16 (same activation
 * quantisation), plus C gemv_scalar (plain C, autovectorised). GB/s = checkpoint bytes of the layer
 * (qweight + scales + qzeros) per call; ours/C is reported per pair (floor: ≥ 1.0).
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { appendJsonl } from '../jsonl.js';
import { createCpuBackend, type GptqActivations } from '../../src/backend/cpu/index.js';
import type { Backend, Linear, LinearSource } from '../../src/backend/backend.js';
import type { DType, TensorSource } from '../../src/io/source.js';
import type { Platform } from '../../src/platform.js';
import { createNodeWorker } from '../../bindings/node/cpuWorkers.js';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: '2048x2048,2048x5504,5504x2048,5120x13696' },
    seconds: { type: 'string', default: '1' },
    reps: { type: 'string', default: '3' },
    wasm: { type: 'string', default: 'build/emscripten/gemv.wasm' },
    out: { type: 'string', default: 'bench/results/cpu-gemv.jsonl' },
  },
});
const seconds = Number(values.seconds);
const reps = Number(values.reps);
const date = new Date().toISOString();

function emit(row: Record<string, unknown>): void {
  appendJsonl(values.out!, { ...row, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, date });
}

/** Checkpoint bytes of one GPTQ layer, identical for both sides. */
interface Layer { K: number; N: number; qweight: Int32Array; scales: Uint16Array; qzeros: Int32Array; x: Float32Array }

function makeLayer(K: number, N: number): Layer {
  const G = K / 128;
  const qweight = new Int32Array((K / 8) * N);
  let s = 0x9e3779b9 ^ (K * 31 + N);
  for (let i = 0; i < qweight.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    qweight[i] = s;
  }
  // f16 scales around 0.01 with varied mantissas (as bench/cpu.ts); sym zeros 0x77777777
  const scales = Uint16Array.from({ length: G * N }, (_, i) => 0x2000 + ((i * 7919) & 0x3ff));
  const qzeros = new Int32Array((G * N) / 8).fill(0x77777777);
  const x = Float32Array.from({ length: K }, (_, i) => Math.sin(i) * 2);
  return { K, N, qweight, scales, qzeros, x };
}

function tensor(name: string, dtype: DType, shape: number[], data: ArrayBufferView): TensorSource {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return {
    name, dtype, shape, byteLength: bytes.byteLength,
    async read(offset, dst) { dst.set(bytes.subarray(offset, offset + dst.byteLength)); },
  };
}

function linearSource(l: Layer): LinearSource {
  const G = l.K / 128;
  return {
    kind: 'gptq', inFeatures: l.K, outFeatures: l.N, bits: 4, groupSize: 128,
    qweight: tensor('qweight', 'I32', [l.K / 8, l.N], l.qweight),
    qzeros: tensor('qzeros', 'I32', [G, l.N / 8], l.qzeros),
    scales: tensor('scales', 'F16', [G, l.N], l.scales),
  };
}

/** Calls fn repeatedly for `seconds`; ms per call and process cpu / wall. */
function time(fn: () => void): { ms: number; cpuPerWall: number } {
  for (let i = 0; i < 5; i++) fn();
  let n = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let t1 = t0;
  while (t1 - t0 < seconds * 1000 || n < 3) {
    fn();
    n++;
    t1 = performance.now();
  }
  const c = process.cpuUsage(c0);
  return { ms: (t1 - t0) / n, cpuPerWall: (c.user + c.system) / 1000 / (t1 - t0) };
}

// ---- the emscripten module: standalone wasm, no imports; we place buffers with its malloc ----
const cMod = await WebAssembly.instantiate(readFileSync(values.wasm!), {});
const cx = cMod.instance.exports as Record<string, any>;
cx._initialize?.();
const cMem = cx.memory as WebAssembly.Memory;

function cSetup(l: Layer) {
  const G = l.K / 128;
  const put = (a: ArrayBufferView) => {
    const p = cx.malloc(a.byteLength) as number;
    new Uint8Array(cMem.buffer, p, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return p;
  };
  const p = {
    x: put(l.x), qw: put(l.qweight), sc: put(l.scales), z: put(l.qzeros),
    y: cx.malloc(l.N * 4) as number, acc: cx.malloc(l.N * 4) as number,
    xp: cx.malloc(l.K * 2) as number, xs: cx.malloc(G * 4) as number, xsum: cx.malloc(G * 4) as number,
  };
  const run = {
    scalar: () => cx.gemv_scalar(l.K, l.N, p.x, p.qw, p.sc, p.z, p.y, p.acc),
    f32: () => cx.gemv_f32(l.K, l.N, p.x, p.qw, p.sc, p.z, p.y),
    i16: () => {
      cx.gemv_i16_prep(l.K, p.x, p.xp, p.xs, p.xsum);
      cx.gemv_i16(l.K, l.N, p.xp, p.xs, p.xsum, p.qw, p.sc, p.z, p.y);
    },
  };
  return { run, y: () => new Float32Array(cMem.buffer, p.y, l.N).slice() };
}

const platform = { name: 'node', hardwareConcurrency: () => 1, createWorker: createNodeWorker } as unknown as Platform;

async function ours(l: Layer, mode: GptqActivations) {
  const b: Backend = await createCpuBackend({ threads: 1, platform, gptqActivations: mode });
  const lin: Linear = await b.uploadLinear(linearSource(l), { layer: 0 });
  const x = b.alloc(l.K, { layer: 0 });
  b.write(x, l.x);
  const y = b.alloc(l.N, { layer: 0 });
  return { run: () => b.matmul(y, x, lin, 1), y: () => b.read(y, 0, l.N), dispose: () => b.dispose() };
}

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / scale;
}

const table: string[] = [];
for (const shape of values.shapes!.split(',')) {
  const [K, N] = shape.split('x').map(Number);
  const l = makeLayer(K, N);
  const bytes = l.qweight.byteLength + l.scales.byteLength + l.qzeros.byteLength;
  const c = cSetup(l);
  const o = { f32: await ours(l, 'f32'), split16: await ours(l, 'split16'), int16: await ours(l, 'int16') };

  // numerics: every output against the exact f64 reference of the same weights
  const ref = new Float64Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const q = (l.qweight[(k >> 3) * N + n] >>> (4 * (k & 7))) & 15;
      const h = l.scales[(k >> 7) * N + n];
      const sc = 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 0x3ff) / 1024);
      ref[n] += l.x[k] * sc * (q - 8);
    }
  }
  const refF = Float32Array.from(ref);
  const outs: Record<string, Float32Array> = {};
  for (const [name, fn] of Object.entries(c.run)) { fn(); outs[`c_${name}`] = c.y(); }
  for (const [name, k] of Object.entries(o)) { k.run(); outs[`ours_${name}`] = await k.y(); }
  const err = Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, +maxRelDiff(v, refF).toExponential(2)]));
  emit({ kind: 'gemv-numerics', shape, max_rel_diff_vs_f64: err, ours_f32_vs_c_f32: +maxRelDiff(outs.ours_f32, outs.c_f32).toExponential(2) });

  const kernels: [string, () => void][] = [
    ['ours split16', o.split16.run], ['ours int16', o.int16.run], ['ours f32', o.f32.run],
    ['c scalar', c.run.scalar], ['c f32', c.run.f32], ['c i16', c.run.i16],
  ];
  const best: Record<string, { gbs: number; cpuPerWall: number; all: number[] }> = {};
  for (let r = 0; r < reps; r++) {
    for (const [name, fn] of kernels) {
      const t = time(fn);
      const gbs = bytes / (t.ms / 1000) / 1e9;
      const b = (best[name] ??= { gbs: 0, cpuPerWall: 0, all: [] });
      b.all.push(+gbs.toFixed(2));
      if (gbs > b.gbs) Object.assign(b, { gbs, cpuPerWall: t.cpuPerWall });
    }
  }
  for (const [name, b] of Object.entries(best)) {
    emit({ kind: 'gemv-toolchain', shape, kernel: name, threads: 1, bytes, gb_s: +b.gbs.toFixed(2), runs_gb_s: b.all, cpu_per_wall: +b.cpuPerWall.toFixed(2) });
  }
  const ratio = (a: string, b: string) => +(best[a].gbs / best[b].gbs).toFixed(2);
  const ratios = { split16_vs_c_f32: ratio('ours split16', 'c f32'), int16_vs_c_i16: ratio('ours int16', 'c i16'), f32_vs_c_f32: ratio('ours f32', 'c f32'), split16_vs_c_scalar: ratio('ours split16', 'c scalar') };
  emit({ kind: 'gemv-ratio', shape, ...ratios });
  table.push(`| ${shape} | ${['ours split16', 'ours int16', 'ours f32', 'c scalar', 'c f32', 'c i16'].map((k) => best[k].gbs.toFixed(2)).join(' | ')} | ${ratios.split16_vs_c_f32} | ${ratios.int16_vs_c_i16} | ${ratios.f32_vs_c_f32} |`);
  for (const k of Object.values(o)) await k.dispose();
}

console.log(`\nGB/s of checkpoint bytes, 1 thread, best of ${reps} × ${seconds} s; ${cpus()[0]?.model}, Node ${process.version}, ${readFileSync('build/emscripten/VERSION', 'utf8').trim()}`);
console.log('| K×N | ours split16 | ours int16 | ours f32 | C scalar (autovec) | C simd f32 | C simd i16 | split16/C f32 | int16/C i16 | f32/C f32 |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const t of table) console.log(t);
