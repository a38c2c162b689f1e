/** Typed view of a Qwen (v1) config.json plus the files beside it. */
export interface QuantizationConfig {
  quantMethod: 'gptq';
  bits: number;
  groupSize: number;
  descAct: boolean;
  sym: boolean;
}

export interface QwenConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** kv_channels = head dim (= hidden / heads in every released Qwen v1). */
  headDim: number;
  /** config.intermediate_size; the MLP width is intermediateSize / 2. */
  intermediateSize: number;
  mlpWidth: number;
  vocabSize: number;
  seqLength: number;
  rotaryBase: number;
  rotaryPct: number;
  layerNormEps: number;
  useDynamicNtk: boolean;
  useLognAttn: boolean;
  quantization?: QuantizationConfig;
}

export interface GenerationConfig {
  eosTokenId: number;
  padTokenId: number;
  maxWindowSize: number;
  maxNewTokens: number;
  doSample: boolean;
  topK: number;
  topP: number;
  temperature: number;
  repetitionPenalty: number;
  chatFormat: string;
}
