/**
 * Sampling warpers in Hugging Face order — temperature, top-k, top-p, then min-p — over the
 * processed logits, with a seeded generator so the same seed on the same backend gives the same tokens.
 */
import type { ResolvedOptions } from './options.js';
import { argmax } from './processors.js';

/** splitmix32-style generator: small, fast, good enough for sampling; seeded per request. */
export function createRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  };
}

export function sample(logits: Float32Array, o: ResolvedOptions, random: () => number): number {
  const t = o.temperature;
  const best = argmax(logits);
  if (!(logits[best] > -Infinity)) throw new RangeError('every token is banned');
  if (t === 0) return best;
  // Softmax mass of every token (one pass), then sort only a shortlist: the tokens within `width`
  // nats of the best. The shortlist is exact when it holds the top-k, or the whole nucleus
  // (its mass already reaches top_p); otherwise it widens. Tokens more than 40 nats below the best
  // carry < e^-40 of its probability each and are never candidates.
  const scaled = (i: number) => (logits[i] - logits[best]) / t;
  let totalMass = 0;
  for (let i = 0; i < logits.length; i++) totalMass += Math.exp(scaled(i));
  let ids: number[] = [];
  for (let width = 8; ; width *= 2) {
    const floor = -Math.min(width, 40);
    ids = [];
    let mass = 0;
    for (let i = 0; i < logits.length; i++) {
      const z = scaled(i);
      if (z >= floor) {
        ids.push(i);
        mass += Math.exp(z);
      }
    }
    const enough = width >= 40 || (o.topK > 0 && ids.length >= o.topK) || (o.topP < 1 && mass / totalMass >= o.topP);
    if (enough) break;
  }
  ids.sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.topK > 0) ids = ids.slice(0, o.topK);
  // probabilities over the whole vocabulary (as the warpers see them), renormalised after top-k
  const mass = o.topK > 0 ? ids.reduce((a, i) => a + Math.exp(scaled(i)), 0) : totalMass;
  let probs = ids.map((i) => Math.exp(scaled(i)) / mass);
  let total: number;
  if (o.topP < 1) {
    // keep the smallest prefix whose mass reaches top_p (at least one token)
    let mass = 0;
    let keep = 0;
    while (keep < probs.length && (keep === 0 || mass < o.topP)) mass += probs[keep++];
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
  }
  if (o.minP > 0) {
    const floor = o.minP * probs[0];
    const keep = probs.findIndex((p) => p < floor);
    if (keep > 0) {
      ids = ids.slice(0, keep);
      probs = probs.slice(0, keep);
    }
  }
  total = probs.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < ids.length; i++) {
    r -= probs[i];
    if (r < 0) return ids[i];
  }
  return ids[ids.length - 1];
}
