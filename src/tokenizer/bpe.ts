/**
 * Byte-pair encoding of one pre-tokenised piece, identical to tiktoken's `_byte_pair_merge`:
 * repeatedly merge the adjacent pair whose concatenation has the lowest rank, the leftmost one on
 * ties. Short pieces use tiktoken's linear scan; long ones a heap over a linked list, which makes
 * the same choices (minimum rank, then lowest start) in O(n log n) instead of O(n²).
 * Sub-range hashes come from prefix hashes in O(1). Work arrays are module-level and reused
 * (encoding is synchronous, so they are never shared between two calls in flight).
 */
import { HASH_BASE, type RankTable } from './rankTable.js';

const NONE = 0x7fffffff;
/** Above this many bytes the heap variant is used. */
export const HEAP_THRESHOLD = 32;

let prefix = new Int32Array(256); // prefix[k] = polyHash(bytes, 0, k)
let pow = new Int32Array(256); // pow[k] = HASH_BASE^k mod 2³²
let powLen = 1;
pow[0] = 1;
let starts = new Int32Array(256);
let pairRanks = new Int32Array(256);
let next = new Int32Array(256);
let prev = new Int32Array(256);
let heap = new Float64Array(768);

function prepare(bytes: Uint8Array, len: number): void {
  if (prefix.length < len + 1) {
    const cap = len * 2 + 2;
    prefix = new Int32Array(cap);
    starts = new Int32Array(cap);
    pairRanks = new Int32Array(cap);
    next = new Int32Array(cap);
    prev = new Int32Array(cap);
    heap = new Float64Array(cap * 3);
    const p = new Int32Array(cap);
    p.set(pow.subarray(0, powLen));
    pow = p;
  }
  while (powLen <= len) {
    pow[powLen] = Math.imul(pow[powLen - 1], HASH_BASE);
    powLen++;
  }
  let h = 0;
  prefix[0] = 0;
  for (let i = 0; i < len; i++) {
    h = (Math.imul(h, HASH_BASE) + bytes[i]) | 0;
    prefix[i + 1] = h;
  }
}

/** Rank of bytes[s, e) or NONE. */
function rankOf(table: RankTable, bytes: Uint8Array, s: number, e: number): number {
  const r =
    e - s === 2
      ? table.pairRank[(bytes[s] << 8) | bytes[s + 1]]
      : table.lookupHashed(bytes, s, e, (prefix[e] - Math.imul(prefix[s], pow[e - s])) | 0);
  return r < 0 ? NONE : r;
}

/** Appends the ids of bytes[0, len) to `out`. Every single byte must have a rank. */
export function bytePairEncode(table: RankTable, bytes: Uint8Array, len: number, out: number[]): void {
  if (len === 1) {
    out.push(table.lookup(bytes, 0, 1));
    return;
  }
  if (len > HEAP_THRESHOLD) bytePairEncodeHeap(table, bytes, len, out);
  else bytePairEncodeLinear(table, bytes, len, out);
}

/** tiktoken's algorithm verbatim (parts = start offsets with the rank of the pair starting there). */
export function bytePairEncodeLinear(table: RankTable, bytes: Uint8Array, len: number, out: number[]): void {
  prepare(bytes, len);
  const st = starts;
  const pr = pairRanks;
  let minRank = NONE;
  let minIdx = -1;
  for (let i = 0; i < len - 1; i++) {
    const rank = rankOf(table, bytes, i, i + 2);
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

  while (minRank !== NONE) {
    const i = minIdx;
    // ranks of the pairs that now start at i-1 and i (part i+1 is about to be removed)
    if (i > 0) pr[i - 1] = i + 2 < n ? rankOf(table, bytes, st[i - 1], st[i + 2]) : NONE;
    pr[i] = i + 3 < n ? rankOf(table, bytes, st[i], st[i + 3]) : NONE;
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
  for (let k = 0; k < n - 1; k++) out.push(rankOf(table, bytes, st[k], st[k + 1]));
}

/** Same merges as the linear scan, ordered by a binary heap keyed rank·2³² + start. */
export function bytePairEncodeHeap(table: RankTable, bytes: Uint8Array, len: number, out: number[]): void {
  prepare(bytes, len);
  // Nodes are byte positions 0..len (len = end sentinel); next/prev link the live ones.
  // pairRanks[i] = rank of (node i, its next) for a live node, or NONE; -1 marks a removed node.
  const nx = next;
  const pv = prev;
  const rank = pairRanks;
  const hp = heap;
  let size = 0;
  const SHIFT = 4294967296;
  const push = (key: number): void => {
    let k = size++;
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (hp[p] <= key) break;
      hp[k] = hp[p];
      k = p;
    }
    hp[k] = key;
  };
  const pop = (): number => {
    const top = hp[0];
    const last = hp[--size];
    let k = 0;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= size) break;
      if (c + 1 < size && hp[c + 1] < hp[c]) c++;
      if (hp[c] >= last) break;
      hp[k] = hp[c];
      k = c;
    }
    hp[k] = last;
    return top;
  };
  for (let i = 0; i <= len; i++) {
    nx[i] = i + 1;
    pv[i] = i - 1;
    rank[i] = NONE;
  }
  for (let i = 0; i < len - 1; i++) {
    const r = rankOf(table, bytes, i, i + 2);
    rank[i] = r;
    if (r !== NONE) push(r * SHIFT + i);
  }
  while (size > 0) {
    const key = pop();
    const r = Math.floor(key / SHIFT);
    const i = key - r * SHIFT;
    if (rank[i] !== r) continue; // stale: node removed (-1) or its pair changed
    const j = nx[i];
    const k = nx[j];
    rank[j] = -1;
    nx[i] = k;
    if (k <= len) pv[k] = i;
    const ri = k < len ? rankOf(table, bytes, i, nx[k]) : NONE;
    rank[i] = ri;
    if (ri !== NONE) push(ri * SHIFT + i);
    const p = pv[i];
    if (p >= 0) {
      const rp = rankOf(table, bytes, p, k);
      rank[p] = rp;
      if (rp !== NONE) push(rp * SHIFT + p);
    }
  }
  for (let i = 0; i < len; i = nx[i]) out.push(rankOf(table, bytes, i, nx[i]));
}
