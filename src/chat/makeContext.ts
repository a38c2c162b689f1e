/**
 * ChatML prompt building with the semantics of Qwen's `make_context(chat_format="chatml")`
 * (qwen_generation_utils.py): role and content text is encoded with no special tokens allowed (so
 * `<|im_end|>` typed by a user stays plain text), the structural tokens are inserted as ids, and
 * history is kept newest-first while it fits under `maxWindowSize` (query not counted).
 */
import { ArgumentError } from '../errors.js';
import type { QwenTokenizer } from '../tokenizer/index.js';

export const DEFAULT_SYSTEM = 'You are a helpful assistant.';
export const DEFAULT_MAX_WINDOW_SIZE = 6144;

export interface MakeContextOptions {
  /** Earlier turns, oldest first: [query, response]. */
  history?: Array<[string, string]>;
  /** System prompt (default DEFAULT_SYSTEM, as Qwen's chat() passes it). */
  system?: string;
  /** History budget in tokens (default 6144). */
  maxWindowSize?: number;
}

export interface ChatContext {
  rawText: string;
  contextTokens: number[];
  /** How many of the most recent history turns made it into the context. */
  historyTurnsKept: number;
}

const IM_START = '<|im_start|>';
const IM_END = '<|im_end|>';
const PLAIN = { allowedSpecial: [] as string[], disallowedSpecial: [] as string[] };

export function makeContext(tok: QwenTokenizer, query: string, opts: MakeContextOptions = {}): ChatContext {
  const history = opts.history ?? [];
  const system = opts.system ?? DEFAULT_SYSTEM;
  const maxWindowSize = opts.maxWindowSize ?? DEFAULT_MAX_WINDOW_SIZE;
  if (typeof query !== 'string') throw new ArgumentError(`makeContext: query must be a string, got ${typeof query}`);
  if (typeof system !== 'string') throw new ArgumentError(`makeContext: system must be a string, got ${typeof system}`);
  if (typeof maxWindowSize !== 'number' || Number.isNaN(maxWindowSize)) {
    throw new ArgumentError(`makeContext: maxWindowSize must be a number, got ${JSON.stringify(maxWindowSize)}`);
  }
  if (!Array.isArray(history)) throw new ArgumentError('makeContext: history must be an array of [query, response] pairs');
  history.forEach((turn, i) => {
    if (!Array.isArray(turn) || turn.length !== 2 || typeof turn[0] !== 'string' || typeof turn[1] !== 'string') {
      throw new ArgumentError(`makeContext: history[${i}] must be a [query, response] pair of strings`);
    }
  });

  const imStart = [tok.imStart];
  const imEnd = [tok.imEnd];
  const nl = tok.encode('\n');
  // _tokenize_str: "role\ncontent" and its tokens, content encoded with allowed_special=set().
  const tokenizeStr = (role: string, content: string): [string, number[]] => [
    `${role}\n${content}`,
    [...tok.encode(role, PLAIN), ...nl, ...tok.encode(content, PLAIN)],
  ];

  const [systemText, systemPart] = tokenizeStr('system', system);
  const systemTokens = [...imStart, ...systemPart, ...imEnd];

  let rawText = '';
  let contextTokens: number[] = [];
  let kept = 0;
  for (let t = history.length - 1; t >= 0; t--) {
    const [turnQuery, turnResponse] = history[t];
    const [queryText, queryPart] = tokenizeStr('user', turnQuery);
    const [responseText, responsePart] = tokenizeStr('assistant', turnResponse);
    const next = [...nl, ...imStart, ...queryPart, ...imEnd, ...nl, ...imStart, ...responsePart, ...imEnd];
    if (systemTokens.length + next.length + contextTokens.length < maxWindowSize) {
      contextTokens = next.concat(contextTokens);
      rawText = `\n${IM_START}${queryText}${IM_END}\n${IM_START}${responseText}${IM_END}` + rawText;
      kept++;
    } else {
      break;
    }
  }

  contextTokens = [
    ...systemTokens,
    ...contextTokens,
    ...nl,
    ...imStart,
    ...tokenizeStr('user', query)[1],
    ...imEnd,
    ...nl,
    ...imStart,
    ...tok.encode('assistant'),
    ...nl,
  ];
  rawText = `${IM_START}${systemText}${IM_END}${rawText}\n${IM_START}user\n${query}${IM_END}\n${IM_START}assistant\n`;
  return { rawText, contextTokens, historyTurnsKept: kept };
}

/** Qwen's stop_words_ids for chatml: [im_end, im_start]. */
export function chatStopTokenIds(tok: QwenTokenizer): number[] {
  return [tok.imEnd, tok.imStart];
}
