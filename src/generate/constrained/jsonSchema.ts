/**
 * JSON Schema subset → grammar. Supported: type (string or list), properties (emitted in declared
 * order; required ones always, optional ones maybe), required, additionalProperties (accepted: only
 * declared properties are ever emitted, which satisfies it), items, minItems, maxItems, minLength,
 * maxLength, enum, const, anyOf, and annotations (title, description, default, examples, format, …).
 * Any other keyword is an ArgumentError naming it and its path, rather than output that may not
 * validate.
 */
import { ArgumentError } from '../../errors.js';
import { alt, lit, ref, rep, seq, type Expr, type GrammarRules } from './grammar.js';
import { addJsonRules, integerExpr, numberExpr, ws } from './json.js';

const ANNOTATIONS = new Set([
  'title', 'description', '$schema', '$id', '$comment', 'default', 'examples', 'format', 'deprecated', 'readOnly', 'writeOnly',
]);
const KEYWORDS = new Set([
  'type', 'enum', 'const', 'anyOf', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems',
  'uniqueItems', 'minLength', 'maxLength',
]);
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type TypeName = (typeof TYPES)[number];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(path: string, msg: string): never {
  throw new ArgumentError(`JSON schema at ${path}: ${msg}`);
}

function typeOf(v: unknown): TypeName {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as TypeName;
}

