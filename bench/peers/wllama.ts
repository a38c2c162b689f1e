/**
 * @wllama/wllama (llama.cpp compiled to wasm by emscripten) on the same GGUF, in headless Chromium.
 *
 * It cannot run in Node 20: wllama 3.x's wasm uses memory64 (`address: "i64"`) and JSPI
 * (`WebAssembly.Suspending` / `WebAssembly.promising`), which Node 20's V8 lacks (no flag gives the
 * current JSPI API). Debian's Chromium (156) has both, so it runs there: served by demo/serve.mjs
 * (COOP/COEP → crossOriginIsolated → wasm threads), model passed as a Blob, CPU only.
 *
 *   npm run build && node dist/bench/peers/wllama.js [--models synthetic:tiny-int4,synthetic:1.8b-int4]
 *        [--threads 2] [--prompt 128] [--generate 32] [--repeat 2] [--out bench/results/peers-wllama.jsonl]
 *
 * Same measurement as bench/peers/run.ts: prefill = a fresh `prompt`-token prompt,
 * decode = a fresh 1-token prompt then generate + 1 greedy tokens; speeds from llama.cpp's own
 * timings (prompt_per_second / predicted_per_second) and, as a check, the wall time in the page.
 * Prompts are text here: wllama's completion glue fails on a token-id array prompt ("Invalid typed
 * array length" from the worker), so the prompt is " hello" × prompt (one token each; the row's
 * timings.prefill.prompt_n confirms the count). Speed does not depend on which ids are fed.
 */
import { parseArgs } from 'node:util';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { cpus, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { ggufPathFor, writeGgufFor } from '../gguf/write.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'synthetic:1.8b-int4' },
    threads: { type: 'string', default: '2' },
    prompt: { type: 'string', default: '128' },
    generate: { type: 'string', default: '32' },
    repeat: { type: 'string', default: '2' },
    out: { type: 'string', default: 'bench/results/peers-wllama.jsonl' },
  },
});
const threads = Number(values.threads);
const promptLen = Number(values.prompt);
const genLen = Number(values.generate);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

const { startServer } = (await import(new URL('../../../demo/serve.mjs', import.meta.url).href)) as { startServer: (o: unknown) => Promise<{ url: string; close(): Promise<void> }> };
const wllamaVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/@wllama/wllama/package.json'), 'utf8')).version as string;
const server = await startServer({ port: 0, files: { '/wllama-bench.html': '<!doctype html><meta charset="utf-8"><title>wllama bench</title>' } });
const dir = mkdtempSync(join(tmpdir(), 'qwen-rt-wllama-'));
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const date = new Date().toISOString();
mkdirSync(dirname(values.out!), { recursive: true });
try {
  for (const model of values.models!.split(',')) {
    const gguf = ggufPathFor(model);
    if (!existsSync(gguf)) await writeGgufFor(model, gguf);
    for (let rep = 0; rep < Number(values.repeat); rep++) {
      const page = await ctx.newPage();
      const messages: string[] = [];
      page.on('console', (m) => messages.push(m.text()));
      page.on('pageerror', (e) => messages.push(`pageerror: ${e.message}`));
      await page.goto(`${server.url}/wllama-bench.html`);
      const c0 = process.cpuUsage(); // (the browser's threads are not ours: cpu/wall is not available here)
      void c0;
      try {
        const r = await page.evaluate(
          async ({ threads, prompt, decodePrompt, gen, ggufUrl }: { threads: number; prompt: number[] | string; decodePrompt: number[] | string; gen: number; ggufUrl: string }) => {
            const { Wllama } = await import('/node_modules/@wllama/wllama/esm/index.js' as string);
            const w = new Wllama({ default: '/node_modules/@wllama/wllama/esm/wasm/wllama.wasm' }, { suppressNativeLog: true });
            const t0 = performance.now();
            const blob = await (await fetch(ggufUrl)).blob();
            await w.loadModel([blob], { n_threads: threads, n_ctx: 512, n_batch: 512, n_gpu_layers: 0, warmup: false });
            const load = (performance.now() - t0) / 1000;
            const base = (globalThis as any).__wbase ?? { temperature: 0 };
            const tp = performance.now();
            const r1 = await w.createCompletion({ ...base, prompt, max_tokens: 1 });
            const prefillWall = (performance.now() - tp) / 1000;
            const td = performance.now();
            const r2 = await w.createCompletion({ ...base, prompt: decodePrompt, max_tokens: gen + 1, ignore_eos: true });
            const decodeWall = (performance.now() - td) / 1000;
            const out = { load, multithread: w.isMultithread(), nThreads: w.getNumThreads(), version: (w.constructor as any).getLibllamaVersion?.(), t1: r1.timings, t2: r2.timings, prefillWall, decodeWall, tokens: (r2 as any).tokens ?? (r2 as any).choices?.[0]?.tokens, isolated: crossOriginIsolated };
            await w.exit();
            return out;
          },
          { threads, prompt: ' hello'.repeat(promptLen), decodePrompt: ' hello', gen: genLen, ggufUrl: `/${gguf}` },
        );
        const row = {
          kind: 'peer', model, rep, engine: 'wllama (llama.cpp wasm, headless Chromium)', version: `@wllama/wllama ${wllamaVersion}, libllama ${r.version ?? '?'}, Chromium`,
          load_s: r.load, prefill_tok_s: r.t1?.prompt_per_second ?? promptLen / r.prefillWall, prefill_cpu_per_wall: null,
          decode_tok_s: r.t2?.predicted_per_second ?? genLen / r.decodeWall, decode_cpu_per_wall: null,
          prefill_wall_tok_s: promptLen / r.prefillWall, decode_wall_tok_s: (genLen + 1) / r.decodeWall,
          first_tokens: Array.isArray(r.tokens) ? r.tokens.slice(0, 8) : [], multithread: r.multithread, n_threads: r.nThreads, cross_origin_isolated: r.isolated,
          timings: { prefill: r.t1, decode: r.t2 }, threads, prompt_tokens: promptLen, generate: genLen, gguf, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, date,
        };
        console.log(JSON.stringify(row));
        appendFileSync(values.out!, JSON.stringify(row) + '\n');
      } catch (e) {
        console.error(`wllama ${model} failed: ${(e as Error).message}\n${messages.slice(-20).join('\n')}`);
        process.exitCode = 1;
      }
      await page.close();
    }
  }
} finally {
  await ctx.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
