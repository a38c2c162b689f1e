/**
 * GPTQ int4 on the CPU backend: the AutoGPTQ fixture (desc_act, sym) exactly, and random
 * sym/asym/desc_act/odd group sizes against a plain f64 loop over the dequantised weight and the
 * reference backend.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Backend, LinearSource } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { ReferenceBackend } from '../support/referenceBackend.js';
import { FIXTURES, gptqSource, makeGptq, matmulInOut, randoms, readSafetensors, tensorValues } from '../support/tensors.js';

const at = { layer: 0 };
let exact: Backend; // f32 activations
let split: Backend; // default: two-part int16 activations
let fast: Backend; // one int16 part

beforeAll(async () => {
  exact = await createCpuBackend({ threads: 1, gptqActivations: 'f32' });
  split = await createCpuBackend({ threads: 1 });
  fast = await createCpuBackend({ threads: 1, gptqActivations: 'int16' });
});
afterAll(async () => {
  await Promise.all([exact.dispose(), split.dispose(), fast.dispose()]);
});

async function run(b: Backend, src: LinearSource, x: Float32Array, rows: number): Promise<Float32Array> {
  const l = await b.uploadLinear(src, at);
  const xb = b.alloc(x.length, at);
  b.write(xb, x);
  const o = b.alloc(rows * src.outFeatures, at);
  b.matmul(o, xb, l, rows);
  const y = await b.read(o, 0, rows * src.outFeatures);
  b.free(xb);
  b.free(o);
  return y;
}

/** Rigorous bound of the int16 activation error: Σ_k |W[k,c]| · step_g(k) / 2, plus f32 slack. */
function int16Bound(w: Float32Array, x: Float32Array, rows: number, inF: number, outF: number, group: (k: number) => number, kernelGroup: number): number {
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    // the kernel quantises per group of the group-ordered rows: the max over the rows of one group
    const gmax = new Map<number, number>();
    for (let k = 0; k < inF; k++) {
      const key = Math.floor(group(k) / kernelGroup);
      gmax.set(key, Math.max(gmax.get(key) ?? 0, Math.abs(x[r * inF + k])));
    }
    for (let c = 0; c < outF; c++) {
      let s = 0;
      let mag = 0;
      for (let k = 0; k < inF; k++) {
        const wk = Math.abs(w[k * outF + c]);
        s += (wk * gmax.get(Math.floor(group(k) / kernelGroup))!) / 32767 / 2;
        mag += wk * Math.abs(x[r * inF + k]);
      }
      worst = Math.max(worst, s * 1.001 + mag * 2e-6);
    }
  }
  return worst;
}

describe('GPTQ fixture linear_actorder (AutoGPTQ, desc_act)', () => {
  const t = readSafetensors(join(FIXTURES, 'gptq/linear_actorder.safetensors'));
  const inF = 256;
  const outF = 64;
  const src = (withBias: boolean): LinearSource => ({
    kind: 'gptq',
    inFeatures: inF,
    outFeatures: outF,
    bits: 4,
    groupSize: 128,
    qweight: t.get('qweight')!,
    qzeros: t.get('qzeros')!,
    scales: t.get('scales')!,
    gIdx: t.get('g_idx')!,
    bias: withBias ? t.get('bias')! : undefined,
  });

  it('dequantised weights are exact (identity input, f32 mode)', async () => {
    const eye = new Float32Array(inF * inF);
    for (let k = 0; k < inF; k++) eye[k * inF + k] = 1;
    const w = await run(exact, src(false), eye, inF);
    const want = (await tensorValues(t.get('w_dequant')!)) as Float32Array;
    expect(w).toEqual(want);
  });

  it('y within 1e-5 relative in f32 and split16 (default) modes, within the int16 bound in int16 mode', async () => {
    const x = (await tensorValues(t.get('x')!)) as Float32Array;
    const y = (await tensorValues(t.get('y')!)) as Float32Array;
    for (const b of [exact, split]) {
      const ye = await run(b, src(true), x, 4);
      for (let i = 0; i < y.length; i++) expect(Math.abs(ye[i] - y[i])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(y[i])));
    }
    const yf = await run(fast, src(true), x, 4);
    const w = (await tensorValues(t.get('w_dequant')!)) as Float32Array;
    const gIdx = (await tensorValues(t.get('g_idx')!)) as Int32Array;
    // group-ordered position: groups are whole kernel groups here (128), so the group id suffices
    const bound = int16Bound(w, x, 4, inF, outF, (k) => gIdx[k] * 128, 128);
    for (let i = 0; i < y.length; i++) expect(Math.abs(yf[i] - y[i])).toBeLessThanOrEqual(bound);
  });
});

