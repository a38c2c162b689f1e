/**
 * A hand-written scanner with exactly the semantics of PAT_STR_JS (pattern.ts) under leftmost-first
 * backtracking: it returns where the regex's match starting at `i` ends. About 3× faster than
 * RegExp.exec and allocates nothing; test/tokenizer checks it against the regex on random text.
 *
 * Alternatives, in order:
 *   1 '(?:s|t|re|ve|m|ll|d) case-insensitive (s also ſ)   2 [^\r\n\p{L}\p{N}]?\p{L}+   3 \p{N}
 *   4 ' ?[^\s\p{L}\p{N}]+[\r\n]*'   5 \s*[\r\n]+   6 \s+(?!\S)   7 \s+      (\s = Unicode White_Space)
 */

const L = 1;
const N = 2;
const WS = 4;
// everything else ("other") is 0

/** Class bits of every BMP code unit (surrogates: other), built with the engine's own \p{L}/\p{N}. */
let bmp: Uint8Array | undefined;
const astral = new Map<number, number>();

function buildBmp(): Uint8Array {
  const t = new Uint8Array(65536);
  const units = new Uint16Array(65536);
  for (let c = 0; c < 65536; c++) units[c] = c >= 0xd800 && c <= 0xdfff ? 0 : c;
  let all = '';
  for (let c = 0; c < 65536; c += 8192) all += String.fromCharCode(...units.subarray(c, c + 8192));
  for (const m of all.matchAll(/\p{L}+/gu)) t.fill(L, m.index, m.index + m[0].length);
  for (const m of all.matchAll(/\p{N}+/gu)) t.fill(N, m.index, m.index + m[0].length);
  for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000]) t[c] = WS;
  for (let c = 0x2000; c <= 0x200a; c++) t[c] = WS;
  return t;
}

function astralClass(cp: number): number {
  let c = astral.get(cp);
  if (c === undefined) {
    const ch = String.fromCodePoint(cp);
    c = /\p{L}/u.test(ch) ? L : /\p{N}/u.test(ch) ? N : 0;
    if (astral.size < 4096) astral.set(cp, c);
  }
  return c;
}

/** Class of the code point at `i` (`s.length > i`); sets `cpLen` to its length in UTF-16 units. */
let cpLen = 1;
function classAt(s: string, i: number, t: Uint8Array): number {
  const c = s.charCodeAt(i);
  if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) {
      cpLen = 2;
      return astralClass(0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00));
    }
  }
  cpLen = 1;
  return t[c];
}

function scanClass(s: string, i: number, n: number, cls: number, t: Uint8Array): number {
  while (i < n && classAt(s, i, t) === cls) i += cpLen;
  return i;
}

function scanCrLf(s: string, i: number, n: number): number {
  for (;;) {
    if (i >= n) return i;
    const c = s.charCodeAt(i);
    if (c !== 0x0d && c !== 0x0a) return i;
    i++;
  }
}

/** End of the piece that starts at `i` (0 ≤ i < n = s.length). */
export function pieceEnd(s: string, i: number, n: number): number {
  const t = (bmp ??= buildBmp());
  const c = s.charCodeAt(i);
  // 1: contractions
  if (c === 0x27 && i + 1 < n) {
    const d = s.charCodeAt(i + 1) | 0x20; // ASCII lower case (ſ handled separately)
    if (d === 0x73 || d === 0x74 || d === 0x6d || d === 0x64 || s.charCodeAt(i + 1) === 0x17f) return i + 2;
    if (i + 2 < n) {
      const e = s.charCodeAt(i + 2) | 0x20;
      if ((d === 0x72 || d === 0x76) && e === 0x65) return i + 3;
      if (d === 0x6c && e === 0x6c) return i + 3;
    }
  }
  const cls = classAt(s, i, t);
  const len = cpLen;
  // 2: optional non-letter/digit (not CR/LF) then letters
  if (cls === L) return scanClass(s, i + len, n, L, t);
  if (cls !== N && c !== 0x0d && c !== 0x0a && i + len < n && classAt(s, i + len, t) === L) {
    return scanClass(s, i + len + cpLen, n, L, t);
  }
  // 3: one digit
  if (cls === N) return i + len;
  // 4: optional space, "other" run, trailing CR/LF
  if (cls === 0) return scanCrLf(s, scanClass(s, i + len, n, 0, t), n);
  if (c === 0x20 && i + 1 < n && classAt(s, i + 1, t) === 0) {
    return scanCrLf(s, scanClass(s, i + 1 + cpLen, n, 0, t), n);
  }
  // whitespace (all BMP, one unit each)
  let j = i + 1;
  let lastNl = c === 0x0d || c === 0x0a ? i : -1;
  while (j < n && t[s.charCodeAt(j)] === WS) {
    const w = s.charCodeAt(j);
    if (w === 0x0d || w === 0x0a) lastNl = j;
    j++;
  }
  // 5: up to and including the last CR/LF of the run
  if (lastNl >= 0) return lastNl + 1;
  // 6: the run, leaving its last space to prefix what follows (unless at the end)
  if (j === n) return j;
  if (j - i >= 2) return j - 1;
  // 7
  return j;
}
