/**
 * OpenAI chat messages → Qwen's chat inputs (system, history of [query, response] pairs, query),
 * with the semantics of parse_messages in the official openai_api.py: a leading system message
 * (default "You are a helpful assistant."), contents stripped of leading newlines and trailing
 * whitespace, tool calls and results rendered in the ReAct format, the tool instruction put in
 * front of the latest question, and a conversation that ends with an assistant or tool message
 * continued as text completion of that assistant turn.
 */
import { DEFAULT_SYSTEM } from '../chat/makeContext.js';
import {
  buildReactInstruction,
  reactQuestion,
  REACT_THOUGHT_CUE,
  renderFinalAnswer,
  renderObservation,
  renderToolCall,
  type FunctionSpec,
} from '../chat/react.js';
import { badParam } from './errors.js';

export type History = Array<[string, string]>;

export interface ChatPrompt {
  system: string;
  /** Complete earlier turns, oldest first. */
  history: History;
  /** The user turn being answered (with the tool instruction when tools are active). */
  query: string;
  /** Continuation mode: the assistant turn's text so far (generation continues it). */
  partial?: string;
  /** The conversation uses the ReAct format (tools active or tool results present). */
  react: boolean;
}

interface ToolCallIn {
  name: string;
  arguments: string;
}

/** lstrip('\n').rstrip() as openai_api.py applies to every content. */
function clean(s: string): string {
  return s.replace(/^\n+/, '').replace(/\s+$/u, '');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A message content: a string, null, or an array of text parts. */
function contentText(v: unknown, param: string, nullable: boolean): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) {
    if (nullable) return '';
    throw badParam(param, `${param} must be a string or an array of text parts`);
  }
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        if (!isObject(part) || (part.type !== 'text' && part.type !== 'input_text') || typeof part.text !== 'string') {
          throw badParam(`${param}[${i}]`, `${param}[${i}]: only text parts ({"type":"text","text":"…"}) are supported`);
        }
        return part.text;
      })
      .join('\n');
  }
  throw badParam(param, `${param} must be a string or an array of text parts, got ${typeof v}`);
}

function toolCallsOf(v: unknown, param: string): ToolCallIn[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badParam(param, `${param} must be an array`);
  return v.map((c, i) => {
    const p = `${param}[${i}]`;
    if (!isObject(c) || !isObject(c.function)) throw badParam(p, `${p} must be {"type":"function","function":{"name","arguments"}}`);
    if (c.type !== undefined && c.type !== 'function') throw badParam(`${p}.type`, `${p}.type must be "function"`);
    return functionCallOf(c.function, `${p}.function`);
  });
}

function functionCallOf(f: unknown, p: string): ToolCallIn {
  if (!isObject(f) || typeof f.name !== 'string' || f.name === '') throw badParam(`${p}.name`, `${p}.name must be a non-empty string`);
  const args = f.arguments === undefined ? '{}' : f.arguments;
  if (typeof args !== 'string') throw badParam(`${p}.arguments`, `${p}.arguments must be a JSON string`);
  return { name: f.name, arguments: args };
}

/** Validates `tools` (OpenAI) or `functions` (legacy) into function specs. */
export function parseTools(tools: unknown, functions: unknown): FunctionSpec[] {
  const out: FunctionSpec[] = [];
  const fn = (f: unknown, p: string) => {
    if (!isObject(f) || typeof f.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(f.name)) {
      throw badParam(`${p}.name`, `${p}.name must be 1-64 characters of a-z, A-Z, 0-9, _ . -`);
    }
    if (f.description !== undefined && typeof f.description !== 'string') throw badParam(`${p}.description`, `${p}.description must be a string`);
    if (f.parameters !== undefined && !isObject(f.parameters)) throw badParam(`${p}.parameters`, `${p}.parameters must be a JSON schema object`);
    for (const k of ['name_for_model', 'name_for_human', 'description_for_model'] as const) {
      if (f[k] !== undefined && typeof f[k] !== 'string') throw badParam(`${p}.${k}`, `${p}.${k} must be a string`);
    }
    out.push(f as unknown as FunctionSpec);
  };
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) throw badParam('tools', 'tools must be an array');
    tools.forEach((t, i) => {
      if (!isObject(t) || t.type !== 'function') throw badParam(`tools[${i}].type`, `tools[${i}].type must be "function"`);
      fn(t.function, `tools[${i}].function`);
    });
  }
  if (functions !== undefined && functions !== null) {
    if (!Array.isArray(functions)) throw badParam('functions', 'functions must be an array');
    functions.forEach((f, i) => fn(f, `functions[${i}]`));
  }
  const seen = new Set<string>();
  for (const f of out) {
    if (seen.has(f.name)) throw badParam('tools', `tool "${f.name}" is defined twice`);
    seen.add(f.name);
  }
  return out;
}

