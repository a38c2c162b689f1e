/**
 * Peers, side by side (issue F): qwen-rt's CPU backend vs node-llama-cpp (llama.cpp, native CPU
 * build) on the same weights (bench/gguf: GPTQ → Q4_0 losslessly), same thread count, same prompt and
 * generation lengths, in one run. Each engine runs in its own child process (own peak RSS, no
 * interference), engines alternate, and every measurement carries cpu/wall (the machine is shared:
 * with 2 threads a clean run shows ≈ 2).
 *
 *   npm run build && node dist/bench/peers/run.js [--models synthetic:1.8b-int4] [--threads 2]
 *        [--prompt 128] [--generate 32] [--repeat 2] [--engines ours,llama] [--out bench/results/peers-cpu.jsonl]
 *
 * Measurement (identical to bench/run.ts for ours, mirrored for the peer):
 *   prefill tok/s: one forward of a fresh `prompt`-token prompt (ids: (i·7919 + 104729 + 13) mod 151643).
 *   decode tok/s: a fresh 1-token prompt, greedy generation of generate + 1 tokens, timed from the
 *   first generated token to the last (context 1..generate+1).
 * The GGUF is written on first use into bench/out/gguf/ (see bench/gguf/write.ts).
 */
import { parseArgs } from 'node:util';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { cpus } from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'synthetic:1.8b-int4' },
    threads: { type: 'string', default: '2' },
    prompt: { type: 'string', default: '128' },
    generate: { type: 'string', default: '32' },
    repeat: { type: 'string', default: '2' },
    engines: { type: 'string', default: 'ours,llama' },
    // cpu: qwen-rt wasm vs node-llama-cpp CPU; webgpu: qwen-rt WebGPU vs node-llama-cpp's Vulkan build (all layers on the GPU)
    backend: { type: 'string', default: 'cpu' },
    out: { type: 'string', default: 'bench/results/peers-cpu.jsonl' },
    engine: { type: 'string' }, // child mode
    model: { type: 'string' },
    gguf: { type: 'string' },
  },
});
const threads = Number(values.threads);
const promptLen = Number(values.prompt);
const genLen = Number(values.generate);
const gpu = values.backend === 'webgpu';

function ids(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 13) % 151643);
}

interface Measured { engine: string; version: string; load_s: number; prefill_tok_s: number; prefill_cpu_per_wall: number; decode_tok_s: number; decode_cpu_per_wall: number; first_tokens: number[]; peak_rss_mb: number }

/** Times an async section: seconds and process cpu / wall (all threads of the process). */
async function timed<T>(fn: () => Promise<T>): Promise<{ s: number; cpuPerWall: number; value: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { s, cpuPerWall: (c.user + c.system) / 1e6 / s, value };
}

