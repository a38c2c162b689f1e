/**
 * JSON grammar pieces (RFC 8259) shared by json_object and JSON Schema. Whitespace between tokens is
 * bounded so a model cannot loop on it forever: nothing, one space, or a newline and at most
 * WS_INDENT spaces/tabs of indentation (what pretty printers write, as llama.cpp's json.gbnf);
 * numbers are bounded too
 * (≤ 21 integer digits, ≤ 24 fraction digits — what JSON.stringify writes — and ≤ 2 exponent
 * digits), so every number parses finite.
 */
import { alt, cls, lit, opt, ref, rep, seq, star, type Expr, type GrammarRules } from './grammar.js';

export const WS_INDENT = 16;

export const ws: Expr = ref('ws');
const digit = cls([0x30, 0x39]);
const hex = cls([0x30, 0x39, 0x41, 0x46, 0x61, 0x66]);

/** One character inside a JSON string (escapes included). */
export const stringChar: Expr = alt(
  cls([0x22, 0x22, 0x5c, 0x5c, 0x00, 0x1f], true),
  seq(lit('\\'), alt(cls([0x22, 0x22, 0x5c, 0x5c, 0x2f, 0x2f, 0x62, 0x62, 0x66, 0x66, 0x6e, 0x6e, 0x72, 0x72, 0x74, 0x74]), seq(lit('u'), hex, hex, hex, hex))),
);

export const integerExpr: Expr = seq(opt(lit('-')), alt(lit('0'), seq(cls([0x31, 0x39]), rep(digit, 0, 20))));
export const numberExpr: Expr = seq(
  integerExpr,
  opt(seq(lit('.'), rep(digit, 1, 24))),
  opt(seq(cls([0x65, 0x65, 0x45, 0x45]), opt(cls([0x2b, 0x2b, 0x2d, 0x2d])), rep(digit, 1, 2))),
);

/** Adds the rules of any JSON value (`value`, `object`, `array`, `string`, `number`, `ws`). */
export function addJsonRules(rules: GrammarRules): void {
  rules.set('ws', alt(seq(), lit(' '), seq(lit('\n'), rep(cls([0x20, 0x20, 0x09, 0x09]), 0, WS_INDENT))));
  rules.set('string', seq(lit('"'), star(ref('char')), lit('"')));
  rules.set('char', stringChar);
  rules.set('number', numberExpr);
  const member = seq(ref('string'), ws, lit(':'), ws, ref('value'));
  rules.set('object', alt(seq(lit('{'), ws, lit('}')), seq(lit('{'), ws, member, star(seq(ws, lit(','), ws, member)), ws, lit('}'))));
  rules.set('array', alt(seq(lit('['), ws, lit(']')), seq(lit('['), ws, ref('value'), star(seq(ws, lit(','), ws, ref('value'))), ws, lit(']'))));
  rules.set('value', alt(ref('object'), ref('array'), ref('string'), ref('number'), lit('true'), lit('false'), lit('null')));
}
