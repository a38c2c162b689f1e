// The hand-written scanner must split exactly like the pattern (PAT_STR_JS) it replaces.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PAT_STR_JS } from '../../src/tokenizer/pattern.js';
import { pieceEnd } from '../../src/tokenizer/pretokenize.js';

const viaRegex = (s: string): string[] => [...s.matchAll(new RegExp(PAT_STR_JS, 'gu'))].map((m) => m[0]);
const viaScanner = (s: string): string[] => {
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    const j = pieceEnd(s, i, s.length);
    expect(j).toBeGreaterThan(i);
    out.push(s.slice(i, j));
    i = j;
  }
  return out;
};

const unit = fc.oneof(
  fc.constantFrom(' ', ' ', '  ', '\t', '\n', '\r', '\r\n', '\v', '\f', '\u00a0', '\u3000', '\u0085', '\u2028', '\u2009', '\ufeff', '\u200b'),
  fc.constantFrom("'", "'s", "'S", "'ſ", "'re", "'rE", "'r", "'ve", "'V", "'ll", "'lL", "'l", "'d", "'D", "'t", "'m", "'x", 'ſ', 'K'),
  fc.constantFrom('a', 'Z', 'é', 'ß', '你', '한', 'Ω', '\u0301', '𝐀', '𠀀', 'ǅ', 'ʰ'),
  fc.constantFrom('0', '9', '٣', '²', 'Ⅻ', '½', '𝟎', '𐄇'),
  fc.constantFrom('(', '.', '-', '_', '😀', '🏽', '\ud800', '\udc00', '\u0000', '€', '、', '🄀', '\u00ad'),
);

describe('pieceEnd (scanner) ≡ PAT_STR_JS (regex)', () => {
  it('on strings of edge-case units', () => {
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 30 }), (s) => {
        expect(viaScanner(s)).toEqual(viaRegex(s));
      }),
      { seed: 99, numRuns: 20000 },
    );
  });

  it('on arbitrary code units and code points', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 })), (s) => {
        expect(viaScanner(s)).toEqual(viaRegex(s));
      }),
      { seed: 100, numRuns: 5000 },
    );
  });

  it('on every BMP code unit alone and after a space, a letter and an apostrophe', () => {
    for (let c = 0; c < 0x10000; c++) {
      const ch = String.fromCharCode(c);
      for (const s of [ch, ` ${ch}`, `a${ch}x`, `'${ch}`, `${ch}${ch}b`]) {
        const a = viaScanner(s);
        const b = viaRegex(s);
        if (a.length !== b.length || a.some((p, k) => p !== b[k])) expect({ c, a }).toEqual({ c, a: b });
      }
    }
  });
});
