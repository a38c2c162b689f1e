// Shared by the tokenizer and chat tests: the official vocabulary and the golden JSONL files.
import { readFileSync } from 'node:fs';
import { QwenTokenizer } from '../../src/tokenizer/index.js';

export const FIXTURES = new URL('../../../shared/fixtures/tokenizer/', import.meta.url);

export function readFixture(name: string): Buffer {
  return readFileSync(new URL(name, FIXTURES));
}

export function readJsonl<T>(name: string): T[] {
  return readFixture(name)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

let cached: QwenTokenizer | undefined;
export function officialTokenizer(): QwenTokenizer {
  cached ??= QwenTokenizer.fromTiktoken(new Uint8Array(readFixture('qwen.tiktoken')));
  return cached;
}