/**
 * Maps OpenAI messages onto a ChatPrompt. `tools` are the active tools (empty: none offered, or
 * tool_choice "none").
 */
export function parseMessages(messages: unknown, tools: FunctionSpec[]): ChatPrompt {
  if (!Array.isArray(messages) || messages.length === 0) throw badParam('messages', 'messages must be a non-empty array');
  const instruction = buildReactInstruction(tools);
  let react = tools.length > 0;

  let i = 0;
  const systems: string[] = [];
  for (; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m) || (m.role !== 'system' && m.role !== 'developer')) break;
    systems.push(clean(contentText(m.content, `messages[${i}].content`, false)));
  }
  const system = systems.length > 0 ? systems.join('\n') : DEFAULT_SYSTEM;

  const turns: Array<{ role: 'user' | 'assistant'; content: string }> = [];
  let pending: ToolCallIn[] = [];
  const last = () => turns[turns.length - 1];
  for (; i < messages.length; i++) {
    const m = messages[i];
    const p = `messages[${i}]`;
    if (!isObject(m)) throw badParam(p, `${p} must be an object`);
    switch (m.role) {
      case 'user': {
        pending = [];
        const content = clean(contentText(m.content, `${p}.content`, false));
        if (last()?.role === 'user') last().content += `\n\n${content}`;
        else turns.push({ role: 'user', content });
        break;
      }
      case 'assistant': {
        if (turns.length === 0) throw badParam(`${p}.role`, `${p}: an assistant message needs a user message before it`);
        const content = clean(contentText(m.content, `${p}.content`, true));
        const calls = [...toolCallsOf(m.tool_calls, `${p}.tool_calls`)];
        if (isObject(m.function_call)) calls.push(functionCallOf(m.function_call, `${p}.function_call`));
        let text: string;
        if (calls.length > 0) {
          react = true;
          text = renderToolCall(content, calls[0].name, calls[0].arguments);
          pending = calls.slice(1);
        } else {
          text = tools.length > 0 ? renderFinalAnswer(content) : content;
          pending = [];
        }
        if (last().role === 'user') turns.push({ role: 'assistant', content: clean(text) });
        else last().content += '\n' + text;
        break;
      }
      case 'tool':
      case 'function': {
        if (last()?.role !== 'assistant') throw badParam(`${p}.role`, `${p}: a ${m.role} message must follow an assistant message`);
        react = true;
        last().content += renderObservation(clean(contentText(m.content, `${p}.content`, true)));
        // several calls in one assistant message: the next one follows this result
        const next = pending.shift();
        if (next) last().content += '\n' + renderToolCall('', next.name, next.arguments);
        else if (i === messages.length - 1) last().content += REACT_THOUGHT_CUE;
        break;
      }
      case 'system':
      case 'developer':
        throw badParam(`${p}.role`, `${p}: system messages must come before the conversation`);
      default:
        throw badParam(`${p}.role`, `${p}.role must be one of system, developer, user, assistant, tool, function; got ${JSON.stringify(m.role)}`);
    }
  }
  if (turns.length === 0) throw badParam('messages', 'messages must contain at least one user message');

  let partial: string | undefined;
  if (last().role === 'assistant') partial = turns.pop()!.content;
  const query = turns.pop()!.content;
  const history: History = [];
  for (let t = 0; t < turns.length; t += 2) history.push([turns[t].content, turns[t + 1].content]);
  return { system, history, query: reactQuestion(instruction, query), partial, react };
}
