/**
 * Tool use through the server, with a scripted engine (the real tokenizer, scripted answers): the
 * ReAct prompt the model sees, `Observation:` as stop string, answers parsed into tool_calls or
 * content, streaming and not, and a full round trip with the tool result fed back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { serve, type RunningServer } from '../../bindings/node/server.js';
import { buildReactInstruction } from '../../src/chat/react.js';
import { ScriptedEngine } from './fakeEngine.js';

const tools: OpenAI.Chat.ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather of a city.',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
  { type: 'function', function: { name: 'search', description: 'Search the web.' } },
];
const specs = tools.map((t) => (t as OpenAI.Chat.ChatCompletionFunctionTool).function);
const instruction = buildReactInstruction(specs as never);
const question = 'What is the weather in Paris?';
const callText = 'Thought: I should look up the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}\nObservation: (the model may make one up)';

let engine: ScriptedEngine;
let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  engine = new ScriptedEngine();
  server = await serve(engine, { port: 0 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
});
afterAll(() => server?.close());

describe('tool calls', () => {
  it('puts the ReAct instruction before the question and stops at "Observation:"', async () => {
    engine.push(callText);
    const r = await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: question }], tools, temperature: 0 });
    const prompt = engine.lastPrompt();
    expect(prompt).toBe(
      `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n${instruction}\n\nQuestion: ${question}<|im_end|>\n<|im_start|>assistant\n`,
    );
    expect(engine.calls.at(-1)!.options.stop).toEqual(['Observation:']);
    expect(engine.calls.at(-1)!.options.doSample).toBe(false);
    const msg = r.choices[0].message;
    expect(r.choices[0].finish_reason).toBe('tool_calls');
    expect(msg.content).toBe('I should look up the weather.');
    expect(msg.tool_calls).toHaveLength(1);
    const call = msg.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe('function');
    expect(call.id).toMatch(/^call_/);
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"city": "Paris"}' });
    expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
    // generation stopped at the stop string: "Observation:" and what follows cost no tokens
    const upToStop = engine.tokenizer.encode(callText.slice(0, callText.indexOf('Observation:') + 'Observation:'.length)).length;
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(upToStop + 1);
    expect(r.usage!.completion_tokens).toBeLessThan(engine.tokenizer.encode(callText).length);
  });

  it('feeds the tool result back as an Observation and returns the final answer', async () => {
    engine.push(' I now know the final answer.\nFinal Answer: It is 21 °C and sunny in Paris.');
    const r = await client.chat.completions.create({
      model: 'qwen',
      tools,
      temperature: 0,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: question },
        {
          role: 'assistant',
          content: 'I should look up the weather.',
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21, "sky": "sunny"}' },
      ],
    });
    // text completion of the assistant turn: no <|im_end|> after "Thought:"
    expect(engine.lastPrompt()).toBe(
      `<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n${instruction}\n\nQuestion: ${question}<|im_end|>\n<|im_start|>assistant\n` +
        'Thought: I should look up the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}\nObservation: {"temp": 21, "sky": "sunny"}\nThought:',
    );
    expect(r.choices[0].message.content).toBe('It is 21 °C and sunny in Paris.');
    expect(r.choices[0].message.tool_calls ?? []).toEqual([]);
    expect(r.choices[0].finish_reason).toBe('stop');
  });

  it('renders earlier tool turns and plain answers into history', async () => {
    engine.push('Thought: I now know the final answer.\nFinal Answer: Also sunny.');
    await client.chat.completions.create({
      model: 'qwen',
      tools,
      messages: [
        { role: 'user', content: question },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
        { role: 'tool', tool_call_id: 'c', content: 'sunny' },
        { role: 'assistant', content: 'Sunny.' },
        { role: 'user', content: 'And in Rome?' },
      ],
    });
    expect(engine.lastPrompt()).toBe(
      `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n` +
        `<|im_start|>user\n${question}<|im_end|>\n<|im_start|>assistant\n` +
        'Thought: \nAction: get_weather\nAction Input: {"city": "Paris"}\nObservation: sunny\nThought: I now know the final answer.\nFinal Answer: Sunny.<|im_end|>\n' +
        `<|im_start|>user\n${instruction}\n\nQuestion: And in Rome?<|im_end|>\n<|im_start|>assistant\n`,
    );
  });

  it('streams a tool call as a tool_calls delta', async () => {
    engine.push(callText);
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const ch of await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: question }], tools, stream: true })) chunks.push(ch);
    const deltas = chunks.map((c) => c.choices[0]?.delta);
    expect(deltas[0].role).toBe('assistant');
    const calls = deltas.flatMap((d) => d?.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } });
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('tool_calls');
    expect(deltas.map((d) => d?.content ?? '').join('')).toBe('I should look up the weather.');
  });

  it('streams a final answer as it is generated', async () => {
    const answer = ' I now know the final answer.\nFinal Answer: It is 21 °C and sunny in Paris, with a light breeze.';
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'user', content: question },
      { role: 'assistant', content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] },
      { role: 'tool', tool_call_id: 'c', content: '21' },
    ];
    engine.push(answer);
    const whole = await client.chat.completions.create({ model: 'qwen', messages, tools });
    engine.push(answer);
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const ch of await client.chat.completions.create({ model: 'qwen', messages, tools, stream: true })) chunks.push(ch);
    const contents = chunks.map((c) => c.choices[0]?.delta.content ?? '').filter((c) => c);
    expect(contents.join('')).toBe(whole.choices[0].message.content);
    expect(contents.join('')).toBe('It is 21 °C and sunny in Paris, with a light breeze.');
    expect(contents.length).toBeGreaterThan(5);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe('stop');
  });

  it('malformed or unknown calls come back as content', async () => {
    for (const text of ['Thought: hmm\nAction: get_weather\nAction Input: {city: Paris', 'Thought: x\nAction: delete_everything\nAction Input: {}', 'No format at all.']) {
      engine.push(text);
      const r = await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: question }], tools });
      expect(r.choices[0].message.tool_calls ?? []).toEqual([]);
      expect(r.choices[0].message.content).toBe(text);
      expect(r.choices[0].finish_reason).toBe('stop');
    }
  });

  it('tool_choice none drops the tools; a named choice offers only that tool; legacy functions get function_call', async () => {
    engine.push('plain');
    await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: question }], tools, tool_choice: 'none' });
    expect(engine.lastPrompt()).not.toContain('Action:');
    expect(engine.calls.at(-1)!.options.stop).toBeUndefined();

    engine.push('Final Answer: x');
    await client.chat.completions.create({
      model: 'qwen',
      messages: [{ role: 'user', content: question }],
      tools,
      tool_choice: { type: 'function', function: { name: 'search' } },
    });
    expect(engine.lastPrompt()).toContain('should be one of [search]\n');

    engine.push(callText);
    const r = await client.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: question }], functions: specs as never });
    expect(r.choices[0].finish_reason).toBe('function_call');
    expect(r.choices[0].message.function_call).toEqual({ name: 'get_weather', arguments: '{"city": "Paris"}' });
  });

  it('rejects malformed tools and tool messages with 400', async () => {
    const bad: unknown[] = [
      { messages: [{ role: 'user', content: 'q' }], tools: [{ type: 'function', function: { name: 'bad name!' } }] },
      { messages: [{ role: 'user', content: 'q' }], tools: [{ type: 'retrieval' }] },
      { messages: [{ role: 'user', content: 'q' }], tools: 'get_weather' },
      { messages: [{ role: 'user', content: 'q' }], tools, tool_choice: { type: 'function', function: { name: 'nope' } } },
      { messages: [{ role: 'tool', content: 'r', tool_call_id: 'x' }, { role: 'user', content: 'q' }] },
      { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'a', arguments: { city: 1 } } }] }] },
    ];
    for (const body of bad) {
      const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const e = (await res.json()).error;
      expect(e.type).toBe('invalid_request_error');
      expect(typeof e.message).toBe('string');
    }
  });
});
