/**
 * WebGPU backend ops (WGSL on Dawn → SwiftShader in CI) against the reference backend (f64
 * accumulation) on random inputs of awkward sizes. Tolerances are f32-accumulation bounds.
 */
import '../setup/webgpu.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Buf, KVQuant, LinearSource } from '../../src/backend/backend.js';
import type { WebGpuBackend } from '../../src/backend/webgpu/backend.js';
import { isSoftwareAdapter } from '../../src/backend/webgpu/index.js';
import { ReferenceBackend } from '../support/referenceBackend.js';
import { FIXTURES, floatTensor, gptqSource, makeGptq, randoms, readSafetensors, tensorValues } from '../support/tensors.js';
import { testWebGpu } from '../setup/webgpu.js';

const at = { layer: 0 };
let gpu: WebGpuBackend;
/** the same backend with a 4 KiB binding cap: every large tensor is split into chunks */
let split: WebGpuBackend;
/** the same backend keeping every embedding table in host memory (rows uploaded at embed time) */
let hostEmb: WebGpuBackend;
let mirrored: WebGpuBackend;
const ref = new ReferenceBackend();

beforeAll(async () => {
  gpu = await testWebGpu();
  split = await testWebGpu({ maxBindingSize: 4096 });
  hostEmb = await testWebGpu({ hostEmbeddingBytes: 0, embeddingMirror: false });
  // host tables copied to the GPU during decode in 5-row slices and 4096-byte chunks
  mirrored = await testWebGpu({ hostEmbeddingBytes: 0, embeddingMirror: true, embeddingMirrorSlice: 256, maxBindingSize: 4096 });
});
afterAll(async () => {
  await gpu?.dispose();
  await split?.dispose();
  await hostEmb?.dispose();
  await mirrored?.dispose();
});

function put(b: Backend, data: Float32Array): Buf {
  const buf = b.alloc(data.length, at);
  b.write(buf, data);
  return buf;
}

/** max |a − b| / max(1, |b|) */
function relErr(a: Float32Array, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : Math.max(m, e);
  }
  return m;
}

