/**
 * WebGPU kernel benchmarks (Node + Dawn): a WGSL read-bandwidth probe, the int4 GEMV at the
 * Qwen-14B shapes, the f16 lm_head GEMV, and a synthetic 14B-shaped decode step (40 layers of
 * int4 blocks + lm_head + argmax) through the Backend API, with timestamp-query per-kernel times
 * where the adapter has them. Prints JSON lines, then a table.
 *
 *   node dist/bench/gpu.js [--quick] [--layers N] [--ctx 1,2048] [--reps N] [--kv f32|int8]
 *                          [--submit-every N] [--skip-kernels] [--swiftshader] [--dawn TOGGLES]
 *
 * --quick uses small shapes (for SwiftShader smoke runs). Weights are random (the kernels' speed
 * does not depend on values); nothing here checks numerics (see test/backend/webgpu*.test.ts).
 */
import { existsSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { nodeGpu } from '../bindings/node/gpu.js';
import { loadModel } from '../bindings/node/index.js';
import { createWebGpuBackend, type WebGpuBackend } from '../src/backend/webgpu/index.js';
import { shaders } from '../src/backend/webgpu/shaders.generated.js';
import type { Backend, Buf, Linear, LinearSource } from '../src/backend/backend.js';
import type { DType, TensorSource } from '../src/io/source.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const quick = flag('quick');
const reps = Number(opt('reps', quick ? '3' : '20'));
const submitEvery = Number(opt('submit-every', '96'));

if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && flag('swiftshader') && existsSync('/usr/lib/chromium/vk_swiftshader_icd.json')) {
  process.env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
}

interface Row {
  bench: string;
  shape: string;
  bytes: number;
  us: number;
  gbps: number;
  source: 'timestamp' | 'wall';
  note?: string;
}
const rows: Row[] = [];
function emit(r: Row): void {
  rows.push(r);
  console.log(JSON.stringify(r));
}

// ---------------------------------------------------------------- synthetic tensors

let seed = 0x12345678;
function fillRandom(u32: Uint32Array): void {
  let s = seed;
  for (let i = 0; i < u32.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u32[i] = s >>> 0;
  }
  seed = s >>> 0 || 1;
}

function tensor(name: string, dtype: DType, shape: number[], bytes: Uint8Array): TensorSource {
  return {
    name,
    dtype,
    shape,
    byteLength: bytes.byteLength,
    async read(offset: number, dst: Uint8Array) {
      dst.set(bytes.subarray(offset, offset + dst.length));
    },
  };
}

/** f16 bits of small values (|v| < 0.06, never inf/nan): sign + exponent 8..11 + random mantissa */
function randomF16(n: number, exp = 10): Uint8Array {
  const u = new Uint32Array(Math.ceil(n / 2));
  fillRandom(u);
  for (let i = 0; i < u.length; i++) {
    const w = u[i];
    const h = (w & 0x83ff83ff) | (exp << 10) | (exp << 26);
    u[i] = h >>> 0;
  }
  return new Uint8Array(u.buffer, 0, 2 * n);
}

function gptqSource(name: string, K: number, N: number): LinearSource {
  const qw = new Uint32Array((K / 8) * N);
  fillRandom(qw);
  const G = K / 128;
  const qz = new Uint32Array(G * (N / 8)).fill(0x77777777);
  return {
    kind: 'gptq',
    inFeatures: K,
    outFeatures: N,
    bits: 4,
    groupSize: 128,
    qweight: tensor(`${name}.qweight`, 'I32', [K / 8, N], new Uint8Array(qw.buffer)),
    qzeros: tensor(`${name}.qzeros`, 'I32', [G, N / 8], new Uint8Array(qz.buffer)),
    scales: tensor(`${name}.scales`, 'F16', [G, N], randomF16(G * N, 8)),
  };
}

function denseSource(name: string, K: number, N: number): LinearSource {
  return { kind: 'dense', inFeatures: K, outFeatures: N, weight: tensor(`${name}.weight`, 'F16', [N, K], randomF16(N * K)) };
}

