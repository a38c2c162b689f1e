// Vocabulary loading: the shipped asset, gunzip, line-numbered errors, and a non-official vocabulary.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { TokenizerError } from '../../src/errors.js';
import { QwenTokenizer, gunzip } from '../../src/tokenizer/index.js';
import { officialTokenizer, readFixture } from './loadTokenizer.js';

const b64 = (s: string | number[]): string => Buffer.from(typeof s === 'string' ? Buffer.from(s, 'latin1') : s).toString('base64');

/** A small vocabulary: the 256 bytes in order, then the given merges. */
function tinyVocab(merges: string[], extraLines: string[] = []): Uint8Array {
  const lines: string[] = [];
  for (let b = 0; b < 256; b++) lines.push(`${b64([b])} ${b}`);
  merges.forEach((m, i) => lines.push(`${b64(m)} ${256 + i}`));
  return new Uint8Array(Buffer.from([...lines, ...extraLines].join('\n') + '\n'));
}

describe('assets/qwen.tiktoken.gz', () => {
  it('gunzips to the official vocabulary (sha256 b2b1b8df…3186)', async () => {
    const gz = new Uint8Array(readFileSync(new URL('../../assets/qwen.tiktoken.gz', import.meta.url)));
    const raw = await gunzip(gz);
    expect(createHash('sha256').update(raw).digest('hex')).toBe('b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186');
    const tok = QwenTokenizer.fromTiktoken(raw);
    expect(tok.vocabSize).toBe(151851);
    expect(tok.encode('Hello, world!')).toEqual([9707, 11, 1879, 0]);
  });
});

describe('gunzip', () => {
  it('round-trips node:zlib output, empty and large', async () => {
    for (const data of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(300_000, 7)]) {
      expect(Buffer.from(await gunzip(new Uint8Array(gzipSync(data))))).toEqual(data);
    }
  });

  it('throws TokenizerError on data that is not gzip', async () => {
    await expect(gunzip(new Uint8Array([1, 2, 3, 4, 5]))).rejects.toThrow(TokenizerError);
  });
});

describe('fromTiktoken', () => {
  it('parses CRLF line endings and blank lines like tiktoken', () => {
    const crlf = readFixture('qwen.tiktoken').toString('latin1').replace(/\n/g, '\r\n') + '\r\n';
    const tok = QwenTokenizer.fromTiktoken(new Uint8Array(Buffer.from(crlf, 'latin1')));
    const text = 'The quick brown 狐狸 jumps\n\tover 12 dogs 😀';
    expect(tok.encode(text)).toEqual(officialTokenizer().encode(text));
  });

  it('numbers specials after the ranks for another vocabulary', () => {
    const tok = QwenTokenizer.fromTiktoken(tinyVocab(['ab', 'abc', ' a']));
    expect(tok.endOfText).toBe(259);
    expect(tok.vocabSize).toBe(259 + 208);
    expect(tok.encode('abcab')).toEqual([257, 256]);
    // rank order decides: 'ab' (256) merges before ' a' (258), then 'abc' (257)
    expect(tok.encode(' abc')).toEqual([32, 257]);
    expect(tok.encode(' ax')).toEqual([258, 120]);
    expect(tok.encode('x<|im_end|>')).toEqual([120, 261]);
    expect(tok.decode([257, 261])).toBe('abc<|im_end|>');
  });

  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['bad base64', tinyVocab([], ['!!!! 256']), /line 257: token is not valid base64/],
    ['bad base64 length', tinyVocab([], ['YWJ 256']), /line 257: .*multiple of 4/],
    ['missing rank', tinyVocab([], ['YWI=']), /line 257: expected "<base64 token> <rank>"/],
    ['three fields', tinyVocab([], ['YWI= 256 9']), /line 257: expected/],
    ['non-numeric rank', tinyVocab([], ['YWI= -1']), /line 257: expected/],
    ['duplicate rank', tinyVocab([], ['YWI= 255']), /line 257: rank 255 appears twice/],
    ['rank gap', tinyVocab([], ['YWI= 300']), /line 257: rank 300 is out of range/],
    ['duplicate token bytes', tinyVocab([], [`${b64('a')} 256`]), /ranks 97 and 256 have the same token bytes/],
    ['empty token', tinyVocab([], ['= 256']), /line 257/],
  ];
  for (const [name, bytes, re] of cases) {
    it(`rejects ${name} with a TokenizerError naming the line`, () => {
      expect(() => QwenTokenizer.fromTiktoken(bytes)).toThrow(TokenizerError);
      expect(() => QwenTokenizer.fromTiktoken(bytes)).toThrow(re);
    });
  }

  it('rejects a vocabulary missing a single byte, and an empty file', () => {
    const lines = [`${b64('ab')} 0`];
    expect(() => QwenTokenizer.fromTiktoken(new Uint8Array(Buffer.from(lines.join('\n'))))).toThrow(/single byte 0x00 has no rank/);
    expect(() => QwenTokenizer.fromTiktoken(new Uint8Array(0))).toThrow(/no ranks/);
  });
});
