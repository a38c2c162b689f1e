/**
 * Qwen's special tokens, in id order (tokenization_qwen.py: ENDOFTEXT, IMSTART, IMEND, then
 * EXTRAS `<|extra_0|>`..`<|extra_204|>`). Their ids start right after the mergeable ranks
 * (151643 for the official vocabulary).
 */
export const ENDOFTEXT = '<|endoftext|>';
export const IMSTART = '<|im_start|>';
export const IMEND = '<|im_end|>';

export const SPECIAL_TOKEN_TEXTS: readonly string[] = Object.freeze([
  ENDOFTEXT,
  IMSTART,
  IMEND,
  ...Array.from({ length: 205 }, (_, i) => `<|extra_${i}|>`),
]);
