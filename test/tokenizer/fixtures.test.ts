// Golden cases computed by the official QWenTokenizer (see shared/fixtures/README.md).
import { describe, expect, it } from 'vitest';
import { officialTokenizer, readJsonl } from './loadTokenizer.js';

interface EncodeCase { category: string; text: string; ids: number[] }
interface DecodeCase { kind: string; ids: number[]; errors: 'replace' | 'ignore'; skip_special_tokens: boolean; text: string }

const encodeCases = readJsonl<EncodeCase>('cases.jsonl');
const decodeCases = readJsonl<DecodeCase>('decode.jsonl');

describe('cases.jsonl (official encode)', () => {
  it('has all 437 cases', () => expect(encodeCases.length).toBe(437));
  encodeCases.forEach((c, i) => {
    it(`#${i} ${c.category}: ${JSON.stringify(c.text).slice(0, 60)}`, () => {
      expect(officialTokenizer().encode(c.text)).toEqual(c.ids);
    });
  });
});

describe('decode.jsonl (official decode)', () => {
  it('has all 105 cases', () => expect(decodeCases.length).toBe(105));
  decodeCases.forEach((c, i) => {
    it(`#${i} ${c.kind} errors=${c.errors} skip=${c.skip_special_tokens}: ${JSON.stringify(c.ids).slice(0, 50)}`, () => {
      const tok = officialTokenizer();
      expect(tok.decode(c.ids, { errors: c.errors, skipSpecialTokens: c.skip_special_tokens })).toBe(c.text);
    });
  });
});
