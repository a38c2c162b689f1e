/**
 * Tool use for Qwen (v1) chat models through ReAct prompting, in the format of the official Qwen
 * repository's OpenAI-compatible server (openai_api.py: TOOL_DESC, REACT_INSTRUCTION,
 * parse_messages, parse_response):
 *
 *  - the tool list becomes an instruction put in front of the latest user question
 *    (`{instruction}\n\nQuestion: {query}`);
 *  - an assistant tool call is rendered `Thought: …\nAction: name\nAction Input: args`, its result
 *    is appended as `\nObservation: result`, and a final answer as
 *    `Thought: I now know the final answer.\nFinal Answer: …`;
 *  - generation stops at `Observation:` so the caller can run the tool;
 *  - the answer is parsed back into a tool call or plain content — malformed output is content,
 *    parsing never throws.
 */
import { pyStrip, WhitespaceTrimmer } from '../generate/text.js';

/** One callable function, as OpenAI's `tools[].function` (or legacy `functions[]`) describes it. */
export interface FunctionSpec {
  name: string;
  description?: string;
  /** JSON schema of the arguments object. */
  parameters?: unknown;
  /** Qwen's own tool fields, honoured as openai_api.py does when present. */
  name_for_model?: string;
  name_for_human?: string;
  description_for_model?: string;
}

/** An OpenAI `tool_calls[]` entry. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ParsedAnswer {
  /** Text for the user: the thought before a tool call (null when empty), else the final answer. */
  content: string | null;
  toolCalls: ToolCall[];
}

const ACTION = '\nAction:';
const ACTION_INPUT = '\nAction Input:';
const OBSERVATION = '\nObservation:';
const FINAL = '\nFinal Answer:';

/** The stop string while a tool call may be pending. */
export const REACT_STOP = 'Observation:';

/** Continuation cue after an observation (openai_api.py appends it for text completion). */
export const REACT_THOUGHT_CUE = '\nThought:';

const NO_PARAMETERS = { type: 'object', properties: {} };

/** Python's json.dumps(value, ensure_ascii=False) with its default ', ' and ': ' separators. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(', ')}]`;
  if (typeof value === 'object') {
    const parts = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && typeof v !== 'function')
      .map(([k, v]) => `${JSON.stringify(k)}: ${pyJsonDumps(v)}`);
    return `{${parts.join(', ')}}`;
  }
  return 'null';
}

const modelName = (f: FunctionSpec) => f.name_for_model ?? f.name;

/** TOOL_DESC of openai_api.py for one function. */
export function toolDescription(f: FunctionSpec): string {
  const human = f.name_for_human ?? f.name;
  const description = f.description_for_model ?? f.description ?? '';
  return (
    `${modelName(f)}: Call this tool to interact with the ${human} API.` +
    ` What is the ${human} API useful for? ${description} Parameters: ${pyJsonDumps(f.parameters ?? NO_PARAMETERS)}`
  );
}

/** REACT_INSTRUCTION of openai_api.py for a tool list ('' when there are no tools). */
export function buildReactInstruction(functions: FunctionSpec[]): string {
  if (functions.length === 0) return '';
  const toolsText = functions.map(toolDescription).join('\n\n');
  const names = functions.map(modelName).join(', ');
  return `Answer the following questions as best you can. You have access to the following APIs:

${toolsText}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [${names}]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can be repeated zero or more times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!`;
}

/** The user turn that carries the instruction: `{instruction}\n\nQuestion: {query}`. */
export function reactQuestion(instruction: string, query: string): string {
  return instruction ? `${instruction}\n\nQuestion: ${query}` : query;
}

/** An assistant turn that calls a tool (`thought` may be empty or already start with "Thought:"). */
export function renderToolCall(thought: string, name: string, args: string): string {
  const t = thought.startsWith('Thought:') ? thought : `Thought: ${thought}`;
  return `${t}\nAction: ${name}\nAction Input: ${args}`;
}

/** A tool's result appended to the assistant turn that called it. */
export function renderObservation(result: string): string {
  return `\nObservation: ${result}`;
}

/** A plain assistant answer in a conversation that has tools. */
export function renderFinalAnswer(content: string): string {
  return `Thought: I now know the final answer.\nFinal Answer: ${content}`;
}

let counter = 0;
/** A tool-call id in OpenAI's style (`call_…`). */
export function newToolCallId(): string {
  const c = globalThis.crypto as Crypto | undefined;
  const rand = c?.randomUUID ? c.randomUUID().replace(/-/g, '').slice(0, 24) : `${Date.now().toString(36)}${(counter++).toString(36)}`;
  return `call_${rand}`;
}

