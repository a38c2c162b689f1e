// Encode behaviour beyond the fixtures: special-token options, NFC, the pattern's edge cases, and
// a cross-check of the BPE against js-tiktoken's independent implementation on random text.
import fc from 'fast-check';
import { Tiktoken } from 'js-tiktoken/lite';
import { describe, expect, it } from 'vitest';
import { ArgumentError, TokenizerError } from '../../src/errors.js';
import { PAT_STR_JS, SPECIAL_TOKEN_TEXTS } from '../../src/tokenizer/index.js';
import { officialTokenizer, readFixture } from './loadTokenizer.js';

const tok = officialTokenizer();
const NONE = { allowedSpecial: [] as string[] };

/** Random text biased towards the pattern's and the special-token matcher's edge cases. */
const trickyText = fc.string({
  unit: fc.oneof(
    fc.constantFrom(' ', '  ', '\t', '\n', '\r\n', '\r', '\u00a0', '\u3000', '\u0085', '\ufeff', '\u2028'),
    fc.constantFrom("'", "'s", "'S", "'ſ", "'re", "'RE", "'ll", "'Ll", "'d", "'t", "'m", "'ve", 'ſ'),
    fc.constantFrom('<|', '|>', '<|im_end|>', '<|endoftext|>', '<|extra_204|>', 'im_start', '<|extra_205|>'),
    fc.constantFrom('0', '12', '٣', '²', 'Ⅻ', 'a', 'Z', 'é', 'e\u0301', '\u0301', 'ß', 'İ', 'ﬁ'),
    fc.constantFrom('你', '好', '，', '。', '😀', '👍🏽', '𠀀', '한', '\u1100\u1161', 'Ω', 'Ω'),
    fc.constantFrom('(', ')', '{', '}', ';', '=>', '...', '---', '#', '$', '\\'),
    fc.string({ unit: 'binary', maxLength: 3 }),
  ),
  maxLength: 40,
});

describe('special tokens', () => {
  it('has 208 special tokens at 151643..151850 and vocabSize 151851', () => {
    expect(SPECIAL_TOKEN_TEXTS).toHaveLength(208);
    SPECIAL_TOKEN_TEXTS.forEach((t, i) => expect(tok.specialTokenId(t)).toBe(151643 + i));
    expect(tok.specialTokenId('<|extra_204|>')).toBe(151850);
    expect(tok.specialTokenId('<|extra_205|>')).toBeUndefined();
    expect(tok.specialTokenId('hello')).toBeUndefined();
    expect([tok.endOfText, tok.imStart, tok.imEnd, tok.vocabSize]).toEqual([151643, 151644, 151645, 151851]);
  });

  it('recognises every special text by default, and none with allowedSpecial []', () => {
    for (const t of SPECIAL_TOKEN_TEXTS) {
      const id = tok.specialTokenId(t) as number;
      expect(tok.encode(`a${t}b`)).toEqual([64, id, 65]);
      const plain = tok.encode(`a${t}b`, NONE);
      expect(plain.every((x) => x < tok.endOfText)).toBe(true);
      expect(tok.decode(plain)).toBe(`a${t}b`);
    }
  });

  it('allows only the listed specials; others stay text', () => {
    const ids = tok.encode('<|im_start|>x<|im_end|>', { allowedSpecial: ['<|im_end|>'] });
    expect(ids.filter((x) => x >= tok.endOfText)).toEqual([tok.imEnd]);
    expect(ids[ids.length - 1]).toBe(tok.imEnd);
    expect(tok.decode(ids)).toBe('<|im_start|>x<|im_end|>');
  });

  it('finds the leftmost special match, overlapping text included', () => {
    expect(tok.encode('<|<|im_end|>')).toEqual([...tok.encode('<|', NONE), tok.imEnd]);
    expect(tok.encode('<|im_end|><|im_start|>')).toEqual([tok.imEnd, tok.imStart]);
    expect(tok.encode('<|im_end||>')).toEqual(tok.encode('<|im_end||>', NONE));
    expect(tok.encode('<|extra_2040|>')).toEqual(tok.encode('<|extra_2040|>', NONE));
  });

  it('throws TokenizerError for disallowed special text, naming it', () => {
    expect(() => tok.encode('hi <|im_end|>', { allowedSpecial: [], disallowedSpecial: 'all' })).toThrow(TokenizerError);
    expect(() => tok.encode('hi <|im_end|>', { allowedSpecial: [], disallowedSpecial: 'all' })).toThrow(/<\|im_end\|>/);
    // 'all' means every special that is not allowed
    expect(tok.encode('<|im_end|>', { allowedSpecial: ['<|im_end|>'], disallowedSpecial: 'all' })).toEqual([tok.imEnd]);
    expect(() => tok.encode('<|im_start|>', { allowedSpecial: ['<|im_end|>'], disallowedSpecial: 'all' })).toThrow(TokenizerError);
    // an explicit list is checked even against allowed ones (as tiktoken does)
    expect(() => tok.encode('x<|endoftext|>', { disallowedSpecial: ['<|endoftext|>'] })).toThrow(/offset 1/);
    expect(tok.encode('plain text', { disallowedSpecial: 'all', allowedSpecial: [] })).toEqual(tok.encode('plain text'));
  });

  it('rejects a bare string as a special set', () => {
    expect(() => tok.encode('x', { allowedSpecial: '<|im_end|>' as unknown as string[] })).toThrow(ArgumentError);
    expect(() => tok.encode(5 as unknown as string)).toThrow(ArgumentError);
  });
});

