/**
 * Threads and memories: 1 vs 2 threads (Node worker_threads) give bitwise identical results, and a
 * backend forced onto many small wasm memories computes exactly what a single memory does.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, Buf, KVStore, Linear, Vec } from '../../src/backend/backend.js';
import { createCpuBackend, type CpuBackendOptions } from '../../src/backend/cpu/index.js';
import type { Platform } from '../../src/platform.js';
import { createNodeWorker } from '../../bindings/node/cpuWorkers.js';
import { floatTensor, gptqSource, makeGptq, randoms } from '../support/tensors.js';

const platform = { name: 'node', hardwareConcurrency: () => 2, createWorker: createNodeWorker } as unknown as Platform;
const backends: Backend[] = [];
afterAll(async () => {
  await Promise.all(backends.map((b) => b.dispose()));
});

async function make(opts: CpuBackendOptions): Promise<Backend> {
  const b = await createCpuBackend({ platform, ...opts });
  backends.push(b);
  return b;
}

/**
 * A small two-layer model-like pipeline touching every op; weights of layer l are placed at
 * {layer: l}. Returns everything it read back.
 */
async function pipeline(b: Backend): Promise<Float32Array[]> {
  const H = 96;
  const heads = 4;
  const hd = H / heads;
  const I = 160;
  const V = 203;
  const rows = 6;
  const outs: Float32Array[] = [];
  const wte = await b.uploadEmbedding(floatTensor('wte', 'F16', [V, H], randoms(V * H, 1)).src, { layer: -1 });
  const layers: { ln: Vec; cAttn: Linear; cProj: Linear; w1: Linear; w2: Linear; mp: Linear; kv: KVStore }[] = [];
  for (let l = 0; l < 2; l++) {
    const at = { layer: l };
    const cAttn = makeGptq(H, 3 * H, 32, 10 + l, { descAct: l === 1 });
    layers.push({
      ln: await b.uploadVector(floatTensor('ln', 'F16', [H], randoms(H, 2 + l)).src, at),
      cAttn: await b.uploadLinear(gptqSource(cAttn, randoms(3 * H, 5)), at),
      cProj: await b.uploadLinear({ kind: 'dense', inFeatures: H, outFeatures: H, weight: floatTensor('p', 'BF16', [H, H], randoms(H * H, 6 + l, 0.1)).src }, at),
      w1: await b.uploadLinear(gptqSource(makeGptq(H, I, 32, 20 + l)), at),
      w2: await b.uploadLinear(gptqSource(makeGptq(H, I, 32, 30 + l, { sym: true })), at),
      mp: await b.uploadLinear(gptqSource(makeGptq(I, H, 32, 40 + l)), at),
      kv: b.kvCreate(16, heads, hd, l === 0 ? 'f32' : 'int8', at),
    });
  }
  const lm = await b.uploadLinear({ kind: 'dense', inFeatures: H, outFeatures: V, weight: floatTensor('lm', 'F16', [V, H], randoms(V * H, 7, 0.3)).src }, { layer: -2 });
  const a = { layer: -1 };
  const x = b.alloc(rows * H, a), xb = b.alloc(rows * H, a), qkv = b.alloc(rows * 3 * H, a), att = b.alloc(rows * H, a);
  const h1 = b.alloc(rows * I, a), h2 = b.alloc(rows * I, a), logits = b.alloc(rows * V, { layer: -2 });
  const step = async (ids: Int32Array, slot: number) => {
    const n = ids.length;
    b.embed(x, wte, ids);
    for (const L of layers) {
      b.rmsNorm(xb, x, L.ln, n, 1e-6);
      b.matmul(qkv, xb, L.cAttn, n);
      const rope = { heads, headDim: hd, rotaryDim: hd, pos0: slot, base: 10000 };
      b.rope({ buf: qkv, stride: 3 * H, offset: 0 }, n, rope);
      b.rope({ buf: qkv, stride: 3 * H, offset: H }, n, rope);
      b.kvWrite(L.kv, { buf: qkv, stride: 3 * H, offset: H }, { buf: qkv, stride: 3 * H, offset: 2 * H }, n, slot);
      b.attention(att, { buf: qkv, stride: 3 * H, offset: 0 }, L.kv, { rows: n, heads, headDim: hd, kvLen: slot + n, pos0: slot, scale: 1 / Math.sqrt(hd), lognSeqLength: 4 });
      b.matmul(xb, att, L.cProj, n);
      b.add(x, xb, n * H);
      b.rmsNorm(xb, x, L.ln, n, 1e-6);
      b.matmul(h1, xb, L.w1, n);
      b.matmul(h2, xb, L.w2, n);
      b.swiglu(h1, h1, h2, n * I);
      b.matmul(xb, h1, L.mp, n);
      b.add(x, xb, n * H);
    }
    b.matmul(logits, x, lm, n);
    outs.push(await b.read(logits, 0, n * V));
    outs.push(await b.read(x, 0, n * H));
  };
  await step(Int32Array.of(5, 17, 200, 3, 99, 1), 0);
  await step(Int32Array.of(42), 6);
  await step(Int32Array.of(7), 7);
  return outs;
}

