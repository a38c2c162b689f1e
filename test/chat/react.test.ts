/**
 * ReAct tool prompting in the official openai_api.py format: prompt text, message rendering, and
 * parsing of model answers (tool call vs content; malformed output is content, never a throw).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildReactInstruction,
  finalAnswer,
  parseReactAnswer,
  pyJsonDumps,
  ReactAnswerStream,
  reactQuestion,
  renderFinalAnswer,
  renderObservation,
  renderToolCall,
  toolDescription,
} from '../../src/chat/react.js';

const weather = {
  name: 'get_weather',
  description: 'Get the current weather of a city.',
  parameters: { type: 'object', properties: { city: { type: 'string', description: '城市名' } }, required: ['city'] },
};
const search = { name: 'search', description: 'Search the web.' };

describe('pyJsonDumps', () => {
  it('matches Python json.dumps(ensure_ascii=False) separators and escapes', () => {
    expect(pyJsonDumps({ a: [1, 2.5, 'x'], b: { c: null, d: true } })).toBe('{"a": [1, 2.5, "x"], "b": {"c": null, "d": true}}');
    expect(pyJsonDumps('城市 "q"\n\t\u0001')).toBe('"城市 \\"q\\"\\n\\t\\u0001"');
    expect(pyJsonDumps([])).toBe('[]');
    expect(pyJsonDumps({})).toBe('{}');
  });
  it('round-trips through JSON.parse for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(JSON.parse(pyJsonDumps(v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
  });
});

describe('ReAct prompt', () => {
  it('describes a tool as TOOL_DESC does', () => {
    expect(toolDescription(weather)).toBe(
      'get_weather: Call this tool to interact with the get_weather API. What is the get_weather API useful for? ' +
        'Get the current weather of a city. Parameters: {"type": "object", "properties": {"city": {"type": "string", "description": "城市名"}}, "required": ["city"]}',
    );
    // no parameters: an empty object schema; Qwen's own name/description fields win
    expect(toolDescription({ name: 'x', name_for_human: '夸克搜索', description_for_model: 'desc', description: 'ignored' })).toBe(
      'x: Call this tool to interact with the 夸克搜索 API. What is the 夸克搜索 API useful for? desc Parameters: {"type": "object", "properties": {}}',
    );
  });

  it('builds REACT_INSTRUCTION with every tool and the name list', () => {
    const ins = buildReactInstruction([weather, search]);
    expect(ins).toBe(
      'Answer the following questions as best you can. You have access to the following APIs:\n\n' +
        toolDescription(weather) +
        '\n\n' +
        toolDescription(search) +
        '\n\nUse the following format:\n\n' +
        'Question: the input question you must answer\n' +
        'Thought: you should always think about what to do\n' +
        'Action: the action to take, should be one of [get_weather, search]\n' +
        'Action Input: the input to the action\n' +
        'Observation: the result of the action\n' +
        '... (this Thought/Action/Action Input/Observation can be repeated zero or more times)\n' +
        'Thought: I now know the final answer\n' +
        'Final Answer: the final answer to the original input question\n\n' +
        'Begin!',
    );
    expect(buildReactInstruction([])).toBe('');
    expect(reactQuestion(ins, 'Weather in Paris?')).toBe(`${ins}\n\nQuestion: Weather in Paris?`);
    expect(reactQuestion('', 'q')).toBe('q');
  });

  it('renders tool calls, observations and final answers', () => {
    expect(renderToolCall('I should look it up.', 'get_weather', '{"city": "Paris"}')).toBe(
      'Thought: I should look it up.\nAction: get_weather\nAction Input: {"city": "Paris"}',
    );
    expect(renderToolCall('Thought: already', 'a', '{}')).toBe('Thought: already\nAction: a\nAction Input: {}');
    expect(renderToolCall('', 'a', '{}')).toBe('Thought: \nAction: a\nAction Input: {}');
    expect(renderObservation('{"temp": 21}')).toBe('\nObservation: {"temp": 21}');
    expect(renderFinalAnswer('21 °C')).toBe('Thought: I now know the final answer.\nFinal Answer: 21 °C');
  });
});

describe('parseReactAnswer', () => {
  const ids = () => 'call_test';

  it('parses a tool call (stop string cut off, or still present)', () => {
    const text = 'Thought: I need the weather.\nAction: get_weather\nAction Input: {"city": "Paris"}';
    const want = { content: 'I need the weather.', toolCalls: [{ id: 'call_test', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris"}' } }] };
    expect(parseReactAnswer(text, { makeId: ids })).toEqual(want);
    expect(parseReactAnswer(text + '\nObservation: made up', { makeId: ids })).toEqual(want);
    expect(parseReactAnswer(text + '\n', { makeId: ids, toolNames: ['get_weather'] })).toEqual(want);
  });

  it('accepts Action at the start, fenced arguments and empty arguments', () => {
    const r = parseReactAnswer('Action: search\nAction Input: ```json\n{"q": "x"}\n```', { makeId: ids });
    expect(r.content).toBeNull();
    expect(r.toolCalls[0].function).toEqual({ name: 'search', arguments: '{"q": "x"}' });
    expect(parseReactAnswer('Thought: t\nAction: search\nAction Input:', { makeId: ids }).toolCalls[0].function.arguments).toBe('{}');
  });

  it('gives fresh ids by default', () => {
    const a = parseReactAnswer('Action: a\nAction Input: {}');
    const b = parseReactAnswer('Action: a\nAction Input: {}');
    expect(a.toolCalls[0].id).toMatch(/^call_\w+$/);
    expect(a.toolCalls[0].id).not.toBe(b.toolCalls[0].id);
  });

  it('returns the final answer as content', () => {
    expect(parseReactAnswer('Thought: I now know the final answer.\nFinal Answer: It is 21 °C.')).toEqual({ content: 'It is 21 °C.', toolCalls: [] });
    // the continuation after "\nThought:" starts without the label
    expect(parseReactAnswer(' I now know the final answer.\nFinal Answer: yes')).toEqual({ content: 'yes', toolCalls: [] });
    expect(parseReactAnswer('Final Answer: at start')).toEqual({ content: 'at start', toolCalls: [] });
    expect(parseReactAnswer('  just text  ')).toEqual({ content: 'just text', toolCalls: [] });
    expect(finalAnswer('a\nFinal Answer: 1\nFinal Answer: 2')).toBe('2');
  });

  it('whichever of Action and Final Answer comes first decides', () => {
    expect(parseReactAnswer('Final Answer: done\nAction: search\nAction Input: {}', { makeId: ids })).toEqual({
      content: 'done\nAction: search\nAction Input: {}',
      toolCalls: [],
    });
    expect(parseReactAnswer('Final Answer: a\nFinal Answer: b')).toEqual({ content: 'a\nFinal Answer: b', toolCalls: [] });
    const r = parseReactAnswer('Thought: t\nAction: search\nAction Input: {"q": 1}\nFinal Answer: no', { makeId: ids });
    expect(r.toolCalls[0].function).toEqual({ name: 'search', arguments: '{"q": 1}' });
  });

  it('turns malformed output into content', () => {
    const cases = [
      'Thought: x\nAction: get_weather', // no Action Input
      'Thought: x\nAction Input: {"a": 1}\nAction: get_weather', // wrong order
      'Thought: x\nAction: \nAction Input: {}', // empty name
      'Thought: x\nAction: get_weather\nAction Input: {city: Paris', // not JSON
      'Thought: x\nAction: get_weather\nAction Input: [1, 2]', // not an object
    ];
    for (const c of cases) {
      const r = parseReactAnswer(c, { toolNames: ['get_weather'] });
      expect(r.toolCalls, c).toEqual([]);
      expect(r.content, c).toBe(c.trim());
    }
    // a tool that was not offered is not called
    const unknown = 'Thought: x\nAction: rm_rf\nAction Input: {}';
    expect(parseReactAnswer(unknown, { toolNames: ['get_weather'] })).toEqual({ content: unknown, toolCalls: [] });
  });

  it('never throws, whatever the text', () => {
    const pieces = fc.constantFrom('Thought:', 'Action:', 'Action Input:', 'Observation:', 'Final Answer:', '\n', ' ', '{', '}', '"', 'x', '```');
    fc.assert(
      fc.property(fc.array(fc.oneof(pieces, fc.string()), { maxLength: 20 }), (parts) => {
        const r = parseReactAnswer(parts.join(''), { toolNames: ['x'] });
        expect(r.toolCalls.length <= 1).toBe(true);
        for (const c of r.toolCalls) expect(typeof JSON.parse(c.function.arguments)).toBe('object');
        if (r.toolCalls.length === 0) expect(typeof r.content).toBe('string');
      }),
    );
    expect(() => parseReactAnswer(undefined as unknown as string)).not.toThrow();
  });
});

describe('ReactAnswerStream', () => {
  const ids = () => 'call_x';
  const run = (text: string, cuts: number[]) => {
    const st = new ReactAnswerStream({ toolNames: ['x', 'search'], makeId: ids });
    const pieces: string[] = [];
    let at = 0;
    for (const c of [...cuts.filter((c) => c > 0 && c < text.length).sort((a, b) => a - b), text.length]) {
      pieces.push(st.push(text.slice(at, c)));
      at = c;
    }
    const end = st.finish();
    return { pieces, end };
  };

  it('streams a final answer as it comes', () => {
    const text = ' I now know the final answer.\nFinal Answer: It is  sunny in Paris.  ';
    const { pieces, end } = run(text, Array.from({ length: text.length }, (_, i) => i));
    const shown = pieces.join('');
    expect(shown + end.rest).toBe('It is  sunny in Paris.');
    expect(shown.length).toBeGreaterThan(15); // most of it before the end
    expect(end.toolCalls).toEqual([]);
  });

  it('holds a tool call until the end', () => {
    const text = 'Thought: look\nAction: search\nAction Input: {"q": "Final Answer: no"}';
    const { pieces, end } = run(text, [3, 10, 20, 30, 40]);
    expect(pieces.join('')).toBe('');
    expect(end.rest).toBe('look');
    expect(end.toolCalls[0].function).toEqual({ name: 'search', arguments: '{"q": "Final Answer: no"}' });
  });

  it('always ends with what parseReactAnswer gives for the whole text', () => {
    const pieces = fc.constantFrom('Thought: ', 'Action: ', 'search', 'x', '\nAction Input: ', '{"a": 1}', '\nFinal Answer:', '\n', ' ', '\t', 'word', 'é', '{');
    fc.assert(
      fc.property(fc.array(fc.oneof(pieces, fc.string({ maxLength: 5 })), { maxLength: 14 }), fc.array(fc.nat(80), { maxLength: 8 }), (parts, cuts) => {
        const text = parts.join('');
        const { pieces: shown, end } = run(text, cuts);
        const want = parseReactAnswer(text, { toolNames: ['x', 'search'], makeId: ids });
        expect(shown.join('') + end.rest).toBe(want.content ?? '');
        expect(end.toolCalls).toEqual(want.toolCalls);
      }),
      { numRuns: 500 },
    );
  });
});
