/**
 * The executor on the plain-TypeScript reference backend against the official goldens: proves the
 * model math (NTK kept from prefill, LogN in decode, SiLU on w2, GPTQ zero−1) independently of
 * the wasm and WGSL kernels, which are then checked against the same goldens and this oracle.
 */
import { describe, expect, it } from 'vitest';
import { ReferenceBackend } from '../support/referenceBackend.js';
import { MODELS } from '../support/fixtures.js';
import { checkChat, checkDecode, checkLogits, loadFixtureModel } from '../support/goldenChecks.js';

describe.each(MODELS)('reference backend on %s', (m) => {
  it('logits.json within 1e-4 relative', async () => {
    const model = await loadFixtureModel(m, new ReferenceBackend());
    const err = await checkLogits(model, m, { rel: 1e-4 });
    expect(err).toBeLessThanOrEqual(1e-4);
  });
  it('decode.json token-identical with NTK alpha kept from the prefill', async () => {
    const model = await loadFixtureModel(m, new ReferenceBackend());
    expect(await checkDecode(model, m, { rel: 1e-4 })).toBeLessThanOrEqual(1e-4);
  });
  it('chat.json output ids identical, responses clean', async () => {
    const model = await loadFixtureModel(m, new ReferenceBackend());
    await checkChat(model, m);
  });
});
