/**
 * The golden-fixture acceptance checks, written once and run per backend (reference, cpu, webgpu):
 * logits.json, decode.json and chat.json of both fixture models.
 */
import { expect } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import { openCheckpoint } from '../../src/io/checkpoint.js';
import { uploadWeights } from '../../src/model/weights.js';
import { QwenModel } from '../../src/model/model.js';
import { QwenTokenizer } from '../../src/tokenizer/index.js';
import { nodeFileSource } from '../../bindings/node/fileSource.js';
import { golden, maxRelErr, modelDir, type FixtureModel } from './fixtures.js';

export async function loadFixtureModel(m: FixtureModel, backend: Backend, opts: ConstructorParameters<typeof QwenModel>[4] = {}): Promise<QwenModel> {
  const ckpt = await openCheckpoint(nodeFileSource(modelDir(m)));
  const tokenizer = QwenTokenizer.fromTiktoken(await ckpt.vocabulary());
  try {
    const weights = await uploadWeights(backend, ckpt);
    return new QwenModel(backend, tokenizer, ckpt, weights, opts);
  } finally {
    await ckpt.close();
  }
}

export interface Tolerance {
  /** Relative tolerance on values: |Δ| ≤ rel · max(1, |ref|) (fixtures: 1e-4 for f32). */
  rel: number;
  /** Absolute tolerance as a fraction of max |logit| (webgpu acceptance: 1e-3); 0 = unused. */
  ofMax?: number;
}

function checkValues(what: string, actual: ArrayLike<number>, ref: number[], tol: Tolerance, maxAbs: number): number {
  const err = maxRelErr(actual, ref);
  const limit = tol.ofMax ? Math.max(tol.rel, (tol.ofMax * maxAbs) / 1) : tol.rel;
  for (let i = 0; i < ref.length; i++) {
    const bound = Math.max(tol.rel * Math.max(1, Math.abs(ref[i])), (tol.ofMax ?? 0) * maxAbs);
    if (!(Math.abs(actual[i] - ref[i]) <= bound)) {
      throw new Error(`${what}[${i}]: got ${actual[i]}, want ${ref[i]} (bound ${bound}, limit ${limit})`);
    }
  }
  return err;
}

/** Top-k ids must match in order where neighbouring reference values differ by > 2·bound, else as sets. */
function checkTopIds(what: string, ids: ArrayLike<number>, refIds: number[], refValues: number[], bound: (v: number) => number): void {
  const got = Array.from(ids).slice(0, refIds.length);
  let i = 0;
  while (i < refIds.length) {
    let j = i + 1;
    while (j < refIds.length && refValues[j - 1] - refValues[j] <= 2 * bound(refValues[j - 1])) j++;
    // a run [i, j) of near-ties: compare as a set (the last run may continue past the recorded top)
    const want = refIds.slice(i, j).sort((a, b) => a - b);
    const have = got.slice(i, j).sort((a, b) => a - b);
    if (j < refIds.length || i === 0) expect(have, `${what} ids ${i}..${j - 1}`).toEqual(want);
    i = j;
  }
}

function topK(x: Float32Array, k: number): { ids: number[]; values: number[] } {
  const idx = Array.from(x.keys()).sort((a, b) => x[b] - x[a] || a - b).slice(0, k);
  return { ids: idx, values: idx.map((i) => x[i]) };
}

/** logits.json: top-20, fixed ids, hidden state after ln_f, per-position argmax. Returns max rel error. */
export async function checkLogits(model: QwenModel, m: FixtureModel, tol: Tolerance): Promise<number> {
  const g = golden(m, 'logits');
  const V = model.config.vocabSize;
  let worst = 0;
  for (const c of g.cases) {
    const ex = model.executor;
    const kv = ex.newCache();
    const all = await ex.allLogits(kv, c.input_ids);
    const hidden = await model.backend.read(ex.lastHidden, 0, model.config.hiddenSize);
    kv.release();
    const last = all.subarray((c.length - 1) * V, c.length * V);
    const maxAbs = Math.max(...c.top20_values.map(Math.abs));
    const bound = (v: number) => Math.max(tol.rel * Math.max(1, Math.abs(v)), (tol.ofMax ?? 0) * maxAbs);
    const top = topK(last, 20);
    const name = `${m} len ${c.length}`;
    checkTopIds(`${name} top20`, top.ids, c.top20_ids, c.top20_values, bound);
    worst = Math.max(worst, checkValues(`${name} top20_values`, c.top20_ids.map((id: number) => last[id]), c.top20_values, tol, maxAbs));
    worst = Math.max(worst, checkValues(`${name} fixed_values`, g.fixed_ids.map((id: number) => last[id]), c.fixed_values, tol, maxAbs));
    worst = Math.max(worst, checkValues(`${name} hidden_last`, hidden, c.hidden_last, tol, Math.max(...c.hidden_last.map(Math.abs))));
    for (let p = 0; p < c.length; p++) {
      const row = all.subarray(p * V, (p + 1) * V);
      const t = topK(row, 2);
      // per-position argmax: must agree unless the reference's top-2 are within tolerance
      if (t.ids[0] !== c.per_position_top1_ids[p]) {
        expect(Math.abs(row[c.per_position_top1_ids[p]] - t.values[0]), `${name} pos ${p} argmax`).toBeLessThanOrEqual(2 * bound(t.values[0]));
      }
      worst = Math.max(worst, maxRelErr([row[c.per_position_top1_ids[p]]], [c.per_position_top1_values[p]]));
    }
  }
  return worst;
}

