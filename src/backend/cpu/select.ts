/** Host-side argmax / top-k over read-back logits (ties → lower index). */
import type { TopK } from '../backend.js';

export function argmaxOf(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** The k largest values, descending; equal values keep ascending index order. */
export function topKOf(x: Float32Array, k: number): TopK {
  const ids = new Int32Array(k);
  const values = new Float32Array(k);
  let n = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (n === k && !(v > values[k - 1])) continue;
    // insertion: after every element ≥ v (earlier indices win ties)
    let j = n < k ? n : k - 1;
    while (j > 0 && values[j - 1] < v) {
      values[j] = values[j - 1];
      ids[j] = ids[j - 1];
      j--;
    }
    values[j] = v;
    ids[j] = i;
    if (n < k) n++;
  }
  return { ids, values };
}
