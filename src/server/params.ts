/**
 * OpenAI request parameters → GenerationOptions, validated field by field (400 naming the field),
 * so nothing malformed reaches the engine. Extensions as in vLLM: top_k, min_p, repetition_penalty;
 * and Qwen's max_window_size (history budget of chat).
 */
import type { GenerationOptions } from '../generate/options.js';
import { compileResponseFormat, type ResponseFormat } from '../generate/constrained/index.js';
import { ArgumentError } from '../errors.js';
import { badParam } from './errors.js';

export interface Limits {
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Tokens generated when a request gives no max_tokens. */
  defaultMaxTokens: number;
  vocabSize: number;
}

export interface SamplingRequest {
  options: GenerationOptions;
  maxTokens: number;
  stream: boolean;
  includeUsage: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function num(body: Record<string, unknown>, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw badParam(key, `${key} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`, 'invalid_type');
  }
  if (v < min || v > max) throw badParam(key, `${key} must be between ${min} and ${max}, got ${v}`);
  return v;
}

function bool(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badParam(key, `${key} must be a boolean, got ${JSON.stringify(v)}`, 'invalid_type');
  return v;
}

function stopStrings(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) throw badParam('stop', 'stop must be a string or an array of strings', 'invalid_type');
  if (list.length > 16) throw badParam('stop', `stop takes at most 16 strings, got ${list.length}`);
  const out = (list as string[]).filter((s) => s.length > 0);
  if (out.some((s) => s.length > 256)) throw badParam('stop', 'stop strings must be at most 256 characters');
  return out;
}

function logitBias(v: unknown, vocabSize: number): Record<number, number> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badParam('logit_bias', 'logit_bias must be an object mapping token ids to numbers', 'invalid_type');
  const out: Record<number, number> = {};
  const entries = Object.entries(v);
  if (entries.length > 1024) throw badParam('logit_bias', 'logit_bias takes at most 1024 entries');
  for (const [k, b] of entries) {
    const id = Number(k);
    if (!/^\d+$/.test(k) || !Number.isInteger(id) || id >= vocabSize) throw badParam('logit_bias', `logit_bias key "${k}" is not a token id below ${vocabSize}`);
    if (typeof b !== 'number' || !Number.isFinite(b) || b < -100 || b > 100) throw badParam('logit_bias', `logit_bias["${k}"] must be a number in [-100, 100]`);
    out[id] = b;
  }
  return out;
}

/**
 * response_format: {type:'text'} | {type:'json_object'} | {type:'json_schema', json_schema:{schema}}
 * (+ extension {type:'grammar', grammar}: GBNF). Compiled here so a bad schema is a 400.
 */
function responseFormat(v: unknown): ResponseFormat | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badParam('response_format', 'response_format must be an object', 'invalid_type');
  let f: ResponseFormat;
  if (v.type === 'text') return undefined;
  else if (v.type === 'json_object') f = { type: 'json_object' };
  else if (v.type === 'json_schema') {
    const js = v.json_schema;
    if (!isObject(js) || !(isObject(js.schema) || typeof js.schema === 'boolean')) {
      throw badParam('response_format', 'response_format.json_schema.schema must be a JSON Schema object', 'invalid_type');
    }
    f = { type: 'json_schema', schema: js.schema as object };
  } else if (v.type === 'grammar') {
    if (typeof v.grammar !== 'string') throw badParam('response_format', 'response_format.grammar must be a string', 'invalid_type');
    f = { type: 'grammar', grammar: v.grammar };
  } else throw badParam('response_format', `response_format.type must be text, json_object, json_schema or grammar, got ${JSON.stringify(v.type)}`);
  try {
    compileResponseFormat(f);
  } catch (e) {
    if (e instanceof ArgumentError) throw badParam('response_format', e.message);
    throw e;
  }
  return f;
}

/** Sampling fields shared by /v1/chat/completions and /v1/completions. */
export function samplingRequest(body: Record<string, unknown>, limits: Limits): SamplingRequest {
  const n = num(body, 'n', 1, 1, true);
  void n; // only n = 1 is served
  const temperature = num(body, 'temperature', 0, 2);
  const topP = num(body, 'top_p', 0, 1);
  const topK = num(body, 'top_k', -1, limits.vocabSize, true);
  const minP = num(body, 'min_p', 0, 1);
  const repetitionPenalty = num(body, 'repetition_penalty', 0.01, 10);
  const presencePenalty = num(body, 'presence_penalty', -2, 2);
  const frequencyPenalty = num(body, 'frequency_penalty', -2, 2);
  const maxWindowSize = num(body, 'max_window_size', 1, 1 << 20, true);
  const seed = num(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  const maxTokens =
    num(body, 'max_completion_tokens', 1, limits.maxTokens, true) ?? num(body, 'max_tokens', 1, limits.maxTokens, true) ?? limits.defaultMaxTokens;
  const stream = bool(body, 'stream') ?? false;
  let includeUsage = false;
  if (body.stream_options !== undefined && body.stream_options !== null) {
    if (!isObject(body.stream_options)) throw badParam('stream_options', 'stream_options must be an object', 'invalid_type');
    includeUsage = bool(body.stream_options, 'include_usage') ?? false;
  }
  if (body.logprobs !== undefined && body.logprobs !== null && body.logprobs !== false) {
    throw badParam('logprobs', 'logprobs are not supported', 'unsupported_parameter');
  }
  const options: GenerationOptions = { maxNewTokens: maxTokens };
  if (temperature === 0 || topP === 0 || topK === 1) {
    options.doSample = false; // greedy
  } else {
    if (temperature !== undefined) {
      options.doSample = true;
      options.temperature = temperature;
    }
    if (topP !== undefined) options.topP = topP;
    if (topK !== undefined) options.topK = Math.max(0, topK);
  }
  if (minP !== undefined) options.minP = minP;
  if (repetitionPenalty !== undefined) options.repetitionPenalty = repetitionPenalty;
  if (presencePenalty !== undefined) options.presencePenalty = presencePenalty;
  if (frequencyPenalty !== undefined) options.frequencyPenalty = frequencyPenalty;
  if (seed !== undefined) options.seed = seed;
  if (maxWindowSize !== undefined) options.maxWindowSize = maxWindowSize;
  const stop = stopStrings(body.stop);
  if (stop && stop.length > 0) options.stop = stop;
  const bias = logitBias(body.logit_bias, limits.vocabSize);
  if (bias) options.logitBias = bias;
  const format = responseFormat(body.response_format);
  if (format) options.responseFormat = format;
  return { options, maxTokens, stream, includeUsage };
}
