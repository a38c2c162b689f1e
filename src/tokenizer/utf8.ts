/**
 * UTF-8 helpers with Python's semantics: `bytes.decode('utf-8', errors)` replaces (or drops) each
 * *maximal invalid subpart* — the same rule as the WHATWG decoder, so 'replace' can use TextDecoder.
 * A BOM is ordinary text in Python, hence `ignoreBOM: true` (keep it).
 */
import { TokenizerError } from '../errors.js';

export type DecodeErrors = 'replace' | 'ignore' | 'strict';

const replacingDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
const fatalDecoder = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });

/**
 * Encodes s[start, end) as UTF-8 into `out` at 0 (lone surrogates → U+FFFD, as TextEncoder does);
 * returns the byte length. `out` must hold 3 bytes per UTF-16 unit.
 */
export function encodeUtf8Into(s: string, out: Uint8Array, start = 0, end = s.length): number {
  let n = 0;
  const len = end;
  for (let i = start; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        out[n++] = 0xf0 | (c >> 18);
        out[n++] = 0x80 | ((c >> 12) & 0x3f);
        out[n++] = 0x80 | ((c >> 6) & 0x3f);
        out[n++] = 0x80 | (c & 0x3f);
      } else {
        out[n++] = 0xef;
        out[n++] = 0xbf;
        out[n++] = 0xbd;
      }
    } else {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}

/** Allowed range of the byte after a lead byte, and how many continuation bytes the lead needs (0 = not a lead). */
function leadInfo(b: number): { need: number; lo: number; hi: number } {
  if (b >= 0xc2 && b <= 0xdf) return { need: 1, lo: 0x80, hi: 0xbf };
  if (b === 0xe0) return { need: 2, lo: 0xa0, hi: 0xbf };
  if (b === 0xed) return { need: 2, lo: 0x80, hi: 0x9f };
  if (b >= 0xe1 && b <= 0xef) return { need: 2, lo: 0x80, hi: 0xbf };
  if (b === 0xf0) return { need: 3, lo: 0x90, hi: 0xbf };
  if (b >= 0xf1 && b <= 0xf3) return { need: 3, lo: 0x80, hi: 0xbf };
  if (b === 0xf4) return { need: 3, lo: 0x80, hi: 0x8f };
  return { need: 0, lo: 0, hi: 0 };
}

/**
 * Reference decoder: walks the bytes, emitting each valid character and, for each maximal invalid
 * subpart, U+FFFD ('replace') or nothing ('ignore'). Used for 'ignore' and to check TextDecoder.
 */
export function decodeUtf8Reference(bytes: Uint8Array, errors: 'replace' | 'ignore'): string {
  const units: number[] = [];
  let out = '';
  const n = bytes.length;
  let i = 0;
  const bad = (): void => {
    if (errors === 'replace') units.push(0xfffd);
  };
  while (i < n) {
    if (units.length > 8192) {
      out += String.fromCharCode(...units);
      units.length = 0;
    }
    const b = bytes[i];
    if (b < 0x80) {
      units.push(b);
      i++;
      continue;
    }
    const { need, lo, hi } = leadInfo(b);
    if (need === 0) {
      bad();
      i++;
      continue;
    }
    let j = i + 1;
    if (j >= n || bytes[j] < lo || bytes[j] > hi) {
      bad();
      i = j;
      continue;
    }
    j++;
    let k = 1;
    while (k < need && j < n && bytes[j] >= 0x80 && bytes[j] <= 0xbf) {
      j++;
      k++;
    }
    if (k < need) {
      bad();
      i = j;
      continue;
    }
    let cp = b & (need === 1 ? 0x1f : need === 2 ? 0x0f : 0x07);
    for (let t = i + 1; t < j; t++) cp = (cp << 6) | (bytes[t] & 0x3f);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      units.push(cp);
    }
    i = j;
  }
  return out + String.fromCharCode(...units);
}

/** Python `bytes.decode('utf-8', errors)`; 'strict' raises TokenizerError on invalid bytes. */
export function decodeUtf8(bytes: Uint8Array, errors: DecodeErrors = 'replace'): string {
  if (errors === 'replace') return replacingDecoder.decode(bytes);
  if (errors === 'ignore') return decodeUtf8Reference(bytes, 'ignore');
  if (errors === 'strict') {
    try {
      return fatalDecoder.decode(bytes);
    } catch (e) {
      throw new TokenizerError(`decode: token bytes are not valid UTF-8 (errors='strict')`);
    }
  }
  throw new TokenizerError(`decode: errors must be 'replace', 'ignore' or 'strict', got ${JSON.stringify(errors)}`);
}

/**
 * Where the undecidable tail of `bytes[0, end)` starts: the position of a trailing sequence that is
 * a proper prefix of a valid character (it may still complete), or `end` when there is none.
 * Everything before that position decodes the same whatever bytes follow, because a lead byte is
 * never a continuation byte: the decoder always lands on it.
 */
export function settledEnd(bytes: Uint8Array, end: number): number {
  const from = Math.max(0, end - 3);
  for (let q = end - 1; q >= from; q--) {
    const b = bytes[q];
    if (b >= 0x80 && b <= 0xbf) continue; // continuation byte: keep looking for its lead
    const { need, lo, hi } = leadInfo(b);
    const have = end - q - 1; // continuation bytes present after the lead
    if (need === 0 || have >= need) return end;
    if (have >= 1 && (bytes[q + 1] < lo || bytes[q + 1] > hi)) return end;
    // bytes[q+2..] are continuation bytes (the loop passed over them)
    return q;
  }
  return end;
}
