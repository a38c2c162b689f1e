/**
 * Byte-level pushdown automaton over a FlatGrammar (llama.cpp's grammar-stack scheme): a state is
 * the set of parse stacks whose top is a terminal, plus a pending partial UTF-8 character. Stacks
 * are hash-consed linked lists and states are interned, so a state is a small integer and each
 * (state, byte) transition is computed once and then read from a 256-entry table.
 */
import { ArgumentError } from '../../errors.js';
import { END, atomRule, termIntersects, termMatches, type FlatGrammar } from './grammar.js';

export const DEAD = -1;
const UNKNOWN = -2;
const NIL = -1;
/** Interned states beyond this mean a pathological grammar; fail loudly instead of eating memory. */
const MAX_STATES = 1 << 18;

// partial UTF-8: (len << 24) | (need << 21) | value-so-far; 0 = none
const pLen = (p: number) => p >>> 24;
const pNeed = (p: number) => (p >>> 21) & 7;
const pVal = (p: number) => p & 0x1fffff;
const partial = (len: number, need: number, val: number) => ((len << 24) | (need << 21) | val) >>> 0;
const MIN_CP = [0, 0, 0x80, 0x800, 0x10000];

interface State {
  stacks: Int32Array;
  accepting: boolean;
  /** Pending UTF-8 prefix whose value still matters (encoded as above), or 0. */
  partial: number;
  /**
   * Continuation bytes still owed by a pending character whose exact value no longer matters: every
   * completion is valid UTF-8 and each stack's terminal takes all of them or none. Such prefixes
   * share one state (keyed by which stacks take them), so e.g. a maxLength-counted string does not
   * get a state per (count, UTF-8 prefix). `rep` is one of the code points they can become.
   */
  uniformNeed: number;
  rep: number;
}

export class GrammarAutomaton {
  private readonly nodePos: number[] = [];
  private readonly nodeNext: number[] = [];
  private readonly nodeIds = new Map<number, number>();
  private readonly states: State[] = [];
  private readonly stateIds = new Map<string, number>();
  private readonly trans: Array<Int32Array | undefined> = [];
  readonly initial: number;

  constructor(readonly grammar: FlatGrammar) {
    const out = new Set<number>();
    const acc = { accepting: false };
    for (const a of grammar.ruleAlts[grammar.root]) this.expand(a, NIL, out, acc, new Set());
    this.initial = this.intern([...out], acc.accepting, 0);
  }

  get stateCount(): number {
    return this.states.length;
  }

  /** The input so far is a complete sentence (and no UTF-8 character is pending). */
  isAccepting(s: number): boolean {
    const st = this.states[s];
    return st.accepting && st.partial === 0 && st.uniformNeed === 0;
  }

  /** More bytes can follow. */
  canContinue(s: number): boolean {
    return this.states[s].stacks.length > 0;
  }

  /** Next state after `byte`, or DEAD. */
  step(s: number, byte: number): number {
    let t = this.trans[s];
    if (t === undefined) t = this.trans[s] = new Int32Array(256).fill(UNKNOWN);
    let v = t[byte];
    if (v === UNKNOWN) v = t[byte] = this.compute(s, byte);
    return v;
  }

  /** The 256-entry transition table of `s` (filled lazily by step). */
  table(s: number): Int32Array {
    let t = this.trans[s];
    if (t === undefined) t = this.trans[s] = new Int32Array(256).fill(UNKNOWN);
    return t;
  }

