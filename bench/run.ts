/**
 * npm run bench — end-to-end model benchmarks: load, prefill and decode speed, memory, bytes read
 * per token and the fraction of the bandwidth roofline measured by a read probe in the same run.
 *
 *   node dist/bench/run.js [--backend cpu|webgpu] [--models synthetic:1.8b-int4,…] [--prompt 512]
 *                          [--generate 32] [--context 0,2048] [--threads N] [--out bench/out/run.jsonl]
 *                          [--long 8192] [--kv f32|int8]
 *
 * Prints one JSON line per row and a table at the end.
 */
import { parseArgs } from 'node:util';
import { constants as perf } from 'node:perf_hooks';
import { gcBetween, watchGc } from './gc.js';
import { appendJsonl } from './jsonl.js';
import { cpus } from 'node:os';
import { loadModel, nodePlatform } from '../bindings/node/index.js';
import { createWebGpuBackend } from '../src/backend/webgpu/index.js';
import type { PatientPolling } from '../bindings/node/patientPolling.js';
import type { QwenModel } from '../src/model/model.js';
import { readProbe } from './probe.js';
import type { WebGpuBackend } from '../src/backend/webgpu/backend.js';
import { DEFAULT_INT4_VARIANT } from '../src/backend/webgpu/gemvInt4.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' },
    models: { type: 'string', default: 'synthetic:1.8b-int4' },
    prompt: { type: 'string', default: '512' },
    generate: { type: 'string', default: '32' },
    context: { type: 'string', default: '0' },
    long: { type: 'string', default: '0' },
    kv: { type: 'string', default: 'f32' },
    threads: { type: 'string' },
    out: { type: 'string', default: 'bench/out/run.jsonl' },
    'step-breakdown': { type: 'boolean', default: false },
    // WebGPU: decode once per value of Recorder.submitFirst (A/B in one process), e.g. 8,32
    'submit-first': { type: 'string', default: '' },
    'stall-trace': { type: 'string', default: '0' },
    // WebGPU: decode with WebGpuOptions.pacedReadback off and on (A/B in one process), e.g. 0,1
    paced: { type: 'string', default: '' },
    // WebGPU: how paced waits end (Recorder.paceMode), A/B in one process, e.g. early,near
    'pace-mode': { type: 'string', default: '' },
    // WebGPU in Node: patient polling's throttle (ms) per value (A/B in one process), e.g. 0,0.025
    'poll-throttle': { type: 'string', default: '' },
    // WebGPU: decode per one-row int4 GEMV variant (WebGpuOptions.int4Variant; '+' for its commas)
    'int4-variant': { type: 'string', default: '' },
    // WebGPU: decode per WebGpuOptions.attnKeyLanes value (A/B in one process), e.g. 1,4
    'attn-lanes': { type: 'string', default: '' },
    // WebGPU: decode attention with WebGpuOptions.subgroups off and on (A/B in one process), e.g. 0,1
    subgroups: { type: 'string', default: '' },
    // WebGPU: every embedding table in GPU memory (WebGpuOptions.hostEmbeddingBytes = Infinity)
    'gpu-embedding': { type: 'boolean', default: false },
    // WebGPU: a table too large for the GPU at load is copied to it during decode (LoadOptions.gpuEmbeddingCopy)
    'embedding-copy': { type: 'boolean', default: false },
  },
});

const backend = values.backend as 'cpu' | 'webgpu';
const threads = values.threads ? Number(values.threads) : undefined;
const promptLen = Number(values.prompt);
const genLen = Number(values.generate);
const contexts = values.context!.split(',').map(Number);
/** Tokens of one long generation from a 1-token prompt (average tok/s over all of it); 0 = skip. */
const longLen = Number(values.long);
const kvQuant = values.kv as 'f32' | 'int8';

/**
 * WebGPU settings one process can A/B: `--<flag> a,b` decodes once per value (several flags: per
 * combination, in this order), and each row names the value under `out`.
 */
