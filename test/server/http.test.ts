/**
 * HTTP behaviour of the server: OpenAI-style 4xx for every kind of bad request (never a 500),
 * API key, CORS, body-size limit, the fetch handler on its own, and graceful shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import OpenAI from 'openai';
import { serve, type RunningServer } from '../../bindings/node/server.js';
import { createHandler } from '../../src/server/handler.js';
import { ScriptedEngine } from './fakeEngine.js';

let engine: ScriptedEngine;
let server: RunningServer;
const user = [{ role: 'user', content: 'hi' }];

beforeAll(async () => {
  engine = new ScriptedEngine();
  server = await serve(engine, { port: 0, maxBodyBytes: 4096, maxTokens: 100 });
});
afterAll(() => server?.close());

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('bad requests', () => {
  const cases: Array<[string, unknown, string | null]> = [
    ['not JSON', '{"messages": [', null],
    ['empty body', '', null],
    ['a JSON array', '[1, 2]', null],
    ['no messages', { model: 'qwen' }, 'messages'],
    ['messages not an array', { messages: 'hi' }, 'messages'],
    ['empty messages', { messages: [] }, 'messages'],
    ['unknown role', { messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    ['content a number', { messages: [{ role: 'user', content: 5 }] }, 'messages[0].content'],
    ['image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0]'],
    ['assistant first', { messages: [{ role: 'assistant', content: 'x' }] }, 'messages[0].role'],
    ['system only', { messages: [{ role: 'system', content: 'x' }] }, 'messages'],
    ['late system', { messages: [...user, { role: 'system', content: 'x' }] }, 'messages[1].role'],
    ['temperature a string', { messages: user, temperature: 'hot' }, 'temperature'],
    ['temperature too high', { messages: user, temperature: 7 }, 'temperature'],
    ['top_p above 1', { messages: user, top_p: 1.5 }, 'top_p'],
    ['max_tokens above the limit', { messages: user, max_tokens: 101 }, 'max_tokens'],
    ['max_tokens zero', { messages: user, max_tokens: 0 }, 'max_tokens'],
    ['max_tokens fractional', { messages: user, max_tokens: 1.5 }, 'max_tokens'],
    ['n = 2', { messages: user, n: 2 }, 'n'],
    ['seed fractional', { messages: user, seed: 0.5 }, 'seed'],
    ['presence_penalty out of range', { messages: user, presence_penalty: 3 }, 'presence_penalty'],
    ['stop a number', { messages: user, stop: 5 }, 'stop'],
    ['too many stops', { messages: user, stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, 'stop'],
    ['logit_bias id not a token', { messages: user, logit_bias: { '999999999': 1 } }, 'logit_bias'],
    ['logit_bias key not a number', { messages: user, logit_bias: { abc: 1 } }, 'logit_bias'],
    ['logit_bias value out of range', { messages: user, logit_bias: { '5': 1000 } }, 'logit_bias'],
    ['stream not a boolean', { messages: user, stream: 'yes' }, 'stream'],
    ['logprobs', { messages: user, logprobs: true }, 'logprobs'],
    ['model not a string', { messages: user, model: 5 }, 'model'],
  ];
  it.each(cases)('%s → 400 with an OpenAI error body', async (_name, body, param) => {
    const r = await post('/v1/chat/completions', body);
    expect(r.status).toBe(400);
    expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(r.body.error.type).toBe('invalid_request_error');
    expect(r.body.error.param).toBe(param);
    expect(r.body.error.message.length).toBeGreaterThan(5);
  });

  it('completions: bad prompts → 400', async () => {
    for (const body of [{}, { prompt: '' }, { prompt: [] }, { prompt: ['a', 'b'] }, { prompt: [1, -2] }, { prompt: 'x', suffix: 'y' }, { prompt: 'x', echo: 'yes' }]) {
      const r = await post('/v1/completions', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error.type).toBe('invalid_request_error');
    }
  });

  it('the openai client surfaces them as BadRequestError', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const err = await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.param).toBe('max_tokens');
  });

  it('too large a body → 413; unknown path → 404; wrong method → 405', async () => {
    const big = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('request_too_large');
    const nf = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', body: '{}' });
    expect(nf.status).toBe(404);
    expect((await nf.json()).error.type).toBe('not_found_error');
    const wm = await fetch(`${server.url}/v1/chat/completions`);
    expect(wm.status).toBe(405);
    expect((await fetch(`${server.url}/v1/models/other`)).status).toBe(404);
  });

  it('random JSON bodies never cause a 500', async () => {
    const handler = createHandler(new ScriptedEngine(), { maxTokens: 16 });
    const field = fc.oneof(fc.jsonValue(), fc.constant(undefined));
    const message = fc.record(
      { role: fc.constantFrom('user', 'assistant', 'system', 'tool', 'function', 'x', 5), content: field, tool_calls: field, function_call: field },
      { requiredKeys: [] },
    );
    const body = fc.record(
      {
        messages: fc.oneof(fc.array(message, { maxLength: 4 }), field),
        prompt: fc.oneof(fc.string(), fc.array(fc.integer({ min: -5, max: 200000 }), { maxLength: 3 }), field),
        temperature: field,
        top_p: field,
        max_tokens: fc.oneof(fc.integer({ min: -2, max: 20 }), field),
        stop: field,
        seed: field,
        logit_bias: field,
        tools: field,
        tool_choice: field,
        stream: fc.oneof(fc.boolean(), field),
        n: field,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('/v1/chat/completions', '/v1/completions'), async (b, path) => {
        const res = await handler(new Request(`http://localhost${path}`, { method: 'POST', body: JSON.stringify(b) }));
        expect(res.status, JSON.stringify(b)).toBeLessThan(500);
        await res.text();
      }),
      { numRuns: 300 },
    );
  });
});

describe('access', () => {
  it('API key: missing or wrong → 401, right → 200; /health stays open', async () => {
    const s = await serve(engine, { port: 0, apiKey: 'sesame' });
    try {
      const none = await fetch(`${s.url}/v1/models`);
      expect(none.status).toBe(401);
      expect((await none.json()).error.code).toBe('invalid_api_key');
      const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sesamx', maxRetries: 0 });
      expect(await wrong.models.list().catch((e) => e)).toBeInstanceOf(OpenAI.AuthenticationError);
      const right = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sesame', maxRetries: 0 });
      engine.push('ok');
      const r = await right.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }] });
      expect(r.choices[0].message.content).toBe('ok');
      expect((await fetch(`${s.url}/health`)).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('CORS is off by default and on when asked', async () => {
    const off = await fetch(`${server.url}/v1/models`, { headers: { origin: 'http://example.com' } });
    expect(off.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${server.url}/v1/chat/completions`, { method: 'OPTIONS' })).status).toBe(405);
    const s = await serve(engine, { port: 0, cors: 'http://example.com' });
    try {
      const pre = await fetch(`${s.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://example.com' } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('http://example.com');
      const r = await fetch(`${s.url}/v1/models`);
      expect(r.headers.get('access-control-allow-origin')).toBe('http://example.com');
    } finally {
      await s.close();
    }
  });

  it('binds 127.0.0.1 by default; a busy port is a clear error', async () => {
    const s = await serve(engine, { port: 0 });
    expect(s.host).toBe('127.0.0.1');
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await expect(serve(engine, { port: s.port })).rejects.toThrow(/EADDRINUSE/);
    await expect(serve(engine, { port: 70000 })).rejects.toThrow(/port/);
    await s.close();
  });
});

describe('disconnects', () => {
  const waitFor = async (cond: () => boolean) => {
    for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    return cond();
  };

  it('a client that goes away aborts its non-streaming generation', async () => {
    const long = new ScriptedEngine(['word '.repeat(5000)]);
    const s = await serve(long, { port: 0 });
    try {
      const ac = new AbortController();
      const req = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: user, max_tokens: 4096 }), signal: ac.signal }).catch(
        (e) => e,
      );
      expect(await waitFor(() => long.calls.length === 1)).toBe(true);
      ac.abort();
      await req;
      expect(await waitFor(() => s.handler.active === 0)).toBe(true);
      expect(long.calls[0].options.signal!.aborted).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('a waiting request whose client goes away leaves the queue', async () => {
    const long = new ScriptedEngine(['word '.repeat(5000), 'second']);
    const s = await serve(long, { port: 0, maxQueue: 1 });
    try {
      const first = new AbortController();
      const a = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: user, max_tokens: 4096, stream: true }), signal: first.signal })
        .then((r) => r.text())
        .catch((e) => e);
      expect(await waitFor(() => long.calls.length === 1)).toBe(true);
      const second = new AbortController();
      const b = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: user }), signal: second.signal }).catch((e) => e);
      const queued = async () => (await (await fetch(`${s.url}/health`)).json()).queued;
      for (let i = 0; i < 100 && (await queued()) === 0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(await queued()).toBe(1);
      second.abort();
      await b;
      for (let i = 0; i < 100 && (await queued()) === 1; i++) await new Promise((r) => setTimeout(r, 5));
      expect(await queued()).toBe(0);
      expect(long.calls).toHaveLength(1); // the second never reached the engine
      first.abort();
      await a;
    } finally {
      await s.close();
    }
  });
});

describe('shutdown', () => {
  it('close() lets a running request finish, refuses new ones, then stops listening', async () => {
    const slow = new ScriptedEngine(['one two three four five six seven eight nine ten']);
    const s = await serve(slow, { port: 0 });
    const running = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: user, stream: true }) }).then((r) => r.text());
    for (let i = 0; i < 100 && s.handler.active === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const closing = s.close();
    const text = await running;
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(text).toContain('"finish_reason":"stop"');
    await closing;
    await expect(fetch(`${s.url}/health`)).rejects.toThrow();
  });

  it('close() aborts what is still running after its timeout', async () => {
    const never = new ScriptedEngine(['word '.repeat(5000)]);
    const s = await serve(never, { port: 0 });
    const running = fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: user, max_tokens: 4096, stream: true }) })
      .then((r) => r.text())
      .catch(() => 'closed');
    for (let i = 0; i < 100 && s.handler.active === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    await s.close({ timeoutMs: 50 });
    expect(Date.now() - t0).toBeLessThan(2000);
    await running;
    expect(never.calls[0].options.signal!.aborted).toBe(true);
  });
});
