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
 * more tolerant: "Action:" may open the answer). A tool call needs a non-empty name (one of
 * `toolNames` when given) and arguments that are a JSON object; anything else is content, with
 * the text after the last "Final Answer:" when there is one.
 */
export function parseReactAnswer(text: string, opts: { toolNames?: Iterable<string>; makeId?: () => string } = {}): ParsedAnswer {
  const s = typeof text === 'string' ? text : String(text ?? '');
  const known = opts.toolNames ? new Set(opts.toolNames) : undefined;
  // a leading newline lets "Action:" at the very start match like one after a thought
  const t = '\n' + s;
  const i = t.indexOf('\nAction:');
  const j = i >= 0 ? t.indexOf('\nAction Input:', i + 1) : -1;
  if (i >= 0 && j > i) {
    let k = t.indexOf('\nObservation:', j);
    if (k < 0) k = t.length; // the stop string was cut off
    const name = t.slice(i + '\nAction:'.length, j).trim();
    const args = normaliseArguments(t.slice(j + '\nAction Input:'.length, k));
    if (name && args !== undefined && (!known || known.has(name))) {
      let thought = t.slice(0, i);
      const at = thought.indexOf('Thought:');
      if (at >= 0) thought = thought.slice(at + 'Thought:'.length);
      thought = thought.trim();
      return {
        content: thought || null,
        toolCalls: [{ id: (opts.makeId ?? newToolCallId)(), type: 'function', function: { name, arguments: args } }],
      };
    }
  }
  return { content: finalAnswer(s), toolCalls: [] };
}

/** The text after the last "Final Answer:" (the whole text, trimmed, when there is none). */
export function finalAnswer(text: string): string {
  const t = '\n' + text;
  const z = t.lastIndexOf('\nFinal Answer:');
  if (z < 0) return text.trim();
  return t.slice(z + '\nFinal Answer:'.length).trim();
}
