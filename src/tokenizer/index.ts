export { QwenTokenizer, type EncodeOptions, type DecodeOptions, type SpecialSet } from './qwenTokenizer.js';
export type { StreamDecoder } from './streamDecoder.js';
export { gunzip } from './gunzip.js';
export { SPECIAL_TOKEN_TEXTS, ENDOFTEXT, IMSTART, IMEND } from './specialTokens.js';
export { PAT_STR_PYTHON, PAT_STR_JS } from './pattern.js';
export type { DecodeErrors } from './utf8.js';