const knobs: { flag: string; out: string; set: (b: WebGpuBackend, v: string) => void; show: (v: string) => number | string | boolean }[] = [
  { flag: 'submit-first', out: 'submit_first', set: (b, v) => (b.rec.submitFirst = Number(v)), show: Number },
  { flag: 'paced', out: 'paced_readback', set: (b, v) => (b.rec.pacedReadback = v === '1'), show: (v) => v === '1' },
  { flag: 'attn-lanes', out: 'attn_key_lanes', set: (b, v) => (b.attnKeyLanes = v === '4' ? 4 : 1), show: Number },
  { flag: 'subgroups', out: 'subgroups', set: (b, v) => (b.useSubgroups = v === '1'), show: (v) => v === '1' },
  { flag: 'pace-mode', out: 'pace_mode', set: (b, v) => (b.rec.paceMode = v as 'early' | 'near'), show: String },
  // (the int4 GEMV variant, '+' for its commas: --int4-variant default,Q1+RB2+GS64+PF+SU)
  { flag: 'int4-variant', out: 'int4_variant', set: (b, v) => (b.int4Variant = v === 'default' ? DEFAULT_INT4_VARIANT : v.replace(/\+/g, ',')), show: String },
  // (Node's patient polling: Dawn's ticks at most one per this many ms before its patience runs out)
  { flag: 'poll-throttle', out: 'poll_throttle_ms', set: (b, v) => ((b.rec.waitHooks as PatientPolling).throttleMs = Number(v)), show: Number },
];

function ids(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 13) % 151643);
}

const greedy = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[] };

/**
 * Decode tok/s after a prefill of `context` tokens (context 0 = a one-token prompt), and the
 * median / p90 / largest interval between tokens (outliers such as GC pauses show as mean ≫ p50).
 * The three largest intervals are listed as [token index, ms, ms of GC pauses inside it] (GC
 * pauses from a PerformanceObserver on 'gc' entries), with the count and sum of all GC pauses.
 */
async function decodeSpeed(model: QwenModel, context: number, n: number) {
  model.reset();
  const { gcs, obs } = watchGc();
  // Dawn's Node binding polls the device from setImmediate while a map is pending: count the turns
  // (with paceMode 'near' the backend's own waiting turns count too)
  const g = globalThis as { setImmediate: (...a: unknown[]) => unknown };
  const original = g.setImmediate;
  let turns = 0;
  g.setImmediate = (...a: unknown[]) => {
    turns++;
    return original(...a);
  };
  const rec = backend === 'webgpu' ? (model.backend as WebGpuBackend).rec : undefined;
  const ps0 = rec ? { ...rec.paceStats } : undefined;
  const times: number[] = [];
  for await (const _ of model.generate(ids(Math.max(1, context), 7), { ...greedy, maxNewTokens: n + 1 })) times.push(performance.now());
  g.setImmediate = original;
  await new Promise((r) => setTimeout(r, 10)); // gc entries are delivered asynchronously
  obs.disconnect();
  const inside = gcs.filter((g) => g.start >= times[0] && g.start < times[n]);
  const inOrder = times.slice(1).map((t, i) => t - times[i]);
  const gaps = inOrder.slice().sort((a, b) => a - b);
  const q = (f: number) => +gaps[Math.min(gaps.length - 1, Math.floor(f * gaps.length))].toFixed(3);
  const top = inOrder
    .map((ms, i) => [i, +ms.toFixed(2), gcBetween(gcs, times[i], times[i + 1])])
    .sort((a, b) => (b[1] as number) - (a[1] as number))
    .slice(0, 3);
  return {
    tokS: (n * 1000) / (times[n] - times[0]),
    p50: q(0.5),
    p90: q(0.9),
    max: q(1),
    maxAt: inOrder.indexOf(gaps[gaps.length - 1]),
    top,
    gcCount: inside.length,
    gcMs: +inside.reduce((a, g) => a + g.ms, 0).toFixed(2),
    gcMajor: inside.filter((g) => g.kind === perf.NODE_PERFORMANCE_GC_MAJOR).length,
    pollTurns: Math.round(turns / n),
    pace: rec && ps0 ? { waits: rec.paceStats.waits - ps0.waits, slept_ms: +((rec.paceStats.sleptMs - ps0.sleptMs) / n).toFixed(3), map_ms: +((rec.paceStats.mapMs - ps0.mapMs) / n).toFixed(3) } : undefined,
  };
}

/**
 * WebGPU: where one decode step's time goes, on the executor directly (no generation loop): host
 * time to record the step, wall time of record + GPU + argmax readback, and GPU busy time
 * (timestamp region over the step). Medians of 7.
 */
