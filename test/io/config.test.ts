import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import { ConfigError } from '../../src/errors.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { DEFAULT_GENERATION_CONFIG, parseGenerationConfig, parseJsonObject, parseQwenConfig } from '../../src/io/config.js';
import { BF16_DIR, INT4_DIR, catchError, memorySource } from './helpers.js';

const bf16 = () => JSON.parse(readFileSync(join(BF16_DIR, 'config.json'), 'utf8'));
const int4 = () => JSON.parse(readFileSync(join(INT4_DIR, 'config.json'), 'utf8'));
const quantize = () => JSON.parse(readFileSync(join(INT4_DIR, 'quantize_config.json'), 'utf8'));

function expectConfigError(fn: () => unknown, file: string, field: string, expected: RegExp) {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `${file} ${field}`).toBeInstanceOf(ConfigError);
  const e = err as ConfigError;
  expect(e.code).toBe('E_CONFIG');
  expect([e.file, e.field]).toEqual([file, field]);
  expect(e.message).toContain(`${file}: field "${field}"`);
  expect(e.message).toMatch(expected);
}

describe('config.json', () => {
  it('defaults: kv_channels = hidden/heads and the official optional values', () => {
    const c = bf16();
    for (const k of ['kv_channels', 'rotary_emb_base', 'rotary_pct', 'layer_norm_epsilon', 'use_dynamic_ntk', 'use_logn_attn']) delete c[k];
    c.hidden_size = 96;
    c.num_attention_heads = 3;
    expect(parseQwenConfig(c)).toMatchObject({
      hiddenSize: 96, headDim: 32, rotaryBase: 10000, rotaryPct: 1, layerNormEps: 1e-6, useDynamicNtk: true, useLognAttn: true,
    });
  });

  const bad: [string, (c: any) => void, string, RegExp][] = [
    ['missing hidden_size', (c) => delete c.hidden_size, 'hidden_size', /an integer >= 1, got undefined/],
    ['string hidden_size', (c) => (c.hidden_size = '64'), 'hidden_size', /got "64"/],
    ['fractional layers', (c) => (c.num_hidden_layers = 2.5), 'num_hidden_layers', /integer/],
    ['zero heads', (c) => (c.num_attention_heads = 0), 'num_attention_heads', />= 1/],
    ['heads not dividing hidden', (c) => { c.num_attention_heads = 5; delete c.kv_channels; }, 'num_attention_heads', /a divisor of hidden_size 64/],
    ['kv_channels mismatch', (c) => (c.kv_channels = 32), 'kv_channels', /hidden_size \/ num_attention_heads = 16/],
    ['odd intermediate_size', (c) => (c.intermediate_size = 255), 'intermediate_size', /even/],
    ['missing vocab_size', (c) => delete c.vocab_size, 'vocab_size', /integer/],
    ['missing seq_length', (c) => delete c.seq_length, 'seq_length', /integer/],
    ['negative eps', (c) => (c.layer_norm_epsilon = -1), 'layer_norm_epsilon', /a number in \(0, 1\]/],
    ['rotary_pct > 1', (c) => (c.rotary_pct = 1.5), 'rotary_pct', /\(0, 1\]/],
    ['rotary_pct giving an odd dim', (c) => (c.rotary_pct = 0.5625), 'rotary_pct', /even integer/],
    ['string ntk flag', (c) => (c.use_dynamic_ntk = 'yes'), 'use_dynamic_ntk', /true or false/],
    ['non-qwen model', (c) => (c.model_type = 'qwen2'), 'model_type', /"qwen"/],
    ['tied embeddings', (c) => (c.tie_word_embeddings = true), 'tie_word_embeddings', /false/],
  ];
  for (const [what, edit, field, expected] of bad) {
    it(`rejects ${what}`, () => {
      const c = bf16();
      edit(c);
      expectConfigError(() => parseQwenConfig(c), 'config.json', field, expected);
    });
  }

  it('quantization_config: method, bits, group size', () => {
    const cases: [(q: any) => void, string, RegExp][] = [
      [(q) => (q.quant_method = 'awq'), 'quantization_config.quant_method', /"gptq"/],
      [(q) => delete q.quant_method, 'quantization_config.quant_method', /"gptq"/],
      [(q) => (q.bits = 8), 'quantization_config.bits', /only 4-bit/],
      [(q) => (q.group_size = -1), 'quantization_config.group_size', />= 8/],
      [(q) => (q.group_size = 100), 'quantization_config.group_size', /multiple of 8/],
      [(q) => (q.desc_act = 1), 'quantization_config.desc_act', /true or false/],
    ];
    for (const [edit, field, expected] of cases) {
      const c = int4();
      edit(c.quantization_config);
      expectConfigError(() => parseQwenConfig(c, quantize()), 'config.json', field, expected);
    }
    const c = int4();
    c.quantization_config = 'gptq';
    expectConfigError(() => parseQwenConfig(c), 'config.json', 'quantization_config', /an object/);
  });

  it('quantize_config.json: used alone, and cross-checked with quantization_config', () => {
    const c = int4();
    delete c.quantization_config;
    expect(parseQwenConfig(c, quantize()).quantization).toEqual({ quantMethod: 'gptq', bits: 4, groupSize: 128, descAct: false, sym: true });
    const q = quantize();
    q.group_size = 64;
    expectConfigError(() => parseQwenConfig(int4(), q), 'quantize_config.json', 'group_size', /128 as in config\.json quantization_config\.group_size/);
    const q2 = quantize();
    q2.desc_act = true;
    expectConfigError(() => parseQwenConfig(int4(), q2), 'quantize_config.json', 'desc_act', /false as in config\.json/);
  });

  it('bad JSON and non-objects', () => {
    expectConfigError(() => parseJsonObject('config.json', '{"a":'), 'config.json', '(file)', /valid UTF-8 JSON/);
    expectConfigError(() => parseJsonObject('config.json', '[1]'), 'config.json', '(file)', /a JSON object/);
  });

  it('surfaces through openCheckpoint with file and field', async () => {
    const c = int4();
    c.hidden_size = 'big';
    const src = memorySource({ 'config.json': JSON.stringify(c) }, nodeFileSource(INT4_DIR));
    const e = await catchError(openCheckpoint(src));
    expect(e).toBeInstanceOf(ConfigError);
    expect([e.file, e.field]).toEqual(['config.json', 'hidden_size']);
    const g = memorySource({ 'generation_config.json': '{"top_p": 2}' }, nodeFileSource(INT4_DIR));
    const e2 = await catchError(openCheckpoint(g));
    expect([e2.file, e2.field]).toEqual(['generation_config.json', 'top_p']);
    const q = memorySource({ 'quantize_config.json': '{"bits": 4, "group_size": 32}' }, nodeFileSource(INT4_DIR));
    const e3 = await catchError(openCheckpoint(q));
    expect([e3.file, e3.field]).toEqual(['quantize_config.json', 'group_size']);
  });
});

