/**
 * A scripted engine for the server's parsing paths: the real Qwen tokenizer, and generate() that
 * yields the tokens of the next scripted answer (then <|im_end|>), recording every call.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_GENERATION_CONFIG } from '../../src/io/config.js';
import { AbortError } from '../../src/errors.js';
import type { GenerationOptions } from '../../src/generate/options.js';
import type { Engine } from '../../src/server/engine.js';
import { QwenTokenizer } from '../../src/tokenizer/index.js';
import { modelDir } from '../support/fixtures.js';

let shared: QwenTokenizer | undefined;
export function fixtureTokenizer(): QwenTokenizer {
  shared ??= QwenTokenizer.fromTiktoken(readFileSync(join(modelDir('qwen-tiny-int4'), 'qwen.tiktoken')));
  return shared;
}

export class ScriptedEngine implements Engine {
  readonly tokenizer = fixtureTokenizer();
  readonly generationConfig = { ...DEFAULT_GENERATION_CONFIG };
  readonly calls: Array<{ ids: number[]; options: GenerationOptions }> = [];

  constructor(private readonly scripts: string[] = []) {}

  push(...answers: string[]): void {
    this.scripts.push(...answers);
  }

  /** The text of the last prompt. */
  lastPrompt(): string {
    return this.tokenizer.decode(this.calls[this.calls.length - 1].ids);
  }

  async *generate(inputIds: ArrayLike<number>, options: GenerationOptions = {}): AsyncGenerator<number> {
    this.calls.push({ ids: Array.from(inputIds), options });
    const text = this.scripts.shift() ?? '';
    const ids = [...this.tokenizer.encode(text, { allowedSpecial: [] }), this.tokenizer.imEnd];
    for (const id of ids.slice(0, options.maxNewTokens ?? ids.length)) {
      if (options.signal?.aborted) throw new AbortError();
      await new Promise((r) => setImmediate(r));
      yield id;
    }
  }
}
