/**
 * Dynamic NTK and LogN, exactly as the official modeling_qwen.py computes them.
 *
 * alpha = max(2^ceil(log2(L / seq_length) + 1) − 1, 1) where L is the length of the last forward
 * that ran without a KV cache (the whole prompt, even when we prefill it in chunks); cached decode
 * steps reuse that alpha. base' = base · alpha^(d / (d − 2)) with d the rotary dimension.
 */
export function ntkAlpha(promptLength: number, seqLength: number, useDynamicNtk: boolean): number {
  if (!useDynamicNtk) return 1;
  const contextValue = Math.log2(promptLength / seqLength) + 1;
  return Math.max(2 ** Math.ceil(contextValue) - 1, 1);
}

export function ntkBase(base: number, alpha: number, rotaryDim: number): number {
  return base * alpha ** (rotaryDim / (rotaryDim - 2));
}

/** The rotary dimension: int(kv_channels · rotary_pct). */
export function rotaryDim(headDim: number, rotaryPct: number): number {
  return Math.trunc(headDim * rotaryPct);
}