describe('GPTQ random layers (vs f64 loop and the reference backend)', () => {
  const cases: [string, number, number, number, boolean, boolean][] = [
    ['sym g128', 256, 40, 128, true, false],
    ['asym g32', 96, 24, 32, false, false],
    ['asym desc_act g64', 192, 16, 64, false, true],
    ['sym whole-input group (-1)', 160, 8, -1, true, false],
    ['asym g4096 (kernel splits the group)', 4096, 8, 4096, false, false],
  ];
  for (const [name, inF, outF, gs, sym, descAct] of cases) {
    for (const rows of [1, 3]) {
      it(`${name}: in ${inF}, out ${outF}, ${rows} row(s)`, async () => {
        const group = gs > 0 ? gs : inF;
        const g = makeGptq(inF, outF, group, inF + outF, { sym, descAct });
        const bias = randoms(outF, 3);
        const src = { ...gptqSource(g, bias), groupSize: gs };
        const x = randoms(rows * inF, 12, 2);
        const biasStored = (await tensorValues(src.bias!)) as Float32Array;
        const want = matmulInOut(x, g.dequant, rows, inF, outF, biasStored);
        let mag = 0;
        for (let r = 0; r < rows; r++) for (let c = 0; c < outF; c++) {
          let m = 0;
          for (let k = 0; k < inF; k++) m += Math.abs(x[r * inF + k] * g.dequant[k * outF + c]);
          mag = Math.max(mag, m);
        }
        for (const b of [exact, split]) {
          const ye = await run(b, src, x, rows);
          for (let i = 0; i < want.length; i++) expect(Math.abs(ye[i] - want[i])).toBeLessThanOrEqual(mag * 2e-6);
        }
        const yf = await run(fast, src, x, rows);
        // position of row k in the group order decides its quantisation group
        const pos = new Int32Array(inF);
        if (g.gIdx) {
          const next = Int32Array.from({ length: inF / group }, (_, i) => i * group);
          for (let k = 0; k < inF; k++) pos[k] = next[g.gIdx[k]]++;
        } else pos.forEach((_, k) => (pos[k] = k));
        const kg = group > 2048 ? 2048 : group;
        const bound = int16Bound(g.dequant, x, rows, inF, outF, (k) => pos[k], kg);
        for (let i = 0; i < want.length; i++) expect(Math.abs(yf[i] - want[i])).toBeLessThanOrEqual(bound);
        if (gs > 0) {
          const ref = await run(new ReferenceBackend(), src, x, rows);
          const ys = await run(split, src, x, rows);
          for (let i = 0; i < want.length; i++) expect(Math.abs(ys[i] - ref[i])).toBeLessThanOrEqual(mag * 2e-6);
        }
      });
    }
  }

  it('several rows (prefill kernel) give the same bits as one row at a time', async () => {
    for (const descAct of [false, true]) {
      const g = makeGptq(384, 40, 128, 91, { descAct });
      const src = gptqSource(g, randoms(40, 92));
      const rows = 7;
      const x = randoms(rows * 384, 93, 3);
      const batch = await run(split, src, x, rows);
      for (let r = 0; r < rows; r++) {
        const one = await run(split, src, x.slice(r * 384, (r + 1) * 384), 1);
        expect(new Uint32Array(one.buffer)).toEqual(new Uint32Array(batch.slice(r * 40, (r + 1) * 40).buffer));
      }
    }
  });

  it('activation edge cases: an all-zero group, exact powers of two, tiny and huge groups (identity and desc_act)', async () => {
    const inF = 256;
    const outF = 16;
    for (const descAct of [false, true]) {
      const g = makeGptq(inF, outF, 32, 77, { descAct });
      const src = gptqSource(g);
      const x = randoms(inF, 78);
      for (let k = 0; k < 32; k++) x[k] = 0; // group 0 all zero
      for (let k = 32; k < 64; k++) x[k] = 2 ** ((k % 5) - 2) * (k % 2 ? -1 : 1); // powers of two
      x[64] = 32767 * 2 ** -3; // max exactly 32767·s
      for (let k = 96; k < 128; k++) x[k] *= 1e-30; // tiny
      for (let k = 128; k < 160; k++) x[k] *= 1e30; // huge
      const want = matmulInOut(x, g.dequant, 1, inF, outF);
      let mag = 0;
      for (let c = 0; c < outF; c++) {
        let m = 0;
        for (let k = 0; k < inF; k++) m += Math.abs(x[k] * g.dequant[k * outF + c]);
        mag = Math.max(mag, m);
      }
      const y = await run(split, src, x, 1);
      for (let i = 0; i < outF; i++) expect(Math.abs(y[i] - want[i])).toBeLessThanOrEqual(mag * 2e-6);
    }
  });

  it('rejects inconsistent tensors with the tensor name', async () => {
    const g = makeGptq(64, 8, 32, 1);
    const src = gptqSource(g);
    await expect(split.uploadLinear({ ...src, inFeatures: 128 }, at)).rejects.toThrow(/t\.qweight/);
    const bad = makeGptq(64, 8, 32, 2, { descAct: true });
    bad.gIdx![0] = 1 - bad.gIdx![0];
    await expect(split.uploadLinear(gptqSource(bad), at)).rejects.toThrow(/t\.g_idx: group/);
  });
});
