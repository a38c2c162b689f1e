/**
 * Qwen's pre-tokenisation pattern (PAT_STR of tokenization_qwen.py), translated for JavaScript:
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * tiktoken runs it with Rust's fancy-regex, so two things differ from a literal JS copy:
 * - `(?i:…)` has no Node 20 equivalent: expanded case by case. Rust's case-insensitive matching uses
 *   Unicode simple case folding, under which `s` also matches U+017F LATIN SMALL LETTER LONG S.
 * - Rust's Unicode `\s` is the White_Space property: unlike JS `\s` it includes U+0085 and excludes
 *   U+FEFF. Both are spelled out as an explicit class.
 */
export const PAT_STR_PYTHON =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Unicode White_Space, the set Rust's `\s` matches. */
const WS = '\\t\\n\\v\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';

export const PAT_STR_JS =
  "'(?:[sS\\u017F]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])" +
  '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+' +
  '|\\p{N}' +
  `| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*` +
  `|[${WS}]*[\\r\\n]+` +
  `|[${WS}]+(?![^${WS}])` +
  `|[${WS}]+`;

/** A fresh global regex for the pattern (each tokenizer keeps its own; lastIndex is state). */
export function createPretokenizer(): RegExp {
  return new RegExp(PAT_STR_JS, 'gu');
}
