// Decode and streaming behaviour beyond the fixtures.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../src/errors.js';
import { decodeUtf8Reference, settledEnd } from '../../src/tokenizer/utf8.js';
import { officialTokenizer } from './loadTokenizer.js';

const tok = officialTokenizer();
const enc = (s: string): number[] => tok.encode(s, { allowedSpecial: [] });

/** ids that tend to produce partial UTF-8: single bytes, fragments of multi-byte chars, specials. */
const anyId = fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.integer({ min: 0, max: tok.vocabSize - 1 }),
  fc.constantFrom(...enc('😀👍🏽𠀀你好世界é'), 141334, 144349, 145375, 172, 63219, 222),
  fc.constantFrom(tok.endOfText, tok.imStart, tok.imEnd, tok.vocabSize - 1),
);

describe('decode', () => {
  it("'replace' is TextDecoder = maximal-subpart replacement (checked against the reference walker)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.array(fc.constantFrom(0xe0, 0xed, 0xf0, 0xf4, 0xc2, 0x80, 0xbf, 0xa0, 0x9f, 0x90, 0x8f, 0x41, 0xef, 0xbb), { maxLength: 20 }), (a, b) => {
          const bytes = new Uint8Array([...a, ...b]);
          expect(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes)).toBe(decodeUtf8Reference(bytes, 'replace'));
        }),
      { seed: 3, numRuns: 2000 },
    );
  });

  it("keeps a leading BOM (Python's utf-8 codec does not strip it)", () => {
    const ids = enc('\ufeffx');
    expect(tok.decode(ids)).toBe('\ufeffx');
  });

  it("errors 'ignore' drops invalid bytes but keeps a real U+FFFD; 'strict' throws", () => {
    const e2 = bytesToId(0xe2);
    const ids = [...enc('\ufffd'), e2, ...enc('x')];
    expect(tok.decode(ids, { errors: 'ignore' })).toBe('\ufffdx');
    expect(tok.decode(ids)).toBe('\ufffd\ufffdx');
    expect(() => tok.decode(ids, { errors: 'strict' })).toThrow(TokenizerError);
    expect(tok.decode(enc('ok'), { errors: 'strict' })).toBe('ok');
  });

  it('skipSpecialTokens drops every id ≥ endoftext, out-of-range ones included (as QWenTokenizer._decode)', () => {
    const ids = [tok.imStart, ...enc('hi'), tok.imEnd, tok.endOfText, 151900, tok.vocabSize];
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('hi');
    expect(() => tok.decode(ids)).toThrow(TokenizerError);
  });

  it('rejects out-of-range and non-integer ids with TokenizerError', () => {
    for (const bad of [-1, tok.vocabSize, 1e9, 1.5, NaN]) {
      expect(() => tok.decode([bad])).toThrow(TokenizerError);
      expect(() => tok.tokenBytes(bad)).toThrow(TokenizerError);
    }
    expect(() => tok.decode([0], { errors: 'bogus' as 'strict' })).toThrow(TokenizerError);
  });

  it('accepts typed arrays', () => {
    expect(tok.decode(Int32Array.from(enc('typed')))).toBe('typed');
  });

  it('tokenBytes returns raw bytes; specials as their UTF-8 text; copies', () => {
    expect([...tok.tokenBytes(tok.encode('!')[0])]).toEqual([0x21]);
    expect(new TextDecoder().decode(tok.tokenBytes(tok.imEnd))).toBe('<|im_end|>');
    expect(new TextDecoder().decode(tok.tokenBytes(151850))).toBe('<|extra_204|>');
    const b = tok.tokenBytes(0);
    b[0] = 0xff;
    expect(tok.tokenBytes(0)[0]).not.toBe(0xff);
    // concatenating tokenBytes is what decode decodes
    const ids = enc('数据 data');
    const all = ids.flatMap((id) => [...tok.tokenBytes(id)]);
    expect(new TextDecoder().decode(new Uint8Array(all))).toBe('数据 data');
  });
});

