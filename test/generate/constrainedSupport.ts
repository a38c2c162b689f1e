/**
 * Test support for constrained decoding: a small JSON Schema validator for the supported subset
 * (written independently of the grammar compiler), a fast-check arbitrary of random *bounded*
 * schemas (every string has maxLength, every array maxItems, so the language is finite and a
 * generation must complete), and a generator of random valid instances (declared property order).
 */
import fc from 'fast-check';

export type Schema = Record<string, any> | boolean;

const typeOk = (t: string, v: unknown): boolean => {
  switch (t) {
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    default: throw new Error(`validator: unknown type ${t}`);
  }
};

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as any)[k], (b as any)[k]));
}

/** Returns the first violation as a string, or undefined when `v` is valid. */
export function validate(s: Schema, v: unknown, path = '$'): string | undefined {
  if (s === true) return undefined;
  if (s === false) return `${path}: false schema`;
  if (s.const !== undefined && !deepEqual(s.const, v)) return `${path}: not const ${JSON.stringify(s.const)}`;
  if (s.enum !== undefined && !s.enum.some((e: unknown) => deepEqual(e, v))) return `${path}: not in enum`;
  if (s.anyOf !== undefined && !s.anyOf.some((b: Schema) => validate(b, v, path) === undefined)) return `${path}: no anyOf branch`;
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.some((t) => typeOk(t, v))) return `${path}: not of type ${types.join('|')}`;
  }
  if (typeof v === 'string') {
    const n = [...v].length;
    if (s.maxLength !== undefined && n > s.maxLength) return `${path}: longer than ${s.maxLength}`;
    if (s.minLength !== undefined && n < s.minLength) return `${path}: shorter than ${s.minLength}`;
  }
  if (Array.isArray(v)) {
    if (s.maxItems !== undefined && v.length > s.maxItems) return `${path}: more than ${s.maxItems} items`;
    if (s.minItems !== undefined && v.length < s.minItems) return `${path}: fewer than ${s.minItems} items`;
    if (s.items !== undefined) for (let i = 0; i < v.length; i++) {
      const e = validate(s.items, v[i], `${path}[${i}]`);
      if (e) return e;
    }
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    for (const r of s.required ?? []) if (!(r in v)) return `${path}: missing ${r}`;
    const props = s.properties ?? {};
    for (const [k, x] of Object.entries(v)) {
      if (k in props) {
        const e = validate(props[k], x, `${path}.${k}`);
        if (e) return e;
      } else if (s.additionalProperties === false) return `${path}: extra property ${k}`;
    }
  }
  return undefined;
}

const name = fc.constantFrom('a', 'id', 'name', 'x_y', 'größe', 'k"q', 'list', 'ok');
const str = fc.string({ maxLength: 4 });

const leaf: fc.Arbitrary<Schema> = fc.oneof(
  fc.record({ type: fc.constant('string'), maxLength: fc.integer({ min: 0, max: 6 }) }).chain((s) =>
    fc.integer({ min: 0, max: s.maxLength }).map((min) => (min > 0 ? { ...s, minLength: min } : s)),
  ),
  fc.constant({ type: 'integer' }),
  fc.constant({ type: 'number' }),
  fc.constant({ type: 'boolean' }),
  fc.constant({ type: 'null' }),
  fc.uniqueArray(fc.oneof(str, fc.integer({ min: -50, max: 50 }), fc.boolean(), fc.constant(null)), { minLength: 1, maxLength: 4, comparator: deepEqual }).map((e) => ({ enum: e })),
  fc.oneof(str, fc.integer(), fc.constant({ k: [1, 'z'] })).map((c) => ({ const: c })),
  fc.integer({ min: 0, max: 5 }).map((n) => ({ type: ['string', 'null'], maxLength: n })),
);

/** Random bounded schemas (depth ≤ 2 below the root). */
export const schemaArb: fc.Arbitrary<Schema> = fc.letrec<{ node: Schema }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.uniqueArray(fc.tuple(name, tie('node'), fc.boolean()), { maxLength: 3, selector: (t) => t[0] }).map((ps) => ({
      type: 'object',
      properties: Object.fromEntries(ps.map(([k, s]) => [k, s])),
      required: ps.filter((p) => p[2]).map((p) => p[0]),
    })),
    fc.record({ items: tie('node'), minItems: fc.integer({ min: 0, max: 1 }), maxItems: fc.integer({ min: 1, max: 3 }) }).map((a) => ({ type: 'array', ...a })),
    fc.tuple(leaf, leaf).map(([a, b]) => ({ anyOf: [a, b] })),
  ),
})).node;

/** A top-level object schema (what apps ask for) whose members are random schemas. */
export const objectSchemaArb: fc.Arbitrary<Schema> = fc
  .uniqueArray(fc.tuple(name, schemaArb, fc.boolean()), { minLength: 1, maxLength: 3, selector: (t) => t[0] })
  .map((ps) => ({ type: 'object', properties: Object.fromEntries(ps.map(([k, s]) => [k, s])), required: ps.filter((p) => p[2]).map((p) => p[0]) }));

/** A random valid instance of a bounded schema (properties in declared order). */
export function instanceOf(s: Schema, rnd: () => number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  if (s === true) return pick([1, 'x', null, [true], { a: -2.5e-3 }]);
  if (s === false) throw new Error('false schema');
  if (s.const !== undefined) return s.const;
  if (s.enum !== undefined) return pick(s.enum);
  if (s.anyOf !== undefined) return instanceOf(pick(s.anyOf), rnd);
  const t: string = Array.isArray(s.type) ? pick(s.type) : s.type ?? 'object';
  switch (t) {
    case 'string': {
      const chars = ['a', ' ', '"', '\\', '\n', 'é', '中', '😀', '\u0001', '/'];
      const n = (s.minLength ?? 0) + Math.floor(rnd() * ((s.maxLength ?? 5) - (s.minLength ?? 0) + 1));
      return Array.from({ length: n }, () => pick(chars)).join('');
    }
    case 'integer': return pick([0, -7, 42, 123456789]);
    case 'number': return pick([0, -0.5, 3.25, 1e21, 6.02e23, -1.5e-7]);
    case 'boolean': return rnd() < 0.5;
    case 'null': return null;
    case 'array': {
      const n = (s.minItems ?? 0) + Math.floor(rnd() * ((s.maxItems ?? 3) - (s.minItems ?? 0) + 1));
      return Array.from({ length: n }, () => instanceOf(s.items ?? true, rnd));
    }
    default: {
      const o: Record<string, unknown> = {};
      const req = new Set(s.required ?? []);
      for (const [k, ps] of Object.entries(s.properties ?? {})) if (req.has(k) || rnd() < 0.5) o[k] = instanceOf(ps as Schema, rnd);
      return o;
    }
  }
}

/** JSON text with random bounded whitespace between tokens (as a model might write it). */
export function spaced(v: unknown, rnd: () => number): string {
  const w = () => ['', '', ' ', '\n  ', '\n\t\t', '\n'][Math.floor(rnd() * 6)];
  if (Array.isArray(v)) return v.length === 0 ? `[${w()}]` : `[${w()}${v.map((x) => spaced(x, rnd)).join(`${w()},${w()}`)}${w()}]`;
  if (typeof v === 'object' && v !== null) {
    const es = Object.entries(v);
    return es.length === 0 ? `{${w()}}` : `{${w()}${es.map(([k, x]) => `${JSON.stringify(k)}${w()}:${w()}${spaced(x, rnd)}`).join(`${w()},${w()}`)}${w()}}`;
  }
  return JSON.stringify(v);
}

export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