/** Arguments as a JSON object string, or undefined when the text is not one (after unfencing). */
function normaliseArguments(raw: string): string | undefined {
  let s = raw.trim();
  const fence = /^```[a-zA-Z0-9]*\s*\n?([\s\S]*?)\n?```$/.exec(s);
  if (fence) s = fence[1].trim();
  if (s === '') return '{}';
  try {
    const v = JSON.parse(s);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

/**
 * Parses a model answer given in the ReAct format (parse_response of openai_api.py, made a little
 * more tolerant, and decidable on a stream): whichever of "Action:" and "Final Answer:" comes
 * first decides. A tool call needs a non-empty name (one of `toolNames` when given) and
 * arguments that are a JSON object; anything else is content — the text after the first "Final
 * Answer:" when that came first, else after the last one, else the whole text (stripped).
 */
export function parseReactAnswer(text: string, opts: { toolNames?: Iterable<string>; makeId?: () => string } = {}): ParsedAnswer {
  const s = typeof text === 'string' ? text : String(text ?? '');
  const known = opts.toolNames ? new Set(opts.toolNames) : undefined;
  // a leading newline lets a label at the very start match like one after a thought
  const t = '\n' + s;
  const i = t.indexOf(ACTION);
  const f = t.indexOf(FINAL);
  if (f >= 0 && (i < 0 || f < i)) return { content: pyStrip(t.slice(f + FINAL.length)), toolCalls: [] };
  const j = i >= 0 ? t.indexOf(ACTION_INPUT, i + 1) : -1;
  if (i >= 0 && j > i) {
    // the arguments end at the next label (the stop string "Observation:" is usually cut off)
    let k = t.length;
    for (const label of [OBSERVATION, '\nThought:', FINAL]) {
      const at = t.indexOf(label, j);
      if (at >= 0 && at < k) k = at;
    }
    const name = t.slice(i + ACTION.length, j).trim();
    const args = normaliseArguments(t.slice(j + ACTION_INPUT.length, k));
    if (name && args !== undefined && (!known || known.has(name))) {
      let thought = t.slice(0, i);
      const at = thought.indexOf('Thought:');
      if (at >= 0) thought = thought.slice(at + 'Thought:'.length);
      thought = pyStrip(thought);
      return {
        content: thought || null,
        toolCalls: [{ id: (opts.makeId ?? newToolCallId)(), type: 'function', function: { name, arguments: args } }],
      };
    }
  }
  return { content: finalAnswer(s), toolCalls: [] };
}

/** The text after the last "Final Answer:" (the whole text when there is none), stripped. */
export function finalAnswer(text: string): string {
  const t = '\n' + text;
  const z = t.lastIndexOf(FINAL);
  return pyStrip(z < 0 ? text : t.slice(z + FINAL.length));
}

/**
 * parseReactAnswer on a stream: once "Final Answer:" shows up before any "Action:", the answer
 * is streamed as it comes; otherwise the text is held and parsed at the end. The concatenation of
 * push() results and finish().rest is always parseReactAnswer(all text).content.
 */
export class ReactAnswerStream {
  private text = '';
  private mode: 'undecided' | 'answer' | 'held' = 'undecided';
  private trimmer = new WhitespaceTrimmer();
  private emitted = '';

  constructor(private readonly opts: { toolNames?: Iterable<string>; makeId?: () => string } = {}) {}

  /** Adds generated text; returns the content that can be shown now. */
  push(delta: string): string {
    const before = this.text.length;
    this.text += delta;
    if (this.mode === 'undecided') {
      const t = '\n' + this.text;
      const i = t.indexOf(ACTION);
      const f = t.indexOf(FINAL);
      if (i >= 0 && (f < 0 || i < f)) this.mode = 'held';
      else if (f >= 0) {
        this.mode = 'answer';
        return this.emit(t.slice(f + FINAL.length));
      }
      return '';
    }
    return this.mode === 'answer' ? this.emit(this.text.slice(before)) : '';
  }

  /** The whole answer, and the part of its content not yet returned by push(). */
  finish(): ParsedAnswer & { rest: string } {
    const parsed = parseReactAnswer(this.text, this.opts);
    const content = parsed.content ?? '';
    // streamed content is always a prefix of the parsed content (same rule, same strip)
    const rest = content.startsWith(this.emitted) ? content.slice(this.emitted.length) : '';
    return { ...parsed, rest };
  }

  private emit(text: string): string {
    const out = this.trimmer.push(text);
    this.emitted += out;
    return out;
  }
}
