/**
 * The server under load and abuse, on loopback with the tiny fixture model (CPU): concurrent
 * streaming clients each get exactly their solo greedy answer, shutdown finishes or cancels what
 * is queued, and absurd input is always a 4xx with a message (test/server/http.test.ts covers the
 * common cases; these are the ones it does not). bench/soak.ts runs 32 clients × 500 requests. (12 clients here: more than
 * Node's 10 listeners per signal, so a per-request listener on a shared signal would show as a warning.)
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../bindings/node/index.js';
import { serve, type RunningServer } from '../../bindings/node/server.js';
import { serverSoak } from '../../bench/soak.js';
import type { QwenModel } from '../../src/model/model.js';
import { modelDir } from '../support/fixtures.js';

let model: QwenModel;
let server: RunningServer;
const user = [{ role: 'user', content: 'hi' }];

beforeAll(async () => {
  model = await loadModel(modelDir('qwen-tiny-int4'), { backend: 'cpu' });
  server = await serve(model, { port: 0, maxBodyBytes: 64 * 1024, maxTokens: 64 });
});
afterAll(async () => {
  await server?.close();
  await model?.dispose();
});

async function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body as BodyInit });
  const text = await res.text();
  return { status: res.status, text, json: (() => { try { return JSON.parse(text); } catch { return undefined; } })() };
}

function expect4xx(r: { status: number; json: any; text: string }, what: string) {
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(r.status, `${what}: ${r.text.slice(0, 300)}`).toBeLessThan(500);
  expect(typeof r.json?.error?.message, what).toBe('string');
  expect(r.json.error.message.length, what).toBeGreaterThan(5);
}

describe('soak (CI size)', () => {
  it('12 concurrent streaming clients × 8 requests: every answer equals its solo answer; shutdown is clean', async () => {
    const m = await loadModel(modelDir('qwen-tiny-int4'), { backend: 'cpu' });
    try {
      const r = await serverSoak(m, { clients: 12, requests: 8, seed: 1127, maxTokens: 6 });
      expect(r.failures).toEqual([]);
      expect(r.requests).toBe(96);
      expect(r.mismatches + r.errors).toBe(0);
      const s = r.shutdown;
      expect(s.completed + s.cancelled + s.refused).toBe(12);
      expect(s.bad).toBe(0);
      expect(r.peakRssBytes).toBeLessThan(2 * 2 ** 30);
    } finally {
      await m.dispose();
    }
  });
});

describe('absurd requests → 4xx with a message, never a 500', () => {
  const bigStop = 'x'.repeat(257);
  const bias = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [String(i), 1]));
  const cases: Array<[string, unknown]> = [
    ['max_tokens 1e12', { messages: user, max_tokens: 1e12 }],
    ['max_tokens -1', { messages: user, max_tokens: -1 }],
    ['max_tokens NaN-ish string', { messages: user, max_tokens: 'NaN' }],
    ['max_completion_tokens huge', { messages: user, max_completion_tokens: 2 ** 53 }],
    ['top_k 1e9', { messages: user, top_k: 1e9 }],
    ['top_k fractional', { messages: user, top_k: 2.5 }],
    ['min_p 2', { messages: user, min_p: 2 }],
    ['repetition_penalty 0', { messages: user, repetition_penalty: 0 }],
    ['repetition_penalty 1e6', { messages: user, repetition_penalty: 1e6 }],
    ['frequency_penalty -1e9', { messages: user, frequency_penalty: -1e9 }],
    ['max_window_size 0', { messages: user, max_window_size: 0 }],
    ['max_window_size 2^40', { messages: user, max_window_size: 2 ** 40 }],
    ['seed beyond 2^53', { messages: user, seed: 2 ** 60 }],
    ['temperature -0.5', { messages: user, temperature: -0.5 }],
    ['a 257-character stop string', { messages: user, stop: [bigStop] }],
    ['1025 logit_bias entries', { messages: user, logit_bias: bias }],
    ['logit_bias -1', { messages: user, logit_bias: { '-1': 5 } }],
    ['stream_options a string', { messages: user, stream: true, stream_options: 'usage' }],
    ['messages an object', { messages: { role: 'user', content: 'hi' } }],
    ['a message null', { messages: [null] }],
    ['content an object', { messages: [{ role: 'user', content: { text: 'x' } }] }],
    ['tools not an array', { messages: user, tools: 'get_weather' }],
    ['a tool without a name', { messages: user, tools: [{ type: 'function', function: {} }] }],
    ['tool_choice naming no tool', { messages: user, tools: [{ type: 'function', function: { name: 'a' } }], tool_choice: { type: 'function', function: { name: 'b' } } }],
    ['a prompt of out-of-range ids', null],
  ];
  it.each(cases)('%s', async (name, body) => {
    const r =
      body === null
        ? await post('/v1/completions', JSON.stringify({ prompt: [1, 2, 10 ** 9], max_tokens: 2 }))
        : await post('/v1/chat/completions', JSON.stringify(body));
    expect4xx(r, name);
  });

  it('prompt + max_tokens past the context limit → 400 context_length_exceeded', async () => {
    const small = await serve(model, { port: 0, maxContextTokens: 64, maxTokens: 64 });
    try {
      const res = await fetch(`${small.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'word '.repeat(100) }], max_tokens: 8 }) });
      const j = await res.json();
      expect(res.status).toBe(400);
      expect(j.error.code).toBe('context_length_exceeded');
    } finally {
      await small.close();
    }
  });

  it('JSON nested 100k levels deep, NUL bytes, invalid UTF-8 → 400', async () => {
    expect4xx(await post('/v1/chat/completions', '['.repeat(60_000) + ']'.repeat(60_000)), 'deep nesting (over the size limit → 413)');
    expect4xx(await post('/v1/chat/completions', '['.repeat(30_000) + ']'.repeat(30_000)), 'deep nesting');
    expect4xx(await post('/v1/chat/completions', '{"messages":[{"role":"user","content":"hi"}]}\u0000'), 'trailing NUL');
    expect4xx(await post('/v1/chat/completions', Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)), 'invalid UTF-8');
  });

  it('an oversize chunked body (no content-length) → 413 without reading it all; a lying content-length → 413 at once', async () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > 4 * 2 ** 20) return c.close();
        sent += 65536;
        c.enqueue(new Uint8Array(65536).fill(0x20));
      },
    });
    // @ts-expect-error duplex is required by Node's fetch for a stream body
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body, duplex: 'half' });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('request_too_large');
    const lie = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-length': '999999999' }, body: '{}' }).then(
      async (r) => r.status,
      () => 'refused by the client',
    );
    expect([413, 'refused by the client']).toContain(lie);
  });

  it('path parameters cannot traverse: model ids with ../ or malformed escapes are 404s', async () => {
    for (const p of ['/v1/models/..%2f..%2fetc%2fpasswd', '/v1/models/%ff', '/v1/models/%2e%2e', '/v1/../../etc/passwd', '/v1/models/qwen%00']) {
      const res = await fetch(`${server.url}${p}`);
      const j = await res.json();
      expect(res.status, p).toBe(404);
      expect(j.error.message.length).toBeGreaterThan(5);
      expect(JSON.stringify(j)).not.toContain('root:');
    }
  });

  it('malformed HTTP on the socket gets a 4xx and the server keeps serving', async () => {
    const { port } = server;
    const raw = (data: string) =>
      new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
        s.write(data);
        setTimeout(() => s.end(), 200);
      });
    for (const req of ['GARBAGE\r\n\r\n', 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]) {
      const answer = await raw(req);
      expect(answer, req.slice(0, 40)).toMatch(/^HTTP\/1\.1 4\d\d/);
    }
    const ok = await fetch(`${server.url}/health`);
    expect(ok.status).toBe(200);
  });
});
