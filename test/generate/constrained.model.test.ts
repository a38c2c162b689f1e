/**
 * Constrained generation on real engines (CPU backend): random bounded schemas on the synthetic tiny
 * model and the fixture model, greedy and sampled with seeds; every output must end with an end
 * token (the languages are finite, so the budget always suffices), JSON.parse, and validate. Also
 * json_object and grammar formats, chat/chatStream, seeds repeating, and option errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadModel, type QwenModel } from '../../bindings/node/index.js';
import { ArgumentError } from '../../src/errors.js';
import type { GenerationOptions } from '../../src/generate/options.js';
import { modelDir } from '../support/fixtures.js';
import { objectSchemaArb, validate, type Schema } from './constrainedSupport.js';

const models: Record<string, QwenModel> = {};

beforeAll(async () => {
  models.synthetic = await loadModel('synthetic:tiny-int4', { backend: 'cpu', threads: 1 });
  models.fixture = await loadModel(modelDir('qwen-tiny-int4'), { backend: 'cpu', threads: 1 });
});
afterAll(async () => {
  for (const m of Object.values(models)) await m.dispose();
});

async function run(m: QwenModel, prompt: string, options: GenerationOptions) {
  const tok = m.tokenizer;
  const ids: number[] = [];
  for await (const id of m.generate(tok.encode(prompt), options)) ids.push(id);
  const ends = new Set([tok.endOfText, tok.imEnd]);
  const cut = ids.findIndex((id) => ends.has(id));
  return { ids, ended: cut >= 0, text: tok.decode(cut >= 0 ? ids.slice(0, cut) : ids) };
}

const MAX_NEW = 600;

describe.each(['synthetic', 'fixture'])('%s model', (which) => {
  const modes: Array<[string, (seed: number) => GenerationOptions]> = [
    ['greedy', () => ({ doSample: false })],
    ['sampled', (seed) => ({ doSample: true, temperature: 1.5, topK: 0, topP: 1, seed })],
  ];
  it.each(modes)('%s: random schemas → outputs that parse and validate', async (_mode, opts) => {
    const m = models[which];
    await fc.assert(
      fc.asyncProperty(objectSchemaArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constantFrom('Give me JSON:', 'hello', '{'), async (schema, seed, prompt) => {
        const r = await run(m, prompt, { ...opts(seed), maxNewTokens: MAX_NEW, repetitionPenalty: 1, responseFormat: { type: 'json_schema', schema: schema as object } });
        expect(r.ended, r.text).toBe(true);
        const v = JSON.parse(r.text);
        expect(validate(schema as Schema, v), r.text).toBeUndefined();
      }),
      // fixed seed: reproducible runs (the budget is ample for these schemas, but not for every finite language)
      { numRuns: 12, seed: which === 'synthetic' ? 20261127 : 1127 },
    );
  });
});

describe('formats on the synthetic model', () => {
  it('json_object: every output is a complete JSON object', async () => {
    // A random model almost never closes an unbounded string (the unbiased outputs run to the
    // budget inside the first key), so bias the quote token: the mask still decides what is legal.
    const m = models.synthetic;
    const tok = m.tokenizer;
    const logitBias: Record<number, number> = {};
    logitBias[tok.encode('"')[0]] = 30; // synthetic logits have std ≈ 8
    let members = 0;
    for (let seed = 0; seed < 6; seed++) {
      const r = await run(m, 'JSON please', { doSample: seed > 0, seed, temperature: 0.8, maxNewTokens: 300, logitBias, responseFormat: { type: 'json_object' } });
      expect(r.ended, r.text).toBe(true);
      const v = JSON.parse(r.text);
      expect(typeof v === 'object' && v !== null && !Array.isArray(v), r.text).toBe(true);
      members += Object.keys(v).length;
    }
    expect(members).toBeGreaterThan(6); // not just {} each time
  });

  it('grammar: outputs are sentences of the grammar', async () => {
    const m = models.synthetic;
    const grammar = 'root ::= greeting " " name "!"\ngreeting ::= "hi" | "hello" | "hey"\nname ::= [A-Z] [a-z]{0,5}';
    for (let seed = 0; seed < 4; seed++) {
      const r = await run(m, 'say hi', { doSample: true, seed, maxNewTokens: 40, responseFormat: { type: 'grammar', grammar } });
      expect(r.ended).toBe(true);
      expect(r.text).toMatch(/^(hi|hello|hey) [A-Z][a-z]{0,5}!$/);
    }
  });

  it('the same seed gives the same constrained output; a different one may not', async () => {
    const m = models.synthetic;
    const schema = { type: 'object', properties: { a: { type: 'string', maxLength: 6 }, b: { type: 'array', items: { type: 'integer' }, maxItems: 3 } }, required: ['a', 'b'] };
    const o = { doSample: true, temperature: 1, maxNewTokens: 300, responseFormat: { type: 'json_schema' as const, schema } };
    const a = await run(m, 'x', { ...o, seed: 7 });
    const b = await run(m, 'x', { ...o, seed: 7 });
    expect(b.ids).toEqual(a.ids);
    expect(validate(schema, JSON.parse(a.text))).toBeUndefined();
  });

  it('chat and chatStream honour responseFormat and agree', async () => {
    const m = models.synthetic;
    const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] }, confidence: { type: 'number' } }, required: ['answer', 'confidence'] };
    const options = { responseFormat: { type: 'json_schema' as const, schema }, maxNewTokens: 200, doSample: true, seed: 3 };
    const r = await m.chat('Is the sky blue?', options);
    expect(r.finishReason).toBe('stop');
    expect(validate(schema, JSON.parse(r.response))).toBeUndefined();
    let streamed = '';
    for await (const d of m.chatStream('Is the sky blue?', options)) streamed += d;
    expect(streamed).toBe(r.response);
  });

  it('invalid formats are ArgumentErrors at the call', async () => {
    const m = models.synthetic;
    const ids = m.tokenizer.encode('x');
    expect(() => m.generate(ids, { responseFormat: { type: 'json_schema', schema: { type: 'strng' } } })).toThrow(ArgumentError);
    expect(() => m.generate(ids, { responseFormat: { type: 'grammar', grammar: 'root ::= root "a"' } })).toThrow(/left-recursive/);
    await expect(m.chat('x', { responseFormat: { type: 'nope' } as never })).rejects.toThrow(ArgumentError);
  });
});
