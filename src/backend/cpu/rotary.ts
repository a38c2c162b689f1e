/** Host-side RoPE cos/sin and LogN tables, computed in f32 the way torch does. */

const invFreqCache = new Map<string, Float32Array>();

/** inv_freq[i] = fround(1 / fround(base^fround(2i / rd))) with base taken as f32 (torch's pow(scalar, tensor)). */
export function invFreq(base: number, rd: number): Float32Array {
  const key = `${base}/${rd}`;
  let f = invFreqCache.get(key);
  if (!f) {
    f = new Float32Array(rd / 2);
    const b = Math.fround(base);
    for (let i = 0; i < f.length; i++) f[i] = Math.fround(1 / Math.fround(Math.pow(b, Math.fround((2 * i) / rd))));
    if (invFreqCache.size > 64) invFreqCache.clear();
    invFreqCache.set(key, f);
  }
  return f;
}

/** Per row: rd/2 cosines then rd/2 sines of fround(pos · inv_freq), pos = pos0 + row. */
export function ropeTable(base: number, rd: number, pos0: number, rows: number): Float32Array {
  const inv = invFreq(base, rd);
  const half = rd / 2;
  const t = new Float32Array(rows * rd);
  for (let r = 0; r < rows; r++) {
    const pos = pos0 + r;
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(pos * inv[i]);
      t[r * rd + i] = Math.cos(angle);
      t[r * rd + half + i] = Math.sin(angle);
    }
  }
  return t;
}

/** LogN factor per query row: fround(ln(p + 1) / ln(seqLength)) when p + 1 > seqLength, else 1. */
export function lognTable(pos0: number, rows: number, seqLength: number): Float32Array {
  const t = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const p = pos0 + r;
    t[r] = seqLength > 0 && p + 1 > seqLength ? Math.log(p + 1) / Math.log(seqLength) : 1;
  }
  return t;
}
