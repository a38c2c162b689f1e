/**
 * Constrained decoding without a model: the automaton accepts exactly the sentences of its format
 * (random schemas × random valid instances with random whitespace; mutations rejected), GBNF
 * grammars, typed errors for invalid schemas/grammars, the token trie, and masks equal to a
 * brute-force check of every token.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ArgumentError } from '../../src/errors.js';
import {
  compileResponseFormat,
  createConstraint,
  tokenTrie,
  walkMask,
  WS_INDENT,
  type GrammarAutomaton,
  type ResponseFormat,
} from '../../src/generate/constrained/index.js';
import { fixtureTokenizer } from '../server/fakeEngine.js';
import { instanceOf, objectSchemaArb, schemaArb, seededRandom, spaced, validate } from './constrainedSupport.js';

const enc = new TextEncoder();
const automatonOf = (f: ResponseFormat): GrammarAutomaton => compileResponseFormat(f).automaton;

/** Accepts exactly: the whole text is a sentence. */
function accepts(a: GrammarAutomaton, text: string): boolean {
  const s = a.walk(a.initial, enc.encode(text));
  return s >= 0 && a.isAccepting(s);
}
/** The text is a prefix of some sentence. */
function prefixOk(a: GrammarAutomaton, text: string): boolean {
  return a.walk(a.initial, enc.encode(text)) >= 0;
}

describe('JSON automaton', () => {
  const json = automatonOf({ type: 'json_object' });

  it('accepts random JSON objects, compact and spaced', () => {
    const val = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e90, max: 1e90 }).filter((x) => x === 0 || Math.abs(x) > 1e-90),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 5 }), tie('v'), { maxKeys: 3 }),
      ),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 5 }), val, { maxKeys: 4 }), fc.integer(), (o, seed) => {
        expect(accepts(json, JSON.stringify(o))).toBe(true);
        expect(accepts(json, spaced(o, seededRandom(seed)))).toBe(true);
        expect(accepts(json, JSON.stringify(o, null, 2))).toBe(true);
        expect(accepts(json, JSON.stringify(o, null, '\t'))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects non-objects, broken JSON, and unbounded or odd whitespace', () => {
    for (const bad of ['[]', '1', '"x"', 'null', '{"a" 1}', '{"a":1,}', '{,}', "{'a':1}", '{"a":01}', '{"a":1.}', '{"a":tru}', '{"a":"\u0001"}', '{"a":"\\q"}', '{"a":1}}', '{"a":1e999}']) {
      expect(accepts(json, bad), bad).toBe(false);
    }
    expect(accepts(json, `{\n${' '.repeat(WS_INDENT)}}`)).toBe(true);
    expect(prefixOk(json, `{\n${' '.repeat(WS_INDENT + 1)}`)).toBe(false);
    for (const ws of ['  ', '\n\n', '\t', ' \n', '\r\n']) expect(prefixOk(json, `{${ws}`), JSON.stringify(ws)).toBe(false);
    // invalid UTF-8 inside a string: overlong, surrogate, stray continuation byte
    for (const bytes of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0x80], [0xf5, 0x80, 0x80, 0x80]]) {
      const s = json.walk(json.initial, Uint8Array.from([0x7b, 0x22, ...bytes]));
      expect(s).toBe(-1);
    }
    expect(json.walk(json.initial, Uint8Array.from([0x7b, 0x22, 0xf0, 0x9f, 0x98, 0x80, 0x22]))).toBeGreaterThanOrEqual(0);
  });
});

