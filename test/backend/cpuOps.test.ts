/**
 * CPU backend ops against the reference backend (f64 accumulation) and plain JS loops, on random
 * inputs of awkward sizes. Tolerances are f32-accumulation bounds, not fixture tolerances.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Buf } from '../../src/backend/backend.js';
import { createCpuBackend } from '../../src/backend/cpu/index.js';
import { ReferenceBackend } from '../support/referenceBackend.js';
import { floatTensor, gptqSource, makeGptq, randoms } from '../support/tensors.js';

const at = { layer: 0 };
let cpu: Backend;
const ref = new ReferenceBackend();

beforeAll(async () => {
  cpu = await createCpuBackend({ threads: 1 });
});
afterAll(async () => {
  await cpu.dispose();
});

function put(b: Backend, data: Float32Array): Buf {
  const buf = b.alloc(data.length, at);
  b.write(buf, data);
  return buf;
}

/** max |a − b| / max(1, |b|) */
function relErr(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : Math.max(m, e);
  }
  return m;
}

async function both<T>(fn: (b: Backend) => Promise<T>): Promise<[T, T]> {
  return [await fn(cpu), await fn(ref)];
}

describe('cpu backend: activations', () => {
  it('write/read/copy round-trip and unwritten buffers read as zeros', async () => {
    const x = randoms(37, 1);
    const a = put(cpu, x);
    expect(await cpu.read(a, 0, 37)).toEqual(x);
    expect(await cpu.read(a, 5, 3)).toEqual(x.slice(5, 8));
    const b = cpu.alloc(50, at);
    expect(await cpu.read(b, 0, 50)).toEqual(new Float32Array(50));
    cpu.copy(b, 10, a, 3, 20);
    const got = await cpu.read(b, 0, 50);
    expect(got.slice(10, 30)).toEqual(x.slice(3, 23));
    expect(got.slice(0, 10)).toEqual(new Float32Array(10));
    cpu.write(b, Float32Array.of(1, 2), 48);
    expect(await cpu.read(b, 46, 4)).toEqual(Float32Array.of(0, 0, 1, 2));
    expect(() => cpu.write(b, new Float32Array(3), 48)).toThrow(/outside/);
    cpu.free(a);
    cpu.free(b);
  });

  it('add, swiglu (n not a multiple of 4)', async () => {
    const n = 1003;
    const x = randoms(n, 2, 3);
    const y = randoms(n, 3, 3);
    const [c, r] = await both(async (b) => {
      const xb = put(b, x);
      const yb = put(b, y);
      const o = b.alloc(n, at);
      b.swiglu(o, xb, yb, n);
      b.add(xb, yb, n);
      return [await b.read(o, 0, n), await b.read(xb, 0, n)];
    });
    expect(relErr(c[0], r[0])).toBeLessThan(2e-6);
    expect(c[1]).toEqual(Float32Array.from(x, (v, i) => v + y[i]));
  });

  it('rmsNorm (width 131, 3 rows)', async () => {
    const n = 131;
    const rows = 3;
    const x = randoms(rows * n, 4, 2);
    const w = floatTensor('ln.weight', 'F16', [n], randoms(n, 5)).src;
    const [c, r] = await both(async (b) => {
      const v = await b.uploadVector(w, at);
      const xb = put(b, x);
      const o = b.alloc(rows * n, at);
      b.rmsNorm(o, xb, v, rows, 1e-6);
      return b.read(o, 0, rows * n);
    });
    expect(relErr(c, r)).toBeLessThan(2e-6);
  });

  it('embedding gather from f32, f16 and bf16 rows (exact)', async () => {
    const rows = 29;
    const dim = 10;
    for (const dt of ['F32', 'F16', 'BF16'] as const) {
      const { src, stored } = floatTensor('wte', dt, [rows, dim], randoms(rows * dim, 6, 4));
      const e = await cpu.uploadEmbedding(src, { layer: -1 });
      const ids = Int32Array.of(3, 0, 28, 3);
      const o = cpu.alloc(ids.length * dim, at);
      cpu.embed(o, e, ids);
      const got = await cpu.read(o, 0, ids.length * dim);
      const want = new Float32Array(ids.length * dim);
      ids.forEach((id, r) => want.set(stored.subarray(id * dim, (id + 1) * dim), r * dim));
      expect(got).toEqual(want);
      expect(() => cpu.embed(o, e, Int32Array.of(29))).toThrow(/outside/);
    }
  });

  it('f16 subnormals, zeros and negative values convert exactly', async () => {
    const vals = [0, -0, 5.960464477539063e-8, -6.097555160522461e-5, 6.103515625e-5, 65504, -2.5, 1 / 3];
    const { src, stored } = floatTensor('e', 'F16', [1, vals.length], vals);
    const e = await cpu.uploadEmbedding(src, at);
    const o = cpu.alloc(vals.length, at);
    cpu.embed(o, e, Int32Array.of(0));
    expect(await cpu.read(o, 0, vals.length)).toEqual(stored);
  });

  it('argmax and topK with ties prefer the lower index', async () => {
    const x = Float32Array.of(1, 5, 3, 5, -2, 4, 5, 0);
    const b = put(cpu, x);
    expect(await cpu.argmax(b, 0, 8)).toBe(1);
    expect(await cpu.argmax(b, 2, 6)).toBe(1);
    // as a device token: known at once, embedToken gathers its row
    const tok = cpu.argmaxToken(b, 2, 6);
    expect(await cpu.readToken(tok)).toBe(1);
    const { src, stored } = floatTensor('wte', 'F16', [8, 3], randoms(24, 6, 4));
    const e = await cpu.uploadEmbedding(src, at);
    const o = cpu.alloc(3, at);
    cpu.embedToken(o, e, tok);
    expect(await cpu.read(o, 0, 3)).toEqual(stored.subarray(3, 6));
    expect(() => cpu.embedToken(o, e, { kind: 'token' })).toThrow(/another backend/);
    const t = await cpu.topK(b, 0, 8, 5);
    expect(Array.from(t.ids)).toEqual([1, 3, 6, 5, 2]);
    expect(Array.from(t.values)).toEqual([5, 5, 5, 4, 3]);
    const big = randoms(10007, 9);
    const bb = put(cpu, big);
    const [c, r] = await both(async (be) => be.topK(be === cpu ? bb : put(be, big), 0, 10007, 40));
    expect(c.ids).toEqual(r.ids);
    expect(c.values).toEqual(r.values);
  });
});