async function stepBreakdown(model: QwenModel, context: number): Promise<Record<string, number>> {
  const b = model.backend as WebGpuBackend;
  const ex = model.executor;
  const V = model.config.vocabSize;
  const kv = ex.newCache({ quant: kvQuant });
  try {
    ex.prefill(kv, ids(Math.max(1, context), 7));
    await b.argmax(ex.logits, 0, V);
    const rec: number[] = [];
    const wall: number[] = [];
    const d0 = b.rec.dispatches;
    const gpu: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      ex.decodeOne(kv, 13);
      const t1 = performance.now();
      await b.argmax(ex.logits, 0, V);
      rec.push(t1 - t0);
      wall.push(performance.now() - t0);
    }
    const perStep = b.rec.dispatches - d0;
    if (b.features.timestamps) {
      for (let i = 0; i < 7; i++) {
        await b.takeProfile();
        b.rec.beginRegion('step');
        ex.decodeOne(kv, 13);
        b.rec.endRegion();
        await b.argmax(ex.logits, 0, V);
        gpu.push((await b.takeProfile()).get('step')!.ns / 1e6);
      }
    }
    // the generation loop's shape without its machinery: token → next step enqueued → event loop
    const loop = async (yieldEach: boolean) => {
      let id = await b.argmax(ex.logits, 0, V);
      const t0 = performance.now();
      for (let i = 0; i < 16; i++) {
        ex.decodeOne(kv, id % 1000);
        if (yieldEach) await new Promise((r) => setImmediate(r));
        id = await b.argmax(ex.logits, 0, V);
      }
      return (performance.now() - t0) / 16;
    };
    const loopMs = await loop(false);
    const loopImmMs = await loop(true);
    // greedy generation's shape: the next step chained to a device token before its id is read;
    // host time recording (argmaxToken + decodeOne) and waiting for the id, per step
    const chain = async (steps: number) => {
      let t = b.argmaxToken(ex.logits, 0, V);
      let record = 0;
      let wait = 0;
      const d0 = b.rec.drainMs;
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) {
        const a = performance.now();
        ex.decodeOne(kv, t);
        const next = b.argmaxToken(ex.logits, 0, V);
        const c = performance.now();
        kv.resolveLast(await b.readToken(t));
        wait += performance.now() - c;
        record += c - a;
        t = next;
      }
      await b.readToken(t);
      return { ms: (performance.now() - t0) / steps, record: record / steps, wait: wait / steps, drain: (b.rec.drainMs - d0) / steps };
    };
    await chain(8);
    const ch = await chain(32);
    // --stall-trace N: N chained steps; every step over 20 ms is printed with where its time went
    const traceSteps = Number(values['stall-trace'] || 0);
    if (traceSteps > 0) {
      const { gcs, obs } = watchGc();
      const stalls: { i: number; a: number; e: number; line: Record<string, number | string> }[] = [];
      let t = b.argmaxToken(ex.logits, 0, V);
      for (let i = 0; i < traceSteps; i++) {
        const a = performance.now();
        const d0 = b.rec.drainMs;
        ex.decodeOne(kv, t);
        const next = b.argmaxToken(ex.logits, 0, V);
        const c = performance.now();
        kv.resolveLast(await b.readToken(t));
        const e = performance.now();
        if (e - a > 20) stalls.push({ i, a, e, line: { stall_step: i, ms: +(e - a).toFixed(2), record_ms: +(c - a).toFixed(2), wait_ms: +(e - c).toFixed(2), release_ms: +(b.rec.drainMs - d0).toFixed(2) } });
        t = next;
        if (kv.length > 1000) kv.truncate(Math.max(1, context));
      }
      await b.readToken(t);
      await new Promise((r) => setTimeout(r, 10));
      obs.disconnect();
      for (const st of stalls) console.log(JSON.stringify({ ...st.line, gc: gcBetween(gcs, st.a, st.e) }));
      console.log(JSON.stringify({ stall_trace_steps: traceSteps, stalls: stalls.length, gc_pauses: gcs.length, gc_ms: +gcs.reduce((x, g) => x + g.ms, 0).toFixed(1), gc_major: gcs.filter((g) => g.kind === perf.NODE_PERFORMANCE_GC_MAJOR).length }));
    }
    // where the GPU idles in the chained loop: every pass timed (one region per step), then the
    // gaps between passes of consecutive steps (the token boundary) and inside a step (chunk
    // boundaries), per first-chunk size after a wait (Recorder.submitFirst)
    const gpuIdle = async (submitFirst: number) => {
      const idle = { boundary: [] as number[], inside: [] as number[], busy: [] as number[] };
      if (!b.features.timestamps) return idle;
      const sf0 = b.rec.submitFirst;
      b.rec.submitFirst = submitFirst;
      await b.takeProfile();
      b.rec.passLog = [];
      let t = b.argmaxToken(ex.logits, 0, V);
      for (let i = 0; i < 24; i++) {
        b.rec.beginRegion(`step ${i}`);
        ex.decodeOne(kv, t);
        const next = b.argmaxToken(ex.logits, 0, V);
        b.rec.endRegion();
        kv.resolveLast(await b.readToken(t));
        t = next;
      }
      await b.readToken(t);
      await b.takeProfile();
      const passes = b.rec.passLog.sort((x, y) => x.begin - y.begin);
      b.rec.passLog = null;
      b.rec.submitFirst = sf0;
      const inside = new Map<string, number>();
      const busy = new Map<string, number>();
      for (let i = 0; i < passes.length; i++) {
        const p = passes[i];
        busy.set(p.label, (busy.get(p.label) ?? 0) + (p.end - p.begin) / 1e6);
        if (i === 0) continue;
        const gap = (p.begin - passes[i - 1].end) / 1e6;
        if (p.label !== passes[i - 1].label) idle.boundary.push(gap);
        else inside.set(p.label, (inside.get(p.label) ?? 0) + gap);
      }
      idle.inside = [...inside.values()];
      idle.busy = [...busy.values()];
      return idle;
    };
    const idleBy: Record<string, number> = {};
    const med = (a: number[]) => (a.length ? +a.sort((x, y) => x - y)[a.length >> 1].toFixed(3) : NaN);
    for (const sf of [b.rec.submitFirst, 2, 32]) {
      const idle = await gpuIdle(sf);
      const tag = sf === b.rec.submitFirst ? '' : `_sf${sf}`;
      idleBy[`chain_gpu_busy_ms${tag}`] = med(idle.busy);
      idleBy[`chain_gpu_idle_boundary_ms${tag}`] = med(idle.boundary);
      idleBy[`chain_gpu_idle_inside_ms${tag}`] = med(idle.inside);
    }
    return {
      step_record_ms: med(rec),
      step_wall_ms: med(wall),
      step_gpu_ms: med(gpu),
      step_dispatches: perStep / 7,
      loop_ms: +loopMs.toFixed(3),
      loop_set_immediate_ms: +loopImmMs.toFixed(3),
      chain_ms: +ch.ms.toFixed(3),
      chain_record_ms: +ch.record.toFixed(3),
      chain_wait_ms: +ch.wait.toFixed(3),
      chain_release_ms: +ch.drain.toFixed(3),
      ...idleBy,
    };
  } finally {
    kv.release();
  }
}

