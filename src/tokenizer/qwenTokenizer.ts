/**
 * Qwen (v1) tokenizer with the official QWenTokenizer semantics: NFC, tiktoken BPE over PAT_STR,
 * special tokens recognised anywhere by default, decode = one UTF-8 decode of the concatenated bytes.
 */
import { ArgumentError, TokenizerError } from '../errors.js';
import { bytePairEncode } from './bpe.js';
import { pieceEnd } from './pretokenize.js';
import { RankTable } from './rankTable.js';
import { ENDOFTEXT, IMEND, IMSTART, SPECIAL_TOKEN_TEXTS } from './specialTokens.js';
import { Utf8StreamDecoder, type StreamDecoder } from './streamDecoder.js';
import { decodeUtf8, encodeUtf8Into, type DecodeErrors } from './utf8.js';

export type SpecialSet = 'all' | Iterable<string>;

export interface EncodeOptions {
  /** Special-token texts encoded as their ids (default 'all', as QWenTokenizer.tokenize). */
  allowedSpecial?: SpecialSet;
  /** Texts whose presence raises TokenizerError (default none; 'all' = every special not allowed). */
  disallowedSpecial?: SpecialSet;
}

export interface DecodeOptions {
  /** Drop every id ≥ `<|endoftext|>` (151643), as QWenTokenizer._decode does. */
  skipSpecialTokens?: boolean;
  /** Python's bytes.decode errors mode (default 'replace'). */
  errors?: DecodeErrors;
}

/** Pieces longer than this (UTF-16 units) are not cached. */
const CACHE_MAX_PIECE = 48;
const CACHE_MAX_ENTRIES = 1 << 17;
const ASCII_ONLY = /^[\x00-\x7f]*$/;
const textEncoder = new TextEncoder();
const NO_SPECIALS: ReadonlySet<string> = new Set();

export class QwenTokenizer {
  readonly vocabSize: number;
  readonly endOfText: number;
  readonly imStart: number;
  readonly imEnd: number;

  private readonly table: RankTable;
  private readonly specialIds = new Map<string, number>();
  private readonly specialBytes: Uint8Array[] = [];
  private readonly allSpecials: ReadonlySet<string>;
  private scratch = new Uint8Array(1024);
  /** Piece → its ids, for pieces that needed BPE. Pieces are context-free, so this is exact. */
  private readonly cache = new Map<string, number[]>();

  private constructor(table: RankTable) {
    this.table = table;
    const first = table.size; // QWenTokenizer numbers the specials right after the ranks
    SPECIAL_TOKEN_TEXTS.forEach((text, i) => {
      this.specialIds.set(text, first + i);
      this.specialBytes.push(textEncoder.encode(text));
    });
    this.allSpecials = new Set(SPECIAL_TOKEN_TEXTS);
    this.vocabSize = first + SPECIAL_TOKEN_TEXTS.length;
    this.endOfText = this.specialIds.get(ENDOFTEXT) as number;
    this.imStart = this.specialIds.get(IMSTART) as number;
    this.imEnd = this.specialIds.get(IMEND) as number;
  }

  /** Builds the tokenizer from the bytes of a `qwen.tiktoken` file. */
  static fromTiktoken(bytes: Uint8Array): QwenTokenizer {
    if (!(bytes instanceof Uint8Array)) throw new ArgumentError('fromTiktoken: bytes must be a Uint8Array');
    return new QwenTokenizer(RankTable.parse(bytes));
  }

  specialTokenId(text: string): number | undefined {
    return this.specialIds.get(text);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new ArgumentError(`encode: text must be a string, got ${typeof text}`);
    const allowed = this.resolveSpecialSet(opts.allowedSpecial ?? 'all', 'allowedSpecial', undefined);
    const disallowed =
      opts.disallowedSpecial === undefined
        ? NO_SPECIALS
        : this.resolveSpecialSet(opts.disallowedSpecial, 'disallowedSpecial', allowed);
    // NFC first (QWenTokenizer.tokenize); ASCII is always NFC.
    if (!ASCII_ONLY.test(text)) text = text.normalize('NFC');
    if (disallowed.size > 0) this.checkDisallowed(text, disallowed);

    const out: number[] = [];
    let start = 0;
    if (allowed.size > 0) {
      // tiktoken: leftmost special match; one that is not allowed is ordinary text.
      let from = 0;
      let closeAt = -1; // cached index of the next "|>"
      for (;;) {
        const i = text.indexOf('<|', from);
        if (i < 0) break;
        if (closeAt < i + 2) closeAt = text.indexOf('|>', i + 2);
        if (closeAt < 0) break;
        const candidate = text.slice(i, closeAt + 2);
        const id = allowed.has(candidate) ? this.specialIds.get(candidate) : undefined;
        if (id === undefined) {
          from = i + 1;
          continue;
        }
        this.encodeOrdinary(text.slice(start, i), out);
        out.push(id);
        start = from = closeAt + 2;
      }
    }
    this.encodeOrdinary(start === 0 ? text : text.slice(start), out);
    return out;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    return decodeUtf8(this.concatBytes(ids, opts.skipSpecialTokens ?? false), opts.errors ?? 'replace');
  }

