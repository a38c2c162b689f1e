/** Generation options: camelCase of the Hugging Face names; unset ones come from generation_config.json. */
import type { GenerationConfig } from '../model/config.js';
import { ArgumentError } from '../errors.js';
import { compileResponseFormat, type CompiledFormat, type ResponseFormat } from './constrained/index.js';

export interface GenerationOptions {
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** token id → value added to its logit (−Infinity bans it). */
  logitBias?: Record<number, number>;
  seed?: number;
  /** Stop strings, matched on the decoded text (not part of the returned text). */
  stop?: string[];
  /**
   * Token ids that end generation (kept as the last yielded id). Default: the checkpoint's EOS,
   * plus Qwen's stop-word processor (after `<|im_end|>` / `<|im_start|>` the next token is forced to
   * EOS). `[]` disables both: greedy `generate` with repetitionPenalty 1 is then pure argmax.
   */
  stopTokenIds?: number[];
  maxNewTokens?: number;
  maxWindowSize?: number;
  signal?: AbortSignal;
  /** Structured output: every generated token keeps the text a valid prefix of this format. */
  responseFormat?: ResponseFormat;
}

export interface ResolvedOptions {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  logitBias: Map<number, number>;
  seed: number | undefined;
  stop: string[];
  stopTokenIds: number[];
  /** Qwen's StopWordsLogitsProcessor is active (default stop ids). */
  stopWordsProcessor: boolean;
  maxNewTokens: number;
  maxWindowSize: number;
  signal: AbortSignal | undefined;
  /** Compiled (validated) responseFormat. */
  responseFormat: CompiledFormat | undefined;
}

function num(name: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (typeof v !== 'number' || !ok(v)) throw new ArgumentError(`option ${name} must be ${expected}, got ${JSON.stringify(v)}`);
  return v;
}

export function resolveOptions(o: GenerationOptions, g: GenerationConfig, vocabSize: number): ResolvedOptions {
  const finite = (x: number) => Number.isFinite(x);
  const logitBias = new Map<number, number>();
  for (const [k, v] of Object.entries(o.logitBias ?? {})) {
    const id = Number(k);
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new ArgumentError(`option logitBias: token id ${k} is outside 0..${vocabSize - 1}`);
    logitBias.set(id, num(`logitBias[${k}]`, v, (x) => !Number.isNaN(x), 'a number'));
  }
  const stopTokenIds = o.stopTokenIds ?? [g.eosTokenId];
  for (const id of stopTokenIds) num('stopTokenIds[]', id, (x) => Number.isInteger(x) && x >= 0 && x < vocabSize, `a token id below ${vocabSize}`);
  if (o.stop !== undefined && (!Array.isArray(o.stop) || o.stop.some((s) => typeof s !== 'string' || s.length === 0))) {
    throw new ArgumentError('option stop must be an array of non-empty strings');
  }
  return {
    doSample: o.doSample ?? g.doSample,
    temperature: num('temperature', o.temperature ?? g.temperature, (x) => finite(x) && x >= 0, 'a number ≥ 0'),
    topK: num('topK', o.topK ?? g.topK, (x) => Number.isInteger(x) && x >= 0, 'an integer ≥ 0'),
    topP: num('topP', o.topP ?? g.topP, (x) => x > 0 && x <= 1, 'in (0, 1]'),
    minP: num('minP', o.minP ?? 0, (x) => x >= 0 && x <= 1, 'in [0, 1]'),
    repetitionPenalty: num('repetitionPenalty', o.repetitionPenalty ?? g.repetitionPenalty, (x) => finite(x) && x > 0, 'a number > 0'),
    presencePenalty: num('presencePenalty', o.presencePenalty ?? 0, finite, 'a finite number'),
    frequencyPenalty: num('frequencyPenalty', o.frequencyPenalty ?? 0, finite, 'a finite number'),
    logitBias,
    seed: o.seed === undefined ? undefined : num('seed', o.seed, Number.isInteger, 'an integer'),
    stop: o.stop ?? [],
    stopTokenIds,
    stopWordsProcessor: o.stopTokenIds === undefined,
    maxNewTokens: num('maxNewTokens', o.maxNewTokens ?? g.maxNewTokens, (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1'),
    maxWindowSize: num('maxWindowSize', o.maxWindowSize ?? g.maxWindowSize, (x) => Number.isInteger(x) && x >= 1, 'an integer ≥ 1'),
    signal: o.signal,
    responseFormat: o.responseFormat === undefined ? undefined : compileResponseFormat(o.responseFormat),
  };
}