// ---------------------------------------------------------------- probe (raw WebGPU)

async function probe(b: WebGpuBackend, bytes: number): Promise<void> {
  const device = b.device;
  const n4 = Math.floor(bytes / 16);
  const src = device.createBuffer({ size: n4 * 16, usage: GPUBufferUsage.STORAGE });
  const out = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
  const uni = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uni, 0, new Uint32Array([n4, 0xdeadbeef, 0, 0]));
  const code = shaders.probe.replace('var<uniform> p: P;', 'var<uniform> p: P;');
  const module = device.createShaderModule({ code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uni } },
      { binding: 1, resource: { buffer: out } },
      { binding: 2, resource: { buffer: src } },
    ],
  });
  const ts = b.features.timestamps;
  const qs = ts ? device.createQuerySet({ type: 'timestamp', count: 2 * reps }) : undefined;
  const resolve = ts ? device.createBuffer({ size: 16 * reps, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : undefined;
  const read = ts ? device.createBuffer({ size: 16 * reps, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }) : undefined;
  const groups = Math.min(65535, Math.ceil(n4 / 256 / 8));
  const run = async (count: number) => {
    const enc = device.createCommandEncoder();
    for (let i = 0; i < count; i++) {
      const pass = enc.beginComputePass(qs ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } } : undefined);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(groups);
      pass.end();
    }
    if (qs && resolve && read) {
      enc.resolveQuerySet(qs, 0, 2 * count, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * count);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(Math.min(2, reps)); // warm-up
  const wallMs = await run(reps);
  let us = (wallMs * 1000) / reps;
  let source: Row['source'] = 'wall';
  if (read) {
    await read.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(read.getMappedRange());
    const d: number[] = [];
    for (let i = 0; i < reps; i++) d.push(Number(t[2 * i + 1] - t[2 * i]) / 1000);
    read.unmap();
    d.sort((a, c) => a - c);
    us = d[Math.floor(d.length / 2)];
    source = 'timestamp';
  }
  emit({ bench: 'read probe', shape: `${(bytes / 2 ** 20).toFixed(0)} MiB`, bytes, us, gbps: bytes / us / 1000, source });
  for (const x of [src, out, uni, resolve, read]) x?.destroy();
  qs?.destroy();
}

/** Keeps the GPU busy for `ms` so that clocks leave their idle state before anything is timed. */
async function warmUp(b: WebGpuBackend, ms: number): Promise<void> {
  const at = { layer: 0 };
  const l = await b.uploadLinear(gptqSource('warm-up', 5120, 5120), at);
  const x = b.alloc(5120, at);
  const y = b.alloc(5120, at);
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 50; i++) b.matmul(y, x, l, 1);
    await b.flush();
  }
  b.free(x);
  b.free(y);
}

// ---------------------------------------------------------------- GEMV through the backend

async function gemv(b: WebGpuBackend, label: string, src: LinearSource, copies: number): Promise<void> {
  const at = { layer: 0 };
  // several copies of the matrix, cycled, so that the reads come from DRAM (H100 L2: 50 MB)
  const ls: Linear[] = [];
  for (let i = 0; i < copies; i++) ls.push(await b.uploadLinear(src, at));
  const x = b.alloc(src.inFeatures, at);
  const y = b.alloc(src.outFeatures, at);
  b.write(x, Float32Array.from({ length: src.inFeatures }, (_, i) => Math.sin(i)));
  const variants = opt('variants', 'default').split(',');
  const initial = b.int4Variant;
  for (const v of variants) {
    b.int4Variant = v === 'default' ? initial : v === 'T2' ? '' : v.replace(/\+/g, ',');
    for (const l of ls) b.matmul(y, x, l, 1);
    await b.flush(); // warm-up (pipeline creation)
    const n = reps * copies;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) b.matmul(y, x, ls[i % copies], 1);
    await b.flush();
    const wallUs = ((performance.now() - t0) * 1000) / n;
    let us = wallUs;
    let source: Row['source'] = 'wall';
    if (b.features.timestamps) {
      // GPU time of back-to-back dispatches in one compute pass (no per-dispatch pass overhead)
      await b.takeProfile();
      b.rec.submitEvery = 0;
      b.rec.beginRegion('gemv');
      for (let i = 0; i < n; i++) b.matmul(y, x, ls[i % copies], 1);
      b.flush();
      b.rec.endRegion();
      const prof = await b.takeProfile();
      b.rec.submitEvery = submitEvery;
      const e = prof.get('gemv');
      if (e) {
        us = e.ns / 1000 / n;
        source = 'timestamp';
      }
    }
    const l = ls[0];
    emit({ bench: `${label}${variants.length > 1 ? ` [${v}]` : ''}`, shape: `${src.inFeatures}→${src.outFeatures}`, bytes: l.bytes, us, gbps: l.bytes / us / 1000, source, note: `wall ${wallUs.toFixed(1)} us/call` });
  }
  b.int4Variant = initial;
  b.free(x);
  b.free(y);
}