describe('cpu backend: dense matmul', () => {
  for (const dt of ['F32', 'F16', 'BF16'] as const) {
    for (const [inF, outF, rows] of [
      [37, 13, 1],
      [64, 33, 3],
      [130, 7, 2],
      [5, 4, 5],
    ]) {
      it(`${dt} [${outF}×${inF}] × ${rows} rows (+bias)`, async () => {
        const w = floatTensor('w', dt, [outF, inF], randoms(inF * outF, inF * 31 + outF, 0.5)).src;
        const bias = floatTensor('b', 'F16', [outF], randoms(outF, 77)).src;
        const x = randoms(rows * inF, 11, 2);
        const [c, r] = await both(async (b) => {
          const l = await b.uploadLinear({ kind: 'dense', inFeatures: inF, outFeatures: outF, weight: w, bias }, at);
          const xb = put(b, x);
          const o = b.alloc(rows * outF, at);
          b.matmul(o, xb, l, rows);
          return b.read(o, 0, rows * outF);
        });
        expect(relErr(c, r)).toBeLessThan(inF * 3e-7);
      });
    }
  }

  it('f16 with large activations (|x| ≥ 2^15, unscaled path) and bitwise equal to the scaled path', async () => {
    const inF = 67;
    const outF = 9;
    const w = floatTensor('w', 'F16', [outF, inF], randoms(inF * outF, 15)).src;
    const x = randoms(2 * inF, 16, 2);
    const big = x.slice();
    big[5] = 40000;
    const [c, r] = await both(async (b) => {
      const l = await b.uploadLinear({ kind: 'dense', inFeatures: inF, outFeatures: outF, weight: w }, at);
      const o = b.alloc(2 * outF, at);
      b.matmul(o, put(b, big), l, 2);
      return b.read(o, 0, 2 * outF);
    });
    expect(relErr(c, r)).toBeLessThan(inF * 3e-7);
    // row 1 has no large value: the same bits whichever path the call took
    const l = await cpu.uploadLinear({ kind: 'dense', inFeatures: inF, outFeatures: outF, weight: w }, at);
    const o = cpu.alloc(outF, at);
    cpu.matmul(o, put(cpu, big.slice(inF)), l, 1);
    expect(await cpu.read(o, 0, outF)).toEqual(c.slice(outF));
  });

  it('a row gives the same bits alone and inside a batch', async () => {
    const inF = 70;
    const outF = 11;
    const w = floatTensor('w', 'F16', [outF, inF], randoms(inF * outF, 5)).src;
    const l = await cpu.uploadLinear({ kind: 'dense', inFeatures: inF, outFeatures: outF, weight: w }, at);
    const x = randoms(5 * inF, 6);
    const xb = put(cpu, x);
    const o = cpu.alloc(5 * outF, at);
    cpu.matmul(o, xb, l, 5);
    const batch = await cpu.read(o, 0, 5 * outF);
    for (let r = 0; r < 5; r++) {
      const one = put(cpu, x.slice(r * inF, (r + 1) * inF));
      const o1 = cpu.alloc(outF, at);
      cpu.matmul(o1, one, l, 1);
      expect(await cpu.read(o1, 0, outF)).toEqual(batch.slice(r * outF, (r + 1) * outF));
    }
  });
});

