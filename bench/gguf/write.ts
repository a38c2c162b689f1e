/**
 * Writes a Qwen checkpoint as GGUF (llama.cpp "qwen" architecture) for the peer benchmarks.
 *
 *   node dist/bench/gguf/write.js --model synthetic:1.8b-int4 [--out bench/out/gguf/synthetic-1.8b-int4.gguf]
 *
 * See bench/gguf/qwen.ts for the mapping and the GPTQ → Q4_0 conversion (lossless for sym g128).
 */
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { nodePlatform } from '../../bindings/node/index.js';
import { openSource } from '../../src/io/open.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { writeQwenGguf } from './qwen.js';

export function ggufPathFor(model: string): string {
  return `bench/out/gguf/${model.replace(/^synthetic:/, 'synthetic-').replace(/[^\w.-]+/g, '_')}.gguf`;
}

export async function writeGgufFor(model: string, out = ggufPathFor(model), log = false) {
  mkdirSync(dirname(out), { recursive: true });
  const ck = await openCheckpoint(await openSource(model, nodePlatform));
  const t0 = performance.now();
  let last = 0;
  try {
    const r = await writeQwenGguf(ck, out, model, (msg) => {
      if (log && performance.now() - last > 2000) { last = performance.now(); console.error(msg); }
    });
    return { out, ...r, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await ck.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { model: { type: 'string', default: 'synthetic:tiny-int4' }, out: { type: 'string' } } });
  const r = await writeGgufFor(values.model!, values.out ?? ggufPathFor(values.model!), true);
  console.log(JSON.stringify(r));
}