// ---------------------------------------------------------------- synthetic decode step

interface Shape {
  hidden: number;
  heads: number;
  headDim: number;
  mlp: number;
  vocab: number;
  layers: number;
}

let stepLabel = '';

async function decodeStep(b: WebGpuBackend, s: Shape, ctxs: number[], quant: 'f32' | 'int8', distinct: number): Promise<void> {
  const at = { layer: 0 };
  const H = s.hidden;
  const I = s.mlp;
  // a few distinct layers' weights, cycled (each is larger than any L2, so DRAM traffic is real)
  const blocks: { cAttn: Linear; cProj: Linear; w1: Linear; w2: Linear; mlpProj: Linear }[] = [];
  for (let i = 0; i < distinct; i++) {
    blocks.push({
      cAttn: await b.uploadLinear({ ...gptqSource('c_attn', H, 3 * H), bias: tensor('c_attn.bias', 'F16', [3 * H], randomF16(3 * H)) } as LinearSource, at),
      cProj: await b.uploadLinear(gptqSource('c_proj', H, H), at),
      w1: await b.uploadLinear(gptqSource('w1', H, I), at),
      w2: await b.uploadLinear(gptqSource('w2', H, I), at),
      mlpProj: await b.uploadLinear(gptqSource('mlp.c_proj', I, H), at),
    });
  }
  const lmHead = await b.uploadLinear(denseSource('lm_head', H, s.vocab), at);
  const ln = await b.uploadVector(tensor('ln', 'F16', [H], randomF16(H, 15)), at);
  const maxCtx = Math.max(...ctxs) + 1;
  const kv = Array.from({ length: s.layers }, () => b.kvCreate(maxCtx, s.heads, s.headDim, quant, at));
  const alloc = (n: number) => b.alloc(n, at);
  const [x, xb, qkv, att, out, h1, h2, logits] = [alloc(H), alloc(H), alloc(3 * H), alloc(H), alloc(H), alloc(I), alloc(I), alloc(s.vocab)];
  b.write(x, Float32Array.from({ length: H }, (_, i) => Math.cos(i)));
  const blockBytes = blocks[0].cAttn.bytes + blocks[0].cProj.bytes + blocks[0].w1.bytes + blocks[0].w2.bytes + blocks[0].mlpProj.bytes;
  const tokenBytes = s.layers * blockBytes + lmHead.bytes;
  const layers = (pos: number): void => {
    const q = { buf: qkv, stride: 3 * H, offset: 0 };
    const k = { buf: qkv, stride: 3 * H, offset: H };
    const v = { buf: qkv, stride: 3 * H, offset: 2 * H };
    const rope = { heads: s.heads, headDim: s.headDim, rotaryDim: s.headDim, pos0: pos, base: 10000 };
    for (let l = 0; l < s.layers; l++) {
      const w = blocks[l % distinct];
      b.rmsNorm(xb, x, ln, 1, 1e-6);
      b.matmul(qkv, xb, w.cAttn, 1);
      b.rope(q, 1, rope);
      b.rope(k, 1, rope);
      b.kvWrite(kv[l], k, v, 1, pos);
      b.attention(att, q, kv[l], { rows: 1, heads: s.heads, headDim: s.headDim, kvLen: pos + 1, pos0: pos, scale: 1 / Math.sqrt(s.headDim), lognSeqLength: 2048 });
      b.matmul(out, att, w.cProj, 1);
      b.add(x, out, H);
      b.rmsNorm(xb, x, ln, 1, 1e-6);
      b.matmul(h1, xb, w.w1, 1);
      b.matmul(h2, xb, w.w2, 1);
      b.swiglu(h1, h1, h2, I);
      b.matmul(out, h1, w.mlpProj, 1);
      b.add(x, out, H);
    }
    b.rmsNorm(xb, x, ln, 1, 1e-6);
    b.matmul(logits, xb, lmHead, 1);
  };
  const step = (pos: number): Promise<number> => {
    layers(pos);
    return b.argmax(logits, 0, s.vocab);
  };
  // --record-only N: host cost of recording N steps (nothing is waited for; for CPU profiles)
  const recordOnly = Number(opt('record-only', '0'));
  if (recordOnly > 0) {
    await step(0);
    b.rec.submitEvery = 0;
    const d0 = b.rec.dispatches;
    // bytes allocated per dispatch: young-generation growth over the run (run with --expose-gc and
    // a large --max-semi-space-size so that no collection falls inside; gc_during_run says if one did)
    const young = () => v8.getHeapSpaceStatistics().find((sp) => sp.space_name === 'new_space')?.space_used_size ?? 0;
    let scavenges = 0;
    (globalThis as { gc?: () => void }).gc?.(); // with --expose-gc: start from a collected heap
    await new Promise((r) => setTimeout(r, 0));
    const obs = new PerformanceObserver((list) => (scavenges += list.getEntries().length));
    obs.observe({ entryTypes: ['gc'] });
    const y0 = young();
    const t0 = performance.now();
    const perStep: number[] = [];
    for (let i = 0; i < recordOnly; i++) {
      const s0 = performance.now();
      layers(0);
      perStep.push((performance.now() - s0) * 1000);
    }
    const us = (performance.now() - t0) * 1000;
    const allocPerDispatch = (young() - y0) / (b.rec.dispatches - d0);
    await new Promise((r) => setTimeout(r, 0));
    obs.disconnect();
    // JIT warm-up shows as slower first steps: mean µs per step in tenths of the run
    const tenths = Array.from({ length: 10 }, (_, k) => {
      const part = perStep.slice(Math.floor((k * recordOnly) / 10), Math.floor(((k + 1) * recordOnly) / 10));
      return Math.round(part.reduce((a, c) => a + c, 0) / Math.max(1, part.length));
    });
    console.log(JSON.stringify({ bench: 'record only', steps: recordOnly, us_per_step: us / recordOnly, us_per_dispatch: us / (b.rec.dispatches - d0), us_per_step_by_tenth: tenths, bytes_per_dispatch: Math.round(allocPerDispatch), gc_during_run: scavenges }));
    process.exit(0);
  }
  for (const ctx of ctxs) {
    const pos = Math.max(0, ctx - 1);
    for (let i = 0; i < 3; i++) await step(pos); // warm-up: pipelines, bind groups, JIT
    const d0 = b.rec.dispatches;
    const t0 = performance.now();
    let encodeMs = 0;
    for (let i = 0; i < reps; i++) {
      const e0 = performance.now();
      const p = step(pos);
      encodeMs += performance.now() - e0;
      await p;
    }
    const ms = (performance.now() - t0) / reps;
    const dispatches = (b.rec.dispatches - d0) / reps;
    // host cost of recording alone: steps back to back without waiting for the GPU
    const r0 = performance.now();
    for (let i = 0; i < reps; i++) layers(pos);
    const recordUs = ((performance.now() - r0) * 1000) / reps;
    await b.flush();
    // GPU busy time of one step: every pass timed whole (dispatches back to back)
    let gpuUs = NaN;
    if (b.features.timestamps) {
      await b.takeProfile();
      b.rec.beginRegion('step');
      const p = step(pos);
      b.rec.endRegion();
      await p;
      gpuUs = (await b.takeProfile()).get('step')!.ns / 1000;
    }
    emit({
      bench: `decode step ${s.layers}L kv ${quant}${stepLabel}`,
      shape: `ctx ${ctx}`,
      bytes: tokenBytes,
      us: ms * 1000,
      gbps: tokenBytes / (ms * 1e6),
      source: 'wall',
      note: `${(1000 / ms).toFixed(1)} tok/s, ${dispatches} dispatches, host encode ${((encodeMs / reps) * 1000).toFixed(0)} us (recording alone ${recordUs.toFixed(0)} us), GPU passes ${gpuUs.toFixed(0)} us`,
    });
    if (b.features.timestamps) {
      b.setProfiling(true);
      await b.takeProfile();
      await step(pos);
      const prof = await b.takeProfile();
      b.setProfiling(false);
      let total = 0;
      for (const v of prof.values()) total += v.ns;
      const parts = [...prof.entries()].sort((a, c) => c[1].ns - a[1].ns);
      for (const [label, v] of parts) {
        console.log(JSON.stringify({ bench: 'decode profile', ctx, kernel: label, calls: v.count, us: v.ns / 1000, share: v.ns / total }));
      }
      console.log(JSON.stringify({ bench: 'decode profile', ctx, kernel: 'TOTAL (sum of kernels, 1 dispatch per pass)', us: total / 1000 }));
    }
  }
}