describe('cpu backend: rope, KV and attention', () => {
  it('rope on q and k views inside a fused row (partial rotary, non-zero pos0) matches torch-f32 semantics', async () => {
    const heads = 3;
    const headDim = 12;
    const H = heads * headDim;
    const rows = 5;
    const x = randoms(rows * 3 * H, 21, 2);
    const p = { heads, headDim, rotaryDim: 8, pos0: 37, base: 10000 * 3 ** (12 / 10) };
    const [c, r] = await both(async (b) => {
      const xb = put(b, x);
      b.rope({ buf: xb, stride: 3 * H, offset: 0 }, rows, p);
      b.rope({ buf: xb, stride: 3 * H, offset: H }, rows, p);
      return b.read(xb, 0, x.length);
    });
    for (let i = 0; i < x.length; i++) expect(Math.abs(c[i] - r[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(r[i])));
    // v (the third third) and the non-rotated dims are untouched
    for (let row = 0; row < rows; row++) {
      for (let h = 0; h < heads; h++) {
        for (let d = 8; d < headDim; d++) {
          const i = row * 3 * H + h * headDim + d;
          expect(c[i]).toBe(x[i]);
        }
      }
      for (let i = row * 3 * H + 2 * H; i < (row + 1) * 3 * H; i++) expect(c[i]).toBe(x[i]);
    }
  });

  for (const quant of ['f32', 'int8'] as const) {
    it(`prefill + decode attention over a ${quant} cache (LogN, head dim 10)`, async () => {
      const heads = 3;
      const headDim = 10;
      const W = heads * headDim;
      const prompt = 7;
      const qkv1 = randoms(prompt * 3 * W, 31, 1.5);
      const qkv2 = randoms(2 * 3 * W, 32, 1.5);
      const params = (rows: number, kvLen: number, pos0: number) => ({
        rows, heads, headDim, kvLen, pos0, scale: 1 / Math.sqrt(headDim), lognSeqLength: 6,
      });
      const [c, r] = await both(async (b) => {
        const kv = b.kvCreate(16, heads, headDim, quant, at);
        const a = put(b, qkv1);
        const out = b.alloc(prompt * W, at);
        b.kvWrite(kv, { buf: a, stride: 3 * W, offset: W }, { buf: a, stride: 3 * W, offset: 2 * W }, prompt, 0);
        b.attention(out, { buf: a, stride: 3 * W, offset: 0 }, kv, params(prompt, prompt, 0));
        const pre = await b.read(out, 0, prompt * W);
        const d = put(b, qkv2);
        b.kvWrite(kv, { buf: d, stride: 3 * W, offset: W }, { buf: d, stride: 3 * W, offset: 2 * W }, 2, prompt);
        b.attention(out, { buf: d, stride: 3 * W, offset: 0 }, kv, params(2, prompt + 2, prompt));
        const dec = await b.read(out, 0, 2 * W);
        // sliding window move and growth copy keep the same keys
        b.kvMove(kv, 0, 2, 7);
        const kv2 = b.kvCreate(20, heads, headDim, quant, at);
        b.kvCopy(kv2, kv, 7);
        b.attention(out, { buf: d, stride: 3 * W, offset: 0 }, kv2, params(1, 7, 50));
        const moved = await b.read(out, 0, W);
        return [pre, dec, moved];
      });
      for (let i = 0; i < 3; i++) {
        const tol = quant === 'f32' ? 2e-6 : 1e-5;
        for (let j = 0; j < c[i].length; j++) expect(Math.abs(c[i][j] - r[i][j])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(r[i][j])));
      }
    });
  }

  it('rejects bad KV ranges', () => {
    const kv = cpu.kvCreate(4, 2, 4, 'f32', at);
    const b = cpu.alloc(64, at);
    expect(() => cpu.kvWrite(kv, { buf: b, stride: 8, offset: 0 }, { buf: b, stride: 8, offset: 0 }, 2, 3)).toThrow(/capacity/);
    expect(() => cpu.kvMove(kv, 2, 0, 3)).toThrow(/capacity/);
    cpu.kvFree(kv);
  });
});