describe('webgpu: adapter', () => {
  it('describes the adapter and classifies SwiftShader as software', () => {
    expect(gpu.kind).toBe('webgpu');
    expect(gpu.description).toMatch(/^webgpu: /);
    expect(isSoftwareAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe(true);
    expect(isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' })).toBe(false);
  });
});

describe('webgpu: activations and element-wise ops', () => {
  it('write/read/copy round-trip, unwritten buffers read as zeros, overlapping copy', async () => {
    const x = randoms(37, 1);
    const a = put(gpu, x);
    expect(await gpu.read(a, 0, 37)).toEqual(x);
    expect(await gpu.read(a, 5, 3)).toEqual(x.slice(5, 8));
    const b = gpu.alloc(50, at);
    expect(await gpu.read(b, 0, 50)).toEqual(new Float32Array(50));
    gpu.copy(b, 10, a, 3, 20);
    const got = await gpu.read(b, 0, 50);
    expect(got.slice(10, 30)).toEqual(x.slice(3, 23));
    expect(got.slice(0, 10)).toEqual(new Float32Array(10));
    // same buffer, disjoint and overlapping ranges
    gpu.copy(a, 30, a, 0, 7);
    gpu.copy(a, 2, a, 0, 20);
    const want = x.slice();
    want.copyWithin(30, 0, 7);
    want.copyWithin(2, 0, 20);
    expect(await gpu.read(a, 0, 37)).toEqual(want);
    // writes are ordered with recorded ops
    const c = put(gpu, Float32Array.of(1, 2, 3));
    const d = put(gpu, Float32Array.of(10, 20, 30));
    gpu.add(c, d, 3);
    gpu.write(d, Float32Array.of(100, 200, 300));
    gpu.add(c, d, 3);
    expect(await gpu.read(c, 0, 3)).toEqual(Float32Array.of(111, 222, 333));
    expect(() => gpu.write(b, new Float32Array(3), 48)).toThrow(/exceed/);
    for (const buf of [a, b, c, d]) gpu.free(buf);
  });

  it('add and swiglu in every aliasing form (n = 1031)', async () => {
    const n = 1031;
    const xa = randoms(n, 2, 4);
    const xb = randoms(n, 3, 4);
    const run = async (b: Backend, form: string) => {
      const a = put(b, xa);
      const c = put(b, xb);
      const o = b.alloc(n, at);
      if (form === 'add') b.add(a, c, n);
      if (form === 'add-self') b.add(a, a, n);
      if (form === 'swiglu') b.swiglu(o, a, c, n);
      if (form === 'swiglu-a') b.swiglu(a, a, c, n);
      if (form === 'swiglu-b') b.swiglu(c, a, c, n);
      if (form === 'swiglu-self') b.swiglu(a, a, a, n);
      const out = form === 'swiglu' ? o : form === 'swiglu-b' ? c : a;
      return b.read(out, 0, n);
    };
    for (const form of ['add', 'add-self', 'swiglu', 'swiglu-a', 'swiglu-b', 'swiglu-self']) {
      expect(relErr(await run(gpu, form), await run(ref, form)), form).toBeLessThan(2e-6);
    }
  });

  it('rmsNorm (width 131, 3 rows; in place too)', async () => {
    const w = floatTensor('ln.weight', 'BF16', [131], randoms(131, 4, 1)).src;
    const x = randoms(3 * 131, 5, 3);
    const run = async (b: Backend, inplace: boolean) => {
      const v = await b.uploadVector(w, at);
      const xb = put(b, x);
      const o = inplace ? xb : b.alloc(3 * 131, at);
      b.rmsNorm(o, xb, v, 3, 1e-6);
      return b.read(o, 0, 3 * 131);
    };
    const want = await run(ref, false);
    expect(relErr(await run(gpu, false), want)).toBeLessThan(2e-6);
    expect(relErr(await run(gpu, true), want)).toBeLessThan(2e-6);
  });

  it('residual add followed by rmsNorm of the same rows (fused on the GPU) updates x and normalises it', async () => {
    for (const [rows, cols] of [[1, 5120], [3, 131]]) {
      const w = floatTensor('ln.weight', 'F16', [cols], randoms(cols, 42, 1)).src;
      const x = randoms(rows * cols, 43, 3);
      const y = randoms(rows * cols, 44, 3);
      const run = async (b: Backend) => {
        const v = await b.uploadVector(w, at);
        const xb = put(b, x);
        const yb = put(b, y);
        const o = b.alloc(rows * cols, at);
        b.add(xb, yb, rows * cols);
        b.rmsNorm(o, xb, v, rows, 1e-6);
        const both = new Float32Array(2 * rows * cols);
        both.set(await b.read(o, 0, rows * cols));
        both.set(await b.read(xb, 0, rows * cols), rows * cols);
        return both;
      };
      expect(relErr(await run(gpu), await run(ref))).toBeLessThan(2e-6);
    }
  });

  it('rmsNorm one row of width 5120 (vec4 loads, one large workgroup) and 4 rows of 132', async () => {
    for (const [rows, cols] of [[1, 5120], [4, 132]]) {
      const w = floatTensor('ln.weight', 'F16', [cols], randoms(cols, 40, 1)).src;
      const x = randoms(rows * cols, 41, 3);
      const run = async (b: Backend, inplace: boolean) => {
        const v = await b.uploadVector(w, at);
        const xb = put(b, x);
        const o = inplace ? xb : b.alloc(rows * cols, at);
        b.rmsNorm(o, xb, v, rows, 1e-6);
        return b.read(o, 0, rows * cols);
      };
      const want = await run(ref, false);
      expect(relErr(await run(gpu, false), want)).toBeLessThan(2e-6);
      expect(relErr(await run(gpu, true), want)).toBeLessThan(2e-6);
    }
  });

  it('embedding gather from f32, f16 and bf16 rows is exact, also split across bindings and from host memory', async () => {
    for (const dt of ['F32', 'F16', 'BF16'] as const) {
      for (const dim of [13, 24]) {
        const rows = 300;
        const { src, stored } = floatTensor('wte', dt, [rows, dim], randoms(rows * dim, 6, 2));
        const ids = Int32Array.of(0, 299, 7, 7, 150, 42, 298);
        for (const b of [gpu, split, hostEmb]) {
          const e = await b.uploadEmbedding(src, at);
          const o = b.alloc(ids.length * dim, at);
          b.embed(o, e, ids);
          const got = await b.read(o, 0, ids.length * dim);
          const want = new Float32Array(ids.length * dim);
          ids.forEach((id, r) => want.set(stored.subarray(id * dim, (id + 1) * dim), r * dim));
          expect(got, `${dt} dim ${dim}`).toEqual(want);
        }
      }
    }
    expect(() => gpu.embed(gpu.alloc(16, at), { rows: 3, dim: 4 } as never, Int32Array.of(5))).toThrow();
  });

  it('device tokens: argmaxToken feeds embedToken before anything is read, chained steps, table on the GPU or in host memory', async () => {
    const rows = 300;
    const dim = 24;
    const { src, stored } = floatTensor('wte', 'F16', [rows, dim], randoms(rows * dim, 8, 2));
    const rowOf = (id: number) => stored.subarray(id * dim, (id + 1) * dim);
    for (const b of [gpu, split, hostEmb]) {
      const e = await b.uploadEmbedding(src, at);
      // 3 chained "steps", nothing read until the end: argmax → embed → the next logits are the
      // embedded row tiled over the vocabulary (copies on the device)
      let wantLogits = Float32Array.from({ length: rows }, (_, i) => (i === 123 ? 9 : Math.sin(i)));
      const logits = put(b, wantLogits);
      const x = b.alloc(dim, at);
      const want: number[] = [];
      const refs = [];
      for (let step = 0; step < 3; step++) {
        const t = b.argmaxToken(logits, 0, rows);
        refs.push(t);
        let best = 0;
        for (let i = 1; i < rows; i++) if (wantLogits[i] > wantLogits[best]) best = i;
        want.push(best);
        b.embedToken(x, e, t);
        for (let c = 0; c < rows; c += dim) b.copy(logits, c, x, 0, Math.min(dim, rows - c));
        const row = rowOf(best);
        wantLogits = Float32Array.from({ length: rows }, (_, i) => row[i % dim]);
      }
      expect(await Promise.all(refs.map((t) => b.readToken(t))), b === hostEmb ? 'host table' : 'device table').toEqual(want);
      expect(await b.read(x, 0, dim)).toEqual(rowOf(want[2]));
    }
    // a host table copied to the GPU while tokens are embedded: every row is right before, across
    // and after the switch to the copy (several chunks, each checked for out-of-memory first)
    {
      const e = await mirrored.uploadEmbedding(src, at);
      const before = mirrored.memoryUsage().weightBytes;
      const l = mirrored.alloc(rows, at);
      const x = mirrored.alloc(dim, at);
      let onHost = 0;
      for (let step = 0; step < 90; step++) {
        const id = (step * 37 + 11) % rows;
        mirrored.write(l, Float32Array.from({ length: rows }, (_, i) => (i === id ? 1 : 0)));
        const t = mirrored.argmaxToken(l, 0, rows);
        const copied = (e as unknown as { mirror?: { rows: number } }).mirror?.rows ?? 0;
        if (copied < rows) onHost++;
        mirrored.embedToken(x, e, t);
        expect(await mirrored.read(x, 0, dim), `step ${step}`).toEqual(rowOf(id));
        expect(await mirrored.readToken(t)).toBe(id);
      }
      expect((e as unknown as { mirror: { rows: number; chunks: unknown[] } }).mirror.rows).toBe(rows);
      expect((e as unknown as { mirror: { rows: number; chunks: unknown[] } }).mirror.chunks.length).toBeGreaterThan(2);
      expect(onHost).toBeGreaterThan(10);
      expect(onHost).toBeLessThan(90);
      expect(mirrored.memoryUsage().weightBytes - before).toBeGreaterThanOrEqual(rows * dim * 2);
    }
    // while a step waits for its token row (host table), host writes and reads keep their order
    // with the held-back work: a write before a copy is seen by it, one after it is not
    {
      const e = await hostEmb.uploadEmbedding(src, at);
      const l = put(hostEmb, Float32Array.from({ length: rows }, (_, i) => (i === 77 ? 5 : 0)));
      const x = hostEmb.alloc(dim, at);
      const a = hostEmb.alloc(dim, at);
      const c = hostEmb.alloc(dim, at);
      const t = hostEmb.argmaxToken(l, 0, rows);
      hostEmb.embedToken(x, e, t); // held: the row of token 77 comes when the id is read back
      hostEmb.write(a, Float32Array.from({ length: dim }, () => 1));
      hostEmb.copy(c, 0, a, 0, dim); // sees the write above
      hostEmb.write(a, Float32Array.from({ length: dim }, () => 2)); // after the copy
      const [gotX, gotC, gotA] = await Promise.all([hostEmb.read(x, 0, dim), hostEmb.read(c, 0, dim), hostEmb.read(a, 0, dim)]);
      expect(gotX).toEqual(rowOf(77));
      expect(gotC).toEqual(new Float32Array(dim).fill(1));
      expect(gotA).toEqual(new Float32Array(dim).fill(2));
      expect(await hostEmb.readToken(t)).toBe(77);
    }
    // no candidate (NaN is never selected) gives index 0, a usable row; −∞ is a candidate
    const bad = new Float32Array(50).fill(NaN);
    for (const b of [gpu, hostEmb]) {
      expect(await b.readToken(b.argmaxToken(put(b, bad), 0, 50))).toBe(0);
      bad[7] = -Infinity;
      expect(await b.readToken(b.argmaxToken(put(b, bad), 0, 50))).toBe(7);
      bad[7] = NaN;
    }
    // a ref from another backend, and a stale ref (its slot reused) are refused
    const e = await gpu.uploadEmbedding(src, at);
    const l = put(gpu, Float32Array.from({ length: rows }, (_, i) => i));
    const old = gpu.argmaxToken(l, 0, rows);
    expect(() => hostEmb.embedToken(hostEmb.alloc(dim, at), e, old)).toThrow(/another backend/);
    for (let i = 0; i < 64; i++) gpu.argmaxToken(l, 0, rows);
    expect(() => gpu.embedToken(gpu.alloc(dim, at), e, old)).toThrow(/stale/);
    expect(await gpu.readToken(old)).toBe(rows - 1);
  });

  it('argmax and topK: ties prefer the lower index, -inf and large n', async () => {
    const x = randoms(100003, 7, 10);
    x[500] = 50;
    x[90000] = 50;
    x[77] = 49;
    x[123] = 49;
    x[99999] = 49;
    const b = put(gpu, x);
    const r = put(ref, x);
    expect(await gpu.argmax(b, 0, 100003)).toBe(500);
    expect(await gpu.argmax(b, 501, 100003 - 501)).toBe(90000 - 501);
    for (const k of [1, 5, 40]) {
      const [g, w] = [await gpu.topK(b, 0, 100003, k), await ref.topK(r, 0, 100003, k)];
      expect(g.ids).toEqual(w.ids);
      expect(g.values).toEqual(w.values);
    }
    const small = Float32Array.of(-Infinity, 3, 3, -Infinity, 1, 3);
    const sb = put(gpu, small);
    const sr = put(ref, small);
    expect(await gpu.argmax(sb, 0, 6)).toBe(1);
    expect(await gpu.argmax(sb, 3, 1)).toBe(0);
    const [g, w] = [await gpu.topK(sb, 0, 6, 6), await ref.topK(sr, 0, 6, 6)];
    expect(g.ids).toEqual(w.ids);
    expect(g.values).toEqual(w.values);
    // k above the GPU limit goes through the host path with the same order
    const [g2, w2] = [await gpu.topK(b, 0, 3000, 1500), await ref.topK(r, 0, 3000, 1500)];
    expect(g2.ids).toEqual(w2.ids);
  });
});

describe('webgpu: matmul', () => {
  const cases: [string, 'F32' | 'F16' | 'BF16', number, number][] = [
    ['odd K (scalar path)', 'F16', 37, 19],
    ['K % 8 = 0 (vector path)', 'BF16', 72, 45],
    ['f32 weights', 'F32', 66, 70],
    ['f32 weights, K % 4 = 0', 'F32', 132, 33],
    ['long rows: 64 threads per row', 'F16', 1032, 21],
    ['long odd rows', 'BF16', 1001, 9],
    ['long f32 rows', 'F32', 1100, 7],
    ['long f16 rows: unrolled loads', 'F16', 2056, 5],
  ];
  for (const [what, dt, inF, outF] of cases) {
    for (const rows of [1, 5, 67]) {
      it(`dense ${dt} [${outF}×${inF}] × ${rows} rows + bias (${what})`, async () => {
        const src: LinearSource = {
          kind: 'dense',
          inFeatures: inF,
          outFeatures: outF,
          weight: floatTensor('w', dt, [outF, inF], randoms(inF * outF, 8 + inF, 0.5)).src,
          bias: floatTensor('b', 'F16', [outF], randoms(outF, 9, 0.3)).src,
        };
        const x = randoms(rows * inF, 10 + rows, 1);
        const run = async (b: Backend) => {
          const l = await b.uploadLinear(src, at);
          const o = b.alloc(rows * outF, at);
          b.matmul(o, put(b, x), l, rows);
          return b.read(o, 0, rows * outF);
        };
        const want = await run(ref);
        // f32 accumulation of K products (reference: f64): the error grows like √K
        const tol = 1e-6 * Math.sqrt(inF);
        expect(relErr(await run(gpu), want)).toBeLessThan(tol);
        // the 4 KiB cap splits every matrix whose rows fit in it (f32 × 1100 does not)
        if (inF * (dt === 'F32' ? 4 : 2) <= 4096) expect(relErr(await run(split), want)).toBeLessThan(tol);
      });
    }
  }

  const gcases: [string, number, number, number, { sym?: boolean; descAct?: boolean }][] = [
    ['sym, group 128', 256, 72, 128, { sym: true }],
    ['asym, group 64, N not a multiple of 32', 192, 40, 64, {}],
    ['desc_act, asym', 256, 48, 64, { descAct: true }],
    ['long K: four rows per step', 2304, 40, 128, {}],
  ];
  for (const [what, inF, outF, gs, opt] of gcases) {
    for (const rows of [1, 3, 70]) {
      it(`GPTQ int4 [${inF}→${outF}] × ${rows} rows (${what})`, async () => {
        const c = makeGptq(inF, outF, gs, 20 + inF + outF, opt);
        const src = gptqSource(c, randoms(outF, 11, 0.2));
        const x = randoms(rows * inF, 12 + rows, 1);
        const run = async (b: Backend) => {
          const l = await b.uploadLinear(src, at);
          const o = b.alloc(rows * outF, at);
          b.matmul(o, put(b, x), l, rows);
          return b.read(o, 0, rows * outF);
        };
        const want = await run(ref);
        // f32 accumulation of K products (reference: f64)
        const tol = 1e-5 * Math.sqrt(inF / 256);
        expect(relErr(await run(gpu), want)).toBeLessThan(tol);
        // the 4 KiB cap splits every matrix whose 16-column tiles (K/8 × 64 bytes) fit in it
        if ((inF / 8) * 64 <= 4096) expect(relErr(await run(split), want)).toBeLessThan(tol);
      });
    }
  }

  describe('GPTQ fixture linear_actorder (AutoGPTQ, desc_act)', () => {
    const t = readSafetensors(join(FIXTURES, 'gptq/linear_actorder.safetensors'));
    const src: LinearSource = {
      kind: 'gptq',
      inFeatures: 256,
      outFeatures: 64,
      bits: 4,
      groupSize: 128,
      qweight: t.get('qweight')!,
      qzeros: t.get('qzeros')!,
      scales: t.get('scales')!,
      gIdx: t.get('g_idx')!,
      bias: t.get('bias')!,
    };
    it('dequantised weights are exact (identity input through the GEMM)', async () => {
      const noBias = { ...src, bias: undefined };
      const l = await gpu.uploadLinear(noBias, at);
      const eye = new Float32Array(256 * 256);
      for (let k = 0; k < 256; k++) eye[k * 256 + k] = 1;
      const o = gpu.alloc(256 * 64, at);
      gpu.matmul(o, put(gpu, eye), l, 256);
      expect(await gpu.read(o, 0, 256 * 64)).toEqual((await tensorValues(t.get('w_dequant')!)) as Float32Array);
    });
    it('y within 1e-5 relative, one row at a time (GEMV) and batched (GEMM)', async () => {
      const x = (await tensorValues(t.get('x')!)) as Float32Array;
      const y = (await tensorValues(t.get('y')!)) as Float32Array;
      const l = await gpu.uploadLinear(src, at);
      const o = gpu.alloc(4 * 64, at);
      gpu.matmul(o, put(gpu, x), l, 4);
      expect(relErr(await gpu.read(o, 0, 256), y)).toBeLessThan(1e-5);
      for (let r = 0; r < 4; r++) {
        const o1 = gpu.alloc(64, at);
        gpu.matmul(o1, put(gpu, x.slice(r * 256, (r + 1) * 256)), l, 1);
        expect(relErr(await gpu.read(o1, 0, 64), y.subarray(r * 64, (r + 1) * 64))).toBeLessThan(1e-5);
      }
    });
  });

  it('GPTQ with unequal groups (24 and 40 input rows): the row-group table path', async () => {
    const c = makeGptq(64, 24, 32, 9, {});
    const gIdx = new Int32Array(64);
    for (let k = 0; k < 64; k++) gIdx[k] = (k * 37) % 64 < 24 ? 0 : 1;
    const src = gptqSource({ ...c, gIdx });
    for (const rows of [1, 2]) {
      const x = randoms(rows * 64, 30 + rows, 1);
      const run = async (b: Backend) => {
        const l = await b.uploadLinear(src, at);
        const o = b.alloc(rows * 24, at);
        b.matmul(o, put(b, x), l, rows);
        return b.read(o, 0, rows * 24);
      };
      expect(relErr(await run(gpu), await run(ref))).toBeLessThan(1e-5);
    }
  });

  it('one-row GPTQ GEMV whose output feeds swiglu (fused epilogue) equals the two ops', async () => {
    // K = 288 in groups of 48 (6 word rows: one step of four + two single rows); N = 56: a
    // partial 16-column tile
    const c = makeGptq(288, 56, 48, 41, {});
    const src = gptqSource(c, randoms(56, 42, 0.3));
    const x = randoms(288, 43, 1);
    const a = randoms(56, 44, 2);
    const run = async (b: Backend) => {
      const l = await b.uploadLinear(src, at);
      const h1 = put(b, a);
      const h2 = b.alloc(56, at);
      b.matmul(h2, put(b, x), l, 1);
      b.swiglu(h1, h1, h2, 56);
      const out = new Float32Array(112);
      out.set(await b.read(h1, 0, 56));
      out.set(await b.read(h2, 0, 56), 56);
      return out;
    };
    expect(relErr(await run(gpu), await run(ref))).toBeLessThan(1e-5);
  });

  it('every one-row int4 GEMV kernel variant equals the reference (with and without the swiglu epilogue)', async () => {
    // K = 288 in groups of 48 (6 word rows: odd per-thread ranges), and K = 1024 in groups of 128
    for (const [K, N, gs] of [
      [288, 56, 48],
      [1024, 40, 128],
    ]) {
      const c = makeGptq(K, N, gs, 61 + K, {});
      const src = gptqSource(c, randoms(N, 62, 0.3));
      const x = randoms(K, 63, 1);
      const a = randoms(N, 64, 2);
      const run = async (b: Backend) => {
        const l = await b.uploadLinear(src, at);
        const plain = b.alloc(N, at);
        b.matmul(plain, put(b, x), l, 1);
        const h1 = put(b, a);
        const h2 = b.alloc(N, at);
        b.matmul(h2, put(b, x), l, 1);
        b.swiglu(h1, h1, h2, N);
        const out = new Float32Array(2 * N);
        out.set(await b.read(plain, 0, N));
        out.set(await b.read(h1, 0, N), N);
        return out;
      };
      const want = await run(ref);
      const initial = gpu.int4Variant;
      try {
        // GS8: several units per thread, so the PF / PF2 pipelines rotate (K 1024: 8 units a thread)
        for (const v of ['Q1', '', 'RB2', 'Q1,RB2', 'Q1,RB2,GS64', 'Q1,GS8', 'Q1,RB2,GS8', 'Q1,RB2,GS8,PF', 'Q1,RB2,GS64,PF', 'Q1,RB2,GS64,PF,EL', 'Q1,RB2,GS8,PF2', 'Q1,RB2,GS16,PF2,EL', 'Q1,RB2,GS64,PF2', 'Q1,RB2,GS8,NOMATH', 'Q1,RB2,GS8,PF,SU', 'Q1,RB2,GS64,PF2,SU', 'Q1,RB2,GS64,SU', 'Q1,GS8,PF', 'Q1,GS8,PF,SU', 'Q1,GS64,PF2,SU', 'Q1,GS64,PF,SU', 'Q1,RB8,GS8,PF,SU', 'Q1,RB8,GS64,PF2', 'Q1,RB8,GS8']) {
          const bad = v.includes('NOMATH');
          gpu.int4Variant = v;
          // the NOMATH diagnostic must differ: the comparison can fail
          if (bad) expect(relErr(await run(gpu), want), `variant '${v}' K ${K}`).toBeGreaterThan(1e-2);
          else expect(relErr(await run(gpu), want), `variant '${v}' K ${K}`).toBeLessThan(1e-5);
        }
      } finally {
        gpu.int4Variant = initial;
      }
    }
  });

  it('w1 and w2 GEMVs on one x followed by swiglu (one dual dispatch) equal the three ops', async () => {
    // K = 288 in groups of 48 (a whole unit of four word rows + a partial one); N = 56: a partial tile
    const c1 = makeGptq(288, 56, 48, 51, {});
    const c2 = makeGptq(288, 56, 48, 52, {});
    const x = randoms(288, 53, 1);
    const run = async (b: Backend, interleave: boolean) => {
      const w1 = await b.uploadLinear(gptqSource(c1), at);
      const w2 = await b.uploadLinear(gptqSource(c2), at);
      const xb = put(b, x);
      const h1 = b.alloc(56, at);
      const h2 = b.alloc(56, at);
      b.matmul(h1, xb, w1, 1);
      // an op between the GEMVs breaks the pattern: both must still run (unfused)
      if (interleave) b.add(h2, put(b, new Float32Array(56)), 56);
      b.matmul(h2, xb, w2, 1);
      b.swiglu(h1, h1, h2, 56);
      const out = new Float32Array(112);
      out.set(await b.read(h1, 0, 56));
      out.set(await b.read(h2, 0, 56), 56);
      return out;
    };
    const want = await run(ref, false);
    const d0 = (gpu as unknown as { rec: { dispatches: number } }).rec.dispatches;
    expect(relErr(await run(gpu, false), want)).toBeLessThan(1e-5);
    const fused = (gpu as unknown as { rec: { dispatches: number } }).rec.dispatches - d0;
    expect(relErr(await run(gpu, true), want)).toBeLessThan(1e-5);
    // the fused run is one GEMV dispatch (plus the two input uploads' none): fewer than unfused
    const d1 = (gpu as unknown as { rec: { dispatches: number } }).rec.dispatches;
    expect(relErr(await run(gpu, false), want)).toBeLessThan(1e-5);
    expect((gpu as unknown as { rec: { dispatches: number } }).rec.dispatches - d1).toBe(fused);
    // (the integer kernels quantise x first: one more dispatch)
    expect(fused).toBe(gpu.int4Variant.includes('ID') ? 2 : 1);
  });

  it('every dual (w1+w2) GEMV kernel variant equals the three ops', async () => {
    // rows per group 6 (4-row units: one whole + one ragged; 2-row: all whole), 5 (both ragged),
    // 16 (all whole, several units per thread with DGS8)
    for (const [K, N, gs] of [
      [288, 56, 48],
      [280, 24, 40],
      [1024, 40, 128],
    ]) {
      const c1 = makeGptq(K, N, gs, 81 + K, {});
      const c2 = makeGptq(K, N, gs, 82 + K, {});
      const x = randoms(K, 83, 1);
      const run = async (b: Backend) => {
        const w1 = await b.uploadLinear(gptqSource(c1), at);
        const w2 = await b.uploadLinear(gptqSource(c2), at);
        const xb = put(b, x);
        const h1 = b.alloc(N, at);
        const h2 = b.alloc(N, at);
        b.matmul(h1, xb, w1, 1);
        b.matmul(h2, xb, w2, 1);
        b.swiglu(h1, h1, h2, N);
        const out = new Float32Array(2 * N);
        out.set(await b.read(h1, 0, N));
        out.set(await b.read(h2, 0, N), N);
        return out;
      };
      const want = await run(ref);
      const initial = gpu.int4Variant;
      try {
        for (const v of ['Q1', 'Q1,DGS8', 'Q1,DPF', 'Q1,DPF,DGS8', 'Q1,DRB2', 'Q1,DRB2,DGS8', 'Q1,DRB2,DPF,DGS8', 'Q1,RB2,GS64,PF,EL,DPF', 'Q1,EL,DGS8', 'Q1,DRB2,EL,DGS8', 'Q1,DPF,NOMATH', 'Q1,SU', 'Q1,SU,DPF,DGS8', 'Q1,DRB2,SU,DGS8', 'Q1,DRB2,SU,DPF,EL']) {
          gpu.int4Variant = v;
          const d0 = gpu.rec.dispatches;
          const got = await run(gpu);
          expect(gpu.rec.dispatches - d0, `variant '${v}' K ${K}: one dual dispatch`).toBe(1);
          // the NOMATH diagnostic must differ: the variant's tokens reach the dual kernel
          if (v.includes('NOMATH')) expect(relErr(got, want), `variant '${v}' K ${K}`).toBeGreaterThan(1e-2);
          else expect(relErr(got, want), `variant '${v}' K ${K}`).toBeLessThan(1e-5);
        }
      } finally {
        gpu.int4Variant = initial;
      }
    }
  });

  it('decode block tail: GEMV + residual add + RMSNorm + w1/w2 + swiglu (norm prologue, residual epilogue) equal the ops', async () => {
    // the executor's order for one row: out = c_proj(att); x += out; xb = norm(x); h1 = w1(xb); h2 = w2(xb); h1 *= silu(h2)
    const K = 288;
    const cp = makeGptq(K, K, 48, 71, {});
    const c1 = makeGptq(K, 56, 48, 72, {});
    const c2 = makeGptq(K, 56, 48, 73, {});
    const ln = floatTensor('ln.weight', 'F16', [K], randoms(K, 74, 1)).src;
    const att = randoms(K, 75, 1);
    const x0 = randoms(K, 76, 3);
    const run = async (b: Backend) => {
      const wp = await b.uploadLinear(gptqSource(cp), at);
      const w1 = await b.uploadLinear(gptqSource(c1), at);
      const w2 = await b.uploadLinear(gptqSource(c2), at);
      const v = await b.uploadVector(ln, at);
      const x = put(b, x0);
      const a = put(b, att);
      const out = b.alloc(K, at);
      const xb = b.alloc(K, at);
      const h1 = b.alloc(56, at);
      const h2 = b.alloc(56, at);
      for (let rep = 0; rep < 2; rep++) {
        b.matmul(out, a, wp, 1);
        b.add(x, out, K);
        b.rmsNorm(xb, x, v, 1, 1e-6);
        b.matmul(h1, xb, w1, 1);
        b.matmul(h2, xb, w2, 1);
        b.swiglu(h1, h1, h2, 56);
      }
      const res = new Float32Array(3 * K + 112);
      res.set(await b.read(x, 0, K));
      res.set(await b.read(xb, 0, K), K);
      res.set(await b.read(out, 0, K), 2 * K);
      res.set(await b.read(h1, 0, 56), 3 * K);
      res.set(await b.read(h2, 0, 56), 3 * K + 56);
      return res;
    };
    const want = await run(ref);
    const d0 = gpu.rec.dispatches;
    expect(relErr(await run(gpu), want)).toBeLessThan(1e-5);
    // per repetition: GEMV+residual, then norm+dual: 2 dispatches (4 for the two repetitions);
    // the integer kernels add the quantisation of att (the GEMV's epilogue quantises xb's input)
    expect(gpu.rec.dispatches - d0).toBe(gpu.int4Variant.includes('ID') ? 6 : 4);
    // a layer's start (RMSNorm then GEMV, no add pending): every GEMV variant, fused or not
    const start = async (b: Backend) => {
      const wp = await b.uploadLinear(gptqSource(cp), at);
      const v = await b.uploadVector(ln, at);
      const x = put(b, x0);
      const xb = b.alloc(K, at);
      const out = b.alloc(K, at);
      b.rmsNorm(xb, x, v, 1, 1e-6);
      b.matmul(out, xb, wp, 1);
      const res = new Float32Array(2 * K);
      res.set(await b.read(out, 0, K));
      res.set(await b.read(xb, 0, K), K);
      return res;
    };
    const want2 = await start(ref);
    const initial = gpu.int4Variant;
    try {
      // EL / DPF / PF2 / DRB2 with the norm prologue (grouped + residual, and dual); GS8 / DGS8:
      // several units per thread; GS64: slots without a unit (K 288 has 18 units of 2 rows)
      for (const v of [
        initial,
        'Q1',
        'Q1,RB2',
        '',
        'rowtable',
        'Q1,RB2,GS64,PF,EL',
        'Q1,RB2,GS8,PF,EL,DGS8',
        'Q1,RB2,GS64,PF,EL,DPF',
        'Q1,RB2,GS8,PF,EL,DPF,DGS8',
        'Q1,RB2,GS8,PF2,EL,DPF,DRB2,DGS8',
        'Q1,RB2,GS64,PF2,DPF,DRB2',
        'Q1,RB2,GS64,PF2,EL,DRB2',
        'Q1,RB2,GS8,PF,EL,SU,DGS8',
        'Q1,RB2,GS64,PF,SU,DPF',
        'Q1,GS64,PF,SU',
        'Q1,GS8,PF,EL,SU,DGS8',
        'Q1,RB8,GS8,PF,EL,SU',
      ]) {
        gpu.int4Variant = v;
        expect(relErr(await run(gpu), want), `variant '${v}'`).toBeLessThan(1e-5);
        expect(relErr(await start(gpu), want2), `variant '${v}', layer start`).toBeLessThan(1e-5);
      }
    } finally {
      gpu.int4Variant = initial;
    }
  });

  describe('integer int4 GEMV (ID variants): the input quantised per group to 24 bits, dp4a math', () => {
    /**
     * Per output column, the most the input's quantisation can move y: Σ_k (s_g(k) / 2)·|W[k, c]|
     * with s_g = max over k's group of |v| / (2^23 − 1) (v the quantised values), times `factor`.
     */
    function quantBound(v: Float32Array, W: Float32Array, K: number, N: number, gs: number, factor = 1): Float64Array {
      const b = new Float64Array(N);
      for (let g = 0; g < K / gs; g++) {
        let m = 0;
        for (let k = g * gs; k < (g + 1) * gs; k++) m = Math.max(m, Math.abs(v[k]));
        const half = m / 8388607 / 2;
        for (let k = g * gs; k < (g + 1) * gs; k++) for (let c = 0; c < N; c++) b[c] += half * Math.abs(W[k * N + c]) * factor;
      }
      return b;
    }
    /** |got − want| within the quantisation bound plus f32 accumulation (1e-5 relative, as the f32 kernels) */
    function expectWithin(got: Float32Array, want: ArrayLike<number>, bound: ArrayLike<number>, what: string): void {
      for (let c = 0; c < got.length; c++) {
        const d = Math.abs(got[c] - want[c]);
        if (!(d <= bound[c] + 1e-5 * Math.max(1, Math.abs(want[c])))) expect.fail(`${what}: column ${c}: |${got[c]} − ${want[c]}| = ${d} > bound ${bound[c]}`);
      }
    }
    const silu = (v: number) => v / (1 + Math.exp(-v));

    it('grouped kernel: one quantisation dispatch, within the bound; ID needs its unit structure', async () => {
      for (const v of ['Q1,RB2,PF,SU,ID,DRB2', 'Q1,PF,ID,DRB2', 'Q1,RB2,PF,ID', 'Q1,RB2,ID,DRB2']) expect(() => (gpu.int4Variant = v), v).toThrow(/ID needs/);
      // K 288 in groups of 48 (6 word rows: RB8 falls back to 4-row units), K 1024 in groups of 128
      for (const [K, N, gs] of [
        [288, 56, 48],
        [1024, 40, 128],
      ]) {
        const c = makeGptq(K, N, gs, 91 + K, {});
        const src = gptqSource(c, randoms(N, 92, 0.3));
        const x = randoms(K, 93, 1);
        // columns 0..4 of x large: a group whose scale an outlier sets
        for (let k = 0; k < 5; k++) x[k] *= 40;
        const want = await (async () => {
          const l = await ref.uploadLinear(src, at);
          const y = ref.alloc(N, at);
          ref.matmul(y, put(ref, x), l, 1);
          return ref.read(y, 0, N);
        })();
        const bound = quantBound(x, c.dequant, K, N, gs);
        const initial = gpu.int4Variant;
        try {
          for (const v of ['Q1,RB2,GS64,PF,ID,DRB2', 'Q1,RB2,GS8,PF,ID,DRB2', 'Q1,RB2,GS8,PF2,ID,DRB2', 'Q1,RB2,GS64,PF2,EL,ID,DRB2']) {
            gpu.int4Variant = v;
            const l = await gpu.uploadLinear(src, at);
            const y = gpu.alloc(N, at);
            const d0 = gpu.rec.dispatches;
            gpu.matmul(y, put(gpu, x), l, 1);
            const got = await gpu.read(y, 0, N);
            expect(gpu.rec.dispatches - d0, `variant '${v}' K ${K}: quantisation + GEMV`).toBe(2);
            expectWithin(got, want, bound, `variant '${v}' K ${K}`);
          }
        } finally {
          gpu.int4Variant = initial;
        }
      }
    });

    it('dual w1+w2 kernel and the RMSNorm prologue (x·γ quantised, the norm factor applied after), ragged units too', async () => {
      for (const [K, N, gs] of [
        [288, 56, 48],
        [280, 24, 40],
        [1024, 40, 128],
      ]) {
        const c1 = makeGptq(K, N, gs, 101 + K, {});
        const c2 = makeGptq(K, N, gs, 102 + K, {});
        const lnv = randoms(K, 104, 1);
        const ln = floatTensor('ln.weight', 'F16', [K], lnv);
        const x = randoms(K, 103, 2);
        const eps = 1e-6;
        // v = x·γ (γ as stored in f16), factor = the norm's 1 / rms(x)
        let ss = 0;
        for (const t of x) ss += t * t;
        const inv = 1 / Math.sqrt(ss / K + eps);
        const v = Float32Array.from(x, (t, k) => t * ln.stored[k]);
        const run = async (b: Backend, norm: boolean) => {
          const w1 = await b.uploadLinear(gptqSource(c1), at);
          const w2 = await b.uploadLinear(gptqSource(c2), at);
          let xb = put(b, x);
          if (norm) {
            const g = await b.uploadVector(ln.src, at);
            const o = b.alloc(K, at);
            b.rmsNorm(o, xb, g, 1, eps);
            xb = o;
          }
          const h1 = b.alloc(N, at);
          const h2 = b.alloc(N, at);
          b.matmul(h1, xb, w1, 1);
          b.matmul(h2, xb, w2, 1);
          b.swiglu(h1, h1, h2, N);
          return { h1: await b.read(h1, 0, N), h2: await b.read(h2, 0, N) };
        };
        // the layer's start: RMSNorm then one GEMV (the grouped kernel with the norm prologue)
        const start = async (b: Backend) => {
          const w1 = await b.uploadLinear(gptqSource(c1), at);
          const g = await b.uploadVector(ln.src, at);
          const o = b.alloc(K, at);
          const y = b.alloc(N, at);
          b.rmsNorm(o, put(b, x), g, 1, eps);
          b.matmul(y, o, w1, 1);
          return { y: await b.read(y, 0, N), normed: await b.read(o, 0, K) };
        };
        const initial = gpu.int4Variant;
        try {
          for (const norm of [false, true]) {
            const want = await run(ref, norm);
            const w1x = want.h1.map((t, i) => t / silu(want.h2[i]));
            const b1 = quantBound(norm ? v : x, c1.dequant, K, N, gs, norm ? inv : 1);
            const b2 = quantBound(norm ? v : x, c2.dequant, K, N, gs, norm ? inv : 1);
            // h1 = y1·silu(y2): |Δh1| ≤ |Δy1|·|silu(y2)| + |y1|·1.1·|Δy2| (|silu'| < 1.1)
            const bh1 = Float64Array.from(b1, (t, i) => t * (Math.abs(silu(want.h2[i])) + 1.1 * b2[i]) + Math.abs(w1x[i]) * 1.1 * b2[i]);
            for (const vr of ['Q1,RB2,PF,ID,DRB2', 'Q1,RB2,PF,DRB2,DPF,DGS8,ID', 'Q1,RB2,PF,DRB2,DPF,EL,ID', 'Q1,RB2,GS64,PF,ID,DRB2,DGS8']) {
              gpu.int4Variant = vr;
              const d0 = gpu.rec.dispatches;
              const got = await run(gpu, norm);
              // (rows per group 5: the f32 kernel, no quantisation)
              expect(gpu.rec.dispatches - d0, `variant '${vr}' K ${K} norm ${norm}: quantisation + one dual dispatch`).toBe((gs / 8) % 2 === 0 ? 2 : 1);
              expectWithin(got.h2, want.h2, b2, `variant '${vr}' K ${K} norm ${norm}: w2(x)`);
              expectWithin(got.h1, want.h1, bh1, `variant '${vr}' K ${K} norm ${norm}: w1(x)·silu(w2(x))`);
            }
          }
          const want = await start(ref);
          const bound = quantBound(v, c1.dequant, K, N, gs, inv);
          for (const vr of ['Q1,RB2,GS64,PF,ID,DRB2', 'Q1,RB2,GS8,PF,EL,ID,DRB2', 'Q1,RB2,GS8,PF2,ID,DRB2']) {
            gpu.int4Variant = vr;
            const d0 = gpu.rec.dispatches;
            const got = await start(gpu);
            expect(gpu.rec.dispatches - d0, `variant '${vr}' K ${K}: quantisation + GEMV with the norm prologue`).toBe((gs / 8) % 2 === 0 ? 2 : 1);
            expectWithin(got.y, want.y, bound, `variant '${vr}' K ${K}: norm + GEMV`);
            expect(relErr(got.normed, want.normed), `variant '${vr}' K ${K}: the norm's output`).toBeLessThan(1e-5);
          }
        } finally {
          gpu.int4Variant = initial;
        }
      }
    });
  });

  it('two decode layers on the integer kernels: every GEMV input but the attention output is quantised by the GEMV before it', async () => {
    // K 288 (groups of 48: 6 word rows), MLP 96 (groups of 32): every block of 16 inside a group
    const K = 288;
    const I = 96;
    const cs = { attn: makeGptq(K, K, 48, 111, {}), proj: makeGptq(K, K, 48, 112, {}), w1: makeGptq(K, I, 48, 113, {}), w2: makeGptq(K, I, 48, 114, {}), down: makeGptq(I, K, 32, 115, {}) };
    const ln1 = floatTensor('ln_1.weight', 'F16', [K], randoms(K, 116, 1)).src;
    const ln2 = floatTensor('ln_2.weight', 'F16', [K], randoms(K, 117, 1)).src;
    const x0 = randoms(K, 118, 2);
    const run = async (b: Backend) => {
      const w = {
        attn: await b.uploadLinear(gptqSource(cs.attn), at),
        proj: await b.uploadLinear(gptqSource(cs.proj), at),
        w1: await b.uploadLinear(gptqSource(cs.w1), at),
        w2: await b.uploadLinear(gptqSource(cs.w2), at),
        down: await b.uploadLinear(gptqSource(cs.down), at),
      };
      const [g1, g2] = [await b.uploadVector(ln1, at), await b.uploadVector(ln2, at)];
      const x = put(b, x0);
      const [xb, a1, o, h1, h2] = [b.alloc(K, at), b.alloc(K, at), b.alloc(K, at), b.alloc(I, at), b.alloc(I, at)];
      for (let layer = 0; layer < 2; layer++) {
        // (the attention's place: its output is c_attn's here)
        b.rmsNorm(xb, x, g1, 1, 1e-6);
        b.matmul(a1, xb, w.attn, 1);
        b.matmul(o, a1, w.proj, 1);
        b.add(x, o, K);
        b.rmsNorm(xb, x, g2, 1, 1e-6);
        b.matmul(h1, xb, w.w1, 1);
        b.matmul(h2, xb, w.w2, 1);
        b.swiglu(h1, h1, h2, I);
        b.matmul(o, h1, w.down, 1);
        b.add(x, o, K);
      }
      b.rmsNorm(xb, x, g1, 1, 1e-6);
      const res = new Float32Array(3 * K + I);
      res.set(await b.read(x, 0, K));
      res.set(await b.read(xb, 0, K), K);
      res.set(await b.read(a1, 0, K), 2 * K);
      res.set(await b.read(h1, 0, I), 3 * K);
      return res;
    };
    const want = await run(ref);
    const initial = gpu.int4Variant;
    try {
      gpu.int4Variant = 'Q1,RB2,GS64,PF,ID,DRB2';
      const d0 = gpu.rec.dispatches;
      expect(relErr(await run(gpu), want)).toBeLessThan(1e-5);
      // layer 0: quantise(norm) + c_attn, quantise(a1) + c_proj (+ quantised residual), dual (+
      // quantised output), then layer 1: down (+ quantised residual), c_attn, quantise(a1) +
      // c_proj, dual; at the end down and the norm: 12 (18 with a quantisation per GEMV)
      expect(gpu.rec.dispatches - d0).toBe(12);
    } finally {
      gpu.int4Variant = initial;
    }
  });

  it('decode attention writes its output quantised for the integer GEMV that reads it next (one chunk and several), not after another op', async () => {
    const heads = 4;
    const hd = 32;
    const W = heads * hd;
    const c = makeGptq(W, 48, 32, 121, {});
    const qkv = randoms(100 * 3 * W, 122, 1.5);
    const bias = randoms(W, 123, 0.5);
    const run = async (b: Backend, counts?: number[]) => {
      const kv = b.kvCreate(128, heads, hd, 'f32', at);
      const buf = put(b, qkv);
      const w = await b.uploadLinear(gptqSource(c), at);
      const o = b.alloc(W, at);
      const y = b.alloc(48, at);
      const extra = put(b, bias);
      b.kvWrite(kv, { buf, stride: 3 * W, offset: W }, { buf, stride: 3 * W, offset: 2 * W }, 100, 0);
      await b.read(o, 0, 1);
      const res: number[] = [];
      // kvLen 10: one chunk (decode_part writes the output); 100: two chunks (decode_combine);
      // then an add on the output in between: the GEMV must quantise it again
      for (const [kvLen, addFirst] of [
        [10, false],
        [100, false],
        [100, true],
      ] as const) {
        const d0 = (b as WebGpuBackend).rec?.dispatches;
        b.attention(o, { buf, stride: 3 * W, offset: (kvLen - 1) * 3 * W }, kv, { rows: 1, heads, headDim: hd, kvLen, pos0: kvLen - 1, scale: 1 / Math.sqrt(hd), lognSeqLength: 0 });
        if (addFirst) b.add(o, extra, W);
        b.matmul(y, o, w, 1);
        res.push(...(await b.read(y, 0, 48)));
        if (counts) counts.push((b as WebGpuBackend).rec.dispatches - d0);
      }
      return Float32Array.from(res);
    };
    const want = await run(ref);
    const initial = gpu.int4Variant;
    try {
      gpu.int4Variant = 'Q1,RB2,GS64,PF,ID,DRB2';
      const counts: number[] = [];
      expect(relErr(await run(gpu, counts), want)).toBeLessThan(1e-5);
      // attention (1 or 2 dispatches) + GEMV; after the add: add + quantisation + GEMV
      expect(counts).toEqual([2, 3, 5]);
    } finally {
      gpu.int4Variant = initial;
    }
  });

  it('rejects g_idx whose groups are not multiples of 8 rows', async () => {
    const c = makeGptq(64, 8, 32, 5, {});
    const gIdx = new Int32Array(64);
    for (let k = 0; k < 64; k++) gIdx[k] = k === 3 ? 1 : k < 32 ? 0 : 1;
    await expect(gpu.uploadLinear(gptqSource({ ...c, gIdx }), at)).rejects.toThrow(/multiple of 8/);
  });
});

describe('webgpu: rope, KV cache and attention', () => {
  it('rope on q and k views inside a fused row (partial rotary, pos0 > 0, NTK base)', async () => {
    const heads = 3;
    const hd = 12;
    const H = heads * hd;
    const rows = 5;
    const x = randoms(rows * 3 * H, 13, 2);
    const run = async (b: Backend) => {
      const buf = put(b, x);
      const p = { heads, headDim: hd, rotaryDim: 8, pos0: 4093, base: 10000 * 3 ** (8 / 6) };
      b.rope({ buf, stride: 3 * H, offset: 0 }, rows, p);
      b.rope({ buf, stride: 3 * H, offset: H }, rows, p);
      return b.read(buf, 0, x.length);
    };
    expect(relErr(await run(gpu), await run(ref))).toBeLessThan(2e-6);
  });

  for (const quant of ['f32', 'int8'] as KVQuant[]) {
    it(`prefill + multi-chunk decode attention over a ${quant} cache (LogN, kv move/copy)`, async () => {
      const heads = 2;
      const hd = 16;
      const W = heads * hd;
      const pre = 300;
      const seqLength = 64;
      const qkv = randoms(pre * 3 * W, 14, 1.5);
      const run = async (b: Backend) => {
        const kv = b.kvCreate(320, heads, hd, quant, at);
        const buf = put(b, qkv);
        const q = { buf, stride: 3 * W, offset: 0 };
        const k = { buf, stride: 3 * W, offset: W };
        const v = { buf, stride: 3 * W, offset: 2 * W };
        // prefill 290 rows in two chunks (rows 0..199, then 200..289 over 290 slots)
        const outs: Float32Array[] = [];
        const o = b.alloc(pre * W, at);
        b.kvWrite(kv, k, v, 200, 0);
        b.attention(o, q, kv, { rows: 200, heads, headDim: hd, kvLen: 200, pos0: 0, scale: 1 / Math.sqrt(hd), lognSeqLength: seqLength });
        outs.push(await b.read(o, 0, 200 * W));
        const off = 200 * 3 * W;
        const q2 = { buf, stride: 3 * W, offset: off };
        b.kvWrite(kv, { buf, stride: 3 * W, offset: off + W }, { buf, stride: 3 * W, offset: off + 2 * W }, 90, 200);
        b.attention(o, q2, kv, { rows: 90, heads, headDim: hd, kvLen: 290, pos0: 200, scale: 1 / Math.sqrt(hd), lognSeqLength: seqLength });
        outs.push(await b.read(o, 0, 90 * W));
        // decode rows 290..299 one at a time (kvLen crosses the 256-slot chunk boundary)
        for (let r = 290; r < pre; r++) {
          const base = r * 3 * W;
          b.kvWrite(kv, { buf, stride: 3 * W, offset: base + W }, { buf, stride: 3 * W, offset: base + 2 * W }, 1, r);
          b.attention(o, { buf, stride: 3 * W, offset: base }, kv, { rows: 1, heads, headDim: hd, kvLen: r + 1, pos0: r, scale: 1 / Math.sqrt(hd), lognSeqLength: seqLength });
          outs.push(await b.read(o, 0, W));
        }
        // growth copy and a sliding move, then one more decode over the result
        const kv2 = b.kvCreate(400, heads, hd, quant, at);
        b.kvCopy(kv2, kv, pre);
        b.kvMove(kv2, 4, 40, 260);
        b.attention(o, q, kv2, { rows: 1, heads, headDim: hd, kvLen: 264, pos0: 300, scale: 1 / Math.sqrt(hd), lognSeqLength: seqLength });
        outs.push(await b.read(o, 0, W));
        const all = new Float32Array(outs.reduce((s, a) => s + a.length, 0));
        let p = 0;
        for (const a of outs) {
          all.set(a, p);
          p += a.length;
        }
        return all;
      };
      // int8: the GPU and the reference may round a value to adjacent codes (f32 vs f64 quotient)
      const tol = quant === 'f32' ? 2e-6 : 2e-3;
      expect(relErr(await run(gpu), await run(ref))).toBeLessThan(tol);
    });
  }

  /**
   * Decode attention outputs of one query row at cache lengths that take 1, 2, 3, 34 and 36 chunks
   * of 64 (past 32 the combine pass reads the rest after its prefetched chunks; 3 heads of `hd`
   * dims, cache filled from a random qkv buffer with the given seed).
   */
  async function decodeAttentionSweep(b: Backend, quant: KVQuant, hd: number, seed: number): Promise<Float32Array> {
    const heads = 3;
    const W = heads * hd;
    const slots = 2250;
    const qkv = randoms(slots * 3 * W, seed, 1.5);
    const kv = b.kvCreate(slots, heads, hd, quant, at);
    const buf = put(b, qkv);
    b.kvWrite(kv, { buf, stride: 3 * W, offset: W }, { buf, stride: 3 * W, offset: 2 * W }, slots, 0);
    const o = b.alloc(W, at);
    const outs: number[] = [];
    for (const kvLen of [1, 63, 64, 65, 129, 150, 2113, 2250]) {
      const r = kvLen - 1;
      b.attention(o, { buf, stride: 3 * W, offset: r * 3 * W }, kv, { rows: 1, heads, headDim: hd, kvLen, pos0: r, scale: 1 / Math.sqrt(hd), lognSeqLength: 100 });
      outs.push(...(await b.read(o, 0, W)));
    }
    b.kvFree(kv);
    return Float32Array.from(outs);
  }

  it('decode attention over an int8 cache with 4 lanes per key (attnKeyLanes) equals the reference, one and several chunks', async () => {
    for (const hd of [128, 64]) {
      const want = await decodeAttentionSweep(ref, 'int8', hd, 15);
      const initial = gpu.attnKeyLanes;
      try {
        gpu.attnKeyLanes = 1;
        const one = await decodeAttentionSweep(gpu, 'int8', hd, 15);
        gpu.attnKeyLanes = 4;
        const four = await decodeAttentionSweep(gpu, 'int8', hd, 15);
        // int8: the GPU and the reference may round a value to adjacent codes (f32 vs f64 quotient)
        expect(relErr(one, want), `hd ${hd}, 1 lane`).toBeLessThan(2e-3);
        expect(relErr(four, want), `hd ${hd}, 4 lanes`).toBeLessThan(2e-3);
        // the same codes on both GPU paths: only the summation order differs
        expect(relErr(four, one), `hd ${hd}, 4 lanes vs 1`).toBeLessThan(2e-6);
      } finally {
        gpu.attnKeyLanes = initial;
      }
    }
  });

  it('decode attention with subgroup reductions (WebGpuOptions.subgroups) equals the reference and the barrier-tree path', async () => {
    // SwiftShader has the subgroups feature: CI runs the SG kernels, not a fallback
    expect(gpu.features.subgroups).toBe(true);
    const initial = { sg: gpu.useSubgroups, lanes: gpu.attnKeyLanes };
    try {
      for (const quant of ['f32', 'int8'] as KVQuant[]) {
        const want = await decodeAttentionSweep(ref, quant, 128, 16);
        for (const lanes of [1, 4] as const) {
          gpu.attnKeyLanes = lanes;
          gpu.useSubgroups = false;
          const tree = await decodeAttentionSweep(gpu, quant, 128, 16);
          gpu.useSubgroups = true;
          const sg = await decodeAttentionSweep(gpu, quant, 128, 16);
          // f32: summation order only; int8: adjacent codes possible against the f64 reference
          expect(relErr(sg, want), `${quant}, ${lanes} lanes`).toBeLessThan(quant === 'f32' ? 1e-5 : 2e-3);
          expect(relErr(sg, tree), `${quant}, ${lanes} lanes, subgroups vs tree`).toBeLessThan(2e-6);
        }
      }
    } finally {
      gpu.useSubgroups = initial.sg;
      gpu.attnKeyLanes = initial.lanes;
    }
  });

  // decode rows after a prefill of 6 (one chunk: SINGLE) and of 130 (three chunks + combine); the
  // decode row's rope + kvWrite run inside the decode attention pass (ROPEKV): the q|k|v buffer
  // (q and k rotated in place), the cache (read by the next row) and the output must all match
  // (over several chunks the rope+kv write runs in its own dispatch before the chunked pass)
  const cases: [KVQuant, 1 | 4, number][] = [['f32', 1, 6], ['int8', 4, 6], ['f32', 1, 130], ['int8', 4, 130], ['int8', 1, 130]];
  for (const [quant, lanes, prompt] of cases) {
    it(`rope of q and k then kvWrite of k (fused on the GPU) equals the separate ops (${quant}, ${lanes} key lanes, prefill ${prompt} + 2 decode rows)`, async () => {
      const heads = 3;
      const hd = 64;
      const W = heads * hd;
      const rows = prompt + 2;
      const qkv = randoms(rows * 3 * W, 51, 1.5);
      // each decode row's q is 2·its k: the new slot dominates that row's softmax, so a wrong
      // store of it shows in the output, not diluted over the other slots
      for (const r of [prompt, prompt + 1]) for (let c = 0; c < W; c++) qkv[r * 3 * W + c] = 2 * qkv[r * 3 * W + W + c];
      const initial = gpu.attnKeyLanes;
      const run = async (b: Backend) => {
        const kv = b.kvCreate(rows + 3, heads, hd, quant, at);
        const buf = put(b, qkv);
        const o = b.alloc(rows * W, at);
        const p = { heads, headDim: hd, rotaryDim: 48, pos0: 3, base: 10000 };
        const view = (r: number, c: number) => ({ buf, stride: 3 * W, offset: r * 3 * W + c });
        // prefill (both ropes, then the write), then two decode rows (k rope first in one, q in the other)
        b.rope(view(0, 0), prompt, p);
        b.rope(view(0, W), prompt, p);
        b.kvWrite(kv, view(0, W), view(0, 2 * W), prompt, 0);
        b.attention(o, view(0, 0), kv, { rows: prompt, heads, headDim: hd, kvLen: prompt, pos0: 3, scale: 0.25, lognSeqLength: 0 });
        for (const r of [prompt, prompt + 1]) {
          const pr = { ...p, pos0: r + 3 };
          if (r === prompt) {
            b.rope(view(r, W), 1, pr);
            b.rope(view(r, 0), 1, pr);
          } else {
            b.rope(view(r, 0), 1, pr);
            b.rope(view(r, W), 1, pr);
          }
          b.kvWrite(kv, view(r, W), view(r, 2 * W), 1, r);
          b.attention(o, view(r, 0), kv, { rows: 1, heads, headDim: hd, kvLen: r + 1, pos0: r + 3, scale: 0.25, lognSeqLength: 0 });
        }
        // the stored keys of the two new slots: a query by each rotated k itself at a scale where
        // that slot takes about 3/4 of the weight (a wrong key moves the output)
        const probe = b.alloc(2 * W, at);
        for (const i of [0, 1]) {
          const pv = { rows: 1, heads, headDim: hd, kvLen: rows, pos0: rows + 3, scale: 0.125, lognSeqLength: 0 };
          const one = b.alloc(W, at);
          b.attention(one, view(prompt + i, W), kv, pv);
          b.copy(probe, i * W, one, 0, W);
        }
        // the rotated q|k|v rows, the prefill's outputs, each decode row's output and the probes
        return [await b.read(buf, 0, qkv.length), await b.read(o, 0, prompt * W), await b.read(o, prompt * W, W), await b.read(o, (prompt + 1) * W, W), await b.read(probe, 0, 2 * W)];
      };
      try {
        gpu.attnKeyLanes = lanes;
        const tol = quant === 'f32' ? 2e-6 : 2e-3;
        const got = await run(gpu);
        const want = await run(ref);
        for (let i = 0; i < want.length; i++) expect(relErr(got[i], want[i]), `part ${i}`).toBeLessThan(tol);
      } finally {
        gpu.attnKeyLanes = initial;
      }
    });
  }

  it('rejects bad KV ranges', () => {
    const kv = gpu.kvCreate(8, 2, 4, 'f32', at);
    const buf = gpu.alloc(64, at);
    expect(() => gpu.kvWrite(kv, { buf, stride: 8, offset: 0 }, { buf, stride: 8, offset: 0 }, 2, 7)).toThrow(/capacity/);
    expect(() => gpu.attention(gpu.alloc(8, at), { buf, stride: 8, offset: 0 }, kv, { rows: 1, heads: 2, headDim: 4, kvLen: 9, pos0: 0, scale: 1, lognSeqLength: 0 })).toThrow(/kvLen/);
  });
});
