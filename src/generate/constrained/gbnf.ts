/**
 * A small GBNF (llama.cpp grammar) parser: `name ::= alternatives` rules (entry `root`), "literals",
 * [character classes] with ranges and ^ negation, `.` (any character), grouping ( ), postfix * + ?
 * and {m}, {m,}, {m,n}; `#` comments. Escapes: \n \r \t \\ \" \[ \] \- \^ \xHH \uHHHH \UHHHHHHHH.
 * Errors are ArgumentErrors with line:column.
 */
import { ArgumentError } from '../../errors.js';
import { alt, cls, lit, ref, rep, seq, type Expr, type GrammarRules } from './grammar.js';

const NAME = /[A-Za-z0-9_-]/;

export function parseGbnf(src: string): GrammarRules {
  if (typeof src !== 'string') throw new ArgumentError('grammar must be a string');
  let i = 0;
  const where = (at = i) => {
    const before = src.slice(0, at).split('\n');
    return `${before.length}:${before[before.length - 1].length + 1}`;
  };
  const fail = (msg: string, at = i): never => {
    throw new ArgumentError(`grammar ${where(at)}: ${msg}`);
  };
  const skipSpace = () => {
    for (;;) {
      while (i < src.length && /\s/.test(src[i])) i++;
      if (src[i] === '#') while (i < src.length && src[i] !== '\n') i++;
      else return;
    }
  };
  const name = (): string => {
    const start = i;
    while (i < src.length && NAME.test(src[i])) i++;
    if (i === start) fail(`expected a rule name, got ${JSON.stringify(src[i] ?? 'end of input')}`);
    return src.slice(start, i);
  };
  const atRuleStart = (): boolean => {
    const save = i;
    let ok = false;
    if (i < src.length && NAME.test(src[i])) {
      while (i < src.length && NAME.test(src[i])) i++;
      skipSpace();
      ok = src.startsWith('::=', i);
    }
    i = save;
    return ok;
  };
  const hexEscape = (n: number): number => {
    const h = src.slice(i, i + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) fail(`expected ${n} hex digits`);
    i += n;
    const v = parseInt(h, 16);
    if (v > 0x10ffff) fail('code point above U+10FFFF');
    return v;
  };
  /** One (possibly escaped) character as a code point. */
  const char = (): number => {
    if (i >= src.length) fail('unexpected end of input');
    if (src[i] === '\\') {
      i++;
      const e = src[i++];
      switch (e) {
        case 'n': return 10;
        case 'r': return 13;
        case 't': return 9;
        case 'x': return hexEscape(2);
        case 'u': return hexEscape(4);
        case 'U': return hexEscape(8);
        case '\\': case '"': case '[': case ']': case '-': case '^': case "'": return e.codePointAt(0)!;
        default: return fail(`unknown escape \\${e ?? ''}`, i - 2);
      }
    }
    const c = src.codePointAt(i)!;
    i += c > 0xffff ? 2 : 1;
    return c;
  };
  const literal = (): Expr => {
    const start = i++;
    let s = '';
    for (;;) {
      if (i >= src.length || src[i] === '\n') fail('unterminated string literal', start);
      if (src[i] === '"') {
        i++;
        return lit(s);
      }
      s += String.fromCodePoint(char());
    }
  };
  const charClass = (): Expr => {
    const start = i++;
    const neg = src[i] === '^';
    if (neg) i++;
    const ranges: number[] = [];
    for (;;) {
      if (i >= src.length) fail('unterminated character class', start);
      if (src[i] === ']') {
        i++;
        break;
      }
      const lo = char();
      let hi = lo;
      if (src[i] === '-' && i + 1 < src.length && src[i + 1] !== ']') {
        i++;
        hi = char();
        if (hi < lo) fail(`character range is reversed (${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)})`);
      }
      ranges.push(lo, hi);
    }
    if (ranges.length === 0 && !neg) fail('empty character class', start);
    return cls(ranges, neg);
  };
  const int = (): number => {
    const m = /^\d+/.exec(src.slice(i));
    if (!m) fail('expected a number');
    i += m![0].length;
    return Number(m![0]);
  };
  const postfix = (e: Expr): Expr => {
    for (;;) {
      let j = i;
      while (src[j] === ' ' || src[j] === '\t') j++; // "x *" is "x*", as in llama.cpp
      if ('*+?{'.includes(src[j] ?? '_')) i = j;
      const c = src[i];
      if (c === '*') e = rep(e, 0, Infinity);
      else if (c === '+') e = rep(e, 1, Infinity);
      else if (c === '?') e = rep(e, 0, 1);
      else if (c === '{') {
        const at = i++;
        skipSpace();
        const min = int();
        skipSpace();
        let max = min;
        if (src[i] === ',') {
          i++;
          skipSpace();
          max = /\d/.test(src[i] ?? '') ? int() : Infinity;
          skipSpace();
        }
        if (src[i] !== '}') fail('expected } to close a repetition', at);
        if (max < min) fail(`repetition {${min},${max}} has max < min`, at);
        e = rep(e, min, max);
      } else return e;
      i++;
    }
  };
  const sequence = (depth: number): Expr => {
    const items: Expr[] = [];
    for (;;) {
      skipSpace();
      const c = src[i];
      if (c === undefined || c === '|' || c === ')') break;
      if (depth === 0 && atRuleStart()) break;
      let e: Expr;
      if (c === '"') e = literal();
      else if (c === '[') e = charClass();
      else if (c === '.') {
        i++;
        e = cls([0x0a, 0x0a], true); // any character but newline, as in llama.cpp
      } else if (c === '(') {
        const at = i++;
        e = alternatives(depth + 1);
        if (src[i] !== ')') fail('unclosed (', at);
        i++;
      } else if (NAME.test(c)) e = ref(name());
      else return fail(`unexpected ${JSON.stringify(c)}`);
      items.push(postfix(e));
    }
    return seq(...items);
  };
  const alternatives = (depth: number): Expr => {
    const alts = [sequence(depth)];
    while (src[i] === '|') {
      i++;
      alts.push(sequence(depth));
    }
    return alt(...alts);
  };

  const rules: GrammarRules = new Map();
  skipSpace();
  while (i < src.length) {
    const at = i;
    const n = name();
    skipSpace();
    if (!src.startsWith('::=', i)) fail(`expected ::= after rule name "${n}"`);
    i += 3;
    if (rules.has(n)) fail(`rule "${n}" is defined twice`, at);
    rules.set(n, alternatives(0));
    skipSpace();
    if (src[i] === ')') fail('unmatched )');
  }
  if (!rules.has('root')) throw new ArgumentError('grammar: no "root" rule');
  return rules;
}
