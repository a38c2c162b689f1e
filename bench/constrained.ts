/**
 * Constrained-decoding benchmark: mask time per step against decode time per step.
 *
 *   npm run build:ts && node dist/bench/constrained.js [--model synthetic:1.8b-int4] [--tokens 16]
 *                                                      [--threads N] [--out bench/out/constrained.jsonl]
 *
 * Runs the same greedy chat prompt (a) unconstrained and (b) under a JSON schema, twice: `cold` (the
 * schema's automaton and masks are new) and `warm` (same schema again: masks come from the per-state
 * cache). mask ms/step is the time inside TokenConstraint.mask (trie walk + applying −∞ to the host
 * logits); decode ms/step is the model's decode time per generated token (lastStats). The token
 * trie's one-off build is reported on its own. Prints JSON lines and a table.
 */
import { parseArgs } from 'node:util';
import { appendJsonl } from './jsonl.js';
import { loadModel } from '../bindings/node/index.js';
import { makeContext } from '../src/chat/makeContext.js';
import { TokenConstraint, tokenTrie } from '../src/generate/constrained/index.js';
import type { GenerationOptions } from '../src/generate/options.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'synthetic:1.8b-int4' },
    tokens: { type: 'string', default: '16' },
    threads: { type: 'string' },
    out: { type: 'string', default: 'bench/out/constrained.jsonl' },
  },
});
const tokens = Number(values.tokens);

const rows: Record<string, unknown>[] = [];
function emit(row: Record<string, unknown>): void {
  rows.push(row);
  appendJsonl(values.out!, row);
}

// time spent in mask(), accumulated across constraints
let maskMs = 0;
let maskCalls = 0;
const origMask = TokenConstraint.prototype.mask;
TokenConstraint.prototype.mask = function (this: TokenConstraint, logits: Float32Array) {
  const t0 = performance.now();
  origMask.call(this, logits);
  maskMs += performance.now() - t0;
  maskCalls++;
};

const model = await loadModel(values.model, { backend: 'cpu', threads: values.threads ? Number(values.threads) : undefined });
const tok = model.tokenizer;
const t0 = performance.now();
const trie = tokenTrie(tok);
const trieMs = performance.now() - t0;
emit({ bench: 'constrained', what: 'trie', model: values.model, nodes: trie.size, tokens: trie.tokens, ms: +trieMs.toFixed(1) });

const schema = {
  type: 'object',
  properties: {
    city: { type: 'string' },
    population: { type: 'integer' },
    districts: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 4 },
    coastal: { type: 'boolean' },
  },
  required: ['city', 'population'],
};
const { contextTokens } = makeContext(tok, 'Describe a city as JSON.', { history: [], system: 'You are a helpful assistant.', maxWindowSize: 6144 });

async function run(label: string, options: GenerationOptions) {
  maskMs = 0;
  maskCalls = 0;
  model.reset(); // same prefill work every run
  const ids: number[] = [];
  for await (const id of model.generate(contextTokens, { doSample: false, maxNewTokens: tokens, ...options })) ids.push(id);
  const s = model.lastStats!;
  const steps = Math.max(1, s.generatedTokens - 1); // decodeMs runs from the first token on
  emit({
    bench: 'constrained',
    what: label,
    model: values.model,
    tokens: s.generatedTokens,
    prefillMs: +s.prefillMs.toFixed(1),
    decodeMsPerStep: +(s.decodeMs / steps).toFixed(2),
    maskMsPerStep: maskCalls ? +(maskMs / maskCalls).toFixed(3) : 0,
    text: tok.decode(ids),
  });
}

await run('unconstrained', { stopTokenIds: [] });
await run('unconstrained-host-logits', { logitBias: { 0: 0 } });
const responseFormat = { type: 'json_schema' as const, schema };
await run('json_schema-cold', { responseFormat });
await run('json_schema-warm', { responseFormat });
await run('json_object', { responseFormat: { type: 'json_object' } });
await model.dispose();

console.log('\n| run | tokens | decode ms/step | mask ms/step |');
console.log('|---|---|---|---|');
for (const r of rows.slice(1)) console.log(`| ${r.what} | ${r.tokens} | ${r.decodeMsPerStep} | ${r.maskMsPerStep} |`);
console.log(`trie: ${trie.size} nodes over ${trie.tokens} tokens, built in ${trieMs.toFixed(0)} ms (once per tokenizer)`);
