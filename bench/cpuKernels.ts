/**
 * Kernel-level A/B (add a variant export next to the kernel to compare it; one column per pass
 * measured 15–20 % slower than two passes of two columns on both the AMD and the Intel host):
 * calls the int4 GEMV kernels directly on one thread (no backend, no pool) on a
 * 14B w1-shaped tile set, alternating kernels to even out machine noise.
 *
 *   node dist/bench/cpuKernels.js [--seconds 0.4] [--rounds 4]
 */
import { parseArgs } from 'node:util';
import { Arena } from '../src/backend/cpu/arena.js';
import { kernelModule, type KernelName } from '../src/backend/cpu/kernels.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '0.4' }, rounds: { type: 'string', default: '4' } } });
const module = await kernelModule();
const a = new Arena(0, module, 512 << 20);
const inF = 5120;
const outF = 13696;
const vg = 128;
const VG = inF / vg;
const tiles = outF / 4;
const W = a.alloc((inF * outF) / 2);
const S = a.alloc(tiles * VG * 16);
const Z = a.alloc(tiles * VG * 16);
const xq = a.alloc(inF * 4);
const xs = a.alloc(VG * 4);
const xsum = a.alloc(VG * 8);
const out = a.alloc(outF * 4);
const x = a.alloc(inF * 4);
const u = new Uint32Array(a.memory.buffer, W, (inF * outF) / 8);
let s = 1;
for (let i = 0; i < u.length; i++) {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  u[i] = s;
}
new Float32Array(a.memory.buffer, S, tiles * VG * 4).fill(0.01);
new Int32Array(a.memory.buffer, Z, tiles * VG * 4).fill(8);
const xf = new Float32Array(a.memory.buffer, x, inF);
for (let i = 0; i < inF; i++) xf[i] = Math.sin(i);

const variants: [string, KernelName, () => void][] = [
  ['split16 (2 passes × 2 columns)', 'gptqMatmulS16', () => a.k.gptqPrepS16(0, 1, 0, inF, vg, x, 0, xq, xs, xsum)],
  ['int16', 'gptqMatmulI16', () => a.k.gptqPrepI16(0, 1, 0, inF, vg, x, 0, xq, xs, xsum)],
];
const gbs = new Map<string, number[]>();
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, k, prep] of variants) {
    prep();
    const args = [0, tiles, 0, 1, inF, outF, vg, W, S, Z, xq, xs, xsum, 0, out];
    for (let i = 0; i < 3; i++) a.k[k](...args);
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < Number(values.seconds) * 1000) {
      a.k[k](...args);
      n++;
    }
    const ms = (performance.now() - t0) / n;
    const list = gbs.get(name) ?? [];
    list.push((inF * outF) / 2 / ms / 1e6);
    gbs.set(name, list);
  }
}
// activation preparation per call (one row of 5504, the 1.8B mlp.c_proj input)
const prepK = 5504;
const px = a.alloc(prepK * 4);
new Float32Array(a.memory.buffer, px, prepK).forEach((_, i, arr) => (arr[i] = Math.sin(i) * 3));
for (const k of ['gptqPrepS16', 'gptqPrepI16'] as const) {
  for (let i = 0; i < 200; i++) a.k[k](0, 1, 0, prepK, vg, px, 0, xq, xs, xsum);
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 300) {
    a.k[k](0, 1, 0, prepK, vg, px, 0, xq, xs, xsum);
    n++;
  }
  console.log(`${k} (${prepK} values): ${(((performance.now() - t0) / n) * 1000).toFixed(1)} µs`);
}
// prefill: 16 rows through the 1-row kernel vs the unpacking multi-row kernel (per row, GB/s-equivalent)
{
  const R = 16;
  const xq16 = a.alloc(R * inF * 4);
  const xs16 = a.alloc(R * VG * 4);
  const xsum16 = a.alloc(R * VG * 8);
  const out16 = a.alloc(R * outF * 4);
  const un = a.alloc((vg / 32) * 256);
  const x16 = a.alloc(R * inF * 4);
  new Float32Array(a.memory.buffer, x16, R * inF).forEach((_, i, arr) => (arr[i] = Math.cos(i)));
  a.k.gptqPrepS16(0, R, 0, inF, vg, x16, 0, xq16, xs16, xsum16);
  const rowsOf: [string, () => void][] = [
    ['1-row kernel × 16', () => a.k.gptqMatmulS16(0, tiles, 0, R, inF, outF, vg, W, S, Z, xq16, xs16, xsum16, 0, out16)],
    ['multi-row kernel', () => a.k.gptqMatmulS16M(0, tiles, 0, R, inF, outF, vg, W, S, Z, xq16, xs16, xsum16, 0, out16, un, 0)],
  ];
  for (let round = 0; round < 2; round++) {
    for (const [name, f] of rowsOf) {
      f();
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < 500) {
        f();
        n++;
      }
      const ms = (performance.now() - t0) / n;
      console.log(`prefill ${R} rows, ${name}: ${ms.toFixed(1)} ms = ${((R * (inF * outF)) / 2 / ms / 1e6).toFixed(2)} GB/s-equivalent`);
    }
  }
}
console.log('| kernel (1 thread, 5120×13696 int4) | best GB/s | median GB/s |\n|---|---|---|');
for (const [name, l] of gbs) {
  const sorted = [...l].sort((p, q) => p - q);
  console.log(`| ${name} | ${sorted.at(-1)!.toFixed(2)} | ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} |`);
}
