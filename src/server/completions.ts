/**
 * POST /v1/completions: a raw prompt (text, or token ids) continued by the model. Special-token
 * text in the prompt is encoded as those tokens (the tokenizer's default), so a hand-written ChatML
 * prompt works; generation ends at <|endoftext|>, <|im_end|> or <|im_start|>, like chat.
 */
import { generateText, type TextResult } from './engine.js';
import { checkContext, checkOptions, newId, nowSeconds, streamWithEngine, withEngine, type EndpointContext } from './context.js';
import { badParam } from './errors.js';
import { json } from './http.js';
import { samplingRequest } from './params.js';

function promptOf(v: unknown, vocabSize: number): string | number[] {
  let p = v;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  if (typeof p === 'string') {
    if (p.length === 0) throw badParam('prompt', 'prompt must not be empty');
    return p;
  }
  if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'number')) {
    for (const x of p as number[]) {
      if (!Number.isInteger(x) || x < 0 || x >= vocabSize) throw badParam('prompt', `prompt token ${x} is not a token id below ${vocabSize}`);
    }
    return p as number[];
  }
  if (Array.isArray(v) && v.length > 1) throw badParam('prompt', 'only one prompt per request is supported');
  throw badParam('prompt', 'prompt must be a non-empty string, or an array of token ids', 'invalid_type');
}

export async function completions(body: Record<string, unknown>, ctx: EndpointContext): Promise<Response> {
  const s = samplingRequest(body, ctx.limits);
  if (body.suffix !== undefined && body.suffix !== null && body.suffix !== '') throw badParam('suffix', 'suffix is not supported', 'unsupported_parameter');
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== 1) throw badParam('best_of', 'only best_of = 1 is supported', 'unsupported_parameter');
  if (body.echo !== undefined && body.echo !== null && typeof body.echo !== 'boolean') throw badParam('echo', 'echo must be a boolean', 'invalid_type');
  const prompt = promptOf(body.prompt, ctx.limits.vocabSize);
  const options = { ...s.options, signal: ctx.signal };
  checkOptions(ctx, options);
  const ids = typeof prompt === 'string' ? ctx.engine.tokenizer.encode(prompt) : prompt;
  if (ids.length === 0) throw badParam('prompt', 'prompt encodes to no tokens');
  checkContext(ctx, ids.length, s.maxTokens);
  const echo = body.echo === true ? (typeof prompt === 'string' ? prompt : '') : '';

  const id = newId('cmpl');
  const created = nowSeconds();
  const base = { id, object: 'text_completion', created, model: ctx.modelId, system_fingerprint: null };
  const usageOf = (r: TextResult) => ({ prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens });

  if (!s.stream) {
    const { text, result } = await withEngine(ctx, async () => {
      const gen = generateText(ctx.engine, ids, options, false);
      let text = '';
      for (;;) {
        const r = await gen.next();
        if (r.done) return { text, result: r.value };
        text += r.value;
      }
    });
    return json(
      200,
      { ...base, choices: [{ index: 0, text: echo + text, logprobs: null, finish_reason: result.finishReason }], usage: usageOf(result) },
      ctx.headers,
    );
  }

  const chunk = (text: string, finishReason: string | null) => ({ ...base, choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }] });
  return streamWithEngine(ctx, async function* (track, release) {
    if (echo) yield chunk(echo, null);
    const gen = generateText(ctx.engine, ids, options, false);
    track(gen);
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        release();
        yield chunk('', r.value.finishReason);
        if (s.includeUsage) yield { ...base, choices: [], usage: usageOf(r.value) };
        return;
      }
      yield chunk(r.value, null);
    }
  });
}
