/**
 * config.json / generation_config.json / quantize_config.json → typed configs. Every missing or
 * invalid field is a ConfigError naming the file, the field and what was expected. Optional fields
 * take the defaults of the official configuration_qwen.py / generation_config.json.
 */
import { ConfigError } from '../errors.js';
import type { GenerationConfig, QuantizationConfig, QwenConfig } from '../model/config.js';

type Json = Record<string, unknown>;

/** Official Qwen-Chat generation_config.json values (DESIGN.md). */
export const DEFAULT_GENERATION_CONFIG: Readonly<GenerationConfig> = Object.freeze({
  eosTokenId: 151643,
  padTokenId: 151643,
  maxWindowSize: 6144,
  maxNewTokens: 512,
  doSample: true,
  topK: 0,
  topP: 0.8,
  temperature: 1.0,
  repetitionPenalty: 1.1,
  chatFormat: 'chatml',
});

/** Parses a config file's bytes (or text) into a JSON object. */
export function parseJsonObject(file: string, data: Uint8Array | string): Json {
  let json: unknown;
  try {
    json = JSON.parse(typeof data === 'string' ? data : new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (e) {
    throw new ConfigError(file, '(file)', 'valid UTF-8 JSON', (e as Error).message);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(file, '(file)', 'a JSON object', json);
  }
  return json as Json;
}

/** Field readers: `def` undefined → the field is required. */
class Fields {
  constructor(readonly file: string, readonly json: Json, readonly prefix = '') {}

  private get(field: string, expected: string, def: unknown): unknown {
    const v = this.json[field];
    if (v === undefined || v === null) {
      if (def === undefined) throw new ConfigError(this.file, this.prefix + field, expected, v);
      return def;
    }
    return v;
  }

  int(field: string, min: number, def?: number): number {
    const expected = `an integer >= ${min}`;
    const v = this.get(field, expected, def);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new ConfigError(this.file, this.prefix + field, expected, v);
    return v;
  }

  /** A finite number in (lo, hi] (or [lo, hi] when `closedLo`). */
  num(field: string, lo: number, hi: number, def?: number, closedLo = false): number {
    const expected = `a number in ${closedLo ? '[' : '('}${lo}, ${hi}]`;
    const v = this.get(field, expected, def);
    if (typeof v !== 'number' || !Number.isFinite(v) || v > hi || (closedLo ? v < lo : v <= lo)) {
      throw new ConfigError(this.file, this.prefix + field, expected, v);
    }
    return v;
  }

  bool(field: string, def?: boolean): boolean {
    const v = this.get(field, 'true or false', def);
    if (typeof v !== 'boolean') throw new ConfigError(this.file, this.prefix + field, 'true or false', v);
    return v;
  }

  str(field: string, allowed: readonly string[], def?: string): string {
    const expected = allowed.map((a) => JSON.stringify(a)).join(' or ');
    const v = this.get(field, expected, def);
    if (typeof v !== 'string' || !allowed.includes(v)) throw new ConfigError(this.file, this.prefix + field, expected, v);
    return v;
  }
}

/** GPTQ settings from config.json's quantization_config or from quantize_config.json. */
export function parseQuantization(file: string, json: Json, prefix = ''): QuantizationConfig {
  const f = new Fields(file, json, prefix);
  // quantize_config.json (AutoGPTQ) has no quant_method: it is GPTQ by definition.
  const quantMethod = f.str('quant_method', ['gptq'], prefix ? undefined : 'gptq') as 'gptq';
  const bits = f.int('bits', 4);
  if (bits !== 4) throw new ConfigError(file, `${prefix}bits`, '4 (only 4-bit GPTQ is supported)', bits);
  const groupSize = f.int('group_size', 8);
  if (groupSize % 8 !== 0) throw new ConfigError(file, `${prefix}group_size`, 'a positive multiple of 8', groupSize);
  return { quantMethod, bits, groupSize, descAct: f.bool('desc_act', false), sym: f.bool('sym', true) };
}

/** config.json → QwenConfig. `quantizeConfig` is quantize_config.json's object when that file exists. */
export function parseQwenConfig(json: Json, quantizeConfig?: Json, file = 'config.json'): QwenConfig {
  const f = new Fields(file, json);
  if (json.model_type !== undefined && json.model_type !== 'qwen') {
    throw new ConfigError(file, 'model_type', '"qwen" (Qwen v1)', json.model_type);
  }
  const hiddenSize = f.int('hidden_size', 1);
  const numLayers = f.int('num_hidden_layers', 1);
  const numHeads = f.int('num_attention_heads', 1);
  if (json.kv_channels === undefined && hiddenSize % numHeads !== 0) {
    throw new ConfigError(file, 'num_attention_heads', `a divisor of hidden_size ${hiddenSize}`, numHeads);
  }
  const headDim = f.int('kv_channels', 1, hiddenSize / numHeads);
  // modeling_qwen splits c_attn's output into heads of hidden/heads, so kv_channels must agree.
  if (headDim * numHeads !== hiddenSize) {
    throw new ConfigError(file, 'kv_channels', `hidden_size / num_attention_heads = ${hiddenSize / numHeads}`, headDim);
  }
  const intermediateSize = f.int('intermediate_size', 2);
  if (intermediateSize % 2 !== 0) throw new ConfigError(file, 'intermediate_size', 'an even integer (MLP width is half of it)', intermediateSize);
  const vocabSize = f.int('vocab_size', 1);
  const seqLength = f.int('seq_length', 1);
  const rotaryBase = f.num('rotary_emb_base', 0, Number.MAX_VALUE, 10000);
  const rotaryPct = f.num('rotary_pct', 0, 1, 1.0);
  const rotaryDim = headDim * rotaryPct;
  if (!Number.isInteger(rotaryDim) || rotaryDim % 2 !== 0) {
    throw new ConfigError(file, 'rotary_pct', `a fraction making kv_channels (${headDim}) × rotary_pct an even integer`, rotaryPct);
  }
  const layerNormEps = f.num('layer_norm_epsilon', 0, 1, 1e-6);
  const useDynamicNtk = f.bool('use_dynamic_ntk', true);
  const useLognAttn = f.bool('use_logn_attn', true);
  // Qwen v1 has only c_attn's bias and an untied lm_head; other variants would need other tensors.
  if (f.bool('no_bias', true) !== true) throw new ConfigError(file, 'no_bias', 'true (Qwen v1)', json.no_bias);
  if (f.bool('tie_word_embeddings', false) !== false) {
    throw new ConfigError(file, 'tie_word_embeddings', 'false (Qwen v1 has a separate lm_head)', json.tie_word_embeddings);
  }

  const config: QwenConfig = {
    hiddenSize, numLayers, numHeads, headDim, intermediateSize, mlpWidth: intermediateSize / 2, vocabSize, seqLength,
    rotaryBase, rotaryPct, layerNormEps, useDynamicNtk, useLognAttn,
  };

  const qc = json.quantization_config;
  if (qc !== undefined && qc !== null) {
    if (typeof qc !== 'object' || Array.isArray(qc)) throw new ConfigError(file, 'quantization_config', 'an object', qc);
    config.quantization = parseQuantization(file, qc as Json, 'quantization_config.');
  }
  if (quantizeConfig) {
    const q = parseQuantization('quantize_config.json', quantizeConfig);
    if (config.quantization) crossCheck(config.quantization, q);
    else config.quantization = q;
  }
  return config;
}

function crossCheck(fromConfig: QuantizationConfig, fromFile: QuantizationConfig): void {
  const pairs: [keyof QuantizationConfig, string][] = [['bits', 'bits'], ['groupSize', 'group_size'], ['descAct', 'desc_act'], ['sym', 'sym']];
  for (const [key, field] of pairs) {
    if (fromConfig[key] !== fromFile[key]) {
      throw new ConfigError(
        'quantize_config.json', field,
        `${JSON.stringify(fromConfig[key])} as in config.json quantization_config.${field}`, fromFile[key],
      );
    }
  }
}

/** generation_config.json → GenerationConfig; absent fields (or no file: `json` undefined) take the defaults. */
export function parseGenerationConfig(json: Json | undefined, file = 'generation_config.json'): GenerationConfig {
  const d = DEFAULT_GENERATION_CONFIG;
  if (!json) return { ...d };
  const f = new Fields(file, json);
  const eosTokenId = tokenId(file, 'eos_token_id', json.eos_token_id, d.eosTokenId);
  return {
    eosTokenId,
    padTokenId: tokenId(file, 'pad_token_id', json.pad_token_id, eosTokenId),
    maxWindowSize: f.int('max_window_size', 1, d.maxWindowSize),
    maxNewTokens: f.int('max_new_tokens', 1, d.maxNewTokens),
    doSample: f.bool('do_sample', d.doSample),
    topK: f.int('top_k', 0, d.topK),
    topP: f.num('top_p', 0, 1, d.topP),
    temperature: f.num('temperature', 0, Number.MAX_VALUE, d.temperature, true),
    repetitionPenalty: f.num('repetition_penalty', 0, Number.MAX_VALUE, d.repetitionPenalty),
    chatFormat: f.str('chat_format', ['chatml', 'raw'], d.chatFormat),
  };
}

/** eos/pad: an id, or (as transformers allows) a non-empty list of ids whose first is used. */
function tokenId(file: string, field: string, v: unknown, def: number): number {
  if (v === undefined || v === null) return def;
  const id = Array.isArray(v) && v.length > 0 ? v[0] : v;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw new ConfigError(file, field, 'a non-negative token id (or a list of them)', v);
  }
  return id;
}
