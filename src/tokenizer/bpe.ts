/**
 * Byte-pair encoding of one pre-tokenised piece, identical to tiktoken's `_byte_pair_merge`:
 * repeatedly merge the adjacent pair whose concatenation has the lowest rank, the leftmost one on
 * ties. Short pieces use tiktoken's linear scan; long ones a heap over a linked list, which makes
 * the same choices (minimum rank, then lowest start) in O(n log n) instead of O(n²).
 */
import type { RankTable } from './rankTable.js';

const NONE = 0x7fffffff;
/** Above this many bytes the heap variant is used. */
export const HEAP_THRESHOLD = 96;

let starts = new Int32Array(256);
let pairRanks = new Int32Array(256);

/** Appends the ids of bytes[0, len) to `out`. Every single byte must have a rank. */
export function bytePairEncode(table: RankTable, bytes: Uint8Array, len: number, out: number[]): void {
  if (len === 1) {
    out.push(table.lookup(bytes, 0, 1));
    return;
  }
  if (len > HEAP_THRESHOLD) {
    bytePairEncodeHeap(table, bytes, len, out);
    return;
  }
  bytePairEncodeLinear(table, bytes, len, out);
}

/** tiktoken's algorithm verbatim (parts = start offsets with the rank of the pair starting there). */
export function bytePairEncodeLinear(table: RankTable, bytes: Uint8Array, len: number, out: number[]): void {
  if (starts.length < len + 2) {
    starts = new Int32Array(len * 2 + 2);
    pairRanks = new Int32Array(len * 2 + 2);
  }
  const st = starts;
  const pr = pairRanks;
  let minRank = NONE;
  let minIdx = -1;
  for (let i = 0; i < len - 1; i++) {
    const r = table.lookup(bytes, i, i + 2);
    const rank = r < 0 ? NONE : r;
    if (rank < minRank) {
      minRank = rank;
      minIdx = i;
    }
    st[i] = i;
    pr[i] = rank;
  }
  st[len - 1] = len - 1;
  pr[len - 1] = NONE;
  st[len] = len;
  pr[len] = NONE;
  let n = len + 1; // number of parts

  const rankAt = (i: number): number => {
    if (i + 3 < n) {
      const r = table.lookup(bytes, st[i], st[i + 3]);
      return r < 0 ? NONE : r;
    }
    return NONE;
  };

  while (minRank !== NONE) {
    const i = minIdx;
    if (i > 0) pr[i - 1] = rankAt(i - 1);
    pr[i] = rankAt(i);
    // remove part i+1
    st.copyWithin(i + 1, i + 2, n);
    pr.copyWithin(i + 1, i + 2, n);
    n--;
    minRank = NONE;
    minIdx = -1;
    for (let k = 0; k < n - 1; k++) {
      if (pr[k] < minRank) {
        minRank = pr[k];
        minIdx = k;
      }
    }
  }
  for (let k = 0; k < n - 1; k++) out.push(table.lookup(bytes, st[k], st[k + 1]));
}

/** Same merges as the linear scan, ordered by a binary heap keyed rank·2³² + start. */
export function bytePairEncodeHeap(table: RankTable, bytes: Uint8Array, len: number, out: number[]): void {
  // Nodes are byte positions 0..len (len is the end sentinel); next/prev link the live ones.
  const next = new Int32Array(len + 1);
  const prev = new Int32Array(len + 1);
  const rank = new Int32Array(len + 1).fill(NONE); // rank of the pair (node, next node)
  const alive = new Uint8Array(len + 1).fill(1);
  for (let i = 0; i <= len; i++) {
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  const heap: number[] = [];
  const push = (key: number): void => {
    let k = heap.length;
    heap.push(key);
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (heap[p] <= key) break;
      heap[k] = heap[p];
      k = p;
    }
    heap[k] = key;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop() as number;
    const size = heap.length;
    if (size > 0) {
      let k = 0;
      for (;;) {
        let c = 2 * k + 1;
        if (c >= size) break;
        if (c + 1 < size && heap[c + 1] < heap[c]) c++;
        if (heap[c] >= last) break;
        heap[k] = heap[c];
        k = c;
      }
      heap[k] = last;
    }
    return top;
  };
  const SHIFT = 4294967296;
  // Pair starting at node i spans to the node after next(i).
  const pairRank = (i: number): number => {
    const j = next[i];
    if (j >= len) return NONE;
    const r = table.lookup(bytes, i, next[j]);
    return r < 0 ? NONE : r;
  };
  for (let i = 0; i < len - 1; i++) {
    const r = table.lookup(bytes, i, i + 2);
    if (r >= 0) {
      rank[i] = r;
      push(r * SHIFT + i);
    }
  }
  while (heap.length > 0) {
    const key = pop();
    const r = Math.floor(key / SHIFT);
    const i = key - r * SHIFT;
    if (!alive[i] || rank[i] !== r) continue; // stale entry
    // merge node i with next[i]
    const j = next[i];
    alive[j] = 0;
    next[i] = next[j];
    if (next[j] <= len) prev[next[j]] = i;
    const ri = pairRank(i);
    rank[i] = ri;
    if (ri !== NONE) push(ri * SHIFT + i);
    const p = prev[i];
    if (p >= 0) {
      const rp = pairRank(p);
      rank[p] = rp;
      if (rp !== NONE) push(rp * SHIFT + p);
    }
  }
  for (let i = 0; i < len; i = next[i]) out.push(table.lookup(bytes, i, next[i]));
}