/** The backend 'webgpu' gives in Node, with the embedding table on the GPU whatever its size. */
async function gpuEmbeddingBackend() {
  const gpu = await nodePlatform.gpu!();
  if (!gpu) throw new Error('--gpu-embedding: no WebGPU');
  return createWebGpuBackend(gpu, { pacedReadback: true, waitHooks: nodePlatform.gpuWaitHooks?.(), hostEmbeddingBytes: Infinity });
}

const rows: Record<string, unknown>[] = [];
function emit(row: Record<string, unknown>) {
  appendJsonl(values.out!, { ...row, date: new Date().toISOString() });
  rows.push(row);
}

const probe = await readProbe(backend, threads);
emit({ kind: 'probe', backend, threads: probe.threads, read_gb_s: probe.gbPerSecond, device: probe.device });

for (const source of values.models!.split(',')) {
  const t0 = performance.now();
  const chosen = backend === 'webgpu' && values['gpu-embedding'] ? await gpuEmbeddingBackend() : backend;
  const model = await loadModel(source, { backend: chosen, threads, kvCache: { quant: kvQuant }, gpuEmbeddingCopy: values['embedding-copy'] });
  const loadS = (performance.now() - t0) / 1000;
  // prefill: a fresh prompt of promptLen tokens
  model.reset();
  const tp = performance.now();
  await model.forward(ids(promptLen, 1));
  const prefill = (promptLen * 1000) / (performance.now() - tp);
  // GPU memory peak since loading, taken before any decode: the encode figure of the issue's
  // memory floor (with --embedding-copy, decode later adds the table's copy)
  const prefillPeakMb = Math.round(model.backend.memoryUsage().peakBytes / 1e6);
  // the decode runs: every context × every combination of the A/B knobs given
  let combos: Record<string, string>[] = [{}];
  for (const k of knobs) {
    const given = values[k.flag as keyof typeof values] as string;
    if (given) combos = combos.flatMap((c) => given.split(',').map((v) => ({ ...c, [k.flag]: v })));
  }
  const runs = contexts.flatMap((context) => combos.map((combo) => [context, combo] as const));
  for (const [context, combo] of runs) {
    const settings: Record<string, number | string | boolean> = {};
    for (const k of knobs) {
      if (!(k.flag in combo)) continue;
      k.set(model.backend as WebGpuBackend, combo[k.flag]);
      settings[k.out] = k.show(combo[k.flag]);
    }
    const decode = await decodeSpeed(model, context, genLen);
    const bytes = model.bytesPerToken;
    const breakdown = backend === 'webgpu' && values['step-breakdown'] ? await stepBreakdown(model, context) : {};
    emit({
      kind: 'model',
      model: source,
      backend: model.backend.description,
      load_s: +loadS.toFixed(2),
      kv: kvQuant,
      prompt_tokens: promptLen,
      prefill_tok_s: +prefill.toFixed(2),
      prefill_peak_mb: prefillPeakMb,
      context,
      ...settings,
      decode_tok_s: +decode.tokS.toFixed(3),
      decode_p50_ms: decode.p50,
      decode_p90_ms: decode.p90,
      decode_max_ms: decode.max,
      decode_max_at: decode.maxAt,
      decode_top_gaps: decode.top,
      decode_gc_count: decode.gcCount,
      decode_gc_ms: decode.gcMs,
      decode_gc_major: decode.gcMajor,
      decode_poll_turns_per_token: decode.pollTurns,
      decode_pace_per_token: decode.pace,
      bytes_per_token: bytes,
      effective_gb_s: +((decode.tokS * bytes) / 1e9).toFixed(2),
      roofline_fraction: +((decode.tokS * bytes) / 1e9 / probe.gbPerSecond).toFixed(3),
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      backend_peak_mb: Math.round(model.backend.memoryUsage().peakBytes / 1e6),
      cpu: cpus()[0]?.model,
      ...breakdown,
    });
  }
  if (longLen > 0) {
    model.reset();
    const t0 = performance.now();
    let n = 0;
    for await (const _ of model.generate([9707], { ...greedy, maxNewTokens: longLen })) n++;
    const avg = (n * 1000) / (performance.now() - t0);
    emit({
      kind: 'long',
      model: source,
      backend: model.backend.description,
      kv: kvQuant,
      generated_tokens: n,
      average_tok_s: +avg.toFixed(2),
      backend_peak_mb: Math.round(model.backend.memoryUsage().peakBytes / 1e6),
    });
  }
  await model.dispose();
}

console.log('\n| model | backend | prefill tok/s | context | decode tok/s | MB/token | GB/s | roofline | peak RSS MB |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows.filter((r) => r.kind === 'model')) {
  console.log(
    `| ${r.model} | ${r.backend} | ${r.prefill_tok_s} | ${r.context} | ${r.decode_tok_s} | ${((r.bytes_per_token as number) / 1e6).toFixed(0)} | ${r.effective_gb_s} | ${((r.roofline_fraction as number) * 100).toFixed(0)}% | ${r.peak_rss_mb} |`,
  );
}
for (const r of rows.filter((r) => r.kind === 'long')) {
  console.log(`${r.model}: ${r.generated_tokens} tokens generated at ${r.average_tok_s} tok/s on average (KV ${r.kv}), backend peak ${r.backend_peak_mb} MB`);
}
console.log(`read probe: ${probe.gbPerSecond.toFixed(1)} GB/s (${backend}, ${probe.threads} threads, ${probe.device})`);
