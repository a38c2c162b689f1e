/**
 * The OpenAI-compatible server on 127.0.0.1 with the fixture model on the CPU backend, driven by
 * the official `openai` client: greedy answers equal chat.json (through system, history and
 * max_window_size) and model.chat, streaming equals non-streaming, stop strings never leak, seeds
 * repeat, a dropped stream stops its generation, a full queue answers 429.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { loadModel, type QwenModel } from '../../bindings/node/index.js';
import { serve, type RunningServer } from '../../bindings/node/server.js';
import { golden, modelDir } from '../support/fixtures.js';
import { buildReactInstruction, parseReactAnswer, reactQuestion } from '../../src/chat/react.js';
import { makeContext } from '../../src/chat/makeContext.js';

const M = 'qwen-tiny-int4';
let model: QwenModel;
let server: RunningServer;
let client: OpenAI;
// ids that end an answer; banning them makes generation run to max_tokens
let endBan: Record<string, number>;

beforeAll(async () => {
  model = await loadModel(modelDir(M), { backend: 'cpu', threads: 1 });
  server = await serve(model, { port: 0, modelId: 'tiny' });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  const t = model.tokenizer;
  endBan = { [t.imEnd]: -100, [t.imStart]: -100, [t.endOfText]: -100 };
});

afterAll(async () => {
  await server?.close();
  await model?.dispose();
});

/** The body fields beyond OpenAI's own that this server understands (vLLM-style). */
type Extra = { repetition_penalty?: number; max_window_size?: number; top_k?: number };
type ChatBody = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & Extra;

function messagesOf(c: { system: string; system_is_default: boolean; history: [string, string][]; query: string }) {
  const m: OpenAI.Chat.ChatCompletionMessageParam[] = [];
  if (!c.system_is_default) m.push({ role: 'system', content: c.system });
  for (const [q, a] of c.history) m.push({ role: 'user', content: q }, { role: 'assistant', content: a });
  m.push({ role: 'user', content: c.query });
  return m;
}

async function streamText(body: OpenAI.Chat.ChatCompletionCreateParamsStreaming & Extra) {
  const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
  for await (const ch of await client.chat.completions.create(body)) chunks.push(ch);
  return { text: chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), chunks };
}

describe('chat completions against chat.json', () => {
  const g = golden(M, 'chat');
  // openai_api.py strips contents (lstrip "\n", rstrip), so a case whose texts change under that
  // is not the same conversation: those are left to the model tests
  const clean = (s: string) => s.replace(/^\n+/, '').replace(/\s+$/u, '') === s;
  const cases = g.cases.filter((c: any) => clean(c.query) && clean(c.system) && c.history.every(([q, a]: string[]) => clean(q) && clean(a)));

  it('covers system, history and window truncation cases', () => {
    expect(cases.map((c: any) => c.name)).toEqual(expect.arrayContaining(['default_system_rp1.0', 'history_custom_system_rp1.0', 'long_history_truncated_rp1.1']));
  });

  for (const c of cases) it(`${c.name}: greedy answer = golden output ids, decoded`, async () => {
    const tok = model.tokenizer;
    const gen = c.generation;
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: messagesOf(c),
      temperature: 0,
      max_tokens: gen.max_new_tokens,
      repetition_penalty: gen.repetition_penalty,
      max_window_size: gen.max_window_size,
    } as ChatBody);
    const end = c.output_ids.findIndex((id: number) => id === tok.imEnd || id === tok.imStart || id === tok.endOfText);
    const answerIds = end >= 0 ? c.output_ids.slice(0, end) : c.output_ids;
    expect(r.choices[0].message.content).toBe(tok.decode(answerIds).trim());
    expect(r.choices[0].finish_reason).toBe(end >= 0 ? 'stop' : 'length');
    expect(r.usage).toEqual({
      prompt_tokens: c.context_tokens.length,
      completion_tokens: end >= 0 ? end + 1 : answerIds.length,
      total_tokens: c.context_tokens.length + (end >= 0 ? end + 1 : answerIds.length),
    });
    expect(r.object).toBe('chat.completion');
    expect(r.model).toBe('tiny');
    if (c.name === 'default_system_rp1.0') expect(r.choices[0].message.content).toBe(c.response);
  });
});

