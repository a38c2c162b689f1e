/**
 * Grammar IR (what JSON Schema and GBNF compile to) and its flattening into the form the byte
 * automaton runs: rules → alternatives → sequences of atoms, where an atom is a terminal (a set
 * of Unicode code points) or a rule reference. Grouping and bounded/unbounded repetition become
 * anonymous rules; right recursion only, so left recursion is rejected here (it would expand forever).
 */
import { ArgumentError } from '../../errors.js';

export type Expr =
  | { t: 'lit'; s: string }
  /** code point ranges as [lo, hi] pairs (inclusive); `neg` complements them */
  | { t: 'cls'; ranges: number[]; neg: boolean }
  | { t: 'ref'; name: string }
  | { t: 'seq'; items: Expr[] }
  | { t: 'alt'; items: Expr[] }
  /** `max` Infinity = unbounded */
  | { t: 'rep'; e: Expr; min: number; max: number };

export const lit = (s: string): Expr => ({ t: 'lit', s });
export const cls = (ranges: number[], neg = false): Expr => ({ t: 'cls', ranges, neg });
export const ref = (name: string): Expr => ({ t: 'ref', name });
export const seq = (...items: Expr[]): Expr => (items.length === 1 ? items[0] : { t: 'seq', items });
export const alt = (...items: Expr[]): Expr => (items.length === 1 ? items[0] : { t: 'alt', items });
export const rep = (e: Expr, min: number, max: number): Expr => ({ t: 'rep', e, min, max });
export const opt = (e: Expr): Expr => rep(e, 0, 1);
export const star = (e: Expr): Expr => rep(e, 0, Infinity);

export type GrammarRules = Map<string, Expr>;

/** Largest repetition count expanded into rules (a bigger bound is a typed error, not a stall). */
export const MAX_REPEAT = 4096;
const MAX_CP = 0x10ffff;

/** A terminal: sorted, merged, positive code point ranges (surrogates removed). */
export interface Terminal {
  ranges: Int32Array;
  /** ASCII membership, the hot path. */
  ascii: Uint8Array;
}

/**
 * Flat grammar. `elems` holds every alternative as a run of atoms ended by END:
 * a value ≥ 0 is a terminal index, END (-1) ends the alternative, ≤ -2 is rule -(v + 2).
 */
export interface FlatGrammar {
  elems: Int32Array;
  /** Start positions (in elems) of each rule's alternatives. */
  ruleAlts: number[][];
  ruleNames: string[];
  terms: Terminal[];
  root: number;
}

export const END = -1;
export const ruleAtom = (r: number) => -(r + 2);
export const atomRule = (v: number) => -v - 2;

