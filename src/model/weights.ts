/** The model's weights in backend memory, uploaded in checkpoint encoding, layer by layer. */
import type { Backend, Embedding, Linear, Vec } from '../backend/backend.js';
import type { Checkpoint } from '../io/checkpoint.js';

export interface LayerWeights {
  ln1: Vec;
  /** Fused q|k|v projection [3H, H] with bias. */
  cAttn: Linear;
  cProj: Linear;
  ln2: Vec;
  w1: Linear;
  /** w2's output goes through SiLU (Qwen: c_proj(w1(x) · silu(w2(x)))). */
  w2: Linear;
  mlpProj: Linear;
}

export interface QwenWeights {
  wte: Embedding;
  layers: LayerWeights[];
  lnF: Vec;
  lmHead: Linear;
}

export async function uploadWeights(backend: Backend, ckpt: Checkpoint, signal?: AbortSignal): Promise<QwenWeights> {
  const { numLayers } = ckpt.config;
  const wte = await backend.uploadEmbedding(ckpt.tensor('transformer.wte.weight'), { layer: -1 });
  const layers: LayerWeights[] = [];
  for (let l = 0; l < numLayers; l++) {
    signal?.throwIfAborted();
    const p = `transformer.h.${l}`;
    const at = { layer: l };
    layers.push({
      ln1: await backend.uploadVector(ckpt.tensor(`${p}.ln_1.weight`), at),
      cAttn: await backend.uploadLinear(ckpt.linear(`${p}.attn.c_attn`), at),
      cProj: await backend.uploadLinear(ckpt.linear(`${p}.attn.c_proj`), at),
      ln2: await backend.uploadVector(ckpt.tensor(`${p}.ln_2.weight`), at),
      w1: await backend.uploadLinear(ckpt.linear(`${p}.mlp.w1`), at),
      w2: await backend.uploadLinear(ckpt.linear(`${p}.mlp.w2`), at),
      mlpProj: await backend.uploadLinear(ckpt.linear(`${p}.mlp.c_proj`), at),
    });
  }
  const lnF = await backend.uploadVector(ckpt.tensor('transformer.ln_f.weight'), { layer: -2 });
  const lmHead = await backend.uploadLinear(ckpt.linear('lm_head'), { layer: -2 });
  return { wte, layers, lnF, lmHead };
}

/** Bytes of weights one decode step reads (every linear once + one embedding row). */
export function bytesPerToken(w: QwenWeights): number {
  let bytes = w.lmHead.bytes;
  for (const l of w.layers) bytes += l.cAttn.bytes + l.cProj.bytes + l.w1.bytes + l.w2.bytes + l.mlpProj.bytes;
  return bytes;
}
