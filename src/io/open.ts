/**
 * Resolves a model location: `synthetic:<preset>` → a generated checkpoint (vocabulary from the
 * package's assets), anything else → the platform's source (directory on Node, URL in browsers).
 */
import type { Platform } from '../platform.js';
import type { FileSource } from './source.js';
import { isSyntheticLocation, syntheticSource, type SyntheticOptions } from './synthetic.js';

export const VOCABULARY_ASSET = 'qwen.tiktoken.gz';

export interface OpenSourceOptions extends SyntheticOptions {
  /** Decompresses gzip bytes (default: the platform's DecompressionStream). */
  gunzip?: (gz: Uint8Array) => Promise<Uint8Array> | Uint8Array;
}

/** gunzip through the standard DecompressionStream (Node ≥ 18, browsers, edge runtimes). */
export async function gunzipStream(gz: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([new Uint8Array(gz)]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The bundled vocabulary (assets/qwen.tiktoken.gz), decompressed. */
export async function bundledVocabulary(platform: Platform, gunzip: OpenSourceOptions['gunzip'] = gunzipStream): Promise<Uint8Array> {
  return gunzip(await platform.readAsset(VOCABULARY_ASSET));
}

export async function openSource(location: string, platform: Platform, opts: OpenSourceOptions = {}): Promise<FileSource> {
  if (isSyntheticLocation(location)) return syntheticSource(location, () => bundledVocabulary(platform, opts.gunzip), opts);
  return platform.openSource(location);
}
