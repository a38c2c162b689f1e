/**
 * Logits processors, applied in place on the host in the official order: repetition penalty
 * (Hugging Face semantics: every distinct id of the whole sequence, prompt included), presence and
 * frequency penalties (generated ids only, OpenAI semantics), logit bias, then Qwen's
 * StopWordsLogitsProcessor (after <|im_end|>/<|im_start|> the EOS score becomes 32768).
 */
import type { ResolvedOptions } from './options.js';

export interface SequenceState {
  /** Every id so far: prompt then generated. */
  ids: number[];
  promptLength: number;
}

export function processLogits(
  logits: Float32Array,
  seq: SequenceState,
  o: ResolvedOptions,
  special: { eos: number; imEnd: number; imStart: number },
): void {
  if (o.repetitionPenalty !== 1) {
    const p = o.repetitionPenalty;
    for (const id of new Set(seq.ids)) {
      const s = logits[id];
      logits[id] = s < 0 ? s * p : s / p;
    }
  }
  if (o.presencePenalty !== 0 || o.frequencyPenalty !== 0) {
    const counts = new Map<number, number>();
    for (let i = seq.promptLength; i < seq.ids.length; i++) counts.set(seq.ids[i], (counts.get(seq.ids[i]) ?? 0) + 1);
    for (const [id, n] of counts) logits[id] -= o.presencePenalty + o.frequencyPenalty * n;
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