describe('normalisation and the split pattern', () => {
  it('normalises to NFC before encoding', () => {
    expect(tok.encode('cafe\u0301')).toEqual(tok.encode('café'));
    expect(tok.encode('\u1100\u1161')).toEqual(tok.encode('가'));
    expect(tok.decode(tok.encode('e\u0301'))).toBe('é');
  });

  it('encodes a lone surrogate as U+FFFD, as tiktoken does', () => {
    expect(tok.encode('a\ud800b')).toEqual(tok.encode('a\ufffdb'));
    expect(tok.encode('\udc00')).toEqual(tok.encode('\ufffd'));
  });

  it('expands the case-insensitive contractions', () => {
    const pieces = (s: string): string[] => [...s.matchAll(new RegExp(PAT_STR_JS, 'gu'))].map((m) => m[0]);
    expect(pieces("I'M HE'LL we'Re it'S")).toEqual(['I', "'M", ' HE', "'LL", ' we', "'Re", ' it', "'S"]);
    // Rust regex folds s/S/ſ together
    expect(pieces("x'ſt")).toEqual(['x', "'ſ", 't']);
    // Rust's \s is White_Space: U+0085 is space, U+FEFF is not
    expect(pieces('a\u0085\u0085b')).toEqual(['a', '\u0085', '\u0085b']);
    expect(pieces('a \ufeffb')).toEqual(['a', ' \ufeff', 'b']);
    expect(pieces('x  \n\n  y')).toEqual(['x', '  \n\n', ' ', ' y']);
    expect(pieces('123')).toEqual(['1', '2', '3']);
  });

  it('splits digits one per token', () => {
    expect(tok.encode('2026')).toEqual([17, 15, 17, 21]);
  });
});

describe('BPE cross-check against js-tiktoken (independent implementation)', () => {
  // js-tiktoken's rank format: "! <first rank> <base64 token> ..." with tokens in rank order.
  const lines = readFixture('qwen.tiktoken').toString('latin1').split('\n').filter(Boolean);
  const byRank: string[] = [];
  for (const l of lines) {
    const [b64, rank] = l.split(' ');
    byRank[Number(rank)] = b64;
  }
  const reference = new Tiktoken({ pat_str: PAT_STR_JS, special_tokens: {}, bpe_ranks: `! 0 ${byRank.join(' ')}` });

  it('agrees on random tricky text', () => {
    fc.assert(
      fc.property(trickyText, (s) => {
        expect(tok.encode(s, NONE)).toEqual(reference.encode(s.normalize('NFC'), [], []));
      }),
      { seed: 20261127, numRuns: 600 },
    );
  });

  it('agrees on long pieces (heap path) and random code points', () => {
    const long = fc.string({ unit: fc.constantFrom('a', 'b', 'ab', 'é', '你', '好', 'x', '😀'), minLength: 40, maxLength: 400 });
    fc.assert(
      fc.property(fc.oneof(long, fc.string({ unit: 'binary', maxLength: 200 })), (s) => {
        expect(tok.encode(s, NONE)).toEqual(reference.encode(s.normalize('NFC'), [], []));
      }),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('round trip', () => {
  it('decode(encode(s)) === NFC(s) for random strings', () => {
    fc.assert(
      fc.property(fc.oneof(trickyText, fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 30 })), (s) => {
        expect(tok.decode(tok.encode(s))).toBe(s.normalize('NFC'));
        expect(tok.decode(tok.encode(s, NONE))).toBe(s.normalize('NFC'));
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  it('handles a large input with long runs', () => {
    const s = `${'a'.repeat(5000)} ${' '.repeat(3000)}x${'你'.repeat(2000)}\n`;
    expect(tok.decode(tok.encode(s))).toBe(s);
  });
});
