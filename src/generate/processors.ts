/**
 * Logits processors, applied in place on the host in the official order: repetition penalty
 * (Hugging Face semantics: every distinct id of the whole sequence, prompt included), presence and
 * frequency penalties (generated ids only, OpenAI semantics), logit bias, then Qwen's
 * StopWordsLogitsProcessor (after <|im_end|>/<|im_start|> the EOS score becomes 32768).
 */
import type { ResolvedOptions } from './options.js';

/**
 * The ids of one sequence (prompt then generated) with the per-id bookkeeping the penalties need,
 * kept up to date on push so a decode step never rescans the whole context.
 */
export class SequenceState {
  readonly ids: number[];
  readonly promptLength: number;
  /** Every distinct id so far (repetition penalty). */
  readonly distinct: Set<number>;
  /** How often each id was generated (presence / frequency penalties). */
  readonly generatedCounts = new Map<number, number>();

  constructor(prompt: ArrayLike<number>) {
    this.ids = Array.from(prompt);
    this.promptLength = this.ids.length;
    this.distinct = new Set(this.ids);
  }

  push(id: number): void {
    this.ids.push(id);
    this.distinct.add(id);
    this.generatedCounts.set(id, (this.generatedCounts.get(id) ?? 0) + 1);
  }
}

export function processLogits(
  logits: Float32Array,
  seq: SequenceState,
  o: ResolvedOptions,
  special: { eos: number; imEnd: number; imStart: number },
): void {
  if (o.repetitionPenalty !== 1) {
    const p = o.repetitionPenalty;
    for (const id of seq.distinct) {
      const s = logits[id];
      logits[id] = s < 0 ? s * p : s / p;
    }
  }
  if (o.presencePenalty !== 0 || o.frequencyPenalty !== 0) {
    for (const [id, n] of seq.generatedCounts) logits[id] -= o.presencePenalty + o.frequencyPenalty * n;
  }
  for (const [id, bias] of o.logitBias) logits[id] += bias;
  if (o.stopWordsProcessor && seq.ids.length > 0) {
    const last = seq.ids[seq.ids.length - 1];
    if (last === special.imEnd || last === special.imStart) logits[special.eos] = 32768;
  }
}

/** First index of the maximum (torch.argmax semantics). */
export function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}
