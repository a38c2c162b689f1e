/**
 * The engine the handlers drive (a QwenModel, or any object with this subset, e.g. a test fake),
 * and text generation over it: token ids → text deltas with the chat semantics of QwenModel.chat
 * (the answer ends at <|im_end|>, <|im_start|> or <|endoftext|>; stop strings never leak), plus the
 * counts and finish reason a response reports.
 */
import { makeContext } from '../chat/makeContext.js';
import { nextTask } from '../util/nextTask.js';
import type { GenerationOptions } from '../generate/options.js';
import { StopStringMatcher, WhitespaceTrimmer } from '../generate/text.js';
import type { GenerationConfig } from '../model/config.js';
import type { QwenTokenizer } from '../tokenizer/index.js';
import type { ChatPrompt } from './messages.js';

export interface Engine {
  readonly tokenizer: Pick<QwenTokenizer, 'encode' | 'createStreamDecoder' | 'imStart' | 'imEnd' | 'endOfText' | 'vocabSize'>;
  readonly generationConfig: GenerationConfig;
  generate(inputIds: ArrayLike<number>, options?: GenerationOptions): AsyncGenerator<number>;
}

export interface TextResult {
  finishReason: 'stop' | 'length';
  promptTokens: number;
  completionTokens: number;
}

const PLAIN = { allowedSpecial: [] as string[], disallowedSpecial: [] as string[] };

/**
 * The prompt ids of a chat: ChatML as model.chat builds it (makeContext), and in continuation
 * mode the assistant turn's text so far after `<|im_start|>assistant\n`.
 */
export function chatPromptIds(engine: Engine, p: ChatPrompt, maxWindowSize?: number): number[] {
  const { contextTokens } = makeContext(engine.tokenizer as QwenTokenizer, p.query, {
    history: p.history,
    system: p.system,
    maxWindowSize: maxWindowSize ?? engine.generationConfig.maxWindowSize,
  });
  return p.partial === undefined ? contextTokens : contextTokens.concat(engine.tokenizer.encode(p.partial, PLAIN));
}

/**
 * Streams the text generated after `ids`. `strip` applies Python's strip() to the whole answer on
 * the fly (model.chat's response.strip()). Returns the counts once the stream ends.
 */
export async function* generateText(engine: Engine, ids: number[], options: GenerationOptions, strip: boolean): AsyncGenerator<string, TextResult> {
  const tok = engine.tokenizer;
  const endIds = new Set([tok.imEnd, tok.imStart, tok.endOfText, ...(options.stopTokenIds ?? [])]);
  const decoder = tok.createStreamDecoder();
  const trimmer = strip ? new WhitespaceTrimmer() : undefined;
  const stopper = new StopStringMatcher(options.stop ?? []);
  const result: TextResult = { finishReason: 'length', promptTokens: ids.length, completionTokens: 0 };
  const out = (text: string) => (trimmer ? trimmer.push(text) : text);
  let stopped = false;
  for await (const id of engine.generate(ids, options)) {
    result.completionTokens++;
    await nextTask(); // any engine, not only QwenModel, must leave room for disconnects and queueing
    if (endIds.has(id)) {
      // stopping here also skips the EOS that Qwen's stop-word processor would force next
      result.finishReason = 'stop';
      break;
    }
    const piece = stopper.push(decoder.push(id));
    const d = out(piece.text);
    if (d) yield d;
    if (piece.stopped) {
      result.finishReason = 'stop';
      stopped = true;
      break;
    }
  }
  if (!stopped) {
    const d = out(stopper.flush(decoder.flush()));
    if (d) yield d;
  }
  return result;
}
