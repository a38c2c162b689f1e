/**
 * response_format on the OpenAI-compatible server with the synthetic tiny model: json_schema answers
 * (plain and streamed) parse and validate; json_object and grammar pass through; bad formats are
 * 400s naming response_format.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { loadModel, type QwenModel } from '../../bindings/node/index.js';
import { serve, type RunningServer } from '../../bindings/node/server.js';
import { validate } from './constrainedSupport.js';

let model: QwenModel;
let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  model = await loadModel('synthetic:tiny-int4', { backend: 'cpu', threads: 1 });
  server = await serve(model, { port: 0, modelId: 'tiny' });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
  await model?.dispose();
});

const schema = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 8 },
    population: { type: 'integer' },
    coastal: { type: 'boolean' },
    districts: { type: 'array', items: { enum: ['north', 'south', 'old town'] }, minItems: 1, maxItems: 3 },
  },
  required: ['city', 'population', 'districts'],
};
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Describe a city as JSON.' }];
const response_format = { type: 'json_schema' as const, json_schema: { name: 'city', schema } };

async function post(body: unknown) {
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('response_format', () => {
  it('json_schema: greedy and seeded answers validate; streaming equals non-streaming', async () => {
    for (const extra of [{ temperature: 0 }, { temperature: 1, seed: 5 }, { temperature: 1.2, seed: 99 }]) {
      const r = await client.chat.completions.create({ model: 'tiny', messages, response_format, max_tokens: 400, ...extra });
      const text = r.choices[0].message.content ?? '';
      expect(r.choices[0].finish_reason).toBe('stop');
      expect(validate(schema, JSON.parse(text)), text).toBeUndefined();
      let streamed = '';
      for await (const ch of await client.chat.completions.create({ model: 'tiny', messages, response_format, max_tokens: 400, stream: true, ...extra })) {
        streamed += ch.choices[0]?.delta.content ?? '';
      }
      expect(streamed).toBe(text);
    }
  });

  it('grammar (extension) and text', async () => {
    const r = await post({ messages, max_tokens: 20, response_format: { type: 'grammar', grammar: 'root ::= "yes" | "no"' } });
    expect(r.status).toBe(200);
    expect(['yes', 'no']).toContain(r.body.choices[0].message.content);
    const t = await post({ messages, max_tokens: 3, temperature: 0, response_format: { type: 'text' } });
    expect(t.status).toBe(200);
  });

  it.each([
    [{ type: 'json_schema', json_schema: { schema: { type: 'string', pattern: 'x' } } }, /keyword "pattern" is not supported/],
    [{ type: 'json_schema', json_schema: { name: 'x' } }, /json_schema.schema/],
    [{ type: 'grammar', grammar: 'root ::= nope' }, /undefined rule "nope"/],
    [{ type: 'yaml' }, /response_format.type/],
    ['json', /must be an object/],
  ])('bad %j → 400 naming response_format', async (fmt, re) => {
    const r = await post({ messages, response_format: fmt });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('response_format');
    expect(r.body.error.message).toMatch(re);
  });
});