/** decode.json: prefill + cached steps, token-identical, top-5 and hidden within tolerance. */
export async function checkDecode(model: QwenModel, m: FixtureModel, tol: Tolerance): Promise<number> {
  const g = golden(m, 'decode');
  const V = model.config.vocabSize;
  let worst = 0;
  for (const sc of g.scenarios) {
    const ex = model.executor;
    const kv = ex.newCache();
    const generated: number[] = [];
    for (const r of sc.records) {
      const logitsBuf = r.step === 0 ? ex.prefill(kv, sc.prompt_ids) : ex.decodeOne(kv, generated[generated.length - 1]);
      expect(kv.ntkAlpha, `${sc.name} step ${r.step} alpha`).toBe(r.ntk_alpha_used);
      expect(kv.length, `${sc.name} step ${r.step} kv_len`).toBe(r.kv_len);
      const logits = await model.backend.read(logitsBuf, 0, V);
      const hidden = await model.backend.read(ex.lastHidden, 0, model.config.hiddenSize);
      const maxAbs = Math.max(...r.top5_values.map(Math.abs));
      const next = topK(logits, 1).ids[0];
      expect(next, `${sc.name} step ${r.step} next_token`).toBe(r.next_token);
      worst = Math.max(worst, checkValues(`${sc.name} step ${r.step} top5`, r.top5_ids.map((id: number) => logits[id]), r.top5_values, tol, maxAbs));
      worst = Math.max(worst, checkValues(`${sc.name} step ${r.step} hidden`, hidden, r.hidden_last, tol, Math.max(...r.hidden_last.map(Math.abs))));
      generated.push(next);
    }
    expect(generated).toEqual(sc.generated_ids);
    kv.release();
  }
  return worst;
}

/**
 * chat.json: output ids identical; response/history identical except the official decode_tokens
 * quirks we do not copy (last token dropped when no stop token came; NFD query shifting the cut).
 */
export async function checkChat(model: QwenModel, m: FixtureModel): Promise<number> {
  const g = golden(m, 'chat');
  let quirks = 0;
  for (const c of g.cases) {
    const gen = c.generation;
    const r = await model.chat(c.query, {
      history: c.history,
      system: c.system,
      doSample: false,
      repetitionPenalty: gen.repetition_penalty,
      maxNewTokens: gen.max_new_tokens,
      maxWindowSize: gen.max_window_size,
    });
    expect(r.tokens, `${c.name} output ids`).toEqual(c.output_ids);
    const tok = model.tokenizer;
    if (r.response === c.response) {
      expect(r.history, `${c.name} history`).toEqual(c.history_out);
      continue;
    }
    quirks++;
    // Explain the difference by the two official decode_tokens quirks, then require the clean answer.
    const end = c.output_ids.findIndex((id: number) => id === tok.imEnd || id === tok.imStart);
    const clean = end >= 0 ? c.output_ids.slice(0, end) : c.output_ids.filter((id: number) => id !== tok.endOfText);
    // quirk 1: with no <|im_end|>/<|im_start|> the official loop drops the last generated token
    const officialIds = end >= 0 ? clean : c.output_ids.slice(0, -1);
    // quirk 2: the cut by len(raw_text) is shifted by NFC normalisation of a non-NFC query
    const shift = c.query.length - c.query.normalize('NFC').length;
    const official = tok.decode(officialIds).slice(shift).trim();
    expect(official, `${c.name}: golden response = official decode_tokens quirks`).toBe(c.response);
    expect(r.response, `${c.name}: clean response`).toBe(tok.decode(clean).trim());
    expect(r.history).toEqual([...c.history, [c.query, r.response]]);
  }
  return quirks;
}