// ---------------------------------------------------------------- main

/**
 * --memory MODEL: peak GPU memory (the backend's allocator) for encoding 2048 tokens and for a
 * context of 8192 (the cache grown as generation grows it, then one decode step), per KV quant.
 */
async function memory(source: string): Promise<void> {
  const t0 = performance.now();
  const model = await loadModel(source, { backend: 'webgpu' });
  const b = model.backend as WebGpuBackend;
  console.log(JSON.stringify({ bench: 'memory', model: source, load_s: (performance.now() - t0) / 1000, weights_mb: b.memoryUsage().weightBytes / 1e6 }));
  const ex = model.executor;
  const ids = Array.from({ length: 2048 }, (_, i) => (i * 7919 + 13) % 151643);
  for (const quant of ['int8', 'f32'] as const) {
    b.resetPeak();
    const kv = ex.newCache({ quant });
    const tp = performance.now();
    ex.prefill(kv, ids);
    await b.argmax(ex.logits, 0, model.config.vocabSize);
    const prefillS = (performance.now() - tp) / 1000;
    const enc = b.memoryUsage().peakBytes;
    // grow in the cache's own chunks, as generation does, up to 8192 slots
    while (kv.length < 8191) {
      kv.reserve(Math.min(256, 8191 - kv.length));
      kv.append(new Array(Math.min(256, 8191 - kv.length)).fill(0));
      await b.flush(); // as a generation does every token: the old stores are destroyed
    }
    ex.decodeOne(kv, 13);
    await b.argmax(ex.logits, 0, model.config.vocabSize);
    const gen = b.memoryUsage().peakBytes;
    console.log(JSON.stringify({ bench: 'memory', model: source, kv: quant, prefill_2048_tok_s: 2048 / prefillS, peak_encode_2048_gb: enc / 1e9, peak_context_8192_gb: gen / 1e9 }));
    kv.release();
    await b.flush();
  }
  await model.dispose();
}

