/** POST /v1/chat/completions: OpenAI chat completions (streaming and not) with ReAct tool calls. */
import { parseReactAnswer, ReactAnswerStream, REACT_STOP, type FunctionSpec, type ToolCall } from '../chat/react.js';
import { chatPromptIds, generateText, type TextResult } from './engine.js';
import { checkContext, checkOptions, newId, nowSeconds, streamWithEngine, withEngine, type EndpointContext } from './context.js';
import { badParam } from './errors.js';
import { json } from './http.js';
import { parseMessages, parseTools } from './messages.js';
import { samplingRequest } from './params.js';


type ToolChoice = { mode: 'auto' | 'none' | 'required' } | { mode: 'named'; name: string };

function toolChoiceOf(v: unknown, legacy: unknown, tools: FunctionSpec[]): ToolChoice {
  const raw = v ?? legacy;
  if (raw === undefined || raw === null || raw === 'auto') return { mode: 'auto' };
  if (raw === 'none' || raw === 'required') return { mode: raw };
  const param = v !== undefined ? 'tool_choice' : 'function_call';
  const name =
    typeof raw === 'object' && raw !== null
      ? (raw as { function?: { name?: unknown }; name?: unknown }).function?.name ?? (raw as { name?: unknown }).name
      : undefined;
  if (typeof name !== 'string') throw badParam(param, `${param} must be "auto", "none", "required" or {"type":"function","function":{"name":…}}`);
  if (!tools.some((t) => t.name === name)) throw badParam(param, `${param} names "${name}", which is not among the tools`);
  return { mode: 'named', name };
}

interface Answer {
  content: string | null;
  toolCalls: ToolCall[];
  finishReason: 'stop' | 'length' | 'tool_calls';
}

const toolNames = (tools: FunctionSpec[]) => tools.map((t) => t.name_for_model ?? t.name);

function answerOf(text: string, react: boolean, tools: FunctionSpec[], r: TextResult): Answer {
  if (!react) return { content: text, toolCalls: [], finishReason: r.finishReason };
  return withParsed(parseReactAnswer(text, { toolNames: toolNames(tools) }), r);
}

function withParsed(parsed: { content: string | null; toolCalls: ToolCall[] }, r: TextResult): Answer {
  return {
    content: parsed.content,
    toolCalls: parsed.toolCalls,
    finishReason: parsed.toolCalls.length > 0 ? 'tool_calls' : r.finishReason,
  };
}

const usageOf = (r: TextResult) => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  total_tokens: r.promptTokens + r.completionTokens,
});

export async function chatCompletions(body: Record<string, unknown>, ctx: EndpointContext): Promise<Response> {
  const s = samplingRequest(body, ctx.limits);
  const allTools = parseTools(body.tools, body.functions);
  const choice = toolChoiceOf(body.tool_choice, body.function_call, allTools);
  const tools = choice.mode === 'none' ? [] : choice.mode === 'named' ? allTools.filter((t) => t.name === choice.name) : allTools;
  // legacy `functions` requests get `function_call` answers
  const legacy = body.functions !== undefined && body.tools === undefined;
  const prompt = parseMessages(body.messages, tools);
  const options = { ...s.options, signal: ctx.signal };
  if (tools.length > 0 && !(options.stop ?? []).includes(REACT_STOP)) options.stop = [...(options.stop ?? []), REACT_STOP];
  checkOptions(ctx, options);
  const ids = chatPromptIds(ctx.engine, prompt, options.maxWindowSize);
  checkContext(ctx, ids.length, s.maxTokens);
  // model.chat strips its answer; a continued turn is kept as generated
  const strip = prompt.partial === undefined;

  const id = newId('chatcmpl');
  const created = nowSeconds();
  const base = { id, created, model: ctx.modelId, system_fingerprint: null };

  const message = (a: Answer) => {
    if (a.toolCalls.length === 0) return { role: 'assistant', content: a.content ?? '' };
    if (legacy) return { role: 'assistant', content: a.content, function_call: a.toolCalls[0].function };
    return { role: 'assistant', content: a.content, tool_calls: a.toolCalls };
  };
  const finish = (a: Answer) => (legacy && a.finishReason === 'tool_calls' ? 'function_call' : a.finishReason);

  if (!s.stream) {
    const { text, result } = await withEngine(ctx, async () => {
      const gen = generateText(ctx.engine, ids, options, strip);
      let text = '';
      for (;;) {
        const r = await gen.next();
        if (r.done) return { text, result: r.value };
        text += r.value;
      }
    });
    const a = answerOf(text, prompt.react, tools, result);
    return json(
      200,
      { ...base, object: 'chat.completion', choices: [{ index: 0, message: message(a), logprobs: null, finish_reason: finish(a) }], usage: usageOf(result) },
      ctx.headers,
    );
  }

  const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
    ...base,
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  });
  return streamWithEngine(ctx, async function* (track, release) {
    yield chunk({ role: 'assistant', content: '' }, null);
    const gen = generateText(ctx.engine, ids, options, strip);
    track(gen);
    // with tools, a final answer streams once "Final Answer:" shows; a tool call comes whole
    const react = prompt.react ? new ReactAnswerStream({ toolNames: toolNames(tools) }) : undefined;
    let result: TextResult;
    for (;;) {
      const r = await gen.next();
      if (r.done) {
        result = r.value;
        break;
      }
      const d = react ? react.push(r.value) : r.value;
      if (d) yield chunk({ content: d }, null);
    }
    release();
    let a: Answer = { content: null, toolCalls: [], finishReason: result.finishReason };
    if (react) {
      const end = react.finish();
      a = withParsed(end, result);
      if (a.toolCalls.length > 0 && !legacy) {
        if (end.rest) yield chunk({ content: end.rest }, null);
        yield chunk({ tool_calls: a.toolCalls.map((c, index) => ({ index, ...c })) }, null);
      } else if (a.toolCalls.length > 0) {
        yield chunk({ content: end.rest || null, function_call: a.toolCalls[0].function }, null);
      } else if (end.rest) {
        yield chunk({ content: end.rest }, null);
      }
    }
    yield chunk({}, finish(a));
    if (s.includeUsage) yield { ...base, object: 'chat.completion.chunk', choices: [], usage: usageOf(result) };
  });
}
