/**
 * The tensors a Qwen (v1) config implies, with their shapes and allowed dtypes (official names).
 * Used to validate checkpoints and to lay out synthetic ones, so both follow one definition.
 */
import type { QwenConfig } from '../model/config.js';
import type { DType } from './source.js';

export const FLOAT_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];

/** The five linears of a block, relative to `transformer.h.<i>.`. */
export const BLOCK_LINEARS = ['attn.c_attn', 'attn.c_proj', 'mlp.w1', 'mlp.w2', 'mlp.c_proj'] as const;
export type BlockLinear = (typeof BLOCK_LINEARS)[number];

export type TensorRole = 'embedding' | 'norm' | 'weight' | 'bias' | 'lm_head' | 'qweight' | 'qzeros' | 'scales' | 'g_idx';

export interface TensorSpec {
  name: string;
  shape: number[];
  /** Dtypes a checkpoint may store it in. */
  dtypes: readonly DType[];
  role: TensorRole;
  /** Input features of the linear it belongs to (weights, GPTQ parts). */
  inFeatures?: number;
  /** Absent from a checkpoint without being an error (g_idx when desc_act is false). */
  optional?: boolean;
}

/** [in, out] features of a block linear (torch Linear weight is [out, in]). */
export function linearDims(config: QwenConfig, linear: BlockLinear): { inFeatures: number; outFeatures: number } {
  const h = config.hiddenSize;
  const m = config.mlpWidth;
  switch (linear) {
    case 'attn.c_attn': return { inFeatures: h, outFeatures: 3 * h };
    case 'attn.c_proj': return { inFeatures: h, outFeatures: h };
    case 'mlp.w1':
    case 'mlp.w2': return { inFeatures: h, outFeatures: m };
    case 'mlp.c_proj': return { inFeatures: m, outFeatures: h };
  }
}

/** Every tensor the config implies (GPTQ layout for the block linears when config.quantization is set). */
export function qwenTensorLayout(config: QwenConfig): TensorSpec[] {
  const h = config.hiddenSize;
  const q = config.quantization;
  const specs: TensorSpec[] = [{ name: 'transformer.wte.weight', shape: [config.vocabSize, h], dtypes: FLOAT_DTYPES, role: 'embedding' }];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `transformer.h.${i}.`;
    specs.push({ name: `${p}ln_1.weight`, shape: [h], dtypes: FLOAT_DTYPES, role: 'norm' });
    specs.push({ name: `${p}ln_2.weight`, shape: [h], dtypes: FLOAT_DTYPES, role: 'norm' });
    for (const lin of BLOCK_LINEARS) {
      const { inFeatures, outFeatures } = linearDims(config, lin);
      const n = p + lin;
      if (q) {
        const groups = Math.ceil(inFeatures / q.groupSize);
        specs.push({ name: `${n}.qweight`, shape: [inFeatures / 8, outFeatures], dtypes: ['I32'], role: 'qweight', inFeatures });
        specs.push({ name: `${n}.qzeros`, shape: [groups, outFeatures / 8], dtypes: ['I32'], role: 'qzeros', inFeatures });
        specs.push({ name: `${n}.scales`, shape: [groups, outFeatures], dtypes: ['F16'], role: 'scales', inFeatures });
        specs.push({ name: `${n}.g_idx`, shape: [inFeatures], dtypes: ['I32'], role: 'g_idx', inFeatures, optional: !q.descAct });
      } else {
        specs.push({ name: `${n}.weight`, shape: [outFeatures, inFeatures], dtypes: FLOAT_DTYPES, role: 'weight', inFeatures });
      }
      if (lin === 'attn.c_attn') specs.push({ name: `${n}.bias`, shape: [outFeatures], dtypes: FLOAT_DTYPES, role: 'bias' });
    }
  }
  specs.push({ name: 'transformer.ln_f.weight', shape: [h], dtypes: FLOAT_DTYPES, role: 'norm' });
  specs.push({ name: 'lm_head.weight', shape: [config.vocabSize, h], dtypes: FLOAT_DTYPES, role: 'lm_head', inFeatures: h });
  return specs;
}