describe('chat completions', () => {
  const query = '你好，请介绍一下你自己。';

  it('greedy with the model defaults equals model.chat; streaming equals non-streaming', async () => {
    const want = await model.chat(query, { doSample: false, maxNewTokens: 40 });
    const body = { model: 'tiny', messages: [{ role: 'user' as const, content: query }], temperature: 0, max_tokens: 40 };
    const r = await client.chat.completions.create(body);
    expect(r.choices[0].message.content).toBe(want.response);
    expect(r.choices[0].finish_reason).toBe(want.finishReason);
    const s = await streamText({ ...body, stream: true, stream_options: { include_usage: true } });
    expect(s.text).toBe(want.response);
    expect(s.chunks[0].choices[0].delta.role).toBe('assistant');
    expect(s.chunks.length).toBeGreaterThan(4); // really streamed
    const last = s.chunks[s.chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(r.usage);
    expect(s.chunks[s.chunks.length - 2].choices[0].finish_reason).toBe(want.finishReason);
    expect(new Set(s.chunks.map((c) => c.id)).size).toBe(1);
  });

  it('stop strings cut the answer and never leak, streaming or not', async () => {
    const full = (await model.chat(query, { doSample: false, maxNewTokens: 48 })).response;
    // a stop string from the middle of the answer, and one split across tokens
    for (const at of [Math.floor(full.length / 2), 7]) {
      const stop = full.slice(at, at + 3);
      const want = full.slice(0, full.indexOf(stop)).trim();
      const body = { model: 'tiny', messages: [{ role: 'user' as const, content: query }], temperature: 0, max_tokens: 48, stop: [stop, 'never-seen'] };
      const r = await client.chat.completions.create(body);
      expect(r.choices[0].message.content).toBe(want);
      expect(r.choices[0].finish_reason).toBe('stop');
      const s = await streamText({ ...body, stream: true });
      expect(s.text).toBe(want);
    }
  });

  it('a seed repeats a sampled answer; other seeds differ', async () => {
    const body = (seed: number) => ({
      model: 'tiny',
      messages: [{ role: 'user' as const, content: 'Tell me a story.' }],
      temperature: 0.3,
      top_p: 1,
      max_tokens: 12,
      seed,
      logit_bias: endBan,
    });
    const a = await client.chat.completions.create(body(7));
    const b = await client.chat.completions.create(body(7));
    const s = await streamText({ ...body(7), stream: true });
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
    expect(s.text).toBe(a.choices[0].message.content);
    const others = await Promise.all([8, 9, 10].map(async (seed) => (await client.chat.completions.create(body(seed))).choices[0].message.content));
    expect(others.some((o) => o !== a.choices[0].message.content)).toBe(true);
  });

  it('presence/frequency penalties and logit_bias change greedy answers', async () => {
    const base = { model: 'tiny', messages: [{ role: 'user' as const, content: query }], temperature: 0, max_tokens: 8 };
    const plain = await client.chat.completions.create(base);
    const first = model.tokenizer.encode(plain.choices[0].message.content!)[0];
    const banned = await client.chat.completions.create({ ...base, logit_bias: { [first]: -100 } });
    expect(model.tokenizer.encode(banned.choices[0].message.content!)[0]).not.toBe(first);
    const want = await model.chat(query, { doSample: false, maxNewTokens: 8, presencePenalty: 2, frequencyPenalty: 1.5 });
    const pen = await client.chat.completions.create({ ...base, presence_penalty: 2, frequency_penalty: 1.5 });
    expect(pen.choices[0].message.content).toBe(want.response);
  });

  it('an assistant message at the end is continued', async () => {
    const r = await client.chat.completions.create({
      model: 'tiny',
      messages: [
        { role: 'user', content: query },
        { role: 'assistant', content: 'Sure' },
      ],
      temperature: 0,
      max_tokens: 6,
      logit_bias: endBan,
    });
    // the continuation equals generating after the partial turn's tokens
    const t = model.tokenizer;
    const ctx = [...makeContext(t, query).contextTokens, ...t.encode('Sure')];
    const ids: number[] = [];
    for await (const id of model.generate(ctx, { doSample: false, maxNewTokens: 6, logitBias: endBan })) ids.push(id);
    expect(r.choices[0].message.content).toBe(t.decode(ids));
    expect(r.choices[0].finish_reason).toBe('length');
  });

  it('closing the stream mid-way aborts the generation', async () => {
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'tiny', messages: [{ role: 'user', content: query }], temperature: 0, max_tokens: 2000, logit_bias: endBan, stream: true },
      { signal: ac.signal },
    );
    let n = 0;
    // the client ends its iteration quietly when aborted
    for await (const _ of stream) if (++n === 5) ac.abort();
    expect(n).toBe(5);
    // the engine is free again long before 2000 tokens
    for (let i = 0; i < 200 && server.handler.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.handler.active).toBe(0);
    expect(model.lastStats!.generatedTokens).toBeLessThan(100);
    // and serves the next request
    const r = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: query }], temperature: 0, max_tokens: 2 });
    expect(r.choices[0].message.content).toBeTypeOf('string');
  });

  it('a full queue answers 429; waiting requests are served in turn', async () => {
    const small = await serve(model, { port: 0, maxQueue: 1 });
    const c = new OpenAI({ baseURL: `${small.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const long = { model: 'tiny', messages: [{ role: 'user' as const, content: query }], temperature: 0, max_tokens: 24, logit_bias: endBan };
    try {
      // APIPromise sends on first then(): force it
      const send = () => c.chat.completions.create(long).then((r) => r);
      const first = send();
      for (let i = 0; i < 100 && small.handler.active < 1; i++) await new Promise((r) => setTimeout(r, 5));
      const second = send();
      for (let i = 0; i < 100 && small.handler.active < 2; i++) await new Promise((r) => setTimeout(r, 5));
      const err = await send().then(() => undefined, (e) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(err.status).toBe(429);
      const [a, b] = await Promise.all([first, second]);
      expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
    } finally {
      await small.close();
    }
  });
});

describe('tools on the real model', () => {
  it('the ReAct prompt and parse give what model.chat gives for the same prompt', async () => {
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', description: 'Weather of a city.', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ];
    const q = 'Weather in Paris?';
    const r = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: q }], tools, temperature: 0, max_tokens: 16 });
    const query = reactQuestion(buildReactInstruction([(tools[0] as OpenAI.Chat.ChatCompletionFunctionTool).function as never]), q);
    const want = await model.chat(query, { doSample: false, maxNewTokens: 16, stop: ['Observation:'] });
    const parsed = parseReactAnswer(want.response, { toolNames: ['get_weather'] });
    expect(r.usage!.prompt_tokens).toBe(makeContext(model.tokenizer, query).contextTokens.length);
    expect(r.choices[0].message.content).toBe(parsed.content);
    expect(r.choices[0].message.tool_calls ?? []).toHaveLength(parsed.toolCalls.length);
  });
});

describe('completions, models, health', () => {
  it('the ChatML prompt ids of a chat complete like chat', async () => {
    const c = golden(M, 'chat').cases.find((x: any) => x.name === 'default_system_rp1.0');
    const body = { model: 'tiny', prompt: c.context_tokens, temperature: 0, max_tokens: 48, repetition_penalty: 1 } as OpenAI.CompletionCreateParamsNonStreaming;
    const r = await client.completions.create(body);
    // completions are not stripped: the answer token is "=\n", chat's response is its strip()
    const end = c.output_ids.indexOf(model.tokenizer.imEnd);
    const raw = model.tokenizer.decode(c.output_ids.slice(0, end));
    expect(raw.trim()).toBe(c.response);
    expect(r.choices[0].text).toBe(raw);
    expect(r.choices[0].finish_reason).toBe('stop');
    expect(r.usage?.prompt_tokens).toBe(c.context_tokens.length);
    const chunks: OpenAI.Completion[] = [];
    for await (const ch of await client.completions.create({ ...body, stream: true })) chunks.push(ch);
    expect(chunks.map((ch) => ch.choices[0].text).join('')).toBe(raw);
    expect(chunks[chunks.length - 1].choices[0].finish_reason).toBe('stop');
  });

  it('token-id prompts and echo', async () => {
    const ids = model.tokenizer.encode('Once upon a time');
    const a = await client.completions.create({ model: 'tiny', prompt: ids, temperature: 0, max_tokens: 5, logit_bias: endBan });
    const b = await client.completions.create({ model: 'tiny', prompt: 'Once upon a time', temperature: 0, max_tokens: 5, logit_bias: endBan, echo: true });
    expect(b.choices[0].text).toBe('Once upon a time' + a.choices[0].text);
    expect(a.choices[0].finish_reason).toBe('length');
    expect(a.usage?.completion_tokens).toBe(5);
  });

  it('lists the model and reports health', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['tiny']);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
    const h = await (await fetch(`${server.url}/health`)).json();
    expect(h).toMatchObject({ status: 'ok', model: 'tiny', running: 0, queued: 0 });
  });
});