async function main(): Promise<void> {
  if (opt('memory', '')) return memory(opt('memory', ''));
  // Dawn quantizes timestamps to 65.536 µs by default (a fingerprinting defence): turn that off
  const dawnOptions = ['disable-dawn-features=timestamp_quantization'];
  // e.g. --dawn enable-dawn-features=skip_validation,disable_robustness
  if (opt('dawn', '')) dawnOptions.push(opt('dawn', ''));
  const gpu = await nodeGpu({ dawnOptions });
  if (!gpu) throw new Error('no WebGPU (install the webgpu package and a Vulkan driver; --swiftshader for the CPU one)');
  // --variant: the int4 GEMV variant (default: the backend's; T2 = 8 columns per thread)
  const variant = opt('variant', 'default');
  const int4Variant = variant === 'default' ? undefined : variant === 'T2' ? '' : variant.replace(/\+/g, ',');
  const b = (await createWebGpuBackend(gpu, { submitEvery, int4Variant })) as WebGpuBackend;
  console.log(JSON.stringify({ device: b.description, maxBinding: b.maxBinding, timestamps: b.features.timestamps, subgroups: b.features.subgroups, submitEvery }));
  const s14: Shape = { hidden: 5120, heads: 40, headDim: 128, mlp: 13696, vocab: 152064, layers: Number(opt('layers', '40')) };
  const shape: Shape = quick ? { hidden: 256, heads: 2, headDim: 128, mlp: 512, vocab: 4096, layers: Number(opt('layers', '2')) } : s14;
  const H = shape.hidden;
  const I = shape.mlp;
  await warmUp(b, quick ? 200 : 3000);
  if (!flag('skip-kernels')) await kernels(b, shape);
  const ctxs = opt('ctx', quick ? '1,300' : '1,2048').split(',').map(Number);
  // --step-configs sf0:Q1+NODUAL,sf8:Q1 — decode step per (submitFirst, int4 variant), same machine
  const configs = opt('step-configs', '').split(',').filter(Boolean);
  if (configs.length === 0) await decodeStep(b, shape, ctxs, opt('kv', 'f32') as 'f32' | 'int8', quick ? 1 : 3);
  const initial = b.int4Variant;
  for (const cfg of configs) {
    const [sf, v = 'default'] = cfg.split(':');
    b.rec.submitFirst = Number(sf.replace('sf', ''));
    b.int4Variant = v === 'default' ? initial : v.replace(/\+/g, ',');
    stepLabel = ` [${cfg}]`;
    await decodeStep(b, shape, ctxs, opt('kv', 'f32') as 'f32' | 'int8', quick ? 1 : 3);
  }
  table();
  await b.dispose();
}

