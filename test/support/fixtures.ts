/** Paths and loaders for the golden fixtures in ../shared/fixtures (beside the project root). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
export const MODELS = ['qwen-tiny-bf16', 'qwen-tiny-int4'] as const;
export type FixtureModel = (typeof MODELS)[number];

export const modelDir = (m: FixtureModel) => join(FIXTURES, 'models', m);

export function golden<T = any>(m: FixtureModel, name: 'logits' | 'decode' | 'chat'): T {
  return JSON.parse(readFileSync(join(modelDir(m), 'golden', `${name}.json`), 'utf8'));
}

export function jsonl<T = any>(rel: string): T[] {
  return readFileSync(join(FIXTURES, rel), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** The fixtures' recommended float32 tolerance: |Δ| ≤ 1e-4 · max(1, |ref|). */
export function within(actual: number, ref: number, rel = 1e-4): boolean {
  return Math.abs(actual - ref) <= rel * Math.max(1, Math.abs(ref));
}

/** Largest |Δ| / max(1, |ref|) over paired values. */
export function maxRelErr(actual: ArrayLike<number>, ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(actual[i] - ref[i]) / Math.max(1, Math.abs(ref[i])));
  return m;
}
