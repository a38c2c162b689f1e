/**
 * Fixed-seed subset of bench/fuzz.ts: every parser that takes outside input either succeeds with
 * its invariants intact or throws its typed error — never another exception, never a hang (> 1 s).
 * The full run (≥ 100k inputs per target) is `node dist/bench/fuzz.js`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fuzzTargets, runTarget } from '../../bench/fuzz.js';
import { modelDir } from '../support/fixtures.js';

const RUNS: Record<string, number> = { 'server-requests': 1000, 'qwen-tiktoken': 1000 };
const targets = fuzzTargets(new Uint8Array(readFileSync(join(modelDir('qwen-tiny-int4'), 'qwen.tiktoken'))));

describe('fuzz (fixed seed)', () => {
  it.each(targets.map((t) => [t.name, t] as const))('%s', async (_name, t) => {
    const r = await runTarget(t, RUNS[t.name] ?? 3000, 1127);
    expect(r.failed, `${r.error}\ncounterexample: ${r.counterexample}`).toBe(false);
    expect(r.runs).toBe(RUNS[t.name] ?? 3000);
  });
});
