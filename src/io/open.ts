/**
 * Resolves a model location: `synthetic:<preset>` → a generated checkpoint (vocabulary from the
 * package's assets), anything else → the platform's source (directory on Node, URL in browsers).
 */
import type { Platform } from '../platform.js';
import { gunzip } from '../tokenizer/index.js';
import { readVocabulary } from './checkpoint.js';
import type { FileSource } from './source.js';
import { isSyntheticLocation, syntheticSource, type SyntheticOptions } from './synthetic.js';

export const VOCABULARY_ASSET = 'qwen.tiktoken.gz';

export interface OpenSourceOptions extends SyntheticOptions {
  /** Decompresses gzip bytes (default: the tokenizer's DecompressionStream-based gunzip). */
  gunzip?: (gz: Uint8Array) => Promise<Uint8Array> | Uint8Array;
}

/** The bundled vocabulary (assets/qwen.tiktoken.gz), decompressed. */
export async function bundledVocabulary(platform: Platform, unzip: OpenSourceOptions['gunzip'] = gunzip): Promise<Uint8Array> {
  return unzip(await platform.readAsset(VOCABULARY_ASSET));
}

export async function openSource(location: string, platform: Platform, opts: OpenSourceOptions = {}): Promise<FileSource> {
  if (isSyntheticLocation(location)) return syntheticSource(location, () => bundledVocabulary(platform, opts.gunzip), opts);
  return platform.openSource(location);
}

/**
 * qwen.tiktoken's bytes for a model location without opening its weights (what `qwen-rt tokenize
 * --model SRC` needs): the checkpoint's own file, the bundled one for synthetic models.
 */
export async function vocabularyFor(location: string, platform: Platform, opts: OpenSourceOptions = {}): Promise<Uint8Array> {
  const src = await openSource(location, platform, opts);
  try {
    return await readVocabulary(src);
  } finally {
    await src.close?.();
  }
}