function bytesToId(byte: number): number {
  for (let id = 0; id < 256 * 4; id++) {
    const b = tok.tokenBytes(id);
    if (b.length === 1 && b[0] === byte) return id;
  }
  // single bytes can have any rank: search everything
  for (let id = 0; id < tok.endOfText; id++) {
    const b = tok.tokenBytes(id);
    if (b.length === 1 && b[0] === byte) return id;
  }
  throw new Error(`no id for byte ${byte}`);
}

describe('stream decoder', () => {
  const streamAll = (ids: number[], skipSpecialTokens = false): string[] => {
    const sd = tok.createStreamDecoder({ skipSpecialTokens });
    const parts = ids.map((id) => sd.push(id));
    parts.push(sd.flush());
    return parts;
  };

  it('concatenated pushes + flush === decode(ids) for any id sequence', () => {
    fc.assert(
      fc.property(fc.array(anyId, { maxLength: 30 }), fc.boolean(), (ids, skip) => {
        expect(streamAll(ids, skip).join('')).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
      }),
      { seed: 11, numRuns: 3000 },
    );
  });

  it('emits text as soon as it is complete (never holds a whole character back, never emits U+FFFD early)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        const ids = enc(s);
        const sd = tok.createStreamDecoder();
        let emitted = '';
        for (let k = 0; k < ids.length; k++) {
          emitted += sd.push(ids[k]);
          const full = tok.decode(ids.slice(0, k + 1));
          // a prefix of valid text can only be broken at its end (one U+FFFD for the cut character)
          if (!full.endsWith('\ufffd')) expect(emitted).toBe(full);
          expect(s.normalize('NFC').startsWith(emitted)).toBe(true);
        }
        expect(emitted + sd.flush()).toBe(s.normalize('NFC'));
      }),
      { seed: 5, numRuns: 800 },
    );
  });

  it('holds back a split emoji and releases it when complete', () => {
    const ids = [172, 63219, 222]; // '𠀀' in three tokens (from decode.jsonl's roundtrip)
    const parts = streamAll([...ids, ...enc('!')]);
    expect(parts.slice(0, 2)).toEqual(['', '']);
    expect(parts[2]).toBe('𠀀');
  });

  it('emits U+FFFD once a sequence is known to be invalid, before flush', () => {
    const e2 = bytesToId(0xe2);
    const sd = tok.createStreamDecoder();
    expect(sd.push(e2)).toBe('');
    expect(sd.push(tok.encode('A')[0])).toBe('\ufffdA');
    expect(sd.push(e2)).toBe('');
    expect(sd.flush()).toBe('\ufffd');
    expect(sd.flush()).toBe('');
  });

  it('skips specials when asked and rejects bad ids', () => {
    const sd = tok.createStreamDecoder({ skipSpecialTokens: true });
    expect(sd.push(tok.imStart)).toBe('');
    expect(sd.push(999_999)).toBe('');
    const plain = tok.createStreamDecoder();
    expect(plain.push(tok.imEnd)).toBe('<|im_end|>');
    expect(() => plain.push(-3)).toThrow(TokenizerError);
  });

  it('settledEnd marks only proper prefixes of valid sequences as pending', () => {
    const cut = (...b: number[]): number => settledEnd(new Uint8Array(b), b.length);
    expect(cut(0x41, 0xe4)).toBe(1);
    expect(cut(0x41, 0xe4, 0xbd)).toBe(1);
    expect(cut(0x41, 0xe4, 0xbd, 0xa0)).toBe(4); // complete '你'
    expect(cut(0xf0, 0x9f, 0x98)).toBe(0);
    expect(cut(0xe0, 0x80)).toBe(2); // E0 needs A0..BF next: invalid now
    expect(cut(0xed, 0xa0)).toBe(2); // surrogate range: invalid
    expect(cut(0xf4, 0x90)).toBe(2); // above U+10FFFF
    expect(cut(0xc0)).toBe(1); // never a lead
    expect(cut(0x80, 0x80, 0x80)).toBe(3);
  });
});
