/**
 * WebGPU vs CPU parity on synthetic checkpoints (for machines the fixtures do not travel to, e.g.
 * the H100): the same prompts through both backends, last-position logits compared (top-1 and
 * max |Δ| / max |logit|), and a greedy decode compared token by token — on WebGPU twice: with the
 * embedding table where the backend puts it and with it in host memory (the two ways a greedy
 * step is chained to the token before it).
 *
 *   node dist/bench/parity.js [--models synthetic:small-int4,synthetic:tiny-bf16] [--steps 32]
 */
import { parseArgs } from 'node:util';
import { loadModel } from '../bindings/node/index.js';
import { nodeGpu } from '../bindings/node/gpu.js';
import { createWebGpuBackend } from '../src/backend/webgpu/index.js';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'synthetic:small-int4,synthetic:small-bf16,synthetic:1.8b-int4' },
    steps: { type: 'string', default: '32' },
  },
});
const steps = Number(values.steps);
const prompts = [[9707], Array.from({ length: 40 }, (_, i) => (i * 7919 + 11) % 151643), Array.from({ length: 100 }, (_, i) => (i * 104729 + 5) % 151643)];
let failures = 0;

for (const source of values.models!.split(',')) {
  const cpu = await loadModel(source, { backend: 'cpu' });
  const gpu = await loadModel(source, { backend: 'webgpu' });
  for (const ids of prompts) {
    cpu.reset();
    gpu.reset();
    const a = await cpu.forward(ids);
    const b = await gpu.forward(ids);
    let maxAbs = 0, maxDiff = 0, ta = 0, tb = 0;
    for (let i = 0; i < a.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i]));
      maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      if (a[i] > a[ta]) ta = i;
      if (b[i] > b[tb]) tb = i;
    }
    const ok = ta === tb && maxDiff <= 1e-3 * maxAbs;
    if (!ok) failures++;
    console.log(JSON.stringify({ check: 'logits', model: source, gpu: gpu.backend.description, prompt: ids.length, top1_equal: ta === tb, max_diff_of_max: maxDiff / maxAbs, ok }));
  }
  const opts = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[], maxNewTokens: steps };
  const ga: number[] = [], gb: number[] = [];
  for await (const id of cpu.generate(prompts[1], opts)) ga.push(id);
  for await (const id of gpu.generate(prompts[1], opts)) gb.push(id);
  await gpu.dispose();
  const hostBackend = await createWebGpuBackend((await nodeGpu())!, { hostEmbeddingBytes: 0, allowSoftwareAdapter: true });
  const host = await loadModel(source, { backend: hostBackend });
  const gh: number[] = [];
  for await (const id of host.generate(prompts[1], opts)) gh.push(id);
  for (const [embedding, got] of [['default', gb], ['host memory', gh]] as const) {
    let same = 0;
    while (same < ga.length && ga[same] === got[same]) same++;
    if (same !== ga.length) failures++;
    console.log(JSON.stringify({ check: 'greedy', model: source, embedding, steps, identical_prefix: same, ok: same === ga.length }));
  }
  await cpu.dispose();
  await host.dispose();
}
console.log(failures === 0 ? 'parity: all checks passed' : `parity: ${failures} checks FAILED`);
process.exitCode = failures ? 1 : 0;
