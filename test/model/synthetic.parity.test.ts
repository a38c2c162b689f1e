/**
 * Beyond the fixtures: a checkpoint of a shape no fixture has (synthetic:small — head_dim 64,
 * 3 layers, MLP width 768, seq_length 48, int4 and bf16) through the wasm CPU backend against the
 * plain reference backend: logits within the fixture tolerance and identical greedy decoding
 * across the NTK (alpha 1 → 3) and LogN thresholds.
 */
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../bindings/node/index.js';
import { ReferenceBackend } from '../support/referenceBackend.js';
import { maxRelErr } from '../support/fixtures.js';

describe.each(['synthetic:small-int4', 'synthetic:small-bf16'])('%s: cpu vs reference', (source) => {
  it('logits within 1e-4 and greedy decoding identical past seq_length', async () => {
    const cpu = await loadModel(source, { backend: 'cpu', threads: 2 });
    const ref = await loadModel(source, { backend: new ReferenceBackend() });
    for (const n of [1, 17, 60]) {
      const ids = Array.from({ length: n }, (_, i) => (i * 7919 + n) % 151643);
      cpu.reset();
      ref.reset();
      expect(maxRelErr(await cpu.forward(ids), await ref.forward(ids)), `prompt ${n}`).toBeLessThanOrEqual(1e-4);
    }
    const prompt = Array.from({ length: 40 }, (_, i) => (i * 104729 + 3) % 151643);
    const opts = { doSample: false, repetitionPenalty: 1, stopTokenIds: [] as number[], maxNewTokens: 16 };
    const a: number[] = [];
    const b: number[] = [];
    for await (const id of cpu.generate(prompt, opts)) a.push(id);
    for await (const id of ref.generate(prompt, opts)) b.push(id);
    expect(a).toEqual(b);
    await cpu.dispose();
    await ref.dispose();
  });
});