  /** State after `bytes`, or DEAD. */
  walk(s: number, bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length && s !== DEAD; i++) s = this.step(s, bytes[i]);
    return s;
  }

  private internNode(pos: number, next: number): number {
    const key = pos * 0x4000000 + (next + 1);
    let id = this.nodeIds.get(key);
    if (id === undefined) {
      id = this.nodePos.length;
      this.nodePos.push(pos);
      this.nodeNext.push(next);
      this.nodeIds.set(key, id);
    }
    return id;
  }

  private intern(stacks: number[], accepting: boolean, part: number, uniform?: { need: number; rep: number; takers: string }): number {
    stacks.sort((a, b) => a - b);
    const pend = uniform ? `U${uniform.need}:${uniform.takers}` : part;
    const key = `${pend}|${accepting ? 1 : 0}|${stacks.join(',')}`;
    let id = this.stateIds.get(key);
    if (id === undefined) {
      id = this.states.length;
      if (id >= MAX_STATES) throw new ArgumentError(`constrained decoding: the grammar needs more than ${MAX_STATES} automaton states`);
      this.states.push({ stacks: Int32Array.from(stacks), accepting, partial: part, uniformNeed: uniform?.need ?? 0, rep: uniform?.rep ?? 0 });
      this.stateIds.set(key, id);
    }
    return id;
  }

  /** Adds to `out` every stack reachable from position `pos` (continuation `next`) without input. */
  private expand(pos: number, next: number, out: Set<number>, acc: { accepting: boolean }, seen: Set<number>): void {
    const g = this.grammar;
    for (;;) {
      const e = g.elems[pos];
      if (e === END) {
        if (next === NIL) {
          acc.accepting = true;
          return;
        }
        pos = this.nodePos[next];
        next = this.nodeNext[next];
        continue;
      }
      const node = this.internNode(pos, next);
      if (seen.has(node)) return;
      seen.add(node);
      if (e >= 0) {
        out.add(node);
        return;
      }
      // rule reference: continue after it once the rule is done (no frame when nothing follows)
      const cont = g.elems[pos + 1] === END ? next : this.internNode(pos + 1, next);
      const alts = g.ruleAlts[atomRule(e)];
      for (let i = 0; i < alts.length - 1; i++) this.expand(alts[i], cont, out, acc, seen);
      pos = alts[alts.length - 1];
      next = cont;
    }
  }

  private advanceCp(st: State, cp: number): number {
    const g = this.grammar;
    const out = new Set<number>();
    const acc = { accepting: false };
    const seen = new Set<number>();
    for (const node of st.stacks) {
      const pos = this.nodePos[node];
      if (termMatches(g.terms[g.elems[pos]], cp)) this.expand(pos + 1, this.nodeNext[node], out, acc, seen);
    }
    if (out.size === 0 && !acc.accepting) return DEAD;
    return this.intern([...out], acc.accepting, 0);
  }

  /** Some stack can take a code point in [lo, hi] (surrogates excluded). */
  private admitsRange(st: State, lo: number, hi: number): boolean {
    const g = this.grammar;
    for (const node of st.stacks) {
      const t = g.terms[g.elems[this.nodePos[node]]];
      if (lo < 0xd800 && termIntersects(t, lo, Math.min(hi, 0xd7ff))) return true;
      if (hi > 0xdfff && termIntersects(t, Math.max(lo, 0xe000), hi)) return true;
    }
    return false;
  }

  private compute(s: number, b: number): number {
    const st = this.states[s];
    if (st.stacks.length === 0) return DEAD;
    if (st.uniformNeed > 0) {
      if ((b & 0xc0) !== 0x80) return DEAD;
      if (st.uniformNeed === 1) return this.advanceCp(st, st.rep);
      return this.intern(Array.from(st.stacks), st.accepting, 0, { need: st.uniformNeed - 1, rep: st.rep, takers: this.takers(st, st.rep) });
    }
    let len: number;
    let need: number;
    let val: number;
    if (st.partial === 0) {
      if (b < 0x80) return this.advanceCp(st, b);
      if (b >= 0xc2 && b <= 0xdf) [len, need, val] = [2, 1, b & 0x1f];
      else if (b >= 0xe0 && b <= 0xef) [len, need, val] = [3, 2, b & 0x0f];
      else if (b >= 0xf0 && b <= 0xf4) [len, need, val] = [4, 3, b & 0x07];
      else return DEAD;
    } else {
      if ((b & 0xc0) !== 0x80) return DEAD;
      len = pLen(st.partial);
      need = pNeed(st.partial) - 1;
      val = (pVal(st.partial) << 6) | (b & 0x3f);
      if (need === 0) {
        if (val < MIN_CP[len] || (val >= 0xd800 && val <= 0xdfff) || val > 0x10ffff) return DEAD;
        return this.advanceCp(st, val);
      }
    }
    // the code points this prefix can still become; keep the state only if the grammar admits one
    const shift = 6 * need;
    const rawLo = val * 2 ** shift;
    const rawHi = rawLo + 2 ** shift - 1;
    const lo = Math.max(rawLo, MIN_CP[len]);
    const hi = Math.min(rawHi, 0x10ffff);
    if (lo > hi || !this.admitsRange(st, lo, hi)) return DEAD;
    const settled = lo === rawLo && hi === rawHi && (hi < 0xd800 || lo > 0xdfff);
    if (settled && this.uniform(st, lo, hi)) return this.intern(Array.from(st.stacks), st.accepting, 0, { need, rep: lo, takers: this.takers(st, lo) });
    return this.intern(Array.from(st.stacks), st.accepting, partial(len, need, val));
  }

  /** Every stack's terminal takes all of [lo, hi] or none of it. */
  private uniform(st: State, lo: number, hi: number): boolean {
    const g = this.grammar;
    for (const node of st.stacks) {
      const r = g.terms[g.elems[this.nodePos[node]]].ranges;
      for (let i = 0; i < r.length; i += 2) {
        if (r[i] > hi || r[i + 1] < lo) continue; // disjoint from this range
        if (!(r[i] <= lo && r[i + 1] >= hi)) return false; // overlaps without containing
        break;
      }
    }
    return true;
  }

  /** Which stacks take code point `cp` (a state key part). */
  private takers(st: State, cp: number): string {
    const g = this.grammar;
    let out = '';
    for (let k = 0; k < st.stacks.length; k++) if (termMatches(g.terms[g.elems[this.nodePos[st.stacks[k]]]], cp)) out += `${k},`;
    return out;
  }
}
