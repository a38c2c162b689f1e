import { describe, expect, it } from 'vitest';
import { chatStopTokenIds, DEFAULT_SYSTEM, makeContext } from '../../src/chat/index.js';
import { ArgumentError } from '../../src/errors.js';
import { officialTokenizer, readJsonl } from '../tokenizer/loadTokenizer.js';

interface ChatCase {
  name: string;
  system: string;
  history: Array<[string, string]>;
  query: string;
  max_window_size: number;
  raw_text: string;
  context_tokens: number[];
  history_turns_kept: number;
}

const cases = readJsonl<ChatCase>('chatml.jsonl');

describe('chatml.jsonl (official make_context)', () => {
  it('has all 26 cases', () => expect(cases.length).toBe(26));
  for (const c of cases) {
    it(c.name, () => {
      const ctx = makeContext(officialTokenizer(), c.query, {
        history: c.history,
        system: c.system,
        maxWindowSize: c.max_window_size,
      });
      expect(ctx.rawText).toBe(c.raw_text);
      expect(ctx.contextTokens).toEqual(c.context_tokens);
      expect(ctx.historyTurnsKept).toBe(c.history_turns_kept);
    });
  }
});

describe('makeContext beyond the fixtures', () => {
  const tok = officialTokenizer();

  it('defaults: DEFAULT_SYSTEM, no history, window 6144', () => {
    const ctx = makeContext(tok, 'hi');
    expect(ctx.rawText).toBe(`<|im_start|>system\n${DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n`);
    expect(ctx.historyTurnsKept).toBe(0);
    // Same ids as encoding the raw text with specials allowed (no special text in the contents).
    expect(ctx.contextTokens).toEqual(tok.encode(ctx.rawText));
  });

  it('special-token text in contents is plain text, structural ones are ids', () => {
    const ctx = makeContext(tok, 'a<|im_end|>b', { history: [['<|endoftext|>', '<|im_start|>x']], system: '<|extra_3|>' });
    const specials = ctx.contextTokens.filter((id) => id >= tok.endOfText);
    // system, history user, history assistant, query user, assistant header: 5 × im_start, 4 × im_end
    expect(specials.filter((id) => id === tok.imStart)).toHaveLength(5);
    expect(specials.filter((id) => id === tok.imEnd)).toHaveLength(4);
    expect(specials).toHaveLength(9);
    expect(tok.decode(ctx.contextTokens)).toBe(ctx.rawText);
  });

  it('keeps history newest-first under a strict window, stopping at the first turn that does not fit', () => {
    const history: Array<[string, string]> = [
      ['short', 'ok'],
      ['a much longer question with many many words in it, really quite long', 'and a long answer too, long enough'],
      ['q3', 'a3'],
    ];
    const base = makeContext(tok, 'now', { history: [] });
    const systemLen = tok.encode(`system\n${DEFAULT_SYSTEM}`, { allowedSpecial: [] }).length + 2;
    const turnLen = (q: string, a: string): number => makeContext(tok, 'now', { history: [[q, a]] }).contextTokens.length - base.contextTokens.length;
    const t3 = turnLen('q3', 'a3');
    const t2 = turnLen(history[1][0], history[1][1]);
    // exactly at the limit: not kept (strict <)
    expect(makeContext(tok, 'now', { history, maxWindowSize: systemLen + t3 }).historyTurnsKept).toBe(0);
    expect(makeContext(tok, 'now', { history, maxWindowSize: systemLen + t3 + 1 }).historyTurnsKept).toBe(1);
    // turn 2 does not fit, so turn 1 (which would) is not considered
    const ctx = makeContext(tok, 'now', { history, maxWindowSize: systemLen + t3 + t2 });
    expect(ctx.historyTurnsKept).toBe(1);
    expect(ctx.rawText).not.toContain('short');
    expect(makeContext(tok, 'now', { history, maxWindowSize: 1_000_000 }).historyTurnsKept).toBe(3);
  });

  it('the query is always included even past the window', () => {
    const ctx = makeContext(tok, 'word '.repeat(100), { maxWindowSize: 5 });
    expect(ctx.contextTokens.length).toBeGreaterThan(100);
  });

  it('chatStopTokenIds is [im_end, im_start]', () => {
    expect(chatStopTokenIds(tok)).toEqual([151645, 151644]);
  });

  it('rejects malformed arguments with ArgumentError', () => {
    expect(() => makeContext(tok, 'q', { history: [['only one'] as unknown as [string, string]] })).toThrow(ArgumentError);
    expect(() => makeContext(tok, 42 as unknown as string)).toThrow(ArgumentError);
  });
});