  /** Raw bytes of one token (a special token: its text as UTF-8). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id, 'tokenBytes');
    if (id < this.table.size) return this.table.bytesView(id).slice();
    return this.specialBytes[id - this.table.size].slice();
  }

  createStreamDecoder(opts: { skipSpecialTokens?: boolean } = {}): StreamDecoder {
    const skip = opts.skipSpecialTokens ?? false;
    return new Utf8StreamDecoder((id) => {
      if (skip && id >= this.endOfText) return undefined;
      this.checkId(id, 'StreamDecoder.push');
      return id < this.table.size ? this.table.bytesView(id) : this.specialBytes[id - this.table.size];
    });
  }

  private checkId(id: number, where: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new TokenizerError(`${where}: token id ${id} is out of range (0..${this.vocabSize - 1})`);
    }
  }

  private concatBytes(ids: ArrayLike<number>, skipSpecial: boolean): Uint8Array {
    const n = ids.length;
    const ranks = this.table.size;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const id = ids[k];
      if (skipSpecial && id >= this.endOfText) continue;
      this.checkId(id, 'decode');
      total += id < ranks ? this.table.tokenLength(id) : this.specialBytes[id - ranks].length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (let k = 0; k < n; k++) {
      const id = ids[k];
      if (skipSpecial && id >= this.endOfText) continue;
      if (id < ranks) at = this.table.copyInto(id, out, at);
      else {
        const b = this.specialBytes[id - ranks];
        out.set(b, at);
        at += b.length;
      }
    }
    return out;
  }

  private resolveSpecialSet(value: SpecialSet, name: string, allowed: ReadonlySet<string> | undefined): ReadonlySet<string> {
    if (value === 'all') {
      if (!allowed) return this.allSpecials; // the default: not copied per call
      const rest = new Set(this.specialIds.keys());
      for (const t of allowed) rest.delete(t);
      return rest;
    }
    if (typeof value === 'string' || value == null || typeof (value as Iterable<string>)[Symbol.iterator] !== 'function') {
      throw new ArgumentError(`encode: ${name} must be 'all' or an iterable of special-token strings, got ${JSON.stringify(value)}`);
    }
    return new Set(value);
  }

  /** tiktoken raises on the leftmost disallowed text. */
  private checkDisallowed(text: string, disallowed: ReadonlySet<string>): void {
    let best = -1;
    let found = '';
    for (const s of disallowed) {
      const i = text.indexOf(s);
      if (i >= 0 && (best < 0 || i < best)) {
        best = i;
        found = s;
      }
    }
    if (best >= 0) {
      throw new TokenizerError(
        `encode: the text contains the disallowed special token ${JSON.stringify(found)} at offset ${best}`,
      );
    }
  }

  /** BPE over the pre-tokenised pieces of `text` (no special-token handling). */
  private encodeOrdinary(text: string, out: number[]): void {
    const n = text.length;
    for (let i = 0; i < n; ) {
      const j = pieceEnd(text, i, n);
      this.encodePiece(text, i, j, out);
      i = j;
    }
  }

  private encodePiece(text: string, start: number, end: number, out: number[]): void {
    // Most pieces are one token: a direct vocabulary lookup is as cheap as a cache probe, so the
    // cache only holds pieces that needed BPE.
    const units = end - start;
    if (this.scratch.length < units * 3) this.scratch = new Uint8Array(units * 3 + 64);
    const len = encodeUtf8Into(text, this.scratch, start, end);
    const whole = this.table.lookup(this.scratch, 0, len);
    if (whole >= 0) {
      out.push(whole);
      return;
    }
    const piece = units <= CACHE_MAX_PIECE ? text.slice(start, end) : undefined;
    if (piece !== undefined) {
      const hit = this.cache.get(piece);
      if (hit !== undefined) {
        for (let k = 0; k < hit.length; k++) out.push(hit[k]);
        return;
      }
    }
    const before = out.length;
    bytePairEncode(this.table, this.scratch, len, out);
    if (piece !== undefined) this.remember(piece, out.slice(before));
  }

  private remember(piece: string, ids: number[]): void {
    if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
    this.cache.set(piece, ids);
  }
}