describe('JSON Schema automaton', () => {
  it('accepts random valid instances of random schemas (random whitespace)', () => {
    fc.assert(
      fc.property(schemaArb, fc.integer(), (schema, seed) => {
        const a = automatonOf({ type: 'json_schema', schema: schema as object });
        const rnd = seededRandom(seed);
        for (let k = 0; k < 4; k++) {
          const v = instanceOf(schema, rnd);
          expect(validate(schema, v)).toBeUndefined(); // the generator itself is right
          expect(accepts(a, JSON.stringify(v)), JSON.stringify(v)).toBe(true);
          expect(accepts(a, spaced(v, rnd)), spaced(v, rnd)).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('rejects instances that break the schema', () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 3 },
        age: { type: 'integer' },
        tags: { type: 'array', items: { enum: ['a', 'b'] }, minItems: 1, maxItems: 2 },
        kind: { const: 'k' },
        x: { anyOf: [{ type: 'null' }, { type: 'boolean' }] },
      },
      required: ['name', 'tags'],
    };
    const a = automatonOf({ type: 'json_schema', schema });
    const good = ['{"name":"ab","tags":["a"]}', '{"name":"abc","age":-3,"tags":["b","a"],"kind":"k","x":null}', '{"name":"x","tags":["a"],"x":true}'];
    for (const g of good) expect(accepts(a, g), g).toBe(true);
    const bad = [
      '{"tags":["a"]}', // missing required
      '{"name":"","tags":["a"]}', // minLength
      '{"name":"abcd","tags":["a"]}', // maxLength
      '{"name":"a","age":1.5,"tags":["a"]}', // integer
      '{"name":"a","tags":[]}', // minItems
      '{"name":"a","tags":["a","b","a"]}', // maxItems
      '{"name":"a","tags":["c"]}', // enum
      '{"name":"a","tags":["a"],"kind":"j"}', // const
      '{"name":"a","tags":["a"],"x":1}', // anyOf
      '{"name":"a","tags":["a"],"extra":1}', // undeclared
    ];
    for (const b of bad) expect(accepts(a, b), b).toBe(false);
  });

  it('top-level objects from random schemas: every accepted compact instance validates', () => {
    // soundness from the other side: random instances of one schema checked against another
    fc.assert(
      fc.property(objectSchemaArb, objectSchemaArb, fc.integer(), (s1, s2, seed) => {
        const a = automatonOf({ type: 'json_schema', schema: s1 as object });
        const v = instanceOf(s2, seededRandom(seed));
        if (accepts(a, JSON.stringify(v))) expect(validate(s1, v)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

describe('GBNF grammars', () => {
  it('literals, classes, grouping, repetition, alternation, comments, escapes', () => {
    const a = automatonOf({
      type: 'grammar',
      grammar: `
        # a tiny command language
        root ::= cmd ("; " cmd)*
        cmd  ::= "go " dir | "say " word | "n" [0-9]{1,3} "?"?
        dir  ::= ("north" | "south")
        word ::= [a-zé]+ [^\\x00-\\x40]?
      `,
    });
    for (const ok of ['go north', 'say hé', 'n7', 'n123?', 'go south; say abcZ; n0']) expect(accepts(a, ok), ok).toBe(true);
    for (const no of ['go west', 'say ', 'n1234', 'go north;go north', 'say A', 'n']) expect(accepts(a, no), no).toBe(false);
  });

  it('any-character dot and open-ended repetition {m,}', () => {
    const a = automatonOf({ type: 'grammar', grammar: 'root ::= . {2,} "\\n" | "x"{3}' });
    for (const ok of ['ab\n', 'é中😀\n', 'xxx', 'xx\n']) expect(accepts(a, ok), ok).toBe(true);
    for (const no of ['a\n', '\n\n\n', 'xxxx', 'xx']) expect(accepts(a, no), no).toBe(false);
  });

  it('a JSON-like grammar with recursion', () => {
    const a = automatonOf({
      type: 'grammar',
      grammar: 'root ::= list\nlist ::= "[" (item ("," item)*)? "]"\nitem ::= list | [0-9]+',
    });
    fc.assert(
      fc.property(fc.letrec((t) => ({ l: fc.array(fc.oneof({ depthSize: 'small' }, fc.nat(), t('l')), { maxLength: 3 }) })).l, (l) => {
        expect(accepts(a, JSON.stringify(l))).toBe(true);
        expect(accepts(a, JSON.stringify(l) + ']')).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('invalid grammars are ArgumentErrors naming the problem', () => {
    const cases: Array<[string, RegExp]> = [
      ['rot ::= "a"', /no "root" rule/],
      ['root ::= "a', /unterminated string/],
      ['root ::= [a-', /unterminated character class/],
      ['root ::= [z-a]', /reversed/],
      ['root ::= x', /undefined rule "x"/],
      ['root ::= root "a" | "b"', /left-recursive/],
      ['root ::= ("a"?)*', /left-recursive|empty/],
      ['root ::= ("a"', /unclosed \(/],
      ['root ::= "a" )', /unmatched \)/],
      ['root ::= "a"{3,2}', /max < min/],
      ['root ::= "a"{99999}', /repetition bound/],
      ['root ::= "\\q"', /unknown escape/],
      ['root ::= "a"\nroot ::= "b"', /defined twice/],
      ['root = "a"', /expected ::=/],
      ['root ::= [^\\x00-\\U0010FFFF]', /matches nothing/],
    ];
    for (const [g, re] of cases) {
      expect(() => compileResponseFormat({ type: 'grammar', grammar: g }), g).toThrow(ArgumentError);
      expect(() => compileResponseFormat({ type: 'grammar', grammar: g }), g).toThrow(re);
    }
  });
});

describe('invalid schemas', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ type: 'strin' }, /unknown type "strin"/],
    [{ type: 'string', pattern: '^a' }, /#: keyword "pattern" is not supported/],
    [{ type: 'object', properties: { a: { type: 'integer', minimum: 0 } } }, /#\/properties\/a: keyword "minimum"/],
    [{ $ref: '#/x' }, /keyword "\$ref"/],
    [{ enum: [] }, /enum must be a non-empty array/],
    [{ type: 'string', enum: [1, 2] }, /no enum value matches/],
    [{ type: 'array', minItems: 3, maxItems: 2 }, /minItems 3 > maxItems 2/],
    [{ type: 'string', maxLength: -1 }, /maxLength must be a non-negative integer/],
    [{ type: 'object', required: 'a' }, /required must be an array/],
    [{ type: 'object', properties: [] }, /properties must be an object/],
    [{ anyOf: [] }, /anyOf must be a non-empty array/],
    [{ type: 'array', items: false }, /false admits no value/],
    [{ type: 'array', uniqueItems: true }, /uniqueItems/],
    [{ type: 'array', items: [{}] }, /tuple items/],
    [42, /must be an object or a boolean/],
  ];
  it.each(cases)('%j', (schema, re) => {
    const f = { type: 'json_schema', schema } as ResponseFormat;
    expect(() => compileResponseFormat(f)).toThrow(ArgumentError);
    expect(() => compileResponseFormat(f)).toThrow(re);
  });
  it('bad response formats', () => {
    expect(() => compileResponseFormat({ type: 'xml' } as unknown as ResponseFormat)).toThrow(/responseFormat.type/);
    expect(() => compileResponseFormat({ type: 'json_schema' } as unknown as ResponseFormat)).toThrow(/needs a schema/);
    expect(() => compileResponseFormat({ type: 'grammar', grammar: 5 } as unknown as ResponseFormat)).toThrow(/must be a string/);
  });
});

describe('token trie and masks', () => {
  const tok = fixtureTokenizer();
  const V = 151936;

  it('the trie holds every ordinary token once, under its bytes', () => {
    const t = tokenTrie(tok);
    expect(tokenTrie(tok)).toBe(t); // cached per tokenizer
    const seen = new Uint8Array(tok.endOfText);
    const path: number[] = [];
    for (let i = 1; i < t.size; i++) {
      path.length = t.depth[i] - 1;
      path.push(t.label[i]);
      if (!(t.skip[i] > i)) throw new Error(`node ${i}: skip ${t.skip[i]} does not pass its subtree`);
      const id = t.token[i];
      if (id >= 0) {
        seen[id]++;
        const b = tok.tokenBytes(id);
        if (b.length !== path.length || b.some((x, k) => x !== path[k])) throw new Error(`token ${id} under the wrong path`);
      }
    }
    expect(seen.every((x) => x === 1)).toBe(true);
  });

  function bruteForce(a: GrammarAutomaton, state: number): Uint32Array {
    const bits = new Uint32Array((V + 31) >>> 5);
    for (let id = 0; id < tok.endOfText; id++) if (a.walk(state, tok.tokenBytes(id)) >= 0) bits[id >>> 5] |= 1 << (id & 31);
    return bits;
  }

  it('trie-walk masks equal a brute-force check of every token, at random states', () => {
    const formats: ResponseFormat[] = [
      { type: 'json_object' },
      { type: 'json_schema', schema: { type: 'object', properties: { név: { type: 'string', maxLength: 2 }, n: { type: 'number' }, e: { enum: ['中文', 'x'] } }, required: ['n'] } },
      { type: 'grammar', grammar: 'root ::= [α-ω]+ "!" | "ab" [^a-z]*' },
    ];
    const prefixes = [
      ['', '{', '{"a', '{"a":', '{"a": [1, "\u00e9', '{"a":{"b":[tru'],
      ['', '{"n', '{"név":"', '{"név":"中', '{"név":"xy', '{"n":-1', '{"n":1.5e', '{"n":0,"e":"中'],
      ['', 'αβ', 'a', 'ab', 'ab12'],
    ];
    formats.forEach((f, k) => {
      const a = automatonOf(f);
      for (const p of prefixes[k]) {
        let s = a.walk(a.initial, enc.encode(p));
        expect(s, p).toBeGreaterThanOrEqual(0);
        // also states that end inside a UTF-8 character
        const states = [s];
        const last = enc.encode(p);
        if (last.length > 0 && last[last.length - 1] >= 0x80) states.push(a.walk(a.initial, last.subarray(0, last.length - 1)));
        for (const st of states) {
          const m = walkMask(a, tokenTrie(tok), st, (V + 31) >>> 5);
          expect(Array.from(m)).toEqual(Array.from(bruteForce(a, st)));
        }
      }
    });
  });

  it('a counted string shares states across UTF-8 prefixes (no state per count × prefix)', () => {
    const a = automatonOf({ type: 'json_schema', schema: { type: 'string', minLength: 3, maxLength: 60 } });
    let s = a.walk(a.initial, enc.encode('"'));
    for (let k = 0; k < 30; k++) {
      walkMask(a, tokenTrie(tok), s, (V + 31) >>> 5);
      s = a.walk(s, enc.encode('é'));
    }
    // each count needs its own state, UTF-8 prefixes do not (it was > 40 000 before sharing them)
    expect(a.stateCount).toBeLessThan(2000);
    expect(accepts(a, `"${'中'.repeat(60)}"`)).toBe(true);
    expect(accepts(a, `"${'😀'.repeat(61)}"`)).toBe(false);
    expect(accepts(a, '"ab"')).toBe(false);
  });

  it('a format no token can spell is an ArgumentError at mask time, not a silent pick', () => {
    const vocab = ['a', 'b', 'ab'].map((t) => enc.encode(t));
    const tiny = { endOfText: vocab.length, tokenBytes: (id: number) => vocab[id] };
    const ok = createConstraint(compileResponseFormat({ type: 'grammar', grammar: 'root ::= "ab"+' }), tiny, { vocabSize: 5, endIds: [3, 4] });
    const l = new Float32Array(5);
    ok.mask(l);
    expect(Array.from(l)).toEqual([0, -Infinity, 0, -Infinity, -Infinity]);
    const dead = createConstraint(compileResponseFormat({ type: 'grammar', grammar: 'root ::= "c"' }), tiny, { vocabSize: 5, endIds: [3, 4] });
    expect(() => dead.mask(new Float32Array(5))).toThrow(/no token can continue/);
  });

  it('mask() bans what cannot continue, allows end tokens only when complete, then only EOS', () => {
    const f = compileResponseFormat({ type: 'json_schema', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } });
    const c = createConstraint(f, tok, { vocabSize: V, endIds: [tok.endOfText, tok.imEnd] });
    const ids = tok.encode('{"ok": true}');
    for (const id of ids) {
      const l = new Float32Array(V);
      c.mask(l);
      expect(l[id]).toBe(0);
      expect(l[tok.endOfText]).toBe(-Infinity);
      expect(l[V - 1]).toBe(-Infinity);
      expect(() => c.advance(tok.imEnd)).toThrow(ArgumentError);
      c.advance(id);
    }
    expect(c.complete).toBe(true);
    const l = new Float32Array(V);
    c.mask(l);
    const allowed = [...l.keys()].filter((i) => l[i] === 0);
    expect(allowed).toEqual([tok.endOfText, tok.imEnd]); // the object is closed: nothing else fits
    expect(() => c.advance(tok.encode(' ')[0])).toThrow(/does not continue/);
    c.advance(tok.imEnd);
    c.mask(l.fill(0));
    expect([...l.keys()].filter((i) => l[i] === 0)).toEqual([tok.endOfText]);
  });
});