function normalizeRanges(raw: number[], neg: boolean, where: string): Int32Array {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lo = raw[i];
    const hi = raw[i + 1];
    if (!(lo >= 0 && hi <= MAX_CP && lo <= hi)) throw new ArgumentError(`${where}: bad character range ${lo}..${hi}`);
    pairs.push([lo, hi]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  let merged: Array<[number, number]> = [];
  for (const p of pairs) {
    const last = merged[merged.length - 1];
    if (last && p[0] <= last[1] + 1) last[1] = Math.max(last[1], p[1]);
    else merged.push([p[0], p[1]]);
  }
  if (neg) {
    const comp: Array<[number, number]> = [];
    let next = 0;
    for (const [lo, hi] of merged) {
      if (lo > next) comp.push([next, lo - 1]);
      next = hi + 1;
    }
    if (next <= MAX_CP) comp.push([next, MAX_CP]);
    merged = comp;
  }
  // UTF-8 cannot encode surrogates: drop them so a class never admits an unreachable code point
  const out: number[] = [];
  for (const [lo, hi] of merged) {
    if (hi < 0xd800 || lo > 0xdfff) out.push(lo, hi);
    else {
      if (lo < 0xd800) out.push(lo, 0xd7ff);
      if (hi > 0xdfff) out.push(0xe000, hi);
    }
  }
  return Int32Array.from(out);
}

function makeTerminal(ranges: Int32Array): Terminal {
  const ascii = new Uint8Array(128);
  for (let i = 0; i < ranges.length; i += 2) for (let c = ranges[i]; c <= Math.min(ranges[i + 1], 127); c++) ascii[c] = 1;
  return { ranges, ascii };
}

export function termMatches(t: Terminal, c: number): boolean {
  if (c < 128) return t.ascii[c] === 1;
  const r = t.ranges;
  for (let i = 0; i < r.length; i += 2) {
    if (c < r[i]) return false;
    if (c <= r[i + 1]) return true;
  }
  return false;
}

export function termIntersects(t: Terminal, lo: number, hi: number): boolean {
  const r = t.ranges;
  for (let i = 0; i < r.length; i += 2) if (r[i] <= hi && r[i + 1] >= lo) return true;
  return false;
}

/** Flattens named rules (entry `root`) into a FlatGrammar; `what` names the source in errors. */
export function flatten(rules: GrammarRules, root: string, what: string): FlatGrammar {
  if (!rules.has(root)) throw new ArgumentError(`${what}: no rule named "${root}"`);
  const ruleIds = new Map<string, number>();
  const ruleNames: string[] = [];
  const ruleSeqs: number[][][] = [];
  const newRule = (name: string) => {
    const id = ruleNames.length;
    ruleNames.push(name);
    ruleSeqs.push([]);
    return id;
  };
  for (const name of rules.keys()) ruleIds.set(name, newRule(name));

  const terms: Terminal[] = [];
  const termIds = new Map<string, number>();
  const terminal = (ranges: Int32Array) => {
    const key = ranges.join(',');
    let id = termIds.get(key);
    if (id === undefined) {
      id = terms.length;
      terms.push(makeTerminal(ranges));
      termIds.set(key, id);
    }
    return id;
  };
  const anon = new Map<Expr, number>();
  let anonCount = 0;
  const anonRule = (owner: string, build: (id: number) => number[][]): number => {
    const id = newRule(`${owner}~${++anonCount}`);
    ruleSeqs[id] = build(id);
    return id;
  };

  const alternatives = (e: Expr, owner: string): number[][] => {
    if (e.t === 'alt') return e.items.map((x) => sequence(x, owner, []));
    return [sequence(e, owner, [])];
  };

  // Appends the atoms of `e` to `out`.
  const sequence = (e: Expr, owner: string, out: number[]): number[] => {
    switch (e.t) {
      case 'lit':
        for (const ch of e.s) {
          const c = ch.codePointAt(0)!;
          out.push(terminal(normalizeRanges([c, c], false, `${what}: rule "${owner}"`)));
        }
        return out;
      case 'cls': {
        const r = normalizeRanges(e.ranges, e.neg, `${what}: rule "${owner}"`);
        if (r.length === 0) throw new ArgumentError(`${what}: rule "${owner}" has a character class that matches nothing`);
        out.push(terminal(r));
        return out;
      }
      case 'ref': {
        const id = ruleIds.get(e.name);
        if (id === undefined) throw new ArgumentError(`${what}: rule "${owner}" refers to undefined rule "${e.name}"`);
        out.push(ruleAtom(id));
        return out;
      }
      case 'seq':
        for (const x of e.items) sequence(x, owner, out);
        return out;
      case 'alt': {
        let id = anon.get(e);
        if (id === undefined) {
          id = anonRule(owner, () => alternatives(e, owner));
          anon.set(e, id);
        }
        out.push(ruleAtom(id));
        return out;
      }
      case 'rep': {
        const { min, max } = e;
        if (!Number.isInteger(min) || min < 0 || !(max === Infinity || (Number.isInteger(max) && max >= min))) {
          throw new ArgumentError(`${what}: rule "${owner}": bad repetition bounds {${min},${max}}`);
        }
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
          throw new ArgumentError(`${what}: rule "${owner}": repetition bound above ${MAX_REPEAT}`);
        }
        // the repeated item once, as an atom list (an alternative becomes a rule, shared by all copies)
        const item = sequence(e.e, owner, []);
        for (let i = 0; i < min; i++) out.push(...item);
        if (max === Infinity) {
          // S ::= item S | ε   (right recursion: the stack does not grow per repetition)
          out.push(ruleAtom(anonRule(owner, (self) => [[...item, ruleAtom(self)], []])));
        } else if (max > min) {
          // O_1 ::= item | ε ; O_k ::= item O_(k−1) | ε
          let prev = anonRule(owner, () => [[...item], []]);
          for (let k = 2; k <= max - min; k++) {
            const p = prev;
            prev = anonRule(owner, () => [[...item, ruleAtom(p)], []]);
          }
          out.push(ruleAtom(prev));
        }
        return out;
      }
    }
  };

  for (const [name, e] of rules) ruleSeqs[ruleIds.get(name)!] = alternatives(e, name);
  checkLeftRecursion(ruleSeqs, ruleNames, what);

  const elems: number[] = [];
  const ruleAlts = ruleSeqs.map((alts) =>
    alts.map((s) => {
      const start = elems.length;
      elems.push(...s, END);
      return start;
    }),
  );
  return { elems: Int32Array.from(elems), ruleAlts, ruleNames, terms, root: ruleIds.get(root)! };
}

/** A rule that can reach itself without consuming input would expand forever: reject it. */
function checkLeftRecursion(ruleSeqs: number[][][], names: string[], what: string): void {
  const n = ruleSeqs.length;
  const nullable = new Uint8Array(n);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < n; r++) {
      if (nullable[r]) continue;
      if (ruleSeqs[r].some((s) => s.every((a) => a <= -2 && nullable[atomRule(a)]))) {
        nullable[r] = 1;
        changed = true;
      }
    }
  }
  const left: number[][] = ruleSeqs.map((alts) => {
    const out: number[] = [];
    for (const s of alts) {
      for (const a of s) {
        if (a >= 0) break;
        out.push(atomRule(a));
        if (!nullable[atomRule(a)]) break;
      }
    }
    return out;
  });
  const color = new Uint8Array(n); // 0 new, 1 on path, 2 done
  const visit = (r: number, path: number[]): void => {
    color[r] = 1;
    path.push(r);
    for (const s of left[r]) {
      if (color[s] === 1) {
        const cyc = path.slice(path.indexOf(s)).map((x) => names[x].split('~')[0]);
        throw new ArgumentError(
          `${what}: rule "${cyc[0]}" is left-recursive (${[...cyc, cyc[0]].join(' → ')}), or repeats something that can be empty`,
        );
      }
      if (color[s] === 0) visit(s, path);
    }
    path.pop();
    color[r] = 2;
  };
  for (let r = 0; r < n; r++) if (color[r] === 0) visit(r, []);
}
