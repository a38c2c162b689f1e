/**
 * TokenConstraint: one generation's view of a compiled format. `mask(logits)` sets every token that
 * cannot extend the output to a valid prefix to −Infinity; `advance(id)` moves past the chosen token.
 * Masks are computed by walking the tokenizer's byte trie with the automaton (rejected subtrees are
 * skipped) and cached per automaton state on the compiled format, so a schema reused across requests
 * reuses its masks. End tokens are allowed only once the output is a complete sentence; after one,
 * only EOS.
 */
import { ArgumentError } from '../../errors.js';
import { DEAD, type GrammarAutomaton } from './automaton.js';
import { tokenTrie, type TokenSource, type TokenTrie } from './trie.js';

/** Cached masks per (format, trie); beyond this the cache is cleared (≈ 19 KiB each for Qwen). */
const MAX_CACHED_MASKS = 1024;

export interface ConstraintOptions {
  /** Logit rows (the model's vocab size; ids past the tokenizer's are always banned). */
  vocabSize: number;
  /** Ids that end generation; allowed only when the output is complete. The first is the EOS. */
  endIds: number[];
}

export interface MaskStats {
  steps: number;
  /** Masks that needed a trie walk. */
  walks: number;
  /** Time in mask() (walk + apply), ms. */
  maskMs: number;
}

const maskCaches = new WeakMap<GrammarAutomaton, WeakMap<TokenTrie, Map<number, Uint32Array>>>();

function masksFor(a: GrammarAutomaton, trie: TokenTrie): Map<number, Uint32Array> {
  let byTrie = maskCaches.get(a);
  if (!byTrie) maskCaches.set(a, (byTrie = new WeakMap()));
  let m = byTrie.get(trie);
  if (!m) byTrie.set(trie, (m = new Map()));
  return m;
}

/** Bitmask of the trie tokens that keep `state` alive (ordinary tokens only). */
export function walkMask(a: GrammarAutomaton, trie: TokenTrie, state: number, words: number): Uint32Array {
  const bits = new Uint32Array(words);
  const { size, label, depth, skip, token } = trie;
  const stateAt = new Int32Array(trie.maxDepth + 1);
  const tables: Int32Array[] = new Array(trie.maxDepth + 1);
  stateAt[0] = state;
  tables[0] = a.table(state);
  for (let i = 1; i < size; ) {
    const d = depth[i];
    const parent = stateAt[d - 1];
    const tab = tables[d - 1];
    let s = tab[label[i]];
    if (s === -2) s = a.step(parent, label[i]);
    if (s === DEAD) {
      i = skip[i];
      continue;
    }
    stateAt[d] = s;
    tables[d] = a.table(s);
    const id = token[i];
    if (id >= 0) bits[id >>> 5] |= 1 << (id & 31);
    i++;
  }
  return bits;
}

export class TokenConstraint {
  private state: number;
  private ended = false;
  private readonly trie: TokenTrie;
  private readonly masks: Map<number, Uint32Array>;
  private readonly words: number;
  readonly stats: MaskStats = { steps: 0, walks: 0, maskMs: 0 };

  constructor(
    private readonly automaton: GrammarAutomaton,
    private readonly tokenizer: TokenSource,
    private readonly opts: ConstraintOptions,
  ) {
    if (opts.endIds.length === 0) throw new ArgumentError('constrained decoding needs at least one end token id');
    this.trie = tokenTrie(tokenizer);
    this.masks = masksFor(automaton, this.trie);
    this.words = (opts.vocabSize + 31) >>> 5;
    this.state = automaton.initial;
  }

  /** The output so far is complete (an end token may follow). */
  get complete(): boolean {
    return this.ended || this.automaton.isAccepting(this.state);
  }

  /** An end token was consumed. */
  get done(): boolean {
    return this.ended;
  }

  /** Bitmask over the vocabulary of the tokens allowed next. */
  allowed(): Uint32Array {
    const bits = new Uint32Array(this.words);
    if (this.ended) {
      const eos = this.opts.endIds[0];
      bits[eos >>> 5] |= 1 << (eos & 31);
      return bits;
    }
    let m = this.masks.get(this.state);
    if (!m) {
      m = walkMask(this.automaton, this.trie, this.state, this.words);
      this.stats.walks++;
      // e.g. a grammar whose only way on is a byte sequence no tokenization reaches: fail clearly
      if (!this.automaton.isAccepting(this.state) && m.every((w) => w === 0)) {
        throw new ArgumentError('constrained decoding: no token can continue the output here (the format admits nothing a token can spell)');
      }
      if (this.masks.size >= MAX_CACHED_MASKS) this.masks.clear();
      this.masks.set(this.state, m);
    }
    bits.set(m);
    if (this.automaton.isAccepting(this.state)) for (const id of this.opts.endIds) bits[id >>> 5] |= 1 << (id & 31);
    return bits;
  }

  isAllowed(id: number): boolean {
    const b = this.allowed();
    return id >= 0 && id < this.opts.vocabSize && (b[id >>> 5] & (1 << (id & 31))) !== 0;
  }

  /** Sets disallowed logits to −Infinity, in place. */
  mask(logits: Float32Array): void {
    const t0 = performance.now();
    const bits = this.allowed();
    const n = Math.min(logits.length, this.opts.vocabSize);
    for (let w = 0; w < bits.length; w++) {
      const word = bits[w];
      if (word === -1 >>> 0) continue;
      const base = w << 5;
      const end = Math.min(base + 32, n);
      if (word === 0) logits.fill(-Infinity, base, end);
      else for (let i = base; i < end; i++) if ((word & (1 << (i - base))) === 0) logits[i] = -Infinity;
    }
    if (logits.length > n) logits.fill(-Infinity, n);
    this.stats.steps++;
    this.stats.maskMs += performance.now() - t0;
  }

  /** Moves past token `id`; a token the mask would have banned is an ArgumentError. */
  advance(id: number): void {
    if (this.ended) {
      if (id === this.opts.endIds[0]) return;
      throw new ArgumentError(`constrained decoding: token ${id} after the end of the output`);
    }
    if (this.opts.endIds.includes(id)) {
      if (!this.automaton.isAccepting(this.state)) throw new ArgumentError(`constrained decoding: end token ${id} before the output is complete`);
      this.ended = true;
      return;
    }
    if (!Number.isInteger(id) || id < 0 || id >= this.trie.tokens) {
      throw new ArgumentError(`constrained decoding: token ${id} is not an ordinary token`);
    }
    const next = this.automaton.walk(this.state, this.tokenizer.tokenBytes(id));
    if (next === DEAD) throw new ArgumentError(`constrained decoding: token ${id} does not continue the output`);
    this.state = next;
  }
}