async function runOurs(model: string): Promise<Measured> {
  const { loadModel } = await import('../../bindings/node/index.js');
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'));
  const t0 = performance.now();
  const m = await loadModel(model, { backend: gpu ? 'webgpu' : 'cpu', threads });
  const load = (performance.now() - t0) / 1000;
  const greedy = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[] };
  m.reset();
  const pre = await timed(() => m.forward(ids(promptLen, 1)));
  m.reset();
  const toks: number[] = [];
  let t1 = 0;
  let c1 = process.cpuUsage();
  for await (const id of m.generate(ids(1, 7), { ...greedy, maxNewTokens: genLen + 1 })) {
    if (toks.length === 0) { t1 = performance.now(); c1 = process.cpuUsage(); }
    toks.push(id);
  }
  const s = (performance.now() - t1) / 1000;
  const c = process.cpuUsage(c1);
  const description = m.backend.description; // (read before dispose: the pool reports 1 thread after)
  await m.dispose();
  return {
    engine: gpu ? 'qwen-rt webgpu' : 'qwen-rt cpu (wasm simd)', version: `qwen-rt ${pkg.version} (${description})`, load_s: load,
    prefill_tok_s: promptLen / pre.s, prefill_cpu_per_wall: pre.cpuPerWall,
    decode_tok_s: genLen / s, decode_cpu_per_wall: (c.user + c.system) / 1e6 / s,
    first_tokens: toks.slice(0, 8), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

async function runLlama(gguf: string): Promise<Measured> {
  // installed on demand (`npm run bench:peers:install`), not a project dependency: ~700 MB of binaries
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const { getLlama, LlamaLogLevel } = (await import('node-llama-cpp' as string)) as any;
  const pkg = JSON.parse(readFileSync(new URL('../../../node_modules/node-llama-cpp/package.json', import.meta.url), 'utf8'));
  const llama = await getLlama({ gpu: gpu ? 'vulkan' : false, build: 'never', logLevel: LlamaLogLevel.error });
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: gpu ? 'max' : 0 });
  const ctx = await model.createContext({ contextSize: Math.max(512, promptLen + genLen + 8), threads, batchSize: Math.max(512, promptLen) });
  const load = (performance.now() - t0) / 1000;
  let seq = ctx.getSequence();
  const pre = await timed(() => seq.evaluateWithoutGeneratingNewTokens(ids(promptLen, 1) as never));
  seq.dispose();
  seq = ctx.getSequence();
  const toks: number[] = [];
  let t1 = 0;
  let c1 = process.cpuUsage();
  for await (const id of seq.evaluate(ids(1, 7) as never, { temperature: 0 })) {
    if (toks.length === 0) { t1 = performance.now(); c1 = process.cpuUsage(); }
    toks.push(id as number);
    if (toks.length === genLen + 1) break;
  }
  const s = (performance.now() - t1) / 1000;
  const c = process.cpuUsage(c1);
  await ctx.dispose();
  await model.dispose();
  return {
    engine: gpu ? 'node-llama-cpp (llama.cpp vulkan)' : 'node-llama-cpp (llama.cpp cpu)', version: `node-llama-cpp ${pkg.version}, llama.cpp ${llama.llamaCppRelease?.release ?? '?'}${gpu ? `, ${(await llama.getGpuDeviceNames()).join('+')}` : ''}`, load_s: load,
    prefill_tok_s: promptLen / pre.s, prefill_cpu_per_wall: pre.cpuPerWall,
    decode_tok_s: genLen / s, decode_cpu_per_wall: (c.user + c.system) / 1e6 / s,
    first_tokens: toks.slice(0, 8), peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

if (values.engine) {
  // child: one engine, one JSON line on stdout
  const r = values.engine === 'ours' ? await runOurs(values.model!) : await runLlama(values.gguf!);
  process.stdout.write('\n@@' + JSON.stringify(r) + '\n');
  process.exit(0);
}

// ---- parent: alternate engines, collect, print ratios ----
const { writeGgufFor, ggufPathFor } = await import('../gguf/write.js');
const self = fileURLToPath(import.meta.url);
const engines = values.engines!.split(',');
const date = new Date().toISOString();
mkdirSync(dirname(values.out!), { recursive: true });
const rows: (Measured & { model: string; rep: number })[] = [];
for (const model of values.models!.split(',')) {
  const gguf = ggufPathFor(model);
  if (engines.includes('llama') && !existsSync(gguf)) {
    console.error(`writing ${gguf} …`);
    await writeGgufFor(model, gguf);
  }
  for (let rep = 0; rep < Number(values.repeat); rep++) {
    for (const engine of engines) {
      const out = execFileSync(process.execPath, [self, '--engine', engine, '--backend', values.backend!, '--model', model, '--gguf', gguf, '--threads', String(threads), '--prompt', String(promptLen), '--generate', String(genLen)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
      const line = out.split('\n').find((l) => l.startsWith('@@'));
      if (!line) throw new Error(`${engine}: no result line`);
      const r = { model, rep, ...(JSON.parse(line.slice(2)) as Measured) };
      rows.push(r);
      const row = { kind: 'peer', ...r, backend: values.backend, threads, prompt_tokens: promptLen, generate: genLen, gguf: engine === 'llama' ? gguf : undefined, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, date };
      console.log(JSON.stringify(row));
      appendFileSync(values.out!, JSON.stringify(row) + '\n');
    }
  }
}

const best = (m: string, e: string, k: 'prefill_tok_s' | 'decode_tok_s') => Math.max(...rows.filter((r) => r.model === m && r.engine.startsWith(e)).map((r) => r[k]));
console.log(`\n${threads} threads, prompt ${promptLen}, generate ${genLen}; ${cpus()[0]?.model} (${cpus().length} cores), Node ${process.version}`);
console.log('| model | engine | rep | load s | prefill tok/s | cpu/wall | decode tok/s | cpu/wall | peak RSS MB | first tokens |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.model} | ${r.engine} | ${r.rep} | ${r.load_s.toFixed(1)} | ${r.prefill_tok_s.toFixed(1)} | ${r.prefill_cpu_per_wall.toFixed(2)} | ${r.decode_tok_s.toFixed(2)} | ${r.decode_cpu_per_wall.toFixed(2)} | ${r.peak_rss_mb} | ${r.first_tokens.slice(0, 4).join(',')} |`);
}
for (const model of values.models!.split(',')) {
  if (!engines.includes('ours') || !engines.includes('llama')) break;
  const ratio = (k: 'prefill_tok_s' | 'decode_tok_s') => best(model, 'qwen-rt', k) / best(model, 'node-llama-cpp', k);
  const line = { kind: 'peer-ratio', model, backend: values.backend, peer: 'node-llama-cpp', threads, prompt_tokens: promptLen, generate: genLen, prefill_ours_over_peer: +ratio('prefill_tok_s').toFixed(3), decode_ours_over_peer: +ratio('decode_tok_s').toFixed(3), date };
  console.log(`ours/node-llama-cpp (best of ${values.repeat}) ${model}: prefill ${line.prefill_ours_over_peer}, decode ${line.decode_ours_over_peer}`);
  appendFileSync(values.out!, JSON.stringify(line) + '\n');
}