async function kernels(b: WebGpuBackend, shape: Shape): Promise<void> {
  const H = shape.hidden;
  const I = shape.mlp;
  await probe(b, quick ? 16 << 20 : 1 << 30);
  // --gemv-shapes 5120x153600,512x512: other int4 shapes (large ones show a kernel's steady-state
  // rate without the per-dispatch ramp-up and drain; tiny ones show that fixed cost)
  const custom = opt('gemv-shapes', '').split(',').filter(Boolean).map((s) => s.split('x').map(Number) as [number, number]);
  const shapes: (readonly [string, number, number])[] = custom.length > 0
    ? custom.map(([K, N]) => [`int4 gemv ${K}x${N}`, K, N] as const)
    : [
        ['int4 gemv c_attn', H, 3 * H],
        ['int4 gemv attn.c_proj', H, H],
        ['int4 gemv w1/w2', H, I],
        ['int4 gemv mlp.c_proj', I, H],
      ];
  for (const [label, K, N] of shapes) {
    await gemv(b, label, gptqSource(label, K, N), quick ? 1 : 4);
  }
  if (!flag('skip-lm-head')) await gemv(b, 'f16 gemv lm_head', denseSource('lm_head', H, shape.vocab), 1);
}

function table(): void {
  console.log('\n| bench | shape | MB | µs | GB/s | timing | note |');
  console.log('|---|---|---:|---:|---:|---|---|');
  for (const r of rows) {
    console.log(`| ${r.bench} | ${r.shape} | ${(r.bytes / 1e6).toFixed(1)} | ${r.us.toFixed(1)} | ${r.gbps.toFixed(0)} | ${r.source} | ${r.note ?? ''} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

export type { Backend, Buf };
