/**
 * Byte trie of the tokenizer's ordinary tokens, in preorder arrays: node i has a byte label, a depth
 * and `skip[i]` = the first node after its subtree, so a mask walk is one forward loop that jumps
 * over every subtree the automaton rejects. Built once per tokenizer (lazily) and cached.
 */
export interface TokenSource {
  readonly endOfText: number;
  tokenBytes(id: number): Uint8Array;
}

export interface TokenTrie {
  /** Nodes, root (index 0) included. */
  size: number;
  label: Uint8Array;
  depth: Uint16Array;
  skip: Int32Array;
  /** Token id ending at the node, or −1. */
  token: Int32Array;
  /** Ordinary token ids are 0..tokens−1 (special tokens are not in the trie). */
  tokens: number;
  maxDepth: number;
}

const cache = new WeakMap<object, TokenTrie>();

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

export function tokenTrie(tok: TokenSource): TokenTrie {
  let t = cache.get(tok);
  if (!t) {
    t = buildTrie(tok);
    cache.set(tok, t);
  }
  return t;
}

export function buildTrie(tok: TokenSource): TokenTrie {
  const n = tok.endOfText;
  const bytes: Uint8Array[] = new Array(n);
  let total = 1;
  let maxDepth = 0;
  for (let id = 0; id < n; id++) {
    bytes[id] = tok.tokenBytes(id);
    total += bytes[id].length;
    maxDepth = Math.max(maxDepth, bytes[id].length);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => compareBytes(bytes[a], bytes[b]));
  const label = new Uint8Array(total);
  const depth = new Uint16Array(total);
  const skip = new Int32Array(total);
  const token = new Int32Array(total).fill(-1);
  const path = new Int32Array(maxDepth + 1); // path[d] = node at depth d on the current branch
  let size = 1;
  let prev: Uint8Array = new Uint8Array(0);
  for (const id of order) {
    const b = bytes[id];
    let common = 0;
    while (common < prev.length && common < b.length && prev[common] === b[common]) common++;
    for (let d = prev.length; d > common; d--) skip[path[d]] = size;
    for (let d = common + 1; d <= b.length; d++) {
      label[size] = b[d - 1];
      depth[size] = d;
      path[d] = size++;
    }
    if (b.length > 0) token[path[b.length]] = id;
    prev = b;
  }
  for (let d = prev.length; d > 0; d--) skip[path[d]] = size;
  skip[0] = size;
  return { size, label, depth, skip, token, tokens: n, maxDepth };
}