function count(s: Record<string, unknown>, key: string, path: string): number | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`${path}/${key}`, `${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Exactly the JSON value `v` (members in its key order), with bounded whitespace between tokens. */
function valueExpr(v: unknown): Expr {
  if (Array.isArray(v)) {
    if (v.length === 0) return seq(lit('['), ws, lit(']'));
    return seq(lit('['), ws, ...v.flatMap((x, i) => (i === 0 ? [valueExpr(x)] : [ws, lit(','), ws, valueExpr(x)])), ws, lit(']'));
  }
  if (isObject(v)) {
    const es = Object.entries(v);
    if (es.length === 0) return seq(lit('{'), ws, lit('}'));
    const member = ([k, x]: [string, unknown]) => seq(lit(JSON.stringify(k)), ws, lit(':'), ws, valueExpr(x));
    return seq(lit('{'), ws, ...es.flatMap((e, i) => (i === 0 ? [member(e)] : [ws, lit(','), ws, member(e)])), ws, lit('}'));
  }
  return lit(JSON.stringify(v));
}

/** Grammar rules for values valid under `schema`; the entry rule is `root`. */
export function schemaRules(schema: unknown): GrammarRules {
  const rules: GrammarRules = new Map();
  addJsonRules(rules);
  let ids = 0;

  const compile = (s: unknown, path: string): Expr => {
    if (s === true) return ref('value');
    if (s === false) fail(path, 'the schema false admits no value');
    if (!isObject(s)) fail(path, `a schema must be an object or a boolean, got ${JSON.stringify(s)}`);
    for (const k of Object.keys(s)) {
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) fail(path, `keyword "${k}" is not supported`);
    }
    let types: TypeName[] | undefined;
    if (s.type !== undefined) {
      const list = Array.isArray(s.type) ? s.type : [s.type];
      if (list.length === 0) fail(`${path}/type`, 'type must not be an empty list');
      for (const t of list) if (!TYPES.includes(t as TypeName)) fail(`${path}/type`, `unknown type ${JSON.stringify(t)}`);
      types = list as TypeName[];
    }
    const admits = (v: unknown) => !types || types.includes(typeOf(v)) || (types.includes('number') && typeof v === 'number');
    if (s.const !== undefined) {
      if (!admits(s.const)) fail(`${path}/const`, `const ${JSON.stringify(s.const)} does not match type ${JSON.stringify(s.type)}`);
      return valueExpr(s.const);
    }
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) fail(`${path}/enum`, 'enum must be a non-empty array');
      const vals = s.enum.filter(admits);
      if (vals.length === 0) fail(`${path}/enum`, `no enum value matches type ${JSON.stringify(s.type)}`);
      const unique = new Map(vals.map((v) => [JSON.stringify(v), v]));
      return alt(...[...unique.values()].map(valueExpr));
    }
    if (s.anyOf !== undefined) {
      if (!Array.isArray(s.anyOf) || s.anyOf.length === 0) fail(`${path}/anyOf`, 'anyOf must be a non-empty array');
      const others = Object.keys(s).filter((k) => k !== 'anyOf' && KEYWORDS.has(k));
      if (others.length > 0) fail(path, `anyOf beside ${others.join(', ')} is not supported (move them into each branch)`);
      return alt(...s.anyOf.map((b, i) => compile(b, `${path}/anyOf/${i}`)));
    }
    if (!types) {
      if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined) types = ['object'];
      else if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) types = ['array'];
      else if (s.minLength !== undefined || s.maxLength !== undefined) types = ['string'];
      else return ref('value');
    }
    const branches = [...new Set(types)].map((t): Expr => {
      switch (t) {
        case 'object':
          return objectExpr(s, path);
        case 'array':
          return arrayExpr(s, path);
        case 'string': {
          const min = count(s, 'minLength', path) ?? 0;
          const max = count(s, 'maxLength', path) ?? Infinity;
          if (min > max) fail(path, `minLength ${min} > maxLength ${max}`);
          return seq(lit('"'), rep(ref('char'), min, max), lit('"'));
        }
        case 'number':
          return numberExpr;
        case 'integer':
          return integerExpr;
        case 'boolean':
          return alt(lit('true'), lit('false'));
        case 'null':
          return lit('null');
      }
    });
    return alt(...branches);
  };

  const objectExpr = (s: Record<string, unknown>, path: string): Expr => {
    const props = s.properties ?? {};
    if (!isObject(props)) fail(`${path}/properties`, 'properties must be an object');
    const required = s.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string')) fail(`${path}/required`, 'required must be an array of strings');
    const req = new Set(required as string[]);
    if (req.size !== required.length) fail(`${path}/required`, 'required has duplicate names');
    const names = Object.keys(props);
    for (const r of req) if (!(r in props)) names.push(r); // required without a schema: any value
    const members = names.map((n) =>
      seq(lit(JSON.stringify(n)), ws, lit(':'), ws, compile(n in props ? props[n] : true, `${path}/properties/${n}`)),
    );
    // tail(i, first): the members from i on; `first` = nothing emitted yet (no comma before the next)
    const base = `obj${++ids}`;
    const tail = (i: number, first: boolean): Expr => {
      if (i === names.length) return seq();
      const name = `${base}-${i}${first ? 'f' : 'n'}`;
      if (!rules.has(name)) {
        rules.set(name, seq()); // placeholder while building (names are acyclic)
        const take = first ? seq(members[i], tail(i + 1, false)) : seq(ws, lit(','), ws, members[i], tail(i + 1, false));
        rules.set(name, req.has(names[i]) ? take : alt(take, tail(i + 1, first)));
      }
      return ref(name);
    };
    return seq(lit('{'), ws, tail(0, true), ws, lit('}'));
  };

  const arrayExpr = (s: Record<string, unknown>, path: string): Expr => {
    if (s.uniqueItems === true) fail(`${path}/uniqueItems`, 'uniqueItems: true is not supported');
    const min = count(s, 'minItems', path) ?? 0;
    const max = count(s, 'maxItems', path) ?? Infinity;
    if (min > max) fail(path, `minItems ${min} > maxItems ${max}`);
    if (Array.isArray(s.items)) fail(`${path}/items`, 'tuple items (an array) are not supported');
    const empty = seq(lit('['), ws, lit(']'));
    if (max === 0) return empty;
    const item = compile(s.items ?? true, `${path}/items`);
    const body = seq(lit('['), ws, item, rep(seq(ws, lit(','), ws, item), Math.max(min - 1, 0), max - 1), ws, lit(']'));
    return min === 0 ? alt(empty, body) : body;
  };

  rules.set('root', compile(schema, '#'));
  return rules;
}