function expectSame(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    expect(new Uint32Array(a[i].buffer, a[i].byteOffset, a[i].length)).toEqual(new Uint32Array(b[i].buffer, b[i].byteOffset, b[i].length));
  }
}

describe('cpu backend threads and memories', () => {
  it('1 and 2 threads give bitwise identical results', async () => {
    const one = await make({ threads: 1 });
    const two = await make({ threads: 2 });
    expect(one.description).toMatch(/1 thread/);
    expect(two.description).toMatch(/2 threads/);
    const a = await pipeline(one);
    const b = await pipeline(two);
    expect(a[0].some((v) => v !== 0)).toBe(true);
    expectSame(a, b);
  });

  it('many small memories (128 KiB cap) compute exactly what one memory does, with 1 and 2 threads', async () => {
    const single = await pipeline(await make({ threads: 1 }));
    const small1 = await make({ threads: 1, maxMemoryBytes: 128 << 10, reserveBytes: 48 << 10 });
    const r1 = await pipeline(small1);
    expect(small1.description).toMatch(/ [3-9] memories/);
    expectSame(single, r1);
    const small2 = await make({ threads: 2, maxMemoryBytes: 128 << 10, reserveBytes: 48 << 10 });
    expectSame(single, await pipeline(small2));
    const u = small2.memoryUsage();
    expect(u.weightBytes).toBeGreaterThan(0);
    expect(u.kvBytes).toBeGreaterThan(0);
    expect(u.peakBytes).toBeGreaterThanOrEqual(u.weightBytes + u.kvBytes);
  });

  it('plain (unshared) memories, for pages without SharedArrayBuffer, compute the same bits single-threaded', async () => {
    const ref = await pipeline(await make({ threads: 1 }));
    const plain = await make({ threads: 2, sharedMemory: false });
    expect(plain.description).toMatch(/1 thread, 1 unshared memory/);
    expectSame(ref, await pipeline(plain));
    const plainSmall = await make({ threads: 1, sharedMemory: false, maxMemoryBytes: 128 << 10, reserveBytes: 48 << 10 });
    expectSame(ref, await pipeline(plainSmall));
    expect(plainSmall.description).toMatch(/unshared memories/);
  });

  it('matrices and embeddings larger than one memory are cut into row ranges with identical results', async () => {
    const inF = 300;
    const outF = 1001;
    const rows = 3;
    const w = randoms(inF * outF, 4);
    const bias = randoms(outF, 5);
    const table = randoms(outF * inF, 6);
    const x = randoms(rows * inF, 7);
    const ids = Int32Array.of(1000, 0, 517, 260, 999);
    const results: Float32Array[][] = [];
    for (const opts of [{ threads: 1 }, { threads: 2, maxMemoryBytes: 256 << 10, reserveBytes: 32 << 10 }]) {
      const b = await make(opts);
      const outs: Float32Array[] = [];
      for (const dt of ['F32', 'F16', 'BF16'] as const) {
        const l = await b.uploadLinear({ kind: 'dense', inFeatures: inF, outFeatures: outF, weight: floatTensor('lm_head.weight', dt, [outF, inF], w).src, bias: floatTensor('b', 'F32', [outF], bias).src }, { layer: -2 });
        const e = await b.uploadEmbedding(floatTensor('wte', dt, [outF, inF], table).src, { layer: -1 });
        const xb = b.alloc(rows * inF, { layer: -1 });
        b.write(xb, x);
        const o = b.alloc(rows * outF, { layer: -1 });
        b.matmul(o, xb, l, rows);
        outs.push(await b.read(o, 0, rows * outF));
        const eo = b.alloc(ids.length * inF, { layer: 0 });
        b.embed(eo, e, ids);
        outs.push(await b.read(eo, 0, ids.length * inF));
      }
      if (opts.maxMemoryBytes) expect(b.description).toMatch(/ \d\d+ memories| [4-9] memories/);
      results.push(outs);
    }
    expectSame(results[0], results[1]);
  });

  it('a row larger than one memory is a typed error naming the tensor', async () => {
    const b = await make({ threads: 1, maxMemoryBytes: 256 << 10, reserveBytes: 32 << 10 });
    const big = floatTensor('huge.weight', 'F32', [4, 70000], new Float32Array(4 * 70000)).src;
    await expect(b.uploadLinear({ kind: 'dense', inFeatures: 70000, outFeatures: 4, weight: big }, { layer: 0 })).rejects.toThrow(/huge\.weight/);
    await expect(b.uploadEmbedding(big, { layer: 0 })).rejects.toThrow(/huge\.weight/);
  });

  it('buffers move between memories on demand (write in one, op in another)', async () => {
    const b = await make({ threads: 1, maxMemoryBytes: 1 << 20, reserveBytes: 64 << 10 });
    const n = 50;
    const vecs: Buf[] = [];
    // fill a few memories with weights so layers land apart
    const lin = [];
    for (let l = 0; l < 4; l++) {
      lin.push(await b.uploadLinear({ kind: 'dense', inFeatures: n, outFeatures: n, weight: floatTensor('w', 'F32', [n, n], randoms(n * n, l)).src }, { layer: l }));
      await b.uploadLinear({ kind: 'dense', inFeatures: 512, outFeatures: 400, weight: floatTensor('pad', 'F32', [400, 512], new Float32Array(400 * 512)).src }, { layer: l });
    }
    expect(b.description).toMatch(/[2-9] memories/);
    const x = b.alloc(n, { layer: 3 });
    b.write(x, randoms(n, 9));
    for (let l = 0; l < 4; l++) {
      const y = b.alloc(n, { layer: -1 });
      b.matmul(y, x, lin[l], 1);
      vecs.push(y);
    }
    const single = await make({ threads: 1 });
    for (let l = 0; l < 4; l++) {
      const w = await single.uploadLinear({ kind: 'dense', inFeatures: n, outFeatures: n, weight: floatTensor('w', 'F32', [n, n], randoms(n * n, l)).src }, { layer: 0 });
      const xs = single.alloc(n, { layer: 0 });
      single.write(xs, randoms(n, 9));
      const ys = single.alloc(n, { layer: 0 });
      single.matmul(ys, xs, w, 1);
      expect(await b.read(vecs[l], 0, n)).toEqual(await single.read(ys, 0, n));
    }
  });
});

describe('cpu worker failures', () => {
  it('workers that cannot start leave a working single-threaded backend', async () => {
    const broken = {
      name: 'node',
      hardwareConcurrency: () => 2,
      createWorker: (code: string) => createNodeWorker('throw new Error("blocked by policy");' + code),
    } as unknown as Platform;
    const b = await createCpuBackend({ platform: broken });
    backends.push(b);
    expect(b.description).toMatch(/1 thread/);
    const throwing = { name: 'node', hardwareConcurrency: () => 2, createWorker: () => { throw new Error('CSP'); } } as unknown as Platform;
    const c = await createCpuBackend({ platform: throwing });
    backends.push(c);
    expect(c.description).toMatch(/1 thread/);
    const ref = await pipeline(await make({ threads: 1 }));
    expectSame(ref, await pipeline(b));
  });
});