describe('generation_config.json', () => {
  it('absent file or fields → the official defaults', () => {
    expect(parseGenerationConfig(undefined)).toEqual(DEFAULT_GENERATION_CONFIG);
    expect(parseGenerationConfig({})).toEqual(DEFAULT_GENERATION_CONFIG);
    expect(DEFAULT_GENERATION_CONFIG).toMatchObject({ topP: 0.8, topK: 0, repetitionPenalty: 1.1, maxNewTokens: 512, maxWindowSize: 6144, doSample: true, eosTokenId: 151643, padTokenId: 151643, temperature: 1, chatFormat: 'chatml' });
  });

  it('reads every field; pad defaults to eos; eos may be a list', () => {
    const g = parseGenerationConfig({
      eos_token_id: [7, 8], max_window_size: 100, max_new_tokens: 9, do_sample: false, top_k: 5, top_p: 0.5,
      temperature: 0.7, repetition_penalty: 1.0, chat_format: 'raw',
    });
    expect(g).toEqual({ eosTokenId: 7, padTokenId: 7, maxWindowSize: 100, maxNewTokens: 9, doSample: false, topK: 5, topP: 0.5, temperature: 0.7, repetitionPenalty: 1, chatFormat: 'raw' });
  });

  it('rejects bad fields naming them', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ top_p: 0 }, 'top_p', /\(0, 1\]/],
      [{ top_p: 1.2 }, 'top_p', /\(0, 1\]/],
      [{ top_k: -1 }, 'top_k', />= 0/],
      [{ temperature: -0.5 }, 'temperature', /\[0,/],
      [{ repetition_penalty: 0 }, 'repetition_penalty', /\(0,/],
      [{ max_new_tokens: 0 }, 'max_new_tokens', />= 1/],
      [{ max_window_size: '6144' }, 'max_window_size', /integer/],
      [{ do_sample: 'true' }, 'do_sample', /true or false/],
      [{ chat_format: 'llama' }, 'chat_format', /"chatml" or "raw"/],
      [{ eos_token_id: -3 }, 'eos_token_id', /token id/],
      [{ pad_token_id: 'x' }, 'pad_token_id', /token id/],
    ];
    for (const [json, field, expected] of cases) {
      expectConfigError(() => parseGenerationConfig(json), 'generation_config.json', field, expected);
    }
  });
});
