/**
 * The mergeable ranks of a `.tiktoken` file ("<base64 token> <rank>" per line) held as one byte pool
 * plus an open-addressing hash table keyed by the token bytes, so BPE lookups need no string keys
 * and loading 150k lines takes tens of milliseconds.
 */
import { TokenizerError } from '../errors.js';

const B64 = (() => {
  const t = new Int16Array(256).fill(-1);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < 64; i++) t[abc.charCodeAt(i)] = i;
  return t;
})();

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Polynomial hash mod 2³² (h = h·B + byte). It can be taken over any range in O(1) from prefix
 * hashes (see rangeHash), which BPE uses for its many sub-range lookups; fmix spreads it for masking.
 */
export const HASH_BASE = 0x01000193;

export function polyHash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0;
  for (let i = start; i < end; i++) h = (Math.imul(h, HASH_BASE) + bytes[i]) | 0;
  return h;
}

/** murmur3's fmix32. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

export class RankTable {
  /** Number of mergeable ranks (ids 0..size-1). */
  readonly size: number;
  private readonly pool: Uint8Array;
  private readonly tokStart: Int32Array;
  private readonly tokLen: Int32Array;
  private readonly slots: Int32Array; // rank, or -1 for empty
  private readonly mask: number;
  /** Ranks of all 2-byte tokens indexed by (b0 << 8 | b1), -1 when none: BPE's most common lookup. */
  readonly pairRank = new Int32Array(65536).fill(-1);

  private constructor(pool: Uint8Array, tokStart: Int32Array, tokLen: Int32Array, name: string) {
    this.pool = pool;
    this.tokStart = tokStart;
    this.tokLen = tokLen;
    this.size = tokStart.length;
    let cap = 1;
    while (cap < this.size * 2) cap <<= 1;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap).fill(-1);
    for (let r = 0; r < this.size; r++) {
      const s = tokStart[r];
      const e = s + tokLen[r];
      let h = fmix(polyHash(pool, s, e)) & this.mask;
      for (;;) {
        const other = this.slots[h];
        if (other < 0) {
          this.slots[h] = r;
          if (e - s === 2) this.pairRank[(pool[s] << 8) | pool[s + 1]] = r;
          break;
        }
        if (this.equals(other, pool, s, e)) {
          throw new TokenizerError(`${name}: ranks ${other} and ${r} have the same token bytes`);
        }
        h = (h + 1) & this.mask;
      }
    }
  }

  private equals(rank: number, bytes: Uint8Array, start: number, end: number): boolean {
    const len = end - start;
    if (this.tokLen[rank] !== len) return false;
    const pool = this.pool;
    const off = this.tokStart[rank] - start;
    for (let i = start; i < end; i++) if (pool[i + off] !== bytes[i]) return false;
    return true;
  }

  /** Rank of the token whose bytes are bytes[start, end), or -1. */
  lookup(bytes: Uint8Array, start: number, end: number): number {
    return this.lookupHashed(bytes, start, end, polyHash(bytes, start, end));
  }

  /** lookup() with `hash` = polyHash(bytes, start, end) already known. */
  lookupHashed(bytes: Uint8Array, start: number, end: number, hash: number): number {
    let h = fmix(hash) & this.mask;
    const slots = this.slots;
    for (;;) {
      const r = slots[h];
      if (r < 0) return -1;
      if (this.equals(r, bytes, start, end)) return r;
      h = (h + 1) & this.mask;
    }
  }

  /** The token bytes of `rank` (a view into the pool: do not mutate). */
  bytesView(rank: number): Uint8Array {
    const s = this.tokStart[rank];
    return this.pool.subarray(s, s + this.tokLen[rank]);
  }

  tokenLength(rank: number): number {
    return this.tokLen[rank];
  }

  /** Copies the bytes of `rank` into `out` at `at`; returns the new end. */
  copyInto(rank: number, out: Uint8Array, at: number): number {
    const s = this.tokStart[rank];
    const len = this.tokLen[rank];
    out.set(this.pool.subarray(s, s + len), at);
    return at + len;
  }

  /**
   * Parses a `.tiktoken` file as tiktoken's load_tiktoken_bpe does (lines split on LF/CRLF, empty
   * lines skipped, two whitespace-separated fields). Ranks must be exactly 0..N-1 and every single
   * byte must be a token (BPE starts from bytes). Errors name the line number.
   */
  static parse(bytes: Uint8Array, name = 'qwen.tiktoken'): RankTable {
    const n = bytes.length;
    let lines = 1;
    for (let p = bytes.indexOf(LF); p >= 0; p = bytes.indexOf(LF, p + 1)) lines++;
    const pool = new Uint8Array(Math.floor((n * 3) / 4) + 4);
    const starts = new Int32Array(lines);
    const lens = new Int32Array(lines);
    const ranks = new Int32Array(lines);
    const lineNos = new Int32Array(lines);
    let count = 0;
    let poolEnd = 0;
    let pos = 0;
    let lineNo = 0;
    const fail = (msg: string): never => {
      throw new TokenizerError(`${name}: line ${lineNo}: ${msg}`);
    };
    while (pos < n) {
      lineNo++;
      let eol = bytes.indexOf(LF, pos);
      if (eol < 0) eol = n;
      let end = eol;
      if (end > pos && bytes[end - 1] === CR) end--;
      let i = pos;
      pos = eol + 1;
      if (i === end) continue; // empty line
      while (i < end && (bytes[i] === SPACE || bytes[i] === TAB)) i++;
      // field 1: base64 token
      const b64Start = i;
      while (i < end && bytes[i] !== SPACE && bytes[i] !== TAB) i++;
      const b64End = i;
      while (i < end && (bytes[i] === SPACE || bytes[i] === TAB)) i++;
      // field 2: decimal rank
      const rankStart = i;
      let rank = 0;
      while (i < end && bytes[i] >= 0x30 && bytes[i] <= 0x39) {
        rank = rank * 10 + (bytes[i] - 0x30);
        i++;
      }
      const rankEnd = i;
      while (i < end && (bytes[i] === SPACE || bytes[i] === TAB)) i++;
      if (b64End === b64Start || rankEnd === rankStart || i !== end) {
        fail(`expected "<base64 token> <rank>"`);
      }
      if (rankEnd - rankStart > 9) fail('rank is too large');
      const tokStart = poolEnd;
      poolEnd = decodeBase64(bytes, b64Start, b64End, pool, poolEnd, fail);
      if (poolEnd === tokStart) fail('empty token');
      starts[count] = tokStart;
      lens[count] = poolEnd - tokStart;
      ranks[count] = rank;
      lineNos[count] = lineNo;
      count++;
    }
    if (count === 0) throw new TokenizerError(`${name}: no ranks found`);
    // Ranks must be a permutation of 0..count-1 (special token ids follow them).
    const tokStart = new Int32Array(count).fill(-1);
    const tokLen = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      const r = ranks[k];
      lineNo = lineNos[k];
      if (r >= count) fail(`rank ${r} is out of range: ${count} ranks must be numbered 0..${count - 1}`);
      if (tokStart[r] >= 0) fail(`rank ${r} appears twice`);
      tokStart[r] = starts[k];
      tokLen[r] = lens[k];
    }
    const table = new RankTable(pool, tokStart, tokLen, name);
    const one = new Uint8Array(1);
    for (let b = 0; b < 256; b++) {
      one[0] = b;
      if (table.lookup(one, 0, 1) < 0) {
        throw new TokenizerError(`${name}: the single byte 0x${b.toString(16).padStart(2, '0')} has no rank`);
      }
    }
    return table;
  }
}

/** Strict base64 (standard alphabet, '=' padding to a multiple of 4) into out at `at`; returns the new end. */
function decodeBase64(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
  fail: (msg: string) => never,
): number {
  const len = end - start;
  if (len % 4 !== 0) fail('token is not valid base64 (length is not a multiple of 4)');
  let pad = 0;
  if (src[end - 1] === 0x3d) pad = src[end - 2] === 0x3d ? 2 : 1;
  const dataEnd = end - pad;
  let acc = 0;
  let bits = 0;
  for (let i = start; i < dataEnd; i++) {
    const v = B64[src[i]];
    if (v < 0) fail(`token is not valid base64 (byte 0x${src[i].toString(16)} at column ${i - start + 1})`);
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  return at;
}
