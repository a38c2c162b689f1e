/**
 * Constrained decoding (structured output): responseFormat → compiled automaton (cached by content,
 * so a schema reused across requests keeps its automaton states and masks) → TokenConstraint per
 * generation.
 */
import { ArgumentError } from '../../errors.js';
import { GrammarAutomaton } from './automaton.js';
import { TokenConstraint, type ConstraintOptions } from './constraint.js';
import { parseGbnf } from './gbnf.js';
import { flatten, ref, type GrammarRules } from './grammar.js';
import { addJsonRules } from './json.js';
import { schemaRules } from './jsonSchema.js';
import type { TokenSource } from './trie.js';

export type ResponseFormat = { type: 'json_object' } | { type: 'json_schema'; schema: object } | { type: 'grammar'; grammar: string };

export { GrammarAutomaton } from './automaton.js';
export { TokenConstraint, walkMask, type ConstraintOptions, type MaskStats } from './constraint.js';
export { tokenTrie, buildTrie, type TokenTrie, type TokenSource } from './trie.js';
export { parseGbnf } from './gbnf.js';
export { schemaRules } from './jsonSchema.js';
export { WS_INDENT } from './json.js';

/** A validated, compiled response format. */
export interface CompiledFormat {
  readonly format: ResponseFormat;
  readonly automaton: GrammarAutomaton;
}

const CACHE_SIZE = 16;
/** A cached automaton grown past this many states is rebuilt rather than kept growing. */
const RECYCLE_STATES = 50_000;
const compiled = new Map<string, GrammarAutomaton>();

function rulesOf(f: ResponseFormat): { rules: GrammarRules; what: string } {
  if (typeof f !== 'object' || f === null) throw new ArgumentError(`responseFormat must be an object, got ${JSON.stringify(f)}`);
  switch (f.type) {
    case 'json_object': {
      const rules: GrammarRules = new Map();
      addJsonRules(rules);
      rules.set('root', ref('object'));
      return { rules, what: 'json_object' };
    }
    case 'json_schema':
      if (f.schema === undefined) throw new ArgumentError('responseFormat json_schema needs a schema');
      return { rules: schemaRules(f.schema), what: 'JSON schema' };
    case 'grammar':
      if (typeof f.grammar !== 'string') throw new ArgumentError('responseFormat grammar must be a string');
      return { rules: parseGbnf(f.grammar), what: 'grammar' };
    default:
      throw new ArgumentError(
        `responseFormat.type must be 'json_object', 'json_schema' or 'grammar', got ${JSON.stringify((f as { type: unknown }).type)}`,
      );
  }
}

/** Validates and compiles a response format (ArgumentError naming the problem when invalid). */
export function compileResponseFormat(f: ResponseFormat): CompiledFormat {
  let key: string;
  try {
    key = JSON.stringify(f);
  } catch {
    throw new ArgumentError('responseFormat must be JSON-serialisable');
  }
  let automaton = compiled.get(key);
  if (automaton && automaton.stateCount > RECYCLE_STATES) {
    compiled.delete(key);
    automaton = undefined;
  }
  if (automaton) {
    compiled.delete(key); // LRU: move to the back
  } else {
    const { rules, what } = rulesOf(f);
    automaton = new GrammarAutomaton(flatten(rules, 'root', what));
  }
  compiled.set(key, automaton);
  if (compiled.size > CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  return { format: f, automaton };
}

/** One generation's constraint over `tokenizer`'s vocabulary. */
export function createConstraint(f: CompiledFormat | ResponseFormat, tokenizer: TokenSource, opts: ConstraintOptions): TokenConstraint {
  const c = 'automaton' in f ? f : compileResponseFormat(f);
  return new TokenConstraint(c.automaton, tokenizer, opts);
}
